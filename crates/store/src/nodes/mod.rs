//! GPU nodes: the record placement and the lifecycle read (here), their
//! static provisioning addresses (`boot_network`), and what the lifecycle
//! keeps of them beyond their state (`bmc`: baselines, BMC journal and
//! records, firmware updates, inventory).

use crate::backend::{Reader, Row, Writer};
use crate::{check_generation, rfc, vals};
use neocloud_common::{new_id, time::now_micros, Error, NameOrId, Result};
use neocloud_placement::{Availability, NodeSpec};
use neocloud_types::{BootMethod, BootNetwork, Node, NodeCreate, NodeLifecycle};

mod bmc;
mod boot_network;
pub use bmc::*;
pub use boot_network::*;
use boot_network::{check_boot_pair, set_boot_network};

const COLS: &str = "id, name, site, pod, su, rack, nvlink_domain, gpu_model, gpus, mig_capable, availability, generation, created_at, updated_at, gpu_memory_gb, nics, boot_method";
const SELECT: &str = "SELECT id, name, site, pod, su, rack, nvlink_domain, gpu_model, gpus, mig_capable, availability, generation, created_at, updated_at, gpu_memory_gb, nics, \
     lifecycle, lifecycle_since, (SELECT endpoint FROM node_bmcs b WHERE b.node_id = nodes.id), macs, boot_method, boot_network, bmc_health, bmc_health_faults FROM nodes";

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
        lifecycle: lifecycle_at(r, 16)?,
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
        hardware_health: r.opt_str(22)?,
        hardware_faults: faults_of(r.opt_str(23)?)?,
    })
}

/// The node's lifecycle state, stored as JSON in column `i`.
fn lifecycle_at(r: &Row, i: usize) -> Result<NodeLifecycle> {
    serde_json::from_str(&r.str(i)?).map_err(|e| Error::internal(format!("node lifecycle: {e}")))
}

/// The parts a node's BMC reports unhealthy, as stored (`None`: none read).
pub(crate) fn faults_of(stored: Option<String>) -> Result<Vec<String>> {
    stored
        .map(|j| serde_json::from_str(&j))
        .transpose()
        .map(Option::unwrap_or_default)
        .map_err(|e| Error::internal(format!("node hardware faults: {e}")))
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
        availability: placement_availability(&n.lifecycle, n.availability),
    }
}

/// Every node as placement sees it ([`spec`]), read narrowly: an engine
/// rebuild reads every node.
pub fn list_specs(r: &mut dyn Reader) -> Result<Vec<NodeSpec>> {
    r.query(
        "SELECT id, name, site, pod, su, rack, nvlink_domain, gpu_model, gpus, mig_capable, availability, lifecycle FROM nodes ORDER BY name",
        &[],
    )?
    .iter()
    .map(|r| {
        let lifecycle = lifecycle_at(r, 11)?;
        Ok(NodeSpec {
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
            availability: placement_availability(
                &lifecycle,
                parse_availability(&r.str(10)?)?,
            ),
        })
    })
    .collect()
}

/// A node's availability to placement, from its lifecycle state and the
/// provider's availability.
fn placement_availability(lifecycle: &NodeLifecycle, availability: Availability) -> Availability {
    // Only an available node is schedulable, whatever its availability.
    // A node in maintenance only mirrors its availability: put back in
    // service, it is schedulable at once (its controller's next step
    // makes it available, and provisions what was placed on it). A node
    // provisioning or handed over is its instance's: the instance's
    // allocation holds every unit of it, so placement sees it as
    // available and full (it gives nothing of it out) and a tenant's
    // node moving from one of these states to the next changes nothing
    // placement sees (no generation bump, no replica reloads).
    match lifecycle {
        NodeLifecycle::Available
        | NodeLifecycle::Maintenance
        | NodeLifecycle::Provisioning { .. }
        | NodeLifecycle::Active { .. } => availability,
        NodeLifecycle::Enrolling
        | NodeLifecycle::Inspecting
        | NodeLifecycle::Releasing { .. }
        | NodeLifecycle::Sanitizing { .. } => Availability::Maintenance,
        NodeLifecycle::Failed { .. } => Availability::Failed,
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
/// provision or release, a power action or a rebuild, maintenance, a
/// failed node's pending instance to place on another node). Ids
/// only: the controller reads each node again once it holds its claim.
pub fn ids_in_progress(r: &mut dyn Reader) -> Result<Vec<String>> {
    r.query(
        "SELECT id FROM nodes WHERE lifecycle_state IN ('enrolling', 'inspecting', 'provisioning', 'releasing', 'sanitizing') \
         OR inspect_requested_at > lifecycle_since \
         OR (lifecycle_state = 'available' AND (availability = 'maintenance' \
             OR EXISTS (SELECT 1 FROM instances i WHERE i.node_id = nodes.id AND i.state = 'pending'))) \
         OR (lifecycle_state = 'maintenance' AND availability = 'schedulable') \
         OR (lifecycle_state = 'failed' AND EXISTS (SELECT 1 FROM instances i \
             WHERE i.node_id = nodes.id AND i.state = 'pending')) \
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

/// The name of the node other than `except` one of whose MACs is `mac`.
pub fn mac_owner(r: &mut dyn Reader, mac: &str, except: &str) -> Result<Option<String>> {
    let rows = r.query(
        "SELECT n.name FROM node_macs m JOIN nodes n ON n.id = m.node_id \
         WHERE m.mac = ? AND m.node_id <> ? ORDER BY n.name LIMIT 1",
        vals![mac.to_ascii_lowercase(), except],
    )?;
    rows.first().map(|row| row.str(0)).transpose()
}

/// Rewrites the node's rows in the MAC index from its inspected and
/// declared MACs (after either changed). A MAC another node has is
/// refused, naming where this node has it: the boot service finds a node
/// by the MAC it boots from, and two nodes with one MAC would boot each
/// other's scripts (tokens, images and all).
pub fn index_macs(w: &mut dyn Writer, id: &str) -> Result<()> {
    index_macs_of(w, id, true)
}

/// [`index_macs`]; `strict` off (the migration that fills the index for
/// nodes stored before it) indexes a MAC another node has too.
fn index_macs_of(w: &mut dyn Writer, id: &str, strict: bool) -> Result<()> {
    let n = get(w, id)?;
    w.execute("DELETE FROM node_macs WHERE node_id = ?", vals![id])?;
    let declared = n
        .nics
        .iter()
        .enumerate()
        .filter_map(|(i, x)| Some((format!("nics[{i}].mac"), x.mac.clone()?)));
    let boot = n.boot_network.iter().map(|b| ("boot_network.mac".to_string(), b.mac.clone()));
    let inspected = n.macs.iter().map(|m| ("macs".to_string(), m.clone()));
    let mut macs: Vec<(String, String)> = declared
        .chain(boot)
        .chain(inspected)
        .map(|(field, m)| (m.to_ascii_lowercase(), field))
        .collect();
    // The first place each MAC is named (declared before inspected).
    let mut seen = std::collections::BTreeSet::new();
    macs.retain(|(m, _)| seen.insert(m.clone()));
    for (mac, field) in macs {
        if strict && mac_owner(w, &mac, id)?.is_some() {
            return Err(Error::AlreadyExists { kind: "node", field, value: mac });
        }
        w.execute("INSERT INTO node_macs (mac, node_id) VALUES (?, ?)", vals![mac, id])?;
    }
    Ok(())
}

/// Fills the MAC index for every node (the migration that creates it).
pub(crate) fn index_all_macs(w: &mut dyn Writer) -> Result<()> {
    let ids = w.query("SELECT id FROM nodes", &[])?;
    for row in &ids {
        index_macs_of(w, &row.str(0)?, false)?;
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
    if crate::allocation_holds::node_held(w, id)? {
        return Err(Error::conflict("node holds allocations: release them first"));
    }
    let live = w.query(
        "SELECT COUNT(*) FROM instances WHERE node_id = ? AND state <> 'released'",
        vals![id],
    )?;
    if live.first().map(|r| r.i64(0)).transpose()?.unwrap_or(0) > 0 {
        return Err(Error::conflict("an instance is on the node: it must be released first"));
    }
    let cabled = w.query(
        "SELECT f.name FROM fabric_links l JOIN fabrics f ON f.id = l.fabric_id \
         WHERE l.node_id = ? ORDER BY f.name LIMIT 1",
        vals![id],
    )?;
    if let Some(row) = cabled.first() {
        return Err(Error::conflict(format!(
            "the node is cabled in fabric {}: take its links out of the fabric's document first",
            row.str(0)?
        )));
    }
    w.execute("DELETE FROM node_bmcs WHERE node_id = ?", vals![id])?;
    w.execute("DELETE FROM node_macs WHERE node_id = ?", vals![id])?;
    w.execute("DELETE FROM boot_tokens WHERE node_id = ?", vals![id])?;
    w.execute("DELETE FROM agent_steps WHERE node_id = ?", vals![id])?;
    w.execute("DELETE FROM agents WHERE node_id = ?", vals![id])?;
    crate::allocation_holds::forget_node(w, id)?;
    // A write on another replica that named the node after the checks above
    // read it (a placement, an inspection, a cabling): its rows name the
    // node, whose delete then fails.
    let deleted = w.execute("DELETE FROM nodes WHERE id = ?", vals![id]).map_err(|e| {
        e.stale_as(Error::conflict(
            "the node changed concurrently (placed on, inspected or cabled): look again and retry",
        ))
    })?;
    if deleted == 0 {
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

/// Nodes by their hardware health as their BMCs last said it (`OK`,
/// `Warning`, `Critical`; nodes not read yet left out).
pub fn health_counts(r: &mut dyn Reader) -> Result<Vec<(String, i64)>> {
    r.query(
        "SELECT bmc_health, COUNT(*) FROM nodes WHERE bmc_health IS NOT NULL GROUP BY bmc_health ORDER BY bmc_health",
        &[],
    )?
    .iter()
    .map(|row| Ok((row.str(0)?, row.i64(1)?)))
    .collect()
}
