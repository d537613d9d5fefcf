//! The `neocloud-agent` command: registers this machine with the control
//! plane and serves it until the credential is revoked. In the library so
//! that a test can run the command's own path (its arguments, the kernel
//! command line it reads) on a machine it boots.
//!
//! Exit codes: 0 when the credential was revoked (or the agent was
//! stopped), 1 for a usage error or a permanent refusal (a bad or used
//! token), 2 for anything else (hardware, an unexpected answer); with
//! `--inventory`, 0 when the machine is healthy and 3 when it is not.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use crate::{cmdline, disks, host, AgentError, Exit, Hardware, Host, Registration, Simulated};
use clap::Parser;

/// The neocloud node agent: registers this machine with the control plane
/// using the one-time provisioning token, reports its inventory,
/// heartbeats, and runs the node-local steps it is sent (disk wipe, GPU
/// reset, firmware report) until the control plane revokes its credential.
#[derive(Parser, Debug)]
#[command(name = "neocloud-agent", version)]
struct Args {
    /// The control plane's API URL. Default: `neocloud.api=` on the kernel
    /// command line.
    #[arg(long, value_name = "URL", env = "NEOCLOUD_API")]
    api: Option<String>,

    /// The one-time provisioning token. Default: `neocloud.token=` on the
    /// kernel command line.
    #[arg(long, value_name = "TOKEN", env = "NEOCLOUD_AGENT_TOKEN", hide_env_values = true)]
    token: Option<String>,

    /// PEM certificates to trust for an `https://` control plane instead
    /// of the built-in public roots (the provider's CA, in its images).
    #[arg(long, value_name = "PATH", env = "NEOCLOUD_CA_FILE")]
    ca_file: Option<PathBuf>,

    /// A disk (block device or file) that `wipe_disks` erases; repeat for
    /// each. No disk is ever wiped unless named here or --all-disks is given.
    #[arg(long = "disk", value_name = "PATH")]
    disks: Vec<PathBuf>,

    /// Wipe every fixed disk found in /sys/block (not removable, loop, ram,
    /// device-mapper or md devices, nor disks with a mounted partition).
    #[arg(long)]
    all_disks: bool,

    /// The TPM `clear_tpm` clears: a device, `tcp:HOST:PORT` (a software
    /// TPM's command port), or `none`. Default: /dev/tpmrm0, else
    /// /dev/tpm0, else none.
    #[arg(long, value_name = "PATH")]
    tpm: Option<String>,

    /// The UEFI variables `clear_uefi_variables` reads and deletes: an
    /// efivarfs directory, or `none`. Default: /sys/firmware/efi/efivars
    /// (mounted if it is not) where the machine booted through UEFI.
    #[arg(long, value_name = "DIR")]
    efivars: Option<String>,

    /// Where `reset_nic_settings` looks for NVIDIA network adapters: a
    /// directory laid out as sysfs's PCI devices. Default:
    /// /sys/bus/pci/devices
    #[arg(long, value_name = "DIR")]
    pci_devices: Option<PathBuf>,

    /// The `mstconfig` (mstflint) `reset_nic_settings` runs. Default: the
    /// one on $PATH or in the sbin directories.
    #[arg(long, value_name = "PATH")]
    mstconfig: Option<PathBuf>,

    /// SIMULATOR: use simulated hardware with N fake GPUs and two fake
    /// disks instead of this machine's. Nothing is wiped or reset.
    #[arg(long, value_name = "N", conflicts_with_all = ["disks", "all_disks"])]
    simulate_gpus: Option<u32>,

    /// Print what the agent would report of this machine (its inventory,
    /// each GPU's readings and problems, the health line) as JSON, and
    /// exit: registers nothing, runs no step. 0 when healthy, 3 when not.
    #[arg(long)]
    inventory: bool,

    /// Overwrite every GPU's memory (what the sanitizer's GPU step does
    /// after its reset; no reset here) and print an item per GPU as JSON:
    /// 0 when every GPU's was overwritten and read back zero, 3 when not.
    /// Registers nothing. Whatever runs on the GPUs loses its memory's
    /// contents: for burn-in and checks, not for a tenant's node.
    #[arg(long, conflicts_with_all = ["inventory", "simulate_gpus"])]
    overwrite_gpu_memory: bool,

    /// With --overwrite-gpu-memory: only this GPU (`INDEX=UUID`, as NVML
    /// lists it); repeat for each. Default: every GPU NVML lists.
    #[arg(long = "gpu", value_name = "INDEX=UUID", requires = "overwrite_gpu_memory", hide = true)]
    gpus: Vec<String>,

    /// With --overwrite-gpu-memory: the CUDA driver library. Default: the
    /// driver's, `libcuda.so.1`.
    #[arg(long, value_name = "PATH", requires = "overwrite_gpu_memory", hide = true)]
    cuda_library: Option<String>,

    /// With --inventory: watch the GPUs' Xid errors this long first (e.g.
    /// `30s`, a burn-in's length) and list every one seen.
    #[arg(long, value_name = "DURATION", requires = "inventory", value_parser = parse_secs)]
    watch: Option<Duration>,
}

fn parse_secs(s: &str) -> Result<Duration, String> {
    let n = s.strip_suffix('s').unwrap_or(s);
    n.parse::<u64>().map(Duration::from_secs).map_err(|_| format!("{s:?}: seconds, e.g. 30s"))
}

/// What `--inventory` prints.
#[derive(serde::Serialize)]
struct Report {
    inventory: neocloud_types::AgentInventory,
    gpu_status: Vec<neocloud_types::GpuStatus>,
    health: String,
    /// Whether the GPUs' critical Xid errors are watched, or why not.
    #[serde(skip_serializing_if = "Option::is_none")]
    xid_watch: Option<String>,
    /// With --watch: every Xid seen, whatever its class.
    #[serde(skip_serializing_if = "Option::is_none")]
    xids_seen: Option<Vec<XidSeen>>,
    /// The TPM `clear_tpm` would clear and what is in it (read only), or
    /// why it cannot be read; absent without a TPM.
    #[serde(skip_serializing_if = "Option::is_none")]
    tpm: Option<String>,
    /// The name (hex) of the TPM's endorsement key, as the node's agents
    /// prove it (the provider records it at enrollment: `tpm_identity`),
    /// or why it cannot be read; absent without a TPM.
    #[serde(skip_serializing_if = "Option::is_none")]
    tpm_identity: Option<String>,
    /// Whether the TPM holds its endorsement key's certificate (and its
    /// maker's intermediates) where agents read them; absent without a TPM.
    #[serde(skip_serializing_if = "Option::is_none")]
    tpm_ek_certificate: Option<String>,
    /// The UEFI variables `clear_uefi_variables` would read (read only),
    /// or why they cannot be read; absent where the machine did not boot
    /// through UEFI.
    #[serde(skip_serializing_if = "Option::is_none")]
    uefi_variables: Option<String>,
    /// The NVIDIA network adapters `reset_nic_settings` would read, and
    /// their settings off their defaults (read only), or why they cannot
    /// be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    nic_settings: Option<String>,
    /// Each system tool the steps run: where it is, or what is lost
    /// without it.
    tools: std::collections::BTreeMap<String, String>,
}

#[derive(serde::Serialize)]
struct XidSeen {
    gpu: u32,
    xid: u64,
}

fn log(m: &str) {
    eprintln!("neocloud-agent: {m}");
}

/// The `neocloud-agent` command with its arguments (the first is the
/// program's name): its exit code. The binary is this and nothing more.
pub fn run(args: impl IntoIterator<Item = OsString>) -> u8 {
    let args = match Args::try_parse_from(args) {
        Ok(a) => a,
        Err(e) => {
            // Help and version go to stdout and exit 0; the rest is usage.
            let _ = e.print();
            return if e.use_stderr() { 1 } else { 0 };
        }
    };
    if args.overwrite_gpu_memory {
        return overwrite_gpu_memory(&args);
    }
    let mut host_ref: Option<Arc<Host>> = None;
    let hw: Arc<dyn Hardware> = if let Some(n) = args.simulate_gpus {
        let mut c = crate::SimulatedConfig::new(&host::hostname());
        c.gpu_count = n;
        log(&format!("SIMULATED hardware: {n} fake GPUs; nothing will be wiped or reset"));
        Arc::new(Simulated::new(c))
    } else {
        let mut disks = args.disks;
        if args.all_disks {
            match disks::discover_disks() {
                Ok(found) => disks.extend(found),
                Err(e) => {
                    log(&format!("cannot list disks in /sys/block: {e}"));
                    return 2;
                }
            }
        }
        disks.sort();
        disks.dedup();
        if disks.is_empty() {
            log("no disks configured: wipe_disks will fail (use --disk PATH or --all-disks)");
        }
        for d in &disks {
            log(&format!("disk to wipe when asked: {}", d.display()));
        }
        let mut host = Host::new(disks);
        if let Some(t) = args.tpm.as_deref() {
            host = host.with_tpm((t != "none").then(|| crate::tpm::TpmPath::parse(t)));
        }
        match host.tpm() {
            Some(t) => log(&format!("TPM to clear when asked: {t}")),
            None => log("no TPM: clear_tpm will say so"),
        }
        if let Some(d) = args.efivars.as_deref() {
            host = host.with_efivars((d != "none").then(|| PathBuf::from(d)));
        }
        match host.efivars() {
            Some(d) => log(&format!("UEFI variables to clear when asked: {}", d.display())),
            None => log("not booted through UEFI: clear_uefi_variables will say so"),
        }
        if args.pci_devices.is_some() || args.mstconfig.is_some() {
            let pci = args.pci_devices.as_deref().unwrap_or(Path::new(crate::nic::PCI_DEVICES));
            let tool = args.mstconfig.clone().or_else(crate::nic::find_mstconfig);
            host = host.with_nics(pci, tool);
        }
        let host = Arc::new(host);
        if let Some(w) = host.xid_watch() {
            log(&format!("GPU Xid errors: {w}"));
        }
        host_ref = Some(Arc::clone(&host));
        host
    };
    let inv = hw.inventory();
    if args.inventory {
        let xids_seen = args.watch.map(|d| {
            log(&format!("watching the GPUs' Xid errors for {} s", d.as_secs()));
            std::thread::sleep(d);
            let seen = host_ref.as_ref().map(|h| h.xids_seen()).unwrap_or_default();
            seen.into_iter().map(|(gpu, xid)| XidSeen { gpu, xid }).collect()
        });
        let gpu_status = hw.gpu_status();
        let expected: Vec<String> = inv.gpus.iter().map(|g| g.uuid.clone()).collect();
        let health = crate::health::summary(&expected, &gpu_status);
        let healthy = health == crate::health::OK;
        // Read at the end: a watch that stopped since the start says so.
        let xid_watch = host_ref.as_ref().and_then(|h| h.xid_watch());
        let tpm = host_ref.as_ref().and_then(|h| h.tpm()).map(crate::tpm::describe);
        let tpm_identity =
            host_ref.as_ref().and_then(|h| h.tpm()).map(crate::tpm_identity::describe);
        let tpm_ek_certificate =
            host_ref.as_ref().and_then(|h| h.tpm()).map(crate::tpm_identity::describe_certificate);
        let uefi_variables =
            host_ref.as_ref().and_then(|h| h.efivars()).map(crate::efivars::describe);
        let nic_settings = host_ref
            .as_ref()
            .and_then(|h| h.nics())
            .map(|(pci, tool)| crate::nic::describe(tool, pci));
        let report = Report {
            inventory: inv,
            gpu_status,
            health,
            xid_watch,
            xids_seen,
            tpm,
            tpm_identity,
            tpm_ek_certificate,
            uefi_variables,
            nic_settings,
            tools: crate::tools::step_tools(),
        };
        match serde_json::to_string_pretty(&report) {
            Ok(j) => println!("{j}"),
            Err(e) => {
                log(&format!("cannot print the inventory: {e}"));
                return 2;
            }
        }
        return if healthy { 0 } else { 3 };
    }
    let kernel = cmdline::read();
    let Some(api) = args.api.or_else(|| cmdline::value(&kernel, cmdline::API_KEY)) else {
        log("no API URL: pass --api URL or boot with neocloud.api=URL");
        return 1;
    };
    let Some(token) = args.token.or_else(|| cmdline::value(&kernel, cmdline::TOKEN_KEY)) else {
        log("no provisioning token: pass --token TOKEN or boot with neocloud.token=TOKEN");
        return 1;
    };
    log(&format!(
        "host {}: {} GPUs, driver {:?}, {} disks, {} MACs",
        inv.hostname,
        inv.gpus.len(),
        inv.driver_version,
        inv.disks.len(),
        inv.macs.len()
    ));

    // Registration is retried while the control plane is unreachable (the
    // network may still be coming up); a refused token is final.
    let mut wait = Duration::from_millis(100);
    let mut tls = neocloud_common::tls::TlsOptions::default();
    if let Some(f) = &args.ca_file {
        match std::fs::read_to_string(f) {
            Ok(pem) => tls.ca_pem = Some(pem),
            Err(e) => {
                log(&format!("cannot read the CA file {}: {e}", f.display()));
                return 1;
            }
        }
        if let Err(e) = tls.validate() {
            log(&format!("the CA file {}: {e}", f.display()));
            return 1;
        }
    }
    let registration = match Registration::new(&api, &token).map(|r| r.with_tls(tls)) {
        Ok(r) => r,
        Err(e) => {
            log(&format!("registering failed: {e}"));
            return exit_code(&e);
        }
    };
    let agent = loop {
        match registration.attempt(Arc::clone(&hw), Arc::new(log)) {
            Ok(a) => break a,
            Err(e) if e.is_transient() => {
                log(&format!("registering failed: {e}; retrying in {} ms", wait.as_millis()));
                std::thread::sleep(wait);
                wait = (wait * 2).min(Duration::from_secs(5));
            }
            Err(e) => {
                log(&format!("registering failed: {e}"));
                return exit_code(&e);
            }
        }
    };

    let stop = AtomicBool::new(false);
    match agent.run(&stop) {
        Ok(Exit::Revoked) => {
            log("credential revoked by the control plane; exiting");
            0
        }
        Ok(Exit::Stopped) => {
            log("stopped");
            0
        }
        Err(e) => {
            log(&format!("giving up: {e}"));
            exit_code(&e)
        }
    }
}

fn exit_code(e: &AgentError) -> u8 {
    match e {
        AgentError::Usage(_) | AgentError::TokenRefused(_) | AgentError::Api(_) => 1,
        AgentError::Unavailable(_) | AgentError::Protocol(_) => 2,
    }
}

/// `--overwrite-gpu-memory`: the GPUs' memory overwritten in this process,
/// an item per GPU printed as JSON; 0 when all were, 3 when not.
fn overwrite_gpu_memory(args: &Args) -> u8 {
    let mut gpus = Vec::new();
    for g in &args.gpus {
        let parsed = g.split_once('=').and_then(|(i, uuid)| Some((i.parse().ok()?, uuid)));
        let Some((index, uuid)) = parsed else {
            log(&format!("--gpu {g:?}: not INDEX=UUID"));
            return 1;
        };
        gpus.push(neocloud_types::AgentGpu {
            index,
            uuid: uuid.to_string(),
            name: String::new(),
            serial: String::new(),
            memory_mib: 0,
            pci_bus_id: String::new(),
        });
    }
    // The GPUs named, or NVML's (loaded only then).
    let host = match gpus.is_empty() {
        true => Host::new(Vec::new()),
        false => Host::without_gpus(Vec::new()),
    };
    let host = host.with_cuda(args.cuda_library.as_deref().unwrap_or(crate::cuda::LIBRARY));
    let items = host.overwrite_gpu_memory((!gpus.is_empty()).then_some(&gpus[..]));
    match serde_json::to_string_pretty(&items) {
        Ok(j) => println!("{j}"),
        Err(e) => {
            log(&format!("cannot print the items: {e}"));
            return 2;
        }
    }
    if items.iter().all(|i| i.ok) {
        0
    } else {
        3
    }
}
