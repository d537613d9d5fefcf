//! The fabric controller drives a real driver over HTTP: an Arista EOS leaf
//! behind the protocol-faithful eAPI test double (no EOS runs here). A
//! tenant's attachment is pushed to it and becomes `ready`; an operator's
//! hand edit on the switch is found as drift and repaired (and audited);
//! a switch that refuses the credentials shows the failure in the fabric's
//! status, never silently.

mod common;

use common::nodes::wait_for;
use common::{network, TestBackend, TestServer};
use neocloud_switch::double::eos::EosDouble;
use serde_json::{json, Value};
use std::time::Duration;

const P: &str = "/v1/tenants/acme/projects/p";

fn doc(eos: &EosDouble, bad_password: bool) -> Value {
    let sw = |name: &str, role: &str, os: &str, asn: u32, lo: &str, ports: Value, m: Value| {
        json!({"name": name, "role": role, "os": os, "mgmt_address": lo, "asn": asn,
               "loopback": lo, "fabric_ports": ports, "management": m})
    };
    let password = if bad_password { "wrong".to_string() } else { eos.password.clone() };
    json!({
        "kind": "ethernet",
        "pools": {"l2_vni": {"first": 10000, "last": 10999}, "l3_vni": {"first": 50000, "last": 50099},
                  "vlan": {"first": 100, "last": 999}, "route_target_asn": 65000,
                  "provisioning_vni": 9999, "provisioning_vlan": 4000},
        "switches": [
            sw("spine1", "spine", "frr", 65000, "10.255.0.1", json!([{"port": "swp1", "peer": "leaf1"}]),
               json!({"transport": "simulated"})),
            sw("leaf1", "leaf", "arista-eos", 65101, "10.255.1.1",
               json!([{"port": "Ethernet49", "peer": "spine1"}]),
               json!({"transport": "https", "url": eos.url, "username": eos.username,
                      "password": password})),
        ],
        "links": [
            {"node": "n1", "nic": "eth0", "switch": "leaf1", "port": "Ethernet1"},
            {"node": "n2", "nic": "eth0", "switch": "leaf1", "port": "Ethernet2"},
        ],
    })
}

fn leaf(a: &common::Client) -> Value {
    let f = a.get("/v1/fabrics/dc1").expect(200).body;
    f["switches"].as_array().unwrap().iter().find(|s| s["name"] == "leaf1").unwrap().clone()
}

#[test]
fn the_controller_pushes_to_an_eos_leaf_repairs_drift_and_reports_failures() {
    for b in TestBackend::ALL {
        let eos = EosDouble::start(&["Ethernet1".into(), "Ethernet2".into(), "Ethernet49".into()]);
        let Some(s) = TestServer::start_with(b, |c| {
            c.lifecycle_interval_ms = 0;
            c.fabric_interval_ms = 100;
            c.fabric_check_secs = 1;
        }) else {
            continue;
        };
        let b = b.as_str();
        let a = s.admin();
        network::nodes(&a, 2);
        network::catalog(&a);
        network::tenant(&a, "acme", 2);

        // Wrong credentials: the failure is the switch's status.
        a.put("/v1/fabrics/dc1", &doc(&eos, true)).expect(201);
        let l = wait_for("the leaf's failure", Duration::from_secs(20), || {
            let l = leaf(&a);
            (l["state"] == "error").then_some(l)
        });
        assert!(l["message"].as_str().unwrap().contains("credentials"), "[{b}] {l}");
        let mut fixed = doc(&eos, false);
        fixed["generation"] = json!(1);
        a.put("/v1/fabrics/dc1", &fixed).expect(200);

        a.post(&format!("{P}/vpcs"), &json!({"name": "main"})).expect(201);
        a.post(&format!("{P}/vpcs/main/networks"), &json!({"name": "web", "cidr": "10.0.0.0/24"}))
            .expect(201);
        let inst = a
            .post(
                &format!("{P}/instances"),
                &json!({"name": "i", "instance_type": "bm", "count": 1, "image": "os"}),
            )
            .expect(201)
            .body["items"][0]
            .clone();
        let att = a
            .post(
                &format!("{P}/vpcs/main/networks/web/attachments"),
                &json!({"instance": inst["id"]}),
            )
            .expect(201)
            .body;
        let path =
            format!("{P}/vpcs/main/networks/web/attachments/{}", att["id"].as_str().unwrap());
        wait_for("the attachment on the EOS leaf", Duration::from_secs(30), || {
            (a.get(&path).expect(200).body["state"] == "ready").then_some(())
        });
        let running = eos.state().running_text();
        assert!(running.contains("vrf instance"), "[{b}] {running}");
        assert!(running.contains("vxlan vrf Vrf"), "[{b}] {running}");
        assert_eq!(leaf(&a)["state"], "in_sync", "[{b}]");

        // An operator removes the tenant's VRF by hand: drift, repaired.
        let vrf = running.lines().find(|l| l.starts_with("vrf instance ")).unwrap().to_string();
        eos.console(&[&format!("no {vrf}")]).unwrap();
        assert!(!eos.state().running_text().contains(&vrf), "[{b}] the hand edit took");
        wait_for("the drift repaired", Duration::from_secs(30), || {
            eos.state().running_text().contains(&vrf).then_some(())
        });
        let metrics = a.get("/metrics").text;
        assert!(
            metrics.contains("neocloud_fabric_applies_total{outcome=\"failed\"}"),
            "[{b}] {metrics}"
        );
        wait_for("the repair audited", Duration::from_secs(10), || {
            let t = a.get("/v1/audit?limit=1000").expect(200).text;
            t.contains("switch_repair").then_some(())
        });
        let metrics = a.get("/metrics").text;
        let repaired = metrics
            .lines()
            .find(|l| l.starts_with("neocloud_fabric_applies_total{outcome=\"repaired\"}"))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|n| n.parse::<u64>().ok());
        assert!(repaired.unwrap_or(0) >= 1, "[{b}] {metrics}");
    }
}
