//! InfiniBand partitions (PKeys) for tenant isolation, pure: the types, the
//! checks on them, and the planner from tenant intent to the partitions a
//! subnet manager must have.
//!
//! The flow mirrors the Ethernet side: `allocate_pkeys` (ledger in, ledger
//! out) -> `plan` -> either `opensm::render` (a `partitions.conf` for a
//! plain OpenSM) or `ufm::ufm_changes` (REST calls against NVIDIA UFM,
//! diffed against what UFM reports).
//!
//! Isolation rule: every tenant partition's members are full members (they
//! talk to each other); every port is only a limited member of the Default
//! partition, so tenants cannot reach each other over it.

pub mod opensm;
pub mod pkey;
pub mod ufm;

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

pub use opensm::render as render_opensm;
pub use pkey::{allocate_pkeys, PkeyLedger};
pub use ufm::{ufm_changes, UfmCall, UfmMethod};

/// The Default partition's PKey: managed by the SM, never allocated.
pub const DEFAULT_PKEY: u16 = 0x7fff;
/// The highest PKey a tenant partition may use (0x7fff is Default).
pub const MAX_TENANT_PKEY: u16 = 0x7ffe;
/// How many PKeys one port can hold (its PKey table), Default included.
pub const MAX_PKEYS_PER_PORT: usize = 128;

/// One InfiniBand subnet, with the PKeys this control plane may hand out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IbFabric {
    pub name: String,
    pub pkey_range: PkeyRange,
}

/// An inclusive range of PKeys, within `0x0001..=0x7ffe`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PkeyRange {
    pub first: u16,
    pub last: u16,
}

/// One HCA port of a node. A node may have several.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IbPort {
    pub node: String,
    /// Port GUID: 16 hex digits, no colons (case is normalized to lower).
    pub guid: String,
}

/// What tenants asked for.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IbIntent {
    pub partitions: Vec<IbPartition>,
}

/// A tenant partition: all ports of `nodes` become full members.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IbPartition {
    pub id: String,
    pub tenant: String,
    pub nodes: Vec<String>,
}

/// The partitions the SM must have, keyed by PKey (the key UFM reports
/// them by, so desired and actual compare directly). The Default partition
/// is not listed: the SM owns it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IbDesired {
    pub partitions: BTreeMap<u16, IbPartitionState>,
}

/// One partition as desired (or as read back).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IbPartitionState {
    /// `[A-Za-z0-9_]` only, derived from the partition id.
    pub name: String,
    /// Port GUIDs, lower-case 16 hex digits, all full members.
    pub members: BTreeSet<String>,
}

/// The partition name for an id: every character outside `[A-Za-z0-9_]`
/// becomes `_`, so no id can inject `partitions.conf` syntax (`=`, `,`,
/// `:`, `;`, `#`, spaces, newlines).
pub fn partition_name(id: &str) -> String {
    id.chars()
        .map(|c| match c.is_ascii_alphanumeric() || c == '_' {
            true => c,
            false => '_',
        })
        .collect()
}

/// A port GUID in canonical form (16 lower-case hex digits), or an error
/// naming `field`. Canonical form makes GUIDs compare equal whatever case
/// an inventory or UFM reported them in.
pub fn normalize_guid(guid: &str, field: &str) -> Result<String> {
    let g = guid.strip_prefix("0x").or_else(|| guid.strip_prefix("0X")).unwrap_or(guid);
    match g.len() == 16 && g.chars().all(|c| c.is_ascii_hexdigit()) {
        true => Ok(g.to_ascii_lowercase()),
        false => Err(Error::invalid(field, format!("GUID {guid:?} is not 16 hex digits"))),
    }
}

/// Checks the fabric: a name, and a PKey range that excludes 0x0000 (invalid)
/// and 0x7fff (Default).
pub fn validate_fabric(fabric: &IbFabric) -> Result<()> {
    if fabric.name.trim().is_empty() {
        return Err(Error::invalid("fabric.name", "empty"));
    }
    let PkeyRange { first, last } = fabric.pkey_range;
    if first == 0 || first > MAX_TENANT_PKEY {
        return Err(Error::invalid(
            "fabric.pkey_range.first",
            format!("{first:#06x} is outside 0x0001..=0x7ffe"),
        ));
    }
    if last == 0 || last > MAX_TENANT_PKEY {
        return Err(Error::invalid(
            "fabric.pkey_range.last",
            format!("{last:#06x} is outside 0x0001..=0x7ffe"),
        ));
    }
    if first > last {
        return Err(Error::invalid(
            "fabric.pkey_range",
            format!("first {first:#06x} is after last {last:#06x}"),
        ));
    }
    Ok(())
}

/// Checks the intent on its own: ids present and unique, names derived from
/// them unique (two ids must not collapse to one OpenSM partition) and not
/// `Default`, tenants and node names present.
pub fn validate_intent(intent: &IbIntent) -> Result<()> {
    let mut ids = BTreeSet::new();
    let mut names: BTreeMap<String, &str> = BTreeMap::new();
    for (i, p) in intent.partitions.iter().enumerate() {
        let field = format!("partitions[{i}].id");
        if p.id.trim().is_empty() {
            return Err(Error::invalid(field, "empty"));
        }
        if !ids.insert(p.id.as_str()) {
            return Err(Error::invalid(field, format!("duplicate id {:?}", p.id)));
        }
        let name = partition_name(&p.id);
        if name.eq_ignore_ascii_case("default") {
            return Err(Error::invalid(field, "the name Default is the SM's own partition"));
        }
        if let Some(other) = names.insert(name.clone(), &p.id) {
            return Err(Error::invalid(
                field,
                format!("name {name:?} is also the name of partition {other:?}"),
            ));
        }
        if p.tenant.trim().is_empty() {
            return Err(Error::invalid(format!("partitions[{i}].tenant"), "empty"));
        }
        for (j, n) in p.nodes.iter().enumerate() {
            if n.trim().is_empty() {
                return Err(Error::invalid(format!("partitions[{i}].nodes[{j}]"), "empty"));
            }
        }
    }
    Ok(())
}

/// Checks the ports and returns node -> canonical GUIDs (a `0x` prefix, as
/// OpenSM writes GUIDs, is accepted and dropped). A GUID on two
/// nodes is refused: it would put one port in two tenants' hands.
pub fn validate_ports(ports: &[IbPort]) -> Result<BTreeMap<String, BTreeSet<String>>> {
    let mut by_node: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut owner: BTreeMap<String, &str> = BTreeMap::new();
    for (i, p) in ports.iter().enumerate() {
        if p.node.trim().is_empty() {
            return Err(Error::invalid(format!("ports[{i}].node"), "empty"));
        }
        let field = format!("ports[{i}].guid");
        let guid = normalize_guid(&p.guid, &field)?;
        match owner.get(&guid) {
            Some(other) if *other != p.node => {
                return Err(Error::invalid(
                    field,
                    format!("GUID {guid} is also a port of node {other:?}"),
                ));
            }
            Some(_) | None => {
                owner.insert(guid.clone(), &p.node);
            }
        }
        by_node.entry(p.node.clone()).or_default().insert(guid);
    }
    Ok(by_node)
}

/// The partitions the SM must have for `intent`, with PKeys from `ledger`.
///
/// Refuses a node in partitions of two different tenants (that node would
/// bridge them), a node with no known port, and a port that would exceed
/// its PKey table (128 entries, Default included).
pub fn plan(
    fabric: &IbFabric,
    ports: &[IbPort],
    intent: &IbIntent,
    ledger: &PkeyLedger,
) -> Result<IbDesired> {
    validate_fabric(fabric)?;
    validate_intent(intent)?;
    let by_node = validate_ports(ports)?;
    let mut tenant_of: BTreeMap<&str, (&str, usize)> = BTreeMap::new();
    let mut out = IbDesired::default();
    for (i, p) in intent.partitions.iter().enumerate() {
        let pkey = match ledger.pkeys.get(&p.id) {
            Some(k) => *k,
            None => {
                return Err(Error::unallocated(
                    format!("ledger.pkeys[{}]", p.id),
                    "no PKey for this partition; run allocate_pkeys first",
                ))
            }
        };
        if pkey == 0 || pkey > MAX_TENANT_PKEY {
            return Err(Error::invalid(
                format!("ledger.pkeys[{}]", p.id),
                format!("{pkey:#06x} is not a tenant PKey"),
            ));
        }
        let mut members = BTreeSet::new();
        for (j, n) in p.nodes.iter().enumerate() {
            let field = format!("partitions[{i}].nodes[{j}]");
            match tenant_of.get(n.as_str()) {
                Some((t, k)) if *t != p.tenant => {
                    return Err(Error::invalid(
                        field,
                        format!(
                            "node {n:?} is already in partition {:?} of tenant {t:?}",
                            intent.partitions[*k].id
                        ),
                    ));
                }
                Some(_) | None => {
                    tenant_of.insert(n, (&p.tenant, i));
                }
            }
            match by_node.get(n) {
                Some(guids) => members.extend(guids.iter().cloned()),
                None => return Err(Error::invalid(field, format!("node {n:?} has no IB port"))),
            }
        }
        if let Some(other) = out.partitions.get(&pkey) {
            return Err(Error::invalid(
                format!("ledger.pkeys[{}]", p.id),
                format!("PKey {pkey:#06x} is also partition {:?}", other.name),
            ));
        }
        out.partitions.insert(pkey, IbPartitionState { name: partition_name(&p.id), members });
    }
    check_port_limit(ports, &out)?;
    Ok(out)
}

/// Every port's PKey count (its tenant partitions plus Default) must fit its
/// PKey table; the error names the first port over.
fn check_port_limit(ports: &[IbPort], desired: &IbDesired) -> Result<()> {
    let mut count: BTreeMap<&str, usize> = BTreeMap::new();
    for p in desired.partitions.values() {
        for g in &p.members {
            *count.entry(g.as_str()).or_insert(1) += 1;
        }
    }
    for (i, p) in ports.iter().enumerate() {
        let field = format!("ports[{i}].guid");
        let guid = normalize_guid(&p.guid, &field)?;
        let n = count.get(guid.as_str()).copied().unwrap_or(1);
        if n > MAX_PKEYS_PER_PORT {
            return Err(Error::invalid(
                field,
                format!(
                    "port {guid} would be in {n} PKeys (Default included), over the limit of {MAX_PKEYS_PER_PORT}"
                ),
            ));
        }
    }
    Ok(())
}
