//! One incremental planner per Ethernet fabric, kept in memory between
//! writes: a tenant's change validates, allocates and re-plans only what it
//! can reach (`neocloud_fabric::IncrementalPlanner`) and writes only the
//! ledger entries it touched; the fabric controller and the plan endpoint
//! read every switch's plan without planning again.
//!
//! The store is the truth. A kept planner is current only while the
//! fabric's stored intent token is the one it was built or last changed
//! with: every write of a fabric's intent takes a new token
//! (`fabrics::lock_intent`), so a write the planner did not see (another
//! replica's, a rolled-back transaction's, one made without it) makes the
//! next user rebuild it from the store. A planner is changed inside the
//! writer's transaction and kept under the token that write leaves; if the
//! transaction does not commit, the stored token stays the previous one
//! and the planner is never used again.
//!
//! Lock order: a writer takes the fabric's row (`lock_intent`) before the
//! planners' mutex; nothing waits on the store while holding the mutex but
//! the writer that holds the fabric's row.

use super::intent::{self, tenant_terms};
use super::ledger;
use neocloud_common::{Error, Result};
use neocloud_fabric::{IncrementalPlanner, Intent, LedgerKey, SwitchConfig, TenantChange};
use neocloud_store::fabrics::{self, IntentLock};
use neocloud_store::{Reader, Writer};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// The kept planners, by fabric id.
pub struct Planners {
    kept: Mutex<HashMap<String, Kept>>,
    counts: Mutex<Counts>,
    /// After every change, compares the planner's intent and ledger with
    /// what the store holds (on in debug builds: every test that writes a
    /// tenant network checks that the changes fed to the planner are the
    /// rows written).
    pub verify: bool,
}

struct Kept {
    token: String,
    /// The intent generation it holds.
    generation: i64,
    /// When it was kept.
    at: Instant,
    planner: IncrementalPlanner,
    /// The planner's plan.
    plan: Plan,
}

impl Kept {
    /// A planner just built: its plan shared as a whole.
    fn new(token: &str, generation: i64, planner: IncrementalPlanner) -> Kept {
        let plan = Arc::new(
            planner
                .desired()
                .switches
                .iter()
                .map(|(n, c)| (n.clone(), Arc::new(c.clone())))
                .collect(),
        );
        Kept::with(token, generation, planner, plan)
    }

    fn with(token: &str, generation: i64, planner: IncrementalPlanner, plan: Plan) -> Kept {
        Kept { token: token.to_string(), generation, at: Instant::now(), planner, plan }
    }
}

/// Every switch's desired configuration, by name, shared: a reader takes
/// it without copying, and a change replaces only the switches it changed.
pub type Plan = Arc<BTreeMap<String, Arc<SwitchConfig>>>;

/// How long a planner kept by a write is taken to be that write still
/// committing, by a reader whose snapshot is older (past it, the write is
/// taken to have rolled back).
const COMMITTING: Duration = Duration::from_secs(2);

/// Why planners were built, and what became of the changes.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Counts {
    /// A tenant write found no current planner (none kept yet, or the
    /// intent changed behind it).
    pub built_for_write: u64,
    /// The controller or a plan request found none current.
    pub built_for_read: u64,
    /// A fabric document was written.
    pub built_for_document: u64,
    pub changes_applied: u64,
    pub changes_refused: u64,
}

impl Default for Planners {
    fn default() -> Planners {
        Planners {
            kept: Mutex::default(),
            counts: Mutex::default(),
            verify: cfg!(debug_assertions),
        }
    }
}

impl Planners {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Kept>> {
        self.kept.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn count(&self, f: impl FnOnce(&mut Counts)) {
        f(&mut self.counts.lock().unwrap_or_else(|p| p.into_inner()));
    }

    pub fn counts(&self) -> Counts {
        self.counts.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The counts in Prometheus' text format.
    pub fn render_metrics(&self) -> String {
        let c = self.counts();
        format!(
            "# HELP neocloud_fabric_planner_builds_total Fabric planners built from the whole intent, by what needed one.\n\
             # TYPE neocloud_fabric_planner_builds_total counter\n\
             neocloud_fabric_planner_builds_total{{for=\"write\"}} {}\n\
             neocloud_fabric_planner_builds_total{{for=\"read\"}} {}\n\
             neocloud_fabric_planner_builds_total{{for=\"document\"}} {}\n\
             # HELP neocloud_fabric_planner_changes_total Tenant changes applied to a kept fabric planner, by outcome.\n\
             # TYPE neocloud_fabric_planner_changes_total counter\n\
             neocloud_fabric_planner_changes_total{{outcome=\"applied\"}} {}\n\
             neocloud_fabric_planner_changes_total{{outcome=\"refused\"}} {}\n",
            c.built_for_write,
            c.built_for_read,
            c.built_for_document,
            c.changes_applied,
            c.changes_refused
        )
    }

    /// Brings the fabric's planner and stored ledger up to date with the
    /// tenant changes this transaction wrote (after `lock_intent` gave
    /// `lock`), in order. A refused change is the error `validate` or
    /// `allocate` gives for the changed intent, in the request's terms for
    /// a tenant's request (see `intent::tenant_terms`).
    pub fn change(
        &self,
        w: &mut dyn Writer,
        fabric_id: &str,
        lock: &IntentLock,
        changes: Vec<TenantChange>,
        tenant_request: bool,
    ) -> Result<()> {
        let mut kept = self.lock();
        let Some(Kept { mut planner, generation, plan, .. }) =
            kept.remove(fabric_id).filter(|k| k.token == lock.previous_token)
        else {
            self.count(|c| c.built_for_write += 1);
            let planner = build(w, fabric_id, tenant_request)?;
            kept.insert(fabric_id.to_string(), Kept::new(&lock.token, lock.generation, planner));
            return Ok(());
        };
        let mut touched: BTreeSet<LedgerKey> = BTreeSet::new();
        let mut replanned: BTreeMap<String, SwitchConfig> = BTreeMap::new();
        for (i, change) in changes.into_iter().enumerate() {
            match planner.apply_change(change.clone()) {
                Ok(applied) => {
                    self.count(|c| c.changes_applied += 1);
                    touched.extend(applied.ledger);
                    replanned.extend(applied.switches.into_iter().map(|(n, c)| (n, c.after)));
                }
                Err(e) => {
                    self.count(|c| c.changes_refused += 1);
                    // The error names positions in the changed intent.
                    let mut named = planner.intent().clone();
                    change.apply_to(&mut named);
                    if i == 0 {
                        // Unchanged: still the stored intent once this
                        // transaction rolls back.
                        let k = Kept::with(&lock.previous_token, generation, planner, plan);
                        kept.insert(fabric_id.to_string(), k);
                    }
                    return Err(tenant_terms(e, &named, tenant_request));
                }
            }
        }
        ledger::write(w, fabric_id, planner.allocations(), &touched)?;
        if self.verify {
            verify(w, fabric_id, &planner)?;
        }
        let mut next = (*plan).clone();
        next.extend(replanned.into_iter().map(|(n, c)| (n, Arc::new(c))));
        let k = Kept::with(&lock.token, lock.generation, planner, Arc::new(next));
        kept.insert(fabric_id.to_string(), k);
        Ok(())
    }

    /// Builds the fabric's planner afresh from what this transaction holds
    /// (its document changed: after `lock_intent` gave `lock`), validating
    /// the whole intent against it and bringing the stored ledger up to
    /// date.
    pub fn rebuild(&self, w: &mut dyn Writer, fabric_id: &str, lock: &IntentLock) -> Result<()> {
        let mut kept = self.lock();
        kept.remove(fabric_id);
        self.count(|c| c.built_for_document += 1);
        let planner = build(w, fabric_id, false)?;
        kept.insert(fabric_id.to_string(), Kept::new(&lock.token, lock.generation, planner));
        Ok(())
    }

    /// Forgets a fabric's planner (the fabric is gone).
    pub fn forget(&self, fabric_id: &str) {
        self.lock().remove(fabric_id);
    }

    /// What every switch of the fabric must have, as of `r`'s snapshot,
    /// with that snapshot's record of the fabric. Planned once per intent
    /// token: the kept planner's plan when it is current, else a planner
    /// built from the snapshot (not holding the mutex meanwhile) and kept
    /// unless a writer kept one first.
    ///
    /// `None` (only when `defer`): the kept planner is a newer write's,
    /// still committing; the caller plans again once it has (the fabric
    /// controller is woken by every committed write), instead of planning
    /// the whole fabric for a snapshot about to be outdated.
    pub fn desired(
        &self,
        r: &mut dyn Reader,
        fabric_id: &str,
        defer: bool,
    ) -> Result<Option<(fabrics::FabricRecord, Plan)>> {
        let record = fabrics::get(r, fabric_id)?;
        if let Some(k) = self.lock().get(fabric_id) {
            if k.token == record.intent_token {
                return Ok(Some((record, k.plan.clone())));
            }
            if defer && k.generation > record.intent_generation && k.at.elapsed() < COMMITTING {
                return Ok(None);
            }
        }
        self.count(|c| c.built_for_read += 1);
        let l = intent::load(r, fabric_id)?;
        let planner = IncrementalPlanner::new(
            l.topo.fabric,
            l.topo.switches,
            l.topo.links,
            l.intent,
            &l.ledger,
        )
        .map_err(|e| Error::internal(format!("planning fabric {}: {e:?}", l.record.name)))?;
        if planner.allocations() != &l.ledger {
            // Every write brings the ledger up to date: planning from one
            // that is behind would push what was never recorded.
            return Err(Error::internal(format!(
                "the stored ledger of fabric {} is behind its intent",
                l.record.name
            )));
        }
        let k = Kept::new(&l.record.intent_token, l.record.intent_generation, planner);
        let plan = k.plan.clone();
        self.lock().entry(fabric_id.to_string()).or_insert(k);
        Ok(Some((l.record, plan)))
    }
}

/// A planner from the store as this transaction sees it, with the stored
/// ledger brought up to date.
fn build(w: &mut dyn Writer, fabric_id: &str, tenant_request: bool) -> Result<IncrementalPlanner> {
    let l = intent::load(w, fabric_id)?;
    let named = l.intent.clone();
    let t = l.topo;
    let planner = IncrementalPlanner::new(t.fabric, t.switches, t.links, l.intent, &l.ledger)
        .map_err(|e| tenant_terms(e, &named, tenant_request))?;
    let changed = planner.allocations().changed(&l.ledger);
    ledger::write(w, fabric_id, planner.allocations(), &changed)?;
    Ok(planner)
}

/// The intent's lists in id order (the planner keeps its own order).
fn sorted(i: &Intent) -> Intent {
    let mut i = i.clone();
    i.vpcs.sort_by(|a, b| a.id.cmp(&b.id));
    i.networks.sort_by(|a, b| a.id.cmp(&b.id));
    i.attachments.sort_by(|a, b| a.id.cmp(&b.id));
    i.security_rules.sort_by(|a, b| a.id.cmp(&b.id));
    i.nat_gateways.sort_by(|a, b| a.vpc.cmp(&b.vpc));
    i.floating_ips.sort_by(|a, b| a.id.cmp(&b.id));
    i
}

/// The planner holds what the store holds.
fn verify(w: &mut dyn Writer, fabric_id: &str, planner: &IncrementalPlanner) -> Result<()> {
    let l = intent::load(w, fabric_id)?;
    if sorted(planner.intent()) != sorted(&l.intent) {
        return Err(Error::internal(format!(
            "the kept planner of fabric {} differs from the store: {:?} vs {:?}",
            l.record.name,
            sorted(planner.intent()),
            sorted(&l.intent)
        )));
    }
    if planner.allocations() != &l.ledger {
        return Err(Error::internal(format!(
            "the ledger of fabric {} as written differs from the kept planner's",
            l.record.name
        )));
    }
    Ok(())
}

#[cfg(test)]
#[path = "planners_tests.rs"]
mod tests;
