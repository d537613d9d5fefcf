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
use neocloud_store::{allocations, nodes, Reader, Store};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

/// A change to the engine that takes effect once the transaction commits.
#[derive(Debug, Clone)]
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
}

pub struct PlacementService {
    state: Mutex<State>,
    serial: Mutex<()>,
    /// Rebuilds from the store (each reads every node and allocation).
    reloads: AtomicU64,
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
    Ok(State { engine, generation })
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
    pub fn new(state: State) -> PlacementService {
        PlacementService {
            state: Mutex::new(state),
            serial: Mutex::new(()),
            reloads: AtomicU64::new(0),
        }
    }

    /// Its metrics, in the text exposition format.
    pub fn render_metrics(&self) -> String {
        format!(
            "# HELP neocloud_placement_engine_reloads_total Placement engine rebuilds from the store (a write it was not told of: another replica's, or one whose effects it cannot replay).\n\
             # TYPE neocloud_placement_engine_reloads_total counter\n\
             neocloud_placement_engine_reloads_total {}\n",
            self.reloads.load(Ordering::Relaxed)
        )
    }

    /// Held by the dispatcher across a placement-changing write.
    pub fn serialize(&self) -> MutexGuard<'_, ()> {
        lock(&self.serial)
    }

    /// The engine, reloaded first (from `r`'s snapshot) if the store has
    /// moved on since it was built.
    pub fn current(&self, r: &mut dyn Reader) -> Result<MutexGuard<'_, State>> {
        let stored = allocations::placement_generation(r)?;
        let mut st = lock(&self.state);
        if st.generation != stored {
            tracing::debug!(from = st.generation, to = stored, "placement engine reloads");
            self.reloads.fetch_add(1, Ordering::Relaxed);
            *st = load(r)?;
        }
        Ok(st)
    }

    /// Applies committed effects. The store is the truth: an effect that
    /// does not apply reloads the engine.
    pub fn commit(&self, store: &Store, effects: Vec<Effect>) {
        let mut reload = false;
        {
            let mut st = lock(&self.state);
            for eff in effects {
                let res = match eff {
                    Effect::AddNode(spec) => st.engine.add_node(spec).map_err(|x| x.to_string()),
                    Effect::SetAvailability(id, a) => {
                        st.engine.set_availability(&id, a).map_err(|x| x.to_string())
                    }
                    Effect::Apply { id, placement, group } => st
                        .engine
                        .apply(&id, &placement, group.as_deref())
                        .map_err(|x| x.to_string()),
                    Effect::Release(id) => {
                        st.engine.release(&id);
                        Ok(())
                    }
                    Effect::Reload => Err("reload requested".to_string()),
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
                };
                if let Err(why) = res {
                    tracing::info!(reason = %why, "placement engine reloads from the store");
                    reload = true;
                    break;
                }
            }
        }
        if reload {
            self.reload(store);
        }
    }

    /// What a write it was not serialized with (a lifecycle step's) changed
    /// of what placement sees, moving the store's generation from `before`
    /// to `after`: the allocation it freed, node `node_id`'s availability.
    /// Applied only where the engine is at `before`. Else nothing now: the
    /// engine is behind the store and reloads when it is next read
    /// ([`Self::current`]), not in the step.
    pub fn tell(
        &self,
        before: i64,
        after: i64,
        node_id: &str,
        freed: Option<&str>,
        availability: Option<Availability>,
    ) {
        let mut st = lock(&self.state);
        if st.generation != before {
            return;
        }
        let freed_ok = match freed {
            Some(id) => {
                st.engine.release(id).map(|_| ()).ok_or_else(|| format!("no allocation {id}"))
            }
            None => Ok(()),
        };
        let res = freed_ok.and_then(|()| match availability {
            Some(a) => st.engine.set_availability(node_id, a).map_err(|x| x.to_string()),
            None => Ok(()),
        });
        match res {
            Ok(()) => st.generation = after,
            Err(why) => {
                tracing::info!(reason = %why, "placement engine reloads when next read");
                // No generation the store has: the next read reloads.
                st.generation = -1;
            }
        }
    }

    pub fn reload(&self, store: &Store) {
        self.reloads.fetch_add(1, Ordering::Relaxed);
        match store.read(load) {
            Ok(fresh) => *lock(&self.state) = fresh,
            Err(err) => tracing::error!(error = %err, "placement engine reload failed"),
        }
    }
}
