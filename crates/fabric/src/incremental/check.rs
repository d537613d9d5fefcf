//! Validation of a change: only the objects whose checks the change can
//! affect are checked, with the same per-object checks, in the same order,
//! as `validate` on the whole intent, so the first error is the same.
//!
//! Objects not checked passed before and nothing they are checked against
//! changed: those checked are the edited objects, the objects referring to
//! an object that appeared or disappeared (or to an edited network: its
//! VPC or addresses may have changed), the other holders of a key an
//! edited object holds (a NIC, a given address, a public address, a
//! floating IP's attachment), and the networks of the VPCs whose
//! north-south service or networks changed.

use super::state::{Derived, Edit, Edits, Lists, PublicGiven, StateView, Topology};
use crate::error::Result;
use crate::validate::intent::{
    attachment_item, floating_ip_item, nat_item, network_item, north_south_network_item, rule_item,
    vpc_item, vpc_overlap, AttachmentFacts, NorthSouthFacts,
};
use std::collections::{BTreeMap, BTreeSet};

/// The latest position below `at` among `positions` (what a "seen" map
/// of a whole-intent pass holds when it reaches `at`).
fn earlier(positions: impl Iterator<Item = usize>, at: usize) -> Option<usize> {
    positions.filter(|&p| p < at).max()
}

fn appeared_or_gone<T>(m: &BTreeMap<String, Edit<T>>) -> impl Iterator<Item = &str> {
    m.iter().filter(|(_, e)| e.old.is_some() != e.new.is_some()).map(|(k, _)| k.as_str())
}

fn added<T>(m: &BTreeMap<String, Edit<T>>) -> impl Iterator<Item = &T> {
    m.values().filter_map(|e| e.new.as_ref())
}

pub(crate) fn check(view: &StateView, edits: &Edits, fips: &BTreeSet<String>) -> Result<()> {
    let StateView { topo, lists, d } = *view;
    let intent = &lists.intent;
    let pos = &lists.pos;

    // VPCs.
    let mut at: BTreeSet<usize> =
        added(&edits.vpcs).filter_map(|v| pos.vpcs.get(&v.id)).copied().collect();
    for p in at {
        vpc_item(p, &intent.vpcs[p], None)?;
    }

    // Networks, then overlaps inside the VPCs that gained or changed one.
    at = added(&edits.networks).filter_map(|n| pos.networks.get(&n.id)).copied().collect();
    for vpc in appeared_or_gone(&edits.vpcs) {
        at.extend(
            d.networks_by_vpc.get(vpc).into_iter().flatten().filter_map(|n| pos.networks.get(n)),
        );
    }
    for p in at {
        let n = &intent.networks[p];
        network_item(p, n, None, pos.vpcs.contains_key(&n.vpc))?;
    }
    // `validate` meets the VPCs in no set order: where a change makes the
    // networks of two VPCs overlap (only `ReplaceVpc` can, by putting
    // networks into another VPC), it may name either; this names the
    // first VPC by id.
    let vpcs: BTreeSet<&str> = added(&edits.networks).map(|n| n.vpc.as_str()).collect();
    for vpc in vpcs {
        let mut members: Vec<usize> = d
            .networks_by_vpc
            .get(vpc)
            .into_iter()
            .flatten()
            .filter_map(|n| pos.networks.get(n))
            .copied()
            .collect();
        vpc_overlap(&mut members, |i| intent.networks[i].cidr)?;
    }

    check_attachments(topo, lists, d, edits)?;

    // Rules.
    at = added(&edits.rules).filter_map(|r| pos.rules.get(&r.id)).copied().collect();
    for n in edits.networks.keys() {
        for r in d.rules_by_to.get(n).into_iter().chain(d.rules_by_from.get(n)).flatten() {
            at.extend(pos.rules.get(r));
        }
    }
    for p in at {
        let r = &intent.security_rules[p];
        rule_item(p, r, None, lists.network(&r.from), lists.network(&r.to))?;
    }

    check_north_south(topo, lists, d, edits, fips)
}

fn check_attachments(topo: &Topology, lists: &Lists, d: &Derived, edits: &Edits) -> Result<()> {
    let (intent, pos) = (&lists.intent, &lists.pos);
    let mut at: BTreeSet<usize> =
        added(&edits.attachments).filter_map(|a| pos.attachments.get(&a.id)).copied().collect();
    for n in edits.networks.keys() {
        at.extend(
            d.attachments_by_network
                .get(n)
                .into_iter()
                .flatten()
                .filter_map(|a| pos.attachments.get(a)),
        );
    }
    for a in added(&edits.attachments) {
        if let Some(link) = topo.link_of(&a.node, &a.nic) {
            at.extend(d.nic_holders[link].iter().filter_map(|h| pos.attachments.get(h)));
        }
        if let (Some(ip), Some(m)) = (a.ip, d.given_ips.get(&a.network)) {
            at.extend(m.get(&ip).iter().filter_map(|h| pos.attachments.get(h)));
        }
    }
    let positions = |ids: &[String]| -> Vec<usize> {
        ids.iter().filter_map(|h| pos.attachments.get(h)).copied().collect()
    };
    for p in at {
        let a = &intent.attachments[p];
        let link = topo.link_of(&a.node, &a.nic);
        let facts = AttachmentFacts {
            earlier: None,
            network: lists.network(&a.network),
            server: topo.servers.contains(&a.node),
            linked: link.is_some(),
            earlier_nic: link.and_then(|l| earlier(positions(&d.nic_holders[l]).into_iter(), p)),
            earlier_ip: a.ip.and_then(|ip| {
                let m = d.given_ips.get(&a.network)?;
                earlier(positions(m.get(&ip)).into_iter(), p)
            }),
        };
        attachment_item(p, a, facts)?;
    }
    Ok(())
}

fn check_north_south(
    topo: &Topology,
    lists: &Lists,
    d: &Derived,
    edits: &Edits,
    fips: &BTreeSet<String>,
) -> Result<()> {
    let (intent, pos) = (&lists.intent, &lists.pos);
    let fabric = &topo.fabric;
    let has_uplink = topo.has_uplink();
    // Given public addresses an edit holds now.
    let mut ips: BTreeSet<std::net::Ipv4Addr> =
        added(&edits.nats).filter_map(|g| g.public_ip).collect();
    ips.extend(added(&edits.fips).map(|f| f.public_ip));
    let holders = |ip| d.public_given.get(&ip);

    // NAT gateways.
    let mut at: BTreeSet<usize> =
        added(&edits.nats).filter_map(|g| pos.nats.get(&g.vpc)).copied().collect();
    for vpc in appeared_or_gone(&edits.vpcs) {
        at.extend(pos.nats.get(vpc));
    }
    for &ip in &ips {
        for h in holders(ip) {
            if let PublicGiven::Nat(vpc) = h {
                at.extend(pos.nats.get(vpc));
            }
        }
    }
    let nat_positions = |ip| -> Vec<usize> {
        holders(ip)
            .iter()
            .filter_map(|h| match h {
                PublicGiven::Nat(vpc) => pos.nats.get(vpc).copied(),
                PublicGiven::Fip(_) => None,
            })
            .collect()
    };
    for p in at {
        let g = &intent.nat_gateways[p];
        let facts = NorthSouthFacts {
            earlier: None,
            target_exists: pos.vpcs.contains_key(&g.vpc),
            has_uplink,
            earlier_target: None,
            earlier_ip: g.public_ip.and_then(|ip| {
                earlier(nat_positions(ip).into_iter(), p).map(|j| format!("nat_gateways[{j}]"))
            }),
        };
        nat_item(fabric, p, g, facts)?;
    }

    // Floating IPs.
    at = added(&edits.fips).filter_map(|f| pos.fips.get(&f.id)).copied().collect();
    for a in appeared_or_gone(&edits.attachments) {
        at.extend(
            d.fips_by_attachment.get(a).into_iter().flatten().filter_map(|f| pos.fips.get(f)),
        );
    }
    for f in added(&edits.fips) {
        let same = d.fips_by_attachment.get(&f.attachment).into_iter().flatten();
        at.extend(same.filter_map(|f| pos.fips.get(f)));
    }
    for &ip in &ips {
        for h in holders(ip) {
            if let PublicGiven::Fip(id) = h {
                at.extend(pos.fips.get(id));
            }
        }
    }
    for p in at {
        let f = &intent.floating_ips[p];
        let fip_positions = |ids: &mut dyn Iterator<Item = &String>| -> Vec<usize> {
            ids.filter_map(|id| pos.fips.get(id)).copied().collect()
        };
        let same_attachment = d.fips_by_attachment.get(&f.attachment);
        let earlier_ip = {
            let mut fips = holders(f.public_ip).iter().filter_map(|h| match h {
                PublicGiven::Fip(id) => Some(id),
                PublicGiven::Nat(_) => None,
            });
            match earlier(fip_positions(&mut fips).into_iter(), p) {
                Some(j) => Some(format!("floating_ips[{j}]")),
                None => nat_positions(f.public_ip)
                    .into_iter()
                    .max()
                    .map(|k| format!("nat_gateways[{k}]")),
            }
        };
        let facts = NorthSouthFacts {
            earlier: None,
            target_exists: pos.attachments.contains_key(&f.attachment),
            has_uplink,
            earlier_target: earlier(
                fip_positions(&mut same_attachment.into_iter().flatten()).into_iter(),
                p,
            ),
            earlier_ip,
        };
        floating_ip_item(fabric, p, f, facts)?;
    }

    // Networks of north-south VPCs: those whose service or networks may
    // have changed.
    let mut vpcs: BTreeSet<&str> = added(&edits.networks).map(|n| n.vpc.as_str()).collect();
    vpcs.extend(added(&edits.nats).map(|g| g.vpc.as_str()));
    vpcs.extend(fips.iter().filter_map(|f| d.fip_vpc.get(f)).map(String::as_str));
    let mut at: BTreeSet<usize> = BTreeSet::new();
    for vpc in vpcs.into_iter().filter(|v| d.is_north_south(v)) {
        at.extend(
            d.networks_by_vpc.get(vpc).into_iter().flatten().filter_map(|n| pos.networks.get(n)),
        );
    }
    for p in at {
        north_south_network_item(fabric, p, &intent.networks[p])?;
    }
    Ok(())
}
