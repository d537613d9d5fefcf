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

use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
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
        let listener = TcpListener::bind("127.0.0.1:0").expect("a loopback port");
        let url = format!("http://{}", listener.local_addr().expect("bound"));
        let state = Arc::new(Mutex::new(State::default()));
        let s = state.clone();
        let auth = format!("Basic {}", neocloud_common::encoding::base64("admin:123456"));
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let (s, auth) = (s.clone(), auth.clone());
                std::thread::spawn(move || serve(conn, &s, &auth));
            }
        });
        UfmDouble { url, username: "admin".into(), password: "123456".into(), state }
    }

    pub fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn serve(conn: TcpStream, state: &Mutex<State>, auth: &str) {
    let Ok(mut out) = conn.try_clone() else { return };
    let mut r = BufReader::new(conn);
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut parts = line.split_whitespace();
        let method = parts.next().unwrap_or("").to_string();
        let target = parts.next().unwrap_or("").to_string();
        let (mut len, mut authorization) = (0usize, String::new());
        loop {
            let mut h = String::new();
            if r.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                match k.trim().to_ascii_lowercase().as_str() {
                    "content-length" => len = v.trim().parse().unwrap_or(0),
                    "authorization" => authorization = v.trim().to_string(),
                    _ => {}
                }
            }
        }
        let mut body = vec![0; len];
        if r.read_exact(&mut body).is_err() {
            return;
        }
        let (status, answer) = if authorization != auth {
            (401, json!({"error": "Unauthorized"}))
        } else {
            let mut s = state.lock().unwrap_or_else(|p| p.into_inner());
            s.requests.push(format!("{method} {target}"));
            handle(&mut s, &method, &target, &body)
        };
        let text = answer.to_string();
        let head = format!(
            "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            text.len()
        );
        if out.write_all(head.as_bytes()).and_then(|_| out.write_all(text.as_bytes())).is_err() {
            return;
        }
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
