//! Desired (and observed) switch configuration as typed objects keyed by
//! id: ordered, comparable and diffable, never strings. Renderers turn it
//! into each OS's syntax; `diff` compares two of them.
//!
//! Each object is self-contained (a port carries its VRF and VLAN, not just
//! a reference), so a change anywhere an object depends on shows up as a
//! change of that object, and a renderer needs nothing but the object.
//!
//! `ObjectId` variants are declared in dependency order: a VRF before the
//! segments in it, a segment before the ports in it. Adding in ascending
//! and removing in descending id order is therefore always safe.

use crate::model::SwitchOs;
use crate::net::{Ipv4Net, PortAllow, PortRange, Protocol, RouteTarget};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::collections::BTreeMap;
use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

/// The standard VXLAN UDP port (IANA).
pub const VXLAN_UDP_PORT: u16 = 4789;

/// The underlay end of every VRF's public link (see `PublicLinkConfig`):
/// the VRF's default route points here. Not 169.254.0.1: FRR's unnumbered
/// BGP installs the underlay's IPv4 routes via that address (onlink, on the
/// fabric ports), and the kernel rejects them once it is a local address.
pub const PUBLIC_LINK_UNDERLAY: Ipv4Addr = Ipv4Addr::new(169, 254, 255, 1);

/// The VRF end of every VRF's public link: the underlay routes the VPC's
/// public addresses here. Both ends are /32s, the same in every VRF (each
/// VRF end is in its own namespace; the next hops are per link), so no
/// per-VPC link addressing is allocated.
pub const PUBLIC_LINK_VRF: Ipv4Addr = Ipv4Addr::new(169, 254, 255, 2);

/// The VRF name of an L3 VNI. Names derive from allocated numbers, never
/// from tenant strings: they satisfy every OS's syntax (SONiC requires
/// `Vrf[a-zA-Z0-9_-]+`), fit Linux's 15-byte limit, and leak no tenant name
/// onto a switch.
pub fn vrf_name(l3_vni: u32) -> String {
    format!("Vrf{l3_vni}")
}

/// Every switch's configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DesiredState {
    pub switches: BTreeMap<String, SwitchConfig>,
}

/// One switch's configuration objects.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SwitchConfig {
    pub os: SwitchOs,
    #[serde(with = "objects_as_list")]
    pub objects: BTreeMap<ObjectId, Object>,
}

impl SwitchConfig {
    pub fn new(os: SwitchOs) -> SwitchConfig {
        SwitchConfig { os, objects: BTreeMap::new() }
    }

    /// Inserts an object under its own id.
    pub fn insert(&mut self, object: Object) {
        self.objects.insert(object.id(), object);
    }

    pub fn get(&self, id: &ObjectId) -> Option<&Object> {
        self.objects.get(id)
    }

    /// The BGP object, where there is one.
    pub fn bgp(&self) -> Option<&BgpConfig> {
        match self.objects.get(&ObjectId::Bgp) {
            Some(Object::Bgp(b)) => Some(b),
            Some(_) | None => None,
        }
    }

    /// The VTEP object, where there is one.
    pub fn vtep(&self) -> Option<&VtepConfig> {
        match self.objects.get(&ObjectId::Vtep) {
            Some(Object::Vtep(v)) => Some(v),
            Some(_) | None => None,
        }
    }
}

/// Identifies an object on one switch.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ObjectId {
    Bgp,
    Vtep,
    /// By VRF name.
    Vrf(String),
    /// By VNI.
    Segment(u32),
    /// By switch port.
    Port(String),
    /// By destination segment VNI.
    Policy(u32),
    /// By VRF name.
    Nat(String),
    /// By public address.
    FloatingIp(Ipv4Addr),
    /// The border's uplink (one per switch).
    Uplink,
    /// By VRF name: the VRF's link to the uplink.
    PublicLink(String),
}

impl fmt::Display for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ObjectId::Bgp => write!(f, "bgp"),
            ObjectId::Vtep => write!(f, "vtep"),
            ObjectId::Vrf(v) => write!(f, "vrf:{v}"),
            ObjectId::Segment(v) => write!(f, "segment:{v}"),
            ObjectId::Port(p) => write!(f, "port:{p}"),
            ObjectId::Policy(v) => write!(f, "policy:{v}"),
            ObjectId::Nat(v) => write!(f, "nat:{v}"),
            ObjectId::FloatingIp(ip) => write!(f, "floating_ip:{ip}"),
            ObjectId::Uplink => write!(f, "uplink"),
            ObjectId::PublicLink(v) => write!(f, "public_link:{v}"),
        }
    }
}

impl FromStr for ObjectId {
    type Err = String;

    fn from_str(s: &str) -> Result<ObjectId, String> {
        let bad = || format!("{s:?}: not an object id");
        let (kind, key) = s.split_once(':').unwrap_or((s, ""));
        match kind {
            "bgp" if key.is_empty() => Ok(ObjectId::Bgp),
            "vtep" if key.is_empty() => Ok(ObjectId::Vtep),
            "vrf" => Ok(ObjectId::Vrf(key.to_string())),
            "segment" => key.parse().map(ObjectId::Segment).map_err(|_| bad()),
            "port" => Ok(ObjectId::Port(key.to_string())),
            "policy" => key.parse().map(ObjectId::Policy).map_err(|_| bad()),
            "nat" => Ok(ObjectId::Nat(key.to_string())),
            "floating_ip" => key.parse().map(ObjectId::FloatingIp).map_err(|_| bad()),
            "uplink" if key.is_empty() => Ok(ObjectId::Uplink),
            "public_link" => Ok(ObjectId::PublicLink(key.to_string())),
            _ => Err(bad()),
        }
    }
}

impl Serialize for ObjectId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ObjectId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<ObjectId, D::Error> {
        String::deserialize(d)?.parse().map_err(serde::de::Error::custom)
    }
}

/// One configuration object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "object", rename_all = "snake_case")]
pub enum Object {
    Bgp(BgpConfig),
    Vtep(VtepConfig),
    Vrf(VrfConfig),
    Segment(SegmentConfig),
    Port(PortConfig),
    Policy(PolicyConfig),
    Nat(NatConfig),
    FloatingIp(FloatingIpConfig),
    Uplink(UplinkConfig),
    PublicLink(PublicLinkConfig),
}

impl Object {
    pub fn id(&self) -> ObjectId {
        match self {
            Object::Bgp(_) => ObjectId::Bgp,
            Object::Vtep(_) => ObjectId::Vtep,
            Object::Vrf(v) => ObjectId::Vrf(v.name.clone()),
            Object::Segment(s) => ObjectId::Segment(s.vni),
            Object::Port(p) => ObjectId::Port(p.port.clone()),
            Object::Policy(p) => ObjectId::Policy(p.vni),
            Object::Nat(n) => ObjectId::Nat(n.vrf.clone()),
            Object::FloatingIp(f) => ObjectId::FloatingIp(f.public_ip),
            Object::Uplink(_) => ObjectId::Uplink,
            Object::PublicLink(p) => ObjectId::PublicLink(p.vrf.clone()),
        }
    }
}

/// The underlay: eBGP unnumbered on fabric ports, the loopback advertised,
/// and the EVPN address family.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BgpConfig {
    pub asn: u32,
    /// Also the loopback /32 advertised into the underlay.
    pub router_id: Ipv4Addr,
    /// Sorted by port.
    pub peers: Vec<BgpPeer>,
    /// A VTEP advertises its VNIs (`advertise-all-vni`); a spine only
    /// relays EVPN routes.
    pub vtep: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BgpPeer {
    pub port: String,
    pub peer: String,
    pub peer_asn: u32,
    pub peer_loopback: Ipv4Addr,
}

/// The VXLAN tunnel endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VtepConfig {
    pub source: Ipv4Addr,
    pub udp_port: u16,
}

/// A tenant routing domain: VRF, L3 VNI (EVPN type-5 and symmetric IRB).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VrfConfig {
    pub name: String,
    /// The VPC id (for descriptions and status, never a device name).
    pub vpc: String,
    pub l3_vni: u32,
    pub route_target: RouteTarget,
    /// Switch-local id: SONiC's L3 VNI VLAN, EOS's RD index.
    pub local_id: Option<u16>,
    /// A border originates a default route into the VRF (north-south).
    pub default_originate: bool,
}

/// An L2 segment: a VNI with its bridge (and VLAN where the OS uses one).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SegmentConfig {
    pub vni: u32,
    pub vlan: Option<u16>,
    pub route_target: RouteTarget,
    pub purpose: SegmentPurpose,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum SegmentPurpose {
    /// A tenant network, routed in its VPC's VRF through an anycast gateway.
    Tenant { network: String, vrf: String, gateway: Ipv4Net, gateway_mac: String },
    /// The provider's provisioning network: L2 only, no gateway, no VRF.
    Provisioning,
}

/// A switch port facing a node NIC.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortConfig {
    pub port: String,
    pub node: String,
    pub nic: String,
    pub mode: PortMode,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum PortMode {
    /// Untagged access port of a tenant network.
    Tenant { vni: u32, vlan: Option<u16>, vrf: String },
    /// Quarantine: in the provisioning network; isolated from other
    /// provisioning ports unless it faces a provisioning server.
    Provisioning { vni: u32, vlan: Option<u16>, isolated: bool },
    /// Administratively down: an unattached NIC of a node that is in use by
    /// a tenant (it must reach neither other tenants nor provisioning).
    Disabled,
}

/// The allow-list into one tenant network from the VPC's other networks.
/// Enforced on every leaf carrying the destination: with symmetric IRB the
/// last routing hop into a network is always on such a leaf.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyConfig {
    /// The destination segment.
    pub vni: u32,
    pub vrf: String,
    /// Checked first, in order.
    pub allow: Vec<PolicyAllow>,
    /// Then everything else from these prefixes (the VPC's other networks)
    /// is dropped; other sources (north-south) are left to NAT/floating IPs.
    pub deny_from: Vec<Ipv4Net>,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyAllow {
    pub from: Ipv4Net,
    pub protocol: Protocol,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ports: Option<PortRange>,
}

/// Source NAT for a VPC's egress, on a border.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NatConfig {
    pub vrf: String,
    pub public_ip: Ipv4Addr,
    /// The VPC's prefixes (sorted).
    pub sources: Vec<Ipv4Net>,
}

/// A one-to-one public address, on a border.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FloatingIpConfig {
    pub vrf: String,
    pub public_ip: Ipv4Addr,
    pub private_ip: Ipv4Addr,
    /// What may come in (sorted); empty lets nothing in.
    pub allow: Vec<PortAllow>,
}

/// A border's uplink, planned where the border carries north-south VPCs:
/// the port with its address, and a default route to the upstream router
/// that only the VRFs' public links use (never the fabric underlay).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UplinkConfig {
    pub port: String,
    /// The border's address with the link's prefix length.
    pub address: Ipv4Net,
    pub gateway: Ipv4Addr,
}

/// A north-south VRF's link to the uplink, on a border: its public
/// addresses (NAT gateway, floating IPs) are routed from the underlay to
/// the VRF, and the VRF's default route leads back out through the uplink.
/// Nothing else crosses: no route between VRFs, none from a VRF into the
/// underlay.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublicLinkConfig {
    pub vrf: String,
    /// The VRF's L3 VNI (names the link's devices).
    pub l3_vni: u32,
    /// The VPC's public addresses (sorted, distinct).
    pub public: Vec<Ipv4Addr>,
}

/// Serializes the object map as a list (each object carries its id).
mod objects_as_list {
    use super::{Object, ObjectId};
    use serde::{Deserialize, Deserializer, Serializer};
    use std::collections::BTreeMap;

    pub fn serialize<S: Serializer>(
        m: &BTreeMap<ObjectId, Object>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.collect_seq(m.values())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<BTreeMap<ObjectId, Object>, D::Error> {
        let list = Vec::<Object>::deserialize(d)?;
        let mut out = BTreeMap::new();
        for o in list {
            let id = o.id();
            if out.insert(id.clone(), o).is_some() {
                return Err(serde::de::Error::custom(format!("object {id} listed twice")));
            }
        }
        Ok(out)
    }
}
