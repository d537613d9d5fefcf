//! InfiniBand partitions through the API, programmed into UFM over its REST
//! API (the protocol-faithful UFM test double; no UFM runs here): the
//! provider's subnet document is checked field by field and its UFM
//! password never returned; every tenant gets one partition of its nodes'
//! ports (full members) as soon as it holds them; a released node's ports
//! leave it; a partition changed behind the control plane's back is
//! repaired; the plan shows the UFM calls and OpenSM's partitions.conf.

mod common;

use common::nodes::wait_for;
use common::{network, Client, TestBackend, TestServer};
use neocloud_ufm::double::UfmDouble;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::Duration;

fn guid(i: usize) -> String {
    format!("0002c90300a0{i:04x}")
}

fn doc(ufm: &UfmDouble) -> Value {
    json!({
        "kind": "infiniband",
        "infiniband": {
            "pkeys": {"first": 256, "last": 511},
            "ports": (1..=4).map(|i| json!({"node": format!("n{i}"), "guid": guid(i)})).collect::<Vec<_>>(),
            "subnet_manager": {"kind": "ufm", "url": ufm.url, "username": ufm.username,
                               "password": ufm.password},
        },
    })
}

/// UFM's partitions in our range: PKey -> member GUIDs (all full).
fn partitions(ufm: &UfmDouble) -> BTreeMap<u16, Vec<String>> {
    ufm.state()
        .pkeys
        .iter()
        .filter(|(k, _)| (256..=511).contains(*k))
        .map(|(k, p)| {
            assert!(p.guids.values().all(|m| m == "full"), "{p:?}");
            (*k, p.guids.keys().cloned().collect())
        })
        .collect()
}

fn instance(c: &Client, t: &str, count: u32) -> Vec<Value> {
    c.post(
        &format!("/v1/tenants/{t}/projects/p/instances"),
        &json!({"name": "i", "instance_type": "bm", "count": count, "image": "os"}),
    )
    .expect(201)
    .body["items"]
        .as_array()
        .unwrap()
        .clone()
}

#[test]
fn tenants_get_partitions_of_their_nodes_in_ufm() {
    for b in TestBackend::ALL {
        let ufm = UfmDouble::start();
        let Some(s) = TestServer::start_with(b, |c| {
            c.lifecycle_interval_ms = 0;
            c.fabric_interval_ms = 100;
            c.fabric_check_secs = 1;
        }) else {
            continue;
        };
        let b = b.as_str();
        let a = s.admin();
        network::nodes(&a, 4);
        network::catalog(&a);
        network::tenant(&a, "ta", 4);
        network::tenant(&a, "tb", 4);

        // The document is checked field by field; nothing is written.
        let mut bad = doc(&ufm);
        bad["infiniband"]["ports"][1]["guid"] = json!("xyz");
        let r = a.put("/v1/fabrics/ib0", &bad);
        assert_eq!(
            (r.status, r.error().1.as_deref()),
            (422, Some("infiniband.ports[1].guid")),
            "[{b}] {}",
            r.text
        );
        let mut bad = doc(&ufm);
        bad["infiniband"]["pkeys"]["first"] = json!(0);
        let r = a.put("/v1/fabrics/ib0", &bad);
        assert_eq!(r.error().1.as_deref(), Some("infiniband.pkeys.first"), "[{b}] {}", r.text);
        let mut bad = doc(&ufm);
        bad["infiniband"]["ports"][3]["guid"] = json!(guid(1));
        let r = a.put("/v1/fabrics/ib0", &bad);
        assert_eq!(
            r.error().1.as_deref(),
            Some("infiniband.ports[3].guid"),
            "[{b}] one port, two nodes: {}",
            r.text
        );
        a.get("/v1/fabrics/ib0").expect(404);
        let f = a.put("/v1/fabrics/ib0", &doc(&ufm)).expect(201);
        assert!(!f.text.contains(&ufm.password), "[{b}] {}", f.text);

        // Tenants' nodes become their partitions' full members.
        let ia = instance(&a, "ta", 2);
        let ib = instance(&a, "tb", 1);
        let node_guid = |inst: &Value| {
            let id = inst["node_id"].as_str().unwrap();
            let n = a.get(&format!("/v1/nodes/{id}")).expect(200).body;
            guid(n["name"].as_str().unwrap()[1..].parse().unwrap())
        };
        let mut want_a: Vec<String> = ia.iter().map(node_guid).collect();
        want_a.sort();
        let want_b = vec![node_guid(&ib[0])];
        // Eventually: a partition may be created before its members are
        // added (the fabric controller converges in passes).
        let got = wait_for("both tenants' partitions in UFM", Duration::from_secs(20), || {
            let p = partitions(&ufm);
            let members: Vec<&Vec<String>> = p.values().collect();
            (p.len() == 2 && members.contains(&&want_a) && members.contains(&&want_b))
                .then_some(p.clone())
        });
        assert_eq!(got.len(), 2, "[{b}] {got:?}");
        let f = a.get("/v1/fabrics/ib0").expect(200).body;
        assert_eq!(f["switches"][0]["name"], "subnet-manager", "[{b}]");
        assert_eq!(f["switches"][0]["state"], "in_sync", "[{b}] {f}");
        let plan = a.get("/v1/fabrics/ib0/plan").expect(200).body;
        assert!(plan["subnet_manager"]["changes"].as_array().unwrap().is_empty(), "[{b}] {plan}");
        let conf = plan["subnet_manager"]["partitions_conf"].as_str().unwrap();
        assert!(
            conf.contains("ALL=limited") && conf.contains(&format!("0x{}=full", want_b[0])),
            "[{b}] {conf}"
        );

        // A partition edited behind our back is repaired.
        let b_pkey = *got.iter().find(|(_, m)| **m == want_b).unwrap().0;
        ufm.state()
            .pkeys
            .get_mut(&b_pkey)
            .unwrap()
            .guids
            .insert(guid(4).replace("0004", "0099"), "full".into());
        wait_for("the partition repaired", Duration::from_secs(20), || {
            (partitions(&ufm).get(&b_pkey) == Some(&want_b)).then_some(())
        });

        // B releases its node: its port leaves the partition.
        let id = ib[0]["id"].as_str().unwrap();
        a.delete(&format!("/v1/tenants/tb/projects/p/instances/{id}")).expect(202);
        wait_for("B's partition gone from UFM", Duration::from_secs(20), || {
            let p = partitions(&ufm);
            (p.len() == 1 && p.values().next() == Some(&want_a)).then_some(())
        });
        let trail = a.get("/v1/audit?limit=1000").expect(200).text;
        assert!(trail.contains("subnet_manager_apply"), "[{b}] pushes are audited");
    }
}
