//! `neocloud bench placement` at a small scale, on both backends: every
//! request shape is decided, and the engine is rebuilt from a store holding
//! the benchmark's fleet (the rebuild must see what was written: the bench
//! fails where the rebuilt engine's capacity differs from the fleet's).

use neocloud_store::testing::{fresh_db, TestBackend};
use serde_json::Value;
use std::process::Command;

#[test]
fn bench_placement_decides_and_rebuilds_the_engine_from_the_store() {
    for backend in TestBackend::ALL {
        let Some(db) = fresh_db(backend) else { continue };
        let b = backend.as_str();
        let out = Command::new(env!("CARGO_BIN_EXE_neocloud"))
            .args(["bench", "placement", "--nodes", "1000", "--decisions", "50", "--gangs", "0"])
            .args(["--rebuilds", "2", "--store", &db.url, "--json"])
            .output()
            .expect("run neocloud bench placement");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "[{b}] {stdout}\n{}", String::from_utf8_lossy(&out.stderr));
        let v: Value = serde_json::from_str(stdout.trim()).expect("one JSON document");
        let rows = v["rows"].as_array().expect("rows");
        assert!(rows.iter().all(|r| r["failed"] == 0), "[{b}] {v}");
        let r = &v["rebuilds"];
        assert_eq!(r["nodes"], 1000, "[{b}] {v}");
        assert_eq!(r["rebuilds"], 2, "[{b}] {v}");
        // The bench fails unless each catch-up replayed the log.
        assert_eq!(r["replays"], 2, "[{b}] {v}");
        // Four prior allocations on every fragmented node.
        assert_eq!(r["allocations"], v["fragmented_nodes"].as_u64().unwrap() * 4, "[{b}] {v}");
        assert!(r["allocations"].as_u64().unwrap() > 0, "[{b}] {v}");
        assert_eq!(r["store"], if b == "sqlite" { "SQLite" } else { "PostgreSQL" }, "[{b}] {v}");
    }
}
