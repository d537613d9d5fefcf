//! Netdev steps per object: namespaces, bridge + VXLAN pairs, ports, the
//! loopback, a border's uplink and its VRFs' public links. Filters are
//! delegated to `nft`.

use super::{
    bridge, bridge_name, cmd, ip, nft, public_link_underlay, public_link_vrf, vxlan_name, Command,
    UNDERLAY_NETNS, UPLINK_RULE_PRIORITY, UPLINK_TABLE,
};
use crate::desired::{
    Object, PortConfig, PortMode, PublicLinkConfig, SegmentConfig, SegmentPurpose, UplinkConfig,
    VrfConfig, PUBLIC_LINK_UNDERLAY, PUBLIC_LINK_VRF,
};
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
        Object::Uplink(u) => add_uplink(u),
        Object::PublicLink(l) => add_public_link(l),
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
        Object::Uplink(u) => remove_uplink(u),
        Object::PublicLink(l) => remove_public_link(l),
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
    out.push(nft::create_table(Some(ns)));
    out
}

fn add_segment(s: &SegmentConfig, vtep: (Ipv4Addr, u16)) -> Vec<Command> {
    let ns = segment_ns(s);
    let (mut out, enslave) = vni_pair(ns, s.vni, vtep);
    match &s.purpose {
        SegmentPurpose::Tenant { gateway, gateway_mac, vrf, .. } => {
            let br = bridge_name(s.vni);
            out.push(ip(ns, &["link", "set", &br, "address", gateway_mac]));
            out.push(ip(ns, &["addr", "add", &gateway.to_string(), "dev", &br]));
            // Every leaf answers from the same gateway address and MAC, so a
            // host's reply to another leaf's ARP request is delivered here;
            // accepting it as a neighbour lets zebra advertise the host
            // (EVPN type-2 MAC/IP) so routed traffic finds a silent host.
            let accept = format!("net/ipv4/conf/{br}/arp_accept=1");
            out.push(cmd(&["ip", "netns", "exec", vrf, "sysctl", "-qw", &accept]));
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

/// `ip route <op> default via GATEWAY dev PORT table UPLINK_TABLE`.
fn uplink_route(op: &str, u: &UplinkConfig) -> Command {
    let table = UPLINK_TABLE.to_string();
    ip(
        None,
        &["route", op, "default", "via", &u.gateway.to_string(), "dev", &u.port, "table", &table],
    )
}

/// The uplink port in the switch's own namespace, its address, the
/// default route in the uplink's table (which only the public links look
/// up: the fabric underlay's main table never gets a default route), and
/// its filters. Reverse-path filtering is off on the port: the sources of
/// inbound traffic are routed in the uplink's table, not the main one that
/// the kernel's check reads (the kernel uses the larger of `all` and the
/// port's value, so both are set).
fn add_uplink(u: &UplinkConfig) -> Vec<Command> {
    let mut out = vec![
        cmd(&["sysctl", "-qw", "net.ipv4.conf.all.rp_filter=0"]),
        // The slash form: a port name may contain dots.
        cmd(&["sysctl", "-qw", &format!("net/ipv4/conf/{}/rp_filter=0", u.port)]),
        ip(None, &["addr", "add", &u.address.to_string(), "dev", &u.port]),
        ip(None, &["link", "set", &u.port, "up"]),
        uplink_route("add", u),
    ];
    out.extend(nft::add_uplink(u));
    out
}

fn remove_uplink(u: &UplinkConfig) -> Vec<Command> {
    let mut out = nft::remove_uplink();
    out.push(uplink_route("del", u));
    out.push(ip(None, &["addr", "del", &u.address.to_string(), "dev", &u.port]));
    out.push(ip(None, &["link", "set", &u.port, "down"]));
    out
}

/// A new gateway on the same port and address is a route replacement;
/// anything else re-creates the uplink.
pub(super) fn uplink_in_place(a: &UplinkConfig, b: &UplinkConfig) -> Option<Vec<Command>> {
    match (a.port == b.port, a.address == b.address) {
        (true, true) if a.gateway == b.gateway => Some(Vec::new()),
        (true, true) => Some(vec![uplink_route("replace", b)]),
        _ => None,
    }
}

/// `ip route <op> PUBLIC/32 via PUBLIC_LINK_VRF dev pub<N> onlink`.
fn public_route(op: &str, l: &PublicLinkConfig, public: std::net::Ipv4Addr) -> Command {
    ip(
        None,
        &[
            "route",
            op,
            &format!("{public}/32"),
            "via",
            &PUBLIC_LINK_VRF.to_string(),
            "dev",
            &public_link_underlay(l.l3_vni),
            "onlink",
        ],
    )
}

/// `ip rule <op> iif pub<N> lookup UPLINK_TABLE priority ...`: what comes
/// out of the VRF is routed only by the uplink's table (the default route
/// upstream), never by the underlay's.
fn public_rule(op: &str, l: &PublicLinkConfig) -> Command {
    ip(
        None,
        &[
            "rule",
            op,
            "iif",
            &public_link_underlay(l.l3_vni),
            "lookup",
            &UPLINK_TABLE.to_string(),
            "priority",
            &UPLINK_RULE_PRIORITY.to_string(),
        ],
    )
}

/// A veth pair between the switch's namespace (`pub<N>`) and the VRF's
/// (`ext<N>`), /32 addresses at both ends (next hops `onlink`), the VPC's
/// public addresses routed to the VRF end, the VRF's default route to the
/// underlay end, and the link's filters.
fn add_public_link(l: &PublicLinkConfig) -> Vec<Command> {
    let ns = Some(l.vrf.as_str());
    let (up, ext) = (public_link_underlay(l.l3_vni), public_link_vrf(l.l3_vni));
    let mut out = vec![
        ip(None, &["link", "add", &up, "type", "veth", "peer", "name", &ext]),
        // The VRF end's ARP requests come from PUBLIC_LINK_VRF, which the
        // main table cannot route back (every link's VRF end has it):
        // reverse-path filtering would drop them. The link's filter pins
        // the sources it forwards to the VPC's public addresses instead.
        cmd(&["sysctl", "-qw", &format!("net/ipv4/conf/{up}/rp_filter=0")]),
        ip(None, &["link", "set", &ext, "netns", &l.vrf]),
        ip(None, &["addr", "add", &format!("{PUBLIC_LINK_UNDERLAY}/32"), "dev", &up]),
        ip(None, &["link", "set", &up, "up"]),
        ip(ns, &["addr", "add", &format!("{PUBLIC_LINK_VRF}/32"), "dev", &ext]),
        ip(ns, &["link", "set", &ext, "up"]),
        ip(
            ns,
            &[
                "route",
                "add",
                "default",
                "via",
                &PUBLIC_LINK_UNDERLAY.to_string(),
                "dev",
                &ext,
                "onlink",
            ],
        ),
    ];
    out.extend(l.public.iter().map(|&p| public_route("add", l, p)));
    out.push(public_rule("add", l));
    out.extend(nft::add_public_link(l));
    out
}

/// Deleting one end deletes the pair, its addresses and the routes through
/// it; the rule stays unless deleted.
fn remove_public_link(l: &PublicLinkConfig) -> Vec<Command> {
    let mut out = nft::remove_public_link(l);
    out.push(public_rule("del", l));
    out.push(ip(None, &["link", "del", &public_link_underlay(l.l3_vni)]));
    out
}

/// Public addresses added or released: routes and the underlay chain's
/// rules; a new VRF re-creates the link.
pub(super) fn public_link_in_place(
    a: &PublicLinkConfig,
    b: &PublicLinkConfig,
) -> Option<Vec<Command>> {
    if a.vrf != b.vrf || a.l3_vni != b.l3_vni {
        return None;
    }
    if a.public == b.public {
        return Some(Vec::new());
    }
    let mut out: Vec<Command> = a
        .public
        .iter()
        .filter(|p| !b.public.contains(p))
        .map(|&p| public_route("del", a, p))
        .collect();
    out.extend(
        b.public.iter().filter(|p| !a.public.contains(p)).map(|&p| public_route("add", b, p)),
    );
    out.extend(nft::public_link_in_place(b));
    Some(out)
}
