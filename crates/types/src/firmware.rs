//! The provider's firmware baselines: the versions a system model must
//! run. A clean node of that model whose inspection finds another version
//! of a listed component fails; every sanitization checks them. Where the
//! baseline names an image for a component, a sanitization that finds the
//! component at another version updates it from that image over the BMC
//! (Redfish `UpdateService.SimpleUpdate`) before the sanitizer boots.

use neocloud_common::Name;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct FirmwareBaseline {
    pub id: String,
    pub name: String,
    /// The system model as the BMC reports it (`Model`): unique.
    pub model: String,
    /// Component id (as the BMC's firmware inventory names it) to version.
    pub components: BTreeMap<String, String>,
    /// Component id to the URL of its firmware image at the baseline's
    /// version (HTTP or HTTPS, fetched by the BMC): a sanitization that
    /// finds the component at another version updates it from this image.
    #[serde(default)]
    pub images: BTreeMap<String, String>,
    /// Component id (one with an image) to the reset that activates its
    /// update, for BMCs whose update task does not say (`ResetRequired`):
    /// HGX GPU firmware takes effect only at an AC power cycle.
    #[serde(default)]
    pub activations: BTreeMap<String, FirmwareReset>,
    /// How the images reach the BMCs: `pull` (the BMC fetches the URL) or
    /// `push` (the control plane fetches it and uploads it to the BMC, for
    /// BMCs that cannot reach the image server).
    #[serde(default)]
    pub transfer: ImageTransfer,
    /// Component ids (each with an image) updated first, in this order;
    /// the others after them, by id. Vendors ask for some first: the
    /// BMC's own firmware, which the other components' updates may need.
    #[serde(default)]
    pub order: Vec<String>,
    pub description: String,
    pub generation: i64,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FirmwareBaselineCreate {
    pub name: Name,
    /// The system model as the BMC reports it, e.g. `DGX H100`.
    pub model: String,
    /// At least one component id to its version.
    pub components: BTreeMap<String, String>,
    /// Component id (one of `components`) to the URL of its image at that
    /// version (HTTP or HTTPS, as the BMC fetches it).
    #[serde(default)]
    pub images: BTreeMap<String, String>,
    /// Component id (one of `images`) to the reset that activates its
    /// update where the BMC's task does not say.
    #[serde(default)]
    pub activations: BTreeMap<String, FirmwareReset>,
    /// `pull` (the default) or `push`.
    #[serde(default)]
    pub transfer: ImageTransfer,
    /// Component ids (each one of `images`) updated first, in this order;
    /// the others after them, by id.
    #[serde(default)]
    pub order: Vec<String>,
    #[serde(default)]
    pub description: String,
}

/// How a baseline's images reach the BMCs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ImageTransfer {
    /// `UpdateService.SimpleUpdate`: the BMC fetches the image's URL.
    #[default]
    Pull,
    /// `UpdateService.MultipartHttpPushUri`: the control plane fetches the
    /// image and uploads it to the BMC (a BMC on a network that cannot
    /// reach the image server).
    Push,
}

impl ImageTransfer {
    pub fn as_str(self) -> &'static str {
        match self {
            ImageTransfer::Pull => "pull",
            ImageTransfer::Push => "push",
        }
    }

    pub fn parse(s: &str) -> Option<ImageTransfer> {
        match s {
            "pull" => Some(ImageTransfer::Pull),
            "push" => Some(ImageTransfer::Push),
            _ => None,
        }
    }
}

/// A BMC reset action and its `ResetType`: what activates a component's
/// updated firmware (`{"action":
/// "/redfish/v1/Chassis/HGX_Chassis_0/Actions/Chassis.Reset",
/// "reset_type": "PowerCycle"}`: an AC power cycle of the HGX baseboard).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FirmwareReset {
    /// The reset action's path on the BMC: `/redfish/v1/.../Actions/`
    /// `Chassis.Reset`, `Manager.Reset` or `ComputerSystem.Reset`.
    pub action: String,
    /// The `ResetType` (`PowerCycle`, `ForceRestart`, ...).
    pub reset_type: String,
}

/// A new set of versions (replacing the old one whole) or description.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FirmwareBaselineUpdate {
    pub generation: i64,
    #[serde(default)]
    pub components: Option<BTreeMap<String, String>>,
    /// A new set of images (replacing the old one whole; `{}`: none).
    #[serde(default)]
    pub images: Option<BTreeMap<String, String>>,
    /// A new set of activations (replacing the old one whole; `{}`: none).
    #[serde(default)]
    pub activations: Option<BTreeMap<String, FirmwareReset>>,
    #[serde(default)]
    pub transfer: Option<ImageTransfer>,
    /// A new update order (replacing the old one whole; `[]`: by id).
    #[serde(default)]
    pub order: Option<Vec<String>>,
    #[serde(default)]
    pub description: Option<String>,
}

/// Where one firmware update of a node stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum FirmwareUpdateState {
    /// Found behind the baseline; not asked of the BMC yet.
    Planned,
    /// Asked of the BMC (written before it was sent); its task runs.
    Sent,
    /// The BMC's task completed: the image applies at the node's next boot
    /// (the sanitizer's) at the latest, checked at the end of sanitization.
    Completed,
    /// Refused, its task failed or timed out, or its answer lost too often:
    /// `detail` says which; the sanitization's firmware check fails.
    Failed,
}

impl FirmwareUpdateState {
    pub fn as_str(self) -> &'static str {
        match self {
            FirmwareUpdateState::Planned => "planned",
            FirmwareUpdateState::Sent => "sent",
            FirmwareUpdateState::Completed => "completed",
            FirmwareUpdateState::Failed => "failed",
        }
    }

    /// Whether nothing more is done about it.
    pub fn is_done(self) -> bool {
        match self {
            FirmwareUpdateState::Planned | FirmwareUpdateState::Sent => false,
            FirmwareUpdateState::Completed | FirmwareUpdateState::Failed => true,
        }
    }
}

/// A firmware update the lifecycle runs on a node being released: a
/// component the provider's baseline has an image for, found at another
/// version, updated from that image before the sanitizer boots (whose boot
/// applies what waits for a reset). Kept on the node until the
/// sanitization record is written (it is in the record's firmware check).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct FirmwareUpdate {
    /// The component (its firmware inventory id).
    pub component: String,
    /// Its firmware inventory resource (the update's target).
    pub target: String,
    /// The version found.
    pub from: String,
    /// The baseline's version.
    pub to: String,
    /// The image it is updated from.
    pub image: String,
    /// Uploaded to the BMC by the control plane (the baseline's `push`),
    /// not fetched by it.
    #[serde(default)]
    pub push: bool,
    pub state: FirmwareUpdateState,
    /// The BMC's task, once it answered with one.
    #[serde(default)]
    pub task: Option<String>,
    /// The task's progress as the BMC last reported it.
    #[serde(default)]
    pub percent: Option<u32>,
    /// Times it was sent (an answer lost is sent again, a bounded number
    /// of times: flashing the same image again is harmless, twice at once
    /// the BMC refuses).
    #[serde(default)]
    pub sends: u32,
    /// When it was last sent (RFC 3339).
    #[serde(default)]
    pub sent_at: Option<String>,
    /// The BMC's tasks before it was last sent (where it lists them): a
    /// send whose answer is lost finds its task among the new ones.
    #[serde(default)]
    pub tasks_before: Option<Vec<String>>,
    /// When the host was reset to apply it (an update at inspection; a
    /// release's sanitizer boot applies its own).
    #[serde(default)]
    pub applied_at: Option<String>,
    /// What the BMC said: its task's messages, its refusal, a timeout.
    #[serde(default)]
    pub detail: String,
    /// A reset its BMC's task said the update needs to take effect, other
    /// than the host's (which the sanitizer's boot, or the reset after the
    /// updates at inspection, does anyway): an AC power cycle of the
    /// chassis (HGX GPU firmware), a restart of the BMC.
    #[serde(default)]
    pub activation: Option<FirmwareActivation>,
}

/// A reset that activates updated firmware: sent once every update of the
/// node is done (one per action, shared by the updates that ask for the
/// same), at most once, then followed until the components it activates
/// read the baseline's versions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct FirmwareActivation {
    /// The reset action the BMC named (`…/Actions/Chassis.Reset`,
    /// `…/Actions/Manager.Reset`).
    pub action: String,
    /// The `ResetType` it named (`PowerCycle`, `ForceRestart`, …).
    pub reset_type: String,
    /// `planned`: to send; `sent` (written before it was sent): waiting
    /// for the versions; `completed`: they read the baseline's; `failed`:
    /// refused, or they did not within `firmware_update_timeout_secs`.
    pub state: FirmwareUpdateState,
    /// When it was sent (RFC 3339).
    #[serde(default)]
    pub sent_at: Option<String>,
    #[serde(default)]
    pub detail: String,
}

/// How one node of a baseline's model stands against it
/// (`GET /v1/firmware-baselines/{b}/nodes`): the versions its BMC last
/// reported (at its last inspection or sanitization), the components that
/// differ, and whether updates are under way.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct FirmwareCompliance {
    pub node_id: String,
    pub node: String,
    /// The node's lifecycle state.
    pub lifecycle: String,
    /// When the versions were read.
    pub read_at: String,
    /// Every listed component at the baseline's version.
    pub compliant: bool,
    /// The listed components at another version, or not reported.
    pub differs: Vec<FirmwareDifference>,
    /// Firmware updates to the baseline's images under way on the node.
    pub updating: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct FirmwareDifference {
    pub component: String,
    /// The baseline's version.
    pub want: String,
    /// The version read; absent where the BMC did not report the component.
    pub have: Option<String>,
    /// Whether the baseline has an image to update it from (at the node's
    /// next release, or its next inspection).
    pub image: bool,
}
