//! The placement engine rebuilt from the store (`bench placement`'s last
//! table): what a replica pays when the store's placement generation moved
//! on without it (another replica's write, or one of its own it could not
//! replay). The benchmark's fleet and its prior allocations are written to a
//! fresh store (SQLite in a temp dir, or `--store URL`), then the server's
//! own [`neocloud_server::placement::load`] runs on it; then an engine one
//! write behind catches up from the placement log instead.

use neocloud_placement::{NodeSpec, Placement};
use neocloud_server::placement::{self, Effect, PlacementService};
use neocloud_store::{
    allocation_holds, allocations, instance_types, nodes, projects, tenants, Store,
};
use neocloud_types::{AllocationKind, InstanceKind, NodeCreate, ProjectCreate, TenantCreate};
use std::collections::HashMap;
use std::time::{Duration, Instant};

pub struct Rebuilds {
    pub backend: &'static str,
    pub nodes: usize,
    pub allocations: usize,
    /// Writing the fleet to the store (not part of a rebuild).
    pub written: Duration,
    /// Each rebuild, sorted.
    pub times: Vec<Duration>,
    /// Each catch-up of an engine one write behind from the placement log
    /// (a release, as another replica logs it), sorted.
    pub replays: Vec<Duration>,
}

fn named(s: &str) -> neocloud_common::Name {
    neocloud_common::Name::parse(s).expect("a valid name")
}

/// Writes `specs` (as nodes without a BMC: available at once) and `priors`
/// (as one tenant's active allocations holding their units) to `store`.
fn write_fleet(
    store: &Store,
    specs: &[NodeSpec],
    priors: &[(String, Placement)],
) -> neocloud_common::Result<(String, String)> {
    store.write(|w| {
        let t = tenants::create(
            w,
            &TenantCreate { name: named("bench"), display_name: None, description: None },
        )?;
        let p =
            projects::create(w, &t.id, &ProjectCreate { name: named("fleet"), description: None })?;
        let it = instance_types::create(
            w,
            &instance_types::NewInstanceType {
                name: "prior",
                kind: InstanceKind::Vm,
                gpu_model: "h100-80gb",
                gpus: 1,
                mig_profile: None,
                vcpus: 1,
                memory_gib: 1,
                description: "",
            },
        )?;
        // The engine's node ids, as the store names them.
        let mut ids = HashMap::new();
        for s in specs {
            let new: NodeCreate = serde_json::from_value(serde_json::json!({
                "name": s.name, "site": s.site, "pod": s.pod, "su": s.su, "rack": s.rack,
                "nvlink_domain": s.nvlink_domain, "gpu_model": s.gpu_model, "gpus": s.gpus,
                "mig_capable": s.mig_capable,
            }))
            .map_err(|e| neocloud_common::Error::internal(format!("bench node: {e}")))?;
            ids.insert(s.id.clone(), nodes::create(w, &new, None)?.id);
        }
        let placed: Vec<(String, Placement, Vec<allocation_holds::Unit>)> = priors
            .iter()
            .map(|(id, pl)| {
                let mut pl = pl.clone();
                for a in &mut pl.assignments {
                    a.node_id = ids[&a.node_id].clone();
                }
                let units = pl.units("h100-80gb");
                (id.clone(), pl, units)
            })
            .collect();
        let cons = neocloud_placement::Constraints::default();
        for chunk in placed.chunks(500) {
            let new: Vec<allocations::NewAllocation<'_>> = chunk
                .iter()
                .map(|(id, pl, units)| allocations::NewAllocation {
                    id,
                    tenant_id: &t.id,
                    project_id: &p.id,
                    instance_type_id: &it.id,
                    kind: AllocationKind::Allocation,
                    reservation_id: None,
                    count: 1,
                    constraints: &cons,
                    placement: pl,
                    claim_id: "bench",
                    units,
                })
                .collect();
            allocations::create_many(w, &new)?;
        }
        allocations::bump_placement_generation(w)?;
        Ok((t.id, p.id))
    })
}

/// Writes the fleet to a store at `url` (a fresh SQLite file when `None`)
/// and rebuilds the engine from it `times` times; each rebuild must see
/// `expect` (the in-memory fleet's capacity).
pub fn measure(
    url: Option<&str>,
    specs: &[NodeSpec],
    priors: &[(String, Placement)],
    expect: &neocloud_placement::capacity::Capacity,
    times: usize,
) -> Result<Rebuilds, String> {
    let dir = std::env::temp_dir().join(format!("neocloud-bench-rebuild-{}", std::process::id()));
    let url = match url {
        Some(u) => u.to_string(),
        None => {
            std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
            format!("sqlite://{}", dir.join("store.db").display())
        }
    };
    let out = (|| {
        let store = Store::open(&url).map_err(|e| format!("store {url}: {e}"))?;
        let t = Instant::now();
        let (tenant, project) =
            write_fleet(&store, specs, priors).map_err(|e| format!("writing the fleet: {e}"))?;
        let written = t.elapsed();
        let mut took = Vec::with_capacity(times);
        for _ in 0..times {
            let t = Instant::now();
            let st = store.read(placement::load).map_err(|e| format!("rebuild: {e}"))?;
            took.push(t.elapsed());
            // What was written is what the rebuild sees.
            if st.engine.capacity() != *expect {
                return Err("the engine rebuilt from the store differs from the fleet's".into());
            }
        }
        took.sort();
        // An engine one write behind (another replica released an
        // allocation and logged it) catches up from the placement log.
        let svc =
            PlacementService::new(store.read(placement::load).map_err(|e| e.to_string())?, &store);
        let mut replays = Vec::with_capacity(times);
        for (id, _) in priors.iter().take(times) {
            store
                .write(|w| {
                    allocations::release(w, &tenant, &project, id)?;
                    let g = allocations::bump_placement_generation(w)?;
                    placement::log(w, &[Effect::Release(id.clone()), Effect::Generation(g)])
                })
                .map_err(|e| format!("release: {e}"))?;
            let t = Instant::now();
            store.read(|r| svc.current(r).map(|_| ())).map_err(|e| format!("catch-up: {e}"))?;
            replays.push(t.elapsed());
        }
        let metrics = svc.render_metrics();
        let replayed = format!("neocloud_placement_engine_replays_total {}\n", replays.len());
        if !metrics.contains(&replayed) || !metrics.contains("reloads_total 0\n") {
            return Err(format!("catch-ups were not all replays: {metrics}"));
        }
        replays.sort();
        Ok(Rebuilds {
            backend: if url.starts_with("postgres") { "PostgreSQL" } else { "SQLite" },
            nodes: specs.len(),
            allocations: priors.len(),
            written,
            times: took,
            replays,
        })
    })();
    let _ = std::fs::remove_dir_all(&dir);
    out
}
