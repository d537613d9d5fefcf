//! Bare metal off the happy path, the agent's side, against the sushy-tools
//! Redfish emulator (fake driver) on both stores: an image whose agent never
//! registers (once, and on every boot attempt), a server restart while a
//! node waits for its agent, a sanitizer step that fails, a sanitizer that
//! never comes up or falls silent, and a tenant agent that falls silent on
//! its active node. As in `baremetal.rs` the test plays the node: the iPXE
//! script by MAC, the NoCloud documents, then the agent (the library with
//! simulated hardware, or raw calls).

mod bm;
mod common;
#[path = "../../redfish/tests/common/mod.rs"]
mod peers;

use bm::*;
use common::nodes::{
    capacity_is_the_stores, engine_reloads, lifecycle, node, token_of, wait_for, wait_node,
};
use common::{Client, TestBackend, TestServer};
use neocloud_agent::{Agent, Exit};
use neocloud_types::AgentStepKind;
use serde_json::json;
use std::time::Duration;

#[test]
fn an_agent_that_never_registers_fails_the_node_and_a_release_sanitizes_it() {
    let Some(emu) = peers::Emulator::start(1) else { return };
    for b in TestBackend::ALL {
        // Two seconds for a booted image's agent to register.
        let Some(s) = server(b, 2) else { continue };
        let b = b.as_str();
        let tenant = setup(&s, &emu, 1);
        // A second replica, its controller idle: it follows every move
        // below from the placement log, the failure included.
        let replica = s.replica_with(|c| c.lifecycle_interval_ms = 0);
        let replica_reloads = engine_reloads(&replica);
        let id = create(&tenant, "job")["id"].as_str().unwrap().to_string();
        // Nobody boots the node: the deadline passes.
        let l = wait_node(&s, "bm-1", "failed", None);
        assert_eq!(l["from"], "provisioning", "[{b}] {l}");
        capacity_is_the_stores(&[&s, &replica], &format!("[{b}] failed"));
        assert_eq!(engine_reloads(&replica), replica_reloads, "[{b}] replayed, not rebuilt");
        let reason = l["reason"].as_str().unwrap().to_string();
        assert!(reason.contains("agent did not register within 2s"), "[{b}] {reason}");
        // The tenant sees why (no other node could take the instance).
        let i = wait_instance(&tenant, &id, "failed");
        let why = i["reason"].as_str().unwrap();
        assert!(why.contains(&reason), "[{b}] {i}");
        assert!(why.contains("no other node could take it"), "[{b}] {i}");
        // Failed, and still the tenant's: not schedulable, nothing to boot.
        assert_eq!(free_nodes(&s), 0, "[{b}]");
        assert_eq!(committed(&s, "nodes"), 1, "[{b}] the tenant still holds it");
        let (status, script) = ipxe(&s, 1);
        assert!(status == 200 && script.contains("exit"), "[{b}] {script}");

        // The tenant releases the failed instance: the image may have
        // written to the node, so it is sanitized.
        release(&tenant, &id).expect(202);
        // The sanitizer is served from the start of releasing; its agent
        // registers at once (the 2 s deadline also applies to it).
        let sanitizer = spawn(boot(&s, 1, SANITIZER_KERNEL, hw("n1-san", None)));
        let i = instance(&tenant, &id);
        assert!(["releasing", "released"].contains(&i["state"].as_str().unwrap()), "[{b}] {i}");
        wait_node(&s, "bm-1", "available", None);
        assert_eq!(exit_of(sanitizer), Exit::Revoked, "[{b}] the sanitizer is revoked at the end");
        let i = instance(&tenant, &id);
        assert_eq!(i["state"], "released", "[{b}] {i}");
        assert!(i["reason"].is_null(), "[{b}] {i}");
        let recs = records(&tenant, &id);
        assert_eq!(recs.len(), 1, "[{b}] {recs:?}");
        assert_eq!(recs[0]["body"]["complete"], true, "[{b}] {}", recs[0]);
        assert_eq!(recs[0]["body"]["instance_id"], id.as_str(), "[{b}]");
        assert!(verified(&recs[0]), "[{b}] the record's signature verifies");
        assert_eq!(committed(&s, "nodes"), 0, "[{b}] quota freed");
        assert_eq!(free_nodes(&s), 1, "[{b}] schedulable again");
        capacity_is_the_stores(&[&s, &replica], &format!("[{b}] sanitized"));
        assert_eq!(engine_reloads(&replica), replica_reloads, "[{b}] replayed, not rebuilt");
        let trail = actions(&s, &format!("/{}", node(&s, "bm-1")["id"].as_str().unwrap()));
        assert_eq!(times(&trail, "node_failed"), 1, "[{b}] {trail:?}");
        assert!(times(&trail, "node_releasing") > 0, "[{b}] {trail:?}");
        assert_eq!(times(&trail, "node_active"), 0, "[{b}] {trail:?}");
    }
}

#[test]
fn a_failed_sanitizer_step_keeps_the_node_out_of_the_pool_until_sanitized_again() {
    let Some(emu) = peers::Emulator::start(1) else { return };
    for b in TestBackend::ALL {
        let Some(mut s) = server(b, 120) else { continue };
        let b = b.as_str();
        let tenant = setup(&s, &emu, 1);
        let node_id = node(&s, "bm-1")["id"].as_str().unwrap().to_string();
        let inst = create(&tenant, "job");
        let id = inst["id"].as_str().unwrap().to_string();
        let alloc = inst["allocation_id"].as_str().unwrap().to_string();
        let tenant_agent = spawn(boot(&s, 1, TENANT_KERNEL, hw("n1", None)));
        wait_node(&s, "bm-1", "active", None);
        release(&tenant, &id).expect(202);

        // The sanitizer's disk wipe fails.
        let sanitizer =
            spawn(boot(&s, 1, SANITIZER_KERNEL, hw("n1-san", Some(AgentStepKind::WipeDisks))));
        assert_eq!(exit_of(tenant_agent), Exit::Revoked, "[{b}]");
        let l = wait_node(&s, "bm-1", "failed", None);
        assert_eq!(l["from"], "sanitizing", "[{b}] {l}");
        let reason = l["reason"].as_str().unwrap();
        assert!(
            reason.contains("sanitization incomplete") && reason.contains("wipe_disks"),
            "[{b}] {reason}"
        );
        assert!(!reason.contains("reset_gpus"), "[{b}] only the failed step is named: {reason}");
        assert_eq!(exit_of(sanitizer), Exit::Revoked, "[{b}]");

        // A signed, incomplete record, readable by the tenant and the provider.
        let recs = records(&tenant, &id);
        assert_eq!(recs.len(), 1, "[{b}] {recs:?}");
        let rec = &recs[0];
        assert_eq!(rec["body"]["complete"], false, "[{b}] {rec}");
        assert!(verified(rec), "[{b}] the incomplete record is signed too");
        let wipe = check(rec, "wipe_disks");
        assert_eq!(wipe["ok"], false, "[{b}] {wipe}");
        assert!(wipe.to_string().contains("simulated failure of wipe_disks"), "[{b}] {wipe}");
        for ok in ["reset_gpus", "report_firmware", "clear_boot_override"] {
            assert_eq!(check(rec, ok)["ok"], true, "[{b}] {ok}: {rec}");
        }
        let prov = s.admin().get("/v1/nodes/bm-1/sanitizations").expect(200).body;
        assert_eq!(prov["items"][0]["id"], rec["id"], "[{b}] {prov}");

        // The tenant is done with it: instance released, allocation and
        // quota freed.
        let i = instance(&tenant, &id);
        assert_eq!(i["state"], "released", "[{b}] {i}");
        let a = tenant
            .get(&format!("/v1/tenants/acme/projects/train/allocations/{alloc}"))
            .expect(200)
            .body;
        assert_eq!(a["state"], "released", "[{b}] {a}");
        assert_eq!(committed(&s, "nodes"), 0, "[{b}]");
        // But the node is not clean: not schedulable, nothing lands on it.
        assert_eq!(free_nodes(&s), 0, "[{b}]");
        let before = count(&s, "SELECT COUNT(*) FROM instances");
        let r = tenant
            .post(
                INSTANCES,
                &json!({"name": "next", "instance_type": "bm-h100", "image": "ubuntu"}),
            )
            .expect(409);
        assert!(r.text.contains("cannot place"), "[{b}] {}", r.text);
        assert_eq!(count(&s, "SELECT COUNT(*) FROM instances"), before, "[{b}]");
        assert_eq!(
            count(
                &s,
                &format!("SELECT COUNT(*) FROM nodes WHERE id = '{node_id}' AND dirty_instance_id = '{id}'")
            ),
            1,
            "[{b}] still dirty with the tenant's instance"
        );
        let (_, script) = ipxe(&s, 1);
        assert!(script.contains("exit"), "[{b}] nothing to boot while failed: {script}");

        // From here on a booted image has 2 s to register its agent.
        s.restart_with(|c| tweak(c, 2));
        let tenant = s.client(tenant.token.as_deref().unwrap());
        let inspect_again = |s: &TestServer| {
            s.admin().post("/v1/nodes/bm-1/inspect", &json!({})).expect(202);
            wait_for(&format!("[{b}] bm-1 releasing again"), Duration::from_secs(60), || {
                let l = lifecycle(s, "bm-1");
                assert_ne!(l["state"], "available", "[{b}] a dirty node became available: {l}");
                (l["state"] == "releasing").then_some(())
            });
            assert_eq!(free_nodes(s), 0, "[{b}]");
        };
        // The provider inspects it again: dirty, so it goes to be sanitized
        // again, never straight to available. This time the sanitizer never
        // comes up: the node fails again, and the tenant's instance, done
        // with, stays released.
        inspect_again(&s);
        let l = wait_node(&s, "bm-1", "failed", None);
        assert_eq!(l["from"], "releasing", "[{b}] {l}");
        assert!(
            l["reason"].as_str().unwrap().contains("sanitizer's agent did not register"),
            "[{b}] {l}"
        );
        let i = instance(&tenant, &id);
        assert_eq!(i["state"], "released", "[{b}] {i}");
        assert!(i["reason"].is_null(), "[{b}] {i}");
        assert_eq!(free_nodes(&s), 0, "[{b}]");
        assert_eq!(records(&tenant, &id).len(), 1, "[{b}] no sanitization, no record");
        // Inspected once more, with a sanitizer that works (its agent
        // registers as soon as the node network-boots it).
        inspect_again(&s);
        let sanitizer = spawn(boot(&s, 1, SANITIZER_KERNEL, hw("n1-san2", None)));
        wait_node(&s, "bm-1", "available", None);
        assert_eq!(exit_of(sanitizer), Exit::Revoked, "[{b}]");
        let recs = records(&tenant, &id);
        assert_eq!(recs.len(), 2, "[{b}] {recs:?}");
        assert_eq!(recs[0]["body"]["complete"], true, "[{b}] newest first: {}", recs[0]);
        assert!(verified(&recs[0]), "[{b}]");
        // The released instance stays released, released once.
        let i = instance(&tenant, &id);
        assert_eq!(i["state"], "released", "[{b}] {i}");
        assert!(i["reason"].is_null(), "[{b}] {i}");
        let trail = actions(&s, &format!("/instances/{id}"));
        assert_eq!(times(&trail, "instance_released"), 1, "[{b}] {trail:?}");
        assert_eq!(committed(&s, "nodes"), 0, "[{b}]");
        assert_eq!(
            count(
                &s,
                &format!("SELECT COUNT(*) FROM nodes WHERE id = '{node_id}' AND dirty_instance_id IS NULL")
            ),
            1,
            "[{b}] clean now"
        );
        assert_eq!(free_nodes(&s), 1, "[{b}]");
        let next = create(&tenant, "next");
        assert_eq!(next["node_id"], node_id.as_str(), "[{b}] placed on the clean node");
    }
}

#[test]
fn a_restart_while_awaiting_the_agent_keeps_the_boot_token_and_converges() {
    let Some(emu) = peers::Emulator::start(1) else { return };
    for b in TestBackend::ALL {
        let Some(mut s) = server(b, 120) else { continue };
        let b = b.as_str();
        let tenant = setup(&s, &emu, 1);
        let id = create(&tenant, "job")["id"].as_str().unwrap().to_string();
        wait_node(&s, "bm-1", "provisioning", Some("await_agent"));
        let token = token_of(&wait_boot(&s, 1, TENANT_KERNEL));
        let since = node(&s, "bm-1")["lifecycle_since"].clone();
        let node_id = node(&s, "bm-1")["id"].as_str().unwrap().to_string();
        let trail = actions(&s, &format!("/{node_id}"));

        s.restart_with(|c| tweak(c, 120));
        let tenant = s.client(tenant.token.as_deref().unwrap());
        // The restarted server picks up where the other stopped: same step,
        // not started over; the same token is served, at its new address.
        std::thread::sleep(Duration::from_millis(500));
        let n = node(&s, "bm-1");
        assert_eq!(n["lifecycle"]["state"], "provisioning", "[{b}] {n}");
        assert_eq!(n["lifecycle"]["step"], "await_agent", "[{b}] {n}");
        assert_eq!(n["lifecycle_since"], since, "[{b}] no step repeated: {n}");
        let script = wait_boot(&s, 1, TENANT_KERNEL);
        assert_eq!(token_of(&script), token, "[{b}]");
        assert!(script.contains(&format!("neocloud.api={}", s.url)), "[{b}] {script}");

        // The image's agent registers with the token issued before the restart.
        let agent = Agent::register(&s.url, &token, hw("n1", None))
            .unwrap_or_else(|e| panic!("[{b}] the pre-restart token registers: {e}"));
        let running = spawn(agent);
        wait_node(&s, "bm-1", "active", None);
        let i = instance(&tenant, &id);
        assert_eq!(i["state"], "ready", "[{b}] {i}");
        let after = actions(&s, &format!("/{node_id}"));
        assert_eq!(
            times(&after, "node_provisioning"),
            times(&trail, "node_provisioning"),
            "[{b}] no provisioning step was taken again: {after:?}"
        );
        assert_eq!(times(&after, "node_active"), 1, "[{b}] {after:?}");
        stop(running);
    }
}

/// A network boot that never brings up the agent is tried again (boot
/// override set again, power-cycled) with the same token, up to
/// `boot_attempts`; a node whose agent registers during a later attempt
/// is handed over, one whose agent never comes is failed, saying so.
#[test]
fn a_boot_without_an_agent_is_retried_up_to_the_attempt_limit() {
    let Some(emu) = peers::Emulator::start(2) else { return };
    for b in TestBackend::ALL {
        let Some(s) = TestServer::start_with(b, |c| {
            tweak(c, 120);
            c.boot_timeout_secs = 2;
            c.boot_attempts = 2;
        }) else {
            continue;
        };
        let b = b.as_str();
        let tenant = setup(&s, &emu, 2);
        let r = tenant
            .post(
                INSTANCES,
                &json!({"name": "job", "instance_type": "bm-h100", "image": "ubuntu", "count": 2}),
            )
            .expect(201);
        assert_eq!(r.body["items"].as_array().unwrap().len(), 2, "[{b}]");
        let first = token_of(&wait_boot(&s, 1, TENANT_KERNEL));
        for name in ["bm-1", "bm-2"] {
            let l = wait_node(&s, name, "provisioning", Some("await_agent"));
            assert_eq!(l["attempt"], 1, "[{b}] {l}");
        }
        // Nobody registers: both nodes are booted again.
        for name in ["bm-1", "bm-2"] {
            wait_for(&format!("[{b}] {name} booted again"), Duration::from_secs(30), || {
                let l = lifecycle(&s, name);
                assert_eq!(l["state"], "provisioning", "[{b}] {l}");
                (l["attempt"] == 2 && l["step"] == "await_agent").then_some(())
            });
        }
        let node_id = node(&s, "bm-1")["id"].as_str().unwrap().to_string();
        let trail = actions(&s, &format!("/{node_id}"));
        assert!(times(&trail, "node_provisioning") >= 4, "[{b}] two boots: {trail:?}");
        // Each boot gets its own token: the first boot's is refused, should
        // it come up late. bm-1's second boot registers.
        let second = token_of(&wait_boot(&s, 1, TENANT_KERNEL));
        assert_ne!(second, first, "[{b}] a fresh token per boot");
        register_raw(&s, &first, "n1").expect(401);
        let agent = boot(&s, 1, TENANT_KERNEL, hw("n1", None));
        let running = spawn(agent);
        wait_node(&s, "bm-1", "active", None);
        // bm-2's never does: after the last attempt the node fails.
        let l = wait_node(&s, "bm-2", "failed", None);
        let reason = l["reason"].as_str().unwrap();
        assert!(reason.contains("did not register within 2s, 2 boot attempts"), "[{b}] {reason}");
        // Its instance has nowhere else to go (bm-1 is the other's).
        wait_for(&format!("[{b}] one instance failed"), Duration::from_secs(30), || {
            let mut states: Vec<String> = tenant.get(INSTANCES).expect(200).body["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i["state"].as_str().unwrap().to_string())
                .collect();
            states.sort();
            (states == ["failed", "ready"]).then_some(())
        });
        stop(running);
    }
}

/// A release whose sanitizer never comes up: the node fails, dirty and out
/// of the pool, but the tenant is done with it: its instance is released
/// (saying why) and its quota freed, as with an incomplete record. The
/// provider's re-inspection has it sanitized; the tenant gets the record.
#[test]
fn a_release_whose_sanitizer_never_comes_frees_the_tenant_and_keeps_the_node_out() {
    let Some(emu) = peers::Emulator::start(1) else { return };
    for b in TestBackend::ALL {
        // Three seconds, one boot, for an image's agent to register.
        let Some(s) = server(b, 3) else { continue };
        let b = b.as_str();
        let tenant = setup(&s, &emu, 1);
        let id = create(&tenant, "job")["id"].as_str().unwrap().to_string();
        let tenant_agent = spawn(boot(&s, 1, TENANT_KERNEL, hw("n1", None)));
        wait_node(&s, "bm-1", "active", None);
        assert_eq!(committed(&s, "nodes"), 1, "[{b}]");
        release(&tenant, &id).expect(202);
        assert_eq!(exit_of(tenant_agent), Exit::Revoked, "[{b}]");
        // Nobody boots the sanitizer.
        let l = wait_node(&s, "bm-1", "failed", None);
        assert_eq!(l["from"], "releasing", "[{b}] {l}");
        let i = instance(&tenant, &id);
        assert_eq!(i["state"], "released", "[{b}] {i}");
        let why = i["reason"].as_str().unwrap_or_default();
        assert!(
            why.contains("sanitization did not complete") && why.contains("did not register"),
            "[{b}] {i}"
        );
        assert_eq!(committed(&s, "nodes"), 0, "[{b}] quota freed");
        assert_eq!(free_nodes(&s), 0, "[{b}] the node stays out of the pool");
        assert!(records(&tenant, &id).is_empty(), "[{b}] no record yet");
        let (_, script) = ipxe(&s, 1);
        assert!(script.contains("exit"), "[{b}] nothing to boot: {script}");
        // The provider has it inspected again: dirty, so it is sanitized.
        s.admin().post("/v1/nodes/bm-1/inspect", &json!({})).expect(202);
        let sanitizer = spawn(boot(&s, 1, SANITIZER_KERNEL, hw("n1-san", None)));
        wait_node(&s, "bm-1", "available", None);
        assert_eq!(exit_of(sanitizer), Exit::Revoked, "[{b}]");
        let recs = records(&tenant, &id);
        assert_eq!(recs.len(), 1, "[{b}] {recs:?}");
        assert_eq!(recs[0]["body"]["complete"], true, "[{b}] {}", recs[0]);
        assert!(verified(&recs[0]), "[{b}]");
        assert_eq!(free_nodes(&s), 1, "[{b}] schedulable again");
        assert_eq!(instance(&tenant, &id)["state"], "released", "[{b}]");
        assert_eq!(committed(&s, "nodes"), 0, "[{b}] freed once");
    }
}

/// A sanitizer whose agent falls silent before its steps are done (its
/// node reset, crashed or hung; or a boot repeated after a control-plane
/// crash killed the agent that had registered) is booted again with a
/// fresh token: the silent agent's credential and spent token stop
/// working, and the new boot's agent finishes the job (told, once its
/// steps are all reported, to heartbeat at the tenants' slower pace). When
/// the last boot attempt falls silent too, the node fails saying so.
#[test]
fn a_sanitizer_that_falls_silent_is_booted_again_with_a_fresh_token() {
    let Some(emu) = peers::Emulator::start(1) else { return };
    for b in TestBackend::ALL {
        let Some(s) = server_without_controller(b) else { continue };
        let b = b.as_str();
        let (tenant, mut ctl, secrets) = one_node_by_hand(&s, &emu);
        let silence = Duration::from_millis(1500);
        ctl.agent_silence = silence;
        ctl.boot_attempts = 2;
        let node_id = node(&s, "bm-1")["id"].as_str().unwrap().to_string();

        // Provisioned, then released: the sanitizer boots and registers.
        let provision_and_release = |name: &str| -> String {
            let id = create(&tenant, name)["id"].as_str().unwrap().to_string();
            drive(&ctl, &secrets, &s, "bm-1", "provisioning");
            ctl.run_once(&s.store, &secrets).unwrap();
            ctl.run_once(&s.store, &secrets).unwrap();
            let token = token_of(&wait_boot(&s, 1, TENANT_KERNEL));
            register_raw(&s, &token, "n1").expect(201);
            drive(&ctl, &secrets, &s, "bm-1", "active");
            release(&tenant, &id).expect(202);
            id
        };
        let sanitizer_registers = |seed: &str| -> (String, Client) {
            drive_to_boot(&ctl, &secrets, &s, "bm-1");
            let token = token_of(&wait_boot(&s, 1, SANITIZER_KERNEL));
            let reg = register_raw(&s, &token, seed).expect(201).body;
            (token, s.client(reg["credential"].as_str().unwrap()))
        };
        let id = provision_and_release("job");
        drive(&ctl, &secrets, &s, "bm-1", "releasing");
        let (first_token, first) = sanitizer_registers("n1-san");
        drive(&ctl, &secrets, &s, "bm-1", "sanitizing");
        let l = lifecycle(&s, "bm-1");
        assert_eq!((&l["step"], &l["attempt"]), (&json!("agent_steps"), &json!(1)), "[{b}] {l}");
        // It takes its steps, reports one, and is heard no more. With steps
        // to take it heartbeats at its own pace (no `next_heartbeat_ms`).
        let beat = heartbeat(&first).expect(200).body;
        assert!(beat.get("next_heartbeat_ms").is_none(), "[{b}] {beat}");
        let steps = beat["steps"].as_array().unwrap();
        assert!(steps.len() > 1, "[{b}] {steps:?}");
        report(&first, steps[0]["id"].as_str().unwrap(), true).expect(200);
        ctl.run_once(&s.store, &secrets).unwrap();
        assert_eq!(lifecycle(&s, "bm-1")["state"], "sanitizing", "[{b}] not silent yet");
        std::thread::sleep(silence + Duration::from_millis(200));
        ctl.run_once(&s.store, &secrets).unwrap();
        let l = lifecycle(&s, "bm-1");
        assert_eq!((&l["state"], &l["attempt"]), (&json!("releasing"), &json!(2)), "[{b}] {l}");
        // The silent agent's credential and its spent token are done.
        heartbeat(&first).expect(401);
        register_raw(&s, &first_token, "n1-san").expect(401);
        let trail = actions(&s, &format!("/{node_id}"));
        assert!(times(&trail, "node_releasing") >= 4, "[{b}] booted again: {trail:?}");
        // The second boot's agent registers with a fresh token and finishes.
        drive(&ctl, &secrets, &s, "bm-1", "releasing");
        let (second_token, second) = sanitizer_registers("n1-san2");
        assert_ne!(second_token, first_token, "[{b}] a fresh token");
        drive(&ctl, &secrets, &s, "bm-1", "sanitizing");
        assert_eq!(lifecycle(&s, "bm-1")["attempt"], 2, "[{b}]");
        for st in heartbeat(&second).expect(200).body["steps"].as_array().unwrap() {
            report(&second, st["id"].as_str().unwrap(), true).expect(200);
        }
        // Every step reported: nothing more will come, so it is told to
        // heartbeat at the tenants' pace (100 ms here, 10 s by default)
        // while the controller finishes over the BMC.
        let beat = heartbeat(&second).expect(200).body;
        assert_eq!(
            (&beat["steps"], &beat["next_heartbeat_ms"]),
            (&json!([]), &json!(100)),
            "[{b}]"
        );
        drive(&ctl, &secrets, &s, "bm-1", "available");
        let recs = records(&tenant, &id);
        assert_eq!(recs.len(), 1, "[{b}] {recs:?}");
        assert_eq!(recs[0]["body"]["complete"], true, "[{b}] {}", recs[0]);
        assert!(verified(&recs[0]), "[{b}]");
        assert_eq!(instance(&tenant, &id)["state"], "released", "[{b}]");
        assert_eq!(free_nodes(&s), 1, "[{b}] schedulable again");

        // Silent on every boot attempt: the node fails, saying why, and
        // stays out of the pool.
        let id = provision_and_release("again");
        for attempt in 1..=2 {
            drive(&ctl, &secrets, &s, "bm-1", "releasing");
            sanitizer_registers(&format!("n1-san-{attempt}"));
            drive(&ctl, &secrets, &s, "bm-1", "sanitizing");
            assert_eq!(lifecycle(&s, "bm-1")["attempt"], attempt, "[{b}]");
            std::thread::sleep(silence + Duration::from_millis(200));
            ctl.run_once(&s.store, &secrets).unwrap();
        }
        let l = lifecycle(&s, "bm-1");
        assert_eq!(
            (&l["state"], &l["from"]),
            (&json!("failed"), &json!("sanitizing")),
            "[{b}] {l}"
        );
        let reason = l["reason"].as_str().unwrap();
        assert!(
            reason.contains("fell silent before finishing its steps")
                && reason.contains("2 boot attempts"),
            "[{b}] {reason}"
        );
        assert_eq!(free_nodes(&s), 0, "[{b}] the node stays out of the pool");
        assert_eq!(instance(&tenant, &id)["state"], "released", "[{b}] the tenant is done with it");
    }
}

/// The value of an unlabelled gauge on `/metrics`.
fn gauge(s: &TestServer, name: &str) -> i64 {
    let m = s.anonymous().get("/metrics").expect(200).text;
    let prefix = format!("{name} ");
    m.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no {name} in\n{m}"))
        .trim()
        .parse()
        .unwrap()
}

/// A tenant agent that stops heartbeating on its active node (the node
/// hung or crashed, or the tenant stopped it) is counted for the provider
/// (`neocloud_node_agents_silent`), and not before: the node stays the
/// tenant's. Released, the node no longer counts.
#[test]
fn a_tenant_agent_that_falls_silent_is_counted_for_the_provider() {
    let Some(emu) = peers::Emulator::start(1) else { return };
    for b in TestBackend::ALL {
        let Some(s) = server(b, 120) else { continue };
        let b = b.as_str();
        let tenant = setup(&s, &emu, 1);
        let id = create(&tenant, "job")["id"].as_str().unwrap().to_string();
        let running = spawn(boot(&s, 1, TENANT_KERNEL, hw("n1", None)));
        wait_node(&s, "bm-1", "active", None);
        assert_eq!(instance(&tenant, &id)["health"], "ok", "[{b}] a healthy node");
        // Heartbeating (every 100 ms here): never silent, for longer than
        // the silence (5 s + 3 heartbeats).
        let heard = std::time::Instant::now();
        while heard.elapsed() < Duration::from_millis(6500) {
            assert_eq!(gauge(&s, "neocloud_node_agents_silent"), 0, "[{b}] a live agent");
            std::thread::sleep(Duration::from_millis(250));
        }
        stop(running);
        wait_for(&format!("[{b}] the silent agent counted"), Duration::from_secs(15), || {
            (gauge(&s, "neocloud_node_agents_silent") == 1).then_some(())
        });
        assert_eq!(lifecycle(&s, "bm-1")["state"], "active", "[{b}] still the tenant's");
        release(&tenant, &id).expect(202);
        wait_node(&s, "bm-1", "releasing", Some("await_agent"));
        wait_for(&format!("[{b}] released: not counted"), Duration::from_secs(5), || {
            (gauge(&s, "neocloud_node_agents_silent") == 0).then_some(())
        });
    }
}

/// Simulated hardware with two GPUs, the second with uncorrectable memory
/// errors and a failed row remap that no reset clears.
fn sick_hw(seed: &str) -> std::sync::Arc<dyn neocloud_agent::Hardware> {
    let mut c = neocloud_agent::SimulatedConfig::new(seed);
    c.gpu_count = 2;
    c.unhealthy_gpu = Some(1);
    std::sync::Arc::new(neocloud_agent::Simulated::new(c))
}

/// A GPU whose memory failed under the tenant is shown to the provider
/// (the node's hardware, `neocloud_nodes_unhealthy`, the audit trail) and
/// the node stays the tenant's; released, the sanitizer's GPU reset does
/// not clear it, so the node fails its sanitization instead of going to
/// the next tenant.
#[test]
fn an_unhealthy_gpu_is_shown_and_keeps_the_node_from_the_next_tenant() {
    let Some(emu) = peers::Emulator::start(1) else { return };
    for b in TestBackend::ALL {
        let Some(s) = server(b, 120) else { continue };
        let b = b.as_str();
        let tenant = setup(&s, &emu, 1);
        let node_id = node(&s, "bm-1")["id"].as_str().unwrap().to_string();
        let id = create(&tenant, "job")["id"].as_str().unwrap().to_string();
        let tenant_agent = spawn(boot(&s, 1, TENANT_KERNEL, sick_hw("n1")));
        wait_node(&s, "bm-1", "active", None);

        let hw = wait_for(&format!("[{b}] the health recorded"), Duration::from_secs(10), || {
            let hw = s.admin().get("/v1/nodes/bm-1/hardware").expect(200).body;
            hw["agent"]["health"].as_str().unwrap().starts_with("degraded: ").then_some(hw)
        });
        let health = hw["agent"]["health"].as_str().unwrap();
        assert!(
            health.contains("GPU 1 (") && health.contains("2 uncorrectable ECC"),
            "[{b}] {health}"
        );
        assert!(health.contains("row remap failed"), "[{b}] {health}");
        let st = hw["agent"]["gpu_status"].as_array().unwrap();
        assert_eq!(st.len(), 2, "[{b}] {hw}");
        assert_eq!(st[0]["problems"], json!([]), "[{b}] GPU 0 is fine: {}", st[0]);
        assert_eq!(st[0]["ecc_uncorrected"], 0, "[{b}]");
        assert_eq!(st[0]["temperature_c"], 32, "[{b}] readings are kept: {}", st[0]);
        assert_eq!(st[1]["ecc_uncorrected"], 2, "[{b}] {}", st[1]);
        assert_eq!(st[1]["row_remap_failed"], true, "[{b}] {}", st[1]);
        assert_eq!(st[1]["problems"].as_array().unwrap().len(), 2, "[{b}] {}", st[1]);
        wait_for(&format!("[{b}] the node counted unhealthy"), Duration::from_secs(15), || {
            (gauge(&s, "neocloud_nodes_unhealthy") == 1).then_some(())
        });
        let trail = actions(&s, &format!("/{node_id}"));
        assert_eq!(times(&trail, "agent_health"), 1, "[{b}] once, when it changed: {trail:?}");
        // Still the tenant's: the provider decides, not a heartbeat. The
        // tenant sees it too, on its instance.
        assert_eq!(lifecycle(&s, "bm-1")["state"], "active", "[{b}]");
        let i = instance(&tenant, &id);
        assert_eq!(i["state"], "ready", "[{b}]");
        assert_eq!(i["health"], health, "[{b}] {i}");

        release(&tenant, &id).expect(202);
        let sanitizer = spawn(boot(&s, 1, SANITIZER_KERNEL, sick_hw("n1")));
        assert_eq!(exit_of(tenant_agent), Exit::Revoked, "[{b}]");
        let l = wait_node(&s, "bm-1", "failed", None);
        assert_eq!(l["from"], "sanitizing", "[{b}] {l}");
        let reason = l["reason"].as_str().unwrap();
        assert!(reason.contains("reset_gpus"), "[{b}] {reason}");
        assert!(!reason.contains("wipe_disks"), "[{b}] only the failed step: {reason}");
        assert_eq!(exit_of(sanitizer), Exit::Revoked, "[{b}]");
        let recs = records(&tenant, &id);
        assert_eq!(recs.len(), 1, "[{b}] {recs:?}");
        assert_eq!(recs[0]["body"]["complete"], false, "[{b}] {}", recs[0]);
        assert!(verified(&recs[0]), "[{b}]");
        let i = instance(&tenant, &id);
        assert_eq!(i["state"], "released", "[{b}] {i}");
        assert!(i["health"].is_null(), "[{b}] no agent of the tenant's: {i}");
        let reset = check(&recs[0], "reset_gpus");
        assert_eq!(reset["ok"], false, "[{b}] {reset}");
        let detail = reset.to_string();
        assert!(
            detail.contains("but: GPU 1 (") && detail.contains("row remap failed"),
            "[{b}] {detail}"
        );
        assert_eq!(free_nodes(&s), 0, "[{b}] nobody gets the sick node");
        // Failed: the provider's failure count says it, not the health gauge.
        wait_for(
            &format!("[{b}] a failed node no longer counted"),
            Duration::from_secs(15),
            || (gauge(&s, "neocloud_nodes_unhealthy") == 0).then_some(()),
        );
    }
}
