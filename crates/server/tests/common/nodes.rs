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
