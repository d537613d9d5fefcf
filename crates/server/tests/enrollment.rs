//! Enrollment through a BMC: the lifecycle controller reaches the BMC over
//! Redfish (sushy-tools peers), inspects the node and makes it available;
//! failures end in `failed` with the reason, visible in the API. BMC
//! passwords are sealed at rest and never returned.

mod common;
#[path = "../../redfish/tests/common/mod.rs"]
mod peers;

use common::{TestBackend, TestServer};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

fn server(b: TestBackend) -> Option<TestServer> {
    TestServer::start_with(b, |c| {
        c.lifecycle_interval_ms = 200;
        c.bmc_timeout_ms = 1000;
    })
}

fn enroll(s: &TestServer, name: &str, endpoint: &str, password: &str) -> Value {
    s.admin()
        .post(
            "/v1/nodes",
            &json!({"name": name, "site": "s", "pod": "p", "su": "su1", "rack": "r1",
                    "gpu_model": "h100-80gb", "gpus": 8, "mig_capable": true,
                    "bmc": {"endpoint": endpoint, "username": "admin", "password": password}}),
        )
        .expect(201)
        .body
}

/// Polls the node until its lifecycle state is not one of `passing`.
fn settle(s: &TestServer, name: &str, passing: &[&str]) -> Value {
    let start = Instant::now();
    loop {
        let n = s.admin().get(&format!("/v1/nodes/{name}")).expect(200).body;
        let state = n["lifecycle"]["state"].as_str().unwrap().to_string();
        if !passing.contains(&state.as_str()) || start.elapsed() > Duration::from_secs(30) {
            return n;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn an_hgx_node_is_enrolled_inspected_and_becomes_schedulable() {
    let Some(bmc) = peers::StaticBmc::start("dgx-h100") else { return };
    for b in TestBackend::ALL {
        let Some(s) = server(b) else { continue };
        let b = b.as_str();
        let n = enroll(&s, "dgx-1", &bmc.url, "bmc-pass-123");
        assert_eq!(n["lifecycle"]["state"], "enrolling", "[{b}]");
        assert_eq!(n["bmc_endpoint"], bmc.url.as_str(), "[{b}]");
        assert!(!n.to_string().contains("bmc-pass-123"), "[{b}] the password is never returned");
        // Not schedulable until inspected.
        let cap = s.admin().get("/v1/capacity").expect(200).body;
        assert_eq!(cap["models"][0]["total"]["free_nodes"], 0, "[{b}] {cap}");

        let n = settle(&s, "dgx-1", &["enrolling", "inspecting"]);
        assert_eq!(n["lifecycle"]["state"], "available", "[{b}] {n}");
        assert_eq!(n["gpu_model"], "h100-80gb", "[{b}] from the BMC's GPU inventory");
        assert_eq!(n["gpus"], 8, "[{b}]");
        assert_eq!(n["gpu_memory_gb"], 80, "[{b}] 81559 MiB per GPU");
        let cap = s.admin().get("/v1/capacity").expect(200).body;
        assert_eq!(cap["models"][0]["total"]["free_nodes"], 1, "[{b}] schedulable now: {cap}");
        // The whole inventory is there for operators.
        let hw = s.admin().get("/v1/nodes/dgx-1/hardware").expect(200).body;
        let bmc = &hw["bmc"];
        assert_eq!(bmc["gpus"].as_array().unwrap().len(), 8, "[{b}] {hw}");
        assert!(bmc["gpus"][0]["serial"].as_str().is_some_and(|s| !s.is_empty()), "[{b}] {hw}");
        assert!(!bmc["cpus"].as_array().unwrap().is_empty(), "[{b}] {hw}");
        assert!(bmc["memory_mib"].as_u64().unwrap() > 0, "[{b}] {hw}");
        assert!(bmc["nics"][0]["mac"].as_str().is_some_and(|m| m.contains(':')), "[{b}] {hw}");
        assert!(!bmc["firmware"].as_array().unwrap().is_empty(), "[{b}] {hw}");
        assert!(hw["agent"].is_null(), "[{b}] no agent yet");
        assert_eq!(
            n["macs"],
            json!(bmc["nics"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x["mac"].clone())
                .collect::<Vec<_>>()),
            "[{b}]"
        );

        // Sealed at rest.
        let rows = s.store.read(|r| r.query("SELECT password_sealed FROM node_bmcs", &[])).unwrap();
        let sealed = rows[0].str(0).unwrap();
        assert!(sealed.starts_with("v1:") && !sealed.contains("bmc-pass-123"), "[{b}] {sealed}");
        // Lifecycle metrics.
        let start = Instant::now();
        let metrics = loop {
            let m = s.anonymous().get("/metrics").expect(200).text;
            if m.contains("neocloud_nodes{lifecycle=\"available\"} 1")
                || start.elapsed() > Duration::from_secs(10)
            {
                break m;
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        assert!(metrics.contains("neocloud_nodes{lifecycle=\"available\"} 1"), "[{b}] {metrics}");
        assert!(metrics.contains("neocloud_nodes_over_sla{lifecycle=\"inspecting\"} 0"), "[{b}]");
        // The time each step took, once the node left it.
        for state in ["enrolling", "inspecting"] {
            let count = format!(
                "neocloud_node_step_duration_seconds_count{{lifecycle=\"{state}\",step=\"\"}} 1"
            );
            assert!(metrics.lines().any(|l| l == count), "[{b}] {count}:\n{metrics}");
        }
        assert!(!metrics.contains("lifecycle=\"available\",step"), "[{b}] not left yet");
        // Transitions are audited.
        let trail = s.admin().get("/v1/audit?limit=1000").expect(200).text;
        assert!(trail.contains("node_inspecting") && trail.contains("node_available"), "[{b}]");
    }
}

#[test]
fn unreachable_bmcs_and_wrong_credentials_end_in_failed_with_the_reason() {
    let Some(emu) = peers::Emulator::start_with_auth(1, "admin", "right") else { return };
    let closed = format!("http://127.0.0.1:{}", peers::free_port());
    for b in TestBackend::ALL {
        let Some(s) = server(b) else { continue };
        let b = b.as_str();
        enroll(&s, "gone", &closed, "x");
        enroll(&s, "wrong", &emu.url, "not-right");
        enroll(&s, "fine", &emu.url, "right");
        let gone = settle(&s, "gone", &["enrolling"]);
        assert_eq!(gone["lifecycle"]["state"], "failed", "[{b}] {gone}");
        assert_eq!(gone["lifecycle"]["from"], "enrolling", "[{b}]");
        assert!(
            gone["lifecycle"]["reason"].as_str().unwrap().contains("unreachable"),
            "[{b}] {gone}"
        );
        let wrong = settle(&s, "wrong", &["enrolling"]);
        assert_eq!(wrong["lifecycle"]["state"], "failed", "[{b}] {wrong}");
        assert!(
            wrong["lifecycle"]["reason"].as_str().unwrap().contains("credentials"),
            "[{b}] {wrong}"
        );
        assert!(!wrong.to_string().contains("not-right"), "[{b}]");
        // The emulator exposes no GPU inventory: the declared GPUs stand.
        let fine = settle(&s, "fine", &["enrolling", "inspecting"]);
        assert_eq!(fine["lifecycle"]["state"], "available", "[{b}] {fine}");
        assert_eq!(fine["gpus"], 8, "[{b}]");
        let cap = s.admin().get("/v1/capacity").expect(200).body;
        assert_eq!(
            cap["models"][0]["total"]["free_nodes"], 1,
            "[{b}] only the available node: {cap}"
        );
        assert_eq!(cap["models"][0]["total"]["unavailable_nodes"], 2, "[{b}]");
        // Bad BMC input is refused up front, naming the field.
        let e = s
            .admin()
            .post(
                "/v1/nodes",
                &json!({"name": "x", "site": "s", "pod": "p", "su": "su1", "rack": "r1", "gpu_model": "h100-80gb",
                        "gpus": 8, "bmc": {"endpoint": "ftp://x", "username": "a", "password": "b"}}),
            )
            .expect(422);
        assert_eq!(e.error().1.as_deref(), Some("bmc.endpoint"), "[{b}]");
        // Credentials in the address would be used unsealed and shown to
        // every reader; a query, a fragment or the Redfish root in it
        // would break every path the driver appends.
        for endpoint in [
            "https://root:calvin@10.0.0.5",
            "https://root@10.0.0.5",
            "https://10.0.0.5/redfish/v1",
            "https://10.0.0.5/redfish/v1/",
            "https://10.0.0.5?x=1",
            "https://10.0.0.5#",
            "https://",
        ] {
            let e = s
                .admin()
                .post(
                    "/v1/nodes",
                    &json!({"name": "x", "site": "s", "pod": "p", "su": "su1", "rack": "r1", "gpu_model": "h100-80gb",
                            "gpus": 8, "bmc": {"endpoint": endpoint, "username": "a", "password": "b"}}),
                )
                .expect(422);
            assert_eq!(e.error().1.as_deref(), Some("bmc.endpoint"), "[{b}] {endpoint}");
            assert!(!e.text.contains("calvin"), "[{b}] {}", e.text);
        }
        s.admin().get("/v1/nodes/x").expect(404);
        // A boot method needs a BMC, a known name, and (virtual media, UEFI
        // HTTP) the server's iPXE ISO or EFI binary, which this server has not.
        let node = |extra: serde_json::Value| {
            let mut v = json!({"name": "x", "site": "s", "pod": "p", "su": "su1", "rack": "r1",
                               "gpu_model": "h100-80gb", "gpus": 8,
                               "bmc": {"endpoint": emu.url, "username": "a", "password": "b"}});
            for (k, x) in extra.as_object().unwrap() {
                v[k] = x.clone();
            }
            v
        };
        for (body, status) in [
            (node(json!({"boot_method": "virtual_media"})), 422),
            (node(json!({"boot_method": "uefi_http"})), 422),
            (node(json!({"boot_method": "pxe", "bmc": null})), 422),
            (node(json!({"boot_method": "floppy"})), 400),
        ] {
            let e = s.admin().post("/v1/nodes", &body).expect(status);
            assert!(e.text.contains("boot_method"), "[{b}] {body}: {}", e.text);
            if body["boot_method"] == "uefi_http" {
                assert!(e.text.contains("uefi_http_boot_url"), "[{b}] says what is missing");
            }
        }
        s.admin().get("/v1/nodes/x").expect(404);
        let before = s.admin().get("/v1/nodes/fine").expect(200).body;
        assert_eq!(before["boot_method"], "pxe", "[{b}] the default");
        let e = s
            .admin()
            .patch(
                "/v1/nodes/fine",
                &json!({"generation": before["generation"], "availability": "schedulable",
                        "boot_method": "virtual_media"}),
            )
            .expect(422);
        assert_eq!(e.error().1.as_deref(), Some("boot_method"), "[{b}] {}", e.text);
        let after = s.admin().get("/v1/nodes/fine").expect(200).body;
        assert_eq!(after["generation"], before["generation"], "[{b}] nothing written");
    }
}

/// A copy of mockup `name` whose MACs are another machine's: the fourth
/// octet of each is `k` (a MAC is one node's).
fn mockup_of_machine(name: &str, k: u8) -> peers::TempDir {
    fn is_mac(b: &[u8]) -> bool {
        b.len() == 17
            && b.iter().enumerate().all(|(i, c)| match i % 3 {
                2 => *c == b':',
                _ => c.is_ascii_hexdigit(),
            })
    }
    fn walk(dir: &std::path::Path, k: u8) {
        for e in std::fs::read_dir(dir).unwrap() {
            let path = e.unwrap().path();
            if path.is_dir() {
                walk(&path, k);
                continue;
            }
            let mut text = std::fs::read(&path).unwrap();
            let mut i = 0;
            while i + 17 <= text.len() {
                if is_mac(&text[i..i + 17]) {
                    text[i + 9..i + 11].copy_from_slice(format!("{k:02X}").as_bytes());
                    i += 17;
                } else {
                    i += 1;
                }
            }
            std::fs::write(&path, text).unwrap();
        }
    }
    let dir = peers::mockup_copy(name);
    walk(dir.path(), k);
    dir
}

#[test]
fn two_replicas_move_each_node_once() {
    let mockups: Vec<_> = (0..3).map(|k| mockup_of_machine("dgx-h100", k)).collect();
    let mut bmcs = Vec::new();
    for m in &mockups {
        let Some(bmc) = peers::StaticBmc::start_dir(m.path()) else { return };
        bmcs.push(bmc);
    }
    for b in TestBackend::ALL {
        let Some(s) = server(b) else { continue };
        // A second replica: its own lifecycle controller on the same store.
        let r2 = s.replica();
        let b = b.as_str();
        for (i, bmc) in bmcs.iter().enumerate() {
            enroll(&s, &format!("dgx-{i}"), &bmc.url, "pw");
        }
        for i in 0..3 {
            let n = settle(&s, &format!("dgx-{i}"), &["enrolling", "inspecting"]);
            assert_eq!(n["lifecycle"]["state"], "available", "[{b}] {n}");
        }
        let trail = s.admin().get("/v1/audit?limit=1000").expect(200).body;
        let events = trail["items"].as_array().unwrap();
        for action in ["node_inspecting", "node_available"] {
            let n = events.iter().filter(|e| e["action"] == action).count();
            assert_eq!(
                n, 3,
                "[{b}] {action}: each node moved exactly once, whichever replica moved it"
            );
        }
        // Both replicas' engines see the three nodes as schedulable.
        for srv in [&s, &r2] {
            let cap = srv.admin().get("/v1/capacity").expect(200).body;
            assert_eq!(cap["models"][0]["total"]["free_nodes"], 3, "[{b}] {cap}");
        }
    }
}

#[test]
fn a_replica_with_the_wrong_key_skips_the_node_instead_of_failing_it() {
    let Some(bmc) = peers::StaticBmc::start("dgx-h100") else { return };
    for b in TestBackend::ALL {
        // This server runs no controller of its own.
        let Some(s) = TestServer::start_with(b, |c| c.lifecycle_interval_ms = 0) else {
            continue;
        };
        let b = b.as_str();
        enroll(&s, "dgx-k", &bmc.url, "pw");
        let wrong_dir = s.data_dir.join("other-key");
        let wrong = neocloud_server::secrets::SecretBox::load_or_create(&wrong_dir).unwrap();
        let ctl = neocloud_server::controllers::lifecycle::LifecycleController::new(
            Some(Duration::from_secs(2)),
            std::sync::Arc::new(neocloud_server::signing::Signer::from_seed([1; 32])),
        );
        let pass = ctl.run_once(&s.store, &wrong).unwrap();
        assert_eq!((pass.skipped, pass.failed, pass.moved), (1, 0, 0), "[{b}] {pass:?}");
        let n = s.admin().get("/v1/nodes/dgx-k").expect(200).body;
        assert_eq!(n["lifecycle"]["state"], "enrolling", "[{b}] untouched: {n}");
        // With the right key the same controller moves it.
        let right = neocloud_server::secrets::SecretBox::load_or_create(&s.data_dir).unwrap();
        assert_eq!(ctl.run_once(&s.store, &right).unwrap().moved, 1, "[{b}]");
        assert_eq!(ctl.run_once(&s.store, &right).unwrap().moved, 1, "[{b}]");
        let n = s.admin().get("/v1/nodes/dgx-k").expect(200).body;
        assert_eq!(n["lifecycle"]["state"], "available", "[{b}] {n}");
    }
}

/// A BMC that answers every request with `status`, or (status 0) accepts
/// connections and never answers.
fn broken_bmc(status: u16) -> String {
    use std::io::{Read, Write};
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for c in l.incoming().flatten() {
            if status == 0 {
                held.push(c);
                continue;
            }
            let mut c = c;
            let mut buf = [0u8; 4096];
            let _ = c.read(&mut buf);
            let body = r#"{"error": {"message": "BMC firmware crashed"}}"#;
            let _ = write!(
                c,
                "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    format!("http://{addr}")
}

#[test]
fn bmc_server_errors_and_silence_are_retried_then_fail_with_the_reason() {
    for b in TestBackend::ALL {
        let Some(s) = TestServer::start_with(b, |c| {
            c.lifecycle_interval_ms = 100;
            c.bmc_timeout_ms = 250;
        }) else {
            continue;
        };
        let b = b.as_str();
        enroll(&s, "five-oh-three", &broken_bmc(503), "pw");
        enroll(&s, "silent", &broken_bmc(0), "pw");
        let n = settle(&s, "five-oh-three", &["enrolling"]);
        assert_eq!(n["lifecycle"]["state"], "failed", "[{b}] {n}");
        let reason = n["lifecycle"]["reason"].as_str().unwrap();
        assert!(reason.contains("503") && reason.contains("after 3 retries"), "[{b}] {reason}");
        let n = settle(&s, "silent", &["enrolling"]);
        assert_eq!(n["lifecycle"]["state"], "failed", "[{b}] {n}");
        assert!(n["lifecycle"]["reason"].as_str().unwrap().contains("timed out"), "[{b}] {n}");
        // Never silent: the failures are in the provider's trail.
        let trail = s.admin().get("/v1/audit?limit=1000").expect(200).body;
        let failed = trail["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["action"] == "node_failed")
            .count();
        assert_eq!(failed, 2, "[{b}]");
    }
}

#[test]
fn a_failed_node_is_inspected_again_with_corrected_credentials() {
    let Some(emu) = peers::Emulator::start_with_auth(1, "admin", "right") else { return };
    for b in TestBackend::ALL {
        let Some(s) = server(b) else { continue };
        let b = b.as_str();
        enroll(&s, "typo", &emu.url, "rigth");
        let n = settle(&s, "typo", &["enrolling"]);
        assert_eq!(n["lifecycle"]["state"], "failed", "[{b}] {n}");
        // The API records the intent (202); the controller does the rest.
        let r = s
            .admin()
            .post(
                "/v1/nodes/typo/inspect",
                &json!({"bmc": {"endpoint": emu.url, "username": "admin", "password": "right"}}),
            )
            .expect(202);
        assert!(!r.text.contains("\"right\""), "[{b}] the password is not echoed");
        let n = settle(&s, "typo", &["failed", "enrolling", "inspecting"]);
        assert_eq!(n["lifecycle"]["state"], "available", "[{b}] {n}");
        // Asked again without new credentials: back through inspection (the
        // trail shows a second pass).
        s.admin().post("/v1/nodes/typo/inspect", &json!({})).expect(202);
        let start = Instant::now();
        let passes = loop {
            let trail = s.admin().get("/v1/audit?limit=1000").expect(200).body;
            let n = trail["items"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|e| e["action"] == "node_available")
                .count();
            if n >= 2 || start.elapsed() > Duration::from_secs(20) {
                break n;
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        assert_eq!(passes, 2, "[{b}]");
        let n = settle(&s, "typo", &["enrolling", "inspecting"]);
        assert_eq!(n["lifecycle"]["state"], "available", "[{b}] {n}");
        // A node without a BMC cannot be inspected; bad credentials are refused.
        s.admin()
            .post(
                "/v1/nodes",
                &json!({"name": "manual", "site": "s", "pod": "p", "su": "su1", "rack": "r1",
                        "gpu_model": "h100-80gb", "gpus": 8}),
            )
            .expect(201);
        let e = s.admin().post("/v1/nodes/manual/inspect", &json!({})).expect(409);
        assert!(e.text.contains("no BMC"), "[{b}] {}", e.text);
        let e = s
            .admin()
            .post(
                "/v1/nodes/manual/inspect",
                &json!({"bmc": {"endpoint": "x", "username": "a", "password": "b"}}),
            )
            .expect(422);
        assert_eq!(e.error().1.as_deref(), Some("bmc.endpoint"), "[{b}]");
    }
}

#[test]
fn a_silent_bmc_does_not_hold_up_other_nodes() {
    let Some(bmc) = peers::StaticBmc::start("dgx-h100") else { return };
    for b in TestBackend::ALL {
        // BMC requests may take up to 8 s before they time out.
        let Some(s) = TestServer::start_with(b, |c| {
            c.lifecycle_interval_ms = 100;
            c.bmc_timeout_ms = 8_000;
        }) else {
            continue;
        };
        let b = b.as_str();
        enroll(&s, "silent", &broken_bmc(0), "pw");
        std::thread::sleep(Duration::from_millis(300));
        enroll(&s, "healthy", &bmc.url, "pw");
        // Stepped in parallel: the healthy node is done long before the
        // silent BMC's first request times out.
        let start = Instant::now();
        let healthy = loop {
            let n = s.admin().get("/v1/nodes/healthy").expect(200).body;
            // Well within the silent BMC's first timeout.
            if n["lifecycle"]["state"] == "available" || start.elapsed() > Duration::from_secs(5) {
                break n;
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        assert_eq!(
            healthy["lifecycle"]["state"], "available",
            "[{b}] held up by the silent BMC: {healthy}"
        );
        let silent = s.admin().get("/v1/nodes/silent").expect(200).body;
        assert_eq!(silent["lifecycle"]["state"], "enrolling", "[{b}] {silent}");
    }
}

/// The same BMC enrolled twice under two names: the second node's
/// inspection finds MACs the first one has, and the boot service finds a
/// node by the MAC it boots from (each would boot the other's scripts).
/// Refused, naming the other node; the first stays available.
#[test]
fn a_node_whose_macs_are_another_nodes_fails_its_inspection() {
    let Some(bmc) = peers::StaticBmc::start("dgx-h100") else { return };
    for b in TestBackend::ALL {
        let Some(s) = server(b) else { continue };
        let b = b.as_str();
        enroll(&s, "dgx-1", &bmc.url, "bmc-pass-123");
        let n = settle(&s, "dgx-1", &["enrolling", "inspecting"]);
        assert_eq!(n["lifecycle"]["state"], "available", "[{b}] {n}");
        enroll(&s, "dgx-2", &bmc.url, "bmc-pass-123");
        let n = settle(&s, "dgx-2", &["enrolling", "inspecting"]);
        assert_eq!(n["lifecycle"]["state"], "failed", "[{b}] {n}");
        let reason = n["lifecycle"]["reason"].as_str().unwrap_or_default();
        assert!(reason.contains("which is node dgx-1's"), "[{b}] {reason}");
        assert!(n["macs"].as_array().is_none_or(|m| m.is_empty()), "[{b}] not recorded: {n}");
        let first = s.admin().get("/v1/nodes/dgx-1").expect(200).body;
        assert_eq!(first["lifecycle"]["state"], "available", "[{b}] {first}");
        let mac = first["macs"][0].as_str().unwrap();
        let (status, script) = common::nodes::get_text(&format!("{}/boot/ipxe?mac={mac}", s.url));
        assert_eq!(status, 200, "[{b}] {script}");
    }
}
