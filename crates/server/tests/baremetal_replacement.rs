//! A node that fails before its instance was handed over: the instance is
//! placed on another node (its quota, network attachments and addresses
//! with it), the failed node stays out of service and dirty until the
//! provider has it sanitized, and that sanitization frees nothing of the
//! instance, which lives on. An instance that was handed over (a rebuild)
//! or finds no other node fails with its node. Against the sushy-tools
//! Redfish emulator (fake driver), the server's own controller running, on
//! both stores; the test plays the nodes' agents.

mod bm;
mod common;
#[path = "../../redfish/tests/common/mod.rs"]
mod peers;

use bm::*;
use common::nodes::{lifecycle, token_of, wait_for, wait_node};
use common::{Client, TestBackend, TestServer};
use neocloud_server::controllers::lifecycle::LifecycleController;
use neocloud_server::secrets::SecretBox;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

const VPC: &str = "/v1/tenants/acme/projects/train/vpcs";

/// The server's controller with a short boot timeout (one boot): a node
/// whose agent the test does not play fails within seconds.
fn server_failing_fast(b: TestBackend, replacements: u32) -> Option<TestServer> {
    TestServer::start_with(b, |c| {
        tweak(c, 120);
        c.boot_timeout_secs = 4;
        c.provision_replacements = replacements;
    })
}

/// The name (`bm-{i}`) and index of the node with id `id`.
fn node_name(s: &TestServer, id: &str) -> (String, usize) {
    let n = s.admin().get(&format!("/v1/nodes/{id}")).expect(200).body;
    let name = n["name"].as_str().unwrap().to_string();
    let i = name.trim_start_matches("bm-").parse().unwrap();
    (name, i)
}

/// Plays the node's image: registers with the token of its iPXE script.
fn boot_agent(s: &TestServer, i: usize, kernel: &str, seed: &str) -> Client {
    let token = token_of(&wait_boot(s, i, kernel));
    let reg = register_raw(s, &token, seed).expect(201).body;
    s.client(reg["credential"].as_str().unwrap())
}

/// Plays the sanitizer on node `i`: every step reported done.
fn sanitize(s: &TestServer, i: usize, seed: &str) {
    let san = boot_agent(s, i, SANITIZER_KERNEL, seed);
    let steps = wait_for("the sanitizer's steps", Duration::from_secs(30), || {
        let hb = heartbeat(&san).expect(200).body;
        let steps = hb["steps"].as_array().cloned().unwrap_or_default();
        (!steps.is_empty()).then_some(steps)
    });
    for st in steps {
        report(&san, st["id"].as_str().unwrap(), true).expect(200);
    }
}

/// The tenant's VPC `main` and network `web` on fabric `dc1`, whose leaf
/// has both nodes' `eno1` (simulated switches).
fn network(s: &TestServer, tenant: &Client) {
    let a = s.admin();
    let sw = |name: &str, role: &str, asn: u32, lo: &str, ports: Value| {
        json!({"name": name, "role": role, "os": "frr", "mgmt_address": lo, "asn": asn,
               "loopback": lo, "fabric_ports": ports, "management": {"transport": "simulated"}})
    };
    a.put(
        "/v1/fabrics/dc1",
        &json!({
            "kind": "ethernet",
            "pools": {"l2_vni": {"first": 10000, "last": 10999},
                      "l3_vni": {"first": 50000, "last": 50099},
                      "vlan": {"first": 100, "last": 999}, "route_target_asn": 65000,
                      "provisioning_vni": 9999, "provisioning_vlan": 4000},
            "switches": [
                sw("spine1", "spine", 65000, "10.255.0.1", json!([{"port": "swp1", "peer": "leaf1"}])),
                sw("leaf1", "leaf", 65101, "10.255.1.1", json!([{"port": "swp49", "peer": "spine1"}])),
            ],
            "links": [
                {"node": "bm-1", "nic": "eno1", "switch": "leaf1", "port": "swp1"},
                {"node": "bm-2", "nic": "eno1", "switch": "leaf1", "port": "swp2"},
            ],
        }),
    )
    .expect(201);
    tenant.post(VPC, &json!({"name": "main"})).expect(201);
    tenant
        .post(&format!("{VPC}/main/networks"), &json!({"name": "web", "cidr": "10.0.0.0/24"}))
        .expect(201);
}

/// `ctl` given a placement engine loaded from the store (as another
/// replica's), so that it places instances again.
fn with_placement(s: &TestServer, ctl: &mut LifecycleController) {
    let state = s.store.read(neocloud_server::placement::load).unwrap();
    ctl.placement =
        Some(Arc::new(neocloud_server::placement::PlacementService::new(state, &s.store)));
}

/// A controller of the test's own that places instances again.
fn controller_placing(s: &TestServer) -> (LifecycleController, SecretBox) {
    let (mut ctl, secrets) = controller(s);
    with_placement(s, &mut ctl);
    (ctl, secrets)
}

/// An instance created, and its node booted and failed by `ctl` (its
/// image's agent never comes): the instance is left pending on it.
/// Answers (instance id, failed node's id).
fn first_node_failed_by_hand(
    s: &TestServer,
    tenant: &Client,
    ctl: &mut LifecycleController,
    secrets: &SecretBox,
) -> (String, String) {
    let inst = create(tenant, "job");
    let id = inst["id"].as_str().unwrap().to_string();
    let first = inst["node_id"].as_str().unwrap().to_string();
    let (first_name, _) = node_name(s, &first);
    drive(ctl, secrets, s, &first_name, "provisioning");
    drive_to_boot(ctl, secrets, s, &first_name);
    ctl.boot_timeout = Duration::from_millis(200);
    ctl.boot_attempts = 1;
    std::thread::sleep(Duration::from_millis(400));
    ctl.run_once(&s.store, secrets).unwrap();
    assert_eq!(lifecycle(s, &first_name)["state"], "failed");
    (id, first)
}

fn attachment_node(s: &TestServer, id: &str) -> String {
    s.store.read(|r| r.query("SELECT node_id FROM attachments WHERE id = ?", &[id.into()])).unwrap()
        [0]
    .str(0)
    .unwrap()
}

fn dirty_instance(s: &TestServer, node_id: &str) -> Option<String> {
    s.store
        .read(|r| r.query("SELECT dirty_instance_id FROM nodes WHERE id = ?", &[node_id.into()]))
        .unwrap()[0]
        .opt_str(0)
        .unwrap()
}

#[test]
fn an_instance_whose_node_fails_before_handover_is_placed_on_another_node() {
    let Some(emu) = peers::Emulator::start(2) else { return };
    for b in TestBackend::ALL {
        let Some(s) = server_failing_fast(b, 2) else { continue };
        let b = b.as_str();
        let tenant = setup(&s, &emu, 2);
        network(&s, &tenant);
        let inst = create(&tenant, "job");
        let id = inst["id"].as_str().unwrap().to_string();
        let first = inst["node_id"].as_str().unwrap().to_string();
        let (first_name, _) = node_name(&s, &first);
        // Attached while pending, with the address the tenant asked for.
        let att = tenant
            .post(
                &format!("{VPC}/main/networks/web/attachments"),
                &json!({"instance": id, "ip": "10.0.0.10"}),
            )
            .expect(201)
            .body;
        let att_id = att["id"].as_str().unwrap().to_string();
        let att_path = format!("{VPC}/main/networks/web/attachments/{att_id}");
        assert_eq!(attachment_node(&s, &att_id), first, "[{b}]");
        let alloc = inst["allocation_id"].as_str().unwrap().to_string();

        // The first node boots and its image never checks in: it fails,
        // and the instance goes to the other node.
        let (_, first_i) = node_name(&s, &first);
        let late_token = token_of(&wait_boot(&s, first_i, TENANT_KERNEL));
        let failed = wait_node(&s, &first_name, "failed", None);
        assert_eq!(failed["from"], "provisioning", "[{b}] {failed}");
        let moved = wait_for("the instance on another node", Duration::from_secs(30), || {
            let i = instance(&tenant, &id);
            (i["node_id"] != first.as_str()).then_some(i)
        });
        assert_eq!(moved["replacements"], 1, "[{b}] {moved}");
        // A late boot of the failed node cannot speak for the instance.
        let r = register_raw(&s, &late_token, "late").expect(401);
        assert_eq!(r.error().0, "unauthenticated", "[{b}] {}", r.text);
        assert_ne!(moved["allocation_id"], alloc.as_str(), "[{b}] a new allocation: {moved}");
        assert_ne!(moved["state"], "failed", "[{b}] {moved}");
        let second = moved["node_id"].as_str().unwrap().to_string();
        let (second_name, second_i) = node_name(&s, &second);
        // One node's quota, one active allocation: the old one released.
        assert_eq!(committed(&s, "nodes"), 1, "[{b}]");
        let allocations =
            tenant.get("/v1/tenants/acme/projects/train/allocations").expect(200).body["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| (a["id"].as_str().unwrap().to_string(), a["state"].clone()))
                .collect::<Vec<_>>();
        assert!(allocations.contains(&(alloc.clone(), json!("released"))), "[{b}] {allocations:?}");
        assert_eq!(
            allocations.iter().filter(|(_, st)| st == "active").count(),
            1,
            "[{b}] {allocations:?}"
        );
        // The attachment moved with it: same id and address, the new
        // node's NIC; the switches carry it there.
        assert_eq!(attachment_node(&s, &att_id), second, "[{b}]");
        let att = wait_for("the moved attachment on its leaf", Duration::from_secs(30), || {
            let a = tenant.get(&att_path).expect(200).body;
            (a["state"] == "ready").then_some(a)
        });
        assert_eq!(att["ip"], "10.0.0.10", "[{b}] {att}");
        assert_eq!(att["instance_id"], id.as_str(), "[{b}] {att}");

        // The second node boots the instance, and it is handed over.
        wait_node(&s, &second_name, "provisioning", Some("await_agent"));
        let _agent = boot_agent(&s, second_i, TENANT_KERNEL, "second");
        wait_node(&s, &second_name, "active", None);
        let ready = instance(&tenant, &id);
        assert_eq!(ready["state"], "ready", "[{b}] {ready}");
        assert_eq!(ready["replacements"], 1, "[{b}] {ready}");
        let trail = actions(&s, &format!("/instances/{id}"));
        assert_eq!(times(&trail, "instance_placed_again"), 1, "[{b}] {trail:?}");
        assert!(trail.contains(&"instance_ready".to_string()), "[{b}] {trail:?}");
        let node_trail = actions(&s, &format!("/v1/nodes/{first}"));
        assert_eq!(times(&node_trail, "node_instance_placed_again"), 1, "[{b}] {node_trail:?}");
        let m = s.anonymous().get("/metrics").expect(200).text;
        assert!(
            m.contains("neocloud_instances_placed_again_total{outcome=\"placed\"} 1\n"),
            "[{b}]"
        );

        // The failed node stays out of service, dirty for the instance; the
        // provider inspects it again and it is sanitized: a record the
        // tenant reads, and the instance, ready elsewhere, is untouched.
        assert_eq!(lifecycle(&s, &first_name)["state"], "failed", "[{b}]");
        assert_eq!(dirty_instance(&s, &first).as_deref(), Some(id.as_str()), "[{b}]");
        s.admin().post(&format!("/v1/nodes/{first_name}/inspect"), &json!({})).expect(202);
        sanitize(&s, first_i, "first-san");
        wait_node(&s, &first_name, "available", None);
        assert_eq!(dirty_instance(&s, &first), None, "[{b}]");
        let i = instance(&tenant, &id);
        assert_eq!(i["state"], "ready", "[{b}] still the tenant's, on its node: {i}");
        assert_eq!(i["node_id"], second.as_str(), "[{b}] {i}");
        assert!(!i["release_requested"].as_bool().unwrap(), "[{b}] {i}");
        let recs = records(&tenant, &id);
        assert_eq!(recs.len(), 1, "[{b}] {recs:?}");
        assert_eq!(recs[0]["body"]["complete"], true, "[{b}]");
        assert_eq!(recs[0]["body"]["node_id"], first.as_str(), "[{b}] {}", recs[0]["body"]);
        assert_eq!(committed(&s, "nodes"), 1, "[{b}]");
        assert_eq!(attachment_node(&s, &att_id), second, "[{b}]");

        // Released: the second node is sanitized too; nothing is held.
        release(&tenant, &id).expect(202);
        sanitize(&s, second_i, "second-san");
        wait_node(&s, &second_name, "available", None);
        let i = instance(&tenant, &id);
        assert_eq!(i["state"], "released", "[{b}] {i}");
        assert_eq!(records(&tenant, &id).len(), 2, "[{b}]");
        assert_eq!(committed(&s, "nodes"), 0, "[{b}]");
        assert_eq!(free_nodes(&s), 2, "[{b}]");
    }
}

/// With one node there is nowhere to go: the instance fails with its node,
/// saying so. With replacements off, it fails with its node at once.
#[test]
fn an_instance_with_no_other_node_fails_with_its_node() {
    let Some(emu) = peers::Emulator::start(1) else { return };
    for (replacements, b) in [(2, TestBackend::Sqlite), (0, TestBackend::Postgres)]
        .into_iter()
        .chain([(0, TestBackend::Sqlite), (2, TestBackend::Postgres)])
    {
        let Some(s) = server_failing_fast(b, replacements) else { continue };
        let b = format!("{} replacements={replacements}", b.as_str());
        let tenant = setup(&s, &emu, 1);
        let id = create(&tenant, "job")["id"].as_str().unwrap().to_string();
        let failed = wait_node(&s, "bm-1", "failed", None);
        let i = wait_instance(&tenant, &id, "failed");
        let reason = i["reason"].as_str().unwrap();
        assert!(reason.contains(failed["reason"].as_str().unwrap()), "[{b}] {i}");
        assert_eq!(
            reason.contains("no other node could take it"),
            replacements > 0,
            "[{b}] {reason}"
        );
        assert!(i.get("replacements").is_none(), "[{b}] {i}");
        assert_eq!(committed(&s, "nodes"), 1, "[{b}] held until released");
        let m = s.anonymous().get("/metrics").expect(200).text;
        let failed_with_node = "neocloud_instances_placed_again_total{outcome=\"failed\"} 1\n";
        assert_eq!(m.contains(failed_with_node), replacements > 0, "[{b}]");
        // Released: its node is sanitized before the instance is released.
        release(&tenant, &id).expect(202);
        let i = instance(&tenant, &id);
        assert_ne!(i["state"], "released", "[{b}] not before its node is sanitized: {i}");
    }
}

/// A rebuild's node holds the tenant's data: when it fails, the instance
/// fails with it and stays there.
#[test]
fn a_rebuild_whose_node_fails_is_not_placed_elsewhere() {
    let Some(emu) = peers::Emulator::start(2) else { return };
    for b in TestBackend::ALL {
        let Some(s) = server_failing_fast(b, 2) else { continue };
        let b = b.as_str();
        let tenant = setup(&s, &emu, 2);
        let inst = create(&tenant, "job");
        let id = inst["id"].as_str().unwrap().to_string();
        let node = inst["node_id"].as_str().unwrap().to_string();
        let (name, i) = node_name(&s, &node);
        wait_node(&s, &name, "provisioning", Some("await_agent"));
        let _agent = boot_agent(&s, i, TENANT_KERNEL, "first");
        wait_node(&s, &name, "active", None);
        tenant.post(&format!("{INSTANCES}/{id}/rebuild"), &json!({})).expect(202);
        wait_node(&s, &name, "provisioning", None);
        wait_node(&s, &name, "failed", None);
        let i = wait_instance(&tenant, &id, "failed");
        assert_eq!(i["node_id"], node.as_str(), "[{b}] {i}");
        assert!(i.get("replacements").is_none(), "[{b}] {i}");
        assert_eq!(committed(&s, "nodes"), 1, "[{b}]");
        let trail = actions(&s, &format!("/instances/{id}"));
        assert_eq!(times(&trail, "instance_placed_again"), 0, "[{b}] {trail:?}");
    }
}

/// The failure and the move are two transactions: a control plane stopped
/// between them (here: the failing controller dropped before its next
/// pass) leaves a pending instance on a failed node, which the next
/// controller's first pass moves, before the inspection the provider asked
/// of the failed node meanwhile (whose sanitization then leaves the
/// instance alone).
#[test]
fn an_instance_left_pending_on_a_failed_node_is_moved_after_a_restart() {
    let Some(emu) = peers::Emulator::start(2) else { return };
    for b in TestBackend::ALL {
        let Some(s) = server_without_controller(b) else { continue };
        let b = b.as_str();
        let (tenant, mut ctl, secrets) = nodes_by_hand(&s, &emu, 2);
        with_placement(&s, &mut ctl);
        let (id, first) = first_node_failed_by_hand(&s, &tenant, &mut ctl, &secrets);
        let i = instance(&tenant, &id);
        assert_eq!(i["state"], "pending", "[{b}] {i}");
        assert_eq!(i["node_id"], first.as_str(), "[{b}] {i}");
        assert!(
            i["reason"].as_str().unwrap().contains("being placed on another node"),
            "[{b}] {i}"
        );
        drop(ctl);
        let (first_name, _) = node_name(&s, &first);
        s.admin().post(&format!("/v1/nodes/{first_name}/inspect"), &json!({})).expect(202);

        let read = instance(&tenant, &id)["generation"].as_i64().unwrap();
        let (ctl, secrets) = controller_placing(&s);
        ctl.run_once(&s.store, &secrets).unwrap();
        let i = instance(&tenant, &id);
        assert_ne!(i["node_id"], first.as_str(), "[{b}] moved: {i}");
        // A second replica's move, from what it read before this one:
        // refused (its transaction rolls back).
        let moved = s
            .store
            .write(|w| neocloud_store::instances::place_again(w, (&id, read), &first, "x", "again"))
            .unwrap();
        assert!(!moved, "[{b}]");
        assert_eq!(instance(&tenant, &id)["node_id"], i["node_id"], "[{b}]");
        assert_eq!(lifecycle(&s, &first_name)["state"], "failed", "[{b}] moved first");
        assert_eq!(i["replacements"], 1, "[{b}] {i}");
        let (second_name, _) = node_name(&s, i["node_id"].as_str().unwrap());
        drive(&ctl, &secrets, &s, &second_name, "provisioning");
        assert_eq!(instance(&tenant, &id)["state"], "provisioning", "[{b}]");
        assert_eq!(committed(&s, "nodes"), 1, "[{b}]");
        assert_eq!(
            count(&s, "SELECT COUNT(*) FROM allocations WHERE state = 'active'"),
            1,
            "[{b}] the failed node's allocation released"
        );
        // The failed node's inspection finds it dirty and releases it for
        // the instance, which goes on on its new node; it is placed once.
        drive(&ctl, &secrets, &s, &first_name, "releasing");
        let i = instance(&tenant, &id);
        assert_eq!(i["state"], "provisioning", "[{b}] {i}");
        assert_eq!(i["replacements"], 1, "[{b}] {i}");
    }
}

/// A move the store keeps refusing (here: a unit of the only free node
/// taken behind the placement engine's back, so every plan picks it) is
/// tried again on the next passes, then, past the retry budget, the
/// instance fails with its node, told only that it could not be moved.
#[test]
fn a_move_the_store_keeps_refusing_fails_the_instance_past_the_retry_budget() {
    use neocloud_server::controllers::lifecycle::RETRY_BUDGET;
    let Some(emu) = peers::Emulator::start(3) else { return };
    for b in TestBackend::ALL {
        let Some(s) = server_without_controller(b) else { continue };
        let b = b.as_str();
        let (tenant, mut ctl, secrets) = nodes_by_hand(&s, &emu, 3);
        with_placement(&s, &mut ctl);
        let hold = tenant
            .post(
                "/v1/tenants/acme/projects/train/allocations",
                &json!({"instance_type": "bm-h100"}),
            )
            .expect(201)
            .body;
        let held = hold["placement"]["assignments"][0]["node_id"].as_str().unwrap().to_string();
        let (id, first) = first_node_failed_by_hand(&s, &tenant, &mut ctl, &secrets);
        assert_eq!(instance(&tenant, &id)["state"], "pending", "[{b}]");
        let free: Vec<String> = s.admin().get("/v1/nodes").expect(200).body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["id"].as_str().unwrap().to_string())
            .filter(|n| *n != first && *n != held)
            .collect();
        assert_eq!(free.len(), 1, "[{b}] {free:?}");
        let hold_id = hold["id"].as_str().unwrap().to_string();
        s.store
            .write(|w| {
                w.execute(
                    "INSERT INTO allocation_holds (allocation_id, node_id, word, mask) VALUES (?, ?, 0, 1)",
                    &[hold_id.as_str().into(), free[0].as_str().into()],
                )?;
                w.execute(
                    "INSERT INTO node_units (node_id, word, held) VALUES (?, 0, 1)",
                    &[free[0].as_str().into()],
                )
                .map_err(Into::into)
            })
            .unwrap();
        for pass in 1..=RETRY_BUDGET {
            ctl.run_once(&s.store, &secrets).unwrap();
            let i = instance(&tenant, &id);
            assert_eq!(i["state"], "pending", "[{b}] pass {pass}: {i}");
            assert_eq!(i["node_id"], first.as_str(), "[{b}] pass {pass}: {i}");
        }
        ctl.run_once(&s.store, &secrets).unwrap();
        let i = instance(&tenant, &id);
        assert_eq!(i["state"], "failed", "[{b}] {i}");
        let reason = i["reason"].as_str().unwrap();
        assert!(reason.contains("it could not be placed on another node"), "[{b}] {reason}");
        assert!(!reason.contains("node_units"), "[{b}] no store internals: {reason}");
        assert_eq!(i["node_id"], first.as_str(), "[{b}] {i}");
        assert_eq!(committed(&s, "nodes"), 2, "[{b}] the hold and the failed instance");
    }
}
