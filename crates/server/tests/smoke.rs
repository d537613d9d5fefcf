mod common;
use common::*;
use serde_json::json;

#[test]
fn server_answers_on_every_backend() {
    each_backend(|s| {
        let me = s.admin().get("/v1/me").expect(200);
        assert_eq!(me.body["user"]["name"], "admin");
        s.admin().post("/v1/tenants", &json!({"name": "acme"})).expect(201);
        let tok = s.user_with_role("acme", "alice", "tenant-admin", None);
        let alice = s.client(&tok);
        alice.get("/v1/tenants/acme").expect(200);
    });
}
