//! A suspended tenant is read-only to its own principals; the provider can
//! still act on it and lift the suspension.

mod common;

use common::each_backend;
use serde_json::json;

#[test]
fn suspended_tenant_is_read_only_to_its_principals() {
    each_backend(|s| {
        let b = s.backend.as_str();
        let a = s.admin();
        a.post("/v1/tenants", &json!({"name": "acme"})).expect(201);
        let alice = s.client(&s.user_with_role("acme", "alice", "tenant-admin", None));
        alice.post("/v1/tenants/acme/projects", &json!({"name": "p1"})).expect(201);

        let t = a.get("/v1/tenants/acme").expect(200);
        let g = t.body["generation"].as_i64().unwrap();
        let t =
            a.patch("/v1/tenants/acme", &json!({"generation": g, "suspended": true})).expect(200);
        assert_eq!(t.body["suspended"], true, "[{b}]");

        let r = alice.post("/v1/tenants/acme/projects", &json!({"name": "p2"})).expect(403);
        assert!(
            r.body["error"]["message"].as_str().unwrap().contains("suspended"),
            "[{b}] {}",
            r.text
        );
        alice.get("/v1/tenants/acme/projects/p1").expect(200);
        // The provider still can.
        a.post("/v1/tenants/acme/projects", &json!({"name": "p3"})).expect(201);
        // The refusal is in the tenant's trail as a denial.
        let trail = a.get("/v1/tenants/acme/audit?limit=1000").expect(200);
        let denied = trail.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["outcome"] == "denied" && e["action"] == "project_create")
            .count();
        assert_eq!(denied, 1, "[{b}]");

        let g = t.body["generation"].as_i64().unwrap();
        a.patch("/v1/tenants/acme", &json!({"generation": g, "suspended": false})).expect(200);
        alice.post("/v1/tenants/acme/projects", &json!({"name": "p2"})).expect(201);
    });
}
