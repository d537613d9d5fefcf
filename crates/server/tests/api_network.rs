//! Tenant networking through the API: the provider's fabric document
//! (validated field by field, replaced by generation, secrets never
//! returned), tenants' VPCs and networks (address spaces overlap across
//! VPCs, never within one), attachments that become `ready` once the
//! fabric controller has pushed them (to SIMULATED switches here; the FRR
//! driver is tested against real FRR in the switch crate's lab), the
//! per-switch plan, floating IPs, and isolation between tenants.

mod common;

use common::nodes::wait_for;
use common::{network, Client, TestBackend, TestServer};
use serde_json::{json, Value};
use std::time::Duration;

fn server(b: TestBackend) -> Option<TestServer> {
    TestServer::start_with(b, |c| {
        c.lifecycle_interval_ms = 0;
        c.fabric_interval_ms = 100;
    })
}

fn switch(name: &str, role: &str, asn: u32, lo: &str, ports: Value) -> Value {
    json!({"name": name, "role": role, "os": "frr", "mgmt_address": lo, "asn": asn,
           "loopback": lo, "fabric_ports": ports, "management": {"transport": "simulated"}})
}

fn border() -> Value {
    let mut b = switch(
        "border1",
        "border",
        65103,
        "10.255.1.3",
        json!([{"port": "swp49", "peer": "spine1"}]),
    );
    b["uplink"] = json!({"port": "swp50", "address": "192.0.2.2/30", "gateway": "192.0.2.1"});
    b
}

fn fabric_doc() -> Value {
    json!({
        "kind": "ethernet",
        "pools": {"l2_vni": {"first": 10000, "last": 10999}, "l3_vni": {"first": 50000, "last": 50099},
                  "vlan": {"first": 100, "last": 999}, "route_target_asn": 65000,
                  "provisioning_vni": 9999, "provisioning_vlan": 4000,
                  "public": ["198.51.100.0/28"]},
        "switches": [
            switch("spine1", "spine", 65000, "10.255.0.1",
                   json!([{"port": "swp1", "peer": "leaf1"}, {"port": "swp2", "peer": "leaf2"},
                          {"port": "swp3", "peer": "border1"}])),
            switch("leaf1", "leaf", 65101, "10.255.1.1", json!([{"port": "swp49", "peer": "spine1"}])),
            switch("leaf2", "leaf", 65102, "10.255.1.2", json!([{"port": "swp49", "peer": "spine1"}])),
            border(),
        ],
        "links": [
            {"node": "n1", "nic": "eth0", "switch": "leaf1", "port": "swp1"},
            {"node": "n2", "nic": "eth0", "switch": "leaf1", "port": "swp2"},
            {"node": "n3", "nic": "eth0", "switch": "leaf2", "port": "swp1"},
            {"node": "n4", "nic": "eth0", "switch": "leaf2", "port": "swp2"},
        ],
    })
}

/// Four placement-only nodes, two tenants with a project and a member each.
fn setup(s: &TestServer) -> (Client, Client) {
    let a = s.admin();
    network::nodes(&a, 4);
    network::catalog(&a);
    let mut clients = Vec::new();
    for t in ["acme", "globex"] {
        network::tenant(&a, t, 4);
        clients.push(s.client(&s.user_with_role(t, &format!("{t}-dev"), "tenant-member", None)));
    }
    let globex = clients.pop().unwrap();
    (clients.pop().unwrap(), globex)
}

fn err(r: &common::Resp) -> (u16, String, Option<String>) {
    let (code, field) = r.error();
    (r.status, code, field)
}

fn state_of(f: &Value, switch: &str) -> String {
    f["switches"].as_array().unwrap().iter().find(|s| s["name"] == switch).unwrap()["state"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn the_fabric_document_is_checked_field_by_field_and_replaced_by_generation() {
    for b in TestBackend::ALL {
        let Some(s) = server(b) else { continue };
        let b = b.as_str();
        setup(&s);
        let a = s.admin();
        let mut bad = fabric_doc();
        bad["switches"][1]["loopback"] = json!("10.255.1.300");
        let r = a.put("/v1/fabrics/dc1", &bad);
        assert_eq!(
            err(&r),
            (422, "invalid_value".into(), Some("switches[1].loopback".into())),
            "[{b}]"
        );
        let mut bad = fabric_doc();
        bad["links"][2]["node"] = json!("nope");
        assert_eq!(
            err(&a.put("/v1/fabrics/dc1", &bad)).2.as_deref(),
            Some("links[2].node"),
            "[{b}]"
        );
        let mut bad = fabric_doc();
        bad["links"][1]["port"] = json!("swp1");
        let r = a.put("/v1/fabrics/dc1", &bad);
        assert_eq!(r.status, 422, "[{b}] a port cabled twice: {}", r.text);
        assert!(r.error().1.unwrap().starts_with("links["), "[{b}] {}", r.text);
        let mut bad = fabric_doc();
        bad["switches"][0]["management"] =
            json!({"transport": "https", "url": "https://x", "username": "u", "password": "p"});
        assert_eq!(
            err(&a.put("/v1/fabrics/dc1", &bad)).2.as_deref(),
            Some("switches[0].management"),
            "[{b}] an FRR switch is not managed over https"
        );
        let mut bad = fabric_doc();
        bad["switches"][1]["os"] = json!("arista-eos");
        bad["switches"][1]["management"] = json!({"transport": "https", "url": "https://x",
            "username": "u", "password": "p", "tls": {"ca_pem": "not a certificate"}});
        assert_eq!(
            err(&a.put("/v1/fabrics/dc1", &bad)).2.as_deref(),
            Some("switches[1].management.tls.ca_pem"),
            "[{b}] a CA bundle without a certificate"
        );
        let r = a.put("/v1/fabrics/dc1", &json!({"kind": "ethernet", "bogus": 1}));
        assert_eq!(r.status, 400, "[{b}]");
        a.get("/v1/fabrics/dc1").expect(404);

        let f = a.put("/v1/fabrics/dc1", &fabric_doc()).expect(201).body;
        assert_eq!(f["generation"], 1, "[{b}]");
        // Node names became ids.
        assert!(f["spec"]["links"][0]["node"].as_str().unwrap().len() > 10, "[{b}] {f}");
        let r = a.put("/v1/fabrics/dc1", &fabric_doc());
        assert_eq!(err(&r).2.as_deref(), Some("generation"), "[{b}]");
        let mut doc = fabric_doc();
        doc["generation"] = json!(7);
        assert_eq!(err(&a.put("/v1/fabrics/dc1", &doc)).1, "generation_mismatch", "[{b}]");
        // A SONiC leaf over HTTPS: its password is sealed and never shown.
        doc["generation"] = json!(1);
        doc["switches"].as_array_mut().unwrap().push(json!({
            "name": "leaf3", "role": "leaf", "os": "sonic", "mgmt_address": "10.255.1.4",
            "asn": 65104, "loopback": "10.255.1.4",
            "management": {"transport": "https", "url": "https://leaf3.mgmt", "username": "admin",
                           "password": "s3cret-pw"}}));
        let f = a.put("/v1/fabrics/dc1", &doc).expect(200).body;
        assert_eq!(f["generation"], 2, "[{b}]");
        assert!(!f.to_string().contains("s3cret-pw"), "[{b}] {f}");
        let all = a.get("/v1/fabrics").expect(200).text;
        assert!(!all.contains("s3cret-pw") && !all.contains("password"), "[{b}] {all}");
        // Replacing without the password keeps the sealed one.
        doc["generation"] = json!(2);
        doc["switches"][4]["management"] =
            json!({"transport": "https", "url": "https://leaf3.mgmt", "username": "admin"});
        a.put("/v1/fabrics/dc1", &doc).expect(200);
        // A proposed document is planned without being written or pushed.
        let mut proposed = doc.clone();
        proposed["links"].as_array_mut().unwrap().truncate(2);
        let plan = a.post("/v1/fabrics/dc1/plan", &proposed).expect(200).body;
        let leaf2 =
            plan["switches"].as_array().unwrap().iter().find(|s| s["name"] == "leaf2").unwrap();
        assert!(leaf2["steps"].as_array().is_some(), "[{b}] {plan}");
        assert_eq!(
            a.get("/v1/fabrics/dc1").expect(200).body["generation"],
            3,
            "[{b}] nothing written"
        );
        let mut bad = proposed.clone();
        bad["switches"][1]["asn"] = json!(0);
        assert_eq!(
            err(&a.post("/v1/fabrics/dc1/plan", &bad)).0,
            422,
            "[{b}] checked like a replacement"
        );
        let new = a.post("/v1/fabrics/dc9/plan", &fabric_doc()).expect(200).body;
        assert_eq!(new["switches"].as_array().unwrap().len(), 4, "[{b}] {new}");
        a.get("/v1/fabrics/dc9").expect(404);
        // The simulated switches converge; leaf3 has no tenant config yet.
        wait_for("the simulated switches in sync", Duration::from_secs(20), || {
            let f = a.get("/v1/fabrics/dc1").expect(200).body;
            ["spine1", "leaf1", "leaf2"]
                .iter()
                .all(|sw| state_of(&f, sw) == "in_sync")
                .then_some(())
        });
        // A node the document cables cannot go first (its links name it).
        let r = a.delete("/v1/nodes/n1").expect(409);
        assert!(r.text.contains("cabled in fabric dc1"), "[{b}] {}", r.text);
        a.get("/v1/nodes/n1").expect(200);
        a.delete("/v1/fabrics/dc1").expect(204);
        a.get("/v1/fabrics/dc1").expect(404);
        a.delete("/v1/nodes/n1").expect(204);
    }
}

const ACME: &str = "/v1/tenants/acme/projects/p";
const GLOBEX: &str = "/v1/tenants/globex/projects/p";

fn instance(c: &Client, base: &str, name: &str) -> Value {
    let r = c
        .post(
            &format!("{base}/instances"),
            &json!({"name": name, "instance_type": "bm", "count": 1, "image": "os"}),
        )
        .expect(201);
    r.body["items"][0].clone()
}

#[test]
fn tenant_networks_overlap_across_vpcs_and_attachments_reach_the_switches() {
    for b in TestBackend::ALL {
        let Some(s) = server(b) else { continue };
        let b = b.as_str();
        let (acme, globex) = setup(&s);
        let a = s.admin();
        // No fabric yet: a VPC says so.
        let r = acme.post(&format!("{ACME}/vpcs"), &json!({"name": "main"}));
        assert_eq!(err(&r).2.as_deref(), Some("fabric"), "[{b}] {}", r.text);
        a.put("/v1/fabrics/dc1", &fabric_doc()).expect(201);
        for (c, base) in [(&acme, ACME), (&globex, GLOBEX)] {
            c.post(&format!("{base}/vpcs"), &json!({"name": "main"})).expect(201);
            // The same address space in both tenants' VPCs.
            c.post(
                &format!("{base}/vpcs/main/networks"),
                &json!({"name": "web", "cidr": "10.0.0.0/24"}),
            )
            .expect(201);
        }
        // Never twice within one VPC, and host bits must be zero.
        let r = acme.post(
            &format!("{ACME}/vpcs/main/networks"),
            &json!({"name": "db", "cidr": "10.0.0.128/25"}),
        );
        assert_eq!(err(&r), (422, "invalid_value".into(), Some("cidr".into())), "[{b}] {}", r.text);
        let r = acme.post(
            &format!("{ACME}/vpcs/main/networks"),
            &json!({"name": "db", "cidr": "10.1.0.1/24"}),
        );
        assert_eq!(err(&r).2.as_deref(), Some("cidr"), "[{b}] {}", r.text);
        let r = acme
            .post(&format!("{ACME}/vpcs/main/networks"), &json!({"name": "db", "cidr": "nope"}));
        assert_eq!(err(&r).2.as_deref(), Some("cidr"), "[{b}]");
        assert_eq!(
            acme.get(&format!("{ACME}/vpcs/main/networks")).expect(200).body["items"]
                .as_array()
                .unwrap()
                .len(),
            1,
            "[{b}] nothing refused was written"
        );
        // Another tenant's VPC is invisible.
        globex.get(&format!("{ACME}/vpcs/main")).expect(404);

        let ia = instance(&acme, ACME, "a1");
        let ig = instance(&globex, GLOBEX, "g1");
        // Globex cannot attach acme's instance, even by id.
        let r = globex.post(
            &format!("{GLOBEX}/vpcs/main/networks/web/attachments"),
            &json!({"instance": ia["id"]}),
        );
        assert_eq!(err(&r).2.as_deref(), Some("instance"), "[{b}] {}", r.text);
        let r = acme.post(
            &format!("{ACME}/vpcs/main/networks/web/attachments"),
            &json!({"instance": "a1", "nic": "eth9"}),
        );
        assert_eq!(err(&r).2.as_deref(), Some("nic"), "[{b}] {}", r.text);
        let att_a = acme
            .post(&format!("{ACME}/vpcs/main/networks/web/attachments"), &json!({"instance": "a1"}))
            .expect(201)
            .body;
        let att_g = globex
            .post(
                &format!("{GLOBEX}/vpcs/main/networks/web/attachments"),
                &json!({"instance": "g1"}),
            )
            .expect(201)
            .body;
        // IPAM: the first host after the gateway, in each VPC on its own.
        assert_eq!(att_a["ip"], "10.0.0.2", "[{b}] {att_a}");
        assert_eq!(att_g["ip"], "10.0.0.2", "[{b}] {att_g}");
        assert_eq!(att_a["nic"], "eth0", "[{b}]");
        let r = acme.post(
            &format!("{ACME}/vpcs/main/networks/web/attachments"),
            &json!({"instance": "a1"}),
        );
        assert_eq!(r.status, 409, "[{b}] a NIC is in one network: {}", r.text);
        let path = |base: &str, id: &Value| {
            format!("{base}/vpcs/main/networks/web/attachments/{}", id.as_str().unwrap())
        };
        wait_for("both attachments on the switches", Duration::from_secs(20), || {
            let x = acme.get(&path(ACME, &att_a["id"])).expect(200).body;
            let y = globex.get(&path(GLOBEX, &att_g["id"])).expect(200).body;
            (x["state"] == "ready" && y["state"] == "ready").then_some(())
        });
        // North-south: a NAT gateway and a floating IP from the public pool.
        let v = acme
            .patch(&format!("{ACME}/vpcs/main"), &json!({"generation": 1, "nat_gateway": true}))
            .expect(200)
            .body;
        let nat = v["nat_public_ip"].as_str().unwrap_or_default().to_string();
        assert!(nat.starts_with("198.51.100."), "[{b}] {v}");
        let fips = format!("{ACME}/vpcs/main/floating-ips");
        let allow22 = json!([{"protocol": "tcp", "ports": {"first": 22, "last": 22}}]);
        let r = acme.post(
            &fips,
            &json!({"attachment": att_a["id"], "allow": [{"protocol": "icmp", "ports": {"first": 1, "last": 2}}]}),
        );
        assert_eq!(r.status, 422, "[{b}] {}", r.text);
        assert!(r.error().1.unwrap_or_default().starts_with("allow"), "[{b}] {}", r.text);
        let fip = acme
            .post(&fips, &json!({"attachment": att_a["id"], "allow": allow22}))
            .expect(201)
            .body;
        let public = fip["public_ip"].as_str().unwrap();
        assert!(public.starts_with("198.51.100.") && public != nat, "[{b}] {fip} vs {nat}");
        let r = acme.post(&fips, &json!({"attachment": att_a["id"]}));
        assert_eq!(r.status, 409, "[{b}] one floating IP per attachment: {}", r.text);
        let r = globex
            .post(&format!("{GLOBEX}/vpcs/main/floating-ips"), &json!({"attachment": att_a["id"]}));
        assert_eq!(err(&r).2.as_deref(), Some("attachment"), "[{b}] {}", r.text);
        wait_for("the border configured", Duration::from_secs(20), || {
            let f = a.get("/v1/fabrics/dc1").expect(200).body;
            (state_of(&f, "border1") == "in_sync").then_some(())
        });
        // Applied: the plan has nothing left to push.
        let plan = a.get("/v1/fabrics/dc1/plan").expect(200).body;
        for sw in plan["switches"].as_array().unwrap() {
            assert!(sw["changes"].as_array().unwrap().is_empty(), "[{b}] {sw}");
        }
        // A change shows in the plan before it is pushed (the controller
        // is stopped by making the fabric's switches unmanaged).
        let mut doc = fabric_doc();
        doc["generation"] = json!(1);
        for sw in doc["switches"].as_array_mut().unwrap() {
            sw["management"] = json!({"transport": "none"});
        }
        a.put("/v1/fabrics/dc1", &doc).expect(200);
        acme.post(
            &format!("{ACME}/vpcs/main/networks"),
            &json!({"name": "db", "cidr": "10.9.0.0/24"}),
        )
        .expect(201);
        let i2 = instance(&acme, ACME, "a2");
        acme.post(&format!("{ACME}/vpcs/main/networks/db/attachments"), &json!({"instance": "a2"}))
            .expect(201);
        let plan = a.get("/v1/fabrics/dc1/plan").expect(200).body;
        let changed: Vec<&Value> = plan["switches"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| !s["changes"].as_array().unwrap().is_empty())
            .collect();
        // The new node's leaf, and the border (the NAT gateway now
        // translates the new network too); nothing else.
        let names: Vec<&str> = changed.iter().map(|s| s["name"].as_str().unwrap()).collect();
        assert_eq!(names.len(), 2, "[{b}] {plan}");
        assert_eq!(names[0], "border1", "[{b}] {plan}");
        assert!(names[1].starts_with("leaf"), "[{b}] {plan}");
        assert!(changed.iter().any(|s| s["steps"].to_string().contains("vni")), "[{b}] {plan}");
        let f = a.get("/v1/fabrics/dc1").expect(200).body;
        assert_eq!(state_of(&f, "leaf1"), "unmanaged", "[{b}]");
        let _ = i2;
        // Deleting a network that still has attachments is refused.
        let r = acme.delete(&format!("{ACME}/vpcs/main/networks/web"));
        assert_eq!(r.status, 409, "[{b}] {}", r.text);
        acme.delete(&path(ACME, &att_a["id"])).expect(204);
        acme.delete(&format!("{ACME}/vpcs/main/networks/web")).expect(204);
        let _ = ig;
        // Every tenant write went to the fabric's kept planner (built
        // with each document): none had to plan the whole intent.
        let m = s.anonymous().get("/metrics").expect(200).text;
        let metric = |name: &str| -> u64 {
            let line = m.lines().find(|l| l.starts_with(name)).unwrap_or_else(|| panic!("{m}"));
            line.rsplit(' ').next().unwrap().parse().unwrap()
        };
        assert_eq!(metric("neocloud_fabric_planner_builds_total{for=\"write\"}"), 0, "[{b}] {m}");
        assert_eq!(metric("neocloud_fabric_planner_builds_total{for=\"document\"}"), 2, "[{b}]");
        assert!(
            metric("neocloud_fabric_planner_changes_total{outcome=\"applied\"}") >= 14,
            "[{b}]"
        );
        assert!(metric("neocloud_fabric_planner_changes_total{outcome=\"refused\"}") >= 2, "[{b}]");
    }
}
