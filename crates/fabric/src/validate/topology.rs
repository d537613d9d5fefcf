//! Validation of the provider's inputs: fabric, pools, switches, links.

use super::check_name;
use crate::desired::{PUBLIC_LINK_UNDERLAY, PUBLIC_LINK_VRF};
use crate::error::{Error, Result};
use crate::model::{Fabric, FabricKind, IdRange, Link, Switch, SwitchOs, SwitchRole};
use crate::net::is_unicast_mac;
use std::collections::{HashMap, HashSet};
use std::net::Ipv4Addr;

/// The largest VNI (24 bits).
pub const MAX_VNI: u32 = 16_777_215;

/// Linux interface names are at most 15 bytes (IFNAMSIZ - 1).
const LINUX_IFNAME_MAX: usize = 15;

pub fn validate_topology(fabric: &Fabric, switches: &[Switch], links: &[Link]) -> Result<()> {
    check_name(|| "fabric.name".into(), &fabric.name)?;
    match fabric.kind {
        FabricKind::Ethernet => {}
        FabricKind::Infiniband => {
            return Err(Error::invalid(
                "fabric.kind",
                "infiniband fabrics isolate tenants with partition keys, not EVPN/VXLAN",
            ))
        }
    }
    if !is_unicast_mac(&fabric.gateway_mac) {
        return Err(Error::invalid(
            "fabric.gateway_mac",
            format!("{:?}: expected a unicast MAC like 00:00:5e:00:01:01", fabric.gateway_mac),
        ));
    }
    validate_pools(fabric)?;
    let by_name = validate_switches(switches)?;
    validate_uplinks(fabric, switches)?;
    validate_links(links, switches, &by_name)
}

fn check_range(field: &str, r: &IdRange, min: u32, max: u32) -> Result<()> {
    if r.first < min || r.last > max || r.first > r.last {
        return Err(Error::invalid(
            field,
            format!("{}-{}: must be a non-empty range within {min}-{max}", r.first, r.last),
        ));
    }
    Ok(())
}

fn validate_pools(fabric: &Fabric) -> Result<()> {
    let p = &fabric.pools;
    check_range("fabric.pools.l2_vni", &p.l2_vni, 1, MAX_VNI)?;
    check_range("fabric.pools.l3_vni", &p.l3_vni, 1, MAX_VNI)?;
    if p.l2_vni.overlaps(&p.l3_vni) {
        return Err(Error::invalid("fabric.pools.l3_vni", "overlaps fabric.pools.l2_vni"));
    }
    // VLAN 1 is the default VLAN on most switch OSes; 4095 is reserved.
    check_range("fabric.pools.vlan", &p.vlan, 2, 4094)?;
    if p.route_target_asn == 0 {
        return Err(Error::invalid("fabric.pools.route_target_asn", "must be 1-65535"));
    }
    let prov = &p.provisioning;
    if prov.vni == 0 || prov.vni > MAX_VNI {
        return Err(Error::invalid(
            "fabric.pools.provisioning.vni",
            format!("must be 1-{MAX_VNI}"),
        ));
    }
    if p.l2_vni.contains(prov.vni) || p.l3_vni.contains(prov.vni) {
        return Err(Error::invalid(
            "fabric.pools.provisioning.vni",
            "must lie outside the tenant VNI pools",
        ));
    }
    if !(2..=4094).contains(&prov.vlan) || p.vlan.contains(u32::from(prov.vlan)) {
        return Err(Error::invalid(
            "fabric.pools.provisioning.vlan",
            "must be 2-4094 and outside fabric.pools.vlan",
        ));
    }
    for (i, s) in prov.servers.iter().enumerate() {
        check_name(|| format!("fabric.pools.provisioning.servers[{i}]"), s)?;
    }
    for (i, b) in p.public.iter().enumerate() {
        if !b.is_canonical() {
            return Err(Error::invalid(
                format!("fabric.pools.public[{i}]"),
                format!("{b}: host bits set (did you mean {}?)", b.trunc()),
            ));
        }
        if let Some(j) = p.public[..i].iter().position(|o| o.overlaps(b)) {
            return Err(Error::invalid(
                format!("fabric.pools.public[{i}]"),
                format!("{b} overlaps fabric.pools.public[{j}]"),
            ));
        }
    }
    Ok(())
}

fn validate_switches(switches: &[Switch]) -> Result<HashMap<&str, usize>> {
    let mut by_name = HashMap::with_capacity(switches.len());
    let mut loopbacks = HashMap::with_capacity(switches.len());
    let mut mgmt = HashMap::with_capacity(switches.len());
    for (i, s) in switches.iter().enumerate() {
        check_name(|| format!("switches[{i}].name"), &s.name)?;
        if let Some(j) = by_name.insert(s.name.as_str(), i) {
            return Err(Error::invalid(
                format!("switches[{i}].name"),
                format!("{:?} is also switches[{j}]", s.name),
            ));
        }
        // 0 is reserved; 23456 is AS_TRANS (RFC 6793); 4294967295 reserved.
        if s.asn == 0 || s.asn == 23456 || s.asn == u32::MAX {
            return Err(Error::invalid(format!("switches[{i}].asn"), "reserved ASN"));
        }
        if s.loopback.is_unspecified() || s.loopback.is_broadcast() || s.loopback.is_multicast() {
            return Err(Error::invalid(format!("switches[{i}].loopback"), "not a unicast address"));
        }
        if let Some(j) = loopbacks.insert(s.loopback, i) {
            return Err(Error::invalid(
                format!("switches[{i}].loopback"),
                format!("{} is also switches[{j}].loopback", s.loopback),
            ));
        }
        if let Some(j) = mgmt.insert(s.mgmt_address, i) {
            return Err(Error::invalid(
                format!("switches[{i}].mgmt_address"),
                format!("{} is also switches[{j}].mgmt_address", s.mgmt_address),
            ));
        }
    }
    for (i, s) in switches.iter().enumerate() {
        let mut ports = HashSet::with_capacity(s.fabric_ports.len());
        for (k, fp) in s.fabric_ports.iter().enumerate() {
            check_port_name(|| format!("switches[{i}].fabric_ports[{k}].port"), &fp.port, s.os)?;
            if !ports.insert(fp.port.as_str()) {
                return Err(Error::invalid(
                    format!("switches[{i}].fabric_ports[{k}].port"),
                    format!("{:?} listed twice", fp.port),
                ));
            }
            if fp.peer == s.name || !by_name.contains_key(fp.peer.as_str()) {
                return Err(Error::invalid(
                    format!("switches[{i}].fabric_ports[{k}].peer"),
                    format!("{:?}: not another switch of the fabric", fp.peer),
                ));
            }
        }
    }
    Ok(by_name)
}

/// Port names: the safe alphabet, and on FRR/Linux Linux's length limit
/// and none of the names the renderer gives its own devices.
fn check_port_name(field: impl Fn() -> String, port: &str, os: SwitchOs) -> Result<()> {
    check_name(&field, port)?;
    match os {
        SwitchOs::Frr if port.len() > LINUX_IFNAME_MAX => Err(Error::invalid(
            field(),
            format!("{port:?}: Linux interface names are at most {LINUX_IFNAME_MAX} characters"),
        )),
        SwitchOs::Frr if is_generated_linux_name(port) => Err(Error::invalid(
            field(),
            format!(
                "{port:?}: br<N>, vni<N>, pub<N> and ext<N> are the names of the devices the fabric creates"
            ),
        )),
        SwitchOs::Frr | SwitchOs::Sonic | SwitchOs::CumulusNvue | SwitchOs::AristaEos => Ok(()),
    }
}

/// `br<N>`, `vni<N>`, `pub<N>`, `ext<N>`: bridges, VXLAN devices and the
/// two ends of a VRF's public link on FRR/Linux.
fn is_generated_linux_name(port: &str) -> bool {
    ["br", "vni", "pub", "ext"].iter().any(|p| {
        port.strip_prefix(p).is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
    })
}

fn is_unicast(ip: Ipv4Addr) -> bool {
    !(ip.is_unspecified() || ip.is_broadcast() || ip.is_multicast() || ip.is_loopback())
}

/// Uplinks: borders only; a port of their own; a host address on a link
/// with room for the gateway; never overlapping the public blocks (the
/// upstream routes those to the uplink address), a switch loopback or the
/// VRFs' public link addresses.
fn validate_uplinks(fabric: &Fabric, switches: &[Switch]) -> Result<()> {
    let mut addresses: HashMap<Ipv4Addr, usize> = HashMap::new();
    for (i, s) in switches.iter().enumerate() {
        let Some(u) = &s.uplink else { continue };
        let field = |f: &str| format!("switches[{i}].uplink{f}");
        match s.role {
            SwitchRole::Border => {}
            SwitchRole::Leaf | SwitchRole::Spine => {
                return Err(Error::invalid(field(""), "only a border switch has an uplink"))
            }
        }
        check_port_name(|| field(".port"), &u.port, s.os)?;
        if s.fabric_ports.iter().any(|fp| fp.port == u.port) {
            return Err(Error::invalid(
                field(".port"),
                format!("{:?} is a fabric port of {}", u.port, s.name),
            ));
        }
        let (a, link) = (u.address, u.address.trunc());
        if a.prefix() == 0 || a.prefix() > 31 {
            return Err(Error::invalid(
                field(".address"),
                format!("{a}: the link needs a prefix of /1 to /31 (the gateway is on it)"),
            ));
        }
        if !is_unicast(a.addr()) || !link.is_host(a.addr()) {
            return Err(Error::invalid(
                field(".address"),
                format!("{a}: not a unicast host address of {link}"),
            ));
        }
        if [PUBLIC_LINK_UNDERLAY, PUBLIC_LINK_VRF].iter().any(|&l| link.contains(l)) {
            return Err(Error::invalid(
                field(".address"),
                format!(
                    "{a}: overlaps {PUBLIC_LINK_UNDERLAY}-{PUBLIC_LINK_VRF}, the VRFs' public link addresses"
                ),
            ));
        }
        if let Some((k, b)) =
            fabric.pools.public.iter().enumerate().find(|(_, b)| b.overlaps(&link))
        {
            return Err(Error::invalid(
                field(".address"),
                format!(
                    "{a} overlaps fabric.pools.public[{k}] ({b}): public addresses are routed to the uplink, never on its link"
                ),
            ));
        }
        if let Some((j, o)) = switches.iter().enumerate().find(|(_, o)| link.contains(o.loopback)) {
            return Err(Error::invalid(
                field(".address"),
                format!("{a} contains switches[{j}].loopback ({})", o.loopback),
            ));
        }
        if let Some(j) = addresses.insert(a.addr(), i) {
            return Err(Error::invalid(
                field(".address"),
                format!("{} is also switches[{j}].uplink.address", a.addr()),
            ));
        }
        if u.gateway == a.addr() || !link.is_host(u.gateway) {
            return Err(Error::invalid(
                field(".gateway"),
                format!("{}: not another host of the uplink's link {link}", u.gateway),
            ));
        }
    }
    Ok(())
}

fn validate_links(
    links: &[Link],
    switches: &[Switch],
    by_name: &HashMap<&str, usize>,
) -> Result<()> {
    let mut ports: HashMap<(&str, &str), usize> = HashMap::with_capacity(links.len());
    let mut nics: HashMap<(&str, &str), usize> = HashMap::with_capacity(links.len());
    for (i, l) in links.iter().enumerate() {
        check_name(|| format!("links[{i}].node"), &l.node)?;
        check_name(|| format!("links[{i}].nic"), &l.nic)?;
        let Some(&si) = by_name.get(l.switch.as_str()) else {
            return Err(Error::invalid(
                format!("links[{i}].switch"),
                format!("{:?}: no such switch", l.switch),
            ));
        };
        let sw = &switches[si];
        match sw.role {
            SwitchRole::Leaf | SwitchRole::Border => {}
            SwitchRole::Spine => {
                return Err(Error::invalid(
                    format!("links[{i}].switch"),
                    format!("{:?} is a spine; nodes attach to leaves", l.switch),
                ))
            }
        }
        check_port_name(|| format!("links[{i}].port"), &l.port, sw.os)?;
        if sw.fabric_ports.iter().any(|fp| fp.port == l.port) {
            return Err(Error::invalid(
                format!("links[{i}].port"),
                format!("{} {:?} is a fabric port", l.switch, l.port),
            ));
        }
        if sw.uplink.as_ref().is_some_and(|u| u.port == l.port) {
            return Err(Error::invalid(
                format!("links[{i}].port"),
                format!("{} {:?} is its uplink", l.switch, l.port),
            ));
        }
        if let Some(j) = ports.insert((l.switch.as_str(), l.port.as_str()), i) {
            return Err(Error::invalid(
                format!("links[{i}].port"),
                format!("{} {:?} is also links[{j}]", l.switch, l.port),
            ));
        }
        if let Some(j) = nics.insert((l.node.as_str(), l.nic.as_str()), i) {
            return Err(Error::invalid(
                format!("links[{i}].nic"),
                format!("{} {:?} is also links[{j}]", l.node, l.nic),
            ));
        }
    }
    Ok(())
}
