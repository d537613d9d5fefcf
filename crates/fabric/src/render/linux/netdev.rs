//! Netdev steps per object: namespaces, bridge + VXLAN pairs, ports, the
//! loopback. Filters are delegated to `nft`.

use super::{bridge, bridge_name, cmd, ip, nft, vxlan_name, Command, UNDERLAY_NETNS};
use crate::desired::{Object, PortConfig, PortMode, SegmentConfig, SegmentPurpose, VrfConfig};
use crate::error::{Error, Result};
use std::net::Ipv4Addr;

/// The steps that create `o`; `vtep` (source, UDP port) is the desired
/// VTEP, which every VXLAN device uses as its local address.
pub(super) fn add(switch: &str, o: &Object, vtep: Option<(Ipv4Addr, u16)>) -> Result<Vec<Command>> {
    let need_vtep = || {
        vtep.ok_or_else(|| {
            Error::unsupported(
                switch,
                o.id().to_string(),
                "a VXLAN device needs the switch's VTEP object",
            )
        })
    };
    Ok(match o {
        Object::Bgp(b) => vec![
            cmd(&["sysctl", "-qw", "net.ipv4.ip_forward=1"]),
            ip(None, &["addr", "add", &format!("{}/32", b.router_id), "dev", "lo"]),
        ],
        // The VTEP source is the loopback address the BGP object adds.
        Object::Vtep(_) => Vec::new(),
        Object::Vrf(v) => add_vrf(v, need_vtep()?),
        Object::Segment(s) => add_segment(s, need_vtep()?),
        Object::Port(p) => add_port(p),
        Object::Policy(p) => nft::add_policy(p),
        Object::Nat(n) => nft::add_nat(n),
        Object::FloatingIp(f) => nft::add_floating_ip(f),
    })
}

/// The steps that undo `o` (a port is left down, detached, back in the
/// switch's own namespace).
pub(super) fn remove(o: &Object) -> Vec<Command> {
    match o {
        Object::Bgp(b) => {
            vec![ip(None, &["addr", "del", &format!("{}/32", b.router_id), "dev", "lo"])]
        }
        Object::Vtep(_) => Vec::new(),
        Object::Vrf(v) => {
            let ns = Some(v.name.as_str());
            vec![
                ip(ns, &["link", "del", &vxlan_name(v.l3_vni)]),
                ip(ns, &["link", "del", &bridge_name(v.l3_vni)]),
                ip(None, &["netns", "del", &v.name]),
            ]
        }
        Object::Segment(s) => {
            let ns = segment_ns(s);
            vec![
                ip(ns, &["link", "del", &vxlan_name(s.vni)]),
                ip(ns, &["link", "del", &bridge_name(s.vni)]),
            ]
        }
        Object::Port(p) => match &p.mode {
            PortMode::Tenant { vrf, .. } => {
                let ns = Some(vrf.as_str());
                vec![
                    ip(ns, &["link", "set", &p.port, "down"]),
                    ip(ns, &["link", "set", &p.port, "nomaster"]),
                    ip(ns, &["link", "set", &p.port, "netns", UNDERLAY_NETNS]),
                ]
            }
            PortMode::Provisioning { .. } => vec![
                ip(None, &["link", "set", &p.port, "down"]),
                ip(None, &["link", "set", &p.port, "nomaster"]),
            ],
            PortMode::Disabled => Vec::new(),
        },
        Object::Policy(p) => nft::remove_policy(p),
        Object::Nat(n) => nft::remove_nat(n),
        Object::FloatingIp(f) => nft::remove_floating_ip(f),
    }
}

fn segment_ns(s: &SegmentConfig) -> Option<&str> {
    match &s.purpose {
        SegmentPurpose::Tenant { vrf, .. } => Some(vrf.as_str()),
        SegmentPurpose::Provisioning => None,
    }
}

/// A bridge + VXLAN pair for one VNI, per the recipe; the VXLAN device is
/// created here and moved into `ns` when there is one.
fn vni_pair(
    ns: Option<&str>,
    vni: u32,
    (vtep, port): (Ipv4Addr, u16),
) -> (Vec<Command>, Vec<Command>) {
    let (br, vx) = (bridge_name(vni), vxlan_name(vni));
    let mut create = vec![ip(
        None,
        &[
            "link",
            "add",
            &vx,
            "type",
            "vxlan",
            "id",
            &vni.to_string(),
            "local",
            &vtep.to_string(),
            "dstport",
            &port.to_string(),
            "nolearning",
        ],
    )];
    if let Some(ns) = ns {
        create.push(ip(None, &["link", "set", &vx, "netns", ns]));
    }
    create.push(ip(ns, &["link", "add", &br, "type", "bridge"]));
    create.push(ip(ns, &["link", "set", &br, "addrgenmode", "none"]));
    let enslave = vec![
        ip(ns, &["link", "set", &vx, "master", &br, "addrgenmode", "none"]),
        bridge(ns, &["link", "set", "dev", &vx, "learning", "off", "neigh_suppress", "on"]),
        ip(ns, &["link", "set", &vx, "up"]),
        ip(ns, &["link", "set", &br, "up"]),
    ];
    (create, enslave)
}

fn add_vrf(v: &VrfConfig, vtep: (Ipv4Addr, u16)) -> Vec<Command> {
    let ns = v.name.as_str();
    let mut out = vec![
        ip(None, &["netns", "add", ns]),
        ip(Some(ns), &["link", "set", "lo", "up"]),
        cmd(&["ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv4.ip_forward=1"]),
    ];
    let (create, enslave) = vni_pair(Some(ns), v.l3_vni, vtep);
    out.extend(create);
    out.extend(enslave);
    out.push(nft::create_table(ns));
    out
}

fn add_segment(s: &SegmentConfig, vtep: (Ipv4Addr, u16)) -> Vec<Command> {
    let ns = segment_ns(s);
    let (mut out, enslave) = vni_pair(ns, s.vni, vtep);
    match &s.purpose {
        SegmentPurpose::Tenant { gateway, gateway_mac, .. } => {
            let br = bridge_name(s.vni);
            out.push(ip(ns, &["link", "set", &br, "address", gateway_mac]));
            out.push(ip(ns, &["addr", "add", &gateway.to_string(), "dev", &br]));
        }
        SegmentPurpose::Provisioning => {}
    }
    out.extend(enslave);
    out
}

fn add_port(p: &PortConfig) -> Vec<Command> {
    match &p.mode {
        PortMode::Tenant { vni, vrf, .. } => {
            let ns = Some(vrf.as_str());
            vec![
                ip(None, &["link", "set", &p.port, "netns", vrf]),
                ip(ns, &["link", "set", &p.port, "master", &bridge_name(*vni)]),
                ip(ns, &["link", "set", &p.port, "up"]),
            ]
        }
        PortMode::Provisioning { vni, isolated, .. } => {
            let mut out = vec![ip(None, &["link", "set", &p.port, "master", &bridge_name(*vni)])];
            if *isolated {
                // Isolated bridge ports reach only non-isolated ones (the
                // VXLAN device and provisioning servers), not each other.
                out.push(bridge(None, &["link", "set", "dev", &p.port, "isolated", "on"]));
            }
            out.push(ip(None, &["link", "set", &p.port, "up"]));
            out
        }
        PortMode::Disabled => vec![ip(None, &["link", "set", &p.port, "down"])],
    }
}
