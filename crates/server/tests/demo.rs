//! `serve --demo` seeds a small simulated datacenter once, and it is usable.

mod common;

use common::{TestBackend, TestServer};
use serde_json::json;

#[test]
fn demo_fleet_is_seeded_once_and_allocatable() {
    for b in TestBackend::ALL {
        let Some(s) = TestServer::start_with(b, |c| c.demo = true) else { continue };
        let b = b.as_str();
        let a = s.admin();
        let nodes = a.get("/v1/nodes").expect(200);
        let names: Vec<&str> = nodes.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["name"].as_str().unwrap())
            .collect();
        assert_eq!(names.len(), neocloud_server::demo::DEMO_NODES, "[{b}]");
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
        assert_eq!(cap.body["models"][0]["total"]["free_nodes"], 8, "[{b}]");
        let trail = a.get("/v1/audit?limit=1000").expect(200);
        assert!(trail.text.contains("demo_seed"), "[{b}] the seed is audited");
    }
}
