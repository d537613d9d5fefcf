//! A released node's switch ports leave the tenant's networks before its
//! sanitizer boots. On the demo's SIMULATED datacenter (simulated BMCs and
//! switches; the FRR driver itself is tested against real FRR in the switch
//! crate's lab): with the fabric controller stopped, a release waits at its
//! first boot step; once the controller runs, the leaf is reconfigured
//! and the InfiniBand partitions first, and only then the node is booted,
//! sanitized and made available.

mod common;

use common::nodes::wait_for;
use common::{Client, TestBackend, TestServer};
use serde_json::{json, Value};
use std::time::Duration;

const P: &str = "/v1/tenants/demo/projects/train";

fn demo(c: &mut neocloud_server::Config, fabric_ms: u64) {
    c.demo = true;
    c.lifecycle_interval_ms = 100;
    c.heartbeat_interval_ms = 100;
    c.fabric_interval_ms = fabric_ms;
}

/// The provider chain, in order.
fn provider_trail(a: &Client) -> Vec<Value> {
    let mut out = Vec::new();
    let mut after = String::new();
    loop {
        let page = a.get(&format!("/v1/audit?limit=1000{after}")).expect(200).body;
        let items = page["items"].as_array().unwrap().clone();
        if items.is_empty() {
            break;
        }
        after = format!("&after={}", items.last().unwrap()["id"].as_str().unwrap());
        out.extend(items);
    }
    out.retain(|e| e["chain"] == "provider");
    out.sort_by_key(|e| e["seq"].as_i64().unwrap());
    out
}

/// On the demo: tenant `demo` with a VPC and network `web`, one ready
/// instance attached to it (on its leaf). Answers (instance id, node id,
/// attachment path).
fn attached_instance(a: &Client) -> (String, String, String) {
    a.post("/v1/tenants", &json!({"name": "demo"})).expect(201);
    a.put(
        "/v1/tenants/demo/quotas",
        &json!({"generation": 1, "limits": {"nodes": 16, "gpu:h100-80gb": 128}}),
    )
    .expect(200);
    a.post("/v1/tenants/demo/projects", &json!({"name": "train"})).expect(201);
    a.post(&format!("{P}/vpcs"), &json!({"name": "main"})).expect(201);
    a.post(&format!("{P}/vpcs/main/networks"), &json!({"name": "web", "cidr": "10.0.0.0/24"}))
        .expect(201);
    wait_for("the demo fleet", Duration::from_secs(60), || {
        let ns = a.get("/v1/nodes").expect(200).body;
        ns["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|n| n["lifecycle"]["state"] == "available")
            .then_some(())
    });
    let inst = a
        .post(
            &format!("{P}/instances"),
            &json!({"name": "web", "instance_type": "bm-h100", "count": 1,
                    "image": "sim-ubuntu-24-04"}),
        )
        .expect(201)
        .body["items"][0]
        .clone();
    let id = inst["id"].as_str().unwrap().to_string();
    let node = inst["node_id"].as_str().unwrap().to_string();
    wait_for("the instance ready", Duration::from_secs(60), || {
        let i = a.get(&format!("{P}/instances/{id}")).expect(200).body;
        assert_ne!(i["state"], "failed", "{i}");
        (i["state"] == "ready").then_some(())
    });
    let att = a
        .post(&format!("{P}/vpcs/main/networks/web/attachments"), &json!({"instance": id}))
        .expect(201)
        .body;
    let att_path =
        format!("{P}/vpcs/main/networks/web/attachments/{}", att["id"].as_str().unwrap());
    wait_for("the attachment on its leaf", Duration::from_secs(30), || {
        (a.get(&att_path).expect(200).body["state"] == "ready").then_some(())
    });
    (id, node, att_path)
}

#[test]
fn ports_leave_the_tenant_network_before_the_sanitizer_boots() {
    for b in TestBackend::ALL {
        let Some(mut s) = TestServer::start_with(b, |c| demo(c, 100)) else { continue };
        let b = b.as_str();
        let a = s.admin();
        let (id, node, att_path) = attached_instance(&a);

        // The node's HCA port is in its tenant's InfiniBand partition.
        let ib_conf = |a: &Client| {
            a.get("/v1/fabrics/sim-ib/plan").expect(200).body["subnet_manager"]["partitions_conf"]
                .as_str()
                .unwrap()
                .to_string()
        };
        let spec = a.get("/v1/fabrics/sim-ib").expect(200).body["spec"]["infiniband"].clone();
        let guid =
            spec["ports"].as_array().unwrap().iter().find(|p| p["node"] == node.as_str()).unwrap()
                ["guid"]
                .as_str()
                .unwrap()
                .to_string();
        wait_for("the node's partition programmed", Duration::from_secs(30), || {
            let f = a.get("/v1/fabrics/sim-ib").expect(200).body;
            let conf = ib_conf(&a);
            (f["switches"][0]["state"] == "in_sync" && conf.contains(&format!("0x{guid}=full")))
                .then_some(())
        });

        // The fabric controller stops; the release waits for the ports.
        s.restart_with(|c| demo(c, 0));
        let a = s.admin();
        a.delete(&format!("{P}/instances/{id}")).expect(202);
        wait_for("the release to start", Duration::from_secs(30), || {
            let l = a.get(&format!("/v1/nodes/{node}")).expect(200).body["lifecycle"].clone();
            (l["state"] == "releasing").then_some(())
        });
        // The release removed the attachment (the API only recorded intent).
        a.get(&att_path).expect(404);
        std::thread::sleep(Duration::from_secs(2));
        let l = a.get(&format!("/v1/nodes/{node}")).expect(200).body["lifecycle"].clone();
        assert_eq!(
            (l["state"].as_str(), l["step"].as_str()),
            (Some("releasing"), Some("set_boot")),
            "[{b}] the sanitizer must not boot while the node's port is in the tenant network: {l}"
        );

        // The controller runs: the leaf first, then the node's boot.
        s.restart_with(|c| demo(c, 100));
        let a = s.admin();
        wait_for("the instance released", Duration::from_secs(60), || {
            (a.get(&format!("{P}/instances/{id}")).expect(200).body["state"] == "released")
                .then_some(())
        });
        let trail = provider_trail(&a);
        let node_target = format!("/v1/nodes/{node}");
        let releasing: Vec<i64> = trail
            .iter()
            .filter(|e| e["target"] == node_target.as_str() && e["action"] == "node_releasing")
            .map(|e| e["seq"].as_i64().unwrap())
            .collect();
        assert!(releasing.len() >= 2, "[{b}] the release's boot steps are audited: {releasing:?}");
        let pushes: Vec<i64> = trail
            .iter()
            .filter(|e| e["action"] == "switch_apply" && e["outcome"] == "success")
            .map(|e| e["seq"].as_i64().unwrap())
            .collect();
        assert!(
            pushes.iter().any(|&p| p > releasing[0] && p < releasing[1]),
            "[{b}] a switch was reconfigured between the release ({}) and the sanitizer's boot ({}): {pushes:?}",
            releasing[0],
            releasing[1]
        );
        let ib_pushes: Vec<i64> = trail
            .iter()
            .filter(|e| e["action"] == "subnet_manager_apply" && e["outcome"] == "success")
            .map(|e| e["seq"].as_i64().unwrap())
            .collect();
        assert!(
            ib_pushes.iter().any(|&p| p > releasing[0] && p < releasing[1]),
            "[{b}] the partitions changed between the release and the sanitizer's boot: {ib_pushes:?}"
        );
        assert!(!ib_conf(&a).contains(&guid), "[{b}] the port left every partition");
        // Nothing is left to push: the node's port is back in quarantine.
        let plan = a.get("/v1/fabrics/sim-fabric/plan").expect(200).body;
        for sw in plan["switches"].as_array().unwrap() {
            assert!(sw["changes"].as_array().unwrap().is_empty(), "[{b}] {sw}");
        }
    }
}

/// Ports that never leave the tenant's network (the fabric controller is
/// down) fail the release after `isolation_timeout_secs`, saying why; the
/// tenant is freed and the node stays out of the pool.
#[test]
fn a_release_whose_ports_stay_in_the_tenant_network_fails_saying_why() {
    let b = TestBackend::Sqlite;
    let Some(mut s) = TestServer::start_with(b, |c| demo(c, 100)) else { return };
    let a = s.admin();
    let (id, node, _) = attached_instance(&a);
    s.restart_with(|c| {
        demo(c, 0);
        c.isolation_timeout_secs = 2;
    });
    let a = s.admin();
    a.delete(&format!("{P}/instances/{id}")).expect(202);
    let l = wait_for("the release to fail", Duration::from_secs(30), || {
        let l = a.get(&format!("/v1/nodes/{node}")).expect(200).body["lifecycle"].clone();
        (l["state"] == "failed").then_some(l)
    });
    let reason = l["reason"].as_str().unwrap();
    assert!(reason.contains("still in a tenant network") && reason.contains("sim-leaf"), "{l}");
    let i = a.get(&format!("{P}/instances/{id}")).expect(200).body;
    assert_eq!(i["state"], "released", "the tenant is freed: {i}");
}
