//! API tokens. Only a SHA-256 hash of the secret is stored.

use crate::backend::{Reader, Row, Writer};
use crate::{opt_rfc, rfc, vals};
use neocloud_common::{new_id, time::now_micros, Error, Result};
use neocloud_types::Token;

const COLS: &str =
    "id, user_id, tenant_id, name, prefix, expires_at, revoked_at, last_used_at, generation, created_at, updated_at";

fn from_row(r: &Row) -> Result<Token> {
    Ok(Token {
        id: r.str(0)?,
        user_id: r.str(1)?,
        tenant_id: r.opt_str(2)?,
        name: r.str(3)?,
        prefix: r.str(4)?,
        expires_at: opt_rfc(r.opt_i64(5)?),
        revoked_at: opt_rfc(r.opt_i64(6)?),
        last_used_at: opt_rfc(r.opt_i64(7)?),
        generation: r.i64(8)?,
        created_at: rfc(r.i64(9)?),
        updated_at: rfc(r.i64(10)?),
    })
}

pub struct NewToken<'a> {
    pub user_id: &'a str,
    pub tenant_id: Option<&'a str>,
    pub name: &'a str,
    pub secret_hash: &'a str,
    pub prefix: &'a str,
    pub expires_at: Option<i64>,
}

pub fn create(w: &mut dyn Writer, t: &NewToken<'_>) -> Result<Token> {
    let id = new_id();
    let now = now_micros();
    w.execute(
        "INSERT INTO api_tokens (id, user_id, tenant_id, name, secret_hash, prefix, expires_at, revoked_at, last_used_at, generation, created_at, updated_at) \
         VALUES (?, ?, ?, ?, ?, ?, ?, NULL, NULL, 1, ?, ?)",
        vals![&id, t.user_id, t.tenant_id, t.name, t.secret_hash, t.prefix, t.expires_at, now, now],
    )?;
    get(w, &id)
}

pub fn get(r: &mut dyn Reader, id: &str) -> Result<Token> {
    let rows = r.query(&format!("SELECT {COLS} FROM api_tokens WHERE id = ?"), vals![id])?;
    rows.first().map(from_row).transpose()?.ok_or_else(|| Error::not_found("token", id))
}

pub fn list_for_user(r: &mut dyn Reader, user_id: &str) -> Result<Vec<Token>> {
    r.query(
        &format!("SELECT {COLS} FROM api_tokens WHERE user_id = ? ORDER BY created_at, id"),
        vals![user_id],
    )?
    .iter()
    .map(from_row)
    .collect()
}

pub fn list_for_tenant(r: &mut dyn Reader, tenant_id: &str) -> Result<Vec<Token>> {
    r.query(
        &format!("SELECT {COLS} FROM api_tokens WHERE tenant_id = ? ORDER BY created_at, id"),
        vals![tenant_id],
    )?
    .iter()
    .map(from_row)
    .collect()
}

/// Revokes a token; revoking a revoked token changes nothing.
pub fn revoke(w: &mut dyn Writer, id: &str) -> Result<Token> {
    let now = now_micros();
    w.execute(
        "UPDATE api_tokens SET revoked_at = ?, generation = generation + 1, updated_at = ? WHERE id = ? AND revoked_at IS NULL",
        vals![now, now, id],
    )?;
    get(w, id)
}

/// The live token with this secret hash: not revoked, not expired.
/// Returns the token id and its user id.
pub fn authenticate(
    r: &mut dyn Reader,
    secret_hash: &str,
    now: i64,
) -> Result<Option<(String, String)>> {
    let rows = r.query(
        "SELECT id, user_id, expires_at, revoked_at FROM api_tokens WHERE secret_hash = ?",
        vals![secret_hash],
    )?;
    let Some(row) = rows.first() else { return Ok(None) };
    if row.opt_i64(3)?.is_some() {
        return Ok(None);
    }
    if row.opt_i64(2)?.is_some_and(|exp| exp <= now) {
        return Ok(None);
    }
    Ok(Some((row.str(0)?, row.str(1)?)))
}

/// Records last use, batched by the caller.
pub fn touch(w: &mut dyn Writer, used: &[(String, i64)]) -> Result<()> {
    for (id, at) in used {
        w.execute(
            "UPDATE api_tokens SET last_used_at = ? WHERE id = ? AND (last_used_at IS NULL OR last_used_at < ?)",
            vals![*at, id, *at],
        )?;
    }
    Ok(())
}
