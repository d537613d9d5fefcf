//! Reservations hold capacity (and quota) now; allocations taken from them
//! later move units and quota over without touching free capacity.

mod common;

use common::each_backend;
use serde_json::json;
use std::collections::BTreeSet;

fn node_ids(v: &serde_json::Value) -> BTreeSet<String> {
    v["placement"]["assignments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["node_id"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn allocate_from_a_reservation() {
    each_backend(|s| {
        let b = s.backend.as_str();
        let a = s.admin();
        for i in 0..6 {
            a.post(
                "/v1/nodes",
                &json!({"name": format!("n{i}"), "site": "s", "pod": "p", "su": format!("su{}", i / 3),
                        "rack": format!("r{i}"), "gpu_model": "h100-80gb", "gpus": 8}),
            )
            .expect(201);
        }
        a.post(
            "/v1/instance-types",
            &json!({"name": "bm", "kind": "bare_metal", "gpu_model": "h100-80gb"}),
        )
        .expect(201);
        a.post(
            "/v1/instance-types",
            &json!({"name": "vm-1", "kind": "vm", "gpu_model": "h100-80gb", "gpus": 1}),
        )
        .expect(201);
        a.post("/v1/tenants", &json!({"name": "t"})).expect(201);
        a.put(
            "/v1/tenants/t/quotas",
            &json!({"generation": 1, "limits": {"nodes": 4, "gpu:h100-80gb": 48}}),
        )
        .expect(200);
        for p in ["p", "q"] {
            a.post("/v1/tenants/t/projects", &json!({"name": p})).expect(201);
        }
        let alice = s.client(&s.user_with_role("t", "alice", "tenant-member", None));
        let base = "/v1/tenants/t/projects/p";

        // The provider reserves 3 nodes in one SU for the project.
        let r = a
            .post(
                &format!("{base}/reservations"),
                &json!({"instance_type": "bm", "count": 3, "constraints": {"scope": "su"}}),
            )
            .expect(201);
        assert_eq!(r.body["kind"], "reservation", "[{b}]");
        let rid = r.body["id"].as_str().unwrap().to_string();
        let reserved = node_ids(&r.body);
        assert_eq!(reserved.len(), 3, "[{b}]");
        let cap = a.get("/v1/capacity").expect(200);
        assert_eq!(cap.body["models"][0]["total"]["free_nodes"], 3, "[{b}]");
        let quota = |path: &str| {
            let q = a.get(path).expect(200);
            (
                q.body["resources"]["nodes"]["committed"].as_i64().unwrap_or(0),
                q.body["resources"]["gpu:h100-80gb"]["committed"].as_i64().unwrap_or(0),
            )
        };
        assert_eq!(
            quota("/v1/tenants/t/quotas"),
            (3, 24),
            "[{b}] a reservation counts against quota"
        );
        // Reservations are not allocations.
        assert!(alice.get(&format!("{base}/allocations")).expect(200).body["items"]
            .as_array()
            .unwrap()
            .is_empty());
        alice.get(&format!("{base}/allocations/{rid}")).expect(404);

        // Quota left: 1 node. Free capacity has 3, but the quota refuses 2.
        let over = alice
            .post(&format!("{base}/allocations"), &json!({"instance_type": "bm", "count": 2}))
            .expect(409);
        assert_eq!(over.error().0, "quota_exceeded", "[{b}] {}", over.text);

        // Allocating 2 out of the reservation needs no new quota or capacity.
        let got = alice
            .post(
                &format!("{base}/allocations"),
                &json!({"instance_type": "bm", "count": 2, "reservation": rid}),
            )
            .expect(201);
        assert_eq!(got.body["reservation_id"], rid.as_str(), "[{b}]");
        let taken = node_ids(&got.body);
        assert!(taken.is_subset(&reserved), "[{b}] {taken:?} not from {reserved:?}");
        let r = alice.get(&format!("{base}/reservations/{rid}")).expect(200);
        assert_eq!(r.body["count"], 1, "[{b}]");
        assert_eq!(node_ids(&r.body).len(), 1, "[{b}]");
        assert!(node_ids(&r.body).is_disjoint(&taken), "[{b}]");
        assert_eq!(quota("/v1/tenants/t/quotas"), (3, 24), "[{b}] quota moved, not added");
        assert_eq!(
            a.get("/v1/capacity").expect(200).body["models"][0]["total"]["free_nodes"],
            3,
            "[{b}]"
        );

        // Bad requests change nothing.
        let e = alice
            .post(
                &format!("{base}/allocations"),
                &json!({"instance_type": "bm", "count": 2, "reservation": rid}),
            )
            .expect(422);
        assert_eq!(e.error().1.as_deref(), Some("count"), "[{b}]");
        let e = alice
            .post(
                &format!("{base}/allocations"),
                &json!({"instance_type": "vm-1", "reservation": rid}),
            )
            .expect(422);
        assert_eq!(e.error().1.as_deref(), Some("instance_type"), "[{b}]");
        let e = alice
            .post(
                "/v1/tenants/t/projects/q/allocations",
                &json!({"instance_type": "bm", "reservation": rid}),
            )
            .expect(422);
        assert_eq!(
            e.error().1.as_deref(),
            Some("reservation"),
            "[{b}] another project's reservation"
        );
        assert_eq!(
            alice.get(&format!("{base}/reservations/{rid}")).expect(200).body["count"],
            1,
            "[{b}]"
        );

        // The last instance: the reservation is used up.
        let last = alice
            .post(
                &format!("{base}/allocations"),
                &json!({"instance_type": "bm", "reservation": rid}),
            )
            .expect(201);
        let r = alice.get(&format!("{base}/reservations/{rid}")).expect(200);
        assert_eq!(
            (r.body["count"].as_i64(), r.body["state"].as_str()),
            (Some(0), Some("released")),
            "[{b}]"
        );
        assert_eq!(quota("/v1/tenants/t/quotas"), (3, 24), "[{b}]");

        // Releasing the allocations frees nodes and quota.
        for x in [&got.body, &last.body] {
            alice.delete(&format!("{base}/allocations/{}", x["id"].as_str().unwrap())).expect(200);
        }
        assert_eq!(quota("/v1/tenants/t/quotas"), (0, 0), "[{b}]");
        assert_eq!(
            a.get("/v1/capacity").expect(200).body["models"][0]["total"]["free_nodes"],
            6,
            "[{b}]"
        );

        // Releasing a reservation returns what it still holds.
        let r2 = alice
            .post(&format!("{base}/reservations"), &json!({"instance_type": "vm-1", "count": 4}))
            .expect(201);
        let id2 = r2.body["id"].as_str().unwrap();
        assert_eq!(quota("/v1/tenants/t/quotas").1, 4, "[{b}]");
        alice.delete(&format!("{base}/reservations/{id2}")).expect(200);
        alice.delete(&format!("{base}/reservations/{id2}")).expect(200);
        assert_eq!(quota("/v1/tenants/t/quotas"), (0, 0), "[{b}] released once");
        let units = s.store.read(neocloud_store::allocation_holds::units_held).unwrap();
        assert_eq!(units, (0, 0), "[{b}] no unit left held");
    });
}
