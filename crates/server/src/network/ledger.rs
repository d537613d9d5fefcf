//! An Ethernet fabric's ledger in the store: one row per entry (the fabric
//! core's `LedgerKey`s and values), read whole to plan, entry by entry to
//! answer a tenant, and written by the entries a change touched, so a
//! tenant's write costs what it changed, not the size of the fabric.

use neocloud_common::{Error, Result};
use neocloud_fabric::{Allocations, LedgerKey};
use neocloud_store::fabrics;
use neocloud_store::{Reader, Writer};
use std::collections::BTreeSet;
use std::net::Ipv4Addr;

fn stored(e: neocloud_fabric::Error) -> Error {
    Error::internal(format!("stored fabric ledger: {e:?}"))
}

/// The whole ledger.
pub fn load(r: &mut dyn Reader, fabric_id: &str) -> Result<Allocations> {
    let rows = fabrics::ledger_entries(r, fabric_id)?;
    Allocations::from_entries(rows.iter().map(|(k, v)| (k.as_str(), v.as_str()))).map_err(stored)
}

/// One entry, decoded into an otherwise empty ledger.
fn one(r: &mut dyn Reader, fabric_id: &str, key: LedgerKey) -> Result<Allocations> {
    let mut out = Allocations::default();
    if let Some(json) = fabrics::ledger_entry(r, fabric_id, &key.to_string())? {
        out.set_entry(key, &json).map_err(stored)?;
    }
    Ok(out)
}

/// A VPC's NAT gateway address, once allocated.
pub fn nat_address(r: &mut dyn Reader, fabric_id: &str, vpc_id: &str) -> Result<Option<Ipv4Addr>> {
    Ok(one(r, fabric_id, LedgerKey::Nat(vpc_id.to_string()))?.nat_addresses.into_values().next())
}

/// An attachment's address, once allocated.
pub fn address(
    r: &mut dyn Reader,
    fabric_id: &str,
    attachment_id: &str,
) -> Result<Option<Ipv4Addr>> {
    let key = LedgerKey::Address(attachment_id.to_string());
    Ok(one(r, fabric_id, key)?.addresses.into_values().next())
}

/// Every NAT gateway address of the fabric.
pub fn nat_addresses(r: &mut dyn Reader, fabric_id: &str) -> Result<Vec<Ipv4Addr>> {
    let rows = fabrics::ledger_entries_under(r, fabric_id, LedgerKey::NAT_PREFIX)?;
    let l = Allocations::from_entries(rows.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .map_err(stored)?;
    Ok(l.nat_addresses.into_values().collect())
}

/// Writes the entries `keys` as `ledger` has them (removing those it has
/// not).
pub fn write(
    w: &mut dyn Writer,
    fabric_id: &str,
    ledger: &Allocations,
    keys: &BTreeSet<LedgerKey>,
) -> Result<()> {
    let rows: Vec<(String, Option<String>)> =
        keys.iter().map(|k| (k.to_string(), ledger.entry(k))).collect();
    fabrics::write_ledger_entries(w, fabric_id, &rows)
}

/// Moves Ethernet ledgers an older release kept whole (the fabric's
/// `ledger` column) into entries; answers how many were moved. Run at
/// start, before anything plans.
pub fn move_whole_ledgers(w: &mut dyn Writer) -> Result<usize> {
    let mut moved = 0;
    for f in fabrics::list(w)? {
        if f.kind != "ethernet" || f.ledger.is_empty() {
            continue;
        }
        if !fabrics::ledger_entries(w, &f.id)?.is_empty() {
            return Err(Error::internal(format!(
                "fabric {} has its ledger both whole and by entry",
                f.name
            )));
        }
        let whole: Allocations = serde_json::from_str(&f.ledger)
            .map_err(|e| Error::internal(format!("stored ledger of fabric {}: {e}", f.name)))?;
        let keys: BTreeSet<LedgerKey> = whole.entries().into_iter().map(|(k, _)| k).collect();
        write(w, &f.id, &whole, &keys)?;
        fabrics::set_ledger(w, &f.id, "")?;
        tracing::info!(fabric = %f.name, entries = keys.len(), "fabric ledger moved into entries");
        moved += 1;
    }
    Ok(moved)
}
