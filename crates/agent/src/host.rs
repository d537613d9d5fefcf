//! The real hardware of the machine the agent runs on: the disks it was
//! told about (wiped by [`crate::disks`]) and the GPUs NVML sees (reset,
//! their modes set back, their health read).
//!
//! Disks are only ever those named explicitly ([`Host::new`]); the one
//! exception is [`crate::disks::discover_disks`], used only when the
//! operator asks for it (`--all-disks`).

use std::fs;
use std::path::{Path, PathBuf};

use crate::disks::{describe_disk, wipe_disks};
use crate::tools::{read_trimmed, run_tool};
use neocloud_types::{AgentGpu, AgentInventory, AgentStepResult, GpuStatus, StepItem};

use crate::nvml::Nvml;
use crate::tpm::{clear_tpm, TpmPath};
use crate::xid_watch::XidWatch;
use crate::{result_of, Hardware};
use std::sync::Arc;
use std::time::Duration;

/// This machine: the disks it was told about, the GPUs NVML sees and its
/// TPM.
pub struct Host {
    disks: Vec<PathBuf>,
    /// The TPM [`Hardware::clear_tpm`] clears; found in `/dev` by
    /// [`Host::with_nvml`].
    tpm: Option<TpmPath>,
    /// The UEFI variables [`Hardware::clear_uefi_variables`] reads
    /// (efivarfs); `None` on a machine that did not boot through UEFI.
    efivars: Option<PathBuf>,
    /// Where [`Hardware::reset_nic_settings`] looks for network adapters
    /// (`/sys/bus/pci/devices`), and `mstconfig`; `None`: it does not look.
    nics: Option<PathBuf>,
    mstconfig: Option<PathBuf>,
    nvml: Option<Arc<Nvml>>,
    /// The GPUs' critical Xids, watched while NVML is loaded.
    xids: Option<Arc<XidWatch>>,
    /// The CUDA driver library [`Hardware::reset_gpus`] overwrites the
    /// GPUs' memory through (loaded then, in a child process).
    cuda: String,
    /// The agent's executable, run as that child
    /// (`--overwrite-gpu-memory`); `None` where it cannot be found.
    agent_exe: Option<PathBuf>,
    /// How long that child may run.
    overwrite_deadline: Duration,
}

/// How long overwriting every GPU's memory may take (a GPU whose NVSwitch
/// fabric is not ready is waited for up to 3 minutes).
const OVERWRITE_DEADLINE: Duration = Duration::from_secs(900);

/// A step item about a GPU's memory being overwritten.
fn memset_item(uuid: &str, ok: bool, detail: String) -> StepItem {
    StepItem { target: uuid.to_string(), method: "cuda-memset".into(), ok, detail }
}

impl Host {
    /// The machine with the given disks (files or block devices), the only
    /// ones [`Hardware::wipe_disks`] will touch. Loads NVML if present and
    /// watches the GPUs' critical Xid errors.
    pub fn new(disks: Vec<PathBuf>) -> Host {
        Host::with_nvml(disks, Nvml::load())
    }

    /// Like [`Host::new`] with the NVML given (e.g. loaded from another
    /// path with [`Nvml::load_from`]).
    pub fn with_nvml(disks: Vec<PathBuf>, nvml: Option<Nvml>) -> Host {
        let nvml = nvml.map(Arc::new);
        let xids = nvml.as_ref().map(|n| XidWatch::start(Arc::clone(n)));
        let tpm = TpmPath::discover(Path::new("/dev"));
        let efivars = crate::efivars::discover();
        let mut host = Host::without_gpus(disks);
        (host.nvml, host.xids, host.tpm, host.efivars) = (nvml, xids, tpm, efivars);
        host.with_nics(Path::new(crate::nic::PCI_DEVICES), crate::nic::find_mstconfig())
    }

    /// Like [`Host::new`] but never loads NVML (no GPUs) nor looks for a
    /// TPM, UEFI variables or network adapters.
    pub fn without_gpus(disks: Vec<PathBuf>) -> Host {
        Host {
            disks,
            nvml: None,
            xids: None,
            tpm: None,
            efivars: None,
            nics: None,
            mstconfig: None,
            cuda: crate::cuda::LIBRARY.to_string(),
            agent_exe: std::env::current_exe().ok(),
            overwrite_deadline: OVERWRITE_DEADLINE,
        }
    }

    /// This host with its UEFI variables in `dir` (none: it did not boot
    /// through UEFI) instead of efivarfs.
    pub fn with_efivars(mut self, dir: Option<PathBuf>) -> Host {
        self.efivars = dir;
        self
    }

    /// This host with its PCI devices listed in `pci` (sysfs's
    /// `/sys/bus/pci/devices`) and `mstconfig` at `tool` (`None`: not
    /// installed).
    pub fn with_nics(mut self, pci: &Path, tool: Option<PathBuf>) -> Host {
        self.nics = Some(pci.to_path_buf());
        self.mstconfig = tool;
        self
    }

    /// Where [`Hardware::reset_nic_settings`] looks for network adapters,
    /// and its `mstconfig`; `None` where it does not look.
    pub fn nics(&self) -> Option<(&Path, Option<&Path>)> {
        self.nics.as_deref().map(|pci| (pci, self.mstconfig.as_deref()))
    }

    /// This host with the CUDA driver library at `path` instead of the
    /// driver's soname.
    pub fn with_cuda(mut self, path: &str) -> Host {
        self.cuda = path.to_string();
        self
    }

    /// This host running the agent's executable at `exe` to overwrite the
    /// GPUs' memory (where the caller is not the agent itself: a test),
    /// for at most `deadline`.
    pub fn with_agent_exe(mut self, exe: &Path, deadline: Duration) -> Host {
        self.agent_exe = Some(exe.to_path_buf());
        self.overwrite_deadline = deadline;
        self
    }

    /// Overwrites each GPU's memory in this process ([`crate::cuda`]): an
    /// item per GPU (`gpus`, else those NVML lists), failed where it could
    /// not be done, fell short of the memory the driver said was free, or
    /// read back other than what was written.
    pub fn overwrite_gpu_memory(&self, gpus: Option<&[AgentGpu]>) -> Vec<StepItem> {
        let listed;
        let gpus = match gpus {
            Some(g) => g,
            None => {
                listed = self.gpus();
                &listed
            }
        };
        if gpus.is_empty() {
            return Vec::new();
        }
        let lib = match crate::cuda::Cuda::load_from(&self.cuda) {
            Ok(lib) => lib,
            Err(e) => {
                let detail = format!("GPU memory not overwritten: {e}");
                return gpus.iter().map(|g| memset_item(&g.uuid, false, detail.clone())).collect();
            }
        };
        let mib = |b: u64| b >> 20;
        gpus.iter()
            .map(|g| match lib.overwrite(&g.uuid) {
                Ok(o) => memset_item(
                    &g.uuid,
                    o.covers_the_free_memory(),
                    format!(
                        "GPU {}: {} MiB written with a pattern, then zero, each read back, of {} \
                         MiB free ({} MiB in all)",
                        g.index,
                        mib(o.bytes),
                        mib(o.free),
                        mib(o.total)
                    ),
                ),
                Err(e) => memset_item(
                    &g.uuid,
                    false,
                    format!("GPU {}: memory not overwritten: {e}", g.index),
                ),
            })
            .collect()
    }

    /// [`Self::overwrite_gpu_memory`] in a child process (the agent's own
    /// `--overwrite-gpu-memory`): the CUDA driver keeps every GPU's device
    /// files open once initialized, which would hold a later reset off, and
    /// a child can be stopped at a deadline.
    fn overwrite_in_child(&self, gpus: &[AgentGpu]) -> Vec<StepItem> {
        if gpus.is_empty() {
            return Vec::new();
        }
        let failed = |why: &str| -> Vec<StepItem> {
            let detail = |g: &AgentGpu| format!("GPU {}: memory not overwritten: {why}", g.index);
            gpus.iter().map(|g| memset_item(&g.uuid, false, detail(g))).collect()
        };
        let Some(exe) = &self.agent_exe else {
            return failed("the agent's own executable cannot be found");
        };
        let mut cmd = std::process::Command::new(exe);
        cmd.args(["--overwrite-gpu-memory", "--cuda-library", &self.cuda]);
        for g in gpus {
            cmd.arg("--gpu").arg(format!("{}={}", g.index, g.uuid));
        }
        // Every GPU, whatever the environment hides.
        cmd.env_remove("CUDA_VISIBLE_DEVICES");
        let out = match crate::tools::run_with_deadline(cmd, self.overwrite_deadline) {
            Ok(out) => out,
            Err(e) => return failed(&e),
        };
        let mut items: Vec<StepItem> = match serde_json::from_slice(&out.stdout) {
            Ok(items) => items,
            Err(e) => {
                let tail = crate::tools::last_line(&out.stderr);
                return failed(&format!("{} ({e}): {tail}", out.status));
            }
        };
        for g in gpus {
            if !items.iter().any(|i| i.target == g.uuid) {
                let detail = format!("GPU {}: memory not overwritten: no word of it", g.index);
                items.push(memset_item(&g.uuid, false, detail));
            }
        }
        items
    }

    /// This host with the TPM at `tpm` (none: no TPM) instead of the one
    /// found in `/dev`.
    pub fn with_tpm(mut self, tpm: Option<TpmPath>) -> Host {
        self.tpm = tpm;
        self
    }

    /// Where this host's UEFI variables are read.
    pub fn efivars(&self) -> Option<&Path> {
        self.efivars.as_deref()
    }

    /// The TPM this host clears.
    pub fn tpm(&self) -> Option<&TpmPath> {
        self.tpm.as_ref()
    }

    /// Whether the GPUs' Xid errors are watched (`watching N GPUs`), or why
    /// not; `None` without NVML.
    pub fn xid_watch(&self) -> Option<String> {
        self.xids.as_ref().map(|x| x.state())
    }

    /// Every Xid the watch kept, whatever its class: (GPU index, code).
    pub fn xids_seen(&self) -> Vec<(u32, u64)> {
        self.xids.as_ref().map(|x| x.seen()).unwrap_or_default()
    }

    /// The disks this host wipes.
    pub fn disks(&self) -> &[PathBuf] {
        &self.disks
    }

    /// Whether NVML was loaded.
    pub fn has_nvml(&self) -> bool {
        self.nvml.is_some()
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        if let Some(x) = &self.xids {
            x.stop();
        }
    }
}

impl Hardware for Host {
    fn inventory(&self) -> AgentInventory {
        AgentInventory {
            hostname: hostname(),
            driver_version: self.nvml.as_ref().map(|n| n.driver_version()).unwrap_or_default(),
            gpus: self.gpus(),
            disks: self.disks.iter().map(|d| describe_disk(d)).collect(),
            macs: macs(Path::new("/sys/class/net")),
        }
    }

    fn gpus(&self) -> Vec<AgentGpu> {
        self.nvml.as_ref().map(|n| n.gpus()).unwrap_or_default()
    }

    fn tpm_path(&self) -> Option<TpmPath> {
        self.tpm.clone()
    }

    fn wipe_disks(&self) -> AgentStepResult {
        if self.disks.is_empty() {
            // Claiming a wipe that wiped nothing would hand the previous
            // tenant's data to the next one: fail loudly instead.
            return result_of(vec![StepItem {
                target: "disks".into(),
                method: "none".into(),
                ok: false,
                detail: "no disks were configured (--disk PATH or --all-disks)".into(),
            }]);
        }
        result_of(wipe_disks(&self.disks))
    }

    fn gpu_status(&self) -> Vec<GpuStatus> {
        let mut st = self.nvml.as_ref().map(|n| n.statuses()).unwrap_or_default();
        if let Some(x) = &self.xids {
            for s in &mut st {
                crate::health::add_xids(s, x.codes(s.index));
            }
        }
        st
    }

    fn reset_gpus(&self) -> AgentStepResult {
        let gpus = self.gpus();
        let mut items = Vec::with_capacity(gpus.len());
        // ECC back on and MIG off, from the reset below.
        let mut set_back: Vec<(u32, String)> = Vec::new();
        if let Some(n) = &self.nvml {
            for g in &gpus {
                let (ecc, mig) =
                    crate::health::mode_fixes(n.ecc_mode(g.index), n.mig_mode(g.index));
                let mut staged = Vec::new();
                if ecc {
                    match n.set_ecc_mode(g.index, true) {
                        Ok(()) => staged.push("ECC turned back on"),
                        Err(e) => {
                            items.push(mode_item(&g.uuid, false, format!("setting ECC on: {e}")))
                        }
                    }
                }
                if mig {
                    match n.set_mig_mode(g.index, false) {
                        Ok(()) => staged.push("MIG turned off"),
                        Err(e) => {
                            items.push(mode_item(&g.uuid, false, format!("setting MIG off: {e}")))
                        }
                    }
                }
                if !staged.is_empty() {
                    set_back.push((g.index, staged.join(", ")));
                }
            }
        }
        for g in &gpus {
            let index = g.index.to_string();
            let (ok, detail) = match run_tool("nvidia-smi", &["--gpu-reset", "-i", &index]) {
                Ok(out) => {
                    // What the reset did not cure shows in what is read next.
                    if let Some(x) = &self.xids {
                        x.forget(g.index);
                    }
                    (true, format!("GPU {index} reset: {out}"))
                }
                Err(e) => (false, format!("GPU {index}: {e}")),
            };
            items.push(StepItem {
                target: g.uuid.clone(),
                method: "nvidia-smi-reset".into(),
                ok,
                detail,
            });
        }
        // A reset clears the volatile error counts and applies pending row
        // remaps: what is still wrong after it goes with the node to the
        // next tenant, so it fails the step.
        after_reset(&mut items, &self.gpu_status());
        items.extend(self.overwrite_in_child(&gpus));
        if let Some(n) = &self.nvml {
            for g in &gpus {
                let gpu = format!("GPU {} ({})", g.index, g.uuid);
                let left =
                    crate::health::mode_problems(&gpu, n.ecc_mode(g.index), n.mig_mode(g.index));
                let fixed = set_back.iter().find(|(i, _)| *i == g.index).map(|(_, what)| what);
                match (left.is_empty(), fixed) {
                    (false, _) => items.push(mode_item(&g.uuid, false, left.join("; "))),
                    (true, Some(what)) => items.push(mode_item(
                        &g.uuid,
                        true,
                        format!("{what} (applied by the reset)"),
                    )),
                    (true, None) => {}
                }
            }
        }
        result_of(items)
    }

    fn report_firmware(&self) -> AgentStepResult {
        let dmi = Path::new("/sys/class/dmi/id");
        let mut items = vec![if !dmi.exists() {
            // No SMBIOS at all (some virtual machines and emulators): the
            // control plane checks firmware over the BMC regardless.
            version_item(
                "bios",
                true,
                "no DMI on this host: firmware is checked over the BMC".into(),
            )
        } else {
            match read_trimmed(&dmi.join("bios_version")) {
                Ok(v) => version_item("bios", true, v),
                Err(e) => version_item("bios", false, format!("cannot read the BIOS version: {e}")),
            }
        }];
        if let Ok(date) = read_trimmed(&dmi.join("bios_date")) {
            items.push(version_item("bios_date", true, date));
        }
        if let Some(nvml) = &self.nvml {
            for g in nvml.gpus() {
                items.push(match nvml.vbios_version(g.index) {
                    Ok(v) => version_item(&g.uuid, true, v),
                    Err(e) => version_item(&g.uuid, false, format!("GPU {}: {e}", g.index)),
                });
            }
        }
        result_of(items)
    }

    fn clear_uefi_variables(&self, baseline: Option<&[String]>) -> AgentStepResult {
        match &self.efivars {
            Some(dir) => crate::efivars::clear(dir, baseline),
            None => result_of(vec![StepItem {
                target: "efivars".into(),
                method: "none".into(),
                ok: true,
                detail: "this machine did not boot through UEFI (no /sys/firmware/efi)".into(),
            }]),
        }
    }

    fn reset_nic_settings(&self, baseline: Option<&[String]>) -> AgentStepResult {
        match &self.nics {
            Some(pci) => crate::nic::reset(self.mstconfig.as_deref(), pci, baseline),
            None => result_of(vec![StepItem {
                target: "nics".into(),
                method: "not-looked".into(),
                ok: true,
                detail: "network adapters not looked for (no baseline recorded)".into(),
            }]),
        }
    }

    fn clear_tpm(&self) -> AgentStepResult {
        result_of(vec![match &self.tpm {
            Some(t) => clear_tpm(t, t.ppi_request().as_deref()),
            None => StepItem {
                target: "tpm".into(),
                method: "none".into(),
                ok: true,
                detail: "this machine shows no TPM (/dev/tpmrm0, /dev/tpm0)".into(),
            },
        }])
    }
}

/// Fails the reset item of each GPU that is gone or still has problems
/// after its reset (`status`: read after every reset).
pub(crate) fn after_reset(items: &mut [StepItem], status: &[GpuStatus]) {
    for it in items.iter_mut().filter(|i| i.ok) {
        match status.iter().find(|s| s.uuid == it.target) {
            None => {
                it.ok = false;
                it.detail = format!("{}, but: {}", it.detail, crate::health::missing(&it.target));
            }
            Some(s) if !s.problems.is_empty() => {
                it.ok = false;
                it.detail = format!("{}, but: {}", it.detail, s.problems.join("; "));
            }
            Some(_) => {}
        }
    }
}

fn version_item(target: &str, ok: bool, detail: String) -> StepItem {
    StepItem { target: target.into(), method: "version".into(), ok, detail }
}

/// The kernel's hostname, else `$HOSTNAME`, else empty.
pub fn hostname() -> String {
    read_trimmed(Path::new("/proc/sys/kernel/hostname"))
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_default()
}

/// MAC addresses of `net` (`/sys/class/net`), without loopback and
/// all-zero addresses, sorted and deduplicated.
pub fn macs(net: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let Ok(entries) = fs::read_dir(net) else { return out };
    for e in entries.flatten() {
        if e.file_name() == "lo" {
            continue;
        }
        if let Ok(mac) = read_trimmed(&e.path().join("address")) {
            let mac = mac.to_ascii_lowercase();
            if !mac.is_empty() && mac != "00:00:00:00:00:00" {
                out.push(mac);
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

/// A step item about a GPU's ECC or MIG mode.
fn mode_item(uuid: &str, ok: bool, detail: String) -> StepItem {
    StepItem { target: uuid.to_string(), method: "nvml-mode".into(), ok, detail }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::TempDir;

    /// Deterministic non-zero "random" bytes (xorshift).
    fn noise(len: usize, mut seed: u64) -> Vec<u8> {
        (0..len)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                (seed as u8) | 1
            })
            .collect()
    }

    #[test]
    fn wiping_a_file_leaves_only_zeros() {
        let dir = TempDir::new("wipe");
        let disk = dir.path().join("disk.img");
        // Not a multiple of the chunk size, to cover the last partial chunk.
        let len = crate::disks::CHUNK * 2 + 12345;
        fs::write(&disk, noise(len, 0x9e3779b97f4a7c15)).unwrap();
        assert!(fs::read(&disk).unwrap().iter().all(|&b| b != 0));

        let host = Host::without_gpus(vec![disk.clone()]);
        let r = host.wipe_disks();
        assert!(r.ok, "{r:?}");
        assert_eq!(r.items.len(), 1);
        assert_eq!(r.items[0].method, "overwrite");
        assert_eq!(r.items[0].target, disk.to_string_lossy());
        assert!(r.items[0].ok);
        let after = fs::read(&disk).unwrap();
        assert_eq!(after.len(), len, "the size is unchanged");
        assert!(after.iter().all(|&b| b == 0), "every byte is zero");
    }

    #[test]
    fn a_missing_disk_fails_its_item_and_the_step() {
        let dir = TempDir::new("missing");
        let good = dir.path().join("good.img");
        fs::write(&good, noise(4096, 7)).unwrap();
        let missing = dir.path().join("no-such-disk");
        let r = Host::without_gpus(vec![good.clone(), missing.clone()]).wipe_disks();
        assert!(!r.ok);
        assert_eq!(r.items.len(), 2);
        assert!(r.items[0].ok, "the present disk is still wiped: {:?}", r.items[0]);
        assert!(fs::read(&good).unwrap().iter().all(|&b| b == 0));
        assert!(!r.items[1].ok);
        assert_eq!(r.items[1].target, missing.to_string_lossy());
        assert!(r.items[1].detail.contains("cannot open"), "{}", r.items[1].detail);
    }

    #[test]
    fn no_disks_is_not_a_successful_wipe() {
        let r = Host::without_gpus(vec![]).wipe_disks();
        assert!(!r.ok);
        assert_eq!(r.items.len(), 1);
    }

    #[test]
    fn a_directory_is_not_wiped() {
        let dir = TempDir::new("dir");
        let r = Host::without_gpus(vec![dir.path().to_path_buf()]).wipe_disks();
        assert!(!r.ok);
        assert!(r.items[0].detail.contains("neither"), "{}", r.items[0].detail);
    }

    #[test]
    fn no_nvml_means_no_gpus() {
        // This machine has no NVIDIA driver; where it has one, the count
        // must match what NVML itself says.
        let host = Host::new(vec![]);
        let inv = host.inventory();
        match Nvml::load() {
            None => {
                assert!(!host.has_nvml());
                assert!(inv.gpus.is_empty());
                assert_eq!(inv.driver_version, "");
                let reset = host.reset_gpus();
                assert!(reset.ok);
                assert!(reset.items.is_empty());
            }
            Some(n) => assert_eq!(inv.gpus.len() as u32, n.count()),
        }
    }

    #[test]
    fn inventory_describes_the_given_disks() {
        let dir = TempDir::new("inv");
        let disk = dir.path().join("d.img");
        fs::write(&disk, vec![1u8; 5000]).unwrap();
        let inv = Host::without_gpus(vec![disk.clone(), dir.path().join("gone")]).inventory();
        assert_eq!(inv.disks.len(), 2);
        assert_eq!(inv.disks[0].bytes, 5000);
        assert_eq!(inv.disks[0].path, disk.to_string_lossy());
        assert_eq!(inv.disks[1].bytes, 0);
        assert!(inv.macs.iter().all(|m| m != "00:00:00:00:00:00"));
    }

    #[test]
    fn macs_skip_loopback_and_zero() {
        let dir = TempDir::new("net");
        for (name, mac) in [
            ("lo", "00:00:00:00:00:00"),
            ("eth0", "52:54:00:AB:CD:EF"),
            ("dummy", "00:00:00:00:00:00"),
            ("eth1", "52:54:00:00:00:01"),
        ] {
            fs::create_dir(dir.path().join(name)).unwrap();
            fs::write(dir.path().join(name).join("address"), format!("{mac}\n")).unwrap();
        }
        assert_eq!(macs(dir.path()), ["52:54:00:00:00:01", "52:54:00:ab:cd:ef"]);
    }
}
