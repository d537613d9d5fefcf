//! The benchmark's report: each phase's figures, in Markdown or JSON.

use super::phases::Env;
use serde_json::{json, Value};
use std::time::Duration;

/// One phase's figures.
pub(super) struct Phase {
    pub(super) name: &'static str,
    pub(super) nodes: usize,
    pub(super) api_calls: usize,
    pub(super) api_secs: f64,
    pub(super) wall_secs: f64,
    pub(super) bmc_requests: u64,
    /// BMC requests that waited the latency, per node.
    pub(super) chain: f64,
    pub(super) boots: u64,
    /// Bytes of per-node ISOs the SIMULATED BMCs read from the boot
    /// service (HEAD, then 512 KiB ranges) before their nodes booted.
    pub(super) media_bytes: u64,
    pub(super) waves: usize,
    pub(super) ideal_secs: f64,
    /// Per node (or instance): from its API call to its end state.
    pub(super) each: Vec<f64>,
    /// Instances placed on another node (their first node hung at boot).
    pub(super) placed_again: u32,
    /// CPU seconds the benchmark's process used (server and clients, and
    /// the simulated fleet when it runs in process), from the phase's start
    /// to its end being seen.
    pub(super) cpu_secs: Option<f64>,
    /// CPU seconds the fleet's own process used meanwhile.
    pub(super) fleet_cpu_secs: Option<f64>,
    /// Placement engine rebuilds from the store during the phase.
    pub(super) reloads: u64,
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
            "virtual_media_bytes": self.media_bytes,
            "waves": self.waves, "ideal_secs": self.ideal_secs,
            "overhead_secs": self.overhead_secs(), "overhead_share": self.overhead_share(),
            "per_node_p50_secs": self.pct(0.5), "per_node_p99_secs": self.pct(0.99),
            "per_node_max_secs": self.pct(1.0), "placed_again": self.placed_again,
            "cpu_secs": self.cpu_secs,
            "fleet_cpu_secs": self.fleet_cpu_secs,
            "placement_engine_reloads": self.reloads,
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

/// Cores used while the instances were held: the control plane's process
/// and, when it runs apart, the fleet's.
pub(super) type Held = (Option<f64>, Option<f64>);

pub(super) fn print(
    env: &Env,
    phases: &[Phase],
    complete: usize,
    setup_secs: f64,
    held: Option<Held>,
) {
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
                   "boot_method": neocloud_types::BootMethod::from(a.boot_method),
                   "static_addresses": a.static_addresses.is_some(),
                   "fleet": a.fleet, "fleet_apart": env.fleet.apart(),
                   "setup_secs": setup_secs, "complete_sanitization_records": complete,
                   "dead_nodes": a.dead_nodes, "boot_timeout_secs": a.boot_timeout.as_secs(),
                   "boot_attempts": a.boot_attempts,
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
        "{} nodes, {} provisions, booting by {}{}; SIMULATED BMCs in {fleet}, {} s per answer, simulated boot \
         {} s{spread}; {} nodes stepped at once; tick {} ms, heartbeat {} ms; {cores} cores",
        a.nodes,
        a.provisions,
        neocloud_types::BootMethod::from(a.boot_method).as_str(),
        if a.static_addresses.is_some() { " (static addresses, an ISO per node)" } else { "" },
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
    let reloads: Vec<String> = phases.iter().map(|p| format!("{} {}", p.name, p.reloads)).collect();
    println!("placement engine rebuilds from the store: {}", reloads.join(", "));
    let placed_again: u32 = phases.iter().map(|p| p.placed_again).sum();
    if a.dead_nodes > 0 {
        println!(
            "{} nodes hung at every boot ({} × {} s boot timeout each): {placed_again} instances \
             placed on another node; the provision's overhead counts those timeouts",
            a.dead_nodes,
            a.boot_attempts,
            a.boot_timeout.as_secs()
        );
    }
    let media: u64 = phases.iter().map(|p| p.media_bytes).sum();
    if media > 0 {
        let per_phase: Vec<String> = phases
            .iter()
            .filter(|p| p.media_bytes > 0)
            .map(|p| format!("{} {:.0} MB", p.name, p.media_bytes as f64 / 1e6))
            .collect();
        println!("per-node ISOs read by the BMCs from the boot service: {}", per_phase.join(", "));
    }
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
