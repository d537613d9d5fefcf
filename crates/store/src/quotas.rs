//! The hierarchical quota ledger: provider -> tenant -> project.
//!
//! Each scope has one row per resource in `quota_usage` holding its limit
//! and what is reserved and committed there. Admission adds to every level
//! with a conditional `UPDATE ... WHERE reserved + committed + n <= lim`,
//! inside the caller's transaction, so the ledger moves together with the
//! allocation it guards and concurrent requests can never over-commit: on
//! PostgreSQL the second writer of a row waits and re-checks the condition
//! on the committed row; SQLite serializes writers. Rows are touched in one
//! global order (resource key, then project, tenant, provider), so
//! concurrent admissions cannot deadlock.
//!
//! A tenant may use nothing the provider has not granted: a resource with no
//! tenant limit has limit 0. Projects and the provider are unlimited on a
//! resource until a limit is set.

use crate::backend::{Reader, Row, Value, Writer};
use crate::migrations::PROVIDER;
use crate::{rfc, vals};
use neocloud_common::{new_id, time::now_micros, Error, Result};
use neocloud_types::{ClaimState, Quota, QuotaClaim, QuotaEntry, QuotaResource};
use std::collections::BTreeMap;

pub use crate::migrations::PROVIDER as PROVIDER_SCOPE;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Level {
    Project,
    Tenant,
    Provider,
}

fn scope_kind(r: &mut dyn Reader, scope_id: &str) -> Result<(String, i64)> {
    let rows =
        r.query("SELECT kind, generation FROM quota_scopes WHERE id = ?", vals![scope_id])?;
    let row = rows.first().ok_or_else(|| Error::not_found("quota", scope_id))?;
    Ok((row.str(0)?, row.i64(1)?))
}

/// The quota of a scope (`provider`, a tenant id or a project id).
pub fn get(r: &mut dyn Reader, scope_id: &str) -> Result<Quota> {
    let (kind, generation) = scope_kind(r, scope_id)?;
    let rows = r.query(
        "SELECT resource, lim, reserved, committed FROM quota_usage WHERE scope_id = ? ORDER BY resource",
        vals![scope_id],
    )?;
    let mut resources = BTreeMap::new();
    for row in &rows {
        resources.insert(
            row.str(0)?,
            QuotaEntry { limit: row.opt_i64(1)?, reserved: row.i64(2)?, committed: row.i64(3)? },
        );
    }
    Ok(Quota { scope: kind, scope_id: scope_id.to_string(), generation, resources })
}

fn tenant_limit(r: &mut dyn Reader, tenant_id: &str, resource: &str) -> Result<i64> {
    let rows = r.query(
        "SELECT lim FROM quota_usage WHERE scope_id = ? AND resource = ?",
        vals![tenant_id, resource],
    )?;
    Ok(rows.first().map(|r| r.opt_i64(0)).transpose()?.flatten().unwrap_or(0))
}

/// Sets limits of a scope, checking its generation. `None` removes the
/// limit of a project or the provider; tenant limits must be numbers (0
/// withdraws the grant). A project limit may not exceed its tenant's.
pub fn set_limits(
    w: &mut dyn Writer,
    scope_id: &str,
    generation: i64,
    limits: &[(QuotaResource, Option<i64>)],
) -> Result<Quota> {
    let (kind, _) = scope_kind(w, scope_id)?;
    let project_tenant = if kind == "project" {
        let rows = w.query("SELECT tenant_id FROM quota_scopes WHERE id = ?", vals![scope_id])?;
        rows.first().map(|r| r.opt_str(0)).transpose()?.flatten()
    } else {
        None
    };
    for (res, lim) in limits {
        let key = res.key();
        let field = format!("limits.{key}");
        match lim {
            Some(n) if *n < 0 => return Err(Error::invalid_value(field, "must not be negative")),
            None if kind == "tenant" => {
                return Err(Error::invalid_value(
                    field,
                    "tenant limits must be numbers; 0 withdraws the grant",
                ))
            }
            _ => {}
        }
        if let (Some(t), Some(n)) = (&project_tenant, lim) {
            let tl = tenant_limit(w, t, &key)?;
            if *n > tl {
                return Err(Error::invalid_value(
                    field,
                    format!("exceeds the tenant's limit of {tl}"),
                ));
            }
        }
    }
    let n = w.execute(
        "UPDATE quota_scopes SET generation = generation + 1, updated_at = ? WHERE id = ? AND generation = ?",
        vals![now_micros(), scope_id, generation],
    )?;
    crate::check_generation(w, n, "quota_scopes", "quota", scope_id, generation, None)?;
    for (res, lim) in limits {
        w.execute(
            "INSERT INTO quota_usage (scope_id, resource, lim, reserved, committed) VALUES (?, ?, ?, 0, 0) \
             ON CONFLICT (scope_id, resource) DO UPDATE SET lim = excluded.lim",
            vals![scope_id, res.key(), *lim],
        )?;
    }
    get(w, scope_id)
}

fn levels(tenant_id: &str, project_id: &str) -> [(Level, String); 3] {
    [
        (Level::Project, project_id.to_string()),
        (Level::Tenant, tenant_id.to_string()),
        (Level::Provider, PROVIDER.to_string()),
    ]
}

/// Reserves `amounts` in a project, its tenant and the provider, or
/// nothing (the caller's transaction rolls back on error).
/// Adds `amounts` to the `into` column (reserved or committed) at every
/// level, each within its limit.
fn take(
    w: &mut dyn Writer,
    tenant_id: &str,
    project_id: &str,
    amounts: &[(QuotaResource, i64)],
    into: ClaimState,
) -> Result<()> {
    let update = match into {
        ClaimState::Reserved => "UPDATE quota_usage SET reserved = reserved + ? \
             WHERE scope_id = ? AND resource = ? AND (lim IS NULL OR reserved + committed + ? <= lim)",
        ClaimState::Committed => "UPDATE quota_usage SET committed = committed + ? \
             WHERE scope_id = ? AND resource = ? AND (lim IS NULL OR reserved + committed + ? <= lim)",
        ClaimState::Released => return Err(Error::internal("released is not a ledger column")),
    };
    let mut sorted: Vec<_> = amounts.iter().map(|(r, n)| (r.key(), *n)).collect();
    sorted.sort();
    for (key, n) in &sorted {
        for (level, scope) in levels(tenant_id, project_id) {
            let default_lim = match level {
                Level::Tenant => Some(0),
                Level::Project | Level::Provider => None,
            };
            w.execute(
                "INSERT INTO quota_usage (scope_id, resource, lim, reserved, committed) VALUES (?, ?, ?, 0, 0) \
                 ON CONFLICT (scope_id, resource) DO NOTHING",
                vals![&scope, key, default_lim],
            )?;
            let ok = w.execute(update, vals![*n, &scope, key, *n])?;
            if ok == 0 {
                let rows = w.query(
                    "SELECT lim, reserved + committed FROM quota_usage WHERE scope_id = ? AND resource = ?",
                    vals![&scope, key],
                )?;
                let row = rows.first().ok_or_else(|| Error::internal("quota row vanished"))?;
                return Err(Error::QuotaExceeded {
                    scope: match level {
                        Level::Project => "project".into(),
                        Level::Tenant => "tenant".into(),
                        Level::Provider => "provider".into(),
                    },
                    resource: key.clone(),
                    limit: row.opt_i64(0)?.unwrap_or(0),
                    in_use: row.i64(1)?,
                    requested: *n,
                });
            }
        }
    }
    Ok(())
}

/// Moves amounts between the ledger columns at every level.
fn shift(
    w: &mut dyn Writer,
    c: &QuotaClaim,
    from: ClaimState,
    to: Option<ClaimState>,
) -> Result<()> {
    let col = |s: ClaimState| match s {
        ClaimState::Reserved => Ok("reserved"),
        ClaimState::Committed => Ok("committed"),
        ClaimState::Released => Err(Error::internal("released is not a ledger column")),
    };
    let from = col(from)?;
    let sql = match to {
        Some(to) => {
            let to = col(to)?;
            format!("UPDATE quota_usage SET {from} = {from} - ?, {to} = {to} + ? WHERE scope_id = ? AND resource = ?")
        }
        None => format!(
            "UPDATE quota_usage SET {from} = {from} - ? WHERE scope_id = ? AND resource = ?"
        ),
    };
    for (key, n) in &c.resources {
        for (_, scope) in levels(&c.tenant_id, &c.project_id) {
            let updated = match to {
                Some(_) => w.execute(&sql, vals![*n, *n, &scope, key])?,
                None => w.execute(&sql, vals![*n, &scope, key])?,
            };
            if updated != 1 {
                return Err(Error::internal(format!("quota ledger row {scope}/{key} missing")));
            }
        }
    }
    Ok(())
}

const CLAIM_COLS: &str =
    "id, tenant_id, project_id, state, resources, description, generation, created_at, updated_at";

fn claim_from_row(r: &Row) -> Result<QuotaClaim> {
    let state = r.str(3)?;
    Ok(QuotaClaim {
        id: r.str(0)?,
        tenant_id: r.str(1)?,
        project_id: r.str(2)?,
        state: ClaimState::parse(&state)
            .ok_or_else(|| Error::internal(format!("bad claim state {state:?}")))?,
        resources: serde_json::from_str(&r.str(4)?)
            .map_err(|e| Error::internal(format!("claim resources: {e}")))?,
        description: r.str(5)?,
        generation: r.i64(6)?,
        created_at: rfc(r.i64(7)?),
        updated_at: rfc(r.i64(8)?),
    })
}

/// Reserves resources and records the claim, in the caller's transaction.
pub fn create_claim(
    w: &mut dyn Writer,
    tenant_id: &str,
    project_id: &str,
    amounts: &[(QuotaResource, i64)],
    description: &str,
) -> Result<QuotaClaim> {
    new_claim(w, tenant_id, project_id, amounts, description, ClaimState::Reserved)
}

/// A claim committed from the start: for a write that takes the resources
/// in the same transaction (the same checks as reserve-then-commit, half
/// the ledger updates).
pub fn create_committed_claim(
    w: &mut dyn Writer,
    tenant_id: &str,
    project_id: &str,
    amounts: &[(QuotaResource, i64)],
    description: &str,
) -> Result<QuotaClaim> {
    new_claim(w, tenant_id, project_id, amounts, description, ClaimState::Committed)
}

/// Claims committed from the start, one per entry (its amounts and
/// description), with one ledger update for their sum: the same admission as
/// taking them one after another in this transaction (all or nothing, since
/// amounts are positive), with a fraction of the statements. Returns the
/// claims' ids in the order given.
pub fn create_committed_claims(
    w: &mut dyn Writer,
    tenant_id: &str,
    project_id: &str,
    claims: &[(Vec<(QuotaResource, i64)>, String)],
) -> Result<Vec<String>> {
    let merged: Vec<BTreeMap<QuotaResource, i64>> =
        claims.iter().map(|(amounts, _)| merge(amounts)).collect::<Result<_>>()?;
    let mut total: BTreeMap<QuotaResource, i64> = BTreeMap::new();
    for (r, n) in merged.iter().flatten() {
        *total.entry(r.clone()).or_default() += n;
    }
    take(w, tenant_id, project_id, &total.into_iter().collect::<Vec<_>>(), ClaimState::Committed)?;
    let now = now_micros();
    let mut ids = Vec::with_capacity(claims.len());
    let mut rows = Vec::with_capacity(claims.len());
    for (amounts, (_, description)) in merged.iter().zip(claims) {
        let id = new_id();
        rows.push(claim_row(
            &id,
            tenant_id,
            project_id,
            ClaimState::Committed,
            amounts,
            description,
            now,
        )?);
        ids.push(id);
    }
    crate::insert_rows(w, &format!("INSERT INTO quota_claims ({CLAIM_COLS})"), &rows)?;
    Ok(ids)
}

/// One entry per resource, so a claim records what the ledger holds; every
/// amount positive.
fn merge(amounts: &[(QuotaResource, i64)]) -> Result<BTreeMap<QuotaResource, i64>> {
    let mut merged: BTreeMap<QuotaResource, i64> = BTreeMap::new();
    for (r, n) in amounts {
        if *n <= 0 {
            return Err(Error::invalid_value(format!("resources.{}", r.key()), "must be positive"));
        }
        *merged.entry(r.clone()).or_default() += n;
    }
    Ok(merged)
}

/// A `quota_claims` row, in [`CLAIM_COLS`] order.
fn claim_row(
    id: &str,
    tenant_id: &str,
    project_id: &str,
    state: ClaimState,
    amounts: &BTreeMap<QuotaResource, i64>,
    description: &str,
    now: i64,
) -> Result<Vec<Value>> {
    let resources: BTreeMap<String, i64> = amounts.iter().map(|(r, n)| (r.key(), *n)).collect();
    let json = serde_json::to_string(&resources).map_err(|e| Error::internal(e.to_string()))?;
    Ok(vec![
        id.into(),
        tenant_id.into(),
        project_id.into(),
        state.as_str().into(),
        json.into(),
        description.into(),
        1.into(),
        now.into(),
        now.into(),
    ])
}

fn new_claim(
    w: &mut dyn Writer,
    tenant_id: &str,
    project_id: &str,
    amounts: &[(QuotaResource, i64)],
    description: &str,
    state: ClaimState,
) -> Result<QuotaClaim> {
    let merged = merge(amounts)?;
    take(w, tenant_id, project_id, &merged.clone().into_iter().collect::<Vec<_>>(), state)?;
    let id = new_id();
    let row = claim_row(&id, tenant_id, project_id, state, &merged, description, now_micros())?;
    crate::insert_rows(w, &format!("INSERT INTO quota_claims ({CLAIM_COLS})"), &[row])?;
    get_claim(w, tenant_id, project_id, &id)
}

pub fn get_claim(
    r: &mut dyn Reader,
    tenant_id: &str,
    project_id: &str,
    id: &str,
) -> Result<QuotaClaim> {
    let rows = r.query(
        &format!("SELECT {CLAIM_COLS} FROM quota_claims WHERE tenant_id = ? AND project_id = ? AND id = ?"),
        vals![tenant_id, project_id, id],
    )?;
    rows.first().map(claim_from_row).transpose()?.ok_or_else(|| Error::not_found("quota claim", id))
}

pub fn list_claims(
    r: &mut dyn Reader,
    tenant_id: &str,
    project_id: &str,
) -> Result<Vec<QuotaClaim>> {
    r.query(
        &format!("SELECT {CLAIM_COLS} FROM quota_claims WHERE tenant_id = ? AND project_id = ? ORDER BY created_at, id"),
        vals![tenant_id, project_id],
    )?
    .iter()
    .map(claim_from_row)
    .collect()
}

/// Moves a claim to `to` if it is in `from`; the guard in the `UPDATE` makes
/// the ledger move exactly once however many requests race.
fn transition(
    w: &mut dyn Writer,
    tenant_id: &str,
    project_id: &str,
    id: &str,
    from: ClaimState,
    to: ClaimState,
) -> Result<bool> {
    let n = w.execute(
        "UPDATE quota_claims SET state = ?, generation = generation + 1, updated_at = ? \
         WHERE tenant_id = ? AND project_id = ? AND id = ? AND state = ?",
        vals![to.as_str(), now_micros(), tenant_id, project_id, id, from.as_str()],
    )?;
    Ok(n == 1)
}

/// Commits a reserved claim. Committing a committed claim changes nothing.
pub fn commit_claim(
    w: &mut dyn Writer,
    tenant_id: &str,
    project_id: &str,
    id: &str,
) -> Result<QuotaClaim> {
    // A lost race (another transaction moved the claim between our read and
    // our guarded UPDATE) re-reads and decides again; states only move
    // forward, so this ends.
    loop {
        let c = get_claim(w, tenant_id, project_id, id)?;
        match c.state {
            ClaimState::Committed => return Ok(c),
            ClaimState::Released => {
                return Err(Error::conflict("claim was released; it cannot be committed"))
            }
            ClaimState::Reserved => {
                if transition(
                    w,
                    tenant_id,
                    project_id,
                    id,
                    ClaimState::Reserved,
                    ClaimState::Committed,
                )? {
                    shift(w, &c, ClaimState::Reserved, Some(ClaimState::Committed))?;
                    return get_claim(w, tenant_id, project_id, id);
                }
            }
        }
    }
}

/// Releases a claim, returning its resources to every level. Releasing a
/// released claim changes nothing.
pub fn release_claim(
    w: &mut dyn Writer,
    tenant_id: &str,
    project_id: &str,
    id: &str,
) -> Result<QuotaClaim> {
    // As in commit_claim: a claim committed meanwhile is released from there.
    loop {
        let c = get_claim(w, tenant_id, project_id, id)?;
        match c.state {
            ClaimState::Released => return Ok(c),
            from @ (ClaimState::Reserved | ClaimState::Committed) => {
                if transition(w, tenant_id, project_id, id, from, ClaimState::Released)? {
                    shift(w, &c, from, None)?;
                    return get_claim(w, tenant_id, project_id, id);
                }
            }
        }
    }
}
