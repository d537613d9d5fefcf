//! Several control-plane replicas on one store: one replica's fabric
//! controller converges a fabric at a time (it holds the fabric's lease),
//! so two never push to one switch at once; when it stops, another takes
//! over once the lease lapses.

mod common;

use common::nodes::wait_for;
use common::{network, Client, TestBackend, TestServer};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::time::Duration;

const P: &str = "/v1/tenants/acme/projects/p";

fn fast(c: &mut neocloud_server::Config) {
    c.lifecycle_interval_ms = 0;
    c.fabric_interval_ms = 100;
    c.fabric_lease_secs = 2;
}

fn doc() -> Value {
    let sw = |name: &str, role: &str, asn: u32, lo: &str, ports: Value| {
        json!({"name": name, "role": role, "os": "frr", "mgmt_address": lo, "asn": asn,
               "loopback": lo, "fabric_ports": ports, "management": {"transport": "simulated"}})
    };
    json!({
        "kind": "ethernet",
        "pools": {"l2_vni": {"first": 10000, "last": 10999}, "l3_vni": {"first": 50000, "last": 50099},
                  "vlan": {"first": 100, "last": 999}, "route_target_asn": 65000,
                  "provisioning_vni": 9999, "provisioning_vlan": 4000},
        "switches": [
            sw("spine1", "spine", 65000, "10.255.0.1", json!([{"port": "swp1", "peer": "leaf1"}])),
            sw("leaf1", "leaf", 65101, "10.255.1.1", json!([{"port": "swp49", "peer": "spine1"}])),
        ],
        "links": (1..=3).map(|i| json!({"node": format!("n{i}"), "nic": "eth0", "switch": "leaf1", "port": format!("swp{i}")})).collect::<Vec<_>>(),
    })
}

/// Who pushed to the switches, per the audit trail.
fn pushers(a: &Client) -> BTreeSet<String> {
    let t = a.get("/v1/audit?limit=1000").expect(200).body;
    t["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "switch_apply" || e["action"] == "switch_repair")
        .map(|e| e["actor_name"].as_str().unwrap().to_string())
        .collect()
}

fn attach(a: &Client, name: &str) -> String {
    let i = a
        .post(
            &format!("{P}/instances"),
            &json!({"name": name, "instance_type": "bm", "count": 1, "image": "os"}),
        )
        .expect(201)
        .body["items"][0]["id"]
        .clone();
    let att = a
        .post(&format!("{P}/vpcs/main/networks/web/attachments"), &json!({"instance": i}))
        .expect(201)
        .body;
    format!("{P}/vpcs/main/networks/web/attachments/{}", att["id"].as_str().unwrap())
}

fn wait_ready(a: &Client, path: &str) {
    wait_for("the attachment ready", Duration::from_secs(30), || {
        (a.get(path).expect(200).body["state"] == "ready").then_some(())
    });
}

#[test]
fn one_replica_converges_a_fabric_and_another_takes_over() {
    for b in TestBackend::ALL {
        // The first replica ticks slowly: changes made through the second
        // would be pushed by the second first, were it allowed to.
        let Some(mut s) = TestServer::start_with(b, |c| {
            fast(c);
            c.fabric_interval_ms = 1000;
        }) else {
            continue;
        };
        let b = b.as_str();
        let a = s.admin();
        network::nodes(&a, 3);
        network::catalog(&a);
        network::tenant(&a, "acme", 3);
        a.put("/v1/fabrics/dc1", &doc()).expect(201);
        a.post(&format!("{P}/vpcs"), &json!({"name": "main"})).expect(201);
        a.post(&format!("{P}/vpcs/main/networks"), &json!({"name": "web", "cidr": "10.0.0.0/24"}))
            .expect(201);
        // The first replica's controller takes the fabric's lease.
        let p1 = attach(&a, "i1");
        wait_ready(&a, &p1);
        let first = pushers(&a);
        assert_eq!(first.len(), 1, "[{b}] {first:?}");
        // A second replica: changes made through it are still pushed by
        // the holder alone, never by both.
        let mut r = s.replica_with(fast);
        let p2 = attach(&r.admin(), "i2");
        wait_ready(&a, &p2);
        std::thread::sleep(Duration::from_millis(500));
        assert_eq!(pushers(&a), first, "[{b}] only the lease holder pushes");
        // The holder stops; the other replica takes over once it lapses.
        s.stop();
        let other = r.admin();
        let p3 = attach(&other, "i3");
        wait_ready(&other, &p3);
        let who = pushers(&other);
        assert_eq!(who.len(), 2, "[{b}] the second replica took over: {who:?}");
        r.stop();
    }
}
