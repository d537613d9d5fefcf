//! What the controller's loop steps, and when: full passes on its tick,
//! per-node nudges in between (an agent's news, an API write naming nodes),
//! waiting nodes resting between full passes, and the signals that answer
//! a sanitizer's held heartbeat once its steps are queued.

use super::LifecycleController;
use neocloud_common::Result;
use neocloud_store::{nodes, Store};
use neocloud_types::{BootStep, NodeLifecycle, SanitizeStep};
use std::sync::Arc;
use std::time::Duration;

/// How long a node waiting on its agent rests between full passes: an
/// eighth of how long it has waited in its step, from [`REST`] to
/// [`MAX_REST`]. Its agent's news comes as a nudge, which ends the rest
/// (on the replica the agent spoke to, which steps the node itself); the
/// passes only find timeouts and news whose nudge was lost (a restart), so
/// a thousand nodes booting for minutes are not read every second.
pub(super) const REST: Duration = Duration::from_secs(1);
pub(super) const MAX_REST: Duration = Duration::from_secs(8);

/// The rest of a node that has waited `waited` in its step.
pub(super) fn rest_for(waited: Duration) -> Duration {
    (waited / 8).clamp(REST, MAX_REST)
}

/// Whether the node waits on its agent (news comes as a nudge).
pub(super) fn awaits_agent(l: &NodeLifecycle) -> bool {
    match l {
        NodeLifecycle::Provisioning { step, .. } | NodeLifecycle::Releasing { step, .. } => {
            *step == BootStep::AwaitAgent
        }
        NodeLifecycle::Sanitizing { step, .. } => *step == SanitizeStep::AgentSteps,
        NodeLifecycle::Enrolling
        | NodeLifecycle::Inspecting
        | NodeLifecycle::Available
        | NodeLifecycle::Active { .. }
        | NodeLifecycle::Maintenance
        | NodeLifecycle::Failed { .. } => false,
    }
}

impl LifecycleController {
    /// Something happened for this node (its agent registered or reported a
    /// step): step it now rather than at the next tick, without stepping
    /// every other node waiting on an agent.
    pub fn nudge(&self, node_id: &str) {
        self.resting.lock().unwrap_or_else(|p| p.into_inner()).remove(node_id);
        self.nudged.lock().unwrap_or_else(|p| p.into_inner()).insert(node_id.to_string());
        self.wake.notify_one();
    }

    /// The signal an agent's held heartbeat waits on (created on first use).
    pub fn steps_signal(&self, agent_id: &str) -> Arc<tokio::sync::Notify> {
        let mut m = self.step_signals.lock().unwrap_or_else(|p| p.into_inner());
        m.entry(agent_id.to_string()).or_default().clone()
    }

    pub fn forget_steps_signal(&self, agent_id: &str) {
        self.step_signals.lock().unwrap_or_else(|p| p.into_inner()).remove(agent_id);
    }

    /// Steps were queued for the agent: its held heartbeat answers now.
    pub(super) fn steps_queued(&self, agent_id: &str) {
        let signal = self.step_signals.lock().unwrap_or_else(|p| p.into_inner()).remove(agent_id);
        if let Some(s) = signal {
            s.notify_one();
        }
    }

    /// New intent for nodes not named (an instance created or released, a
    /// node enrolled): a full pass now rather than at the next tick.
    pub fn wake_all(&self) {
        self.full_pass.store(true, std::sync::atomic::Ordering::SeqCst);
        self.wake.notify_one();
    }

    /// The work of one pass of the loop: every node with work on a tick or
    /// after [`Self::wake_all`], else the nudged nodes. A nudged node whose
    /// step is running stays nudged and is stepped once that step ends.
    /// Node ids: each node is read once claimed (see `step_node_chained`).
    pub fn claim(&self, store: &Store, tick: bool) -> Result<Vec<String>> {
        let full = self.full_pass.swap(false, std::sync::atomic::Ordering::SeqCst) || tick;
        if full {
            let work = self.claim_work(store)?;
            // The pass covers the nudges of the nodes it claimed. Not those
            // of nodes still stepping, nor of resting ones: a step that
            // found nothing and rests its node may end after the nudge
            // that news came for it (its read was before the news).
            let claimed: std::collections::HashSet<&str> =
                work.iter().map(String::as_str).collect();
            self.nudged
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .retain(|id| !claimed.contains(id.as_str()));
            return Ok(work);
        }
        let nudged: Vec<String> =
            self.nudged.lock().unwrap_or_else(|p| p.into_inner()).drain().collect();
        // A node deleted meanwhile is not found when its step reads it.
        let mut busy = self.in_flight.lock().unwrap_or_else(|p| p.into_inner());
        let (mut out, mut later) = (Vec::new(), Vec::new());
        for id in nudged {
            if busy.len() < self.parallel_steps.max(1) && busy.insert(id.clone()) {
                out.push(id);
            } else {
                later.push(id);
            }
        }
        drop(busy);
        if !later.is_empty() {
            self.nudged.lock().unwrap_or_else(|p| p.into_inner()).extend(later);
        }
        Ok(out)
    }

    /// Releases a node's claim; wakes the loop if nudges wait (for this
    /// node, nudged while its step ran, or for a free slot).
    pub(super) fn release_claim(&self, node_id: &str) {
        self.in_flight.lock().unwrap_or_else(|p| p.into_inner()).remove(node_id);
        if !self.nudged.lock().unwrap_or_else(|p| p.into_inner()).is_empty() {
            self.wake.notify_one();
        }
    }

    /// Runs every node with work one step forward.
    /// Nodes with work and no step running, claimed for stepping (at most
    /// [`PARALLEL_STEPS`] in flight). Each must then go to [`Self::step_node`].
    pub fn claim_work(&self, store: &Store) -> Result<Vec<String>> {
        let work = store.read(nodes::ids_in_progress)?;
        let now = std::time::Instant::now();
        let mut resting = self.resting.lock().unwrap_or_else(|p| p.into_inner());
        resting.retain(|_, until| *until > now);
        let mut busy = self.in_flight.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = Vec::new();
        for id in work {
            if busy.len() >= self.parallel_steps.max(1) {
                break;
            }
            if resting.contains_key(&id) {
                continue;
            }
            if busy.insert(id.clone()) {
                out.push(id);
            }
        }
        Ok(out)
    }

    /// A node waiting on its agent (for `waited` so far) found nothing to
    /// do: full passes leave it alone for [`rest_for`] that.
    pub(super) fn rest(&self, node_id: &str, waited: Duration) {
        let mut resting = self.resting.lock().unwrap_or_else(|p| p.into_inner());
        resting.insert(node_id.to_string(), std::time::Instant::now() + rest_for(waited));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_waiting_node_rests_longer_the_longer_it_waits() {
        let s = Duration::from_secs;
        assert_eq!(rest_for(Duration::ZERO), REST);
        assert_eq!(rest_for(s(4)), REST);
        assert_eq!(rest_for(s(24)), s(3));
        assert_eq!(rest_for(s(600)), MAX_REST);
    }
}
