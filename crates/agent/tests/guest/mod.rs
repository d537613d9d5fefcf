//! A machine for the agent's tests: QEMU (software emulation) boots OVMF
//! (Debian's UEFI firmware for QEMU, its variables in a flash image kept
//! from boot to boot, as a board's NVRAM is) and a Debian cloud kernel
//! whose initramfs holds the calling test binary as its init, with the
//! tools the agent runs (copied from this machine with their libraries)
//! and the files a test gives. The binary runs its ignored `guest_side`
//! test there ([`guest_main`]), which prints one line of JSON on the
//! console and powers the machine off; [`Machine::boot`] returns that line.
//!
//! Needs qemu-system-x86_64, OVMF's split images and the kernel that
//! `scripts/test` extracts (`NEOCLOUD_TEST_KERNEL`, default
//! `~/.cache/neocloud/kernel`: `vmlinuz` and [`MODULES`]): [`Machine::new`]
//! answers `None` without them, saying so, and fails under CI instead.

#![allow(dead_code)] // each test binary uses its part

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

const OVMF_CODE: &str = "/usr/share/OVMF/OVMF_CODE_4M.fd";
const OVMF_VARS: &str = "/usr/share/OVMF/OVMF_VARS_4M.fd";
/// How the guest's answer is found on its console.
const MARK: &str = "NEOCLOUD-GUEST ";
/// The kernel's modules the initramfs holds (`/modules/NAME.ko`), as
/// `scripts/test` extracts them, in the order they load.
const MODULES: [&str; 10] = [
    "efivarfs",
    "virtio_ring",
    "virtio",
    "virtio_pci_modern_dev",
    "virtio_pci_legacy_dev",
    "virtio_pci",
    "virtio_blk",
    "failover",
    "net_failover",
    "virtio_net",
];
/// How long one boot may take (software emulation on a loaded machine).
const BOOT_LIMIT: Duration = Duration::from_secs(600);

// ---- inside the guest -------------------------------------------------

/// The guest's init: mounts `/proc`, `/sys` and `/dev`, runs `f` with the
/// boot's mode (what [`Machine::boot`] was given), prints its answer (or
/// its error) and powers the machine off.
pub fn guest_main(f: impl FnOnce(&str) -> Result<Value, String> + std::panic::UnwindSafe) {
    let answer = match std::panic::catch_unwind(move || {
        mount(&["-t", "proc", "proc", "/proc"])?;
        mount(&["-t", "sysfs", "sysfs", "/sys"])?;
        mount(&["-t", "devtmpfs", "devtmpfs", "/dev"])?;
        let mode = std::fs::read_to_string("/mode").map_err(|e| format!("/mode: {e}"))?;
        f(mode.trim())
    }) {
        Ok(Ok(v)) => v,
        Ok(Err(e)) => json!({ "error": e }),
        Err(p) => json!({ "error": format!("panicked: {:?}", p.downcast_ref::<String>()) }),
    };
    println!("{MARK}{answer}");
    // SAFETY: plain system calls; the guest's init ends here.
    unsafe {
        libc::sync();
        libc::reboot(libc::RB_POWER_OFF);
    }
}

/// The device of class directory `class` (`/sys/block`, `/sys/class/nvme`)
/// whose `serial` is `serial` and for which `ready` holds, waited for (the
/// kernel probes devices after init starts): its name (`vda`, `nvme0`).
pub fn device(class: &str, serial: &str, ready: impl Fn(&str) -> bool) -> Result<String, String> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        for e in std::fs::read_dir(class).into_iter().flatten().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let s = std::fs::read_to_string(e.path().join("serial")).unwrap_or_default();
            if s.trim() == serial && ready(&name) {
                return Ok(name);
            }
        }
        if Instant::now() > deadline {
            return Err(format!("no device in {class} with serial {serial}"));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// `mount ARGS` with the `mount` the initramfs holds.
pub fn mount(args: &[&str]) -> Result<(), String> {
    let out = Command::new("/usr/bin/mount").args(args).output().map_err(|e| e.to_string())?;
    out.status
        .success()
        .then_some(())
        .ok_or_else(|| format!("mount {args:?}: {}", String::from_utf8_lossy(&out.stderr)))
}

/// Loads the kernel's modules for virtio block devices.
pub fn load_virtio_blk() -> Result<(), String> {
    MODULES[1..7].iter().try_for_each(|m| load_module(&format!("/modules/{m}.ko")))
}

/// Loads the kernel's modules for virtio disks and NICs, and gives the
/// NIC QEMU's user network address (`10.0.2.15/24`; this machine is
/// `10.0.2.2` there) with the `ip` the initramfs holds.
pub fn network_up() -> Result<(), String> {
    MODULES[1..].iter().try_for_each(|m| load_module(&format!("/modules/{m}.ko")))?;
    let nic = (0..50)
        .find_map(|_| {
            let found = std::fs::read_dir("/sys/class/net").ok()?.flatten().find_map(|e| {
                let n = e.file_name().to_string_lossy().into_owned();
                (n != "lo").then_some(n)
            });
            if found.is_none() {
                std::thread::sleep(Duration::from_millis(200));
            }
            found
        })
        .ok_or("no network interface")?;
    for args in [
        vec!["link", "set", "lo", "up"],
        vec!["link", "set", nic.as_str(), "up"],
        vec!["addr", "add", "10.0.2.15/24", "dev", nic.as_str()],
    ] {
        let out = Command::new("/usr/sbin/ip").args(&args).output().map_err(|e| e.to_string())?;
        if !out.status.success() {
            return Err(format!("ip {args:?}: {}", String::from_utf8_lossy(&out.stderr)));
        }
    }
    Ok(())
}

/// Loads a kernel module the initramfs holds (no modprobe there).
pub fn load_module(path: &str) -> Result<(), String> {
    use std::os::fd::AsRawFd;
    let f = std::fs::File::open(path).map_err(|e| format!("{path}: {e}"))?;
    // SAFETY: finit_module(2) with an open file and an empty argument string.
    let rc = unsafe { libc::syscall(libc::SYS_finit_module, f.as_raw_fd(), c"".as_ptr(), 0) };
    match rc {
        0 => Ok(()),
        _ => Err(format!("finit_module({path}): {}", std::io::Error::last_os_error())),
    }
}

// ---- the host's side ----------------------------------------------------

pub fn kernel_dir() -> PathBuf {
    std::env::var_os("NEOCLOUD_TEST_KERNEL").map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/neocloud/kernel")
    })
}

/// The machine's TPM for one boot: swtpm with its state in `dir`, on the
/// socket `dir/swtpm.sock` that QEMU's
/// `-chardev socket,id=chrtpm,path=DIR/swtpm.sock -tpmdev emulator,id=tpm0,chardev=chrtpm`
/// opens; it ends when QEMU closes it.
pub fn swtpm(dir: &std::path::Path) -> std::process::Child {
    let sock = dir.join("swtpm.sock");
    let _ = std::fs::remove_file(&sock);
    let child = Command::new("swtpm")
        .args(["socket", "--tpm2", "--terminate", "--tpmstate"])
        .arg(format!("dir={}", dir.display()))
        .arg("--ctrl")
        .arg(format!("type=unixio,path={}", sock.display()))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start swtpm");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !sock.exists() {
        assert!(Instant::now() < deadline, "swtpm made no socket");
        std::thread::sleep(Duration::from_millis(50));
    }
    child
}

/// One machine: its NVRAM, the tools its initramfs carries and QEMU's
/// further arguments (its devices), kept from boot to boot.
pub struct Machine {
    pub dir: PathBuf,
    tools: Vec<String>,
    files: Vec<(String, Vec<u8>)>,
    qemu: Vec<String>,
}

impl Machine {
    /// A machine whose initramfs carries `tools` (absolute paths on this
    /// machine: the agent's `mount` and `chattr` always), or `None` (the
    /// test skips) where something it needs is missing.
    pub fn new(name: &str, tools: &[&str]) -> Option<Machine> {
        let mut tools: Vec<String> = tools.iter().map(|t| t.to_string()).collect();
        for t in ["/usr/bin/mount", "/usr/bin/chattr"] {
            if !tools.iter().any(|x| x == t) {
                tools.push(t.into());
            }
        }
        let k = kernel_dir();
        let qemu = Command::new("qemu-system-x86_64")
            .arg("--version")
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        let missing: Vec<String> = [OVMF_CODE.into(), OVMF_VARS.into(), k.join("vmlinuz")]
            .into_iter()
            .chain(MODULES.iter().map(|m| k.join(format!("{m}.ko"))))
            .chain(tools.iter().map(PathBuf::from))
            .filter(|p| !p.is_file())
            .map(|p| p.display().to_string())
            .chain((!qemu).then(|| "qemu-system-x86_64".to_string()))
            .collect();
        if !missing.is_empty() {
            assert!(
                std::env::var_os("CI").is_none(),
                "the UEFI guest test needs {missing:?} but CI is set: scripts/test installs them"
            );
            eprintln!(
                "SKIPPED: the UEFI guest test needs {missing:?} (Debian: qemu-system-x86 ovmf \
                 and the tools' packages; scripts/test extracts a cloud kernel into {})",
                k.display()
            );
            return None;
        }
        let dir =
            std::env::temp_dir().join(format!("neocloud-guest-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        // The machine's NVRAM: a fresh copy of OVMF's variable store.
        std::fs::copy(OVMF_VARS, dir.join("vars.fd")).unwrap();
        let files = MODULES
            .iter()
            .map(|m| {
                (format!("/modules/{m}.ko"), std::fs::read(k.join(format!("{m}.ko"))).unwrap())
            })
            .collect();
        Some(Machine { dir, tools, files, qemu: vec![] })
    }

    /// QEMU's further arguments (devices) for every boot.
    pub fn qemu_args(mut self, args: &[&str]) -> Machine {
        self.qemu.extend(args.iter().map(|a| a.to_string()));
        self
    }

    /// A file in the machine's directory (disk images, say).
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Boots the machine once in `mode`, with `files` in its initramfs
    /// besides the tools, and answers what its `guest_side` printed.
    pub fn boot(&self, mode: &str, files: &[(&str, &[u8])]) -> Value {
        self.boot_with(mode, files, "")
    }

    /// As [`Machine::boot`], with `kernel_args` on the kernel's command
    /// line too (as a boot loader would put them: `/proc/cmdline`).
    pub fn boot_with(&self, mode: &str, files: &[(&str, &[u8])], kernel_args: &str) -> Value {
        let me = std::env::current_exe().unwrap();
        let me = me.to_str().unwrap();
        let mut cpio = Cpio::new();
        for d in ["/dev", "/proc", "/sys", "/tmp"] {
            cpio.dir(d);
        }
        cpio.entry("/dev/console", 0o020600, (5, 1), &[]);
        cpio.entry("/dev/null", 0o020666, (1, 3), &[]);
        cpio.file("/init", 0o755, &std::fs::read(me).unwrap());
        let mut libs = BTreeSet::new();
        for exe in std::iter::once(me).chain(self.tools.iter().map(String::as_str)) {
            libs.extend(libraries(exe));
        }
        for path in self.tools.iter().cloned().chain(libs) {
            let data = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
            cpio.file(&path, 0o755, &data);
        }
        for (path, data) in &self.files {
            cpio.file(path, 0o644, data);
        }
        for (path, data) in files {
            cpio.file(path, 0o644, data);
        }
        cpio.file("/mode", 0o644, mode.as_bytes());
        let initrd = self.dir.join(format!("initrd-{mode}.cpio"));
        std::fs::write(&initrd, cpio.finish()).unwrap();

        let console = self.dir.join(format!("console-{mode}.log"));
        let _ = std::fs::remove_file(&console);
        let mut vm = Command::new("qemu-system-x86_64")
            .args(["-machine", "q35", "-m", "1024", "-nodefaults", "-display", "none"])
            .arg("-no-reboot")
            .arg("-serial")
            .arg(format!("file:{}", console.display()))
            .arg("-drive")
            .arg(format!("if=pflash,format=raw,unit=0,readonly=on,file={OVMF_CODE}"))
            .arg("-drive")
            .arg(format!("if=pflash,format=raw,unit=1,file={}", self.dir.join("vars.fd").display()))
            .arg("-kernel")
            .arg(kernel_dir().join("vmlinuz"))
            .arg("-initrd")
            .arg(&initrd)
            .arg("-append")
            .arg(format!(
                "console=ttyS0 loglevel=4 panic=-1 rdinit=/init {kernel_args} \
                 -- guest_side --exact --ignored --nocapture --test-threads=1"
            ))
            .args(&self.qemu)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start qemu-system-x86_64");
        let deadline = Instant::now() + BOOT_LIMIT;
        let status = loop {
            if let Some(st) = vm.try_wait().unwrap() {
                break st;
            }
            if Instant::now() > deadline {
                let _ = vm.kill();
                let _ = vm.wait();
                let log = std::fs::read_to_string(&console).unwrap_or_default();
                panic!("the {mode} boot did not power off in {BOOT_LIMIT:?}; console:\n{log}");
            }
            std::thread::sleep(Duration::from_millis(200));
        };
        let log = std::fs::read_to_string(&console).unwrap_or_default();
        assert!(status.success(), "qemu exited {status} in the {mode} boot; console:\n{log}");
        let line = log
            .lines()
            .find_map(|l| l.split_once(MARK).map(|(_, rest)| rest))
            .unwrap_or_else(|| panic!("no answer from the {mode} boot; console:\n{log}"));
        let v: Value = serde_json::from_str(line.trim()).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert!(v.get("error").is_none(), "the {mode} boot: {v}; console:\n{log}");
        v
    }

    /// Removes the machine's directory (kept when a test fails, for its
    /// consoles).
    pub fn done(self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// An initramfs (cpio, newc format) written as it goes.
struct Cpio {
    out: Vec<u8>,
    ino: u32,
    dirs: BTreeSet<String>,
}

impl Cpio {
    fn new() -> Cpio {
        Cpio { out: Vec::new(), ino: 1, dirs: BTreeSet::new() }
    }

    fn entry(&mut self, name: &str, mode: u32, rdev: (u32, u32), data: &[u8]) {
        let name = name.trim_start_matches('/');
        let fields = [
            self.ino,
            mode,
            0,
            0,
            1,
            0,
            data.len() as u32,
            0,
            0,
            rdev.0,
            rdev.1,
            name.len() as u32 + 1,
            0,
        ];
        self.ino += 1;
        self.out.extend_from_slice(b"070701");
        for f in fields {
            self.out.extend_from_slice(format!("{f:08x}").as_bytes());
        }
        self.out.extend_from_slice(name.as_bytes());
        self.out.push(0);
        self.pad();
        self.out.extend_from_slice(data);
        self.pad();
    }

    fn pad(&mut self) {
        while !self.out.len().is_multiple_of(4) {
            self.out.push(0);
        }
    }

    /// A directory and those above it, once each.
    fn dir(&mut self, path: &str) {
        let mut at = String::new();
        for part in path.split('/').filter(|p| !p.is_empty()) {
            at = format!("{at}/{part}");
            if self.dirs.insert(at.clone()) {
                self.entry(&at, 0o040755, (0, 0), &[]);
            }
        }
    }

    fn file(&mut self, path: &str, mode: u32, data: &[u8]) {
        if let Some((parent, _)) = path.rsplit_once('/') {
            self.dir(parent);
        }
        self.entry(path, 0o100000 | mode, (0, 0), data);
    }

    fn finish(mut self) -> Vec<u8> {
        self.entry("TRAILER!!!", 0, (0, 0), &[]);
        self.out
    }
}

/// The shared libraries `exe` loads, as `ldd` names them.
fn libraries(exe: &str) -> Vec<String> {
    let out = Command::new("ldd").arg(exe).output().expect("ldd");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let l = l.trim();
            let path = match l.split_once("=>") {
                Some((_, rest)) => rest.trim().split(' ').next()?,
                None => l.split(' ').next()?,
            };
            path.starts_with('/').then(|| path.to_string())
        })
        .collect()
}
