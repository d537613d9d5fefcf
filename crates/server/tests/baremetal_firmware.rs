//! Firmware updated back to the provider's baseline between tenants: a
//! component the baseline gives an image for, found at another version
//! when a node is released (a tenant with root flashed it in-band), is
//! updated from that image over the BMC (`UpdateService.SimpleUpdate`, its
//! task followed) before the sanitizer boots; the sanitizer's boot applies
//! what waits for a reset, and the signed record's firmware check reads
//! every version back.
//!
//! On the SIMULATED BMC, which fetches the image (a SIMULATED package its
//! fleet serves), runs a task, installs its own firmware at once and the
//! host's at the next power-on. The driver's calls against a real peer
//! (the sushy-tools emulator) are in crates/redfish/tests.
//!
//! The tests drive their own lifecycle controller and play the node's
//! agents.

mod bm;
mod common;
#[path = "../../redfish/tests/common/mod.rs"]
mod peers;

use bm::*;
use common::nodes::lifecycle;
use common::{TestBackend, TestServer};
use neocloud_server::simbmc;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

/// The provider's baseline for the simulated model, with images for
/// `images` (component, URL).
fn baseline(s: &TestServer, images: &[(&str, String)]) -> Value {
    let images: serde_json::Map<String, Value> =
        images.iter().map(|(c, u)| (c.to_string(), json!(u))).collect();
    s.admin()
        .post(
            "/v1/firmware-baselines",
            &json!({"name": "sim-hgx", "model": MODEL,
                    "components": {"BMC": "SIM-BMC-2.1", "BIOS": "SIM-BIOS-1.0"},
                    "images": images}),
        )
        .expect(201)
        .body
}

fn updates(s: &TestServer) -> Vec<Value> {
    let hw = s.admin().get("/v1/nodes/bm-1/hardware").expect(200).body;
    hw["firmware_updates"].as_array().cloned().unwrap_or_default()
}

/// `bm-1` on SIMULATED BMC `i`, the provider's baseline giving an image for
/// its BIOS, provisioned, and its BIOS flashed by the tenant; the
/// instance's id.
fn flashed<'a>(s: &'a TestServer, f: &Fleet, i: usize) -> (ByHand<'a>, String) {
    flashed_with(s, f, i, |_| {})
}

/// As [`flashed`], the controller set up by `set`.
fn flashed_with<'a>(
    s: &'a TestServer,
    f: &Fleet,
    i: usize,
    set: impl FnOnce(&mut neocloud_server::controllers::lifecycle::LifecycleController),
) -> (ByHand<'a>, String) {
    let (h, _) = simulated_node_with(s, f, i, set);
    baseline(s, &[("BIOS", simbmc::firmware_package_url(&f.base, "BIOS", "SIM-BIOS-1.0"))]);
    let id = h.provision("job");
    f.sim.set_firmware(i, "BIOS", TENANT_BIOS);
    (h, id)
}

#[test]
fn firmware_a_tenant_flashed_is_updated_back_from_the_providers_images() {
    let f = fleet();
    for (i, b) in TestBackend::ALL.into_iter().enumerate() {
        let Some(s) = server_without_controller(b) else { continue };
        let b = b.as_str();
        let (h, _) = simulated_node(&s, &f, i);
        let bios = simbmc::firmware_package_url(&f.base, "BIOS", "SIM-BIOS-1.0");
        let bmc = simbmc::firmware_package_url(&f.base, "BMC", "SIM-BMC-2.1");
        let created = baseline(&s, &[("BIOS", bios.clone()), ("BMC", bmc.clone())]);
        assert_eq!(created["images"]["BIOS"], bios.as_str(), "[{b}] {created}");

        // Nothing flashed: nothing updated.
        let id = h.provision("clean");
        assert_eq!(h.release(&id)["state"], "available", "[{b}]");
        assert_eq!(f.sim.firmware_tasks(i), 0, "[{b}] no update asked of the BMC");
        record(&h, &id, true);

        // The tenant flashes its own BIOS and BMC firmware.
        let id = h.provision("flasher");
        f.sim.set_firmware(i, "BIOS", TENANT_BIOS);
        f.sim.set_firmware(i, "BMC", "SIM-BMC-6.6-tenant");
        let l = h.release(&id);
        assert_eq!(l["state"], "available", "[{b}] {l}");
        assert_eq!(f.sim.firmware_tasks(i), 2, "[{b}] one update per component");
        let by_id = [vec!["BIOS".to_string()], vec!["BMC".to_string()]];
        assert_eq!(f.sim.firmware_updates_started(i), by_id, "[{b}] by id");
        // The BMC's own at once, the BIOS at the sanitizer's boot.
        assert_eq!(f.sim.firmware(i, "BMC").as_deref(), Some("SIM-BMC-2.1"), "[{b}]");
        assert_eq!(f.sim.firmware(i, "BIOS").as_deref(), Some("SIM-BIOS-1.0"), "[{b}]");
        let rec = record(&h, &id, true);
        let item = firmware_item(&rec, "BIOS");
        assert_eq!(item["ok"], true, "[{b}] {item}");
        let detail = item["detail"].as_str().unwrap();
        assert!(
            detail.starts_with(&format!(
                "SIM-BIOS-1.0 (the provider's baseline); updated from {TENANT_BIOS} with {bios}: \
                 completed (task /redfish/v1/TaskService/Tasks/"
            )),
            "[{b}] {detail}"
        );
        assert!(detail.contains("applies at the next power-on"), "[{b}] {detail}");
        let item = firmware_item(&rec, "BMC");
        assert!(
            item["detail"].as_str().unwrap().contains("updated from SIM-BMC-6.6-tenant"),
            "[{b}] {item}"
        );
        // Each update audited as asked, then as done.
        let audit = audit_of_bm1(&s);
        assert_eq!(times(&audit, "node_firmware_update"), 4, "[{b}] {audit:?}");
        assert!(updates(&s).is_empty(), "[{b}] cleared with the record");
        // The versions read at the end of the sanitization are the node's
        // recorded ones now.
        let c = compliance(&s);
        assert!(c[0]["compliant"] == true, "[{b}] {c:?}");
        let hw = s.admin().get("/v1/nodes/bm-1/hardware").expect(200).body;
        assert_eq!(c[0]["read_at"], hw["bmc"]["firmware_read_at"], "[{b}] {hw}");
        assert!(
            hw["bmc"]["firmware_read_at"].as_str().unwrap()
                > hw["bmc"]["inspected_at"].as_str().unwrap(),
            "[{b}] {hw}"
        );
        let metrics = h.ctl.render_metrics();
        for component in ["BIOS", "BMC"] {
            let line = format!(
                "neocloud_firmware_updates_total{{component=\"{component}\",outcome=\"completed\"}} 1\n"
            );
            assert!(metrics.contains(&line), "[{b}] {line} in {metrics}");
        }

        // The provider's order: the BMC's own firmware first.
        let p = s.admin().get("/v1/firmware-baselines/sim-hgx").expect(200).body;
        let e = s
            .admin()
            .patch(
                "/v1/firmware-baselines/sim-hgx",
                &json!({"generation": p["generation"], "order": ["BMC", "GPU"]}),
            )
            .expect(422);
        assert_eq!(e.error().1.as_deref(), Some("order[1]"), "[{b}] {}", e.text);
        let p = s
            .admin()
            .patch(
                "/v1/firmware-baselines/sim-hgx",
                &json!({"generation": p["generation"], "order": ["BMC"]}),
            )
            .expect(200)
            .body;
        assert_eq!(p["order"], json!(["BMC"]), "[{b}] {p}");
        let id = h.provision("flasher-2");
        f.sim.set_firmware(i, "BIOS", TENANT_BIOS);
        f.sim.set_firmware(i, "BMC", "SIM-BMC-6.6-tenant");
        assert_eq!(h.release(&id)["state"], "available", "[{b}]");
        let started = f.sim.firmware_updates_started(i);
        assert_eq!(started[2..], [by_id[1].clone(), by_id[0].clone()], "[{b}] the BMC first");
        record(&h, &id, true);

        // An image the BMC cannot fetch: the update fails, and so does the
        // record; the node goes to no one.
        let p = s.admin().get("/v1/firmware-baselines/sim-hgx").expect(200).body;
        let missing = format!("{}/nothing-here/bios.bin", f.base);
        // Images that leave an ordered component without one: the order
        // named, nothing changed.
        let e = s
            .admin()
            .patch(
                "/v1/firmware-baselines/sim-hgx",
                &json!({"generation": p["generation"], "images": {"BIOS": missing}}),
            )
            .expect(422);
        assert_eq!(e.error().1.as_deref(), Some("order[0]"), "[{b}] {}", e.text);
        s.admin()
            .patch(
                "/v1/firmware-baselines/sim-hgx",
                &json!({"generation": p["generation"], "images": {"BIOS": missing}, "order": []}),
            )
            .expect(200);
        let id = h.provision("again");
        f.sim.set_firmware(i, "BIOS", TENANT_BIOS);
        let l = h.release(&id);
        assert_eq!(l["state"], "failed", "[{b}] {l}");
        assert!(l["reason"].as_str().unwrap().contains("firmware_baseline failed"), "[{b}] {l}");
        let rec = record(&h, &id, false);
        let item = firmware_item(&rec, "BIOS");
        let detail = item["detail"].as_str().unwrap();
        assert_eq!(item["ok"], false, "[{b}] {item}");
        let failed = "neocloud_firmware_updates_total{component=\"BIOS\",outcome=\"failed\"} 1\n";
        assert!(h.ctl.render_metrics().contains(failed), "[{b}]");
        assert!(
            detail.starts_with(&format!(
                "{TENANT_BIOS} differs from the provider's baseline SIM-BIOS-1.0; updated from \
                 {TENANT_BIOS} with {missing}: failed (task "
            )) && detail.contains("ended Exception")
                && detail.contains("download failed"),
            "[{b}] {detail}"
        );
    }
}

/// As [`flashed`], an update with no answer and no task to trace it to sent
/// again 400 ms on (the simulated flash takes 200).
fn flashed_resending<'a>(s: &'a TestServer, f: &Fleet, i: usize) -> (ByHand<'a>, String) {
    let resend = std::time::Duration::from_millis(400);
    flashed_with(s, f, i, |c| c.firmware_resend_after = resend)
}

/// Runs `h`'s controller, paced, until `done` or 10 s.
fn passes_until(h: &ByHand<'_>, done: impl Fn() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !done() && std::time::Instant::now() < deadline {
        h.ctl.run_once(&h.s.store, &h.secrets).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// A BMC that lists its tasks and keeps each one's request: an update whose
/// answer is lost is traced to the task it started, and followed; not sent
/// again.
#[test]
fn a_firmware_update_whose_answer_is_lost_is_traced_to_its_task() {
    let f = fleet();
    for (i, b) in TestBackend::ALL.into_iter().enumerate() {
        let Some(s) = server_without_controller(b) else { continue };
        let b = b.as_str();
        let (h, id) = flashed(&s, &f, i);
        let node = i;
        f.sim.on_change(move |n, what| n == node && what == "firmware_update");
        let tasks = f.sim.firmware_tasks(i);
        release(&h.tenant, &id).expect(202);
        passes_until(&h, || updates(&s).first().is_some_and(|u| u["task"].is_string()));
        let u = updates(&s);
        assert_eq!(u[0]["sends"], 1, "[{b}] not sent again: {u:?}");
        let detail = u[0]["detail"].as_str().unwrap();
        assert!(
            detail
                .starts_with("the BMC's answer not heard; its task /redfish/v1/TaskService/Tasks/")
                && detail.ends_with(" found"),
            "[{b}] {u:?}"
        );
        let l = h.finish_release();
        f.sim.on_change(|_, _| false);
        assert_eq!(l["state"], "available", "[{b}] {l}");
        assert_eq!(f.sim.firmware_tasks(i), tasks + 1, "[{b}] one update on the BMC");
        assert_eq!(f.sim.firmware(i, "BIOS").as_deref(), Some("SIM-BIOS-1.0"), "[{b}]");
        let rec = record(&h, &id, true);
        let item = firmware_item(&rec, "BIOS");
        assert!(item["detail"].as_str().unwrap().contains(": completed (task "), "[{b}] {item}");
    }
}

/// The update is written as sent before the BMC gets it; on a BMC that
/// neither lists its tasks nor keeps their requests, a pass that hears no
/// answer reads the version back and, `firmware_resend_secs` later, sends
/// it again.
#[test]
fn a_firmware_update_whose_answer_is_lost_is_sent_again() {
    let f = fleet();
    f.sim.list_tasks.store(false, Ordering::SeqCst);
    for (i, b) in TestBackend::ALL.into_iter().enumerate() {
        let Some(s) = server_without_controller(b) else { continue };
        let b = b.as_str();
        let (h, id) = flashed_resending(&s, &f, i);
        let tasks = f.sim.firmware_tasks(i);

        // The BMC starts every update it is sent; its answers are lost
        // until the test says.
        let lose = Arc::new(AtomicBool::new(true));
        let (sent_first, reached) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        {
            let (lose, sent_first, reached) = (lose.clone(), sent_first.clone(), reached.clone());
            let store = s.store.clone();
            let node = i;
            f.sim.on_change(move |n, what| {
                if n != node || what != "firmware_update" {
                    return false;
                }
                reached.fetch_add(1, Ordering::SeqCst);
                // Off the BMC's runtime: the store's clients block.
                let store = store.clone();
                let written = std::thread::spawn(move || {
                    let sql = "SELECT COUNT(*) FROM nodes WHERE firmware_updates LIKE '%\"sent\"%'";
                    store.read(|r| r.query(sql, &[])).unwrap()[0].i64(0).unwrap()
                })
                .join()
                .unwrap();
                if written > 0 {
                    sent_first.fetch_add(1, Ordering::SeqCst);
                }
                lose.load(Ordering::SeqCst)
            });
        }
        release(&h.tenant, &id).expect(202);
        let sends = |u: &[Value]| u.first().and_then(|u| u["sends"].as_u64()).unwrap_or(0);
        passes_until(&h, || sends(&updates(&s)) >= 2);
        let u = updates(&s);
        assert_eq!(u.len(), 1, "[{b}] {u:?}");
        assert_eq!(u[0]["state"], "sent", "[{b}] {u:?}");
        assert!(u[0]["task"].is_null(), "[{b}] no task known: {u:?}");
        // (The client did not send it again: an error after it may have
        // reached the BMC, which here took it.)
        let detail = u[0]["detail"].as_str().unwrap();
        assert!(
            detail.contains("BMC answered 500") && detail.contains("answer lost"),
            "[{b}] {u:?}"
        );
        assert_eq!(sends(&u), 2, "[{b}] sent again after reading the version back: {u:?}");
        assert_eq!(f.sim.firmware_tasks(i), tasks + 2, "[{b}] each send taken once");
        assert_eq!(lifecycle(&s, "bm-1")["step"], "set_boot", "[{b}] the sanitizer waits");
        assert_eq!(compliance(&s)[0]["updating"], true, "[{b}] under way");
        // No boot can run the sanitizer before the reset that applies the
        // update (a provisioning boot still in flight, say): no token yet.
        let ipxe = format!("{}/boot/ipxe?mac={}", s.url, simbmc::mac(i));
        let (status, script) = common::nodes::get_text(&ipxe);
        assert!(
            status == 200 && script.contains("booting the local disk"),
            "[{b}] {status}: {script}"
        );
        assert!(reached.load(Ordering::SeqCst) >= 2, "[{b}]");
        assert_eq!(
            sent_first.load(Ordering::SeqCst),
            reached.load(Ordering::SeqCst),
            "[{b}] every update was in the store as sent before the BMC got it"
        );

        // The answers come back: the next send is followed to its end.
        lose.store(false, Ordering::SeqCst);
        let l = h.finish_release();
        assert_eq!(l["state"], "available", "[{b}] {l}");
        assert_eq!(f.sim.firmware(i, "BIOS").as_deref(), Some("SIM-BIOS-1.0"), "[{b}]");
        let rec = record(&h, &id, true);
        let item = firmware_item(&rec, "BIOS");
        assert!(item["detail"].as_str().unwrap().contains(": completed (task "), "[{b}] {item}");
        f.sim.on_change(|_, _| false);
    }
}

/// A BMC that keeps losing the answer: after the last send the update is
/// failed, and the record says so. The record's verdict is the version read
/// at the end: this BMC did the updates it did not answer (the simulated
/// one makes the change, then loses the answer), so the BIOS reads right.
#[test]
fn a_firmware_update_never_answered_is_failed_and_the_version_read_decides() {
    let f = fleet();
    f.sim.list_tasks.store(false, Ordering::SeqCst);
    for (i, b) in TestBackend::ALL.into_iter().enumerate() {
        let Some(s) = server_without_controller(b) else { continue };
        let b = b.as_str();
        let (h, id) = flashed_resending(&s, &f, i);
        let node = i;
        f.sim.on_change(move |n, what| n == node && what == "firmware_update");
        let tasks = f.sim.firmware_tasks(i);
        release(&h.tenant, &id).expect(202);
        passes_until(&h, || updates(&s).first().is_some_and(|u| u["state"] == "failed"));
        // The BMC's tasks (each took the simulated flash time) are done
        // before the sanitizer's boot.
        std::thread::sleep(std::time::Duration::from_millis(600));
        let u = updates(&s);
        assert!(u[0]["state"] == "failed" && u[0]["sends"] == 3, "[{b}] {u:?}");
        // Each send started one task: a POST whose answer is lost (500) is
        // not sent again by the client; the controller sends it again.
        assert_eq!(f.sim.firmware_tasks(i), tasks + 3, "[{b}] sent 3 times, no more");
        let l = h.finish_release();
        f.sim.on_change(|_, _| false);
        assert_eq!(l["state"], "available", "[{b}] {l}");
        let rec = record(&h, &id, true);
        let item = firmware_item(&rec, "BIOS");
        let detail = item["detail"].as_str().unwrap().to_string();
        assert!(
            detail.starts_with("SIM-BIOS-1.0 (the provider's baseline); updated from")
                && detail.contains(": failed (sent 3 times with no answer heard"),
            "[{b}] {detail}"
        );
        let audit = audit_of_bm1(&s);
        assert_eq!(times(&audit, "node_firmware_update"), 4, "[{b}] 3 asked, 1 failed: {audit:?}");
    }
}

/// Against sushy-static serving the DGX mockup: the update is sent to the
/// action its update service lists, taken (204, no task: it changes
/// nothing), and the version read at the end still differs: the record
/// fails, saying the update was taken and what the component reads.
#[test]
fn an_update_taken_and_not_applied_fails_the_record_on_sushy_static() {
    let mockup = peers::mockup_copy_logs_cleared("dgx-h100");
    let Some(bmc) = peers::StaticBmc::start_dir(mockup.path()) else { return };
    let bios_file = mockup.path().join("UpdateService/FirmwareInventory/HostBIOS_0/index.json");
    let shipped = std::fs::read_to_string(&bios_file).unwrap();
    let image = "https://fw.example/dgx/HostBIOS-01.05.03.bin";
    for b in TestBackend::ALL {
        let Some(s) = server_without_controller(b) else { continue };
        let b = b.as_str();
        std::fs::write(&bios_file, &shipped).unwrap();
        let (h, hw) = static_node(&s, &bmc.url, mockup.path());
        assert_eq!(hw["bmc"]["model"], "DGXH100", "[{b}] {hw}");
        s.admin()
            .post(
                "/v1/firmware-baselines",
                &json!({"name": "dgx", "model": "DGXH100",
                        "components": {"HostBIOS_0": "01.05.03"},
                        "images": {"HostBIOS_0": image}}),
            )
            .expect(201);
        let id = h.provision("job");
        // The tenant flashes an older BIOS in-band.
        std::fs::write(&bios_file, shipped.replace("01.05.03", "01.04.99")).unwrap();
        let l = h.release(&id);
        assert_eq!(l["state"], "failed", "[{b}] {l}");
        let rec = record(&h, &id, false);
        let item = firmware_item(&rec, "HostBIOS_0");
        assert_eq!(
            item["detail"],
            format!(
                "01.04.99 differs from the provider's baseline 01.05.03; updated from 01.04.99 \
                 with {image}: completed (taken; the BMC named no task to follow)"
            ),
            "[{b}] {item}"
        );
        let c = check(&rec, "firmware_baseline");
        let others_ok = c["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|i| i["target"] == "HostBIOS_0" || i["ok"] == true);
        assert!(others_ok, "[{b}] only the BIOS differs: {c}");
    }
}

/// A new node whose firmware is behind the provider's baseline, which has
/// images for it, is updated before it joins the pool: the updates sent
/// and followed, the host reset to apply them, the versions read back,
/// the node powered off again and inspected. One whose update fails is
/// refused, saying why; inspected again (its image fixed), it joins.
#[test]
fn a_new_node_behind_the_baseline_is_updated_before_it_joins_the_pool() {
    let f = fleet();
    for (i, b) in TestBackend::ALL.into_iter().enumerate() {
        let Some(s) = server_without_controller(b) else { continue };
        let b = b.as_str();
        let tenant = catalog(&s, true);
        // The provider's baseline is newer than the factory's BIOS, and its
        // image cannot be fetched at first.
        let missing = format!("{}/nothing-here/bios-1.2.bin", f.base);
        let created = s
            .admin()
            .post(
                "/v1/firmware-baselines",
                &json!({"name": "sim-hgx", "model": MODEL,
                        "components": {"BMC": "SIM-BMC-2.1", "BIOS": "SIM-BIOS-1.2"},
                        "images": {"BIOS": missing}}),
            )
            .expect(201)
            .body;
        enroll_simulated(&s, &f, i);
        let (ctl, secrets) = controller(&s);
        drive_paced((&ctl, &secrets), &s, "failed");
        let l = lifecycle(&s, "bm-1");
        let reason = l["reason"].as_str().unwrap();
        assert!(
            reason.starts_with(
                "firmware differs from the provider's baseline: Simulated HGX H100 (sim-hgx): \
                 BIOS SIM-BIOS-1.0 (want SIM-BIOS-1.2); updated from its images: BIOS failed \
                 (task /redfish/v1/TaskService/Tasks/"
            ) && reason.contains("download failed"),
            "[{b}] {l}"
        );
        assert_eq!(f.sim.firmware(i, "BIOS").as_deref(), Some("SIM-BIOS-1.0"), "[{b}]");
        assert!(!f.sim.power_on(i), "[{b}] nothing to apply: not reset");
        // The provider's view of the rollout: this node is behind, with an
        // image to update it from, nothing under way.
        let c = compliance(&s);
        assert_eq!(c.len(), 1, "[{b}] {c:?}");
        assert_eq!(c[0]["node"], "bm-1", "[{b}]");
        assert_eq!(c[0]["compliant"], false, "[{b}] {c:?}");
        assert_eq!(c[0]["updating"], false, "[{b}] {c:?}");
        assert_eq!(
            c[0]["differs"],
            json!([{"component": "BIOS", "want": "SIM-BIOS-1.2", "have": "SIM-BIOS-1.0", "image": true}]),
            "[{b}]"
        );
        assert!(updates(&s).is_empty(), "[{b}] cleared with the refusal");

        // The image fixed, inspected again: updated, applied, read back.
        let bios = simbmc::firmware_package_url(&f.base, "BIOS", "SIM-BIOS-1.2");
        s.admin()
            .patch(
                "/v1/firmware-baselines/sim-hgx",
                &json!({"generation": created["generation"], "images": {"BIOS": bios}}),
            )
            .expect(200);
        let tasks = f.sim.firmware_tasks(i);
        s.admin().post("/v1/nodes/bm-1/inspect", &json!({})).expect(202);
        // Once the reset that applies it is sent, the BMC restarts for a
        // while (as after its own update): waited for, not a failure.
        let applied = || updates(&s).first().is_some_and(|u| u["applied_at"].is_string());
        for _ in 0..200 {
            if applied() {
                break;
            }
            ctl.run_once(&s.store, &secrets).unwrap();
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        assert!(applied(), "[{b}] {:?}", updates(&s));
        f.sim.set_restarting(i, true);
        for _ in 0..5 {
            ctl.run_once(&s.store, &secrets).unwrap();
        }
        f.sim.set_restarting(i, false);
        assert_eq!(lifecycle(&s, "bm-1")["state"], "inspecting", "[{b}] waited for the BMC");
        drive_paced((&ctl, &secrets), &s, "available");
        assert_eq!(f.sim.firmware_tasks(i), tasks + 1, "[{b}] one update");
        assert_eq!(f.sim.firmware(i, "BIOS").as_deref(), Some("SIM-BIOS-1.2"), "[{b}]");
        assert!(!f.sim.power_on(i), "[{b}] powered off again after the reset that applied it");
        let hw = s.admin().get("/v1/nodes/bm-1/hardware").expect(200).body;
        let fw: Vec<(&str, &str)> = hw["bmc"]["firmware"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| (f["id"].as_str().unwrap(), f["version"].as_str().unwrap()))
            .collect();
        assert!(fw.contains(&("BIOS", "SIM-BIOS-1.2")), "[{b}] inspected after: {fw:?}");
        assert!(updates(&s).is_empty(), "[{b}] cleared");
        let c = compliance(&s);
        assert!(c[0]["compliant"] == true && c[0]["differs"] == json!([]), "[{b}] {c:?}");
        let audit = audit_of_bm1(&s);
        // Asked and failed, asked and done.
        assert_eq!(times(&audit, "node_firmware_update"), 4, "[{b}] {audit:?}");

        // A tenant's round: the record holds the node to the new version.
        let h = ByHand { s: &s, ctl, secrets, tenant, mac: simbmc::mac(i), gpus: 8, mockup: None };
        let id = h.provision("job");
        assert_eq!(h.release(&id)["state"], "available", "[{b}]");
        let rec = record(&h, &id, true);
        let item = firmware_item(&rec, "BIOS");
        assert_eq!(item["detail"], "SIM-BIOS-1.2 (the provider's baseline)", "[{b}] {item}");
    }
}

/// At most `firmware_updates_in_flight` nodes have updates in flight: a
/// release finding the slots taken waits, saying so, and sends its update
/// once one is free.
#[test]
fn firmware_updates_wait_for_a_slot() {
    use neocloud_types::{FirmwareUpdate, FirmwareUpdateState};
    let f = fleet();
    for (i, b) in TestBackend::ALL.into_iter().enumerate() {
        let Some(s) = server_without_controller(b) else { continue };
        let b = b.as_str();
        let (h, _) = simulated_node_with(&s, &f, i, |c| c.firmware_updates_in_flight = 1);
        baseline(&s, &[("BIOS", simbmc::firmware_package_url(&f.base, "BIOS", "SIM-BIOS-1.0"))]);
        let id = h.provision("job");
        f.sim.set_firmware(i, "BIOS", TENANT_BIOS);
        // Another node's BMC runs an update.
        let other = s
            .admin()
            .post(
                "/v1/nodes",
                &json!({"name": "other", "site": "s", "pod": "p", "su": "su1", "rack": "r1",
                        "gpu_model": "h100-80gb", "gpus": 8}),
            )
            .expect(201)
            .body["id"]
            .as_str()
            .unwrap()
            .to_string();
        let busy = FirmwareUpdate {
            activation: None,
            component: "BIOS".into(),
            target: "/redfish/v1/UpdateService/FirmwareInventory/BIOS".into(),
            from: "a".into(),
            to: "b".into(),
            image: "http://fw/b".into(),
            push: false,
            state: FirmwareUpdateState::Sent,
            task: Some("/redfish/v1/TaskService/Tasks/1".into()),
            percent: None,
            sends: 1,
            sent_at: None,
            tasks_before: None,
            applied_at: None,
            detail: String::new(),
        };
        let set = |u: Option<&[FirmwareUpdate]>| {
            s.store.write(|w| neocloud_store::nodes::set_firmware_updates(w, &other, u)).unwrap()
        };
        // As a node in the middle of its release (only the state column
        // the count reads: this node has no BMC to release through).
        let state_of_other = |state: &str| {
            s.store
                .write(|w| {
                    w.execute(
                        "UPDATE nodes SET lifecycle_state = ? WHERE id = ?",
                        &[state.into(), other.as_str().into()],
                    )?;
                    Ok(())
                })
                .unwrap()
        };
        state_of_other("releasing");
        set(Some(&[busy]));
        let tasks = f.sim.firmware_tasks(i);
        release(&h.tenant, &id).expect(202);
        for _ in 0..5 {
            h.ctl.run_once(&s.store, &h.secrets).unwrap();
        }
        let u = updates(&s);
        assert_eq!(u[0]["state"], "planned", "[{b}] {u:?}");
        assert_eq!(
            u[0]["detail"],
            "waiting: 1 nodes have updates in flight (firmware_updates_in_flight = 1)",
            "[{b}]"
        );
        assert_eq!(f.sim.firmware_tasks(i), tasks, "[{b}] nothing sent");
        let full = |per_update: u64| {
            neocloud_server::controllers::lifecycle::census(
                &s.store,
                std::time::Duration::from_secs(60),
                std::time::Duration::from_secs(per_update),
            )
            .unwrap()
        };
        let census = |_: &TestServer| full(3600).updating_firmware;
        assert_eq!(census(&s), 2, "[{b}] one in flight, one planned");
        // Releasing for 31 minutes, past the state's SLA (30): within the
        // allowance of its one update, not past it without one.
        let now =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_micros()
                as i64;
        s.store
            .write(|w| {
                w.execute(
                    "UPDATE nodes SET lifecycle_since = ? WHERE id = ?",
                    &[(now - 31 * 60 * 1_000_000).into(), other.as_str().into()],
                )?;
                Ok(())
            })
            .unwrap();
        let releasing_over = |per_update: u64| {
            full(per_update).over_sla.iter().find(|(st, _)| st == "releasing").unwrap().1
        };
        assert_eq!(releasing_over(3600), 0, "[{b}] firmware takes its time");
        assert_eq!(releasing_over(0), 1, "[{b}] past its SLA");
        assert_eq!(lifecycle(&s, "bm-1")["step"], "set_boot", "[{b}]");
        // That node fails with its update in flight: it holds no slot.
        state_of_other("failed");
        for _ in 0..3 {
            h.ctl.run_once(&s.store, &h.secrets).unwrap();
        }
        assert_eq!(updates(&s)[0]["state"], "sent", "[{b}] {:?}", updates(&s));
        set(None);
        assert_eq!(h.finish_release()["state"], "available", "[{b}]");
        assert_eq!(f.sim.firmware_tasks(i), tasks + 1, "[{b}]");
        assert_eq!(f.sim.firmware(i, "BIOS").as_deref(), Some("SIM-BIOS-1.0"), "[{b}]");
        assert_eq!(census(&s), 0, "[{b}]");
    }
}
