//! `neocloud-agent`: the program that runs on a bare-metal GPU server.
//!
//! The control plane boots a node over the network into either the
//! tenant's operating system or the provider's sanitizer ramdisk, and puts
//! the API URL and a one-time provisioning token on the kernel command line
//! (`neocloud.api=`, `neocloud.token=`). The agent then
//!
//! 1. registers with the token and this machine's inventory (GPUs through
//!    NVML, loaded at run time so no GPU or driver is needed to build or
//!    run it; the disks it was given; MAC addresses) and gets a credential
//!    of its own ([`Agent::register`]);
//! 2. heartbeats with that credential, and runs the node-local steps the
//!    answers carry (wipe disks, reset GPUs, report firmware, set the
//!    network adapters' settings back, clear the UEFI variables and the
//!    TPM), reporting
//!    each result ([`Agent::run`]);
//! 3. stops when the credential is revoked, which is how the control plane
//!    says the node was handed back or its sanitization is over.
//!
//! What a step does to the machine goes through the [`Hardware`] trait:
//! [`Host`] is this machine, [`Simulated`] a simulator the control plane's
//! demo datacenter runs in-process.

mod agent;
pub mod cli;
pub mod cmdline;
pub mod cuda;
pub mod disks;
pub mod efivars;
pub mod health;
pub mod host;
pub mod nic;
mod nvme;
pub mod nvml;
pub mod simulated;
#[cfg(test)]
mod testutil;
mod tools;
pub mod tpm;
pub mod tpm_identity;
pub mod xid_watch;

pub use agent::{Agent, AgentError, ApiFailure, Exit, Logger, Registration};
pub use host::Host;
pub use simulated::{Simulated, SimulatedConfig};

use neocloud_types::{
    AgentGpu, AgentInventory, AgentStep, AgentStepKind, AgentStepResult, GpuStatus, StepItem,
};

/// What the agent can see and do on a machine.
pub trait Hardware: Send + Sync {
    /// What the machine has, sent when registering.
    fn inventory(&self) -> AgentInventory;
    /// Erases every configured disk and verifies it; an item per disk.
    fn wipe_disks(&self) -> AgentStepResult;
    /// Resets every GPU; an item per GPU (none and `ok` without GPUs).
    fn reset_gpus(&self) -> AgentStepResult;
    /// Reports firmware versions (method `version`); an item per component.
    fn report_firmware(&self) -> AgentStepResult;
    /// Clears the TPM and reads it back ([`tpm::clear_tpm`]); one item
    /// (`ok` without a TPM, saying so).
    fn clear_tpm(&self) -> AgentStepResult;
    /// The TPM whose endorsement key proves the machine's identity
    /// ([`tpm_identity`]); none by default.
    fn tpm_path(&self) -> Option<tpm::TpmPath> {
        None
    }
    /// Deletes the non-volatile UEFI variables not in `baseline`
    /// ([`efivars::clear`]); without one, lists them to be kept as the
    /// node's baseline. `ok` with one item where the machine did not boot
    /// through UEFI.
    fn clear_uefi_variables(&self, baseline: Option<&[String]>) -> AgentStepResult;
    /// Sets the NVIDIA (Mellanox) network adapters' persistent settings
    /// back to their defaults but for those in `baseline` ([`nic::reset`]);
    /// without one, lists those off their defaults to be kept as the
    /// node's baseline. `ok` with one item where the machine has none.
    fn reset_nic_settings(&self, baseline: Option<&[String]>) -> AgentStepResult;
    /// The GPUs, sent with every heartbeat; by default from
    /// [`Hardware::inventory`], which implementations may make cheaper.
    fn gpus(&self) -> Vec<AgentGpu> {
        self.inventory().gpus
    }
    /// Each GPU's readings, problems assessed ([`health::assess`]); sent
    /// with every heartbeat.
    fn gpu_status(&self) -> Vec<GpuStatus>;
}

/// Runs one step on `hw`.
pub fn run_step(hw: &dyn Hardware, step: &AgentStep) -> AgentStepResult {
    // Exhaustive on purpose: a new step kind must be implemented here.
    match step.kind {
        AgentStepKind::WipeDisks => hw.wipe_disks(),
        AgentStepKind::ResetGpus => hw.reset_gpus(),
        AgentStepKind::ReportFirmware => hw.report_firmware(),
        AgentStepKind::ClearTpm => hw.clear_tpm(),
        AgentStepKind::ClearUefiVariables => hw.clear_uefi_variables(step.uefi_baseline.as_deref()),
        AgentStepKind::ResetNicSettings => hw.reset_nic_settings(step.nic_baseline.as_deref()),
    }
}

/// A step's result from its items: `ok` when every item is.
pub fn result_of(items: Vec<StepItem>) -> AgentStepResult {
    AgentStepResult { ok: items.iter().all(|i| i.ok), items }
}
