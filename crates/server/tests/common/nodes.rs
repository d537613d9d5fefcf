//! The node side of bare-metal tests: reading what the boot service serves
//! and waiting for a node's lifecycle.

use super::TestServer;
use serde_json::Value;
use std::time::{Duration, Instant};

/// GET without authentication: (status, body), errors included.
pub fn get_text(url: &str) -> (u16, String) {
    match ureq::get(url).call() {
        Ok(r) => {
            let status = r.status();
            (status, r.into_string().unwrap())
        }
        Err(ureq::Error::Status(s, r)) => (s, r.into_string().unwrap_or_default()),
        Err(e) => panic!("GET {url}: {e}"),
    }
}

/// The one-time token in an iPXE script's kernel line.
pub fn token_of(script: &str) -> String {
    script
        .split_whitespace()
        .find_map(|w| w.strip_prefix("neocloud.token="))
        .unwrap_or_else(|| panic!("no token in {script}"))
        .to_string()
}

/// Polls `f` until it gives a value; fails the test after `timeout`.
pub fn wait_for<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The node as the provider sees it.
pub fn node(s: &TestServer, name: &str) -> Value {
    s.admin().get(&format!("/v1/nodes/{name}")).expect(200).body
}

pub fn lifecycle(s: &TestServer, name: &str) -> Value {
    node(s, name)["lifecycle"].clone()
}

/// Waits for the node's state (and step); a node that fails meanwhile
/// fails the test at once, unless `failed` is what is awaited.
pub fn wait_node(s: &TestServer, name: &str, state: &str, step: Option<&str>) -> Value {
    wait_for(&format!("{name} {state} {step:?}"), Duration::from_secs(60), || {
        let l = lifecycle(s, name);
        if state != "failed" {
            assert_ne!(l["state"], "failed", "{name} failed: {l}");
        }
        (l["state"] == state && step.is_none_or(|st| l["step"] == st)).then_some(l)
    })
}

/// A server's placement engine rebuilds from the store (its metrics).
pub fn engine_reloads(s: &TestServer) -> u64 {
    engine_counter(s, "reloads")
}

/// A counter of a server's placement engine (its metrics): `reloads`
/// (rebuilds from the store) or `replays` (catch-ups from the placement
/// log).
pub fn engine_counter(s: &TestServer, name: &str) -> u64 {
    let m = s.anonymous().get("/metrics").expect(200).text;
    let key = format!("neocloud_placement_engine_{name}_total ");
    m.lines()
        .find_map(|l| l.strip_prefix(key.as_str()))
        .unwrap_or_else(|| panic!("no {key}in {m}"))
        .parse()
        .unwrap()
}

/// Every one of `servers` reports the store's capacity: what an engine
/// built afresh from the store reports.
pub fn capacity_is_the_stores(servers: &[&TestServer], what: &str) {
    let fresh = servers[0].store.read(neocloud_server::placement::load).unwrap();
    let truth = serde_json::to_value(fresh.engine.capacity()).unwrap();
    for (i, s) in servers.iter().enumerate() {
        let seen = s.admin().get("/v1/capacity").expect(200).body;
        assert_eq!(seen, truth, "{what}: server {i}");
    }
}
