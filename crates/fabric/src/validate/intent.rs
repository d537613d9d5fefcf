//! Validation of the tenants' intent against the topology.

use super::{check_label, check_name};
use crate::desired::{PUBLIC_LINK_UNDERLAY, PUBLIC_LINK_VRF};
use crate::error::{Error, Result};
use crate::intent::{Attachment, FloatingIp, Intent, NatGateway, Network, SecurityRule, Vpc};
use crate::model::{Fabric, Link, Switch};
use crate::net::{Ipv4Net, PortRange, Protocol};
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

// The checks of one item of each list. Each takes what it needs to know
// about the others (an earlier item with the same id or key, whether a
// reference resolves), so the whole-intent validation here and the
// incremental planner's, which checks only what a change can affect, give
// the same error for the same input.

/// Ids must be unique within their list; `earlier` is the earlier item
/// with the same id.
fn unique_id(list: &str, i: usize, id: &str, earlier: Option<usize>) -> Result<()> {
    check_name(|| format!("{list}[{i}].id"), id)?;
    match earlier {
        None => Ok(()),
        Some(j) => {
            Err(Error::invalid(format!("{list}[{i}].id"), format!("{id:?} is also {list}[{j}]")))
        }
    }
}

/// `vpcs[i]`; `earlier`: the earlier VPC with the same id.
pub(crate) fn vpc_item(i: usize, v: &Vpc, earlier: Option<usize>) -> Result<()> {
    unique_id("vpcs", i, &v.id, earlier)?;
    check_name(|| format!("vpcs[{i}].tenant"), &v.tenant)?;
    check_label(|| format!("vpcs[{i}].name"), &v.name)
}

/// `networks[i]`, but not the overlap with the VPC's other networks.
pub(crate) fn network_item(
    i: usize,
    n: &Network,
    earlier: Option<usize>,
    vpc_exists: bool,
) -> Result<()> {
    unique_id("networks", i, &n.id, earlier)?;
    check_label(|| format!("networks[{i}].name"), &n.name)?;
    if !vpc_exists {
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
    Ok(())
}

/// Overlap inside one VPC, given the positions of its networks: sort the
/// prefixes by start address; a prefix overlaps an earlier one exactly when
/// it overlaps the one with the largest end so far. The error names the
/// later network of the first overlapping pair.
pub(crate) fn vpc_overlap(members: &mut [usize], cidr: impl Fn(usize) -> Ipv4Net) -> Result<()> {
    members.sort_by_key(|&i| {
        let c = cidr(i);
        (u32::from(c.network()), c.prefix(), i)
    });
    let mut widest: Option<usize> = None;
    for &i in members.iter() {
        let c = cidr(i);
        if let Some(w) = widest {
            let wc = cidr(w);
            if u32::from(c.network()) <= u32::from(wc.broadcast()) {
                let (first, second) = (w.min(i), w.max(i));
                return Err(Error::invalid(
                    format!("networks[{second}].cidr"),
                    format!(
                        "{} overlaps networks[{first}] ({}) in the same VPC",
                        cidr(second),
                        cidr(first)
                    ),
                ));
            }
        }
        let wider =
            widest.is_none_or(|w| u32::from(c.broadcast()) > u32::from(cidr(w).broadcast()));
        if wider {
            widest = Some(i);
        }
    }
    Ok(())
}

/// What `attachment_item` needs to know about the rest of the intent.
pub(crate) struct AttachmentFacts<'n> {
    /// The earlier attachment with the same id.
    pub earlier: Option<usize>,
    /// Its network, if it exists.
    pub network: Option<&'n Network>,
    /// Whether its node is a provisioning server.
    pub server: bool,
    /// Whether its NIC is cabled.
    pub linked: bool,
    /// The earlier attachment of the same NIC.
    pub earlier_nic: Option<usize>,
    /// The earlier attachment given the same address in the same network.
    pub earlier_ip: Option<usize>,
}

pub(crate) fn attachment_item(i: usize, a: &Attachment, f: AttachmentFacts) -> Result<()> {
    unique_id("attachments", i, &a.id, f.earlier)?;
    let Some(n) = f.network else {
        return Err(Error::invalid(
            format!("attachments[{i}].network"),
            format!("{:?}: no such network", a.network),
        ));
    };
    if f.server {
        return Err(Error::invalid(
            format!("attachments[{i}].node"),
            format!("{:?} is a provisioning server", a.node),
        ));
    }
    if !f.linked {
        return Err(Error::invalid(
            format!("attachments[{i}].nic"),
            format!("no link for node {:?} NIC {:?}", a.node, a.nic),
        ));
    }
    if let Some(j) = f.earlier_nic {
        return Err(Error::invalid(
            format!("attachments[{i}].nic"),
            format!(
                "node {:?} NIC {:?} is already in attachments[{j}]; a port carries one untagged network",
                a.node, a.nic
            ),
        ));
    }
    if let Some(ip) = a.ip {
        if !n.cidr.is_host(ip) || ip == n.gateway_ip() {
            return Err(Error::invalid(
                format!("attachments[{i}].ip"),
                format!("{ip}: not a free host address of {} (gateway {})", n.cidr, n.gateway_ip()),
            ));
        }
        if let Some(j) = f.earlier_ip {
            return Err(Error::invalid(
                format!("attachments[{i}].ip"),
                format!("{ip} is also attachments[{j}].ip"),
            ));
        }
    }
    Ok(())
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

/// `security_rules[i]`, given its networks where they exist.
pub(crate) fn rule_item(
    i: usize,
    r: &SecurityRule,
    earlier: Option<usize>,
    from: Option<&Network>,
    to: Option<&Network>,
) -> Result<()> {
    unique_id("security_rules", i, &r.id, earlier)?;
    let Some(from) = from else {
        return Err(Error::invalid(
            format!("security_rules[{i}].from"),
            format!("{:?}: no such network", r.from),
        ));
    };
    let Some(to) = to else {
        return Err(Error::invalid(
            format!("security_rules[{i}].to"),
            format!("{:?}: no such network", r.to),
        ));
    };
    if r.from == r.to {
        return Err(Error::invalid(
            format!("security_rules[{i}].to"),
            "traffic inside one network is bridged, never filtered by the fabric",
        ));
    }
    let (fv, tv) = (&from.vpc, &to.vpc);
    if fv != tv {
        return Err(Error::invalid(
            format!("security_rules[{i}].to"),
            format!(
                "network {:?} is in VPC {tv:?}, {:?} in {fv:?}: VPCs never route to each other",
                r.to, r.from
            ),
        ));
    }
    check_ports(|| format!("security_rules[{i}].ports"), r.protocol, r.ports)
}

const NO_UPLINK: &str = "no border switch has an uplink (switches[].uplink)";

fn public(fabric: &Fabric, ip: Ipv4Addr) -> bool {
    fabric.pools.public.iter().any(|b| b.contains(ip))
}

/// What `nat_item` and `floating_ip_item` need to know about the rest.
pub(crate) struct NorthSouthFacts {
    /// The earlier item with the same id (floating IPs only).
    pub earlier: Option<usize>,
    /// Whether the VPC (NAT) or attachment (floating IP) exists.
    pub target_exists: bool,
    /// Whether some border has an uplink.
    pub has_uplink: bool,
    /// The earlier item of the same VPC (NAT) or attachment (floating IP).
    pub earlier_target: Option<usize>,
    /// The earlier item given the same public address, as
    /// `nat_gateways[j]` or `floating_ips[j]`.
    pub earlier_ip: Option<String>,
}

pub(crate) fn nat_item(
    fabric: &Fabric,
    i: usize,
    g: &NatGateway,
    f: NorthSouthFacts,
) -> Result<()> {
    if !f.target_exists {
        return Err(Error::invalid(
            format!("nat_gateways[{i}].vpc"),
            format!("{:?}: no such VPC", g.vpc),
        ));
    }
    if !f.has_uplink {
        return Err(Error::invalid(format!("nat_gateways[{i}].vpc"), NO_UPLINK));
    }
    if let Some(j) = f.earlier_target {
        return Err(Error::invalid(
            format!("nat_gateways[{i}].vpc"),
            format!("VPC {:?} already has nat_gateways[{j}]", g.vpc),
        ));
    }
    if let Some(ip) = g.public_ip {
        if !public(fabric, ip) {
            return Err(Error::invalid(
                format!("nat_gateways[{i}].public_ip"),
                format!("{ip}: not in fabric.pools.public"),
            ));
        }
        if let Some(other) = f.earlier_ip {
            return Err(Error::invalid(
                format!("nat_gateways[{i}].public_ip"),
                format!("{ip} is also {other}"),
            ));
        }
    }
    Ok(())
}

pub(crate) fn floating_ip_item(
    fabric: &Fabric,
    i: usize,
    fip: &FloatingIp,
    f: NorthSouthFacts,
) -> Result<()> {
    unique_id("floating_ips", i, &fip.id, f.earlier)?;
    if !f.target_exists {
        return Err(Error::invalid(
            format!("floating_ips[{i}].attachment"),
            format!("{:?}: no such attachment", fip.attachment),
        ));
    }
    if !f.has_uplink {
        return Err(Error::invalid(format!("floating_ips[{i}].attachment"), NO_UPLINK));
    }
    if let Some(j) = f.earlier_target {
        return Err(Error::invalid(
            format!("floating_ips[{i}].attachment"),
            format!("{:?} already has floating_ips[{j}]", fip.attachment),
        ));
    }
    if !public(fabric, fip.public_ip) {
        return Err(Error::invalid(
            format!("floating_ips[{i}].public_ip"),
            format!("{}: not in fabric.pools.public", fip.public_ip),
        ));
    }
    if let Some(other) = f.earlier_ip {
        return Err(Error::invalid(
            format!("floating_ips[{i}].public_ip"),
            format!("{} is also {other}", fip.public_ip),
        ));
    }
    for (k, a) in fip.allow.iter().enumerate() {
        check_ports(|| format!("floating_ips[{i}].allow[{k}].ports"), a.protocol, a.ports)?;
    }
    Ok(())
}

/// A north-south VPC's network must not shadow the addresses its VRF
/// routes to the outside: its public link's, and the public blocks (a
/// packet to a public address that is not translated would otherwise be
/// delivered inside the VPC).
pub(crate) fn north_south_network_item(fabric: &Fabric, i: usize, n: &Network) -> Result<()> {
    if [PUBLIC_LINK_UNDERLAY, PUBLIC_LINK_VRF].iter().any(|&l| n.cidr.contains(l)) {
        return Err(Error::invalid(
            format!("networks[{i}].cidr"),
            format!(
                "{} contains {PUBLIC_LINK_UNDERLAY} or {PUBLIC_LINK_VRF}, the border's public link addresses of a VPC with north-south service",
                n.cidr
            ),
        ));
    }
    if let Some((k, b)) = fabric.pools.public.iter().enumerate().find(|(_, b)| b.overlaps(&n.cidr))
    {
        return Err(Error::invalid(
            format!("networks[{i}].cidr"),
            format!(
                "{} overlaps fabric.pools.public[{k}] ({b}) in a VPC with north-south service",
                n.cidr
            ),
        ));
    }
    Ok(())
}

fn validate_vpcs(intent: &Intent) -> Result<HashMap<&str, usize>> {
    let mut ids = HashMap::with_capacity(intent.vpcs.len());
    for (i, v) in intent.vpcs.iter().enumerate() {
        vpc_item(i, v, ids.insert(v.id.as_str(), i))?;
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
        network_item(i, n, ids.insert(n.id.as_str(), i), vpcs.contains_key(n.vpc.as_str()))?;
        by_vpc.entry(n.vpc.as_str()).or_default().push(i);
    }
    for members in by_vpc.values_mut() {
        vpc_overlap(members, |i| intent.networks[i].cidr)?;
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
        let nic = (a.node.as_str(), a.nic.as_str());
        let facts = AttachmentFacts {
            earlier: ids.insert(a.id.as_str(), i),
            network: networks.get(a.network.as_str()).map(|&ni| &intent.networks[ni]),
            server: servers.contains(a.node.as_str()),
            linked: linked.contains(&nic),
            earlier_nic: nics.insert(nic, i),
            earlier_ip: a.ip.and_then(|ip| ips.insert((a.network.as_str(), ip), i)),
        };
        attachment_item(i, a, facts)?;
    }
    Ok(ids)
}

fn validate_rules(intent: &Intent, networks: &HashMap<&str, usize>) -> Result<()> {
    let mut ids = HashMap::with_capacity(intent.security_rules.len());
    let network = |id: &str| networks.get(id).map(|&i| &intent.networks[i]);
    for (i, r) in intent.security_rules.iter().enumerate() {
        rule_item(i, r, ids.insert(r.id.as_str(), i), network(&r.from), network(&r.to))?;
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
    let mut north_south: BTreeSet<&str> = BTreeSet::new();
    let mut nat_vpcs = HashMap::with_capacity(intent.nat_gateways.len());
    let mut public_ips: HashMap<Ipv4Addr, String> = HashMap::new();
    for (i, g) in intent.nat_gateways.iter().enumerate() {
        let facts = NorthSouthFacts {
            earlier: None,
            target_exists: vpcs.contains_key(g.vpc.as_str()),
            has_uplink,
            earlier_target: nat_vpcs.insert(g.vpc.as_str(), i),
            earlier_ip: g
                .public_ip
                .and_then(|ip| public_ips.insert(ip, format!("nat_gateways[{i}]"))),
        };
        nat_item(fabric, i, g, facts)?;
        north_south.insert(g.vpc.as_str());
    }
    let mut ids = HashMap::with_capacity(intent.floating_ips.len());
    let mut by_attachment = HashMap::with_capacity(intent.floating_ips.len());
    for (i, f) in intent.floating_ips.iter().enumerate() {
        let attachment = attachments.get(f.attachment.as_str());
        let facts = NorthSouthFacts {
            earlier: ids.insert(f.id.as_str(), i),
            target_exists: attachment.is_some(),
            has_uplink,
            earlier_target: by_attachment.insert(f.attachment.as_str(), i),
            earlier_ip: public_ips.insert(f.public_ip, format!("floating_ips[{i}]")),
        };
        floating_ip_item(fabric, i, f, facts)?;
        let network = attachment.map(|&ai| intent.attachments[ai].network.as_str());
        if let Some(&ni) = network.and_then(|n| networks.get(n)) {
            north_south.insert(intent.networks[ni].vpc.as_str());
        }
    }
    for (i, n) in intent.networks.iter().enumerate() {
        if north_south.contains(n.vpc.as_str()) {
            north_south_network_item(fabric, i, n)?;
        }
    }
    Ok(())
}
