//! GPU inventory, instance types and allocations.

use neocloud_common::Name;
use neocloud_placement::{Availability, Constraints, Placement};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Registers a node's placement inventory (provider). Bare-metal enrollment
/// fills the same record from the BMC.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NodeCreate {
    pub name: Name,
    pub site: Name,
    pub pod: Name,
    pub su: Name,
    pub rack: Name,
    /// Default: the node's own name (an HGX node is one NVLink domain); the
    /// rack's name for NVL72 trays.
    #[serde(default)]
    pub nvlink_domain: Option<Name>,
    /// GPU model key, e.g. `h100-80gb`.
    pub gpu_model: Name,
    /// GPUs on the node, 1 to 16.
    pub gpus: u8,
    /// Memory per GPU; default from the GPU model where it is known.
    #[serde(default)]
    pub gpu_memory_gb: Option<u32>,
    #[serde(default)]
    pub mig_capable: bool,
    /// The node's fabric NICs. In a rail-optimized fabric NIC `rail` i of
    /// every node of an SU connects to leaf i.
    #[serde(default)]
    pub nics: Vec<Nic>,
    /// Enroll through the node's BMC: the node starts `enrolling` and
    /// becomes available once Redfish inspection confirms its inventory.
    #[serde(default)]
    pub bmc: Option<BmcCredentials>,
}

/// Asks for the node to be inspected again (e.g. after fixing its BMC
/// credentials, or after a hardware change).
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NodeInspect {
    /// New BMC credentials (replace the stored ones).
    #[serde(default)]
    pub bmc: Option<BmcCredentials>,
}

#[derive(Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BmcCredentials {
    /// `https://host[:port]` or `http://host[:port]`.
    pub endpoint: String,
    pub username: String,
    /// Stored sealed; never returned.
    pub password: String,
}

impl std::fmt::Debug for BmcCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BmcCredentials")
            .field("endpoint", &self.endpoint)
            .field("username", &self.username)
            .finish()
    }
}

/// Where a node is in its lifecycle. Only the lifecycle controller changes
/// it; API handlers record intent (enrollment).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum NodeLifecycle {
    /// Registered with BMC credentials; the controller has not reached the BMC yet.
    Enrolling,
    /// Reading the inventory over Redfish.
    Inspecting,
    /// Inventory confirmed: schedulable (subject to `availability`).
    Available,
    /// The controller gave up; `reason` says why, `from` the state it was in.
    Failed { reason: String, from: String },
}

impl NodeLifecycle {
    pub fn name(&self) -> &'static str {
        match self {
            NodeLifecycle::Enrolling => "enrolling",
            NodeLifecycle::Inspecting => "inspecting",
            NodeLifecycle::Available => "available",
            NodeLifecycle::Failed { .. } => "failed",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Nic {
    /// Interface name on the node, e.g. `ibp24s0` or `eth1`.
    pub name: String,
    /// Rail index (0-15): the GPU/NIC index this NIC serves.
    pub rail: u8,
    /// The fabric it attaches to, e.g. `compute-ib` or `storage-eth`.
    pub fabric: String,
    /// The switch and port at the other end of the link.
    pub switch: String,
    pub port: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NodeUpdate {
    pub generation: i64,
    pub availability: Availability,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Node {
    pub id: String,
    pub name: String,
    pub site: String,
    pub pod: String,
    pub su: String,
    pub rack: String,
    pub nvlink_domain: String,
    pub gpu_model: String,
    pub gpus: u8,
    pub gpu_memory_gb: u32,
    pub mig_capable: bool,
    pub nics: Vec<Nic>,
    pub availability: Availability,
    pub lifecycle: NodeLifecycle,
    pub lifecycle_since: String,
    /// The BMC endpoint, where the node was enrolled through one.
    pub bmc_endpoint: Option<String>,
    pub generation: i64,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum InstanceKind {
    /// Whole nodes of a GPU model.
    BareMetal,
    /// `gpus` GPUs inside one NVLink domain, with vCPUs and memory.
    Vm,
    /// One MIG slice of `mig_profile`.
    Mig,
}

impl InstanceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            InstanceKind::BareMetal => "bare_metal",
            InstanceKind::Vm => "vm",
            InstanceKind::Mig => "mig",
        }
    }

    pub fn parse(s: &str) -> Option<InstanceKind> {
        [InstanceKind::BareMetal, InstanceKind::Vm, InstanceKind::Mig]
            .into_iter()
            .find(|k| k.as_str() == s)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InstanceTypeCreate {
    pub name: Name,
    pub kind: InstanceKind,
    pub gpu_model: Name,
    /// VM shapes: GPUs per instance. Ignored for bare metal (the node's
    /// count) and MIG.
    #[serde(default)]
    pub gpus: Option<u8>,
    /// MIG shapes: the profile, e.g. `1g.10gb`.
    #[serde(default)]
    pub mig_profile: Option<String>,
    #[serde(default)]
    pub vcpus: Option<u32>,
    #[serde(default)]
    pub memory_gib: Option<u32>,
    #[serde(default)]
    pub description: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InstanceTypeUpdate {
    pub generation: i64,
    #[serde(default)]
    pub description: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct InstanceType {
    pub id: String,
    pub name: String,
    pub kind: InstanceKind,
    pub gpu_model: String,
    pub gpus: u8,
    pub mig_profile: Option<String>,
    pub vcpus: u32,
    pub memory_gib: u32,
    pub description: String,
    pub generation: i64,
    pub created_at: String,
    pub updated_at: String,
}

/// Asks for `count` instances of a type, placed together under the
/// constraints (a bare-metal count > 1 is a gang: all or nothing).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AllocationCreate {
    /// Instance type, by name or id.
    pub instance_type: String,
    #[serde(default = "one")]
    pub count: u32,
    #[serde(default)]
    pub constraints: Constraints,
    /// Allocate out of this reservation (its id) of the same instance type
    /// in the same project, instead of from free capacity.
    #[serde(default)]
    pub reservation: Option<String>,
}

/// Holds capacity now, to allocate against later.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReservationCreate {
    /// Instance type, by name or id.
    pub instance_type: String,
    #[serde(default = "one")]
    pub count: u32,
    #[serde(default)]
    pub constraints: Constraints,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AllocationKind {
    Allocation,
    Reservation,
}

impl AllocationKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AllocationKind::Allocation => "allocation",
            AllocationKind::Reservation => "reservation",
        }
    }
}

fn one() -> u32 {
    1
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AllocationState {
    Active,
    /// Released, or (a reservation) entirely allocated from.
    Released,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Allocation {
    pub id: String,
    pub tenant_id: String,
    pub project_id: String,
    pub instance_type_id: String,
    pub kind: AllocationKind,
    /// The reservation it was allocated from.
    pub reservation_id: Option<String>,
    /// Instances held (a reservation's count drops as it is allocated from).
    pub count: u32,
    pub constraints: Constraints,
    pub placement: Placement,
    /// The quota claim committed with the allocation.
    pub claim_id: String,
    pub state: AllocationState,
    pub generation: i64,
    pub created_at: String,
    pub updated_at: String,
}
