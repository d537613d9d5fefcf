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
//!
//! With `--dead-nodes K` the first K nodes to network-boot hang at every
//! boot: each fails after its boot timeout and its instance is placed on a
//! spare node; the report counts the instances placed again.

mod phases;
mod report;

use crate::bench_fleet::Fleet;
use neocloud_server::simbmc;
use neocloud_server::Config;
use phases::Env;
use report::{print, Held, Phase};
use std::process::ExitCode;
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
    /// How long a simulated node's boot takes before its agent starts
    /// (real servers take minutes: firmware, then the image).
    #[arg(long, default_value = "200ms", value_parser = humantime::parse_duration)]
    boot_delay: Duration,
    /// Spread of each simulated answer's latency and boot's delay: each
    /// waits `(1 ± jitter)` times as long, uniformly (0 to 0.9; 0: every
    /// node in lockstep). With a jitter, a phase's ideal is its slowest
    /// node's own simulated waits.
    #[arg(long, default_value_t = 0.0, value_parser = crate::bench_fleet::parse_jitter)]
    jitter: f64,
    /// The first this many nodes to network-boot hang at every boot (no
    /// agent ever starts, as a node whose firmware or image hangs): each
    /// fails after `--boot-attempts` times `--boot-timeout`, and its
    /// instance is placed on another node (at most --nodes minus
    /// --provisions: spare nodes). The provision's overhead then counts
    /// those timeouts and is not the control plane's.
    #[arg(long, default_value_t = 0)]
    dead_nodes: usize,
    /// How long a network boot has to bring up its agent
    /// (`boot_timeout_secs`).
    #[arg(long, default_value = "600s", value_parser = humantime::parse_duration)]
    boot_timeout: Duration,
    /// Network boots tried before a node fails (`boot_attempts`).
    #[arg(long, default_value_t = 3)]
    boot_attempts: u32,
    /// How the simulated BMCs boot the nodes: `pxe`, or `virtual-media`
    /// (the server's iPXE ISO in each BMC's virtual CD: more BMC calls per
    /// boot, and an eject in every sanitization).
    #[arg(long, value_enum, default_value = "pxe")]
    boot_method: crate::commands::BootMethodArg,
    /// With `--boot-method virtual-media`: every node gets a static
    /// provisioning address (10.64.0.0/16) and boots an ISO of its own,
    /// which the control plane builds from this iPXE EFI binary
    /// (`per_node_iso`: xorriso and mtools on the PATH), e.g.
    /// /usr/lib/ipxe/ipxe.efi.
    #[arg(long, value_name = "IPXE_EFI")]
    static_addresses: Option<std::path::PathBuf>,
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

pub fn run(a: BaremetalArgs) -> ExitCode {
    if a.nodes == 0 || a.provisions > a.nodes {
        eprintln!("error: --nodes must be positive and --provisions at most --nodes");
        return ExitCode::from(crate::output::EXIT_USAGE);
    }
    if a.dead_nodes > a.nodes - a.provisions {
        eprintln!("error: --dead-nodes must be at most --nodes minus --provisions (spare nodes for their instances)");
        return ExitCode::from(crate::output::EXIT_USAGE);
    }
    if a.boot_timeout < Duration::from_secs(1) || !(1..=20).contains(&a.boot_attempts) {
        eprintln!("error: --boot-timeout must be at least 1s and --boot-attempts 1 to 20");
        return ExitCode::from(crate::output::EXIT_USAGE);
    }
    if a.static_addresses.is_some() && a.boot_method != crate::commands::BootMethodArg::VirtualMedia
    {
        eprintln!("error: --static-addresses needs --boot-method virtual-media");
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
        boot_timeout_secs: a.boot_timeout.as_secs(),
        boot_attempts: a.boot_attempts,
        // The phases as measured before: a new node is available after its
        // inspection (its first sanitization costs what a release does).
        sanitize_before_first_use: false,
        // Served by the provider, not here: the simulated BMCs take them as
        // read (they read per-node ISOs from the boot service).
        virtual_media_iso_url: (a.boot_method == crate::commands::BootMethodArg::VirtualMedia)
            .then(|| "http://ipxe-iso.invalid/ipxe.iso".to_string()),
        uefi_http_boot_url: (a.boot_method == crate::commands::BootMethodArg::UefiHttp)
            .then(|| "http://ipxe-efi.invalid/ipxe.efi".to_string()),
        per_node_iso: a.static_addresses.clone().map(|ipxe_efi| {
            neocloud_server::boot::iso::PerNodeIsoConfig {
                ipxe_efi,
                ipxe_lkrn: None,
                isolinux_bin: None,
                ldlinux_c32: None,
                cache_dir: None,
            }
        }),
        ..Config::default()
    };
    let (server, base, token) = match crate::bench_api::bind(&rt, config) {
        Ok(x) => x,
        Err(code) => return code,
    };
    let cancel = server.cancel_token();
    let store = server.store();
    let served = rt.spawn(server.run());
    let sim = crate::bench_fleet::Simulated {
        latency: a.bmc_latency,
        boot_delay: a.boot_delay,
        jitter: a.jitter,
        dead_nodes: a.dead_nodes,
    };
    let started_fleet = match a.fleet.as_str() {
        "in-process" => start_in_process(&rt, &base, &sim, cancel.clone().cancelled_owned()),
        "process" => Fleet::child(&base, &sim).map(|f| (f, None)),
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
    sim: &crate::bench_fleet::Simulated,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(Fleet, Option<tokio::task::JoinHandle<()>>), String> {
    let fleet = sim.fleet(Some(boot_url.to_string()));
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
