//! Bare metal off the happy path, the BMC's and the intent's side, against
//! the sushy-tools Redfish emulator (fake driver) on both stores: a release
//! with no sanitizer in the catalog, a failed node inspected again while
//! dirty, releases while provisioning and while still pending, a node
//! without a BMC, and a BMC that goes down. The agent's side (agents that
//! never come, fail or fall silent) is in `baremetal_agents.rs`, races
//! around a reset in `baremetal_races.rs`. As in `baremetal.rs` the test
//! plays the node: the iPXE script by MAC, the NoCloud documents, then the
//! agent (the library with simulated hardware, or raw calls). The instance
//! and agent APIs' refusals are in `baremetal_api.rs`.

mod bm;
mod common;
#[path = "../../redfish/tests/common/mod.rs"]
mod peers;

use bm::*;
use common::nodes::{get_text, lifecycle, node, token_of, wait_for, wait_node};
use common::TestBackend;
use neocloud_agent::{Agent, AgentError, Exit};
use serde_json::json;
use std::time::Duration;

#[test]
fn an_instance_released_while_provisioning_is_sanitized_and_its_token_stops_working() {
    let Some(emu) = peers::Emulator::start(1) else { return };
    for b in TestBackend::ALL {
        let Some(s) = server(b, 120) else { continue };
        let b = b.as_str();
        let tenant = setup(&s, &emu, 1);
        let id = create(&tenant, "job")["id"].as_str().unwrap().to_string();
        wait_node(&s, "bm-1", "provisioning", Some("await_agent"));
        let script = wait_boot(&s, 1, TENANT_KERNEL);
        let token = token_of(&script);
        let (status, md) = get_text(&format!("{}/boot/nocloud/{token}/meta-data", s.url));
        assert_eq!(status, 200, "[{b}] {md}");

        // Released before the image's agent registered.
        release(&tenant, &id).expect(202);
        wait_node(&s, "bm-1", "releasing", None);
        let i = instance(&tenant, &id);
        assert_eq!(i["state"], "releasing", "[{b}] {i}");
        // The node boots the sanitizer now, with a token of its own.
        let sscript = wait_boot(&s, 1, SANITIZER_KERNEL);
        assert!(!sscript.contains("ubuntu"), "[{b}] {sscript}");
        assert_ne!(token_of(&sscript), token, "[{b}]");
        // The tenant's token reads nothing and registers nothing.
        let (status, _) = get_text(&format!("{}/boot/nocloud/{token}/user-data", s.url));
        assert_eq!(status, 404, "[{b}]");
        let r = register_raw(&s, &token, "n1").expect(401);
        assert_eq!(r.error().0, "unauthenticated", "[{b}] {}", r.text);
        match Agent::register(&s.url, &token, hw("n1", None)) {
            Err(AgentError::TokenRefused(f)) => assert_eq!(f.status, 401, "[{b}] {f}"),
            Err(e) => panic!("[{b}] {e}"),
            Ok(_) => panic!("[{b}] the tenant's token registered an agent while releasing"),
        }

        let sanitizer = spawn(boot(&s, 1, SANITIZER_KERNEL, hw("n1-san", None)));
        wait_node(&s, "bm-1", "available", None);
        assert_eq!(exit_of(sanitizer), Exit::Revoked, "[{b}]");
        let i = instance(&tenant, &id);
        assert_eq!(i["state"], "released", "[{b}] {i}");
        let recs = records(&tenant, &id);
        assert_eq!(recs.len(), 1, "[{b}] {recs:?}");
        assert_eq!(recs[0]["body"]["complete"], true, "[{b}] {}", recs[0]);
        let trail = actions(&s, &format!("/{}", node(&s, "bm-1")["id"].as_str().unwrap()));
        assert_eq!(times(&trail, "node_active"), 0, "[{b}] never handed over: {trail:?}");
        assert_eq!(times(&trail, "agent_register_tenant"), 0, "[{b}] {trail:?}");
        assert_eq!(committed(&s, "nodes"), 0, "[{b}]");
        assert_eq!(free_nodes(&s), 1, "[{b}]");
    }
}

#[test]
fn a_release_without_a_sanitizer_image_fails_the_node_once_and_resumes_with_one() {
    let Some(emu) = peers::Emulator::start(1) else { return };
    for b in TestBackend::ALL {
        let Some(s) = server(b, 120) else { continue };
        let b = b.as_str();
        let tenant = setup(&s, &emu, 1);
        let node_id = node(&s, "bm-1")["id"].as_str().unwrap().to_string();
        let id = create(&tenant, "job")["id"].as_str().unwrap().to_string();
        let tenant_agent = spawn(boot(&s, 1, TENANT_KERNEL, hw("n1", None)));
        wait_node(&s, "bm-1", "active", None);
        // The catalog has no sanitizer when the tenant releases.
        lose_sanitizer(&s);
        release(&tenant, &id).expect(202);
        let l = wait_node(&s, "bm-1", "failed", None);
        assert_eq!(l["from"], "active", "[{b}] {l}");
        assert!(l["reason"].as_str().unwrap().contains("no sanitizer image"), "[{b}] {l}");
        // It stays failed, said once: later passes do not record it again
        // (nor move the placement generation).
        let generation = count(&s, "SELECT generation FROM placement_state");
        std::thread::sleep(Duration::from_millis(1_000));
        assert_eq!(lifecycle(&s, "bm-1"), l, "[{b}]");
        let trail = actions(&s, &format!("/{node_id}"));
        assert_eq!(times(&trail, "node_failed"), 1, "[{b}] {trail:?}");
        assert_eq!(count(&s, "SELECT generation FROM placement_state"), generation, "[{b}]");
        assert_eq!(free_nodes(&s), 0, "[{b}]");
        // With a sanitizer in the catalog again, the release goes on.
        add_sanitizer(&s);
        let sanitizer = spawn(boot(&s, 1, SANITIZER_KERNEL, hw("n1-san", None)));
        assert_eq!(exit_of(tenant_agent), Exit::Revoked, "[{b}]");
        wait_node(&s, "bm-1", "available", None);
        assert_eq!(exit_of(sanitizer), Exit::Revoked, "[{b}]");
        assert_eq!(instance(&tenant, &id)["state"], "released", "[{b}]");
        assert_eq!(records(&tenant, &id)[0]["body"]["complete"], true, "[{b}]");
    }
}

#[test]
fn a_failed_node_inspected_again_while_dirty_is_sanitized_and_its_tenant_revoked() {
    let Some(emu) = peers::Emulator::start(1) else { return };
    for b in TestBackend::ALL {
        let Some(s) = server_without_controller(b) else { continue };
        let b = b.as_str();
        let (tenant, mut ctl, secrets) = one_node_by_hand(&s, &emu);
        let id = create(&tenant, "job")["id"].as_str().unwrap().to_string();
        drive(&ctl, &secrets, &s, "bm-1", "provisioning");
        ctl.run_once(&s.store, &secrets).unwrap();
        ctl.run_once(&s.store, &secrets).unwrap();
        assert_eq!(lifecycle(&s, "bm-1")["step"], "await_agent", "[{b}]");
        let token = token_of(&wait_boot(&s, 1, TENANT_KERNEL));
        let reg = register_raw(&s, &token, "n1").expect(201).body;
        let tenant_agent = s.client(reg["credential"].as_str().unwrap());
        drive(&ctl, &secrets, &s, "bm-1", "active");
        // Released while the catalog has no sanitizer: the node fails,
        // still the tenant's.
        lose_sanitizer(&s);
        release(&tenant, &id).expect(202);
        drive(&ctl, &secrets, &s, "bm-1", "failed");
        heartbeat(&tenant_agent).expect(200);
        // The provider adds a sanitizer and inspects the node again: it is
        // dirty, so inspection ends in a sanitizer boot, and whatever ran
        // there loses its credentials then.
        add_sanitizer(&s);
        s.admin().post("/v1/nodes/bm-1/inspect", &json!({})).expect(202);
        ctl.run_once(&s.store, &secrets).unwrap();
        assert_eq!(lifecycle(&s, "bm-1")["state"], "enrolling", "[{b}]");
        drive(&ctl, &secrets, &s, "bm-1", "releasing");
        heartbeat(&tenant_agent).expect(401);
        let i = instance(&tenant, &id);
        assert_eq!(i["state"], "releasing", "[{b}] the tenant sees it go: {i}");
        drive_to_boot(&ctl, &secrets, &s, "bm-1");
        let token = token_of(&wait_boot(&s, 1, SANITIZER_KERNEL));
        let reg = register_raw(&s, &token, "n1-san").expect(201).body;
        let san = s.client(reg["credential"].as_str().unwrap());
        drive(&ctl, &secrets, &s, "bm-1", "sanitizing");
        for st in heartbeat(&san).expect(200).body["steps"].as_array().unwrap() {
            report(&san, st["id"].as_str().unwrap(), true).expect(200);
        }
        drive(&ctl, &secrets, &s, "bm-1", "available");
        let i = instance(&tenant, &id);
        assert_eq!(i["state"], "released", "[{b}] {i}");
        assert_eq!(records(&tenant, &id)[0]["body"]["complete"], true, "[{b}]");
        assert_eq!(committed(&s, "nodes"), 0, "[{b}]");

        // A node failed while provisioning (its image's agent never came),
        // its instance failed and not released: inspected again, it is
        // sanitized, and the tenant sees the instance go.
        let id = create(&tenant, "second")["id"].as_str().unwrap().to_string();
        drive(&ctl, &secrets, &s, "bm-1", "provisioning");
        ctl.run_once(&s.store, &secrets).unwrap();
        ctl.run_once(&s.store, &secrets).unwrap();
        assert_eq!(lifecycle(&s, "bm-1")["step"], "await_agent", "[{b}]");
        ctl.boot_timeout = Duration::from_millis(200);
        ctl.boot_attempts = 1;
        std::thread::sleep(Duration::from_millis(400));
        drive(&ctl, &secrets, &s, "bm-1", "failed");
        ctl.boot_timeout = Duration::from_secs(120);
        assert_eq!(instance(&tenant, &id)["state"], "failed", "[{b}]");
        s.admin().post("/v1/nodes/bm-1/inspect", &json!({})).expect(202);
        drive(&ctl, &secrets, &s, "bm-1", "releasing");
        let i = instance(&tenant, &id);
        assert_eq!(i["state"], "releasing", "[{b}] {i}");
        assert!(i["reason"].is_null(), "[{b}] {i}");
        drive_to_boot(&ctl, &secrets, &s, "bm-1");
        let token = token_of(&wait_boot(&s, 1, SANITIZER_KERNEL));
        let reg = register_raw(&s, &token, "n1-san2").expect(201).body;
        let san = s.client(reg["credential"].as_str().unwrap());
        drive(&ctl, &secrets, &s, "bm-1", "sanitizing");
        for st in heartbeat(&san).expect(200).body["steps"].as_array().unwrap() {
            report(&san, st["id"].as_str().unwrap(), true).expect(200);
        }
        drive(&ctl, &secrets, &s, "bm-1", "available");
        assert_eq!(instance(&tenant, &id)["state"], "released", "[{b}]");
        assert_eq!(records(&tenant, &id)[0]["body"]["complete"], true, "[{b}]");
        assert_eq!(committed(&s, "nodes"), 0, "[{b}]");
    }
}

#[test]
fn an_instance_released_while_pending_frees_its_node_without_sanitizing() {
    let Some(emu) = peers::Emulator::start(1) else { return };
    for b in TestBackend::ALL {
        let Some(s) = server_without_controller(b) else { continue };
        let b = b.as_str();
        let tenant = catalog(&s, true);
        enroll(&s, &emu, 1);
        let (ctl, secrets) = controller(&s);
        for _ in 0..5 {
            ctl.run_once(&s.store, &secrets).unwrap();
        }
        assert_eq!(lifecycle(&s, "bm-1")["state"], "available", "[{b}]");
        let node_id = node(&s, "bm-1")["id"].as_str().unwrap().to_string();
        let inst = create(&tenant, "job");
        let id = inst["id"].as_str().unwrap().to_string();
        let alloc = inst["allocation_id"].as_str().unwrap().to_string();
        assert_eq!(inst["state"], "pending", "[{b}] {inst}");
        assert_eq!((free_nodes(&s), committed(&s, "nodes")), (0, 1), "[{b}]");

        // Released before any controller picked it up.
        let r = release(&tenant, &id).expect(202);
        assert_eq!(r.body["state"], "pending", "[{b}] recorded only: {}", r.text);
        let pass = ctl.run_once(&s.store, &secrets).unwrap();
        assert_eq!((pass.moved, pass.failed), (1, 0), "[{b}] {pass:?}");
        let i = instance(&tenant, &id);
        assert_eq!(i["state"], "released", "[{b}] {i}");
        let a = tenant
            .get(&format!("/v1/tenants/acme/projects/train/allocations/{alloc}"))
            .expect(200)
            .body;
        assert_eq!(a["state"], "released", "[{b}] {a}");
        assert_eq!(committed(&s, "nodes"), 0, "[{b}] quota freed");
        // Nothing of the tenant's reached the node: it never got dirty, was
        // never booted, and no sanitization happened.
        assert_eq!(lifecycle(&s, "bm-1")["state"], "available", "[{b}]");
        assert_eq!(free_nodes(&s), 1, "[{b}]");
        assert_eq!(
            count(
                &s,
                &format!("SELECT COUNT(*) FROM nodes WHERE id = '{node_id}' AND dirty_instance_id IS NULL AND dirty_tenant_id IS NULL")
            ),
            1,
            "[{b}] never dirty"
        );
        assert_eq!(count(&s, "SELECT COUNT(*) FROM boot_tokens"), 0, "[{b}]");
        assert_eq!(count(&s, "SELECT COUNT(*) FROM agents"), 0, "[{b}]");
        assert!(records(&tenant, &id).is_empty(), "[{b}]");
        let prov = s.admin().get("/v1/nodes/bm-1/sanitizations").expect(200).body;
        assert_eq!(prov["items"], json!([]), "[{b}] {prov}");
        let trail = actions(&s, &format!("/{node_id}"));
        for never in ["node_provisioning", "node_releasing", "node_sanitizing"] {
            assert_eq!(times(&trail, never), 0, "[{b}] {never}: {trail:?}");
        }
        let itrail = actions(&s, &format!("/instances/{id}"));
        assert_eq!(times(&itrail, "instance_released"), 1, "[{b}] {itrail:?}");
        assert_eq!(times(&itrail, "instance_provisioning"), 0, "[{b}] {itrail:?}");
        let sys = emu.get(&emu.system_path(0));
        assert_ne!(sys["Boot"]["BootSourceOverrideTarget"], "Pxe", "[{b}] never booted: {sys}");
        assert_eq!(sys["PowerState"], "Off", "[{b}] {sys}");
        // Nothing left to do.
        assert_eq!(ctl.run_once(&s.store, &secrets).unwrap().moved, 0, "[{b}]");
        let again = create(&tenant, "again");
        assert_eq!(again["node_id"], node_id.as_str(), "[{b}] the node is placed again");
    }
}

/// A node registered without a BMC (placement only) cannot be booted: the
/// instance fails with the reason, the node is never marked dirty, and a
/// release frees it without a sanitization.
#[test]
fn an_instance_on_a_node_without_a_bmc_fails_cleanly_and_frees_it() {
    for b in TestBackend::ALL {
        let Some(s) = server(b, 60) else { continue };
        let b = b.as_str();
        let tenant = catalog(&s, true);
        s.admin()
            .post(
                "/v1/nodes",
                &json!({"name": "plain", "site": "s", "pod": "p", "su": "su1", "rack": "r1",
                        "gpu_model": "h100-80gb", "gpus": 8}),
            )
            .expect(201);
        let i = create(&tenant, "nobmc");
        let id = i["id"].as_str().unwrap();
        let failed = wait_for("the instance to fail", Duration::from_secs(20), || {
            let v = instance(&tenant, id);
            (v["state"] == "failed").then_some(v)
        });
        assert!(failed["reason"].as_str().unwrap().contains("without a BMC"), "[{b}] {failed}");
        assert_eq!(lifecycle(&s, "plain")["state"], "available", "[{b}] never touched");
        assert_eq!(free_nodes(&s), 0, "[{b}] still held by the instance");
        assert_eq!(release(&tenant, id).status, 202, "[{b}]");
        wait_for("the instance to be released", Duration::from_secs(20), || {
            (instance(&tenant, id)["state"] == "released").then_some(())
        });
        assert_eq!(free_nodes(&s), 1, "[{b}] free again");
        assert_eq!(committed(&s, "nodes"), 0, "[{b}] quota returned");
        assert!(records(&tenant, id).is_empty(), "[{b}] nothing to sanitize");
        assert_eq!(lifecycle(&s, "plain")["state"], "available", "[{b}]");
    }
}

/// The BMC goes away in the middle of provisioning: the step is retried,
/// then the node fails with the reason and the tenant's instance shows it.
#[test]
fn a_bmc_that_goes_down_while_provisioning_fails_the_node_with_the_reason() {
    for b in TestBackend::ALL {
        let Some(emu) = peers::Emulator::start(1) else { return };
        let Some(s) = server_without_controller(b) else { continue };
        let b = b.as_str();
        let (ctl, secrets) = controller(&s);
        let tenant = catalog(&s, true);
        enroll(&s, &emu, 1);
        drive(&ctl, &secrets, &s, "bm-1", "available");
        let id = create(&tenant, "doomed")["id"].as_str().unwrap().to_string();
        ctl.run_once(&s.store, &secrets).unwrap();
        assert_eq!(lifecycle(&s, "bm-1")["state"], "provisioning", "[{b}]");
        let emu_host = emu.url.trim_start_matches("http://").to_string();
        drop(emu); // the BMC is gone
        let mut retried = 0;
        for _ in 0..10 {
            let pass = ctl.run_once(&s.store, &secrets).unwrap();
            retried += pass.retrying;
            if pass.failed > 0 {
                break;
            }
        }
        assert!(retried >= 1, "[{b}] transient BMC errors are retried first");
        let l = lifecycle(&s, "bm-1");
        assert_eq!(l["state"], "failed", "[{b}] {l}");
        assert_eq!(l["from"], "provisioning", "[{b}] {l}");
        assert!(l["reason"].as_str().unwrap().contains("retries"), "[{b}] {l}");
        let i = instance(&tenant, &id);
        assert_eq!(i["state"], "failed", "[{b}] {i}");
        // The tenant sees why, without the address of the provider's BMC
        // (the node's own reason, for the provider, names it).
        let node_reason = l["reason"].as_str().unwrap();
        let host = emu_host.as_str();
        assert!(node_reason.contains(host), "[{b}] {node_reason}");
        let tenant_reason = i["reason"].as_str().unwrap();
        assert!(!tenant_reason.contains(host), "[{b}] {tenant_reason}");
        assert!(tenant_reason.contains("retries"), "[{b}] {tenant_reason}");
        assert_eq!(
            tenant_reason,
            node_reason.replace(&format!("http://{host}"), "<BMC>"),
            "[{b}] the tenant sees why"
        );
        assert_eq!(free_nodes(&s), 0, "[{b}] a failed, dirty node is not schedulable");
        // The controller's metrics time the step that failed.
        let m = ctl.render_metrics();
        let failed_in =
            "neocloud_node_step_duration_seconds_count{lifecycle=\"provisioning\",step=\"set_boot\"} 1";
        assert!(m.lines().any(|x| x == failed_in), "[{b}] {failed_in}:\n{m}");
    }
}
