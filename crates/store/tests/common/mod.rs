//! Helpers shared by the store's integration tests. Every test runs on both
//! backends through [`each_backend`]; PostgreSQL is skipped (loudly, by
//! `neocloud_store::testing`) where `NEOCLOUD_TEST_POSTGRES_URL` is unset.

#![allow(dead_code)]

use neocloud_common::{time::now_micros, Name, Result};
use neocloud_store::testing::{fresh_store, TestBackend};
use neocloud_store::{projects, quotas, tenants, BackendKind, Store, Value};
use neocloud_types::{
    Project, ProjectCreate, Quota, QuotaEntry, QuotaResource, Tenant, TenantCreate,
};

/// Runs `f` on a fresh store of every backend, with the backend's name for
/// assertion messages.
pub fn each_backend(mut f: impl FnMut(&Store, &'static str)) {
    for backend in TestBackend::ALL {
        let Some((store, db)) = fresh_store(backend) else { continue };
        f(&store, backend.as_str());
        // Close the store's connections before its database is dropped.
        drop(store);
        drop(db);
    }
}

pub fn name(s: &str) -> Name {
    Name::parse(s).unwrap_or_else(|e| panic!("bad test name {s:?}: {e}"))
}

pub fn tenant(store: &Store, n: &str) -> Tenant {
    let p = TenantCreate { name: name(n), display_name: None, description: None };
    store.write(|w| tenants::create(w, &p)).unwrap_or_else(|e| panic!("create tenant {n}: {e}"))
}

pub fn project(store: &Store, tenant_id: &str, n: &str) -> Project {
    let p = ProjectCreate { name: name(n), description: None };
    store
        .write(|w| projects::create(w, tenant_id, &p))
        .unwrap_or_else(|e| panic!("create project {n}: {e}"))
}

/// `SELECT COUNT(*) FROM <from>` (the rest of the statement after FROM).
pub fn count(store: &Store, from: &str, params: &[Value]) -> i64 {
    store
        .read(|r| r.query(&format!("SELECT COUNT(*) FROM {from}"), params))
        .unwrap_or_else(|e| panic!("count {from}: {e}"))[0]
        .i64(0)
        .unwrap()
}

/// The GPU resource the quota tests use.
pub fn gpu() -> QuotaResource {
    QuotaResource::parse("gpu:h100-80gb").unwrap()
}

pub const GPU: &str = "gpu:h100-80gb";

pub fn quota(store: &Store, scope_id: &str) -> Quota {
    store.read(|r| quotas::get(r, scope_id)).unwrap_or_else(|e| panic!("quota {scope_id}: {e}"))
}

/// Limit, reserved and committed of `resource` in a scope (zeros and no
/// limit where the scope has no row for it).
pub fn entry(store: &Store, scope_id: &str, resource: &str) -> QuotaEntry {
    quota(store, scope_id).resources.get(resource).cloned().unwrap_or(QuotaEntry {
        limit: None,
        reserved: 0,
        committed: 0,
    })
}

/// Sets limits of a scope at its current generation.
pub fn set_limits(
    store: &Store,
    scope_id: &str,
    limits: &[(QuotaResource, Option<i64>)],
) -> Result<Quota> {
    store.write(|w| {
        let generation = quotas::get(w, scope_id)?.generation;
        quotas::set_limits(w, scope_id, generation, limits)
    })
}

/// Raw SQL that removes the audit trail's append-only triggers, per backend.
pub fn drop_audit_triggers(store: &Store) {
    let sql = match store.kind() {
        BackendKind::Sqlite => {
            "DROP TRIGGER audit_events_no_update; DROP TRIGGER audit_events_no_delete;"
        }
        BackendKind::Postgres => "DROP TRIGGER audit_events_append_only ON audit_events;",
    };
    store
        .write(|w| w.execute_batch(sql).map_err(neocloud_common::Error::from))
        .unwrap_or_else(|e| panic!("{:?}: dropping audit triggers: {e}", store.kind()));
}

/// Sleeps long enough that the next `now_micros()` differs from this one.
pub fn tick() {
    let t = now_micros();
    while now_micros() <= t + 1000 {
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

pub fn micros(rfc: &str) -> i64 {
    neocloud_common::time::from_rfc3339(rfc).unwrap_or_else(|e| panic!("time {rfc:?}: {e}"))
}

/// An audit event for `action`, by a test actor.
pub fn test_event(action: &str) -> neocloud_store::audit::NewEvent {
    neocloud_store::audit::NewEvent {
        time: now_micros(),
        actor: "test".into(),
        actor_name: "test".into(),
        token_id: None,
        role: None,
        tenant_id: None,
        action: action.into(),
        target: "/v1/test".into(),
        outcome: "success".into(),
        status: 200,
        request_id: neocloud_common::new_id(),
    }
}

/// A node named `name` and a registered sanitizer agent for it (before any
/// tenant), whose credential hash is `credential_hash`.
pub fn node_with_sanitizer(
    store: &Store,
    name: &str,
    credential_hash: &str,
) -> (neocloud_types::Node, neocloud_store::agents::AgentRecord) {
    use neocloud_store::{agents, nodes};
    let p: neocloud_types::NodeCreate = serde_json::from_value(serde_json::json!({
        "name": name, "site": "s", "pod": "p", "su": "su", "rack": "r",
        "gpu_model": "h100-80gb", "gpus": 8
    }))
    .unwrap();
    let node = store.write(|w| nodes::create(w, &p, None)).unwrap();
    let agent = store
        .write(|w| {
            agents::issue_boot_token(
                w,
                &node.id,
                &format!("token-{credential_hash}"),
                "sealed",
                neocloud_types::ImagePurpose::Sanitizer,
                "",
            )?;
            let token = agents::boot_token(w, &node.id)?.expect("issued");
            agents::create_agent(w, &token, credential_hash, &Default::default())
        })
        .unwrap();
    (node, agent)
}
