//! Linux netdev (and nftables) steps for an FRR/Linux switch, as `ip`,
//! `bridge`, `sysctl` and `nft` argument vectors, following the lab recipe:
//! VTEP address on `lo`; one bridge + one VXLAN device per VNI (`nolearning`,
//! bridge port `learning off neigh_suppress on`); an access port enslaved to
//! its network's bridge.
//!
//! Tenant VRFs use FRR's namespace backend (the lab kernel has no VRF
//! devices): VRF `VrfN` is network namespace `VrfN`, and everything routed
//! in it (its L3 VNI and tenant bridges, their VXLAN devices, the access
//! ports) lives in that namespace. A VXLAN device is created in the switch's
//! own namespace (so its UDP socket stays on the underlay) and then moved.
//! The recipe verifies L2 VNIs and states that the namespace backend works
//! with L3 VNIs; these per-VRF steps are this crate's reading of it and are
//! to be checked by the lab's end-to-end test.
//!
//! Steps run in the switch's network namespace and mount namespace (its own
//! `/run/netns`, as the recipe requires). A port leaving a VRF is moved back
//! to the namespace named `underlay`, which the executor must create once
//! for the switch's own namespace (`ip netns attach underlay <pid>`; pid 1
//! on a real switch).
//!
//! Filters (security policies, NAT, floating IPs) are nftables base chains
//! in table `inet neocloud` of the VRF's namespace, one chain (or pair) per
//! object, so each object is added and removed without touching the others.
//!
//! North-south on a border (its uplink and one public link per north-south
//! VRF):
//! - The uplink port stays in the switch's own namespace with its address;
//!   its default route (to the upstream gateway) is in table
//!   `UPLINK_TABLE`, which only traffic coming out of a public link looks
//!   up (`ip rule iif pub<N>`): the underlay's main table, and so FRR and
//!   the fabric, never get a default route, and no VXLAN packet can leave
//!   through the uplink. Reverse-path filtering is off on the uplink (the
//!   sources it receives from are routed only in that table) and on the
//!   public links' underlay ends (their VRF ends share one address, which
//!   the main table cannot route back; the links' filters check sources).
//! - A public link is a veth pair: `pub<N>` in the switch's namespace,
//!   `ext<N>` moved into the VRF's (N: the L3 VNI), with /32 addresses
//!   (`PUBLIC_LINK_UNDERLAY` and `PUBLIC_LINK_VRF`, the same on every link)
//!   and `onlink` next hops. The VPC's public addresses are routed to the
//!   VRF end; the VRF's default route points at the underlay end (the
//!   border's `default-originate` spreads it to the VPC's leaves), where the
//!   VRF's NAT and floating IP chains translate.
//! - Filters in the switch's own table `inet neocloud`: the uplink and the
//!   public links forward only to each other; a public link only its own
//!   VPC's public addresses, both ways; the switch accepts nothing from a
//!   public link, and from the uplink only replies and pings to its address.
//!   In the VRF, only replies and translated (floating IP) connections
//!   come in through the public link.
//! - Between VPCs: a VRF reaches another VPC's public addresses only out
//!   through the uplink and back (the upstream router hairpins), as from
//!   the Internet, never across the border; VRFs never reach the underlay.

mod netdev;
mod nft;

use crate::desired::{Object, ObjectId, PortMode, SegmentConfig, SegmentPurpose, SwitchConfig};
use crate::diff::{diff_switch, Op};
use crate::error::Result;
use std::collections::BTreeSet;

/// One command as its argument vector (no shell involved).
pub type Command = Vec<String>;

/// The name the executor gives the switch's own network namespace.
pub const UNDERLAY_NETNS: &str = "underlay";

/// The nftables table in every VRF namespace.
pub const NFT_TABLE: &str = "neocloud";

pub fn bridge_name(vni: u32) -> String {
    format!("br{vni}")
}

pub fn vxlan_name(vni: u32) -> String {
    format!("vni{vni}")
}

/// The routing table of the uplink's default route.
pub const UPLINK_TABLE: u32 = 200;

/// The priority of the rules sending what comes out of a public link to
/// `UPLINK_TABLE` (after `local`, before `main`).
pub const UPLINK_RULE_PRIORITY: u32 = 200;

/// A public link's end in the switch's own namespace.
pub fn public_link_underlay(l3_vni: u32) -> String {
    format!("pub{l3_vni}")
}

/// A public link's end in the VRF's namespace.
pub fn public_link_vrf(l3_vni: u32) -> String {
    format!("ext{l3_vni}")
}

/// The steps that build `cfg` on a switch with none of it.
pub fn render(switch: &str, cfg: &SwitchConfig) -> Result<Vec<Command>> {
    converge(switch, &SwitchConfig::new(cfg.os), cfg)
}

/// The steps that take a switch from `actual` to `desired`: removals (in
/// descending object order: dependents first), then in-place changes, then
/// additions (ascending). A change that cannot be made in place is a
/// removal plus an addition, and so is everything built on it (a port in a
/// re-created segment, a segment in a re-created VRF).
pub fn converge(
    switch: &str,
    actual: &SwitchConfig,
    desired: &SwitchConfig,
) -> Result<Vec<Command>> {
    let changes = diff_switch(switch, Some(desired), Some(actual));
    let mut recreate: BTreeSet<ObjectId> = BTreeSet::new();
    for c in &changes {
        if let Op::Modify { from, to } = &c.op {
            if in_place(from, to).is_none() {
                recreate.insert(c.id());
            }
        }
    }
    // Cascade to kept objects built on re-created ones, to a fixpoint.
    loop {
        let before = recreate.len();
        for (id, o) in &actual.objects {
            if !recreate.contains(id)
                && desired.objects.contains_key(id)
                && recreate.iter().any(|r| depends_on(o, r))
            {
                recreate.insert(id.clone());
            }
        }
        if recreate.len() == before {
            break;
        }
    }
    let mut out = Vec::new();
    for (id, o) in actual.objects.iter().rev() {
        if !desired.objects.contains_key(id) || recreate.contains(id) {
            out.extend(netdev::remove(o));
        }
    }
    for c in &changes {
        if let Op::Modify { from, to } = &c.op {
            if !recreate.contains(&c.id()) {
                out.extend(in_place(from, to).unwrap_or_default());
            }
        }
    }
    let vtep = desired.vtep().map(|v| (v.source, v.udp_port));
    for (id, o) in &desired.objects {
        if !actual.objects.contains_key(id) || recreate.contains(id) {
            out.extend(netdev::add(switch, o, vtep)?);
        }
    }
    Ok(out)
}

/// Whether `o` is built on the object `on` (and must be re-created with it).
pub fn depends_on(o: &Object, on: &ObjectId) -> bool {
    match (o, on) {
        (Object::Vrf(_) | Object::Segment(_), ObjectId::Vtep) => true,
        (Object::Segment(s), ObjectId::Vrf(v)) => match &s.purpose {
            SegmentPurpose::Tenant { vrf, .. } => vrf == v,
            SegmentPurpose::Provisioning => false,
        },
        (Object::Port(p), ObjectId::Vrf(v)) => match &p.mode {
            PortMode::Tenant { vrf, .. } => vrf == v,
            PortMode::Provisioning { .. } | PortMode::Disabled => false,
        },
        (Object::Port(p), ObjectId::Segment(n)) => match &p.mode {
            PortMode::Tenant { vni, .. } | PortMode::Provisioning { vni, .. } => vni == n,
            PortMode::Disabled => false,
        },
        (Object::Policy(p), ObjectId::Vrf(v)) => &p.vrf == v,
        (Object::Policy(p), ObjectId::Segment(n)) => p.vni == *n,
        (Object::Nat(x), ObjectId::Vrf(v)) => &x.vrf == v,
        (Object::FloatingIp(x), ObjectId::Vrf(v)) => &x.vrf == v,
        // The link's end lives in the VRF's namespace; its set element and
        // rule belong with the uplink's table.
        (Object::PublicLink(l), ObjectId::Vrf(v)) => &l.vrf == v,
        (Object::PublicLink(_), ObjectId::Uplink) => true,
        (
            Object::Bgp(_)
            | Object::Vtep(_)
            | Object::Vrf(_)
            | Object::Segment(_)
            | Object::Port(_)
            | Object::Policy(_)
            | Object::Nat(_)
            | Object::FloatingIp(_)
            | Object::Uplink(_)
            | Object::PublicLink(_),
            ObjectId::Bgp
            | ObjectId::Vtep
            | ObjectId::Vrf(_)
            | ObjectId::Segment(_)
            | ObjectId::Port(_)
            | ObjectId::Policy(_)
            | ObjectId::Nat(_)
            | ObjectId::FloatingIp(_)
            | ObjectId::Uplink
            | ObjectId::PublicLink(_),
        ) => false,
    }
}

fn cmd(args: &[&str]) -> Command {
    args.iter().map(|s| s.to_string()).collect()
}

/// `tool [-n ns] args...` (iproute2's tools take the namespace alike).
fn iproute2(tool: &str, ns: Option<&str>, args: &[&str]) -> Command {
    let mut c = cmd(&[tool]);
    if let Some(ns) = ns {
        c.extend(["-n".to_string(), ns.to_string()]);
    }
    c.extend(args.iter().map(|s| s.to_string()));
    c
}

/// `ip [-n ns] args...`
fn ip(ns: Option<&str>, args: &[&str]) -> Command {
    iproute2("ip", ns, args)
}

/// `bridge [-n ns] args...`
fn bridge(ns: Option<&str>, args: &[&str]) -> Command {
    iproute2("bridge", ns, args)
}

/// The commands of an in-place change, or `None` when the object must be
/// re-created.
fn in_place(from: &Object, to: &Object) -> Option<Vec<Command>> {
    match (from, to) {
        (Object::Bgp(a), Object::Bgp(b)) => Some(match a.router_id == b.router_id {
            true => Vec::new(), // ASN and peers are FRR's business
            false => vec![
                ip(None, &["addr", "del", &format!("{}/32", a.router_id), "dev", "lo"]),
                ip(None, &["addr", "add", &format!("{}/32", b.router_id), "dev", "lo"]),
            ],
        }),
        (Object::Vtep(a), Object::Vtep(b)) => (a == b).then(Vec::new),
        // The name encodes the L3 VNI; RTs, local ids and default
        // origination are FRR's or other OSes' business.
        (Object::Vrf(a), Object::Vrf(b)) => (a.l3_vni == b.l3_vni).then(Vec::new),
        (Object::Segment(a), Object::Segment(b)) => segment_in_place(a, b),
        (Object::Port(a), Object::Port(b)) => (a.mode == b.mode).then(Vec::new),
        (Object::Policy(_), Object::Policy(_))
        | (Object::Nat(_), Object::Nat(_))
        | (Object::FloatingIp(_), Object::FloatingIp(_)) => None,
        (Object::Uplink(a), Object::Uplink(b)) => netdev::uplink_in_place(a, b),
        (Object::PublicLink(a), Object::PublicLink(b)) => netdev::public_link_in_place(a, b),
        (
            Object::Bgp(_)
            | Object::Vtep(_)
            | Object::Vrf(_)
            | Object::Segment(_)
            | Object::Port(_)
            | Object::Policy(_)
            | Object::Nat(_)
            | Object::FloatingIp(_)
            | Object::Uplink(_)
            | Object::PublicLink(_),
            Object::Bgp(_)
            | Object::Vtep(_)
            | Object::Vrf(_)
            | Object::Segment(_)
            | Object::Port(_)
            | Object::Policy(_)
            | Object::Nat(_)
            | Object::FloatingIp(_)
            | Object::Uplink(_)
            | Object::PublicLink(_),
        ) => None,
    }
}

fn segment_in_place(a: &SegmentConfig, b: &SegmentConfig) -> Option<Vec<Command>> {
    if a.vni != b.vni {
        return None;
    }
    match (&a.purpose, &b.purpose) {
        (SegmentPurpose::Provisioning, SegmentPurpose::Provisioning) => Some(Vec::new()),
        (
            SegmentPurpose::Tenant { vrf: va, gateway: ga, gateway_mac: ma, .. },
            SegmentPurpose::Tenant { vrf: vb, gateway: gb, gateway_mac: mb, .. },
        ) => {
            if va != vb {
                return None;
            }
            let ns = Some(va.as_str());
            let br = bridge_name(a.vni);
            let mut out = Vec::new();
            if ma != mb {
                out.push(ip(ns, &["link", "set", &br, "address", mb]));
            }
            if ga != gb {
                out.push(ip(ns, &["addr", "del", &ga.to_string(), "dev", &br]));
                out.push(ip(ns, &["addr", "add", &gb.to_string(), "dev", &br]));
            }
            Some(out)
        }
        (SegmentPurpose::Tenant { .. }, SegmentPurpose::Provisioning)
        | (SegmentPurpose::Provisioning, SegmentPurpose::Tenant { .. }) => None,
    }
}
