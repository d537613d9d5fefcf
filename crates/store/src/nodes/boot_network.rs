//! Nodes' static provisioning addresses: stored, drawn from provisioning
//! networks under the address lock, followed when a network changes.

use super::{index_macs, now_micros};
use crate::backend::{Reader, Writer};
use crate::vals;
use neocloud_common::{Error, Result};
use neocloud_types::{BootMethod, BootNetwork};

/// The nodes with a static provisioning address, and theirs.
pub fn boot_networks(r: &mut dyn Reader) -> Result<Vec<(String, BootNetwork)>> {
    r.query("SELECT id, boot_network FROM nodes WHERE boot_network IS NOT NULL ORDER BY id", &[])?
        .iter()
        .map(|row| {
            let net = serde_json::from_str(&row.str(1)?)
                .map_err(|e| Error::internal(format!("node boot network: {e}")))?;
            Ok((row.str(0)?, net))
        })
        .collect()
}

/// Holds the lock every write that draws a static provisioning address,
/// or changes the networks they are drawn from, takes to the end of its
/// transaction: on PostgreSQL a fleet-wide advisory lock, so that two
/// nodes drawn at once get two addresses (SQLite serializes writers).
pub fn lock_boot_addresses(w: &mut dyn Writer) -> Result<()> {
    if w.kind() == crate::backend::BackendKind::Postgres {
        w.execute_batch("SELECT pg_advisory_xact_lock(7262739)")?;
    }
    Ok(())
}

/// The static provisioning addresses nodes other than `except` hold.
pub fn held_boot_addresses(
    r: &mut dyn Reader,
    except: Option<&str>,
) -> Result<std::collections::HashSet<std::net::Ipv4Addr>> {
    let rows = r.query(
        "SELECT boot_address FROM nodes WHERE boot_address IS NOT NULL AND id <> ?",
        vals![except.unwrap_or("")],
    )?;
    let mut held = std::collections::HashSet::new();
    for row in &rows {
        if let Ok(a) = row.str(0)?.parse::<std::net::Ipv4Addr>() {
            held.insert(a);
        }
    }
    Ok(held)
}

/// The lowest address `range` hands out that no node other than
/// `except` holds; `None` when all are taken (under the address lock).
pub fn free_boot_address(
    w: &mut dyn Writer,
    range: &neocloud_types::AddressRange,
    except: Option<&str>,
) -> Result<Option<std::net::Ipv4Addr>> {
    lock_boot_addresses(w)?;
    let taken = held_boot_addresses(w, except)?;
    Ok(range.addresses().find(|a| !taken.contains(a)))
}

/// The nodes holding an address of `range`'s network take its gateway and
/// name servers (their generation bumped: their ISOs change); their ids.
pub(crate) fn follow_network(
    w: &mut dyn Writer,
    range: &neocloud_types::AddressRange,
) -> Result<Vec<String>> {
    let now = now_micros();
    let mut changed = Vec::new();
    for (id, bn) in boot_networks(w)? {
        if bn.network.as_deref() != Some(range.name.as_str()) {
            continue;
        }
        let a = bn.check()?;
        let next = range.boot_network(&a.mac, a.address);
        if next == bn {
            continue;
        }
        let json = serde_json::to_string(&next).map_err(|e| Error::internal(e.to_string()))?;
        w.execute(
            "UPDATE nodes SET boot_network = ?, generation = generation + 1, updated_at = ? WHERE id = ?",
            vals![json, now, &id],
        )?;
        changed.push(id);
    }
    Ok(changed)
}

/// Sets (or clears) a node's static provisioning address: checked, unique
/// among nodes (the address here, the MAC by the boot service's index,
/// which refuses one another node has).
pub(super) fn set_boot_network(
    w: &mut dyn Writer,
    id: &str,
    bn: Option<&BootNetwork>,
) -> Result<()> {
    let checked = bn.map(BootNetwork::check).transpose()?;
    // Stored as checked: the MAC in lower case, the addresses canonical.
    let stored = bn
        .zip(checked.as_ref())
        .map(|(b, a)| {
            serde_json::to_string(&a.boot_network(b.network.clone()))
                .map_err(|e| Error::internal(e.to_string()))
        })
        .transpose()?;
    let address = checked.as_ref().map(|a| a.address.to_string());
    w.execute(
        "UPDATE nodes SET boot_network = ?, boot_address = ? WHERE id = ?",
        vals![stored, address.clone(), id],
    )
    .map_err(|e| {
        e.unique_as(Error::AlreadyExists {
            kind: "node",
            field: "boot_network.address".into(),
            value: address.unwrap_or_default(),
        })
    })?;
    index_macs(w, id)
}

/// A static provisioning address is set by a virtual-media boot's ISO
/// only: PXE and UEFI HTTP firmware get theirs by DHCP.
pub(super) fn check_boot_pair(
    method: BootMethod,
    network: Option<&BootNetwork>,
    field: &str,
) -> Result<()> {
    match (method, network) {
        (BootMethod::VirtualMedia, _) | (BootMethod::Pxe | BootMethod::UefiHttp, None) => Ok(()),
        (BootMethod::Pxe | BootMethod::UefiHttp, Some(_)) => Err(Error::invalid_value(
            field,
            format!(
                "a boot_network (a static provisioning address) is set by a virtual_media boot only; a {} boot gets its address by DHCP{}",
                method.as_str(),
                if field == "boot_method" { ": clear it (boot_network: null) in the same update" } else { "" }
            ),
        )),
    }
}
