//! The provider's side of the model: the fabric, its id pools, switches and
//! the cabling between node NICs and switch ports.

use crate::net::Ipv4Net;
use serde::{Deserialize, Serialize};
use std::net::{IpAddr, Ipv4Addr};

/// Which kind of fabric. Only Ethernet is planned here: InfiniBand isolates
/// tenants with partition keys (UFM/OpenSM), a different core.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FabricKind {
    Ethernet,
    Infiniband,
}

/// One EVPN/VXLAN fabric: a leaf/spine underlay with its overlay id pools.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fabric {
    pub name: String,
    pub kind: FabricKind,
    pub pools: Pools,
    /// The anycast gateway MAC: one value for every tenant gateway on every
    /// leaf, so a host keeps its ARP entry whichever leaf routes for it.
    #[serde(default = "default_gateway_mac")]
    pub gateway_mac: String,
}

/// 00:00:5e:00:01:01 (the IANA VRRP virtual MAC for VRID 1), a common
/// anycast-gateway choice; any unicast MAC the provider owns works.
pub fn default_gateway_mac() -> String {
    "00:00:5e:00:01:01".to_string()
}

/// An inclusive range of ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdRange {
    pub first: u32,
    pub last: u32,
}

impl IdRange {
    pub fn contains(&self, v: u32) -> bool {
        (self.first..=self.last).contains(&v)
    }

    pub fn overlaps(&self, other: &IdRange) -> bool {
        self.first <= other.last && other.first <= self.last
    }
}

/// Where the fabric's ids and addresses come from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pools {
    /// L2 VNIs, one per tenant network (1..=16777215).
    pub l2_vni: IdRange,
    /// L3 VNIs, one per VPC; disjoint from `l2_vni`.
    pub l3_vni: IdRange,
    /// Switch-local VLANs (2..=4094) for OSes that map VNIs through VLANs.
    pub vlan: IdRange,
    /// Route targets are `route_target_asn:VNI`, the same on every switch
    /// (eBGP gives each leaf its own ASN, so per-leaf auto RTs would differ).
    pub route_target_asn: u16,
    pub provisioning: Provisioning,
    /// Public blocks for NAT gateway and floating IP addresses.
    #[serde(default)]
    pub public: Vec<Ipv4Net>,
}

/// The provider's provisioning network: where ports of nodes without a
/// tenant attachment wait (quarantine), reaching only the boot service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Provisioning {
    /// A provider VNI outside both tenant VNI pools.
    pub vni: u32,
    /// Its VLAN where an OS needs one, outside the `vlan` pool.
    pub vlan: u16,
    /// Nodes that serve the provisioning network (boot/DHCP servers): their
    /// ports are not isolated, every other provisioning port is.
    #[serde(default)]
    pub servers: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SwitchRole {
    /// Top of rack: nodes attach here; a VTEP.
    Leaf,
    /// Underlay transit and EVPN route exchange only; never tenant config.
    Spine,
    /// A leaf that also carries north-south (NAT gateways, floating IPs).
    Border,
}

impl SwitchRole {
    /// Whether the switch terminates VXLAN.
    pub fn is_vtep(self) -> bool {
        match self {
            SwitchRole::Leaf | SwitchRole::Border => true,
            SwitchRole::Spine => false,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SwitchOs {
    /// FRR on Linux (the lab; whitebox switches).
    Frr,
    /// SONiC: CONFIG_DB plus FRR in split mode.
    Sonic,
    CumulusNvue,
    AristaEos,
}

impl SwitchOs {
    /// Whether an L2 VNI is mapped through a switch-local VLAN. FRR/Linux
    /// uses one bridge per VNI (the lab kernel has no VLAN devices).
    pub fn vlan_per_segment(self) -> bool {
        match self {
            SwitchOs::Frr => false,
            SwitchOs::Sonic | SwitchOs::CumulusNvue | SwitchOs::AristaEos => true,
        }
    }

    /// Whether a VRF needs a switch-local id: SONiC maps the L3 VNI through a
    /// VLAN; EOS uses it as the route-distinguisher index. NVUE allocates its
    /// own L3 VLAN; FRR/Linux needs none.
    pub fn local_id_per_vrf(self) -> bool {
        match self {
            SwitchOs::Sonic | SwitchOs::AristaEos => true,
            SwitchOs::Frr | SwitchOs::CumulusNvue => false,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SwitchOs::Frr => "frr",
            SwitchOs::Sonic => "sonic",
            SwitchOs::CumulusNvue => "cumulus-nvue",
            SwitchOs::AristaEos => "arista-eos",
        }
    }
}

/// One switch of the fabric.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Switch {
    pub name: String,
    pub role: SwitchRole,
    pub os: SwitchOs,
    pub mgmt_address: IpAddr,
    /// eBGP: every switch its own ASN (spines may share one).
    pub asn: u32,
    /// Router id, BGP-advertised /32 and (on leaves) the VTEP source.
    pub loopback: Ipv4Addr,
    /// Ports cabled to other switches: unnumbered eBGP sessions.
    #[serde(default)]
    pub fabric_ports: Vec<FabricPort>,
    /// A border's external link (north-south traffic); borders only. Only
    /// a border with an uplink carries NAT gateways and floating IPs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uplink: Option<Uplink>,
}

impl Switch {
    /// Whether the switch carries north-south service (the VRF of every
    /// VPC with a NAT gateway or floating IP): a border with an uplink. A
    /// border without one is planned as a leaf.
    pub fn carries_north_south(&self) -> bool {
        match self.role {
            SwitchRole::Border => self.uplink.is_some(),
            SwitchRole::Leaf | SwitchRole::Spine => false,
        }
    }
}

/// A border's port to the upstream (public) router. The upstream routes
/// `fabric.pools.public` to `address`; the border sends everything its
/// north-south VPCs egress to `gateway`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Uplink {
    pub port: String,
    /// The border's address on the external link, with the link's prefix
    /// length (`198.51.100.2/30`).
    pub address: Ipv4Net,
    /// The upstream router, on the link.
    pub gateway: Ipv4Addr,
}

/// A switch port cabled to another switch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FabricPort {
    pub port: String,
    /// The switch at the other end.
    pub peer: String,
}

/// A node NIC cabled to a leaf port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Link {
    pub node: String,
    pub nic: String,
    pub switch: String,
    pub port: String,
}
