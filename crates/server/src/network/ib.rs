//! InfiniBand subnets as the server holds them: the provider's document
//! (`infiniband`: PKeys, node port GUIDs, the subnet manager) turned into
//! the fabric core's `ib` model, and every tenant's partition derived from
//! the nodes it holds: one partition per tenant per subnet, its nodes'
//! ports full members. The PKey ledger is the fabric's ledger; the fabric
//! controller extends it and programs the subnet manager.

use neocloud_common::{Error, Result};
use neocloud_fabric::ib::{
    self, allocate_pkeys, IbDesired, IbFabric, IbIntent, IbPartition, IbPort, PkeyLedger, PkeyRange,
};
use neocloud_store::fabrics::{self, FabricRecord};
use neocloud_store::{instances, Reader, Writer};
use neocloud_types::{FabricSpec, InfinibandSpec};
use std::collections::{BTreeMap, BTreeSet};

/// The state row that records what the subnet manager was last given.
pub const SUBNET_MANAGER: &str = "subnet-manager";

fn section(spec: &FabricSpec) -> Result<&InfinibandSpec> {
    spec.infiniband
        .as_ref()
        .ok_or_else(|| Error::invalid_value("infiniband", "required for an InfiniBand fabric"))
}

/// The core's names for the document's fields.
fn ib_error(e: neocloud_fabric::Error) -> Error {
    match e {
        neocloud_fabric::Error::Invalid { field, reason } => {
            let field = if let Some(rest) = field.strip_prefix("fabric.pkey_range") {
                format!("infiniband.pkeys{rest}")
            } else if field.starts_with("ports[") {
                format!("infiniband.{field}")
            } else {
                field
            };
            Error::invalid_value(field, reason)
        }
        other => super::fabric_error(other),
    }
}

/// The core's view of a document whose node references are ids.
pub fn model(name: &str, spec: &FabricSpec) -> Result<(IbFabric, Vec<IbPort>)> {
    let s = section(spec)?;
    let fabric = IbFabric {
        name: name.to_string(),
        pkey_range: PkeyRange { first: s.pkeys.first, last: s.pkeys.last },
    };
    let ports: Vec<IbPort> =
        s.ports.iter().map(|p| IbPort { node: p.node.clone(), guid: p.guid.clone() }).collect();
    Ok((fabric, ports))
}

/// Checks a document on its own (PKey range, GUIDs: 422 naming the field).
pub fn check(name: &str, spec: &FabricSpec) -> Result<()> {
    let (fabric, ports) = model(name, spec)?;
    ib::validate_fabric(&fabric).map_err(ib_error)?;
    ib::validate_ports(&ports).map_err(ib_error)?;
    Ok(())
}

/// One partition per tenant holding live nodes with ports in this subnet.
pub fn intent(r: &mut dyn Reader, ports: &[IbPort]) -> Result<IbIntent> {
    let cabled: BTreeSet<&str> = ports.iter().map(|p| p.node.as_str()).collect();
    let mut by_tenant: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (tenant, node) in instances::tenant_nodes(r)? {
        if cabled.contains(node.as_str()) {
            by_tenant.entry(tenant).or_default().push(node);
        }
    }
    Ok(IbIntent {
        partitions: by_tenant
            .into_iter()
            .map(|(tenant, nodes)| IbPartition { id: format!("tenant_{tenant}"), tenant, nodes })
            .collect(),
    })
}

/// The stored PKey ledger. A ledger that does not parse is an error, never
/// a fresh one: PKeys must not move.
fn ledger_of(rec: &FabricRecord) -> Result<PkeyLedger> {
    serde_json::from_str(&rec.ledger)
        .map_err(|e| Error::internal(format!("stored PKey ledger of {}: {e}", rec.name)))
}

/// The partitions a document (the stored one, or a proposed one) gives
/// with the fabric's ledger; nothing is stored.
pub fn preview(
    r: &mut dyn Reader,
    name: &str,
    spec: &FabricSpec,
    existing: Option<&FabricRecord>,
) -> Result<(IbFabric, IbDesired)> {
    let before = existing.map(ledger_of).transpose()?.unwrap_or_default();
    let (fabric, desired, _, _) = compute(r, name, spec, before)?;
    Ok((fabric, desired))
}

fn compute(
    r: &mut dyn Reader,
    name: &str,
    spec: &FabricSpec,
    before: PkeyLedger,
) -> Result<(IbFabric, IbDesired, PkeyLedger, bool)> {
    let (fabric, ports) = model(name, spec)?;
    let intent = intent(r, &ports)?;
    let next = allocate_pkeys(&fabric, &intent, &before).map_err(ib_error)?;
    let desired = ib::plan(&fabric, &ports, &intent, &next).map_err(ib_error)?;
    let changed = next != before;
    Ok((fabric, desired, next, changed))
}

/// The partitions the subnet manager must have now, and the fabric's
/// intent generation they are. Stores the extended PKey ledger (under the
/// fabric's lock, bumping the generation) when a tenant arrived or left.
pub fn desired(w: &mut dyn Writer, fabric_id: &str) -> Result<(IbFabric, IbDesired, i64)> {
    let rec = fabrics::get(w, fabric_id)?;
    let (fabric, desired, next, changed) = compute(w, &rec.name, &rec.spec, ledger_of(&rec)?)?;
    let mut generation = rec.intent_generation;
    if changed {
        generation = fabrics::lock_intent(w, fabric_id)?.generation;
        let json = serde_json::to_string(&next)
            .map_err(|e| Error::internal(format!("PKey ledger: {e}")))?;
        fabrics::set_ledger(w, fabric_id, &json)?;
    }
    Ok((fabric, desired, generation))
}

/// The partitions the subnet manager was last given.
pub fn applied(r: &mut dyn Reader, fabric_id: &str) -> Result<IbDesired> {
    let state = fabrics::switch_states(r, fabric_id)?
        .into_iter()
        .find(|s| s.switch == SUBNET_MANAGER)
        .and_then(|s| s.applied);
    match state {
        None => Ok(IbDesired::default()),
        Some(json) => serde_json::from_str(&json)
            .map_err(|e| Error::internal(format!("stored partitions: {e}"))),
    }
}

/// Partitions that still hold one of the node's ports, per what the subnet
/// manager was last given (empty: the node is in no tenant partition).
pub fn node_partitions(
    r: &mut dyn Reader,
    rec: &FabricRecord,
    node_id: &str,
) -> Result<Vec<String>> {
    let Some(s) = &rec.spec.infiniband else { return Ok(Vec::new()) };
    let guids: BTreeSet<String> = s
        .ports
        .iter()
        .filter(|p| p.node == node_id)
        .filter_map(|p| ib::normalize_guid(&p.guid, "guid").ok())
        .collect();
    if guids.is_empty() {
        return Ok(Vec::new());
    }
    Ok(applied(r, &rec.id)?
        .partitions
        .iter()
        .filter(|(_, p)| p.members.iter().any(|g| guids.contains(g)))
        .map(|(pkey, p)| format!("{} ({pkey:#06x})", p.name))
        .collect())
}
