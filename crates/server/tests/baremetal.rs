//! Bare metal end to end against the sushy-tools Redfish emulator (fake
//! driver, 4 systems): enroll, inspect, provision instances to `ready`
//! with the agent checking in through the boot service's one-time tokens,
//! release, sanitize (the agent really wipes a disk image), and back to
//! `available` with a signed record the tenant and the provider can read
//! and verify. The "node" side is played by this test: it fetches the iPXE
//! script for its MAC (as iPXE would), reads the NoCloud documents (as
//! cloud-init would) and runs the agent library with the real host
//! hardware backend.

mod bm;
mod common;
#[path = "../../agent/tests/fake_mstconfig/mod.rs"]
mod fake_nics;
#[path = "../../redfish/tests/common/mod.rs"]
mod peers;

use common::nodes::{get_text, token_of, wait_node};
use common::{TestBackend, TestServer};
use neocloud_agent::{Agent, Exit, Host};
use serde_json::json;
use std::io::Read;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

const NODES: usize = 4;
const KEY: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBm9Tq0example tenant@laptop";

fn server(b: TestBackend) -> Option<TestServer> {
    TestServer::start_with(b, |c| {
        c.lifecycle_interval_ms = 100;
        c.bmc_timeout_ms = 5_000;
        c.heartbeat_interval_ms = 100;
        c.agent_timeout_secs = 120;
        c.boot_timeout_secs = 120;
    })
}

/// A disk image full of non-zero bytes.
fn disk(dir: &std::path::Path, name: &str) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, vec![0xa5u8; 256 * 1024]).unwrap();
    p
}

fn all_zero(p: &std::path::Path) -> bool {
    let mut b = Vec::new();
    std::fs::File::open(p).unwrap().read_to_end(&mut b).unwrap();
    !b.is_empty() && b.iter().all(|x| *x == 0)
}

fn setup(s: &TestServer, emu: &peers::Emulator) -> String {
    let alice = catalog(s);
    for i in 1..=NODES {
        bm::enroll(s, emu, i);
    }
    alice
}

/// Tenants acme (project train, quota) and other, the bare-metal type, the
/// tenant and sanitizer images. Returns acme's tenant-member's token.
fn catalog(s: &TestServer) -> String {
    let a = s.admin();
    a.post("/v1/tenants", &json!({"name": "acme"})).expect(201);
    a.post("/v1/tenants", &json!({"name": "other"})).expect(201);
    a.put(
        "/v1/tenants/acme/quotas",
        &json!({"generation": 1, "limits": {"nodes": 10, "gpu:h100-80gb": 80}}),
    )
    .expect(200);
    a.post("/v1/tenants/acme/projects", &json!({"name": "train"})).expect(201);
    a.post(
        "/v1/instance-types",
        &json!({"name": "bm-h100", "kind": "bare_metal", "gpu_model": "h100-80gb"}),
    )
    .expect(201);
    a.post(
        "/v1/images",
        &json!({"name": "ubuntu", "kernel_url": "http://img.local/ubuntu/vmlinuz",
                "initrd_url": "http://img.local/ubuntu/initrd", "cmdline": "console=ttyS0"}),
    )
    .expect(201);
    a.post(
        "/v1/images",
        &json!({"name": "sanitizer", "purpose": "sanitizer",
                "kernel_url": "http://img.local/sanitizer/vmlinuz",
                "initrd_url": "http://img.local/sanitizer/initrd"}),
    )
    .expect(201);
    s.user_with_role("acme", "alice", "tenant-member", None)
}

/// Plays a node that network-boots: iPXE script by MAC, NoCloud
/// documents, then the agent with the one-time token.
fn boot(s: &TestServer, i: usize, disk: &std::path::Path) -> (String, Agent) {
    boot_host(s, i, Host::without_gpus(vec![disk.into()]))
}

/// As [`boot`], the agent on `host`.
fn boot_host(s: &TestServer, i: usize, host: Host) -> (String, Agent) {
    let (status, script) = get_text(&format!("{}/boot/ipxe?mac={}", s.url, peers::fake_mac(i)));
    assert_eq!(status, 200, "{script}");
    let token = token_of(&script);
    assert!(script.contains(&format!("s={}/boot/nocloud/{token}/", s.url)), "{script}");
    let agent = Agent::register(&s.url, &token, Arc::new(host))
        .expect("the agent registers with the boot token");
    (script, agent)
}

#[test]
fn instances_are_provisioned_released_and_sanitized_with_a_signed_record() {
    let Some(emu) = peers::Emulator::start(NODES) else { return };
    for b in TestBackend::ALL {
        let Some(s) = server(b) else { continue };
        let b = b.as_str();
        let tenant = s.client(&setup(&s, &emu));
        for i in 1..=NODES {
            wait_node(&s, &format!("bm-{i}"), "available", None);
        }
        // Nodes found their own systems by MAC on the shared emulator.
        let inst = tenant
            .post(
                "/v1/tenants/acme/projects/train/instances",
                &json!({"name": "job", "instance_type": "bm-h100", "count": NODES, "image": "ubuntu",
                        "ssh_keys": [KEY], "user_data": "#cloud-config\nruncmd: [[touch, /ok]]\n"}),
            )
            .expect(201)
            .body;
        let items = inst["items"].as_array().unwrap().clone();
        assert_eq!(items.len(), NODES, "[{b}] {inst}");
        assert!(items.iter().all(|i| i["state"] == "pending"), "[{b}] {inst}");
        // Quota holds 4 nodes now.
        let q = s.admin().get("/v1/tenants/acme/quotas").expect(200).body;
        assert!(q.to_string().contains("\"nodes\""), "[{b}] {q}");

        let dir = peers::TempDir::new("bm-disks");
        let mut agents = Vec::new();
        let mut by_node = std::collections::BTreeMap::new();
        for i in 1..=NODES {
            let name = format!("bm-{i}");
            let l = wait_node(&s, &name, "provisioning", Some("await_agent"));
            assert!(l["tenant_id"].is_string(), "[{b}] {l}");
            // The BMC was told to boot from the network.
            let sys =
                emu.get(&emu.system_path(
                    emu.systems.iter().position(|u| u == &peers::fake_uuid(i)).unwrap(),
                ));
            assert_eq!(sys["Boot"]["BootSourceOverrideTarget"], "Pxe", "[{b}] {sys}");
            let d = disk(dir.path(), &format!("tenant-{i}.img"));
            let (script, agent) = boot(&s, i, &d);
            assert!(script.contains("kernel http://img.local/ubuntu/vmlinuz"), "[{b}] {script}");
            let token = token_of(&script);
            // cloud-init's view: hostname, the tenant's keys and user-data.
            let (st, md) = get_text(&format!("{}/boot/nocloud/{token}/meta-data", s.url));
            assert_eq!(st, 200, "[{b}] {md}");
            assert!(md.contains(KEY) && md.contains("local-hostname: \"job-"), "[{b}] {md}");
            let (_, ud) = get_text(&format!("{}/boot/nocloud/{token}/user-data", s.url));
            assert!(ud.contains("touch, /ok"), "[{b}] {ud}");
            // One time: the token does not register a second agent.
            let again = Agent::register(&s.url, &token, Arc::new(Host::without_gpus(vec![])));
            assert!(again.is_err(), "[{b}] a used token registers nothing");
            by_node.insert(agent.node_id().to_string(), name.clone());
            let stop = Arc::new(AtomicBool::new(false));
            agents.push((name, agent.spawn(stop)));
        }
        for i in 1..=NODES {
            let l = wait_node(&s, &format!("bm-{i}"), "active", None);
            assert!(l["instance_id"].is_string(), "[{b}] {l}");
            // Nothing to network-boot now: iPXE exits to the local disk.
            let (_, script) = get_text(&format!("{}/boot/ipxe?mac={}", s.url, peers::fake_mac(i)));
            assert!(script.contains("exit"), "[{b}] {script}");
        }
        // The agent's report is the provider's to read.
        let hw = s.admin().get("/v1/nodes/bm-1/hardware").expect(200).body;
        assert_eq!(hw["agent"]["purpose"], "tenant", "[{b}] {hw}");
        assert_eq!(hw["agent"]["revoked"], false, "[{b}] {hw}");
        assert!(
            hw["agent"]["inventory"]["disks"][0]["path"]
                .as_str()
                .unwrap()
                .ends_with("tenant-1.img"),
            "[{b}] {hw}"
        );
        tenant.get("/v1/nodes/bm-1/hardware").expect(403);
        let list = tenant.get("/v1/tenants/acme/projects/train/instances").expect(200).body;
        assert!(
            list["items"].as_array().unwrap().iter().all(|i| i["state"] == "ready"),
            "[{b}] {list}"
        );

        // A tenant reboots another instance: the server's controller sends
        // the reset to the emulator and records what it answered.
        let other = list["items"][1]["id"].as_str().unwrap().to_string();
        let power = format!("/v1/tenants/acme/projects/train/instances/{other}/power");
        let r = tenant.post(&power, &json!({"action": "reboot"})).expect(202).body;
        assert_eq!(r["power"]["pending"]["action"], "reboot", "[{b}] {r}");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        let last = loop {
            let i = tenant.get(&format!("/v1/tenants/acme/projects/train/instances/{other}"));
            let last = i.body["power"]["last"].clone();
            if last.is_object() {
                break last;
            }
            assert!(std::time::Instant::now() < deadline, "[{b}] not done: {}", i.text);
            std::thread::sleep(std::time::Duration::from_millis(100));
        };
        assert_eq!(last["reset_type"], "GracefulRestart", "[{b}] {last}");
        assert_eq!(last["ok"], true, "[{b}] {last}");
        assert_eq!(last["detail"], "GracefulRestart sent; the BMC took it", "[{b}] {last}");

        // Release one instance: its node is sanitized and comes back.
        let victim = &list["items"][0];
        let vid = victim["id"].as_str().unwrap();
        let vnode = by_node[victim["node_id"].as_str().unwrap()].clone();
        let i: usize = vnode.trim_start_matches("bm-").parse().unwrap();
        assert_eq!(victim["release_requested"], false, "[{b}]");
        let r = tenant.delete(&format!("/v1/tenants/acme/projects/train/instances/{vid}"));
        assert_eq!(r.status, 202, "[{b}] {}", r.text);
        assert_eq!(r.body["release_requested"], true, "[{b}] {}", r.text);
        wait_node(&s, &vnode, "releasing", Some("await_agent"));
        // The tenant's agent was revoked: its loop ends.
        let (_, handle) = agents.remove(agents.iter().position(|(n, _)| n == &vnode).unwrap());
        assert_eq!(handle.join().unwrap().unwrap(), Exit::Revoked, "[{b}]");
        let d = disk(dir.path(), &format!("sanitize-{i}.img"));
        let (script, agent) = boot(&s, i, &d);
        assert!(script.contains("kernel http://img.local/sanitizer/vmlinuz"), "[{b}] {script}");
        let (_, md) = get_text(&format!("{}/boot/nocloud/{}/meta-data", s.url, token_of(&script)));
        assert!(!md.contains("ssh-ed25519"), "[{b}] the sanitizer gets no tenant data: {md}");
        let exit = agent.spawn(Arc::new(AtomicBool::new(false)));
        wait_node(&s, &vnode, "available", None);
        assert_eq!(
            exit.join().unwrap().unwrap(),
            Exit::Revoked,
            "[{b}] sanitizer revoked at the end"
        );
        assert!(all_zero(&d), "[{b}] the disk was wiped");

        let gone = tenant
            .get(&format!("/v1/tenants/acme/projects/train/instances/{vid}"))
            .expect(200)
            .body;
        assert_eq!(gone["state"], "released", "[{b}] {gone}");
        let recs = tenant
            .get(&format!("/v1/tenants/acme/projects/train/instances/{vid}/sanitization"))
            .expect(200)
            .body;
        let rec = &recs["items"][0];
        assert_eq!(rec["body"]["complete"], true, "[{b}] {rec}");
        let names = bm::check_names(rec);
        for want in [
            "wipe_disks",
            "reset_gpus",
            "report_firmware",
            "clear_boot_override",
            "firmware_baseline",
            "hardware_health",
            "secure_boot",
            "bmc_accounts",
            "power_off",
            "revoke_agent",
        ] {
            assert!(names.contains(&want), "[{b}] {want} in {names:?}");
        }
        let signed = rec["signed_json"].as_str().unwrap();
        let sig = rec["signature"].as_str().unwrap();
        let pk = rec["public_key"].as_str().unwrap();
        assert!(
            neocloud_server::signing::verify(pk, signed.as_bytes(), sig),
            "[{b}] signature verifies"
        );
        assert!(
            !neocloud_server::signing::verify(pk, signed.replace("true", "false").as_bytes(), sig),
            "[{b}] a tampered record does not verify"
        );
        // The provider reads it too; another tenant cannot see it.
        let prov = s.admin().get(&format!("/v1/nodes/{vnode}/sanitizations")).expect(200).body;
        assert_eq!(prov["items"][0]["id"], rec["id"], "[{b}]");
        let outsider = s.client(&s.user_with_role("other", "eve", "tenant-admin", None));
        outsider
            .get(&format!("/v1/tenants/acme/projects/train/instances/{vid}/sanitization"))
            .expect(404);
        // The sanitizer cleared the boot override and the node is free again.
        let sys = emu.get(
            &emu.system_path(emu.systems.iter().position(|u| u == &peers::fake_uuid(i)).unwrap()),
        );
        assert_eq!(sys["Boot"]["BootSourceOverrideTarget"], "None", "[{b}] {sys}");
        let again = tenant
            .post(
                "/v1/tenants/acme/projects/train/instances",
                &json!({"name": "next", "instance_type": "bm-h100", "image": "ubuntu"}),
            )
            .expect(201)
            .body;
        assert_eq!(
            again["items"][0]["node_id"], victim["node_id"],
            "[{b}] the sanitized node is placed again"
        );
        // Release the rest while still provisioning/active: no node stays held.
        for item in tenant.get("/v1/tenants/acme/projects/train/instances").expect(200).body
            ["items"]
            .as_array()
            .unwrap()
        {
            if item["state"] != "released" {
                let id = item["id"].as_str().unwrap();
                assert_eq!(
                    tenant
                        .delete(&format!("/v1/tenants/acme/projects/train/instances/{id}"))
                        .status,
                    202
                );
            }
        }
        for (_, h) in agents {
            assert_eq!(h.join().unwrap().unwrap(), Exit::Revoked, "[{b}]");
        }
    }
}

/// A non-volatile UEFI variable under a vendor GUID, as efivarfs lays it
/// out in `dir`; its file name.
fn efi_var(dir: &std::path::Path, name: &str, attributes: u32) -> String {
    let key = format!("{name}-4a67b082-0a4c-41cf-b6c7-440b29bb8c4f");
    let mut bytes = attributes.to_le_bytes().to_vec();
    bytes.extend_from_slice(b"data");
    std::fs::write(dir.join(&key), bytes).unwrap();
    key
}

/// With `sanitize_before_first_use` (the default outside these tests) a
/// newly enrolled node boots the sanitizer after its inspection and joins
/// the pool only with a complete record that names no tenant: what an
/// earlier owner left on its disk is gone before the first tenant gets it.
/// Once is enough: inspected again, it is available at once. The UEFI
/// variables its first sanitization found are its baseline: the next
/// sanitization deletes one a tenant created. A node enrolled while the
/// catalog has no sanitizer is refused (409), nothing written.
#[test]
fn a_new_node_is_sanitized_before_it_joins_the_pool() {
    let Some(emu) = peers::Emulator::start(NODES) else { return };
    for b in TestBackend::ALL {
        let Some(s) = TestServer::start_with(b, |c| {
            c.lifecycle_interval_ms = 100;
            c.bmc_timeout_ms = 5_000;
            c.heartbeat_interval_ms = 100;
            c.agent_timeout_secs = 120;
            c.boot_timeout_secs = 120;
            c.sanitize_before_first_use = true;
        }) else {
            continue;
        };
        let b = b.as_str();
        let a = s.admin();
        // No sanitizer in the catalog yet: a new node could not be
        // cleaned, so it is refused, and nothing is written.
        let r = a.post(
            "/v1/nodes",
            &json!({"name": "bm-2", "site": "s", "pod": "p", "su": "su1", "rack": "r1",
                    "gpu_model": "h100-80gb", "gpus": 8,
                    "bmc": {"endpoint": emu.url, "username": "admin", "password": "pw"}}),
        );
        assert_eq!(r.status, 409, "[{b}] {}", r.text);
        assert!(r.text.contains("no sanitizer image in the catalog"), "[{b}] {}", r.text);
        a.get("/v1/nodes/bm-2").expect(404);

        let tenant = s.client(&catalog(&s));
        bm::enroll(&s, &emu, 1);
        // bm-1 waits for its sanitizer: no tenant on it, and nothing for a
        // tenant to be placed on.
        let l = wait_node(&s, "bm-1", "releasing", Some("await_agent"));
        assert!(l.get("tenant_id").is_none() && l.get("instance_id").is_none(), "[{b}] {l}");
        // Not even once the provider edits it, schedulable (what placement
        // sees follows the store: a node being sanitized is not in the pool).
        let g = common::nodes::node(&s, "bm-1")["generation"].clone();
        a.patch("/v1/nodes/bm-1", &json!({"generation": g, "availability": "schedulable"}))
            .expect(200);
        let r = tenant.post(
            "/v1/tenants/acme/projects/train/instances",
            &json!({"name": "early", "instance_type": "bm-h100", "image": "ubuntu"}),
        );
        assert_eq!(r.status, 409, "[{b}] no node is in the pool yet: {}", r.text);
        // Nor inspected again meanwhile (nothing would act on it, and new
        // BMC credentials would change the BMC under the sanitization).
        let r = a.post("/v1/nodes/bm-1/inspect", &json!({})).expect(409);
        assert!(r.text.contains("being sanitized"), "[{b}] {}", r.text);
        // What the node's earlier owner left on its disk; its NVRAM (a
        // directory laid out as efivarfs) holds the firmware's variables.
        let dir = peers::TempDir::new("bm-first");
        let d = disk(dir.path(), "previous-owner.img");
        let efi = dir.path().join("efivars");
        std::fs::create_dir_all(&efi).unwrap();
        let firmware = efi_var(&efi, "VendorSetup", 0x7);
        // Its network adapters: the provider gave one 16 VFs.
        let nics = fake_nics::FakeNics::new(dir.path());
        nics.set(fake_nics::PF0, "NUM_OF_VFS", 16, true);
        let host = || {
            Host::without_gpus(vec![d.clone()])
                .with_efivars(Some(efi.clone()))
                .with_nics(&nics.pci, Some(nics.tool.clone()))
        };
        let (script, agent) = boot_host(&s, 1, host());
        assert!(script.contains("kernel http://img.local/sanitizer/vmlinuz"), "[{b}] {script}");
        let (st, md) = get_text(&format!("{}/boot/nocloud/{}/meta-data", s.url, token_of(&script)));
        assert_eq!(st, 200, "[{b}] {md}");
        assert!(md.contains("sanitize-first-"), "[{b}] {md}");
        let exit = agent.spawn(Arc::new(AtomicBool::new(false)));
        wait_node(&s, "bm-1", "available", None);
        assert_eq!(exit.join().unwrap().unwrap(), Exit::Revoked, "[{b}] sanitizer revoked");
        assert!(all_zero(&d), "[{b}] the earlier owner's disk was wiped");
        // The provider's record: complete, signed, about no tenant.
        let recs = a.get("/v1/nodes/bm-1/sanitizations").expect(200).body;
        let items = recs["items"].as_array().unwrap();
        assert_eq!(items.len(), 1, "[{b}] {recs}");
        let rec = &items[0];
        assert_eq!(rec["body"]["complete"], true, "[{b}] {rec}");
        assert!(rec["body"].get("tenant_id").is_none(), "[{b}] {rec}");
        assert!(rec["body"].get("instance_id").is_none(), "[{b}] {rec}");
        for want in ["wipe_disks", "clear_boot_override", "firmware_baseline", "revoke_agent"] {
            assert!(bm::check_names(rec).contains(&want), "[{b}] {want}");
        }
        // The firmware's UEFI variable, recorded as the node's baseline.
        let uefi = bm::check(rec, "clear_uefi_variables");
        assert_eq!(uefi["ok"], true, "[{b}] {uefi}");
        assert_eq!(uefi["items"][0]["target"], firmware.as_str(), "[{b}] {uefi}");
        assert_eq!(uefi["items"][0]["method"], "uefi-kept", "[{b}] {uefi}");
        // So are the adapters' settings off their defaults.
        let nic = bm::check(rec, "reset_nic_settings");
        let kept: Vec<_> =
            nic["items"].as_array().unwrap().iter().filter(|i| i["method"] == "nic-kept").collect();
        // (the card's: both functions show it)
        assert_eq!(kept.len(), 2, "[{b}] {nic}");
        for (k, pf) in kept.iter().zip([fake_nics::PF0, fake_nics::PF1]) {
            assert_eq!(k["target"], format!("{pf}/NUM_OF_VFS"), "[{b}] {nic}");
            assert_eq!(k["detail"], "16", "[{b}] {nic}");
        }
        let (pk, sig) = (rec["public_key"].as_str().unwrap(), rec["signature"].as_str().unwrap());
        assert!(
            neocloud_server::signing::verify(
                pk,
                rec["signed_json"].as_str().unwrap().as_bytes(),
                sig
            ),
            "[{b}] the record verifies"
        );
        tenant.get("/v1/nodes/bm-1/sanitizations").expect(403);

        // Sanitized once: inspected again, it goes straight back.
        let since = common::nodes::node(&s, "bm-1")["lifecycle_since"].clone();
        a.post("/v1/nodes/bm-1/inspect", &json!({})).expect(202);
        common::nodes::wait_for("bm-1 inspected again", std::time::Duration::from_secs(60), || {
            let n = common::nodes::node(&s, "bm-1");
            (n["lifecycle"]["state"] == "available" && n["lifecycle_since"] != since).then_some(())
        });
        let recs = a.get("/v1/nodes/bm-1/sanitizations").expect(200).body;
        assert_eq!(recs["items"].as_array().unwrap().len(), 1, "[{b}] {recs}");
        // And a tenant gets it.
        let inst = tenant
            .post(
                "/v1/tenants/acme/projects/train/instances",
                &json!({"name": "first", "instance_type": "bm-h100", "image": "ubuntu"}),
            )
            .expect(201)
            .body;
        let node_id = inst["items"][0]["node_id"].as_str().unwrap().to_string();
        let n1 = a.get("/v1/nodes/bm-1").expect(200).body;
        assert_eq!(n1["id"].as_str().unwrap(), node_id, "[{b}] {inst}");
        let id = inst["items"][0]["id"].as_str().unwrap();
        wait_node(&s, "bm-1", "provisioning", Some("await_agent"));
        let (_, agent) = boot(&s, 1, &disk(dir.path(), "tenant.img"));
        let tenant_agent = agent.spawn(Arc::new(AtomicBool::new(false)));
        wait_node(&s, "bm-1", "active", None);
        // The tenant's root leaves a variable in the NVRAM, and its
        // adapters set its way.
        let left = efi_var(&efi, "TenantNote", 0x7);
        nics.set(fake_nics::PF0, "NUM_OF_VFS", 2, true);
        nics.set(fake_nics::PF1, "LINK_TYPE_P1", 1, false);
        tenant.delete(&format!("/v1/tenants/acme/projects/train/instances/{id}")).expect(202);
        wait_node(&s, "bm-1", "releasing", Some("await_agent"));
        assert_eq!(tenant_agent.join().unwrap().unwrap(), Exit::Revoked, "[{b}]");
        let (_, agent) = boot_host(&s, 1, host());
        let exit = agent.spawn(Arc::new(AtomicBool::new(false)));
        wait_node(&s, "bm-1", "available", None);
        assert_eq!(exit.join().unwrap().unwrap(), Exit::Revoked, "[{b}]");
        assert!(!efi.join(&left).exists(), "[{b}] the tenant's variable was deleted");
        assert!(efi.join(&firmware).exists(), "[{b}] the firmware's was kept");
        // The adapters at the node's baseline again: the provider's 16 VFs
        // (sent with the step: without it, the sanitizer would not have
        // known them), the default link type.
        assert_eq!(nics.next(fake_nics::PF0, "NUM_OF_VFS"), 16, "[{b}]");
        assert_eq!(nics.next(fake_nics::PF1, "LINK_TYPE_P1"), 2, "[{b}]");
        let rec = tenant
            .get(&format!("/v1/tenants/acme/projects/train/instances/{id}/sanitization"))
            .expect(200)
            .body["items"][0]
            .clone();
        assert_eq!(rec["body"]["complete"], true, "[{b}] {rec}");
        let uefi = bm::check(&rec, "clear_uefi_variables");
        let deleted =
            uefi["items"].as_array().unwrap().iter().find(|i| i["target"] == left.as_str());
        let deleted = deleted.unwrap_or_else(|| panic!("[{b}] {uefi}"));
        assert_eq!(deleted["method"], "uefi-delete", "[{b}] {uefi}");
        assert_eq!(deleted["ok"], true, "[{b}] {uefi}");
        // What the tenant left, in the record it reads.
        let nic = bm::check(&rec, "reset_nic_settings");
        assert_eq!(nic["ok"], true, "[{b}] {nic}");
        let pf1 = nic["items"].as_array().unwrap().iter().find(|i| i["target"] == fake_nics::PF1);
        let pf1 = pf1.unwrap_or_else(|| panic!("[{b}] {nic}"))["detail"].as_str().unwrap();
        assert!(
            pf1.starts_with("off the baseline: NUM_OF_VFS 2 -> 16, LINK_TYPE_P1 IB(1) -> 2; reset"),
            "[{b}] {pf1}"
        );

        // The provider takes the card's second function away and gives it
        // 32 VFs: with the old baseline every sanitization would fail (an
        // adapter gone) or set them back. Forgotten, the node is sanitized
        // before it rejoins the pool, which records the new ones.
        std::fs::remove_dir_all(nics.pci.join(fake_nics::PF1)).unwrap();
        nics.set(fake_nics::PF0, "NUM_OF_VFS", 32, true);
        a.post("/v1/nodes/bm-1/inspect", &json!({"forget_baselines": true})).expect(202);
        wait_node(&s, "bm-1", "releasing", Some("await_agent"));
        let (_, agent) = boot_host(&s, 1, host());
        let exit = agent.spawn(Arc::new(AtomicBool::new(false)));
        wait_node(&s, "bm-1", "available", None);
        assert_eq!(exit.join().unwrap().unwrap(), Exit::Revoked, "[{b}]");
        assert_eq!(nics.next(fake_nics::PF0, "NUM_OF_VFS"), 32, "[{b}] kept, not set back");
        let recs = a.get("/v1/nodes/bm-1/sanitizations").expect(200).body;
        let rec = recs["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| {
                let nic = bm::check(r, "reset_nic_settings");
                nic["items"].as_array().unwrap().iter().any(|i| i["detail"] == "32")
            })
            .unwrap_or_else(|| panic!("[{b}] no record keeps the 32 VFs: {recs}"))
            .clone();
        assert_eq!(rec["body"]["complete"], true, "[{b}] {rec}");
        assert!(rec["body"].get("tenant_id").is_none(), "[{b}] {rec}");
        let nic = bm::check(&rec, "reset_nic_settings");
        let targets: Vec<&str> = nic["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["target"].as_str().unwrap())
            .collect();
        assert_eq!(
            targets,
            [fake_nics::PF0.to_string(), format!("{}/NUM_OF_VFS", fake_nics::PF0)],
            "[{b}] {nic}"
        );
        // Recorded: inspected again, it goes straight back.
        let since = common::nodes::node(&s, "bm-1")["lifecycle_since"].clone();
        a.post("/v1/nodes/bm-1/inspect", &json!({})).expect(202);
        common::nodes::wait_for("bm-1 inspected", std::time::Duration::from_secs(60), || {
            let n = common::nodes::node(&s, "bm-1");
            (n["lifecycle"]["state"] == "available" && n["lifecycle_since"] != since).then_some(())
        });
    }
}
