//! Sanitization restores what a tenant with root on the host can change
//! on its BMC in-band (the host's IPMI or Redfish host interface, the UEFI
//! setup, vendor tools): Secure Boot, the BMC's local accounts, the BIOS
//! attributes. The node's first clean inspection is the baseline; a release
//! stages the BIOS back before the sanitizer boots, turns Secure Boot back
//! and disables every account the baseline does not have, reads all back,
//! and records it in the signed record. A BMC that does not take the change
//! fails the record: the node goes to no one.
//!
//! Against real peers: the sushy-tools emulator (Secure Boot, really
//! changed and read back) and sushy-static serving the DGX mockup (an
//! account service; it answers a PATCH with 204 and changes nothing). The
//! happy path of disabling an account runs on the SIMULATED BMC, whose
//! accounts change; the driver's calls are the same.
//!
//! The tests drive their own lifecycle controller and play the node's
//! agents.

mod bm;
mod common;
#[path = "../../redfish/tests/common/mod.rs"]
mod peers;

use bm::*;
use common::nodes::{lifecycle, node};
use common::TestBackend;
use neocloud_server::simbmc;
use neocloud_store::nodes;
use serde_json::{json, Value};

#[test]
fn secure_boot_a_tenant_turned_off_is_turned_back_on() {
    let Some(emu) = peers::Emulator::start(1) else { return };
    let sb = format!("{}/SecureBoot", emu.system_path(0));
    for b in TestBackend::ALL {
        let Some(s) = server_without_controller(b) else { continue };
        let b = b.as_str();
        // The provider's fleet runs with Secure Boot on.
        emu.patch(&sb, json!({"SecureBootEnable": true}));
        let (tenant, ctl, secrets) = one_node_by_hand(&s, &emu);
        let hw = s.admin().get("/v1/nodes/bm-1/hardware").expect(200).body;
        assert_eq!(hw["bmc"]["secure_boot"]["enable"], true, "[{b}] {hw}");
        assert!(hw["bmc"]["bmc_accounts"].is_null(), "[{b}] the emulator has no accounts: {hw}");
        let h =
            ByHand { s: &s, ctl, secrets, tenant, mac: peers::fake_mac(1), gpus: 0, mockup: None };

        let id = h.provision("job");
        // The tenant turns it off (from the UEFI setup, as far as the BMC knows).
        emu.patch(&sb, json!({"SecureBootEnable": false}));
        let l = h.release(&id);
        assert_eq!(l["state"], "available", "[{b}] {l}");
        assert_eq!(emu.get(&sb)["SecureBootEnable"], true, "[{b}] the BMC has it on again");
        let rec = &record(&h, &id, true);
        let c = check(rec, "secure_boot");
        assert_eq!(c["ok"], true, "[{b}] {c}");
        assert_eq!(c["items"][0]["method"], "redfish-patch", "[{b}] {c}");
        assert!(item_detail(c, 0).contains("was off, set back on"), "[{b}] {c}");
        let c = check(rec, "bmc_accounts");
        assert!(c["ok"] == true && item_detail(c, 0).contains("no account service"), "[{b}] {c}");

        // Nothing changed by the next tenant: nothing to restore.
        let id = h.provision("next");
        assert_eq!(h.release(&id)["state"], "available", "[{b}]");
        let rec = &record(&h, &id, true);
        let c = check(rec, "secure_boot");
        assert!(c["ok"] == true && item_detail(c, 0) == "on as in the baseline", "[{b}] {c}");
    }
}

#[test]
fn a_bmc_account_the_tenant_added_is_disabled() {
    let f = fleet();
    for (i, b) in TestBackend::ALL.into_iter().enumerate() {
        let Some(s) = server_without_controller(b) else { continue };
        let b = b.as_str();
        let (h, hw) = simulated_node(&s, &f, i);
        assert_eq!(
            hw["bmc"]["bmc_accounts"],
            json!([{"user_name": "admin", "role_id": "Administrator", "enabled": true}]),
            "[{b}] {hw}"
        );

        let id = h.provision("job");
        // The tenant adds an administrator through the host's IPMI, and
        // turns Secure Boot off.
        f.sim.add_account(i, "eve", "Administrator");
        f.sim.set_secure_boot(i, false);
        let l = h.release(&id);
        assert_eq!(l["state"], "available", "[{b}] {l}");
        assert!(!f.sim.account_enabled(i, "eve"), "[{b}] the tenant's account is disabled");
        assert!(f.sim.account_enabled(i, simbmc::USER), "[{b}] the control plane's is not");
        assert!(f.sim.secure_boot(i), "[{b}] Secure Boot is on again");
        let rec = &record(&h, &id, true);
        let c = check(rec, "bmc_accounts");
        assert_eq!(c["ok"], true, "[{b}] {c}");
        assert_eq!(c["items"][0]["target"], "/redfish/v1/AccountService/Accounts/2", "[{b}] {c}");
        assert_eq!(
            item_detail(c, 0),
            "\"eve\" (role \"Administrator\", not in the baseline) disabled",
            "[{b}] {c}"
        );
        assert!(item_detail(c, 1).contains("1 enabled account(s) as in the baseline"), "[{b}] {c}");
        assert!(item_detail(check(rec, "secure_boot"), 0).contains("set back on"), "[{b}]");
    }
}

/// `bmc_accounts = exclusive`: the control plane's account is the BMC's
/// only enabled one. A clean inspection disables the provider's other
/// accounts (a password a tenant could set on them in-band would open the
/// BMC after its tenancy), and every sanitization disables any found
/// enabled again.
#[test]
fn exclusive_bmc_accounts_leave_the_control_planes_alone() {
    use neocloud_server::config::BmcAccountPolicy;
    let f = fleet();
    for (i, b) in TestBackend::ALL.into_iter().enumerate() {
        let Some(s) = server_without_controller(b) else { continue };
        let b = b.as_str();
        // The provider's operator account, as the BMC came.
        f.sim.add_account(i, "operator", "Operator");
        let (h, hw) =
            simulated_node_with(&s, &f, i, |c| c.bmc_accounts = BmcAccountPolicy::Exclusive);
        assert!(!f.sim.account_enabled(i, "operator"), "[{b}] disabled at inspection");
        assert!(f.sim.account_enabled(i, simbmc::USER), "[{b}] the control plane's kept");
        let users = bmc_accounts(&hw);
        assert_eq!(users, [(simbmc::USER, true), ("operator", false)], "[{b}] as left");
        let trail = s.admin().get("/v1/audit?limit=1000").expect(200).text;
        assert!(trail.contains("\"node_bmc_accounts_disabled\""), "[{b}] audited");

        let id = h.provision("job");
        // The tenant enables the operator account in-band (and sets its
        // password, which Redfish does not show).
        f.sim.set_account_enabled(i, "operator", true);
        let l = h.release(&id);
        assert_eq!(l["state"], "available", "[{b}] {l}");
        assert!(!f.sim.account_enabled(i, "operator"), "[{b}] disabled again");
        let rec = &record(&h, &id, true);
        let c = check(rec, "bmc_accounts");
        assert_eq!(c["ok"], true, "[{b}] {c}");
        assert_eq!(c["items"][0]["target"], "/redfish/v1/AccountService/Accounts/2", "[{b}] {c}");
        assert_eq!(
            item_detail(c, 0),
            "\"operator\" (role \"Operator\", not the control plane's (bmc_accounts = exclusive)) \
             disabled",
            "[{b}] {c}"
        );
        assert_eq!(
            item_detail(c, 1),
            "1 enabled account(s): the control plane's (bmc_accounts = exclusive)",
            "[{b}] {c}"
        );
    }
}

/// The server's `bmc_accounts` reaches its own lifecycle controller.
#[test]
fn the_servers_configuration_sets_the_account_policy() {
    use neocloud_server::config::BmcAccountPolicy;
    let f = fleet();
    for (i, b) in TestBackend::ALL.into_iter().enumerate() {
        let Some(s) = common::TestServer::start_with(b, |c| {
            tweak(c, 30);
            c.bmc_accounts = BmcAccountPolicy::Exclusive;
        }) else {
            continue;
        };
        f.sim.add_account(i, "operator", "Operator");
        enroll_simulated(&s, &f, i);
        common::nodes::wait_node(&s, "bm-1", "available", None);
        assert!(!f.sim.account_enabled(i, "operator"), "[{}] disabled", b.as_str());
    }
}

/// Under `exclusive`, a BMC that keeps another account enabled (sushy-static
/// takes the PATCH and changes nothing) fails the node at inspection: it
/// never joins the pool.
#[test]
fn a_bmc_that_keeps_other_accounts_fails_an_exclusive_inspection() {
    use neocloud_server::config::BmcAccountPolicy;
    let mockup = peers::mockup_copy_logs_cleared("dgx-h100");
    let Some(bmc) = peers::StaticBmc::start_dir(mockup.path()) else { return };
    for b in TestBackend::ALL {
        let Some(s) = server_without_controller(b) else { continue };
        let b = b.as_str();
        enroll_static(&s, &bmc.url, "bm-1", "neocloud");
        let (mut ctl, secrets) = controller(&s);
        ctl.bmc_accounts = BmcAccountPolicy::Exclusive;
        drive(&ctl, &secrets, &s, "bm-1", "failed");
        let l = lifecycle(&s, "bm-1");
        assert_eq!(
            l["reason"],
            "the BMC keeps an account other than the control plane's enabled (bmc_accounts = \
             exclusive): \"admin\" still enabled after disabling it; \"monitor\" still enabled \
             after disabling it",
            "[{b}] {l}"
        );
        assert_eq!(free_nodes(&s), 0, "[{b}]");
        // Enrolled with an account the BMC does not have enabled: refused
        // before anything is changed (every other one would be disabled).
        s.admin().delete("/v1/nodes/bm-1").expect(204);
        enroll_static(&s, &bmc.url, "bm-2", "service");
        drive(&ctl, &secrets, &s, "bm-2", "failed");
        assert_eq!(
            lifecycle(&s, "bm-2")["reason"],
            "the control plane's account \"service\" is not among the BMC's enabled accounts \
             (bmc_accounts = exclusive)",
            "[{b}]"
        );
        s.admin().delete("/v1/nodes/bm-2").expect(204);
    }
}

#[test]
fn an_account_the_bmc_does_not_disable_fails_the_sanitization() {
    let mockup = peers::mockup_copy_logs_cleared("dgx-h100");
    let Some(bmc) = peers::StaticBmc::start_dir(mockup.path()) else { return };
    let accounts = mockup.path().join("AccountService/Accounts");
    let listed = std::fs::read_to_string(accounts.join("index.json")).unwrap();
    for b in TestBackend::ALL {
        let Some(s) = server_without_controller(b) else { continue };
        let b = b.as_str();
        std::fs::write(accounts.join("index.json"), &listed).unwrap();
        let (h, hw) = static_node(&s, &bmc.url, mockup.path());
        let users = bmc_accounts(&hw);
        assert_eq!(
            users,
            [("admin", true), ("monitor", true), ("neocloud", true), ("service", false)],
            "[{b}]"
        );

        let id = h.provision("job");
        // The tenant adds an administrator in-band; this BMC will not
        // disable it (sushy-static takes the PATCH and changes nothing).
        let eve = accounts.join("eve");
        std::fs::create_dir_all(&eve).unwrap();
        std::fs::write(
            eve.join("index.json"),
            json!({"@odata.id": "/redfish/v1/AccountService/Accounts/eve", "Id": "eve",
                   "UserName": "eve", "RoleId": "Administrator", "Enabled": true})
            .to_string(),
        )
        .unwrap();
        let mut list: Value = serde_json::from_str(&listed).unwrap();
        list["Members"]
            .as_array_mut()
            .unwrap()
            .push(json!({"@odata.id": "/redfish/v1/AccountService/Accounts/eve"}));
        std::fs::write(accounts.join("index.json"), list.to_string()).unwrap();

        let l = h.release(&id);
        assert_eq!(l["state"], "failed", "[{b}] {l}");
        assert!(
            l["reason"].as_str().unwrap().contains("sanitization incomplete: bmc_accounts failed"),
            "[{b}] {l}"
        );
        let rec = &record(&h, &id, false);
        let c = check(rec, "bmc_accounts");
        assert_eq!(c["ok"], false, "[{b}] {c}");
        assert_eq!(c["items"][0]["target"], "/redfish/v1/AccountService/Accounts/eve", "[{b}]");
        assert!(item_detail(c, 0).contains("still enabled after disabling it"), "[{b}] {c}");
        // Everything else was in order; the node is out of the pool.
        for name in ["firmware_baseline", "secure_boot", "clear_boot_override", "reset_gpus"] {
            assert_eq!(check(rec, name)["ok"], true, "[{b}] {name}: {rec}");
        }
        assert!(
            item_detail(check(rec, "secure_boot"), 0).contains("on as in the baseline"),
            "[{b}]"
        );
        assert_eq!(free_nodes(&s), 0, "[{b}]");
        std::fs::remove_dir_all(&eve).unwrap();
    }
}

#[test]
fn bios_settings_a_tenant_changed_are_applied_back_by_the_sanitizers_boot() {
    let f = fleet();
    for (i, b) in TestBackend::ALL.into_iter().enumerate() {
        let Some(s) = server_without_controller(b) else { continue };
        let b = b.as_str();
        let (h, hw) = simulated_node(&s, &f, i);
        assert_eq!(hw["bmc"]["bios"]["SriovGlobalEnable"], "Enabled", "[{b}] {hw}");

        let id = h.provision("job");
        // The tenant turns SR-IOV off with a vendor tool (in effect at
        // once), and stages a NUMA change for the next boot.
        f.sim.set_bios_attribute(i, "SriovGlobalEnable", json!("Disabled"));
        f.sim.stage_bios_attribute(i, "NumaNodesPerSocket", json!(4));
        let l = h.release(&id);
        assert_eq!(l["state"], "available", "[{b}] {l}");
        assert_eq!(f.sim.bios_attribute(i, "SriovGlobalEnable"), Some(json!("Enabled")), "[{b}]");
        assert_eq!(
            f.sim.bios_attribute(i, "NumaNodesPerSocket"),
            Some(json!(1)),
            "[{b}] the tenant's staged value never took effect"
        );
        let rec = &record(&h, &id, true);
        let c = check(rec, "bios");
        assert_eq!(c["ok"], true, "[{b}] {c}");
        // What the tenant changed and the release staged back, in the record.
        assert_eq!(c["items"][0]["target"], "NumaNodesPerSocket", "[{b}] {c}");
        assert_eq!(
            item_detail(c, 0),
            "was 4, staged back to 1 before the sanitizer's boot: applied",
            "[{b}] {c}"
        );
        assert_eq!(
            item_detail(c, 1),
            "was \"Disabled\", staged back to \"Enabled\" before the sanitizer's boot: applied",
            "[{b}] {c}"
        );
        assert_eq!(item_detail(c, 2), "6 attribute(s) as in the baseline", "[{b}] {c}");
        let trail = s.admin().get("/v1/audit?limit=1000").expect(200).text;
        assert!(trail.contains("node_bios_staged"), "[{b}] the change is audited");

        // The next tenant changes nothing: nothing is staged, all as before.
        let id = h.provision("next");
        assert_eq!(h.release(&id)["state"], "available", "[{b}]");
        let c = check(&record(&h, &id, true), "bios").clone();
        assert_eq!(item_detail(&c, 0), "6 attribute(s) as in the baseline", "[{b}] {c}");

        // A read-only attribute changed with the hardware (a DIMM lost):
        // the BMC refuses the staged value, yet the sanitizer still runs
        // its steps, and the check names the attribute.
        let id = h.provision("third");
        f.sim.set_bios_attribute(i, "SysMemSize", json!("1024 GB"));
        let l = h.release(&id);
        assert_eq!(l["state"], "failed", "[{b}] {l}");
        let rec = &record(&h, &id, false);
        let c = check(rec, "bios");
        assert_eq!(c["items"][0]["target"], "SysMemSize", "[{b}] {c}");
        assert!(item_detail(c, 0).contains("\"1024 GB\", baseline \"2048 GB\""), "[{b}] {c}");
        assert_eq!(check(rec, "wipe_disks")["ok"], true, "[{b}] the disks were wiped: {rec}");
    }
}

#[test]
fn a_bios_setting_the_bmc_does_not_apply_fails_the_sanitization() {
    let mockup = peers::mockup_copy_logs_cleared("dgx-h100");
    let Some(bmc) = peers::StaticBmc::start_dir(mockup.path()) else { return };
    let bios_file = mockup.path().join("Systems/DGX/Bios/index.json");
    let as_shipped = std::fs::read_to_string(&bios_file).unwrap();
    for b in TestBackend::ALL {
        let Some(s) = server_without_controller(b) else { continue };
        let b = b.as_str();
        std::fs::write(&bios_file, &as_shipped).unwrap();
        let (h, hw) = static_node(&s, &bmc.url, mockup.path());
        assert_eq!(hw["bmc"]["bios"]["IntelVTforDirectedIO"], "Enabled", "[{b}] {hw}");

        let id = h.provision("job");
        // The tenant turns VT-d off; this BMC takes the staged value back
        // with 204 and keeps nothing (sushy-static), so the sanitizer's
        // boot applies nothing.
        let mut bios: Value = serde_json::from_str(&as_shipped).unwrap();
        bios["Attributes"]["IntelVTforDirectedIO"] = json!("Disabled");
        std::fs::write(&bios_file, bios.to_string()).unwrap();
        let l = h.release(&id);
        assert_eq!(l["state"], "failed", "[{b}] {l}");
        assert!(
            l["reason"].as_str().unwrap().contains("sanitization incomplete: bios failed"),
            "[{b}] {l}"
        );
        assert!(
            bmc.log().contains("PATCH /redfish/v1/Systems/DGX/Bios/SD"),
            "[{b}] the baseline value was staged on the settings resource"
        );
        let rec = &record(&h, &id, false);
        let c = check(rec, "bios");
        assert_eq!(c["items"][0]["target"], "IntelVTforDirectedIO", "[{b}] {c}");
        assert!(item_detail(c, 0).contains("\"Disabled\", baseline \"Enabled\""), "[{b}] {c}");
        assert_eq!(c["items"].as_array().unwrap().len(), 1, "[{b}] only the changed one: {c}");
        assert_eq!(free_nodes(&s), 0, "[{b}]");
    }
}

#[test]
fn a_boot_option_the_tenant_added_is_disabled_and_the_boot_order_restored() {
    let f = fleet();
    for (i, b) in TestBackend::ALL.into_iter().enumerate() {
        let Some(s) = server_without_controller(b) else { continue };
        let b = b.as_str();
        let (h, hw) = simulated_node(&s, &f, i);
        assert_eq!(hw["bmc"]["boot_order"], json!(["Boot0001", "Boot0002"]), "[{b}] {hw}");

        let id = h.provision("job");
        // The tenant adds a UEFI HTTP boot of its own and puts it first
        // (efibootmgr): the next tenant's reboots would run its image.
        f.sim.add_boot_option(i, "Boot0007", "tenant image", "MAC(0,0x1)/Uri(http://evil/x.efi)");
        let l = h.release(&id);
        assert_eq!(l["state"], "available", "[{b}] {l}");
        assert_eq!(f.sim.boot_order(i), ["Boot0001", "Boot0002"], "[{b}]");
        assert!(!f.sim.boot_option_enabled(i, "Boot0007"), "[{b}] the tenant's option is disabled");
        assert!(f.sim.boot_option_enabled(i, "Boot0002"), "[{b}] the baseline's are not");
        let rec = &record(&h, &id, true);
        let c = check(rec, "boot_order");
        assert_eq!(c["ok"], true, "[{b}] {c}");
        assert!(item_detail(c, 0).starts_with("Boot0007 \"tenant image\""), "[{b}] {c}");
        assert!(item_detail(c, 0).ends_with("not in the baseline: disabled"), "[{b}] {c}");
        assert_eq!(
            item_detail(c, 1),
            "boot order was Boot0007, Boot0001, Boot0002, set back to Boot0001, Boot0002",
            "[{b}] {c}"
        );

        // The next tenant disables the PXE option: enabled again (the next
        // provision boots by PXE).
        let id = h.provision("next");
        f.sim.set_boot_option_enabled(i, "Boot0001", false);
        assert_eq!(h.release(&id)["state"], "available", "[{b}]");
        assert!(f.sim.boot_option_enabled(i, "Boot0001"), "[{b}]");
        let c = check(&record(&h, &id, true), "boot_order").clone();
        assert_eq!(
            item_detail(&c, 0),
            "Boot0001 \"UEFI PXE IPv4 (simulated NIC)\", disabled: enabled again",
            "[{b}] {c}"
        );

        // Nothing changed by the third tenant.
        let id = h.provision("third");
        assert_eq!(h.release(&id)["state"], "available", "[{b}]");
        let c = &check(&record(&h, &id, true), "boot_order").clone();
        assert_eq!(
            item_detail(c, 0),
            "boot order Boot0001, Boot0002 as in the baseline",
            "[{b}] {c}"
        );
    }
}

#[test]
fn a_boot_order_the_bmc_does_not_take_back_fails_the_sanitization() {
    let mockup = peers::mockup_copy_logs_cleared("dgx-h100");
    let Some(bmc) = peers::StaticBmc::start_dir(mockup.path()) else { return };
    let sys_file = mockup.path().join("Systems/DGX/index.json");
    let as_shipped = std::fs::read_to_string(&sys_file).unwrap();
    for b in TestBackend::ALL {
        let Some(s) = server_without_controller(b) else { continue };
        let b = b.as_str();
        std::fs::write(&sys_file, &as_shipped).unwrap();
        let (h, _) = static_node(&s, &bmc.url, mockup.path());

        let id = h.provision("job");
        // The tenant puts the OS disk first; this BMC takes the order back
        // with 204 and keeps nothing (sushy-static).
        let mut sys: Value = serde_json::from_str(&as_shipped).unwrap();
        sys["Boot"]["BootOrder"] = json!(["Boot0030", "Boot000A", "Boot000B"]);
        std::fs::write(&sys_file, sys.to_string()).unwrap();
        let l = h.release(&id);
        assert_eq!(l["state"], "failed", "[{b}] {l}");
        assert!(
            l["reason"].as_str().unwrap().contains("sanitization incomplete: boot_order failed"),
            "[{b}] {l}"
        );
        let rec = &record(&h, &id, false);
        let c = check(rec, "boot_order");
        let last = c["items"].as_array().unwrap().len() - 1;
        assert!(
            item_detail(c, last).contains(
                "reads Boot0030, Boot000A, Boot000B after setting it to Boot000A, Boot000B, Boot0030"
            ),
            "[{b}] {c}"
        );
        assert_eq!(free_nodes(&s), 0, "[{b}]");
    }
}

/// The control plane's BMC password, as the store holds it (opened), and
/// whether a rotation is in flight.
/// A change the BMC made whose answer never reached the control plane (a
/// lost answer here; a control plane killed right after sending it is the
/// same window, in the SIGKILL test): the pass that runs again finds it
/// done and has nothing of its own to say, yet the change is audited and
/// in the record, from the journal written before it was sent.
#[test]
fn a_bmc_change_whose_answer_is_lost_is_still_audited_and_recorded() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};
    let f = fleet();
    let lost = Arc::new(Mutex::new(Vec::<String>::new()));
    // Answers lost, and of those the ones whose change was journaled first.
    let lost_answers = Arc::new(AtomicUsize::new(0));
    let journaled = Arc::new(AtomicUsize::new(0));
    for (i, b) in TestBackend::ALL.into_iter().enumerate() {
        let Some(s) = server_without_controller(b) else { continue };
        let b = b.as_str();
        {
            // The answers to the first pass's changes of these settings are
            // lost; each change's journal entry must be in the store before
            // the change reaches the BMC.
            let lost = lost.clone();
            let (lost_answers, journaled) = (lost_answers.clone(), journaled.clone());
            let store = s.store.clone();
            f.sim.on_change(move |_, what| {
                let mut l = lost.lock().unwrap();
                let lose = matches!(what, "host_interface" | "secure_boot" | "account" | "bios_settings")
                    // Both tries of the controller's client: the step ends
                    // without an answer, and the next pass goes on.
                    && l.iter().filter(|w| *w == what).count() < 2;
                if lose {
                    l.push(what.to_string());
                    drop(l);
                    lost_answers.fetch_add(1, Ordering::SeqCst);
                    // Off the BMC's runtime: the store's clients block.
                    let store = store.clone();
                    let entries = std::thread::spawn(move || {
                        let sql = "SELECT COUNT(*) FROM nodes \
                                   WHERE bmc_journal IS NOT NULL OR bios_staged IS NOT NULL";
                        store.read(|r| r.query(sql, &[])).unwrap()[0].i64(0).unwrap()
                    })
                    .join()
                    .unwrap();
                    if entries > 0 {
                        journaled.fetch_add(1, Ordering::SeqCst);
                    }
                }
                lose
            });
        }
        lost.lock().unwrap().clear();
        let (h, hw) = simulated_node(&s, &f, i);
        assert_eq!(hw["bmc"]["host_interfaces"][0]["enabled"], false, "[{b}] {hw}");
        assert!(!f.sim.host_interface(i), "[{b}] off");
        let kinds = |l: &Mutex<Vec<String>>| {
            let mut k = l.lock().unwrap().clone();
            k.dedup();
            k
        };
        assert_eq!(kinds(&lost), ["host_interface"], "[{b}] the answers were lost");
        assert_eq!(
            journaled.swap(0, Ordering::SeqCst),
            lost_answers.swap(0, Ordering::SeqCst),
            "[{b}] journaled before it was sent"
        );
        assert!(
            s.admin()
                .get("/v1/audit?limit=1000")
                .expect(200)
                .text
                .contains("\"node_host_interfaces_disabled\""),
            "[{b}] audited, though the pass that audited it found it off"
        );
        let pending = "SELECT COUNT(*) FROM nodes WHERE bmc_journal IS NOT NULL";
        assert_eq!(count(&s, pending), 0, "[{b}] the journal is cleared when recorded");

        let id = h.provision("job");
        // The tenant turns the host interface and Secure Boot off, adds an
        // administrator and changes a BIOS setting.
        f.sim.set_host_interface(i, true);
        f.sim.set_secure_boot(i, false);
        f.sim.add_account(i, "eve", "Administrator");
        f.sim.set_bios_attribute(i, "SriovGlobalEnable", json!("Disabled"));
        lost.lock().unwrap().clear();
        let l = h.release(&id);
        assert_eq!(l["state"], "available", "[{b}] {l}");
        assert_eq!(
            kinds(&lost),
            ["bios_settings", "secure_boot", "account", "host_interface"],
            "[{b}] the first answer to each lost"
        );
        assert_eq!(
            journaled.swap(0, Ordering::SeqCst),
            lost_answers.swap(0, Ordering::SeqCst),
            "[{b}] every change journaled before it was sent"
        );
        assert!(!f.sim.host_interface(i) && f.sim.secure_boot(i), "[{b}]");
        assert!(!f.sim.account_enabled(i, "eve"), "[{b}]");
        let rec = &record(&h, &id, true);
        let lost_item = |name: &str, target: &str| {
            let c = check(rec, name);
            assert_eq!(c["ok"], true, "[{b}] {c}");
            let it = c["items"]
                .as_array()
                .unwrap()
                .iter()
                .find(|it| it["target"] == target && it["method"] == "redfish-patch")
                .unwrap_or_else(|| panic!("[{b}] no item for {target}: {c}"));
            it["detail"].as_str().unwrap().to_string()
        };
        let tail = "by a pass that did not finish (a restart or a lost answer), read back done";
        let d = lost_item("host_interfaces", "/redfish/v1/Managers/BMC/HostInterfaces/1");
        assert!(
            d.starts_with(
                "turn off host interface 1 (NetworkHostInterface), credential bootstrapping \
                 on: sent at "
            ) && d.ends_with(tail),
            "[{b}] {d}"
        );
        let d = lost_item("secure_boot", "/redfish/v1/Systems/Host/SecureBoot");
        assert!(
            d.starts_with("set Secure Boot back on (was off): sent at ") && d.ends_with(tail),
            "[{b}] {d}"
        );
        let d = lost_item("bmc_accounts", "/redfish/v1/AccountService/Accounts/2");
        assert!(
            d.starts_with(
                "disable \"eve\" (role \"Administrator\", not in the baseline): sent at "
            ) && d.ends_with(tail),
            "[{b}] {d}"
        );
        assert_eq!(
            lost_item("bios", "SriovGlobalEnable"),
            "was \"Disabled\", staged back to \"Enabled\" before the sanitizer's boot: applied",
            "[{b}] staged, its answer lost: still in the record"
        );
        assert_eq!(count(&s, pending), 0, "[{b}]");
    }
}

fn stored_password(h: &ByHand<'_>) -> (String, bool) {
    let id = node(h.s, "bm-1")["id"].as_str().unwrap().to_string();
    let rec = h.s.store.read(|r| nodes::bmc(r, &id)).unwrap().expect("a BMC");
    (h.secrets.open(&rec.password_sealed).unwrap(), rec.password_next_sealed.is_some())
}

#[test]
fn every_sanitization_gives_the_bmc_a_new_password_and_a_cut_short_rotation_settles() {
    let f = fleet();
    for (i, b) in TestBackend::ALL.into_iter().enumerate() {
        let Some(s) = server_without_controller(b) else { continue };
        let b = b.as_str();
        let (mut h, _) = simulated_node(&s, &f, i);
        h.ctl.rotate_bmc_password = true;

        let id = h.provision("job");
        assert_eq!(h.release(&id)["state"], "available", "[{b}]");
        let first = f.sim.password(i);
        assert_ne!(first, simbmc::PASSWORD, "[{b}] the BMC has a new password");
        assert_eq!(stored_password(&h), (first.clone(), false), "[{b}] and the store has it");
        let rec = &record(&h, &id, true);
        let c = check(rec, "bmc_password");
        assert_eq!(c["ok"], true, "[{b}] {c}");
        assert_eq!(item_detail(c, 0), "\"admin\": a new password, checked by a login", "[{b}]");
        assert!(!rec.to_string().contains(&first), "[{b}] the record never shows it");
        let hw = s.admin().get("/v1/nodes/bm-1").expect(200).text;
        assert!(!hw.contains(&first), "[{b}] nor the API");

        // The next tenant's provision logs in with it; its release rotates again.
        let id = h.provision("next");
        assert_eq!(h.release(&id)["state"], "available", "[{b}]");
        assert_ne!(f.sim.password(i), first, "[{b}] another new password");
        assert_eq!(stored_password(&h).0, f.sim.password(i), "[{b}]");

        // The BMC takes the new password and its answer is lost: the
        // driver does not send it again (with the old credentials, which
        // the BMC now refuses), and a login with the new one settles it
        // in the same step: the control plane keeps the password the BMC
        // has, and the record says so.
        let sim_node = i;
        f.sim.on_change(move |n, what| n == sim_node && what == "account");
        let id = h.provision("answer-lost");
        let before = f.sim.password(i);
        assert_eq!(h.release(&id)["state"], "available", "[{b}]");
        f.sim.on_change(|_, _| false);
        let now = f.sim.password(i);
        assert_ne!(now, before, "[{b}] the BMC took a new password");
        assert_eq!(stored_password(&h), (now, false), "[{b}] and the store has it");
        let rec = &record(&h, &id, true);
        assert_eq!(check(rec, "bmc_password")["ok"], true, "[{b}] {rec}");

        // A control plane killed after sending a new password, before
        // recording that it works: the next step keeps the one that logs in.
        let node_id = node(&s, "bm-1")["id"].as_str().unwrap().to_string();
        let stage = |pw: &str| {
            let sealed = h.secrets.seal(pw).unwrap();
            s.store.write(|w| nodes::stage_bmc_password(w, &node_id, &sealed)).unwrap();
        };
        stage("Sent2BeforeTheCrash");
        f.sim.set_password(i, "Sent2BeforeTheCrash");
        let id = h.provision("after-a-crash");
        assert_eq!(stored_password(&h), ("Sent2BeforeTheCrash".to_string(), false), "[{b}]");
        // Killed before sending it: the old password stays.
        stage("Never2Sent");
        h.ctl.rotate_bmc_password = false;
        assert_eq!(h.release(&id)["state"], "available", "[{b}]");
        assert_eq!(stored_password(&h), ("Sent2BeforeTheCrash".to_string(), false), "[{b}]");
        let rec = record(&h, &id, true);
        let names = check_names(&rec);
        assert!(!names.contains(&"bmc_password"), "[{b}] rotation off: {names:?}");
    }
}

#[test]
fn a_bmc_without_an_account_service_fails_the_rotation() {
    let Some(emu) = peers::Emulator::start(1) else { return };
    for b in TestBackend::ALL {
        let Some(s) = server_without_controller(b) else { continue };
        let b = b.as_str();
        let (tenant, mut ctl, secrets) = one_node_by_hand(&s, &emu);
        ctl.rotate_bmc_password = true;
        let h =
            ByHand { s: &s, ctl, secrets, tenant, mac: peers::fake_mac(1), gpus: 0, mockup: None };
        let id = h.provision("job");
        let l = h.release(&id);
        assert_eq!(l["state"], "failed", "[{b}] {l}");
        assert!(l["reason"].as_str().unwrap().contains("bmc_password failed"), "[{b}] {l}");
        let rec = &record(&h, &id, false);
        let c = check(rec, "bmc_password");
        assert!(item_detail(c, 0).contains("no account service"), "[{b}] {c}");
        let (pw, pending) = stored_password(&h);
        assert!(!pending && pw == "pw", "[{b}] the enrolled password stays: {pw}");
    }
}

#[test]
fn the_providers_firmware_baseline_fails_inspection_and_sanitization_of_other_versions() {
    let f = fleet();
    let components = |bmc: &str, bios: &str| json!({"BMC": bmc, "BIOS": bios});
    for (i, b) in TestBackend::ALL.into_iter().enumerate() {
        let Some(s) = server_without_controller(b) else { continue };
        let b = b.as_str();
        let tenant = catalog(&s, true);
        enroll_simulated(&s, &f, i);
        let (ctl, secrets) = controller(&s);
        // The provider wants a BMC this node does not run.
        let policy = s
            .admin()
            .post(
                "/v1/firmware-baselines",
                &json!({"name": "sim-hgx", "model": "Simulated HGX H100",
                        "components": components("SIM-BMC-9.9", "SIM-BIOS-1.0")}),
            )
            .expect(201)
            .body;
        drive(&ctl, &secrets, &s, "bm-1", "failed");
        let l = lifecycle(&s, "bm-1");
        assert_eq!(
            l["reason"],
            "firmware differs from the provider's baseline: Simulated HGX H100 (sim-hgx): \
             BMC SIM-BMC-2.1 (want SIM-BMC-9.9)",
            "[{b}] {l}"
        );
        assert_eq!(l["from"], "inspecting", "[{b}] {l}");
        assert_eq!(free_nodes(&s), 0, "[{b}] out of the pool");
        // The node's firmware brought in line (here: the baseline fixed),
        // and inspected again.
        let policy = s
            .admin()
            .patch(
                "/v1/firmware-baselines/sim-hgx",
                &json!({"generation": policy["generation"],
                        "components": components("SIM-BMC-2.1", "SIM-BIOS-1.0")}),
            )
            .expect(200)
            .body;
        s.admin().post("/v1/nodes/bm-1/inspect", &json!({})).expect(202);
        drive(&ctl, &secrets, &s, "bm-1", "available");
        let h = ByHand { s: &s, ctl, secrets, tenant, mac: simbmc::mac(i), gpus: 8, mockup: None };
        let id = h.provision("job");
        assert_eq!(h.release(&id)["state"], "available", "[{b}]");
        let c = check(&record(&h, &id, true), "firmware_baseline").clone();
        assert_eq!(item_detail(&c, 0), "SIM-BIOS-1.0 (the provider's baseline)", "[{b}] {c}");

        // The provider raises its BIOS baseline while a tenant holds the
        // node: its sanitization fails the check (the node's own baseline
        // would pass), and the node goes to no one.
        let id = h.provision("next");
        s.admin()
            .patch(
                "/v1/firmware-baselines/sim-hgx",
                &json!({"generation": policy["generation"],
                        "components": components("SIM-BMC-2.1", "SIM-BIOS-2.0")}),
            )
            .expect(200);
        assert_eq!(h.release(&id)["state"], "failed", "[{b}]");
        let c = check(&record(&h, &id, false), "firmware_baseline").clone();
        assert_eq!(
            item_detail(&c, 0),
            "SIM-BIOS-1.0 differs from the provider's baseline SIM-BIOS-2.0",
            "[{b}] {c}"
        );
    }
}

/// The BMC accounts a node's hardware view lists: user name, enabled.
fn bmc_accounts(hw: &Value) -> Vec<(&str, bool)> {
    hw["bmc"]["bmc_accounts"]
        .as_array()
        .unwrap_or_else(|| panic!("{hw}"))
        .iter()
        .map(|a| (a["user_name"].as_str().unwrap(), a["enabled"].as_bool().unwrap()))
        .collect()
}
