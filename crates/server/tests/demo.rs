//! `serve --demo` seeds a small simulated datacenter once, and it is usable.

mod common;

use common::{TestBackend, TestServer};
use serde_json::json;

#[test]
fn demo_fleet_is_seeded_once_and_allocatable() {
    for b in TestBackend::ALL {
        let Some(s) = TestServer::start_with(b, |c| {
            c.demo = true;
            c.lifecycle_interval_ms = 100;
        }) else {
            continue;
        };
        let b = b.as_str();
        let a = s.admin();
        // The nodes behind simulated BMCs go through the real lifecycle.
        let start = std::time::Instant::now();
        loop {
            let items = a.get("/v1/nodes").expect(200).body["items"].as_array().unwrap().clone();
            let enrolled: Vec<&serde_json::Value> = items
                .iter()
                .filter(|n| n["name"].as_str().unwrap().starts_with("sim-bmc-node-"))
                .collect();
            assert_eq!(enrolled.len(), neocloud_server::demo::DEMO_BMC_NODES, "[{b}]");
            if enrolled.iter().all(|n| n["lifecycle"]["state"] == "available") {
                assert!(
                    enrolled.iter().all(|n| n["gpus"] == 8 && n["gpu_memory_gb"] == 80),
                    "[{b}] {enrolled:?}"
                );
                break;
            }
            assert!(
                enrolled.iter().all(|n| n["lifecycle"]["state"] != "failed"),
                "[{b}] a simulated BMC failed: {enrolled:?}"
            );
            assert!(start.elapsed() < std::time::Duration::from_secs(20), "[{b}] {enrolled:?}");
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        let nodes = a.get("/v1/nodes").expect(200);
        let names: Vec<&str> = nodes.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            names.len(),
            neocloud_server::demo::DEMO_NODES + neocloud_server::demo::DEMO_BMC_NODES,
            "[{b}]"
        );
        assert!(
            names.iter().all(|n| n.starts_with("sim-")),
            "[{b}] simulated nodes are named so: {names:?}"
        );
        assert_eq!(
            a.get("/v1/instance-types").expect(200).body["items"].as_array().unwrap().len(),
            7,
            "[{b}]"
        );
        assert_eq!(
            neocloud_server::demo::seed(&s.store).unwrap(),
            0,
            "[{b}] seeds only an empty fleet"
        );

        a.post("/v1/tenants", &json!({"name": "demo"})).expect(201);
        a.put(
            "/v1/tenants/demo/quotas",
            &json!({"generation": 1, "limits": {"nodes": 16, "gpu:h100-80gb": 128}}),
        )
        .expect(200);
        a.post("/v1/tenants/demo/projects", &json!({"name": "train"})).expect(201);
        let got = a
            .post(
                "/v1/tenants/demo/projects/train/allocations",
                &json!({"instance_type": "bm-h100", "count": 8, "constraints": {"scope": "su"}}),
            )
            .expect(201);
        assert_eq!(got.body["placement"]["assignments"].as_array().unwrap().len(), 8, "[{b}]");
        let cap = a.get("/v1/capacity").expect(200);
        assert_eq!(cap.body["models"][0]["total"]["free_nodes"], 12, "[{b}]");
        let trail = a.get("/v1/audit?limit=1000").expect(200);
        assert!(trail.text.contains("demo_seed"), "[{b}] the seed is audited");
    }
}
