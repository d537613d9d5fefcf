//! The provider's firmware baselines (`/v1/firmware-baselines`) at their
//! edges, on both stores: one per model and per name, refusals that name
//! the field and write nothing, updates at the expected generation, every
//! change audited, provider only. What the lifecycle does with them is in
//! `baremetal_platform.rs`.

mod common;

use common::{TestBackend, TestServer};
use serde_json::{json, Value};

const PATH: &str = "/v1/firmware-baselines";

fn dgx(name: &str, model: &str) -> Value {
    json!({"name": name, "model": model,
           "components": {"HGX_FW_BMC_0": "24.09", "EROT_BIOS_0": "1.2"},
           "description": "the fleet's DGX firmware"})
}

fn names(s: &TestServer) -> Vec<String> {
    let l = s.admin().get(PATH).expect(200).body;
    l["items"].as_array().unwrap().iter().map(|b| b["name"].as_str().unwrap().into()).collect()
}

#[test]
fn baselines_are_one_per_model_checked_and_updated_at_their_generation() {
    for b in TestBackend::ALL {
        let Some(s) = TestServer::start(b) else { continue };
        let b = b.as_str();
        let a = s.admin();
        let created = a.post(PATH, &dgx("dgx-h100", "DGX H100")).expect(201).body;
        assert_eq!(created["model"], "DGX H100", "[{b}]");
        assert_eq!(created["components"]["EROT_BIOS_0"], "1.2", "[{b}]");
        assert_eq!(created["generation"], 1, "[{b}]");
        let id = created["id"].as_str().unwrap();
        assert_eq!(a.get(&format!("{PATH}/{id}")).expect(200).body, created, "[{b}] by id");
        assert_eq!(a.get(&format!("{PATH}/dgx-h100")).expect(200).body, created, "[{b}] by name");

        // Refusals name the field and write nothing.
        let taken = a.post(PATH, &dgx("dgx-h100", "DGX B200")).expect(409);
        assert_eq!(taken.error(), ("already_exists".into(), Some("name".into())), "[{b}]");
        let taken = a.post(PATH, &dgx("dgx-2", "DGX H100")).expect(409);
        assert_eq!(taken.error(), ("already_exists".into(), Some("model".into())), "[{b}]");
        // 422: well-formed but invalid; 400: not the request's shape.
        for (body, status, field) in [
            (json!({"name": "x", "model": " ", "components": {"BMC": "1"}}), 422, "model"),
            (json!({"name": "x", "model": "M", "components": {}}), 422, "components"),
            (json!({"name": "x", "model": "M", "components": {"BMC": ""}}), 422, "components.BMC"),
            (
                json!({"name": "x", "model": "M", "components": {"BMC": "1\n2"}}),
                422,
                "components.BMC",
            ),
            (json!({"name": "X!", "model": "M", "components": {"BMC": "1"}}), 400, "name"),
            (
                json!({"name": "x", "model": "M", "components": {"BMC": "1"}, "extra": 1}),
                400,
                "extra",
            ),
        ] {
            let r = a.post(PATH, &body).expect(status);
            assert_eq!(r.error().1.as_deref(), Some(field), "[{b}] {body}: {}", r.text);
        }
        assert_eq!(names(&s), ["dgx-h100"], "[{b}] nothing written");

        // An update at another generation changes nothing.
        let at = |g: i64| json!({"generation": g, "components": {"HGX_FW_BMC_0": "25.01"}});
        let stale = a.patch(&format!("{PATH}/dgx-h100"), &at(7)).expect(409);
        assert_eq!(stale.error().0, "generation_mismatch", "[{b}]");
        assert_eq!(a.get(&format!("{PATH}/dgx-h100")).expect(200).body, created, "[{b}]");
        let bad = a
            .patch(&format!("{PATH}/dgx-h100"), &json!({"generation": 1, "components": {}}))
            .expect(422);
        assert_eq!(bad.error().1.as_deref(), Some("components"), "[{b}]");
        // The versions are replaced whole; the description kept.
        let updated = a.patch(&format!("{PATH}/dgx-h100"), &at(1)).expect(200).body;
        assert_eq!(updated["generation"], 2, "[{b}]");
        assert_eq!(updated["components"], json!({"HGX_FW_BMC_0": "25.01"}), "[{b}]");
        assert_eq!(updated["description"], "the fleet's DGX firmware", "[{b}]");

        // Provider only: a viewer reads, a tenant sees nothing of it.
        a.post("/v1/users", &json!({"name": "ops", "role": "provider-viewer"})).expect(201);
        let t = a.post("/v1/users/ops/tokens", &json!({"name": "t"})).expect(201);
        let viewer = s.client(t.body["secret"].as_str().unwrap());
        assert_eq!(viewer.get(PATH).expect(200).body["items"][0]["name"], "dgx-h100", "[{b}]");
        viewer.post(PATH, &dgx("v", "V")).expect(403);
        viewer.delete(&format!("{PATH}/dgx-h100")).expect(403);

        a.delete(&format!("{PATH}/dgx-h100")).expect(204);
        a.get(&format!("{PATH}/dgx-h100")).expect(404);
        a.delete(&format!("{PATH}/dgx-h100")).expect(404);
        // The model is free again.
        a.post(PATH, &dgx("dgx-h100-b", "DGX H100")).expect(201);

        let trail = a.get("/v1/audit?limit=1000").expect(200).text;
        for action in
            ["firmware_baseline_create", "firmware_baseline_update", "firmware_baseline_delete"]
        {
            assert!(trail.contains(action), "[{b}] {action} audited");
        }
    }
}
