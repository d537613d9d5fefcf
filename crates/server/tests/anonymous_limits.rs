//! Failed credentials are rate-limited per client address: past the limit
//! they get 429 and stop writing audit events, so they cannot flood the
//! provider's chain. Valid tokens from the same address are unaffected.

mod common;

use common::{TestBackend, TestServer};
use serde_json::json;

#[test]
fn failed_credentials_are_limited_per_address() {
    for b in TestBackend::ALL {
        let Some(s) = TestServer::start_with(b, |c| {
            c.anonymous_rate_limit_per_sec = 1;
            c.anonymous_rate_limit_burst = 5;
        }) else {
            continue;
        };
        let b = b.as_str();
        let audit_len = || {
            s.admin().get("/v1/audit?limit=1000").expect(200).body["items"]
                .as_array()
                .unwrap()
                .len()
        };
        let before = audit_len();
        let bad = s.client("nc_not-a-token");
        let mut statuses = Vec::new();
        for i in 0..12 {
            statuses.push(bad.post("/v1/tenants", &json!({"name": format!("x{i}")})).status);
        }
        let unauth = statuses.iter().filter(|&&st| st == 401).count();
        let limited = statuses.iter().filter(|&&st| st == 429).count();
        assert_eq!(unauth + limited, 12, "[{b}] {statuses:?}");
        assert!((5..=6).contains(&unauth), "[{b}] burst of 5 (+1 refill): {statuses:?}");
        // Only the 401s were recorded.
        assert_eq!(audit_len() - before, unauth, "[{b}]");
        // A valid token from the same address still works.
        s.admin().post("/v1/tenants", &json!({"name": "ok"})).expect(201);
        let m = s.anonymous().get("/metrics").expect(200);
        assert!(
            m.text.contains("neocloud_audit_events_total{outcome=\"dropped_rate_limited\"}"),
            "[{b}]"
        );
    }
}
