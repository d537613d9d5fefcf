//! The placement engine as the server holds it: loaded from the store,
//! changed only after the store commits (handlers return [`Effect`]s), and
//! serialized per replica by one lock held across the whole write (plan,
//! commit, apply).
//!
//! Replicas: every placement write bumps `placement_state.generation` in
//! its transaction. The engine remembers the generation it reflects and
//! reloads from the store before it plans or reports when the store's is
//! newer, so a replica never plans on capacity another one took or refuses
//! capacity another one freed. Two replicas planning at once are ordered by
//! the store (the generation row lock and the allocation units' keys); the
//! loser gets a conflict and reloads.

use neocloud_common::{Error, Result};
use neocloud_placement::{Availability, Constraints, Engine, NodeSpec, Placement};
use neocloud_store::{allocations, nodes, placement_log, Reader, Store, Writer};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

/// A change to the engine that takes effect once the transaction commits.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Effect {
    AddNode(NodeSpec),
    SetAvailability(String, Availability),
    Apply {
        id: String,
        placement: Placement,
        group: Option<String>,
    },
    Release(String),
    /// Rebuild from the store (after changes the engine cannot replay).
    Reload,
    /// The placement generation the transaction committed.
    Generation(i64),
}

pub struct State {
    pub engine: Engine,
    /// The store's placement generation this engine reflects.
    pub generation: i64,
    /// Tells that came before the one that moves the engine to their
    /// generation (steps committed together finish in any order), by the
    /// generation each starts from; applied once the engine reaches it,
    /// dropped when it moves past (a reload).
    pending: BTreeMap<i64, Told>,
    /// The store's count of shared transactions rolled back whole
    /// ([`Store::undone_groups`]) before the engine's last read: a read
    /// inside SQLite's group commit sees other members' uncommitted rows
    /// (the placement log's too), which such a rollback undoes, and their
    /// writes then run again with other generations' content. A count
    /// moved since means the engine may hold undone writes: it rebuilds.
    undone: u64,
}

/// What a lifecycle write (not serialized with placement writes) changed
/// of what placement sees: the allocation it freed, node `node_id`'s
/// availability, moving the store's generation from `before` to `after`.
/// Logged in the write's transaction ([`Told::log`]), told to the writing
/// replica's engine once it committed ([`PlacementService::tell`]).
#[derive(Debug, Clone)]
pub struct Told {
    pub before: i64,
    pub after: i64,
    pub node_id: String,
    pub freed: Option<String>,
    pub availability: Option<Availability>,
}

impl Told {
    /// As effects, in the order they apply: the free, then the node.
    fn effects(&self) -> Vec<Effect> {
        let set = self.availability.map(|a| Effect::SetAvailability(self.node_id.clone(), a));
        self.freed.clone().map(Effect::Release).into_iter().chain(set).collect()
    }

    /// Logs it for other replicas, in the write's transaction.
    pub fn log(&self, w: &mut dyn Writer) -> Result<()> {
        let effects = self.effects();
        log_changes(w, self.before, self.after, &effects.iter().collect::<Vec<_>>())
    }
}

/// Tells waiting for an earlier one at most (more: the engine reloads).
const PENDING_TELLS: usize = 4096;

impl State {
    /// Applies `t` (the engine is at the generation it starts from), then
    /// whatever waited for the generation it reaches. On a tell that does
    /// not apply the engine is at no generation the store has: the next
    /// read reloads.
    fn apply_told(&mut self, t: Told) {
        let mut next = Some(t);
        while let Some(t) = next.take() {
            let res = t.effects().into_iter().try_for_each(|eff| self.apply_logged(eff));
            if let Err(why) = res {
                tracing::info!(reason = %why, "placement engine reloads when next read");
                self.generation = -1;
                self.pending.clear();
                return;
            }
            self.generation = t.after;
            next = self.take_pending();
        }
    }

    /// Applies one effect of a committed write (not its generation).
    fn apply_effect(&mut self, eff: Effect) -> Result<(), String> {
        match eff {
            Effect::AddNode(spec) => self.engine.add_node(spec).map_err(|x| x.to_string()),
            Effect::SetAvailability(id, a) => {
                self.engine.set_availability(&id, a).map_err(|x| x.to_string())
            }
            Effect::Apply { id, placement, group } => {
                self.engine.apply(&id, &placement, group.as_deref()).map_err(|x| x.to_string())
            }
            Effect::Release(id) => {
                self.engine.release(&id);
                Ok(())
            }
            Effect::Reload => Err("reload requested".to_string()),
            Effect::Generation(g) => Err(format!("generation {g} as an effect to apply")),
        }
    }

    /// Applies one effect another write logged or told: as
    /// [`Self::apply_effect`], but a release of an allocation the engine
    /// lacks fails (the writer's engine held it: this one has diverged).
    fn apply_logged(&mut self, eff: Effect) -> Result<(), String> {
        match eff {
            Effect::Release(id) => {
                self.engine.release(&id).map(|_| ()).ok_or_else(|| format!("no allocation {id}"))
            }
            eff @ (Effect::AddNode(_)
            | Effect::SetAvailability(..)
            | Effect::Apply { .. }
            | Effect::Reload
            | Effect::Generation(_)) => self.apply_effect(eff),
        }
    }

    /// Catches up from generation `self.generation` to `stored` by the
    /// placement log (as of `r`'s snapshot). False where it cannot: behind
    /// by more than the log keeps, a gap, an effect that does not apply
    /// (the engine is then part way: the caller rebuilds it).
    fn replay(&mut self, r: &mut dyn Reader, stored: i64) -> Result<bool> {
        if self.generation < 0
            || stored < self.generation
            || stored - self.generation > placement_log::KEEP
        {
            return Ok(false);
        }
        for entry in placement_log::between(r, self.generation, stored)? {
            if entry.since != self.generation {
                return Ok(false);
            }
            let Ok(effects) = serde_json::from_str::<Vec<Effect>>(&entry.effects) else {
                return Ok(false);
            };
            for eff in effects {
                if let Err(why) = self.apply_logged(eff) {
                    tracing::info!(reason = %why, generation = entry.generation, "placement log does not replay");
                    return Ok(false);
                }
            }
            self.generation = entry.generation;
        }
        if self.generation != stored {
            return Ok(false);
        }
        // A step's tell that came before this catch-up.
        if let Some(t) = self.take_pending() {
            self.apply_told(t);
        }
        Ok(true)
    }

    /// Where the store rolled a shared transaction back since the engine's
    /// last read (`undone`, the store's count, moved), puts the engine at
    /// no generation (the next read rebuilds it): whether it is.
    fn forget_if_undone(&mut self, undone: u64) -> bool {
        if self.undone == undone {
            return false;
        }
        tracing::info!("a shared write transaction was rolled back: placement engine rebuilds");
        self.generation = -1;
        self.pending.clear();
        true
    }

    /// The tell waiting for the engine's generation; those for earlier
    /// ones are dropped (the engine moved past them).
    fn take_pending(&mut self) -> Option<Told> {
        let g = self.generation;
        self.pending.retain(|before, _| *before >= g);
        self.pending.remove(&g)
    }
}

pub struct PlacementService {
    state: Mutex<State>,
    /// Its store (for [`State::undone`]).
    store: Store,
    serial: Mutex<()>,
    /// Rebuilds from the store (each reads every node and allocation).
    reloads: AtomicU64,
    /// Catch-ups from the placement log instead of a rebuild.
    replays: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Builds an engine from the store's nodes and active allocations, as of
/// the reader's snapshot.
pub fn load(r: &mut dyn Reader) -> Result<State> {
    let generation = allocations::placement_generation(r)?;
    let specs = nodes::list_specs(r)?;
    let allocs = allocations::list_active_placements(r)?;
    let mut engine = Engine::new();
    for s in specs {
        let id = s.id.clone();
        engine.add_node(s).map_err(|err| Error::internal(format!("load node {id}: {err}")))?;
    }
    for a in &allocs {
        let group = a.anti_affinity.as_ref().map(|g| qualified_group(&a.tenant_id, g));
        engine
            .apply(&a.id, &a.placement, group.as_deref())
            .map_err(|err| Error::internal(format!("load allocation {}: {err}", a.id)))?;
    }
    Ok(State { engine, generation, pending: BTreeMap::new(), undone: 0 })
}

/// Logs a write's effects for other replicas ([`neocloud_store::placement_log`]),
/// in its transaction: a write that moved the generation once (one
/// `Generation(g)`) and whose effects say all it changed (no `Reload`).
/// Anything else is left out: a gap, where other replicas rebuild.
pub fn log(w: &mut dyn Writer, effects: &[Effect]) -> Result<()> {
    let mut generation = None;
    let mut changes = Vec::new();
    for e in effects {
        match e {
            Effect::Reload => return Ok(()),
            Effect::Generation(g) => {
                if generation.replace(*g).is_some() {
                    return Ok(());
                }
            }
            Effect::AddNode(_)
            | Effect::SetAvailability(..)
            | Effect::Apply { .. }
            | Effect::Release(_) => changes.push(e),
        }
    }
    match generation {
        Some(g) => log_changes(w, g - 1, g, &changes),
        None => Ok(()),
    }
}

/// Logs `changes` as the write that moved the generation from `since` to
/// `generation`.
pub fn log_changes(
    w: &mut dyn Writer,
    since: i64,
    generation: i64,
    changes: &[&Effect],
) -> Result<()> {
    let text = serde_json::to_string(changes)
        .map_err(|e| Error::internal(format!("placement log: {e}")))?;
    placement_log::record(w, since, generation, &text)
}

/// Anti-affinity groups are a tenant's own: the engine sees them qualified
/// by the tenant, so one tenant's groups never constrain (or reveal) another's.
pub fn engine_group(tenant_id: &str, c: &Constraints) -> Option<String> {
    c.anti_affinity.as_ref().map(|g| qualified_group(tenant_id, g))
}

fn qualified_group(tenant_id: &str, group: &str) -> String {
    format!("{tenant_id}/{group}")
}

/// The constraints as the engine applies them for `tenant_id`.
pub fn engine_constraints(tenant_id: &str, c: &Constraints) -> Constraints {
    Constraints { anti_affinity: engine_group(tenant_id, c), ..c.clone() }
}

impl PlacementService {
    /// The service over `state`, as read from `store` (nothing undone
    /// since: read it just before).
    pub fn new(mut state: State, store: &Store) -> PlacementService {
        state.undone = store.undone_groups();
        PlacementService {
            store: store.clone(),
            state: Mutex::new(state),
            serial: Mutex::new(()),
            reloads: AtomicU64::new(0),
            replays: AtomicU64::new(0),
        }
    }

    /// Its metrics, in the text exposition format.
    pub fn render_metrics(&self) -> String {
        format!(
            "# HELP neocloud_placement_engine_reloads_total Placement engine rebuilds from the store (a write it was not told of: another replica's, or one whose effects it cannot replay).\n\
             # TYPE neocloud_placement_engine_reloads_total counter\n\
             neocloud_placement_engine_reloads_total {}\n\
             # HELP neocloud_placement_engine_replays_total Placement engine catch-ups from the placement log (other replicas' writes replayed instead of a rebuild).\n\
             # TYPE neocloud_placement_engine_replays_total counter\n\
             neocloud_placement_engine_replays_total {}\n",
            self.reloads.load(Ordering::Relaxed),
            self.replays.load(Ordering::Relaxed)
        )
    }

    /// Held by the dispatcher across a placement-changing write.
    pub fn serialize(&self) -> MutexGuard<'_, ()> {
        lock(&self.serial)
    }

    /// The engine, reloaded first (from `r`'s snapshot) if the store has
    /// moved on since it was built.
    pub fn current(&self, r: &mut dyn Reader) -> Result<MutexGuard<'_, State>> {
        // Before the reads: a rollback after it shows at the next one.
        let undone = self.store.undone_groups();
        let stored = allocations::placement_generation(r)?;
        let mut st = lock(&self.state);
        st.forget_if_undone(undone);
        if st.generation != stored {
            if st.replay(r, stored)? {
                self.replays.fetch_add(1, Ordering::Relaxed);
            } else {
                tracing::debug!(from = st.generation, to = stored, "placement engine reloads");
                self.reloads.fetch_add(1, Ordering::Relaxed);
                // A replay may have stopped part way: should the rebuild
                // fail, the engine is at no generation, and rebuilds next.
                st.generation = -1;
                st.pending.clear();
                *st = load(r)?;
            }
        }
        st.undone = undone;
        Ok(st)
    }

    /// Applies committed effects. The store is the truth: an effect that
    /// does not apply reloads the engine.
    pub fn commit(&self, effects: Vec<Effect>) {
        let mut reload = false;
        {
            let mut st = lock(&self.state);
            if st.forget_if_undone(self.store.undone_groups()) {
                return;
            }
            // A read since the commit caught the engine up past this write
            // (from the placement log): it has it already.
            let written = effects.iter().find_map(|e| match e {
                Effect::Generation(g) => Some(*g),
                Effect::AddNode(_)
                | Effect::SetAvailability(..)
                | Effect::Apply { .. }
                | Effect::Release(_)
                | Effect::Reload => None,
            });
            if written.is_some_and(|g| st.generation >= g) {
                return;
            }
            for eff in effects {
                let res = match eff {
                    Effect::Generation(g) => {
                        // Our write moved the store from g - 1 to g; any
                        // other gap means another replica wrote meanwhile.
                        if st.generation == g - 1 {
                            st.generation = g;
                            Ok(())
                        } else {
                            Err(format!("generation {} -> {g}", st.generation))
                        }
                    }
                    eff @ (Effect::AddNode(_)
                    | Effect::SetAvailability(..)
                    | Effect::Apply { .. }
                    | Effect::Release(_)
                    | Effect::Reload) => st.apply_effect(eff),
                };
                if let Err(why) = res {
                    tracing::info!(reason = %why, "placement engine reloads from the store");
                    reload = true;
                    break;
                }
            }
            // A step's tell that came before this write's commit.
            if !reload {
                if let Some(t) = st.take_pending() {
                    st.apply_told(t);
                }
            }
        }
        if reload {
            self.reload();
        }
    }

    /// What a write it was not serialized with (a lifecycle step's) changed
    /// of what placement sees ([`Told`]). Applied where the engine is at
    /// its `before`; kept where the engine is behind it (a write that
    /// committed with or just before this one has yet to tell), to apply
    /// once it gets there. Else nothing now: the engine reloads when it is
    /// next read ([`Self::current`]), not in the step.
    pub fn tell(&self, t: Told) {
        let mut st = lock(&self.state);
        if st.forget_if_undone(self.store.undone_groups()) {
            return;
        }
        if st.generation == t.before {
            st.apply_told(t);
        } else if st.generation >= 0 && t.before > st.generation {
            if st.pending.len() >= PENDING_TELLS {
                st.pending.clear();
                st.generation = -1;
                return;
            }
            st.pending.insert(t.before, t);
        }
    }

    pub fn reload(&self) {
        self.reloads.fetch_add(1, Ordering::Relaxed);
        let undone = self.store.undone_groups();
        match self.store.read(load) {
            Ok(fresh) => *lock(&self.state) = State { undone, ..fresh },
            Err(err) => tracing::error!(error = %err, "placement engine reload failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use neocloud_placement::SimulatedFleet;

    /// A service over `nodes` simulated nodes, at generation 0, on an
    /// empty SQLite store (for rebuilds, were it to: nothing in it).
    fn service(nodes: usize) -> (PlacementService, Vec<String>, neocloud_store::testing::TestDb) {
        let mut engine = Engine::new();
        let mut ids = Vec::new();
        for s in SimulatedFleet::hgx(nodes, "h100-80gb").build() {
            ids.push(s.id.clone());
            engine.add_node(s).unwrap();
        }
        let db = neocloud_store::testing::fresh_db(neocloud_store::testing::TestBackend::Sqlite)
            .expect("SQLite always runs");
        let store = Store::open(&db.url).unwrap();
        let st = State { engine, generation: 0, pending: BTreeMap::new(), undone: 0 };
        (PlacementService::new(st, &store), ids, db)
    }

    /// A step's tell of node `node`'s new availability.
    fn told(before: i64, after: i64, node: &str, availability: Option<Availability>) -> Told {
        Told { before, after, node_id: node.to_string(), freed: None, availability }
    }

    fn unavailable(p: &PlacementService) -> (i64, u32) {
        let st = lock(&p.state);
        let cap = st.engine.capacity();
        (st.generation, cap.models.iter().map(|m| m.total.unavailable_nodes).sum())
    }

    /// Two steps that committed together tell in any order: the later
    /// generation's tell waits for the earlier one, then both apply.
    #[test]
    fn tells_out_of_order_apply_in_generation_order() {
        let (p, ids, _db) = service(3);
        let out = Some(Availability::Maintenance);
        p.tell(told(1, 2, &ids[1], out));
        assert_eq!(unavailable(&p), (0, 0), "waits for generation 1");
        p.tell(told(2, 3, &ids[2], out));
        p.tell(told(0, 1, &ids[0], out));
        assert_eq!(unavailable(&p), (3, 3), "all three applied, in order");
        // One already applied (a generation the engine passed) changes nothing.
        p.tell(told(1, 2, &ids[1], Some(Availability::Schedulable)));
        assert_eq!(unavailable(&p), (3, 3));
    }

    /// A tell that waits for a generation the engine reaches by its own
    /// write applies after that write's effects; one the engine moved past
    /// (by a reload) is dropped.
    #[test]
    fn a_waiting_tell_applies_after_the_write_that_reaches_its_generation() {
        let (p, ids, _db) = service(2);
        p.tell(told(1, 2, &ids[1], Some(Availability::Maintenance)));
        // The engine's own write moves it from 0 to 1 (every effect
        // applies: the store is not read).
        p.commit(vec![
            Effect::SetAvailability(ids[0].clone(), Availability::Failed),
            Effect::Generation(1),
        ]);
        assert_eq!(unavailable(&p), (2, 2));
        // Behind: a tell from 5 waits; a reload to 7 (another replica's
        // writes) drops it with the rest of the state.
        p.tell(told(5, 6, &ids[0], Some(Availability::Schedulable)));
        assert_eq!(lock(&p.state).pending.len(), 1);
        {
            let mut st = lock(&p.state);
            st.generation = 7;
            assert!(st.take_pending().is_none());
            assert!(st.pending.is_empty(), "dropped once passed");
        }
        assert_eq!(p.reloads.load(Ordering::Relaxed), 0);
    }

    /// A write's commit that finds the engine past its generation (a read
    /// replayed it from the log first) changes nothing and rebuilds nothing.
    #[test]
    fn a_commit_the_engine_already_has_is_skipped() {
        let (p, ids, _db) = service(2);
        p.tell(told(0, 1, &ids[0], Some(Availability::Maintenance)));
        assert_eq!(unavailable(&p), (1, 1));
        p.commit(vec![
            Effect::SetAvailability(ids[0].clone(), Availability::Maintenance),
            Effect::Generation(1),
        ]);
        assert_eq!(unavailable(&p), (1, 1));
        assert_eq!(p.reloads.load(Ordering::Relaxed), 0, "no rebuild (from an empty store)");
    }

    /// A write group SQLite rolled back whole may have undone what the
    /// engine read inside it: the engine neither applies tells nor commits
    /// on what it holds, and rebuilds at its next read.
    #[test]
    fn an_engine_rebuilds_after_the_store_undid_a_shared_transaction() {
        let (p, ids, _db) = service(2);
        let store = p.store.clone();
        assert_eq!(store.undone_groups(), 0);
        // A write that panics in its group: rolled back whole.
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            store.write(|_| -> Result<()> { panic!("a bug in a write") })
        }));
        assert!(panicked.is_err());
        assert_eq!(store.undone_groups(), 1);
        // Told and committed on a state that may hold undone writes:
        // nothing applied, the engine at no generation.
        p.tell(told(0, 1, &ids[0], Some(Availability::Maintenance)));
        assert_eq!(unavailable(&p), (-1, 0));
        p.commit(vec![
            Effect::SetAvailability(ids[1].clone(), Availability::Maintenance),
            Effect::Generation(1),
        ]);
        assert_eq!(unavailable(&p), (-1, 0));
        // Its next read rebuilds it from the store (empty: no nodes).
        let cap = store.read(|r| Ok(p.current(r)?.engine.capacity())).unwrap();
        assert!(cap.models.is_empty(), "{cap:?}");
        assert_eq!(p.reloads.load(Ordering::Relaxed), 1);
        // Then it goes on as before.
        let generation = store.read(|r| Ok(p.current(r)?.generation)).unwrap();
        assert_eq!(generation, store.read(allocations::placement_generation).unwrap());
        assert_eq!(p.reloads.load(Ordering::Relaxed), 1);
    }
}
