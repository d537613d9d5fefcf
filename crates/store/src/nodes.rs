//! GPU nodes as placement sees them (provider scope).

use crate::backend::{Reader, Row, Writer};
use crate::{check_generation, rfc, vals};
use neocloud_common::{new_id, time::now_micros, Error, NameOrId, Result};
use neocloud_placement::{Availability, NodeSpec};
use neocloud_types::{BootMethod, BootNetwork, Node, NodeCreate, NodeLifecycle};

const COLS: &str = "id, name, site, pod, su, rack, nvlink_domain, gpu_model, gpus, mig_capable, availability, generation, created_at, updated_at, gpu_memory_gb, nics, boot_method";
const SELECT: &str = "SELECT id, name, site, pod, su, rack, nvlink_domain, gpu_model, gpus, mig_capable, availability, generation, created_at, updated_at, gpu_memory_gb, nics, \
     lifecycle, lifecycle_since, (SELECT endpoint FROM node_bmcs b WHERE b.node_id = nodes.id), macs, boot_method, boot_network FROM nodes";

pub fn availability_str(a: Availability) -> &'static str {
    match a {
        Availability::Schedulable => "schedulable",
        Availability::Maintenance => "maintenance",
        Availability::Failed => "failed",
    }
}

fn parse_availability(s: &str) -> Result<Availability> {
    match s {
        "schedulable" => Ok(Availability::Schedulable),
        "maintenance" => Ok(Availability::Maintenance),
        "failed" => Ok(Availability::Failed),
        other => Err(Error::internal(format!("bad node availability {other:?}"))),
    }
}

fn from_row(r: &Row) -> Result<Node> {
    Ok(Node {
        id: r.str(0)?,
        name: r.str(1)?,
        site: r.str(2)?,
        pod: r.str(3)?,
        su: r.str(4)?,
        rack: r.str(5)?,
        nvlink_domain: r.str(6)?,
        gpu_model: r.str(7)?,
        gpus: r.i64(8)? as u8,
        mig_capable: r.bool(9)?,
        availability: parse_availability(&r.str(10)?)?,
        generation: r.i64(11)?,
        created_at: rfc(r.i64(12)?),
        updated_at: rfc(r.i64(13)?),
        gpu_memory_gb: r.i64(14)? as u32,
        nics: serde_json::from_str(&r.str(15)?)
            .map_err(|e| Error::internal(format!("node nics: {e}")))?,
        lifecycle: serde_json::from_str(&r.str(16)?)
            .map_err(|e| Error::internal(format!("node lifecycle: {e}")))?,
        lifecycle_since: rfc(r.i64(17)?),
        bmc_endpoint: r.opt_str(18)?,
        macs: serde_json::from_str(&r.str(19)?)
            .map_err(|e| Error::internal(format!("node macs: {e}")))?,
        boot_method: {
            let m = r.str(20)?;
            BootMethod::parse(&m)
                .ok_or_else(|| Error::internal(format!("bad node boot method {m:?}")))?
        },
        boot_network: r
            .opt_str(21)?
            .map(|j| serde_json::from_str(&j))
            .transpose()
            .map_err(|e| Error::internal(format!("node boot network: {e}")))?,
    })
}

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

/// The lowest address `range` hands out that no node other than
/// `except` holds; `None` when all are taken (under the address lock).
pub fn free_boot_address(
    w: &mut dyn Writer,
    range: &neocloud_types::AddressRange,
    except: Option<&str>,
) -> Result<Option<std::net::Ipv4Addr>> {
    lock_boot_addresses(w)?;
    let rows = w.query(
        "SELECT boot_address FROM nodes WHERE boot_address IS NOT NULL AND id <> ?",
        vals![except.unwrap_or("")],
    )?;
    let mut taken = std::collections::HashSet::new();
    for row in &rows {
        if let Ok(a) = row.str(0)?.parse::<std::net::Ipv4Addr>() {
            taken.insert(a);
        }
    }
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

/// The names of nodes, by id (in the ids' order; ids not found left out).
pub(crate) fn names_of(r: &mut dyn Reader, ids: &[String]) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for id in ids {
        if let Some(row) = r.query("SELECT name FROM nodes WHERE id = ?", vals![id])?.first() {
            out.push(row.str(0)?);
        }
    }
    Ok(out)
}

/// Sets (or clears) a node's static provisioning address: checked, unique
/// among nodes (address and MAC), its MAC in the boot service's index.
fn set_boot_network(w: &mut dyn Writer, id: &str, bn: Option<&BootNetwork>) -> Result<()> {
    let checked = bn.map(BootNetwork::check).transpose()?;
    if let Some(a) = &checked {
        let other = w.query(
            "SELECT node_id FROM node_macs WHERE mac = ? AND node_id <> ?",
            vals![&a.mac, id],
        )?;
        if !other.is_empty() {
            return Err(Error::AlreadyExists {
                kind: "node",
                field: "boot_network.mac".into(),
                value: a.mac.clone(),
            });
        }
    }
    // Stored as checked: the MAC in lower case, the addresses canonical.
    let stored = bn
        .zip(checked.as_ref())
        .map(|(b, a)| {
            let canonical = BootNetwork {
                mac: a.mac.clone(),
                address: Some(format!("{}/{}", a.address, a.prefix)),
                network: b.network.clone(),
                gateway: a.gateway.map(|g| g.to_string()),
                dns: a.dns.iter().map(ToString::to_string).collect(),
            };
            serde_json::to_string(&canonical).map_err(|e| Error::internal(e.to_string()))
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
fn check_boot_pair(method: BootMethod, network: Option<&BootNetwork>, field: &str) -> Result<()> {
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

/// The placement view of a node.
pub fn spec(n: &Node) -> NodeSpec {
    NodeSpec {
        id: n.id.clone(),
        name: n.name.clone(),
        site: n.site.clone(),
        pod: n.pod.clone(),
        su: n.su.clone(),
        rack: n.rack.clone(),
        nvlink_domain: n.nvlink_domain.clone(),
        gpu_model: n.gpu_model.clone(),
        gpus: n.gpus,
        mig_capable: n.mig_capable,
        // Only an available node is schedulable, whatever its availability.
        availability: match &n.lifecycle {
            NodeLifecycle::Available => n.availability,
            NodeLifecycle::Enrolling
            | NodeLifecycle::Inspecting
            | NodeLifecycle::Provisioning { .. }
            | NodeLifecycle::Active { .. }
            | NodeLifecycle::Releasing { .. }
            | NodeLifecycle::Sanitizing { .. }
            | NodeLifecycle::Maintenance => Availability::Maintenance,
            NodeLifecycle::Failed { .. } => Availability::Failed,
        },
    }
}

pub fn lookup(r: &mut dyn Reader, key: &NameOrId) -> Result<Option<Node>> {
    let rows = match key {
        NameOrId::Id(id) => r.query(&format!("{SELECT} WHERE id = ?"), vals![id])?,
        NameOrId::Name(n) => r.query(&format!("{SELECT} WHERE name = ?"), vals![n.as_str()])?,
    };
    rows.first().map(from_row).transpose()
}

pub fn get(r: &mut dyn Reader, id: &str) -> Result<Node> {
    lookup(r, &NameOrId::Id(id.to_string()))?.ok_or_else(|| Error::not_found("node", id))
}

pub fn list(r: &mut dyn Reader) -> Result<Vec<Node>> {
    r.query(&format!("{SELECT} ORDER BY name"), &[])?.iter().map(from_row).collect()
}

/// Creates a node. With BMC credentials (sealed by the caller) it starts
/// `enrolling`; without, `available`.
pub fn create(
    w: &mut dyn Writer,
    p: &NodeCreate,
    bmc_password_sealed: Option<&str>,
) -> Result<Node> {
    if p.gpus == 0 || p.gpus > 16 {
        return Err(Error::invalid_value("gpus", "must be between 1 and 16"));
    }
    let id = new_id();
    let now = now_micros();
    let domain = p.nvlink_domain.as_ref().unwrap_or(&p.name);
    let memory =
        match (p.gpu_memory_gb, neocloud_placement::mig::GpuModel::parse(p.gpu_model.as_str())) {
            (Some(0), _) => return Err(Error::invalid_value("gpu_memory_gb", "must be positive")),
            (Some(m), _) => m,
            (None, Some(model)) => model.memory_gb(),
            (None, None) => {
                return Err(Error::invalid_value(
                    "gpu_memory_gb",
                    format!("required: the memory of a {} GPU is not known here", p.gpu_model),
                ))
            }
        };
    let mut rails = std::collections::BTreeSet::new();
    for (i, n) in p.nics.iter().enumerate() {
        if n.rail > 15 {
            return Err(Error::invalid_value(
                format!("nics[{i}].rail"),
                "must be between 0 and 15",
            ));
        }
        if !rails.insert((n.fabric.clone(), n.rail)) {
            return Err(Error::invalid_value(
                format!("nics[{i}].rail"),
                "two NICs on one rail of one fabric",
            ));
        }
        if let Some(m) = &n.mac {
            if neocloud_types::mac_octets(m).is_none() {
                return Err(Error::invalid_value(
                    format!("nics[{i}].mac"),
                    "must be a MAC address like 52:54:00:12:34:56",
                ));
            }
        }
        for (field, v) in
            [("name", &n.name), ("fabric", &n.fabric), ("switch", &n.switch), ("port", &n.port)]
        {
            if v.is_empty() || v.len() > 64 || v.chars().any(|c| c.is_control()) {
                return Err(Error::invalid_value(
                    format!("nics[{i}].{field}"),
                    "must be 1 to 64 printable characters",
                ));
            }
        }
    }
    if p.boot_method.is_some() && p.bmc.is_none() {
        return Err(Error::invalid_value("boot_method", "needs a bmc to boot the node through"));
    }
    if p.boot_network.is_some() && p.bmc.is_none() {
        return Err(Error::invalid_value("boot_network", "needs a bmc to boot the node through"));
    }
    if let Some(bn) = &p.boot_network {
        bn.check()?;
    }
    check_boot_pair(p.boot_method.unwrap_or_default(), p.boot_network.as_ref(), "boot_network")?;
    let nics = serde_json::to_string(&p.nics).map_err(|e| Error::internal(e.to_string()))?;
    w.execute(
        &format!("INSERT INTO nodes ({COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'schedulable', 1, ?, ?, ?, ?, ?)"),
        vals![
            &id,
            p.name.as_str(),
            p.site.as_str(),
            p.pod.as_str(),
            p.su.as_str(),
            p.rack.as_str(),
            domain.as_str(),
            p.gpu_model.as_str(),
            p.gpus as i64,
            p.mig_capable,
            now,
            now,
            memory as i64,
            nics,
            p.boot_method.unwrap_or_default().as_str()
        ],
    )
    .map_err(|e| {
        e.unique_as(Error::AlreadyExists { kind: "node", field: "name".into(), value: p.name.to_string() })
    })?;
    let lifecycle = match (&p.bmc, bmc_password_sealed) {
        (Some(b), Some(sealed)) => {
            w.execute(
                "INSERT INTO node_bmcs (node_id, endpoint, username, password_sealed, system_path) VALUES (?, ?, ?, ?, NULL)",
                vals![&id, b.endpoint.as_str(), b.username.as_str(), sealed],
            )?;
            NodeLifecycle::Enrolling
        }
        (None, _) => NodeLifecycle::Available,
        (Some(_), None) => return Err(Error::internal("BMC password not sealed")),
    };
    w.execute(
        "UPDATE nodes SET lifecycle = ?, lifecycle_state = ?, lifecycle_since = ? WHERE id = ?",
        vals![lifecycle_json(&lifecycle)?, lifecycle.name(), now, &id],
    )?;
    if p.boot_network.is_some() {
        set_boot_network(w, &id, p.boot_network.as_ref())?;
    } else {
        index_macs(w, &id)?;
    }
    get(w, &id)
}

fn lifecycle_json(l: &NodeLifecycle) -> Result<String> {
    serde_json::to_string(l).map_err(|e| Error::internal(e.to_string()))
}

/// Moves a node from `from` to `to` if it is still in `from` and the
/// provider has not changed it since it was read at `generation` (the
/// lifecycle controller's only write path). Returns whether it moved: a
/// step decided on a record the provider changed meanwhile (maintenance
/// lifted, an inspection requested) is not recorded, and is taken again
/// from the fresh record. The lifecycle is status, not configuration: it
/// does not change the node's `generation`, so a provider's edit is never
/// refused because the controller moved the node meanwhile.
pub fn transition(
    w: &mut dyn Writer,
    id: &str,
    (from, generation): (&NodeLifecycle, i64),
    to: &NodeLifecycle,
) -> Result<bool> {
    // One time for both: a record updated since its last transition has
    // `updated_at` after `lifecycle_since` (the lifecycle relies on it).
    let now = now_micros();
    let n = w.execute(
        "UPDATE nodes SET lifecycle = ?, lifecycle_state = ?, lifecycle_since = ?, updated_at = ? WHERE id = ? AND lifecycle = ? AND generation = ?",
        vals![lifecycle_json(to)?, to.name(), now, now, id, lifecycle_json(from)?, generation],
    )?;
    Ok(n == 1)
}

/// The ids of the nodes the lifecycle controller has work for, longest
/// in their state first: those in a state it drives, and those with intent
/// recorded since they entered their state (inspect again, an instance to
/// provision or release, a power action or a rebuild, maintenance). Ids
/// only: the controller reads each node again once it holds its claim.
pub fn ids_in_progress(r: &mut dyn Reader) -> Result<Vec<String>> {
    r.query(
        "SELECT id FROM nodes WHERE lifecycle_state IN ('enrolling', 'inspecting', 'provisioning', 'releasing', 'sanitizing') \
         OR inspect_requested_at > lifecycle_since \
         OR (lifecycle_state = 'available' AND (availability = 'maintenance' \
             OR EXISTS (SELECT 1 FROM instances i WHERE i.node_id = nodes.id AND i.state = 'pending'))) \
         OR (lifecycle_state = 'maintenance' AND availability = 'schedulable') \
         OR (lifecycle_state IN ('active', 'failed', 'available') AND EXISTS (SELECT 1 FROM instances i \
             WHERE i.node_id = nodes.id AND i.state <> 'released' AND (i.release_requested_at > 0 \
             OR (i.state = 'ready' AND (i.power_pending = 1 OR i.rebuild_image_id IS NOT NULL))))) \
         ORDER BY lifecycle_since, id",
        &[],
    )?
    .iter()
    .map(|row| row.str(0))
    .collect()
}

/// The node a MAC address belongs to (inspected or declared), through the
/// MAC index: the boot service asks on every network boot.
pub fn by_mac(r: &mut dyn Reader, mac: &str) -> Result<Option<Node>> {
    let mac = mac.to_ascii_lowercase();
    let ids =
        r.query("SELECT node_id FROM node_macs WHERE mac = ? ORDER BY node_id", vals![&mac])?;
    for row in &ids {
        let n = get(r, &row.str(0)?)?;
        let declared = n.nics.iter().filter_map(|x| x.mac.as_deref());
        let boot = n.boot_network.iter().map(|b| b.mac.as_str());
        if n.macs
            .iter()
            .map(String::as_str)
            .chain(declared)
            .chain(boot)
            .any(|m| m.eq_ignore_ascii_case(&mac))
        {
            return Ok(Some(n));
        }
    }
    Ok(None)
}

/// Rewrites the node's rows in the MAC index from its inspected and
/// declared MACs (after either changed).
pub fn index_macs(w: &mut dyn Writer, id: &str) -> Result<()> {
    let n = get(w, id)?;
    w.execute("DELETE FROM node_macs WHERE node_id = ?", vals![id])?;
    let declared = n.nics.iter().filter_map(|x| x.mac.clone());
    let boot = n.boot_network.iter().map(|b| b.mac.clone());
    let mut macs: Vec<String> = n
        .macs
        .iter()
        .cloned()
        .chain(declared)
        .chain(boot)
        .map(|m| m.to_ascii_lowercase())
        .collect();
    macs.sort();
    macs.dedup();
    for mac in macs {
        w.execute("INSERT INTO node_macs (mac, node_id) VALUES (?, ?)", vals![mac, id])?;
    }
    Ok(())
}

/// Fills the MAC index for every node (the migration that creates it).
pub(crate) fn index_all_macs(w: &mut dyn Writer) -> Result<()> {
    let ids = w.query("SELECT id FROM nodes", &[])?;
    for row in &ids {
        index_macs(w, &row.str(0)?)?;
    }
    Ok(())
}

/// The tenant and instance whose data may still be on the node (set when
/// provisioning starts, cleared by a complete sanitization).
pub fn dirty(r: &mut dyn Reader, id: &str) -> Result<Option<(String, String)>> {
    let rows =
        r.query("SELECT dirty_tenant_id, dirty_instance_id FROM nodes WHERE id = ?", vals![id])?;
    let Some(row) = rows.first() else { return Err(Error::not_found("node", id)) };
    Ok(match (row.opt_str(0)?, row.opt_str(1)?) {
        (Some(t), Some(i)) => Some((t, i)),
        _ => None,
    })
}

pub fn set_dirty(
    w: &mut dyn Writer,
    id: &str,
    tenant_instance: Option<(&str, &str)>,
) -> Result<()> {
    let (t, i) = match tenant_instance {
        Some((t, i)) => (Some(t), Some(i)),
        None => (None, None),
    };
    w.execute(
        "UPDATE nodes SET dirty_tenant_id = ?, dirty_instance_id = ? WHERE id = ?",
        vals![t, i, id],
    )?;
    Ok(())
}

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
    let rows = r.query(&format!("SELECT {column} FROM nodes WHERE id = ?"), vals![id])?;
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
pub fn stage_bmc_password(w: &mut dyn Writer, id: &str, next_sealed: &str) -> Result<()> {
    w.execute(
        "UPDATE node_bmcs SET password_next_sealed = ? WHERE node_id = ?",
        vals![next_sealed, id],
    )?;
    Ok(())
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

/// The provider's update of a node: its availability, and its boot
/// method and static provisioning address when given (a node without a
/// BMC has none to change).
pub fn update(
    w: &mut dyn Writer,
    id: &str,
    generation: i64,
    a: Availability,
    boot: Option<BootMethod>,
    boot_network: Option<Option<&BootNetwork>>,
) -> Result<Node> {
    if boot.is_some() && bmc(w, id)?.is_none() {
        return Err(Error::invalid_value("boot_method", "needs a bmc to boot the node through"));
    }
    if boot_network.is_some_and(|b| b.is_some()) && bmc(w, id)?.is_none() {
        return Err(Error::invalid_value("boot_network", "needs a bmc to boot the node through"));
    }
    if let Some(Some(bn)) = boot_network {
        bn.check()?;
    }
    let current = get(w, id)?;
    let network = boot_network.unwrap_or(current.boot_network.as_ref());
    let field = if boot_network.is_some() { "boot_network" } else { "boot_method" };
    check_boot_pair(boot.unwrap_or(current.boot_method), network, field)?;
    let n = w.execute(
        "UPDATE nodes SET availability = ?, generation = generation + 1, updated_at = ? WHERE id = ? AND generation = ?",
        vals![availability_str(a), now_micros(), id, generation],
    )?;
    check_generation(w, n, "nodes", "node", id, generation, None)?;
    if let Some(m) = boot {
        w.execute("UPDATE nodes SET boot_method = ? WHERE id = ?", vals![m.as_str(), id])?;
    }
    if let Some(bn) = boot_network {
        set_boot_network(w, id, bn)?;
    }
    get(w, id)
}

/// Deletes a node that holds no allocation.
pub fn delete(w: &mut dyn Writer, id: &str) -> Result<()> {
    let rows = w.query("SELECT COUNT(*) FROM allocation_units WHERE node_id = ?", vals![id])?;
    if rows.first().map(|r| r.i64(0)).transpose()?.unwrap_or(0) > 0 {
        return Err(Error::conflict("node holds allocations: release them first"));
    }
    let live = w.query(
        "SELECT COUNT(*) FROM instances WHERE node_id = ? AND state <> 'released'",
        vals![id],
    )?;
    if live.first().map(|r| r.i64(0)).transpose()?.unwrap_or(0) > 0 {
        return Err(Error::conflict("an instance is on the node: it must be released first"));
    }
    w.execute("DELETE FROM node_bmcs WHERE node_id = ?", vals![id])?;
    w.execute("DELETE FROM node_macs WHERE node_id = ?", vals![id])?;
    w.execute("DELETE FROM boot_tokens WHERE node_id = ?", vals![id])?;
    w.execute("DELETE FROM agent_steps WHERE node_id = ?", vals![id])?;
    w.execute("DELETE FROM agents WHERE node_id = ?", vals![id])?;
    if w.execute("DELETE FROM nodes WHERE id = ?", vals![id])? == 0 {
        return Err(Error::not_found("node", id));
    }
    Ok(())
}

/// Nodes per lifecycle state name (failed nodes of every reason together).
pub fn lifecycle_counts(r: &mut dyn Reader) -> Result<Vec<(String, i64)>> {
    r.query("SELECT lifecycle_state, COUNT(*) FROM nodes GROUP BY lifecycle_state ORDER BY lifecycle_state", &[])?
        .iter()
        .map(|row| Ok((row.str(0)?, row.i64(1)?)))
        .collect()
}

/// Nodes that entered `state` before `before` (microseconds).
pub fn count_in_state_since(r: &mut dyn Reader, state: &str, before: i64) -> Result<i64> {
    count_since(r, state, before, "")
}

/// As [`count_in_state_since`], of the nodes without firmware updates in
/// their plan.
pub fn count_unplanned_in_state_since(r: &mut dyn Reader, state: &str, before: i64) -> Result<i64> {
    count_since(r, state, before, " AND firmware_updates IS NULL")
}

fn count_since(r: &mut dyn Reader, state: &str, before: i64, and: &str) -> Result<i64> {
    let rows = r.query(
        &format!(
            "SELECT COUNT(*) FROM nodes WHERE lifecycle_state = ? AND lifecycle_since < ?{and}"
        ),
        vals![state, before],
    )?;
    rows.first().map(|r| r.i64(0)).transpose().map(|n| n.unwrap_or(0))
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
    let held = w.query("SELECT COUNT(*) FROM allocation_units WHERE node_id = ?", vals![id])?;
    let failed = matches!(get(w, id)?.lifecycle, NodeLifecycle::Failed { .. });
    // A failed node may hold its last tenant's allocation until it is
    // sanitized: inspecting it again is how it gets there.
    if !failed && held.first().map(|r| r.i64(0)).transpose()?.unwrap_or(0) > 0 {
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

/// The firmware versions read at the end of a sanitization, into the
/// node's recorded inventory (its other parts are the inspection's).
pub fn refresh_inventory_firmware(
    w: &mut dyn Writer,
    id: &str,
    firmware: &[neocloud_types::InventoryFirmware],
) -> Result<()> {
    let Some(mut inv) = bmc_inventory(w, id)? else { return Ok(()) };
    inv.firmware = firmware.to_vec();
    inv.firmware_read_at = Some(rfc(now_micros()));
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
