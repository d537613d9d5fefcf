//! Small key-value facts about the installation (bootstrap state).

use crate::backend::{DbError, Reader, Writer};
use crate::vals;
use neocloud_common::Result;

pub fn get(r: &mut dyn Reader, key: &str) -> Result<Option<String>> {
    let rows = r.query("SELECT value FROM meta WHERE key = ?", vals![key])?;
    rows.first().map(|r| r.str(0)).transpose()
}

/// Inserts a key; a unique violation means it was already set.
pub fn insert(w: &mut dyn Writer, key: &str, value: &str) -> Result<(), DbError> {
    w.execute("INSERT INTO meta (key, value) VALUES (?, ?)", vals![key, value]).map(|_| ())
}
