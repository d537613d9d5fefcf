//! The BMC's word on a node's hardware health (`Status.Health` of the
//! systems and processors an inventory reads, and the host's
//! `HealthRollup`), on the SIMULATED BMC: a node its BMC reports
//! `Critical` does not join the pool (the reason names the component; a
//! person fixes it and asks for an inspection again), nor return to it
//! after a tenant (the signed record's `hardware_health` check fails);
//! `Warning` is recorded and shown, and passes. The driver's reading of a
//! real peer's `Status` is in crates/redfish/tests.

mod bm;
mod common;
#[path = "../../redfish/tests/common/mod.rs"]
mod peers;

use bm::*;
use common::nodes::lifecycle;
use common::TestBackend;
use serde_json::{json, Value};
use std::sync::atomic::Ordering;

fn health(s: &common::TestServer) -> Value {
    s.admin().get("/v1/nodes/bm-1/hardware").expect(200).body["bmc"]["health"].clone()
}

#[test]
fn a_node_its_bmc_reports_critical_joins_no_pool() {
    let f = fleet();
    for (i, b) in TestBackend::ALL.into_iter().enumerate() {
        let Some(s) = server_without_controller(b) else { continue };
        let b = b.as_str();
        f.sim.set_health(i, "GPU_SXM_3", "Critical");
        catalog(&s, true);
        enroll_simulated(&s, &f, i);
        let (ctl, secrets) = controller(&s);
        drive(&ctl, &secrets, &s, "bm-1", "failed");
        let l = lifecycle(&s, "bm-1");
        let reason = l["reason"].as_str().unwrap();
        assert!(
            reason.starts_with("the BMC reports the node's hardware Critical: system health Critical; GPU_SXM_3 Critical (/redfish/v1/Systems/HGX_Baseboard_0/Processors/GPU_SXM_3)"),
            "[{b}] {reason}"
        );
        // The BMC's log says what happened (newest first).
        assert!(
            reason.contains(": Critical SIMULATED: GPU_SXM_3 reports Critical"),
            "[{b}] {reason}"
        );
        let h = health(&s);
        assert_eq!(h["rollup"], "Critical", "[{b}] {h}");
        assert_eq!(h["faults"][0]["name"], "GPU_SXM_3", "[{b}] {h}");
        assert_eq!(h["events"][0]["severity"], "Critical", "[{b}] {h}");
        assert_eq!(h["events"][0]["message"], "SIMULATED: GPU_SXM_3 reports Critical", "[{b}] {h}");
        let node = common::nodes::node(&s, "bm-1");
        assert_eq!(node["hardware_health"], "Critical", "[{b}]");
        assert_eq!(node["hardware_faults"], json!(["GPU_SXM_3 Critical"]), "[{b}]");
        assert!(h.get("unread").is_none(), "[{b}] {h}");
        // A BMC that fails to serve its log: the inspection still refuses
        // the node for its GPU, and says what it could not read.
        f.sim.set_sel_broken(i, true);
        s.admin().post("/v1/nodes/bm-1/inspect", &json!({})).expect(202);
        drive(&ctl, &secrets, &s, "bm-1", "inspecting");
        drive(&ctl, &secrets, &s, "bm-1", "failed");
        let l = lifecycle(&s, "bm-1");
        let reason = l["reason"].as_str().unwrap();
        assert!(reason.contains("GPU_SXM_3 Critical"), "[{b}] {reason}");
        let h = health(&s);
        assert!(h["unread"].as_str().is_some_and(|u| u.starts_with("logs: ")), "[{b}] {h} {l}");
        assert!(h.get("events").is_none(), "[{b}] {h}");
        f.sim.set_sel_broken(i, false);
        let by_health = || {
            let c = neocloud_server::controllers::lifecycle::census(
                &s.store,
                std::time::Duration::from_secs(60),
                std::time::Duration::from_secs(60),
            )
            .unwrap();
            c.bmc_health
        };
        assert_eq!(by_health(), vec![("Critical".to_string(), 1)], "[{b}] the metric's count");
        // Fixed (a Warning left on another part), inspected again: it joins,
        // the Warning shown.
        f.sim.set_health(i, "GPU_SXM_3", "OK");
        f.sim.set_health(i, "GPU_SXM_5", "Warning");
        s.admin().post("/v1/nodes/bm-1/inspect", &json!({})).expect(202);
        drive(&ctl, &secrets, &s, "bm-1", "available");
        let h = health(&s);
        assert_eq!(h["rollup"], "Warning", "[{b}] {h}");
        assert_eq!(h["events"][0]["message"], "SIMULATED: GPU_SXM_5 reports Warning", "[{b}] {h}");
        assert_eq!(by_health(), vec![("Warning".to_string(), 1)], "[{b}]");
        let node = common::nodes::node(&s, "bm-1");
        assert_eq!(node["hardware_faults"], json!(["GPU_SXM_5 Warning"]), "[{b}]");
        assert_eq!(
            h["faults"],
            json!([{"path": "/redfish/v1/Systems/HGX_Baseboard_0/Processors/GPU_SXM_5",
                    "name": "GPU_SXM_5", "health": "Warning"}]),
            "[{b}]"
        );
        f.sim.set_health(i, "GPU_SXM_5", "OK");
    }
}

#[test]
fn a_node_that_fails_during_a_tenancy_goes_back_to_no_pool() {
    let f = fleet();
    for (i, b) in TestBackend::ALL.into_iter().enumerate() {
        let Some(s) = server_without_controller(b) else { continue };
        let b = b.as_str();
        let (h, _) = simulated_node(&s, &f, i);
        // Healthy: the record says so.
        let id = h.provision("healthy");
        assert_eq!(h.release(&id)["state"], "available", "[{b}]");
        let rec = record(&h, &id, true);
        let c = check(&rec, "hardware_health");
        assert_eq!(
            (&c["ok"], item_detail(c, 0)),
            (&json!(true), "health rollup OK".to_string()),
            "[{b}] {c}"
        );

        // A GPU fails while the tenant holds the node.
        let id = h.provision("unlucky");
        f.sim.set_health(i, "GPU_SXM_2", "Critical");
        let l = h.release(&id);
        assert_eq!(l["state"], "failed", "[{b}] {l}");
        assert!(l["reason"].as_str().unwrap().contains("hardware_health failed"), "[{b}] {l}");
        let rec = record(&h, &id, false);
        let c = check(&rec, "hardware_health");
        assert_eq!(c["ok"], false, "[{b}] {c}");
        let failed: Vec<&Value> =
            c["items"].as_array().unwrap().iter().filter(|i| i["ok"] == false).collect();
        assert_eq!(failed.len(), 2, "[{b}] the rollup and the GPU: {c}");
        assert_eq!(failed[1]["detail"], "GPU_SXM_2 Critical", "[{b}] {c}");
        // The provider's view shows what the sanitization read.
        assert_eq!(health(&s)["faults"][0]["name"], "GPU_SXM_2", "[{b}]");
        f.sim.set_health(i, "GPU_SXM_2", "OK");
    }
}

/// A node that failed while it waited in the pool: the provisioning's first
/// BMC read (the boot override's) sees it, and the node is not handed over;
/// the tenant sees why (and its instance can be released for another).
#[test]
fn a_node_that_failed_in_the_pool_is_not_handed_to_a_tenant() {
    let f = fleet();
    for (i, b) in TestBackend::ALL.into_iter().enumerate() {
        let Some(s) = server_without_controller(b) else { continue };
        let b = b.as_str();
        let (h, _) = simulated_node(&s, &f, i);
        f.sim.set_health(i, "GPU_SXM_4", "Critical");
        let (boots, power) = (f.sim.network_boots.load(Ordering::Relaxed), f.sim.power_on(i));
        let id = create(&h.tenant, "job")["id"].as_str().unwrap().to_string();
        drive(&h.ctl, &h.secrets, &s, "bm-1", "failed");
        let l = lifecycle(&s, "bm-1");
        let reason = l["reason"].as_str().unwrap();
        assert!(reason.contains("the BMC reports the node's hardware Critical"), "[{b}] {l}");
        assert_eq!(l["from"], "provisioning", "[{b}] {l}");
        let inst = instance(&h.tenant, &id);
        assert_eq!(inst["state"], "failed", "[{b}] {inst}");
        assert_eq!(inst["reason"], l["reason"], "[{b}] the tenant sees why");
        // Nothing was done to the node: no boot, no power change.
        assert_eq!(f.sim.network_boots.load(Ordering::Relaxed), boots, "[{b}]");
        assert_eq!(f.sim.power_on(i), power, "[{b}]");
        f.sim.set_health(i, "GPU_SXM_4", "OK");
    }
}

/// The health watch reads each idle or active node's health once its
/// interval has passed (from when it was first seen, then from each read):
/// a tenant's node's is shown on its instance, nothing done to the node; a
/// node its BMC reports Critical while it waits in the pool is sent to
/// inspection (audited) and refused there, naming the part. Nothing is
/// read before it is due.
#[test]
fn the_health_watch_takes_a_failed_node_out_of_the_pool() {
    let f = fleet();
    let poll = std::time::Duration::from_millis(300);
    for (i, b) in TestBackend::ALL.into_iter().enumerate() {
        let Some(s) = server_without_controller(b) else { continue };
        let b = b.as_str();
        let (h, _) = simulated_node_with(&s, &f, i, |c| c.health_poll = poll);
        let pass = || h.ctl.watch_health(&s.store, &h.secrets, &|| false).unwrap();
        let requests = || f.sim.stats().requests;
        // First seen: not due yet.
        let before = requests();
        assert_eq!(pass(), Default::default(), "[{b}]");
        assert_eq!(requests(), before, "[{b}] nothing read");
        std::thread::sleep(poll);
        let p = pass();
        assert_eq!((p.read, p.unread, p.critical.len()), (1, 0, 0), "[{b}] {p:?}");
        assert!(requests() > before, "[{b}] read from the BMC");
        // Read again only once due again.
        assert_eq!(pass().read, 0, "[{b}]");

        // A tenant's node: its health shown on the instance, nothing done
        // to the node.
        let id = h.provision("held");
        assert_eq!(instance(&h.tenant, &id)["hardware_health"], "OK", "[{b}] from the inspection");
        for health in ["Warning", "Critical"] {
            f.sim.set_health(i, "GPU_SXM_1", health);
            std::thread::sleep(poll);
            let p = pass();
            assert_eq!((p.read, p.changed, p.critical.len()), (1, 1, 0), "[{b}] {p:?}");
            let seen = instance(&h.tenant, &id);
            assert_eq!(seen["hardware_health"], health, "[{b}]");
            // The tenant is told the part; the BMC's log is the provider's.
            assert_eq!(seen["hardware_faults"], json!([format!("GPU_SXM_1 {health}")]), "[{b}]");
            assert!(!seen.to_string().contains("SIMULATED"), "[{b}] {seen}");
            let logged = self::health(&s);
            let want = format!("SIMULATED: GPU_SXM_1 reports {health}");
            assert_eq!(logged["events"][0]["message"], want.as_str(), "[{b}] {logged}");
            assert_eq!(lifecycle(&s, "bm-1")["state"], "active", "[{b}] the tenant's");
        }
        // Fixed: the next read clears what the tenant and the provider see.
        f.sim.set_health(i, "GPU_SXM_1", "OK");
        std::thread::sleep(poll);
        assert_eq!(pass().changed, 1, "[{b}]");
        // A read that changes nothing tells the tenant nothing.
        std::thread::sleep(poll);
        assert_eq!(pass().changed, 0, "[{b}]");
        let seen = instance(&h.tenant, &id);
        // Each change was told to the tenant, in its own audit trail (its
        // admins read it; the provider here).
        let path = format!("/v1/tenants/{}/audit?limit=1000", seen["tenant_id"].as_str().unwrap());
        let told: Vec<String> = s.admin().get(&path).expect(200).body["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["target"].as_str().unwrap_or_default().ends_with(&id))
            .map(|e| e["action"].as_str().unwrap().to_string())
            .filter(|a| a.starts_with("instance_hardware_"))
            .collect();
        assert_eq!(
            told,
            ["instance_hardware_warning", "instance_hardware_critical", "instance_hardware_ok"],
            "[{b}]"
        );
        assert!(seen.get("hardware_faults").is_none(), "[{b}] {seen}");
        let logged = self::health(&s);
        assert_eq!(
            (logged["rollup"].as_str(), logged.get("events")),
            (Some("OK"), None),
            "[{b}] {logged}"
        );
        assert_eq!(logged["faults"], json!([]), "[{b}] {logged}");
        assert_eq!(h.release(&id)["state"], "available", "[{b}]");
        assert!(instance(&h.tenant, &id).get("hardware_health").is_none(), "[{b}] released");

        // Failed in the pool: inspected and refused, naming the part.
        f.sim.set_health(i, "GPU_SXM_6", "Critical");
        std::thread::sleep(poll);
        let p = pass();
        let node_id = common::nodes::node(&s, "bm-1")["id"].as_str().unwrap().to_string();
        assert_eq!(p.critical, vec![node_id], "[{b}] {p:?}");
        assert!(actions(&s, "").iter().any(|a| a == "node_health_critical"), "[{b}] audited");
        drive(&h.ctl, &h.secrets, &s, "bm-1", "failed");
        let l = lifecycle(&s, "bm-1");
        assert!(l["reason"].as_str().unwrap().contains("GPU_SXM_6 Critical"), "[{b}] {l}");
        f.sim.set_health(i, "GPU_SXM_6", "OK");
    }
}

/// What a tenant's host wrote to its BMC's SEL in-band does not pass to
/// the next tenant: every sanitization clears the SEL (after the power
/// off) and reads it back; a BMC that will not clear it fails the record,
/// and the node goes to no one.
#[test]
fn a_tenants_sel_entries_are_cleared_before_the_next_tenant() {
    let f = fleet();
    for (i, b) in TestBackend::ALL.into_iter().enumerate() {
        let Some(s) = server_without_controller(b) else { continue };
        let b = b.as_str();
        let (h, _) = simulated_node(&s, &f, i);
        let id = h.provision("writer");
        f.sim.write_sel(i, "a note for whoever is next");
        f.sim.write_sel(i, "and another");
        assert_eq!(f.sim.sel_len(i), 2, "[{b}]");
        assert_eq!(h.release(&id)["state"], "available", "[{b}]");
        assert_eq!(f.sim.sel_len(i), 0, "[{b}] cleared");
        let rec = record(&h, &id, true);
        let c = check(&rec, "clear_sel");
        assert_eq!(c["ok"], true, "[{b}] {c}");
        assert_eq!(
            c["items"][0]["target"], "/redfish/v1/Systems/Host/LogServices/SEL",
            "[{b}] {c}"
        );
        assert_eq!(item_detail(c, 0), "cleared; 0 entries after", "[{b}] {c}");

        // A BMC that will not clear it: the record says so, the node waits
        // for the provider.
        let id = h.provision("stuck");
        f.sim.write_sel(i, "left behind");
        f.sim.set_sel_clear_refused(i, true);
        let l = h.release(&id);
        assert_eq!(l["state"], "failed", "[{b}] {l}");
        assert!(l["reason"].as_str().unwrap().contains("clear_sel failed"), "[{b}] {l}");
        let rec = record(&h, &id, false);
        let c = check(&rec, "clear_sel");
        assert_eq!(c["ok"], false, "[{b}] {c}");
        assert!(item_detail(c, 0).starts_with("the BMC did not clear it"), "[{b}] {c}");
        assert_eq!(f.sim.sel_len(i), 1, "[{b}]");
        f.sim.set_sel_clear_refused(i, false);
    }
}

/// `bmc_sel = unmanaged`: a BMC model that cannot clear its SEL over
/// Redfish still returns its nodes to the pool; the record says the log
/// was left, and the BMC is not asked.
#[test]
fn an_unmanaged_sel_is_left_and_said_so() {
    let f = fleet();
    for (i, b) in TestBackend::ALL.into_iter().enumerate() {
        let Some(s) = server_without_controller(b) else { continue };
        let b = b.as_str();
        let (h, _) = simulated_node_with(&s, &f, i, |c| {
            c.sel = neocloud_server::config::SelPolicy::Unmanaged
        });
        f.sim.set_sel_clear_refused(i, true);
        let id = h.provision("kept");
        f.sim.write_sel(i, "still here");
        assert_eq!(h.release(&id)["state"], "available", "[{b}]");
        let rec = record(&h, &id, true);
        let c = check(&rec, "clear_sel");
        assert_eq!(item_detail(c, 0), "left as the BMC has it (bmc_sel = unmanaged)", "[{b}] {c}");
        assert_eq!(f.sim.sel_len(i), 1, "[{b}] not cleared");
        f.sim.set_sel_clear_refused(i, false);
    }
}

/// The SIMULATED BMC reports an enabled TPM 2.0 (`TrustedModules`): the
/// provider sees it in the node's hardware, and a sanitizer that saw no TPM
/// (a sanitizer image without its driver, say) did not clear it: the
/// record fails and the node goes to no one. (The agent's clear itself is
/// tested against swtpm in crates/agent/tests/tpm.rs.)
#[test]
fn a_tpm_the_bmc_shows_that_the_sanitizer_did_not_see_fails_the_record() {
    let f = fleet();
    for (i, b) in TestBackend::ALL.into_iter().enumerate() {
        let Some(s) = server_without_controller(b) else { continue };
        let b = b.as_str();
        let (h, hw) = simulated_node(&s, &f, i);
        assert_eq!(hw["bmc"]["tpms"], json!(["TPM2_0"]), "[{b}] {hw}");
        let id = h.provision("t");
        release(&h.tenant, &id).expect(202);
        drive(&h.ctl, &h.secrets, &s, "bm-1", "releasing");
        report_each(&h.boot_sanitizer(), |kind| {
            let method = if kind == "clear_tpm" { "none" } else { "test" };
            json!({"target": "tpm", "method": method, "ok": true, "detail": "reported by hand"})
        });
        drive(&h.ctl, &h.secrets, &s, "bm-1", "failed");
        let l = lifecycle(&s, "bm-1");
        assert!(l["reason"].as_str().unwrap().contains("clear_tpm failed"), "[{b}] {l}");
        let rec = record(&h, &id, false);
        let c = check(&rec, "clear_tpm");
        assert_eq!(c["ok"], false, "[{b}] {c}");
        assert_eq!(
            item_detail(c, 1),
            "the BMC shows a TPM (TPM2_0), the sanitizer saw none",
            "[{b}] {c}"
        );
        // Every other check passed: the TPM alone failed it.
        let failed: Vec<&Value> =
            rec["body"]["checks"].as_array().unwrap().iter().filter(|c| c["ok"] != true).collect();
        assert_eq!(failed.len(), 1, "[{b}] {failed:?}");
    }
}

/// Reports every step the sanitizer `agent` was sent, each with the one
/// item `item_for` gives its kind (the step `ok` as the item is).
fn report_each(agent: &common::Client, item_for: impl Fn(&str) -> Value) {
    for st in heartbeat(agent).expect(200).body["steps"].as_array().unwrap() {
        let item = item_for(st["kind"].as_str().unwrap());
        agent
            .post(
                &format!("/agent/v1/steps/{}", st["id"].as_str().unwrap()),
                &json!({"ok": item["ok"], "items": [item]}),
            )
            .expect(200);
    }
}

/// Reports every step the sanitizer `agent` was sent done, but
/// `clear_tpm` failed with the firmware asked to clear the TPM at the next
/// boot (the agent's PPI request).
fn report_tpm_left_to_the_firmware(agent: &common::Client) {
    report_each(agent, |kind| match kind {
        "clear_tpm" => {
            json!({"target": "/dev/tpmrm0", "method": neocloud_types::TPM_PPI_REQUESTED, "ok": false,
                   "detail": "TPM2_Clear failed: TPM_RC_AUTH_FAIL; asked the firmware"})
        }
        _ => json!({"target": "x", "method": "test", "ok": true, "detail": "reported by hand"}),
    });
}

/// A TPM the agent cannot clear itself (a tenant's lockout authorization,
/// the platform hierarchy off): the agent asks the firmware to clear it at
/// the next boot, and the control plane boots the sanitizer again for a new
/// one to verify it (every step again); when the boot attempts are spent,
/// the record fails on it.
#[test]
fn a_tpm_left_to_the_firmware_is_verified_by_the_next_sanitizer_boot() {
    let f = fleet();
    for (i, b) in TestBackend::ALL.into_iter().enumerate() {
        let Some(s) = server_without_controller(b) else { continue };
        let b = b.as_str();
        let (h, _) = simulated_node_with(&s, &f, i, |c| c.boot_attempts = 2);
        let id = h.provision("t");
        release(&h.tenant, &id).expect(202);
        drive(&h.ctl, &h.secrets, &s, "bm-1", "releasing");
        let first = h.boot_sanitizer();
        report_tpm_left_to_the_firmware(&first);
        // Booted again (attempt 2), the first sanitizer revoked.
        drive(&h.ctl, &h.secrets, &s, "bm-1", "releasing");
        let l = lifecycle(&s, "bm-1");
        assert_eq!(l["attempt"], 2, "[{b}] {l}");
        heartbeat(&first).expect(401);
        // The firmware cleared it: the second sanitizer finds nothing left.
        let l = h.finish_release();
        assert_eq!(l["state"], "available", "[{b}] {l}");
        let rec = record(&h, &id, true);
        let c = check(&rec, "clear_tpm");
        assert_eq!(
            (&c["ok"], item_detail(c, 0).as_str()),
            (&json!(true), "reported by hand"),
            "[{b}]"
        );

        // Again, and the firmware never clears it: after the second boot
        // the record fails on it, naming the PPI request.
        let id = h.provision("t2");
        release(&h.tenant, &id).expect(202);
        drive(&h.ctl, &h.secrets, &s, "bm-1", "releasing");
        for _ in 0..2 {
            report_tpm_left_to_the_firmware(&h.boot_sanitizer());
            for _ in 0..5 {
                if lifecycle(&s, "bm-1")["state"] != "sanitizing" {
                    break;
                }
                h.ctl.run_once(&s.store, &h.secrets).unwrap();
            }
        }
        let l = lifecycle(&s, "bm-1");
        assert_eq!(l["state"], "failed", "[{b}] {l}");
        assert!(l["reason"].as_str().unwrap().contains("clear_tpm failed"), "[{b}] {l}");
        let rec = record(&h, &id, false);
        let c = check(&rec, "clear_tpm");
        assert_eq!(c["items"][0]["method"], "tpm2-clear-ppi", "[{b}] {c}");
    }
}
