//! Projects, inside tenants.

use crate::backend::{Reader, Row, Writer};
use crate::{check_generation, rfc, vals};
use neocloud_common::{new_id, time::now_micros, Error, NameOrId, Result};
use neocloud_types::{Project, ProjectCreate, ProjectUpdate};

const COLS: &str = "id, tenant_id, name, description, generation, created_at, updated_at";

fn from_row(r: &Row) -> Result<Project> {
    Ok(Project {
        id: r.str(0)?,
        tenant_id: r.str(1)?,
        name: r.str(2)?,
        description: r.str(3)?,
        generation: r.i64(4)?,
        created_at: rfc(r.i64(5)?),
        updated_at: rfc(r.i64(6)?),
    })
}

/// Finds a project of `tenant_id` by id or name.
pub fn lookup(r: &mut dyn Reader, tenant_id: &str, key: &NameOrId) -> Result<Option<Project>> {
    let rows = match key {
        NameOrId::Id(id) => r.query(
            &format!("SELECT {COLS} FROM projects WHERE tenant_id = ? AND id = ?"),
            vals![tenant_id, id],
        )?,
        NameOrId::Name(n) => r.query(
            &format!("SELECT {COLS} FROM projects WHERE tenant_id = ? AND name = ?"),
            vals![tenant_id, n.as_str()],
        )?,
    };
    rows.first().map(from_row).transpose()
}

pub fn get(r: &mut dyn Reader, tenant_id: &str, id: &str) -> Result<Project> {
    lookup(r, tenant_id, &NameOrId::Id(id.to_string()))?
        .ok_or_else(|| Error::not_found("project", id))
}

pub fn list(r: &mut dyn Reader, tenant_id: &str) -> Result<Vec<Project>> {
    r.query(
        &format!("SELECT {COLS} FROM projects WHERE tenant_id = ? ORDER BY name"),
        vals![tenant_id],
    )?
    .iter()
    .map(from_row)
    .collect()
}

pub fn create(w: &mut dyn Writer, tenant_id: &str, p: &ProjectCreate) -> Result<Project> {
    let id = new_id();
    let now = now_micros();
    w.execute(
        &format!("INSERT INTO projects ({COLS}) VALUES (?, ?, ?, ?, 1, ?, ?)"),
        vals![&id, tenant_id, p.name.as_str(), p.description.clone().unwrap_or_default(), now, now],
    )
    .map_err(|e| {
        e.unique_as(Error::AlreadyExists {
            kind: "project",
            field: "name".into(),
            value: p.name.to_string(),
        })
    })?;
    w.execute(
        "INSERT INTO quota_scopes (id, kind, tenant_id, generation, created_at, updated_at) VALUES (?, 'project', ?, 1, ?, ?)",
        vals![&id, tenant_id, now, now],
    )?;
    get(w, tenant_id, &id)
}

pub fn update(w: &mut dyn Writer, tenant_id: &str, id: &str, p: &ProjectUpdate) -> Result<Project> {
    let n = w.execute(
        "UPDATE projects SET description = COALESCE(?, description), generation = generation + 1, updated_at = ? \
         WHERE tenant_id = ? AND id = ? AND generation = ?",
        vals![&p.description, now_micros(), tenant_id, id, p.generation],
    )?;
    check_generation(
        w,
        n,
        "projects",
        "project",
        id,
        p.generation,
        Some(("tenant_id", tenant_id)),
    )?;
    get(w, tenant_id, id)
}

/// Deletes a project that holds no reserved or committed quota.
pub fn delete(w: &mut dyn Writer, tenant_id: &str, id: &str) -> Result<()> {
    let active = w.query(
        "SELECT COUNT(*) FROM quota_claims WHERE project_id = ? AND state <> 'released'",
        vals![id],
    )?;
    let n = active.first().map(|r| r.i64(0)).transpose()?.unwrap_or(0);
    if n > 0 {
        return Err(Error::conflict(format!(
            "project holds {n} active quota claim(s): release them first"
        )));
    }
    w.execute("DELETE FROM quota_claims WHERE project_id = ?", vals![id])?;
    w.execute("DELETE FROM memberships WHERE project_id = ?", vals![id])?;
    w.execute("DELETE FROM quota_usage WHERE scope_id = ?", vals![id])?;
    w.execute("DELETE FROM quota_scopes WHERE id = ?", vals![id])?;
    let n =
        w.execute("DELETE FROM projects WHERE tenant_id = ? AND id = ?", vals![tenant_id, id])?;
    if n == 0 {
        return Err(Error::not_found("project", id));
    }
    Ok(())
}
