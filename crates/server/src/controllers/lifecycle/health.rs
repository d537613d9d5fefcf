//! The health watch: the health of the pool's idle nodes and of the
//! tenants' active ones, as their BMCs say it, read every
//! `bmc_health_poll_secs` (one read of the host system for a node its BMC
//! reports healthy; the parts and the BMC's logs for one it does not) and
//! recorded (the node's `bmc_health` and the parts named, which a tenant
//! sees on its instance; the logs only the provider, in `node hardware`). An idle
//! node that fails is taken out before a tenant is placed on it; the watch
//! only records intent: a node its BMC reports `Critical` is asked for an
//! inspection (audited, `node_health_critical`), and the lifecycle's
//! inspection refuses it, naming the part. (A tenant placed on it in
//! between is refused by the provisioning's own look.) An active node is
//! the tenant's: its health is shown, nothing is done to it.

use super::platform::item;
use super::{audit_node, LifecycleController, StepError};
use crate::secrets::SecretBox;
use neocloud_common::{Error, Result};
use neocloud_placement::Availability;
use neocloud_store::{instances, nodes, Store};
use neocloud_types::{Node, NodeLifecycle, SanitizationCheck};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

/// The audit action that tells a tenant its node's health rollup changed
/// (`None` for a value DSP0268 does not define).
fn tenant_action(rollup: &str) -> Option<&'static str> {
    match rollup {
        "OK" => Some("instance_hardware_ok"),
        "Warning" => Some("instance_hardware_warning"),
        "Critical" => Some("instance_hardware_critical"),
        _ => None,
    }
}

/// Health reads at once (each waits on its BMC).
const READS_AT_ONCE: usize = 8;

/// What one pass of the health watch did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct HealthPass {
    /// Nodes whose health was read.
    pub read: usize,
    /// Nodes whose BMC did not answer (read again next time).
    pub unread: usize,
    /// Nodes whose recorded health changed.
    pub changed: usize,
    /// Nodes the BMC reports `Critical`, sent to inspection.
    pub critical: Vec<String>,
}

impl LifecycleController {
    /// One pass: every idle, clean, schedulable node of the pool with a BMC,
    /// and every active node, whose read is due (`health_poll` after it was
    /// first seen here, then after each read). Nothing when `health_poll`
    /// is zero.
    pub fn watch_health(
        &self,
        store: &Store,
        secrets: &SecretBox,
        cancelled: &(dyn Fn() -> bool + Sync),
    ) -> Result<HealthPass> {
        if self.health_poll.is_zero() {
            return Ok(HealthPass::default());
        }
        let watched = store.read(|r| {
            let held = instances::nodes_with_live_instances(r)?;
            Ok(nodes::list(r)?
                .into_iter()
                .filter(|n| {
                    let idle = matches!(n.lifecycle, NodeLifecycle::Available)
                        && n.availability == Availability::Schedulable
                        && !held.contains(&n.id);
                    let active = matches!(n.lifecycle, NodeLifecycle::Active { .. });
                    (idle || active) && n.bmc_endpoint.is_some()
                })
                .collect::<Vec<_>>())
        })?;
        let now = Instant::now();
        let due: Vec<Node> = {
            let ids: std::collections::HashSet<&str> =
                watched.iter().map(|n| n.id.as_str()).collect();
            let mut next = self.health_due.lock().unwrap_or_else(|p| p.into_inner());
            next.retain(|id, _| ids.contains(id.as_str()));
            drop(ids);
            watched
                .into_iter()
                .filter(|n| *next.entry(n.id.clone()).or_insert(now + self.health_poll) <= now)
                .collect()
        };
        let at = AtomicUsize::new(0);
        let results: Vec<(String, Option<Read>)> = std::thread::scope(|scope| {
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
                            out.push((n.id.clone(), self.read_health(store, secrets, n)));
                        }
                        out
                    })
                })
                .collect();
            workers.into_iter().flat_map(|w| w.join().unwrap_or_default()).collect()
        });
        let mut pass = HealthPass::default();
        let mut next = self.health_due.lock().unwrap_or_else(|p| p.into_inner());
        for (id, read) in results {
            next.insert(id.clone(), Instant::now() + self.health_poll);
            let Some(read) = read else {
                pass.unread += 1;
                continue;
            };
            pass.read += 1;
            pass.changed += usize::from(read.changed);
            if read.inspect {
                pass.critical.push(id);
            }
        }
        drop(next);
        for id in &pass.critical {
            self.nudge(id);
        }
        Ok(pass)
    }

    /// Reads node `n`'s health and records it; an idle node reported
    /// `Critical` is asked for an inspection, where it is still idle.
    /// `None`: no answer (or nothing recorded).
    fn read_health(&self, store: &Store, secrets: &SecretBox, n: &Node) -> Option<Read> {
        let read = self
            .bmc_system(store, secrets, n)
            .and_then(|(bmc, system)| bmc.health(&system).map_err(StepError::from));
        let health = match read {
            Ok(h) => h,
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
        let rollup = health.rollup.as_deref();
        let critical = health.critical();
        let faults = super::inspect::fault_names(&health);
        let done = store.write(|w| {
            // As read before the health write, which changes nothing else.
            let node = nodes::get(w, &n.id)?;
            let changed = nodes::set_bmc_health(w, &n.id, rollup, &faults)?;
            // The provider's view of the node's health (`node hardware`):
            // its parts and log where the BMC reports it unhealthy, and
            // cleared once it says OK again.
            if changed || health.unhealthy() {
                nodes::refresh_inventory_health(w, &n.id, &super::inspect::health(&health))?;
            }
            // An active node's tenant is told in its own audit trail when
            // what the BMC says of its node changes.
            let news = rollup.is_some()
                && (node.hardware_health.as_deref() != rollup || node.hardware_faults != faults);
            if let (true, NodeLifecycle::Active { instance_id, .. }, Some(action)) =
                (news, &node.lifecycle, rollup.and_then(tenant_action))
            {
                let i = instances::by_id(w, instance_id)?;
                super::audit_instance(w, &i, action, "success")?;
            }
            // Still idle: a tenant placed since is the provisioning's to
            // refuse; an active node is its tenant's.
            let idle = matches!(node.lifecycle, NodeLifecycle::Available)
                && instances::live_on_node(w, &n.id)?.is_none();
            if !(critical && idle) {
                return Ok(Read { changed, inspect: false });
            }
            nodes::request_inspection(w, &n.id, None)?;
            audit_node(w, n, "node_health_critical", "success")?;
            Ok(Read { changed, inspect: true })
        });
        match done {
            Ok(r) => {
                if r.inspect {
                    tracing::warn!(node = %n.name, "the BMC reports the node's hardware Critical: inspecting it again");
                } else if critical && r.changed {
                    tracing::warn!(node = %n.name, "the BMC reports a tenant's node's hardware Critical");
                }
                Some(r)
            }
            Err(e @ Error::Conflict { .. }) => {
                tracing::warn!(node = %n.name, error = %e, "the BMC reports the node's hardware Critical; not inspected");
                Some(Read { changed: false, inspect: false })
            }
            Err(e) => {
                tracing::warn!(node = %n.name, error = %e, "health watch: not recorded");
                None
            }
        }
    }
}

/// What reading one node's health did.
struct Read {
    /// Its recorded health changed.
    changed: bool,
    /// It was asked for an inspection.
    inspect: bool,
}

/// The BMC must not report the node, or a component of it, `Critical`
/// (`Warning` is recorded and passes).
pub(super) fn health_check(system: &str, h: &neocloud_redfish::Health) -> SanitizationCheck {
    let mut items = vec![item(
        system,
        "redfish-status",
        !h.rollup.as_deref().is_some_and(neocloud_redfish::is_critical),
        &format!("health rollup {}", h.rollup.as_deref().unwrap_or("not reported")),
    )];
    items.extend(h.faults.iter().map(|f| {
        item(
            &f.path,
            "redfish-status",
            !neocloud_redfish::is_critical(&f.health),
            &format!("{} {}", f.name, f.health),
        )
    }));
    SanitizationCheck { name: "hardware_health".into(), ok: !h.critical(), items }
}
