//! Write transactions that fail for the server's concurrency, not for a
//! fault: a deadlock victim or a serialization failure on PostgreSQL, a busy
//! database on SQLite. The store rolls the whole transaction back and runs
//! it again a bounded number of times, then answers `unavailable`, never
//! internal; a re-run never duplicates what the rolled-back attempt wrote.
//!
//! The PostgreSQL tests need `NEOCLOUD_TEST_POSTGRES_URL` (skipped loudly
//! without it, like the rest of the suite).

mod common;

use common::*;
use neocloud_common::Error;
use neocloud_store::testing::{fresh_store, TestBackend, TestDb};
use neocloud_store::{audit, vals, Store, StoreStats, Writer};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

/// The attempts the store makes in all before it answers `unavailable`.
const ATTEMPTS: u32 = 3;

fn event(action: &str) -> audit::NewEvent {
    test_event(action)
}

fn audit_rows(store: &Store, chain: &str) -> i64 {
    count(store, "audit_events WHERE chain = ?", vals![chain])
}

fn assert_chains_intact(store: &Store) {
    let v = store.read(audit::verify).unwrap();
    assert!(v.problems.is_empty(), "audit trail: {:?}", v.problems);
}

fn unavailable_detail(res: neocloud_common::Result<()>) -> String {
    match res {
        Err(Error::Unavailable { internal }) => internal,
        other => panic!("expected unavailable, got {other:?}"),
    }
}

fn postgres() -> Option<(Store, TestDb)> {
    fresh_store(TestBackend::Postgres)
}

/// A direct connection to the store's database, beside the store's pool.
fn side_connection(db: &TestDb) -> postgres::Client {
    postgres::Client::connect(&db.url, postgres::NoTls).expect("side connection")
}

const RAISE_40001: &str =
    "DO $$ BEGIN RAISE EXCEPTION 'forced serialization failure' USING ERRCODE = '40001'; END $$";

#[test]
fn a_closure_error_is_final_and_not_run_again() {
    each_backend(|store, b| {
        let runs = AtomicU32::new(0);
        let res: neocloud_common::Result<()> = store.write(|w| {
            runs.fetch_add(1, Ordering::SeqCst);
            audit::append(w, "own-error", &event("own_error"))?;
            Err(Error::conflict("the closure's own answer"))
        });
        assert!(matches!(res, Err(Error::Conflict { .. })), "{b}: {res:?}");
        assert_eq!(runs.load(Ordering::SeqCst), 1, "{b}");
        assert_eq!(store.stats(), StoreStats::default(), "{b}");
        assert_eq!(audit_rows(store, "own-error"), 0, "{b}");
    });
}

/// Two write transactions lock two rows in opposite orders: PostgreSQL
/// aborts one (40P01), which the store runs again once the other has
/// committed. Both succeed; the victim's first attempt left nothing behind.
#[test]
fn postgres_deadlock_victim_runs_again_and_both_commit() {
    let Some((store, _db)) = postgres() else { return };
    let a = tenant(&store, "deadlock-a");
    let b = tenant(&store, "deadlock-b");
    let barrier = Arc::new(Barrier::new(2));
    let before = store.stats();

    let run = |me: &'static str, first: String, second: String| {
        let store = store.clone();
        let barrier = barrier.clone();
        std::thread::spawn(move || {
            let runs = AtomicU32::new(0);
            let res = store.write(|w: &mut dyn Writer| {
                let run = runs.fetch_add(1, Ordering::SeqCst) + 1;
                audit::append(w, me, &event("deadlock"))?;
                w.execute("UPDATE tenants SET description = ? WHERE id = ?", vals![me, &first])?;
                // Only the first attempts meet: each holds its first row
                // and then asks for the other's.
                if run == 1 {
                    barrier.wait();
                }
                w.execute("UPDATE tenants SET description = ? WHERE id = ?", vals![me, &second])?;
                Ok(run)
            });
            (res, runs.load(Ordering::SeqCst))
        })
    };
    let t1 = run("thread-1", a.id.clone(), b.id.clone());
    let t2 = run("thread-2", b.id.clone(), a.id.clone());
    let (r1, runs1) = t1.join().unwrap();
    let (r2, runs2) = t2.join().unwrap();
    assert_eq!(r1.as_ref().ok(), Some(&runs1), "thread-1: {r1:?}");
    assert_eq!(r2.as_ref().ok(), Some(&runs2), "thread-2: {r2:?}");
    let mut runs = [runs1, runs2];
    runs.sort();
    assert_eq!(runs, [1, 2], "exactly one transaction (the deadlock victim) ran twice");
    let victim = if runs1 == 2 { "thread-1" } else { "thread-2" };

    let after = store.stats();
    assert_eq!(after.write_reruns - before.write_reruns, 1, "{after:?}");
    assert_eq!(after.write_gave_up, before.write_gave_up, "{after:?}");
    // The victim committed last, both rows.
    for t in [&a, &b] {
        let d = store
            .read(|r| r.query("SELECT description FROM tenants WHERE id = ?", vals![&t.id]))
            .unwrap()[0]
            .str(0)
            .unwrap();
        assert_eq!(d, victim, "tenant {}", t.name);
    }
    // One audit event per transaction: the victim's aborted attempt left none.
    assert_eq!(audit_rows(&store, "thread-1"), 1);
    assert_eq!(audit_rows(&store, "thread-2"), 1);
    assert_chains_intact(&store);
}

/// A real serialization failure: two SERIALIZABLE transactions update the
/// row both read; the second to write fails with 40001 once the first
/// commits, and succeeds when run again.
#[test]
fn postgres_serialization_failure_runs_again() {
    let Some((store, _db)) = postgres() else { return };
    let t = tenant(&store, "serial");
    let barrier = Arc::new(Barrier::new(2));
    let before = store.stats();
    let run = |me: &'static str| {
        let store = store.clone();
        let barrier = barrier.clone();
        let id = t.id.clone();
        std::thread::spawn(move || {
            let runs = AtomicU32::new(0);
            let res = store.write(|w: &mut dyn Writer| {
                let run = runs.fetch_add(1, Ordering::SeqCst) + 1;
                w.execute_batch("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE")?;
                let g = w.query("SELECT generation FROM tenants WHERE id = ?", vals![&id])?[0]
                    .i64(0)?;
                if run == 1 {
                    barrier.wait();
                }
                w.execute(
                    "UPDATE tenants SET generation = ?, description = ? WHERE id = ?",
                    vals![g + 1, me, &id],
                )?;
                audit::append(w, me, &event("serial"))?;
                Ok(())
            });
            (res, runs.load(Ordering::SeqCst))
        })
    };
    let t1 = run("serial-1");
    let t2 = run("serial-2");
    let (r1, runs1) = t1.join().unwrap();
    let (r2, runs2) = t2.join().unwrap();
    assert!(r1.is_ok() && r2.is_ok(), "{r1:?} {r2:?}");
    let mut runs = [runs1, runs2];
    runs.sort();
    assert_eq!(runs, [1, 2]);
    assert_eq!(store.stats().write_reruns - before.write_reruns, 1);
    // Both increments landed: the re-run read the first one's commit.
    let g = store
        .read(|r| r.query("SELECT generation FROM tenants WHERE id = ?", vals![&t.id]))
        .unwrap()[0]
        .i64(0)
        .unwrap();
    assert_eq!(g, t.generation + 2);
    assert_eq!(audit_rows(&store, "serial-1"), 1);
    assert_eq!(audit_rows(&store, "serial-2"), 1);
    assert_chains_intact(&store);
}

/// A transaction that keeps failing with 40001 ends as `unavailable`
/// naming the SQLSTATE, after the bounded number of attempts, with
/// nothing committed; so too when the closure swallows the error (the
/// transaction is aborted whatever the closure made of it).
#[test]
fn postgres_serialization_failure_every_time_is_unavailable() {
    let Some((store, _db)) = postgres() else { return };
    for swallow in [false, true] {
        let chain = format!("always-40001-{swallow}");
        let before = store.stats();
        let runs = AtomicU32::new(0);
        let started = Instant::now();
        let res = store.write(|w| {
            runs.fetch_add(1, Ordering::SeqCst);
            audit::append(w, &chain, &event("always_40001"))?;
            let failed = w.execute_batch(RAISE_40001);
            if !swallow {
                failed?;
            }
            Ok(())
        });
        let detail = unavailable_detail(res);
        assert!(detail.contains("40001"), "swallow {swallow}: {detail}");
        assert!(detail.contains(&format!("after {ATTEMPTS} attempts")), "{detail}");
        assert_eq!(runs.load(Ordering::SeqCst), ATTEMPTS, "swallow {swallow}");
        let after = store.stats();
        assert_eq!(after.write_reruns - before.write_reruns, u64::from(ATTEMPTS - 1));
        assert_eq!(after.write_gave_up - before.write_gave_up, 1);
        assert_eq!(audit_rows(&store, &chain), 0, "swallow {swallow}: nothing committed");
        // Short, randomized pauses: well under a second in all.
        assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
    }
    // The store still works.
    store.write(|w| audit::append(w, "after", &event("after")).map(|_| ())).unwrap();
    assert_chains_intact(&store);
}

/// A serialization failure on the first attempt only: the re-run commits
/// exactly once.
#[test]
fn postgres_transient_failure_once_commits_once() {
    let Some((store, _db)) = postgres() else { return };
    let runs = AtomicU32::new(0);
    let res = store.write(|w| {
        let run = runs.fetch_add(1, Ordering::SeqCst) + 1;
        let ev = audit::append(w, "once", &event("once"))?;
        if run == 1 {
            w.execute_batch(RAISE_40001)?;
        }
        Ok(ev.seq)
    });
    assert_eq!(res.unwrap(), 1, "the re-run's event is the chain's first");
    assert_eq!(runs.load(Ordering::SeqCst), 2);
    assert_eq!(store.stats(), StoreStats { write_reruns: 1, write_gave_up: 0 });
    assert_eq!(audit_rows(&store, "once"), 1);
    assert_chains_intact(&store);
}

/// A lock wait past `lock_timeout` (55P03) is unavailable at once: the
/// wait already happened, a re-run would only wait again.
#[test]
fn postgres_lock_timeout_is_unavailable_without_rerun() {
    let Some((store, db)) = postgres() else { return };
    let t = tenant(&store, "locked");
    let mut side = side_connection(&db);
    let mut holder = side.transaction().unwrap();
    holder.execute("SELECT id FROM tenants WHERE id = $1 FOR UPDATE", &[&t.id]).unwrap();
    let runs = AtomicU32::new(0);
    let res = store.write(|w| {
        runs.fetch_add(1, Ordering::SeqCst);
        w.execute_batch("SET LOCAL lock_timeout = '100ms'")?;
        w.execute("UPDATE tenants SET description = 'x' WHERE id = ?", vals![&t.id])?;
        Ok(())
    });
    let detail = unavailable_detail(res);
    assert!(detail.contains("55P03"), "{detail}");
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    assert_eq!(store.stats(), StoreStats::default());
    holder.rollback().unwrap();
}

/// The connection lost in the middle of a transaction: unavailable, not
/// internal, and not run again; the store then works on a new connection.
#[test]
fn postgres_connection_lost_mid_transaction_is_unavailable() {
    let Some((store, db)) = postgres() else { return };
    let mut side = side_connection(&db);
    let runs = AtomicU32::new(0);
    let res = store.write(|w| {
        runs.fetch_add(1, Ordering::SeqCst);
        audit::append(w, "lost", &event("lost"))?;
        let pid = w.query("SELECT pg_backend_pid()", &[])?[0].i64(0)?;
        let pid = i32::try_from(pid).unwrap();
        side.execute("SELECT pg_terminate_backend($1)", &[&pid]).unwrap();
        wait_gone(&mut side, pid);
        w.query("SELECT 1", &[])?;
        Ok(())
    });
    let detail = unavailable_detail(res);
    assert_eq!(runs.load(Ordering::SeqCst), 1, "{detail}");
    assert_eq!(store.stats(), StoreStats::default());
    assert_eq!(audit_rows(&store, "lost"), 0);
    store.write(|w| audit::append(w, "lost", &event("again")).map(|_| ())).unwrap();
    assert_eq!(audit_rows(&store, "lost"), 1);
}

/// Pooled connections the server closed while they were idle (a restart,
/// an idle timeout) are dropped when a transaction fails to begin on them:
/// the next transaction runs on a new connection, reads and writes alike.
#[test]
fn postgres_idle_connections_closed_by_the_server_are_replaced() {
    let Some((store, db)) = postgres() else { return };
    // Several connections in the pool: concurrent reads.
    let barrier = Arc::new(Barrier::new(4));
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let (store, barrier) = (store.clone(), barrier.clone());
            std::thread::spawn(move || {
                store
                    .read(|r| {
                        barrier.wait();
                        r.query("SELECT 1", &[])
                    })
                    .unwrap()
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let mut side = side_connection(&db);
    let pids: Vec<i32> = side
        .query(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(pids.len() >= 4, "pooled connections: {pids:?}");
    for pid in &pids {
        side.execute("SELECT pg_terminate_backend($1)", &[pid]).unwrap();
    }
    for pid in pids {
        wait_gone(&mut side, pid);
    }
    store.ping().unwrap();
    store.write(|w| audit::append(w, "revived", &event("revived")).map(|_| ())).unwrap();
    assert_eq!(audit_rows(&store, "revived"), 1);
    assert_eq!(store.stats(), StoreStats::default());
}

fn wait_gone(side: &mut postgres::Client, pid: i32) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while side
        .query_opt("SELECT 1 FROM pg_stat_activity WHERE pid = $1", &[&pid])
        .unwrap()
        .is_some()
    {
        assert!(Instant::now() < deadline, "backend {pid} still there");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn sqlite_path(db: &TestDb) -> std::path::PathBuf {
    db.url.strip_prefix("sqlite://").expect("a sqlite URL").into()
}

/// Another connection (another process, say) holds the SQLite database's
/// write lock: the busy handler waits for it, and a lock released within
/// the busy timeout costs only the wait.
#[test]
fn sqlite_busy_within_the_busy_timeout_waits() {
    let (store, db) = fresh_store(TestBackend::Sqlite).unwrap();
    let other = rusqlite::Connection::open(sqlite_path(&db)).unwrap();
    other.execute_batch("BEGIN IMMEDIATE").unwrap();
    let holder = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        other.execute_batch("COMMIT").unwrap();
    });
    let runs = AtomicU32::new(0);
    let started = Instant::now();
    store
        .write(|w| {
            runs.fetch_add(1, Ordering::SeqCst);
            audit::append(w, "busy", &event("busy")).map(|_| ())
        })
        .unwrap();
    assert!(started.elapsed() >= Duration::from_millis(250), "{:?}", started.elapsed());
    holder.join().unwrap();
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    assert_eq!(audit_rows(&store, "busy"), 1);
    assert_eq!(store.stats(), StoreStats::default());
}

/// A database still busy after the busy timeout is unavailable, not
/// internal; the closure never ran and nothing was written.
#[test]
fn sqlite_busy_past_the_busy_timeout_is_unavailable() {
    let (store, db) = fresh_store(TestBackend::Sqlite).unwrap();
    let other = rusqlite::Connection::open(sqlite_path(&db)).unwrap();
    other.execute_batch("BEGIN IMMEDIATE").unwrap();
    let runs = AtomicU32::new(0);
    let started = Instant::now();
    let res = store.write(|w| {
        runs.fetch_add(1, Ordering::SeqCst);
        audit::append(w, "busy", &event("busy")).map(|_| ())
    });
    let waited = started.elapsed();
    let detail = unavailable_detail(res);
    assert!(detail.contains("SQLITE_BUSY"), "{detail}");
    assert!(waited >= Duration::from_secs(4), "gave up after {waited:?}");
    assert!(waited < Duration::from_secs(12), "gave up after {waited:?}");
    assert_eq!(runs.load(Ordering::SeqCst), 0);
    assert_eq!(store.stats(), StoreStats { write_reruns: 0, write_gave_up: 1 });
    other.execute_batch("ROLLBACK").unwrap();
    assert_eq!(audit_rows(&store, "busy"), 0);
    store.write(|w| audit::append(w, "busy", &event("busy")).map(|_| ())).unwrap();
    assert_eq!(audit_rows(&store, "busy"), 1);
}
