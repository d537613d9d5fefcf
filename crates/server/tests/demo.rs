//! `serve --demo` seeds a small simulated datacenter once, and it is usable:
//! every node enrolls through a simulated BMC, and a tenant provisions and
//! releases bare-metal instances that simulated agents check in from.

mod common;

use common::{TestBackend, TestServer};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

fn nodes(a: &common::Client) -> Vec<Value> {
    a.get("/v1/nodes").expect(200).body["items"].as_array().unwrap().clone()
}

fn wait(what: &str, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < Duration::from_secs(30), "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn demo_fleet_is_seeded_once_and_provisions_and_releases() {
    for b in TestBackend::ALL {
        let Some(s) = TestServer::start_with(b, |c| {
            c.demo = true;
            c.lifecycle_interval_ms = 100;
            c.heartbeat_interval_ms = 100;
        }) else {
            continue;
        };
        let b = b.as_str();
        let a = s.admin();
        // Every node goes through the real lifecycle behind a simulated BMC.
        wait("the demo fleet to be available", || {
            let ns = nodes(&a);
            assert_eq!(ns.len(), neocloud_server::demo::DEMO_NODES, "[{b}]");
            assert!(
                ns.iter().all(|n| n["lifecycle"]["state"] != "failed"),
                "[{b}] a simulated BMC failed: {ns:?}"
            );
            ns.iter().all(|n| n["lifecycle"]["state"] == "available")
        });
        let ns = nodes(&a);
        assert!(ns.iter().all(|n| n["name"].as_str().unwrap().starts_with("sim-")), "[{b}]");
        assert!(
            ns.iter()
                .all(|n| n["gpus"] == 8 && n["gpu_memory_gb"] == 80 && n["macs"][0].is_string()),
            "[{b}] inspected: {ns:?}"
        );
        assert_eq!(
            a.get("/v1/instance-types").expect(200).body["items"].as_array().unwrap().len(),
            7
        );
        let fw = a.get("/v1/firmware-baselines/sim-hgx-h100").expect(200).body;
        assert_eq!(fw["model"], "Simulated HGX H100", "[{b}] {fw}");
        // It wants a newer BIOS than the simulated nodes leave the factory
        // with, and gives its image: every node was updated before it
        // joined the pool, and runs it.
        assert_eq!(fw["components"]["BIOS"], neocloud_server::demo::DEMO_BIOS, "[{b}] {fw}");
        let c = a.get("/v1/firmware-baselines/sim-hgx-h100/nodes").expect(200).body;
        let c = c["items"].as_array().unwrap();
        assert_eq!(c.len(), ns.len(), "[{b}] {c:?}");
        assert!(c.iter().all(|n| n["compliant"] == true && n["updating"] == false), "[{b}] {c:?}");
        let trail = a.get("/v1/audit?limit=1000").expect(200).body;
        let succeeded = |action: &str| {
            let items = trail["items"].as_array().unwrap();
            items.iter().filter(|e| e["action"] == action && e["outcome"] == "success").count()
        };
        let updated = succeeded("node_firmware_update");
        assert_eq!(updated, 2 * ns.len(), "[{b}] a BIOS and a GPU update per node");
        // The GPU firmware activated by an AC power cycle of each chassis.
        let activated = succeeded("node_firmware_activation");
        assert_eq!(activated, ns.len(), "[{b}] one activation per node");
        let gpu = neocloud_server::demo::DEMO_GPU_COMPONENT;
        assert_eq!(fw["components"][gpu], neocloud_server::demo::DEMO_GPU, "[{b}] {fw}");
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

        // Bare-metal instances: provisioned, agents check in, released, sanitized.
        let created = a
            .post(
                "/v1/tenants/demo/projects/train/instances",
                &json!({"name": "web", "instance_type": "bm-h100", "count": 2,
                        "image": "sim-ubuntu-24-04",
                        "ssh_keys": ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDemo demo@laptop"]}),
            )
            .expect(201)
            .body;
        let ids: Vec<String> = created["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["id"].as_str().unwrap().to_string())
            .collect();
        let inst = |id: &str| {
            a.get(&format!("/v1/tenants/demo/projects/train/instances/{id}")).expect(200).body
        };
        wait("the instances to be ready", || {
            ids.iter().all(|id| {
                let i = inst(id);
                assert_ne!(i["state"], "failed", "[{b}] {i}");
                i["state"] == "ready"
            })
        });
        // A tenant's reboot: the server's own controller does it over the
        // simulated BMC (which has no GracefulRestart: forced).
        let power = format!("/v1/tenants/demo/projects/train/instances/{}/power", ids[0]);
        a.post(&power, &json!({"action": "reboot", "force": true})).expect(202);
        wait("the reboot to be done", || inst(&ids[0])["power"]["last"].is_object());
        let last = &inst(&ids[0])["power"]["last"];
        assert_eq!(last["ok"], true, "[{b}] {last}");
        assert_eq!(last["reset_type"], "ForceRestart", "[{b}] {last}");
        // A rebuild: the node is provisioned again with the image, its new
        // agent checks in, the instance is ready again.
        let rebuild = format!("/v1/tenants/demo/projects/train/instances/{}/rebuild", ids[1]);
        a.post(&rebuild, &json!({"image": "sim-ubuntu-24-04"})).expect(202);
        wait("the rebuild to start", || inst(&ids[1]).get("rebuild_image_id").is_none());
        wait("the rebuilt instance to be ready", || {
            let i = inst(&ids[1]);
            assert_ne!(i["state"], "failed", "[{b}] {i}");
            i["state"] == "ready"
        });
        for id in &ids {
            assert_eq!(
                a.delete(&format!("/v1/tenants/demo/projects/train/instances/{id}")).status,
                202
            );
        }
        wait("the instances to be released", || {
            ids.iter().all(|id| inst(id)["state"] == "released")
        });
        for id in &ids {
            let recs = a
                .get(&format!("/v1/tenants/demo/projects/train/instances/{id}/sanitization"))
                .expect(200)
                .body;
            assert_eq!(recs["items"][0]["body"]["complete"], true, "[{b}] {recs}");
            // Checked against the demo's firmware baseline for the model.
            let fw = recs["items"][0]["body"]["checks"]
                .as_array()
                .unwrap()
                .iter()
                .find(|c| c["name"] == "firmware_baseline")
                .cloned()
                .unwrap_or_default();
            assert!(fw.to_string().contains("the provider's baseline"), "[{b}] {fw}");
        }
        wait("the nodes to be available again", || {
            nodes(&a).iter().all(|n| n["lifecycle"]["state"] == "available")
        });
        let trail = a.get("/v1/audit?limit=1000").expect(200);
        assert!(trail.text.contains("demo_seed"), "[{b}] the seed is audited");

        // A restart serves the fleet on another port: the nodes and the
        // baseline's SIMULATED images are pointed at it.
        let moved = "http://127.0.0.1:9";
        let n = neocloud_server::demo::rebind_sim_bmcs(&s.store, moved).unwrap();
        assert_eq!(n, nodes(&a).len(), "[{b}]");
        assert!(
            nodes(&a).iter().all(|n| n["bmc_endpoint"].as_str().unwrap().starts_with(moved)),
            "[{b}]"
        );
        let after = a.get("/v1/firmware-baselines/sim-hgx-h100").expect(200).body;
        assert_eq!(
            after["images"]["BIOS"],
            format!("{moved}/simbmc/firmware/BIOS/{}", neocloud_server::demo::DEMO_BIOS),
            "[{b}] {after}"
        );
        assert_eq!(after["generation"], fw["generation"].as_i64().unwrap() + 1, "[{b}]");
    }
}
