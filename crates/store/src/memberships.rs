//! Memberships: a role for a user in the provider, a tenant or a project.

use crate::backend::{Reader, Row, Writer};
use crate::{check_generation, rfc, vals};
use neocloud_authz::{Grant, GrantScope, Role};
use neocloud_common::{new_id, time::now_micros, Error, Result};
use neocloud_types::Membership;

const COLS: &str = "id, user_id, role, tenant_id, project_id, generation, created_at, updated_at";

fn from_row(r: &Row) -> Result<Membership> {
    let role = r.str(2)?;
    Ok(Membership {
        id: r.str(0)?,
        user_id: r.str(1)?,
        role: Role::parse(&role)
            .ok_or_else(|| Error::internal(format!("unknown role {role:?} in store")))?,
        tenant_id: r.opt_str(3)?,
        project_id: r.opt_str(4)?,
        generation: r.i64(5)?,
        created_at: rfc(r.i64(6)?),
        updated_at: rfc(r.i64(7)?),
    })
}

/// Creates a membership. Provider roles only in the provider scope, tenant
/// roles only in a tenant or project.
pub fn create(
    w: &mut dyn Writer,
    user_id: &str,
    role: Role,
    tenant_id: Option<&str>,
    project_id: Option<&str>,
) -> Result<Membership> {
    if role.is_provider() != tenant_id.is_none() {
        return Err(Error::invalid_value(
            "role",
            if tenant_id.is_none() {
                "provider users take provider-admin or provider-viewer"
            } else {
                "tenant users take tenant-admin, tenant-member or tenant-viewer"
            },
        ));
    }
    let id = new_id();
    let now = now_micros();
    let scope_key = project_id.or(tenant_id).unwrap_or("provider");
    w.execute(
        &format!("INSERT INTO memberships ({COLS}, scope_key) VALUES (?, ?, ?, ?, ?, 1, ?, ?, ?)"),
        vals![&id, user_id, role.as_str(), tenant_id, project_id, now, now, scope_key],
    )
    .map_err(|e| {
        e.unique_as(Error::AlreadyExists {
            kind: "membership",
            field: "user".into(),
            value: format!("{user_id} in {scope_key}"),
        })
    })?;
    get(w, tenant_id, &id)
}

pub fn get(r: &mut dyn Reader, tenant_id: Option<&str>, id: &str) -> Result<Membership> {
    let rows = r.query(
        &format!(
            "SELECT {COLS} FROM memberships WHERE id = ? AND COALESCE(tenant_id, 'provider') = ?"
        ),
        vals![id, tenant_id.unwrap_or("provider")],
    )?;
    rows.first().map(from_row).transpose()?.ok_or_else(|| Error::not_found("membership", id))
}

pub fn list(r: &mut dyn Reader, tenant_id: &str) -> Result<Vec<Membership>> {
    r.query(
        &format!("SELECT {COLS} FROM memberships WHERE tenant_id = ? ORDER BY created_at, id"),
        vals![tenant_id],
    )?
    .iter()
    .map(from_row)
    .collect()
}

pub fn update_role(
    w: &mut dyn Writer,
    tenant_id: &str,
    id: &str,
    role: Role,
    generation: i64,
) -> Result<Membership> {
    if role.is_provider() {
        return Err(Error::invalid_value(
            "role",
            "tenant users take tenant-admin, tenant-member or tenant-viewer",
        ));
    }
    let n = w.execute(
        "UPDATE memberships SET role = ?, generation = generation + 1, updated_at = ? WHERE tenant_id = ? AND id = ? AND generation = ?",
        vals![role.as_str(), now_micros(), tenant_id, id, generation],
    )?;
    check_generation(
        w,
        n,
        "memberships",
        "membership",
        id,
        generation,
        Some(("tenant_id", tenant_id)),
    )?;
    get(w, Some(tenant_id), id)
}

pub fn delete(w: &mut dyn Writer, tenant_id: &str, id: &str) -> Result<()> {
    let n =
        w.execute("DELETE FROM memberships WHERE tenant_id = ? AND id = ?", vals![tenant_id, id])?;
    if n == 0 {
        return Err(Error::not_found("membership", id));
    }
    Ok(())
}

/// The grants of a user, for authorization.
pub fn grants_for_user(r: &mut dyn Reader, user_id: &str) -> Result<Vec<Grant>> {
    r.query(&format!("SELECT {COLS} FROM memberships WHERE user_id = ?"), vals![user_id])?
        .iter()
        .map(|row| {
            let m = from_row(row)?;
            let scope = match (m.tenant_id, m.project_id) {
                (None, _) => GrantScope::Provider,
                (Some(tenant_id), None) => GrantScope::Tenant { tenant_id },
                (Some(tenant_id), Some(project_id)) => {
                    GrantScope::Project { tenant_id, project_id }
                }
            };
            Ok(Grant { role: m.role, scope })
        })
        .collect()
}
