//! The node lifecycle controller: the only code that changes a node's
//! lifecycle state (and its instance's). Each state has one handler; API
//! handlers only record intent (an enrollment, an instance to provision,
//! a release, maintenance, inspect again).
//!
//! enrolling --(BMC reached, host system discovered)--> inspecting
//! inspecting --(Redfish inventory recorded)--> available (releasing if dirty)
//! available --(an instance placed on it)--> provisioning
//! provisioning: set_boot -> power_cycle -> await_agent --> active
//! active --(the tenant released the instance)--> releasing
//! releasing: set_boot -> power_cycle -> await_agent (the sanitizer) --> sanitizing
//! sanitizing: agent_steps -> finish --(complete signed record)--> available
//! available <--> maintenance (the provider's `availability`)
//! any --(a permanent error, transient errors past the retry budget, an SLA
//!        passed while waiting for an agent)--> failed
//!
//! **A node that has held a tenant's instance is dirty until a complete
//! sanitization; a dirty node never becomes available.** Every transition
//! is audited (the provider's chain, and the tenant's for its instance);
//! one that changes what placement sees of the node (schedulable or not,
//! GPUs) or frees an allocation bumps the placement generation. A move
//! that changed the node's availability alone, or freed its instance's
//! allocation (a sanitization's end, both), is told to this replica's
//! engine (`PlacementService::tell`), which then needs no rebuild from the
//! store; other replicas' engines reload when they next plan.

mod accounts;
mod activation;
mod bmc;
mod census;
mod firmware;
mod firmware_check;
mod firmware_plan;
mod health;
mod host_interfaces;
mod inspect;
mod journal;
mod platform;
mod power;
mod provision;
mod replace;
mod rotate;
mod sanitize;
mod schedule;
mod sel;
mod tpm;
mod writes;

pub use health::HealthPass;

pub use census::{census, sla, Census, StateCounts};

use crate::network::planners::Planners;
use crate::placement::Told;
use crate::secrets::SecretBox;
use crate::signing::Signer;
use bmc::{Sessions, StepBmc};
use neocloud_common::{time::now_micros, Error, NameOrId, Result};
use neocloud_placement::{Availability, NodeSpec};
use neocloud_redfish::{BmcConfig, RedfishError};
use neocloud_store::{allocations, instances, nodes, Store};
use neocloud_types::{InstanceState, Node, NodeLifecycle};
use sanitize::Held;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use writes::{
    audit_instance, audit_node, end_boot, free_instance, free_instance_saying, issue_token,
    new_boot, record, set_instance,
};

/// Transient failures tolerated per state before the node is failed.
pub const RETRY_BUDGET: u32 = 3;

pub struct LifecycleController {
    /// Transient failures so far, per node and state.
    attempts: Mutex<HashMap<(String, &'static str), u32>>,
    /// Nodes with a step running: never stepped twice at once, and a slow
    /// step never holds up the next pass.
    in_flight: Mutex<std::collections::HashSet<String>>,
    /// BMC timeout per request (short in tests).
    pub bmc_timeout: Option<Duration>,
    /// Signs sanitization records.
    pub signer: Arc<Signer>,
    /// How long one network boot has to bring up the image's agent.
    pub boot_timeout: Duration,
    /// Network boots tried before the node is failed.
    pub boot_attempts: u32,
    /// How long the sanitizer agent has to finish its steps.
    pub agent_timeout: Duration,
    /// How long a sanitizer's agent may go unheard before its node is
    /// booted again (counted from this controller's start at the earliest:
    /// agents cannot heartbeat while the control plane is down).
    pub agent_silence: Duration,
    /// When this controller was made (µs since the epoch).
    started_micros: i64,
    /// Nodes stepped at once.
    pub parallel_steps: usize,
    /// How long a released node's switch ports have to leave the tenant's
    /// networks before the release fails.
    pub isolation_timeout: Duration,
    /// How long the BMC's task for one firmware update may run.
    pub firmware_update_timeout: Duration,
    /// How long after a firmware update sent with no answer heard, and no
    /// task of the BMC's to trace it to, it may be sent again (a BMC
    /// flashing the first refuses a second meanwhile).
    pub firmware_resend_after: Duration,
    /// Nodes with firmware updates in flight at once, fleet-wide.
    pub firmware_updates_in_flight: usize,
    /// Wakes the fabric controller (a release removed attachments).
    pub fabric_wake: Arc<tokio::sync::Notify>,
    /// The Ethernet fabrics' kept planners (a release removes attachments).
    pub planners: Arc<Planners>,
    /// The placement engine, to place an instance on another node when its
    /// node fails before the instance was handed over (none: never).
    pub placement: Option<Arc<crate::placement::PlacementService>>,
    /// Times an instance is placed on another node
    /// (`provision_replacements`).
    pub replacements: u32,
    /// How BMC certificates are verified.
    pub bmc_tls: neocloud_common::tls::TlsOptions,
    /// How the certificates of the servers firmware images are fetched
    /// from (to push them to BMCs) are verified.
    pub image_tls: neocloud_common::tls::TlsOptions,
    /// The iPXE ISO virtual-media boots insert (`virtual_media_iso_url`).
    pub virtual_media_iso: Option<String>,
    /// The iPXE EFI binary UEFI HTTP boots fetch (`uefi_http_boot_url`).
    pub uefi_http_boot: Option<String>,
    /// Per-node ISOs (`per_node_iso`): a node with a `boot_network` boots
    /// from its own.
    pub node_isos: Option<crate::boot::iso::NodeIsos>,
    /// A new BMC password at every sanitization (`bmc_password_rotation`).
    pub rotate_bmc_password: bool,
    /// A node never sanitized is sanitized before it joins the pool
    /// (`sanitize_before_first_use`).
    pub sanitize_before_first_use: bool,
    /// What inspection and sanitization do with the BMC's host interfaces
    /// (`bmc_host_interfaces`).
    pub host_interfaces: crate::config::HostInterfacePolicy,
    /// Which BMC accounts inspection and sanitization leave enabled
    /// (`bmc_accounts`).
    pub bmc_accounts: crate::config::BmcAccountPolicy,
    /// What sanitization does with the BMC's system event log (`bmc_sel`).
    pub sel: crate::config::SelPolicy,
    /// A node's TPM identity is recorded only with a certificate from a
    /// TPM manufacturer the provider trusts (`tpm_ek_ca_pem`): a node whose
    /// BMC shows a TPM is not sanitized without one on record.
    pub tpm_ek_certified: bool,
    /// Wakes the controller's loop before its next tick (see [`Self::nudge`]
    /// and [`Self::wake_all`]).
    pub wake: Arc<tokio::sync::Notify>,
    /// Nodes with news for their step (an agent registered or reported):
    /// the next wake-up steps just these.
    nudged: Mutex<std::collections::HashSet<String>>,
    /// New intent whose nodes are not known here (an API write): the next
    /// wake-up is a full pass.
    full_pass: std::sync::atomic::AtomicBool,
    /// Nodes waiting on their agent, found with nothing to do: full passes
    /// leave them alone until then (their agent's news nudges them; only
    /// their deadline is left to check).
    resting: Mutex<HashMap<String, std::time::Instant>>,
    /// Per agent waiting for its steps (a held heartbeat): signalled once
    /// they are queued.
    step_signals: Mutex<HashMap<String, Arc<tokio::sync::Notify>>>,
    /// Each node's Redfish login, kept from one step to the next.
    sessions: Arc<Sessions>,
    /// How long nodes spent in each state and step they left, by state and
    /// step (`""` for states without steps).
    step_times:
        Mutex<std::collections::BTreeMap<(&'static str, &'static str), crate::metrics::Histogram>>,
    /// Sanitization records this controller wrote, by outcome, and the
    /// checks that failed in them, by name.
    records: Mutex<census::RecordCounts>,
    /// How often the health watch reads an idle node's health
    /// (`bmc_health_poll_secs`; zero: never).
    pub health_poll: Duration,
    /// When each idle node's health is next read.
    health_due: Mutex<HashMap<String, std::time::Instant>>,
}

/// Nodes stepped at once, by default.
pub const PARALLEL_STEPS: usize = 64;

/// Steps taken back to back for one node before it waits for the next pass.
pub const MAX_CHAINED_STEPS: usize = 16;

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
    pub fn new(bmc_timeout: Option<Duration>, signer: Arc<Signer>) -> LifecycleController {
        LifecycleController {
            attempts: Mutex::new(HashMap::new()),
            in_flight: Mutex::default(),
            bmc_timeout,
            signer,
            boot_timeout: Duration::from_secs(600),
            boot_attempts: 3,
            agent_timeout: Duration::from_secs(1800),
            agent_silence: Duration::from_secs(30),
            started_micros: now_micros(),
            parallel_steps: PARALLEL_STEPS,
            isolation_timeout: Duration::from_secs(600),
            firmware_update_timeout: Duration::from_secs(3600),
            firmware_resend_after: Duration::from_secs(60),
            firmware_updates_in_flight: 16,
            fabric_wake: Arc::new(tokio::sync::Notify::new()),
            planners: Arc::default(),
            placement: None,
            replacements: 2,
            bmc_tls: Default::default(),
            image_tls: Default::default(),
            wake: Arc::new(tokio::sync::Notify::new()),
            nudged: Mutex::default(),
            full_pass: std::sync::atomic::AtomicBool::new(false),
            resting: Mutex::default(),
            step_signals: Mutex::default(),
            sessions: Arc::default(),
            step_times: Mutex::default(),
            records: Mutex::default(),
            health_poll: Duration::ZERO,
            health_due: Mutex::default(),
            virtual_media_iso: None,
            node_isos: None,
            uefi_http_boot: None,
            rotate_bmc_password: false,
            sanitize_before_first_use: false,
            host_interfaces: Default::default(),
            bmc_accounts: Default::default(),
            sel: Default::default(),
            tpm_ek_certified: false,
        }
    }

    /// Ends the nodes' kept BMC logins (at shutdown).
    pub fn end_bmc_sessions(&self) {
        self.sessions.end_all();
    }

    /// Steps one claimed node (by id) and releases the claim. A node
    /// deleted since it was claimed has nothing to do.
    pub fn step_node(&self, store: &Store, secrets: &SecretBox, id: &str) -> Result<Outcome> {
        let res = match store.read(|r| nodes::lookup(r, &NameOrId::Id(id.to_string()))) {
            Ok(Some(fresh)) => self.step_and_account(store, secrets, &fresh),
            Ok(None) => {
                self.sessions.end(id);
                Ok(Outcome::Nothing)
            }
            Err(e) => Err(e),
        };
        self.release_claim(id);
        res
    }

    /// Steps one claimed node, and again while it moves (up to
    /// [`MAX_CHAINED_STEPS`]), so a node does not wait a pass between steps
    /// that need nothing from outside; then releases the claim.
    pub fn step_node_chained(
        &self,
        store: &Store,
        secrets: &SecretBox,
        id: &str,
    ) -> Result<Outcome> {
        // The claim is by id: the node is read now that it is claimed (a
        // record read before its last step released the claim would
        // repeat that step's BMC actions; a second reset kills a booting
        // image), and again before each chained step.
        let mut res = Ok(Outcome::Moved);
        let mut waits = None;
        for _ in 0..MAX_CHAINED_STEPS {
            if !matches!(res, Ok(Outcome::Moved)) {
                break;
            }
            res = match store.read(|r| nodes::lookup(r, &NameOrId::Id(id.to_string()))) {
                Ok(Some(node)) => {
                    waits = schedule::awaits_agent(&node.lifecycle).then(|| {
                        let since = neocloud_common::time::from_rfc3339(&node.lifecycle_since);
                        let waited = since.map(|t| neocloud_common::time::now_micros() - t);
                        std::time::Duration::from_micros(waited.unwrap_or(0).max(0) as u64)
                    });
                    self.step_and_account(store, secrets, &node)
                }
                // Deleted since it was claimed.
                Ok(None) => {
                    self.sessions.end(id);
                    Ok(Outcome::Nothing)
                }
                Err(e) => Err(e),
            };
        }
        if let (Some(waited), Ok(Outcome::Nothing)) = (waits, &res) {
            self.rest(id, waited);
        }
        self.release_claim(id);
        res
    }

    /// One synchronous pass: claims the work and steps it in parallel,
    /// waiting for every step. (The server's loop instead starts steps and
    /// goes on, see `server/background.rs`.)
    pub fn run_once(&self, store: &Store, secrets: &SecretBox) -> Result<Pass> {
        let work = self.claim_work(store)?;
        let next = std::sync::atomic::AtomicUsize::new(0);
        let pass = Mutex::new(Pass::default());
        let first_error: Mutex<Option<Error>> = Mutex::new(None);
        let workers = work.len().clamp(1, self.parallel_steps.max(1));
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
                let tries = self.count_attempt(&n.id, n.lifecycle.name());
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

    /// Counts one more transient failure of `what` (a state's name) on
    /// node `id`; answers the failures so far.
    fn count_attempt(&self, id: &str, what: &'static str) -> u32 {
        let mut a = self.attempts.lock().unwrap_or_else(|p| p.into_inner());
        let t = a.entry((id.to_string(), what)).or_default();
        *t += 1;
        *t
    }

    fn bmc(
        &self,
        store: &Store,
        secrets: &SecretBox,
        n: &Node,
    ) -> Result<(StepBmc, Option<String>), StepError> {
        let rec = store
            .read(|r| nodes::bmc(r, &n.id))
            .map_err(StepError::Store)?
            .ok_or_else(|| StepError::Fail("no BMC recorded for this node".into()))?;
        let sealed = match &rec.password_next_sealed {
            None => rec.password_sealed.clone(),
            Some(next) => self.settle_password(store, secrets, n, &rec, next)?,
        };
        let cfg = self.bmc_config(&rec, &open_password(secrets, n, &sealed)?);
        Ok((StepBmc::new(&self.sessions, &n.id, cfg, &sealed), rec.system_path))
    }

    /// The client configuration for the node's BMC with `password`.
    fn bmc_config(&self, rec: &nodes::BmcRecord, password: &str) -> BmcConfig {
        let mut cfg = BmcConfig::new(&rec.endpoint, &rec.username, password);
        cfg.tls = self.bmc_tls.clone();
        if let Some(t) = self.bmc_timeout {
            cfg.timeout = t;
            cfg.retries = 1;
            cfg.backoff = Duration::from_millis(50);
        }
        cfg
    }

    /// The node's BMC and its host system: the one recorded, else the one
    /// whose NICs have the node's MACs.
    fn bmc_system(
        &self,
        store: &Store,
        secrets: &SecretBox,
        n: &Node,
    ) -> Result<(StepBmc, String), StepError> {
        let (bmc, system) = self.bmc(store, secrets, n)?;
        let system = match system {
            Some(s) => s,
            None => bmc.host_system_with(&declared_macs(n)).map_err(StepError::from)?,
        };
        Ok((bmc, system))
    }

    /// One handler per state. Returns whether the node moved.
    fn step(&self, store: &Store, secrets: &SecretBox, n: &Node) -> Result<bool, StepError> {
        match &n.lifecycle {
            NodeLifecycle::Enrolling => self.enrolling(store, secrets, n),
            NodeLifecycle::Inspecting => self.inspecting(store, secrets, n),
            NodeLifecycle::Available => self.available(store, secrets, n),
            NodeLifecycle::Maintenance => self.maintenance(store, n),
            NodeLifecycle::Provisioning { tenant_id, instance_id, step, attempt } => {
                self.provisioning(store, secrets, n, tenant_id, instance_id, (*step, *attempt))
            }
            NodeLifecycle::Active { tenant_id, instance_id } => {
                self.active(store, secrets, n, tenant_id, instance_id)
            }
            NodeLifecycle::Releasing { tenant_id, instance_id, step, attempt } => {
                let held = Held::of(tenant_id, instance_id);
                self.releasing(store, secrets, n, held, (*step, *attempt))
            }
            NodeLifecycle::Sanitizing { tenant_id, instance_id, step, attempt } => {
                let held = Held::of(tenant_id, instance_id);
                self.sanitizing(store, secrets, n, held, (*step, *attempt))
            }
            NodeLifecycle::Failed { from, reason } => self.failed(store, n, from, reason),
        }
    }

    /// Whether the provider asked to inspect the node again since it
    /// entered its state.
    fn inspect_requested(store: &Store, n: &Node) -> Result<bool, StepError> {
        store.read(|r| nodes::inspect_requested(r, &n.id)).map_err(StepError::Store)
    }

    fn maintenance(&self, store: &Store, n: &Node) -> Result<bool, StepError> {
        if Self::inspect_requested(store, n)? {
            return self.advance(store, n, NodeLifecycle::Enrolling, |_| Ok(()));
        }
        if n.availability == neocloud_placement::Availability::Schedulable {
            return self.advance(store, n, NodeLifecycle::Available, |_| Ok(()));
        }
        Ok(false)
    }

    /// A failed node starts over when the provider inspects it again; a
    /// failed node whose tenant released its instance goes to be sanitized
    /// (unless releasing or sanitizing is what failed: then only the
    /// provider's inspection starts it over); a pending instance on a
    /// failed node is placed on another node, or fails with it, first (an
    /// inspection would otherwise sanitize the node for it and free it).
    fn failed(&self, store: &Store, n: &Node, from: &str, reason: &str) -> Result<bool, StepError> {
        let (inst, dirty) = store
            .read(|r| Ok((instances::live_on_node(r, &n.id)?, nodes::dirty(r, &n.id)?)))
            .map_err(StepError::Store)?;
        if let Some(i) = inst.as_ref().filter(|i| i.state == InstanceState::Pending) {
            if !i.release_requested {
                return self.place_again(store, n, i, reason);
            }
        }
        if Self::inspect_requested(store, n)? {
            return self.advance(store, n, NodeLifecycle::Enrolling, |_| Ok(()));
        }
        let Some(inst) = inst else { return Ok(false) };
        let released = inst.release_requested;
        if !released || from == "releasing" || from == "sanitizing" {
            return Ok(false);
        }
        match dirty {
            Some((tenant, instance)) => self.start_release(store, n, &tenant, &instance),
            None => self.advance_freeing(store, n, n.lifecycle.clone(), |w| {
                free_instance(w, &self.planners, &inst)
            }),
        }
    }

    /// Moves `n` to `to` with `also` in one transaction, audited.
    fn advance(
        &self,
        store: &Store,
        n: &Node,
        to: NodeLifecycle,
        mut also: impl FnMut(&mut dyn neocloud_store::Writer) -> Result<()>,
    ) -> Result<bool, StepError> {
        self.advance_freeing(store, n, to, |w| also(w).map(|()| None))
    }

    /// As [`Self::advance`], `also` answering the allocation it freed, if
    /// it did ([`free_instance`]): this replica's engine is told of it with
    /// the node's move, not rebuilt at the next create.
    fn advance_freeing(
        &self,
        store: &Store,
        n: &Node,
        to: NodeLifecycle,
        mut also: impl FnMut(&mut dyn neocloud_store::Writer) -> Result<Option<String>>,
    ) -> Result<bool, StepError> {
        // What this move alone changed of what placement sees, and the
        // placement generations before and after it: this replica's engine
        // takes it without a reload.
        let mut told: Option<Told> = None;
        let moved = store
            .write(|w| {
                told = None;
                if !nodes::transition(w, &n.id, (&n.lifecycle, n.generation), &to)? {
                    return Ok(false);
                }
                let before = allocations::placement_generation(w)?;
                let freed = also(w)?;
                let mut g = allocations::placement_generation(w)?;
                // Placement is told (and every other replica's engine
                // reloads) only when what it sees of the node changed: most
                // steps (boot steps, agent steps) change nothing it
                // schedules by.
                let (was, now) = (nodes::spec(n), nodes::spec(&nodes::get(w, &n.id)?));
                if now != was {
                    g = allocations::bump_placement_generation(w)?;
                }
                let availability_only =
                    NodeSpec { availability: was.availability, ..now.clone() } == was;
                let availability = (now != was).then_some(now.availability);
                // Every placement write of the transaction accounted for:
                // the free (one) and the node's availability (one).
                let writes = i64::from(freed.is_some()) + i64::from(availability.is_some());
                if availability_only && writes > 0 && g == before + writes {
                    let t = Told { before, after: g, node_id: n.id.clone(), freed, availability };
                    // Other replicas replay it from the placement log.
                    t.log(w)?;
                    told = Some(t);
                }
                // Staying in the state (work done within it) is not a transition.
                if to != n.lifecycle {
                    // A move to failed (an inspection refused, a record
                    // incomplete) is audited as the failure it is.
                    let outcome = match &to {
                        NodeLifecycle::Failed { .. } => "failed",
                        NodeLifecycle::Enrolling
                        | NodeLifecycle::Inspecting
                        | NodeLifecycle::Available
                        | NodeLifecycle::Provisioning { .. }
                        | NodeLifecycle::Active { .. }
                        | NodeLifecycle::Releasing { .. }
                        | NodeLifecycle::Sanitizing { .. }
                        | NodeLifecycle::Maintenance => "success",
                    };
                    record(w, n, &to, outcome)?;
                }
                Ok(true)
            })
            .map_err(StepError::Store)?;
        if let (true, Some(t), Some(p)) = (moved, told, &self.placement) {
            p.tell(t);
        }
        if moved {
            self.attempts
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .retain(|(id, _), _| id != &n.id);

            tracing::info!(node = %n.name, from = n.lifecycle.name(), to = to.name(), "node lifecycle");
        }
        if moved && to != n.lifecycle {
            self.left_step(n);
        }
        Ok(moved)
    }

    fn fail(&self, store: &Store, n: &Node, reason: &str) -> Result<()> {
        // A failed node's step (releasing it) can fail too: `from` stays the
        // state that failed first, and failing again for the same reason
        // changes nothing (no event and no placement reload on every pass).
        let from = match &n.lifecycle {
            NodeLifecycle::Failed { reason: was, .. } if was == reason => {
                self.attempts
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .retain(|(id, _), _| id != &n.id);
                return Ok(());
            }
            NodeLifecycle::Failed { from, .. } => from.clone(),
            other => other.name().to_string(),
        };
        let to = NodeLifecycle::Failed { reason: reason.to_string(), from };
        // What placement sees change (the node out of service, the freed
        // allocation): told to this replica's engine, logged for the others.
        let mut told: Option<Told> = None;
        let moved = store.write(|w| {
            told = None;
            let moved = nodes::transition(w, &n.id, (&n.lifecycle, n.generation), &to)?;
            if moved {
                let before = allocations::placement_generation(w)?;
                let mut freed = None;
                // A release that fails frees its tenant first: quota, then
                // the placement row, as every placement write takes them.
                if let NodeLifecycle::Releasing { instance_id: Some(instance_id), .. }
                | NodeLifecycle::Sanitizing { instance_id: Some(instance_id), .. } = &n.lifecycle
                {
                    // The tenant is done with the instance: it is released,
                    // its allocation and quota freed (as with an incomplete
                    // record), saying why. The node stays failed and dirty,
                    // never schedulable, until the provider has it
                    // sanitized. A released instance (a node sanitized
                    // again) stays as it is.
                    let i = instances::by_id(w, instance_id)?;
                    // An instance placed on another node since lives on.
                    if i.state != InstanceState::Released && i.node_id == n.id {
                        let why = format!(
                            "released; the node's sanitization did not complete ({reason}): it stays out of service until the provider has it sanitized"
                        );
                        freed = free_instance_saying(w, &self.planners, &i, Some(&why))?;
                    }
                }
                let g = allocations::bump_placement_generation(w)?;
                // Every placement write of the transaction accounted for:
                // the free (where one) and the node's availability.
                if g == before + 1 + i64::from(freed.is_some()) {
                    let availability = Some(Availability::Failed);
                    let t = Told { before, after: g, node_id: n.id.clone(), freed, availability };
                    t.log(w)?;
                    told = Some(t);
                }
                record(w, n, &to, "failed")?;
                // The instance the node was working for shows why.
                match &n.lifecycle {
                    // Never handed over: placed on another node (its
                    // handler does it, `replace.rs`), else failed.
                    NodeLifecycle::Provisioning { instance_id, .. } => {
                        let i = instances::by_id(w, instance_id)?;
                        if self.may_place_again(w, &i, &n.id)? {
                            let why = format!(
                                "its node failed before it was handed over ({reason}): it is being placed on another node"
                            );
                            set_instance(w, &i, InstanceState::Pending, Some(&why))?;
                        } else {
                            set_instance(w, &i, InstanceState::Failed, Some(reason))?;
                        }
                    }
                    // Freed above.
                    NodeLifecycle::Releasing { .. } | NodeLifecycle::Sanitizing { .. } => {}
                    // Only starting a release fails an active node.
                    NodeLifecycle::Active { instance_id, .. } => {
                        let i = instances::by_id(w, instance_id)?;
                        set_instance(w, &i, InstanceState::Releasing, Some(reason))?;
                    }
                    NodeLifecycle::Enrolling
                    | NodeLifecycle::Inspecting
                    | NodeLifecycle::Available
                    | NodeLifecycle::Maintenance
                    | NodeLifecycle::Failed { .. } => {}
                }
            }
            Ok(moved)
        })?;
        if let (true, Some(t), Some(p)) = (moved, told, &self.placement) {
            p.tell(t);
        }
        if moved {
            self.left_step(n);
            // A pending instance left on it is placed elsewhere by its
            // next step (`failed`), as soon as this one ends.
            if matches!(n.lifecycle, NodeLifecycle::Provisioning { .. }) {
                self.nudge(&n.id);
            }
        }
        tracing::warn!(node = %n.name, from = n.lifecycle.name(), %reason, "node failed");
        self.attempts.lock().unwrap_or_else(|p| p.into_inner()).retain(|(id, _), _| id != &n.id);
        Ok(())
    }
}

/// The MACs the provider declared for the node's NICs: they pick the
/// node's system on a BMC that fronts several.
pub(crate) fn declared_macs(n: &Node) -> Vec<String> {
    n.nics.iter().filter_map(|x| x.mac.clone()).collect()
}

enum StepError {
    Retry(RedfishError),
    Fail(String),
    Store(Error),
}

/// Opens a sealed BMC password. A key that does not open the secret is this
/// replica's problem, not the node's: skip it (another replica, or a fixed
/// key, moves it).
fn open_password(secrets: &SecretBox, n: &Node, sealed: &str) -> Result<String, StepError> {
    secrets.open(sealed).map_err(|e| {
        StepError::Store(Error::Unavailable {
            internal: format!("node {}: BMC password: {e}", n.name),
        })
    })
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
mod tests;
