//! The provider's provisioning networks: the subnets and ranges nodes'
//! static provisioning addresses are drawn from, with the gateway and name
//! servers their nodes take.
//!
//! Every write that draws an address, or changes which addresses a network
//! hands out, holds the address lock ([`crate::nodes::lock_boot_addresses`])
//! to the end of its transaction, so that a draw never reads a network a
//! concurrent change is rewriting.

use crate::backend::{DbError, Reader, Row, Writer};
use crate::{check_generation, nodes, rfc, vals};
use neocloud_common::{new_id, time::now_micros, Error, NameOrId, Result};
use neocloud_types::{
    AddressRange, ProvisioningNetwork, ProvisioningNetworkCreate, ProvisioningNetworkUpdate,
};
use std::collections::{BTreeMap, HashSet};
use std::net::Ipv4Addr;

const COLS: &str =
    "id, name, subnet, first_address, last_address, gateway, dns, generation, created_at, updated_at";

/// A stored row: its request form (to check again) and its bookkeeping.
struct Stored {
    id: String,
    create: ProvisioningNetworkCreate,
    generation: i64,
    created_at: i64,
    updated_at: i64,
}

fn from_row(r: &Row) -> Result<Stored> {
    let name = r.str(1)?;
    let name = neocloud_common::Name::parse(&name)
        .map_err(|e| Error::internal(format!("provisioning network name {name:?}: {e}")))?;
    let dns: Vec<String> = serde_json::from_str(&r.str(6)?)
        .map_err(|e| Error::internal(format!("provisioning network dns: {e}")))?;
    Ok(Stored {
        id: r.str(0)?,
        create: ProvisioningNetworkCreate {
            name,
            subnet: r.str(2)?,
            first: r.str(3)?,
            last: r.str(4)?,
            gateway: r.opt_str(5)?,
            dns,
        },
        generation: r.i64(7)?,
        created_at: r.i64(8)?,
        updated_at: r.i64(9)?,
    })
}

fn range(s: &Stored) -> Result<AddressRange> {
    s.create
        .check()
        .map_err(|e| Error::internal(format!("stored provisioning network {}: {e}", s.id)))
}

/// The boot addresses held, by network name (`None`: held outside any).
fn held(r: &mut dyn Reader) -> Result<BTreeMap<Option<String>, HashSet<Ipv4Addr>>> {
    let mut out: BTreeMap<Option<String>, HashSet<Ipv4Addr>> = BTreeMap::new();
    for (_, bn) in nodes::boot_networks(r)? {
        if let Ok(a) = bn.check() {
            out.entry(bn.network).or_default().insert(a.address);
        }
    }
    Ok(out)
}

fn view(
    s: Stored,
    held: &BTreeMap<Option<String>, HashSet<Ipv4Addr>>,
) -> Result<ProvisioningNetwork> {
    let r = range(&s)?;
    let all: HashSet<&Ipv4Addr> = held.values().flatten().collect();
    let mine = held.get(&Some(r.name.clone())).map_or(0, HashSet::len);
    // Counted, not walked (a /8's range has 16 million addresses).
    let in_range = |a: &Ipv4Addr| (r.first..=r.last).contains(a);
    let size = u64::from(u32::from(r.last) - u32::from(r.first)) + 1;
    let reserved: HashSet<Ipv4Addr> =
        r.gateway.iter().chain(r.dns.iter()).copied().filter(|a| in_range(a)).collect();
    let taken = all.iter().filter(|a| in_range(a) && !reserved.contains(a)).count() as u64;
    let free = size - reserved.len() as u64 - taken;
    let c = s.create;
    Ok(ProvisioningNetwork {
        id: s.id,
        name: c.name.to_string(),
        subnet: c.subnet,
        first: c.first,
        last: c.last,
        gateway: c.gateway,
        dns: c.dns,
        nodes: u32::try_from(mine).unwrap_or(u32::MAX),
        free: u32::try_from(free).unwrap_or(u32::MAX),
        generation: s.generation,
        created_at: rfc(s.created_at),
        updated_at: rfc(s.updated_at),
    })
}

fn stored(r: &mut dyn Reader, key: &NameOrId) -> Result<Option<Stored>> {
    let (col, v) = match key {
        NameOrId::Id(id) => ("id", id.as_str()),
        NameOrId::Name(n) => ("name", n.as_str()),
    };
    r.query(&format!("SELECT {COLS} FROM provisioning_networks WHERE {col} = ?"), vals![v])?
        .first()
        .map(from_row)
        .transpose()
}

fn all(r: &mut dyn Reader) -> Result<Vec<Stored>> {
    r.query(&format!("SELECT {COLS} FROM provisioning_networks ORDER BY name"), &[])?
        .iter()
        .map(from_row)
        .collect()
}

pub fn lookup(r: &mut dyn Reader, key: &NameOrId) -> Result<Option<ProvisioningNetwork>> {
    let Some(s) = stored(r, key)? else { return Ok(None) };
    let held = held(r)?;
    view(s, &held).map(Some)
}

pub fn get(r: &mut dyn Reader, id: &str) -> Result<ProvisioningNetwork> {
    lookup(r, &NameOrId::Id(id.to_string()))?
        .ok_or_else(|| Error::not_found("provisioning network", id))
}

pub fn list(r: &mut dyn Reader) -> Result<Vec<ProvisioningNetwork>> {
    let held = held(r)?;
    all(r)?.into_iter().map(|s| view(s, &held)).collect()
}

/// The network `name` to draw from, read under the address lock (so that
/// no change of it commits between this read and the draw's write); the
/// names there are when it is not one.
pub fn for_draw(
    w: &mut dyn Writer,
    name: &str,
) -> Result<std::result::Result<AddressRange, Vec<String>>> {
    nodes::lock_boot_addresses(w)?;
    let networks = all(w)?;
    match networks.iter().find(|s| s.create.name.as_str() == name) {
        Some(s) => Ok(Ok(range(s)?)),
        None => Ok(Err(networks.into_iter().map(|s| s.create.name.to_string()).collect())),
    }
}

/// The provisioning network whose gateway or a name server is `a`, and
/// which of the two: no node may hold such an address.
pub fn reserving(r: &mut dyn Reader, a: Ipv4Addr) -> Result<Option<(String, &'static str)>> {
    for s in all(r)? {
        let n = range(&s)?;
        if n.gateway == Some(a) {
            return Ok(Some((n.name, "gateway")));
        }
        if n.dns.contains(&a) {
            return Ok(Some((n.name, "name server")));
        }
    }
    Ok(None)
}

/// Its gateway and name servers are no node's address (a node holding
/// one would answer for it).
fn check_not_held(w: &mut dyn Writer, r: &AddressRange) -> Result<()> {
    let held = nodes::held_boot_addresses(w, None)?;
    let wanted = r.gateway.iter().map(|g| ("gateway", *g)).chain(r.dns.iter().map(|d| ("dns", *d)));
    for (field, a) in wanted {
        if held.contains(&a) {
            return Err(Error::conflict(format!(
                "{field} {a} is a node's static provisioning address"
            )));
        }
    }
    Ok(())
}

/// Creates a network (checked here): its subnet overlaps no other's, its
/// gateway and name servers are no node's address.
pub fn create(w: &mut dyn Writer, p: &ProvisioningNetworkCreate) -> Result<ProvisioningNetwork> {
    let r = p.check()?;
    nodes::lock_boot_addresses(w)?;
    let others = all(w)?;
    if others.iter().any(|o| o.create.name == p.name) {
        return Err(Error::AlreadyExists {
            kind: "provisioning network",
            field: "name".into(),
            value: p.name.to_string(),
        });
    }
    for other in others {
        let o = range(&other)?;
        if o.subnet.overlaps(&r.subnet) {
            return Err(Error::conflict(format!(
                "subnet {} overlaps provisioning network {}'s ({})",
                r.subnet, o.name, o.subnet
            )));
        }
    }
    check_not_held(w, &r)?;
    let id = new_id();
    let now = now_micros();
    let dns = serde_json::to_string(&p.dns).map_err(|e| Error::internal(e.to_string()))?;
    w.execute(
        &format!(
            "INSERT INTO provisioning_networks ({COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, 1, ?, ?)"
        ),
        vals![
            &id,
            p.name.as_str(),
            r.subnet.to_string(),
            r.first.to_string(),
            r.last.to_string(),
            r.gateway.map(|g| g.to_string()),
            dns,
            now,
            now
        ],
    )
    .map_err(|e| {
        let field = if matches!(&e, DbError::Unique(m) if m.contains("subnet")) {
            ("subnet", p.subnet.clone())
        } else {
            ("name", p.name.to_string())
        };
        e.unique_as(Error::AlreadyExists {
            kind: "provisioning network",
            field: field.0.into(),
            value: field.1,
        })
    })?;
    get(w, &id)
}

/// Changes the range, gateway or name servers at the expected generation
/// (the subnet stays). Its nodes take the new gateway and name servers in
/// the same transaction (their generation bumped: their ISOs change);
/// they keep their addresses where the range narrows. Returns the network
/// and the ids of the nodes changed.
pub fn update(
    w: &mut dyn Writer,
    id: &str,
    p: &ProvisioningNetworkUpdate,
) -> Result<(ProvisioningNetwork, Vec<String>)> {
    nodes::lock_boot_addresses(w)?;
    let cur = stored(w, &NameOrId::Id(id.to_string()))?
        .ok_or_else(|| Error::not_found("provisioning network", id))?;
    if cur.generation != p.generation {
        return Err(Error::GenerationMismatch {
            kind: "provisioning network",
            expected: p.generation,
            current: cur.generation,
        });
    }
    let mut next = cur.create.clone();
    if let Some(f) = &p.first {
        next.first.clone_from(f);
    }
    if let Some(l) = &p.last {
        next.last.clone_from(l);
    }
    if let Some(g) = &p.gateway {
        next.gateway.clone_from(g);
    }
    if let Some(d) = &p.dns {
        next.dns.clone_from(d);
    }
    let r = next.check()?;
    let before = range(&cur)?;
    // A new gateway or name servers: no node's address, and its nodes'.
    let retargeted = (r.gateway, &r.dns) != (before.gateway, &before.dns);
    if retargeted {
        check_not_held(w, &r)?;
    }
    let dns = serde_json::to_string(&next.dns).map_err(|e| Error::internal(e.to_string()))?;
    let n = w.execute(
        "UPDATE provisioning_networks SET first_address = ?, last_address = ?, gateway = ?, dns = ?, generation = generation + 1, updated_at = ? WHERE id = ? AND generation = ?",
        vals![
            r.first.to_string(),
            r.last.to_string(),
            r.gateway.map(|g| g.to_string()),
            dns,
            now_micros(),
            id,
            p.generation
        ],
    )?;
    check_generation(
        w,
        n,
        "provisioning_networks",
        "provisioning network",
        id,
        p.generation,
        None,
    )?;
    let changed = if retargeted { nodes::follow_network(w, &r)? } else { Vec::new() };
    Ok((get(w, id)?, changed))
}

/// Removes a network no node holds an address of.
pub fn delete(w: &mut dyn Writer, id: &str) -> Result<()> {
    nodes::lock_boot_addresses(w)?;
    let cur = stored(w, &NameOrId::Id(id.to_string()))?
        .ok_or_else(|| Error::not_found("provisioning network", id))?;
    let name = cur.create.name.to_string();
    let members: Vec<String> = nodes::boot_networks(w)?
        .into_iter()
        .filter(|(_, bn)| bn.network.as_deref() == Some(name.as_str()))
        .map(|(node, _)| node)
        .collect();
    if !members.is_empty() {
        let names = nodes::names_of(w, &members)?;
        return Err(Error::conflict(format!(
            "provisioning network {name} holds the addresses of {} node(s) ({}{}): remove their boot_network or move them to another network first",
            members.len(),
            names.iter().take(5).cloned().collect::<Vec<_>>().join(", "),
            if names.len() > 5 { ", ..." } else { "" }
        )));
    }
    w.execute("DELETE FROM provisioning_networks WHERE id = ?", vals![id])?;
    Ok(())
}
