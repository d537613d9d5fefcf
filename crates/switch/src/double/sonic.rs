//! A protocol-faithful double of SONiC's management framework RESTCONF
//! server (RFC 8040 over the SONiC YANG models; no switch runs here):
//!
//! - HTTP basic auth; 401 otherwise. Errors are RFC 8040 documents:
//!   `{"ietf-restconf:errors": {"error": [{"error-type", "error-tag",
//!   "error-message"}]}}`.
//! - `GET /restconf/data/<module>:<module>`: every list of the module, as
//!   `{"<module>:<module>": {TABLE: {LIST: [entries]}}}`; 404 when the
//!   module holds no data. `GET` of one entry
//!   (`.../<TABLE>/<LIST>=<k1>,<k2>`): `{"<module>:<LIST>": [entry]}`.
//! - `PUT` of an entry creates (201) or replaces (204) it; `PATCH` merges
//!   into an existing entry (404 if it does not exist: RFC 8040 never
//!   creates on PATCH); `DELETE` of an entry or of one leaf (204; 404 when
//!   absent). Bodies are `{"<module>:<LIST>": [one entry]}` whose key leaves
//!   match the URL; numeric leaves must be JSON numbers (RFC 7951).
//! - Every write is validated against the models over the whole database
//!   (`yang::validate`: leafrefs, patterns, ranges, counts) and refused with
//!   400 `invalid-value`, the database unchanged, when it breaks one; so
//!   removing a VLAN before its members fails as on a switch.
//! - PORT and MGMT_PORT entries are the platform's: they are never created
//!   or deleted through the API here, only their leaves changed.

pub mod yang;

use neocloud_common::http_double::{percent_decode, HttpDouble, Request, Response};
use serde_json::{json, Map, Value};
use std::sync::{Arc, Mutex, MutexGuard};
use yang::{Db, List};

/// One request as the double saw it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    /// The decoded path.
    pub path: String,
    pub body: Value,
}

impl Recorded {
    pub fn line(&self) -> String {
        format!("{} {}", self.method, self.path)
    }
}

#[derive(Debug, Default)]
pub struct State {
    /// CONFIG_DB (edit it to change the switch behind the driver's back).
    pub db: Db,
    pub requests: Vec<Recorded>,
}

impl State {
    pub fn writes(&self) -> Vec<&Recorded> {
        self.requests.iter().filter(|r| r.method != "GET").collect()
    }

    /// A CONFIG_DB field, where there is one.
    pub fn field(&self, table: &str, key: &str, field: &str) -> Option<&str> {
        self.db.get(table)?.get(key)?.get(field).map(String::as_str)
    }

    pub fn has(&self, table: &str, key: &str) -> bool {
        self.db.get(table).is_some_and(|t| t.contains_key(key))
    }
}

pub struct SonicDouble {
    pub url: String,
    pub username: String,
    pub password: String,
    pub server: HttpDouble,
    state: Arc<Mutex<State>>,
}

impl SonicDouble {
    /// A switch with `ports` (down, as the platform creates them) and its
    /// management port.
    pub fn start(ports: &[String]) -> SonicDouble {
        let mut db = Db::new();
        for (i, p) in ports.iter().enumerate() {
            let fields = [
                ("admin_status", "down".to_string()),
                ("alias", format!("etp{}", i + 1)),
                ("lanes", format!("{}", 4 * i)),
                ("speed", "100000".into()),
                ("mtu", "9100".into()),
            ];
            db.entry("PORT".into())
                .or_default()
                .insert(p.clone(), fields.into_iter().map(|(k, v)| (k.to_string(), v)).collect());
        }
        let mgmt = [("admin_status", "up"), ("alias", "eth0")]
            .map(|(k, v)| (k.to_string(), v.to_string()));
        db.entry("MGMT_PORT".into()).or_default().insert("eth0".into(), mgmt.into());
        let state = Arc::new(Mutex::new(State { db, requests: Vec::new() }));
        let (user, password) = ("admin".to_string(), "YourPaSsWoRd".to_string());
        let (s, u, p) = (state.clone(), user.clone(), password.clone());
        let server = HttpDouble::start(move |req| {
            if !req.authorized(&u, &p) {
                return error(401, "protocol", "access-denied", "authentication failed");
            }
            let mut st = s.lock().unwrap_or_else(|e| e.into_inner());
            let body = req.json().unwrap_or(Value::Null);
            st.requests.push(Recorded {
                method: req.method.clone(),
                path: percent_decode(req.path()),
                body,
            });
            handle(&mut st, req)
        });
        SonicDouble { url: server.url.clone(), username: user, password, server, state }
    }

    pub fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn error(status: u16, kind: &str, tag: &str, message: &str) -> Response {
    let doc = json!({"ietf-restconf:errors": {"error": [{"error-type": kind, "error-tag": tag, "error-message": message}]}});
    Response::with_type(status, "application/yang-data+json", doc.to_string().into_bytes())
}

fn invalid(message: &str) -> Response {
    error(400, "application", "invalid-value", message)
}

fn not_found(what: &str) -> Response {
    error(404, "application", "invalid-value", &format!("Resource not found: {what}"))
}

fn yang_json(status: u16, body: &Value) -> Response {
    Response::with_type(status, "application/yang-data+json", body.to_string().into_bytes())
}

/// The leaf as JSON, typed as the model says.
fn typed(l: &List, leaf: &str, v: &str) -> Value {
    match (l.leaves.iter().find(|(n, _)| *n == leaf), v.parse::<u64>()) {
        (Some((_, true)), Ok(n)) => json!(n),
        _ => json!(v),
    }
}

fn entry_json(l: &List, key: &str, fields: &std::collections::BTreeMap<String, String>) -> Value {
    let mut m = Map::new();
    for (k, v) in l.keys.iter().zip(key.split('|')) {
        m.insert(k.to_string(), json!(v));
    }
    for (f, v) in fields {
        m.insert(f.clone(), typed(l, f, v));
    }
    Value::Object(m)
}

fn handle(st: &mut State, req: &Request) -> Response {
    // Raw segments: key lists are split on `,` before decoding.
    let raw: Vec<&str> = req.path().split('/').filter(|s| !s.is_empty()).collect();
    if raw.len() < 3 || raw[0] != "restconf" || raw[1] != "data" {
        return not_found(req.path());
    }
    let container = percent_decode(raw[2]);
    let Some((module, name)) = container.split_once(':').filter(|(m, n)| m == n) else {
        return not_found(&container);
    };
    let module = module.to_string();
    if !yang::LISTS.iter().any(|l| l.module == name) {
        return not_found(&container);
    }
    match raw.len() {
        3 if req.method == "GET" => get_module(st, &module),
        5 | 6 => {
            let table = percent_decode(raw[3]);
            let (list, keys) = raw[4].split_once('=').unwrap_or((raw[4], ""));
            let Some(l) = yang::by_list(&module, list).filter(|l| l.table == table) else {
                return not_found(&format!("{table}/{list}"));
            };
            let key: Vec<String> = keys.split(',').map(percent_decode).collect();
            if key.len() != l.keys.len() || key.iter().any(String::is_empty) {
                return invalid(&format!("{list}: expected keys {}", l.keys.join(",")));
            }
            let leaf = raw.get(5).map(|s| percent_decode(s));
            entry(st, req, l, &key.join("|"), leaf.as_deref())
        }
        _ => error(
            405,
            "protocol",
            "operation-not-supported",
            &format!("{} {}", req.method, req.path()),
        ),
    }
}

fn get_module(st: &State, module: &str) -> Response {
    let mut doc = Map::new();
    for l in yang::LISTS.iter().filter(|l| l.module == module) {
        let Some(entries) = st.db.get(l.table) else { continue };
        let mine: Vec<Value> = entries
            .iter()
            .filter(|(k, _)| k.split('|').count() == l.keys.len())
            .map(|(k, f)| entry_json(l, k, f))
            .collect();
        if mine.is_empty() {
            continue;
        }
        let table = doc.entry(l.table.to_string()).or_insert(json!({}));
        table[l.list] = Value::Array(mine);
    }
    if doc.is_empty() {
        return not_found(module);
    }
    yang_json(200, &json!({format!("{module}:{module}"): doc}))
}

/// Reads `{"<module>:<LIST>": [entry]}`: the fields, checked against the
/// model and the URL's key.
fn body_fields(
    l: &List,
    key: &str,
    body: &Value,
) -> Result<std::collections::BTreeMap<String, String>, String> {
    let member = format!("{}:{}", l.module, l.list);
    let entries = body
        .get(&member)
        .and_then(Value::as_array)
        .ok_or(format!("the body must be {{\"{member}\": [entry]}}"))?;
    let [e] = entries.as_slice() else { return Err(format!("{member}: exactly one entry")) };
    let e = e.as_object().ok_or(format!("{member}: an entry is an object"))?;
    for (k, v) in l.keys.iter().zip(key.split('|')) {
        if e.get(*k).and_then(Value::as_str) != Some(v) {
            return Err(format!("{member}: key leaf {k} must be {v:?}, as in the URL"));
        }
    }
    let mut out = std::collections::BTreeMap::new();
    for (f, v) in e.iter().filter(|(f, _)| !l.keys.contains(&f.as_str())) {
        let Some((_, number)) = l.leaves.iter().find(|(n, _)| n == f) else {
            return Err(format!("{member}: unknown element {f}"));
        };
        let text = match (number, v) {
            (true, Value::Number(n)) => n.to_string(),
            (false, Value::String(s)) => s.clone(),
            _ => {
                return Err(format!(
                    "{member}: {f} must be a {}",
                    if *number { "number" } else { "string" }
                ))
            }
        };
        out.insert(f.clone(), text);
    }
    Ok(out)
}

fn entry(st: &mut State, req: &Request, l: &List, key: &str, leaf: Option<&str>) -> Response {
    let platform = matches!(l.table, "PORT" | "MGMT_PORT");
    let exists = st.has(l.table, key);
    let mut db = st.db.clone();
    let status = match (req.method.as_str(), leaf) {
        ("GET", None) => {
            return match st.db.get(l.table).and_then(|t| t.get(key)) {
                Some(f) => yang_json(
                    200,
                    &json!({format!("{}:{}", l.module, l.list): [entry_json(l, key, f)]}),
                ),
                None => not_found(key),
            };
        }
        ("PUT", None) => {
            if platform && !exists {
                return invalid(&format!("{} {key}: entries are created by the platform", l.table));
            }
            match body_fields(l, key, &req.json().unwrap_or(Value::Null)) {
                Ok(f) => db.entry(l.table.to_string()).or_default().insert(key.to_string(), f),
                Err(e) => return invalid(&e),
            };
            if exists {
                204
            } else {
                201
            }
        }
        ("PATCH", None) => {
            if !exists {
                return not_found(key);
            }
            match body_fields(l, key, &req.json().unwrap_or(Value::Null)) {
                Ok(f) => {
                    db.get_mut(l.table).and_then(|t| t.get_mut(key)).expect("exists").extend(f)
                }
                Err(e) => return invalid(&e),
            }
            204
        }
        ("DELETE", None) => {
            if !exists {
                return not_found(key);
            }
            if platform {
                return invalid(&format!("{} {key}: entries are the platform's", l.table));
            }
            db.get_mut(l.table).expect("exists").remove(key);
            204
        }
        ("DELETE", Some(f)) => {
            let fields = db.get_mut(l.table).and_then(|t| t.get_mut(key));
            match fields.and_then(|m| m.remove(f)) {
                Some(_) => 204,
                None => return not_found(&format!("{key}/{f}")),
            }
        }
        (m, _) => return error(405, "protocol", "operation-not-supported", m),
    };
    db.retain(|_, t| !t.is_empty());
    if let Err(e) = yang::validate(&db) {
        return invalid(&e);
    }
    st.db = db;
    Response::empty(status)
}
