//! Unit tests of the controller's scheduling and its reasons.
use super::writes::without_addresses;
use super::*;

#[test]
fn a_tenants_reason_names_no_address_of_the_providers() {
    let e = "BMC unreachable: /redfish/v1/Systems/1: http://10.0.0.5:8443/redfish/v1/Systems/1: \
             Connection Failed (after 3 retries); see https://bmc-7.dc/x and 'http://[fd00::1]'";
    assert_eq!(
        without_addresses(e),
        "BMC unreachable: /redfish/v1/Systems/1: <BMC>/redfish/v1/Systems/1: \
         Connection Failed (after 3 retries); see <BMC>/x and '<BMC>'"
    );
    assert_eq!(without_addresses("no URL here"), "no URL here");
    assert_eq!(without_addresses("http://"), "<BMC>");
}

/// The signal a held heartbeat waits on keeps a notification sent
/// before the wait began (steps queued between its read and its wait).
#[test]
fn a_held_heartbeat_is_signalled_when_steps_are_queued() {
    let ctl = LifecycleController::new(None, Arc::new(Signer::from_seed([1; 32])));
    let signal = ctl.steps_signal("agt_1");
    assert!(Arc::ptr_eq(&signal, &ctl.steps_signal("agt_1")), "one signal per agent");
    ctl.steps_queued("agt_1");
    let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
    rt.block_on(async { tokio::time::timeout(Duration::from_secs(5), signal.notified()).await })
        .expect("signalled");
    // Used up: the next wait gets a fresh signal.
    assert!(!Arc::ptr_eq(&signal, &ctl.steps_signal("agt_1")));
    ctl.forget_steps_signal("agt_1");
    assert!(ctl.step_signals.lock().unwrap().is_empty());
}

/// Claims are node ids, read once held: a node gone by then (deleted
/// after the pass listed it) is not stepped and its claim is released.
#[test]
fn a_claimed_node_deleted_before_its_step_is_skipped_and_unclaimed() {
    let (store, _db) =
        neocloud_store::testing::fresh_store(neocloud_store::testing::TestBackend::Sqlite)
            .expect("SQLite is always available");
    let dir = std::env::temp_dir().join(format!("neocloud-claim-{}", neocloud_common::new_id()));
    let secrets = SecretBox::load_or_create(&dir).unwrap();
    let ctl = LifecycleController::new(None, Arc::new(Signer::from_seed([1; 32])));
    ctl.nudge("node_gone");
    let claimed = ctl.claim(&store, false).unwrap();
    assert_eq!(claimed, vec!["node_gone".to_string()]);
    assert!(ctl.in_flight.lock().unwrap().contains("node_gone"), "held while stepped");
    assert_eq!(ctl.step_node_chained(&store, &secrets, "node_gone").unwrap(), Outcome::Nothing);
    assert!(ctl.in_flight.lock().unwrap().is_empty(), "claim released");
    assert!(ctl.claim(&store, true).unwrap().is_empty(), "no work in an empty store");
    let _ = std::fs::remove_dir_all(&dir);
}

/// News for a node whose step read before it came: the step rests the
/// node after the nudge; a full pass (which skips resting nodes) must
/// leave the nudge for the next nudged pass, or the node waits out its
/// rest (up to 8 s).
#[test]
fn a_nudge_outlives_a_full_pass_that_skips_its_resting_node() {
    let (store, _db) =
        neocloud_store::testing::fresh_store(neocloud_store::testing::TestBackend::Sqlite)
            .expect("SQLite is always available");
    let ctl = LifecycleController::new(None, Arc::new(Signer::from_seed([1; 32])));
    ctl.nudge("booted");
    ctl.rest("booted", std::time::Duration::from_secs(60));
    assert!(ctl.claim(&store, true).unwrap().is_empty(), "resting: not in the full pass");
    assert_eq!(ctl.claim(&store, false).unwrap(), vec!["booted".to_string()]);
}

#[test]
fn gpu_models_map_to_keys() {
    assert_eq!(gpu_model_key("NVIDIA H100 80GB HBM3"), "h100-80gb");
    assert_eq!(gpu_model_key("NVIDIA A100-SXM4-40GB"), "a100-40gb");
    assert_eq!(gpu_model_key("NVIDIA H200"), "h200-141gb");
    assert_eq!(gpu_model_key("NVIDIA L40S"), "l40s");
    assert!(sla("inspecting").is_some());
    assert!(sla("available").is_none());
    for s in NodeLifecycle::NAMES {
        let _ = sla(s);
    }
}
