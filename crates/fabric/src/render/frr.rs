//! FRR configuration (zebra + bgpd), as in the lab recipe
//! (shared/reference/fabric-lab.md) and the reference's FRR facts:
//! eBGP unnumbered underlay with a `fabric` peer group, the loopback /32
//! advertised, `l2vpn evpn` with `advertise-all-vni` on VTEPs only, each
//! tenant VRF's `vrf X / vni N` in zebra (not bgpd), and a BGP instance per
//! VRF that advertises its prefixes as EVPN type-5 routes.
//!
//! Route targets are written explicitly (`ASN:VNI` from the ledger) for
//! every L2 and L3 VNI: FRR's defaults derive the export RT from the local
//! AS, which differs per leaf under eBGP and would not match the other OSes.
//! RDs are left to FRR (RouterId:VNI-index, unique per switch). Used for
//! SONiC too (its routing stack is FRR; this assumes split-mode config).

use crate::desired::{Object, SwitchConfig};
use std::fmt::Write;

/// The daemons' configuration files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrrFiles {
    /// zebra.conf: hostname and the VRF-to-L3-VNI mapping.
    pub zebra: String,
    /// bgpd.conf: the default BGP instance and one per VRF.
    pub bgpd: String,
    /// The same content as one integrated frr.conf (for frr-reload.py).
    pub integrated: String,
}

/// Peer group of the underlay sessions (the lab's name).
const PEER_GROUP: &str = "fabric";

pub fn render(switch: &str, cfg: &SwitchConfig) -> FrrFiles {
    let mut zebra = String::new();
    let mut bgp_head = String::new();
    let mut evpn_vnis = String::new();
    let mut vrf_instances = String::new();
    let bgp = cfg.bgp();
    for o in cfg.objects.values() {
        match o {
            Object::Bgp(b) => {
                let _ = writeln!(bgp_head, "router bgp {}", b.asn);
                let _ = writeln!(bgp_head, " bgp router-id {}", b.router_id);
                bgp_head.push_str(" no bgp ebgp-requires-policy\n");
                let _ = writeln!(bgp_head, " neighbor {PEER_GROUP} peer-group");
                let _ = writeln!(bgp_head, " neighbor {PEER_GROUP} remote-as external");
                for p in &b.peers {
                    let _ = writeln!(
                        bgp_head,
                        " neighbor {} interface peer-group {PEER_GROUP}",
                        p.port
                    );
                }
                bgp_head.push_str(" address-family ipv4 unicast\n");
                let _ = writeln!(bgp_head, "  network {}/32", b.router_id);
                bgp_head.push_str(" exit-address-family\n");
            }
            Object::Vrf(v) => {
                let _ = writeln!(zebra, "vrf {}\n vni {}\nexit-vrf", v.name, v.l3_vni);
                let Some(b) = bgp else { continue };
                let _ = writeln!(vrf_instances, "router bgp {} vrf {}", b.asn, v.name);
                let _ = writeln!(vrf_instances, " bgp router-id {}", b.router_id);
                vrf_instances.push_str(" address-family ipv4 unicast\n  redistribute connected\n");
                vrf_instances.push_str(" exit-address-family\n address-family l2vpn evpn\n");
                let _ = writeln!(vrf_instances, "  route-target import {}", v.route_target);
                let _ = writeln!(vrf_instances, "  route-target export {}", v.route_target);
                vrf_instances.push_str("  advertise ipv4 unicast\n");
                if v.default_originate {
                    vrf_instances.push_str("  default-originate ipv4\n");
                }
                vrf_instances.push_str(" exit-address-family\nexit\n");
            }
            Object::Segment(s) => {
                let _ = writeln!(evpn_vnis, "  vni {}", s.vni);
                let _ = writeln!(evpn_vnis, "   route-target import {}", s.route_target);
                let _ = writeln!(evpn_vnis, "   route-target export {}", s.route_target);
                evpn_vnis.push_str("  exit-vni\n");
            }
            // Not FRR's concern: the VTEP is the loopback, ports, filters
            // and the uplink plumbing are Linux netdev/nftables state (see
            // `linux`). The uplink's default route is in a table zebra does
            // not read, and the VRF's default route (a kernel route in its
            // namespace) is not redistributed: `default-originate` gives
            // the VPC's leaves their default route.
            Object::Vtep(_)
            | Object::Port(_)
            | Object::Policy(_)
            | Object::Nat(_)
            | Object::FloatingIp(_)
            | Object::Uplink(_)
            | Object::PublicLink(_) => {}
        }
    }
    let mut bgpd = String::new();
    if let Some(b) = bgp {
        bgpd.push_str(&bgp_head);
        bgpd.push_str(" address-family l2vpn evpn\n");
        let _ = writeln!(bgpd, "  neighbor {PEER_GROUP} activate");
        if b.vtep {
            bgpd.push_str("  advertise-all-vni\n");
            bgpd.push_str(&evpn_vnis);
        }
        bgpd.push_str(" exit-address-family\nexit\n");
        bgpd.push_str(&vrf_instances);
    }
    let hostname = format!("hostname {switch}\n");
    FrrFiles {
        integrated: format!("{hostname}{zebra}{bgpd}"),
        zebra: format!("{hostname}{zebra}"),
        bgpd: format!("{hostname}{bgpd}"),
    }
}
