//! What allocations hold of nodes, as bit masks: per node and word of 8
//! GPUs a bit per (GPU, memory slice). `allocation_holds` says which bits
//! each allocation holds, `node_units` which bits anyone holds; a hold is
//! taken by a conditional update that changes no row where one of its bits
//! is held already, so two commits never hold a unit twice, whatever
//! replica planned them (on PostgreSQL the later update waits for the
//! earlier commit and checks its condition again on the row it left).

use crate::backend::{Row, Value, Writer};
use crate::{insert_rows, insert_rows_then, placeholders, vals};
use neocloud_common::{Error, Result};
use std::collections::BTreeMap;

/// A node's units per word: GPUs 8w..8w+7, 8 memory slices each.
const GPUS_PER_WORD: u8 = 8;
const SLICES: u8 = 8;
/// (node id, GPU, memory slice): one unit.
pub type Unit = (String, u8, u8);

/// Nodes per conditional update's `IN` list.
const NODES_PER_UPDATE: usize = 500;

fn conflict() -> Error {
    Error::conflict(
        "the chosen capacity was taken concurrently (by another control-plane replica); retry",
    )
}

/// Masks per (node, word) of `units` ((node, GPU, memory slice) each).
fn masks(units: &[Unit]) -> Result<BTreeMap<(String, i64), i64>> {
    let mut out: BTreeMap<(String, i64), i64> = BTreeMap::new();
    for (node, gpu, slice) in units {
        if *slice >= SLICES {
            return Err(Error::internal(format!("memory slice {slice} of GPU {gpu} out of range")));
        }
        let bit = u32::from(gpu % GPUS_PER_WORD) * u32::from(SLICES) + u32::from(*slice);
        let word = i64::from(gpu / GPUS_PER_WORD);
        let mask = out.entry((node.clone(), word)).or_default();
        if *mask & (1i64 << bit) != 0 {
            // One allocation holding a unit twice: a plan that is wrong.
            return Err(Error::internal(format!(
                "unit GPU {gpu} slice {slice} of node {node} placed twice in one allocation"
            )));
        }
        *mask |= 1i64 << bit;
    }
    Ok(out)
}

/// Holds `units` for each allocation of `new` ((allocation id, units)), or
/// fails with a conflict (nothing the caller's transaction keeps) where any
/// unit is held already, by another allocation or twice among these (an
/// allocation placing one unit twice is the planner's error: internal).
pub(crate) fn take(w: &mut dyn Writer, new: &[(&str, &[Unit])]) -> Result<()> {
    let mut rows = Vec::new();
    let mut words = BTreeMap::new();
    // (word, mask) -> nodes: a conditional update each (a bare-metal
    // create call's nodes share one: every GPU of every node).
    let mut groups: BTreeMap<(i64, i64), Vec<String>> = BTreeMap::new();
    for (id, units) in new {
        for ((node, word), mask) in masks(units)? {
            rows.push(vec![(*id).into(), node.as_str().into(), word.into(), mask.into()]);
            words.insert((node.clone(), word), ());
            groups.entry((word, mask)).or_default().push(node);
        }
    }
    // A node deleted since the plan read it (by another replica): its
    // foreign key fails, a conflict too.
    insert_rows(w, "INSERT INTO allocation_holds (allocation_id, node_id, word, mask)", &rows)
        .map_err(|e| e.stale_as(conflict()))?;
    let fresh: Vec<Vec<Value>> =
        words.into_keys().map(|(n, word)| vec![n.into(), word.into(), 0.into()]).collect();
    insert_rows_then(
        w,
        "INSERT INTO node_units (node_id, word, held)",
        &fresh,
        " ON CONFLICT (node_id, word) DO NOTHING",
    )?;
    for ((word, mask), nodes) in groups {
        for chunk in nodes.chunks(NODES_PER_UPDATE) {
            let sql = format!(
                "UPDATE node_units SET held = held | ? WHERE word = ? AND (held & ?) = 0 AND node_id IN {}",
                placeholders(chunk.len())
            );
            let mut params: Vec<Value> = vals![mask, word, mask].to_vec();
            params.extend(chunk.iter().map(|n| n.as_str().into()));
            // A node twice in one list (two holds of the same bits) is
            // updated once: fewer rows than asked, a conflict too.
            if w.execute(&sql, &params)? != chunk.len() as u64 {
                return Err(conflict());
            }
        }
    }
    Ok(())
}

/// Frees what allocation `id` holds (nothing if it holds nothing), its
/// words updated in (node, word) order, as [`take`]'s lists lock them.
pub(crate) fn free(w: &mut dyn Writer, id: &str) -> Result<()> {
    let held = w.query(
        "SELECT node_id, word, mask FROM allocation_holds WHERE allocation_id = ? ORDER BY node_id, word",
        vals![id],
    )?;
    for r in &held {
        let (node, word, mask) = (r.str(0)?, r.i64(1)?, r.i64(2)?);
        w.execute(
            "UPDATE node_units SET held = held & ? WHERE node_id = ? AND word = ?",
            vals![!mask, node, word],
        )?;
    }
    w.execute("DELETE FROM allocation_holds WHERE allocation_id = ?", vals![id])?;
    Ok(())
}

/// Whether any allocation holds anything of node `id`.
pub(crate) fn node_held(w: &mut dyn Writer, id: &str) -> Result<bool> {
    let rows = w.query("SELECT COUNT(*) FROM allocation_holds WHERE node_id = ?", vals![id])?;
    Ok(rows.first().map(|r| r.i64(0)).transpose()?.unwrap_or(0) > 0)
}

/// Forgets a node's (empty) words, before the node is deleted.
pub(crate) fn forget_node(w: &mut dyn Writer, id: &str) -> Result<()> {
    w.execute("DELETE FROM node_units WHERE node_id = ?", vals![id])?;
    Ok(())
}

/// (GPU, memory slice) units held in all: by the allocations' records and
/// by the nodes' words (equal unless the store is inconsistent).
pub fn units_held(r: &mut dyn crate::Reader) -> Result<(u64, u64)> {
    let ones = |rows: Vec<Row>| -> Result<u64> {
        rows.iter().try_fold(0u64, |n, r| Ok(n + u64::from(r.i64(0)?.count_ones())))
    };
    let by_allocation = ones(r.query("SELECT mask FROM allocation_holds", &[])?)?;
    let by_node = ones(r.query("SELECT held FROM node_units", &[])?)?;
    Ok((by_allocation, by_node))
}

#[cfg(test)]
mod tests {
    use super::masks;

    #[test]
    fn units_map_to_their_word_and_bit() {
        let u = |g: u8, s: u8| ("n".to_string(), g, s);
        let m = masks(&[u(0, 0), u(0, 7), u(1, 0), u(7, 7), u(8, 0), u(9, 3)]).unwrap();
        assert_eq!(m[&("n".to_string(), 0)], 1 | 1 << 7 | 1 << 8 | i64::MIN);
        assert_eq!(m[&("n".to_string(), 1)], 1 | 1 << 11);
        let whole: Vec<_> = (0..8).flat_map(|g| (0..8).map(move |s| u(g, s))).collect();
        assert_eq!(masks(&whole).unwrap()[&("n".to_string(), 0)], -1, "a whole node: every bit");
        assert!(masks(&[u(0, 8)]).is_err(), "no ninth slice");
        assert!(masks(&[u(2, 3), u(2, 3)]).is_err(), "a unit twice in one allocation");
    }
}
