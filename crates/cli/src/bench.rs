//! `neocloud bench api`: throughput and latency of API reads and writes
//! against an in-process server on a fresh SQLite store (or `--db`).
//!
//! Writes and reads run open-loop at fixed rates: each request has a
//! scheduled start time and its latency is measured from that time, so a
//! stalled server is charged for the requests it delayed (no coordinated
//! omission). A closed-loop phase then measures the highest read rate.

use neocloud_server::{Config, Server};
use serde_json::{json, Value};
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(clap::Args)]
pub struct BenchArgs {
    #[command(subcommand)]
    what: BenchWhat,
}

#[derive(clap::Subcommand)]
enum BenchWhat {
    /// Placement decisions on a simulated fleet (no server, no store).
    Placement(crate::bench_placement::PlacementArgs),
    /// Fabric planning, rendering and diffing at scale (no server, no switches).
    Fabric(crate::bench_fabric::FabricArgs),
    /// Tenant-network writes through the API on a large fabric (in-process server on SQLite).
    Network(crate::bench_network::NetworkArgs),
    /// Enrollment, provisioning and sanitization through SIMULATED Redfish
    /// BMCs and simulated agents, against an in-process server.
    Baremetal(crate::bench_baremetal::BaremetalArgs),
    /// Serves a SIMULATED BMC fleet for `bench baremetal --fleet URL`
    /// (on another machine: the control plane's cores then run only the
    /// control plane).
    Fleet(crate::bench_fleet::FleetArgs),
    /// Reads and writes through the HTTP API.
    Api {
        /// Length of each phase.
        #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
        duration: Duration,
        /// Writes per second (quota claims with an Idempotency-Key).
        #[arg(long, default_value_t = 500)]
        write_rate: u32,
        /// Reads per second during the mixed phase.
        #[arg(long, default_value_t = 1000)]
        read_rate: u32,
        /// Client threads for the open-loop phases.
        #[arg(long, default_value_t = 64)]
        workers: usize,
        /// Concurrent clients for the closed-loop read phase.
        #[arg(long, default_value_t = 8)]
        concurrency: usize,
        /// Store URL (default: a fresh SQLite file in a temp dir).
        #[arg(long)]
        db: Option<String>,
        /// Print JSON instead of a Markdown table.
        #[arg(long)]
        json: bool,
    },
}

/// One request of a phase: the `i`th; returns whether it succeeded.
type Job = Arc<dyn Fn(&ureq::Agent, usize) -> bool + Send + Sync>;

struct Target {
    base: String,
    token: String,
}

fn agent() -> ureq::Agent {
    ureq::AgentBuilder::new().timeout(Duration::from_secs(30)).build()
}

fn send(
    a: &ureq::Agent,
    t: &Target,
    method: &str,
    path: &str,
    body: Option<&Value>,
    key: Option<&str>,
) -> u16 {
    let mut r = a
        .request(method, &format!("{}{path}", t.base))
        .set("Authorization", &format!("Bearer {}", t.token));
    if let Some(k) = key {
        r = r.set("Idempotency-Key", k);
    }
    let res = match body {
        Some(b) => r.send_json(b.clone()),
        None => r.call(),
    };
    match res {
        Ok(resp) => {
            let s = resp.status();
            let _ = resp.into_string();
            s
        }
        Err(ureq::Error::Status(s, resp)) => {
            let _ = resp.into_string();
            s
        }
        Err(_) => 0,
    }
}

#[derive(Default)]
struct Samples {
    lat: Vec<Duration>,
    errors: usize,
}

impl Samples {
    fn pct(&mut self, p: f64) -> f64 {
        self.lat.sort();
        percentile(&self.lat, p).as_secs_f64() * 1000.0
    }
}

/// The `p` quantile (nearest rank) of sorted latencies; zero for none.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

struct PhaseResult {
    name: String,
    requests: usize,
    errors: usize,
    rate: f64,
    p50: f64,
    p99: f64,
    max: f64,
}

impl PhaseResult {
    /// Merges the workers' samples of a phase that took `elapsed`.
    fn from_workers(
        name: &str,
        workers: Vec<std::thread::JoinHandle<Samples>>,
        elapsed: impl Fn() -> f64,
    ) -> PhaseResult {
        let mut s = Samples::default();
        for w in workers {
            if let Ok(local) = w.join() {
                s.lat.extend(local.lat);
                s.errors += local.errors;
            }
        }
        let elapsed = elapsed();
        PhaseResult {
            name: name.into(),
            requests: s.lat.len(),
            errors: s.errors,
            rate: s.lat.len() as f64 / elapsed,
            p50: s.pct(0.50),
            p99: s.pct(0.99),
            max: s.pct(1.0),
        }
    }
}

impl Samples {
    fn record(&mut self, ok: bool, latency: Duration) {
        self.lat.push(latency);
        if !ok {
            self.errors += 1;
        }
    }
}

/// Runs `rate` requests per second for `duration` on `workers` threads; each
/// request `i` starts at `t0 + i / rate` and is timed from then.
fn open_loop(name: &str, rate: u32, duration: Duration, workers: usize, f: Job) -> PhaseResult {
    let total = (rate as f64 * duration.as_secs_f64()) as usize;
    let next = Arc::new(AtomicUsize::new(0));
    let t0 = Instant::now() + Duration::from_millis(50);
    let interval = 1.0 / rate.max(1) as f64;
    let handles = (0..workers)
        .map(|_| {
            let (next, f) = (next.clone(), f.clone());
            std::thread::spawn(move || {
                let a = agent();
                let mut local = Samples::default();
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    if i >= total {
                        return local;
                    }
                    let at = t0 + Duration::from_secs_f64(i as f64 * interval);
                    let now = Instant::now();
                    if at > now {
                        std::thread::sleep(at - now);
                    }
                    let ok = f(&a, i);
                    local.record(ok, Instant::now().saturating_duration_since(at));
                }
            })
        })
        .collect();
    PhaseResult::from_workers(name, handles, || t0.elapsed().as_secs_f64())
}

/// `concurrency` clients, each sending its next request as soon as the
/// previous one is answered, for `duration`.
fn closed_loop(name: &str, concurrency: usize, duration: Duration, f: Job) -> PhaseResult {
    let start = Instant::now();
    let counter = Arc::new(AtomicUsize::new(0));
    let handles = (0..concurrency)
        .map(|_| {
            let (counter, f) = (counter.clone(), f.clone());
            std::thread::spawn(move || {
                let a = agent();
                let mut local = Samples::default();
                while start.elapsed() < duration {
                    let i = counter.fetch_add(1, Ordering::SeqCst);
                    let t = Instant::now();
                    let ok = f(&a, i);
                    local.record(ok, t.elapsed());
                }
                local
            })
        })
        .collect();
    PhaseResult::from_workers(name, handles, || start.elapsed().as_secs_f64())
}

pub fn run(a: BenchArgs) -> ExitCode {
    let (duration, write_rate, read_rate, workers, concurrency, db, json) = match a.what {
        BenchWhat::Placement(p) => return crate::bench_placement::run(p),
        BenchWhat::Baremetal(b) => return crate::bench_baremetal::run(b),
        BenchWhat::Fleet(f) => return crate::bench_fleet::run_fleet(f),
        BenchWhat::Fabric(f) => return crate::bench_fabric::run(f),
        BenchWhat::Network(n) => return crate::bench_network::run(n),
        BenchWhat::Api { duration, write_rate, read_rate, workers, concurrency, db, json } => {
            (duration, write_rate, read_rate, workers, concurrency, db, json)
        }
    };
    let dir = std::env::temp_dir().join(format!("neocloud-bench-{}", neocloud_common::new_id()));
    let config = Config {
        listen: "127.0.0.1:0".into(),
        db: db.clone(),
        data_dir: dir.clone(),
        rate_limit_per_sec: 0,
        ..Config::default()
    };
    let store_desc = config.db_url();
    let (tx, rx) = std::sync::mpsc::channel();
    let server = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
        rt.block_on(async move {
            match Server::bind(config).await {
                Ok(s) => {
                    let _ = tx.send(Ok((s.local_addr(), s.cancel_token())));
                    let _ = s.run().await;
                }
                Err(e) => {
                    let _ = tx.send(Err(e));
                }
            }
        });
    });
    let (addr, cancel) = match rx.recv() {
        Ok(Ok(v)) => v,
        Ok(Err(e)) => return crate::output::fail_local(&e),
        Err(_) => return ExitCode::from(1),
    };
    let admin_token = match std::fs::read_to_string(dir.join("admin.token")) {
        Ok(t) => t.trim().to_string(),
        Err(e) => {
            eprintln!("error: no bootstrap token (bench needs an empty store): {e}");
            cancel.cancel();
            return ExitCode::from(1);
        }
    };
    let base = format!("http://{addr}");
    let admin = Target { base: base.clone(), token: admin_token };
    let ag = agent();
    // A tenant with a project, generous quotas, and a tenant-member's token.
    let setup: Vec<(&str, String, Value)> = vec![
        ("POST", "/v1/tenants".into(), json!({"name": "bench"})),
        (
            "PUT",
            "/v1/tenants/bench/quotas".into(),
            json!({"generation": 1, "limits": {"nodes": 1_000_000_000}}),
        ),
        ("POST", "/v1/tenants/bench/projects".into(), json!({"name": "p"})),
        (
            "POST",
            "/v1/tenants/bench/users".into(),
            json!({"name": "runner", "role": "tenant-member"}),
        ),
    ];
    for (m, p, b) in &setup {
        let s = send(&ag, &admin, m, p, Some(b), None);
        if !(200..300).contains(&s) {
            eprintln!("error: setup {m} {p} answered {s}");
            cancel.cancel();
            return ExitCode::from(1);
        }
    }
    let tok: Value = match ag
        .post(&format!("{base}/v1/tenants/bench/tokens"))
        .set("Authorization", &format!("Bearer {}", admin.token))
        .send_json(json!({"name": "bench", "user": "runner"}))
        .map_err(|e| e.to_string())
        .and_then(|r| r.into_json().map_err(|e| e.to_string()))
    {
        Ok(v) => v,
        Err(e) => {
            eprintln!("error: setup token: {e}");
            cancel.cancel();
            return ExitCode::from(1);
        }
    };
    let user =
        Arc::new(Target { base, token: tok["secret"].as_str().unwrap_or_default().to_string() });

    let reads: Job = {
        let u = user.clone();
        Arc::new(move |a, i| {
            let path = match i % 3 {
                0 => "/v1/tenants/bench/projects/p",
                1 => "/v1/tenants/bench/projects/p/quotas",
                _ => "/v1/tenants/bench",
            };
            send(a, &u, "GET", path, None, None) == 200
        })
    };
    let writes: Job = {
        let u = user.clone();
        let run_id = neocloud_common::new_id();
        Arc::new(move |a, i| {
            let key = format!("{run_id}-{i}");
            send(
                a,
                &u,
                "POST",
                "/v1/tenants/bench/projects/p/claims",
                Some(&json!({"resources": {"nodes": 1}})),
                Some(&key),
            ) == 201
        })
    };

    let mut results = Vec::new();
    // Warm up connections, caches and the page cache.
    let _ = closed_loop("warm-up", 4, Duration::from_secs(1), reads.clone());
    results.push(open_loop(
        &format!("writes alone @ {write_rate}/s"),
        write_rate,
        duration,
        workers,
        writes.clone(),
    ));
    let (w, r) = (writes.clone(), reads.clone());
    let wr = std::thread::spawn(move || {
        open_loop(&format!("writes (mixed) @ {write_rate}/s"), write_rate, duration, workers / 2, w)
    });
    let rd =
        open_loop(&format!("reads (mixed) @ {read_rate}/s"), read_rate, duration, workers / 2, r);
    results.push(wr.join().expect("write phase"));
    results.push(rd);
    results.push(closed_loop(
        &format!("reads, closed loop x{concurrency}"),
        concurrency,
        duration,
        reads.clone(),
    ));
    cancel.cancel();
    let _ = server.join();
    let _ = std::fs::remove_dir_all(&dir);

    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    if json {
        let v: Vec<Value> = results
            .iter()
            .map(|r| {
                json!({"phase": r.name, "requests": r.requests, "errors": r.errors,
                       "rate_per_s": r.rate, "p50_ms": r.p50, "p99_ms": r.p99, "max_ms": r.max})
            })
            .collect();
        println!("{}", json!({"store": store_desc, "cores": cores, "phases": v}));
    } else {
        println!("store: {store_desc}; {cores} cores; {} s per phase", duration.as_secs());
        println!();
        println!("| phase | requests | errors | achieved/s | p50 ms | p99 ms | max ms |");
        println!("|---|---:|---:|---:|---:|---:|---:|");
        for r in &results {
            println!(
                "| {} | {} | {} | {:.0} | {:.2} | {:.2} | {:.2} |",
                r.name, r.requests, r.errors, r.rate, r.p50, r.p99, r.max
            );
        }
    }
    if results.iter().any(|r| r.errors > 0) {
        eprintln!("error: some requests failed");
        return ExitCode::from(1);
    }
    ExitCode::SUCCESS
}
