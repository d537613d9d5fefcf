//! The SIMULATED BMC fleet a bare-metal benchmark drives, and
//! `neocloud bench fleet`, which serves one in a process of its own.
//!
//! `bench baremetal` runs the fleet in a child process by default, so the
//! control plane's CPU (the benchmark's own process: server and clients)
//! and the fleet's (simulated BMCs, boots and agents) are measured apart
//! and the two do not share a runtime or an allocator. `--fleet
//! in-process` keeps it in the benchmark's process (as before 2026-12-03);
//! `--fleet URL` uses one started elsewhere with `neocloud bench fleet`
//! (another machine: the fleet's boots must reach the server's `--listen`).

use neocloud_server::simbmc::{self, SimFleet, Stats};
use std::io::{BufRead, BufReader};
use std::process::{Child, ExitCode, Stdio};
use std::sync::Arc;
use std::time::Duration;

#[derive(clap::Args)]
pub struct FleetArgs {
    /// Address to serve the simulated BMCs on (`127.0.0.1:0`: any free port).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: String,
    /// The control plane's base URL: simulated nodes fetch their iPXE
    /// scripts from its boot service and their agents register there.
    #[arg(long)]
    boot_url: String,
    /// Added to every simulated BMC answer (the service root excepted).
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    bmc_latency: Duration,
    /// How long a simulated boot takes before its agent starts.
    #[arg(long, default_value = "200ms", value_parser = humantime::parse_duration)]
    boot_delay: Duration,
    /// Spread of each answer's latency and each boot's delay: each waits
    /// `(1 ± jitter)` times as long, uniformly (0 to 0.9; 0: lockstep).
    #[arg(long, default_value_t = 0.0, value_parser = parse_jitter)]
    jitter: f64,
    /// The first this many nodes to network-boot hang at every boot (no
    /// agent ever starts).
    #[arg(long, default_value_t = 0)]
    dead_nodes: usize,
    /// Exit when standard input closes (a benchmark's child: it ends with
    /// its parent).
    #[arg(long, hide = true)]
    exit_with_stdin: bool,
}

/// `neocloud bench fleet`: serves until interrupted (or, as a child, until
/// its standard input closes). The first line on standard output is
/// `listening http://ADDR`.
pub fn run_fleet(a: FleetArgs) -> ExitCode {
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let listener = match rt.block_on(tokio::net::TcpListener::bind(&a.listen)) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: --listen {}: {e}", a.listen);
            return ExitCode::from(crate::output::EXIT_USAGE);
        }
    };
    let addr = match listener.local_addr() {
        Ok(x) => x,
        Err(e) => {
            eprintln!("error: --listen {}: {e}", a.listen);
            return ExitCode::from(1);
        }
    };
    let sim = Simulated {
        latency: a.bmc_latency,
        boot_delay: a.boot_delay,
        jitter: a.jitter,
        dead_nodes: a.dead_nodes,
    };
    let fleet = sim.fleet(Some(a.boot_url.clone()));
    println!("listening http://{addr}");
    eprintln!(
        "SIMULATED BMC fleet on http://{addr}: BMC i under /simbmc/i, {:?} per answer, \
         simulated boots from {}",
        a.bmc_latency, a.boot_url
    );
    let stop = stop_signal(a.exit_with_stdin);
    rt.block_on(simbmc::serve(listener, fleet, stop));
    rt.shutdown_timeout(Duration::from_secs(5));
    ExitCode::SUCCESS
}

/// How the SIMULATED fleet behaves: its BMCs' latency, its nodes' boot,
/// the spread of both, and the nodes that hang at boot.
#[derive(Debug, Clone, Copy)]
pub struct Simulated {
    pub latency: Duration,
    pub boot_delay: Duration,
    pub jitter: f64,
    pub dead_nodes: usize,
}

impl Simulated {
    /// A fleet behaving so.
    pub fn fleet(&self, boot_url: Option<String>) -> Arc<SimFleet> {
        let mut fleet = SimFleet::new(boot_url, self.latency);
        if let Some(f) = Arc::get_mut(&mut fleet) {
            f.boot_delay = self.boot_delay;
            f.jitter = self.jitter;
            f.dead_nodes = self.dead_nodes;
        }
        fleet
    }
}

/// A jitter: a fraction from 0 to 0.9.
pub fn parse_jitter(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(j) if (0.0..=0.9).contains(&j) => Ok(j),
        _ => Err(format!("{s:?}: a fraction from 0 to 0.9")),
    }
}

/// Completes on Ctrl-C or SIGTERM, or when standard input closes if asked.
fn stop_signal(with_stdin: bool) -> impl std::future::Future<Output = ()> + Send {
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    if with_stdin {
        std::thread::spawn(move || {
            let mut sink = String::new();
            let mut stdin = std::io::stdin().lock();
            while matches!(stdin.read_line(&mut sink), Ok(n) if n > 0) {
                sink.clear();
            }
            let _ = tx.send(());
        });
    } else {
        drop(tx);
    }
    async move {
        let stdin_closed = async move {
            if rx.await.is_err() {
                std::future::pending::<()>().await
            }
        };
        #[cfg(unix)]
        let term = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut s) => {
                    s.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        };
        #[cfg(not(unix))]
        let term = std::future::pending::<()>();
        tokio::select! {
            _ = stdin_closed => {}
            _ = tokio::signal::ctrl_c() => {}
            _ = term => {}
        }
    }
}

/// Where the benchmark's fleet runs.
pub enum Fleet {
    /// In the benchmark's own process (its CPU counted with the server's),
    /// served at `base`.
    InProcess { fleet: Arc<SimFleet>, base: String },
    /// In another process: a child of the benchmark's, or one started
    /// elsewhere; read through `GET /simbmc/stats`.
    Remote { base: String, agent: ureq::Agent, child: Option<Child> },
}

impl Fleet {
    /// Starts `neocloud bench fleet` as a child of this process and waits
    /// for its address.
    /// `dead`: [`SimFleet::dead_nodes`].
    pub fn child(boot_url: &str, sim: &Simulated) -> Result<Fleet, String> {
        let exe = std::env::current_exe().map_err(|e| format!("fleet: this program: {e}"))?;
        let mut child = std::process::Command::new(exe)
            .args(["bench", "fleet", "--exit-with-stdin", "--boot-url", boot_url])
            .arg("--bmc-latency")
            .arg(humantime::format_duration(sim.latency).to_string())
            .arg("--boot-delay")
            .arg(humantime::format_duration(sim.boot_delay).to_string())
            .arg("--jitter")
            .arg(sim.jitter.to_string())
            .arg("--dead-nodes")
            .arg(sim.dead_nodes.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("fleet: cannot start the fleet process: {e}"))?;
        let out = child.stdout.take().ok_or("fleet: no standard output")?;
        let mut line = String::new();
        let read = BufReader::new(out).read_line(&mut line);
        let base = match (read, line.trim().strip_prefix("listening ")) {
            (Ok(_), Some(base)) => base.to_string(),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("fleet: the fleet process did not start ({line:?})"));
            }
        };
        Ok(Fleet::Remote { base, agent: ureq::Agent::new(), child: Some(child) })
    }

    /// A fleet already running at `base` (`neocloud bench fleet`).
    pub fn remote(base: &str) -> Fleet {
        Fleet::Remote {
            base: base.trim_end_matches('/').to_string(),
            agent: ureq::Agent::new(),
            child: None,
        }
    }

    /// The base URL BMC endpoints are under.
    pub fn base(&self) -> &str {
        match self {
            Fleet::InProcess { base, .. } | Fleet::Remote { base, .. } => base,
        }
    }

    /// The fleet's counters and timings; its CPU only when it runs apart.
    pub fn stats(&self) -> Result<Stats, String> {
        match self {
            Fleet::InProcess { fleet, .. } => Ok(Stats { cpu_secs: None, ..fleet.stats() }),
            Fleet::Remote { base, agent, .. } => agent
                .get(&format!("{base}/simbmc/stats"))
                .timeout(Duration::from_secs(10))
                .call()
                .map_err(|e| format!("fleet stats: {e}"))?
                .into_json::<Stats>()
                .map_err(|e| format!("fleet stats: {e}")),
        }
    }

    /// Each node's simulated waiting so far, in seconds, by node index.
    pub fn waits(&self) -> Result<Vec<(usize, f64)>, String> {
        match self {
            Fleet::InProcess { fleet, .. } => Ok(fleet.waits()),
            Fleet::Remote { base, agent, .. } => agent
                .get(&format!("{base}/simbmc/waits"))
                .timeout(Duration::from_secs(30))
                .call()
                .map_err(|e| format!("fleet waits: {e}"))?
                .into_json()
                .map_err(|e| format!("fleet waits: {e}")),
        }
    }

    /// Whether its CPU is measured apart from this process's.
    pub fn apart(&self) -> bool {
        matches!(self, Fleet::Remote { .. })
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        if let Fleet::Remote { child: Some(c), .. } = self {
            // Closing its standard input ends it; kill it if it lingers.
            drop(c.stdin.take());
            for _ in 0..50 {
                if matches!(c.try_wait(), Ok(Some(_))) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_jitter_is_a_fraction_up_to_nine_tenths() {
        assert_eq!(super::parse_jitter("0.25"), Ok(0.25));
        assert_eq!(super::parse_jitter("0"), Ok(0.0));
        for bad in ["-0.1", "0.95", "1", "x", ""] {
            assert!(super::parse_jitter(bad).is_err(), "{bad}");
        }
    }
}
