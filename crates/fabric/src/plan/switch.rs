//! One switch's objects: underlay, VRFs, segments, ports.

use super::north_south;
use crate::alloc::Allocations;
use crate::desired::{
    vrf_name, BgpConfig, BgpPeer, Object, PortConfig, PortMode, SegmentConfig, SegmentPurpose,
    SwitchConfig, VrfConfig, VtepConfig, VXLAN_UDP_PORT,
};
use crate::error::{Error, Result};
use crate::index::View;
use crate::intent::{Attachment, Network};
use crate::model::{Switch, SwitchRole};
use crate::net::{Ipv4Net, RouteTarget};

pub(crate) fn plan_switch<V: View>(
    ix: &V,
    alloc: &Allocations,
    sw: &Switch,
) -> Result<SwitchConfig> {
    let mut cfg = SwitchConfig::new(sw.os);
    cfg.insert(Object::Bgp(bgp(ix, sw)));
    match sw.role {
        SwitchRole::Spine => return Ok(cfg),
        SwitchRole::Leaf | SwitchRole::Border => {}
    }
    cfg.insert(Object::Vtep(VtepConfig { source: sw.loopback, udp_port: VXLAN_UDP_PORT }));
    // A border without an uplink is planned as a leaf: originating a
    // default route it cannot forward would black-hole egress.
    let border = sw.carries_north_south();
    for vpc in ix.switch_vpcs(sw) {
        let a = alloc.vpcs.get(vpc).ok_or_else(|| {
            Error::unallocated(format!("allocations.vpcs[{vpc}]"), "no L3 VNI for this VPC")
        })?;
        let local_id = match sw.os.local_id_per_vrf() {
            true => Some(local_vlan(alloc, sw, Local::Vrf, vpc)?),
            false => None,
        };
        cfg.insert(Object::Vrf(VrfConfig {
            name: vrf_name(a.l3_vni),
            vpc: vpc.to_string(),
            l3_vni: a.l3_vni,
            route_target: a.route_target,
            local_id,
            default_originate: border && ix.is_north_south(vpc),
        }));
    }
    for n in ix.switch_networks(&sw.name) {
        cfg.insert(Object::Segment(tenant_segment(ix, alloc, sw, n)?));
    }
    plan_ports(ix, alloc, sw, &mut cfg)?;
    north_south::plan_policies(ix, alloc, sw, &mut cfg)?;
    if let (true, Some(uplink)) = (border, &sw.uplink) {
        north_south::plan_border(ix, alloc, uplink, &mut cfg)?;
    }
    Ok(cfg)
}

fn bgp<V: View>(ix: &V, sw: &Switch) -> BgpConfig {
    let mut peers: Vec<BgpPeer> = sw
        .fabric_ports
        .iter()
        .filter_map(|fp| {
            let p = ix.switch(&fp.peer)?;
            Some(BgpPeer {
                port: fp.port.clone(),
                peer: p.name.clone(),
                peer_asn: p.asn,
                peer_loopback: p.loopback,
            })
        })
        .collect();
    peers.sort_by(|a, b| a.port.cmp(&b.port));
    BgpConfig { asn: sw.asn, router_id: sw.loopback, peers, vtep: sw.role.is_vtep() }
}

/// Which table of a switch's local ids.
#[derive(Clone, Copy)]
enum Local {
    Vrf,
    Network,
}

fn local_vlan(alloc: &Allocations, sw: &Switch, kind: Local, id: &str) -> Result<u16> {
    let table = alloc.vlans.get(&sw.name);
    let (v, name) = match kind {
        Local::Vrf => (table.and_then(|t| t.vrfs.get(id)), "vrfs"),
        Local::Network => (table.and_then(|t| t.networks.get(id)), "networks"),
    };
    v.copied().ok_or_else(|| {
        Error::unallocated(
            format!("allocations.vlans[{}].{name}[{id}]", sw.name),
            format!("{} needs a switch-local VLAN here", sw.os.as_str()),
        )
    })
}

pub(super) fn vrf_of(alloc: &Allocations, vpc: &str) -> Result<String> {
    alloc.vpcs.get(vpc).map(|a| vrf_name(a.l3_vni)).ok_or_else(|| {
        Error::unallocated(format!("allocations.vpcs[{vpc}]"), "no L3 VNI for this VPC")
    })
}

/// An attachment's network (validated inputs always have it).
fn network_of<'v, V: View>(ix: &'v V, a: &Attachment) -> Result<&'v Network> {
    ix.network(&a.network)
        .ok_or_else(|| Error::invalid(format!("attachments[{}].network", a.id), "no such network"))
}

pub(super) fn l2_vni(alloc: &Allocations, network: &str) -> Result<u32> {
    alloc.networks.get(network).map(|a| a.l2_vni).ok_or_else(|| {
        Error::unallocated(format!("allocations.networks[{network}]"), "no L2 VNI for this network")
    })
}

fn tenant_segment<V: View>(
    ix: &V,
    alloc: &Allocations,
    sw: &Switch,
    n: &Network,
) -> Result<SegmentConfig> {
    let a = alloc.networks.get(&n.id).ok_or_else(|| {
        Error::unallocated(format!("allocations.networks[{}]", n.id), "no L2 VNI for this network")
    })?;
    let vlan = match sw.os.vlan_per_segment() {
        true => Some(local_vlan(alloc, sw, Local::Network, &n.id)?),
        false => None,
    };
    // The prefix length comes from the validated CIDR (at most 32).
    let gateway = Ipv4Net::new(n.gateway_ip(), n.cidr.prefix()).unwrap_or(n.cidr);
    Ok(SegmentConfig {
        vni: a.l2_vni,
        vlan,
        route_target: a.route_target,
        purpose: SegmentPurpose::Tenant {
            network: n.id.clone(),
            vrf: vrf_of(alloc, &n.vpc)?,
            gateway,
            gateway_mac: ix.fabric().gateway_mac.clone(),
        },
    })
}

fn plan_ports<V: View>(
    ix: &V,
    alloc: &Allocations,
    sw: &Switch,
    cfg: &mut SwitchConfig,
) -> Result<()> {
    let prov = &ix.fabric().pools.provisioning;
    let prov_vlan = sw.os.vlan_per_segment().then_some(prov.vlan);
    let mut quarantined = false;
    for (l, attachment) in ix.ports(&sw.name) {
        let mode = match attachment {
            Some(a) => {
                let n = network_of(ix, a)?;
                let vlan = match sw.os.vlan_per_segment() {
                    true => Some(local_vlan(alloc, sw, Local::Network, &n.id)?),
                    false => None,
                };
                PortMode::Tenant { vni: l2_vni(alloc, &n.id)?, vlan, vrf: vrf_of(alloc, &n.vpc)? }
            }
            None if ix.node_attached(&l.node) => PortMode::Disabled,
            None => {
                quarantined = true;
                PortMode::Provisioning {
                    vni: prov.vni,
                    vlan: prov_vlan,
                    isolated: !ix.provisioning_server(&l.node),
                }
            }
        };
        cfg.insert(Object::Port(PortConfig {
            port: l.port.clone(),
            node: l.node.clone(),
            nic: l.nic.clone(),
            mode,
        }));
    }
    if quarantined {
        cfg.insert(Object::Segment(SegmentConfig {
            vni: prov.vni,
            vlan: prov_vlan,
            route_target: RouteTarget { asn: ix.fabric().pools.route_target_asn, value: prov.vni },
            purpose: SegmentPurpose::Provisioning,
        }));
    }
    Ok(())
}
