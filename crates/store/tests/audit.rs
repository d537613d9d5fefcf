//! The audit trail: per-tenant hash chains plus the provider chain,
//! append-only triggers, and tamper detection by `audit::verify`. Every test
//! runs on SQLite and on PostgreSQL.

mod common;

use common::*;
use neocloud_common::Error;
use neocloud_store::audit::{self, NewEvent, GENESIS, PROVIDER_CHAIN};
use neocloud_store::{vals, BackendKind, Store};
use neocloud_types::AuditEvent;
use std::sync::atomic::{AtomicBool, Ordering};

/// 2030-01-01T00:00:00Z, in microseconds.
const T0: i64 = 1_893_456_000_000_000;

fn event(i: i64, tenant_id: Option<&str>) -> NewEvent {
    NewEvent {
        time: T0 + i * 1_000,
        actor: format!("user-{}", i % 3),
        actor_name: format!("name-{}", i % 3),
        token_id: (i % 2 == 0).then(|| format!("token-{i}")),
        role: tenant_id.map(|_| "tenant-admin".to_string()),
        tenant_id: tenant_id.map(str::to_string),
        action: "project.create".into(),
        target: format!("/v1/tenants/x/projects/p{i}"),
        outcome: if i % 4 == 3 { "denied".into() } else { "success".into() },
        status: if i % 4 == 3 { 403 } else { 201 },
        request_id: format!("req-{i}"),
    }
}

fn append(store: &Store, chain: &str, ev: &NewEvent) -> AuditEvent {
    store
        .write(|w| audit::append(w, chain, ev))
        .unwrap_or_else(|e| panic!("append to {chain}: {e}"))
}

fn list(store: &Store, chain: &str) -> Vec<AuditEvent> {
    store.read(|r| audit::list_chain(r, chain, 0, 10_000)).unwrap()
}

fn verify(store: &Store) -> audit::Verification {
    store.read(audit::verify).unwrap()
}

/// A tenant chain of `n` events and a provider chain of `m`.
fn two_chains(store: &Store, n: i64, m: i64) -> (String, Vec<AuditEvent>, Vec<AuditEvent>) {
    let t = tenant(store, "acme");
    let tenant_events = (0..n).map(|i| append(store, &t.id, &event(i, Some(&t.id)))).collect();
    let provider_events =
        (0..m).map(|i| append(store, PROVIDER_CHAIN, &event(100 + i, None))).collect();
    (t.id, tenant_events, provider_events)
}

/// Asserts that verify found problems, all about `chain`, and that one of
/// them contains each of `needles`.
#[track_caller]
fn assert_problems(b: &str, v: &audit::Verification, chain: &str, needles: &[&str]) {
    assert!(!v.problems.is_empty(), "{b}: tampering with chain {chain} went undetected");
    for p in &v.problems {
        assert!(
            p.contains(&format!("chain {chain}")),
            "{b}: problem {p:?} does not name chain {chain}"
        );
    }
    for n in needles {
        assert!(
            v.problems.iter().any(|p| p.contains(n)),
            "{b}: no problem mentions {n:?}: {:?}",
            v.problems
        );
    }
}

#[test]
fn chains_append_list_and_verify() {
    each_backend(|store, b| {
        let t = tenant(store, "acme");
        let mut tenant_events = vec![];
        let mut provider_events = vec![];
        let mut in_order = vec![];
        for i in 0..10 {
            let ev = if i % 3 == 2 {
                let e = append(store, PROVIDER_CHAIN, &event(i, None));
                provider_events.push(e.clone());
                e
            } else {
                let e = append(store, &t.id, &event(i, Some(&t.id)));
                tenant_events.push(e.clone());
                e
            };
            in_order.push(ev);
        }
        // Each chain numbers from 1 without gaps and links to its predecessor.
        for (chain, events) in [(t.id.as_str(), &tenant_events), (PROVIDER_CHAIN, &provider_events)]
        {
            let mut prev = GENESIS.to_string();
            for (k, e) in events.iter().enumerate() {
                assert_eq!(e.chain, chain, "{b}");
                assert_eq!(e.seq, k as i64 + 1, "{b}: seq in chain {chain}");
                assert_eq!(e.prev_hash, prev, "{b}: link of {chain} seq {}", e.seq);
                assert_eq!(e.hash.len(), 64, "{b}");
                assert_ne!(e.hash, e.prev_hash, "{b}");
                prev = e.hash.clone();
            }
        }
        assert_eq!((tenant_events.len(), provider_events.len()), (7, 3), "{b}");

        // The stored events are exactly what append returned, in seq order.
        assert_eq!(list(store, &t.id), tenant_events, "{b}");
        assert_eq!(list(store, PROVIDER_CHAIN), provider_events, "{b}");
        let page = store.read(|r| audit::list_chain(r, &t.id, 2, 3)).unwrap();
        assert_eq!(page.iter().map(|e| e.seq).collect::<Vec<_>>(), [3, 4, 5], "{b}");
        assert_eq!(page, tenant_events[2..5], "{b}");
        assert!(store.read(|r| audit::list_chain(r, &t.id, 7, 10)).unwrap().is_empty(), "{b}");
        assert!(list(store, "no-such-chain").is_empty(), "{b}");
        let e = &tenant_events[0];
        assert_eq!(e.time, "2030-01-01T00:00:00.000000Z", "{b}");
        assert_eq!((e.token_id.as_deref(), e.status), (Some("token-0"), 201), "{b}");
        assert_eq!(tenant_events[1].token_id, None, "{b}");
        assert_eq!(provider_events[0].tenant_id, None, "{b}");

        // Every chain, by time then id, with a cursor.
        let all = store.read(|r| audit::list_all(r, None, 100)).unwrap();
        assert_eq!(all, in_order, "{b}");
        let cursor = (T0 + 3 * 1_000, in_order[3].id.as_str());
        let next = store.read(|r| audit::list_all(r, Some(cursor), 4)).unwrap();
        assert_eq!(next, in_order[4..8], "{b}");

        let v = verify(store);
        assert_eq!((v.chains, v.events), (2, 10), "{b}");
        assert!(v.problems.is_empty(), "{b}: {:?}", v.problems);
    });
}

#[test]
fn append_only_triggers_refuse_update_and_delete() {
    each_backend(|store, b| {
        let (chain, events, _) = two_chains(store, 3, 1);
        // The triggers exist under the names migrations.rs gives them.
        let sql = match store.kind() {
            BackendKind::Sqlite => {
                "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'audit_events' ORDER BY name"
            }
            BackendKind::Postgres => {
                "SELECT tgname::text FROM pg_trigger WHERE tgrelid = 'audit_events'::regclass AND NOT tgisinternal ORDER BY 1"
            }
        };
        let names: Vec<String> =
            store.read(|r| r.query(sql, &[])).unwrap().iter().map(|r| r.str(0).unwrap()).collect();
        let want: &[&str] = match store.kind() {
            BackendKind::Sqlite => &["audit_events_no_delete", "audit_events_no_update"],
            BackendKind::Postgres => &["audit_events_append_only"],
        };
        assert_eq!(names, want, "{b}");

        let attempts = [
            "UPDATE audit_events SET actor_name = 'mallory' WHERE chain = ? AND seq = 2",
            "UPDATE audit_events SET outcome = 'success' WHERE chain = ?",
            "DELETE FROM audit_events WHERE chain = ? AND seq = 3",
            "DELETE FROM audit_events WHERE chain = ?",
        ];
        for sql in attempts {
            let e = store.write(|w| Ok(w.execute(sql, vals![&chain])?)).unwrap_err();
            assert!(
                matches!(&e, Error::Internal { internal } if internal.contains("append-only")),
                "{b}: {sql}: {e:?}"
            );
        }
        // In a batch too.
        let e = store.write(|w| Ok(w.execute_batch("DELETE FROM audit_events")?)).unwrap_err();
        assert!(
            matches!(&e, Error::Internal { internal } if internal.contains("append-only")),
            "{b}: {e:?}"
        );

        assert_eq!(list(store, &chain), events, "{b}: the trail is unchanged");
        let v = verify(store);
        assert!(v.problems.is_empty(), "{b}: {:?}", v.problems);
        // Appending still works after the refused writes.
        let e = append(store, &chain, &event(50, Some(&chain)));
        assert_eq!(e.seq, 4, "{b}");
        assert!(verify(store).problems.is_empty(), "{b}");
    });
}

#[test]
fn verify_detects_edited_rows() {
    each_backend(|store, b| {
        let (chain, _, _) = two_chains(store, 4, 3);
        drop_audit_triggers(store);
        assert!(verify(store).problems.is_empty(), "{b}");

        store
            .write(|w| {
                let n = w.execute(
                    "UPDATE audit_events SET actor_name = 'mallory' WHERE chain = ? AND seq = 2",
                    vals![&chain],
                )?;
                assert_eq!(n, 1, "{b}");
                Ok(())
            })
            .unwrap();
        let v = verify(store);
        assert_problems(
            b,
            &v,
            &chain,
            &[&format!("chain {chain} seq 2: content does not match its hash")],
        );
        assert_eq!(v.problems.len(), 1, "{b}: only the edited event: {:?}", v.problems);
        assert_eq!((v.chains, v.events), (2, 7), "{b}");

        // Editing the provider chain is reported for it as well.
        store
            .write(|w| {
                Ok(w.execute(
                    "UPDATE audit_events SET status = 200, outcome = 'success' WHERE chain = ? AND seq = 3",
                    vals![PROVIDER_CHAIN],
                )?)
            })
            .unwrap();
        let v = verify(store);
        assert_eq!(v.problems.len(), 2, "{b}: {:?}", v.problems);
        assert!(
            v.problems.iter().any(|p| p.contains("chain provider seq 3")),
            "{b}: {:?}",
            v.problems
        );

        // Replacing a stored hash breaks its own check and the next link.
        let chain2 = tenant(store, "globex").id;
        for i in 0..3 {
            append(store, &chain2, &event(i, Some(&chain2)));
        }
        store
            .write(|w| {
                Ok(w.execute(
                    "UPDATE audit_events SET hash = ? WHERE chain = ? AND seq = 2",
                    vals![GENESIS, &chain2],
                )?)
            })
            .unwrap();
        let v = verify(store);
        let about: Vec<_> =
            v.problems.iter().filter(|p| p.contains(&format!("chain {chain2}"))).collect();
        assert!(about.iter().any(|p| p.contains("seq 2: content")), "{b}: {about:?}");
        assert!(about.iter().any(|p| p.contains("seq 3: link")), "{b}: {about:?}");
    });
}

#[test]
fn verify_detects_a_deleted_middle_row() {
    each_backend(|store, b| {
        let (chain, _, _) = two_chains(store, 5, 2);
        drop_audit_triggers(store);
        store
            .write(|w| {
                Ok(w.execute(
                    "DELETE FROM audit_events WHERE chain = ? AND seq = 3",
                    vals![&chain],
                )?)
            })
            .unwrap();
        let v = verify(store);
        assert_problems(
            b,
            &v,
            &chain,
            &["events 3..3 are missing", "seq 4: link to the previous event is broken"],
        );
        assert_eq!(v.events, 6, "{b}");
    });
}

#[test]
fn verify_detects_truncation() {
    each_backend(|store, b| {
        let (chain, _, _) = two_chains(store, 5, 2);
        drop_audit_triggers(store);
        // Removing the last event leaves a chain that is intact in itself:
        // only the head record shows what is missing.
        store
            .write(|w| {
                Ok(w.execute(
                    "DELETE FROM audit_events WHERE chain = ? AND seq = 5",
                    vals![&chain],
                )?)
            })
            .unwrap();
        let v = verify(store);
        assert_problems(b, &v, &chain, &["head says seq 5 but the trail ends at seq 4"]);
        assert_eq!(v.problems.len(), 1, "{b}: {:?}", v.problems);

        // The whole chain gone: still known from its head.
        store
            .write(|w| Ok(w.execute("DELETE FROM audit_events WHERE chain = ?", vals![&chain])?))
            .unwrap();
        let v = verify(store);
        assert_problems(b, &v, &chain, &["head says seq 5 but the trail ends at seq 0"]);
        assert_eq!(v.chains, 2, "{b}");

        // Events without a head record.
        store
            .write(|w| {
                Ok(w.execute("DELETE FROM audit_heads WHERE chain = ?", vals![PROVIDER_CHAIN])?)
            })
            .unwrap();
        let v = verify(store);
        assert!(
            v.problems.iter().any(|p| p == "chain provider: head record is missing"),
            "{b}: {:?}",
            v.problems
        );
    });
}

#[test]
fn concurrent_appends_keep_one_chain_and_verify_stays_clean() {
    each_backend(|store, b| {
        let t = tenant(store, "acme");
        let (writers, per_writer) = (6, 20);
        let done = AtomicBool::new(false);
        let verifications = std::thread::scope(|s| {
            // A verifier running while events are appended must never see
            // a half-written chain.
            let verifier = {
                let store = store.clone();
                let done = &done;
                s.spawn(move || {
                    let mut runs = 0;
                    while !done.load(Ordering::Acquire) {
                        let v = store.read(audit::verify).unwrap();
                        assert!(
                            v.problems.is_empty(),
                            "{b}: verify during appends: {:?}",
                            v.problems
                        );
                        runs += 1;
                    }
                    runs
                })
            };
            let handles: Vec<_> = (0..writers)
                .map(|k| {
                    let store = store.clone();
                    let chain = if k == 0 { PROVIDER_CHAIN.to_string() } else { t.id.clone() };
                    s.spawn(move || {
                        for i in 0..per_writer {
                            store
                                .write(|w| audit::append(w, &chain, &event(k * 1000 + i, None)))
                                .unwrap();
                        }
                    })
                })
                .collect();
            for h in handles {
                h.join().expect("appender panicked");
            }
            done.store(true, Ordering::Release);
            verifier.join().expect("verifier panicked")
        });
        assert!(verifications > 0, "{b}");

        let tenant_chain = list(store, &t.id);
        let want = (writers - 1) * per_writer;
        assert_eq!(
            tenant_chain.iter().map(|e| e.seq).collect::<Vec<_>>(),
            (1..=want).collect::<Vec<_>>(),
            "{b}: one chain, no gaps, no forks"
        );
        for pair in tenant_chain.windows(2) {
            assert_eq!(pair[1].prev_hash, pair[0].hash, "{b}");
        }
        assert_eq!(list(store, PROVIDER_CHAIN).len() as i64, per_writer, "{b}");
        let v = verify(store);
        assert_eq!((v.chains, v.events as i64), (2, want + per_writer), "{b}");
        assert!(v.problems.is_empty(), "{b}: {:?}", v.problems);
    });
}
