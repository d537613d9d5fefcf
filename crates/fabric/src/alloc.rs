//! The allocation ledger and the allocator: VNIs (L2 per network, L3 per
//! VPC), route targets, switch-local VLANs and (through `ipam`) addresses.
//!
//! The ledger is an input and an output. Rules:
//! - An entry whose object still exists never changes, whatever is added or
//!   removed around it (even if the pools are later edited to exclude it).
//! - Entries of objects that no longer exist are released.
//! - New values are taken after a cursor, not lowest-first, so released
//!   values are reused only once a pool wraps around (see `pool`).
//! - New objects are served in id order, so the same inputs always give the
//!   same ledger, whatever order the intent lists them in.

use crate::error::{Error, Result};
use crate::index::{Index, View};
use crate::intent::Intent;
use crate::ipam;
use crate::model::{Fabric, Link, Switch};
use crate::net::RouteTarget;
use crate::pool::{next_cursor, take_after};
use crate::validate::validate;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

/// What has been handed out. Keys are object ids (and switch names).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Allocations {
    pub vpcs: BTreeMap<String, VpcAllocation>,
    pub networks: BTreeMap<String, NetworkAllocation>,
    /// Switch-local VLANs per switch name.
    pub vlans: BTreeMap<String, SwitchVlans>,
    /// Attachment addresses (given or assigned) by attachment id.
    pub addresses: BTreeMap<String, Ipv4Addr>,
    /// NAT gateway public addresses by VPC id.
    pub nat_addresses: BTreeMap<String, Ipv4Addr>,
    /// Where the next L2 VNI search starts.
    pub next_l2_vni: u32,
    /// Where the next L3 VNI search starts.
    pub next_l3_vni: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VpcAllocation {
    pub l3_vni: u32,
    /// Recorded (not recomputed) so a change of the RT scheme never moves it.
    pub route_target: RouteTarget,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkAllocation {
    pub l2_vni: u32,
    pub route_target: RouteTarget,
}

/// One switch's local ids. VLAN numbers are only meaningful on that switch:
/// the VNI is what ties a segment together across the fabric.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SwitchVlans {
    /// Per VPC id: the L3 VNI's VLAN (SONiC) or the RD index (EOS).
    pub vrfs: BTreeMap<String, u16>,
    /// Per network id: the L2 VNI's access VLAN.
    pub networks: BTreeMap<String, u16>,
    /// Where the next search starts.
    pub next: u16,
}

/// Brings the ledger up to date with the intent: keeps every existing entry
/// whose object still exists, releases the others, allocates for new objects.
pub fn allocate(
    fabric: &Fabric,
    switches: &[Switch],
    links: &[Link],
    intent: &Intent,
    previous: &Allocations,
) -> Result<Allocations> {
    validate(fabric, switches, links, intent)?;
    let ix = Index::new(fabric, switches, links, intent);
    let mut out = Allocations {
        next_l2_vni: previous.next_l2_vni,
        next_l3_vni: previous.next_l3_vni,
        ..Allocations::default()
    };
    allocate_vnis(&ix, intent, previous, &mut out)?;
    allocate_vlans(&ix, previous, &mut out)?;
    ipam::assign_addresses(&ix, intent, previous, &mut out)?;
    ipam::assign_nat_addresses(&ix, intent, previous, &mut out)?;
    Ok(out)
}

fn allocate_vnis(
    ix: &Index,
    intent: &Intent,
    previous: &Allocations,
    out: &mut Allocations,
) -> Result<()> {
    let pools = &ix.fabric.pools;
    // Every VNI in use, whatever its pool: kept entries may predate a pool
    // change, and a VNI must never serve two segments.
    let mut used: BTreeMap<u32, String> = BTreeMap::new();
    used.insert(pools.provisioning.vni, "fabric.pools.provisioning.vni".into());
    let mut claim = |vni: u32, field: String| match used.get(&vni) {
        Some(other) => Err(Error::invalid(field, format!("VNI {vni} is also {other}"))),
        None => {
            used.insert(vni, field);
            Ok(())
        }
    };
    for (id, a) in &previous.vpcs {
        if ix.vpcs.contains_key(id.as_str()) {
            claim(a.l3_vni, format!("allocations.vpcs[{id}].l3_vni"))?;
            out.vpcs.insert(id.clone(), a.clone());
        }
    }
    for (id, a) in &previous.networks {
        if ix.networks.contains_key(id.as_str()) {
            claim(a.l2_vni, format!("allocations.networks[{id}].l2_vni"))?;
            out.networks.insert(id.clone(), a.clone());
        }
    }
    let mut used: BTreeSet<u32> = used.into_keys().collect();
    let rt = |vni: u32| RouteTarget { asn: pools.route_target_asn, value: vni };

    let mut new_vpcs: Vec<&str> = intent
        .vpcs
        .iter()
        .map(|v| v.id.as_str())
        .filter(|id| !out.vpcs.contains_key(*id))
        .collect();
    new_vpcs.sort_unstable();
    let (first, last) = (pools.l3_vni.first, pools.l3_vni.last);
    for id in new_vpcs {
        let vni = take_after(&used, first, last, out.next_l3_vni).ok_or_else(|| {
            Error::exhausted("fabric.pools.l3_vni", format!("no free L3 VNI for VPC {id:?}"))
        })?;
        used.insert(vni);
        out.next_l3_vni = next_cursor(vni, first, last);
        out.vpcs.insert(id.to_string(), VpcAllocation { l3_vni: vni, route_target: rt(vni) });
    }

    let mut new_networks: Vec<&str> = intent
        .networks
        .iter()
        .map(|n| n.id.as_str())
        .filter(|id| !out.networks.contains_key(*id))
        .collect();
    new_networks.sort_unstable();
    let (first, last) = (pools.l2_vni.first, pools.l2_vni.last);
    for id in new_networks {
        let vni = take_after(&used, first, last, out.next_l2_vni).ok_or_else(|| {
            Error::exhausted("fabric.pools.l2_vni", format!("no free L2 VNI for network {id:?}"))
        })?;
        used.insert(vni);
        out.next_l2_vni = next_cursor(vni, first, last);
        out.networks
            .insert(id.to_string(), NetworkAllocation { l2_vni: vni, route_target: rt(vni) });
    }
    Ok(())
}

fn allocate_vlans(ix: &Index, previous: &Allocations, out: &mut Allocations) -> Result<()> {
    for sw in ix.switches {
        let (want_vrfs, want_networks) = wanted_vlans(ix, sw);
        let prev = previous.vlans.get(&sw.name);
        if let Some(mine) = switch_vlans(ix.fabric, sw, &want_vrfs, &want_networks, prev)? {
            out.vlans.insert(sw.name.clone(), mine);
        }
    }
    Ok(())
}

/// What needs a switch-local id on a switch: its VRFs (where the OS needs
/// an id per VRF) and its networks (where it maps VNIs through VLANs).
pub(crate) fn wanted_vlans<'v, V: View>(
    ix: &'v V,
    sw: &Switch,
) -> (BTreeSet<&'v str>, BTreeSet<&'v str>) {
    let want_vrfs: BTreeSet<&str> = match sw.role.is_vtep() && sw.os.local_id_per_vrf() {
        true => ix.switch_vpcs(sw),
        false => BTreeSet::new(),
    };
    let want_networks: BTreeSet<&str> = match sw.role.is_vtep() && sw.os.vlan_per_segment() {
        true => ix.switch_networks(&sw.name).map(|n| n.id.as_str()).collect(),
        false => BTreeSet::new(),
    };
    (want_vrfs, want_networks)
}

/// One switch's table: keeps the entries of `prev` still wanted, releases
/// the others, takes new ones after the switch's cursor (VRFs, then
/// networks, each in id order). `None`: the switch has no table and needs
/// none.
pub(crate) fn switch_vlans(
    fabric: &Fabric,
    sw: &Switch,
    want_vrfs: &BTreeSet<&str>,
    want_networks: &BTreeSet<&str>,
    prev: Option<&SwitchVlans>,
) -> Result<Option<SwitchVlans>> {
    let pools = &fabric.pools;
    let (first, last) = (pools.vlan.first, pools.vlan.last);
    if prev.is_none() && want_vrfs.is_empty() && want_networks.is_empty() {
        return Ok(None);
    }
    let mut mine = SwitchVlans { next: prev.map_or(0, |p| p.next), ..SwitchVlans::default() };
    let mut used: BTreeMap<u32, String> = BTreeMap::new();
    used.insert(u32::from(pools.provisioning.vlan), "fabric.pools.provisioning.vlan".into());
    let mut keep = |kind: &str, id: &str, vlan: u16, out: &mut BTreeMap<String, u16>| {
        let field = format!("allocations.vlans[{}].{kind}[{id}]", sw.name);
        if let Some(other) = used.insert(u32::from(vlan), field.clone()) {
            return Err(Error::invalid(field, format!("VLAN {vlan} is also {other}")));
        }
        out.insert(id.to_string(), vlan);
        Ok(())
    };
    if let Some(p) = prev {
        for (id, &vlan) in &p.vrfs {
            if want_vrfs.contains(id.as_str()) {
                keep("vrfs", id, vlan, &mut mine.vrfs)?;
            }
        }
        for (id, &vlan) in &p.networks {
            if want_networks.contains(id.as_str()) {
                keep("networks", id, vlan, &mut mine.networks)?;
            }
        }
    }
    let mut used: BTreeSet<u32> = used.into_keys().collect();
    let mut take = |id: &str, next: &mut u16| {
        let v = take_after(&used, first, last, u32::from(*next)).ok_or_else(|| {
            Error::exhausted(
                "fabric.pools.vlan",
                format!("no free VLAN on switch {:?} for {id:?}", sw.name),
            )
        })?;
        used.insert(v);
        // The pool is validated to lie within 2..=4094.
        *next = next_cursor(v, first, last) as u16;
        Ok::<u16, Error>(v as u16)
    };
    let new_vrfs: Vec<&str> =
        want_vrfs.iter().copied().filter(|id| !mine.vrfs.contains_key(*id)).collect();
    for id in new_vrfs {
        let v = take(id, &mut mine.next)?;
        mine.vrfs.insert(id.to_string(), v);
    }
    let new_networks: Vec<&str> =
        want_networks.iter().copied().filter(|id| !mine.networks.contains_key(*id)).collect();
    for id in new_networks {
        let v = take(id, &mut mine.next)?;
        mine.networks.insert(id.to_string(), v);
    }
    Ok(Some(mine))
}
