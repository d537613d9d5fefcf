//! Bare metal as a service: the image catalog, tenant instances, the
//! node agent's protocol and sanitization records.

use neocloud_common::Name;
use neocloud_placement::Constraints;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// What an image is booted for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ImagePurpose {
    /// An operating system tenants provision instances with.
    Tenant,
    /// The provider's sanitizer (a ramdisk running `neocloud-agent`),
    /// booted between tenants to wipe and check a node.
    Sanitizer,
}

impl ImagePurpose {
    pub fn as_str(self) -> &'static str {
        match self {
            ImagePurpose::Tenant => "tenant",
            ImagePurpose::Sanitizer => "sanitizer",
        }
    }
    pub fn parse(s: &str) -> Option<ImagePurpose> {
        match s {
            "tenant" => Some(ImagePurpose::Tenant),
            "sanitizer" => Some(ImagePurpose::Sanitizer),
            _ => None,
        }
    }
}

/// Who recorded a node's TPM identity (its endorsement key's name).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TpmIdentitySource {
    /// The provider, at enrollment (`tpm_identity`: say from burn-in).
    Provider,
    /// The first sanitizer that proved its machine held it (trusted on
    /// first use).
    FirstSanitizer,
    /// A sanitizer that proved it, with the EK certificate of a TPM maker
    /// the provider trusts (`tpm_ek_ca_pem`).
    Certificate,
}

impl TpmIdentitySource {
    pub fn as_str(self) -> &'static str {
        match self {
            TpmIdentitySource::Provider => "provider",
            TpmIdentitySource::FirstSanitizer => "first_sanitizer",
            TpmIdentitySource::Certificate => "certificate",
        }
    }
    pub fn parse(s: &str) -> Option<TpmIdentitySource> {
        match s {
            "provider" => Some(TpmIdentitySource::Provider),
            "first_sanitizer" => Some(TpmIdentitySource::FirstSanitizer),
            "certificate" => Some(TpmIdentitySource::Certificate),
            _ => None,
        }
    }
}

/// Adds an image to the provider's catalog. The boot service hands its
/// kernel and initrd to iPXE; the kernel command line gets the metadata
/// source and the one-time token appended.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ImageCreate {
    pub name: Name,
    #[serde(default = "tenant_purpose")]
    pub purpose: ImagePurpose,
    /// `http(s)://` URL of the kernel.
    pub kernel_url: String,
    /// `http(s)://` URL of the initrd.
    pub initrd_url: String,
    /// Root filesystem or disk image the initrd installs, if any.
    #[serde(default)]
    pub root_url: Option<String>,
    /// SHA-256 of the root image (64 hex digits), checked by the installer.
    #[serde(default)]
    pub root_sha256: Option<String>,
    /// Extra kernel command line.
    #[serde(default)]
    pub cmdline: String,
    #[serde(default)]
    pub description: String,
}

fn tenant_purpose() -> ImagePurpose {
    ImagePurpose::Tenant
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Image {
    pub id: String,
    pub name: String,
    pub purpose: ImagePurpose,
    pub kernel_url: String,
    pub initrd_url: String,
    pub root_url: Option<String>,
    pub root_sha256: Option<String>,
    pub cmdline: String,
    pub description: String,
    pub generation: i64,
    pub created_at: String,
    pub updated_at: String,
}

/// Creates bare-metal instances: `count` whole nodes of a bare-metal
/// instance type, placed together (all or nothing), each provisioned with
/// `image` and handed to the tenant. Named `name` (one) or `name-0`,
/// `name-1`, ... (several).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InstanceCreate {
    pub name: Name,
    /// A bare-metal instance type, by name or id.
    pub instance_type: String,
    #[serde(default = "one")]
    pub count: u32,
    #[serde(default)]
    pub constraints: Constraints,
    /// A tenant image of the catalog, by name or id.
    pub image: String,
    /// OpenSSH public keys installed for the default user.
    #[serde(default)]
    pub ssh_keys: Vec<String>,
    /// cloud-init user-data, served as is (at most 64 KiB).
    #[serde(default)]
    pub user_data: Option<String>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

fn one() -> u32 {
    1
}

/// Where an instance stands. The lifecycle controller moves it with its node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum InstanceState {
    /// Placed on a node; provisioning has not started.
    Pending,
    Provisioning,
    /// The node is the tenant's and its agent has checked in.
    Ready,
    /// Released by the tenant: the node is being sanitized.
    Releasing,
    /// The node was sanitized (see the record) and returned to the pool.
    Released,
    /// Provisioning failed (see `reason`); release it to free the node.
    Failed,
}

impl InstanceState {
    pub fn as_str(self) -> &'static str {
        match self {
            InstanceState::Pending => "pending",
            InstanceState::Provisioning => "provisioning",
            InstanceState::Ready => "ready",
            InstanceState::Releasing => "releasing",
            InstanceState::Released => "released",
            InstanceState::Failed => "failed",
        }
    }
    pub fn parse(s: &str) -> Option<InstanceState> {
        [
            InstanceState::Pending,
            InstanceState::Provisioning,
            InstanceState::Ready,
            InstanceState::Releasing,
            InstanceState::Released,
            InstanceState::Failed,
        ]
        .into_iter()
        .find(|x| x.as_str() == s)
    }
}

/// A power action a tenant asks of its ready instance's node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PowerAction {
    On,
    Off,
    Reboot,
}

impl PowerAction {
    pub fn as_str(self) -> &'static str {
        match self {
            PowerAction::On => "on",
            PowerAction::Off => "off",
            PowerAction::Reboot => "reboot",
        }
    }
}

/// `POST .../instances/{instance}/power`: what to do with the node's power.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InstancePowerRequest {
    pub action: PowerAction,
    /// Off and reboot without asking the OS first (the BMC's `ForceOff`,
    /// `ForceRestart`). By default the OS is asked to shut down or restart
    /// (`GracefulShutdown`, `GracefulRestart`), where the BMC allows it.
    #[serde(default)]
    pub force: bool,
}

/// `POST .../instance-releases`: several instances of the project released
/// in one call (all or none: each named must be the project's).
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InstanceReleaseMany {
    /// Instance names (while not released) or ids, each once: 1 to 1,000.
    pub instances: Vec<String>,
}

/// `POST .../instances/{instance}/rebuild`: the node provisioned again for
/// the same tenant, with `image` (default: the instance's own).
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InstanceRebuild {
    /// A tenant image's name or id.
    #[serde(default)]
    pub image: Option<String>,
    /// New SSH keys for the default user (absent: the instance's own).
    #[serde(default)]
    pub ssh_keys: Option<Vec<String>>,
    /// New cloud-init user-data (absent: the instance's own; empty: none).
    #[serde(default)]
    pub user_data: Option<String>,
}

/// A power action asked and not done yet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct PowerPending {
    pub action: PowerAction,
    pub force: bool,
    pub requested_at: String,
    /// When the control plane sent it to the BMC (recorded before it did).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sent_at: Option<String>,
}

/// The last power action done, and what the BMC made of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct PowerDone {
    pub action: PowerAction,
    pub force: bool,
    /// The Redfish `ResetType` sent (`GracefulRestart`, `ForceOff`, ...).
    pub reset_type: String,
    /// Whether the BMC took it.
    pub ok: bool,
    /// What happened, with the BMC's answer where it refused.
    pub detail: String,
    pub requested_at: String,
    pub done_at: String,
}

/// An instance's power actions: the one asked and not done yet, and the
/// last one done.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct InstancePower {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending: Option<PowerPending>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last: Option<PowerDone>,
}

/// How far the current phase is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Progress {
    /// The step running, e.g. `power_cycle` or `await_agent`.
    pub step: String,
    /// Steps of the phase done so far, out of `total`.
    pub done: u32,
    pub total: u32,
    /// Since when the step has been running.
    pub since: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Instance {
    pub id: String,
    pub name: String,
    pub tenant_id: String,
    pub project_id: String,
    pub instance_type_id: String,
    pub image_id: String,
    /// The allocation that holds its node (and quota).
    pub allocation_id: String,
    /// The node's id (its name and location are the provider's).
    pub node_id: String,
    pub state: InstanceState,
    /// The tenant released it (the controller is acting on it, or did).
    pub release_requested: bool,
    /// Why it failed, why its release is stuck, or why it was placed on
    /// another node.
    pub reason: Option<String>,
    /// The current phase's progress (pending, provisioning, releasing).
    pub progress: Option<Progress>,
    /// What the agent in the tenant's image reports of the node (`ok`, or
    /// `degraded: ` and what is wrong, such as a GPU with memory errors);
    /// absent until it registers and once the instance is released.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<String>,
    /// A rebuild asked and not started yet: the image it provisions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rebuild_image_id: Option<String>,
    /// The node's hardware health as its BMC last reported it (`OK`,
    /// `Warning`, `Critical`: read by the control plane at provisioning's
    /// inspection and while the instance runs); absent until read and once
    /// released. A `Critical` node is best released: its replacement is
    /// another node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hardware_health: Option<String>,
    /// The node's parts its BMC reports other than healthy (`GPU_SXM_3
    /// Critical`), as last read while the tenant holds it; empty when none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hardware_faults: Vec<String>,
    /// Power actions asked of its node (`POST .../power`); absent until the
    /// first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub power: Option<InstancePower>,
    /// Times a node failed before the instance was handed over and the
    /// instance was placed on another node (at most the provider's
    /// `provision_replacements`); absent when none.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub replacements: u32,
    pub ssh_keys: Vec<String>,
    pub generation: i64,
    pub created_at: String,
    pub updated_at: String,
}

/// The method of a failed `clear_tpm` item whose clear the agent asked of
/// the firmware for the next boot (the kernel's PPI): the control plane
/// boots the sanitizer again, within the boot attempts, for the firmware
/// to clear it and a new sanitizer to verify it.
pub const TPM_PPI_REQUESTED: &str = "tpm2-clear-ppi";

/// What a node-local step is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AgentStepKind {
    /// Erase every local disk (NVMe/ATA crypto erase where supported, else
    /// blkdiscard, else overwrite) and verify.
    WipeDisks,
    /// Reset every GPU.
    ResetGpus,
    /// Report firmware versions seen from the host.
    ReportFirmware,
    /// Clear the TPM (`TPM2_Clear`: its hierarchies' authorizations, the
    /// owner's keys and NV indices, the storage seed) and read it back.
    ClearTpm,
    /// Delete the non-volatile UEFI variables created since the node's
    /// first sanitization (its baseline, sent with the step; without one,
    /// record them as the baseline) and read them back.
    ClearUefiVariables,
    /// Set the NVIDIA (Mellanox) network adapters' persistent settings
    /// (their NVRAM configuration, which outlives every reset and takes
    /// effect at the next boot) back to their firmware defaults, but for
    /// those the node's first sanitization found otherwise (its baseline,
    /// sent with the step; without one, record them as the baseline), and
    /// read them back.
    ResetNicSettings,
}

/// The method of a `reset_nic_settings` item for a setting kept off its
/// default (target `PCI-address/PARAMETER`, detail the value): the node's
/// baseline is read from these items of its first complete sanitization
/// record.
pub const NIC_SETTING_KEPT: &str = "nic-kept";

/// The method of a `reset_nic_settings` item about one network adapter
/// (target its PCI address): its settings read, set back where they were
/// off the baseline, and read back.
pub const NIC_SETTINGS_READ: &str = "mstconfig";

/// The method of the one `reset_nic_settings` item of a machine with no
/// NVIDIA (Mellanox) network adapter.
pub const NO_NICS: &str = "none";

/// The method of a `clear_uefi_variables` item for a variable left in
/// place: the node's baseline is read from these items of its first
/// complete sanitization record.
pub const UEFI_VARIABLE_KEPT: &str = "uefi-kept";

/// The method of a `clear_uefi_variables` item about reading the variables
/// themselves: `ok` when none is non-volatile (an empty baseline), failed
/// when they cannot be read.
pub const UEFI_VARIABLES_READ: &str = "read";

impl AgentStepKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AgentStepKind::WipeDisks => "wipe_disks",
            AgentStepKind::ResetGpus => "reset_gpus",
            AgentStepKind::ReportFirmware => "report_firmware",
            AgentStepKind::ClearTpm => "clear_tpm",
            AgentStepKind::ClearUefiVariables => "clear_uefi_variables",
            AgentStepKind::ResetNicSettings => "reset_nic_settings",
        }
    }
    pub fn parse(s: &str) -> Option<AgentStepKind> {
        AgentStepKind::SANITIZE.into_iter().find(|k| k.as_str() == s)
    }
    /// The sanitizer's steps, in order. The UEFI variables before the
    /// TPM: a clear the TPM asks of the firmware (its PPI request) may be
    /// held in a new variable, which must outlive the step.
    pub const SANITIZE: [AgentStepKind; 6] = [
        AgentStepKind::WipeDisks,
        AgentStepKind::ResetGpus,
        AgentStepKind::ReportFirmware,
        AgentStepKind::ResetNicSettings,
        AgentStepKind::ClearUefiVariables,
        AgentStepKind::ClearTpm,
    ];
}

/// A GPU as the agent sees it (NVML).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct AgentGpu {
    pub index: u32,
    pub name: String,
    pub uuid: String,
    pub serial: String,
    pub memory_mib: u64,
    pub pci_bus_id: String,
}

/// A GPU's condition as the agent reads it (NVML) with each heartbeat and
/// after each GPU reset. A reading the GPU or its driver does not offer is
/// absent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct GpuStatus {
    pub index: u32,
    pub uuid: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature_c: Option<u32>,
    /// Board power draw, milliwatts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub power_mw: Option<u32>,
    /// Share of the last sample period a kernel ran, percent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub utilization_pct: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_used_mib: Option<u64>,
    /// Uncorrectable ECC errors since the driver loaded (volatile count).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ecc_uncorrected: Option<u64>,
    /// A memory row remap waits for the next GPU reset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub row_remap_pending: Option<bool>,
    /// A row remap failed: the GPU's memory cannot be repaired in place.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub row_remap_failed: Option<bool>,
    /// The critical Xid errors (hardware class) the driver reported for it
    /// since the agent started or its last reset.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub xid_errors: Vec<u64>,
    /// Why its clocks are held down now (NVML's clock event reasons):
    /// `idle`, `applications_clocks`, `sw_power_cap`, `hw_slowdown`,
    /// `sync_boost`, `sw_thermal`, `hw_thermal`, `hw_power_brake`,
    /// `display_clocks`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub throttle_reasons: Vec<String>,
    /// NVLink links up, on a GPU that has them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nvlink_active: Option<u32>,
    /// Its NVLink links that are down, by number.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nvlink_down: Vec<u32>,
    /// NVLink errors since the driver loaded, summed over its links:
    /// replays, recoveries, CRC errors (flit and data). Reported, not
    /// judged (their rates, not their counts, tell a failing link).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nvlink_errors: Option<NvLinkErrors>,
    /// What is wrong with it, a line each; empty when it is healthy.
    #[serde(default)]
    pub problems: Vec<String>,
}

/// NVLink error counts of a GPU, summed over its links.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct NvLinkErrors {
    pub replay: u64,
    pub recovery: u64,
    pub crc: u64,
}

/// A disk as the agent sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct AgentDisk {
    pub path: String,
    pub bytes: u64,
    pub model: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct AgentInventory {
    pub hostname: String,
    /// NVIDIA driver version; empty when NVML is not present.
    pub driver_version: String,
    pub gpus: Vec<AgentGpu>,
    pub disks: Vec<AgentDisk>,
    pub macs: Vec<String>,
}

/// The agent's first call, with the one-time token the boot service gave
/// the node.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AgentRegister {
    pub token: String,
    pub inventory: AgentInventory,
    /// The credential the agent proposes for itself (64 hex digits, from
    /// a secure random source). With it, a registration retried after a
    /// lost answer is answered again; without, the control plane picks one
    /// and a lost answer cannot be recovered.
    #[serde(default)]
    pub credential: Option<String>,
}

/// The agent's machine's TPM keys (hex `TPMT_PUBLIC` areas): the EK
/// Credential Profile's ECC P-256 endorsement key, and a restricted
/// signing key of the agent's in the same TPM.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AgentTpmKeys {
    pub ek_public: String,
    pub ak_public: String,
    /// The endorsement key's certificate (hex DER), as the TPM's maker
    /// wrote it into its NV memory, where it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ek_certificate: Option<String>,
    /// The intermediates its maker wrote beside it (the EK certificate
    /// chain's NV indices, 0x01c00100 on; hex DER each), where there are.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ek_certificate_chain: Vec<String>,
}

/// A credential only the TPM holding the endorsement key can activate
/// for the agent's key (hex contents of `TPM2B_ID_OBJECT` and
/// `TPM2B_ENCRYPTED_SECRET`, for `TPM2_ActivateCredential`).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct AgentTpmChallenge {
    pub credential_blob: String,
    pub secret: String,
}

/// The activated credential (hex), with the keys it was made for.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AgentTpmProof {
    pub ek_public: String,
    pub ak_public: String,
    pub activation: String,
    /// As in [`AgentTpmKeys`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ek_certificate: Option<String>,
    /// As in [`AgentTpmKeys`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ek_certificate_chain: Vec<String>,
}

/// The identity the agent proved: its endorsement key's name (hex), and
/// whether this proof pinned it to the node (its first).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct AgentTpmProven {
    pub ek_name: String,
    pub pinned: bool,
}

/// The agent's own credential (shown once), used from then on.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct AgentRegistered {
    pub agent_id: String,
    pub node_id: String,
    pub credential: String,
    pub heartbeat_interval_ms: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AgentHeartbeat {
    /// `ok`, or what is wrong (`degraded: ...`).
    pub health: String,
    /// Ignored: agents before GPU readings sent their GPU inventory here
    /// (it is reported at registration); accepted so they still heartbeat.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gpus: Vec<AgentGpu>,
    /// Each GPU's readings and problems (NVML); empty without GPUs.
    #[serde(default)]
    pub gpu_status: Vec<GpuStatus>,
}

/// A node-local step for the agent to run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct AgentStep {
    pub id: String,
    pub kind: AgentStepKind,
    /// For `clear_uefi_variables`: the node's baseline, the non-volatile
    /// variables (`Name-GUID`) its first complete sanitization found; absent
    /// before one was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uefi_baseline: Option<Vec<String>>,
    /// For `reset_nic_settings`: the node's baseline, the network adapters'
    /// settings off their defaults (`PCI-address/PARAMETER=value`) its first
    /// complete sanitization found; absent before one was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nic_baseline: Option<Vec<String>>,
}

/// The answer to a heartbeat: the steps waiting for the agent, in order.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct AgentHeartbeatReply {
    pub steps: Vec<AgentStep>,
    /// Heartbeat next after this long (ms) rather than at the interval,
    /// sooner or later. The server sends it when no more steps will come
    /// (a sanitizer whose steps are all reported: the tenants' interval);
    /// a sanitizer waiting for its steps gets them on a held heartbeat.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_heartbeat_ms: Option<u64>,
}

/// What a step did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AgentStepResult {
    pub ok: bool,
    /// What was done, per item (disk, GPU, firmware component).
    pub items: Vec<StepItem>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StepItem {
    /// The disk, GPU or firmware component.
    pub target: String,
    /// e.g. `nvme-crypto-erase`, `blkdiscard`, `overwrite`, `nvml-reset`,
    /// `version`.
    pub method: String,
    pub ok: bool,
    pub detail: String,
}

/// One check of a sanitization.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SanitizationCheck {
    /// `wipe_disks`, `reset_gpus`, `report_firmware`, `clear_boot_override`,
    /// `firmware_baseline`, `revoke_agent`, `power_off`.
    pub name: String,
    pub ok: bool,
    pub items: Vec<StepItem>,
}

/// What sanitizing a node between tenants did. Signed by the control
/// plane: `signature` is ed25519 over the bytes of `signed_json` (which
/// `body` parses).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SanitizationRecord {
    pub id: String,
    pub body: SanitizationBody,
    /// The exact JSON that was signed.
    pub signed_json: String,
    /// Hex ed25519 signature of `signed_json`.
    pub signature: String,
    /// Hex ed25519 public key that verifies it.
    pub public_key: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SanitizationBody {
    pub node_id: String,
    /// The tenant and instance whose release it followed; absent for the
    /// node's first sanitization, before it joined the pool.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_id: Option<String>,
    /// True when every check passed: only then is the node available again.
    pub complete: bool,
    pub checks: Vec<SanitizationCheck>,
    pub started_at: String,
    pub finished_at: String,
}
