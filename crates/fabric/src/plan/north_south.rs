//! Filtering objects: security policies inside a VPC (on leaves carrying
//! the destination) and north-south NAT / floating IPs (on borders with an
//! uplink), with the border's uplink and each north-south VRF's public
//! link.

use super::switch::{l2_vni, vrf_of};
use crate::alloc::Allocations;
use crate::desired::{
    vrf_name, FloatingIpConfig, NatConfig, Object, PolicyAllow, PolicyConfig, PublicLinkConfig,
    SwitchConfig, UplinkConfig,
};
use crate::error::{Error, Result};
use crate::index::View;
use crate::model::{Switch, Uplink};
use crate::net::Ipv4Net;
use std::net::Ipv4Addr;

pub(super) fn plan_policies<V: View>(
    ix: &V,
    alloc: &Allocations,
    sw: &Switch,
    cfg: &mut SwitchConfig,
) -> Result<()> {
    for n in ix.switch_networks(&sw.name) {
        let mut rules = ix.rules_to(&n.id).peekable();
        if rules.peek().is_none() {
            continue;
        }
        let mut allow = Vec::new();
        for r in rules {
            let from = ix.network(&r.from).ok_or_else(|| {
                Error::invalid(format!("security_rules[{}].from", r.id), "no such network")
            })?;
            allow.push(PolicyAllow { from: from.cidr, protocol: r.protocol, ports: r.ports });
        }
        allow.sort();
        allow.dedup();
        let mut deny_from: Vec<Ipv4Net> =
            ix.vpc_networks(&n.vpc).filter(|o| o.id != n.id).map(|o| o.cidr).collect();
        deny_from.sort();
        cfg.insert(Object::Policy(PolicyConfig {
            vni: l2_vni(alloc, &n.id)?,
            vrf: vrf_of(alloc, &n.vpc)?,
            allow,
            deny_from,
        }));
    }
    Ok(())
}

/// A border with an uplink: per north-south VPC its NAT, floating IPs and
/// public link; the uplink itself once there is any north-south VPC.
pub(super) fn plan_border<V: View>(
    ix: &V,
    alloc: &Allocations,
    uplink: &Uplink,
    cfg: &mut SwitchConfig,
) -> Result<()> {
    if ix.north_south().next().is_some() {
        cfg.insert(Object::Uplink(UplinkConfig {
            port: uplink.port.clone(),
            address: uplink.address,
            gateway: uplink.gateway,
        }));
    }
    for vpc in ix.north_south() {
        let l3_vni = alloc.vpcs.get(vpc).map(|a| a.l3_vni).ok_or_else(|| {
            Error::unallocated(format!("allocations.vpcs[{vpc}]"), "no L3 VNI for this VPC")
        })?;
        let vrf = vrf_name(l3_vni);
        let mut public: Vec<Ipv4Addr> = Vec::new();
        if ix.nat(vpc).is_some() {
            let public_ip = alloc.nat_addresses.get(vpc).copied().ok_or_else(|| {
                Error::unallocated(
                    format!("allocations.nat_addresses[{vpc}]"),
                    "no NAT address for this VPC",
                )
            })?;
            let mut sources: Vec<Ipv4Net> = ix.vpc_networks(vpc).map(|n| n.cidr).collect();
            sources.sort();
            public.push(public_ip);
            cfg.insert(Object::Nat(NatConfig { vrf: vrf.clone(), public_ip, sources }));
        }
        for f in ix.vpc_floating_ips(vpc) {
            let private_ip = alloc.addresses.get(&f.attachment).copied().ok_or_else(|| {
                Error::unallocated(
                    format!("allocations.addresses[{}]", f.attachment),
                    "no address for this attachment",
                )
            })?;
            let mut allow = f.allow.clone();
            allow.sort();
            allow.dedup();
            public.push(f.public_ip);
            cfg.insert(Object::FloatingIp(FloatingIpConfig {
                vrf: vrf.clone(),
                public_ip: f.public_ip,
                private_ip,
                allow,
            }));
        }
        public.sort_unstable();
        public.dedup();
        cfg.insert(Object::PublicLink(PublicLinkConfig { vrf, l3_vni, public }));
    }
    Ok(())
}
