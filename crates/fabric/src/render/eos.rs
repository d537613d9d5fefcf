//! Arista EOS CLI, after the reference's AVD-derived example: `Vxlan1` with
//! `vxlan vlan N vni M` and `vxlan vrf X vni M`, `vrf instance` + `ip routing
//! vrf`, SVIs with `ip address virtual` and one `ip virtual-router
//! mac-address`, and `router bgp` with an `EVPN-OVERLAY-PEERS` group
//! (loopback update-source, `ebgp-multihop 3`, `send-community`), per-VLAN
//! `rd` / `route-target both` / `redistribute learned`, and per-VRF `rd`,
//! evpn route targets and `redistribute connected`.
//!
//! Choices where the reference is silent (unverified on hardware):
//! - One loopback (`Loopback0`) is router id, overlay source and VTEP
//!   source (the reference's example uses Loopback1 for the VTEP): the model
//!   has one loopback per switch.
//! - RDs are `router-id:local-id` (the segment's VLAN, the VRF's allocated
//!   local id): unique per switch and always within the 16-bit field,
//!   whatever the VNI.
//! - Underlay: unnumbered eBGP over IPv6 link-local (`neighbor interface
//!   ... peer group UNDERLAY remote-as N`, `ipv6 enable` on fabric ports);
//!   overlay sessions between loopbacks of directly cabled switches.
//! - Spines keep the EVPN next hop (`next-hop-unchanged`): an eBGP spine
//!   must not become the VXLAN next hop.
//! - `service routing protocols model multi-agent`, required for EVPN.
//! - Not rendered: border default-route origination, provisioning port
//!   isolation; security policies, NAT, floating IPs and the border uplink
//!   with its public links are refused.
//!
//! Full configuration only: EOS converges with `configure replace` (or a
//! config session) of this text, so no per-change rendering is needed.

use crate::desired::{Object, PortMode, SegmentPurpose, SwitchConfig};
use crate::error::{Error, Result};
use std::collections::BTreeSet;
use std::fmt::Write;

const UNDERLAY: &str = "UNDERLAY";
const OVERLAY: &str = "EVPN-OVERLAY-PEERS";

#[derive(Default)]
struct Sections {
    vlans: String,
    vrfs: String,
    routing: String,
    interfaces: String,
    svis: String,
    vxlan: String,
    gateway_mac: Option<String>,
    bgp_vlans: String,
    bgp_vrfs: String,
}

pub fn render(switch: &str, cfg: &SwitchConfig) -> Result<String> {
    let mut s = Sections::default();
    let bgp = cfg.bgp();
    for o in cfg.objects.values() {
        let unsupported = |reason: &str| Error::unsupported(switch, o.id().to_string(), reason);
        let rd = |local: Option<u16>| match (bgp, local) {
            (Some(b), Some(l)) => Ok(format!("{}:{l}", b.router_id)),
            (None, _) => Err(unsupported("an RD needs the switch's BGP router id")),
            (Some(_), None) => {
                Err(unsupported("EOS needs a switch-local id for the RD; none allocated"))
            }
        };
        match o {
            Object::Bgp(b) => {
                for p in &b.peers {
                    let _ = writeln!(
                        s.interfaces,
                        "interface {}\n   description fabric {}\n   no switchport\n   ipv6 enable\n!",
                        p.port, p.peer
                    );
                }
            }
            Object::Vtep(v) => {
                let _ = writeln!(
                    s.vxlan,
                    "   vxlan source-interface Loopback0\n   vxlan udp-port {}",
                    v.udp_port
                );
            }
            Object::Vrf(v) => {
                let _ = writeln!(s.vrfs, "vrf instance {}\n!", v.name);
                let _ = writeln!(s.routing, "ip routing vrf {}", v.name);
                let _ = writeln!(s.vxlan, "   vxlan vrf {} vni {}", v.name, v.l3_vni);
                let _ = writeln!(
                    s.bgp_vrfs,
                    "   vrf {}\n      rd {}\n      route-target import evpn {rt}\n      route-target export evpn {rt}\n      redistribute connected\n   !",
                    v.name,
                    rd(v.local_id)?,
                    rt = v.route_target
                );
            }
            Object::Segment(seg) => {
                let vlan = seg
                    .vlan
                    .ok_or_else(|| unsupported("EOS maps a VNI through a VLAN; none allocated"))?;
                let _ = writeln!(s.vlans, "vlan {vlan}\n   name vni{}\n!", seg.vni);
                let _ = writeln!(s.vxlan, "   vxlan vlan {vlan} vni {}", seg.vni);
                let _ = writeln!(
                    s.bgp_vlans,
                    "   vlan {vlan}\n      rd {}\n      route-target both {}\n      redistribute learned\n   !",
                    rd(Some(vlan))?,
                    seg.route_target
                );
                match &seg.purpose {
                    SegmentPurpose::Tenant { vrf, gateway, gateway_mac, .. } => {
                        let _ = writeln!(s.svis, "interface Vlan{vlan}\n   vrf {vrf}\n   ip address virtual {gateway}\n!");
                        // One fabric-wide value: the first is every one.
                        s.gateway_mac.get_or_insert_with(|| gateway_mac.clone());
                    }
                    SegmentPurpose::Provisioning => {}
                }
            }
            Object::Port(p) => {
                let _ = writeln!(
                    s.interfaces,
                    "interface {}\n   description node {} nic {}",
                    p.port, p.node, p.nic
                );
                match &p.mode {
                    PortMode::Tenant { vlan, .. } | PortMode::Provisioning { vlan, .. } => {
                        let vlan = vlan.ok_or_else(|| {
                            unsupported("an access port needs a VLAN; none allocated")
                        })?;
                        let _ = writeln!(
                            s.interfaces,
                            "   switchport access vlan {vlan}\n   no shutdown\n!"
                        );
                    }
                    PortMode::Disabled => s.interfaces.push_str("   shutdown\n!\n"),
                }
            }
            Object::Policy(_)
            | Object::Nat(_)
            | Object::FloatingIp(_)
            | Object::Uplink(_)
            | Object::PublicLink(_) => {
                return Err(unsupported("not rendered for EOS yet"));
            }
        }
    }
    let mut out = format!("hostname {switch}\n!\nservice routing protocols model multi-agent\n!\n");
    out.push_str(&s.vlans);
    out.push_str(&s.vrfs);
    out.push_str(&s.interfaces);
    if let Some(b) = bgp {
        let _ = writeln!(out, "interface Loopback0\n   ip address {}/32\n!", b.router_id);
    }
    out.push_str(&s.svis);
    if !s.vxlan.is_empty() {
        let _ = writeln!(out, "interface Vxlan1\n{}!", s.vxlan);
    }
    if let Some(mac) = &s.gateway_mac {
        let _ = writeln!(out, "ip virtual-router mac-address {mac}\n!");
    }
    let _ = writeln!(
        out,
        "ip routing\nipv6 unicast-routing\nip routing ipv6 interfaces\n{}!",
        s.routing
    );
    if let Some(b) = bgp {
        let _ = writeln!(
            out,
            "router bgp {}\n   router-id {}\n   no bgp default ipv4-unicast",
            b.asn, b.router_id
        );
        let _ = writeln!(out, "   neighbor {UNDERLAY} peer group");
        for p in &b.peers {
            let _ = writeln!(
                out,
                "   neighbor interface {} peer group {UNDERLAY} remote-as {}",
                p.port, p.peer_asn
            );
        }
        let _ = writeln!(out, "   neighbor {OVERLAY} peer group");
        let _ = writeln!(out, "   neighbor {OVERLAY} update-source Loopback0");
        let _ = writeln!(out, "   neighbor {OVERLAY} ebgp-multihop 3");
        let _ = writeln!(out, "   neighbor {OVERLAY} send-community");
        if !b.vtep {
            let _ = writeln!(out, "   neighbor {OVERLAY} next-hop-unchanged");
        }
        let overlay: BTreeSet<_> = b.peers.iter().map(|p| (p.peer_loopback, p.peer_asn)).collect();
        for (lo, asn) in overlay {
            let _ = writeln!(
                out,
                "   neighbor {lo} peer group {OVERLAY}\n   neighbor {lo} remote-as {asn}"
            );
        }
        out.push_str("   !\n");
        out.push_str(&s.bgp_vlans);
        let _ = writeln!(out, "   address-family evpn\n      neighbor {OVERLAY} activate\n   !");
        let _ = writeln!(
            out,
            "   address-family ipv4\n      neighbor {UNDERLAY} activate\n      network {}/32\n   !",
            b.router_id
        );
        out.push_str(&s.bgp_vrfs);
        out.push_str("!\n");
    }
    out.push_str("end\n");
    Ok(out)
}
