//! Tenants.

use crate::backend::{Reader, Row, Writer};
use crate::{check_generation, rfc, vals};
use neocloud_common::{new_id, time::now_micros, Error, NameOrId, Result};
use neocloud_types::{Tenant, TenantCreate, TenantUpdate};

const COLS: &str =
    "id, name, display_name, description, suspended, generation, created_at, updated_at";

fn from_row(r: &Row) -> Result<Tenant> {
    Ok(Tenant {
        id: r.str(0)?,
        name: r.str(1)?,
        display_name: r.str(2)?,
        description: r.str(3)?,
        suspended: r.bool(4)?,
        generation: r.i64(5)?,
        created_at: rfc(r.i64(6)?),
        updated_at: rfc(r.i64(7)?),
    })
}

pub fn lookup(r: &mut dyn Reader, key: &NameOrId) -> Result<Option<Tenant>> {
    let rows = match key {
        NameOrId::Id(id) => {
            r.query(&format!("SELECT {COLS} FROM tenants WHERE id = ?"), vals![id])?
        }
        NameOrId::Name(n) => {
            r.query(&format!("SELECT {COLS} FROM tenants WHERE name = ?"), vals![n.as_str()])?
        }
    };
    rows.first().map(from_row).transpose()
}

pub fn get(r: &mut dyn Reader, id: &str) -> Result<Tenant> {
    lookup(r, &NameOrId::Id(id.to_string()))?.ok_or_else(|| Error::not_found("tenant", id))
}

pub fn list(r: &mut dyn Reader) -> Result<Vec<Tenant>> {
    r.query(&format!("SELECT {COLS} FROM tenants ORDER BY name"), &[])?
        .iter()
        .map(from_row)
        .collect()
}

pub fn create(w: &mut dyn Writer, p: &TenantCreate) -> Result<Tenant> {
    let id = new_id();
    let now = now_micros();
    let name = p.name.as_str();
    w.execute(
        &format!("INSERT INTO tenants ({COLS}) VALUES (?, ?, ?, ?, 0, 1, ?, ?)"),
        vals![
            &id,
            name,
            p.display_name.clone().unwrap_or_else(|| name.to_string()),
            p.description.clone().unwrap_or_default(),
            now,
            now
        ],
    )
    .map_err(|e| {
        e.unique_as(Error::AlreadyExists {
            kind: "tenant",
            field: "name".into(),
            value: name.into(),
        })
    })?;
    w.execute(
        "INSERT INTO quota_scopes (id, kind, tenant_id, generation, created_at, updated_at) VALUES (?, 'tenant', ?, 1, ?, ?)",
        vals![&id, &id, now, now],
    )?;
    get(w, &id)
}

pub fn update(w: &mut dyn Writer, id: &str, p: &TenantUpdate) -> Result<Tenant> {
    let n = w.execute(
        "UPDATE tenants SET display_name = COALESCE(?, display_name), description = COALESCE(?, description), \
         suspended = COALESCE(?, suspended), generation = generation + 1, updated_at = ? WHERE id = ? AND generation = ?",
        vals![&p.display_name, &p.description, p.suspended, now_micros(), id, p.generation],
    )?;
    check_generation(w, n, "tenants", "tenant", id, p.generation, None)?;
    get(w, id)
}

/// Deletes an empty tenant: no projects and no users left.
pub fn delete(w: &mut dyn Writer, id: &str) -> Result<()> {
    let counts = w.query(
        "SELECT (SELECT COUNT(*) FROM projects WHERE tenant_id = ?), (SELECT COUNT(*) FROM users WHERE tenant_id = ?)",
        vals![id, id],
    )?;
    let (projects, users) = counts
        .first()
        .map(|r| Ok::<_, Error>((r.i64(0)?, r.i64(1)?)))
        .transpose()?
        .unwrap_or((0, 0));
    if projects > 0 || users > 0 {
        return Err(Error::conflict(format!(
            "tenant is not empty: delete its {projects} project(s) and {users} user(s) first"
        )));
    }
    w.execute("DELETE FROM memberships WHERE tenant_id = ?", vals![id])?;
    w.execute("DELETE FROM quota_usage WHERE scope_id = ?", vals![id])?;
    w.execute("DELETE FROM quota_scopes WHERE id = ?", vals![id])?;
    let n = w.execute("DELETE FROM tenants WHERE id = ?", vals![id])?;
    if n == 0 {
        return Err(Error::not_found("tenant", id));
    }
    Ok(())
}
