//! Switch apply drivers: they push what `neocloud_fabric` planned and
//! rendered to a device, and check the device against what it was given.
//!
//! One trait, [`SwitchDriver`], for every switch OS: `frr` (FRR + Linux
//! netdevs, the lab's leaves and whitebox switches), `sonic` (CONFIG_DB),
//! `nvue` (Cumulus NVUE REST) and `eos` (Arista eAPI). Drivers are blocking
//! (run them on a blocking thread) and hold no state between calls beyond a
//! connection: what a switch was last given is the caller's record (the
//! control plane's store), passed in as `actual`.
//!
//! Generations: every apply carries the generation of the intent it was
//! planned from; the driver records it on the device and refuses to apply
//! an older one than the device holds ([`DriverError::Stale`]), so a
//! control-plane replica with an old plan cannot undo a newer one.

use neocloud_fabric::{ObjectId, SwitchConfig, SwitchOs};
use serde::{Deserialize, Serialize};
use std::fmt;

/// One apply: converge the device from `actual` (what it was last given;
/// empty for a new switch) to `desired`, planned from intent `generation`.
#[derive(Debug, Clone, Copy)]
pub struct Apply<'a> {
    pub actual: &'a SwitchConfig,
    pub desired: &'a SwitchConfig,
    pub generation: u64,
    /// Compute and report what would be pushed; push nothing.
    pub dry_run: bool,
}

/// What an apply pushed (or, dry, would push), one line per step in the
/// device's own terms (a command, a REST call, a file written).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Applied {
    pub steps: Vec<String>,
    pub dry_run: bool,
}

/// What a check found on the device.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checked {
    /// The generation the device says it holds (`None`: never applied).
    pub generation: Option<u64>,
    /// Objects of `expected` the device does not have as given (empty: in
    /// sync).
    pub drift: Vec<Drift>,
}

/// One object on which the device differs from what it was given.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Drift {
    pub object: ObjectId,
    pub detail: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DriverError {
    /// The device (or its management API) could not be reached, or answered
    /// with a server-side error: worth retrying.
    Unreachable(String),
    /// The device refused our credentials.
    Unauthorized(String),
    /// The device holds a newer generation than the one offered.
    Stale { device: u64, offered: u64 },
    /// The device refused or failed a step (not worth retrying unchanged).
    Failed(String),
    /// The driver cannot express this on this device.
    Unsupported(String),
}

impl DriverError {
    pub fn is_transient(&self) -> bool {
        match self {
            DriverError::Unreachable(_) => true,
            DriverError::Unauthorized(_)
            | DriverError::Stale { .. }
            | DriverError::Failed(_)
            | DriverError::Unsupported(_) => false,
        }
    }
}

impl fmt::Display for DriverError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DriverError::Unreachable(m) => write!(f, "switch unreachable: {m}"),
            DriverError::Unauthorized(m) => write!(f, "switch refused the credentials: {m}"),
            DriverError::Stale { device, offered } => {
                write!(f, "the switch holds generation {device}, newer than the offered {offered}")
            }
            DriverError::Failed(m) => write!(f, "switch apply failed: {m}"),
            DriverError::Unsupported(m) => write!(f, "not supported on this switch: {m}"),
        }
    }
}

impl std::error::Error for DriverError {}

pub type Result<T> = std::result::Result<T, DriverError>;

/// A switch's apply driver.
pub trait SwitchDriver: Send + Sync {
    /// The OS this driver speaks.
    fn os(&self) -> SwitchOs;

    /// Converges the device (see [`Apply`]). Idempotent: applying the same
    /// `desired` and generation again changes nothing on the device.
    fn apply(&self, apply: &Apply<'_>) -> Result<Applied>;

    /// Compares the device with `expected` (what it was last given) and
    /// reads the generation it holds.
    fn check(&self, expected: &SwitchConfig) -> Result<Checked>;
}

pub mod double;
pub mod eos;
pub mod frr;
mod http;
pub mod nvue;
pub mod simulated;
pub mod sonic;
