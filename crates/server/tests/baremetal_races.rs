//! Races around a BMC reset, on both stores. The BMC here is SIMULATED
//! (`neocloud_server::simbmc`), because the races need a reset that takes
//! its time and a one-time boot override that a boot spends, which
//! sushy-tools' fake driver cannot be made to do; the Redfish driver itself
//! is tested against sushy-tools elsewhere. The tests drive their own
//! lifecycle controller and play the node's agent.

mod bm;
mod common;
#[path = "../../redfish/tests/common/mod.rs"]
mod peers;

use bm::*;
use common::nodes::{get_text, lifecycle, token_of};
use common::{Client, TestBackend, TestServer};
use neocloud_redfish::{Bmc, BmcConfig, BootTarget, ResetType};
use neocloud_server::controllers::lifecycle::LifecycleController;
use neocloud_server::secrets::SecretBox;
use neocloud_server::simbmc;
use serde_json::{json, Value};
use std::sync::atomic::Ordering;
use std::time::Duration;

/// A node `bm-1` behind simulated BMC `i`, an instance placed on it, and
/// the test's controller run until the node's next step is its power cycle.
/// Returns the controller, the tenant and the instance's id.
fn at_power_cycle(
    s: &TestServer,
    f: &Fleet,
    i: usize,
) -> (LifecycleController, SecretBox, Client, String) {
    let tenant = catalog(s, true);
    enroll_simulated(s, f, i);
    let (ctl, secrets) = controller(s);
    drive(&ctl, &secrets, s, "bm-1", "available");
    let id = create(&tenant, "job")["id"].as_str().unwrap().to_string();
    for _ in 0..5 {
        if lifecycle(s, "bm-1")["step"] == "power_cycle" {
            break;
        }
        ctl.run_once(&s.store, &secrets).unwrap();
    }
    let l = lifecycle(s, "bm-1");
    assert_eq!((&l["state"], &l["step"]), (&json!("provisioning"), &json!("power_cycle")));
    (ctl, secrets, tenant, id)
}

fn ipxe_token(s: &TestServer, i: usize) -> String {
    let (status, script) = get_text(&format!("{}/boot/ipxe?mac={}", s.url, simbmc::mac(i)));
    assert_eq!(status, 200, "{script}");
    token_of(&script)
}

/// A power cycle repeated after a crash lands just as the image its first
/// run booted is about to register (with the token it was served before
/// the step). The reset kills that image; its registration must not
/// succeed, or the node would be handed over on a dead agent while the live
/// one is refused. The controller replaces the token before resetting, so
/// the killed boot is refused and the boot the reset started registers.
#[test]
fn a_boot_killed_by_its_nodes_reset_cannot_register_and_the_next_boot_can() {
    let f = fleet();
    for (i, b) in TestBackend::ALL.into_iter().enumerate() {
        let Some(s) = server_without_controller(b) else { continue };
        let b = b.as_str();
        let (ctl, secrets, tenant, id) = at_power_cycle(&s, &f, i);
        let first = ipxe_token(&s, i);

        // The reset takes three seconds; meanwhile the image booted before
        // it tries to register with the token it was served.
        f.sim.reset_delay_ms.store(3000, Ordering::Relaxed);
        let (ctl_ref, s_ref, secrets_ref) = (&ctl, &s, &secrets);
        std::thread::scope(|scope| {
            let step = scope.spawn(move || ctl_ref.run_once(&s_ref.store, secrets_ref).unwrap());
            std::thread::sleep(Duration::from_secs(1));
            register_raw(s_ref, &first, "n1").expect(401);
            step.join().unwrap();
        });
        f.sim.reset_delay_ms.store(0, Ordering::Relaxed);
        let l = lifecycle(&s, "bm-1");
        assert_eq!((&l["state"], &l["step"]), (&json!("provisioning"), &json!("await_agent")));
        let second = ipxe_token(&s, i);
        assert_ne!(second, first, "[{b}] a fresh token for the boot the reset started");
        ctl.run_once(&s.store, &secrets).unwrap();
        assert_eq!(lifecycle(&s, "bm-1")["state"], "provisioning", "[{b}] no agent yet");
        // The new boot's agent registers, and the node is handed over.
        let reg = register_raw(&s, &second, "n1").expect(201).body;
        let agent = s.client(reg["credential"].as_str().unwrap());
        drive(&ctl, &secrets, &s, "bm-1", "active");
        heartbeat(&agent).expect(200);
        assert_eq!(instance(&tenant, &id)["state"], "ready", "[{b}]");
    }
}

/// A power cycle repeated after a crash (or after a reset that timed out
/// but was done) comes after the first reset's boot spent the one-time
/// network boot override. The repeated reset sets it again first, so the
/// node boots its image from the network again rather than its local disk
/// (where the node would wait out its boot timeout for an agent that never
/// comes).
#[test]
fn a_power_cycle_repeated_after_its_boot_spent_the_override_sets_it_again() {
    let f = fleet();
    for (i, b) in TestBackend::ALL.into_iter().enumerate() {
        let Some(s) = server_without_controller(b) else { continue };
        let b = b.as_str();
        let (ctl, secrets, _tenant, _id) = at_power_cycle(&s, &f, i);

        // The control plane that took this step reset the node and died
        // before recording it: the node booted from the network, which
        // spent the one-time override.
        let bmc =
            Bmc::new(BmcConfig::new(&simbmc::endpoint(&f.base, i), simbmc::USER, simbmc::PASSWORD));
        let system = "/redfish/v1/Systems/Host";
        assert!(bmc.system(system).unwrap().boots_to(BootTarget::Pxe), "[{b}]");
        let before = f.sim.network_boots.load(Ordering::Relaxed);
        bmc.reset(system, ResetType::On).unwrap();
        assert_eq!(f.sim.network_boots.load(Ordering::Relaxed), before + 1, "[{b}]");
        let spent = bmc.system(system).unwrap();
        assert!(!spent.boots_to(BootTarget::Pxe), "[{b}] {spent:?}");

        // The step is taken again: the node boots from the network again.
        ctl.run_once(&s.store, &secrets).unwrap();
        let l = lifecycle(&s, "bm-1");
        assert_eq!((&l["state"], &l["step"]), (&json!("provisioning"), &json!("await_agent")));
        assert_eq!(
            f.sim.network_boots.load(Ordering::Relaxed),
            before + 2,
            "[{b}] the repeated reset booted the local disk"
        );
    }
}

/// A release's sanitizer token is issued only once the node is read
/// powered off. Until its reset the released tenant's system still runs,
/// on the provisioning network, where the boot service serves the node's
/// script (and in it the sanitizer's token) to whoever asks by the node's
/// MAC: a token issued while it runs could be registered with, and the
/// tenant's system would then answer the sanitizer's steps itself. So the
/// power cycle forces the node off and reads it off before it issues the
/// token and powers the node on.
#[test]
fn a_released_tenants_system_is_off_before_the_sanitizers_token_exists() {
    let f = fleet();
    for (i, b) in TestBackend::ALL.into_iter().enumerate() {
        let Some(s) = server_without_controller(b) else { continue };
        let b = b.as_str();
        let (ctl, secrets, tenant, id) = at_power_cycle(&s, &f, i);
        ctl.run_once(&s.store, &secrets).unwrap();
        let reg = register_raw(&s, &ipxe_token(&s, i), "n1").expect(201).body;
        let agent = s.client(reg["credential"].as_str().unwrap());
        drive(&ctl, &secrets, &s, "bm-1", "active");
        heartbeat(&agent).expect(200);
        assert_eq!(instance(&tenant, &id)["state"], "ready", "[{b}]");
        assert!(f.sim.power_on(i), "[{b}] the tenant's system runs");

        release(&tenant, &id).expect(202);
        for _ in 0..10 {
            if lifecycle(&s, "bm-1")["step"] == "power_cycle" {
                break;
            }
            ctl.run_once(&s.store, &secrets).unwrap();
        }
        let script_now = || get_text(&format!("{}/boot/ipxe?mac={}", s.url, simbmc::mac(i))).1;
        let l = lifecycle(&s, "bm-1");
        assert_eq!((&l["state"], &l["step"]), (&json!("releasing"), &json!("power_cycle")));
        assert!(f.sim.power_on(i), "[{b}] still running the tenant's system");
        assert!(!script_now().contains("neocloud.token="), "[{b}] {}", script_now());

        // The tenant's credential died with the release.
        heartbeat(&agent).expect(401);

        // The power cycle: forced off and read off, then the token, then
        // power on; the sanitizer that boots registers with it.
        let released_at = neocloud_common::time::now_micros();
        ctl.run_once(&s.store, &secrets).unwrap();
        let l = lifecycle(&s, "bm-1");
        assert_eq!((&l["state"], &l["step"]), (&json!("releasing"), &json!("await_agent")));
        assert!(f.sim.power_on(i), "[{b}] powered on for the sanitizer");
        let off_at = f.sim.off_at(i).unwrap_or(0);
        assert!(off_at >= released_at, "[{b}] forced off by the power cycle");
        let node_id = common::nodes::node(&s, "bm-1")["id"].as_str().unwrap().to_string();
        let issued = s
            .store
            .read(|r| neocloud_store::agents::boot_token(r, &node_id))
            .unwrap()
            .expect("the sanitizer's token")
            .created_at;
        assert!(issued > off_at, "[{b}] the token exists only once the node was off");
        let token = ipxe_token(&s, i);
        let reg = register_raw(&s, &token, "n1").expect(201).body;
        let sanitizer = s.client(reg["credential"].as_str().unwrap());
        ctl.run_once(&s.store, &secrets).unwrap();
        assert_eq!(lifecycle(&s, "bm-1")["state"], "sanitizing", "[{b}]");
        // Its steps take a while; the record's start is its registration.
        std::thread::sleep(Duration::from_millis(1200));
        for st in heartbeat(&sanitizer).expect(200).body["steps"].as_array().unwrap() {
            report(&sanitizer, st["id"].as_str().unwrap(), true).expect(200);
        }
        // (Its simulated host shows no GPUs where the BMC shows 8: the
        // record is incomplete, and written all the same.)
        drive(&ctl, &secrets, &s, "bm-1", "failed");
        // Audited as the failure it is.
        let trail = s.admin().get("/v1/audit?limit=1000").expect(200).body;
        let failed: Vec<&Value> = trail["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["action"] == "node_failed")
            .collect();
        assert_eq!(failed.len(), 1, "[{b}] {failed:?}");
        assert_eq!(failed[0]["outcome"], "failed", "[{b}] {failed:?}");
        let rec = records(&tenant, &id).remove(0);
        let at = |k: &str| {
            let t = rec["body"][k].as_str().unwrap();
            neocloud_common::time::from_rfc3339(t).unwrap()
        };
        let took = at("finished_at") - at("started_at");
        assert!(took >= 1_200_000, "[{b}] the record spans the sanitizer's steps: {took} µs");
    }
}
