//! Per-node virtual-media ISOs against the real tools and firmware: the
//! ISO's layout read back with xorriso and mtools, its legacy BIOS path
//! booted in QEMU (isolinux, then Debian's iPXE running the node's script:
//! the static address on the NIC with the node's MAC, the boot service
//! chained by that MAC, no DHCP asked), and its UEFI path booted by OVMF
//! (the firmware starts iPXE from the ISO's EFI system partition).
//!
//! Needs qemu-system-x86_64, xorriso, mtools, Debian's ipxe, isolinux and
//! ovmf packages; skips loudly without them (fails under CI, where the test
//! command installs them).

use neocloud_server::boot::iso::{ipxe_static, IsoBuilder, PerNodeIsoConfig, StaticAddress};
use std::io::{BufRead, BufReader, Write};
use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const IPXE_EFI: &str = "/usr/lib/ipxe/ipxe.efi";
const IPXE_LKRN: &str = "/usr/lib/ipxe/ipxe.lkrn";
const ISOLINUX: &str = "/usr/lib/ISOLINUX/isolinux.bin";
const LDLINUX: &str = "/usr/lib/syslinux/modules/bios/ldlinux.c32";
const OVMF: &str = "/usr/share/ovmf/OVMF.fd";
const MAC: &str = "52:54:00:12:34:56";

/// Whether the tools are here; without them the test skips loudly, and
/// fails under CI.
fn tools(extra: &[&str]) -> bool {
    let mut missing: Vec<String> = [IPXE_EFI, IPXE_LKRN, ISOLINUX, LDLINUX]
        .iter()
        .chain(extra)
        .filter(|p| !Path::new(p).exists())
        .map(|p| p.to_string())
        .collect();
    for tool in ["xorriso", "mformat", "qemu-system-x86_64", "python3"] {
        let found = Command::new(tool)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok();
        if !found {
            missing.push(tool.to_string());
        }
    }
    if missing.is_empty() {
        return true;
    }
    let msg = format!("per-node ISO tests need {missing:?} (Debian: qemu-system-x86 ipxe isolinux syslinux-common ovmf xorriso mtools)");
    if std::env::var_os("CI").is_some() {
        panic!("{msg}; CI must have them");
    }
    eprintln!("SKIPPED: {msg}");
    false
}

fn builder(dir: &Path, bios: bool) -> IsoBuilder {
    let config = PerNodeIsoConfig {
        ipxe_efi: IPXE_EFI.into(),
        ipxe_lkrn: bios.then(|| IPXE_LKRN.into()),
        isolinux_bin: bios.then(|| ISOLINUX.into()),
        ldlinux_c32: bios.then(|| LDLINUX.into()),
        cache_dir: Some(dir.join("cache")),
    };
    IsoBuilder::new(config, dir).expect("the per-node ISO tools are usable")
}

fn addr() -> StaticAddress {
    StaticAddress {
        mac: MAC.into(),
        address: Ipv4Addr::new(10, 0, 2, 77),
        prefix: 24,
        gateway: Some(Ipv4Addr::new(10, 0, 2, 2)),
        dns: vec![],
    }
}

fn tempdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("neocloud-iso-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn output(cmd: &mut Command) -> String {
    let out = cmd.env("MTOOLS_SKIP_CHECK", "1").output().expect("tool runs");
    assert!(out.status.success(), "{cmd:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).to_string()
}

#[test]
fn the_iso_carries_both_boot_paths_and_the_script_in_each() {
    if !tools(&[]) {
        return;
    }
    let dir = tempdir("layout");
    let b = builder(&dir, true);
    let script = ipxe_static(&addr(), "http://10.0.2.100");
    let iso = b.build(&script).unwrap();

    let report = output(
        Command::new("xorriso").args(["-indev"]).arg(&iso).args(["-report_el_torito", "plain"]),
    );
    let entries: Vec<&str> =
        report.lines().filter(|l| l.starts_with("El Torito boot img")).collect();
    assert_eq!(entries.len(), 2, "{report}");
    assert!(entries[0].contains("BIOS") && entries[1].contains("UEFI"), "{report}");

    // The EFI system partition: iPXE as the removable-media loader, the
    // script beside it.
    let esp = dir.join("esp.img");
    output(
        Command::new("osirrox")
            .args(["-indev"])
            .arg(&iso)
            .args(["-extract", "/efiboot.img"])
            .arg(&esp),
    );
    let listing = output(Command::new("mdir").args(["-i"]).arg(&esp).args(["-b", "::/EFI/BOOT"]));
    assert!(listing.to_uppercase().contains("BOOTX64.EFI"), "{listing}");
    let efi = dir.join("bootx64.efi");
    output(Command::new("mcopy").args(["-i"]).arg(&esp).arg("::/EFI/BOOT/BOOTX64.EFI").arg(&efi));
    assert_eq!(std::fs::read(&efi).unwrap(), std::fs::read(IPXE_EFI).unwrap());
    let autoexec = output(Command::new("mtype").args(["-i"]).arg(&esp).arg("::/autoexec.ipxe"));
    assert_eq!(autoexec, script);
    // Sized to what it holds (BMCs may read it whole over a slow link).
    let (esp_len, efi_len) =
        (std::fs::metadata(&esp).unwrap().len(), std::fs::metadata(&efi).unwrap().len());
    assert!(esp_len <= efi_len + (512 << 10), "ESP {esp_len} bytes for {efi_len} of iPXE");

    // The BIOS path: isolinux loads ipxe.lkrn with the script as initrd.
    let cfg = dir.join("isolinux.cfg");
    let node = dir.join("node.ipxe");
    output(
        Command::new("osirrox")
            .args(["-indev"])
            .arg(&iso)
            .args(["-extract", "/isolinux/isolinux.cfg"])
            .arg(&cfg)
            .args(["-extract", "/isolinux/node.ipxe"])
            .arg(&node),
    );
    let cfg = std::fs::read_to_string(cfg).unwrap();
    assert!(cfg.contains("KERNEL ipxe.lkrn") && cfg.contains("INITRD node.ipxe"), "{cfg}");
    assert_eq!(std::fs::read_to_string(node).unwrap(), script);

    // Cached by content: the same script is the same file, another is not;
    // an EFI-only builder makes one boot entry.
    assert_eq!(b.build(&script).unwrap(), iso);
    let other = ipxe_static(
        &StaticAddress { address: Ipv4Addr::new(10, 0, 2, 78), ..addr() },
        "http://10.0.2.100",
    );
    assert_ne!(b.build(&other).unwrap(), iso);
    let efi_only = builder(&dir.join("efi-only"), false).build(&script).unwrap();
    let report = output(
        Command::new("xorriso")
            .args(["-indev"])
            .arg(&efi_only)
            .args(["-report_el_torito", "plain"]),
    );
    let entries: Vec<&str> =
        report.lines().filter(|l| l.starts_with("El Torito boot img")).collect();
    assert_eq!(entries.len(), 1, "{report}");
    assert!(entries[0].contains("UEFI"), "{report}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// An HTTP server that records each request line and answers an iPXE
/// script that stops there.
fn http_recorder() -> (u16, mpsc::Receiver<String>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for s in l.incoming().flatten() {
            let mut r = BufReader::new(s.try_clone().unwrap());
            let mut line = String::new();
            if r.read_line(&mut line).is_err() {
                continue;
            }
            loop {
                let mut h = String::new();
                if r.read_line(&mut h).map(|n| n == 0).unwrap_or(true) || h == "\r\n" {
                    break;
                }
            }
            let _ = tx.send(line.trim().to_string());
            let body = "#!ipxe\necho neocloud test: served\nexit\n";
            let mut s = s;
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    (port, rx)
}

/// QEMU's user network with nothing outside reachable but 10.0.2.100:80,
/// relayed to the recorder (a small relay per connection: the plain
/// `guestfwd` TCP form serves one connection only).
fn qemu(dir: &Path, iso: &Path, port: u16, firmware: Option<&str>) -> std::process::Child {
    let relay = dir.join("relay.py");
    std::fs::write(
        &relay,
        "import os, socket, sys, threading\ns = socket.create_connection(('127.0.0.1', int(sys.argv[1])))\ndef up():\n    while True:\n        d = os.read(0, 65536)\n        if not d:\n            s.shutdown(socket.SHUT_WR)\n            return\n        s.sendall(d)\nthreading.Thread(target=up, daemon=True).start()\nwhile True:\n    d = s.recv(65536)\n    if not d:\n        break\n    os.write(1, d)\n",
    )
    .unwrap();
    let mut netdev = format!(
        "user,id=n0,restrict=on,guestfwd=tcp:10.0.2.100:80-cmd:python3 {} {port}",
        relay.display()
    );
    if firmware.is_some() {
        // Debian's iPXE predates autoexec.ipxe: what it fetches by DHCP
        // shows the firmware started it from the ISO.
        netdev.push_str(",bootfile=http://10.0.2.100/efi-probe");
    }
    let mut cmd = Command::new("qemu-system-x86_64");
    cmd.args(["-accel", "tcg", "-m", "512", "-nographic", "-no-reboot", "-boot", "d", "-cdrom"])
        .arg(iso)
        .args(["-netdev", &netdev, "-device", &format!("e1000,netdev=n0,mac={MAC},romfile=")])
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(dir.join("console.log")).unwrap())
        .stderr(Stdio::null());
    if let Some(fw) = firmware {
        cmd.args(["-bios", fw]);
    }
    cmd.spawn().expect("qemu starts")
}

fn first_request(rx: &mpsc::Receiver<String>, within: Duration) -> Option<String> {
    let end = Instant::now() + within;
    rx.recv_timeout(end.saturating_duration_since(Instant::now())).ok()
}

#[test]
fn legacy_bios_boot_runs_the_nodes_script_in_ipxe_without_dhcp() {
    if !tools(&[]) {
        return;
    }
    let dir = tempdir("bios");
    let (port, rx) = http_recorder();
    let iso = builder(&dir, true).build(&ipxe_static(&addr(), "http://10.0.2.100")).unwrap();
    let mut vm = qemu(&dir, &iso, port, None);
    let got = first_request(&rx, Duration::from_secs(120));
    // iPXE then runs the answer (it prints a line).
    let end = Instant::now() + Duration::from_secs(60);
    let mut console = String::new();
    while got.is_some() && Instant::now() < end && !console.contains("neocloud test: served") {
        std::thread::sleep(Duration::from_millis(200));
        console = std::fs::read_to_string(dir.join("console.log")).unwrap_or_default();
    }
    let _ = vm.kill();
    let _ = vm.wait();
    let console = std::fs::read_to_string(dir.join("console.log")).unwrap_or_default();
    assert_eq!(
        got.as_deref(),
        Some("GET /boot/ipxe?mac=52%3A54%3A00%3A12%3A34%3A56 HTTP/1.1"),
        "console:\n{console}"
    );
    assert!(console.contains("neocloud test: served"), "iPXE ran the answer: {console}");
    assert!(!console.contains("Configuring (net0"), "the script asked no DHCP: {console}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn uefi_firmware_starts_ipxe_from_the_isos_efi_partition() {
    if !tools(&[OVMF]) {
        return;
    }
    let dir = tempdir("uefi");
    let (port, rx) = http_recorder();
    // EFI only: nothing but the EFI system partition can boot.
    let iso = builder(&dir, false).build(&ipxe_static(&addr(), "http://10.0.2.100")).unwrap();
    let mut vm = qemu(&dir, &iso, port, Some(OVMF));
    let got = first_request(&rx, Duration::from_secs(240));
    let _ = vm.kill();
    let _ = vm.wait();
    let console = std::fs::read_to_string(dir.join("console.log")).unwrap_or_default();
    // An iPXE with autoexec.ipxe (1.21.1 and later) runs the node's script;
    // Debian's (2019) asks DHCP and fetches its boot file. Either way the
    // firmware booted iPXE from the ISO: no other boot path reaches here.
    let got = got.unwrap_or_else(|| panic!("nothing fetched; console:\n{console}"));
    assert!(
        got == "GET /boot/ipxe?mac=52%3A54%3A00%3A12%3A34%3A56 HTTP/1.1"
            || got == "GET /efi-probe HTTP/1.1",
        "{got}; console:\n{console}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
