//! A protocol-faithful Arista eAPI double, written from the eAPI guide and
//! pyeapi's client (no EOS runs here):
//!
//! - `POST /command-api` only, HTTP basic auth (401 otherwise).
//! - JSON-RPC 2.0: `{"jsonrpc": "2.0", "method": "runCmds", "params":
//!   {"version": 1, "cmds": [...], "format": "json"|"text"}, "id": ...}`.
//!   A body that is not JSON is error -32700, another method -32601, bad
//!   params -32602 (HTTP 200 with an `error` member, as eAPI answers).
//! - Commands run in order; the answer is one result per command (`{}` for
//!   configuration, `{"output": ...}` in text format). The first failing
//!   command stops the request: error 1002 `CLI command <i> of <n> '<cmd>'
//!   failed: invalid command`, `data` holding the results before it and
//!   `{"errors": [...]}` for it; what ran before it stays done.
//! - Modes: exec; `configure` edits the running configuration directly;
//!   `configure session <name>` edits a copy of it, kept pending across
//!   requests until `commit` (which replaces the running configuration) or
//!   `abort`; re-entering a pending session resumes it. `show
//!   session-config diffs` (in a session), `show running-config` (text or
//!   JSON), `copy running-config startup-config`.
//!
//! The configuration grammar is `cli`'s.

pub mod cli;

use cli::Node;
use neocloud_common::http_double::{HttpDouble, Request, Response};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

/// One `runCmds` as the double saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    pub cmds: Vec<String>,
    pub format: String,
}

#[derive(Debug, Default)]
pub struct State {
    /// The running configuration (edit it to change the switch behind the
    /// driver's back).
    pub running: Vec<Node>,
    pub startup: Vec<Node>,
    /// Pending configure sessions by name.
    pub sessions: BTreeMap<String, Vec<Node>>,
    /// Sessions committed, in order.
    pub committed: Vec<String>,
    pub calls: Vec<Call>,
    /// The physical interfaces the switch has.
    pub ports: Vec<String>,
}

impl State {
    /// The running configuration as `show running-config` prints it.
    pub fn running_text(&self) -> String {
        cli::text(&self.running)
    }

    /// The section of the running configuration with this header line.
    pub fn section(&self, line: &str) -> Option<&Node> {
        self.running.iter().find(|n| n.line == line)
    }
}

pub struct EosDouble {
    pub url: String,
    pub username: String,
    pub password: String,
    pub server: HttpDouble,
    state: Arc<Mutex<State>>,
}

impl EosDouble {
    /// A switch with `ports` (and `Management1`), reachable through eAPI.
    pub fn start(ports: &[String]) -> EosDouble {
        let mut running = vec![Node { line: "hostname localhost".into(), children: Vec::new() }];
        let mut all: Vec<String> = ports.to_vec();
        all.push("Management1".into());
        for p in &all {
            running.push(Node::new(&format!("interface {p}")));
        }
        let mgmt = running.last_mut().expect("Management1");
        mgmt.children.push(Node::new("ip address 192.168.0.10/24"));
        let mut api = Node::new("management api http-commands");
        api.children.push(Node::new("no shutdown"));
        running.push(api);
        let state = State { startup: running.clone(), running, ports: all, ..State::default() };
        let state = Arc::new(Mutex::new(state));
        let (user, password) = ("admin".to_string(), "arista".to_string());
        let (s, u, p) = (state.clone(), user.clone(), password.clone());
        let server = HttpDouble::start(move |req| {
            if !req.authorized(&u, &p) {
                return Response::text(
                    401,
                    "Unable to authenticate user: Bad username/password combination",
                );
            }
            if req.method != "POST" || req.path() != "/command-api" {
                return Response::text(404, "Not Found");
            }
            let mut st = s.lock().unwrap_or_else(|e| e.into_inner());
            Response::json(200, &rpc(&mut st, req))
        });
        EosDouble { url: server.url.clone(), username: user, password, server, state }
    }

    pub fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs configuration commands on the running configuration, as an
    /// operator at the console would (`configure terminal`; not an eAPI
    /// call, not recorded).
    pub fn console(&self, cmds: &[&str]) -> Result<(), String> {
        let mut st = self.state();
        let mut cli = Cli { session: None, stack: Some(Vec::new()) };
        for c in cmds {
            cli.run(&mut st, c, "json")?;
        }
        Ok(())
    }
}

fn rpc_error(id: &Value, code: i64, message: &str, data: Option<Vec<Value>>) -> Value {
    let mut e = json!({"code": code, "message": message});
    if let Some(d) = data {
        e["data"] = Value::Array(d);
    }
    json!({"jsonrpc": "2.0", "id": id, "error": e})
}

fn rpc(st: &mut State, req: &Request) -> Value {
    let body = match req.json() {
        Ok(b) if b.is_object() => b,
        _ => return rpc_error(&Value::Null, -32700, "Parse error", None),
    };
    let id = body["id"].clone();
    if body["jsonrpc"] != "2.0" {
        return rpc_error(&id, -32600, "Invalid request", None);
    }
    if body["method"] != "runCmds" {
        return rpc_error(&id, -32601, "Method not found", None);
    }
    let p = &body["params"];
    let version_ok = p["version"] == 1 || p["version"] == "latest";
    let format = p["format"].as_str().unwrap_or("json").to_string();
    let cmds: Option<Vec<String>> = p["cmds"].as_array().and_then(|c| {
        c.iter().map(|x| x.as_str().or_else(|| x["cmd"].as_str()).map(String::from)).collect()
    });
    let (Some(cmds), true, true) = (cmds, version_ok, format == "json" || format == "text") else {
        return rpc_error(&id, -32602, "Invalid params", None);
    };
    st.calls.push(Call { cmds: cmds.clone(), format: format.clone() });
    let mut results = Vec::new();
    let mut cli = Cli { session: None, stack: None };
    for (i, c) in cmds.iter().enumerate() {
        match cli.run(st, c, &format) {
            Ok(r) => results.push(r),
            Err(reason) => {
                let message = format!(
                    "CLI command {} of {} '{c}' failed: invalid command",
                    i + 1,
                    cmds.len()
                );
                results.push(json!({"errors": [reason]}));
                return rpc_error(&id, 1002, &message, Some(results));
            }
        }
    }
    json!({"jsonrpc": "2.0", "id": id, "result": results})
}

/// One request's CLI session: exec mode, or configuration mode (of the
/// running configuration, or of a named session) with its open sections.
struct Cli {
    session: Option<String>,
    /// `None`: exec mode.
    stack: Option<Vec<String>>,
}

impl Cli {
    fn run(&mut self, st: &mut State, cmd: &str, format: &str) -> Result<Value, String> {
        let cmd = cmd.split_whitespace().collect::<Vec<_>>().join(" ");
        let output =
            |text: String| if format == "text" { json!({"output": text}) } else { json!({}) };
        match cmd.as_str() {
            "enable" => return Ok(output(String::new())),
            "show running-config" => {
                return Ok(if format == "text" {
                    json!({"output": cli::text(&st.running)})
                } else {
                    cli::json(&st.running)
                })
            }
            "show session-config diffs" => {
                let Some(name) = &self.session else {
                    return Err("Invalid input (not in a configuration session)".into());
                };
                let diff = cli::diff(
                    &cli::text(&st.running),
                    &cli::text(&st.sessions[name]),
                    "system:/running-config",
                    &format!("session:/{name}-session-config"),
                );
                return Ok(output(diff));
            }
            _ => {}
        }
        let Some(stack) = &mut self.stack else {
            // Exec mode.
            if cmd == "configure" || cmd == "configure terminal" {
                self.stack = Some(Vec::new());
                return Ok(output(String::new()));
            }
            if let Some(name) = cmd.strip_prefix("configure session ") {
                if !st.sessions.contains_key(name) {
                    st.sessions.insert(name.to_string(), st.running.clone());
                }
                self.session = Some(name.to_string());
                self.stack = Some(Vec::new());
                return Ok(output(String::new()));
            }
            if cmd == "copy running-config startup-config" {
                st.startup = st.running.clone();
                return Ok(if format == "text" {
                    json!({"output": "Copy completed successfully.\n"})
                } else {
                    json!({"messages": ["Copy completed successfully."]})
                });
            }
            return Err("Invalid input".into());
        };
        match (cmd.as_str(), &self.session) {
            ("exit", _) if !stack.is_empty() => {
                stack.pop();
            }
            ("exit" | "end", _) => self.stack = None,
            ("commit", Some(name)) => {
                st.running = st.sessions.remove(name).expect("an open session");
                st.committed.push(name.clone());
                (self.session, self.stack) = (None, None);
            }
            ("abort", Some(name)) => {
                st.sessions.remove(name);
                (self.session, self.stack) = (None, None);
            }
            (_, session) => {
                let ports = st.ports.clone();
                let nodes = match session {
                    Some(name) => st.sessions.get_mut(name).expect("an open session"),
                    None => &mut st.running,
                };
                cli::configure(nodes, stack, &cmd, &ports)?;
            }
        }
        Ok(output(String::new()))
    }
}
