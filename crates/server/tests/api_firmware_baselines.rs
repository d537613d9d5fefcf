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

/// A component's image: kept with the baseline, replaced whole by an
/// update, and refused (naming `images.<component>`, writing nothing)
/// where it names no listed component, is not an http(s) URL, or carries
/// credentials; an update that drops a component keeps no image for it.
#[test]
fn images_belong_to_listed_components_and_are_urls_without_credentials() {
    for b in TestBackend::ALL {
        let Some(s) = TestServer::start(b) else { continue };
        let b = b.as_str();
        let a = s.admin();
        let mut body = dgx("dgx-h100", "DGX H100");
        body["images"] = json!({"EROT_BIOS_0": "https://fw.example/dgx/bios-1.2.bin"});
        let created = a.post(PATH, &body).expect(201).body;
        assert_eq!(created["images"], body["images"], "[{b}] {created}");
        assert_eq!(a.get(&format!("{PATH}/dgx-h100")).expect(200).body, created, "[{b}]");
        // Without images: none.
        let other = a.post(PATH, &dgx("dgx-b200", "DGX B200")).expect(201).body;
        assert_eq!(other["images"], json!({}), "[{b}] {other}");

        for (images, field) in [
            (json!({"CPLD_0": "https://fw/cpld.bin"}), "images.CPLD_0"),
            (json!({"EROT_BIOS_0": "tftp://fw/bios.bin"}), "images.EROT_BIOS_0"),
            (json!({"EROT_BIOS_0": "https://fw/bios 1.2.bin"}), "images.EROT_BIOS_0"),
            (json!({"EROT_BIOS_0": "https://ops:pw@fw/bios.bin"}), "images.EROT_BIOS_0"),
        ] {
            let mut body = dgx("x", "M");
            body["images"] = images.clone();
            let r = a.post(PATH, &body).expect(422);
            assert_eq!(r.error().1.as_deref(), Some(field), "[{b}] {images}: {}", r.text);
            let at = json!({"generation": created["generation"], "images": images});
            let r = a.patch(&format!("{PATH}/dgx-h100"), &at).expect(422);
            assert_eq!(r.error().1.as_deref(), Some(field), "[{b}] {images}: {}", r.text);
        }
        assert_eq!(names(&s), ["dgx-b200", "dgx-h100"], "[{b}] nothing written");
        assert_eq!(a.get(&format!("{PATH}/dgx-h100")).expect(200).body, created, "[{b}]");

        // Dropping the component its image belongs to, and not the image: refused.
        let drop = json!({"generation": 1, "components": {"HGX_FW_BMC_0": "25.01"}});
        let r = a.patch(&format!("{PATH}/dgx-h100"), &drop).expect(422);
        assert_eq!(r.error().1.as_deref(), Some("images.EROT_BIOS_0"), "[{b}] {}", r.text);
        // Images replaced whole; `{}` removes them.
        let at = json!({"generation": 1,
                        "images": {"HGX_FW_BMC_0": "http://fw.example/dgx/bmc-24.09.fwpkg"}});
        let updated = a.patch(&format!("{PATH}/dgx-h100"), &at).expect(200).body;
        assert_eq!(updated["images"], at["images"], "[{b}] {updated}");
        assert_eq!(updated["components"], created["components"], "[{b}] kept");
        let none = json!({"generation": 2, "images": {}});
        let updated = a.patch(&format!("{PATH}/dgx-h100"), &none).expect(200).body;
        assert_eq!(updated["images"], json!({}), "[{b}] {updated}");
    }
}

/// A component's activation (the reset that activates its update where
/// the BMC does not say): kept with the baseline, replaced whole by an
/// update, and refused (naming the field, writing nothing) where its
/// component has no image, its action is not a reset action of the BMC's,
/// or its reset type is not one word; an update that drops the image
/// keeps no activation for it.
#[test]
fn activations_belong_to_components_with_images_and_name_a_reset_action() {
    const CHASSIS: &str = "/redfish/v1/Chassis/HGX_Chassis_0/Actions/Chassis.Reset";
    for b in TestBackend::ALL {
        let Some(s) = TestServer::start(b) else { continue };
        let b = b.as_str();
        let a = s.admin();
        let mut body = dgx("dgx-h100", "DGX H100");
        body["images"] = json!({"HGX_FW_BMC_0": "https://fw.example/dgx/hgx-24.09.fwpkg"});
        body["activations"] =
            json!({"HGX_FW_BMC_0": {"action": CHASSIS, "reset_type": "PowerCycle"}});
        let created = a.post(PATH, &body).expect(201).body;
        assert_eq!(created["activations"], body["activations"], "[{b}] {created}");
        assert_eq!(a.get(&format!("{PATH}/dgx-h100")).expect(200).body, created, "[{b}]");
        let other = a.post(PATH, &dgx("dgx-b200", "DGX B200")).expect(201).body;
        assert_eq!(other["activations"], json!({}), "[{b}] none: {other}");

        for (activations, field) in [
            (
                json!({"EROT_BIOS_0": {"action": CHASSIS, "reset_type": "PowerCycle"}}),
                "activations.EROT_BIOS_0",
            ),
            (
                json!({"HGX_FW_BMC_0": {"action": "/redfish/v1/UpdateService/Actions/UpdateService.SimpleUpdate", "reset_type": "On"}}),
                "activations.HGX_FW_BMC_0.action",
            ),
            (
                json!({"HGX_FW_BMC_0": {"action": CHASSIS, "reset_type": "Power Cycle"}}),
                "activations.HGX_FW_BMC_0.reset_type",
            ),
        ] {
            let mut body = dgx("x", "M");
            body["images"] = created["images"].clone();
            body["activations"] = activations.clone();
            let r = a.post(PATH, &body).expect(422);
            assert_eq!(r.error().1.as_deref(), Some(field), "[{b}] {activations}: {}", r.text);
            let at = json!({"generation": 1, "activations": activations});
            let r = a.patch(&format!("{PATH}/dgx-h100"), &at).expect(422);
            assert_eq!(r.error().1.as_deref(), Some(field), "[{b}] {activations}: {}", r.text);
        }
        // Not a field of a reset: refused as an unknown field.
        let mut body = dgx("x", "M");
        body["images"] = created["images"].clone();
        body["activations"] =
            json!({"HGX_FW_BMC_0": {"action": CHASSIS, "reset_type": "PowerCycle", "x": 1}});
        a.post(PATH, &body).expect(400);
        assert_eq!(names(&s), ["dgx-b200", "dgx-h100"], "[{b}] nothing written");
        assert_eq!(a.get(&format!("{PATH}/dgx-h100")).expect(200).body, created, "[{b}]");

        // Dropping the image and not its activation: refused.
        let drop = json!({"generation": 1, "images": {}});
        let r = a.patch(&format!("{PATH}/dgx-h100"), &drop).expect(422);
        assert_eq!(r.error().1.as_deref(), Some("activations.HGX_FW_BMC_0"), "[{b}] {}", r.text);
        // Replaced whole; `{}` removes them.
        let bmc = "/redfish/v1/Managers/HGX_BMC_0/Actions/Manager.Reset";
        let at = json!({"generation": 1,
                        "activations": {"HGX_FW_BMC_0": {"action": bmc, "reset_type": "ForceRestart"}}});
        let updated = a.patch(&format!("{PATH}/dgx-h100"), &at).expect(200).body;
        assert_eq!(updated["activations"], at["activations"], "[{b}] {updated}");
        assert_eq!(updated["images"], created["images"], "[{b}] kept");
        let none = json!({"generation": 2, "activations": {}, "images": {}});
        let updated = a.patch(&format!("{PATH}/dgx-h100"), &none).expect(200).body;
        assert_eq!(updated["activations"], json!({}), "[{b}] {updated}");
    }
}

/// How images reach the BMCs: `pull` unless said, `push` kept and changed
/// at the generation; anything else refused naming `transfer`.
#[test]
fn transfer_is_pull_or_push() {
    for b in TestBackend::ALL {
        let Some(s) = TestServer::start(b) else { continue };
        let b = b.as_str();
        let a = s.admin();
        let created = a.post(PATH, &dgx("dgx-h100", "DGX H100")).expect(201).body;
        assert_eq!(created["transfer"], "pull", "[{b}] {created}");
        let mut body = dgx("dgx-b200", "DGX B200");
        body["transfer"] = json!("push");
        assert_eq!(a.post(PATH, &body).expect(201).body["transfer"], "push", "[{b}]");
        body["name"] = json!("x");
        body["model"] = json!("M");
        body["transfer"] = json!("scp");
        let r = a.post(PATH, &body).expect(400);
        assert_eq!(r.error().1.as_deref(), Some("transfer"), "[{b}] {}", r.text);
        let at = json!({"generation": 1, "transfer": "push"});
        let updated = a.patch(&format!("{PATH}/dgx-h100"), &at).expect(200).body;
        assert_eq!(updated["transfer"], "push", "[{b}] {updated}");
        assert_eq!(updated["components"], created["components"], "[{b}] kept");
        assert_eq!(names(&s), ["dgx-b200", "dgx-h100"], "[{b}]");
    }
}
