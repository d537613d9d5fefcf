//! Address management: attachment addresses inside their network, NAT
//! gateway addresses from the public blocks. Same ledger rules as the id
//! pools (existing entries never move), except that a freed host address is
//! reused lowest-first: "first free host" is what tenants expect.

use crate::alloc::Allocations;
use crate::error::{Error, Result};
use crate::index::Index;
use crate::intent::Intent;
use crate::pool::first_free;
use std::collections::{BTreeSet, HashMap};
use std::net::Ipv4Addr;

pub(crate) fn assign_addresses(
    ix: &Index,
    intent: &Intent,
    previous: &Allocations,
    out: &mut Allocations,
) -> Result<()> {
    // Per network: used addresses (gateway included) and who holds each.
    let mut used: HashMap<&str, BTreeSet<u32>> = HashMap::with_capacity(intent.networks.len());
    for n in &intent.networks {
        used.entry(n.id.as_str()).or_default().insert(u32::from(n.gateway_ip()));
    }
    let mut held: HashMap<(&str, Ipv4Addr), &str> = HashMap::new();
    // Kept assignments first: they never move.
    for a in intent.attachments.iter().filter(|a| a.ip.is_none()) {
        let Some(&ip) = previous.addresses.get(&a.id) else { continue };
        let n = ix.networks[a.network.as_str()];
        if !n.cidr.is_host(ip) || ip == n.gateway_ip() {
            continue; // the network was renumbered: assign afresh below
        }
        if used.entry(n.id.as_str()).or_default().insert(u32::from(ip)) {
            held.insert((n.id.as_str(), ip), a.id.as_str());
            out.addresses.insert(a.id.clone(), ip);
        }
    }
    // Given addresses must not take one already assigned to another.
    for (i, a) in intent.attachments.iter().enumerate() {
        let Some(ip) = a.ip else { continue };
        if let Some(other) = held.get(&(a.network.as_str(), ip)) {
            return Err(Error::invalid(
                format!("attachments[{i}].ip"),
                format!("{ip} is assigned to attachment {other:?}"),
            ));
        }
        used.entry(a.network.as_str()).or_default().insert(u32::from(ip));
        out.addresses.insert(a.id.clone(), ip);
    }
    let network_index: HashMap<&str, usize> =
        intent.networks.iter().enumerate().map(|(i, n)| (n.id.as_str(), i)).collect();
    let mut new: Vec<_> =
        intent.attachments.iter().filter(|a| !out.addresses.contains_key(&a.id)).collect();
    new.sort_unstable_by(|a, b| a.id.cmp(&b.id));
    for a in new {
        let n = ix.networks[a.network.as_str()];
        let (first, last) = n.cidr.host_range();
        let set = used.entry(n.id.as_str()).or_default();
        let ip = first_free(set, first, last).ok_or_else(|| {
            Error::exhausted(
                format!("networks[{}].cidr", network_index[n.id.as_str()]),
                format!("no free address in {} for attachment {:?}", n.cidr, a.id),
            )
        })?;
        set.insert(ip);
        out.addresses.insert(a.id.clone(), Ipv4Addr::from(ip));
    }
    Ok(())
}

pub(crate) fn assign_nat_addresses(
    ix: &Index,
    intent: &Intent,
    previous: &Allocations,
    out: &mut Allocations,
) -> Result<()> {
    let public = &ix.fabric.pools.public;
    // Kept NAT addresses first: they never move.
    let mut held: HashMap<Ipv4Addr, &str> = HashMap::new();
    for g in intent.nat_gateways.iter().filter(|g| g.public_ip.is_none()) {
        let Some(&ip) = previous.nat_addresses.get(&g.vpc) else { continue };
        if !public.iter().any(|b| b.contains(ip)) {
            continue; // the public blocks changed: allocate afresh below
        }
        if let Some(other) = held.insert(ip, g.vpc.as_str()) {
            return Err(Error::invalid(
                format!("allocations.nat_addresses[{}]", g.vpc),
                format!("{ip} is also the NAT address of VPC {other:?}"),
            ));
        }
        out.nat_addresses.insert(g.vpc.clone(), ip);
    }
    // A given address (NAT or floating) must not take a kept NAT address.
    let given = intent
        .nat_gateways
        .iter()
        .enumerate()
        .filter_map(|(i, g)| g.public_ip.map(|ip| (format!("nat_gateways[{i}].public_ip"), ip)))
        .chain(
            intent
                .floating_ips
                .iter()
                .enumerate()
                .map(|(i, f)| (format!("floating_ips[{i}].public_ip"), f.public_ip)),
        );
    let mut used: BTreeSet<u32> = held.keys().map(|&ip| u32::from(ip)).collect();
    for (field, ip) in given {
        if let Some(vpc) = held.get(&ip) {
            return Err(Error::invalid(field, format!("{ip} is the NAT address of VPC {vpc:?}")));
        }
        used.insert(u32::from(ip));
    }
    for g in intent.nat_gateways.iter() {
        if let Some(ip) = g.public_ip {
            out.nat_addresses.insert(g.vpc.clone(), ip);
        }
    }
    let mut new: Vec<&str> = intent
        .nat_gateways
        .iter()
        .map(|g| g.vpc.as_str())
        .filter(|v| !out.nat_addresses.contains_key(*v))
        .collect();
    new.sort_unstable();
    for vpc in new {
        let ip = public
            .iter()
            .find_map(|b| {
                let (first, last) = b.host_range();
                first_free(&used, first, last)
            })
            .ok_or_else(|| {
                Error::exhausted(
                    "fabric.pools.public",
                    format!("no free address for VPC {vpc:?}'s NAT gateway"),
                )
            })?;
        used.insert(ip);
        out.nat_addresses.insert(vpc.to_string(), Ipv4Addr::from(ip));
    }
    Ok(())
}
