//! Firmware updates to the provider's baseline: a component the provider's
//! baseline for the node's model gives an image for, found at another
//! version, is updated from that image over the BMC
//! (`UpdateService.SimpleUpdate`), its task followed to the end.
//!
//! - Before a released node's sanitizer boots (a tenant with root can
//!   flash a NIC, a GPU or the BIOS in-band): the sanitizer's boot applies
//!   what waits for a reset, and the end of sanitization checks every
//!   version as before: the update is a means, the record's check decides.
//! - Before a new node joins the pool: its inspection plans them, the next
//!   passes send and follow them, reset the host to apply them, read the
//!   versions back, power the node off again and inspect it.
//!
//! An update whose task says a reset other than the host's is required
//! for it to take effect (the Base registry's `ResetRequired`: an AC power
//! cycle of the chassis for HGX GPU firmware, a restart of the BMC), or
//! whose component the baseline gives an activation (for BMCs that do not
//! say), is activated once every update of the node is done (`activation`).
//!
//! A node's updates are sent one at a time, each once the one before has
//! ended: a BMC runs one update at a time (a second one sent meanwhile is
//! refused, or has the BMC restart under the first).
//!
//! Each update is written as sent (with the time, a count, and the BMC's
//! tasks before it) before it is sent. A pass that finds one sent with no
//! task known (its answer lost, or the control plane died before writing
//! it) looks for its task among those the BMC started since (by the
//! request each keeps, or the only new one) and follows it; with none to
//! find, it reads the version back and, `firmware_resend_after` after the
//! last send, sends it again, at most [`MAX_SENDS`] times: flashing the
//! same image again is harmless, and a BMC busy with the first refuses the
//! second.

use super::firmware_plan::{plan_from, write_plan};
use super::{audit_node, LifecycleController, StepError};
use crate::secrets::SecretBox;
use neocloud_common::time::{from_rfc3339, now_micros, to_rfc3339};
use neocloud_redfish::{Bmc, Firmware, RedfishError, ResetType, TaskProgress};
use neocloud_store::{nodes, Store};
use neocloud_types::{FirmwareBaseline, FirmwareUpdate, FirmwareUpdateState, Node};
use std::time::Duration;

/// Times one update is sent before it is failed for want of an answer.
pub const MAX_SENDS: u32 = 3;

/// The BMC's tasks kept with a send (to trace a lost answer's task).
const MAX_TASKS_KEPT: usize = 256;

impl LifecycleController {
    /// The node's firmware updates for this release: planned on the first
    /// pass, sent, then followed until each is done. `true` once none is
    /// left to wait for (or none was needed).
    pub(super) fn update_firmware(
        &self,
        store: &Store,
        secrets: &SecretBox,
        n: &Node,
    ) -> Result<bool, StepError> {
        let known = store.read(|r| nodes::firmware_updates(r, &n.id)).map_err(StepError::Store)?;
        let mut updates = match known {
            Some(u) => u,
            None => match self.plan_firmware(store, secrets, n)? {
                Some(u) => u,
                None => return Ok(true),
            },
        };
        self.advance_updates(store, secrets, n, &mut updates)
    }

    /// Sends what is planned and follows what is sent, writing each change
    /// (auditing each send and each end), then activates what needs a
    /// reset to. `true` once none is left to wait for.
    fn advance_updates(
        &self,
        store: &Store,
        secrets: &SecretBox,
        n: &Node,
        updates: &mut [FirmwareUpdate],
    ) -> Result<bool, StepError> {
        let activating = |u: &FirmwareUpdate| {
            u.state == FirmwareUpdateState::Completed
                && u.activation.as_ref().is_some_and(|a| !a.state.is_done())
        };
        if updates.iter().all(|u| u.state.is_done() && !activating(u)) {
            return Ok(true);
        }
        let (bmc, system) = self.bmc_system(store, secrets, n)?;
        if updates.iter().all(|u| u.state.is_done()) {
            return self.activate(store, n, &bmc, updates);
        }
        let mut read_back: Option<Vec<Firmware>> = None;
        for i in 0..updates.len() {
            // (A send changes the whole bundle the update is in.)
            let before_all = updates.to_vec();
            let before = updates[i].clone();
            match before.state {
                FirmwareUpdateState::Planned => {
                    // One at a time: the next once the one before ended.
                    let running = updates.iter().any(|u| u.state == FirmwareUpdateState::Sent);
                    if !running {
                        self.send_update(store, n, &bmc, updates, i)?
                    }
                }
                FirmwareUpdateState::Sent => match before.task.clone() {
                    Some(task) => self.follow(&bmc, &system, &mut updates[i], &task),
                    None => self.unanswered(store, n, &bmc, updates, i, &mut read_back)?,
                },
                FirmwareUpdateState::Completed | FirmwareUpdateState::Failed => {}
            }
            let mut ended = Vec::new();
            for (u, was) in updates.iter_mut().zip(&before_all) {
                // A failed update has nothing to activate.
                if u.state == FirmwareUpdateState::Failed {
                    u.activation = None;
                }
                let outcome = match u.state {
                    FirmwareUpdateState::Completed => "success",
                    FirmwareUpdateState::Failed => "failure",
                    FirmwareUpdateState::Planned | FirmwareUpdateState::Sent => continue,
                };
                if u.state != was.state {
                    log_outcome(n, u);
                    self.firmware_update_ended(&u.component, outcome == "success");
                    ended.push(("node_firmware_update", outcome));
                }
            }
            if updates != before_all.as_slice() {
                self.write_updates(store, n, updates, &ended)?;
            }
        }
        if updates.iter().all(|u| u.state.is_done()) {
            return self.activate(store, n, &bmc, updates);
        }
        Ok(false)
    }

    /// Update `i`, sent with no answer heard: its task found among those
    /// the BMC started since (followed from the next pass), or done
    /// already (its version reads the baseline's), or sent again, or
    /// failed after the last send. A BMC that does not answer the reads
    /// (restarting, say) is waited for, up to the timeout. The firmware
    /// read is shared by the pass.
    fn unanswered(
        &self,
        store: &Store,
        n: &Node,
        bmc: &Bmc,
        updates: &mut [FirmwareUpdate],
        i: usize,
        read_back: &mut Option<Vec<Firmware>>,
    ) -> Result<(), StepError> {
        match self.find_task(bmc, &updates[i]) {
            Ok(Some(task)) => {
                let u = &mut updates[i];
                u.detail = format!("the BMC's answer not heard; its task {task} found");
                u.task = Some(task);
                return Ok(());
            }
            Ok(None) => {}
            Err(e) if e.is_transient() => {
                self.time_out(&mut updates[i]);
                return Ok(());
            }
            Err(e) => return Err(e.into()),
        }
        let now = match read_back {
            Some(f) => f,
            None => match bmc.firmware() {
                Ok(f) => read_back.insert(f),
                Err(e) if e.is_transient() => {
                    self.time_out(&mut updates[i]);
                    return Ok(());
                }
                Err(e) => return Err(e.into()),
            },
        };
        let u = &mut updates[i];
        let reads = version_of(now, &u.component);
        if reads == u.to {
            u.state = FirmwareUpdateState::Completed;
            u.detail =
                format!("reads {reads}: sent {} time(s), the BMC's answer not heard", u.sends);
            // In effect already: nothing to activate.
            u.activation = None;
        } else if since(u.sent_at.as_deref()) < self.firmware_resend_after {
            // Not yet: the BMC may still be flashing it.
            self.time_out(u);
        } else if u.sends >= MAX_SENDS {
            let last = if u.detail.is_empty() { "none".to_string() } else { u.detail.clone() };
            u.state = FirmwareUpdateState::Failed;
            u.detail = format!(
                "sent {} times with no answer heard (last: {last}); reads {reads:?}",
                u.sends
            );
        } else {
            self.send_update(store, n, bmc, updates, i)?;
        }
        Ok(())
    }

    /// The task update `u` started, among those its BMC lists now and did
    /// not before it was sent: the newest whose request (`Payload`) was
    /// this update, or, where the BMC keeps no request, the only new one.
    /// `None` where it cannot be told (no list before, no such task).
    fn find_task(&self, bmc: &Bmc, u: &FirmwareUpdate) -> Result<Option<String>, RedfishError> {
        let Some(before) = &u.tasks_before else { return Ok(None) };
        let new: Vec<String> = bmc.tasks()?.into_iter().filter(|t| !before.contains(t)).collect();
        let mut unknown = Vec::new();
        for path in new.iter().rev() {
            let task = match bmc.task(path) {
                Ok(t) => t,
                Err(RedfishError::Status { status: 404 | 410, .. }) => continue,
                Err(e) => return Err(e),
            };
            let ours = if u.push { task.uploads() } else { task.updates(&u.image, &[&u.target]) };
            match ours {
                Some(true) => return Ok(Some(path.clone())),
                Some(false) => {}
                None => unknown.push(path.clone()),
            }
        }
        Ok(match unknown.as_slice() {
            [only] if new.len() == 1 => Some(only.clone()),
            _ => None,
        })
    }

    /// At a clean node's inspection, before its inventory is read: the
    /// updates its last inspection planned (the node's firmware off the
    /// provider's baseline, which has images for it) are sent and followed;
    /// once none is left to wait for, the host is reset to apply those that
    /// completed (on if it was off), and the versions are read until they
    /// are the baseline's or `firmware_update_timeout` passes; then the
    /// node is powered off again and inspected (whose admission checks the
    /// versions, as ever). `true` when the inspection may go on.
    pub(super) fn onboarding_updates(
        &self,
        store: &Store,
        secrets: &SecretBox,
        n: &Node,
    ) -> Result<bool, StepError> {
        let known = store.read(|r| nodes::firmware_updates(r, &n.id)).map_err(StepError::Store)?;
        let Some(mut updates) = known else { return Ok(true) };
        if !self.advance_updates(store, secrets, n, &mut updates)? {
            return Ok(false);
        }
        let completed = |u: &&mut FirmwareUpdate| u.state == FirmwareUpdateState::Completed;
        let Some(applied) = updates.iter_mut().find(completed).map(|u| u.applied_at.clone()) else {
            return Ok(true);
        };
        let (bmc, system) = self.bmc_system(store, secrets, n)?;
        match applied {
            None => {
                // Applied by a reset (the BMC's own firmware is at once).
                let on = bmc.power_state(&system).map_err(StepError::from)?.is_on();
                // Reset first, then written: a pass that dies between resets
                // the clean node again (harmless); the other order could
                // leave it waiting for versions no reset will bring.
                let reset = if on { ResetType::ForceRestart } else { ResetType::On };
                bmc.reset(&system, reset).map_err(StepError::from)?;
                let at = to_rfc3339(now_micros());
                for u in updates.iter_mut().filter(completed) {
                    u.applied_at = Some(at.clone());
                }
                self.write_updates(store, n, &updates, &[])?;
                tracing::info!(node = %n.name, reset = reset.as_str(), "host reset to apply its firmware updates");
                Ok(false)
            }
            Some(at) => {
                let waited = since(Some(&at));
                let within = waited <= self.firmware_update_timeout;
                let now = match bmc.firmware() {
                    Ok(f) => f,
                    // A BMC restarting to apply its own firmware: waited for.
                    Err(e) if e.is_transient() && within => return Ok(false),
                    Err(e) => return Err(e.into()),
                };
                let all = updates
                    .iter_mut()
                    .filter(completed)
                    .all(|u| version_of(&now, &u.component) == u.to);
                if !all && within {
                    return Ok(false);
                }
                // Off again, as the pool's nodes wait (the reset was ours).
                if bmc.power_state(&system).map_err(StepError::from)?.is_on() {
                    bmc.reset(&system, ResetType::ForceOff).map_err(StepError::from)?;
                }
                Ok(true)
            }
        }
    }

    /// At a clean node's inspection that has not tried yet, its firmware
    /// off the provider's baseline: plans updates for the components the
    /// baseline has images for (`false`: none, the node is refused as
    /// before).
    pub(super) fn plan_onboarding(
        &self,
        store: &Store,
        n: &Node,
        policy: &FirmwareBaseline,
        now: &[Firmware],
    ) -> Result<bool, StepError> {
        let plan = plan_from(policy, now);
        if plan.is_empty() {
            return Ok(false);
        }
        write_plan(store, n, &plan, "before the node joins the pool")?;
        Ok(true)
    }

    /// Sends update `i`, with every update of its bundle (the others in
    /// the same state from the same image: one image that updates several
    /// components, as an HGX package does, is sent once for all their
    /// targets): written as sent (and audited as requested) first, with the
    /// BMC's tasks before it (unknown where it does not list them: a lost
    /// answer is then read back). A first send takes one of the
    /// `firmware_updates_in_flight` slots in that write (a rollout does
    /// not have every BMC of the fleet fetch its image at once); with none
    /// free it is not sent, and its detail says it waits. A send again
    /// holds its slot already.
    fn send_update(
        &self,
        store: &Store,
        n: &Node,
        bmc: &Bmc,
        updates: &mut [FirmwareUpdate],
        i: usize,
    ) -> Result<(), StepError> {
        let again = updates[i].state == FirmwareUpdateState::Sent;
        let bundle: Vec<usize> = (0..updates.len())
            .filter(|&j| {
                let (u, v) = (&updates[j], &updates[i]);
                u.image == v.image && u.push == v.push && u.state == v.state && u.task == v.task
            })
            .collect();
        let tasks_before = bmc.tasks().ok().map(|mut t| {
            // The newest (a BMC lists them oldest first): one that keeps
            // hundreds does not make a large record. An older one left out
            // and taken for new is told apart by its request, or leaves
            // more than one new: read back.
            t.drain(..t.len().saturating_sub(MAX_TASKS_KEPT));
            t
        });
        let mut marked = updates.to_vec();
        let at = to_rfc3339(now_micros());
        for &j in &bundle {
            let u = &mut marked[j];
            u.tasks_before = tasks_before.clone();
            u.state = FirmwareUpdateState::Sent;
            u.sends += 1;
            u.sent_at = Some(at.clone());
            u.task = None;
            u.percent = None;
        }
        let limit = self.firmware_updates_in_flight as i64;
        let requested: Vec<(&str, &str)> =
            bundle.iter().map(|_| ("node_firmware_update", "requested")).collect();
        // Sent by this pass only if no other replica sent it since this one
        // read it (each entry of the bundle as read: its state and sends).
        let read: Vec<(usize, FirmwareUpdateState, u32)> =
            bundle.iter().map(|&j| (j, updates[j].state, updates[j].sends)).collect();
        let unchanged = |now: &[FirmwareUpdate]| {
            read.iter().all(|&(j, state, sends)| {
                now.get(j).is_some_and(|u| u.state == state && u.sends == sends)
            })
        };
        let written = store
            .write(|w| {
                if !again {
                    if let Err(busy) = nodes::claim_firmware_slot(w, &n.id, limit)? {
                        return Ok(Err(Some(busy)));
                    }
                }
                if !updates_audited_if(w, n, unchanged, &marked, &requested)? {
                    return Ok(Err(None));
                }
                Ok(Ok(()))
            })
            .map_err(StepError::Store)?;
        if let Err(None) = written {
            // Another replica's pass sent it: it is followed from the store.
            return Err(StepError::Store(neocloud_common::Error::conflict(
                "a firmware update was sent by another replica meanwhile",
            )));
        }
        if let Err(Some(busy)) = written {
            for &j in &bundle {
                updates[j].detail = format!(
                    "waiting: {busy} nodes have updates in flight (firmware_updates_in_flight = {limit})"
                );
            }
            return Ok(());
        }
        updates.clone_from_slice(&marked);
        let targets: Vec<&str> = bundle.iter().map(|&j| marked[j].target.as_str()).collect();
        let (image, push) = (marked[i].image.clone(), marked[i].push);
        // `Err(None)`: the control plane could not fetch a pushed image.
        let mut unfetched = String::new();
        let sent: Result<Option<String>, Option<RedfishError>> = if push {
            match self.fetch_image(&image) {
                Ok((body, len, name)) => bmc
                    .push_update(body, len, &name, &targets, self.firmware_update_timeout)
                    .map_err(Some),
                Err(why) => {
                    unfetched = why;
                    Err(None)
                }
            }
        } else {
            bmc.simple_update(&image, &targets).map_err(Some)
        };
        for &j in &bundle {
            let u = &mut updates[j];
            match &sent {
                Ok(Some(task)) => {
                    u.detail = format!("task {task}");
                    u.task = Some(task.clone());
                }
                // Taken with no task to follow: the end of sanitization
                // reads the version.
                Ok(None) => {
                    u.state = FirmwareUpdateState::Completed;
                    u.detail = "taken; the BMC named no task to follow".into();
                }
                // No answer: the next pass traces its task or reads the
                // version back.
                Err(Some(e)) if e.is_transient() => u.detail = e.to_string(),
                Err(Some(e)) => {
                    u.state = FirmwareUpdateState::Failed;
                    u.detail = format!("refused: {e}");
                }
                Err(None) => {
                    u.state = FirmwareUpdateState::Failed;
                    u.detail = format!("the control plane could not fetch the image: {unfetched}");
                }
            }
        }
        Ok(())
    }

    /// Opens `url` for an upload to a BMC (the baseline's `push`): its
    /// body, its length (BMCs want a `Content-Length`) and a file name
    /// (the URL's last segment).
    fn fetch_image(
        &self,
        url: &str,
    ) -> Result<(Box<dyn std::io::Read + Send + Sync>, u64, String), String> {
        let agent = neocloud_common::tls::agent_builder(&self.image_tls)
            .timeout_connect(Duration::from_secs(10))
            .timeout(self.firmware_update_timeout)
            .build();
        let resp = agent.get(url).call().map_err(|e| match e {
            ureq::Error::Status(s, _) => format!("{url} answered {s}"),
            ureq::Error::Transport(t) => neocloud_common::tls::describe(&t),
        })?;
        let Some(len) = resp.header("Content-Length").and_then(|l| l.parse::<u64>().ok()) else {
            return Err(format!("{url}: no Content-Length to upload it with"));
        };
        let path = url.split(['?', '#']).next().unwrap_or(url);
        let name = path.rsplit('/').next().filter(|n| !n.is_empty()).unwrap_or("image");
        Ok((resp.into_reader(), len, name.to_string()))
    }

    /// Reads the update's task: done (with the reset it says activates the
    /// update, other than the host's `system`), failed, or still running
    /// (failed once it has run past `firmware_update_timeout`).
    fn follow(&self, bmc: &Bmc, system: &str, u: &mut FirmwareUpdate, task: &str) {
        match bmc.task(task) {
            Ok(t) => {
                let said = if t.messages.is_empty() {
                    String::new()
                } else {
                    format!(": {}", t.messages.join("; "))
                };
                u.percent = t.percent;
                match t.progress {
                    TaskProgress::Completed => {
                        u.state = FirmwareUpdateState::Completed;
                        u.detail = format!("task {task} completed{said}");
                        let asked =
                            super::activation::activation_of(&t.resets, system, &mut u.detail);
                        match (&u.activation, asked) {
                            (None, asked) => u.activation = asked,
                            (Some(a), Some(b))
                                if (&a.action, &a.reset_type) != (&b.action, &b.reset_type) =>
                            {
                                u.detail.push_str(&format!(
                                    "; the BMC asked for {} {}, the baseline's activation is sent",
                                    b.action, b.reset_type
                                ))
                            }
                            (Some(_), _) => {}
                        }
                    }
                    TaskProgress::Failed => {
                        u.state = FirmwareUpdateState::Failed;
                        u.detail = format!("task {task} ended {}{said}", t.state);
                    }
                    TaskProgress::Running => {
                        u.detail = format!("task {task} {}{said}", t.state);
                        self.time_out(u);
                    }
                }
            }
            // A BMC that restarted (as it does to apply its own firmware)
            // may forget its tasks: nothing left to wait for; the end of
            // sanitization reads the version.
            Err(RedfishError::Status { status: 404 | 410, .. }) => {
                u.state = FirmwareUpdateState::Completed;
                u.detail = format!("the BMC no longer has task {task} (restarted?)");
            }
            // Unreachable meanwhile (restarting): waits, up to the timeout.
            Err(e) => {
                u.detail = format!("task {task} unread: {e}");
                self.time_out(u);
            }
        }
    }

    fn time_out(&self, u: &mut FirmwareUpdate) {
        let ran = since(u.sent_at.as_deref());
        if ran > self.firmware_update_timeout {
            u.state = FirmwareUpdateState::Failed;
            u.detail = format!("timed out after {}s ({})", ran.as_secs(), u.detail);
        }
    }

    /// [`Self::write_updates`] only where `still` holds for the updates
    /// stored now (the node's row locked): `false`, nothing written,
    /// where another replica changed them since.
    pub(super) fn write_updates_if(
        &self,
        store: &Store,
        n: &Node,
        still: impl Fn(&[FirmwareUpdate]) -> bool,
        updates: &[FirmwareUpdate],
        audits: &[(&str, &str)],
    ) -> Result<bool, StepError> {
        store.write(|w| updates_audited_if(w, n, &still, updates, audits)).map_err(StepError::Store)
    }

    /// Writes the node's updates, audited once per `(action, outcome)`.
    pub(super) fn write_updates(
        &self,
        store: &Store,
        n: &Node,
        updates: &[FirmwareUpdate],
        audits: &[(&str, &str)],
    ) -> Result<(), StepError> {
        store
            .write(|w| {
                nodes::set_firmware_updates(w, &n.id, Some(updates))?;
                for (action, outcome) in audits {
                    audit_node(w, n, action, outcome)?;
                }
                Ok(())
            })
            .map_err(StepError::Store)
    }
}

/// In `w`: the node's updates written and audited once per `(action,
/// outcome)` where `still` holds for those stored now (its row locked);
/// `false`, nothing written, where they changed since they were read.
fn updates_audited_if(
    w: &mut dyn neocloud_store::Writer,
    n: &Node,
    still: impl Fn(&[FirmwareUpdate]) -> bool,
    updates: &[FirmwareUpdate],
    audits: &[(&str, &str)],
) -> neocloud_common::Result<bool> {
    if !nodes::set_firmware_updates_if(w, &n.id, still, updates)? {
        return Ok(false);
    }
    for (action, outcome) in audits {
        audit_node(w, n, action, outcome)?;
    }
    Ok(true)
}

/// Time passed since `at` (RFC 3339; since the epoch where there is none
/// or it does not read: long past any timeout).
pub(super) fn since(at: Option<&str>) -> Duration {
    let at = at.and_then(|t| from_rfc3339(t).ok()).unwrap_or(0);
    Duration::from_micros(now_micros().saturating_sub(at).max(0) as u64)
}

pub(super) fn version_of(now: &[Firmware], component: &str) -> String {
    now.iter().find(|f| f.id == component).map(|f| f.version.clone()).unwrap_or_default()
}

/// How the updates went, for a refusal's reason.
pub(super) fn summary(updates: &[FirmwareUpdate]) -> String {
    let each: Vec<String> = updates
        .iter()
        .map(|u| {
            format!(
                "{} {} ({}){}",
                u.component,
                u.state.as_str(),
                u.detail,
                super::activation::activation_said(u)
            )
        })
        .collect();
    each.join("; ")
}

fn log_outcome(n: &Node, u: &FirmwareUpdate) {
    match u.state {
        FirmwareUpdateState::Failed => {
            tracing::warn!(node = %n.name, component = %u.component, detail = %u.detail, "firmware update failed")
        }
        FirmwareUpdateState::Completed
        | FirmwareUpdateState::Planned
        | FirmwareUpdateState::Sent => {
            tracing::info!(node = %n.name, component = %u.component, detail = %u.detail, "firmware update done")
        }
    }
}
