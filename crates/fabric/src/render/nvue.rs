//! Cumulus Linux NVUE: `nv set` / `nv unset` commands, then
//! `nv config apply` (NVUE stages every command and applies them at once,
//! so a modification can be written as unset-then-set).
//!
//! From the reference: the bridge domain VLAN-to-VNI map, the VXLAN source
//! address and ARP/ND suppression, `evpn enable`, the BGP ASN/router id,
//! the `underlay` peer group (`remote-as external`, l2vpn-evpn) with
//! unnumbered neighbors, `interface vlanN ip vrf`, `vrf X evpn vni`,
//! type-5 export (`route-export to-evpn`) and the import route target.
//! The older `enable on` spelling is used (the reference marks the newer
//! `state enabled` unconfirmed).
//!
//! Where the reference is silent (unverified syntax, from the NVUE command
//! reference as remembered): hostname, the loopback address and its
//! `ipv4-unicast network`, the VRF's export RT and `redistribute connected`,
//! per-VNI route targets (`evpn vni N route-target`), the anycast gateway
//! (`ip vrr`), access ports (`bridge domain br_default access`) and port
//! state (`link state`). Not rendered: default-route origination on
//! borders, provisioning port isolation; security policies, NAT, floating
//! IPs and the border uplink with its public links are refused
//! (`Error::Unsupported`).

use crate::desired::{Object, PortMode, SegmentPurpose, SwitchConfig};
use crate::diff::{diff_switch, Op};
use crate::error::{Error, Result};

const BRIDGE: &str = "br_default";
const PEER_GROUP: &str = "underlay";

/// The full configuration, ending in `nv config apply`.
pub fn render(switch: &str, cfg: &SwitchConfig) -> Result<Vec<String>> {
    let mut out = vec![format!("nv set system hostname {switch}")];
    for o in cfg.objects.values() {
        out.extend(set(switch, o)?);
    }
    out.push("nv config apply".to_string());
    Ok(out)
}

/// The commands taking a switch from `actual` to `desired` (empty when
/// nothing changes): unsets of removed objects (dependents first), then
/// modifications, then sets of new objects, then one apply.
pub fn converge(
    switch: &str,
    actual: &SwitchConfig,
    desired: &SwitchConfig,
) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for c in diff_switch(switch, Some(desired), Some(actual)) {
        match &c.op {
            Op::Remove { object } => out.extend(unset(object)),
            Op::Modify { from, to } => {
                out.extend(unset(from));
                out.extend(set(switch, to)?);
            }
            Op::Add { object } => out.extend(set(switch, object)?),
        }
    }
    if !out.is_empty() {
        out.push("nv config apply".to_string());
    }
    Ok(out)
}

fn set(switch: &str, o: &Object) -> Result<Vec<String>> {
    let missing_vlan = || {
        Error::unsupported(
            switch,
            o.id().to_string(),
            "NVUE maps a VNI through a VLAN; none allocated",
        )
    };
    Ok(match o {
        Object::Bgp(b) => {
            let mut out = vec![
                format!("nv set interface lo ip address {}/32", b.router_id),
                format!("nv set router bgp autonomous-system {}", b.asn),
                format!("nv set router bgp router-id {}", b.router_id),
                format!("nv set vrf default router bgp peer-group {PEER_GROUP} remote-as external"),
                format!("nv set vrf default router bgp peer-group {PEER_GROUP} address-family l2vpn-evpn enable on"),
            ];
            for p in &b.peers {
                out.push(format!("nv set vrf default router bgp neighbor {} peer-group {PEER_GROUP}", p.port));
            }
            out.push(format!("nv set vrf default router bgp address-family ipv4-unicast network {}/32", b.router_id));
            out
        }
        // udp_port: NVUE's default is 4789 (not set explicitly).
        Object::Vtep(v) => vec![
            format!("nv set nve vxlan source address {}", v.source),
            "nv set nve vxlan arp-nd-suppress on".to_string(),
            "nv set evpn enable on".to_string(),
        ],
        // NVUE allocates the L3 VNI's VLAN, SVI and bridge itself.
        Object::Vrf(v) => vec![
            format!("nv set vrf {} evpn vni {}", v.name, v.l3_vni),
            format!("nv set vrf {} router bgp address-family ipv4-unicast redistribute connected enable on", v.name),
            format!("nv set vrf {} router bgp address-family ipv4-unicast route-export to-evpn enable on", v.name),
            format!("nv set vrf {} router bgp route-import from-evpn route-target {}", v.name, v.route_target),
            format!("nv set vrf {} router bgp route-export to-evpn route-target {}", v.name, v.route_target),
        ],
        Object::Segment(s) => {
            let vlan = s.vlan.ok_or_else(missing_vlan)?;
            let mut out = vec![
                format!("nv set bridge domain {BRIDGE} vlan {vlan} vni {}", s.vni),
                format!("nv set evpn vni {} route-target import {}", s.vni, s.route_target),
                format!("nv set evpn vni {} route-target export {}", s.vni, s.route_target),
            ];
            match &s.purpose {
                SegmentPurpose::Tenant { vrf, gateway, gateway_mac, .. } => out.extend([
                    format!("nv set interface vlan{vlan} ip vrf {vrf}"),
                    format!("nv set interface vlan{vlan} ip vrr address {gateway}"),
                    format!("nv set interface vlan{vlan} ip vrr mac-address {gateway_mac}"),
                    format!("nv set interface vlan{vlan} ip vrr state up"),
                ]),
                SegmentPurpose::Provisioning => {}
            }
            out
        }
        Object::Port(p) => match &p.mode {
            PortMode::Tenant { vlan, .. } | PortMode::Provisioning { vlan, .. } => {
                let vlan = vlan.ok_or_else(missing_vlan)?;
                vec![
                    format!("nv set interface {} bridge domain {BRIDGE} access {vlan}", p.port),
                    format!("nv set interface {} link state up", p.port),
                ]
            }
            PortMode::Disabled => vec![format!("nv set interface {} link state down", p.port)],
        },
        Object::Policy(_)
        | Object::Nat(_)
        | Object::FloatingIp(_)
        | Object::Uplink(_)
        | Object::PublicLink(_) => {
            return Err(Error::unsupported(switch, o.id().to_string(), "not rendered for NVUE yet"))
        }
    })
}

/// The unsets that remove what `set` wrote; a port is left down (a port
/// the plan no longer manages must not pass traffic). Unsupported objects
/// were never written, so they need nothing.
fn unset(o: &Object) -> Vec<String> {
    match o {
        Object::Bgp(b) => vec![
            "nv unset vrf default router bgp".to_string(),
            "nv unset router bgp".to_string(),
            format!("nv unset interface lo ip address {}/32", b.router_id),
        ],
        Object::Vtep(_) => vec!["nv unset evpn".to_string(), "nv unset nve vxlan".to_string()],
        Object::Vrf(v) => vec![format!("nv unset vrf {}", v.name)],
        Object::Segment(s) => {
            let Some(vlan) = s.vlan else { return Vec::new() };
            let mut out = Vec::new();
            match &s.purpose {
                SegmentPurpose::Tenant { .. } => out.push(format!("nv unset interface vlan{vlan}")),
                SegmentPurpose::Provisioning => {}
            }
            out.push(format!("nv unset evpn vni {}", s.vni));
            out.push(format!("nv unset bridge domain {BRIDGE} vlan {vlan}"));
            out
        }
        Object::Port(p) => match &p.mode {
            PortMode::Tenant { .. } | PortMode::Provisioning { .. } => vec![
                format!("nv unset interface {} bridge domain {BRIDGE}", p.port),
                format!("nv set interface {} link state down", p.port),
            ],
            // Already down: a port without an object stays down.
            PortMode::Disabled => Vec::new(),
        },
        Object::Policy(_)
        | Object::Nat(_)
        | Object::FloatingIp(_)
        | Object::Uplink(_)
        | Object::PublicLink(_) => Vec::new(),
    }
}
