//! Node inventory carries its topology: GPU memory and rail-indexed NICs.

mod common;

use common::each_backend;
use serde_json::json;

#[test]
fn nodes_record_gpu_memory_and_rail_nics() {
    each_backend(|s| {
        let b = s.backend.as_str();
        let a = s.admin();
        let base = json!({"site": "s", "pod": "p", "su": "su1", "rack": "r1", "gpus": 8});
        let with = |extra: serde_json::Value| {
            let mut v = base.clone();
            for (k, x) in extra.as_object().unwrap() {
                v[k] = x.clone();
            }
            v
        };
        let nics: Vec<_> = (0..8)
            .map(|r| json!({"name": format!("ib{r}"), "rail": r, "fabric": "compute", "switch": format!("leaf-{r}"), "port": "p1"}))
            .collect();
        let n = a
            .post(
                "/v1/nodes",
                &with(json!({"name": "n1", "gpu_model": "h200-141gb", "nics": nics})),
            )
            .expect(201);
        assert_eq!(n.body["gpu_memory_gb"], 141, "[{b}] memory from the model table");
        assert_eq!(n.body["nics"].as_array().unwrap().len(), 8, "[{b}]");
        assert_eq!(n.body["nics"][3]["switch"], "leaf-3", "[{b}]");
        let got = a.get("/v1/nodes/n1").expect(200);
        assert_eq!(got.body["nics"], n.body["nics"], "[{b}] stored as given");

        // A model without a known memory needs it given.
        let e = a.post("/v1/nodes", &with(json!({"name": "n2", "gpu_model": "gb200"}))).expect(422);
        assert_eq!(e.error().1.as_deref(), Some("gpu_memory_gb"), "[{b}]");
        a.post(
            "/v1/nodes",
            &with(json!({"name": "n2", "gpu_model": "gb200", "gpu_memory_gb": 186})),
        )
        .expect(201);
        // Two NICs on one rail of one fabric, or a rail out of range.
        let dup = json!([
            {"name": "a", "rail": 0, "fabric": "f", "switch": "l0", "port": "1"},
            {"name": "b", "rail": 0, "fabric": "f", "switch": "l0", "port": "2"}
        ]);
        let e = a
            .post("/v1/nodes", &with(json!({"name": "n3", "gpu_model": "h100-80gb", "nics": dup})))
            .expect(422);
        assert_eq!(e.error().1.as_deref(), Some("nics[1].rail"), "[{b}]");
        let far = json!([{"name": "a", "rail": 16, "fabric": "f", "switch": "l0", "port": "1"}]);
        let e = a
            .post("/v1/nodes", &with(json!({"name": "n3", "gpu_model": "h100-80gb", "nics": far})))
            .expect(422);
        assert_eq!(e.error().1.as_deref(), Some("nics[0].rail"), "[{b}]");
        let bad = json!([{"name": "a", "rail": 0, "fabric": "f", "switch": "l0", "port": "1", "vlan": 5}]);
        let e = a
            .post("/v1/nodes", &with(json!({"name": "n3", "gpu_model": "h100-80gb", "nics": bad})))
            .expect(400);
        assert_eq!(e.error().1.as_deref(), Some("nics[0].vlan"), "[{b}]");
        a.get("/v1/nodes/n3").expect(404);

        // A MAC is one node's: the boot service finds a node by the MAC it
        // boots from (two would boot each other's scripts).
        let mac = |m: &str| json!([{"name": "a", "rail": 0, "fabric": "f", "switch": "l0", "port": "1", "mac": m}]);
        a.post(
            "/v1/nodes",
            &with(
                json!({"name": "n3", "gpu_model": "h100-80gb", "nics": mac("52:54:00:aa:00:01")}),
            ),
        )
        .expect(201);
        for m in ["52:54:00:aa:00:01", "52:54:00:AA:00:01"] {
            let e = a
                .post(
                    "/v1/nodes",
                    &with(json!({"name": "n4", "gpu_model": "h100-80gb", "nics": mac(m)})),
                )
                .expect(409);
            assert_eq!(e.error().1.as_deref(), Some("nics[0].mac"), "[{b}] {m}: {}", e.text);
        }
        a.get("/v1/nodes/n4").expect(404);
    });
}
