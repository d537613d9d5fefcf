//! Races around a BMC reset, on both stores. The BMC here is SIMULATED
//! (`neocloud_server::simbmc`), because the race needs a reset that takes
//! its time, which sushy-tools' fake driver cannot be made to do; the
//! Redfish driver itself is tested against sushy-tools elsewhere. The test
//! drives its own lifecycle controller and plays the node's agent.

mod bm;
mod common;
#[path = "../../redfish/tests/common/mod.rs"]
mod peers;

use bm::*;
use common::nodes::{get_text, lifecycle, token_of};
use common::TestBackend;
use neocloud_server::simbmc;
use serde_json::json;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// A power cycle repeated after a crash lands just after the image's agent
/// registered (its boot token is used while the reset is on its way): the
/// reset kills that agent. The controller revokes it and issues a fresh
/// token, so the boot the reset started registers and the node goes on,
/// rather than waiting on a dead agent while the live one is refused.
#[test]
fn an_agent_registered_while_its_node_is_reset_is_replaced_by_the_next_boot() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    // No boot URL: the simulated nodes do not boot by themselves; the test
    // plays their agents.
    let fleet = simbmc::SimFleet::new(None, Duration::ZERO);
    let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    rt.spawn(simbmc::serve(listener, fleet.clone(), std::future::pending::<()>()));
    for b in TestBackend::ALL {
        let Some(s) = server_without_controller(b) else { continue };
        let b = b.as_str();
        let tenant = catalog(&s, true);
        s.admin()
            .post(
                "/v1/nodes",
                &json!({"name": "bm-1", "site": "s", "pod": "p", "su": "su1", "rack": "r1",
                        "gpu_model": "h100-80gb", "gpus": 8,
                        "bmc": {"endpoint": simbmc::endpoint(&base, 0),
                                "username": simbmc::USER, "password": simbmc::PASSWORD}}),
            )
            .expect(201);
        let (ctl, secrets) = controller(&s);
        drive(&ctl, &secrets, &s, "bm-1", "available");
        let ipxe = || {
            let (status, script) = get_text(&format!("{}/boot/ipxe?mac={}", s.url, simbmc::mac(0)));
            assert_eq!(status, 200, "[{b}] {script}");
            script
        };
        let id = create(&tenant, "job")["id"].as_str().unwrap().to_string();
        for _ in 0..5 {
            if lifecycle(&s, "bm-1")["step"] == "power_cycle" {
                break;
            }
            ctl.run_once(&s.store, &secrets).unwrap();
        }
        let l = lifecycle(&s, "bm-1");
        assert_eq!((&l["state"], &l["step"]), (&json!("provisioning"), &json!("power_cycle")));
        let first = token_of(&ipxe());

        // The reset takes three seconds; meanwhile the booted image's agent
        // registers with the token.
        fleet.reset_delay_ms.store(3000, Ordering::Relaxed);
        let (ctl_ref, s_ref, secrets_ref) = (&ctl, &s, &secrets);
        let early = std::thread::scope(|scope| {
            let step = scope.spawn(move || ctl_ref.run_once(&s_ref.store, secrets_ref).unwrap());
            std::thread::sleep(Duration::from_secs(1));
            let reg = register_raw(s_ref, &first, "n1").expect(201).body;
            step.join().unwrap();
            s_ref.client(reg["credential"].as_str().unwrap())
        });
        fleet.reset_delay_ms.store(0, Ordering::Relaxed);
        let l = lifecycle(&s, "bm-1");
        assert_eq!((&l["state"], &l["step"]), (&json!("provisioning"), &json!("await_agent")));
        // That agent died with the reset: revoked, its token replaced.
        heartbeat(&early).expect(401);
        let second = token_of(&ipxe());
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
