//! The real hardware of the machine the agent runs on.
//!
//! Disks are only ever those named explicitly ([`Host::new`]); the one
//! exception is [`discover_disks`], which lists this machine's fixed disks
//! and is only used when the operator asks for it (`--all-disks`). Wiping
//! the wrong disk is the worst thing this program could do, so nothing here
//! guesses.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use neocloud_types::{AgentDisk, AgentGpu, AgentInventory, AgentStepResult, GpuStatus, StepItem};

use crate::nvml::Nvml;
use crate::xid_watch::XidWatch;
use crate::{result_of, Hardware};
use std::sync::Arc;

/// Overwrite and verification chunk size.
const CHUNK: usize = 1 << 20;

/// This machine: the disks it was told about and the GPUs NVML sees.
pub struct Host {
    disks: Vec<PathBuf>,
    nvml: Option<Arc<Nvml>>,
    /// The GPUs' critical Xids, watched while NVML is loaded.
    xids: Option<Arc<XidWatch>>,
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
        Host { disks, nvml, xids }
    }

    /// Like [`Host::new`] but never loads NVML (no GPUs).
    pub fn without_gpus(disks: Vec<PathBuf>) -> Host {
        Host { disks, nvml: None, xids: None }
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
        result_of(self.disks.iter().map(|d| wipe_disk_among(d, &self.disks)).collect())
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

fn read_trimmed(p: &Path) -> io::Result<String> {
    Ok(fs::read_to_string(p)?.trim().to_string())
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

/// The kernel's name for a block device path (`/dev/disk/by-id/...` is
/// resolved), e.g. `nvme0n1`.
fn kernel_name(path: &Path) -> Option<String> {
    let real = fs::canonicalize(path).ok()?;
    Some(real.file_name()?.to_string_lossy().into_owned())
}

/// Size and model of a disk; a missing one is reported with size 0.
pub fn describe_disk(path: &Path) -> AgentDisk {
    let shown = path.to_string_lossy().into_owned();
    let Ok(meta) = fs::metadata(path) else {
        return AgentDisk { path: shown, bytes: 0, model: String::new() };
    };
    if meta.is_file() {
        return AgentDisk { path: shown, bytes: meta.len(), model: "file".into() };
    }
    let sys = kernel_name(path).map(|n| Path::new("/sys/class/block").join(n));
    let bytes = sys
        .as_ref()
        .and_then(|s| read_trimmed(&s.join("size")).ok())
        .and_then(|s| s.parse::<u64>().ok())
        .map(|sectors| sectors * 512)
        .or_else(|| File::open(path).and_then(|mut f| f.seek(SeekFrom::End(0))).ok())
        .unwrap_or(0);
    let model = sys.and_then(|s| read_trimmed(&s.join("device/model")).ok()).unwrap_or_default();
    AgentDisk { path: shown, bytes, model }
}

/// A step item about a GPU's ECC or MIG mode.
fn mode_item(uuid: &str, ok: bool, detail: String) -> StepItem {
    StepItem { target: uuid.to_string(), method: "nvml-mode".into(), ok, detail }
}

/// Wipes one disk and says how.
pub fn wipe_disk(path: &Path) -> StepItem {
    wipe_disk_among(path, &[path.to_path_buf()])
}

/// Wipes one of the disks the operator named (`named`, all of them): an
/// NVMe namespace's whole subsystem is sanitized only when every namespace
/// attached to its controller is among them.
pub fn wipe_disk_among(path: &Path, named: &[PathBuf]) -> StepItem {
    let target = path.to_string_lossy().into_owned();
    let item = |method: &str, ok: bool, detail: String| StepItem {
        target: target.clone(),
        method: method.into(),
        ok,
        detail,
    };
    let meta = match fs::metadata(path) {
        Ok(m) => m,
        Err(e) => return item("none", false, format!("cannot open {target}: {e}")),
    };
    if meta.is_file() {
        return match overwrite_and_verify(path) {
            Ok(n) => item("overwrite", true, format!("wrote and verified {n} zero bytes")),
            Err(e) => item("overwrite", false, e),
        };
    }
    if !meta.file_type().is_block_device() {
        return item("none", false, format!("{target} is neither a block device nor a file"));
    }
    let name = kernel_name(path).unwrap_or_default();
    if let Some(m) = mounted(&name) {
        return item("none", false, format!("{target} is in use (mounted: {m}); refusing to wipe"));
    }
    // Faster and stronger methods first; each failure is kept for the
    // detail of whichever method finally works (or of the failure).
    let mut tried = Vec::new();
    if let (Some(ctrl), true) = (crate::nvme::controller_of(&name), find_tool("nvme").is_some()) {
        let ctrl = format!("/dev/{ctrl}");
        let mut nvme = |args: &[&str]| run_tool_stdout("nvme", args);
        let pause = || std::thread::sleep(std::time::Duration::from_secs(1));
        let names: Vec<String> = named.iter().filter_map(|d| kernel_name(d)).collect();
        let unnamed = match crate::nvme::attached_namespaces(&ctrl, &mut nvme) {
            Ok(ids) => crate::nvme::unnamed(&ctrl, &ids, &names),
            Err(e) => vec![format!("(cannot list them: {e})")],
        };
        if unnamed.is_empty() {
            // The whole subsystem, namespaces detached by the tenant
            // included (a day of one-second reads at most).
            match crate::nvme::sanitize(&ctrl, &mut nvme, &pause, 86_400) {
                Ok(how) => return item("nvme-sanitize", true, how),
                Err(e) => tried.push(format!("nvme sanitize: {e}")),
            }
        } else {
            tried.push(format!(
                "nvme sanitize not tried: {} of {ctrl} not among the disks to wipe",
                unnamed.join(", ")
            ));
        }
        match crate::nvme::detached_namespaces(&ctrl, &mut nvme) {
            Ok(hidden) if !hidden.is_empty() => {
                let why = format!(
                    "namespace(s) {hidden:?} of {ctrl} are allocated but not attached: only a \
                     Sanitize reaches them; attach or delete them, then sanitize again"
                );
                return item("none", false, with_tried(&why, &tried));
            }
            Ok(_) => {}
            Err(e) => tried.push(format!("nvme list-ns: {e}")),
        }
        match run_tool("nvme", &["format", &target, "--ses=2", "--force"]) {
            Ok(_) => return item("nvme-crypto-erase", true, "nvme format --ses=2".into()),
            Err(e) => tried.push(format!("nvme crypto erase: {e}")),
        }
    }
    if name.starts_with("sd") && find_tool("hdparm").is_some() {
        match ata_secure_erase(&target) {
            Ok(how) => return item("ata-secure-erase", true, with_tried(&how, &tried)),
            Err(e) => tried.push(format!("ATA secure erase: {e}")),
        }
    }
    if find_tool("blkdiscard").is_some() {
        match run_tool("blkdiscard", &["-s", &target]) {
            Ok(_) => return item("blkdiscard-secure", true, with_tried("blkdiscard -s", &tried)),
            Err(e) => tried.push(format!("blkdiscard -s: {e}")),
        }
        match run_tool("blkdiscard", &[&target]) {
            Ok(_) => return item("blkdiscard", true, with_tried("blkdiscard", &tried)),
            Err(e) => tried.push(format!("blkdiscard: {e}")),
        }
    }
    match overwrite_and_verify(path) {
        Ok(n) => item(
            "overwrite",
            true,
            with_tried(&format!("wrote and verified {n} zero bytes"), &tried),
        ),
        Err(e) => item("overwrite", false, with_tried(&e, &tried)),
    }
}

fn with_tried(done: &str, tried: &[String]) -> String {
    if tried.is_empty() {
        done.to_string()
    } else {
        format!("{done} (after: {})", tried.join("; "))
    }
}

/// Overwrites the whole file or device with zeros, syncs, then reads it
/// all back and checks every byte. Answers the number of bytes.
pub fn overwrite_and_verify(path: &Path) -> Result<u64, String> {
    let shown = path.display();
    let mut f = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(|e| format!("cannot open {shown} for writing: {e}"))?;
    // Seeking to the end gives the size of files and block devices alike.
    let size = f.seek(SeekFrom::End(0)).map_err(|e| format!("cannot size {shown}: {e}"))?;
    f.seek(SeekFrom::Start(0)).map_err(|e| format!("seek on {shown}: {e}"))?;
    let zeros = vec![0u8; CHUNK];
    let mut left = size;
    while left > 0 {
        let n = left.min(CHUNK as u64) as usize;
        f.write_all(&zeros[..n])
            .map_err(|e| format!("write at {} of {shown}: {e}", size - left))?;
        left -= n as u64;
    }
    f.sync_all().map_err(|e| format!("fsync of {shown}: {e}"))?;
    drop(f);
    verify_zero(path, size)?;
    Ok(size)
}

/// Reads the first `size` bytes of `path` back and checks they are zero.
fn verify_zero(path: &Path, size: u64) -> Result<(), String> {
    let shown = path.display();
    let mut f = File::open(path).map_err(|e| format!("cannot reopen {shown}: {e}"))?;
    let mut buf = vec![0u8; CHUNK];
    let mut offset = 0u64;
    while offset < size {
        let want = (size - offset).min(CHUNK as u64) as usize;
        f.read_exact(&mut buf[..want])
            .map_err(|e| format!("read back at {offset} of {shown}: {e}"))?;
        if let Some(i) = buf[..want].iter().position(|&b| b != 0) {
            return Err(format!(
                "verification failed: byte {} of {shown} is not zero",
                offset + i as u64
            ));
        }
        offset += want as u64;
    }
    Ok(())
}

/// Where the block device `name` (or one of its partitions) is mounted,
/// if it is, per `/proc/mounts` and `/proc/swaps`.
fn mounted(name: &str) -> Option<String> {
    if name.is_empty() {
        return None;
    }
    let mut names = vec![name.to_string()];
    if let Ok(entries) = fs::read_dir(Path::new("/sys/class/block").join(name)) {
        for e in entries.flatten() {
            if e.path().join("partition").exists() {
                names.push(e.file_name().to_string_lossy().into_owned());
            }
        }
    }
    let mounts = fs::read_to_string("/proc/mounts").unwrap_or_default();
    let swaps = fs::read_to_string("/proc/swaps").unwrap_or_default();
    mounted_in(&names, &mounts, &swaps)
}

fn mounted_in(names: &[String], mounts: &str, swaps: &str) -> Option<String> {
    let lines = mounts.lines().map(|l| (l, 1)).chain(swaps.lines().skip(1).map(|l| (l, 0)));
    for (line, where_col) in lines {
        let cols: Vec<&str> = line.split_whitespace().collect();
        let Some(src) = cols.first() else { continue };
        if !src.starts_with('/') {
            continue;
        }
        let real = fs::canonicalize(src).unwrap_or_else(|_| PathBuf::from(src));
        let base = real.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        if names.contains(&base) {
            let at = if where_col == 1 { cols.get(1).copied().unwrap_or("?") } else { "swap" };
            return Some(format!("{src} on {at}"));
        }
    }
    None
}

/// The machine's fixed disks, for `--all-disks`: every `/sys/block` entry
/// backed by a device that is not removable, not a loop/ram/zram/device
/// mapper/md/optical/floppy/nbd device, has a non-zero size, and has no
/// mounted partition. Returned as `/dev/<name>`.
pub fn discover_disks() -> io::Result<Vec<PathBuf>> {
    discover_disks_in(Path::new("/sys/block"), Path::new("/dev"), &|name| mounted(name))
}

fn discover_disks_in(
    sys_block: &Path,
    dev: &Path,
    mounted: &dyn Fn(&str) -> Option<String>,
) -> io::Result<Vec<PathBuf>> {
    const VIRTUAL: [&str; 8] = ["loop", "ram", "zram", "dm-", "md", "sr", "fd", "nbd"];
    let mut out = Vec::new();
    for e in fs::read_dir(sys_block)? {
        let e = e?;
        let name = e.file_name().to_string_lossy().into_owned();
        let dir = e.path();
        if VIRTUAL.iter().any(|p| name.starts_with(p)) || !dir.join("device").exists() {
            continue;
        }
        if read_trimmed(&dir.join("removable")).map(|r| r != "0").unwrap_or(true) {
            continue;
        }
        let sectors = read_trimmed(&dir.join("size")).ok().and_then(|s| s.parse::<u64>().ok());
        if sectors.unwrap_or(0) == 0 {
            continue;
        }
        if let Some(m) = mounted(&name) {
            eprintln!("neocloud-agent: not wiping {name}: mounted ({m})");
            continue;
        }
        out.push(dev.join(&name));
    }
    out.sort();
    Ok(out)
}

/// The path of an executable on `$PATH` (or the usual sbin directories,
/// which minimal ramdisks leave off `$PATH`).
pub fn find_tool(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| {
            use std::os::unix::fs::PermissionsExt;
            fs::metadata(p)
                .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
                .unwrap_or(false)
        })
}

/// Runs a tool to completion; `Ok` with all of its standard output when it
/// exits 0, else what went wrong (the last line of its error output, or of
/// its standard output when it wrote no error).
fn run_tool_stdout(name: &str, args: &[&str]) -> Result<String, String> {
    let Some(exe) = find_tool(name) else { return Err(format!("{name} is not installed")) };
    let out = Command::new(&exe)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", exe.display()))?;
    if out.status.success() {
        return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
    }
    let err = last_line(&out.stderr);
    let err = if err.is_empty() { last_line(&out.stdout) } else { err };
    Err(format!("{name} {} failed ({}): {err}", args.join(" "), out.status))
}

/// Runs a tool to completion; `Ok` with the last line of its output when it
/// exits 0, else what went wrong.
fn run_tool(name: &str, args: &[&str]) -> Result<String, String> {
    run_tool_stdout(name, args).map(|out| last_line(out.as_bytes()))
}

/// The last non-empty line of a tool's output, trimmed, at most 300
/// characters.
fn last_line(b: &[u8]) -> String {
    String::from_utf8_lossy(b)
        .lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty())
        .unwrap_or("")
        .chars()
        .take(300)
        .collect()
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
        let len = CHUNK * 2 + 12345;
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
    fn verification_catches_a_non_zero_byte() {
        let dir = TempDir::new("verify");
        let f = dir.path().join("f");
        let mut data = vec![0u8; CHUNK + 100];
        data[CHUNK + 42] = 1;
        fs::write(&f, &data).unwrap();
        let err = verify_zero(&f, data.len() as u64).unwrap_err();
        assert!(err.contains(&format!("byte {}", CHUNK + 42)), "{err}");
        assert_eq!(verify_zero(&f, CHUNK as u64), Ok(()));
        // Shorter than claimed: a read error, not a pass.
        assert!(verify_zero(&f, data.len() as u64 + 1).is_err());
        assert!(overwrite_and_verify(&dir.path().join("nope")).is_err());
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

    #[test]
    fn discovery_only_lists_fixed_unmounted_disks() {
        let dir = TempDir::new("sys");
        let sys = dir.path();
        let disk = |name: &str, removable: &str, size: &str, device: bool| {
            let d = sys.join(name);
            fs::create_dir(&d).unwrap();
            fs::write(d.join("removable"), removable).unwrap();
            fs::write(d.join("size"), size).unwrap();
            if device {
                fs::create_dir(d.join("device")).unwrap();
            }
        };
        disk("nvme0n1", "0\n", "7501476528\n", true);
        disk("nvme1n1", "0\n", "7501476528\n", true);
        disk("sda", "0\n", "1000\n", true); // mounted: skipped
        disk("sdb", "1\n", "1000\n", true); // removable
        disk("loop0", "0\n", "1000\n", true);
        disk("ram0", "0\n", "1000\n", true);
        disk("dm-0", "0\n", "1000\n", true);
        disk("vdz", "0\n", "0\n", true); // empty
        disk("virt", "0\n", "1000\n", false); // no backing device
        let mounted = |n: &str| (n == "sda").then(|| "/dev/sda1 on /".to_string());
        let got = discover_disks_in(sys, Path::new("/dev"), &mounted).unwrap();
        assert_eq!(got, [PathBuf::from("/dev/nvme0n1"), PathBuf::from("/dev/nvme1n1")]);
    }

    #[test]
    fn mounts_are_matched_by_device_name() {
        let names = vec!["sdz".to_string(), "sdz1".to_string()];
        let mounts = "proc /proc proc rw 0 0\n/dev/sdz1 /boot ext4 rw 0 0\n";
        assert_eq!(mounted_in(&names, mounts, "").as_deref(), Some("/dev/sdz1 on /boot"));
        assert_eq!(mounted_in(&names, "/dev/sdy1 / ext4 rw 0 0\n", ""), None);
        let swaps = "Filename Type Size Used Priority\n/dev/sdz partition 1 0 -2\n";
        assert_eq!(mounted_in(&names, "", swaps).as_deref(), Some("/dev/sdz on swap"));
    }

    #[test]
    fn tools_are_found_on_path() {
        assert!(find_tool("sh").is_some());
        assert!(find_tool("neocloud-no-such-tool").is_none());
        assert!(run_tool("neocloud-no-such-tool", &[]).unwrap_err().contains("not installed"));
        assert!(run_tool("false", &[]).is_err());
        assert_eq!(run_tool("echo", &["hi"]), Ok("hi".to_string()));
    }
}

/// ATA security erase through `hdparm` when the drive supports it and is
/// not frozen: a temporary user password is set, then the (enhanced where
/// supported) erase clears it with the data.
fn ata_secure_erase(dev: &str) -> Result<String, String> {
    let info = run_tool("hdparm", &["-I", dev])?;
    let plan = ata_erase_plan(&info)?;
    run_tool("hdparm", &["--user-master", "u", "--security-set-pass", "neocloud", dev])?;
    if let Err(e) = run_tool("hdparm", &["--user-master", "u", plan, "neocloud", dev]) {
        // Never leave the drive locked with our password.
        let undo =
            run_tool("hdparm", &["--user-master", "u", "--security-disable", "neocloud", dev]);
        return Err(match undo {
            Ok(_) => e,
            Err(u) => format!("{e}; and removing the temporary password failed: {u}"),
        });
    }
    Ok(format!("hdparm {plan}"))
}

/// Which erase `hdparm -I` output allows: enhanced, normal, or why none.
fn ata_erase_plan(info: &str) -> Result<&'static str, String> {
    let security = info
        .split("Security:")
        .nth(1)
        .ok_or_else(|| "the drive reports no ATA security feature set".to_string())?;
    let line = |needle: &str| {
        security.lines().any(|l| {
            let l = l.trim();
            l.ends_with(needle) && !l.starts_with("not")
        })
    };
    if !line("supported") {
        return Err("ATA security is not supported".into());
    }
    if line("frozen") {
        return Err(
            "the drive's security state is frozen (a suspend/resume cycle unfreezes it)".into()
        );
    }
    if line("enabled") {
        return Err("a security password is already set on the drive".into());
    }
    Ok(if line("supported: enhanced erase") {
        "--security-erase-enhanced"
    } else {
        "--security-erase"
    })
}

#[cfg(test)]
mod ata_tests {
    use super::ata_erase_plan;

    const SUPPORTED: &str = "Model Number: X\nSecurity: \n\tMaster password revision code = 65534\n\t\tsupported\n\tnot\tenabled\n\tnot\tlocked\n\tnot\tfrozen\n\tnot\texpired: security count\n\t\tsupported: enhanced erase\n\t2min for SECURITY ERASE UNIT.\n";

    #[test]
    fn picks_the_erase_hdparm_reports() {
        assert_eq!(ata_erase_plan(SUPPORTED), Ok("--security-erase-enhanced"));
        let normal = SUPPORTED
            .replace("\t\tsupported: enhanced erase\n", "\tnot\tsupported: enhanced erase\n");
        assert_eq!(ata_erase_plan(&normal), Ok("--security-erase"));
        let frozen = SUPPORTED.replace("\tnot\tfrozen", "\t\tfrozen");
        assert!(ata_erase_plan(&frozen).unwrap_err().contains("frozen"));
        let locked = SUPPORTED.replace("\tnot\tenabled", "\t\tenabled");
        assert!(ata_erase_plan(&locked).unwrap_err().contains("password"));
        assert!(ata_erase_plan("Model Number: X\n").is_err());
        let unsupported = SUPPORTED.replace("\t\tsupported\n", "\tnot\tsupported\n");
        assert!(ata_erase_plan(&unsupported).unwrap_err().contains("not supported"));
    }
}
