//! provisioning and active: booting a tenant's image over the network and
//! handing the node over once its agent checks in.

use super::{declared_macs, new_boot, set_instance, LifecycleController, StepError};
use crate::secrets::SecretBox;
use neocloud_common::time::now_micros;
use neocloud_redfish::{BootTarget, PowerState, ResetType};
use neocloud_store::{agents, instances, Store, Writer};
use neocloud_types::{BootStep, ImagePurpose, InstanceState, Node, NodeLifecycle};

impl LifecycleController {
    pub(super) fn provisioning(
        &self,
        store: &Store,
        secrets: &SecretBox,
        n: &Node,
        tenant: &str,
        instance: &str,
        (step, attempt): (BootStep, u32),
    ) -> Result<bool, StepError> {
        // Released while provisioning: whatever was written, sanitize.
        if store.read(|r| instances::release_requested(r, instance)).map_err(StepError::Store)? {
            return self.start_release(store, secrets, n, tenant, instance);
        }
        let next = |step, attempt| NodeLifecycle::Provisioning {
            tenant_id: tenant.to_string(),
            instance_id: instance.to_string(),
            step,
            attempt,
        };
        match step {
            BootStep::SetBoot | BootStep::PowerCycle => {
                let to = next(step.next(), attempt);
                self.boot_step(store, secrets, n, step, (ImagePurpose::Tenant, instance), to)
            }
            BootStep::AwaitAgent => {
                let agent = store
                    .read(|r| agents::live_agent(r, &n.id, ImagePurpose::Tenant, instance))
                    .map_err(StepError::Store)?;
                match agent {
                    Some(_) => {
                        let to = NodeLifecycle::Active {
                            tenant_id: tenant.to_string(),
                            instance_id: instance.to_string(),
                        };
                        self.advance(store, n, to, |w| {
                            let i = instances::by_id(w, instance)?;
                            set_instance(w, &i, InstanceState::Ready, None)
                        })
                    }
                    None => match self.await_boot(n, attempt, "the image's agent")? {
                        Some(again) => {
                            self.advance(store, n, next(BootStep::SetBoot, again), |_| Ok(()))
                        }
                        None => Ok(false),
                    },
                }
            }
        }
    }

    /// An active node: start releasing when its tenant released the instance.
    pub(super) fn active(
        &self,
        store: &Store,
        secrets: &SecretBox,
        n: &Node,
        tenant: &str,
        instance: &str,
    ) -> Result<bool, StepError> {
        if store.read(|r| instances::release_requested(r, instance)).map_err(StepError::Store)? {
            return self.start_release(store, secrets, n, tenant, instance);
        }
        Ok(false)
    }

    /// A step of booting the node from the network for `purpose`, then the
    /// move to `to`: the BMC's one-time boot override, or the power cycle
    /// (see [`forget_killed_boot`]).
    pub(super) fn boot_step(
        &self,
        store: &Store,
        secrets: &SecretBox,
        n: &Node,
        step: BootStep,
        (purpose, instance): (ImagePurpose, &str),
        to: NodeLifecycle,
    ) -> Result<bool, StepError> {
        let reset_done = self.boot_bmc(store, secrets, n, step)?;
        self.advance(store, n, to, |w| {
            forget_killed_boot(w, secrets, &n.id, (purpose, instance), reset_done)
        })
    }

    /// The BMC side of booting from the network: the one-time boot
    /// override, then power on (or reset a running node). Idempotent: a
    /// step repeated after a crash sets the same override or resets again.
    /// Returns when the reset returned (µs), if one was done.
    fn boot_bmc(
        &self,
        store: &Store,
        secrets: &SecretBox,
        n: &Node,
        step: BootStep,
    ) -> Result<Option<i64>, StepError> {
        if step == BootStep::PowerCycle {
            // Repeated after a crash, when the image already booted and its
            // agent registered: resetting again would only kill that agent.
            let tok = store.read(|r| agents::boot_token(r, &n.id)).map_err(StepError::Store)?;
            if tok.is_some_and(|t| t.used_at.is_some()) {
                return Ok(None);
            }
        }
        let (bmc, system) = self.bmc(store, secrets, n)?;
        let system = match system {
            Some(s) => s,
            None => bmc.host_system_with(&declared_macs(n)).map_err(StepError::from)?,
        };
        match step {
            BootStep::SetBoot => {
                bmc.boot_once(&system, BootTarget::Pxe, false).map_err(StepError::from)?;
                Ok(None)
            }
            BootStep::PowerCycle => {
                let info = bmc.system(&system).map_err(StepError::from)?;
                let allowed = |t: ResetType| {
                    info.reset_types.is_empty() || info.reset_types.iter().any(|r| r == t.as_str())
                };
                let t = match info.power_state {
                    PowerState::Off | PowerState::PoweringOff => ResetType::On,
                    PowerState::On | PowerState::PoweringOn | PowerState::Unknown => {
                        [ResetType::ForceRestart, ResetType::PowerCycle, ResetType::GracefulRestart]
                            .into_iter()
                            .find(|t| allowed(*t))
                            .ok_or_else(|| {
                                StepError::Fail(format!(
                                    "the BMC allows no restart (allowed: {})",
                                    info.reset_types.join(", ")
                                ))
                            })?
                    }
                };
                bmc.reset(&system, t).map_err(StepError::from)?;
                Ok(Some(now_micros()))
            }
            BootStep::AwaitAgent => Ok(None),
        }
    }

    /// Waiting for a booted image's agent to register: nothing to do within
    /// the boot timeout; past it, `Some(next attempt)` (the node is set to
    /// boot from the network and power-cycled again: PXE and early boot
    /// are flaky, and the one-time boot override is spent by a boot that
    /// hung later), and after the last attempt the node fails.
    pub(super) fn await_boot(
        &self,
        n: &Node,
        attempt: u32,
        whose: &str,
    ) -> Result<Option<u32>, StepError> {
        if in_state(n) <= self.boot_timeout {
            return Ok(None);
        }
        if attempt < self.boot_attempts {
            tracing::warn!(node = %n.name, attempt, "{whose} did not register: booting the node again");
            return Ok(Some(attempt + 1));
        }
        Err(StepError::Fail(format!(
            "{whose} did not register within {}s, {} boot attempt{} (check the image, the boot network and the node's console)",
            self.boot_timeout.as_secs(),
            attempt,
            if attempt == 1 { "" } else { "s" }
        )))
    }

    /// Waiting for an agent: nothing to do until the deadline, then fail.
    pub(super) fn await_deadline(&self, n: &Node, what: &str) -> Result<bool, StepError> {
        if in_state(n) > self.agent_timeout {
            return Err(StepError::Fail(format!(
                "{what} within {}s (check the image, the boot network and the node's console)",
                self.agent_timeout.as_secs()
            )));
        }
        Ok(false)
    }
}

/// How long the node has been in its lifecycle state.
pub(super) fn in_state(n: &Node) -> std::time::Duration {
    let since = neocloud_common::time::from_rfc3339(&n.lifecycle_since).unwrap_or(0);
    std::time::Duration::from_micros(now_micros().saturating_sub(since).max(0) as u64)
}

/// After a reset: a boot token used before the reset returned was used by
/// the boot the reset killed (a power cycle repeated after a crash, or
/// after a reset that timed out but was done, can land just after the
/// image's agent registered). That agent's credential is revoked and a
/// fresh token issued, so the boot the reset started can register; without
/// it the node would wait on a dead agent while the live one is refused.
fn forget_killed_boot(
    w: &mut dyn Writer,
    secrets: &SecretBox,
    node_id: &str,
    (purpose, instance_id): (ImagePurpose, &str),
    reset_done: Option<i64>,
) -> neocloud_common::Result<()> {
    let Some(done) = reset_done else { return Ok(()) };
    let used_before =
        agents::boot_token(w, node_id)?.and_then(|t| t.used_at).is_some_and(|used| used < done);
    if used_before {
        tracing::warn!(
            node = node_id,
            "an agent registered just before the node was reset: booting with a fresh token"
        );
        new_boot(w, secrets, node_id, purpose, instance_id)?;
    }
    Ok(())
}
