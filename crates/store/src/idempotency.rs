//! Stored results of create requests that carried an `Idempotency-Key`.
//! The record is written in the same transaction as the object it created,
//! so a retry finds either nothing (and creates) or the first result.

use crate::backend::{DbError, Reader, Writer};
use crate::vals;
use neocloud_common::{time::now_micros, Result};

pub struct Stored {
    pub request_hash: String,
    pub status: u16,
    pub response: String,
}

pub fn lookup(r: &mut dyn Reader, scope: &str, key: &str) -> Result<Option<Stored>> {
    let rows = r.query(
        "SELECT request_hash, status, response FROM idempotency_keys WHERE scope = ? AND key = ?",
        vals![scope, key],
    )?;
    rows.first()
        .map(|r| {
            Ok(Stored { request_hash: r.str(0)?, status: r.i64(1)? as u16, response: r.str(2)? })
        })
        .transpose()
}

/// Records a result. A unique violation means a concurrent request with the
/// same key won; the caller rolls back and answers with that one's result.
pub fn insert(w: &mut dyn Writer, scope: &str, key: &str, s: &Stored) -> Result<(), DbError> {
    w.execute(
        "INSERT INTO idempotency_keys (scope, key, request_hash, status, response, created_at) VALUES (?, ?, ?, ?, ?, ?)",
        vals![scope, key, &s.request_hash, s.status as i64, &s.response, now_micros()],
    )
    .map(|_| ())
}

/// Forgets keys older than `before` (microseconds); returns how many.
pub fn expire(w: &mut dyn Writer, before: i64) -> Result<u64> {
    Ok(w.execute("DELETE FROM idempotency_keys WHERE created_at < ?", vals![before])?)
}
