//! The agent library against a fake control plane: a small HTTP/1.1 server
//! on a local port implementing exactly the agent's three endpoints.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use neocloud_agent::{
    Agent, AgentError, Exit, Hardware, Host, Registration, Simulated, SimulatedConfig,
};
use neocloud_types::{
    AgentHeartbeat, AgentHeartbeatReply, AgentInventory, AgentRegister, AgentRegistered, AgentStep,
    AgentStepKind, AgentStepResult,
};
use serde_json::{json, Value};

const TOKEN: &str = "nct_one_time_token";
const CREDENTIAL: &str = "nca_agent_credential";

/// What the fake control plane does and saw.
#[derive(Default)]
struct State {
    /// Answer register with 401 (a used token).
    refuse_token: bool,
    /// The heartbeat interval given at registration (default 20 ms).
    interval_ms: Option<u64>,
    /// `next_heartbeat_ms` in every heartbeat answer.
    next_ms: Option<u64>,
    /// Answer this many registrations with 503 after recording them (the
    /// answer was lost).
    lose_registrations: u32,
    /// Answer this many heartbeats with 503 first.
    fail_heartbeats: u32,
    /// Answer the first report of each step with 500.
    fail_first_report: bool,
    /// Keep sending steps already reported (a lagging server).
    resend_reported: bool,
    registered: Vec<AgentRegister>,
    heartbeats: u32,
    bad_auth: u32,
    queued: Vec<AgentStep>,
    /// Step ids whose first report was refused.
    refused_once: Vec<String>,
    reported: Vec<(String, AgentStepResult)>,
    revoked: bool,
}

struct Fake {
    url: String,
    state: Arc<Mutex<State>>,
}

impl Fake {
    fn start(state: State) -> Fake {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(Mutex::new(state));
        let s = Arc::clone(&state);
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                let s = Arc::clone(&s);
                std::thread::spawn(move || serve(conn, &s));
            }
        });
        Fake { url, state }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap()
    }
}

fn sanitize_steps() -> Vec<AgentStep> {
    AgentStepKind::SANITIZE
        .iter()
        .enumerate()
        .map(|(i, k)| AgentStep {
            id: format!("stp_{i}_{}", k.as_str()),
            kind: *k,
            uefi_baseline: None,
            nic_baseline: None,
        })
        .collect()
}

/// Serves requests on one (keep-alive) connection until it closes.
fn serve(conn: TcpStream, state: &Mutex<State>) {
    let mut out = conn.try_clone().unwrap();
    let mut r = BufReader::new(conn);
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut parts = line.split_whitespace();
        let method = parts.next().unwrap_or("").to_string();
        let path = parts.next().unwrap_or("").to_string();
        let mut headers = HashMap::new();
        loop {
            let mut h = String::new();
            r.read_line(&mut h).unwrap();
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            let (k, v) = h.split_once(':').unwrap();
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
        assert!(!headers.contains_key("transfer-encoding"), "bodies have a length");
        let len: usize = headers.get("content-length").map_or(0, |l| l.parse().unwrap());
        let mut body = vec![0; len];
        r.read_exact(&mut body).unwrap();
        let auth = headers.get("authorization").cloned().unwrap_or_default();
        let (status, answer) = handle(state, &method, &path, &auth, &body);
        let text = answer.map(|v| v.to_string()).unwrap_or_default();
        let head = format!(
            "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            text.len()
        );
        out.write_all(head.as_bytes()).unwrap();
        out.write_all(text.as_bytes()).unwrap();
        out.flush().unwrap();
    }
}

fn error(code: &str, message: &str) -> Option<Value> {
    Some(json!({"error": {"code": code, "message": message, "request_id": "req_1"}}))
}

/// The fake control plane's logic.
fn handle(
    state: &Mutex<State>,
    method: &str,
    path: &str,
    auth: &str,
    body: &[u8],
) -> (u16, Option<Value>) {
    let mut s = state.lock().unwrap();
    assert_eq!(method, "POST", "{path}");
    if path == "/agent/v1/register" {
        let reg: AgentRegister = serde_json::from_slice(body).expect("an AgentRegister");
        s.registered.push(reg.clone());
        if s.refuse_token || reg.token != TOKEN {
            return (401, error("unauthenticated", "the provisioning token is invalid or used"));
        }
        if s.lose_registrations > 0 {
            s.lose_registrations -= 1;
            return (503, error("unavailable", "the answer was lost"));
        }
        let answer = AgentRegistered {
            agent_id: "agt_1".into(),
            node_id: "node_1".into(),
            credential: CREDENTIAL.into(),
            heartbeat_interval_ms: s.interval_ms.unwrap_or(20),
        };
        return (201, Some(serde_json::to_value(answer).unwrap()));
    }
    if auth != format!("Bearer {CREDENTIAL}") || s.revoked {
        s.bad_auth += u32::from(!s.revoked);
        return (401, error("unauthenticated", "credential revoked"));
    }
    if path == "/agent/v1/heartbeat" {
        let _hb: AgentHeartbeat = serde_json::from_slice(body).expect("an AgentHeartbeat");
        s.heartbeats += 1;
        if s.fail_heartbeats > 0 {
            s.fail_heartbeats -= 1;
            return (503, error("unavailable", "try again"));
        }
        // Every step is reported: the node is done, revoke.
        if !s.queued.is_empty() && s.reported.len() == s.queued.len() {
            s.revoked = true;
            return (401, error("unauthenticated", "credential revoked"));
        }
        // The steps not yet reported, every time (the agent must not rerun
        // those it has started).
        let reported: Vec<String> = s.reported.iter().map(|(id, _)| id.clone()).collect();
        let steps: Vec<AgentStep> = s
            .queued
            .iter()
            .filter(|st| s.resend_reported || !reported.contains(&st.id))
            .cloned()
            .collect();
        let reply = AgentHeartbeatReply { steps, next_heartbeat_ms: s.next_ms };
        return (200, Some(serde_json::to_value(reply).unwrap()));
    }
    if let Some(id) = path.strip_prefix("/agent/v1/steps/") {
        let result: AgentStepResult = serde_json::from_slice(body).expect("an AgentStepResult");
        if !s.queued.iter().any(|st| st.id == id) {
            return (404, error("not_found", "no such step"));
        }
        if s.fail_first_report && !s.refused_once.iter().any(|r| r == id) {
            s.refused_once.push(id.to_string());
            return (500, error("internal", "database hiccup"));
        }
        if s.reported.iter().any(|(r, _)| r == id) {
            return (409, error("conflict", "already reported"));
        }
        s.reported.push((id.to_string(), result));
        return (204, None);
    }
    (404, error("not_found", "no such route"))
}

fn kind_of(s: &State, id: &str) -> AgentStepKind {
    s.queued.iter().find(|st| st.id == id).unwrap().kind
}

fn quiet() -> neocloud_agent::Logger {
    Arc::new(|_: &str| {})
}

#[test]
fn registers_runs_each_step_once_in_order_and_stops_when_revoked() {
    let fake = Fake::start(State {
        queued: sanitize_steps(),
        fail_heartbeats: 2,
        fail_first_report: true,
        resend_reported: true,
        ..State::default()
    });
    let sim = Arc::new(Simulated::new(SimulatedConfig::new("node-1")));
    let hw: Arc<dyn Hardware> = sim.clone();
    let agent = Agent::register_with_log(&fake.url, TOKEN, hw, quiet()).unwrap();
    assert_eq!(agent.credential(), CREDENTIAL);
    assert_eq!(agent.node_id(), "node_1");
    assert_eq!(agent.heartbeat_interval(), Duration::from_millis(20));

    let stop = AtomicBool::new(false);
    let t = Instant::now();
    let exit = agent.run(&stop).unwrap();
    assert_eq!(exit, Exit::Revoked);
    assert!(t.elapsed() < Duration::from_secs(5), "took {:?}", t.elapsed());

    let s = fake.state();
    assert_eq!(s.registered.len(), 1);
    assert_eq!(s.registered[0].token, TOKEN);
    assert_eq!(s.registered[0].inventory, sim.inventory(), "the inventory was sent");
    assert_eq!(s.bad_auth, 0, "every call after register carried the credential");
    assert!(s.heartbeats >= 4, "{} heartbeats (two failed, retried)", s.heartbeats);
    let kinds: Vec<AgentStepKind> = s.reported.iter().map(|(id, _)| kind_of(&s, id)).collect();
    assert_eq!(kinds, AgentStepKind::SANITIZE, "reported in order");
    assert_eq!(
        s.refused_once.len(),
        AgentStepKind::SANITIZE.len(),
        "each report was retried after a 500"
    );
    // Steps were re-sent by every heartbeat, even once reported, yet each
    // ran once.
    assert_eq!(sim.steps_run(), AgentStepKind::SANITIZE);
    let (_, wipe) = &s.reported[0];
    assert!(wipe.ok);
    assert_eq!(wipe.items.len(), 2, "one item per simulated disk");
    let (_, reset) = &s.reported[1];
    assert_eq!(reset.items.len(), 16, "a reset and a memory overwrite per simulated GPU");
    assert!(s
        .reported
        .iter()
        .all(|(_, r)| r.ok && r.items.iter().all(|i| i.method == "simulated")));
}

#[test]
fn a_failed_step_is_reported_as_failed() {
    let fake = Fake::start(State { queued: sanitize_steps(), ..State::default() });
    let mut c = SimulatedConfig::new("node-2");
    c.fail_step = Some(AgentStepKind::WipeDisks);
    let agent =
        Agent::register_with_log(&fake.url, TOKEN, Arc::new(Simulated::new(c)), quiet()).unwrap();
    assert_eq!(agent.run(&AtomicBool::new(false)).unwrap(), Exit::Revoked);
    let s = fake.state();
    let ok: Vec<bool> = s.reported.iter().map(|(_, r)| r.ok).collect();
    assert_eq!(ok, [false, true, true, true, true, true]);
}

/// A scratch file standing in for a disk, removed when dropped.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn the_real_host_wipes_its_disk_when_told() {
    let disk = Scratch(
        std::env::temp_dir().join(format!("neocloud-agent-protocol-{}.img", std::process::id())),
    );
    std::fs::write(&disk.0, vec![0xa5u8; 300_000]).unwrap();
    let fake = Fake::start(State {
        queued: vec![AgentStep {
            id: "stp_wipe".into(),
            kind: AgentStepKind::WipeDisks,
            uefi_baseline: None,
            nic_baseline: None,
        }],
        ..State::default()
    });
    let host = Arc::new(Host::without_gpus(vec![disk.0.clone()]));
    let agent = Agent::register_with_log(&fake.url, TOKEN, host, quiet()).unwrap();
    let handle = agent.spawn(Arc::new(AtomicBool::new(false)));
    assert_eq!(handle.join().unwrap().unwrap(), Exit::Revoked);

    let s = fake.state();
    let inv: &AgentInventory = &s.registered[0].inventory;
    assert_eq!(inv.disks.len(), 1);
    assert_eq!(inv.disks[0].bytes, 300_000);
    assert!(inv.gpus.is_empty());
    let (id, r) = &s.reported[0];
    assert_eq!(id, "stp_wipe");
    assert!(r.ok, "{r:?}");
    assert_eq!(r.items[0].method, "overwrite");
    assert!(std::fs::read(&disk.0).unwrap().iter().all(|&b| b == 0), "the disk is all zeros");
}

/// Polls `cond` until it holds, or panics after `limit`.
fn wait_until(what: &str, limit: Duration, cond: impl Fn() -> bool) {
    let t = Instant::now();
    while !cond() {
        assert!(t.elapsed() < limit, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn stop_is_honored_quickly() {
    // Heartbeats go on at the 20 ms interval until stopped.
    let fake = Fake::start(State::default());
    let hw = Arc::new(Simulated::new(SimulatedConfig::new("node-3")));
    let agent = Agent::register_with_log(&fake.url, TOKEN, hw, quiet()).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let handle = agent.spawn(Arc::clone(&stop));
    wait_until("three heartbeats", Duration::from_secs(30), || fake.state().heartbeats >= 3);
    stop.store(true, Ordering::Relaxed);
    assert_eq!(handle.join().unwrap().unwrap(), Exit::Stopped);

    // With a minute between heartbeats, a stop is honored in the wait, not
    // at the next heartbeat (the bound leaves room for a loaded machine).
    let fake = Fake::start(State { interval_ms: Some(60_000), ..State::default() });
    let hw = Arc::new(Simulated::new(SimulatedConfig::new("node-3")));
    let agent = Agent::register_with_log(&fake.url, TOKEN, hw, quiet()).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let handle = agent.spawn(Arc::clone(&stop));
    wait_until("the first heartbeat", Duration::from_secs(30), || fake.state().heartbeats >= 1);
    let t = Instant::now();
    stop.store(true, Ordering::Relaxed);
    assert_eq!(handle.join().unwrap().unwrap(), Exit::Stopped);
    assert!(t.elapsed() < Duration::from_secs(10), "took {:?}", t.elapsed());
    assert_eq!(fake.state().heartbeats, 1, "no heartbeat before the interval");
}

/// Steps queued together run back to back: one heartbeat brings them, one
/// after the last report asks what comes next, none in between.
#[test]
fn queued_steps_run_back_to_back_with_one_heartbeat_after_the_last() {
    let fake = Fake::start(State {
        queued: sanitize_steps(),
        interval_ms: Some(60_000),
        ..State::default()
    });
    let sim = Arc::new(Simulated::new(SimulatedConfig::new("node-5")));
    let hw: Arc<dyn Hardware> = sim.clone();
    let agent = Agent::register_with_log(&fake.url, TOKEN, hw, quiet()).unwrap();
    let handle = agent.spawn(Arc::new(AtomicBool::new(false)));
    // With a minute between heartbeats, only the immediate ones can end it.
    assert_eq!(handle.join().unwrap().unwrap(), Exit::Revoked);
    let s = fake.state();
    assert_eq!(sim.steps_run(), AgentStepKind::SANITIZE);
    assert_eq!(s.reported.len(), AgentStepKind::SANITIZE.len());
    assert_eq!(s.heartbeats, 2, "one to get the steps, one after the last report");
}

#[test]
fn a_refused_token_is_a_permanent_error() {
    let fake = Fake::start(State { refuse_token: true, ..State::default() });
    let hw = Arc::new(Simulated::new(SimulatedConfig::new("node-4")));
    let err = Agent::register_with_log(&fake.url, TOKEN, hw, quiet()).err().unwrap();
    assert!(matches!(&err, AgentError::TokenRefused(f) if f.status == 401), "{err:?}");
    assert!(!err.is_transient());
    let msg = err.to_string();
    assert!(msg.contains("token was refused"), "{msg}");
    assert!(msg.contains("unauthenticated"), "the code is shown: {msg}");
    assert!(msg.contains("invalid or used"), "the message is shown: {msg}");
    let s = fake.state();
    assert_eq!(s.registered.len(), 1, "registration is not retried by the library");
    assert_eq!(s.heartbeats, 0);
}

/// Retrying a registration whose answer was lost proposes the same
/// credential, so the control plane can tell it is the same agent.
#[test]
fn a_retried_registration_proposes_the_same_credential() {
    let fake = Fake::start(State { lose_registrations: 2, ..State::default() });
    let hw: Arc<dyn Hardware> = Arc::new(Simulated::new(SimulatedConfig::new("node-1")));
    let reg = Registration::new(&fake.url, TOKEN).unwrap();
    let mut tries = 0;
    let agent = loop {
        tries += 1;
        match reg.attempt(hw.clone(), quiet()) {
            Ok(a) => break a,
            Err(e) if e.is_transient() && tries < 5 => continue,
            Err(e) => panic!("registration: {e}"),
        }
    };
    assert_eq!(tries, 3);
    // This fake chooses its own credential: the agent uses the answer's.
    assert_eq!(agent.credential(), CREDENTIAL);
    let s = fake.state();
    let proposed: Vec<String> =
        s.registered.iter().map(|r| r.credential.clone().expect("proposed")).collect();
    assert_eq!(proposed.len(), 3);
    assert!(proposed.iter().all(|c| c == &proposed[0]), "{proposed:?}");
    assert!(
        proposed[0].len() == 64 && proposed[0].chars().all(|c| c.is_ascii_hexdigit()),
        "{}",
        proposed[0]
    );
    // A new registration (a new boot) proposes another.
    let other = Registration::new(&fake.url, TOKEN).unwrap();
    drop(s);
    other.attempt(hw, quiet()).unwrap();
    let s = fake.state();
    assert_ne!(s.registered.last().unwrap().credential.as_deref(), Some(proposed[0].as_str()));
}

/// The control plane can ask for the next heartbeat sooner than the
/// interval (a sanitizer waiting for its steps) or later (a sanitizer with
/// every step reported), and the agent does.
#[test]
fn a_heartbeat_answer_can_say_when_the_next_one_comes() {
    let cases = [
        (60_000, Some(10), 5, u32::MAX),
        (60_000, None, 1, 1),
        (20, Some(60_000), 1, 1),
        (20, None, 5, u32::MAX),
    ];
    for (interval, next, at_least, at_most) in cases {
        let fake =
            Fake::start(State { interval_ms: Some(interval), next_ms: next, ..State::default() });
        let hw = Arc::new(Simulated::new(SimulatedConfig::new("node-4")));
        let agent = Agent::register_with_log(&fake.url, TOKEN, hw, quiet()).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let handle = agent.spawn(Arc::clone(&stop));
        std::thread::sleep(Duration::from_millis(300));
        stop.store(true, Ordering::Relaxed);
        assert_eq!(handle.join().unwrap().unwrap(), Exit::Stopped);
        let beats = fake.state().heartbeats;
        assert!(
            (at_least..=at_most).contains(&beats),
            "{interval} ms, {next:?}: {beats} heartbeats"
        );
    }
}
