//! Fabrics: the provider's document, the allocation ledger, the cabling
//! index and what each switch was last given.
//!
//! Every change to what a fabric must carry (the document, or a tenant's
//! VPC, network, attachment, rule or floating IP) first calls
//! [`lock_intent`]: it bumps the fabric's intent generation and so holds the
//! fabric's row until commit, which serializes the fabric's writers (the
//! ledger is read, extended and written back under that lock). Lock order:
//! quota rows, placement row, fabric row, audit heads.

use crate::backend::{Reader, Row, Writer};
use crate::{rfc, vals};
use neocloud_common::{new_id, time::now_micros, Error, NameOrId, Result};
use neocloud_types::FabricSpec;

/// A fabric as stored. `ledger`: an InfiniBand fabric's JSON PKey ledger
/// (an Ethernet fabric's is kept by entry: [`ledger_entries`]; its
/// `ledger` is empty, or an older release's whole ledger not yet moved).
#[derive(Debug, Clone)]
pub struct FabricRecord {
    pub id: String,
    pub name: String,
    pub kind: String,
    pub spec: FabricSpec,
    pub ledger: String,
    pub intent_generation: i64,
    /// Changed by every write of the intent (see [`lock_intent`]).
    pub intent_token: String,
    pub generation: i64,
    pub created_at: String,
    pub updated_at: String,
}

const COLS: &str = "f.id, f.name, f.kind, f.spec, f.ledger, s.intent_generation, f.generation, \
    f.created_at, f.updated_at, s.intent_token";
/// The fabric and its state (`fabric_state`: what changes with every write
/// and pass, kept apart from the document).
const FROM: &str = "fabrics f JOIN fabric_state s ON s.fabric_id = f.id";

fn from_row(r: &Row) -> Result<FabricRecord> {
    let spec = r.str(3)?;
    Ok(FabricRecord {
        id: r.str(0)?,
        name: r.str(1)?,
        kind: r.str(2)?,
        spec: serde_json::from_str(&spec)
            .map_err(|e| Error::internal(format!("stored fabric spec: {e}")))?,
        ledger: r.str(4)?,
        intent_generation: r.i64(5)?,
        generation: r.i64(6)?,
        created_at: rfc(r.i64(7)?),
        updated_at: rfc(r.i64(8)?),
        intent_token: r.str(9)?,
    })
}

fn to_json(spec: &FabricSpec) -> Result<String> {
    serde_json::to_string(spec).map_err(|e| Error::internal(format!("fabric spec: {e}")))
}

pub fn lookup(r: &mut dyn Reader, key: &NameOrId) -> Result<Option<FabricRecord>> {
    let rows = match key {
        NameOrId::Id(id) => {
            r.query(&format!("SELECT {COLS} FROM {FROM} WHERE f.id = ?"), vals![id])?
        }
        NameOrId::Name(n) => {
            r.query(&format!("SELECT {COLS} FROM {FROM} WHERE f.name = ?"), vals![n.as_str()])?
        }
    };
    rows.first().map(from_row).transpose()
}

pub fn get(r: &mut dyn Reader, id: &str) -> Result<FabricRecord> {
    lookup(r, &NameOrId::Id(id.to_string()))?.ok_or_else(|| Error::not_found("fabric", id))
}

pub fn list(r: &mut dyn Reader) -> Result<Vec<FabricRecord>> {
    r.query(&format!("SELECT {COLS} FROM {FROM} ORDER BY f.name"), &[])?
        .iter()
        .map(from_row)
        .collect()
}

pub fn create(
    w: &mut dyn Writer,
    name: &str,
    kind: &str,
    spec: &FabricSpec,
    ledger: &str,
) -> Result<FabricRecord> {
    let id = new_id();
    let now = now_micros();
    w.execute(
        "INSERT INTO fabrics (id, name, kind, spec, ledger, generation, created_at, updated_at) \
         VALUES (?, ?, ?, ?, ?, 1, ?, ?)",
        vals![&id, name, kind, to_json(spec)?, ledger, now, now],
    )
    .map_err(|e| {
        e.unique_as(Error::AlreadyExists {
            kind: "fabric",
            field: "name".into(),
            value: name.to_string(),
        })
    })?;
    w.execute(
        "INSERT INTO fabric_state (fabric_id, intent_generation, intent_token) VALUES (?, 1, ?)",
        vals![&id, new_id()],
    )?;
    get(w, &id)
}

/// Replaces the document of a fabric whose intent is locked (see
/// [`lock_intent`]), checking the generation the caller read.
pub fn replace(w: &mut dyn Writer, id: &str, expected: i64, spec: &FabricSpec) -> Result<()> {
    let n = w.execute(
        "UPDATE fabrics SET spec = ?, generation = generation + 1, updated_at = ? WHERE id = ? AND generation = ?",
        vals![to_json(spec)?, now_micros(), id, expected],
    )?;
    crate::check_generation(w, n, "fabrics", "fabric", id, expected, None)
}

/// Deletes a fabric no VPC uses.
pub fn delete(w: &mut dyn Writer, id: &str) -> Result<()> {
    lock_intent(w, id)?;
    let rows = w.query("SELECT COUNT(*) FROM vpcs WHERE fabric_id = ?", vals![id])?;
    if rows.first().map(|r| r.i64(0)).transpose()?.unwrap_or(0) > 0 {
        return Err(Error::conflict("tenant VPCs use this fabric: they must be deleted first"));
    }
    w.execute("DELETE FROM fabric_links WHERE fabric_id = ?", vals![id])?;
    w.execute("DELETE FROM switch_states WHERE fabric_id = ?", vals![id])?;
    w.execute("DELETE FROM fabric_ledger WHERE fabric_id = ?", vals![id])?;
    w.execute("DELETE FROM fabric_state WHERE fabric_id = ?", vals![id])?;
    w.execute("DELETE FROM fabrics WHERE id = ?", vals![id])?;
    Ok(())
}

/// A fabric's intent, locked for this transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntentLock {
    /// The intent generation this write makes.
    pub generation: i64,
    /// The token of the intent as it was before this write.
    pub previous_token: String,
    /// The token this write leaves (once committed).
    pub token: String,
}

/// Bumps the fabric's intent generation (holding its row until commit) and
/// gives the intent a new token.
pub fn lock_intent(w: &mut dyn Writer, id: &str) -> Result<IntentLock> {
    let n = w.execute(
        "UPDATE fabric_state SET intent_generation = intent_generation + 1 WHERE fabric_id = ?",
        vals![id],
    )?;
    if n == 0 {
        return Err(Error::not_found("fabric", id));
    }
    let rows = w.query(
        "SELECT intent_generation, intent_token FROM fabric_state WHERE fabric_id = ?",
        vals![id],
    )?;
    let row = rows.first().ok_or_else(|| Error::not_found("fabric", id))?;
    let lock = IntentLock { generation: row.i64(0)?, previous_token: row.str(1)?, token: new_id() };
    w.execute(
        "UPDATE fabric_state SET intent_token = ? WHERE fabric_id = ?",
        vals![&lock.token, id],
    )?;
    Ok(lock)
}

/// Takes or renews the fabric's controller lease for `owner` until
/// `now + ttl` (micros): true when `owner` holds it now. Another owner's
/// lease is taken only once it lapsed.
pub fn take_lease(w: &mut dyn Writer, id: &str, owner: &str, ttl_micros: i64) -> Result<bool> {
    let now = now_micros();
    let n = w.execute(
        "UPDATE fabric_state SET lease_owner = ?, lease_until = ? \
         WHERE fabric_id = ? AND (lease_owner IS NULL OR lease_owner = ? OR lease_until < ?)",
        vals![owner, now + ttl_micros, id, owner, now],
    )?;
    Ok(n == 1)
}

pub fn set_ledger(w: &mut dyn Writer, id: &str, ledger: &str) -> Result<()> {
    w.execute("UPDATE fabrics SET ledger = ? WHERE id = ?", vals![ledger, id])?;
    Ok(())
}

/// An Ethernet fabric's whole ledger, as (entry, JSON value) rows.
pub fn ledger_entries(r: &mut dyn Reader, fabric_id: &str) -> Result<Vec<(String, String)>> {
    r.query("SELECT entry, value FROM fabric_ledger WHERE fabric_id = ?", vals![fabric_id])?
        .iter()
        .map(|row| Ok((row.str(0)?, row.str(1)?)))
        .collect()
}

/// One entry of an Ethernet fabric's ledger.
pub fn ledger_entry(r: &mut dyn Reader, fabric_id: &str, entry: &str) -> Result<Option<String>> {
    let rows = r.query(
        "SELECT value FROM fabric_ledger WHERE fabric_id = ? AND entry = ?",
        vals![fabric_id, entry],
    )?;
    rows.first().map(|row| row.str(0)).transpose()
}

/// The entries whose key starts with `prefix` (which must end with `/`).
pub fn ledger_entries_under(
    r: &mut dyn Reader,
    fabric_id: &str,
    prefix: &str,
) -> Result<Vec<(String, String)>> {
    // Keys under `a/` sort between `a/` and `a0` ('0' follows '/').
    let end = prefix.strip_suffix('/').map(|p| format!("{p}0"));
    let end = end.ok_or_else(|| Error::internal(format!("ledger prefix {prefix:?}")))?;
    r.query(
        "SELECT entry, value FROM fabric_ledger WHERE fabric_id = ? AND entry >= ? AND entry < ?",
        vals![fabric_id, prefix, &end],
    )?
    .iter()
    .map(|row| Ok((row.str(0)?, row.str(1)?)))
    .collect()
}

/// Writes ledger entries: a value sets the entry, `None` removes it.
pub fn write_ledger_entries(
    w: &mut dyn Writer,
    fabric_id: &str,
    entries: &[(String, Option<String>)],
) -> Result<()> {
    for (entry, value) in entries {
        match value {
            Some(v) => w.execute(
                "INSERT INTO fabric_ledger (fabric_id, entry, value) VALUES (?, ?, ?) \
                 ON CONFLICT (fabric_id, entry) DO UPDATE SET value = excluded.value",
                vals![fabric_id, entry, v],
            )?,
            None => w.execute(
                "DELETE FROM fabric_ledger WHERE fabric_id = ? AND entry = ?",
                vals![fabric_id, entry],
            )?,
        };
    }
    Ok(())
}

/// One cabled node NIC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkRecord {
    pub fabric_id: String,
    pub node_id: String,
    pub nic: String,
    pub switch: String,
    pub port: String,
}

/// Rewrites the cabling index of a fabric from its document.
pub fn set_links(w: &mut dyn Writer, fabric_id: &str, links: &[LinkRecord]) -> Result<()> {
    w.execute("DELETE FROM fabric_links WHERE fabric_id = ?", vals![fabric_id])?;
    for l in links {
        w.execute(
            "INSERT INTO fabric_links (fabric_id, node_id, nic, switch, port) VALUES (?, ?, ?, ?, ?)",
            vals![fabric_id, &l.node_id, &l.nic, &l.switch, &l.port],
        )?;
    }
    Ok(())
}

/// Where a node is cabled, in every fabric (by fabric, NIC).
pub fn links_of_node(r: &mut dyn Reader, node_id: &str) -> Result<Vec<LinkRecord>> {
    r.query(
        "SELECT fabric_id, node_id, nic, switch, port FROM fabric_links WHERE node_id = ? ORDER BY fabric_id, nic",
        vals![node_id],
    )?
    .iter()
    .map(|r| {
        Ok(LinkRecord {
            fabric_id: r.str(0)?,
            node_id: r.str(1)?,
            nic: r.str(2)?,
            switch: r.str(3)?,
            port: r.str(4)?,
        })
    })
    .collect()
}

/// What a switch was last given, and how its last apply or check went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SwitchState {
    pub switch: String,
    /// The fabric core's JSON `SwitchConfig` it holds (`None`: nothing yet).
    pub applied: Option<String>,
    pub applied_generation: i64,
    /// `pending`, `in_sync`, `drift`, `error` or `unmanaged`.
    pub state: String,
    pub message: Option<String>,
    pub checked_at: Option<i64>,
}

pub fn switch_states(r: &mut dyn Reader, fabric_id: &str) -> Result<Vec<SwitchState>> {
    r.query(
        "SELECT switch, applied, applied_generation, state, message, checked_at FROM switch_states WHERE fabric_id = ? ORDER BY switch",
        vals![fabric_id],
    )?
    .iter()
    .map(|r| {
        Ok(SwitchState {
            switch: r.str(0)?,
            applied: r.opt_str(1)?,
            applied_generation: r.i64(2)?,
            state: r.str(3)?,
            message: r.opt_str(4)?,
            checked_at: r.opt_i64(5)?,
        })
    })
    .collect()
}

/// Records an apply: the switch now holds `applied` for `generation`. A
/// record for a newer generation is never overwritten by an older one
/// (answers false then, as when the fabric is gone).
pub fn record_applied(
    w: &mut dyn Writer,
    fabric_id: &str,
    switch: &str,
    applied: &str,
    generation: i64,
    state: &str,
) -> Result<bool> {
    let now = now_micros();
    let n = w.execute(
        "UPDATE switch_states SET applied = ?, applied_generation = ?, state = ?, message = NULL, checked_at = ? \
         WHERE fabric_id = ? AND switch = ? AND applied_generation <= ?",
        vals![applied, generation, state, now, fabric_id, switch, generation],
    )?;
    if n == 1 {
        return Ok(true);
    }
    let exists = !w
        .query(
            "SELECT 1 FROM switch_states WHERE fabric_id = ? AND switch = ?",
            vals![fabric_id, switch],
        )?
        .is_empty();
    if exists || !hold_fabric(w, fabric_id)? {
        return Ok(false);
    }
    w.execute(
        "INSERT INTO switch_states (fabric_id, switch, applied, applied_generation, state, message, checked_at) VALUES (?, ?, ?, ?, ?, NULL, ?)",
        vals![fabric_id, switch, applied, generation, state, now],
    )?;
    Ok(true)
}

/// Records the outcome of a check or a failed apply (what the switch holds
/// is unchanged).
pub fn record_status(
    w: &mut dyn Writer,
    fabric_id: &str,
    switch: &str,
    state: &str,
    message: Option<&str>,
) -> Result<()> {
    let now = now_micros();
    let n = w.execute(
        "UPDATE switch_states SET state = ?, message = ?, checked_at = ? WHERE fabric_id = ? AND switch = ?",
        vals![state, message, now, fabric_id, switch],
    )?;
    if n == 0 && hold_fabric(w, fabric_id)? {
        w.execute(
            "INSERT INTO switch_states (fabric_id, switch, applied, applied_generation, state, message, checked_at) VALUES (?, ?, NULL, 0, ?, ?, ?)",
            vals![fabric_id, switch, state, message, now],
        )?;
    }
    Ok(())
}

/// Holds the fabric's state row until commit, so that a switch's first
/// state row is never written between a deletion's removal of the switch
/// states and its removal of the fabric (the deletion holds that row from
/// its start): false when the fabric is gone, and then nothing is recorded.
fn hold_fabric(w: &mut dyn Writer, fabric_id: &str) -> Result<bool> {
    let n = w.execute(
        "UPDATE fabric_state SET intent_generation = intent_generation WHERE fabric_id = ?",
        vals![fabric_id],
    )?;
    Ok(n == 1)
}

/// Forgets the state of switches no longer in the document.
pub fn retain_switches(w: &mut dyn Writer, fabric_id: &str, keep: &[String]) -> Result<()> {
    for s in switch_states(w, fabric_id)? {
        if !keep.contains(&s.switch) {
            w.execute(
                "DELETE FROM switch_states WHERE fabric_id = ? AND switch = ?",
                vals![fabric_id, &s.switch],
            )?;
        }
    }
    Ok(())
}

/// The lowest intent generation of `fabric_id` applied by the switches of
/// that fabric a node is cabled to (0 where one never applied), or `None`
/// for a node not cabled there: a change made at generation `g` is in
/// effect for the node once this is at least `g`.
pub fn node_applied_generation(
    r: &mut dyn Reader,
    node_id: &str,
    fabric_id: &str,
) -> Result<Option<i64>> {
    let rows = r.query(
        "SELECT MIN(COALESCE(s.applied_generation, 0)) FROM fabric_links l \
         LEFT JOIN switch_states s ON s.fabric_id = l.fabric_id AND s.switch = l.switch \
         WHERE l.node_id = ? AND l.fabric_id = ?",
        vals![node_id, fabric_id],
    )?;
    match rows.first() {
        None => Ok(None),
        Some(r) => r.opt_i64(0),
    }
}
