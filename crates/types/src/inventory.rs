//! GPU inventory, instance types and allocations.

use crate::BootNetwork;
use neocloud_common::Name;
use neocloud_placement::{Availability, Constraints, Placement};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

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
    /// How the BMC boots the node for provisioning and sanitization
    /// (default `pxe`; `virtual_media` and `uefi_http` need a `bmc`).
    #[serde(default)]
    pub boot_method: Option<BootMethod>,
    /// A static address on the provisioning network, for networks without
    /// DHCP (`virtual_media` boots only): the node's ISO is its own and
    /// sets it.
    #[serde(default)]
    pub boot_network: Option<BootNetwork>,
    /// The name (hex, `000b` + SHA-256) of the node's TPM endorsement key
    /// (the EK Credential Profile's ECC P-256 key), from the provider's
    /// records (`neocloud-agent --inventory` prints it): every agent
    /// proves it, the first sanitizer's included. Absent: the first
    /// sanitizer that proves one records it.
    #[serde(default)]
    pub tpm_identity: Option<String>,
}

/// How the BMC boots a node into an image (the tenant's or the sanitizer).
/// Either way the node ends up in the boot service's iPXE script for its
/// MAC.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum BootMethod {
    /// A one-time network boot (`Pxe`): the node's firmware PXE-boots from
    /// the provisioning network, which chains to the boot service.
    #[default]
    Pxe,
    /// The server's iPXE ISO (`virtual_media_iso_url`) inserted in the
    /// BMC's virtual CD and a one-time boot from it (`Cd`): for nodes whose
    /// firmware cannot PXE-boot from the provisioning network. The ISO's
    /// embedded script gets an address by DHCP and chains to the boot
    /// service by MAC.
    VirtualMedia,
    /// UEFI HTTP boot (`UefiHttp` with `HttpBootUri`): the node's firmware
    /// fetches the server's iPXE EFI binary (`uefi_http_boot_url`) over
    /// HTTP and runs it; its embedded script chains to the boot service by
    /// MAC. No PXE ROM or TFTP needed; the firmware still gets its address
    /// by DHCP.
    UefiHttp,
}

impl BootMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            BootMethod::Pxe => "pxe",
            BootMethod::VirtualMedia => "virtual_media",
            BootMethod::UefiHttp => "uefi_http",
        }
    }

    pub fn parse(s: &str) -> Option<BootMethod> {
        match s {
            "pxe" => Some(BootMethod::Pxe),
            "virtual_media" => Some(BootMethod::VirtualMedia),
            "uefi_http" => Some(BootMethod::UefiHttp),
            _ => None,
        }
    }
}

/// Asks for the node to be inspected again (e.g. after fixing its BMC
/// credentials, or after a hardware change).
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NodeInspect {
    /// New BMC credentials (replace the stored ones).
    #[serde(default)]
    pub bmc: Option<BmcCredentials>,
    /// Forget the TPM identity on record (the node's TPM or mainboard was
    /// replaced): the next sanitizer records the new one, and until then
    /// the node's agents are known by their one-time tokens alone.
    #[serde(default)]
    pub forget_tpm_identity: bool,
    /// Forget the node's UEFI variable and network adapter baselines (its
    /// firmware's variables or its adapters were changed on purpose, an
    /// adapter removed): the node goes through a sanitization before it
    /// rejoins the pool, which records them anew.
    #[serde(default)]
    pub forget_baselines: bool,
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
/// it; API handlers record intent (enrollment, an instance, a release,
/// maintenance).
///
/// enrolling -> inspecting -> available -> provisioning -> active ->
/// releasing -> sanitizing -> available; maintenance; failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum NodeLifecycle {
    /// Registered with BMC credentials; the controller has not reached the BMC yet.
    Enrolling,
    /// Reading the inventory over Redfish.
    Inspecting,
    /// Inventory confirmed, clean: schedulable (subject to `availability`).
    Available,
    /// Being provisioned with a tenant's instance. `attempt` counts network
    /// boots (1-based): when no agent registers in time the node is set to
    /// boot from the network and power-cycled again, up to a limit.
    Provisioning {
        tenant_id: String,
        instance_id: String,
        step: BootStep,
        #[serde(default = "first_attempt")]
        attempt: u32,
    },
    /// Handed over: runs the tenant's instance.
    Active { tenant_id: String, instance_id: String },
    /// Released by its tenant: booting the provider's sanitizer image
    /// (`attempt` as for provisioning). Without a tenant and an instance:
    /// the node's first sanitization, before it joins the pool (whatever a
    /// previous owner left on it goes too).
    Releasing {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tenant_id: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        instance_id: Option<String>,
        step: BootStep,
        #[serde(default = "first_attempt")]
        attempt: u32,
    },
    /// Being wiped and checked; Available only with a complete, signed record.
    /// `attempt` is the sanitizer boot it runs on (as for releasing): a
    /// sanitizer that falls silent before its steps are done is booted
    /// again, with a fresh token, up to the boot limit.
    /// Without a tenant and an instance: the first sanitization, as above.
    Sanitizing {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tenant_id: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        instance_id: Option<String>,
        step: SanitizeStep,
        #[serde(default = "first_attempt")]
        attempt: u32,
    },
    /// Taken out of service by the provider (`availability: maintenance`).
    Maintenance,
    /// The controller gave up; `reason` says why, `from` the state it was in.
    Failed { reason: String, from: String },
}

fn first_attempt() -> u32 {
    1
}

/// The steps of booting a node into an image over the network (to
/// provision it, or to run the sanitizer).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum BootStep {
    /// Set the BMC's one-time boot override to the network.
    SetBoot,
    /// Power the node on, or reset it.
    PowerCycle,
    /// Wait for the image's agent to register with the one-time token.
    AwaitAgent,
}

impl BootStep {
    pub fn name(self) -> &'static str {
        match self {
            BootStep::SetBoot => "set_boot",
            BootStep::PowerCycle => "power_cycle",
            BootStep::AwaitAgent => "await_agent",
        }
    }
    /// The step after this one (the last step stays the last).
    pub fn next(self) -> BootStep {
        match self {
            BootStep::SetBoot => BootStep::PowerCycle,
            BootStep::PowerCycle | BootStep::AwaitAgent => BootStep::AwaitAgent,
        }
    }

    /// 1-based position among the steps.
    pub fn ordinal(self) -> u32 {
        match self {
            BootStep::SetBoot => 1,
            BootStep::PowerCycle => 2,
            BootStep::AwaitAgent => 3,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SanitizeStep {
    /// The sanitizer agent wipes disks, resets GPUs, reports firmware.
    AgentSteps,
    /// Over the BMC: boot override cleared, firmware read and checked
    /// against the baseline, power off; then the signed record.
    Finish,
}

impl SanitizeStep {
    pub fn name(self) -> &'static str {
        match self {
            SanitizeStep::AgentSteps => "agent_steps",
            SanitizeStep::Finish => "finish",
        }
    }
}

impl NodeLifecycle {
    pub fn name(&self) -> &'static str {
        match self {
            NodeLifecycle::Enrolling => "enrolling",
            NodeLifecycle::Inspecting => "inspecting",
            NodeLifecycle::Available => "available",
            NodeLifecycle::Provisioning { .. } => "provisioning",
            NodeLifecycle::Active { .. } => "active",
            NodeLifecycle::Releasing { .. } => "releasing",
            NodeLifecycle::Sanitizing { .. } => "sanitizing",
            NodeLifecycle::Maintenance => "maintenance",
            NodeLifecycle::Failed { .. } => "failed",
        }
    }

    /// Every state name, for metrics.
    pub const NAMES: [&'static str; 9] = [
        "enrolling",
        "inspecting",
        "available",
        "provisioning",
        "active",
        "releasing",
        "sanitizing",
        "maintenance",
        "failed",
    ];

    /// The tenant holding the node, in the states that have one.
    pub fn tenant(&self) -> Option<&str> {
        match self {
            NodeLifecycle::Provisioning { tenant_id, .. }
            | NodeLifecycle::Active { tenant_id, .. } => Some(tenant_id),
            NodeLifecycle::Releasing { tenant_id, .. }
            | NodeLifecycle::Sanitizing { tenant_id, .. } => tenant_id.as_deref(),
            NodeLifecycle::Enrolling
            | NodeLifecycle::Inspecting
            | NodeLifecycle::Available
            | NodeLifecycle::Maintenance
            | NodeLifecycle::Failed { .. } => None,
        }
    }

    /// The step within the state, for progress and metrics.
    pub fn step(&self) -> Option<&'static str> {
        match self {
            NodeLifecycle::Provisioning { step, .. } | NodeLifecycle::Releasing { step, .. } => {
                Some(step.name())
            }
            NodeLifecycle::Sanitizing { step, .. } => Some(step.name()),
            NodeLifecycle::Enrolling
            | NodeLifecycle::Inspecting
            | NodeLifecycle::Available
            | NodeLifecycle::Active { .. }
            | NodeLifecycle::Maintenance
            | NodeLifecycle::Failed { .. } => None,
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
    /// The NIC's MAC address, where the provider knows it (inspection adds
    /// the MACs the BMC reports); the boot service finds nodes by MAC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NodeUpdate {
    pub generation: i64,
    pub availability: Availability,
    /// A new boot method (unchanged when absent); used from the node's next
    /// boot on.
    #[serde(default)]
    pub boot_method: Option<BootMethod>,
    /// A new static provisioning address (unchanged when absent, removed
    /// by `null`); used from the node's next boot on.
    #[serde(
        default,
        deserialize_with = "crate::some_or_null",
        skip_serializing_if = "Option::is_none"
    )]
    pub boot_network: Option<Option<BootNetwork>>,
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
    /// MAC addresses the BMC reported at inspection.
    #[serde(default)]
    pub macs: Vec<String>,
    /// How the BMC boots it into an image.
    #[serde(default)]
    pub boot_method: BootMethod,
    /// Its static provisioning address, where its network has no DHCP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boot_network: Option<BootNetwork>,
    /// Its hardware health as its BMC last said it (the host's rollup:
    /// `OK`, `Warning`, `Critical`), read by inspections, sanitizations
    /// and the health watch; absent until read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hardware_health: Option<String>,
    /// The parts its BMC reports other than healthy (`GPU_SXM_3
    /// Critical`), as last read; empty when none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hardware_faults: Vec<String>,
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

/// What the node's BMC reported at its last inspection.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct BmcInventory {
    pub inspected_at: String,
    /// When `firmware` was read, where later than the inspection (the end
    /// of the node's last sanitization reads it again).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub firmware_read_at: Option<String>,
    pub system_id: String,
    pub uuid: String,
    pub manufacturer: String,
    pub model: String,
    pub serial: String,
    pub cpus: Vec<InventoryCpu>,
    pub memory_mib: u64,
    pub nics: Vec<InventoryNic>,
    pub gpus: Vec<InventoryGpu>,
    pub firmware: Vec<InventoryFirmware>,
    /// UEFI Secure Boot; absent when the BMC does not report it.
    #[serde(default)]
    pub secure_boot: Option<InventorySecureBoot>,
    /// The BMC's local accounts (user name, role, enabled); absent when the
    /// BMC has no account service.
    #[serde(default)]
    pub bmc_accounts: Option<Vec<InventoryBmcAccount>>,
    /// BIOS attributes in effect, by name; absent when the BMC does not
    /// report them.
    #[serde(default)]
    pub bios: Option<BTreeMap<String, serde_json::Value>>,
    /// The persistent UEFI boot order (option references); absent when the
    /// BMC does not report it.
    #[serde(default)]
    pub boot_order: Option<Vec<String>>,
    /// The UEFI boot options; absent when the BMC does not list them.
    #[serde(default)]
    pub boot_options: Option<Vec<InventoryBootOption>>,
    /// The BMC's host interfaces (the host's channel to the BMC's Redfish
    /// service), as left by the inspection; absent when the BMC has none.
    #[serde(default)]
    pub host_interfaces: Option<Vec<InventoryHostInterface>>,
    /// What the BMC said of the node's health at the inspection (absent in
    /// inventories read before it was recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<InventoryHealth>,
    /// The TPMs the BMC reports enabled (`TrustedModules`), by interface
    /// type (`TPM2_0`): every sanitization's `clear_tpm` must have seen
    /// them. Empty when the BMC reports none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tpms: Vec<String>,
}

/// The BMC's word on a node's health: a `Critical` node does not join the
/// pool, nor return to it after a tenant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct InventoryHealth {
    /// The host system's health rollup (`OK`, `Warning`, `Critical`);
    /// absent where the BMC does not say.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollup: Option<String>,
    /// The systems and processors (CPUs, GPUs, GPU baseboards) the BMC
    /// reports `Warning` or `Critical`.
    #[serde(default)]
    pub faults: Vec<InventoryHealthFault>,
    /// For a node the BMC reports unhealthy: the newest warnings and
    /// errors of its logs (the SEL, event logs), newest first, at most 5.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<InventoryHealthEvent>,
    /// Why the chassis' parts or the logs of an unhealthy node could not
    /// all be read (diagnosis only: no step fails for it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unread: Option<String>,
}

/// An entry of one of the BMC's logs of severity `Warning` or `Critical`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct InventoryHealthEvent {
    /// The log entry's resource.
    pub path: String,
    /// When the BMC logged it, as it writes it (empty where it does not).
    pub created: String,
    pub severity: String,
    /// The entry's message, at most 240 characters.
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct InventoryHealthFault {
    pub path: String,
    pub name: String,
    pub health: String,
}

/// A host interface of the node's BMC (DSP0270).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct InventoryHostInterface {
    pub id: String,
    /// `HostInterfaceType` (`NetworkHostInterface`), when reported.
    #[serde(default)]
    pub interface_type: Option<String>,
    /// `InterfaceEnabled`.
    pub enabled: bool,
    /// `CredentialBootstrapping.Enabled` (the host can obtain BMC
    /// credentials over it), when the BMC implements it.
    #[serde(default)]
    pub credential_bootstrapping: Option<bool>,
}

/// A UEFI boot option as the node's BMC reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct InventoryBootOption {
    /// `Boot0001` and the like: what the boot order lists.
    pub reference: String,
    pub display_name: String,
    /// What the option boots (`UefiDevicePath`), when reported.
    #[serde(default)]
    pub device_path: Option<String>,
    pub enabled: bool,
}

/// UEFI Secure Boot as the node's BMC reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct InventorySecureBoot {
    /// On from the next boot.
    pub enable: bool,
    /// `SetupMode`, `UserMode`, `AuditMode` or `DeployedMode`, when reported.
    pub mode: Option<String>,
}

/// A local account on the node's BMC.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct InventoryBmcAccount {
    pub user_name: String,
    pub role_id: String,
    pub enabled: bool,
}

/// The platform settings recorded at the node's first clean inspection,
/// restored by every sanitization: Secure Boot, the enabled BMC accounts,
/// the BIOS attributes, the boot order and the enabled boot options.
/// `None`: the BMC did not report it then (or the baseline predates it).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PlatformBaseline {
    pub secure_boot: Option<InventorySecureBoot>,
    /// Enabled accounts only.
    pub bmc_accounts: Option<Vec<InventoryBmcAccount>>,
    #[serde(default)]
    pub bios: Option<BTreeMap<String, serde_json::Value>>,
    #[serde(default)]
    pub boot_order: Option<Vec<String>>,
    /// Enabled options only.
    #[serde(default)]
    pub boot_options: Option<Vec<InventoryBootOption>>,
    /// Where the BMC keeps the BIOS resource (read directly when a release
    /// stages the baseline back, instead of through the system).
    #[serde(default)]
    pub bios_path: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct InventoryCpu {
    pub id: String,
    pub model: String,
    pub cores: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct InventoryNic {
    pub id: String,
    pub mac: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct InventoryGpu {
    pub id: String,
    pub model: String,
    pub serial: String,
    pub uuid: String,
    pub memory_mib: u64,
    pub mig_enabled: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct InventoryFirmware {
    pub id: String,
    pub name: String,
    pub version: String,
}

/// The node's most recent agent and what it reported.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct AgentReport {
    pub agent_id: String,
    /// `tenant` (the instance's OS) or `sanitizer`.
    pub purpose: crate::ImagePurpose,
    pub registered_at: String,
    pub last_seen_at: String,
    /// `ok`, or `degraded: ` and what is wrong.
    pub health: String,
    pub revoked: bool,
    pub inventory: crate::AgentInventory,
    /// Each GPU's readings and problems at the last recorded heartbeat.
    #[serde(default)]
    pub gpu_status: Vec<crate::GpuStatus>,
    /// The name (hex) of the TPM endorsement key the agent proved its
    /// machine holds; absent until it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tpm_identity: Option<String>,
}

/// What is known of a node's hardware: from its BMC and from its agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct NodeHardware {
    pub bmc: Option<BmcInventory>,
    pub agent: Option<AgentReport>,
    /// The name (hex) of the node's TPM endorsement key, on record since
    /// the first sanitizer proved its machine holds it; every later agent
    /// proves the same. Absent: none on record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tpm_identity: Option<String>,
    /// Who recorded it. Absent: none on record, or recorded before this
    /// was kept (2026-12-07).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tpm_identity_recorded_by: Option<crate::TpmIdentitySource>,
    /// The TPM maker's CA (its name) that certified that endorsement key
    /// when a sanitizer recorded it (`tpm_ek_ca_pem`). Absent: recorded
    /// without a certificate, or none on record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tpm_identity_certified_by: Option<String>,
    /// The firmware updates of the sanitization under way (to the
    /// provider's baseline images), with their progress; empty otherwise.
    #[serde(default)]
    pub firmware_updates: Vec<crate::FirmwareUpdate>,
}
