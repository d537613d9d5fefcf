//! A node's sanitizations end to end on a real (emulated) machine: the
//! control plane and the sushy-tools Redfish emulator (the node's BMC) as
//! in `baremetal.rs`, and the node itself a QEMU machine with UEFI
//! firmware (OVMF, its NVRAM a flash image kept from boot to boot), a
//! TPM (swtpm, its state kept likewise), a virtio disk, an NVMe drive
//! (with a namespace the previous owner detached) and a NIC on
//! QEMU's user network, booting a Debian cloud kernel whose init is this
//! test binary (`guest::Machine`), with the `neocloud.*` arguments of the
//! kernel line of the node's iPXE script on its command line. In the
//! guest the `neocloud-agent` command runs (`neocloud_agent::cli::run`,
//! all the binary is), as a sanitizer or a tenant's image runs it: it
//! reads its control plane and one-time token from `/proc/cmdline`, finds
//! the machine's hardware itself (the disk it is given, the TPM through
//! the kernel, efivarfs) and talks to the control plane over the network
//! (the server's `agent_api_url` is where the guest reaches it).
//!
//! 1. The node is enrolled; its first sanitization (before any tenant)
//!    runs in the guest (`--all-disks`): the previous owner's disk and
//!    both NVMe namespaces read back zero on the machine's media, the
//!    previous owner's key and authorization are gone from the TPM (read
//!    back with tpm2-tools), the firmware's real variables become the
//!    node's baseline, and the record is complete.
//! 2. A tenant's instance: its image (the guest again) writes to the disk
//!    and creates a UEFI variable as root, then checks in; the tenant
//!    releases it and its agent is revoked.
//! 3. The release's sanitization in the guest deletes the tenant's
//!    variable (the firmware's kept) and wipes the disk: the tenant's
//!    record says so, and the machine's NVRAM and medium show it.
//!
//! Skipped loudly without QEMU, OVMF, the test kernel, swtpm or
//! sushy-tools; failed instead under CI.

mod bm;
mod common;
#[path = "../../agent/tests/guest/mod.rs"]
mod guest;
#[path = "../../redfish/tests/common/mod.rs"]
mod peers;
#[path = "../../agent/tests/swtpm/mod.rs"]
mod swtpm;

use std::path::{Path, PathBuf};

use common::nodes::{get_text, wait_node};
use common::{TestBackend, TestServer};
use neocloud_agent::Host;
use serde_json::{json, Value};

/// The node's disk.
const SIZE: usize = 8 << 20;
/// The tenant's variable, under a GUID of its own.
const TENANT_VAR: &str = "TenantNote-0f3c6a52-4f0e-4e55-8a7c-2d9b51e6c0aa";

// ---- inside the guest -------------------------------------------------

#[test]
#[ignore = "runs as init inside the UEFI guest that a_node_is_sanitized_on_a_real_machine boots"]
fn guest_side() {
    guest::guest_main(node);
}

fn read(path: &str) -> Result<String, String> {
    Ok(std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?.trim().to_string())
}

/// The node booting its image: `sanitize` (the sanitizer wipes the disk
/// it is given) or `tenant` (the tenant's root writes first).
fn node(mode: &str) -> Result<Value, String> {
    guest::load_module("/modules/efivarfs.ko")?;
    if mode == "check" {
        // A plain boot: what the firmware holds now.
        let host = Host::new(vec![]);
        let efi = host.efivars().ok_or("no UEFI variables")?.to_path_buf();
        let keys: Vec<String> =
            neocloud_agent::efivars::list(&efi)?.into_iter().map(|v| v.key).collect();
        return Ok(json!({ "variables": keys }));
    }
    guest::network_up()?;
    let disk = Path::new("/dev").join(guest::device("/sys/block", "node-disk", |_| true)?);
    // The image's agent is the `neocloud-agent` command: its control
    // plane and one-time token from the kernel's command line, as the
    // node's iPXE script booted it.
    let args = match mode {
        // Every fixed disk the sanitizer finds.
        "sanitize" => vec!["neocloud-agent".to_string(), "--all-disks".into()],
        "tenant" => {
            // The tenant's root leaves a variable and data first.
            let efi = neocloud_agent::efivars::discover().ok_or("no UEFI variables")?;
            let mut var = 7u32.to_le_bytes().to_vec();
            var.extend_from_slice(b"the tenant's note for the next one");
            std::fs::write(efi.join(TENANT_VAR), var).map_err(|e| format!("{TENANT_VAR}: {e}"))?;
            std::fs::write(&disk, vec![0x7e; SIZE]).map_err(|e| format!("{disk:?}: {e}"))?;
            vec!["neocloud-agent".to_string()]
        }
        other => return Err(format!("unknown mode {other:?}")),
    };
    let code = neocloud_agent::cli::run(args.iter().map(std::ffi::OsString::from));
    Ok(json!({ "exit": code, "cmdline": read("/proc/cmdline")? }))
}

// ---- the host's side ----------------------------------------------------

fn server(b: TestBackend) -> Option<TestServer> {
    // The boot service's URL is where the guest reaches this machine.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    TestServer::start_with(b, |c| {
        // A guest boots in seconds under software emulation; a loaded
        // machine may take minutes.
        bm::tweak(c, 600);
        c.sanitize_before_first_use = true;
        c.listen = format!("127.0.0.1:{port}");
        // Where the guest's agent reaches the agent API; the boot service
        // (scripts, cloud-init) stays on this machine's loopback.
        c.agent_api_url = Some(format!("http://10.0.2.2:{port}"));
    })
}

/// The one node (fake system 1): its machine, booted once per image.
struct Node {
    machine: guest::Machine,
    disk: PathBuf,
    tpm_dir: PathBuf,
}

impl Node {
    fn boot(&self, s: &TestServer, mode: &str) -> Value {
        let (status, script) = get_text(&format!("{}/boot/ipxe?mac={}", s.url, peers::fake_mac(1)));
        assert_eq!(status, 200, "{script}");
        // The script's kernel line, as iPXE boots it: the arguments the
        // agent reads (its control plane as the guest reaches it on
        // QEMU's network, the server's boot URL).
        let kernel = script.lines().find(|l| l.starts_with("kernel ")).expect("a kernel line");
        let args: Vec<&str> =
            kernel.split_whitespace().filter(|a| a.starts_with("neocloud.")).collect();
        assert!(args.iter().any(|a| a.starts_with("neocloud.api=http://10.0.2.2:")), "{script}");
        assert!(script.contains(&format!("s={}/boot/nocloud/", s.url)), "{script}");
        self.power_on(mode, &args.join(" "))
    }

    /// One boot of the machine, its TPM there.
    fn power_on(&self, mode: &str, kernel_args: &str) -> Value {
        let mut swtpm = guest::swtpm(&self.tpm_dir);
        let v = self.machine.boot_with(mode, &[], kernel_args);
        let _ = swtpm.kill();
        let _ = swtpm.wait();
        v
    }

    /// The machine's TPM on a software TPM's own port while the machine
    /// is off (its state kept: [`swtpm::Swtpm::stop`]), for tpm2-tools as
    /// its previous owner or a reader afterwards.
    fn tpm(&self) -> swtpm::Swtpm {
        swtpm::Swtpm::start_in(self.tpm_dir.clone())
    }

    fn nonzero(&self) -> usize {
        std::fs::read(&self.disk).unwrap().iter().filter(|b| **b != 0).count()
    }

    /// The NVMe namespaces' media (1 attached, 2 detached by the previous
    /// owner): how many bytes are not zero.
    fn nvme_nonzero(&self) -> [usize; 2] {
        ["ns1.raw", "ns2.raw"].map(|f| {
            std::fs::read(self.machine.path(f)).unwrap().iter().filter(|b| **b != 0).count()
        })
    }

    /// The machine's NVRAM holds `name` (as UTF-16, as UEFI names are).
    fn nvram_has(&self, name: &str) -> bool {
        let flash = std::fs::read(self.machine.path("vars.fd")).unwrap();
        let wide: Vec<u8> = name.encode_utf16().flat_map(u16::to_le_bytes).collect();
        flash.windows(wide.len()).any(|w| w == wide.as_slice())
    }
}

#[test]
fn a_node_is_sanitized_on_a_real_machine() {
    if !swtpm::available() {
        return;
    }
    let tools = ["/usr/sbin/ip", "/usr/sbin/blkdiscard", "/usr/sbin/nvme"];
    if guest::Machine::new("probe", &tools).map(guest::Machine::done).is_none() {
        return;
    }
    let Some(emu) = peers::Emulator::start(1) else { return };
    for b in TestBackend::ALL {
        let Some(s) = server(b) else { continue };
        let b = b.as_str();
        let machine = guest::Machine::new(&format!("node-{b}"), &tools).unwrap();
        let disk = machine.path("disk.raw");
        std::fs::write(&disk, vec![0xa5u8; SIZE]).unwrap();
        // An NVMe drive whose namespace 2 the previous owner detached.
        for f in ["ns1.raw", "ns2.raw"] {
            std::fs::write(machine.path(f), vec![0xa6u8; SIZE]).unwrap();
        }
        let tpm_dir = machine.path("tpm");
        std::fs::create_dir_all(&tpm_dir).unwrap();
        let sock = tpm_dir.join("swtpm.sock");
        let args = [
            "-drive".to_string(),
            format!("file={},if=none,id=disk,format=raw,discard=unmap", disk.display()),
            "-device".into(),
            "virtio-blk-pci,drive=disk,serial=node-disk".into(),
            "-device".into(),
            "nvme-subsys,id=subsys,nqn=neocloud-node".into(),
            "-device".into(),
            "nvme,serial=node-nvme,id=nvme,subsys=subsys".into(),
            "-drive".into(),
            format!("file={},if=none,id=ns1,format=raw", machine.path("ns1.raw").display()),
            "-device".into(),
            "nvme-ns,drive=ns1,bus=nvme,nsid=1".into(),
            "-drive".into(),
            format!("file={},if=none,id=ns2,format=raw", machine.path("ns2.raw").display()),
            "-device".into(),
            "nvme-ns,drive=ns2,bus=nvme,nsid=2,detached=on".into(),
            "-netdev".into(),
            "user,id=net".into(),
            "-device".into(),
            format!("virtio-net-pci,netdev=net,mac={}", peers::fake_mac(1)),
            "-chardev".into(),
            format!("socket,id=chrtpm,path={}", sock.display()),
            "-tpmdev".into(),
            "emulator,id=tpm0,chardev=chrtpm".into(),
            "-device".into(),
            "tpm-crb,tpmdev=tpm0".into(),
        ];
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let node = Node { machine: machine.qemu_args(&args), disk, tpm_dir };

        // Its previous owner's key, persistent in the TPM, and the
        // owner's authorization set.
        let tpm = node.tpm();
        tpm.tool("createprimary", &["-Q", "-C", "o", "-G", "ecc", "-c", "key.ctx"]);
        tpm.tool("evictcontrol", &["-Q", "-C", "o", "-c", "key.ctx", "0x81000001"]);
        tpm.tool("changeauth", &["-c", "owner", "previous-owner"]);
        tpm.stop();

        // 1. Enrolled, sanitized for nobody on the machine.
        let tenant = bm::catalog(&s, true);
        bm::enroll(&s, &emu, 1);
        wait_node(&s, "bm-1", "releasing", Some("await_agent"));
        let v = node.boot(&s, "sanitize");
        assert_eq!(v["exit"], 0, "[{b}] revoked: {v}");
        wait_node(&s, "bm-1", "available", None);
        assert_eq!(node.nonzero(), 0, "[{b}] the previous owner's disk is erased on its medium");
        assert_eq!(
            node.nvme_nonzero(),
            [0, 0],
            "[{b}] and its NVMe namespaces, the detached one too"
        );
        let a = s.admin();
        let recs = a.get("/v1/nodes/bm-1/sanitizations").expect(200).body;
        let rec = &recs["items"][0];
        assert_eq!(rec["body"]["complete"], true, "[{b}] {rec}");
        let wipe = bm::check(rec, "wipe_disks");
        let methods: Vec<(&str, &str)> = wipe["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| (i["target"].as_str().unwrap(), i["method"].as_str().unwrap()))
            .collect();
        assert_eq!(
            methods,
            [("/dev/nvme0n1", "nvme-user-data-erase"), ("/dev/vda", "blkdiscard-zeroout")],
            "[{b}] every disk --all-disks found, each its way: {wipe}"
        );
        let tpm = bm::check(rec, "clear_tpm");
        assert_eq!(tpm["ok"], true, "[{b}] {tpm}");
        let found = tpm["items"][0]["detail"].as_str().unwrap();
        assert!(found.contains("owner authorization set, persistent objects 0x81000001"), "{tpm}");
        let state = node.tpm();
        assert!(!state.flag("ownerAuthSet"), "[{b}]");
        let handles = state.handles("persistent");
        assert!(!handles.iter().any(|h| h.contains("0x81")), "[{b}] {handles:?}");
        state.stop();
        assert_eq!(tpm["items"][0]["target"], "/dev/tpmrm0", "[{b}] {tpm}");
        let uefi = bm::check(rec, "clear_uefi_variables");
        let kept: Vec<&str> = uefi["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|i| i["method"] == "uefi-kept")
            .map(|i| i["target"].as_str().unwrap())
            .collect();
        assert!(!kept.is_empty(), "[{b}] OVMF's variables are the node's baseline: {uefi}");
        // The sanitizer proved the machine's TPM identity (its endorsement
        // key, through the kernel's resource manager) and recorded it.
        let ident = bm::check(rec, "tpm_identity");
        assert_eq!(ident["ok"], true, "[{b}] {ident}");
        assert!(ident.to_string().contains("proved it holds"), "[{b}] {ident}");
        let node_id = node_id(&s);
        assert_eq!(bm::times(&bm::actions(&s, &node_id), "node_tpm_identity_pinned"), 1, "[{b}]");

        // 2. A tenant's instance on it; its root leaves a variable and data.
        let id = bm::create(&tenant, "job")["id"].as_str().unwrap().to_string();
        wait_node(&s, "bm-1", "provisioning", Some("await_agent"));
        std::thread::scope(|scope| {
            let running = scope.spawn(|| node.boot(&s, "tenant"));
            wait_node(&s, "bm-1", "active", None);
            bm::release(&tenant, &id).expect(202);
            let v = running.join().expect("the tenant's boot");
            assert_eq!(v["exit"], 0, "[{b}] revoked: {v}");
        });
        assert!(node.nvram_has("TenantNote"), "[{b}] the tenant's variable is in the NVRAM");
        // Its agent proved the node's TPM before the handover.
        assert_eq!(bm::times(&bm::actions(&s, &node_id), "agent_tpm_identity"), 1, "[{b}]");
        // As the tenant's root could: the endorsement hierarchy's
        // authorization set, so the next sanitizer can use the endorsement
        // key only after it cleared the TPM.
        let t = node.tpm();
        t.tool("changeauth", &["-c", "endorsement", "tenant-pw"]);
        t.stop();
        assert_eq!(node.nonzero(), SIZE, "[{b}] the tenant's data is on the medium");

        // 3. The release's sanitization on the machine.
        wait_node(&s, "bm-1", "releasing", Some("await_agent"));
        let v = node.boot(&s, "sanitize");
        assert_eq!(v["exit"], 0, "[{b}] revoked: {v}");
        wait_node(&s, "bm-1", "available", None);
        assert_eq!(node.nonzero(), 0, "[{b}] the tenant's data is erased on the medium");
        let rec = bm::records(&tenant, &id).remove(0);
        assert_eq!(rec["body"]["complete"], true, "[{b}] {rec}");
        let ident = bm::check(&rec, "tpm_identity");
        assert_eq!(ident["ok"], true, "[{b}] proved after the clear: {ident}");
        assert_eq!(bm::times(&bm::actions(&s, &node_id), "agent_tpm_identity"), 2, "[{b}]");
        let uefi = bm::check(&rec, "clear_uefi_variables");
        let items = uefi["items"].as_array().unwrap();
        let deleted = items.iter().find(|i| i["target"] == TENANT_VAR);
        let deleted = deleted.unwrap_or_else(|| panic!("[{b}] {uefi}"));
        assert_eq!(deleted["method"], "uefi-delete", "[{b}] {uefi}");
        assert_eq!(deleted["ok"], true, "[{b}] {uefi}");
        for k in &kept {
            assert!(
                items.iter().any(|i| i["target"] == *k && i["method"] == "uefi-kept"),
                "[{b}] the firmware's {k} kept: {uefi}"
            );
        }
        // What the firmware holds at the next boot (its flash keeps a
        // deleted variable's record, marked deleted, until it reclaims
        // the space: read through the firmware, not the flash's bytes).
        let v = node.power_on("check", "");
        let now: Vec<&str> =
            v["variables"].as_array().unwrap().iter().map(|k| k.as_str().unwrap()).collect();
        assert!(!now.contains(&TENANT_VAR), "[{b}] {v}");
        for k in &kept {
            assert!(now.contains(k), "[{b}] the firmware's {k} is still there: {v}");
        }
        node.machine.done();
    }
}

/// `/{id}` of the only node, the audit trail's target suffix.
fn node_id(s: &TestServer) -> String {
    format!("/{}", common::nodes::node(s, "bm-1")["id"].as_str().unwrap())
}
