//! `neocloud bench placement`: decisions per second and latency of the
//! placement engine on a simulated fleet of HGX nodes, half of whose SUs
//! are fragmented by prior allocations; then the engine rebuilt from a
//! store holding that fleet ([`rebuild`]).

mod rebuild;

use neocloud_placement::{
    Assignment, Constraints, Engine, Placement, Request, Scope, Shape, SimulatedFleet,
};
use serde_json::json;
use std::process::ExitCode;
use std::time::Instant;

#[derive(clap::Args)]
pub struct PlacementArgs {
    /// Nodes in the simulated fleet (8 GPUs each, SUs of 32, pods of 4 SUs).
    #[arg(long, default_value_t = 10_000)]
    nodes: usize,
    /// Decisions measured per single-request shape.
    #[arg(long, default_value_t = 5_000)]
    decisions: usize,
    /// Gang decisions measured.
    #[arg(long, default_value_t = 100)]
    gangs: usize,
    /// Rebuilds of the engine from a store holding the fleet (0: none).
    #[arg(long, default_value_t = 10)]
    rebuilds: usize,
    /// The store the rebuilds read (default: SQLite in a temp dir); a
    /// PostgreSQL URL must name an empty database.
    #[arg(long)]
    store: Option<String>,
    /// Print JSON instead of a Markdown table.
    #[arg(long)]
    json: bool,
}

/// xorshift64*: a fixed seed makes the fleet and its fragmentation the same every run.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545F4914F6CDD1D)
    }
}

pub struct Fragmented {
    pub engine: Engine,
    /// The nodes, as added to the engine.
    pub specs: Vec<neocloud_placement::NodeSpec>,
    /// The prior allocations, as applied (id, placement).
    pub priors: Vec<(String, Placement)>,
    pub fragmented_nodes: usize,
    pub free_pods: usize,
}

/// The benchmark fleet: every node of a random half of the SUs carries
/// prior allocations (a 4-GPU block, a 2-GPU block, MIG slices on one GPU),
/// leaving one whole GPU free; the other SUs are empty.
pub fn fragmented_fleet(nodes: usize) -> Fragmented {
    let mut engine = Engine::new();
    let specs = SimulatedFleet::hgx(nodes, "h100-80gb").build();
    let sus = nodes.div_ceil(32);
    let mut rng = Rng(0x5EED_CAFE_F00D_1234);
    let fragmented: Vec<bool> = (0..sus).map(|_| rng.next().is_multiple_of(2)).collect();
    let mut count = 0;
    let mut priors = Vec::new();
    let mut apply = |engine: &mut Engine, id: String, p: Placement| {
        engine.apply(&id, &p, None).expect("prior");
        priors.push((id, p));
    };
    for (i, s) in specs.iter().enumerate() {
        let id = s.id.clone();
        engine.add_node(s.clone()).expect("valid node");
        if !fragmented[i / 32] {
            continue;
        }
        count += 1;
        let prior = [
            Assignment {
                node_id: id.clone(),
                gpus: vec![0, 1, 2, 3],
                whole_node: false,
                mig: None,
            },
            Assignment { node_id: id.clone(), gpus: vec![4, 5], whole_node: false, mig: None },
        ];
        for (k, a) in prior.into_iter().enumerate() {
            apply(&mut engine, format!("prior-{i}-{k}"), Placement { assignments: vec![a] });
        }
        for (k, (profile, start)) in [("3g.40gb", 0u8), ("1g.10gb", 4)].into_iter().enumerate() {
            let a = Assignment {
                node_id: id.clone(),
                gpus: vec![],
                whole_node: false,
                mig: Some(neocloud_placement::MigSlice { gpu: 6, profile: profile.into(), start }),
            };
            apply(&mut engine, format!("prior-mig-{i}-{k}"), Placement { assignments: vec![a] });
        }
    }
    let pods = sus.div_ceil(4);
    let free_pods =
        (0..pods).filter(|p| (p * 4..(p * 4 + 4).min(sus)).all(|s| !fragmented[s])).count();
    Fragmented { engine, specs, priors, fragmented_nodes: count, free_pods }
}

struct Row {
    name: String,
    decisions: usize,
    failed: usize,
    per_sec: f64,
    p50_us: f64,
    p99_us: f64,
    max_us: f64,
}

fn measure(e: &mut Engine, name: &str, n: usize, r: &Request, hold: usize) -> Row {
    let mut lat = Vec::with_capacity(n);
    let mut held = std::collections::VecDeque::new();
    let mut failed = 0;
    let start = Instant::now();
    for i in 0..n {
        let id = format!("{name}-{i}");
        let t = Instant::now();
        let ok = e.place(&id, r).is_ok();
        lat.push(t.elapsed());
        if ok {
            held.push_back(id);
        } else {
            failed += 1;
        }
        // Keep `hold` allocations live so the fleet stays in its state.
        while held.len() > hold {
            if let Some(old) = held.pop_front() {
                e.release(&old);
            }
        }
    }
    let total = start.elapsed();
    for id in held {
        e.release(&id);
    }
    lat.sort();
    let pct = |p: f64| crate::bench::percentile(&lat, p).as_secs_f64() * 1e6;
    Row {
        name: name.into(),
        decisions: n,
        failed,
        per_sec: n as f64 / total.as_secs_f64().max(1e-9),
        p50_us: pct(0.5),
        p99_us: pct(0.99),
        max_us: pct(1.0),
    }
}

pub fn run(a: PlacementArgs) -> ExitCode {
    let t = Instant::now();
    let Fragmented { mut engine, specs, priors, fragmented_nodes, free_pods } =
        fragmented_fleet(a.nodes);
    let fleet_capacity = engine.capacity();
    let build = t.elapsed();
    let model = "h100-80gb".to_string();
    let single = |shape: Shape| Request { shape, constraints: Constraints::default() };
    let gang = Request {
        shape: Shape::Nodes { gpu_model: model.clone(), count: 128 },
        constraints: Constraints { scope: Scope::Pod, ..Constraints::default() },
    };
    let rows = vec![
        measure(
            &mut engine,
            "whole node",
            a.decisions,
            &single(Shape::Nodes { gpu_model: model.clone(), count: 1 }),
            100,
        ),
        measure(
            &mut engine,
            "8 GPUs (one NVLink domain)",
            a.decisions,
            &single(Shape::Gpus { gpu_model: model.clone(), count: 8 }),
            100,
        ),
        measure(
            &mut engine,
            "1 GPU",
            a.decisions,
            &single(Shape::Gpus { gpu_model: model.clone(), count: 1 }),
            100,
        ),
        measure(
            &mut engine,
            "MIG 1g.10gb",
            a.decisions,
            &single(Shape::Mig { gpu_model: model.clone(), profile: "1g.10gb".into() }),
            100,
        ),
        measure(
            &mut engine,
            "MIG 3g.40gb",
            a.decisions,
            &single(Shape::Mig { gpu_model: model.clone(), profile: "3g.40gb".into() }),
            100,
        ),
        measure(&mut engine, "gang 1,024 GPUs (128 nodes, one pod)", a.gangs, &gang, 0),
    ];
    let cap = engine.capacity();
    let frag = cap.models.first().map(|m| m.total.fragmentation).unwrap_or(0.0);
    let rebuilt = match a.rebuilds {
        0 => None,
        n => match rebuild::measure(a.store.as_deref(), &specs, &priors, &fleet_capacity, n) {
            Ok(r) => Some(r),
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(1);
            }
        },
    };
    let ms = |d: std::time::Duration| d.as_secs_f64() * 1e3;
    let rebuilt_pct =
        |times: &[std::time::Duration], p: f64| ms(crate::bench::percentile(times, p));
    if a.json {
        let v: Vec<_> = rows
            .iter()
            .map(|r| {
                json!({"shape": r.name, "decisions": r.decisions, "failed": r.failed,
                "per_sec": r.per_sec, "p50_us": r.p50_us, "p99_us": r.p99_us, "max_us": r.max_us})
            })
            .collect();
        println!(
            "{}",
            json!({"nodes": a.nodes, "fragmented_nodes": fragmented_nodes, "free_pods": free_pods,
            "fragmentation": frag, "build_ms": build.as_secs_f64() * 1e3, "rows": v,
            "rebuilds": rebuilt.as_ref().map(|r| json!({"store": r.backend, "nodes": r.nodes,
                "allocations": r.allocations, "rebuilds": r.times.len(),
                "p50_ms": rebuilt_pct(&r.times, 0.5), "max_ms": rebuilt_pct(&r.times, 1.0),
                "replays": r.replays.len(), "replay_p50_ms": rebuilt_pct(&r.replays, 0.5),
                "replay_max_ms": rebuilt_pct(&r.replays, 1.0)}))})
        );
    } else {
        println!(
            "fleet: {} HGX nodes ({} GPUs), {} fragmented, {} pods entirely free, GPU fragmentation {:.2}; built in {:.0} ms",
            a.nodes,
            a.nodes * 8,
            fragmented_nodes,
            free_pods,
            frag,
            build.as_secs_f64() * 1e3
        );
        println!();
        println!("| request | decisions | failed | decisions/s | p50 µs | p99 µs | max µs |");
        println!("|---|---:|---:|---:|---:|---:|---:|");
        for r in &rows {
            println!(
                "| {} | {} | {} | {:.0} | {:.1} | {:.1} | {:.1} |",
                r.name, r.decisions, r.failed, r.per_sec, r.p50_us, r.p99_us, r.max_us
            );
        }
        if let Some(r) = &rebuilt {
            println!();
            println!(
                "The engine rebuilt from the store (a replica behind the store's placement generation; the fleet written in {:.1} s):",
                r.written.as_secs_f64()
            );
            println!();
            println!("| store | nodes | allocations | catch-up | times | p50 ms | max ms |");
            println!("|---|---:|---:|---|---:|---:|---:|");
            for (how, times) in [
                ("rebuild from every node and allocation", &r.times),
                ("replay of one logged write (a release)", &r.replays),
            ] {
                println!(
                    "| {} | {} | {} | {} | {} | {:.3} | {:.3} |",
                    r.backend,
                    r.nodes,
                    r.allocations,
                    how,
                    times.len(),
                    rebuilt_pct(times, 0.5),
                    rebuilt_pct(times, 1.0)
                );
            }
        }
    }

    if rows.iter().any(|r| r.failed > 0) {
        eprintln!("error: some requests found no capacity");
        return ExitCode::from(1);
    }
    ExitCode::SUCCESS
}
