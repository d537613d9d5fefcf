//! Validation of the tenants' intent against the topology.

use super::{check_label, check_name};
use crate::desired::{PUBLIC_LINK_UNDERLAY, PUBLIC_LINK_VRF};
use crate::error::{Error, Result};
use crate::intent::Intent;
use crate::model::{Fabric, Link, Switch};
use crate::net::{PortRange, Protocol};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::net::Ipv4Addr;

pub fn validate_intent(
    fabric: &Fabric,
    switches: &[Switch],
    links: &[Link],
    intent: &Intent,
) -> Result<()> {
    let vpcs = validate_vpcs(intent)?;
    let networks = validate_networks(intent, &vpcs)?;
    let attachments = validate_attachments(fabric, links, intent, &networks)?;
    validate_rules(intent, &networks)?;
    validate_north_south(fabric, switches, intent, &vpcs, &networks, &attachments)
}

/// Ids must be unique within their list.
fn unique_id<'a>(
    seen: &mut HashMap<&'a str, usize>,
    list: &str,
    i: usize,
    id: &'a str,
) -> Result<()> {
    check_name(|| format!("{list}[{i}].id"), id)?;
    match seen.insert(id, i) {
        None => Ok(()),
        Some(j) => {
            Err(Error::invalid(format!("{list}[{i}].id"), format!("{id:?} is also {list}[{j}]")))
        }
    }
}

fn validate_vpcs(intent: &Intent) -> Result<HashMap<&str, usize>> {
    let mut ids = HashMap::with_capacity(intent.vpcs.len());
    for (i, v) in intent.vpcs.iter().enumerate() {
        unique_id(&mut ids, "vpcs", i, &v.id)?;
        check_name(|| format!("vpcs[{i}].tenant"), &v.tenant)?;
        check_label(|| format!("vpcs[{i}].name"), &v.name)?;
    }
    Ok(ids)
}

fn validate_networks<'a>(
    intent: &'a Intent,
    vpcs: &HashMap<&str, usize>,
) -> Result<HashMap<&'a str, usize>> {
    let mut ids = HashMap::with_capacity(intent.networks.len());
    let mut by_vpc: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, n) in intent.networks.iter().enumerate() {
        unique_id(&mut ids, "networks", i, &n.id)?;
        check_label(|| format!("networks[{i}].name"), &n.name)?;
        if !vpcs.contains_key(n.vpc.as_str()) {
            return Err(Error::invalid(
                format!("networks[{i}].vpc"),
                format!("{:?}: no such VPC", n.vpc),
            ));
        }
        if !n.cidr.is_canonical() {
            return Err(Error::invalid(
                format!("networks[{i}].cidr"),
                format!("{}: host bits set (did you mean {}?)", n.cidr, n.cidr.trunc()),
            ));
        }
        if n.cidr.prefix() > 30 {
            return Err(Error::invalid(
                format!("networks[{i}].cidr"),
                format!("{}: at most /30 (a gateway and a host)", n.cidr),
            ));
        }
        if let Some(gw) = n.gateway {
            if !n.cidr.is_host(gw) {
                return Err(Error::invalid(
                    format!("networks[{i}].gateway"),
                    format!("{gw}: not a host address of {}", n.cidr),
                ));
            }
        }
        by_vpc.entry(n.vpc.as_str()).or_default().push(i);
    }
    // Overlap inside one VPC: sort each VPC's prefixes by start address; a
    // prefix overlaps an earlier one exactly when it overlaps the one with
    // the largest end so far.
    for members in by_vpc.values_mut() {
        members.sort_by_key(|&i| {
            let c = intent.networks[i].cidr;
            (u32::from(c.network()), c.prefix(), i)
        });
        let mut widest: Option<usize> = None;
        for &i in members.iter() {
            let c = intent.networks[i].cidr;
            if let Some(w) = widest {
                let wc = intent.networks[w].cidr;
                if u32::from(c.network()) <= u32::from(wc.broadcast()) {
                    let (first, second) = (w.min(i), w.max(i));
                    return Err(Error::invalid(
                        format!("networks[{second}].cidr"),
                        format!(
                            "{} overlaps networks[{first}] ({}) in the same VPC",
                            intent.networks[second].cidr, intent.networks[first].cidr
                        ),
                    ));
                }
            }
            let wider = widest.is_none_or(|w| {
                u32::from(c.broadcast()) > u32::from(intent.networks[w].cidr.broadcast())
            });
            if wider {
                widest = Some(i);
            }
        }
    }
    Ok(ids)
}

fn validate_attachments<'a>(
    fabric: &Fabric,
    links: &[Link],
    intent: &'a Intent,
    networks: &HashMap<&str, usize>,
) -> Result<HashMap<&'a str, usize>> {
    let linked: HashSet<(&str, &str)> =
        links.iter().map(|l| (l.node.as_str(), l.nic.as_str())).collect();
    let servers: HashSet<&str> =
        fabric.pools.provisioning.servers.iter().map(String::as_str).collect();
    let mut ids = HashMap::with_capacity(intent.attachments.len());
    let mut nics: HashMap<(&str, &str), usize> = HashMap::with_capacity(intent.attachments.len());
    let mut ips: HashMap<(&str, Ipv4Addr), usize> = HashMap::new();
    for (i, a) in intent.attachments.iter().enumerate() {
        unique_id(&mut ids, "attachments", i, &a.id)?;
        let Some(&ni) = networks.get(a.network.as_str()) else {
            return Err(Error::invalid(
                format!("attachments[{i}].network"),
                format!("{:?}: no such network", a.network),
            ));
        };
        if servers.contains(a.node.as_str()) {
            return Err(Error::invalid(
                format!("attachments[{i}].node"),
                format!("{:?} is a provisioning server", a.node),
            ));
        }
        if !linked.contains(&(a.node.as_str(), a.nic.as_str())) {
            return Err(Error::invalid(
                format!("attachments[{i}].nic"),
                format!("no link for node {:?} NIC {:?}", a.node, a.nic),
            ));
        }
        if let Some(j) = nics.insert((a.node.as_str(), a.nic.as_str()), i) {
            return Err(Error::invalid(
                format!("attachments[{i}].nic"),
                format!(
                    "node {:?} NIC {:?} is already in attachments[{j}]; a port carries one untagged network",
                    a.node, a.nic
                ),
            ));
        }
        if let Some(ip) = a.ip {
            let n = &intent.networks[ni];
            if !n.cidr.is_host(ip) || ip == n.gateway_ip() {
                return Err(Error::invalid(
                    format!("attachments[{i}].ip"),
                    format!(
                        "{ip}: not a free host address of {} (gateway {})",
                        n.cidr,
                        n.gateway_ip()
                    ),
                ));
            }
            if let Some(j) = ips.insert((a.network.as_str(), ip), i) {
                return Err(Error::invalid(
                    format!("attachments[{i}].ip"),
                    format!("{ip} is also attachments[{j}].ip"),
                ));
            }
        }
    }
    Ok(ids)
}

fn check_ports(
    field: impl Fn() -> String,
    protocol: Protocol,
    ports: Option<PortRange>,
) -> Result<()> {
    let Some(p) = ports else { return Ok(()) };
    if !protocol.has_ports() {
        return Err(Error::invalid(field(), format!("{} has no ports", protocol.as_str())));
    }
    if p.first == 0 || p.first > p.last {
        return Err(Error::invalid(field(), format!("{p}: must be a range within 1-65535")));
    }
    Ok(())
}

fn validate_rules(intent: &Intent, networks: &HashMap<&str, usize>) -> Result<()> {
    let mut ids = HashMap::with_capacity(intent.security_rules.len());
    for (i, r) in intent.security_rules.iter().enumerate() {
        unique_id(&mut ids, "security_rules", i, &r.id)?;
        let Some(&from) = networks.get(r.from.as_str()) else {
            return Err(Error::invalid(
                format!("security_rules[{i}].from"),
                format!("{:?}: no such network", r.from),
            ));
        };
        let Some(&to) = networks.get(r.to.as_str()) else {
            return Err(Error::invalid(
                format!("security_rules[{i}].to"),
                format!("{:?}: no such network", r.to),
            ));
        };
        if from == to {
            return Err(Error::invalid(
                format!("security_rules[{i}].to"),
                "traffic inside one network is bridged, never filtered by the fabric",
            ));
        }
        let (fv, tv) = (&intent.networks[from].vpc, &intent.networks[to].vpc);
        if fv != tv {
            return Err(Error::invalid(
                format!("security_rules[{i}].to"),
                format!(
                    "network {:?} is in VPC {tv:?}, {:?} in {fv:?}: VPCs never route to each other",
                    r.to, r.from
                ),
            ));
        }
        check_ports(|| format!("security_rules[{i}].ports"), r.protocol, r.ports)?;
    }
    Ok(())
}

fn validate_north_south(
    fabric: &Fabric,
    switches: &[Switch],
    intent: &Intent,
    vpcs: &HashMap<&str, usize>,
    networks: &HashMap<&str, usize>,
    attachments: &HashMap<&str, usize>,
) -> Result<()> {
    // North-south traffic leaves through a border's uplink.
    let has_uplink = switches.iter().any(Switch::carries_north_south);
    let no_uplink = "no border switch has an uplink (switches[].uplink)";
    let mut north_south: BTreeSet<&str> = BTreeSet::new();
    let public = |ip: Ipv4Addr| fabric.pools.public.iter().any(|b| b.contains(ip));
    let mut nat_vpcs = HashMap::with_capacity(intent.nat_gateways.len());
    let mut public_ips: HashMap<Ipv4Addr, String> = HashMap::new();
    for (i, g) in intent.nat_gateways.iter().enumerate() {
        if !vpcs.contains_key(g.vpc.as_str()) {
            return Err(Error::invalid(
                format!("nat_gateways[{i}].vpc"),
                format!("{:?}: no such VPC", g.vpc),
            ));
        }
        if !has_uplink {
            return Err(Error::invalid(format!("nat_gateways[{i}].vpc"), no_uplink));
        }
        north_south.insert(g.vpc.as_str());
        if let Some(j) = nat_vpcs.insert(g.vpc.as_str(), i) {
            return Err(Error::invalid(
                format!("nat_gateways[{i}].vpc"),
                format!("VPC {:?} already has nat_gateways[{j}]", g.vpc),
            ));
        }
        if let Some(ip) = g.public_ip {
            if !public(ip) {
                return Err(Error::invalid(
                    format!("nat_gateways[{i}].public_ip"),
                    format!("{ip}: not in fabric.pools.public"),
                ));
            }
            if let Some(other) = public_ips.insert(ip, format!("nat_gateways[{i}]")) {
                return Err(Error::invalid(
                    format!("nat_gateways[{i}].public_ip"),
                    format!("{ip} is also {other}"),
                ));
            }
        }
    }
    let mut ids = HashMap::with_capacity(intent.floating_ips.len());
    let mut by_attachment = HashMap::with_capacity(intent.floating_ips.len());
    for (i, f) in intent.floating_ips.iter().enumerate() {
        unique_id(&mut ids, "floating_ips", i, &f.id)?;
        let Some(&ai) = attachments.get(f.attachment.as_str()) else {
            return Err(Error::invalid(
                format!("floating_ips[{i}].attachment"),
                format!("{:?}: no such attachment", f.attachment),
            ));
        };
        if !has_uplink {
            return Err(Error::invalid(format!("floating_ips[{i}].attachment"), no_uplink));
        }
        let network = &intent.attachments[ai].network;
        if let Some(&ni) = networks.get(network.as_str()) {
            north_south.insert(intent.networks[ni].vpc.as_str());
        }
        if let Some(j) = by_attachment.insert(f.attachment.as_str(), i) {
            return Err(Error::invalid(
                format!("floating_ips[{i}].attachment"),
                format!("{:?} already has floating_ips[{j}]", f.attachment),
            ));
        }
        if !public(f.public_ip) {
            return Err(Error::invalid(
                format!("floating_ips[{i}].public_ip"),
                format!("{}: not in fabric.pools.public", f.public_ip),
            ));
        }
        if let Some(other) = public_ips.insert(f.public_ip, format!("floating_ips[{i}]")) {
            return Err(Error::invalid(
                format!("floating_ips[{i}].public_ip"),
                format!("{} is also {other}", f.public_ip),
            ));
        }
        for (k, a) in f.allow.iter().enumerate() {
            check_ports(|| format!("floating_ips[{i}].allow[{k}].ports"), a.protocol, a.ports)?;
        }
    }
    // A north-south VPC's networks must not shadow the addresses its VRF
    // routes to the outside: its public link's, and the public blocks (a
    // packet to a public address that is not translated would otherwise be
    // delivered inside the VPC).
    for (i, n) in intent.networks.iter().enumerate() {
        if !north_south.contains(n.vpc.as_str()) {
            continue;
        }
        if [PUBLIC_LINK_UNDERLAY, PUBLIC_LINK_VRF].iter().any(|&l| n.cidr.contains(l)) {
            return Err(Error::invalid(
                format!("networks[{i}].cidr"),
                format!(
                    "{} contains {PUBLIC_LINK_UNDERLAY} or {PUBLIC_LINK_VRF}, the border's public link addresses of a VPC with north-south service",
                    n.cidr
                ),
            ));
        }
        if let Some((k, b)) =
            fabric.pools.public.iter().enumerate().find(|(_, b)| b.overlaps(&n.cidr))
        {
            return Err(Error::invalid(
                format!("networks[{i}].cidr"),
                format!(
                    "{} overlaps fabric.pools.public[{k}] ({b}) in a VPC with north-south service",
                    n.cidr
                ),
            ));
        }
    }
    Ok(())
}
