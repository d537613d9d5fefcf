//! `neocloud bench fabric` at a tiny scale: the JSON report carries the
//! whole-fabric and one-tenant-change figures (whole-intent and
//! incremental) for the fabric it generated, and impossible sizes are
//! refused.

use serde_json::Value;
use std::process::Command;

fn bench(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_neocloud"))
        .args(["bench", "fabric"])
        .args(args)
        .output()
        .expect("run neocloud bench fabric")
}

#[test]
fn bench_fabric_reports_whole_fabric_and_one_tenant_change() {
    let out = bench(&[
        "--leaves",
        "20",
        "--spines",
        "2",
        "--borders",
        "1",
        "--ports",
        "8",
        "--tenants",
        "10",
        "--nodes-per-tenant",
        "4",
        "--runs",
        "2",
        "--json",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_str(stdout.trim()).expect("one JSON document");
    assert_eq!(v["switches"], 23, "{v}");
    assert_eq!(v["tenants"], 10, "{v}");
    assert_eq!(v["attachments"], 40, "{v}");
    assert!(v["render_bytes"].as_u64().unwrap() > 0, "{v}");
    let total = v["plan_render_diff_ms"].as_f64().unwrap();
    let parts = ["plan_ms", "render_ms", "diff_ms"].map(|k| v[k].as_f64().unwrap());
    assert!((total - parts.iter().sum::<f64>()).abs() < 1e-6, "{v}");
    // The changed tenant's 4 leaves, its new one, and the spines' EVPN
    // view do not change: 5 leaves re-planned, something changed.
    let c = &v["change"];
    assert!(c["switches"].as_u64().unwrap() >= 5, "{c}");
    assert!(c["objects"].as_u64().unwrap() > 0, "{c}");
    // Incrementally: the new node changes its new leaf only (the segment,
    // the VRF and the port: the same objects as the whole-intent path);
    // the rule puts a policy on each of the tenant's 4 leaves.
    let i = &v["incremental"];
    assert!(i["build_ms"].as_f64().unwrap() > 0.0, "{i}");
    let node = &i["node"];
    assert_eq!(node["switches"], 1, "{node}");
    assert_eq!(node["objects"], c["objects"], "{node}");
    assert!(node["replanned"].as_u64().unwrap() >= 1, "{node}");
    let rule = &i["rule"];
    assert_eq!(rule["switches"], 4, "{rule}");
    assert_eq!(rule["objects"], 4, "{rule}");
    for x in [node, rule] {
        let total = x["total_ms"].as_f64().unwrap();
        let parts = x["apply_ms"].as_f64().unwrap() + x["diff_converge_ms"].as_f64().unwrap();
        assert!((total - parts).abs() < 1e-6, "{x}");
    }
}

#[test]
fn impossible_sizes_are_refused() {
    for (args, says) in [
        (&["--leaves", "4", "--nodes-per-tenant", "5"][..], "--nodes-per-tenant"),
        (
            &["--leaves", "4", "--ports", "1", "--tenants", "10", "--nodes-per-tenant", "2"][..],
            "more tenant nodes",
        ),
    ] {
        let out = bench(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says), "{args:?}: {err}");
    }
}
