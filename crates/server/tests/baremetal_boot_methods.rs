//! Boot methods other than PXE against the sushy-tools Redfish emulator.
//!
//! A node that boots from virtual media, against the sushy-tools Redfish
//! emulator (fake driver, which really downloads what is inserted) on both
//! stores: the server's iPXE ISO is inserted in the BMC's virtual CD and
//! booted once (`Cd`) for the tenant's image and for the sanitizer, and
//! ejected by the sanitization, whose signed record says so (also for a
//! node switched to PXE while its tenant held it). The test plays
//! the node as the other bare-metal tests do: the ISO's script chains to
//! the boot service by MAC, so the node fetches its iPXE script and its
//! agent registers with the one-time token.
//!
//! UEFI HTTP boot: the emulator's fake driver has none (it answers an
//! override with `HttpBootUri` 400), so a node enrolled to boot that way
//! fails its provisioning with the BMC's answer, not retried, and the
//! tenant sees why. (The happy path, every boot of a fleet by UEFI HTTP,
//! runs on the SIMULATED BMCs in the bare-metal benchmark's test.)

mod bm;
mod common;
#[path = "../../redfish/tests/common/mod.rs"]
mod peers;

use bm::*;
use common::nodes::{node, wait_node};
use common::{TestBackend, TestServer};
use serde_json::json;

/// The catalog, and `bm-1` (the emulator's first system) enrolled to boot
/// by `method`, inspected to `available`; the tenant's client.
fn enroll_booting(s: &TestServer, emu: &peers::Emulator, method: &str) -> common::Client {
    let tenant = catalog(s, true);
    s.admin()
        .post(
            "/v1/nodes",
            &json!({"name": "bm-1", "site": "s", "pod": "p", "su": "su1", "rack": "r1",
                    "gpu_model": "h100-80gb", "gpus": 8, "boot_method": method,
                    "nics": [{"name": "eno1", "rail": 0, "fabric": "prov", "switch": "leaf1",
                              "port": "p1", "mac": peers::fake_mac(1)}],
                    "bmc": {"endpoint": emu.url, "username": "admin", "password": "pw"}}),
        )
        .expect(201);
    wait_node(s, "bm-1", "available", None);
    tenant
}

#[test]
fn a_node_that_boots_from_virtual_media_is_provisioned_and_sanitized() {
    let Some(emu) = peers::Emulator::start(1) else { return };
    let iso =
        peers::FileServer::start("ipxe.iso", b"an iPXE ISO chaining to the boot service".to_vec());
    let system =
        emu.system_path(emu.systems.iter().position(|u| u == &peers::fake_uuid(1)).unwrap());
    let cd = format!("{system}/VirtualMedia/Cd");
    for b in TestBackend::ALL {
        let Some(s) = TestServer::start_with(b, |c| {
            tweak(c, 120);
            c.virtual_media_iso_url = Some(iso.url.clone());
        }) else {
            continue;
        };
        let b = b.as_str();
        let tenant = enroll_booting(&s, &emu, "virtual_media");
        assert_eq!(node(&s, "bm-1")["boot_method"], "virtual_media", "[{b}]");

        // Provisioning: the ISO in the virtual CD, a one-time boot from it.
        let id = create(&tenant, "job")["id"].as_str().unwrap().to_string();
        wait_node(&s, "bm-1", "provisioning", Some("await_agent"));
        let sys = emu.get(&system);
        assert_eq!(sys["Boot"]["BootSourceOverrideTarget"], "Cd", "[{b}] {sys}");
        let slot = emu.get(&cd);
        assert_eq!((&slot["Inserted"], &slot["Image"]), (&json!(true), &json!(iso.url)), "[{b}]");
        let tenant_agent = spawn(boot(&s, 1, TENANT_KERNEL, hw("n1", None)));
        wait_node(&s, "bm-1", "active", None);
        assert_eq!(instance(&tenant, &id)["state"], "ready", "[{b}]");

        // Release: the sanitizer boots the same way; the ISO is ejected at
        // the end, and the record says so.
        release(&tenant, &id).expect(202);
        wait_node(&s, "bm-1", "releasing", Some("await_agent"));
        assert_eq!(exit_of(tenant_agent), neocloud_agent::Exit::Revoked, "[{b}]");
        assert_eq!(emu.get(&system)["Boot"]["BootSourceOverrideTarget"], "Cd", "[{b}]");
        assert_eq!(emu.get(&cd)["Image"], json!(iso.url), "[{b}] still inserted");
        let sanitizer = spawn(boot(&s, 1, SANITIZER_KERNEL, hw("n1-san", None)));
        wait_node(&s, "bm-1", "available", None);
        stop(sanitizer);
        let slot = emu.get(&cd);
        assert_ne!(slot["Inserted"], json!(true), "[{b}] ejected: {slot}");
        let recs = records(&tenant, &id);
        assert_eq!(recs.len(), 1, "[{b}] {recs:?}");
        assert_eq!(recs[0]["body"]["complete"], true, "[{b}] {}", recs[0]);
        assert_eq!(check(&recs[0], "eject_virtual_media")["ok"], true, "[{b}] {}", recs[0]);
        assert!(verified(&recs[0]), "[{b}]");

        // Switched to PXE while a tenant holds it: the next boot (the
        // sanitizer's) is a PXE boot, and the ISO still in the CD from the
        // tenant's boot is ejected all the same.
        let id = create(&tenant, "again")["id"].as_str().unwrap().to_string();
        wait_node(&s, "bm-1", "provisioning", Some("await_agent"));
        let tenant_agent = spawn(boot(&s, 1, TENANT_KERNEL, hw("n1", None)));
        wait_node(&s, "bm-1", "active", None);
        let g = node(&s, "bm-1")["generation"].clone();
        s.admin()
            .patch(
                "/v1/nodes/bm-1",
                &json!({"generation": g, "availability": "schedulable", "boot_method": "pxe"}),
            )
            .expect(200);
        release(&tenant, &id).expect(202);
        wait_node(&s, "bm-1", "releasing", Some("await_agent"));
        assert_eq!(exit_of(tenant_agent), neocloud_agent::Exit::Revoked, "[{b}]");
        assert_eq!(emu.get(&system)["Boot"]["BootSourceOverrideTarget"], "Pxe", "[{b}]");
        assert_eq!(emu.get(&cd)["Image"], json!(iso.url), "[{b}] still inserted");
        let sanitizer = spawn(boot(&s, 1, SANITIZER_KERNEL, hw("n1-san", None)));
        wait_node(&s, "bm-1", "available", None);
        stop(sanitizer);
        assert_ne!(emu.get(&cd)["Inserted"], json!(true), "[{b}] ejected");
        let recs = records(&tenant, &id);
        assert_eq!(recs[0]["body"]["complete"], true, "[{b}] {}", recs[0]);
        assert_eq!(check(&recs[0], "eject_virtual_media")["ok"], true, "[{b}] {}", recs[0]);
    }
}

#[test]
fn a_bmc_without_uefi_http_boot_fails_the_node_with_its_answer() {
    let Some(emu) = peers::Emulator::start(1) else { return };
    for b in TestBackend::ALL {
        let Some(s) = TestServer::start_with(b, |c| {
            tweak(c, 120);
            c.uefi_http_boot_url = Some("http://127.0.0.1:9/ipxe.efi".into());
        }) else {
            continue;
        };
        let b = b.as_str();
        let tenant = enroll_booting(&s, &emu, "uefi_http");
        let id = create(&tenant, "job")["id"].as_str().unwrap().to_string();
        let l = wait_node(&s, "bm-1", "failed", None);
        assert_eq!(l["from"], "provisioning", "[{b}] {l}");
        let reason = l["reason"].as_str().unwrap();
        assert!(reason.contains("BMC answered 400"), "[{b}] the BMC's answer: {l}");
        assert_eq!(instance(&tenant, &id)["reason"], l["reason"], "[{b}] the tenant sees why");
    }
}
