//! The `neocloud-agent` command against a control plane behind HTTPS whose
//! certificate a provider's own CA issued (the test CA of
//! `neocloud_common::http_double`): trusted with `--ca-file`, refused at
//! once without it (exit 1, saying why: a certificate no retry will
//! change), never retried forever.

use std::process::Command;
use std::sync::{Arc, Mutex};

use neocloud_common::http_double::{HttpDouble, Response, TEST_CA_PEM};
use serde_json::json;

/// A control plane that registers the agent and revokes it at its first
/// heartbeat; the paths it was asked for.
fn control_plane() -> (HttpDouble, Arc<Mutex<Vec<String>>>) {
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let s = seen.clone();
    let cp = HttpDouble::start_https(move |r| {
        s.lock().unwrap().push(r.path().to_string());
        match r.path() {
            "/agent/v1/register" => Response::json(
                201,
                &json!({"agent_id": "agt_1", "node_id": "node_1", "credential": "nca_1",
                        "heartbeat_interval_ms": 100}),
            ),
            "/agent/v1/heartbeat" => Response::json(
                401,
                &json!({"error": {"code": "unauthenticated", "message": "revoked"}}),
            ),
            _ => Response::empty(404),
        }
    });
    (cp, seen)
}

fn agent(api: &str, ca: Option<&std::path::Path>) -> std::process::Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_neocloud-agent"));
    c.args(["--api", api, "--token", "nct_1", "--simulate-gpus", "0"])
        .env_remove("NEOCLOUD_CA_FILE")
        .env_remove("NEOCLOUD_API")
        .env_remove("NEOCLOUD_AGENT_TOKEN");
    if let Some(f) = ca {
        c.arg("--ca-file").arg(f);
    }
    // It must end on its own (a refused certificate is not retried).
    let mut child = c
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run neocloud-agent");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!("still running after 30 s: {}", String::from_utf8_lossy(&out.stderr));
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

#[test]
fn a_providers_ca_is_trusted_with_ca_file_and_only_then() {
    let (cp, seen) = control_plane();
    let dir = std::env::temp_dir().join(format!("neocloud-agent-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ca = dir.join("ca.pem");
    std::fs::write(&ca, TEST_CA_PEM).unwrap();

    let out = agent(&cp.url, Some(&ca));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("credential revoked"), "{err}");
    assert_eq!(*seen.lock().unwrap(), ["/agent/v1/register", "/agent/v1/heartbeat"]);

    // Without the CA: refused before anything reached the control plane.
    seen.lock().unwrap().clear();
    let out = agent(&cp.url, None);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("the control plane's certificate"), "{err}");
    assert!(!err.contains("retrying"), "a certificate is not retried: {err}");
    assert!(seen.lock().unwrap().is_empty());

    // A CA file without a certificate: a usage error, said so.
    std::fs::write(&ca, "not a certificate").unwrap();
    let out = agent(&cp.url, Some(&ca));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("the CA file"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}
