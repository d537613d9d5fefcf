//! A tenant's power actions on its ready instance's node (`POST
//! .../instances/{instance}/power`): the API records the request, the
//! active node's step does it over the BMC and records the outcome. At
//! most once: the request is marked sent (in its own transaction) before
//! the reset goes to the BMC, and a pass that finds it marked sent records
//! it done without sending it again (a second reboot is not what was
//! asked), and the reset itself is not retried after a timeout or a lost
//! answer (the BMC may have done it). Where its answer was not heard, an
//! `on` or `off` is read back from the node's power state (done if it
//! reads so; a reboot leaves no trace there). A BMC that refuses or does not answer fails the action,
//! never the node: the tenant sees why in `power.last` and asks again.

use super::{audit_instance, LifecycleController, StepError};
use crate::secrets::SecretBox;
use neocloud_common::time::{now_micros, to_rfc3339};
use neocloud_redfish::{PowerState, ResetType};
use neocloud_store::{instances, Store};
use neocloud_types::{InstancePower, Node, PowerAction, PowerDone, PowerPending};

/// The Redfish reset for an action.
pub(super) fn reset_type(action: PowerAction, force: bool) -> ResetType {
    match (action, force) {
        (PowerAction::On, _) => ResetType::On,
        (PowerAction::Off, false) => ResetType::GracefulShutdown,
        (PowerAction::Off, true) => ResetType::ForceOff,
        (PowerAction::Reboot, false) => ResetType::GracefulRestart,
        (PowerAction::Reboot, true) => ResetType::ForceRestart,
    }
}

impl LifecycleController {
    /// Does the instance's pending power action, if any. Answers whether
    /// it recorded something.
    pub(super) fn power(
        &self,
        store: &Store,
        secrets: &SecretBox,
        n: &Node,
        instance: &str,
        seen: InstancePower,
    ) -> Result<bool, StepError> {
        let Some(p) = seen.pending.clone() else { return Ok(false) };
        let reset = reset_type(p.action, p.force);
        match &p.sent_at {
            // Sent by a pass that did not finish: not sent again.
            Some(at) => {
                let sent = format!("{} sent at {at} by a pass that did not finish", reset.as_str());
                let reads = self
                    .bmc_system(store, secrets, n)
                    .ok()
                    .and_then(|(bmc, system)| read_back(&bmc, &system, p.action));
                let outcome = match reads {
                    Some(Ok(state)) => Ok(format!("{sent}; the node reads {state}")),
                    Some(Err(state)) => Err(format!(
                        "{sent} (a restart): the node reads {state}; whether the BMC took it is \
                         not known, and it is not sent again"
                    )),
                    None => Err(format!(
                        "{sent} (a restart): whether the BMC took it is not known, and it is \
                         not sent again"
                    )),
                };
                self.record(store, instance, &seen, &p, reset, outcome)
            }
            None => {
                let (bmc, system) = match self.bmc_system(store, secrets, n) {
                    Ok(x) => x,
                    Err(StepError::Store(e)) => return Err(StepError::Store(e)),
                    Err(StepError::Retry(e)) => {
                        let why = format!("the node's BMC could not be reached: {e}");
                        return self.record(store, instance, &seen, &p, reset, Err(why));
                    }
                    Err(StepError::Fail(e)) => {
                        let why = format!("the node's BMC could not be reached: {e}");
                        return self.record(store, instance, &seen, &p, reset, Err(why));
                    }
                };
                // Marked sent first: whatever becomes of this pass, the
                // reset is not sent twice.
                let sent = InstancePower {
                    pending: Some(PowerPending { sent_at: Some(now()), ..p.clone() }),
                    last: seen.last.clone(),
                };
                let marked = store
                    .write(|w| instances::swap_power(w, instance, &seen, &sent))
                    .map_err(StepError::Store)?;
                if !marked {
                    // The tenant replaced it meanwhile: the next pass does that one.
                    return Ok(false);
                }
                let outcome = match bmc.reset_at_most_once(&system, reset) {
                    Ok(()) => Ok(format!("{} sent; the BMC took it", reset.as_str())),
                    // No answer heard: it may have been done.
                    Err(e) if e.is_transient() => match read_back(&bmc, &system, p.action) {
                        Some(Ok(state)) => Ok(format!(
                            "{} sent; its answer was lost ({e}), the node reads {state}",
                            reset.as_str()
                        )),
                        Some(Err(_)) | None => Err(format!("{}: {e}", reset.as_str())),
                    },
                    Err(e) => Err(format!("{}: {e}", reset.as_str())),
                };
                self.record(store, instance, &sent, &p, reset, outcome)
            }
        }
    }

    /// Records the action done (and audits it in the tenant's chain) if
    /// the instance's power actions are still `seen`.
    fn record(
        &self,
        store: &Store,
        instance: &str,
        seen: &InstancePower,
        p: &PowerPending,
        reset: ResetType,
        outcome: Result<String, String>,
    ) -> Result<bool, StepError> {
        let ok = outcome.is_ok();
        let done = InstancePower {
            pending: None,
            last: Some(PowerDone {
                action: p.action,
                force: p.force,
                reset_type: reset.as_str().into(),
                ok,
                detail: outcome.unwrap_or_else(|e| e),
                requested_at: p.requested_at.clone(),
                done_at: now(),
            }),
        };
        let recorded = store
            .write(|w| {
                if !instances::swap_power(w, instance, seen, &done)? {
                    return Ok(false);
                }
                if ok {
                    instances::set_powered_off(w, instance, p.action == PowerAction::Off)?;
                }
                let i = instances::by_id(w, instance)?;
                let action = format!("instance_power_{}", p.action.as_str());
                audit_instance(w, &i, &action, if ok { "success" } else { "failed" })?;
                Ok(true)
            })
            .map_err(StepError::Store)?;
        if recorded {
            self.power_recorded(p.action.as_str(), ok);
        }
        Ok(recorded)
    }
}

/// What the node's power state says of an action whose answer was not
/// heard: `Ok` where it reads as the action leaves it (`on`: on or powering
/// on; `off`: off or powering off), `Err` with what it reads otherwise;
/// `None` for a reboot (no trace in the power state) or an unread state.
fn read_back(
    bmc: &neocloud_redfish::Bmc,
    system: &str,
    action: PowerAction,
) -> Option<Result<String, String>> {
    let done: &[PowerState] = match action {
        PowerAction::On => &[PowerState::On, PowerState::PoweringOn],
        PowerAction::Off => &[PowerState::Off, PowerState::PoweringOff],
        PowerAction::Reboot => return None,
    };
    let state = bmc.power_state(system).ok()?;
    let name = format!("{state:?}");
    Some(if done.contains(&state) { Ok(name) } else { Err(name) })
}

fn now() -> String {
    to_rfc3339(now_micros())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn graceful_unless_forced() {
        let all = [
            (PowerAction::On, false, ResetType::On),
            (PowerAction::On, true, ResetType::On),
            (PowerAction::Off, false, ResetType::GracefulShutdown),
            (PowerAction::Off, true, ResetType::ForceOff),
            (PowerAction::Reboot, false, ResetType::GracefulRestart),
            (PowerAction::Reboot, true, ResetType::ForceRestart),
        ];
        for (action, force, want) in all {
            assert_eq!(reset_type(action, force), want, "{action:?} force={force}");
        }
    }
}
