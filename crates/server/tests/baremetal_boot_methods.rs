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
use common::nodes::{get_text, node, wait_node};
use common::{TestBackend, TestServer};
use serde_json::{json, Value};

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
        let i = wait_instance(&tenant, &id, "failed");
        assert!(i["reason"].as_str().unwrap().contains(reason), "[{b}] the tenant sees why: {i}");
    }
}

#[test]
fn a_node_without_dhcp_boots_from_an_iso_of_its_own() {
    let Some(iso_config) = per_node_iso() else { return };
    let Some(emu) = peers::Emulator::start(1) else { return };
    let generic =
        peers::FileServer::start("ipxe.iso", b"an iPXE ISO chaining to the boot service".to_vec());
    let system =
        emu.system_path(emu.systems.iter().position(|u| u == &peers::fake_uuid(1)).unwrap());
    let cd = format!("{system}/VirtualMedia/Cd");
    let mac = peers::fake_mac(1).to_ascii_lowercase();
    for b in TestBackend::ALL {
        let Some(s) = TestServer::start_with(b, |c| {
            tweak(c, 120);
            c.virtual_media_iso_url = Some(generic.url.clone());
            c.per_node_iso = Some(iso_config.clone());
        }) else {
            continue;
        };
        let b = b.as_str();
        let tenant = catalog(&s, true);
        s.admin()
            .post(
                "/v1/nodes",
                &json!({"name": "bm-1", "site": "s", "pod": "p", "su": "su1", "rack": "r1",
                        "gpu_model": "h100-80gb", "gpus": 8, "boot_method": "virtual_media",
                        "boot_network": {"mac": peers::fake_mac(1).to_ascii_uppercase(),
                                         "address": "10.0.2.77/24", "gateway": "10.0.2.2",
                                         "dns": ["10.0.2.3"]},
                        "bmc": {"endpoint": emu.url, "username": "admin", "password": "pw"}}),
            )
            .expect(201);
        wait_node(&s, "bm-1", "available", None);
        let n = node(&s, "bm-1");
        assert_eq!(
            n["boot_network"],
            json!({"mac": mac, "address": "10.0.2.77/24", "gateway": "10.0.2.2", "dns": ["10.0.2.3"]}),
            "[{b}] stored as checked"
        );
        let node_id = n["id"].as_str().unwrap().to_string();

        // Provisioning: the node's own ISO in the virtual CD (the emulator
        // downloaded it from the boot service), a one-time boot from it.
        let id = create(&tenant, "job")["id"].as_str().unwrap().to_string();
        wait_node(&s, "bm-1", "provisioning", Some("await_agent"));
        assert_eq!(emu.get(&system)["Boot"]["BootSourceOverrideTarget"], "Cd", "[{b}]");
        let slot = emu.get(&cd);
        assert_eq!(slot["Inserted"], json!(true), "[{b}] {slot}");
        let url = slot["Image"].as_str().unwrap().to_string();
        let prefix = format!("{}/boot/vmedia/{node_id}/", s.url);
        assert!(url.starts_with(&prefix) && url.ends_with(".iso"), "[{b}] {url}");
        let (status, _, iso) = fetch(&url, None);
        assert_eq!(status, 200, "[{b}]");
        let script = autoexec_of(&iso);
        for line in [
            format!("iseq ${{net${{idx}}/mac}} {mac} && goto found ||"),
            "set net${idx}/ip 10.0.2.77".into(),
            "set net${idx}/netmask 255.255.255.0".into(),
            "set net${idx}/gateway 10.0.2.2".into(),
            "set dns 10.0.2.3".into(),
            format!("chain {}/boot/ipxe?mac=${{net${{idx}}/mac}} || goto retry", s.url),
        ] {
            assert!(script.lines().any(|l| l == line), "[{b}] {line:?} in\n{script}");
        }
        // BMCs ask its size first, then read it in ranges.
        let head = ureq::head(&url).call().unwrap();
        assert_eq!(head.status(), 200, "[{b}]");
        assert_eq!(head.header("Content-Length"), Some(iso.len().to_string().as_str()), "[{b}]");
        assert_eq!(head.header("Accept-Ranges"), Some("bytes"), "[{b}]");
        let (status, range, part) = fetch(&url, Some("bytes=32768-34815"));
        assert_eq!(status, 206, "[{b}]");
        assert_eq!(range, Some(format!("bytes 32768-34815/{}", iso.len())), "[{b}]");
        assert_eq!(part, iso[32768..34816], "[{b}]");
        let (status, range, _) = fetch(&url, Some(&format!("bytes={}-", iso.len())));
        assert_eq!((status, range), (416, Some(format!("bytes */{}", iso.len()))), "[{b}]");
        // What the boot service then gives that MAC: the image, whose
        // kernel gets the address too.
        let (status, ipxe_script) = ipxe(&s, 1);
        assert_eq!(status, 200, "[{b}]");
        assert!(
            ipxe_script.contains(&format!(
                " ip=10.0.2.77::10.0.2.2:255.255.255.0:::off:10.0.2.3 BOOTIF=01-{}",
                mac.replace(':', "-")
            )),
            "[{b}] {ipxe_script}"
        );
        // And cloud-init a network-config for that NIC.
        let token = ipxe_script.split("neocloud.token=").nth(1).unwrap().split(' ').next().unwrap();
        let (status, config) = get_text(&format!("{}/boot/nocloud/{token}/network-config", s.url));
        assert_eq!(status, 200, "[{b}]");
        assert!(
            config.contains(&format!(
                "macaddress: \"{mac}\"\n    addresses:\n      - \"10.0.2.77/24\"\n"
            )),
            "[{b}] {config}"
        );
        let tenant_agent = spawn(boot(&s, 1, TENANT_KERNEL, hw("n1", None)));
        wait_node(&s, "bm-1", "active", None);
        assert_eq!(instance(&tenant, &id)["state"], "ready", "[{b}]");

        // A new address while the tenant holds the node: the release's
        // sanitizer boots from a new ISO; the old one is gone.
        let g = node(&s, "bm-1")["generation"].clone();
        s.admin()
            .patch(
                "/v1/nodes/bm-1",
                &json!({"generation": g, "availability": "schedulable",
                        "boot_network": {"mac": mac, "address": "10.0.2.78/24", "gateway": "10.0.2.2"}}),
            )
            .expect(200);
        release(&tenant, &id).expect(202);
        wait_node(&s, "bm-1", "releasing", Some("await_agent"));
        assert_eq!(exit_of(tenant_agent), neocloud_agent::Exit::Revoked, "[{b}]");
        let new_url = emu.get(&cd)["Image"].as_str().unwrap().to_string();
        assert!(new_url.starts_with(&prefix) && new_url != url, "[{b}] {new_url}");
        assert!(autoexec_of(&fetch(&new_url, None).2).contains("set net${idx}/ip 10.0.2.78\n"));
        assert_eq!(fetch(&url, None).0, 404, "[{b}] the old address's ISO");
        let sanitizer = spawn(boot(&s, 1, SANITIZER_KERNEL, hw("n1-san", None)));
        wait_node(&s, "bm-1", "available", None);
        stop(sanitizer);
        assert_ne!(emu.get(&cd)["Inserted"], json!(true), "[{b}] ejected");
        let recs = records(&tenant, &id);
        assert_eq!(recs[0]["body"]["complete"], true, "[{b}] {}", recs[0]);
        assert_eq!(check(&recs[0], "eject_virtual_media")["ok"], true, "[{b}] {}", recs[0]);

        // Its address removed: the server's ISO again (DHCP), nothing of
        // the node's own served.
        let g = node(&s, "bm-1")["generation"].clone();
        let n = s
            .admin()
            .patch(
                "/v1/nodes/bm-1",
                &json!({"generation": g, "availability": "schedulable", "boot_network": null}),
            )
            .expect(200)
            .body;
        assert!(n.get("boot_network").is_none(), "[{b}] {n}");
        assert_eq!(fetch(&new_url, None).0, 404, "[{b}]");
        let id = create(&tenant, "again")["id"].as_str().unwrap().to_string();
        wait_node(&s, "bm-1", "provisioning", Some("await_agent"));
        assert_eq!(emu.get(&cd)["Image"], json!(generic.url), "[{b}]");
        let script = ipxe(&s, 1).1;
        assert!(!script.contains(" ip="), "[{b}] {script}");
        let token = script.split("neocloud.token=").nth(1).unwrap().split(' ').next().unwrap();
        let url = format!("{}/boot/nocloud/{token}/network-config", s.url);
        assert_eq!(get_text(&url).0, 404, "[{b}] DHCP's own");
        let tenant_agent = spawn(boot(&s, 1, TENANT_KERNEL, hw("n1", None)));
        wait_node(&s, "bm-1", "active", None);
        release(&tenant, &id).expect(202);
        wait_node(&s, "bm-1", "releasing", Some("await_agent"));
        assert_eq!(exit_of(tenant_agent), neocloud_agent::Exit::Revoked, "[{b}]");
        let sanitizer = spawn(boot(&s, 1, SANITIZER_KERNEL, hw("n1-san", None)));
        wait_node(&s, "bm-1", "available", None);
        stop(sanitizer);
    }
}

#[test]
fn a_static_provisioning_address_is_checked_before_anything_is_written() {
    let Some(iso_config) = per_node_iso() else { return };
    for b in TestBackend::ALL {
        // Without per-node ISOs first, then with.
        let Some(plain) = TestServer::start_with(b, |c| {
            tweak(c, 120);
            c.lifecycle_interval_ms = 0;
        }) else {
            continue;
        };
        let backend = b;
        let b = b.as_str();
        let bmc = json!({"endpoint": "http://127.0.0.1:9", "username": "a", "password": "b"});
        let node = |name: &str, extra: Value| {
            let mut v = json!({"name": name, "site": "s", "pod": "p", "su": "su1", "rack": "r1",
                               "gpu_model": "h100-80gb", "gpus": 8, "bmc": bmc,
                               "boot_method": "virtual_media"});
            for (k, x) in extra.as_object().unwrap() {
                v[k] = x.clone();
            }
            v
        };
        let net = |mac: &str, address: &str| json!({"mac": mac, "address": address});
        let e = plain
            .admin()
            .post(
                "/v1/nodes",
                &node("n0", json!({"boot_network": net("52:54:00:00:00:01", "10.9.0.10/24")})),
            )
            .expect(422);
        assert_eq!(e.error().1.as_deref(), Some("boot_network"), "[{b}] {}", e.text);
        assert!(e.text.contains("per_node_iso"), "[{b}] says what is missing: {}", e.text);
        drop(plain);

        let Some(s) = TestServer::start_with(backend, iso_tweak(&iso_config)) else {
            continue;
        };
        let count = |s: &TestServer| {
            s.admin().get("/v1/nodes").expect(200).body["items"].as_array().unwrap().len()
        };
        for (body, status, field) in [
            (
                node(
                    "n1",
                    json!({"boot_method": "pxe", "boot_network": net("52:54:00:00:00:01", "10.9.0.10/24")}),
                ),
                422,
                "boot_network",
            ),
            (
                node(
                    "n1",
                    json!({"boot_method": "uefi_http", "boot_network": net("52:54:00:00:00:01", "10.9.0.10/24")}),
                ),
                422,
                "boot_method",
            ),
            (
                node(
                    "n1",
                    json!({"bmc": null, "boot_method": null, "boot_network": net("52:54:00:00:00:01", "10.9.0.10/24")}),
                ),
                422,
                "boot_network",
            ),
            (
                node("n1", json!({"boot_network": net("52:54:00:00:01", "10.9.0.10/24")})),
                422,
                "boot_network.mac",
            ),
            (
                node("n1", json!({"boot_network": net("52:54:00:00:00:01", "10.9.0.0/24")})),
                422,
                "boot_network.address",
            ),
            (
                node(
                    "n1",
                    json!({"boot_network": {"mac": "52:54:00:00:00:01", "address": "10.9.0.10/24", "gateway": "10.8.0.1"}}),
                ),
                422,
                "boot_network.gateway",
            ),
            (
                node(
                    "n1",
                    json!({"boot_network": {"mac": "52:54:00:00:00:01", "address": "10.9.0.10/24", "router": "10.9.0.1"}}),
                ),
                400,
                "",
            ),
        ] {
            let e = s.admin().post("/v1/nodes", &body).expect(status);
            if !field.is_empty() {
                assert_eq!(e.error().1.as_deref(), Some(field), "[{b}] {body}: {}", e.text);
            }
        }
        assert_eq!(count(&s), 0, "[{b}] nothing written");
        s.admin()
            .post(
                "/v1/nodes",
                &node("n1", json!({"boot_network": net("52:54:00:00:00:01", "10.9.0.10/24")})),
            )
            .expect(201);
        // Unique among nodes: the address, and the MAC.
        let e = s
            .admin()
            .post(
                "/v1/nodes",
                &node("n2", json!({"boot_network": net("52:54:00:00:00:02", "10.9.0.10/24")})),
            )
            .expect(409);
        assert_eq!(e.error().1.as_deref(), Some("boot_network.address"), "[{b}] {}", e.text);
        let e = s
            .admin()
            .post(
                "/v1/nodes",
                &node("n2", json!({"boot_network": net("52:54:00:00:00:01", "10.9.0.11/24")})),
            )
            .expect(409);
        assert_eq!(e.error().1.as_deref(), Some("boot_network.mac"), "[{b}] {}", e.text);
        assert_eq!(count(&s), 1, "[{b}] nothing written");

        // Updates: PXE only with the address removed in the same update.
        let before = s.admin().get("/v1/nodes/n1").expect(200).body;
        let g = before["generation"].clone();
        let e = s
            .admin()
            .patch(
                "/v1/nodes/n1",
                &json!({"generation": g, "availability": "schedulable", "boot_method": "pxe"}),
            )
            .expect(422);
        assert_eq!(e.error().1.as_deref(), Some("boot_method"), "[{b}] {}", e.text);
        let e = s
            .admin()
            .patch("/v1/nodes/n1", &json!({"generation": g, "availability": "schedulable",
                                           "boot_network": net("52:54:00:00:00:01", "10.9.0.300/24")}))
            .expect(422);
        assert_eq!(e.error().1.as_deref(), Some("boot_network.address"), "[{b}] {}", e.text);
        assert_eq!(s.admin().get("/v1/nodes/n1").expect(200).body, before, "[{b}] nothing written");
        let n = s
            .admin()
            .patch(
                "/v1/nodes/n1",
                &json!({"generation": g, "availability": "schedulable",
                                           "boot_method": "pxe", "boot_network": null}),
            )
            .expect(200)
            .body;
        assert_eq!(n["boot_method"], "pxe", "[{b}]");
        assert!(n.get("boot_network").is_none(), "[{b}] {n}");
        // Its address is free again.
        s.admin()
            .post(
                "/v1/nodes",
                &node("n2", json!({"boot_network": net("52:54:00:00:00:02", "10.9.0.10/24")})),
            )
            .expect(201);
    }
}

#[test]
fn a_node_readdressed_between_its_override_and_its_reset_boots_its_new_iso() {
    let Some(iso_config) = per_node_iso() else { return };
    let Some(emu) = peers::Emulator::start(1) else { return };
    let system =
        emu.system_path(emu.systems.iter().position(|u| u == &peers::fake_uuid(1)).unwrap());
    let cd = format!("{system}/VirtualMedia/Cd");
    let mac = peers::fake_mac(1).to_ascii_lowercase();
    for b in TestBackend::ALL {
        let Some(s) = TestServer::start_with(b, iso_tweak(&iso_config)) else {
            continue;
        };
        let b = b.as_str();
        let (mut ctl, secrets) = controller(&s);
        ctl.node_isos = Some(neocloud_server::boot::iso::NodeIsos::new(
            neocloud_server::boot::iso::IsoBuilder::new(iso_config.clone(), &s.data_dir).unwrap(),
            s.url.clone(),
        ));
        let tenant = catalog(&s, true);
        let id = s
            .admin()
            .post(
                "/v1/nodes",
                &json!({"name": "bm-1", "site": "s", "pod": "p", "su": "su1", "rack": "r1",
                        "gpu_model": "h100-80gb", "gpus": 8, "boot_method": "virtual_media",
                        "boot_network": {"mac": mac, "address": "10.0.2.77/24"},
                        "bmc": {"endpoint": emu.url, "username": "admin", "password": "pw"}}),
            )
            .expect(201)
            .body["id"]
            .as_str()
            .unwrap()
            .to_string();
        let step_until = |what: &dyn Fn(&Value) -> bool| {
            for _ in 0..50 {
                let l = common::nodes::lifecycle(&s, "bm-1");
                if what(&l) {
                    return;
                }
                ctl.step_node(&s.store, &secrets, &id).unwrap();
            }
            panic!("[{b}] bm-1 is at {}", common::nodes::lifecycle(&s, "bm-1"));
        };
        step_until(&|l| l["state"] == "available");
        create(&tenant, "job");
        step_until(&|l| l["state"] == "provisioning" && l["step"] == "power_cycle");
        let first = emu.get(&cd)["Image"].as_str().unwrap().to_string();
        assert!(first.contains("/boot/vmedia/"), "[{b}] {first}");
        let g = node(&s, "bm-1")["generation"].clone();
        s.admin()
            .patch(
                "/v1/nodes/bm-1",
                &json!({"generation": g, "availability": "schedulable",
                        "boot_network": {"mac": mac, "address": "10.0.2.78/24"}}),
            )
            .expect(200);
        step_until(&|l| l["step"] == "await_agent");
        let slot = emu.get(&cd);
        let now = slot["Image"].as_str().unwrap();
        assert_eq!(slot["Inserted"], json!(true), "[{b}] {slot}");
        assert!(now != first && now.contains("/boot/vmedia/"), "[{b}] {now}");
        let (status, _, iso) = fetch(now, None);
        assert_eq!(status, 200, "[{b}]");
        assert!(autoexec_of(&iso).contains("set net${idx}/ip 10.0.2.78\n"), "[{b}]");
        assert_eq!(emu.get(&system)["Boot"]["BootSourceOverrideTarget"], "Cd", "[{b}]");
    }
}

#[test]
fn a_nodes_iso_is_built_before_its_first_boot() {
    let Some(iso_config) = per_node_iso() else { return };
    for b in TestBackend::ALL {
        let Some(s) = TestServer::start_with(b, iso_tweak(&iso_config)) else {
            continue;
        };
        let b = b.as_str();
        // What the server builds for the node (the same builder, cache and URL).
        let isos = neocloud_server::boot::iso::NodeIsos::new(
            neocloud_server::boot::iso::IsoBuilder::new(iso_config.clone(), &s.data_dir).unwrap(),
            s.url.clone(),
        );
        let net = json!({"mac": "52:54:00:00:07:01", "address": "10.7.0.10/24"});
        let id = s
            .admin()
            .post(
                "/v1/nodes",
                &json!({"name": "n1", "site": "s", "pod": "p", "su": "su1", "rack": "r1",
                        "gpu_model": "h100-80gb", "gpus": 8, "boot_method": "virtual_media",
                        "boot_network": net,
                        "bmc": {"endpoint": "http://127.0.0.1:9", "username": "a", "password": "b"}}),
            )
            .expect(201)
            .body["id"]
            .as_str()
            .unwrap()
            .to_string();
        let key = |address: &str| {
            let a = neocloud_types::BootNetwork {
                mac: "52:54:00:00:07:01".into(),
                address: Some(address.into()),
                network: None,
                gateway: None,
                dns: vec![],
            }
            .check()
            .unwrap();
            isos.for_node(&id, &a).unwrap().key
        };
        // No controller runs and nothing fetched it: the prebuilding pass
        // woken by the create built it.
        let first = key("10.7.0.10/24");
        common::nodes::wait_for("the node's ISO", std::time::Duration::from_secs(30), || {
            isos.builder.is_cached(&first).then_some(())
        });
        // Re-addressed: its new ISO too.
        let g = node(&s, "n1")["generation"].clone();
        s.admin()
            .patch(
                "/v1/nodes/n1",
                &json!({"generation": g, "availability": "schedulable",
                        "boot_network": {"mac": "52:54:00:00:07:01", "address": "10.7.0.11/24"}}),
            )
            .expect(200);
        let second = key("10.7.0.11/24");
        assert_ne!(first, second, "[{b}]");
        common::nodes::wait_for("the node's new ISO", std::time::Duration::from_secs(30), || {
            isos.builder.is_cached(&second).then_some(())
        });
        // And the pass finds nothing left to do.
        let pass = isos.prebuild(&s.store, &|| false).unwrap();
        assert_eq!((pass.built, pass.current, pass.failed), (0, 1, 0), "[{b}]");
    }
}
