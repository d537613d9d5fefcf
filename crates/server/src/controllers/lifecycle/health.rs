//! The health watch: the pool's idle nodes' health, as their BMCs say it,
//! read every `bmc_health_poll_secs` (one read of the host system each), so
//! that a node that fails while it waits is taken out before a tenant is
//! placed on it. It only records intent: a node its BMC reports
//! `Critical` is asked for an inspection (audited, `node_health_critical`),
//! and the lifecycle's inspection refuses it, naming the part. (A tenant
//! placed on it in between is refused by the provisioning's own look.)

use super::{audit_node, LifecycleController, StepError};
use crate::secrets::SecretBox;
use neocloud_common::{Error, Result};
use neocloud_placement::Availability;
use neocloud_store::{instances, nodes, Store};
use neocloud_types::{Node, NodeLifecycle};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

/// Health reads at once (each waits on its BMC).
const READS_AT_ONCE: usize = 8;

/// What one pass of the health watch did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct HealthPass {
    /// Nodes whose health was read.
    pub read: usize,
    /// Nodes whose BMC did not answer (read again next time).
    pub unread: usize,
    /// Nodes the BMC reports `Critical`, sent to inspection.
    pub critical: Vec<String>,
}

impl LifecycleController {
    /// One pass: every idle, clean, schedulable node of the pool with a BMC
    /// whose read is due (`health_poll` after it was first seen here, then
    /// after each read). Nothing when `health_poll` is zero.
    pub fn watch_health(
        &self,
        store: &Store,
        secrets: &SecretBox,
        cancelled: &(dyn Fn() -> bool + Sync),
    ) -> Result<HealthPass> {
        if self.health_poll.is_zero() {
            return Ok(HealthPass::default());
        }
        let idle = store.read(|r| {
            let held = instances::nodes_with_live_instances(r)?;
            Ok(nodes::list(r)?
                .into_iter()
                .filter(|n| {
                    matches!(n.lifecycle, NodeLifecycle::Available)
                        && n.availability == Availability::Schedulable
                        && n.bmc_endpoint.is_some()
                        && !held.contains(&n.id)
                })
                .collect::<Vec<_>>())
        })?;
        let now = Instant::now();
        let due: Vec<Node> = {
            let mut next = self.health_due.lock().unwrap_or_else(|p| p.into_inner());
            next.retain(|id, _| idle.iter().any(|n| &n.id == id));
            idle.into_iter()
                .filter(|n| *next.entry(n.id.clone()).or_insert(now + self.health_poll) <= now)
                .collect()
        };
        let at = AtomicUsize::new(0);
        let results: Vec<(String, Option<bool>)> = std::thread::scope(|scope| {
            let workers: Vec<_> = (0..READS_AT_ONCE.min(due.len()))
                .map(|_| {
                    scope.spawn(|| {
                        let mut out = Vec::new();
                        loop {
                            let i = at.fetch_add(1, Ordering::Relaxed);
                            let Some(n) = due.get(i) else { break };
                            if cancelled() {
                                break;
                            }
                            out.push((n.id.clone(), self.critical(store, secrets, n)));
                        }
                        out
                    })
                })
                .collect();
            workers.into_iter().flat_map(|w| w.join().unwrap_or_default()).collect()
        });
        let mut pass = HealthPass::default();
        let mut next = self.health_due.lock().unwrap_or_else(|p| p.into_inner());
        for (id, critical) in results {
            next.insert(id.clone(), Instant::now() + self.health_poll);
            match critical {
                None => pass.unread += 1,
                Some(false) => pass.read += 1,
                Some(true) => {
                    pass.read += 1;
                    pass.critical.push(id);
                }
            }
        }
        drop(next);
        for id in &pass.critical {
            self.nudge(id);
        }
        Ok(pass)
    }

    /// Reads node `n`'s health; a `Critical` one is asked for an
    /// inspection, where it is still idle. `None`: no answer.
    fn critical(&self, store: &Store, secrets: &SecretBox, n: &Node) -> Option<bool> {
        let read = self
            .bmc_system(store, secrets, n)
            .and_then(|(bmc, system)| bmc.system(&system).map_err(StepError::from));
        let info = match read {
            Ok(info) => info,
            Err(e) => {
                let why = match e {
                    StepError::Retry(e) => e.to_string(),
                    StepError::Fail(why) => why,
                    StepError::Store(e) => e.to_string(),
                };
                tracing::debug!(node = %n.name, error = %why, "health watch: no answer");
                return None;
            }
        };
        if info.health_rollup.as_deref() != Some("Critical") {
            return Some(false);
        }
        let asked = store.write(|w| {
            // Still idle: a tenant placed since is the provisioning's to refuse.
            let now = nodes::get(w, &n.id)?;
            if !matches!(now.lifecycle, NodeLifecycle::Available)
                || instances::live_on_node(w, &n.id)?.is_some()
            {
                return Ok(false);
            }
            nodes::request_inspection(w, &n.id, None)?;
            audit_node(w, n, "node_health_critical", "success")?;
            Ok(true)
        });
        match asked {
            Ok(true) => {
                tracing::warn!(node = %n.name, "the BMC reports the node's hardware Critical: inspecting it again");
                Some(true)
            }
            Ok(false) => Some(false),
            Err(e @ Error::Conflict { .. }) => {
                tracing::warn!(node = %n.name, error = %e, "the BMC reports the node's hardware Critical; not inspected");
                Some(true)
            }
            Err(e) => {
                tracing::warn!(node = %n.name, error = %e, "health watch: not recorded");
                None
            }
        }
    }
}
