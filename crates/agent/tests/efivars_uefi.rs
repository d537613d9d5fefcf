//! The agent's `clear_uefi_variables` against real UEFI firmware and the
//! kernel's real efivarfs: QEMU (software emulation) boots OVMF (Debian's
//! UEFI firmware for QEMU, its variables in a writable flash image kept
//! from boot to boot, as a board's NVRAM is) and a Debian cloud kernel,
//! whose initramfs holds this very test binary as its init, the agent's
//! tools (`mount`, `chattr`) and efivarfs' module. Three boots of one
//! machine:
//!
//! 1. the node's first sanitization: the agent (its real host discovery,
//!    which mounts efivarfs) records the firmware's non-volatile variables
//!    as the node's baseline; then the tenant's root writes a non-volatile
//!    variable, as any root can (a volatile one it cannot: UEFI refuses
//!    them once the OS runs);
//! 2. the next sanitization, after a power cycle: the tenant's variable is
//!    still there (it is in the firmware's flash); the agent deletes what
//!    is not in the baseline (efivarfs
//!    makes it immutable: the agent lifts the flag) and keeps the
//!    firmware's;
//! 3. a plain boot: the tenant's variable is gone from the flash, every
//!    variable of the baseline is still there, and the firmware still boots.
//!
//! Needs qemu-system-x86_64, OVMF's split images and the kernel that
//! `scripts/test` extracts (`NEOCLOUD_TEST_KERNEL`, default
//! `~/.cache/neocloud/kernel`: `vmlinuz`, `efivarfs.ko`); skipped loudly
//! without them, failed instead under CI.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use neocloud_agent::efivars::{self, DELETED, KEPT};
use neocloud_agent::{run_step, Host};
use neocloud_types::{AgentStep, AgentStepKind, AgentStepResult};
use serde_json::{json, Value};

const OVMF_CODE: &str = "/usr/share/OVMF/OVMF_CODE_4M.fd";
const OVMF_VARS: &str = "/usr/share/OVMF/OVMF_VARS_4M.fd";
/// The tenant's variables, under a GUID of its own.
const TENANT_NV: &str = "TenantLeftover-5d6b1e4a-8c2f-4e7b-9a31-0c6f2d4b8e17";
const TENANT_VOLATILE: &str = "TenantVolatile-5d6b1e4a-8c2f-4e7b-9a31-0c6f2d4b8e17";
/// How the guest's answer is found on its console.
const MARK: &str = "NEOCLOUD-GUEST ";

// ---- inside the guest -------------------------------------------------

/// The guest's side: this test binary is the guest's init (run with
/// `--ignored`). What it does is read from `/mode` (and `/baseline`); it
/// prints one line of JSON and powers the machine off.
#[test]
#[ignore = "runs as init inside the UEFI guest that a_tenants_uefi_variables_are_deleted_from_real_firmware boots"]
fn guest_side() {
    let answer = match std::panic::catch_unwind(guest) {
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

fn guest() -> Result<Value, String> {
    mount_tool(&["-t", "proc", "proc", "/proc"])?;
    mount_tool(&["-t", "sysfs", "sysfs", "/sys"])?;
    load_module("/efivarfs.ko")?;
    let mode = std::fs::read_to_string("/mode").map_err(|e| format!("/mode: {e}"))?;
    // The agent's own discovery: booted through UEFI, efivarfs mounted by it.
    let host = Host::new(vec![]);
    let dir = host.efivars().ok_or("the agent found no UEFI variables")?.to_path_buf();
    let before = listed(&dir)?;
    let step = |baseline: Option<Vec<String>>| AgentStep {
        id: "s".into(),
        kind: AgentStepKind::ClearUefiVariables,
        uefi_baseline: baseline,
    };
    let result = match mode.trim() {
        "record" => {
            let r = run_step(&host, &step(None));
            // The tenant's root: attributes (non-volatile, boot service and
            // runtime access), then its data, in one write.
            let mut nv = 7u32.to_le_bytes().to_vec();
            nv.extend_from_slice(b"what the last tenant left");
            std::fs::write(dir.join(TENANT_NV), nv).map_err(|e| format!("{TENANT_NV}: {e}"))?;
            // A volatile one (no non-volatile attribute): after the
            // firmware's boot services exit, UEFI lets only non-volatile
            // variables be set, which is why the agent ignores volatile ones.
            let mut volatile = 6u32.to_le_bytes().to_vec();
            volatile.extend_from_slice(b"would be gone at the reset");
            let refused = std::fs::write(dir.join(TENANT_VOLATILE), volatile).is_err();
            return Ok(json!({
                "before": before, "result": r, "after": listed(&dir)?, "volatile_refused": refused,
            }));
        }
        "clear" => {
            let baseline = std::fs::read_to_string("/baseline").map_err(|e| e.to_string())?;
            let keys = baseline.lines().map(str::to_string).collect();
            Some(run_step(&host, &step(Some(keys))))
        }
        "check" => None,
        other => return Err(format!("unknown mode {other:?}")),
    };
    Ok(json!({ "before": before, "result": result, "after": listed(&dir)? }))
}

/// The variables as `[key, attributes]`.
fn listed(dir: &Path) -> Result<Vec<(String, u32)>, String> {
    Ok(efivars::list(dir)?.into_iter().map(|v| (v.key, v.attributes)).collect())
}

fn mount_tool(args: &[&str]) -> Result<(), String> {
    let out = Command::new("/usr/bin/mount").args(args).output().map_err(|e| e.to_string())?;
    out.status
        .success()
        .then_some(())
        .ok_or_else(|| format!("mount {args:?}: {}", String::from_utf8_lossy(&out.stderr)))
}

fn load_module(path: &str) -> Result<(), String> {
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

fn kernel_dir() -> PathBuf {
    std::env::var_os("NEOCLOUD_TEST_KERNEL").map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/neocloud/kernel")
    })
}

/// What the test needs, or why it skips (fails under CI).
fn prerequisites() -> bool {
    let k = kernel_dir();
    let qemu = Command::new("qemu-system-x86_64")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    let files = [
        PathBuf::from(OVMF_CODE),
        PathBuf::from(OVMF_VARS),
        k.join("vmlinuz"),
        k.join("efivarfs.ko"),
        PathBuf::from("/usr/bin/chattr"),
        PathBuf::from("/usr/bin/mount"),
    ];
    let missing: Vec<String> = files
        .iter()
        .filter(|p| !p.is_file())
        .map(|p| p.display().to_string())
        .chain((!qemu).then(|| "qemu-system-x86_64".to_string()))
        .collect();
    if missing.is_empty() {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "the UEFI guest test needs {missing:?} but CI is set: scripts/test installs them"
    );
    eprintln!(
        "SKIPPED: the UEFI guest test needs {missing:?} (Debian: qemu-system-x86 ovmf; \
         scripts/test extracts a cloud kernel into {})",
        k.display()
    );
    false
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

    /// A file of this machine at the same path (links followed).
    fn copy(&mut self, path: &str) {
        let data = std::fs::read(path).unwrap_or_else(|e| panic!("{path}: {e}"));
        self.file(path, 0o755, &data);
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

/// Boots the machine once in `mode` and returns the guest's answer.
fn boot(dir: &Path, mode: &str, baseline: &[String]) -> Value {
    let me = std::env::current_exe().unwrap();
    let me = me.to_str().unwrap();
    let tools = ["/usr/bin/mount", "/usr/bin/chattr"];
    let mut cpio = Cpio::new();
    for d in ["/dev", "/proc", "/sys", "/tmp"] {
        cpio.dir(d);
    }
    cpio.entry("/dev/console", 0o020600, (5, 1), &[]);
    cpio.entry("/dev/null", 0o020666, (1, 3), &[]);
    cpio.file("/init", 0o755, &std::fs::read(me).unwrap());
    let mut libs = BTreeSet::new();
    for exe in [me].iter().chain(tools.iter()) {
        libs.extend(libraries(exe));
    }
    for path in tools.iter().map(|t| t.to_string()).chain(libs) {
        cpio.copy(&path);
    }
    cpio.file("/efivarfs.ko", 0o644, &std::fs::read(kernel_dir().join("efivarfs.ko")).unwrap());
    cpio.file("/mode", 0o644, mode.as_bytes());
    cpio.file("/baseline", 0o644, baseline.join("\n").as_bytes());
    let initrd = dir.join(format!("initrd-{mode}.cpio"));
    std::fs::write(&initrd, cpio.finish()).unwrap();

    let console = dir.join(format!("console-{mode}.log"));
    let mut vm = Command::new("qemu-system-x86_64")
        .args(["-machine", "q35", "-m", "1024", "-nodefaults", "-display", "none", "-no-reboot"])
        .arg("-serial")
        .arg(format!("file:{}", console.display()))
        .arg("-drive")
        .arg(format!("if=pflash,format=raw,unit=0,readonly=on,file={OVMF_CODE}"))
        .arg("-drive")
        .arg(format!("if=pflash,format=raw,unit=1,file={}", dir.join("vars.fd").display()))
        .arg("-kernel")
        .arg(kernel_dir().join("vmlinuz"))
        .arg("-initrd")
        .arg(&initrd)
        .arg("-append")
        .arg(
            "console=ttyS0 loglevel=4 panic=-1 rdinit=/init \
             -- guest_side --exact --ignored --nocapture --test-threads=1",
        )
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start qemu-system-x86_64");
    let deadline = Instant::now() + Duration::from_secs(600);
    let status = loop {
        if let Some(st) = vm.try_wait().unwrap() {
            break st;
        }
        if Instant::now() > deadline {
            let _ = vm.kill();
            let _ = vm.wait();
            let log = std::fs::read_to_string(&console).unwrap_or_default();
            panic!("the {mode} boot did not power off within 600 s; console:\n{log}");
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

fn keys(v: &Value, field: &str) -> BTreeSet<String> {
    v[field]
        .as_array()
        .unwrap_or_else(|| panic!("{field} in {v}"))
        .iter()
        .map(|kv| kv[0].as_str().unwrap().to_string())
        .collect()
}

fn result(v: &Value) -> AgentStepResult {
    serde_json::from_value(v["result"].clone()).unwrap()
}

#[test]
fn a_tenants_uefi_variables_are_deleted_from_real_firmware() {
    if !prerequisites() {
        return;
    }
    let dir = std::env::temp_dir().join(format!("neocloud-efi-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    // The node's NVRAM: a fresh copy of OVMF's variable store, kept from
    // boot to boot.
    std::fs::copy(OVMF_VARS, dir.join("vars.fd")).unwrap();

    // 1. The first sanitization records the firmware's variables; then a
    //    tenant writes its own.
    let first = boot(&dir, "record", &[]);
    let recorded = result(&first);
    assert!(recorded.ok, "{recorded:?}");
    let baseline: Vec<String> =
        recorded.items.iter().filter(|i| i.method == KEPT).map(|i| i.target.clone()).collect();
    assert!(!baseline.is_empty(), "OVMF keeps non-volatile variables: {first}");
    assert!(recorded.items.iter().all(|i| i.method == KEPT), "{recorded:?}");
    let after_tenant = keys(&first, "after");
    assert!(after_tenant.contains(TENANT_NV), "the tenant wrote its variable: {first}");
    assert_eq!(first["volatile_refused"], true, "{first}");
    assert!(!after_tenant.contains(TENANT_VOLATILE), "{first}");

    // 2. A power cycle later, the next sanitization.
    let second = boot(&dir, "clear", &baseline);
    let found = keys(&second, "before");
    assert!(found.contains(TENANT_NV), "a non-volatile variable outlives the reset: {second}");
    let cleared = result(&second);
    assert!(cleared.ok, "{cleared:?}");
    let deleted: Vec<&str> =
        cleared.items.iter().filter(|i| i.method == DELETED).map(|i| i.target.as_str()).collect();
    assert_eq!(deleted, [TENANT_NV], "only the tenant's variable is deleted: {cleared:?}");
    for key in &baseline {
        assert!(
            cleared.items.iter().any(|i| &i.target == key && i.method == KEPT && i.ok),
            "{key} kept: {cleared:?}"
        );
    }
    assert!(!keys(&second, "after").contains(TENANT_NV), "{second}");

    // 3. Gone from the firmware's flash; the firmware's own all there, and
    //    it still boots.
    let third = boot(&dir, "check", &[]);
    let now = keys(&third, "before");
    assert!(!now.contains(TENANT_NV), "the tenant's variable is gone from NVRAM: {third}");
    for key in &baseline {
        assert!(now.contains(key), "the firmware's {key} is still there: {third}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
