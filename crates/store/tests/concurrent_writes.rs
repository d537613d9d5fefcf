//! Many concurrent write transactions, on both backends. On SQLite they
//! share the writer connection and are committed in groups (each write in
//! a savepoint of the group's transaction): a write that returned `Ok` is
//! committed and visible to the next read, a write that failed left
//! nothing, whatever else was in its group, and a panicking write takes no
//! other write down with it.

mod common;

use common::*;
use neocloud_common::Error;
use neocloud_store::{audit, vals, BackendKind, Store, Writer};
use std::sync::Barrier;

fn put(w: &mut dyn Writer, key: &str) -> neocloud_common::Result<()> {
    w.execute("INSERT INTO meta (key, value) VALUES (?, ?)", vals![key, "v"])?;
    audit::append(w, "concurrent", &test_event(&format!("put_{key}")))?;
    Ok(())
}

fn present(store: &Store, key: &str) -> bool {
    count(store, "meta WHERE key = ?", vals![key]) == 1
}

#[test]
fn concurrent_writes_commit_and_failed_ones_leave_nothing() {
    each_backend(|store, b| {
        const THREADS: usize = 16;
        const WRITES: usize = 40;
        let start = Barrier::new(THREADS);
        std::thread::scope(|s| {
            for t in 0..THREADS {
                let start = &start;
                s.spawn(move || {
                    start.wait();
                    for i in 0..WRITES {
                        let key = format!("k-{t}-{i}");
                        let fails = i % 5 == 0;
                        let res = store.write(|w| {
                            put(w, &key)?;
                            if fails {
                                return Err(Error::conflict("the closure's own answer"));
                            }
                            Ok(())
                        });
                        match (fails, res) {
                            (false, Ok(())) => {
                                assert!(present(store, &key), "[{b}] {key}: committed, not read")
                            }
                            (true, Err(Error::Conflict { .. })) => {
                                assert!(!present(store, &key), "[{b}] {key}: failed, yet written")
                            }
                            (_, other) => panic!("[{b}] {key}: {other:?}"),
                        }
                    }
                });
            }
        });
        let ok = (THREADS * WRITES * 4 / 5) as i64;
        assert_eq!(count(store, "meta WHERE key LIKE 'k-%'", &[]), ok, "[{b}]");
        assert_eq!(count(store, "audit_events WHERE chain = 'concurrent'", &[]), ok, "[{b}]");
        let v = store.read(audit::verify).unwrap();
        assert!(v.problems.is_empty(), "[{b}] the audit chain: {:?}", v.problems);
    });
}

#[test]
fn a_panicking_write_takes_no_other_write_down() {
    each_backend(|store, b| {
        const THREADS: usize = 8;
        const WRITES: usize = 30;
        let start = Barrier::new(THREADS + 1);
        std::thread::scope(|s| {
            for t in 0..THREADS {
                let start = &start;
                s.spawn(move || {
                    start.wait();
                    for i in 0..WRITES {
                        let key = format!("p-{t}-{i}");
                        store
                            .write(|w| put(w, &key))
                            .unwrap_or_else(|e| panic!("[{b}] {key}: {e}"));
                        assert!(present(store, &key), "[{b}] {key}");
                    }
                });
            }
            start.wait();
            for i in 0..5 {
                let key = format!("panic-{i}");
                let res = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    store.write(|w| -> neocloud_common::Result<()> {
                        put(w, &key)?;
                        panic!("a bug in a write");
                    })
                }));
                assert!(res.is_err(), "[{b}] the panic reaches its caller");
                assert!(!present(store, &key), "[{b}] {key}");
            }
        });
        assert_eq!(count(store, "meta WHERE key LIKE 'p-%'", &[]), (THREADS * WRITES) as i64);
        assert_eq!(count(store, "meta WHERE key LIKE 'panic-%'", &[]), 0, "[{b}]");
        // Each panic rolled its SQLite group back whole (the writes that
        // shared it ran again), and the store counts it for whoever read
        // them inside it; PostgreSQL's writes share no transaction.
        let undone = match store.kind() {
            BackendKind::Sqlite => 5,
            BackendKind::Postgres => 0,
        };
        assert_eq!(store.undone_groups(), undone, "[{b}]");
        // The store writes on.
        store.write(|w| put(w, "after")).unwrap();
        assert!(present(store, "after"), "[{b}]");
        let v = store.read(audit::verify).unwrap();
        assert!(v.problems.is_empty(), "[{b}] the audit chain: {:?}", v.problems);
    });
}
