//! The placement log: what a placement write changed, as the effects its
//! own replica applied to its engine, so that another replica's engine
//! replays them instead of rebuilding from every node and allocation. A
//! row says: the placement state at `generation` is the state at `since`
//! with `effects` applied. Only writes whose effects say all they changed
//! are logged; any other write leaves a gap, and a replica that meets a gap
//! rebuilds (the store stays the truth). The effects are the server's to
//! encode; the store keeps them as text.

use crate::backend::{Reader, Writer};
use crate::vals;
use neocloud_common::Result;

/// Rows kept: a replica further behind rebuilds.
pub const KEEP: i64 = 1024;

/// One logged write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub since: i64,
    pub generation: i64,
    pub effects: String,
}

/// Logs the write that moved the generation from `since` to `generation`
/// (in its transaction), and forgets rows older than [`KEEP`].
pub fn record(w: &mut dyn Writer, since: i64, generation: i64, effects: &str) -> Result<()> {
    w.execute(
        "INSERT INTO placement_log (generation, since, effects) VALUES (?, ?, ?)",
        vals![generation, since, effects],
    )?;
    w.execute("DELETE FROM placement_log WHERE generation <= ?", vals![generation - KEEP])?;
    Ok(())
}

/// The rows after generation `after` up to `upto`, in order.
pub fn between(r: &mut dyn Reader, after: i64, upto: i64) -> Result<Vec<Entry>> {
    r.query(
        "SELECT since, generation, effects FROM placement_log WHERE generation > ? AND generation <= ? ORDER BY generation",
        vals![after, upto],
    )?
    .iter()
    .map(|row| Ok(Entry { since: row.i64(0)?, generation: row.i64(1)?, effects: row.str(2)? }))
    .collect()
}
