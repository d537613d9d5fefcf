//! A protocol-faithful Cumulus NVUE REST double, written from the NVUE API
//! guide and NVIDIA's own NVUE tooling (no switch runs here):
//!
//! - HTTP basic auth on everything; 401 with an RFC 7807 problem body
//!   (`{"status", "title", "detail", "type"}`, as NVUE answers errors).
//! - `POST /nvue_v1/revision`: a new revision (`changeset/<user>/<n>`),
//!   staged from the applied configuration, answered as `{"<id>":
//!   {"state": "pending", "transition": {"issue": {}, "progress": ""}}}`.
//! - `GET /nvue_v1/<path>?rev=<id|applied>[&filled=false]`: a subtree.
//! - `PATCH /nvue_v1/<path>?rev=<id>`: merges the body into the revision
//!   (`null` unsets); `DELETE` unsets the path. Only pending revisions take
//!   changes; the top level is checked against NVUE's object model (an
//!   unknown key is a 400 "Unevaluated properties are not allowed").
//! - `PATCH /nvue_v1/revision/<id>` `{"state": "apply", "auto-prompt":
//!   {"ays": "ays_yes"}}`: answered `{"state": "apply", ...}`; the
//!   revision is then `applying` on the first poll and `applied` (or
//!   `invalid`, with its issues, when the configuration does not validate)
//!   on the next. Without `ays_yes` it stops at `ays`.
//! - `PATCH /nvue_v1/revision/applied` `{"state": "save"}`: the applied
//!   configuration becomes the startup one.
//! - `GET /nvue_v1/revision/<id>`: the revision's state.
//!
//! Validation at apply (as NVUE's config checks): an access VLAN, an SVI's
//! VLAN and a VNI's VLAN must be in the bridge domain; an SVI's VRF must
//! exist; `link state` and `vrr state` hold exactly one of up/down.

use neocloud_common::http_double::{percent_decode, HttpDouble, Request, Response};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

/// The top-level keys of NVUE's object model.
const ROOT_KEYS: &[&str] = &[
    "acl",
    "bridge",
    "evpn",
    "interface",
    "mlag",
    "nve",
    "platform",
    "qos",
    "router",
    "service",
    "system",
    "vrf",
];

#[derive(Debug, Clone)]
pub struct Revision {
    pub config: Value,
    /// `pending`, `applying`, `applied`, `invalid`, `ays`.
    pub state: String,
    pub issues: Vec<String>,
}

/// One request as the double saw it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    /// Decoded path and query, e.g. `PATCH /nvue_v1/?rev=changeset/cumulus/1`.
    pub target: String,
    pub body: Value,
}

impl Recorded {
    /// `METHOD target`.
    pub fn line(&self) -> String {
        format!("{} {}", self.method, self.target)
    }
}

#[derive(Debug, Default)]
pub struct State {
    /// The applied configuration (edit it to change the switch behind the
    /// driver's back).
    pub applied: Value,
    /// The startup configuration (`nv config save`).
    pub startup: Value,
    pub revisions: BTreeMap<String, Revision>,
    pub requests: Vec<Recorded>,
    next: u32,
}

impl State {
    /// The requests that change something (not `GET`s).
    pub fn writes(&self) -> Vec<&Recorded> {
        self.requests.iter().filter(|r| r.method != "GET").collect()
    }
}

pub struct NvueDouble {
    pub url: String,
    pub username: String,
    pub password: String,
    pub server: HttpDouble,
    state: Arc<Mutex<State>>,
}

impl NvueDouble {
    /// A switch whose applied configuration is its management interface.
    pub fn start() -> NvueDouble {
        let applied = json!({
            "interface": {"eth0": {"type": "eth", "ip": {"vrf": "mgmt", "address": {"192.168.200.6/24": {}}}}},
            "system": {"hostname": "cumulus"},
        });
        let state =
            Arc::new(Mutex::new(State { startup: applied.clone(), applied, ..State::default() }));
        let (user, password) = ("cumulus".to_string(), "CumulusLinux!".to_string());
        let (s, u, p) = (state.clone(), user.clone(), password.clone());
        let server = HttpDouble::start(move |req| {
            if !req.authorized(&u, &p) {
                return problem(401, "Unauthorized", "invalid credentials");
            }
            let mut st = s.lock().unwrap_or_else(|e| e.into_inner());
            let target = match req.query() {
                "" => percent_decode(req.path()),
                _ => format!("{}?{}", percent_decode(req.path()), decoded_query(req)),
            };
            st.requests.push(Recorded {
                method: req.method.clone(),
                target,
                body: req.json().unwrap_or(Value::Null),
            });
            handle(&mut st, req, &u)
        });
        NvueDouble { url: server.url.clone(), username: user, password, server, state }
    }

    pub fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn decoded_query(req: &Request) -> String {
    req.query_pairs().iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&")
}

/// An RFC 7807 problem, as NVUE answers errors.
fn problem(status: u16, title: &str, detail: &str) -> Response {
    Response::json(
        status,
        &json!({"status": status, "title": title, "detail": detail, "type": "about:blank"}),
    )
}

fn handle(st: &mut State, req: &Request, user: &str) -> Response {
    let seg = req.segments();
    if seg.first().map(String::as_str) != Some("nvue_v1") {
        return problem(404, "Not Found", "no such resource");
    }
    let rest = &seg[1..];
    match (req.method.as_str(), rest.first().map(String::as_str)) {
        ("POST", Some("revision")) if rest.len() == 1 => {
            st.next += 1;
            let id = format!("changeset/{user}/{}", st.next);
            let rev = Revision {
                config: st.applied.clone(),
                state: "pending".into(),
                issues: Vec::new(),
            };
            st.revisions.insert(id.clone(), rev);
            Response::json(
                200,
                &json!({id: {"state": "pending", "transition": {"issue": {}, "progress": ""}}}),
            )
        }
        (m, Some("revision")) if rest.len() == 2 => revision(st, m, &rest[1], req),
        (m, _) => config(st, m, rest, req),
    }
}

fn transition(r: &Revision) -> Value {
    let issue: Map<String, Value> = r
        .issues
        .iter()
        .enumerate()
        .map(|(i, m)| {
            (format!("{i:05}"), json!({"code": "config", "message": m, "severity": "error"}))
        })
        .collect();
    let progress = if r.state == "invalid" { "Invalid config" } else { "" };
    json!({"state": r.state, "transition": {"issue": issue, "progress": progress}})
}

fn revision(st: &mut State, method: &str, id: &str, req: &Request) -> Response {
    let body = match req.json() {
        Ok(b) => b,
        Err(e) => return problem(400, "Bad Request", &e),
    };
    if id == "applied" {
        return match (method, body["state"].as_str()) {
            ("GET", _) => Response::json(
                200,
                &json!({"state": "applied", "transition": {"issue": {}, "progress": ""}}),
            ),
            ("PATCH", Some("save")) => {
                st.startup = st.applied.clone();
                Response::json(
                    200,
                    &json!({"state": "save", "transition": {"issue": {}, "progress": ""}}),
                )
            }
            _ => problem(400, "Bad Request", "the applied revision can only be saved"),
        };
    }
    let Some(r) = st.revisions.get_mut(id) else {
        return problem(404, "Not Found", &format!("revision {id} not found"));
    };
    match method {
        "GET" => {
            let answer = transition(r);
            // Applying takes one poll; then the outcome.
            if r.state == "applying" {
                match validate(&r.config) {
                    Ok(()) => {
                        r.state = "applied".into();
                        st.applied = r.config.clone();
                    }
                    Err(issues) => {
                        r.state = "invalid".into();
                        r.issues = issues;
                    }
                }
            }
            Response::json(200, &answer)
        }
        "PATCH" => {
            if body["state"].as_str() != Some("apply") {
                return problem(400, "Bad Request", "state: only apply is supported here");
            }
            if r.state != "pending" {
                return problem(400, "Bad Request", &format!("revision {id} is {}", r.state));
            }
            r.state = if body["auto-prompt"]["ays"].as_str() == Some("ays_yes") {
                "applying"
            } else {
                "ays"
            }
            .into();
            Response::json(
                200,
                &json!({"state": "apply", "transition": {"issue": {}, "progress": ""}}),
            )
        }
        _ => problem(405, "Method Not Allowed", method),
    }
}

fn config(st: &mut State, method: &str, path: &[String], req: &Request) -> Response {
    let Some(rev) = req.query_param("rev") else {
        return match method {
            // Without a revision: the applied configuration (plus what
            // operational state NVUE would add; the double has none).
            "GET" => subtree(&st.applied, path),
            _ => problem(400, "Bad Request", "a change needs ?rev=<revision>"),
        };
    };
    if method == "GET" {
        return match rev.as_str() {
            "applied" => subtree(&st.applied, path),
            id => match st.revisions.get(id) {
                Some(r) => subtree(&r.config, path),
                None => problem(404, "Not Found", &format!("revision {id} not found")),
            },
        };
    }
    let Some(r) = st.revisions.get_mut(&rev) else {
        return problem(404, "Not Found", &format!("revision {rev} not found"));
    };
    if r.state != "pending" {
        return problem(400, "Bad Request", &format!("revision {rev} is {}, not pending", r.state));
    }
    let body = match req.json() {
        Ok(b) => b,
        Err(e) => return problem(400, "Bad Request", &e),
    };
    match method {
        "PATCH" => {
            if path.is_empty() {
                let Some(m) = body.as_object() else {
                    return problem(400, "Bad Request", "a root patch is an object");
                };
                if let Some(k) = m.keys().find(|k| !ROOT_KEYS.contains(&k.as_str())) {
                    let detail = format!(
                        "Error: Unevaluated properties are not allowed ('{k}' was unexpected)"
                    );
                    return problem(400, "Bad Request", &detail);
                }
            }
            let at = at_path(&mut r.config, path);
            merge_patch(at, body);
            Response::json(200, &json!({}))
        }
        "DELETE" => {
            unset(&mut r.config, path);
            Response::json(200, &json!({}))
        }
        _ => problem(405, "Method Not Allowed", method),
    }
}

fn subtree(tree: &Value, path: &[String]) -> Response {
    let mut at = tree;
    for p in path {
        match at.get(p) {
            Some(v) => at = v,
            None => return problem(404, "Not Found", &format!("{} not found", path.join("/"))),
        }
    }
    Response::json(200, at)
}

fn at_path<'a>(tree: &'a mut Value, path: &[String]) -> &'a mut Value {
    let mut at = tree;
    for p in path {
        if !at.is_object() {
            *at = json!({});
        }
        at = at.as_object_mut().expect("an object").entry(p.clone()).or_insert(json!({}));
    }
    at
}

fn unset(tree: &mut Value, path: &[String]) {
    let Some((last, parents)) = path.split_last() else {
        *tree = json!({});
        return;
    };
    let mut at = tree;
    for p in parents {
        match at.get_mut(p) {
            Some(v) => at = v,
            None => return,
        }
    }
    if let Some(m) = at.as_object_mut() {
        m.remove(last);
    }
}

/// RFC 7396 merge: objects merge, `null` removes, anything else replaces.
fn merge_patch(at: &mut Value, patch: Value) {
    match patch {
        Value::Object(p) => {
            if !at.is_object() {
                *at = json!({});
            }
            let m = at.as_object_mut().expect("an object");
            for (k, v) in p {
                if v.is_null() {
                    m.remove(&k);
                } else {
                    merge_patch(m.entry(k).or_insert(Value::Null), v);
                }
            }
        }
        other => *at = other,
    }
}

/// NVUE's checks at apply time that the tests rely on.
fn validate(cfg: &Value) -> Result<(), Vec<String>> {
    let mut issues = Vec::new();
    let vlans = &cfg["bridge"]["domain"]["br_default"]["vlan"];
    let has_vlan = |v: &str| vlans.get(v).is_some();
    let one_of = |v: &Value| {
        v.as_object()
            .is_some_and(|m| m.len() == 1 && (m.contains_key("up") || m.contains_key("down")))
    };
    if let Some(ifaces) = cfg["interface"].as_object() {
        for (name, i) in ifaces {
            if let Some(access) = i["bridge"]["domain"]["br_default"].get("access") {
                let vlan =
                    access.as_u64().map(|v| v.to_string()).unwrap_or_else(|| access.to_string());
                if !has_vlan(&vlan) {
                    issues.push(format!(
                        "interface {name}: access VLAN {vlan} is not in bridge domain br_default"
                    ));
                }
            }
            if let Some(state) = i["link"].get("state") {
                if !one_of(state) {
                    issues.push(format!("interface {name}: link state must be one of up, down"));
                }
            }
            if let Some(vlan) = name.strip_prefix("vlan") {
                if !has_vlan(vlan) {
                    issues.push(format!(
                        "interface {name}: VLAN {vlan} is not in bridge domain br_default"
                    ));
                }
                if let Some(vrf) = i["ip"]["vrf"].as_str() {
                    if cfg["vrf"].get(vrf).is_none() {
                        issues.push(format!("interface {name}: vrf {vrf} does not exist"));
                    }
                }
                if let Some(state) = i["ip"]["vrr"].get("state") {
                    if !one_of(state) {
                        issues.push(format!("interface {name}: vrr state must be one of up, down"));
                    }
                }
            }
        }
    }
    if issues.is_empty() {
        Ok(())
    } else {
        Err(issues)
    }
}
