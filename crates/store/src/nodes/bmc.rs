//! What the lifecycle reads and writes of a node beyond its state: its
//! baselines (firmware, Secure Boot and accounts, BIOS), the BMC journal,
//! BMC records and passwords, firmware updates and slots, the inventory.

use super::{dirty, get, index_macs};
use crate::backend::{Reader, Writer};
use crate::{rfc, vals};
use neocloud_common::{time::now_micros, Error, Result};
use neocloud_types::{Node, NodeLifecycle};

/// The firmware versions recorded at the node's first clean inspection:
/// (component id, version).
pub fn firmware_baseline(r: &mut dyn Reader, id: &str) -> Result<Vec<(String, String)>> {
    let rows = r.query("SELECT firmware_baseline FROM nodes WHERE id = ?", vals![id])?;
    let Some(row) = rows.first() else { return Err(Error::not_found("node", id)) };
    serde_json::from_str(&row.str(0)?)
        .map_err(|e| Error::internal(format!("firmware baseline: {e}")))
}

/// A node's JSON column (`column`, one of this module's own), decoded;
/// `None` when NULL.
fn json_column<T: serde::de::DeserializeOwned>(
    r: &mut dyn Reader,
    id: &str,
    column: &str,
) -> Result<Option<T>> {
    json_column_locked(r, id, column, "")
}

/// [`json_column`], the node's row locked with `lock` (a backend's
/// `FOR UPDATE`, or nothing).
fn json_column_locked<T: serde::de::DeserializeOwned>(
    r: &mut dyn Reader,
    id: &str,
    column: &str,
    lock: &str,
) -> Result<Option<T>> {
    let rows = r.query(&format!("SELECT {column} FROM nodes WHERE id = ?{lock}"), vals![id])?;
    let Some(row) = rows.first() else { return Err(Error::not_found("node", id)) };
    row.opt_str(0)?
        .map(|s| serde_json::from_str(&s).map_err(|e| Error::internal(format!("{column}: {e}"))))
        .transpose()
}

/// The node's Secure Boot and BMC account baseline; `None` for a node last
/// inspected clean before the baseline was recorded.
pub fn platform_baseline(
    r: &mut dyn Reader,
    id: &str,
) -> Result<Option<neocloud_types::PlatformBaseline>> {
    json_column(r, id, "platform_baseline")
}

/// What a release staged back to the BIOS baseline (name to the value
/// found and the value staged), for the sanitization record.
pub type BiosStaged = std::collections::BTreeMap<String, (serde_json::Value, serde_json::Value)>;

/// Records (or, `None`, clears) what a release staged back to the BIOS
/// baseline.
pub fn set_bios_staged(w: &mut dyn Writer, id: &str, staged: Option<&BiosStaged>) -> Result<()> {
    let json = staged
        .map(serde_json::to_string)
        .transpose()
        .map_err(|e| Error::internal(format!("bios staged: {e}")))?;
    w.execute("UPDATE nodes SET bios_staged = ? WHERE id = ?", vals![json, id])?;
    Ok(())
}

/// The non-volatile UEFI variables (`Name-GUID`) the node's first complete
/// sanitization found; `None` before one recorded them.
pub fn uefi_baseline(r: &mut dyn Reader, id: &str) -> Result<Option<Vec<String>>> {
    json_column(r, id, "uefi_baseline")
}

/// Records the node's UEFI baseline, once: a node that has one keeps it.
pub fn set_uefi_baseline(w: &mut dyn Writer, id: &str, keys: &[String]) -> Result<()> {
    set_baseline(w, id, "uefi_baseline", keys)
}

/// Writes a baseline column (a JSON list) where the node has none.
fn set_baseline(w: &mut dyn Writer, id: &str, column: &str, list: &[String]) -> Result<()> {
    let json = serde_json::to_string(list).map_err(|e| Error::internal(e.to_string()))?;
    w.execute(
        &format!("UPDATE nodes SET {column} = ? WHERE id = ? AND {column} IS NULL"),
        vals![json, id],
    )?;
    Ok(())
}

/// The network adapters' settings off their defaults
/// (`PCI-address/PARAMETER=value`) the node's first complete sanitization
/// found; `None` before one recorded them.
pub fn nic_baseline(r: &mut dyn Reader, id: &str) -> Result<Option<Vec<String>>> {
    json_column(r, id, "nic_baseline")
}

/// Records the node's NIC settings baseline, once: a node that has one
/// keeps it.
pub fn set_nic_baseline(w: &mut dyn Writer, id: &str, kept: &[String]) -> Result<()> {
    set_baseline(w, id, "nic_baseline", kept)
}

/// Forgets the node's UEFI and NIC baselines, and notes that a
/// sanitization before any tenant is to record them anew.
pub fn forget_baselines(w: &mut dyn Writer, id: &str) -> Result<()> {
    w.execute(
        "UPDATE nodes SET uefi_baseline = NULL, nic_baseline = NULL, \
         baselines_forgotten_at = ? WHERE id = ?",
        vals![neocloud_common::time::now_micros(), id],
    )?;
    Ok(())
}

/// Whether the node's baselines were forgotten and not recorded since.
pub fn baselines_forgotten(r: &mut dyn Reader, id: &str) -> Result<bool> {
    let rows = r.query(
        "SELECT 1 FROM nodes WHERE id = ? AND baselines_forgotten_at IS NOT NULL",
        vals![id],
    )?;
    Ok(!rows.is_empty())
}

/// The baselines were recorded again (a sanitization before any tenant).
pub fn baselines_recorded(w: &mut dyn Writer, id: &str) -> Result<()> {
    w.execute("UPDATE nodes SET baselines_forgotten_at = NULL WHERE id = ?", vals![id])?;
    Ok(())
}

/// What the node's release staged back to the BIOS baseline (empty when
/// nothing).
pub fn bios_staged(r: &mut dyn Reader, id: &str) -> Result<BiosStaged> {
    Ok(json_column(r, id, "bios_staged")?.unwrap_or_default())
}

/// A change a lifecycle step is about to make on a node's BMC, outside a
/// state transition (a host interface turned off, an account disabled,
/// Secure Boot set back): journaled before it is sent, so that the step
/// that records it (the transition out of inspection, the sanitization
/// record) still does after a crash or a lost answer, when the change is
/// done but the pass that made it never heard so.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BmcChange {
    /// The record's check it belongs to (`host_interfaces`, `bmc_accounts`).
    pub check: String,
    /// What it changes (a Redfish path).
    pub target: String,
    /// What it does, as the record reads it.
    pub change: String,
    /// When it was journaled (RFC 3339).
    pub at: String,
}

/// Journals `change` on the node: call it in its own transaction before the
/// change is sent.
pub fn journal_bmc_change(w: &mut dyn Writer, id: &str, change: &BmcChange) -> Result<()> {
    let mut all = bmc_journal(w, id)?;
    all.push(change.clone());
    let json =
        serde_json::to_string(&all).map_err(|e| Error::internal(format!("bmc journal: {e}")))?;
    w.execute("UPDATE nodes SET bmc_journal = ? WHERE id = ?", vals![json, id])?;
    Ok(())
}

/// The node's journaled BMC changes not yet recorded, oldest first.
pub fn bmc_journal(r: &mut dyn Reader, id: &str) -> Result<Vec<BmcChange>> {
    Ok(json_column(r, id, "bmc_journal")?.unwrap_or_default())
}

/// Clears the node's journal: in the transaction that records its changes.
pub fn clear_bmc_journal(w: &mut dyn Writer, id: &str) -> Result<()> {
    w.execute(
        "UPDATE nodes SET bmc_journal = NULL WHERE id = ? AND bmc_journal IS NOT NULL",
        vals![id],
    )?;
    Ok(())
}

/// The firmware updates of the node's sanitization under way, as last
/// written (`None`: none planned yet; empty: planned, none needed).
pub fn firmware_updates(
    r: &mut dyn Reader,
    id: &str,
) -> Result<Option<Vec<neocloud_types::FirmwareUpdate>>> {
    json_column(r, id, "firmware_updates")
}

/// Writes the node's firmware updates (`None` clears them: in the
/// transaction that writes the sanitization record). An update is written
/// here as sent before it is sent to the BMC.
pub fn set_firmware_updates(
    w: &mut dyn Writer,
    id: &str,
    updates: Option<&[neocloud_types::FirmwareUpdate]>,
) -> Result<()> {
    let json = updates
        .map(serde_json::to_string)
        .transpose()
        .map_err(|e| Error::internal(format!("firmware updates: {e}")))?;
    w.execute("UPDATE nodes SET firmware_updates = ? WHERE id = ?", vals![json, id])?;
    Ok(())
}

/// [`set_firmware_updates`] only where `still` holds for what is stored
/// now, read with the node's row locked: `false`, nothing written, where
/// another replica changed them since the caller read them (a send it
/// wrote as sent, and sent: not to be sent twice).
pub fn set_firmware_updates_if(
    w: &mut dyn Writer,
    id: &str,
    still: impl Fn(&[neocloud_types::FirmwareUpdate]) -> bool,
    updates: &[neocloud_types::FirmwareUpdate],
) -> Result<bool> {
    let lock = w.kind().for_update();
    let now: Vec<neocloud_types::FirmwareUpdate> =
        json_column_locked(w, id, "firmware_updates", lock)?.unwrap_or_default();
    if !still(&now) {
        return Ok(false);
    }
    set_firmware_updates(w, id, Some(updates))?;
    Ok(true)
}

/// A node's BMC: endpoint, username, sealed password, discovered system.
pub struct BmcRecord {
    pub endpoint: String,
    pub username: String,
    pub password_sealed: String,
    pub system_path: Option<String>,
    /// A rotation in flight: the new password, sealed, not yet known to
    /// work (see [`stage_bmc_password`]).
    pub password_next_sealed: Option<String>,
}

pub fn bmc(r: &mut dyn Reader, id: &str) -> Result<Option<BmcRecord>> {
    let rows = r.query(
        "SELECT endpoint, username, password_sealed, system_path, password_next_sealed FROM node_bmcs WHERE node_id = ?",
        vals![id],
    )?;
    rows.first()
        .map(|r| {
            Ok(BmcRecord {
                endpoint: r.str(0)?,
                username: r.str(1)?,
                password_sealed: r.str(2)?,
                system_path: r.opt_str(3)?,
                password_next_sealed: r.opt_str(4)?,
            })
        })
        .transpose()
}

/// Records the new password of a rotation before it is sent to the BMC.
pub fn stage_bmc_password(w: &mut dyn Writer, id: &str, next_sealed: &str) -> Result<bool> {
    // Only where none is staged: one rotation at a time (another replica's
    // in flight is settled first, by a login).
    let n = w.execute(
        "UPDATE node_bmcs SET password_next_sealed = ? \
         WHERE node_id = ? AND password_next_sealed IS NULL",
        vals![next_sealed, id],
    )?;
    Ok(n == 1)
}

/// The staged password works on the BMC: it becomes the password (only if
/// it is still the one staged: false otherwise).
pub fn promote_bmc_password(w: &mut dyn Writer, id: &str, next_sealed: &str) -> Result<bool> {
    let n = w.execute(
        "UPDATE node_bmcs SET password_sealed = password_next_sealed, password_next_sealed = NULL \
         WHERE node_id = ? AND password_next_sealed = ?",
        vals![id, next_sealed],
    )?;
    Ok(n == 1)
}

/// The staged password was not taken: the old one stays.
pub fn drop_bmc_password(w: &mut dyn Writer, id: &str, next_sealed: &str) -> Result<()> {
    w.execute(
        "UPDATE node_bmcs SET password_next_sealed = NULL WHERE node_id = ? AND password_next_sealed = ?",
        vals![id, next_sealed],
    )?;
    Ok(())
}

pub fn set_system_path(w: &mut dyn Writer, id: &str, path: &str) -> Result<()> {
    w.execute("UPDATE node_bmcs SET system_path = ? WHERE node_id = ?", vals![path, id])?;
    Ok(())
}

/// What inspection found.
pub struct Inspected<'a> {
    /// GPU model key, count and memory per GPU, when the BMC shows GPUs.
    pub gpus: Option<(&'a str, u8, u32)>,
    pub macs: &'a [String],
    /// (component id, version).
    pub firmware: &'a [(String, String)],
    /// Secure Boot and the enabled BMC accounts.
    pub platform: &'a neocloud_types::PlatformBaseline,
    /// Everything the BMC reported, for operators.
    pub inventory: &'a neocloud_types::BmcInventory,
}

/// Records what inspection found (while the node is inspecting). The
/// firmware and the BMC's security settings become the node's baselines
/// unless the node is dirty: a tenant's changes never become a baseline.
pub fn record_inventory(w: &mut dyn Writer, id: &str, found: &Inspected<'_>) -> Result<()> {
    let now = now_micros();
    if let Some((model, gpus, mem)) = found.gpus {
        w.execute(
            "UPDATE nodes SET gpu_model = ?, gpus = ?, gpu_memory_gb = ?, generation = generation + 1, updated_at = ? WHERE id = ?",
            vals![model, gpus as i64, mem as i64, now, id],
        )?;
    }
    let macs = serde_json::to_string(found.macs).map_err(|e| Error::internal(e.to_string()))?;
    let inv = serde_json::to_string(found.inventory).map_err(|e| Error::internal(e.to_string()))?;
    w.execute(
        "UPDATE nodes SET macs = ?, inventory = ?, updated_at = ? WHERE id = ?",
        vals![macs, inv, now, id],
    )?;
    index_macs(w, id)?;
    if dirty(w, id)?.is_none() {
        let fw =
            serde_json::to_string(found.firmware).map_err(|e| Error::internal(e.to_string()))?;
        let platform =
            serde_json::to_string(found.platform).map_err(|e| Error::internal(e.to_string()))?;
        w.execute(
            "UPDATE nodes SET firmware_baseline = ?, platform_baseline = ? WHERE id = ?",
            vals![fw, platform, id],
        )?;
    }
    Ok(())
}

/// The nodes in `state` with firmware updates in their plan: since when
/// each is in the state (µs), and its updates.
pub fn firmware_plans_in_state(
    r: &mut dyn Reader,
    state: &str,
) -> Result<Vec<(i64, Vec<neocloud_types::FirmwareUpdate>)>> {
    r.query(
        "SELECT lifecycle_since, firmware_updates FROM nodes WHERE lifecycle_state = ? AND firmware_updates IS NOT NULL",
        vals![state],
    )?
    .iter()
    .map(|row| {
        let updates = serde_json::from_str(&row.str(1)?)
            .map_err(|e| Error::internal(format!("node firmware updates: {e}")))?;
        Ok((row.i64(0)?, updates))
    })
    .collect()
}

/// Records the intent to inspect the node again (optionally with new BMC
/// credentials, sealed by the caller). The lifecycle controller acts on it.
pub fn request_inspection(
    w: &mut dyn Writer,
    id: &str,
    new_bmc: Option<(&str, &str, &str)>,
) -> Result<Node> {
    let held = crate::allocation_holds::node_held(w, id)?;
    let lifecycle = get(w, id)?.lifecycle;
    // A node's first sanitization holds no allocation: nothing would act
    // on the request until it ends, and new credentials would change the
    // BMC under it.
    if matches!(lifecycle, NodeLifecycle::Releasing { .. } | NodeLifecycle::Sanitizing { .. }) {
        return Err(Error::conflict(
            "the node is being sanitized: inspect it again once it is available or failed",
        ));
    }
    let failed = matches!(lifecycle, NodeLifecycle::Failed { .. });
    // A failed node may hold its last tenant's allocation until it is
    // sanitized: inspecting it again is how it gets there.
    if !failed && held {
        return Err(Error::conflict(
            "the node holds allocations: release them before inspecting it again",
        ));
    }
    match new_bmc {
        Some((endpoint, username, sealed)) => {
            let n = w.execute(
                "UPDATE node_bmcs SET endpoint = ?, username = ?, password_sealed = ?, system_path = NULL, password_next_sealed = NULL WHERE node_id = ?",
                vals![endpoint, username, sealed, id],
            )?;
            if n == 0 {
                w.execute(
                    "INSERT INTO node_bmcs (node_id, endpoint, username, password_sealed, system_path) VALUES (?, ?, ?, ?, NULL)",
                    vals![id, endpoint, username, sealed],
                )?;
            }
        }
        None if bmc(w, id)?.is_none() => {
            return Err(Error::conflict("the node has no BMC to inspect through: give its bmc"));
        }
        None => {}
    }
    let now = now_micros();
    w.execute(
        "UPDATE nodes SET inspect_requested_at = ?, generation = generation + 1, updated_at = ? WHERE id = ?",
        vals![now, now, id],
    )?;
    get(w, id)
}

/// Whether an inspection was requested since the node entered its state.
pub fn inspect_requested(r: &mut dyn Reader, id: &str) -> Result<bool> {
    let rows =
        r.query("SELECT inspect_requested_at, lifecycle_since FROM nodes WHERE id = ?", vals![id])?;
    let Some(row) = rows.first() else { return Err(Error::not_found("node", id)) };
    Ok(row.i64(0)? > row.i64(1)?)
}

/// Every node's BMC endpoint: (node id, endpoint).
pub fn bmc_endpoints(r: &mut dyn Reader) -> Result<Vec<(String, String)>> {
    r.query("SELECT node_id, endpoint FROM node_bmcs ORDER BY node_id", &[])?
        .iter()
        .map(|row| Ok((row.str(0)?, row.str(1)?)))
        .collect()
}

/// Points a node at a new BMC endpoint (same credentials).
pub fn set_bmc_endpoint(w: &mut dyn Writer, id: &str, endpoint: &str) -> Result<()> {
    w.execute("UPDATE node_bmcs SET endpoint = ? WHERE node_id = ?", vals![endpoint, id])?;
    Ok(())
}

/// The firmware versions (and the BMC's word on its health) read at the
/// end of a sanitization, into the node's recorded inventory (its other
/// parts are the inspection's).
pub fn refresh_inventory_firmware(
    w: &mut dyn Writer,
    id: &str,
    firmware: &[neocloud_types::InventoryFirmware],
    health: Option<&neocloud_types::InventoryHealth>,
) -> Result<()> {
    update_inventory(w, id, |inv| {
        inv.firmware = firmware.to_vec();
        inv.firmware_read_at = Some(rfc(now_micros()));
        if let Some(h) = health {
            inv.health = Some(h.clone());
        }
    })
}

/// Writes what the BMC says of the node's health into its inventory (the
/// health watch's read of a node it reports unhealthy: its parts and log).
pub fn refresh_inventory_health(
    w: &mut dyn Writer,
    id: &str,
    health: &neocloud_types::InventoryHealth,
) -> Result<()> {
    update_inventory(w, id, |inv| inv.health = Some(health.clone()))
}

/// Changes the node's recorded inventory by `change` (nothing where none
/// is recorded).
fn update_inventory(
    w: &mut dyn Writer,
    id: &str,
    change: impl FnOnce(&mut neocloud_types::BmcInventory),
) -> Result<()> {
    let Some(mut inv) = bmc_inventory(w, id)? else { return Ok(()) };
    change(&mut inv);
    let json = serde_json::to_string(&inv).map_err(|e| Error::internal(e.to_string()))?;
    w.execute("UPDATE nodes SET inventory = ? WHERE id = ?", vals![json, id])?;
    Ok(())
}

/// Nodes with firmware updates planned or in flight, in the states that
/// run them (their state's time includes the updates').
pub fn updating_firmware(r: &mut dyn Reader) -> Result<i64> {
    let rows = r.query(
        "SELECT COUNT(*) FROM nodes WHERE lifecycle_state IN ('releasing', 'inspecting') AND (firmware_updates LIKE '%\"state\":\"sent\"%' OR firmware_updates LIKE '%\"state\":\"planned\"%')",
        &[],
    )?;
    rows.first().map(|r| r.i64(0)).transpose().map(|n| n.unwrap_or(0))
}

/// Nodes other than `id` with a firmware update sent to their BMC and not
/// ended (the fleet's updates in flight), in the states that run them (a
/// node that failed with one in flight holds no slot).
pub fn updating_elsewhere(r: &mut dyn Reader, id: &str) -> Result<i64> {
    let rows = r.query(
        "SELECT COUNT(*) FROM nodes WHERE id <> ? AND lifecycle_state IN ('releasing', 'inspecting') AND firmware_updates LIKE '%\"state\":\"sent\"%'",
        vals![id],
    )?;
    rows.first().map(|r| r.i64(0)).transpose().map(|n| n.unwrap_or(0))
}

/// Whether node `id` may start a firmware update: fewer than `limit` other
/// nodes have one in flight ([`updating_elsewhere`]); `Err` of the count
/// where not. Taken in the write that marks the update sent, under one
/// lock for the whole fleet (PostgreSQL: a transaction-scoped advisory
/// lock; SQLite serializes writers), so nodes stepped at the same moment,
/// on one replica or several, cannot each take the last slot.
pub fn claim_firmware_slot(
    w: &mut dyn Writer,
    id: &str,
    limit: i64,
) -> Result<std::result::Result<(), i64>> {
    if w.kind() == crate::backend::BackendKind::Postgres {
        w.execute_batch("SELECT pg_advisory_xact_lock(7262738)")?;
    }
    let busy = updating_elsewhere(w, id)?;
    Ok(if busy < limit { Ok(()) } else { Err(busy) })
}

/// An inspected node of a model, as [`inventories_of_model`] reads it.
pub struct ModelNode {
    pub id: String,
    pub name: String,
    /// Its lifecycle state's name.
    pub lifecycle: String,
    pub inventory: neocloud_types::BmcInventory,
    /// Whether firmware updates are under way on it.
    pub updating: bool,
}

/// Every inspected node whose BMC reports `model`, by name.
pub fn inventories_of_model(r: &mut dyn Reader, model: &str) -> Result<Vec<ModelNode>> {
    let rows = r.query(
        "SELECT id, name, lifecycle_state, inventory, firmware_updates FROM nodes WHERE inventory IS NOT NULL ORDER BY name",
        &[],
    )?;
    let mut out = Vec::new();
    for row in &rows {
        let inv: neocloud_types::BmcInventory = serde_json::from_str(&row.str(3)?)
            .map_err(|e| Error::internal(format!("node inventory: {e}")))?;
        if inv.model != model {
            continue;
        }
        let running = matches!(row.str(2)?.as_str(), "releasing" | "inspecting");
        let updating = match row.opt_str(4)?.filter(|_| running) {
            Some(u) => serde_json::from_str::<Vec<neocloud_types::FirmwareUpdate>>(&u)
                .map_err(|e| Error::internal(format!("firmware_updates: {e}")))?
                .iter()
                .any(|u| !u.state.is_done()),
            None => false,
        };
        out.push(ModelNode {
            id: row.str(0)?,
            name: row.str(1)?,
            lifecycle: row.str(2)?,
            inventory: inv,
            updating,
        });
    }
    Ok(out)
}

/// The BMC inventory recorded at the node's last inspection.
pub fn bmc_inventory(r: &mut dyn Reader, id: &str) -> Result<Option<neocloud_types::BmcInventory>> {
    let rows = r.query("SELECT inventory FROM nodes WHERE id = ?", vals![id])?;
    let Some(row) = rows.first() else { return Err(Error::not_found("node", id)) };
    row.opt_str(0)?
        .map(|s| {
            serde_json::from_str(&s).map_err(|e| Error::internal(format!("node inventory: {e}")))
        })
        .transpose()
}

/// Records the node's hardware health as its BMC said it (the host's
/// rollup) and the parts it reports other than healthy (`GPU_SXM_3
/// Critical`); `None` (not said) leaves what was recorded. Writes only a
/// change: `true` when it changed.
pub fn set_bmc_health(
    w: &mut dyn Writer,
    id: &str,
    rollup: Option<&str>,
    faults: &[String],
) -> Result<bool> {
    let Some(h) = rollup else { return Ok(false) };
    let f = serde_json::to_string(faults).map_err(|e| Error::internal(e.to_string()))?;
    let n = w.execute(
        "UPDATE nodes SET bmc_health = ?, bmc_health_faults = ? WHERE id = ? \
         AND (bmc_health IS NULL OR bmc_health <> ? OR bmc_health_faults IS NULL OR bmc_health_faults <> ?)",
        vals![h, f.as_str(), id, h, f.as_str()],
    )?;
    Ok(n > 0)
}
