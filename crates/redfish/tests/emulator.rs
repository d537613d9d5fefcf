//! The driver against real Redfish implementations: the sushy-tools
//! emulator (fake systems driver: power, boot, virtual media) and
//! sushy-static serving the project's BMC mockups (inventory, HGX GPU
//! paths). Skips loudly where sushy-tools is not installed; CI installs it.

mod common;

use common::{Emulator, FileServer, StaticBmc};
use neocloud_redfish::{Bmc, BmcConfig, BootTarget, PowerState, RedfishError, ResetType};
use std::time::Duration;

fn bmc(url: &str) -> Bmc {
    let mut c = BmcConfig::new(url, "admin", "password");
    c.timeout = Duration::from_secs(10);
    c.backoff = Duration::from_millis(50);
    Bmc::new(c)
}

#[test]
fn discovers_systems_and_drives_power_with_a_deadline() {
    let Some(emu) = Emulator::start(4) else { return };
    let b = bmc(&emu.url);
    let systems = b.systems().unwrap();
    assert_eq!(systems.len(), 4, "{systems:?}");
    // Ids are the emulator's, discovered (UUIDs), not `1`.
    assert!(systems.iter().all(|s| !s.ends_with("/1")), "{systems:?}");
    let sys = &systems[0];
    let info = b.system(sys).unwrap();
    assert!(info.reset_types.iter().any(|t| t == "On"), "{info:?}");
    assert_eq!(info.power_state, PowerState::Off);
    b.reset(sys, ResetType::On).unwrap();
    // The fake driver changes state after a random 1-11 s.
    b.wait_power(sys, PowerState::On, Duration::from_secs(20), Duration::from_millis(250)).unwrap();
    b.reset(sys, ResetType::ForceOff).unwrap();
    b.wait_power(sys, PowerState::Off, Duration::from_secs(20), Duration::from_millis(250))
        .unwrap();
    // A deadline that passes is a timeout naming the state.
    let e = b
        .wait_power(sys, PowerState::On, Duration::from_millis(300), Duration::from_millis(100))
        .unwrap_err();
    assert!(matches!(e, RedfishError::Timeout(_)), "{e:?}");
    // A reset type the BMC does not allow is refused before sending.
    if !info.reset_types.iter().any(|t| t == "PowerCycle") {
        assert!(matches!(b.reset(sys, ResetType::PowerCycle), Err(RedfishError::Unsupported(_))));
    }
}

#[test]
fn boot_override_once_and_cleared() {
    let Some(emu) = Emulator::start(1) else { return };
    let b = bmc(&emu.url);
    let sys = b.host_system().unwrap();
    b.boot_once(&sys, BootTarget::Pxe, true).unwrap();
    let info = b.system(&sys).unwrap();
    assert_eq!(info.boot_target, "Pxe");
    // sushy's fake driver stores Once as Continuous (a known quirk).
    assert!(["Once", "Continuous"].contains(&info.boot_enabled.as_str()), "{info:?}");
    b.clear_boot_override(&sys).unwrap();
    let info = b.system(&sys).unwrap();
    // The fake driver ignores BootSourceOverrideEnabled (always reads back
    // Continuous) but stores the target: cleared means target None.
    assert_eq!(info.boot_target, "None", "{info:?}");
}

#[test]
fn virtual_media_insert_and_eject() {
    let Some(emu) = Emulator::start(1) else { return };
    let files = FileServer::start("boot.iso", b"not really an iso".to_vec());
    let b = bmc(&emu.url);
    let sys = b.host_system().unwrap();
    let slots = b.cd_slots(&sys).unwrap();
    assert!(!slots.is_empty(), "a CD slot is discovered");
    let slot = &slots[0];
    b.insert_media(slot, &files.url).unwrap();
    assert_eq!(b.media_image(slot).unwrap().as_deref(), Some(files.url.as_str()));
    b.eject_media(slot).unwrap();
    assert_eq!(b.media_image(slot).unwrap(), None);
}

#[test]
fn inventory_of_an_emulated_system_without_inventory_is_empty_not_an_error() {
    let Some(emu) = Emulator::start(1) else { return };
    let b = bmc(&emu.url);
    let sys = b.host_system().unwrap();
    let inv = b.inventory(&sys).unwrap();
    assert!(inv.gpus.is_empty() && inv.cpus.is_empty(), "{inv:?}");
    assert!(
        inv.nics.iter().any(|n| n.mac.starts_with("52:54:00")),
        "MACs come from EthernetInterfaces: {inv:?}"
    );
    // The emulator's systems are healthy.
    assert_eq!(inv.health.rollup.as_deref(), Some("OK"), "{:?}", inv.health);
    assert!(inv.health.faults.is_empty(), "{:?}", inv.health);
}

#[test]
fn inventory_of_an_hgx_node_finds_its_gpus_on_the_baseboard() {
    let Some(bmc_peer) = StaticBmc::start("dgx-h100") else { return };
    let b = bmc(&bmc_peer.url);
    let host = b.host_system().unwrap();
    assert!(!host.ends_with("HGX_Baseboard_0"), "{host}");
    let before = bmc_peer.log().len();
    let inv = b.inventory(&host).unwrap();
    // Every resource read once: each read is a BMC round trip to wait on
    // (the host system was read three times, each GPU's system and memory
    // collection once per GPU).
    let log = bmc_peer.log();
    let mut reads = std::collections::BTreeMap::<&str, usize>::new();
    for line in log[before..].lines() {
        if let Some(path) = line.split("\"GET ").nth(1).and_then(|r| r.split(' ').next()) {
            *reads.entry(path).or_default() += 1;
        }
    }
    assert!(reads.len() > 30, "{reads:?}\n{log}");
    let twice: Vec<_> = reads.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "read more than once: {twice:?}");
    assert_eq!(reads.get(host.as_str()), Some(&1), "{reads:?}");
    assert_eq!(inv.gpus.len(), 8, "{:?}", inv.gpus);
    assert!(inv.gpus.iter().all(|g| g.model.contains("H100")), "{:?}", inv.gpus);
    assert!(
        inv.gpus.iter().all(|g| g.path.contains("HGX_Baseboard_0/Processors/GPU_SXM_")),
        "{:?}",
        inv.gpus
    );
    assert!(inv.gpus.iter().all(|g| g.memory_mib > 80_000), "{:?}", inv.gpus);
    let serials: std::collections::BTreeSet<&str> =
        inv.gpus.iter().map(|g| g.serial.as_str()).collect();
    assert_eq!(serials.len(), 8, "distinct GPUs");
    assert_eq!(inv.cpus.len(), 2, "{:?}", inv.cpus);
    // Its TPM, which the sanitizer must see to clear it.
    assert_eq!(inv.system.tpms, ["TPM2_0"]);
    assert!(inv.memory_mib > 0);
    assert!(inv.nics.len() >= 2, "{:?}", inv.nics);
    assert!(!inv.firmware.is_empty(), "firmware inventory read");
    assert!(inv.firmware.iter().all(|f| !f.version.is_empty()), "{:?}", inv.firmware);
    // Healthy, as the mockup's every Status says.
    let healthy = neocloud_redfish::Health { rollup: Some("OK".into()), ..Default::default() };
    assert_eq!(inv.health, healthy);
    // A healthy node's log is not read.
    assert!(!reads.keys().any(|p| p.contains("LogServices")), "{reads:?}");
}

/// A file of a mockup copy, as JSON, changed by `f` and written back.
fn change(dir: &std::path::Path, resource: &str, f: impl FnOnce(&mut serde_json::Value)) {
    let path = dir.join(resource).join("index.json");
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    f(&mut v);
    std::fs::write(&path, serde_json::to_string_pretty(&v).unwrap()).unwrap();
}

#[test]
fn health_names_the_failed_part_and_the_logs_newest_errors_only_when_unhealthy() {
    // Healthy: one read, the host system.
    let Some(dgx) = StaticBmc::start("dgx-h100") else { return };
    let b = bmc(&dgx.url);
    let host = b.host_system().unwrap();
    let before = dgx.log().len();
    let h = b.health(&host).unwrap();
    assert_eq!(h, neocloud_redfish::Health { rollup: Some("OK".into()), ..Default::default() });
    let gets = dgx.log()[before..].matches("\"GET ").count();
    assert_eq!(gets, 1, "{}", &dgx.log()[before..]);

    // A GPU failed: the BMC rolls it up, marks the GPU and logs it.
    let copy = common::mockup_copy("dgx-h100");
    change(copy.path(), "Systems/DGX", |v| v["Status"]["HealthRollup"] = "Critical".into());
    change(copy.path(), "Systems/HGX_Baseboard_0/Processors/GPU_SXM_3", |v| {
        v["Status"]["Health"] = "Critical".into()
    });
    // A memory module and a drive.
    change(copy.path(), "Systems/DGX/Memory/DIMM_0_C1", |v| {
        v["Status"]["Health"] = "Critical".into()
    });
    change(copy.path(), "Systems/DGX/Storage/NVMe_0/Drives/U2_3", |v| {
        v["Status"]["Health"] = "Warning".into()
    });
    // And a power supply (the older `Power`, its members inline).
    change(copy.path(), "Chassis/DGX/Power", |v| {
        v["PowerSupplies"][3]["Status"]["Health"] = "Critical".into()
    });
    change(copy.path(), "Systems/DGX/LogServices/SEL/Entries", |v| {
        v["Members"].as_array_mut().unwrap().push(serde_json::json!({
            "@odata.id": "/redfish/v1/Systems/DGX/LogServices/SEL/Entries/4",
            "Id": "4", "EntryType": "SEL", "Created": "2024-03-02T08:00:00+00:00",
            "Severity": "Critical", "Message": "GPU_SXM_3 uncorrectable ECC error"
        }))
    });
    let Some(failed) = StaticBmc::start_dir(copy.path()) else { return };
    let b = bmc(&failed.url);
    let h = b.health(&host).unwrap();
    assert!(h.critical(), "{h:?}");
    let faults: Vec<String> = h.faults.iter().map(|f| f.short()).collect();
    assert_eq!(
        faults,
        ["GPU_SXM_3 Critical", "DIMM_0_C1 Critical", "U2_3 Warning", "PSU3 Critical"],
        "{h:?}"
    );
    // Warnings and errors only, newest first.
    let events: Vec<(&str, &str)> =
        h.events.iter().map(|e| (e.severity.as_str(), e.message.as_str())).collect();
    assert_eq!(
        events,
        [
            ("Critical", "GPU_SXM_3 uncorrectable ECC error"),
            ("Warning", "FAN_3 speed below lower non-critical threshold")
        ],
        "{h:?}"
    );
    assert!(
        h.describe().ends_with(
            "last logged 2024-03-02T08:00:00+00:00: Critical GPU_SXM_3 uncorrectable ECC error"
        ),
        "{}",
        h.describe()
    );
    // The inventory says the same.
    assert_eq!(b.inventory(&host).unwrap().health, h);
    assert_eq!(h.unread, None);

    // Another vendor: fans in a `ThermalSubsystem`, no log service.
    let copy = common::mockup_copy("generic-2cpu");
    change(copy.path(), "Systems/System.Embedded.1", |v| {
        v["Status"]["HealthRollup"] = "Warning".into()
    });
    change(copy.path(), "Chassis/System.Embedded.1/ThermalSubsystem/Fans/Fan.Embedded.2B", |v| {
        v["Status"]["Health"] = "Warning".into()
    });
    let Some(dell) = StaticBmc::start_dir(copy.path()) else { return };
    let b = bmc(&dell.url);
    let host = b.host_system().unwrap();
    let h = b.health(&host).unwrap();
    let faults: Vec<String> = h.faults.iter().map(|f| f.short()).collect();
    assert_eq!(faults, ["Fan.Embedded.2B Warning"], "{h:?}");
    assert!(!h.critical() && h.events.is_empty(), "{h:?}");
    assert!(
        dell.log().contains(
            "GET /redfish/v1/Chassis/System.Embedded.1/PowerSubsystem/PowerSupplies/PSU.Slot.2"
        ),
        "every supply read"
    );
}

#[test]
fn secure_boot_is_read_and_set_on_the_emulator() {
    let Some(emu) = Emulator::start(1) else { return };
    let b = bmc(&emu.url);
    let sys = b.host_system().unwrap();
    let sb = b.secure_boot(&sys).unwrap().expect("the fake driver reports Secure Boot");
    assert!(sb.path.ends_with("/SecureBoot"), "{sb:?}");
    let flipped = b.set_secure_boot(&sb, !sb.enable).unwrap();
    assert_eq!(flipped.enable, !sb.enable, "{flipped:?}");
    // What the BMC itself now reports, not the driver's echo of its request.
    assert_eq!(emu.get(&sb.path)["SecureBootEnable"], !sb.enable);
    let back = b.set_secure_boot(&flipped, sb.enable).unwrap();
    assert_eq!(back.enable, sb.enable);
    // The emulator has no account service: none, not an error.
    assert_eq!(b.accounts().unwrap(), None);
    let inv = b.inventory(&sys).unwrap();
    assert_eq!(inv.secure_boot.as_ref().map(|s| s.enable), Some(sb.enable));
    assert_eq!(inv.accounts, None);
    // Nor BIOS attributes (the fake driver answers 501).
    assert_eq!(b.bios(&sys).unwrap(), None);
    assert_eq!(inv.bios, None);
}

#[test]
fn the_boot_order_and_boot_options_are_part_of_the_inventory() {
    let Some(dgx) = StaticBmc::start("dgx-h100") else { return };
    let b = bmc(&dgx.url);
    let sys = b.host_system().unwrap();
    let inv = b.inventory(&sys).unwrap();
    assert_eq!(
        inv.boot_order,
        Some(vec!["Boot000A".to_string(), "Boot000B".into(), "Boot0030".into()])
    );
    let options = inv.boot_options.expect("boot options listed");
    let refs: Vec<&str> = options.iter().map(|o| o.reference.as_str()).collect();
    assert_eq!(refs, ["Boot000A", "Boot000B", "Boot0030"]);
    assert!(options.iter().all(|o| o.enabled && o.device_path.is_some()), "{options:?}");
    // sushy-static answers with 204 and keeps nothing: the driver answers
    // what the BMC reads back.
    let order = b.set_boot_order(&sys, &["Boot0030".to_string()]).unwrap();
    assert_eq!(order.len(), 3, "{order:?}");
    let after = b.disable_boot_option(&options[0]).unwrap();
    assert!(after.enabled, "{after:?}");
    // A BMC with a boot order and no option collection (this iDRAC mockup).
    let Some(dell) = StaticBmc::start("generic-2cpu") else { return };
    let b = bmc(&dell.url);
    let inv = b.inventory(&b.host_system().unwrap()).unwrap();
    assert_eq!(inv.boot_order, Some(vec!["NIC.PxeDevice.1-1".to_string(), "Disk.Bay.0".into()]));
    assert_eq!(inv.boot_options, None);
}

#[test]
fn bios_attributes_are_read_and_staged_on_the_settings_resource() {
    let Some(dell) = StaticBmc::start("generic-2cpu") else { return };
    let b = bmc(&dell.url);
    let sys = b.host_system().unwrap();
    let bios = b.bios(&sys).unwrap().expect("a BIOS resource");
    assert_eq!(bios.path, format!("{sys}/Bios"));
    assert_eq!(bios.settings.as_deref(), Some(format!("{sys}/Bios/Settings").as_str()));
    assert!(bios.apply_on_reset, "{bios:?}");
    assert_eq!(bios.attributes["SriovGlobalEnable"], "Enabled");
    assert_eq!(b.inventory(&sys).unwrap().bios.as_ref(), Some(&bios));
    assert!(b.pending_bios(&bios).unwrap().is_empty(), "nothing staged");
    let mut changes = neocloud_redfish::BiosAttributes::new();
    changes.insert("SriovGlobalEnable".into(), serde_json::json!("Disabled"));
    // sushy-static answers the PATCH with 204 and keeps nothing: the
    // driver answers what the BMC holds pending, read back.
    let held = b.stage_bios(&bios, &changes).unwrap();
    assert!(held.is_empty(), "{held:?}");
    assert!(dell.log().contains(&format!("PATCH {sys}/Bios/Settings")), "{}", dell.log());
    // An AMI-style BMC: its settings resource is `SD`, no apply times.
    let Some(dgx) = StaticBmc::start("dgx-h100") else { return };
    let b = bmc(&dgx.url);
    let bios = b.bios(&b.host_system().unwrap()).unwrap().expect("a BIOS resource");
    assert_eq!(bios.settings.as_deref(), Some("/redfish/v1/Systems/DGX/Bios/SD"));
    assert!(!bios.apply_on_reset);
    assert_eq!(bios.attributes["NumaNodesPerSocket"], 1);
}

#[test]
fn bmc_accounts_and_secure_boot_are_part_of_the_inventory() {
    let Some(dgx) = StaticBmc::start("dgx-h100") else { return };
    let b = bmc(&dgx.url);
    let inv = b.inventory(&b.host_system().unwrap()).unwrap();
    let sb = inv.secure_boot.expect("Secure Boot reported");
    assert!(sb.enable && sb.mode.as_deref() == Some("DeployedMode"), "{sb:?}");
    assert_eq!(sb.path, "/redfish/v1/Systems/DGX/SecureBoot");
    let accounts = inv.accounts.expect("an account service");
    let seen: Vec<(&str, &str, bool)> =
        accounts.iter().map(|a| (a.user_name.as_str(), a.role_id.as_str(), a.enabled)).collect();
    assert_eq!(
        seen,
        [
            ("admin", "Administrator", true),
            ("monitor", "ReadOnly", true),
            ("neocloud", "Administrator", true),
            ("service", "Operator", false),
        ]
    );
    // A vendor with fixed slots: the unused ones (no user name) are not accounts.
    let Some(dell) = StaticBmc::start("generic-2cpu") else { return };
    let b = bmc(&dell.url);
    let accounts = b.accounts().unwrap().expect("an account service");
    assert_eq!(accounts.len(), 1, "{accounts:?}");
    assert_eq!(accounts[0].path, "/redfish/v1/AccountService/Accounts/2");
    assert_eq!((accounts[0].user_name.as_str(), accounts[0].enabled), ("root", true));
    let sb = b.secure_boot(&b.host_system().unwrap()).unwrap().expect("reported");
    assert!(!sb.enable && sb.mode.as_deref() == Some("UserMode"), "{sb:?}");
    // sushy-static answers a PATCH with 204 and changes nothing: the
    // driver reports what the BMC reads back, so the caller sees the
    // account still enabled.
    let after = b.disable_account(&accounts[0]).unwrap();
    assert!(after.enabled, "{after:?}");
    assert!(dell.log().contains("PATCH"), "the change was sent");
}

#[test]
fn host_interfaces_are_part_of_the_inventory() {
    let Some(dgx) = StaticBmc::start("dgx-h100") else { return };
    let b = bmc(&dgx.url);
    let inv = b.inventory(&b.host_system().unwrap()).unwrap();
    let list = inv.host_interfaces.expect("the BMC's host interfaces");
    assert_eq!(list.len(), 1, "{list:?}");
    let hi = &list[0];
    assert_eq!(hi.path, "/redfish/v1/Managers/BMC/HostInterfaces/Self");
    assert_eq!(hi.id, "Self");
    assert_eq!(hi.kind.as_deref(), Some("NetworkHostInterface"));
    assert!(!hi.enabled, "{hi:?}");
    assert_eq!(hi.credential_bootstrapping, Some(false));
    // The system's own manager (`ManagedBy`), not the GPU baseboard's.
    let log = dgx.log();
    assert!(log.contains("GET /redfish/v1/Managers/BMC/HostInterfaces/Self"), "{log}");
    assert!(!log.contains("GET /redfish/v1/Managers/HGX_BMC_0"), "{log}");
    // Turning one off sends the change and answers what the BMC reads
    // back (sushy-static keeps nothing: still as in the file).
    let mut on = hi.clone();
    on.enabled = true;
    on.credential_bootstrapping = Some(true);
    let after = b.disable_host_interface(&on).unwrap();
    assert_eq!(&after, hi);
    assert!(
        dgx.log().contains("PATCH /redfish/v1/Managers/BMC/HostInterfaces/Self"),
        "{}",
        dgx.log()
    );
    // A BMC whose manager has no host interface collection: none.
    let Some(dell) = StaticBmc::start("generic-2cpu") else { return };
    let b = bmc(&dell.url);
    assert_eq!(b.inventory(&b.host_system().unwrap()).unwrap().host_interfaces, None);
}

#[test]
fn system_ids_are_discovered_on_other_vendors() {
    let Some(bmc_peer) = StaticBmc::start("generic-2cpu") else { return };
    let b = bmc(&bmc_peer.url);
    let host = b.host_system().unwrap();
    assert!(host.ends_with("System.Embedded.1"), "{host}");
    let inv = b.inventory(&host).unwrap();
    assert!(inv.gpus.is_empty());
    assert_eq!(inv.cpus.len(), 2);
    // Its TPM is reported disabled (TrustedModules, Status.State).
    assert_eq!(inv.system.tpms, Vec::<String>::new());
}

#[test]
fn credentials_are_checked_by_a_bmc_without_sessions() {
    let Some(emu) = Emulator::start_with_auth(1, "admin", "s3cret") else { return };
    // No session service on the emulator: the driver falls back to basic auth.
    let mut good = BmcConfig::new(&emu.url, "admin", "s3cret");
    good.backoff = Duration::from_millis(20);
    assert_eq!(Bmc::new(good).systems().unwrap().len(), 1);
    let mut bad = BmcConfig::new(&emu.url, "admin", "wrong");
    bad.backoff = Duration::from_millis(20);
    let e = Bmc::new(bad).systems().unwrap_err();
    assert!(matches!(e, RedfishError::Auth(_)), "{e:?}");
    assert!(!format!("{e} {e:?}").contains("wrong"), "the password never shows");
}

/// `UpdateService.SimpleUpdate` as sushy-tools takes it: the action found
/// on the update service, the image and targets in the body. The fake
/// driver keeps no firmware versions, so the emulator refuses the update
/// with its reason (500, not sent again: a POST), and a target it does not take
/// with 400; its task resource reads as completed (no request kept), and
/// its task service lists no tasks.
#[test]
fn firmware_updates_reach_the_emulator_and_its_refusals_surface() {
    let Some(emu) = Emulator::start(1) else { return };
    let b = bmc(&emu.url);
    let sys = b.host_system().unwrap();
    let e = b.simple_update("http://127.0.0.1:9/bios.bin", &[&sys]).unwrap_err();
    match &e {
        RedfishError::Status { status: 500, message, .. } => {
            assert!(message.contains("Failed fetching BIOS information"), "{e:?}")
        }
        other => panic!("{other:?}"),
    }
    assert!(e.is_transient(), "a 500 is tried again later");
    let e =
        b.simple_update("http://127.0.0.1:9/bmc.bin", &["/redfish/v1/Managers/BMC"]).unwrap_err();
    match &e {
        RedfishError::Status { status: 400, message, .. } => {
            assert!(message.contains("Manager is not currently a supported Target"), "{e:?}")
        }
        other => panic!("{other:?}"),
    }
    let t = b.task("/redfish/v1/TaskService/Tasks/42").unwrap();
    assert_eq!(t.progress, neocloud_redfish::TaskProgress::Completed, "{t:?}");
    assert_eq!(t.percent, Some(100), "{t:?}");
    // It keeps no request with it: a lost answer cannot be traced by it.
    assert_eq!(t.updates("http://127.0.0.1:9/bios.bin", &[&sys]), None, "{t:?}");
    // A task service without a task collection: none listed, not an error.
    assert!(b.tasks().unwrap().is_empty());
    // No firmware inventory on the fake driver: none, not an error.
    assert!(b.firmware().unwrap().is_empty());
}

/// The DGX mockup's firmware inventory, each component with the path an
/// update targets; sushy-static takes any POST with 204 and no task: an
/// update taken with no task to follow.
#[test]
fn firmware_inventory_paths_and_an_update_without_a_task() {
    let Some(bmc_peer) = StaticBmc::start("dgx-h100") else { return };
    let b = bmc(&bmc_peer.url);
    let fw = b.firmware().unwrap();
    let bios = fw.iter().find(|f| f.id == "HostBIOS_0").unwrap_or_else(|| panic!("{fw:?}"));
    assert_eq!(bios.path, "/redfish/v1/UpdateService/FirmwareInventory/HostBIOS_0");
    assert!(fw.iter().all(|f| f.path.ends_with(&format!("/{}", f.id))), "{fw:?}");
    let task = b.simple_update("https://fw.example/bios.bin", &[&bios.path]).unwrap();
    assert_eq!(task, None);
}

#[test]
fn the_system_event_log_is_found_and_cleared_by_its_action() {
    let Some(dgx) = StaticBmc::start("dgx-h100") else { return };
    let b = bmc(&dgx.url);
    let host = b.host_system().unwrap();
    let sels = b.sel_services(&host).unwrap();
    assert_eq!(
        sels.iter().map(|l| l.path.as_str()).collect::<Vec<_>>(),
        ["/redfish/v1/Systems/DGX/LogServices/SEL"]
    );
    // sushy-static keeps nothing: the entries read back are the file's.
    let left = b.clear_log(&sels[0]).unwrap();
    assert_eq!(left, 3);
    let log = dgx.log();
    assert!(
        log.contains("POST /redfish/v1/Systems/DGX/LogServices/SEL/Actions/LogService.ClearLog"),
        "{log}"
    );
    // A BMC without one: none.
    let Some(dell) = StaticBmc::start("generic-2cpu") else { return };
    let b = bmc(&dell.url);
    assert!(b.sel_services(&b.host_system().unwrap()).unwrap().is_empty());
}
