//! Firmware activations between tenants: HGX GPU firmware that takes
//! effect only at an AC power cycle of its chassis (the update's task says
//! so, or the provider's baseline does where the BMC does not), power
//! cycled once and read back before the sanitizer boots; bundles sent
//! once for all their components; a failed update activating nothing;
//! images pushed to BMCs that cannot fetch them (also from servers the
//! site's CA signs); a new node's HGX firmware activated before it joins
//! the pool.
//!
//! On the SIMULATED BMC, as in baremetal_firmware.rs (the updates
//! themselves); the tests drive their own lifecycle controller and play
//! the node's agents.

mod bm;
mod common;
#[path = "../../redfish/tests/common/mod.rs"]
mod peers;

use bm::*;
use common::{TestBackend, TestServer};
use neocloud_server::simbmc;
use serde_json::{json, Value};
use std::sync::atomic::Ordering;

/// The simulated HGX baseboard's GPU firmware, which activates only at an
/// AC power cycle of its chassis.
const GPU_FW: &str = "HGX_FW_GPU_SXM_1";
const GPU_BASELINE: &str = "SIM-GPU-96.00.5F";
const CHASSIS_RESET: &str = "/redfish/v1/Chassis/HGX_Chassis_0/Actions/Chassis.Reset";
/// What the tenants flash on it.
const TENANT_GPU: &str = "SIM-GPU-95.00.1A-tenant";

/// The provider's baseline for the simulated model with the baseboard's
/// GPU firmware at `gpu`, its image given.
fn gpu_baseline(s: &TestServer, f: &Fleet, gpu: &str) -> Value {
    s.admin()
        .post(
            "/v1/firmware-baselines",
            &json!({"name": "sim-hgx", "model": MODEL,
                    "components": {"BMC": "SIM-BMC-2.1", "BIOS": "SIM-BIOS-1.0", GPU_FW: gpu},
                    "images": {GPU_FW: simbmc::firmware_package_url(&f.base, GPU_FW, gpu)}}),
        )
        .expect(201)
        .body
}

/// Firmware that activates only at an AC power cycle (HGX GPU firmware):
/// the update's task says so (the Base registry's `ResetRequired`, naming
/// the chassis's `Chassis.Reset` and `PowerCycle`). Once the updates are
/// done the chassis is power-cycled, once, even where its answer is lost,
/// and the version read back before the sanitizer boots; one that does
/// not read the baseline's within the timeout fails the record, saying so.
#[test]
fn firmware_that_activates_at_an_ac_power_cycle_is_power_cycled_once() {
    let f = fleet();
    for (i, b) in TestBackend::ALL.into_iter().enumerate() {
        let Some(s) = server_without_controller(b) else { continue };
        let b = b.as_str();
        f.sim.set_firmware(i, GPU_FW, GPU_BASELINE);
        let (h, _) = simulated_node_with(&s, &f, i, |c| {
            c.firmware_update_timeout = std::time::Duration::from_secs(2)
        });
        gpu_baseline(&s, &f, GPU_BASELINE);

        // The tenant flashes the GPU's firmware in-band.
        let id = h.provision("flasher");
        f.sim.set_firmware(i, GPU_FW, TENANT_GPU);
        let l = h.release(&id);
        assert_eq!(l["state"], "available", "[{b}] {l}");
        assert_eq!(f.sim.chassis_resets(i), 1, "[{b}] one AC power cycle");
        assert_eq!(f.sim.firmware(i, GPU_FW).as_deref(), Some(GPU_BASELINE), "[{b}]");
        let rec = record(&h, &id, true);
        let detail = firmware_item(&rec, GPU_FW)["detail"].as_str().unwrap().to_string();
        assert!(
            detail.contains("activates at an AC power cycle of the chassis")
                && detail.ends_with(&format!(
                    "; activated by PowerCycle at {CHASSIS_RESET}: completed (reads {GPU_BASELINE})"
                )),
            "[{b}] {detail}"
        );
        let audit = audit_of_bm1(&s);
        assert_eq!(times(&audit, "node_firmware_activation"), 2, "[{b}] asked, done: {audit:?}");
        let done = "neocloud_firmware_activations_total{reset_type=\"PowerCycle\",outcome=\"completed\"} 1\n";
        assert!(h.ctl.render_metrics().contains(done), "[{b}] {}", h.ctl.render_metrics());

        // Its answer lost: not sent again; the version read decides.
        let node = i;
        f.sim.on_change(move |n, what| n == node && what == "chassis_reset");
        let id = h.provision("flasher-2");
        f.sim.set_firmware(i, GPU_FW, TENANT_GPU);
        let l = h.release(&id);
        f.sim.on_change(|_, _| false);
        assert_eq!(l["state"], "available", "[{b}] {l}");
        assert_eq!(f.sim.chassis_resets(i), 2, "[{b}] sent once, no more");
        let rec = record(&h, &id, true);
        let detail = firmware_item(&rec, GPU_FW)["detail"].as_str().unwrap().to_string();
        assert!(detail.ends_with(&format!("completed (reads {GPU_BASELINE})")), "[{b}] {detail}");

        // A power cycle that does not activate it (the version stays the
        // tenant's): failed after the timeout, and so is the record.
        let sim = f.sim.clone();
        f.sim.on_change(move |n, what| {
            if n == node && what == "chassis_reset" {
                sim.set_firmware(n, GPU_FW, TENANT_GPU);
            }
            false
        });
        let id = h.provision("flasher-3");
        f.sim.set_firmware(i, GPU_FW, TENANT_GPU);
        let l = h.release(&id);
        f.sim.on_change(|_, _| false);
        assert_eq!(l["state"], "failed", "[{b}] {l}");
        assert_eq!(f.sim.chassis_resets(i), 3, "[{b}]");
        let rec = record(&h, &id, false);
        let item = firmware_item(&rec, GPU_FW);
        let detail = item["detail"].as_str().unwrap();
        assert!(
            item["ok"] == false
                && detail.contains(&format!(
                    "; activated by PowerCycle at {CHASSIS_RESET}: failed (reads \
                     \"{TENANT_GPU}\", not {GPU_BASELINE}, "
                )),
            "[{b}] {detail}"
        );
        let audit = audit_of_bm1(&s);
        assert_eq!(times(&audit, "node_firmware_activation"), 6, "[{b}] {audit:?}");
        let failed =
            "neocloud_firmware_activations_total{reset_type=\"PowerCycle\",outcome=\"failed\"} 1\n";
        assert!(h.ctl.render_metrics().contains(failed), "[{b}]");
    }
}

/// A BMC whose task does not say what activates the update: the provider's
/// baseline names it (`activations`), and that reset is sent; without it the
/// update is not activated and the record fails, saying what reads.
#[test]
fn the_providers_activation_activates_what_the_bmc_does_not_announce() {
    let f = fleet();
    f.sim.announce_resets.store(false, Ordering::SeqCst);
    for (i, b) in TestBackend::ALL.into_iter().enumerate() {
        let Some(s) = server_without_controller(b) else { continue };
        let b = b.as_str();
        f.sim.set_firmware(i, GPU_FW, GPU_BASELINE);
        let (h, _) = simulated_node(&s, &f, i);
        let mut body = json!({"name": "sim-hgx", "model": MODEL,
                "components": {"BMC": "SIM-BMC-2.1", "BIOS": "SIM-BIOS-1.0", GPU_FW: GPU_BASELINE},
                "images": {GPU_FW: simbmc::firmware_package_url(&f.base, GPU_FW, GPU_BASELINE)}});
        body["activations"] =
            json!({GPU_FW: {"action": CHASSIS_RESET, "reset_type": "PowerCycle"}});
        let created = s.admin().post("/v1/firmware-baselines", &body).expect(201).body;

        let id = h.provision("flasher");
        f.sim.set_firmware(i, GPU_FW, TENANT_GPU);
        let l = h.release(&id);
        assert_eq!(l["state"], "available", "[{b}] {l}");
        assert_eq!(f.sim.chassis_resets(i), 1, "[{b}]");
        let rec = record(&h, &id, true);
        let detail = firmware_item(&rec, GPU_FW)["detail"].as_str().unwrap().to_string();
        assert!(
            !detail.contains("ResetRequired")
                && detail.ends_with(&format!(
                    "; activated by PowerCycle at {CHASSIS_RESET}: completed (reads {GPU_BASELINE})"
                )),
            "[{b}] {detail}"
        );

        // Without it: updated, never activated, the record fails.
        let none = json!({"generation": created["generation"], "activations": {}});
        s.admin().patch("/v1/firmware-baselines/sim-hgx", &none).expect(200);
        let id = h.provision("flasher-2");
        f.sim.set_firmware(i, GPU_FW, TENANT_GPU);
        let l = h.release(&id);
        assert_eq!(l["state"], "failed", "[{b}] {l}");
        assert_eq!(f.sim.chassis_resets(i), 1, "[{b}] none sent");
        let rec = record(&h, &id, false);
        let detail = firmware_item(&rec, GPU_FW)["detail"].as_str().unwrap().to_string();
        assert!(
            detail.starts_with(&format!(
                "{TENANT_GPU} differs from the provider's baseline {GPU_BASELINE}"
            )) && detail.contains("activates at an AC power cycle of the chassis")
                && !detail.contains("activated by"),
            "[{b}] {detail}"
        );
    }
}

/// One image that updates several components (an HGX bundle) is sent once
/// for all their targets: one task on the BMC, one AC power cycle, each
/// component's record item naming the same task.
#[test]
fn a_bundle_is_sent_once_for_all_its_components() {
    const GPU2: &str = "HGX_FW_GPU_SXM_2";
    let f = fleet();
    for (i, b) in TestBackend::ALL.into_iter().enumerate() {
        let Some(s) = server_without_controller(b) else { continue };
        let b = b.as_str();
        for c in [GPU_FW, GPU2] {
            f.sim.set_firmware(i, c, GPU_BASELINE);
        }
        let (h, _) = simulated_node(&s, &f, i);
        let bundle = simbmc::firmware_bundle_url(&f.base, GPU_BASELINE);
        let body = json!({"name": "sim-hgx", "model": MODEL,
                "components": {"BMC": "SIM-BMC-2.1", "BIOS": "SIM-BIOS-1.0",
                               GPU_FW: GPU_BASELINE, GPU2: GPU_BASELINE},
                "images": {GPU_FW: bundle, GPU2: bundle}});
        s.admin().post("/v1/firmware-baselines", &body).expect(201);
        let id = h.provision("flasher");
        for c in [GPU_FW, GPU2] {
            f.sim.set_firmware(i, c, TENANT_GPU);
        }
        let tasks = f.sim.firmware_tasks(i);
        let l = h.release(&id);
        assert_eq!(l["state"], "available", "[{b}] {l}");
        assert_eq!(f.sim.firmware_tasks(i), tasks + 1, "[{b}] one task for both");
        assert_eq!(f.sim.chassis_resets(i), 1, "[{b}] one AC power cycle");
        let rec = record(&h, &id, true);
        let task_of = |c: &str| {
            let d = firmware_item(&rec, c)["detail"].as_str().unwrap().to_string();
            let t = d.split("completed (task ").nth(1).and_then(|r| r.split(' ').next());
            t.map(str::to_string).unwrap_or_else(|| panic!("[{b}] {d}"))
        };
        assert_eq!(task_of(GPU_FW), task_of(GPU2), "[{b}] the same task");
        let audit = audit_of_bm1(&s);
        assert_eq!(times(&audit, "node_firmware_update"), 4, "[{b}] each asked and done");
    }
}

/// An update that fails activates nothing: no reset is sent, and the
/// record says only how the update went.
#[test]
fn a_failed_update_activates_nothing() {
    let f = fleet();
    for (i, b) in TestBackend::ALL.into_iter().enumerate() {
        let Some(s) = server_without_controller(b) else { continue };
        let b = b.as_str();
        f.sim.set_firmware(i, GPU_FW, GPU_BASELINE);
        let (h, _) = simulated_node(&s, &f, i);
        let missing = format!("{}/nothing-here/gpu.fwpkg", f.base);
        let body = json!({"name": "sim-hgx", "model": MODEL,
                "components": {"BMC": "SIM-BMC-2.1", "BIOS": "SIM-BIOS-1.0", GPU_FW: GPU_BASELINE},
                "images": {GPU_FW: missing},
                "activations": {GPU_FW: {"action": CHASSIS_RESET, "reset_type": "PowerCycle"}}});
        s.admin().post("/v1/firmware-baselines", &body).expect(201);
        let id = h.provision("flasher");
        f.sim.set_firmware(i, GPU_FW, TENANT_GPU);
        let l = h.release(&id);
        assert_eq!(l["state"], "failed", "[{b}] {l}");
        assert_eq!(f.sim.chassis_resets(i), 0, "[{b}] nothing to activate");
        let rec = record(&h, &id, false);
        let detail = firmware_item(&rec, GPU_FW)["detail"].as_str().unwrap().to_string();
        assert!(
            detail.contains("download failed") && !detail.contains("activated by"),
            "[{b}] {detail}"
        );
    }
}

/// BMCs whose network cannot reach the image server: the baseline's
/// `push` has the control plane fetch the image and upload it to each BMC
/// (`MultipartHttpPushUri`), and the update runs as any other; with
/// `pull` the BMC's fetch fails, and so does the record.
#[test]
fn images_are_pushed_to_bmcs_that_cannot_fetch_them() {
    let f = fleet();
    f.sim.reach_images.store(false, Ordering::SeqCst);
    for (i, b) in TestBackend::ALL.into_iter().enumerate() {
        let Some(s) = server_without_controller(b) else { continue };
        let b = b.as_str();
        let (h, _) = simulated_node(&s, &f, i);
        let bios = simbmc::firmware_package_url(&f.base, "BIOS", "SIM-BIOS-1.0");
        let mut body = json!({"name": "sim-hgx", "model": MODEL,
                "components": {"BMC": "SIM-BMC-2.1", "BIOS": "SIM-BIOS-1.0"},
                "images": {"BIOS": bios}});
        body["transfer"] = json!("push");
        let created = s.admin().post("/v1/firmware-baselines", &body).expect(201).body;
        assert_eq!(created["transfer"], "push", "[{b}] {created}");

        let id = h.provision("flasher");
        f.sim.set_firmware(i, "BIOS", TENANT_BIOS);
        let l = h.release(&id);
        assert_eq!(l["state"], "available", "[{b}] {l}");
        assert_eq!(f.sim.firmware(i, "BIOS").as_deref(), Some("SIM-BIOS-1.0"), "[{b}]");
        let rec = record(&h, &id, true);
        let detail = firmware_item(&rec, "BIOS")["detail"].as_str().unwrap().to_string();
        assert!(detail.contains(": completed (task "), "[{b}] {detail}");
        assert_eq!(
            f.sim.firmware_task_uris(i),
            ["/redfish/v1/UpdateService/update-multipart"],
            "[{b}] uploaded, not fetched"
        );

        // Pulled instead: the BMC cannot fetch it.
        let pull = json!({"generation": created["generation"], "transfer": "pull"});
        s.admin().patch("/v1/firmware-baselines/sim-hgx", &pull).expect(200);
        let id = h.provision("flasher-2");
        f.sim.set_firmware(i, "BIOS", TENANT_BIOS);
        let l = h.release(&id);
        assert_eq!(l["state"], "failed", "[{b}] {l}");
        let rec = record(&h, &id, false);
        let detail = firmware_item(&rec, "BIOS")["detail"].as_str().unwrap().to_string();
        assert!(detail.contains("not reachable from the BMC's network"), "[{b}] {detail}");
    }
}

/// Images pushed from an HTTPS server the site's CA signs: refused under
/// the public roots (the record says why; nothing is uploaded), fetched and
/// uploaded once the server's `image_tls` trusts that CA.
#[test]
fn pushed_images_are_fetched_from_servers_the_image_tls_trusts() {
    let f = fleet();
    f.sim.reach_images.store(false, Ordering::SeqCst);
    let package = ureq::get(&simbmc::firmware_package_url(&f.base, "BIOS", "SIM-BIOS-1.0"))
        .call()
        .unwrap()
        .into_string()
        .unwrap();
    let images = neocloud_common::http_double::HttpDouble::start_https(
        move |r: &neocloud_common::http_double::Request| match r.path() {
            "/bios.fwpkg" => neocloud_common::http_double::Response::text(200, &package),
            _ => neocloud_common::http_double::Response::text(404, "no"),
        },
    );
    for (i, b) in TestBackend::ALL.into_iter().enumerate() {
        let Some(s) = server_without_controller(b) else { continue };
        let b = b.as_str();
        let (mut h, _) = simulated_node(&s, &f, i);
        let body = json!({"name": "sim-hgx", "model": MODEL, "transfer": "push",
                "components": {"BMC": "SIM-BMC-2.1", "BIOS": "SIM-BIOS-1.0"},
                "images": {"BIOS": format!("{}/bios.fwpkg", images.url)}});
        s.admin().post("/v1/firmware-baselines", &body).expect(201);

        // Trusted: fetched, uploaded, updated.
        h.ctl.image_tls = neocloud_common::tls::TlsOptions {
            ca_pem: Some(neocloud_common::http_double::TEST_CA_PEM.to_string()),
            insecure_skip_verify: false,
        };
        let id = h.provision("flasher");
        f.sim.set_firmware(i, "BIOS", TENANT_BIOS);
        let l = h.release(&id);
        assert_eq!(l["state"], "available", "[{b}] {l}");
        assert_eq!(f.sim.firmware(i, "BIOS").as_deref(), Some("SIM-BIOS-1.0"), "[{b}]");
        assert_eq!(
            f.sim.firmware_task_uris(i),
            ["/redfish/v1/UpdateService/update-multipart"],
            "[{b}] uploaded"
        );

        // The public roots (the default) do not know the site's CA.
        h.ctl.image_tls = Default::default();
        let id = h.provision("flasher-2");
        f.sim.set_firmware(i, "BIOS", TENANT_BIOS);
        let l = h.release(&id);
        assert_eq!(l["state"], "failed", "[{b}] {l}");
        let rec = record(&h, &id, false);
        let detail = firmware_item(&rec, "BIOS")["detail"].as_str().unwrap().to_string();
        assert!(
            detail.contains("could not fetch the image") && detail.contains("certificate"),
            "[{b}] {detail}"
        );
        assert_eq!(f.sim.firmware_task_uris(i).len(), 1, "[{b}] nothing more uploaded");
    }
}

/// A new node whose HGX firmware is behind the provider's baseline: updated,
/// its chassis power-cycled to activate it, the host reset, the version
/// read back; it joins the pool.
#[test]
fn a_new_nodes_hgx_firmware_is_activated_before_it_joins_the_pool() {
    let f = fleet();
    for (i, b) in TestBackend::ALL.into_iter().enumerate() {
        let Some(s) = server_without_controller(b) else { continue };
        let b = b.as_str();
        catalog(&s, true);
        f.sim.set_firmware(i, GPU_FW, "SIM-GPU-95.00.1A");
        gpu_baseline(&s, &f, GPU_BASELINE);
        enroll_simulated(&s, &f, i);
        let (ctl, secrets) = controller(&s);
        drive_paced((&ctl, &secrets), &s, "available");
        assert_eq!(f.sim.chassis_resets(i), 1, "[{b}]");
        assert_eq!(f.sim.firmware(i, GPU_FW).as_deref(), Some(GPU_BASELINE), "[{b}]");
        assert!(!f.sim.power_on(i), "[{b}] powered off again");
        let c = compliance(&s);
        assert!(c[0]["compliant"] == true, "[{b}] {c:?}");
    }
}
