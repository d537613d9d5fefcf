//! The tenants' side of the model: what they asked for.
//!
//! Objects refer to each other by stable `id` (never by name), so a rename
//! changes nothing on a switch, and the ledger (`Allocations`) keys on ids.
//!
//! Isolation rules, structural first:
//! - A VPC is a routing domain (one VRF + L3 VNI on every switch that needs
//!   it). Networks of different VPCs never reach each other: there is no
//!   route between VRFs, whatever the rules say, so their CIDRs may overlap.
//! - Inside a VPC every network routes to every other by default. Once any
//!   `SecurityRule` names a network as its `to`, traffic into that network
//!   from the VPC's other networks is limited to what its rules allow (an
//!   allow-list per destination). Traffic inside one network is bridged and
//!   never filtered by the fabric. North-south traffic is governed by the
//!   NAT gateway (egress) and floating IPs (their allowed ports).

use crate::net::{Ipv4Net, PortAllow, PortRange, Protocol};
use serde::{Deserialize, Serialize};
use std::net::Ipv4Addr;

/// Everything the tenants asked for, across the fabric.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Intent {
    pub vpcs: Vec<Vpc>,
    pub networks: Vec<Network>,
    pub attachments: Vec<Attachment>,
    pub security_rules: Vec<SecurityRule>,
    pub nat_gateways: Vec<NatGateway>,
    pub floating_ips: Vec<FloatingIp>,
}

/// A tenant routing domain: a VRF with an L3 VNI and route targets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Vpc {
    pub id: String,
    pub tenant: String,
    pub name: String,
    /// The spec generation. Carried so a controller can tell which
    /// generation a plan reflects; it never reaches a switch (a bump with no
    /// other change plans the same config).
    #[serde(default)]
    pub generation: u64,
}

/// An L2 segment of a VPC: an L2 VNI, a subnet and its anycast gateway.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Network {
    pub id: String,
    /// The `Vpc.id` it belongs to.
    pub vpc: String,
    pub name: String,
    /// Host bits zero, /30 or larger (a gateway and at least one host).
    pub cidr: Ipv4Net,
    /// The anycast gateway; the first host of `cidr` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<Ipv4Addr>,
}

impl Network {
    /// The gateway address: the given one or the first host.
    pub fn gateway_ip(&self) -> Ipv4Addr {
        self.gateway.unwrap_or_else(|| Ipv4Addr::from(self.cidr.host_range().0))
    }
}

/// A node NIC in a network: its switch port becomes an untagged access port
/// of the network (one network per NIC).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Attachment {
    pub id: String,
    /// The `Network.id`.
    pub network: String,
    pub node: String,
    pub nic: String,
    /// The host address; IPAM assigns the first free host when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<Ipv4Addr>,
}

/// Allows traffic from one network of a VPC into another (see the module
/// doc for what an allow-list per destination means).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecurityRule {
    pub id: String,
    /// Source `Network.id`.
    pub from: String,
    /// Destination `Network.id`, in the same VPC.
    pub to: String,
    pub protocol: Protocol,
    /// Only for TCP and UDP; absent means every port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ports: Option<PortRange>,
}

/// Egress for a whole VPC through one public address (source NAT on the
/// border switches).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NatGateway {
    /// The `Vpc.id`; at most one gateway per VPC.
    pub vpc: String,
    /// From `pools.public`; allocated when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_ip: Option<Ipv4Addr>,
}

/// A public address mapped one-to-one to an attachment's address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FloatingIp {
    pub id: String,
    /// The `Attachment.id`; at most one floating IP per attachment.
    pub attachment: String,
    /// From `pools.public`.
    pub public_ip: Ipv4Addr,
    /// What may come in; empty lets nothing in (egress still uses the
    /// floating address).
    #[serde(default)]
    pub allow: Vec<PortAllow>,
}
