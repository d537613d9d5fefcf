//! The hierarchical quota ledger (provider -> tenant -> project): limits,
//! claims, and admission under concurrency. Every test runs on SQLite and
//! on PostgreSQL.

mod common;

use common::*;
use neocloud_common::Error;
use neocloud_store::quotas::{self, PROVIDER_SCOPE};
use neocloud_store::{vals, Store};
use neocloud_types::{ClaimState, QuotaClaim, QuotaEntry, QuotaResource};
use std::collections::BTreeMap;
use std::sync::Barrier;

const PROVIDER: &str = PROVIDER_SCOPE;

fn nodes() -> QuotaResource {
    QuotaResource::Nodes
}

/// (reserved, committed) of `resource` in a scope.
fn used(store: &Store, scope: &str, resource: &str) -> (i64, i64) {
    let e = entry(store, scope, resource);
    (e.reserved, e.committed)
}

/// Asserts (reserved, committed) of `resource` at project, tenant and provider.
#[track_caller]
fn assert_levels(
    store: &Store,
    b: &str,
    tenant: &str,
    project: &str,
    resource: &str,
    want: (i64, i64),
) {
    for (level, scope) in [("project", project), ("tenant", tenant), ("provider", PROVIDER)] {
        assert_eq!(
            used(store, scope, resource),
            want,
            "{b}: {resource} (reserved, committed) at {level} level"
        );
    }
}

fn claim(
    store: &Store,
    tenant: &str,
    project: &str,
    amounts: &[(QuotaResource, i64)],
) -> Result<QuotaClaim, Error> {
    store.write(|w| quotas::create_claim(w, tenant, project, amounts, "test"))
}

fn field_of(e: &Error) -> Option<String> {
    e.field().map(str::to_string)
}

#[test]
fn limits_and_generations() {
    each_backend(|store, b| {
        let prov = quota(store, PROVIDER);
        assert_eq!((prov.scope.as_str(), prov.generation), ("provider", 1), "{b}");
        assert!(prov.resources.is_empty(), "{b}");
        let t = tenant(store, "acme");
        let p = project(store, &t.id, "web");
        let gpu_field = Some(format!("limits.{GPU}"));

        let q = store
            .write(|w| quotas::set_limits(w, &t.id, 1, &[(gpu(), Some(8)), (nodes(), Some(4))]))
            .unwrap();
        assert_eq!(
            (q.scope.as_str(), q.scope_id.as_str(), q.generation),
            ("tenant", t.id.as_str(), 2),
            "{b}"
        );
        assert_eq!(
            q.resources[GPU],
            QuotaEntry { limit: Some(8), reserved: 0, committed: 0 },
            "{b}"
        );
        assert_eq!(q.resources["nodes"].limit, Some(4), "{b}");
        assert_eq!(quota(store, &t.id), q, "{b}");

        // A stale generation is refused and changes nothing.
        assert_eq!(
            store.write(|w| quotas::set_limits(w, &t.id, 1, &[(gpu(), Some(100))])).unwrap_err(),
            Error::GenerationMismatch { kind: "quota", expected: 1, current: 2 },
            "{b}"
        );
        assert_eq!(quota(store, &t.id), q, "{b}");
        // Tenant limits must be numbers, and none may be negative.
        let e = store.write(|w| quotas::set_limits(w, &t.id, 2, &[(gpu(), None)])).unwrap_err();
        assert!(matches!(e, Error::InvalidValue(_)), "{b}: {e:?}");
        assert_eq!(field_of(&e), gpu_field, "{b}");
        let e = store
            .write(|w| quotas::set_limits(w, &t.id, 2, &[(nodes(), Some(1)), (gpu(), Some(-1))]))
            .unwrap_err();
        assert_eq!(field_of(&e), gpu_field, "{b}");
        assert_eq!(
            quota(store, &t.id),
            q,
            "{b}: a rejected update changes nothing, not even a valid entry"
        );

        // A project limit may not exceed its tenant's; a resource the tenant
        // was not granted has tenant limit 0.
        let e = store.write(|w| quotas::set_limits(w, &p.id, 1, &[(gpu(), Some(9))])).unwrap_err();
        assert!(matches!(&e, Error::InvalidValue(f) if f.message.contains('8')), "{b}: {e:?}");
        assert_eq!(field_of(&e), gpu_field, "{b}");
        let e = store
            .write(|w| quotas::set_limits(w, &p.id, 1, &[(QuotaResource::StorageBytes, Some(1))]))
            .unwrap_err();
        assert_eq!(field_of(&e).as_deref(), Some("limits.storage_bytes"), "{b}");
        let pq = quota(store, &p.id);
        assert_eq!((pq.scope.as_str(), pq.generation), ("project", 1), "{b}");
        assert!(pq.resources.is_empty(), "{b}");

        let pq = store
            .write(|w| quotas::set_limits(w, &p.id, 1, &[(gpu(), Some(8)), (nodes(), Some(0))]))
            .unwrap();
        assert_eq!(pq.generation, 2, "{b}");
        assert_eq!(
            (pq.resources[GPU].limit, pq.resources["nodes"].limit),
            (Some(8), Some(0)),
            "{b}"
        );
        assert_eq!(
            store.write(|w| quotas::set_limits(w, &p.id, 1, &[(gpu(), Some(1))])).unwrap_err(),
            Error::GenerationMismatch { kind: "quota", expected: 1, current: 2 },
            "{b}"
        );
        // None removes a project limit.
        let pq = store.write(|w| quotas::set_limits(w, &p.id, 2, &[(gpu(), None)])).unwrap();
        assert_eq!((pq.generation, pq.resources[GPU].limit), (3, None), "{b}");
        assert_eq!(pq.resources["nodes"].limit, Some(0), "{b}: other resources unchanged");

        // The provider: limits and None.
        let prov =
            store.write(|w| quotas::set_limits(w, PROVIDER, 1, &[(gpu(), Some(100))])).unwrap();
        assert_eq!((prov.generation, prov.resources[GPU].limit), (2, Some(100)), "{b}");
        let prov = store.write(|w| quotas::set_limits(w, PROVIDER, 2, &[(gpu(), None)])).unwrap();
        assert_eq!((prov.generation, prov.resources[GPU].limit), (3, None), "{b}");

        let missing = neocloud_common::new_id();
        assert_eq!(
            store.read(|r| quotas::get(r, &missing)).unwrap_err(),
            Error::not_found("quota", &missing),
            "{b}"
        );
        assert_eq!(
            store.write(|w| quotas::set_limits(w, &missing, 1, &[(gpu(), Some(1))])).unwrap_err(),
            Error::not_found("quota", &missing),
            "{b}"
        );
        // Limits are independent per tenant.
        let other = tenant(store, "other");
        assert!(quota(store, &other.id).resources.is_empty(), "{b}");
    });
}

#[test]
fn claim_lifecycle_moves_the_ledger() {
    each_backend(|store, b| {
        let t = tenant(store, "acme");
        let p = project(store, &t.id, "web");
        set_limits(store, &t.id, &[(gpu(), Some(8)), (nodes(), Some(4))]).unwrap();
        set_limits(store, &p.id, &[(gpu(), Some(6))]).unwrap();
        set_limits(store, PROVIDER, &[(gpu(), Some(100))]).unwrap();

        let c1 = store
            .write(|w| quotas::create_claim(w, &t.id, &p.id, &[(nodes(), 1), (gpu(), 2)], "vm-1"))
            .unwrap();
        assert_eq!(c1.state, ClaimState::Reserved, "{b}");
        assert_eq!(
            (c1.tenant_id.as_str(), c1.project_id.as_str()),
            (t.id.as_str(), p.id.as_str()),
            "{b}"
        );
        assert_eq!(
            c1.resources,
            BTreeMap::from([(GPU.to_string(), 2), ("nodes".to_string(), 1)]),
            "{b}"
        );
        assert_eq!((c1.description.as_str(), c1.generation), ("vm-1", 1), "{b}");
        assert_eq!(store.read(|r| quotas::get_claim(r, &t.id, &p.id, &c1.id)).unwrap(), c1, "{b}");
        assert_levels(store, b, &t.id, &p.id, GPU, (2, 0));
        assert_levels(store, b, &t.id, &p.id, "nodes", (1, 0));
        // Limits are untouched by usage; levels without a limit got a row without one.
        assert_eq!(entry(store, &p.id, GPU).limit, Some(6), "{b}");
        assert_eq!(entry(store, &p.id, "nodes").limit, None, "{b}");
        assert_eq!(entry(store, PROVIDER, "nodes").limit, None, "{b}");

        // Commit moves reserved to committed at every level, once.
        let c1c = store.write(|w| quotas::commit_claim(w, &t.id, &p.id, &c1.id)).unwrap();
        assert_eq!((c1c.state, c1c.generation), (ClaimState::Committed, 2), "{b}");
        assert_levels(store, b, &t.id, &p.id, GPU, (0, 2));
        assert_levels(store, b, &t.id, &p.id, "nodes", (0, 1));
        let again = store.write(|w| quotas::commit_claim(w, &t.id, &p.id, &c1.id)).unwrap();
        assert_eq!(again, c1c, "{b}: committing twice changes nothing");
        assert_levels(store, b, &t.id, &p.id, GPU, (0, 2));

        let c2 = claim(store, &t.id, &p.id, &[(gpu(), 3)]).unwrap();
        assert_levels(store, b, &t.id, &p.id, GPU, (3, 2));

        // Release of a committed claim returns committed resources.
        let c1r = store.write(|w| quotas::release_claim(w, &t.id, &p.id, &c1.id)).unwrap();
        assert_eq!((c1r.state, c1r.generation), (ClaimState::Released, 3), "{b}");
        assert_levels(store, b, &t.id, &p.id, GPU, (3, 0));
        assert_levels(store, b, &t.id, &p.id, "nodes", (0, 0));
        let again = store.write(|w| quotas::release_claim(w, &t.id, &p.id, &c1.id)).unwrap();
        assert_eq!(again, c1r, "{b}: releasing twice changes nothing");
        assert!(
            matches!(
                store.write(|w| quotas::commit_claim(w, &t.id, &p.id, &c1.id)),
                Err(Error::Conflict { .. })
            ),
            "{b}: a released claim cannot be committed"
        );
        assert_levels(store, b, &t.id, &p.id, GPU, (3, 0));

        // A claim is only reachable through its own tenant and project.
        let other = project(store, &t.id, "other");
        for (tid, pid) in [(t.id.as_str(), other.id.as_str()), (other.id.as_str(), p.id.as_str())] {
            let nf = Error::not_found("quota claim", &c2.id);
            assert_eq!(
                store.read(|r| quotas::get_claim(r, tid, pid, &c2.id)).unwrap_err(),
                nf,
                "{b}"
            );
            assert_eq!(
                store.write(|w| quotas::commit_claim(w, tid, pid, &c2.id)).unwrap_err(),
                nf,
                "{b}"
            );
            assert_eq!(
                store.write(|w| quotas::release_claim(w, tid, pid, &c2.id)).unwrap_err(),
                nf,
                "{b}"
            );
        }
        assert_levels(store, b, &t.id, &p.id, GPU, (3, 0));

        // Release of a reserved claim returns reserved resources.
        let c2r = store.write(|w| quotas::release_claim(w, &t.id, &p.id, &c2.id)).unwrap();
        assert_eq!(c2r.state, ClaimState::Released, "{b}");
        assert_levels(store, b, &t.id, &p.id, GPU, (0, 0));

        let list = store.read(|r| quotas::list_claims(r, &t.id, &p.id)).unwrap();
        assert_eq!(list, [c1r, c2r], "{b}");
        assert!(
            store.read(|r| quotas::list_claims(r, &t.id, &other.id)).unwrap().is_empty(),
            "{b}"
        );
        assert_eq!(entry(store, &p.id, GPU).limit, Some(6), "{b}");
        assert_eq!(entry(store, &t.id, GPU).limit, Some(8), "{b}");
    });
}

#[test]
fn exceeding_a_quota_changes_nothing() {
    each_backend(|store, b| {
        let t1 = tenant(store, "acme");
        let t2 = tenant(store, "globex");
        let p1 = project(store, &t1.id, "limited");
        let p2 = project(store, &t1.id, "unlimited");
        let q = project(store, &t2.id, "web");
        set_limits(store, PROVIDER, &[(gpu(), Some(10))]).unwrap();
        set_limits(store, &t1.id, &[(gpu(), Some(8))]).unwrap();
        set_limits(store, &t2.id, &[(gpu(), Some(8))]).unwrap();
        set_limits(store, &p1.id, &[(gpu(), Some(4))]).unwrap();
        claim(store, &t1.id, &p1.id, &[(gpu(), 3)]).unwrap();

        let scopes = [PROVIDER, &t1.id, &t2.id, &p1.id, &p2.id, &q.id];
        let snapshot = |store: &Store| {
            let quotas: Vec<_> = scopes.iter().map(|s| quota(store, s)).collect();
            (quotas, count(store, "quota_claims", &[]), count(store, "quota_usage", &[]))
        };
        let before = snapshot(store);
        let exceeded =
            |scope: &str, resource: &str, limit, in_use, requested| Error::QuotaExceeded {
                scope: scope.into(),
                resource: resource.into(),
                limit,
                in_use,
                requested,
            };
        // The project's own limit.
        assert_eq!(
            claim(store, &t1.id, &p1.id, &[(gpu(), 2)]).unwrap_err(),
            exceeded("project", GPU, 4, 3, 2),
            "{b}"
        );
        // The tenant's limit, after the project level was already reserved.
        assert_eq!(
            claim(store, &t1.id, &p2.id, &[(gpu(), 6)]).unwrap_err(),
            exceeded("tenant", GPU, 8, 3, 6),
            "{b}"
        );
        // The provider's limit, after project and tenant were reserved.
        assert_eq!(
            claim(store, &t2.id, &q.id, &[(gpu(), 8)]).unwrap_err(),
            exceeded("provider", GPU, 10, 3, 8),
            "{b}"
        );
        // The second resource fails after the first was reserved everywhere.
        assert_eq!(
            claim(store, &t1.id, &p1.id, &[(gpu(), 1), (nodes(), 1)]).unwrap_err(),
            exceeded("tenant", "nodes", 0, 0, 1),
            "{b}: a resource the tenant was not granted has limit 0"
        );
        assert_eq!(
            claim(store, &t1.id, &p2.id, &[(QuotaResource::StorageBytes, 1 << 30)]).unwrap_err(),
            exceeded("tenant", "storage_bytes", 0, 0, 1 << 30),
            "{b}"
        );
        assert_eq!(snapshot(store), before, "{b}: failed claims must leave the ledger as it was");

        // Exactly up to each limit is fine.
        claim(store, &t1.id, &p1.id, &[(gpu(), 1)]).unwrap();
        claim(store, &t1.id, &p2.id, &[(gpu(), 4)]).unwrap();
        assert_eq!(used(store, &t1.id, GPU), (8, 0), "{b}");
        claim(store, &t2.id, &q.id, &[(gpu(), 2)]).unwrap();
        assert_eq!(used(store, PROVIDER, GPU), (10, 0), "{b}");
        assert!(
            matches!(claim(store, &t2.id, &q.id, &[(gpu(), 1)]), Err(Error::QuotaExceeded { .. })),
            "{b}"
        );
        // Lowering a limit below usage does not evict, but admits nothing more.
        set_limits(store, &p2.id, &[(gpu(), Some(1))]).unwrap();
        assert_eq!(used(store, &p2.id, GPU), (4, 0), "{b}");
        set_limits(store, PROVIDER, &[(gpu(), None)]).unwrap();
        assert_eq!(
            claim(store, &t1.id, &p2.id, &[(gpu(), 1)]).unwrap_err(),
            exceeded("project", GPU, 1, 4, 1),
            "{b}"
        );
    });
}

#[test]
fn claim_amounts_are_positive_and_merged() {
    each_backend(|store, b| {
        let t = tenant(store, "acme");
        let p = project(store, &t.id, "web");
        set_limits(store, &t.id, &[(gpu(), Some(10))]).unwrap();
        let c0 = claim(store, &t.id, &p.id, &[(gpu(), 2)]).unwrap();

        // The same resource twice: one entry with the sum, in claim and ledger.
        let c = claim(store, &t.id, &p.id, &[(gpu(), 1), (gpu(), 3)]).unwrap();
        assert_eq!(c.resources, BTreeMap::from([(GPU.to_string(), 4)]), "{b}");
        assert_levels(store, b, &t.id, &p.id, GPU, (6, 0));
        store.write(|w| quotas::release_claim(w, &t.id, &p.id, &c.id)).unwrap();
        assert_levels(store, b, &t.id, &p.id, GPU, (2, 0));
        // The sum counts against the limit.
        assert!(
            matches!(
                claim(store, &t.id, &p.id, &[(gpu(), 5), (gpu(), 4)]),
                Err(Error::QuotaExceeded { .. })
            ),
            "{b}"
        );

        // Zero and negative amounts are refused and change nothing.
        for n in [0, -1, -2] {
            let e = claim(store, &t.id, &p.id, &[(gpu(), n)]).unwrap_err();
            assert!(matches!(e, Error::InvalidValue(_)), "{b}: amount {n}: {e:?}");
        }
        assert_levels(store, b, &t.id, &p.id, GPU, (2, 0));
        assert_eq!(count(store, "quota_claims WHERE state = 'reserved'", &[]), 1, "{b}");
        store.write(|w| quotas::release_claim(w, &t.id, &p.id, &c0.id)).unwrap();
        assert_levels(store, b, &t.id, &p.id, GPU, (0, 0));
    });
}

/// Runs `n` claims of 1 GPU concurrently, each in its own transaction.
fn race_claims(
    store: &Store,
    targets: &[(String, String)],
    n: usize,
) -> Vec<Result<QuotaClaim, Error>> {
    let barrier = Barrier::new(n);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..n)
            .map(|i| {
                let store = store.clone();
                let (t, p) = targets[i % targets.len()].clone();
                let barrier = &barrier;
                s.spawn(move || {
                    barrier.wait();
                    store.write(|w| {
                        quotas::create_claim(w, &t, &p, &[(gpu(), 1)], &format!("race-{i}"))
                    })
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("claim thread panicked")).collect()
    })
}

/// Checks that exactly `ok` claims succeeded and every other one failed
/// with QuotaExceeded at `scope`, with the limit reached.
#[track_caller]
fn check_race(b: &str, results: &[Result<QuotaClaim, Error>], ok: usize, scope: &str, limit: i64) {
    let succeeded = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(succeeded, ok, "{b}: admitted claims");
    for r in results {
        match r {
            Ok(c) => assert_eq!(c.state, ClaimState::Reserved, "{b}"),
            Err(e) => assert_eq!(
                e,
                &Error::QuotaExceeded {
                    scope: scope.into(),
                    resource: GPU.into(),
                    limit,
                    in_use: limit,
                    requested: 1
                },
                "{b}: every refused claim must be QuotaExceeded at the full {scope} level"
            ),
        }
    }
}

#[test]
fn concurrent_claims_never_overcommit() {
    each_backend(|store, b| {
        let t = tenant(store, "acme");
        let p = project(store, &t.id, "web");
        set_limits(store, &t.id, &[(gpu(), Some(10))]).unwrap();
        set_limits(store, &p.id, &[(gpu(), Some(10))]).unwrap();

        // 40 claims for one project limited to 10.
        let results = race_claims(store, &[(t.id.clone(), p.id.clone())], 40);
        check_race(b, &results, 10, "project", 10);
        assert_levels(store, b, &t.id, &p.id, GPU, (10, 0));
        assert_eq!(count(store, "quota_claims WHERE project_id = ?", vals![&p.id]), 10, "{b}");

        // Two unlimited projects sharing the tenant's remaining 6.
        set_limits(store, &t.id, &[(gpu(), Some(16))]).unwrap();
        let p2 = project(store, &t.id, "batch");
        let p3 = project(store, &t.id, "train");
        let targets = [(t.id.clone(), p2.id.clone()), (t.id.clone(), p3.id.clone())];
        let results = race_claims(store, &targets, 40);
        check_race(b, &results, 6, "tenant", 16);
        assert_eq!(used(store, &t.id, GPU), (16, 0), "{b}");
        assert_eq!(used(store, PROVIDER, GPU), (16, 0), "{b}");
        let (r2, r3) = (used(store, &p2.id, GPU).0, used(store, &p3.id, GPU).0);
        assert_eq!(r2 + r3, 6, "{b}");
        assert_eq!(count(store, "quota_claims", &[]), 16, "{b}");

        // Two tenants sharing the provider's remaining 4.
        set_limits(store, PROVIDER, &[(gpu(), Some(20))]).unwrap();
        let t2 = tenant(store, "globex");
        let q = project(store, &t2.id, "web");
        set_limits(store, &t2.id, &[(gpu(), Some(10))]).unwrap();
        set_limits(store, &t.id, &[(gpu(), Some(30))]).unwrap();
        let targets = [(t2.id.clone(), q.id.clone()), (t.id.clone(), p2.id.clone())];
        let results = race_claims(store, &targets, 40);
        check_race(b, &results, 4, "provider", 20);
        assert_eq!(used(store, PROVIDER, GPU), (20, 0), "{b}");
        assert_eq!(used(store, &t.id, GPU).0 + used(store, &t2.id, GPU).0, 20, "{b}");
        assert_eq!(used(store, &q.id, GPU), used(store, &t2.id, GPU), "{b}");
        assert_eq!(count(store, "quota_claims", &[]), 20, "{b}");
    });
}

#[derive(Debug, Clone, Copy)]
enum Op {
    Commit,
    Release,
    Create,
}

#[test]
fn concurrent_commits_and_releases_keep_totals() {
    each_backend(|store, b| {
        let t = tenant(store, "acme");
        let p = project(store, &t.id, "web");
        set_limits(store, &t.id, &[(gpu(), Some(200))]).unwrap();
        set_limits(store, PROVIDER, &[(gpu(), Some(200))]).unwrap();
        // Claims of 1, 2 or 3 GPUs: group 0 is committed (twice, racing),
        // group 1 released (twice, racing), group 2 committed and released
        // at once; new claims are created meanwhile.
        let claims: Vec<QuotaClaim> =
            (0..30).map(|i| claim(store, &t.id, &p.id, &[(gpu(), (i % 3) + 1)]).unwrap()).collect();
        let amount = |c: &QuotaClaim| c.resources[GPU];
        assert_levels(store, b, &t.id, &p.id, GPU, (60, 0));

        let mut ops: Vec<(Op, Option<String>)> = vec![];
        for (i, c) in claims.iter().enumerate() {
            let (a, z) = match i / 10 {
                0 => (Op::Commit, Op::Commit),
                1 => (Op::Release, Op::Release),
                _ => (Op::Commit, Op::Release),
            };
            ops.push((a, Some(c.id.clone())));
            ops.push((z, Some(c.id.clone())));
        }
        for _ in 0..10 {
            ops.push((Op::Create, None));
        }
        let barrier = Barrier::new(ops.len());
        let results: Vec<(Op, Option<String>, Result<QuotaClaim, Error>)> =
            std::thread::scope(|s| {
                let handles: Vec<_> = ops
                    .iter()
                    .cloned()
                    .map(|(op, id)| {
                        let store = store.clone();
                        let (tid, pid) = (t.id.clone(), p.id.clone());
                        let barrier = &barrier;
                        s.spawn(move || {
                            barrier.wait();
                            let r = store.write(|w| match (op, &id) {
                                (Op::Commit, Some(id)) => quotas::commit_claim(w, &tid, &pid, id),
                                (Op::Release, Some(id)) => quotas::release_claim(w, &tid, &pid, id),
                                _ => quotas::create_claim(w, &tid, &pid, &[(gpu(), 1)], "new"),
                            });
                            (op, id, r)
                        })
                    })
                    .collect();
                handles.into_iter().map(|h| h.join().expect("thread panicked")).collect()
            });

        for (op, id, r) in &results {
            match (op, r) {
                (Op::Commit, Ok(c)) => {
                    assert_eq!(c.state, ClaimState::Committed, "{b}: commit of {id:?}")
                }
                (Op::Commit, Err(Error::Conflict { .. })) => {
                    let i = claims.iter().position(|c| Some(&c.id) == id.as_ref()).unwrap();
                    assert!(i >= 20, "{b}: only a claim released meanwhile may refuse a commit");
                }
                (Op::Release, Ok(c)) => {
                    assert_eq!(
                        c.state,
                        ClaimState::Released,
                        "{b}: release of {id:?} must release it"
                    )
                }
                (Op::Create, Ok(c)) => assert_eq!(c.state, ClaimState::Reserved, "{b}"),
                (op, Err(e)) => panic!("{b}: {op:?} of {id:?} failed: {e:?}"),
            }
        }

        let all = store.read(|r| quotas::list_claims(r, &t.id, &p.id)).unwrap();
        assert_eq!(all.len(), 40, "{b}");
        let state_of = |id: &str| all.iter().find(|c| c.id == id).unwrap().state;
        let (mut reserved, mut committed) = (0, 0);
        for (i, c) in claims.iter().enumerate() {
            let want = if i < 10 { ClaimState::Committed } else { ClaimState::Released };
            assert_eq!(state_of(&c.id), want, "{b}: claim {i}");
            if i < 10 {
                committed += amount(c);
            }
        }
        for c in all.iter().filter(|c| c.description == "new") {
            assert_eq!(c.state, ClaimState::Reserved, "{b}");
            reserved += amount(c);
        }
        assert_eq!((reserved, committed), (10, 19), "{b}");
        assert_levels(store, b, &t.id, &p.id, GPU, (reserved, committed));

        // Release everything: every level returns to zero.
        for c in &all {
            store.write(|w| quotas::release_claim(w, &t.id, &p.id, &c.id)).unwrap();
        }
        assert_levels(store, b, &t.id, &p.id, GPU, (0, 0));
    });
}

/// A claim committed from the start takes the same limits at every level
/// as reserve-then-commit, lands in `committed` only, and is released like
/// any other.
#[test]
fn a_committed_claim_checks_every_level_and_commits_at_once() {
    each_backend(|store, b| {
        let t = tenant(store, "acme");
        let p = project(store, &t.id, "web");
        set_limits(store, &t.id, &[(gpu(), Some(8)), (nodes(), Some(2))]).unwrap();
        set_limits(store, &p.id, &[(gpu(), Some(6))]).unwrap();
        let commit = |amounts: &[(QuotaResource, i64)]| {
            store.write(|w| quotas::create_committed_claim(w, &t.id, &p.id, amounts, "bm"))
        };
        let c = commit(&[(nodes(), 1), (gpu(), 4)]).unwrap();
        assert_eq!((c.state, c.generation), (ClaimState::Committed, 1), "{b}");
        assert_levels(store, b, &t.id, &p.id, GPU, (0, 4));
        assert_levels(store, b, &t.id, &p.id, "nodes", (0, 1));
        // Committing it again changes nothing.
        let again = store.write(|w| quotas::commit_claim(w, &t.id, &p.id, &c.id)).unwrap();
        assert_eq!(again, c, "{b}");
        // Over the project's GPU limit (4 + 4 > 6): refused, nothing written.
        let e = commit(&[(nodes(), 1), (gpu(), 4)]).unwrap_err();
        assert!(
            matches!(&e, Error::QuotaExceeded { scope, resource, .. } if scope == "project" && resource == GPU),
            "{b}: {e:?}"
        );
        assert_levels(store, b, &t.id, &p.id, GPU, (0, 4));
        assert_levels(store, b, &t.id, &p.id, "nodes", (0, 1));
        // A reserved claim counts against the same limits.
        claim(store, &t.id, &p.id, &[(nodes(), 1)]).unwrap();
        let e = commit(&[(nodes(), 1)]).unwrap_err();
        assert!(
            matches!(&e, Error::QuotaExceeded { scope, .. } if scope == "tenant"),
            "{b}: {e:?}"
        );
        // Released like any claim.
        store.write(|w| quotas::release_claim(w, &t.id, &p.id, &c.id)).unwrap();
        assert_levels(store, b, &t.id, &p.id, GPU, (0, 0));
        assert_levels(store, b, &t.id, &p.id, "nodes", (1, 0));
    });
}
