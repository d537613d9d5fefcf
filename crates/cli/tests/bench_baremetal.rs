//! `neocloud bench baremetal` end to end at a tiny scale: 20 nodes enrolled
//! and inspected through SIMULATED BMCs, 4 instances provisioned (their
//! simulated agents check in), released and sanitized with complete
//! records; the JSON report carries every phase and its overhead figures.

use serde_json::Value;
use std::process::Command;
use std::time::{Duration, Instant};

#[test]
fn bench_baremetal_runs_every_phase_and_reports_its_overhead() {
    let tmp = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("bench-baremetal-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    let start = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_neocloud"))
        .args(["bench", "baremetal", "--nodes", "20", "--provisions", "4", "--batch", "3"])
        .args(["--bmc-latency", "0s", "--heartbeat-ms", "100", "--timeout", "60s", "--json"])
        // Its store goes to a temporary directory: this test's.
        .env("TMPDIR", &tmp)
        .output()
        .expect("run neocloud bench baremetal");
    let elapsed = start.elapsed();
    let _ = std::fs::remove_dir_all(&tmp);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(elapsed < Duration::from_secs(60), "took {elapsed:?}");
    let v: Value = serde_json::from_str(stdout.trim()).expect("one JSON document");
    assert_eq!(v["nodes"], 20);
    assert_eq!(v["complete_sanitization_records"], 4, "{v}");
    let phases = v["phases"].as_array().unwrap();
    let names: Vec<&str> = phases.iter().map(|p| p["phase"].as_str().unwrap()).collect();
    assert_eq!(names, ["enroll + inspect", "provision", "release + sanitize"]);
    for p in phases {
        let wall = p["wall_secs"].as_f64().unwrap();
        let ideal = p["ideal_secs"].as_f64().unwrap();
        assert!(wall > 0.0 && wall < 60.0, "{p}");
        assert!(ideal >= 0.0 && ideal <= wall + 0.05, "{p}");
        assert!((p["overhead_secs"].as_f64().unwrap() - (wall - ideal)).abs() < 1e-6, "{p}");
        // Real Redfish calls against every simulated BMC, one after another.
        assert!(p["bmc_waits_per_node"].as_f64().unwrap() >= 1.0, "{p}");
        assert!(p["bmc_requests"].as_u64().unwrap() > 0, "{p}");
    }
    // 2 batches for 4 instances; 4 agents booted twice (tenant, sanitizer).
    assert_eq!(phases[1]["api_calls"], 2, "{v}");
    assert_eq!(phases[1]["simulated_boots"], 4, "{v}");
    assert_eq!(phases[2]["simulated_boots"], 4, "{v}");
    assert_eq!(phases[0]["simulated_boots"], 0, "{v}");
}
