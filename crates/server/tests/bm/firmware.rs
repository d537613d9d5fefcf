//! What the firmware tests share: the SIMULATED model, the record's
//! firmware items, the baseline's compliance view, the audit trail of
//! `bm-1`, and a paced controller.

use super::{actions, check};
use crate::common::nodes::lifecycle;
use crate::common::TestServer;
use serde_json::Value;

pub const MODEL: &str = "Simulated HGX H100";
pub const TENANT_BIOS: &str = "SIM-BIOS-0.9-tenant";

pub fn firmware_item<'a>(rec: &'a Value, component: &str) -> &'a Value {
    let c = check(rec, "firmware_baseline");
    c["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["target"] == component)
        .unwrap_or_else(|| panic!("no {component} in {c}"))
}

/// The provider's view of the baseline `sim-hgx`'s nodes.
pub fn compliance(s: &TestServer) -> Vec<Value> {
    let l = s.admin().get("/v1/firmware-baselines/sim-hgx/nodes").expect(200).body;
    l["items"].as_array().cloned().unwrap_or_default()
}

/// The audit trail's actions on `bm-1`.
pub fn audit_of_bm1(s: &TestServer) -> Vec<String> {
    let id = crate::common::nodes::node(s, "bm-1")["id"].as_str().unwrap().to_string();
    actions(s, &format!("/v1/nodes/{id}"))
}

/// Runs the test's controller, paced (the BMC's tasks take their time),
/// until the node is in `state`.
pub fn drive_paced(
    h: (
        &neocloud_server::controllers::lifecycle::LifecycleController,
        &neocloud_server::secrets::SecretBox,
    ),
    s: &TestServer,
    state: &str,
) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while std::time::Instant::now() < deadline {
        if lifecycle(s, "bm-1")["state"] == state {
            return;
        }
        h.0.run_once(&s.store, h.1).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    panic!("bm-1 is not {state}: {}", lifecycle(s, "bm-1"));
}
