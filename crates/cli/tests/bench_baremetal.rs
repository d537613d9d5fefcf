//! `neocloud bench baremetal` end to end at a tiny scale: 20 nodes enrolled
//! and inspected through SIMULATED BMCs, 4 instances provisioned (their
//! simulated agents check in), released and sanitized with complete
//! records; the JSON report carries every phase and its overhead figures,
//! with the fleet in a child process (the default), in the benchmark's
//! process, or in one started apart with `neocloud bench fleet`.

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Runs the tiny benchmark with `extra` arguments; its JSON report.
fn bench(name: &str, extra: &[&str]) -> Value {
    bench_at(name, "0s", extra)
}

/// [`bench`] with each simulated BMC answer taking `latency`.
fn bench_at(name: &str, latency: &str, extra: &[&str]) -> Value {
    let tmp = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("bench-baremetal-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    let start = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_neocloud"))
        .args(["bench", "baremetal", "--nodes", "20", "--provisions", "4", "--batch", "3"])
        .args(["--bmc-latency", latency, "--heartbeat-ms", "100", "--timeout", "60s", "--json"])
        .args(extra)
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
    check_phases(&v);
    v
}

fn check_phases(v: &Value) {
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
    // Released as they were created: 3 per request.
    assert_eq!(phases[2]["api_calls"], 2, "{v}");
    assert_eq!(phases[1]["simulated_boots"], 4, "{v}");
    assert_eq!(phases[2]["simulated_boots"], 4, "{v}");
    assert_eq!(phases[0]["simulated_boots"], 0, "{v}");
}

#[test]
fn bench_baremetal_runs_every_phase_with_the_fleet_in_a_process_of_its_own() {
    let v = bench("child", &[]);
    // The BMC round trips a node costs in each phase (docs/benchmarks.md,
    // "Definitions"): every one is a second of a real BMC, so a change
    // here is a change reviewers must see.
    let waits: Vec<f64> = v["phases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["bmc_waits_per_node"].as_f64().unwrap())
        .collect();
    assert_eq!(waits, [40.0, 4.0, 52.0], "{v}");
    assert_eq!(v["fleet"], "process");
    assert_eq!(v["fleet_apart"], true, "{v}");
    for p in v["phases"].as_array().unwrap() {
        // Both processes' CPU, apart.
        assert!(p["cpu_secs"].as_f64().is_some_and(|c| c > 0.0), "{p}");
        assert!(p["fleet_cpu_secs"].as_f64().is_some_and(|c| c >= 0.0), "{p}");
    }
}

/// Every node booted by UEFI HTTP: the SIMULATED firmware network-boots
/// only when its BMC was given an `HttpBootUri` with the one-time
/// `UefiHttp` override, so every instance ready and every record complete
/// means every boot was set that way.
/// Two of the SIMULATED nodes hang at every boot: their instances are
/// placed on spare nodes and every instance is ready and sanitized; the
/// hung nodes stay failed, out of the pool.
#[test]
fn bench_baremetal_places_the_instances_of_nodes_that_hang_at_boot_again() {
    let v =
        bench("dead-nodes", &["--dead-nodes", "2", "--boot-timeout", "1s", "--boot-attempts", "1"]);
    assert_eq!(v["dead_nodes"], 2, "{v}");
    assert_eq!(v["phases"][1]["placed_again"], 2, "{v}");
    assert_eq!(v["phases"][2]["placed_again"], 0, "{v}");
    // At least the boot timeout before the two instances could move.
    assert!(v["phases"][1]["wall_secs"].as_f64().unwrap() >= 1.0, "{v}");
}

#[test]
fn bench_baremetal_boots_every_node_by_uefi_http() {
    let v = bench("uefi-http", &["--boot-method", "uefi-http", "--fleet", "in-process"]);
    assert_eq!(v["boot_method"], "uefi_http", "{v}");
    // The same BMC calls as a PXE boot: read the system, set the override.
    assert_eq!(v["phases"][1]["bmc_waits_per_node"], 4.0, "{v}");
}

#[test]
fn bench_baremetal_runs_every_phase_with_the_fleet_in_its_process() {
    let v = bench("in-process", &["--fleet", "in-process"]);
    assert_eq!(v["fleet_apart"], false, "{v}");
    for p in v["phases"].as_array().unwrap() {
        assert!(p["fleet_cpu_secs"].is_null(), "{p}");
    }
}

/// `neocloud bench fleet` started on its own, the benchmark pointed at it:
/// the fleet's boots reach the server at `--listen`, and the fleet's own
/// counters (read over HTTP) saw every BMC call the report counts.
#[test]
fn bench_baremetal_drives_a_fleet_started_apart() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let listen = format!("127.0.0.1:{port}");
    let mut fleet = Command::new(env!("CARGO_BIN_EXE_neocloud"))
        .args(["bench", "fleet", "--bmc-latency", "0s", "--boot-url"])
        .arg(format!("http://{listen}"))
        // It ends with this test, however the test ends.
        .arg("--exit-with-stdin")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("run neocloud bench fleet");
    let mut line = String::new();
    BufReader::new(fleet.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let base = line.trim().strip_prefix("listening ").unwrap_or_else(|| panic!("{line:?}"));
    let base = base.to_string();
    let v = bench("apart", &["--fleet", &base, "--listen", &listen]);
    let stats: Value =
        ureq::get(&format!("{base}/simbmc/stats")).call().unwrap().into_json().unwrap();
    let _ = fleet.kill();
    let _ = fleet.wait();
    assert_eq!(v["fleet_apart"], true, "{v}");
    let counted: u64 =
        v["phases"].as_array().unwrap().iter().map(|p| p["bmc_requests"].as_u64().unwrap()).sum();
    assert!(stats["requests"].as_u64().unwrap() >= counted, "{stats} {v}");
    assert_eq!(stats["boots"], 8, "{stats}");
    assert!(stats["cpu_secs"].as_f64().is_some_and(|c| c > 0.0), "{stats}");
}

#[test]
fn bench_baremetal_with_jitter_takes_the_slowest_nodes_waits_as_the_ideal() {
    let v = bench_at("jitter", "50ms", &["--jitter", "0.5"]);
    assert_eq!(v["jitter"], 0.5, "{v}");
    let boot = v["simulated_boot_delay_secs"].as_f64().unwrap();
    for (k, p) in v["phases"].as_array().unwrap().iter().enumerate() {
        let ideal = p["ideal_secs"].as_f64().unwrap();
        let waits = p["bmc_waits_per_node"].as_f64().unwrap() * 0.05;
        let boots = if k == 0 { 0.0 } else { boot };
        // Each wait is 50 % to 150 % of its nominal time.
        assert!(ideal >= 0.5 * waits - 1e-3, "{p}");
        assert!(ideal <= 1.5 * (waits + boots) + 0.05, "{p}");
        // Not the lockstep figure: measured per node by the fleet.
        assert!((ideal - (waits + boots)).abs() > 1e-4, "{p}");
    }
}

/// Static provisioning addresses: every node boots an ISO of its own,
/// built by the control plane (xorriso, mtools, Debian's iPXE; skipped
/// loudly without them, failed under CI). The same BMC calls as the
/// server's ISO (a reset reads the virtual CD again only for a node
/// updated since its ISO was inserted), and the SIMULATED BMCs read each
/// ISO from the boot service before their node boots.
#[test]
fn bench_baremetal_boots_every_node_from_an_iso_of_its_own() {
    let efi = "/usr/lib/ipxe/ipxe.efi";
    let tools = ["xorriso", "mformat"].iter().all(|t| {
        Command::new(t)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok()
    });
    if !(tools && std::path::Path::new(efi).exists()) {
        let msg = "per-node ISOs need Debian's ipxe, xorriso and mtools";
        assert!(std::env::var_os("CI").is_none(), "{msg}; CI must have them");
        eprintln!("SKIPPED: {msg}");
        return;
    }
    let shared = bench("vmedia", &["--boot-method", "virtual-media"]);
    let own = bench("static", &["--boot-method", "virtual-media", "--static-addresses", efi]);
    assert_eq!(own["static_addresses"], true, "{own}");
    assert_eq!(shared["static_addresses"], false, "{shared}");
    let waits = |v: &Value, i: usize| v["phases"][i]["bmc_waits_per_node"].as_f64().unwrap();
    assert_eq!(waits(&own, 1), waits(&shared, 1), "{own}\n{shared}");
    assert_eq!(waits(&own, 2), waits(&shared, 2), "{own}\n{shared}");
    // Every boot's BMC read its node's ISO from the boot service (HEAD and
    // ranges, each checked by the fleet; a failed read fails the phase);
    // the server's one ISO is the provider's to serve.
    let media = |v: &Value, i: usize| v["phases"][i]["virtual_media_bytes"].as_u64().unwrap();
    for phase in [1, 2] {
        let per_boot =
            media(&own, phase) / own["phases"][phase]["simulated_boots"].as_u64().unwrap();
        assert!(per_boot > 100_000, "phase {phase}: {per_boot} bytes per boot: {own}");
        assert_eq!(media(&shared, phase), 0, "{shared}");
    }
}
