//! The node lifecycle controller: the only code that changes a node's
//! lifecycle state. Each state has one handler; API handlers only record
//! intent (an enrollment creates a node in `enrolling`).
//!
//! enrolling --(BMC reached, host system discovered)--> inspecting
//! inspecting --(Redfish inventory read and recorded)--> available
//! either --(a permanent error, or transient errors past the retry budget)--> failed
//!
//! Every transition is audited (provider chain) and bumps the placement
//! generation, so every replica's engine sees the node's new schedulability.

use crate::secrets::SecretBox;
use neocloud_common::{time::now_micros, Error, Result};
use neocloud_redfish::{Bmc, BmcConfig, Inventory, RedfishError};
use neocloud_store::{allocations, audit, nodes, Store};
use neocloud_types::{Node, NodeLifecycle};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

/// Transient failures tolerated per state before the node is failed.
pub const RETRY_BUDGET: u32 = 3;

/// How long each state may take before an operator should look (the SLA
/// reported in metrics and on the node).
pub fn sla(state: &NodeLifecycle) -> Option<Duration> {
    match state {
        NodeLifecycle::Enrolling => Some(Duration::from_secs(120)),
        NodeLifecycle::Inspecting => Some(Duration::from_secs(600)),
        NodeLifecycle::Available | NodeLifecycle::Failed { .. } => None,
    }
}

#[derive(Default)]
pub struct LifecycleController {
    /// Transient failures so far, per node and state.
    attempts: Mutex<HashMap<(String, &'static str), u32>>,
    /// Nodes with a step running: never stepped twice at once, and a slow
    /// step never holds up the next pass.
    in_flight: Mutex<std::collections::HashSet<String>>,
    /// BMC timeout per request (short in tests).
    pub bmc_timeout: Option<Duration>,
}

/// Nodes per state and nodes past their state's SLA, for metrics.
/// Counts per lifecycle state name.
pub type StateCounts = Vec<(String, i64)>;

pub fn census(store: &Store) -> Result<(StateCounts, StateCounts)> {
    store.read(|r| {
        let counts = nodes::lifecycle_counts(r)?;
        let mut over = Vec::new();
        for state in [NodeLifecycle::Enrolling, NodeLifecycle::Inspecting] {
            if let Some(sla) = sla(&state) {
                let before = now_micros() - sla.as_micros() as i64;
                over.push((
                    state.name().to_string(),
                    nodes::count_in_state_since(r, &state, before)?,
                ));
            }
        }
        Ok((counts, over))
    })
}

/// Nodes stepped at once by one pass.
pub const PARALLEL_STEPS: usize = 32;

/// What stepping one node did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Moved,
    Nothing,
    Retrying,
    Failed,
    Skipped,
}

impl Outcome {
    fn add_to(self, p: &mut Pass) {
        match self {
            Outcome::Moved => p.moved += 1,
            Outcome::Nothing => {}
            Outcome::Retrying => p.retrying += 1,
            Outcome::Failed => p.failed += 1,
            Outcome::Skipped => p.skipped += 1,
        }
    }
}

/// What one pass did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Pass {
    pub moved: usize,
    pub failed: usize,
    pub retrying: usize,
    /// Steps this replica could not take (store unavailable, wrong key).
    pub skipped: usize,
}

/// The GPU model key for a Redfish processor model string.
pub fn gpu_model_key(model: &str) -> String {
    let m = model.to_ascii_uppercase();
    let known = [
        ("H100", "80GB", "h100-80gb"),
        ("H200", "", "h200-141gb"),
        ("B200", "", "b200-180gb"),
        ("A100", "80GB", "a100-80gb"),
        ("A100", "40GB", "a100-40gb"),
    ];
    for (chip, mem, key) in known {
        if m.contains(chip) && (mem.is_empty() || m.contains(mem)) {
            return key.to_string();
        }
    }
    let slug: String = model
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    slug.split('-').filter(|s| !s.is_empty() && *s != "nvidia").collect::<Vec<_>>().join("-")
}

impl LifecycleController {
    pub fn new(bmc_timeout: Option<Duration>) -> LifecycleController {
        LifecycleController {
            attempts: Mutex::new(HashMap::new()),
            in_flight: Mutex::default(),
            bmc_timeout,
        }
    }

    /// Runs every node with work one step forward.
    /// Nodes with work and no step running, claimed for stepping (at most
    /// [`PARALLEL_STEPS`] in flight). Each must then go to [`Self::step_node`].
    pub fn claim_work(&self, store: &Store) -> Result<Vec<Node>> {
        let work = store.read(nodes::list_in_progress)?;
        let mut busy = self.in_flight.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = Vec::new();
        for n in work {
            if busy.len() >= PARALLEL_STEPS {
                break;
            }
            if busy.insert(n.id.clone()) {
                out.push(n);
            }
        }
        Ok(out)
    }

    /// Steps one claimed node and releases the claim.
    pub fn step_node(&self, store: &Store, secrets: &SecretBox, n: &Node) -> Result<Outcome> {
        let res = self.step_and_account(store, secrets, n);
        self.in_flight.lock().unwrap_or_else(|p| p.into_inner()).remove(&n.id);
        res
    }

    /// One synchronous pass: claims the work and steps it in parallel,
    /// waiting for every step. (The server's loop instead starts steps and
    /// goes on, see `server.rs`.)
    pub fn run_once(&self, store: &Store, secrets: &SecretBox) -> Result<Pass> {
        let work = self.claim_work(store)?;
        let next = std::sync::atomic::AtomicUsize::new(0);
        let pass = Mutex::new(Pass::default());
        let first_error: Mutex<Option<Error>> = Mutex::new(None);
        let workers = work.len().clamp(1, PARALLEL_STEPS);
        std::thread::scope(|scope| {
            for _ in 0..workers {
                scope.spawn(|| loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    let Some(n) = work.get(i) else { return };
                    match self.step_node(store, secrets, n) {
                        Ok(outcome) => {
                            outcome.add_to(&mut pass.lock().unwrap_or_else(|p| p.into_inner()))
                        }
                        Err(e) => {
                            first_error.lock().unwrap_or_else(|p| p.into_inner()).get_or_insert(e);
                        }
                    }
                });
            }
        });
        if let Some(e) = first_error.into_inner().unwrap_or_else(|p| p.into_inner()) {
            return Err(e);
        }
        Ok(pass.into_inner().unwrap_or_else(|p| p.into_inner()))
    }

    fn step_and_account(&self, store: &Store, secrets: &SecretBox, n: &Node) -> Result<Outcome> {
        Ok(match self.step(store, secrets, n) {
            Ok(true) => Outcome::Moved,
            Ok(false) => Outcome::Nothing,
            Err(StepError::Retry(e)) => {
                let key = (n.id.clone(), n.lifecycle.name());
                let tries = {
                    let mut a = self.attempts.lock().unwrap_or_else(|p| p.into_inner());
                    let t = a.entry(key).or_default();
                    *t += 1;
                    *t
                };
                if tries > RETRY_BUDGET {
                    self.fail(store, n, &format!("{e} (after {RETRY_BUDGET} retries)"))?;
                    Outcome::Failed
                } else {
                    tracing::info!(node = %n.name, state = n.lifecycle.name(), error = %e, tries, "lifecycle step will be retried");
                    Outcome::Retrying
                }
            }
            Err(StepError::Fail(reason)) => {
                self.fail(store, n, &reason)?;
                Outcome::Failed
            }
            Err(StepError::Store(e)) => {
                tracing::error!(node = %n.name, error = %e, "lifecycle step skipped");
                Outcome::Skipped
            }
        })
    }

    fn bmc(
        &self,
        store: &Store,
        secrets: &SecretBox,
        n: &Node,
    ) -> Result<(Bmc, Option<String>), StepError> {
        let rec = store
            .read(|r| nodes::bmc(r, &n.id))
            .map_err(StepError::Store)?
            .ok_or_else(|| StepError::Fail("no BMC recorded for this node".into()))?;
        // A key that does not open the secret is this replica's problem, not
        // the node's: skip it (another replica, or a fixed key, moves it).
        let password = secrets.open(&rec.password_sealed).map_err(|e| {
            StepError::Store(Error::Unavailable {
                internal: format!("node {}: BMC password: {e}", n.name),
            })
        })?;
        let mut cfg = BmcConfig::new(&rec.endpoint, &rec.username, &password);
        if let Some(t) = self.bmc_timeout {
            cfg.timeout = t;
            cfg.retries = 1;
            cfg.backoff = Duration::from_millis(50);
        }
        Ok((Bmc::new(cfg), rec.system_path))
    }

    /// One handler per state. Returns whether the node moved.
    fn step(&self, store: &Store, secrets: &SecretBox, n: &Node) -> Result<bool, StepError> {
        match &n.lifecycle {
            NodeLifecycle::Enrolling => {
                let (bmc, _) = self.bmc(store, secrets, n)?;
                let system = bmc.host_system().map_err(StepError::from)?;
                self.advance(store, n, NodeLifecycle::Inspecting, |w| {
                    nodes::set_system_path(w, &n.id, &system)
                })
            }
            NodeLifecycle::Inspecting => {
                let (bmc, system) = self.bmc(store, secrets, n)?;
                let system = match system {
                    Some(s) => s,
                    None => bmc.host_system().map_err(StepError::from)?,
                };
                let inv = bmc.inventory(&system).map_err(StepError::from)?;
                let found = gpus_found(&inv);
                self.advance(store, n, NodeLifecycle::Available, |w| match &found {
                    Some((model, count, mem_gb)) => {
                        nodes::record_inventory(w, &n.id, model, *count, *mem_gb)
                    }
                    // A BMC that exposes no GPU inventory: the declared GPUs stand.
                    None => Ok(()),
                })
            }
            // Listed only when an inspection was requested since they
            // entered their state: start over from the BMC.
            NodeLifecycle::Available | NodeLifecycle::Failed { .. } => {
                self.advance(store, n, NodeLifecycle::Enrolling, |_| Ok(()))
            }
        }
    }

    /// Moves `n` to `to` with `also` in one transaction, audited.
    fn advance(
        &self,
        store: &Store,
        n: &Node,
        to: NodeLifecycle,
        also: impl FnOnce(&mut dyn neocloud_store::Writer) -> Result<()>,
    ) -> Result<bool, StepError> {
        let moved = store
            .write(|w| {
                if !nodes::transition(w, &n.id, &n.lifecycle, &to)? {
                    return Ok(false);
                }
                also(w)?;
                allocations::bump_placement_generation(w)?;
                record(w, n, &to, "success")?;
                Ok(true)
            })
            .map_err(StepError::Store)?;
        if moved {
            self.attempts
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .retain(|(id, _), _| id != &n.id);
            tracing::info!(node = %n.name, from = n.lifecycle.name(), to = to.name(), "node lifecycle");
        }
        Ok(moved)
    }

    fn fail(&self, store: &Store, n: &Node, reason: &str) -> Result<()> {
        let to = NodeLifecycle::Failed {
            reason: reason.to_string(),
            from: n.lifecycle.name().to_string(),
        };
        store.write(|w| {
            if nodes::transition(w, &n.id, &n.lifecycle, &to)? {
                allocations::bump_placement_generation(w)?;
                record(w, n, &to, "failed")?;
            }
            Ok(())
        })?;
        tracing::warn!(node = %n.name, from = n.lifecycle.name(), %reason, "node failed");
        self.attempts.lock().unwrap_or_else(|p| p.into_inner()).retain(|(id, _), _| id != &n.id);
        Ok(())
    }
}

fn record(
    w: &mut dyn neocloud_store::Writer,
    n: &Node,
    to: &NodeLifecycle,
    outcome: &str,
) -> Result<()> {
    audit::append(
        w,
        audit::PROVIDER_CHAIN,
        &audit::NewEvent {
            time: now_micros(),
            actor: "system".into(),
            actor_name: "lifecycle-controller".into(),
            token_id: None,
            role: None,
            tenant_id: None,
            action: format!("node_{}", to.name()),
            target: format!("/v1/nodes/{}", n.id),
            outcome: outcome.into(),
            status: 200,
            request_id: neocloud_common::new_id(),
        },
    )
    .map(|_| ())
}

/// GPU model key, count and memory per GPU (GB) from an inventory.
fn gpus_found(inv: &Inventory) -> Option<(String, u8, u32)> {
    let first = inv.gpus.first()?;
    let model = gpu_model_key(&first.model);
    let count = inv.gpus.iter().filter(|g| gpu_model_key(&g.model) == model).count().min(16) as u8;
    let mem_gb = ((first.memory_mib as f64) / 1024.0).round() as u32;
    Some((model, count, mem_gb.max(1)))
}

enum StepError {
    Retry(RedfishError),
    Fail(String),
    Store(Error),
}

impl From<RedfishError> for StepError {
    fn from(e: RedfishError) -> StepError {
        if e.is_transient() {
            StepError::Retry(e)
        } else {
            StepError::Fail(e.to_string())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gpu_models_map_to_keys() {
        assert_eq!(gpu_model_key("NVIDIA H100 80GB HBM3"), "h100-80gb");
        assert_eq!(gpu_model_key("NVIDIA A100-SXM4-40GB"), "a100-40gb");
        assert_eq!(gpu_model_key("NVIDIA H200"), "h200-141gb");
        assert_eq!(gpu_model_key("NVIDIA L40S"), "l40s");
        assert!(sla(&NodeLifecycle::Inspecting).is_some());
        assert!(sla(&NodeLifecycle::Available).is_none());
    }
}
