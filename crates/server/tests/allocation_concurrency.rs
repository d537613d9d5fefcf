//! Concurrent allocations never double-allocate a node, GPU or MIG slice,
//! on either store backend, even from two control-plane replicas whose
//! engines do not see each other's decisions: the store's unit keys refuse
//! the loser, which re-reads and may retry.

mod common;

use common::nodes::{capacity_is_the_stores, engine_counter};
use common::{each_backend, Client, TestServer};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::{Arc, Barrier};

fn setup(s: &TestServer) -> String {
    let a = s.admin();
    for i in 0..4 {
        a.post(
            "/v1/nodes",
            &json!({"name": format!("n{i}"), "site": "s", "pod": "p", "su": "su", "rack": format!("r{}", i / 2),
                    "gpu_model": "h100-80gb", "gpus": 8, "mig_capable": true}),
        )
        .expect(201);
    }
    for (name, body) in [
        ("vm-1", json!({"kind": "vm", "gpus": 1})),
        ("vm-2", json!({"kind": "vm", "gpus": 2})),
        ("bm", json!({"kind": "bare_metal"})),
        ("mig-1g", json!({"kind": "mig", "mig_profile": "1g.10gb"})),
        ("mig-3g", json!({"kind": "mig", "mig_profile": "3g.40gb"})),
    ] {
        let mut b = body;
        b["name"] = json!(name);
        b["gpu_model"] = json!("h100-80gb");
        a.post("/v1/instance-types", &b).expect(201);
    }
    a.post("/v1/tenants", &json!({"name": "t"})).expect(201);
    a.put(
        "/v1/tenants/t/quotas",
        &json!({"generation": 1, "limits": {"nodes": 1000, "gpu:h100-80gb": 1000, "mig:1g.10gb": 1000, "mig:3g.40gb": 1000}}),
    )
    .expect(200);
    a.post("/v1/tenants/t/projects", &json!({"name": "p"})).expect(201);
    s.user_with_role("t", "alice", "tenant-member", None)
}

/// Asks until placed or refused for lack of capacity; retries the
/// "taken concurrently" conflicts a stale replica answers.
fn allocate(c: &Client, it: &str) -> Option<Value> {
    for _ in 0..50 {
        let r = c.post("/v1/tenants/t/projects/p/allocations", &json!({"instance_type": it}));
        match r.status {
            201 => return Some(r.body),
            409 if r.text.contains("concurrently") => continue,
            409 => {
                assert!(r.text.contains("cannot place"), "{}", r.text);
                return None;
            }
            s => panic!("unexpected {s}: {}", r.text),
        }
    }
    panic!("no answer after 50 retries");
}

fn units(p: &Value) -> Vec<(String, u64, u64)> {
    let mut out = Vec::new();
    for a in p["assignments"].as_array().unwrap() {
        let node = a["node_id"].as_str().unwrap().to_string();
        if let Some(m) = a.get("mig") {
            let size = match m["profile"].as_str().unwrap() {
                "1g.10gb" => 1,
                "3g.40gb" => 4,
                other => panic!("profile {other}"),
            };
            let start = m["start"].as_u64().unwrap();
            out.extend(
                (start..start + size).map(|s| (node.clone(), m["gpu"].as_u64().unwrap(), s)),
            );
        } else {
            for g in a["gpus"].as_array().unwrap() {
                out.extend((0..8).map(|s| (node.clone(), g.as_u64().unwrap(), s)));
            }
        }
    }
    out
}

#[test]
fn parallel_allocations_from_two_replicas_never_overlap() {
    each_backend(|s| {
        let b = s.backend.as_str();
        let token = setup(s);
        let replica = s.replica();
        let types = ["vm-1", "vm-2", "bm", "mig-1g", "mig-3g", "vm-1"];
        let threads = 24;
        let barrier = Arc::new(Barrier::new(threads));
        let handles: Vec<_> = (0..threads)
            .map(|i| {
                let c = if i % 2 == 0 { s.client(&token) } else { replica.client(&token) };
                let it = types[i % types.len()];
                let bar = barrier.clone();
                std::thread::spawn(move || {
                    bar.wait();
                    let mut got = Vec::new();
                    // Each thread keeps allocating until its type no longer fits.
                    while let Some(a) = allocate(&c, it) {
                        got.push(a);
                    }
                    got
                })
            })
            .collect();
        let got: Vec<Value> =
            handles.into_iter().flat_map(|h| h.join().expect("client thread")).collect();
        assert!(!got.is_empty(), "[{b}]");
        // No unit is held twice.
        let mut held: BTreeMap<(String, u64, u64), String> = BTreeMap::new();
        for a in &got {
            for u in units(&a["placement"]) {
                if let Some(other) = held.insert(u.clone(), a["id"].as_str().unwrap().to_string()) {
                    panic!("[{b}] unit {u:?} allocated twice: {other} and {}", a["id"]);
                }
            }
        }
        // The fleet is full: 4 nodes x 8 GPUs x 8 slices, except slices a
        // MIG layout cannot use (a 1g never starts at slice 7).
        assert!(held.len() <= 4 * 8 * 8, "[{b}]");
        let listed = s.admin().get("/v1/tenants/t/projects/p/allocations").expect(200);
        let active = listed.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|a| a["state"] == "active")
            .count();
        assert_eq!(active, got.len(), "[{b}] every success is recorded, nothing else");
        // The quota ledger agrees with the placements.
        let whole_gpus: usize = got
            .iter()
            .map(|a| {
                a["placement"]["assignments"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|x| x["gpus"].as_array().unwrap().len())
                    .sum::<usize>()
            })
            .sum();
        let q = s.admin().get("/v1/tenants/t/projects/p/quotas").expect(200);
        assert_eq!(
            q.body["resources"]["gpu:h100-80gb"]["committed"].as_u64().unwrap() as usize,
            whole_gpus,
            "[{b}]"
        );
        // Both replicas' engines see the same, full fleet.
        for srv in [s, &replica] {
            let cap = srv.admin().get("/v1/capacity").expect(200);
            assert_eq!(cap.body["models"][0]["total"]["free_nodes"], 0, "[{b}] {}", cap.text);
        }
        // Releasing everything returns every unit and every quota unit.
        let alice = s.client(&token);
        for a in &got {
            alice
                .delete(&format!(
                    "/v1/tenants/t/projects/p/allocations/{}",
                    a["id"].as_str().unwrap()
                ))
                .expect(200);
        }
        let q = s.admin().get("/v1/tenants/t/projects/p/quotas").expect(200);
        assert_eq!(q.body["resources"]["gpu:h100-80gb"]["committed"], 0, "[{b}]");
        // The replica did none of the releases, and still sees them.
        for srv in [s, &replica] {
            let cap = srv.admin().get("/v1/capacity").expect(200);
            assert_eq!(cap.body["models"][0]["total"]["free_nodes"], 4, "[{b}] {}", cap.text);
        }
        let again =
            allocate(&replica.client(&token), "bm").expect("the replica places on freed capacity");
        assert_eq!(again["placement"]["assignments"][0]["whole_node"], true, "[{b}]");
    });
}

/// A replica behind the store replays the placement log (what each write
/// since its generation applied to its own replica's engine) instead of
/// rebuilding its engine from every node and allocation; a write the log
/// cannot say (a node's delete) leaves a gap, and the replica rebuilds.
/// Either way both replicas report the same capacity.
#[test]
fn a_replica_catches_up_from_the_placement_log() {
    each_backend(|s| {
        let b = s.backend.as_str();
        let token = setup(s);
        let replica = s.replica();
        let counter = engine_counter;
        let capacity = |srv: &TestServer| srv.admin().get("/v1/capacity").expect(200).body;
        // Both report the store's truth: an engine built from it afresh.
        capacity_is_the_stores(&[s, &replica], b);
        let (reloads, replays) = (counter(&replica, "reloads"), counter(&replica, "replays"));

        // Writes on one replica: allocations of every kind, a release and
        // a new node.
        let alice = s.client(&token);
        let got: Vec<Value> = ["bm", "vm-2", "mig-1g", "mig-3g"]
            .iter()
            .map(|it| allocate(&alice, it).unwrap_or_else(|| panic!("[{b}] {it} placed")))
            .collect();
        let id = got[1]["id"].as_str().unwrap();
        alice.delete(&format!("/v1/tenants/t/projects/p/allocations/{id}")).expect(200);
        s.admin()
            .post(
                "/v1/nodes",
                &json!({"name": "n9", "site": "s", "pod": "p", "su": "su", "rack": "r9",
                        "gpu_model": "h100-80gb", "gpus": 8, "mig_capable": true}),
            )
            .expect(201);
        capacity_is_the_stores(&[&replica, s], &format!("[{b}] every write"));
        let seen = capacity(&replica);
        assert_eq!(seen["models"][0]["total"]["nodes"], 5, "[{b}] {seen}");
        assert_eq!(counter(&replica, "reloads"), reloads, "[{b}] without a rebuild");
        assert_eq!(counter(&replica, "replays"), replays + 1, "[{b}] one catch-up");

        // The other way round.
        let s_reloads = counter(s, "reloads");
        allocate(&replica.client(&token), "bm").expect("placed on the replica");
        capacity_is_the_stores(&[s, &replica], &format!("[{b}] the other way"));
        assert_eq!(counter(s, "reloads"), s_reloads, "[{b}] without a rebuild");

        // A gap: a node's delete is not logged; the replica rebuilds.
        s.admin().delete("/v1/nodes/n9").expect(204);
        capacity_is_the_stores(&[&replica, s], &format!("[{b}] after a gap"));
        let seen = capacity(&replica);
        assert_eq!(seen["models"][0]["total"]["nodes"], 4, "[{b}] {seen}");
        assert_eq!(counter(&replica, "reloads"), reloads + 1, "[{b}] rebuilt at the gap");
    });
}
