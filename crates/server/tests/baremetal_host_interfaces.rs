//! The BMC's host interfaces (`bmc_host_interfaces`): the host's channel
//! to its BMC's Redfish service, over which a tenant with root on the host
//! would reach the BMC (and, with credential bootstrapping on, obtain BMC
//! credentials without knowing any). Under the default `disabled` policy a
//! clean node's inspection turns every one off before the node joins the
//! pool, and every sanitization turns off any found on again; each read
//! back. A BMC that keeps one on fails the node: it goes to no one.
//!
//! Against the SIMULATED BMC (its host interface, and its credential
//! bootstrapping, really change) and sushy-static serving the DGX mockup
//! (a host interface that answers a PATCH with 204 and changes nothing).
//! The tests drive their own lifecycle controller and play the node's
//! agents.

mod bm;
mod common;
#[path = "../../redfish/tests/common/mod.rs"]
mod peers;

use bm::*;
use common::nodes::lifecycle;
use common::TestBackend;
use neocloud_server::config::HostInterfacePolicy;
use serde_json::{json, Value};

const SIM_HI: &str = "/redfish/v1/Managers/BMC/HostInterfaces/1";

fn audit_trail(s: &common::TestServer) -> String {
    s.admin().get("/v1/audit?limit=1000").expect(200).text
}

#[test]
fn host_interfaces_are_turned_off_at_enrollment_and_after_every_tenant() {
    let f = fleet();
    for (i, b) in TestBackend::ALL.into_iter().enumerate() {
        let Some(s) = server_without_controller(b) else { continue };
        let b = b.as_str();
        assert!(f.sim.host_interface(i), "[{b}] the simulated BMC leaves the factory with it on");
        let (h, hw) = simulated_node(&s, &f, i);
        // Off before the node joins the pool; the inventory shows it as left.
        assert!(!f.sim.host_interface(i), "[{b}] turned off at inspection");
        assert_eq!(
            hw["bmc"]["host_interfaces"],
            json!([{"id": "1", "interface_type": "NetworkHostInterface", "enabled": false,
                    "credential_bootstrapping": false}]),
            "[{b}] {hw}"
        );
        assert!(
            audit_trail(&s).contains("node_host_interfaces_disabled"),
            "[{b}] the change is audited"
        );

        let id = h.provision("job");
        // The tenant turns it back on from the host (in-band IPMI).
        f.sim.set_host_interface(i, true);
        let l = h.release(&id);
        assert_eq!(l["state"], "available", "[{b}] {l}");
        assert!(!f.sim.host_interface(i), "[{b}] off again");
        let rec = &record(&h, &id, true);
        let c = check(rec, "host_interfaces");
        assert_eq!(c["ok"], true, "[{b}] {c}");
        assert_eq!(c["items"][0]["target"], SIM_HI, "[{b}] {c}");
        assert_eq!(c["items"][0]["method"], "redfish-patch", "[{b}] {c}");
        assert_eq!(
            item_detail(c, 0),
            "host interface 1 (NetworkHostInterface), credential bootstrapping on, was on: \
             turned off",
            "[{b}] {c}"
        );
        assert_eq!(item_detail(c, 1), "1 host interface(s), every one off", "[{b}] {c}");

        // The next tenant leaves it off: nothing to do.
        let id = h.provision("next");
        assert_eq!(h.release(&id)["state"], "available", "[{b}]");
        let c = check(&record(&h, &id, true), "host_interfaces").clone();
        assert_eq!(c["items"].as_array().map(Vec::len), Some(1), "[{b}] {c}");
        assert_eq!(item_detail(&c, 0), "1 host interface(s), every one off", "[{b}] {c}");
        let m = h.ctl.render_metrics();
        assert!(
            m.contains("neocloud_sanitization_records_total{outcome=\"complete\"} 2\n"),
            "[{b}] {m}"
        );
        assert!(!m.contains("neocloud_sanitization_checks_failed_total{"), "[{b}] {m}");
    }
}

#[test]
fn unmanaged_host_interfaces_are_left_as_the_bmc_has_them() {
    let f = fleet();
    for (i, b) in TestBackend::ALL.into_iter().enumerate() {
        let Some(s) = server_without_controller(b) else { continue };
        let b = b.as_str();
        let (h, hw) =
            simulated_node_with(&s, &f, i, |c| c.host_interfaces = HostInterfacePolicy::Unmanaged);
        assert!(f.sim.host_interface(i), "[{b}] left on");
        assert_eq!(hw["bmc"]["host_interfaces"][0]["enabled"], true, "[{b}] reported: {hw}");
        assert_eq!(hw["bmc"]["host_interfaces"][0]["credential_bootstrapping"], true, "[{b}]");
        assert!(!audit_trail(&s).contains("node_host_interfaces_disabled"), "[{b}]");

        let id = h.provision("job");
        assert_eq!(h.release(&id)["state"], "available", "[{b}]");
        assert!(f.sim.host_interface(i), "[{b}] still on");
        let c = check(&record(&h, &id, true), "host_interfaces").clone();
        assert_eq!(c["ok"], true, "[{b}] {c}");
        assert_eq!(
            item_detail(&c, 0),
            "1 on, 0 off: left as the BMC has them (bmc_host_interfaces = unmanaged)",
            "[{b}] {c}"
        );
    }
}

#[test]
fn the_servers_configuration_sets_the_policy() {
    let f = fleet();
    for (i, b) in TestBackend::ALL.into_iter().enumerate() {
        let Some(s) = common::TestServer::start_with(b, |c| {
            tweak(c, 30);
            c.bmc_host_interfaces = HostInterfacePolicy::Unmanaged;
        }) else {
            continue;
        };
        let b = b.as_str();
        // The server's own controller, as configured.
        enroll_simulated(&s, &f, 10 + i);
        common::nodes::wait_node(&s, "bm-1", "available", None);
        assert!(f.sim.host_interface(10 + i), "[{b}] left on (unmanaged)");
    }
}

/// Sets the DGX mockup's host interface on or off (and its credential
/// bootstrapping), as the BMC would then report it.
fn set_static_host_interface(file: &std::path::Path, on: bool) {
    let mut v: Value = serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
    v["InterfaceEnabled"] = json!(on);
    v["CredentialBootstrapping"]["Enabled"] = json!(on);
    std::fs::write(file, v.to_string()).unwrap();
}

#[test]
fn a_host_interface_the_bmc_keeps_on_fails_the_node() {
    let mockup = peers::mockup_copy_logs_cleared("dgx-h100");
    let Some(bmc) = peers::StaticBmc::start_dir(mockup.path()) else { return };
    let file = mockup.path().join("Managers/BMC/HostInterfaces/Self/index.json");
    for b in TestBackend::ALL {
        let Some(s) = server_without_controller(b) else { continue };
        let b = b.as_str();
        // At enrollment: this BMC does not turn it off (sushy-static takes
        // the PATCH and changes nothing), so the node never joins the pool.
        set_static_host_interface(&file, true);
        s.admin()
            .post(
                "/v1/nodes",
                &json!({"name": "bm-1", "site": "s", "pod": "p", "su": "su1", "rack": "r1",
                        "gpu_model": "h100-80gb", "gpus": 8,
                        "bmc": {"endpoint": bmc.url, "username": "neocloud", "password": "pw"}}),
            )
            .expect(201);
        let (ctl, secrets) = controller(&s);
        drive(&ctl, &secrets, &s, "bm-1", "failed");
        let l = lifecycle(&s, "bm-1");
        assert_eq!(
            l["reason"],
            "the BMC keeps a channel from the host open (bmc_host_interfaces = disabled): host \
             interface Self (NetworkHostInterface), credential bootstrapping on, was on: still on \
             after turning it off",
            "[{b}] {l}"
        );
        assert_eq!(free_nodes(&s), 0, "[{b}]");
        assert!(
            bmc.log().contains("PATCH /redfish/v1/Managers/BMC/HostInterfaces/Self"),
            "[{b}] the change was sent"
        );
        s.admin().delete("/v1/nodes/bm-1").expect(204);

        // Off at enrollment; a tenant turns it on and the BMC keeps it on:
        // the sanitization fails, the rest of the record in order.
        set_static_host_interface(&file, false);
        let (h, hw) = static_node(&s, &bmc.url, mockup.path());
        assert_eq!(hw["bmc"]["host_interfaces"][0]["enabled"], false, "[{b}] {hw}");
        let id = h.provision("job");
        set_static_host_interface(&file, true);
        let l = h.release(&id);
        assert_eq!(l["state"], "failed", "[{b}] {l}");
        assert!(
            l["reason"]
                .as_str()
                .unwrap()
                .contains("sanitization incomplete: host_interfaces failed"),
            "[{b}] {l}"
        );
        let rec = &record(&h, &id, false);
        let c = check(rec, "host_interfaces");
        assert_eq!(c["ok"], false, "[{b}] {c}");
        assert_eq!(c["items"][0]["target"], "/redfish/v1/Managers/BMC/HostInterfaces/Self");
        assert!(item_detail(c, 0).ends_with("still on after turning it off"), "[{b}] {c}");
        for name in ["wipe_disks", "secure_boot", "bmc_accounts", "clear_boot_override"] {
            assert_eq!(check(rec, name)["ok"], true, "[{b}] {name}: {rec}");
        }
        assert_eq!(free_nodes(&s), 0, "[{b}]");
        // Counted for the provider's monitoring: which check fails.
        let m = h.ctl.render_metrics();
        for want in [
            "neocloud_sanitization_records_total{outcome=\"incomplete\"} 1\n",
            "neocloud_sanitization_records_total{outcome=\"complete\"} 0\n",
            "neocloud_sanitization_checks_failed_total{check=\"host_interfaces\"} 1\n",
        ] {
            assert!(m.contains(want), "[{b}] {want} in {m}");
        }
    }
}
