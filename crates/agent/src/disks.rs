//! Disks: finding them, describing them, and wiping them with the
//! strongest method the device offers (NVMe Sanitize or format with
//! secure erase, ATA security erase, secure discard), else zeroed by the
//! device (`BLKZEROOUT`) or overwritten, and read back to the last byte.
//! A plain discard is never a wipe: a device may take it as a hint and
//! keep every byte readable (QEMU's virtio disks with `discard=ignore`
//! do), so it counts for nothing here.
//!
//! Disks are only ever those named explicitly; the one exception is
//! [`discover_disks`], which lists this machine's fixed disks and is only
//! used when the operator asks for it (`--all-disks`). Wiping the wrong
//! disk is the worst thing this program could do, so nothing here guesses.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};

use neocloud_types::{AgentDisk, StepItem};

use crate::tools::{find_tool, read_trimmed, run_tool, run_tool_stdout};

/// Overwrite and verification chunk size.
pub(crate) const CHUNK: usize = 1 << 20;

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

/// Wipes every disk of `disks` (the operator's list), an item each. A
/// Sanitize reaches the whole NVMe subsystem, so a namespace whose
/// controller was sanitized for an earlier disk of the list is not wiped
/// again: its item says which one erased it.
pub fn wipe_disks(disks: &[PathBuf]) -> Vec<StepItem> {
    let controller = |p: &Path| kernel_name(p).and_then(|n| crate::nvme::controller_of(&n));
    wipe_each(disks, &controller, &mut |d| wipe_disk_among(d, disks))
}

fn wipe_each(
    disks: &[PathBuf],
    controller: &dyn Fn(&Path) -> Option<String>,
    wipe: &mut dyn FnMut(&Path) -> StepItem,
) -> Vec<StepItem> {
    // Controller -> the disk whose wipe sanitized it.
    let mut sanitized: Vec<(String, String)> = Vec::new();
    let mut items = Vec::new();
    for d in disks {
        let ctrl = controller(d);
        let done = ctrl.as_ref().and_then(|c| sanitized.iter().find(|(s, _)| s == c));
        if let (Some(c), Some((_, by))) = (&ctrl, done) {
            items.push(StepItem {
                target: d.to_string_lossy().into_owned(),
                method: "nvme-sanitize".into(),
                ok: true,
                detail: format!(
                    "erased by the Sanitize of /dev/{c} (the whole subsystem) for {by}"
                ),
            });
            continue;
        }
        let item = wipe(d);
        if let (Some(c), true) = (ctrl, item.ok && item.method == "nvme-sanitize") {
            sanitized.push((c, item.target.clone()));
        }
        items.push(item);
    }
    items
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
    if let Some(ctrl) = crate::nvme::controller_of(&name) {
        if let Some((method, ok, detail)) = wipe_nvme(&ctrl, &target, named, &mut tried) {
            return item(method, ok, detail);
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
        // The device writes zeros (Write Zeroes, WRITE SAME, or the kernel
        // writes them): every byte is then read back from the device.
        match run_tool("blkdiscard", &["-z", &target]).and_then(|_| verify_device_zero(path)) {
            Ok(n) => {
                let done = format!("blkdiscard -z, read back {n} zero bytes");
                return item("blkdiscard-zeroout", true, with_tried(&done, &tried));
            }
            Err(e) => tried.push(format!("blkdiscard -z: {e}")),
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

/// The NVMe ways to wipe namespace `target` of controller `ctrl`
/// (`nvme0`): Sanitize of the whole subsystem, else a format with secure
/// erase after erasing the namespaces a tenant detached. `None` when
/// neither worked (what was tried is in `tried`: the generic ways follow);
/// else the item's method, whether it is ok, and its detail.
fn wipe_nvme(
    ctrl: &str,
    target: &str,
    named: &[PathBuf],
    tried: &mut Vec<String>,
) -> Option<(&'static str, bool, String)> {
    if find_tool("nvme").is_none() {
        // Without it, a namespace the tenant detached cannot be found,
        // and a wipe of the others would pass for the drive's.
        let why = "nvme-cli is not installed: a namespace a tenant detached from this drive can \
                   neither be found nor erased";
        return Some(("none", false, why.into()));
    }
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
            Ok(how) => return Some(("nvme-sanitize", true, how)),
            Err(e) => tried.push(format!("nvme sanitize: {e}")),
        }
    } else {
        tried.push(format!(
            "nvme sanitize not tried: {} of {ctrl} not among the disks to wipe",
            unnamed.join(", ")
        ));
    }
    let id = crate::nvme::id_ctrl(&ctrl, &mut nvme);
    let (ses, method) = id.as_ref().map_or((1, ""), crate::nvme::format_erase);
    let mut hidden_erased = None;
    match (crate::nvme::detached_namespaces(&ctrl, &mut nvme), &id) {
        (Ok(hidden), _) if hidden.is_empty() => {}
        // Only a namespace of a controller whose every attached one was
        // named: the same bound as the Sanitize's.
        (Ok(hidden), Ok(id)) if unnamed.is_empty() => {
            match crate::nvme::erase_detached(&ctrl, &hidden, id, ses, &mut nvme) {
                Ok(how) => hidden_erased = Some(how),
                Err(e) => return Some(("none", false, with_tried(&e, tried))),
            }
        }
        (Ok(hidden), Err(e)) => {
            let why = format!(
                "namespace(s) {hidden:?} of {ctrl} are allocated but not attached, and its \
                 Identify Controller cannot be read to erase them: {e}"
            );
            return Some(("none", false, with_tried(&why, tried)));
        }
        (Ok(hidden), Ok(_)) => {
            let why = format!(
                "namespace(s) {hidden:?} of {ctrl} are allocated but not attached, and not \
                 every namespace attached to it is among the disks to wipe: attach or delete \
                 them, or name every namespace, then sanitize again"
            );
            return Some(("none", false, with_tried(&why, tried)));
        }
        (Err(e), _) => tried.push(format!("nvme list-ns: {e}")),
    }
    if let Err(e) = &id {
        tried.push(format!("nvme id-ctrl: {e}"));
        return None;
    }
    match run_tool("nvme", &["format", target, &format!("--ses={ses}"), "--force"]) {
        Ok(_) => {
            let done = format!("nvme format --ses={ses}");
            let done = match hidden_erased {
                Some(h) => format!("{done}; {h}"),
                None => done,
            };
            Some((method, true, with_tried(&done, tried)))
        }
        Err(e) => {
            tried.push(format!("nvme format --ses={ses}: {e}"));
            None
        }
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

/// Reads a whole device back from the device itself (its cached pages
/// dropped first) and checks every byte is zero; answers its size.
fn verify_device_zero(path: &Path) -> Result<u64, String> {
    let shown = path.display();
    let mut f = File::open(path).map_err(|e| format!("cannot open {shown}: {e}"))?;
    let size = f.seek(SeekFrom::End(0)).map_err(|e| format!("cannot size {shown}: {e}"))?;
    drop(f);
    verify_zero(path, size)?;
    Ok(size)
}

/// Reads the first `size` bytes of `path` back and checks they are zero.
/// The pages the kernel caches for it are dropped first (they were just
/// written or zeroed), so a block device is read from the device.
fn verify_zero(path: &Path, size: u64) -> Result<(), String> {
    use std::os::fd::AsRawFd;
    let shown = path.display();
    let mut f = File::open(path).map_err(|e| format!("cannot reopen {shown}: {e}"))?;
    // SAFETY: advice on an open descriptor; no memory is passed.
    let rc = unsafe { libc::posix_fadvise(f.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
    if rc != 0 {
        return Err(format!(
            "cannot drop the cached pages of {shown}: {}",
            io::Error::from_raw_os_error(rc)
        ));
    }
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
/// backed by a device that is not removable, not hidden, not a
/// loop/ram/zram/device mapper/md/optical/floppy/nbd device, has a
/// non-zero size, and has no mounted partition. Returned as `/dev/<name>`.
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
        // A hidden disk has no device node: NVMe multipath's per-controller
        // path to a namespace (`nvme0c0n1`), whose namespace is listed as
        // its head (`nvme0n1`).
        if read_trimmed(&dir.join("hidden")).is_ok_and(|h| h == "1") {
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
mod tests {
    use super::*;
    use crate::testutil::TempDir;

    #[test]
    fn a_sanitized_subsystem_is_not_sanitized_again_for_its_other_namespaces() {
        let disks: Vec<PathBuf> =
            ["/dev/nvme0n1", "/dev/nvme0n2", "/dev/nvme1n1", "/dev/sda"].map(PathBuf::from).into();
        let controller = |p: &Path| {
            let n = p.file_name()?.to_string_lossy().into_owned();
            crate::nvme::controller_of(&n)
        };
        let mut calls = Vec::new();
        // nvme0's Sanitize works; nvme1 has none (crypto erase instead).
        let mut wipe = |d: &Path| {
            calls.push(d.to_path_buf());
            let method = if d.ends_with("nvme0n1") { "nvme-sanitize" } else { "overwrite" };
            StepItem {
                target: d.display().to_string(),
                method: method.into(),
                ok: true,
                detail: String::new(),
            }
        };
        let items = wipe_each(&disks, &controller, &mut wipe);
        assert_eq!(calls, [disks[0].clone(), disks[2].clone(), disks[3].clone()]);
        assert_eq!(items.len(), 4);
        assert!(items.iter().all(|i| i.ok));
        assert_eq!(items[1].target, "/dev/nvme0n2");
        assert_eq!(items[1].method, "nvme-sanitize");
        assert_eq!(
            items[1].detail,
            "erased by the Sanitize of /dev/nvme0 (the whole subsystem) for /dev/nvme0n1"
        );

        // A failed Sanitize is no reason to skip the next namespace.
        let mut calls = 0;
        let mut failing = |d: &Path| {
            calls += 1;
            StepItem {
                target: d.display().to_string(),
                method: "nvme-sanitize".into(),
                ok: false,
                detail: String::new(),
            }
        };
        let items = wipe_each(&disks[..2], &controller, &mut failing);
        assert_eq!(calls, 2);
        assert!(items.iter().all(|i| !i.ok));
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
        disk("nvme1c1n1", "0\n", "7501476528\n", true); // a multipath path
        fs::write(sys.join("nvme1c1n1/hidden"), "1\n").unwrap();
        fs::write(sys.join("nvme1n1/hidden"), "0\n").unwrap();
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
