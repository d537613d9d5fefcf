//! A protocol-faithful NVIDIA UFM test double for the PKey API, written from
//! the UFM Enterprise REST API guide (no real UFM runs here): basic auth,
//! `GET /ufmRest/resources/pkeys[?guids_data=true]` (a map keyed by PKey),
//! `GET /ufmRest/resources/pkeys/{pkey}` (an unknown PKey answers **200
//! with `{}`**, as UFM does), `POST /ufmRest/resources/pkeys/add` (an empty
//! PKey), `POST /ufmRest/resources/pkeys/` (add GUIDs, full or limited),
//! `DELETE /ufmRest/resources/pkeys/{pkey}/guids/{g1},{g2}`, `DELETE
//! /ufmRest/resources/pkeys/{pkey}`. PKeys are hex strings strictly between
//! 0x0 and 0x7fff; GUIDs 16-20 hex digits without colons; anything else is a
//! 400. It records every request, in order, for tests to assert on.

use neocloud_common::http_double::{HttpDouble, Request, Response};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// One PKey as the double holds it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pkey {
    pub partition: String,
    /// GUID -> membership (`full` or `limited`).
    pub guids: BTreeMap<String, String>,
}

#[derive(Debug, Default)]
pub struct State {
    pub pkeys: BTreeMap<u16, Pkey>,
    /// `METHOD path` of every request, in order.
    pub requests: Vec<String>,
}

pub struct UfmDouble {
    pub url: String,
    pub username: String,
    pub password: String,
    state: Arc<Mutex<State>>,
}

impl UfmDouble {
    /// Listens on a loopback port until the process ends.
    pub fn start() -> UfmDouble {
        UfmDouble::listen(false)
    }

    /// The same over HTTPS, with the test certificate
    /// (`neocloud_common::http_double::TEST_CA_PEM` issued it).
    pub fn start_https() -> UfmDouble {
        UfmDouble::listen(true)
    }

    fn listen(https: bool) -> UfmDouble {
        let state = Arc::new(Mutex::new(State::default()));
        let s = state.clone();
        let handler = move |req: &Request| {
            if !req.authorized("admin", "123456") {
                return Response::json(401, &json!({"error": "Unauthorized"}));
            }
            let mut s = s.lock().unwrap_or_else(|p| p.into_inner());
            s.requests.push(format!("{} {}", req.method, req.target));
            let (status, answer) = handle(&mut s, &req.method, &req.target, &req.body);
            Response::json(status, &answer)
        };
        let server =
            if https { HttpDouble::start_https(handler) } else { HttpDouble::start(handler) };
        UfmDouble { url: server.url, username: "admin".into(), password: "123456".into(), state }
    }

    pub fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn bad(m: impl Into<String>) -> (u16, Value) {
    (400, json!({"error": m.into()}))
}

/// A PKey as UFM takes it: a hex string strictly between 0x0 and 0x7fff.
fn pkey_arg(v: &Value) -> Result<u16, (u16, Value)> {
    let s = v.as_str().ok_or_else(|| bad("pkey must be a hex string"))?;
    let hex = s.strip_prefix("0x").ok_or_else(|| bad(format!("pkey {s}: not 0x-prefixed")))?;
    match u16::from_str_radix(hex, 16) {
        Ok(p) if p > 0 && p < 0x7fff => Ok(p),
        _ => Err(bad(format!("pkey {s}: must be between 0x0 and 0x7fff"))),
    }
}

fn guid_ok(g: &str) -> bool {
    (16..=20).contains(&g.len()) && g.chars().all(|c| c.is_ascii_hexdigit())
}

fn listing(p: &Pkey, guids: bool) -> Value {
    let mut m = Map::new();
    m.insert("partition".into(), json!(p.partition));
    m.insert("ip_over_ib".into(), json!(true));
    if guids {
        let g: Vec<Value> = p
            .guids
            .iter()
            .map(|(g, mem)| json!({"guid": g, "membership": mem, "index0": false}))
            .collect();
        m.insert("guids".into(), Value::Array(g));
    }
    Value::Object(m)
}

fn handle(s: &mut State, method: &str, target: &str, body: &[u8]) -> (u16, Value) {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let guids_data = query.split('&').any(|q| q == "guids_data=true");
    let body: Value = if body.is_empty() {
        Value::Null
    } else {
        match serde_json::from_slice(body) {
            Ok(v) => v,
            Err(e) => return bad(format!("malformed JSON: {e}")),
        }
    };
    let rest = path.strip_prefix("/ufmRest/resources/pkeys").unwrap_or("!");
    match (method, rest) {
        ("GET", "") => {
            let m: Map<String, Value> =
                s.pkeys.iter().map(|(k, p)| (format!("0x{k:x}"), listing(p, guids_data))).collect();
            (200, Value::Object(m))
        }
        ("POST", "/add") => {
            let pkey = match pkey_arg(&body["pkey"]) {
                Ok(p) => p,
                Err(e) => return e,
            };
            let name = body["partition_name"].as_str().unwrap_or_default().to_string();
            s.pkeys.entry(pkey).or_insert_with(|| Pkey { partition: name, ..Default::default() });
            (200, json!({}))
        }
        ("POST", "/") => {
            let pkey = match pkey_arg(&body["pkey"]) {
                Ok(p) => p,
                Err(e) => return e,
            };
            let membership = body["membership"].as_str().unwrap_or("full");
            if !["full", "limited"].contains(&membership) {
                return bad(format!("membership {membership}: full or limited"));
            }
            let Some(guids) = body["guids"].as_array() else { return bad("guids: a list") };
            let mut add = Vec::new();
            for g in guids {
                match g.as_str() {
                    Some(g) if guid_ok(g) => add.push(g.to_ascii_lowercase()),
                    _ => return bad(format!("guid {g}: 16-20 hex digits, no colons")),
                }
            }
            let p = s.pkeys.entry(pkey).or_default();
            for g in add {
                p.guids.insert(g, membership.to_string());
            }
            (200, json!({}))
        }
        (m, rest) if rest.starts_with('/') => {
            let mut seg = rest[1..].splitn(3, '/');
            let key = seg.next().unwrap_or_default();
            let pkey = match pkey_arg(&json!(key)) {
                Ok(p) => p,
                Err(e) => return e,
            };
            match (m, seg.next(), seg.next()) {
                // UFM answers an unknown PKey with 200 and `{}`.
                ("GET", None, None) => {
                    (200, s.pkeys.get(&pkey).map(|p| listing(p, guids_data)).unwrap_or(json!({})))
                }
                ("DELETE", None, None) => match s.pkeys.remove(&pkey) {
                    Some(_) => (200, json!({})),
                    None => (404, json!({"error": format!("pkey {key} not found")})),
                },
                ("DELETE", Some("guids"), Some(list)) => {
                    let Some(p) = s.pkeys.get_mut(&pkey) else {
                        return (404, json!({"error": format!("pkey {key} not found")}));
                    };
                    for g in list.split(',') {
                        if !guid_ok(g) {
                            return bad(format!("guid {g}: 16-20 hex digits, no colons"));
                        }
                        p.guids.remove(&g.to_ascii_lowercase());
                    }
                    (200, json!({}))
                }
                _ => (404, json!({"error": "no such resource"})),
            }
        }
        _ => (404, json!({"error": "no such resource"})),
    }
}
