//! Activating firmware updates: a reset other than the host's that an
//! update needs to take effect (its task's `ResetRequired`, or the
//! provider's baseline's activation: an AC power cycle of the chassis for
//! HGX GPU firmware, a restart of the BMC), sent once every update of the
//! node is done, at most once (written first: an AC power cycle sent twice
//! cuts the power twice), then followed until the components it activates
//! read the baseline's versions, or `firmware_update_timeout` passes.

use super::firmware::{since, version_of};
use super::LifecycleController;
use super::StepError;
use neocloud_common::time::{now_micros, to_rfc3339};
use neocloud_redfish::{Bmc, RequiredReset, ResetScope};
use neocloud_store::Store;
use neocloud_types::{FirmwareActivation, FirmwareUpdate, FirmwareUpdateState, Node};

impl LifecycleController {
    /// Once every update is done: the resets their tasks said activate
    /// them, one action at a time. The one sent is waited for until the
    /// components it activates read the baseline's versions (a BMC that
    /// does not answer, restarting, is waited for), or failed once
    /// `firmware_update_timeout` has passed since it was sent; then the
    /// next is sent, written as sent first and sent at most once (its
    /// answer lost: the versions read afterwards decide). `true` once none
    /// is left.
    pub(super) fn activate(
        &self,
        store: &Store,
        n: &Node,
        bmc: &Bmc,
        updates: &mut [FirmwareUpdate],
    ) -> Result<bool, StepError> {
        // (An update that failed activates nothing.)
        let in_state = |u: &FirmwareUpdate, s: FirmwareUpdateState| {
            u.state == FirmwareUpdateState::Completed
                && u.activation.as_ref().is_some_and(|a| a.state == s)
        };
        if let Some(first) = updates.iter().position(|u| in_state(u, FirmwareUpdateState::Sent)) {
            let group = same_reset(updates, first, FirmwareUpdateState::Sent);
            let waited =
                since(updates[first].activation.as_ref().and_then(|a| a.sent_at.as_deref()));
            let within = waited <= self.firmware_update_timeout;
            let now = match bmc.firmware() {
                Ok(f) => Some(f),
                Err(e) if e.is_transient() => None,
                Err(e) => return Err(e.into()),
            };
            let reads = |u: &FirmwareUpdate| now.as_ref().map(|f| version_of(f, &u.component));
            let active = group.iter().all(|&j| reads(&updates[j]).as_ref() == Some(&updates[j].to));
            if !active && within {
                return Ok(false);
            }
            for &j in &group {
                let read = reads(&updates[j]);
                let u = &mut updates[j];
                let Some(a) = u.activation.as_mut() else { continue };
                if active {
                    a.state = FirmwareUpdateState::Completed;
                    a.detail = format!("reads {}", u.to);
                } else {
                    a.state = FirmwareUpdateState::Failed;
                    a.detail = match read {
                        Some(v) => format!(
                            "reads {v:?}, not {}, {}s after the reset",
                            u.to,
                            waited.as_secs()
                        ),
                        None => format!(
                            "the BMC did not answer for {}s after the reset",
                            waited.as_secs()
                        ),
                    };
                }
                log_activation(n, u);
            }
            let outcome = if active { "success" } else { "failure" };
            if let Some(a) = &updates[first].activation {
                self.firmware_activation_ended(&a.reset_type, active);
            }
            self.write_updates(store, n, updates, &[("node_firmware_activation", outcome)])?;
        }
        let Some(next) = updates.iter().position(|u| in_state(u, FirmwareUpdateState::Planned))
        else {
            return Ok(true);
        };
        let group = same_reset(updates, next, FirmwareUpdateState::Planned);
        let at = to_rfc3339(now_micros());
        each_activation(updates, &group, |a| {
            a.state = FirmwareUpdateState::Sent;
            a.sent_at = Some(at.clone());
        });
        // Sent by this pass only if another replica's did not since this one
        // read them (an AC power cycle sent twice cuts the first short).
        let planned = |now: &[FirmwareUpdate]| {
            group.iter().all(|&j| {
                now.get(j)
                    .and_then(|u| u.activation.as_ref())
                    .is_some_and(|a| a.state == FirmwareUpdateState::Planned)
            })
        };
        let audits = [("node_firmware_activation", "requested")];
        if !self.write_updates_if(store, n, planned, updates, &audits)? {
            return Err(StepError::Store(neocloud_common::Error::conflict(
                "a firmware activation was sent by another replica meanwhile",
            )));
        }
        let Some(a) = updates[next].activation.clone() else { return Ok(false) };
        let reset = RequiredReset { action: a.action, reset_type: a.reset_type };
        tracing::info!(node = %n.name, reset = %reset, "reset to activate firmware updates");
        match bmc.required_reset(&reset) {
            Ok(()) => {}
            // At most once: the versions read next decide.
            Err(e) if e.is_transient() => {
                each_activation(updates, &group, |a| {
                    a.detail = format!("its answer not heard ({e})")
                });
                self.write_updates(store, n, updates, &[])?;
            }
            Err(e) => {
                each_activation(updates, &group, |a| {
                    a.state = FirmwareUpdateState::Failed;
                    a.detail = format!("refused: {e}");
                });
                for &j in &group {
                    log_activation(n, &updates[j]);
                }
                self.firmware_activation_ended(&reset.reset_type, false);
                self.write_updates(store, n, updates, &[("node_firmware_activation", "failure")])?;
            }
        }
        Ok(false)
    }
}

/// What activates a completed update: the first reset its task said is
/// required, other than of the host `system` (its reset comes anyway).
/// One the control plane does not send (not a reset action of the BMC's),
/// or a second one, is noted in `detail` and left to the versions read at
/// the end.
pub(super) fn activation_of(
    resets: &[RequiredReset],
    system: &str,
    detail: &mut String,
) -> Option<FirmwareActivation> {
    let mut activation = None;
    for r in resets {
        let host = r.scope() == Some(ResetScope::System) && r.resource() == system;
        if host {
            continue;
        }
        match (r.scope(), &activation) {
            (Some(_), None) => {
                activation = Some(FirmwareActivation {
                    action: r.action.clone(),
                    reset_type: r.reset_type.clone(),
                    state: FirmwareUpdateState::Planned,
                    sent_at: None,
                    detail: String::new(),
                })
            }
            (Some(_), Some(_)) | (None, _) => {
                detail.push_str(&format!("; not sent (the BMC also asked for it): {r}"))
            }
        }
    }
    activation
}

/// Applies `f` to the activation of each update of `group`.
fn each_activation(
    updates: &mut [FirmwareUpdate],
    group: &[usize],
    mut f: impl FnMut(&mut FirmwareActivation),
) {
    for &j in group {
        if let Some(a) = updates[j].activation.as_mut() {
            f(a);
        }
    }
}

/// The updates whose activation is in `state` and shares update `i`'s
/// reset action and type (one reset activates them all).
fn same_reset(updates: &[FirmwareUpdate], i: usize, state: FirmwareUpdateState) -> Vec<usize> {
    let key = updates[i].activation.as_ref().map(|a| (a.action.clone(), a.reset_type.clone()));
    (0..updates.len())
        .filter(|&j| {
            updates[j].activation.as_ref().is_some_and(|a| {
                a.state == state && Some((a.action.clone(), a.reset_type.clone())) == key
            })
        })
        .collect()
}

fn log_activation(n: &Node, u: &FirmwareUpdate) {
    let Some(a) = &u.activation else { return };
    match a.state {
        FirmwareUpdateState::Failed => {
            tracing::warn!(node = %n.name, component = %u.component, reset = %a.reset_type, action = %a.action, detail = %a.detail, "firmware activation failed")
        }
        FirmwareUpdateState::Completed
        | FirmwareUpdateState::Planned
        | FirmwareUpdateState::Sent => {
            tracing::info!(node = %n.name, component = %u.component, reset = %a.reset_type, action = %a.action, detail = %a.detail, "firmware activated")
        }
    }
}

/// How an update's activation went, for a summary or a record's item
/// (empty where none was needed).
pub(super) fn activation_said(u: &FirmwareUpdate) -> String {
    match &u.activation {
        Some(a) => format!(
            "; activated by {} at {}: {} ({})",
            a.reset_type,
            a.action,
            a.state.as_str(),
            a.detail
        ),
        None => String::new(),
    }
}
