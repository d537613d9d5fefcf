//! Users: tenant users (`tenant_id` set) and provider users (`tenant_id` null).

use crate::backend::{Reader, Row, Writer};
use crate::{check_generation, memberships, rfc, vals};
use neocloud_authz::Role;
use neocloud_common::{new_id, time::now_micros, Error, NameOrId, Result};
use neocloud_types::{User, UserCreate, UserUpdate};

const COLS: &str = "id, tenant_id, name, display_name, email, generation, created_at, updated_at";

fn from_row(r: &Row) -> Result<User> {
    Ok(User {
        id: r.str(0)?,
        tenant_id: r.opt_str(1)?,
        name: r.str(2)?,
        display_name: r.str(3)?,
        email: r.str(4)?,
        generation: r.i64(5)?,
        created_at: rfc(r.i64(6)?),
        updated_at: rfc(r.i64(7)?),
    })
}

fn scope_key(tenant_id: Option<&str>) -> &str {
    tenant_id.unwrap_or("provider")
}

/// Finds a user of `tenant_id` (`None`: a provider user) by id or name.
pub fn lookup(r: &mut dyn Reader, tenant_id: Option<&str>, key: &NameOrId) -> Result<Option<User>> {
    let rows = match key {
        NameOrId::Id(id) => r.query(
            &format!("SELECT {COLS} FROM users WHERE scope_key = ? AND id = ?"),
            vals![scope_key(tenant_id), id],
        )?,
        NameOrId::Name(n) => r.query(
            &format!("SELECT {COLS} FROM users WHERE scope_key = ? AND name = ?"),
            vals![scope_key(tenant_id), n.as_str()],
        )?,
    };
    rows.first().map(from_row).transpose()
}

/// A user by id, whatever its scope.
pub fn get_any(r: &mut dyn Reader, id: &str) -> Result<User> {
    let rows = r.query(&format!("SELECT {COLS} FROM users WHERE id = ?"), vals![id])?;
    rows.first().map(from_row).transpose()?.ok_or_else(|| Error::not_found("user", id))
}

pub fn list(r: &mut dyn Reader, tenant_id: Option<&str>) -> Result<Vec<User>> {
    r.query(
        &format!("SELECT {COLS} FROM users WHERE scope_key = ? ORDER BY name"),
        vals![scope_key(tenant_id)],
    )?
    .iter()
    .map(from_row)
    .collect()
}

/// Creates a user and, where `role` is given, its membership in the user's
/// scope (the tenant, or the provider).
pub fn create(w: &mut dyn Writer, tenant_id: Option<&str>, p: &UserCreate) -> Result<User> {
    let id = new_id();
    let now = now_micros();
    w.execute(
        "INSERT INTO users (id, tenant_id, scope_key, name, display_name, email, generation, created_at, updated_at) \
         VALUES (?, ?, ?, ?, ?, ?, 1, ?, ?)",
        vals![
            &id,
            tenant_id,
            scope_key(tenant_id),
            p.name.as_str(),
            p.display_name.clone().unwrap_or_else(|| p.name.to_string()),
            p.email.clone().unwrap_or_default(),
            now,
            now
        ],
    )
    .map_err(|e| e.unique_as(Error::AlreadyExists { kind: "user", field: "name".into(), value: p.name.to_string() }))?;
    if let Some(role) = p.role {
        memberships::create(w, &id, role, tenant_id, None)?;
    }
    get_any(w, &id)
}

pub fn update(
    w: &mut dyn Writer,
    tenant_id: Option<&str>,
    id: &str,
    p: &UserUpdate,
) -> Result<User> {
    let n = w.execute(
        "UPDATE users SET display_name = COALESCE(?, display_name), email = COALESCE(?, email), \
         generation = generation + 1, updated_at = ? WHERE scope_key = ? AND id = ? AND generation = ?",
        vals![&p.display_name, &p.email, now_micros(), scope_key(tenant_id), id, p.generation],
    )?;
    check_generation(
        w,
        n,
        "users",
        "user",
        id,
        p.generation,
        Some(("scope_key", scope_key(tenant_id))),
    )?;
    get_any(w, id)
}

/// Deletes a user with its memberships and tokens. The last provider admin
/// cannot be deleted: that would lock the provider out.
pub fn delete(w: &mut dyn Writer, tenant_id: Option<&str>, id: &str) -> Result<()> {
    if tenant_id.is_none() {
        // Lock the admins' memberships (PostgreSQL), so two admins deleted
        // concurrently cannot both see the other one as remaining.
        let rows = w.query(
            &format!(
                "SELECT user_id FROM memberships WHERE role = ? AND scope_key = 'provider'{}",
                w.kind().for_update()
            ),
            vals![Role::ProviderAdmin.as_str()],
        )?;
        let admins = rows.len();
        let this = rows.iter().filter(|r| r.str(0).is_ok_and(|u| u == id)).count();
        if this > 0 && admins <= 1 {
            return Err(Error::conflict("cannot delete the last provider-admin"));
        }
    }
    w.execute("DELETE FROM memberships WHERE user_id = ?", vals![id])?;
    w.execute("DELETE FROM api_tokens WHERE user_id = ?", vals![id])?;
    let n = w.execute(
        "DELETE FROM users WHERE scope_key = ? AND id = ?",
        vals![scope_key(tenant_id), id],
    )?;
    if n == 0 {
        return Err(Error::not_found("user", id));
    }
    Ok(())
}
