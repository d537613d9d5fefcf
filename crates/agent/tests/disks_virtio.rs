//! The agent's `wipe_disks` on block devices that have neither NVMe nor
//! ATA erase: QEMU's virtio disks, through the kernel's virtio driver and
//! util-linux's `blkdiscard`, in the UEFI guest (`guest::Machine`). The
//! disks' backing files on this machine are their media, read back here.
//! Every disk holds the last tenant's data:
//! - `discard`: a raw image that unmaps what is discarded;
//! - `no-discard`: a raw image whose discards QEMU ignores (the disk
//!   still accepts them, and `blkdiscard` says it succeeded);
//! - `backed`: a qcow2 (version 2) image over a backing image holding the
//!   data, where a discarded cluster reads from the backing image again.
//!
//! And an NVMe drive, in an image without nvme-cli: its wipe is refused
//! (a namespace a tenant detached could not be found), its medium
//! untouched.
//!
//! A plain discard left all of the data on the last two (the agent's
//! record said `blkdiscard`, ok, before 2026-12-06). The agent zeroes each
//! through the device (`blkdiscard -z`) and reads it back to the last
//! byte: every medium is zero on this machine.

mod guest;

use std::path::{Path, PathBuf};
use std::process::Command;

use neocloud_agent::{run_step, Host};
use neocloud_types::{AgentStep, AgentStepKind, AgentStepResult};
use serde_json::{json, Value};

const SIZE: usize = 16 << 20;

#[test]
#[ignore = "runs as init inside the UEFI guest that every_virtual_disk_reads_back_zero boots"]
fn guest_side() {
    guest::guest_main(guest);
}

/// The virtio disk (`/dev/vda`) whose serial is `serial`.
fn disk(serial: &str) -> Result<PathBuf, String> {
    Ok(Path::new("/dev").join(guest::device("/sys/block", serial, |_| true)?))
}

fn guest(_mode: &str) -> Result<Value, String> {
    guest::load_virtio_blk()?;
    let nvme = guest::device("/sys/class/nvme", "no-nvme-cli", |c| {
        Path::new(&format!("/dev/{c}n1")).exists()
    })?;
    let disks = vec![
        disk("discard")?,
        disk("no-discard")?,
        disk("backed")?,
        PathBuf::from(format!("/dev/{nvme}n1")),
    ];
    let step = AgentStep {
        id: "s".into(),
        kind: AgentStepKind::WipeDisks,
        uefi_baseline: None,
        nic_baseline: None,
    };
    let result = run_step(&Host::new(disks.clone()), &step);
    Ok(json!({ "disks": disks, "result": result }))
}

/// How many bytes of a disk image are not zero, as the guest would read
/// it (a qcow2 image through its backing image).
fn nonzero(image: &Path) -> usize {
    let raw = image.with_extension("read.raw");
    let st = Command::new("qemu-img")
        .args(["convert", "-O", "raw"])
        .arg(image)
        .arg(&raw)
        .status()
        .expect("qemu-img");
    assert!(st.success(), "qemu-img convert {}", image.display());
    let n = std::fs::read(&raw).unwrap().iter().filter(|b| **b != 0).count();
    std::fs::remove_file(&raw).unwrap();
    n
}

#[test]
fn every_virtual_disk_reads_back_zero() {
    let Some(machine) = guest::Machine::new("virtio", &["/usr/sbin/blkdiscard"]) else { return };
    std::fs::write(machine.path("discard.raw"), vec![0xd1u8; SIZE]).unwrap();
    std::fs::write(machine.path("no-discard.raw"), vec![0xd2u8; SIZE]).unwrap();
    std::fs::write(machine.path("base.raw"), vec![0xd3u8; SIZE]).unwrap();
    let st = Command::new("qemu-img")
        .args(["create", "-q", "-f", "qcow2", "-o", "compat=0.10", "-b"])
        .arg(machine.path("base.raw"))
        .args(["-F", "raw"])
        .arg(machine.path("backed.qcow2"))
        .status()
        .expect("qemu-img");
    assert!(st.success());
    let images = [
        ("d1", "discard", machine.path("discard.raw"), "raw", "unmap"),
        ("d2", "no-discard", machine.path("no-discard.raw"), "raw", "ignore"),
        ("d3", "backed", machine.path("backed.qcow2"), "qcow2", "unmap"),
    ];
    for (_, _, image, _, _) in &images {
        assert_eq!(nonzero(image), SIZE, "the tenant's data is there before");
    }
    let mut args = Vec::new();
    for (id, serial, image, format, discard) in &images {
        args.push("-drive".to_string());
        args.push(format!(
            "file={},if=none,id={id},format={format},discard={discard}",
            image.display()
        ));
        args.push("-device".to_string());
        args.push(format!("virtio-blk-pci,drive={id},serial={serial}"));
    }
    // An NVMe drive, and no nvme-cli in this image.
    std::fs::write(machine.path("nvme.raw"), vec![0xd4u8; SIZE]).unwrap();
    args.push("-drive".to_string());
    args.push(format!("file={},if=none,id=n1,format=raw", machine.path("nvme.raw").display()));
    args.push("-device".to_string());
    args.push("nvme,serial=no-nvme-cli,drive=n1".to_string());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let machine = machine.qemu_args(&args);

    let v = machine.boot("wipe", &[]);
    let r: AgentStepResult = serde_json::from_value(v["result"].clone()).unwrap();
    // The NVMe drive: refused without nvme-cli (a namespace a tenant
    // detached could not be found), untouched.
    let nvme = &r.items[3];
    assert!(!nvme.ok && nvme.detail.contains("nvme-cli is not installed"), "{r:?}");
    assert_eq!(nonzero(&machine.path("nvme.raw")), SIZE, "{nvme:?}");
    assert!(!r.ok, "{r:?}");
    for (item, (_, serial, image, _, _)) in r.items.iter().zip(&images) {
        assert_eq!(nonzero(image), 0, "{serial}: every byte of its medium erased: {item:?}");
        assert_eq!(item.method, "blkdiscard-zeroout", "{serial}: {item:?}");
        assert!(item.detail.contains(&format!("read back {SIZE} zero bytes")), "{item:?}");
    }
    assert_eq!(r.items.len(), 4, "{r:?}");
    machine.done();
}
