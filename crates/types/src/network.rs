//! Tenant networking (VPCs, networks, attachments, security rules, floating
//! IPs) and the provider's fabrics (switches, cabling, their apply status).
//!
//! Addresses are strings in the API (`10.0.0.0/24`, `192.0.2.7`) and parsed
//! by the handlers, which answer 422 naming the field.

use neocloud_common::tls::TlsOptions;
use neocloud_common::Name;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A tenant routing domain: a VRF with its own L3 VNI on every leaf that
/// carries one of its networks. VPCs never reach each other, so their
/// address spaces may overlap.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct VpcCreate {
    pub name: Name,
    /// The fabric (name or id); may be left out when the provider runs one
    /// Ethernet fabric.
    #[serde(default)]
    pub fabric: Option<String>,
    /// Egress for the whole VPC through one public address (source NAT on
    /// the border switches).
    #[serde(default)]
    pub nat_gateway: bool,
    #[serde(default)]
    pub description: String,
}

/// Changes a VPC. `generation` is the one the caller read.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct VpcUpdate {
    pub generation: i64,
    #[serde(default)]
    pub nat_gateway: Option<bool>,
    #[serde(default)]
    pub description: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Vpc {
    pub id: String,
    pub name: String,
    pub tenant_id: String,
    pub project_id: String,
    pub fabric_id: String,
    pub nat_gateway: bool,
    /// The NAT gateway's public address, once allocated.
    pub nat_public_ip: Option<String>,
    pub description: String,
    pub generation: i64,
    pub created_at: String,
    pub updated_at: String,
}

/// An L2 segment of a VPC with its subnet and anycast gateway.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NetworkCreate {
    pub name: Name,
    /// IPv4 CIDR, host bits zero, /30 or larger.
    pub cidr: String,
    /// The gateway address; the first host of `cidr` when left out.
    #[serde(default)]
    pub gateway: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Network {
    pub id: String,
    pub name: String,
    pub vpc_id: String,
    pub cidr: String,
    pub gateway: String,
    pub generation: i64,
    pub created_at: String,
    pub updated_at: String,
}

/// Puts an instance's NIC into a network: its switch port becomes an access
/// port of the network, and IPAM gives it an address.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AttachmentCreate {
    /// The instance (name or id), in the VPC's project.
    pub instance: String,
    /// The node NIC; the first cabled one when left out.
    #[serde(default)]
    pub nic: Option<String>,
    /// A fixed address in the network; the first free one when left out.
    #[serde(default)]
    pub ip: Option<String>,
}

/// Whether an attachment is in effect on the switches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AttachmentState {
    /// Recorded; some switch carrying the port has not applied it yet.
    Configuring,
    /// Every switch carrying the port has applied it.
    Ready,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Attachment {
    pub id: String,
    pub network_id: String,
    pub instance_id: String,
    pub nic: String,
    pub ip: String,
    pub state: AttachmentState,
    pub generation: i64,
    pub created_at: String,
    pub updated_at: String,
}

/// IP protocols a rule or a floating IP may admit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum IpProtocol {
    Tcp,
    Udp,
    Icmp,
    Any,
}

/// An inclusive port range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Ports {
    pub first: u16,
    pub last: u16,
}

/// Allows traffic from one network of a VPC into another. Once a network
/// is the destination of any rule, only what its rules allow comes in from
/// the VPC's other networks.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SecurityRuleCreate {
    /// Source network (name or id) of the VPC.
    pub from: String,
    /// Destination network (name or id) of the VPC.
    pub to: String,
    pub protocol: IpProtocol,
    /// TCP and UDP only; every port when left out.
    #[serde(default)]
    pub ports: Option<Ports>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SecurityRule {
    pub id: String,
    pub vpc_id: String,
    pub from_network_id: String,
    pub to_network_id: String,
    pub protocol: IpProtocol,
    pub ports: Option<Ports>,
    pub generation: i64,
    pub created_at: String,
    pub updated_at: String,
}

/// What a floating IP lets in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Allow {
    pub protocol: IpProtocol,
    #[serde(default)]
    pub ports: Option<Ports>,
}

/// A public address mapped one-to-one to an attachment's address.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FloatingIpCreate {
    /// The attachment (id) the address maps to.
    pub attachment: String,
    /// What may come in; nothing when empty.
    #[serde(default)]
    pub allow: Vec<Allow>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct FloatingIp {
    pub id: String,
    pub vpc_id: String,
    pub attachment_id: String,
    pub public_ip: String,
    pub allow: Vec<Allow>,
    pub generation: i64,
    pub created_at: String,
    pub updated_at: String,
}

/// The provider's description of one fabric: its id pools, its switches and
/// how node NICs are cabled to them. Replaced as a whole (`PUT`), so a
/// cabling plan is reviewed and applied as one document; 422s name the
/// document's field (`switches[2].asn`).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FabricSpec {
    /// The generation being replaced (absent when creating).
    #[serde(default)]
    pub generation: Option<i64>,
    pub kind: FabricKindSpec,
    /// Ethernet: the id pools (required).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pools: Option<PoolsSpec>,
    /// InfiniBand: PKeys, node ports and the subnet manager (required).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub infiniband: Option<InfinibandSpec>,
    /// The anycast gateway MAC of every tenant gateway.
    #[serde(default)]
    pub gateway_mac: Option<String>,
    #[serde(default)]
    pub switches: Vec<SwitchSpec>,
    #[serde(default)]
    pub links: Vec<LinkSpec>,
}

/// An InfiniBand subnet: tenants are isolated by partition keys. Every
/// tenant gets one partition per subnet holding the HCA ports of its
/// nodes as full members; every port is only a limited member of Default.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InfinibandSpec {
    /// The PKeys this control plane may hand out (within 0x0001-0x7ffe).
    pub pkeys: PkeyRangeSpec,
    /// Every node's HCA port GUIDs.
    #[serde(default)]
    pub ports: Vec<IbPortSpec>,
    pub subnet_manager: SubnetManager,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PkeyRangeSpec {
    pub first: u16,
    pub last: u16,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IbPortSpec {
    /// The node (name or id).
    pub node: String,
    /// The port GUID (16 hex digits).
    pub guid: String,
}

/// Who programs the partitions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum SubnetManager {
    /// Planned and shown by `plan`, never pushed.
    None,
    /// The SIMULATED subnet manager built into the server (demo).
    Simulated,
    /// NVIDIA UFM's REST API.
    Ufm {
        url: String,
        username: String,
        /// Write-only: sealed at rest, never returned.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        password: Option<String>,
        /// How UFM's certificate is verified (default: public roots).
        #[serde(default)]
        tls: TlsOptions,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum FabricKindSpec {
    Ethernet,
    Infiniband,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PoolsSpec {
    /// L2 VNIs, one per tenant network.
    pub l2_vni: Ports32,
    /// L3 VNIs, one per VPC; disjoint from `l2_vni`.
    pub l3_vni: Ports32,
    /// Switch-local VLANs, for OSes that map VNIs through VLANs.
    pub vlan: Ports32,
    /// Route targets are `route_target_asn:VNI`.
    pub route_target_asn: u16,
    /// The provisioning network where unattached nodes' ports wait.
    pub provisioning_vni: u32,
    pub provisioning_vlan: u16,
    /// Nodes (names or ids) that serve the provisioning network.
    #[serde(default)]
    pub provisioning_servers: Vec<String>,
    /// Public IPv4 blocks (CIDR) for NAT gateways and floating IPs.
    #[serde(default)]
    pub public: Vec<String>,
}

/// An inclusive range of ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Ports32 {
    pub first: u32,
    pub last: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SwitchRoleSpec {
    Leaf,
    Spine,
    Border,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum SwitchOsSpec {
    Frr,
    Sonic,
    CumulusNvue,
    AristaEos,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SwitchSpec {
    pub name: Name,
    pub role: SwitchRoleSpec,
    pub os: SwitchOsSpec,
    pub mgmt_address: String,
    pub asn: u32,
    /// Router id and (on leaves) the VTEP source.
    pub loopback: String,
    /// Ports cabled to other switches (unnumbered eBGP).
    #[serde(default)]
    pub fabric_ports: Vec<FabricPortSpec>,
    /// A border's external uplink (north-south traffic).
    #[serde(default)]
    pub uplink: Option<UplinkSpec>,
    /// How the control plane reaches the switch to push its config.
    pub management: SwitchManagement,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FabricPortSpec {
    pub port: String,
    pub peer: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UplinkSpec {
    pub port: String,
    /// The border's address on the external link (CIDR).
    pub address: String,
    /// The upstream router.
    pub gateway: String,
}

/// How the control plane reaches a switch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "transport", rename_all = "snake_case", deny_unknown_fields)]
pub enum SwitchManagement {
    /// Planned and shown by `plan`, never pushed.
    None,
    /// The SIMULATED switch built into the server (demo and benchmarks): it
    /// accepts and remembers what it is given.
    Simulated,
    /// FRR/Linux over SSH (the server's key).
    Ssh {
        host: String,
        #[serde(default = "ssh_port")]
        port: u16,
        user: String,
        #[serde(default)]
        identity_file: Option<String>,
        #[serde(default)]
        frr: FrrOptions,
    },
    /// FRR/Linux in local namespaces held by process `pid` (lab setups;
    /// refused unless the server allows local switches).
    Nsenter {
        pid: u32,
        #[serde(default)]
        frr: FrrOptions,
    },
    /// The OS's HTTPS management API (NVUE REST, eAPI, SONiC REST).
    Https {
        url: String,
        username: String,
        /// Write-only: sealed at rest, never returned.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        password: Option<String>,
        /// How the switch's certificate is verified (default: public roots).
        #[serde(default)]
        tls: TlsOptions,
    },
}

fn ssh_port() -> u16 {
    22
}

/// Where FRR keeps its files on an FRR/Linux switch and how it takes up new
/// ones; the defaults are a production switch's (`/etc/frr/frr.conf`,
/// loaded with `frr-reload.py`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FrrOptions {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_dir: Option<String>,
    /// `zebra.conf` + `bgpd.conf` instead of one integrated `frr.conf`.
    #[serde(default)]
    pub per_daemon_files: bool,
    /// Run this after writing the files instead of `frr-reload.py`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reload_command: Option<Vec<String>>,
    /// `user:group` given the files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_owner: Option<String>,
    /// Where the driver keeps its record on the switch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_dir: Option<String>,
}

/// A node NIC cabled to a leaf port.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LinkSpec {
    /// The node (name or id).
    pub node: String,
    pub nic: String,
    pub switch: String,
    pub port: String,
}

/// Where a switch stands against the fabric's intent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SwitchSyncState {
    /// Never applied, or behind the intent.
    Pending,
    /// Holds the intent's current configuration.
    InSync,
    /// The device differs from what it was given; being repaired.
    Drift,
    /// The last apply or check failed (see `message`); retried.
    Error,
    /// Management `none`: planned, never pushed.
    Unmanaged,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SwitchStatus {
    pub name: String,
    pub state: SwitchSyncState,
    /// The intent generation the switch last applied.
    pub applied_generation: i64,
    pub message: Option<String>,
    pub checked_at: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Fabric {
    pub id: String,
    pub name: String,
    /// The document as given (passwords left out).
    pub spec: FabricSpec,
    /// Bumped by every change to what the fabric must carry.
    pub intent_generation: i64,
    pub switches: Vec<SwitchStatus>,
    pub generation: i64,
    pub created_at: String,
    pub updated_at: String,
}

/// What applying the fabric's current intent would change, per switch.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct FabricPlan {
    pub intent_generation: i64,
    pub switches: Vec<SwitchPlan>,
    /// InfiniBand: what the subnet manager would be changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subnet_manager: Option<SubnetManagerPlan>,
}

/// An InfiniBand subnet's partitions: the changes (as UFM calls) from what
/// the subnet manager was last given, and the whole partition table as
/// OpenSM's `partitions.conf`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct SubnetManagerPlan {
    pub changes: Vec<String>,
    pub partitions_conf: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct SwitchPlan {
    pub name: String,
    pub os: SwitchOsSpec,
    /// Object-level changes (`+`, `-`, `~`), dependents removed first.
    pub changes: Vec<String>,
    /// The steps in the OS's own terms (commands, files, calls).
    pub steps: Vec<String>,
}
