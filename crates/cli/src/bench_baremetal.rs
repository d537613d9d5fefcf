//! `neocloud bench baremetal`: the node lifecycle at fleet scale against a
//! SIMULATED Redfish BMC fleet (`neocloud_server::simbmc`).
//!
//! The benchmark's process runs the server (fresh SQLite store, lifecycle
//! controller, boot service) and the API clients; the simulated BMCs run in
//! a process of their own by default (`--fleet`, see `bench_fleet`), each
//! answer delayed by `--bmc-latency`; a power-on with a network boot
//! override fetches the node's iPXE script from the boot service and starts
//! a simulated agent that registers and heartbeats through the real agent
//! API. The CPU of the two processes is reported apart. Three phases, each
//! timed from its first API call to the last state change the store records
//! (server-side times, not polling times):
//!
//! 1. enroll + inspect: `POST /v1/nodes` with BMC credentials for every
//!    node, until all are `available`;
//! 2. provision: instances (`count` = `--batch` per request) until all are
//!    `ready` (their simulated agents checked in);
//! 3. release + sanitize: `DELETE` every instance, until every instance is
//!    `released` and its node `available` with a complete signed record.
//!
//! Control-plane overhead of a phase: `(wall - ideal) / wall`, where
//! `ideal = ceil(nodes / parallel) * (BMC calls per node) * latency
//!  (+ the simulated boot delay when the phase boots nodes)`: the time the
//! BMC waits alone take when each node's calls are issued back to back and
//! `--parallel` nodes are worked on at once. Everything else (API calls,
//! store writes, the controller's passes, agent registration and
//! heartbeats) is overhead.
//!
//! With `--jitter J` each simulated answer and boot waits `(1 ± J)` times
//! its nominal time (uniformly), as real BMCs and boots vary, so the nodes
//! no longer move in lockstep; the ideal is then the slowest node's own
//! simulated waits in the phase (the fleet accounts them per node), when
//! `--parallel` covers the phase's nodes.

use crate::bench_api::{parallel, Api};
use crate::bench_fleet::Fleet;
use neocloud_common::time::process_cpu_secs;
use neocloud_common::time::{from_rfc3339, now_micros};
use neocloud_server::simbmc::{self, SimFleet, Stats};
use neocloud_server::Config;
use neocloud_store::{agents, instances, nodes, Store};
use neocloud_types::{Instance, InstanceState};
use serde_json::{json, Value};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(clap::Args)]
pub struct BaremetalArgs {
    /// Nodes enrolled and inspected through simulated BMCs.
    #[arg(long, default_value_t = 1000)]
    nodes: usize,
    /// Instances provisioned at once, then released and sanitized (at most --nodes).
    #[arg(long, default_value_t = 100)]
    provisions: usize,
    /// Added to every simulated BMC answer (the service root excepted).
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    bmc_latency: Duration,
    /// Spread of each simulated answer's latency and boot's delay: each
    /// waits `(1 ± jitter)` times as long, uniformly (0 to 0.9; 0: every
    /// node in lockstep). With a jitter, a phase's ideal is its slowest
    /// node's own simulated waits.
    #[arg(long, default_value_t = 0.0, value_parser = crate::bench_fleet::parse_jitter)]
    jitter: f64,
    /// Nodes the lifecycle controller steps at once (`lifecycle_parallel_steps`).
    #[arg(long, default_value_t = 1000)]
    parallel: usize,
    /// Instances per create request (`count`).
    #[arg(long, default_value_t = 100)]
    batch: u32,
    /// Client threads making the API calls.
    #[arg(long, default_value_t = 16)]
    clients: usize,
    /// The lifecycle controller's tick (`lifecycle_interval_ms`).
    #[arg(long, default_value_t = 200)]
    interval_ms: u64,
    /// Tenant agents' heartbeat interval (`heartbeat_interval_ms`; the
    /// server gives sanitizer agents at most 1 s: they receive their steps
    /// on a heartbeat).
    #[arg(long, default_value_t = 30_000)]
    heartbeat_ms: u64,
    /// Keep the instances (and their simulated agents) running this long
    /// before releasing them, and report the CPU the idle fleet uses.
    #[arg(long, default_value = "0s", value_parser = humantime::parse_duration)]
    hold: Duration,
    /// Give up a phase after this long.
    #[arg(long, default_value = "30m", value_parser = humantime::parse_duration)]
    timeout: Duration,
    /// Print JSON instead of Markdown.
    #[arg(long)]
    json: bool,
    /// Keep the store (SQLite file, with the audit trail of every
    /// transition) and print where it is.
    #[arg(long)]
    keep: bool,
    /// Where the SIMULATED fleet runs: `process` (a child process, its CPU
    /// measured apart from the control plane's), `in-process` (the
    /// benchmark's own process), or the URL of one started with
    /// `neocloud bench fleet --boot-url` pointing at `--listen`.
    #[arg(long, default_value = "process")]
    fleet: String,
    /// Where the server listens (the boot service and the agent API must be
    /// reachable from the fleet).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: String,
}

/// Counters of the simulated fleet and the CPU used, at one moment.
#[derive(Clone, Copy)]
struct Counters {
    fleet: Stats,
    /// This process: the server and the clients (and the fleet when it
    /// runs in process).
    cpu: Option<f64>,
}

impl Counters {
    fn cpu_since(&self, before: &Counters) -> (Option<f64>, Option<f64>) {
        let d = |a: Option<f64>, b: Option<f64>| a.zip(b).map(|(a, b)| a - b);
        (d(self.cpu, before.cpu), d(self.fleet.cpu_secs, before.fleet.cpu_secs))
    }
}

/// One phase's figures.
struct Phase {
    name: &'static str,
    nodes: usize,
    api_calls: usize,
    api_secs: f64,
    wall_secs: f64,
    bmc_requests: u64,
    /// BMC requests that waited the latency, per node.
    chain: f64,
    boots: u64,
    waves: usize,
    ideal_secs: f64,
    /// Per node (or instance): from its API call to its end state.
    each: Vec<f64>,
    /// CPU seconds the benchmark's process used (server and clients, and
    /// the simulated fleet when it runs in process), from the phase's start
    /// to its end being seen.
    cpu_secs: Option<f64>,
    /// CPU seconds the fleet's own process used meanwhile.
    fleet_cpu_secs: Option<f64>,
}

impl Phase {
    fn overhead_secs(&self) -> f64 {
        self.wall_secs - self.ideal_secs
    }
    fn overhead_share(&self) -> f64 {
        if self.wall_secs > 0.0 {
            self.overhead_secs() / self.wall_secs
        } else {
            0.0
        }
    }
    fn pct(&self, p: f64) -> f64 {
        let mut v: Vec<Duration> = self.each.iter().map(|s| Duration::from_secs_f64(*s)).collect();
        v.sort();
        crate::bench::percentile(&v, p).as_secs_f64()
    }
    fn json(&self) -> Value {
        json!({
            "phase": self.name, "nodes": self.nodes, "api_calls": self.api_calls,
            "api_secs": self.api_secs, "api_calls_per_s": rate(self.api_calls, self.api_secs),
            "wall_secs": self.wall_secs, "nodes_per_s": rate(self.nodes, self.wall_secs),
            "bmc_requests": self.bmc_requests,
            "bmc_requests_per_node": self.bmc_requests as f64 / self.nodes.max(1) as f64,
            "bmc_waits_per_node": self.chain, "simulated_boots": self.boots,
            "waves": self.waves, "ideal_secs": self.ideal_secs,
            "overhead_secs": self.overhead_secs(), "overhead_share": self.overhead_share(),
            "per_node_p50_secs": self.pct(0.5), "per_node_p99_secs": self.pct(0.99),
            "per_node_max_secs": self.pct(1.0), "cpu_secs": self.cpu_secs,
            "fleet_cpu_secs": self.fleet_cpu_secs,
        })
    }
}

fn rate(n: usize, secs: f64) -> f64 {
    if secs > 0.0 {
        n as f64 / secs
    } else {
        0.0
    }
}

fn secs_between(from: i64, to: i64) -> f64 {
    (to - from) as f64 / 1e6
}

fn micros(s: &str) -> i64 {
    from_rfc3339(s).unwrap_or(0)
}

/// Polls `f` until it answers `Some`, an error, or `timeout` passes.
fn wait<T>(
    what: &str,
    timeout: Duration,
    mut f: impl FnMut() -> Result<Option<T>, String>,
) -> Result<T, String> {
    let start = Instant::now();
    loop {
        if let Some(v) = f()? {
            return Ok(v);
        }
        if start.elapsed() > timeout {
            return Err(format!("timed out after {timeout:?} waiting for {what}"));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn node_counts(store: &Store) -> Result<std::collections::HashMap<String, i64>, String> {
    store.read(nodes::lifecycle_counts).map(|v| v.into_iter().collect()).map_err(|e| e.to_string())
}

fn project_instances(store: &Store, t: &str, p: &str) -> Result<Vec<Instance>, String> {
    store.read(|r| instances::list(r, t, p)).map_err(|e| e.to_string())
}

/// How many of the project's instances are in `state`; the instances
/// themselves once one failed (polled every 100 ms: a count, so the
/// harness's polling costs the control plane's cores next to nothing).
fn count_in(store: &Store, t: &str, p: &str, state: InstanceState) -> Result<usize, String> {
    let counts = store.read(|r| instances::state_counts(r, t, p)).map_err(|e| e.to_string())?;
    let of = |s: InstanceState| counts.iter().find(|(x, _)| *x == s).map_or(0, |(_, n)| *n);
    if of(InstanceState::Failed) > 0 {
        let all = project_instances(store, t, p)?;
        let why: Vec<_> = all.iter().filter_map(|i| i.reason.clone()).take(3).collect();
        return Err(format!("{} instance(s) failed: {why:?}", of(InstanceState::Failed)));
    }
    Ok(of(state) as usize)
}

struct Env {
    args: BaremetalArgs,
    base: String,
    token: String,
    store: Store,
    fleet: Fleet,
    /// The fleet's latency, simulated boot and jitter (it says, wherever
    /// it runs).
    latency: Duration,
    boot_delay: Duration,
    jitter: f64,
}

/// Each node's simulated waiting at one moment (with a jitter only).
type Waits = Option<Vec<(usize, f64)>>;

impl Env {
    /// The phase's ideal: its BMC waits alone, `--parallel` nodes at once.
    /// Without a jitter every node waits the same; with one, in a single
    /// wave, the slowest node's own waits (from the fleet's accounts).
    fn ideal(&self, nodes: usize, chain: f64, boots: bool, waits: (Waits, Waits)) -> (usize, f64) {
        let waves = nodes.div_ceil(self.args.parallel.max(1));
        if let (1, (Some(before), Some(after))) = (waves, waits) {
            let before: std::collections::HashMap<usize, f64> = before.into_iter().collect();
            let slowest = after
                .iter()
                .map(|(i, w)| w - before.get(i).copied().unwrap_or(0.0))
                .fold(0.0, f64::max);
            return (waves, slowest);
        }
        let mut ideal = waves as f64 * chain * self.latency.as_secs_f64();
        if boots {
            ideal += self.boot_delay.as_secs_f64();
        }
        (waves, ideal)
    }

    fn waits(&self) -> Result<Waits, String> {
        if self.jitter > 0.0 {
            self.fleet.waits().map(Some)
        } else {
            Ok(None)
        }
    }

    fn counters(&self) -> Result<Counters, String> {
        Ok(Counters { fleet: self.fleet.stats()?, cpu: process_cpu_secs() })
    }

    fn enroll(&self) -> Result<Phase, String> {
        let n = self.args.nodes;
        let before = self.counters()?;
        let waits_before = self.waits()?;
        let t0 = now_micros();
        let fleet_base = self.fleet.base().to_string();
        let (res, api) = parallel(&self.base, &self.token, self.args.clients, n, move |a, i| {
            let body = json!({
                "name": format!("bm-{i:05}"), "site": "bench",
                "pod": format!("pod-{}", i / 128), "su": format!("su-{}", i / 32),
                "rack": format!("rack-{}", i / 4), "gpu_model": "h100-80gb", "gpus": 8,
                "bmc": {"endpoint": simbmc::endpoint(&fleet_base, i),
                        "username": simbmc::USER, "password": simbmc::PASSWORD},
            });
            a.must("POST", "/v1/nodes", &body).map(|_| ())
        });
        if let Some(Err(e)) = res.into_iter().find(|r| r.is_err()) {
            return Err(format!("enroll: {e}"));
        }
        wait("every node to be available", self.args.timeout, || {
            let c = node_counts(&self.store)?;
            if let Some(f) = c.get("failed").filter(|f| **f > 0) {
                return Err(format!("{f} node(s) failed enrolling or inspecting: {c:?}"));
            }
            Ok((c.get("available").copied().unwrap_or(0) as usize >= n).then_some(()))
        })?;
        let after = self.counters()?;
        let (cpu_secs, fleet_cpu_secs) = after.cpu_since(&before);
        let all = self.store.read(nodes::list).map_err(|e| e.to_string())?;
        let done = all.iter().map(|x| micros(&x.lifecycle_since)).max().unwrap_or(t0);
        let each =
            all.iter().map(|x| secs_between(micros(&x.created_at), micros(&x.lifecycle_since)));
        let chain = (after.fleet.delayed - before.fleet.delayed) as f64 / n.max(1) as f64;
        let (waves, ideal) = self.ideal(n, chain, false, (waits_before, self.waits()?));
        Ok(Phase {
            name: "enroll + inspect",
            nodes: n,
            api_calls: n,
            api_secs: api.as_secs_f64(),
            wall_secs: secs_between(t0, done),
            bmc_requests: after.fleet.requests - before.fleet.requests,
            chain,
            boots: after.fleet.boots - before.fleet.boots,
            waves,
            ideal_secs: ideal,
            each: each.collect(),
            cpu_secs,
            fleet_cpu_secs,
        })
    }

    /// Tenant, quota, project, instance type and images.
    fn setup(&self) -> Result<(), String> {
        let a = Api::new(&self.base, &self.token);
        crate::bench_api::tenant(&a, "bench", self.args.provisions)?;
        crate::bench_api::catalog(&a, "bm-h100", ["bench-os", "bench-sanitizer"])
    }

    /// Creates the instances; their tenant and project ids and the phase.
    fn provision(&self) -> Result<(String, String, Phase), String> {
        let k = self.args.provisions;
        let batch = self.args.batch.clamp(1, 1024) as usize;
        let requests = k.div_ceil(batch);
        let before = self.counters()?;
        let waits_before = self.waits()?;
        let t0 = now_micros();
        let (res, api) =
            parallel(&self.base, &self.token, self.args.clients, requests, move |a, r| {
                let count = batch.min(k - r * batch);
                a.must(
                    "POST",
                    "/v1/tenants/bench/projects/p/instances",
                    &json!({"name": format!("b{r}"), "instance_type": "bm-h100",
                            "count": count, "image": "bench-os"}),
                )
            });
        let mut ids = None;
        for r in res {
            let v = r.map_err(|e| format!("provision: {e}"))?;
            let first = &v["items"][0];
            ids = Some((
                first["tenant_id"].as_str().unwrap_or_default().to_string(),
                first["project_id"].as_str().unwrap_or_default().to_string(),
            ));
        }
        let (t, p) = ids.ok_or("provision: no instance created")?;
        wait("every instance to be ready", self.args.timeout, || {
            Ok((count_in(&self.store, &t, &p, InstanceState::Ready)? >= k).then_some(()))
        })?;
        let done = project_instances(&self.store, &t, &p)?;
        let after = self.counters()?;
        let (cpu_secs, fleet_cpu_secs) = after.cpu_since(&before);
        let end = done.iter().map(|i| micros(&i.updated_at)).max().unwrap_or(t0);
        let chain = (after.fleet.delayed - before.fleet.delayed) as f64 / k.max(1) as f64;
        let (waves, ideal) = self.ideal(k, chain, true, (waits_before, self.waits()?));
        let each = done.iter().map(|i| secs_between(micros(&i.created_at), micros(&i.updated_at)));
        let phase = Phase {
            name: "provision",
            nodes: k,
            api_calls: requests,
            api_secs: api.as_secs_f64(),
            wall_secs: secs_between(t0, end),
            bmc_requests: after.fleet.requests - before.fleet.requests,
            chain,
            boots: after.fleet.boots - before.fleet.boots,
            waves,
            ideal_secs: ideal,
            each: each.collect(),
            cpu_secs,
            fleet_cpu_secs,
        };
        Ok((t, p, phase))
    }

    /// Releases every instance; the phase and the complete records found.
    fn release(&self, t: &str, p: &str) -> Result<(Phase, usize), String> {
        let k = self.args.provisions;
        let names: Vec<String> =
            project_instances(&self.store, t, p)?.into_iter().map(|i| i.name).collect();
        let before = self.counters()?;
        let waits_before = self.waits()?;
        let t0 = now_micros();
        let names = Arc::new(names);
        let n2 = names.clone();
        let (res, api) = parallel(&self.base, &self.token, self.args.clients, k, move |a, i| {
            let (s, v) = a.call(
                "DELETE",
                &format!("/v1/tenants/bench/projects/p/instances/{}", n2[i]),
                None,
            );
            if s == 202 {
                Ok(micros(v["updated_at"].as_str().unwrap_or_default()))
            } else {
                Err(format!("release {}: {s} {v}", n2[i]))
            }
        });
        let mut requested = Vec::with_capacity(k);
        for r in res {
            requested.push(r?);
        }
        wait("every instance to be released and sanitized", self.args.timeout, || {
            let c = node_counts(&self.store)?;
            if let Some(f) = c.get("failed").filter(|f| **f > 0) {
                let all = project_instances(&self.store, t, p)?;
                let why: Vec<_> = all.iter().filter_map(|i| i.reason.clone()).take(3).collect();
                return Err(format!("{f} node(s) failed releasing or sanitizing: {why:?}"));
            }
            let released = count_in(&self.store, t, p, InstanceState::Released)?;
            let available = c.get("available").copied().unwrap_or(0) as usize;
            Ok((released >= k && available >= self.args.nodes).then_some(()))
        })?;
        let done = project_instances(&self.store, t, p)?;
        let after = self.counters()?;
        let (cpu_secs, fleet_cpu_secs) = after.cpu_since(&before);
        let end = done.iter().map(|i| micros(&i.updated_at)).max().unwrap_or(t0);
        let complete = self
            .store
            .read(|r| {
                let mut n = 0;
                for i in &done {
                    let recs = agents::records_for_instance(r, t, &i.id)?;
                    if recs.iter().any(|(_, body, _, _)| {
                        serde_json::from_str::<Value>(body)
                            .map(|b| b["complete"] == json!(true))
                            .unwrap_or(false)
                    }) {
                        n += 1;
                    }
                }
                Ok(n)
            })
            .map_err(|e| e.to_string())?;
        let chain = (after.fleet.delayed - before.fleet.delayed) as f64 / k.max(1) as f64;
        let (waves, ideal) = self.ideal(k, chain, true, (waits_before, self.waits()?));
        // Per instance: from its release request to its record.
        let by_name: std::collections::HashMap<&str, i64> =
            names.iter().map(String::as_str).zip(requested.iter().copied()).collect();
        let each = done.iter().map(|i| {
            secs_between(by_name.get(i.name.as_str()).copied().unwrap_or(t0), micros(&i.updated_at))
        });
        let phase = Phase {
            name: "release + sanitize",
            nodes: k,
            api_calls: k,
            api_secs: api.as_secs_f64(),
            wall_secs: secs_between(t0, end),
            bmc_requests: after.fleet.requests - before.fleet.requests,
            chain,
            boots: after.fleet.boots - before.fleet.boots,
            waves,
            ideal_secs: ideal,
            each: each.collect(),
            cpu_secs,
            fleet_cpu_secs,
        };
        Ok((phase, complete))
    }
}

/// Cores used while the instances were held: the control plane's process
/// and, when it runs apart, the fleet's.
type Held = (Option<f64>, Option<f64>);

fn print(env: &Env, phases: &[Phase], complete: usize, setup_secs: f64, held: Option<Held>) {
    let a = &env.args;
    let boot = env.boot_delay;
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    let latency = env.latency.as_secs_f64();
    let fleet = if env.fleet.apart() { "its own process" } else { "the benchmark's process" };
    if a.json {
        let v: Vec<Value> = phases.iter().map(Phase::json).collect();
        println!(
            "{}",
            json!({"nodes": a.nodes, "provisions": a.provisions, "bmc_latency_secs": latency,
                   "parallel": a.parallel, "batch": a.batch, "clients": a.clients,
                   "lifecycle_interval_ms": a.interval_ms, "heartbeat_interval_ms": a.heartbeat_ms,
                   "simulated_boot_delay_secs": boot.as_secs_f64(), "jitter": env.jitter,
                   "cores": cores,
                   "fleet": a.fleet, "fleet_apart": env.fleet.apart(),
                   "setup_secs": setup_secs, "complete_sanitization_records": complete,
                   "hold_secs": a.hold.as_secs_f64(), "hold_cpu_cores": held.and_then(|h| h.0),
                   "hold_fleet_cpu_cores": held.and_then(|h| h.1), "phases": v})
        );
        return;
    }
    let spread = if env.jitter > 0.0 {
        format!(
            " (each ± {:.0}%, uniformly; ideal: the slowest node's own waits)",
            env.jitter * 100.0
        )
    } else {
        String::new()
    };
    println!(
        "{} nodes, {} provisions; SIMULATED BMCs in {fleet}, {} s per answer, simulated boot \
         {} s{spread}; {} nodes stepped at once; tick {} ms, heartbeat {} ms; {cores} cores",
        a.nodes,
        a.provisions,
        latency,
        boot.as_secs_f64(),
        a.parallel,
        a.interval_ms,
        a.heartbeat_ms
    );
    println!();
    let cpu_head = if env.fleet.apart() { "CPU s control plane / fleet" } else { "CPU s" };
    println!(
        "| phase | nodes | API calls/s | wall s | nodes/s | BMC calls/node | waits/node | ideal s | overhead s | overhead | per node p50 / p99 / max s | {cpu_head} |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for p in phases {
        println!(
            "| {} | {} | {:.0} | {:.2} | {:.1} | {:.1} | {:.1} | {:.2} | {:.2} | {:.1}% | {:.2} / {:.2} / {:.2} | {} |",
            p.name,
            p.nodes,
            rate(p.api_calls, p.api_secs),
            p.wall_secs,
            rate(p.nodes, p.wall_secs),
            p.bmc_requests as f64 / p.nodes.max(1) as f64,
            p.chain,
            p.ideal_secs,
            p.overhead_secs(),
            p.overhead_share() * 100.0,
            p.pct(0.5),
            p.pct(0.99),
            p.pct(1.0),
            cpu_cell(p)
        );
    }
    println!();
    println!("complete signed sanitization records: {complete} of {}", a.provisions);
    if let Some((cp, fleet)) = held {
        let f = |c: Option<f64>| c.map(|c| format!("{c:.2}")).unwrap_or_else(|| "-".into());
        let (who, apart) = match fleet {
            Some(_) => ("the control plane", format!(", the SIMULATED fleet {}", f(fleet))),
            None => ("the process", String::new()),
        };
        println!(
            "{} instances held {} s: {who} used {} cores meanwhile{apart}",
            a.provisions,
            a.hold.as_secs_f64(),
            f(cp)
        );
    }
}

fn cpu_cell(p: &Phase) -> String {
    let f = |c: Option<f64>| c.map(|c| format!("{c:.1}")).unwrap_or_else(|| "-".into());
    match p.fleet_cpu_secs {
        Some(_) => format!("{} / {}", f(p.cpu_secs), f(p.fleet_cpu_secs)),
        None => f(p.cpu_secs),
    }
}

pub fn run(a: BaremetalArgs) -> ExitCode {
    if a.nodes == 0 || a.provisions > a.nodes {
        eprintln!("error: --nodes must be positive and --provisions at most --nodes");
        return ExitCode::from(crate::output::EXIT_USAGE);
    }
    if a.parallel == 0 || a.clients == 0 {
        eprintln!("error: --parallel and --clients must be positive");
        return ExitCode::from(crate::output::EXIT_USAGE);
    }
    // The server's logs (every request, every transition) only on demand:
    // they cost as much as what is measured.
    if std::env::var_os("NEOCLOUD_BENCH_LOG").is_some() {
        neocloud_server::init_logging(neocloud_server::LogFormat::Text);
    }
    // Every lifecycle step holds a blocking thread while it waits on its
    // BMC; API handlers, the boot service and the store need more.
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(a.parallel + 512)
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let dir = std::env::temp_dir().join(format!("neocloud-bench-bm-{}", neocloud_common::new_id()));
    let config = Config {
        listen: a.listen.clone(),
        data_dir: dir.clone(),
        rate_limit_per_sec: 0,
        // Every simulated agent registers from 127.0.0.1.
        anonymous_rate_limit_per_sec: 0,
        lifecycle_interval_ms: a.interval_ms,
        lifecycle_parallel_steps: a.parallel,
        heartbeat_interval_ms: a.heartbeat_ms,
        ..Config::default()
    };
    let (server, base, token) = match crate::bench_api::bind(&rt, config) {
        Ok(x) => x,
        Err(code) => return code,
    };
    let cancel = server.cancel_token();
    let store = server.store();
    let served = rt.spawn(server.run());
    let started_fleet = match a.fleet.as_str() {
        "in-process" => start_in_process(
            &rt,
            &base,
            (a.bmc_latency, a.jitter),
            cancel.clone().cancelled_owned(),
        ),
        "process" => Fleet::child(&base, a.bmc_latency, a.jitter).map(|f| (f, None)),
        url if url.starts_with("http://") || url.starts_with("https://") => {
            Ok((Fleet::remote(url), None))
        }
        other => {
            eprintln!("error: --fleet {other:?}: expected process, in-process or a URL");
            return ExitCode::from(crate::output::EXIT_USAGE);
        }
    };
    let ((fleet, fleet_served), stats) = match started_fleet.and_then(|f| {
        let stats = f.0.stats().map_err(|e| format!("the SIMULATED fleet does not answer: {e}"))?;
        Ok((f, stats))
    }) {
        Ok(x) => x,
        Err(e) => {
            eprintln!("error: {e}");
            cancel.cancel();
            let _ = rt.block_on(served);
            return ExitCode::from(1);
        }
    };
    let env = Env {
        args: a,
        base,
        token,
        store,
        fleet,
        latency: Duration::from_secs_f64(stats.latency_secs),
        boot_delay: Duration::from_secs_f64(stats.boot_delay_secs),
        jitter: stats.jitter,
    };

    let started = Instant::now();
    type Figures = (Vec<Phase>, usize, f64, Option<Held>);
    let result = (|| -> Result<Figures, String> {
        let enroll = env.enroll()?;
        let t = Instant::now();
        env.setup()?;
        let setup_secs = t.elapsed().as_secs_f64();
        let (tenant, project, provision) = env.provision()?;
        let held = if env.args.hold.is_zero() {
            None
        } else {
            let before = env.counters()?;
            std::thread::sleep(env.args.hold);
            let (cp, fleet) = env.counters()?.cpu_since(&before);
            let per_sec = |c: Option<f64>| c.map(|c| c / env.args.hold.as_secs_f64());
            Some((per_sec(cp), per_sec(fleet)))
        };
        let (release, complete) = env.release(&tenant, &project)?;
        Ok((vec![enroll, provision, release], complete, setup_secs, held))
    })();
    cancel.cancel();
    rt.block_on(async {
        let _ = served.await;
        if let Some(f) = fleet_served {
            let _ = f.await;
        }
    });
    rt.shutdown_timeout(Duration::from_secs(10));
    if env.args.keep {
        eprintln!("kept {}", dir.display());
    } else {
        let _ = std::fs::remove_dir_all(&dir);
    }
    match result {
        Ok((phases, complete, setup_secs, held)) => {
            print(&env, &phases, complete, setup_secs, held);
            if !env.args.json {
                println!("total {:.1} s", started.elapsed().as_secs_f64());
            }
            if complete < env.args.provisions {
                eprintln!("error: some sanitization records are missing or incomplete");
                return ExitCode::from(1);
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}

/// The fleet in this process, on this runtime, served until `stop`; its task.
fn start_in_process(
    rt: &tokio::runtime::Runtime,
    boot_url: &str,
    (latency, jitter): (Duration, f64),
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(Fleet, Option<tokio::task::JoinHandle<()>>), String> {
    let mut fleet = SimFleet::new(Some(boot_url.to_string()), latency);
    if let Some(f) = Arc::get_mut(&mut fleet) {
        f.jitter = jitter;
    }
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .map_err(|e| format!("simulated BMC listener: {e}"))?;
    let base = listener
        .local_addr()
        .map(|x| format!("http://{x}"))
        .map_err(|e| format!("simulated BMC listener: {e}"))?;
    let served = rt.spawn(simbmc::serve(listener, fleet.clone(), stop));
    Ok((Fleet::InProcess { fleet, base }, Some(served)))
}
