//! The node MAC index (how the boot service finds a booting node) and the
//! SQLite reader pool under many concurrent reads. On both backends.

mod common;

use common::*;
use neocloud_store::nodes;
use neocloud_types::{BmcInventory, InventorySecureBoot, NodeCreate, PlatformBaseline};
use serde_json::json;
use std::sync::mpsc;
use std::time::Duration;

fn node(name: &str, mac: &str) -> NodeCreate {
    serde_json::from_value(json!({
        "name": name, "site": "s", "pod": "p", "su": "su", "rack": "r",
        "gpu_model": "h100-80gb", "gpus": 8,
        "nics": [{"name": "eth0", "rail": 0, "fabric": "f", "switch": "sw", "port": "1", "mac": mac}]
    }))
    .unwrap()
}

/// Records an inspection of node `id` that found `macs` (and nothing else).
fn record_macs(
    store: &neocloud_store::Store,
    id: &str,
    macs: &[&str],
) -> neocloud_common::Result<()> {
    let macs: Vec<String> = macs.iter().map(|m| m.to_string()).collect();
    let inv = BmcInventory::default();
    let found = nodes::Inspected {
        gpus: None,
        macs: &macs,
        firmware: &[],
        platform: &PlatformBaseline::default(),
        inventory: &inv,
    };
    store.write(|w| nodes::record_inventory(w, id, &found))
}

#[test]
fn nodes_are_found_by_declared_and_inspected_macs() {
    each_backend(|store, b| {
        let a = store.write(|w| nodes::create(w, &node("a", "AA:00:00:00:00:01"), None)).unwrap();
        let other =
            store.write(|w| nodes::create(w, &node("b", "aa:00:00:00:00:02"), None)).unwrap();
        let find =
            |mac: &str| store.read(|r| nodes::by_mac(r, mac)).unwrap().map(|n| n.name.to_string());
        // Declared, whatever the case.
        assert_eq!(find("aa:00:00:00:00:01").as_deref(), Some("a"), "[{b}]");
        assert_eq!(find("AA:00:00:00:00:02").as_deref(), Some("b"), "[{b}]");
        assert_eq!(find("aa:00:00:00:00:09"), None, "[{b}]");
        // Inspected MACs join the declared ones.
        let inspected = |macs: &[&str]| record_macs(store, &a.id, macs).unwrap();
        inspected(&["bb:00:00:00:00:01", "BB:00:00:00:00:02"]);
        assert_eq!(find("bb:00:00:00:00:02").as_deref(), Some("a"), "[{b}]");
        assert_eq!(find("aa:00:00:00:00:01").as_deref(), Some("a"), "[{b}]");
        // Inspected again with other MACs: the old ones no longer lead to it.
        inspected(&["cc:00:00:00:00:01"]);
        assert_eq!(find("bb:00:00:00:00:02"), None, "[{b}]");
        assert_eq!(find("cc:00:00:00:00:01").as_deref(), Some("a"), "[{b}]");
        // A deleted node is found by none of its MACs.
        store.write(|w| nodes::delete(w, &other.id)).unwrap();
        assert_eq!(find("aa:00:00:00:00:02"), None, "[{b}]");
    });
}

/// A clean node's inspection records its firmware and platform baselines;
/// a dirty node's (one a tenant held) never replaces them.
#[test]
fn only_a_clean_inspection_records_the_baselines() {
    each_backend(|store, b| {
        let a = store.write(|w| nodes::create(w, &node("a", "aa:00:00:00:00:01"), None)).unwrap();
        assert_eq!(store.read(|r| nodes::platform_baseline(r, &a.id)).unwrap(), None, "[{b}]");
        let inspect = |on: bool, bios: &str| {
            let platform = PlatformBaseline {
                secure_boot: Some(InventorySecureBoot { enable: on, mode: None }),
                bmc_accounts: Some(vec![]),
                bios: Some(
                    [(
                        "SriovGlobalEnable".to_string(),
                        serde_json::json!(if on { "Enabled" } else { "Disabled" }),
                    )]
                    .into(),
                ),
                ..PlatformBaseline::default()
            };
            let firmware = [("BIOS".to_string(), bios.to_string())];
            let found = nodes::Inspected {
                gpus: None,
                macs: &[],
                firmware: &firmware,
                platform: &platform,
                inventory: &BmcInventory::default(),
            };
            store.write(|w| nodes::record_inventory(w, &a.id, &found)).unwrap();
        };
        let baselines = || {
            store
                .read(|r| {
                    let platform = nodes::platform_baseline(r, &a.id)?;
                    let sriov = platform
                        .as_ref()
                        .and_then(|p| p.bios.as_ref())
                        .and_then(|b| b.get("SriovGlobalEnable").cloned());
                    Ok((
                        platform.and_then(|p| p.secure_boot).map(|s| s.enable),
                        sriov,
                        nodes::firmware_baseline(r, &a.id)?,
                    ))
                })
                .unwrap()
        };
        inspect(true, "1.0");
        let clean = (
            Some(true),
            Some(serde_json::json!("Enabled")),
            vec![("BIOS".to_string(), "1.0".to_string())],
        );
        assert_eq!(baselines(), clean, "[{b}]");
        store.write(|w| nodes::set_dirty(w, &a.id, Some(("t", "i")))).unwrap();
        inspect(false, "6.6");
        assert_eq!(baselines(), clean, "[{b}] a tenant's changes never become the baseline");
        store.write(|w| nodes::set_dirty(w, &a.id, None)).unwrap();
        inspect(false, "1.1");
        assert_eq!(
            baselines(),
            (Some(false), Some(serde_json::json!("Disabled")), vec![("BIOS".into(), "1.1".into())]),
            "[{b}]"
        );
        // A baseline recorded before BIOS attributes were: read without them.
        store
            .write(|w| {
                w.execute(
                    "UPDATE nodes SET platform_baseline = ? WHERE id = ?",
                    neocloud_store::vals![r#"{"secure_boot":null,"bmc_accounts":[]}"#, &a.id],
                )?;
                Ok(())
            })
            .unwrap();
        let old = store.read(|r| nodes::platform_baseline(r, &a.id)).unwrap().expect("read");
        assert_eq!((old.bios, old.bmc_accounts), (None, Some(vec![])), "[{b}]");
    });
}

/// The controller's transition is refused when the provider changed the
/// node since the controller read it (here: lifted the maintenance the
/// controller was about to act on), and taken from the fresh record.
#[test]
fn a_transition_decided_on_a_record_the_provider_changed_is_refused() {
    use neocloud_placement::Availability;
    use neocloud_types::NodeLifecycle;
    each_backend(|store, b| {
        let n = store.write(|w| nodes::create(w, &node("a", "aa:00:00:00:00:01"), None)).unwrap();
        let g = n.generation;
        let read = store
            .write(|w| nodes::update(w, &n.id, g, Availability::Maintenance, None, None))
            .unwrap();
        // The controller read `read` (maintenance); the provider lifts it.
        store
            .write(|w| {
                nodes::update(w, &n.id, read.generation, Availability::Schedulable, None, None)
            })
            .unwrap();
        let to = NodeLifecycle::Maintenance;
        let from = (&read.lifecycle, read.generation);
        let moved = store.write(|w| nodes::transition(w, &n.id, from, &to)).unwrap();
        assert!(!moved, "[{b}] a stale record moves nothing");
        let fresh = store.read(|r| nodes::get(r, &n.id)).unwrap();
        assert_eq!(fresh.lifecycle, NodeLifecycle::Available, "[{b}]");
        let from = (&fresh.lifecycle, fresh.generation);
        let moved = store.write(|w| nodes::transition(w, &n.id, from, &to)).unwrap();
        assert!(moved, "[{b}] the fresh record moves it");
    });
}

/// Many more concurrent reads than pooled connections all complete, and
/// reads nested in reads never wait on each other forever.
///
/// Two phases, so that what is asserted does not depend on scheduling:
/// flat reads (three times the pool's connections) all succeed on both
/// backends; then nested reads: on SQLite they all succeed, on PostgreSQL
/// (one pool for reads and writes) an inner read that finds every
/// connection taken fails as unavailable after the pool's wait (and so may
/// a read queued behind those that hold them), none hangs, and the pool
/// serves reads again afterwards.
#[test]
fn many_concurrent_and_nested_reads_complete() {
    each_backend(|store, b| {
        store.write(|w| nodes::create(w, &node("a", "aa:00:00:00:00:01"), None)).unwrap();
        let read = |nested: bool| {
            store.read(|r| {
                std::thread::sleep(Duration::from_millis(20));
                let n = nodes::by_mac(r, "aa:00:00:00:00:01")?;
                if nested {
                    // A second read while holding the first.
                    return store.read(|r2| nodes::by_mac(r2, "aa:00:00:00:00:01"));
                }
                Ok(n)
            })
        };
        let run = |nested: bool| {
            let (tx, rx) = mpsc::channel();
            std::thread::scope(|s| {
                for _ in 0..48 {
                    let tx = tx.clone();
                    s.spawn(move || tx.send(read(nested).map(|n| n.is_some())).unwrap());
                }
                (0..48)
                    .map(|_| rx.recv_timeout(Duration::from_secs(60)).expect("a read hung"))
                    .collect::<Vec<_>>()
            })
        };
        for got in run(false) {
            assert!(got.unwrap_or_else(|e| panic!("[{b}] a flat read failed: {e}")), "[{b}]");
        }
        let mut unavailable = 0;
        for got in run(true) {
            match got {
                Ok(found) => assert!(found, "[{b}]"),
                Err(neocloud_common::Error::Unavailable { .. }) if b == "postgres" => {
                    unavailable += 1
                }
                Err(e) => panic!("[{b}] {e}"),
            }
        }
        if b == "sqlite" {
            assert_eq!(unavailable, 0);
        }
        // Whatever timed out, the pool is whole again.
        assert!(read(false).unwrap().is_some(), "[{b}]");
        assert!(read(true).unwrap().is_some(), "[{b}]");
    });
}

/// Firmware-update slots are claimed in the write that marks an update
/// sent: of many nodes claiming at the same moment (on PostgreSQL each in
/// its own transaction, as replicas do), never more than the limit get one.
#[test]
fn firmware_slots_are_never_over_claimed() {
    const NODES: usize = 8;
    const LIMIT: i64 = 3;
    each_backend(|store, b| {
        let ids: Vec<String> = (0..NODES)
            .map(|i| {
                let n = node(&format!("n{i}"), &format!("aa:00:00:00:01:{i:02x}"));
                let id = store.write(|w| nodes::create(w, &n, None)).unwrap().id;
                store
                    .write(|w| {
                        w.execute(
                            "UPDATE nodes SET lifecycle_state = 'releasing' WHERE id = ?",
                            neocloud_store::vals![id.as_str()],
                        )?;
                        Ok(())
                    })
                    .unwrap();
                id
            })
            .collect();
        let sent = r#"[{"state":"sent"}]"#;
        for round in 0..5 {
            let start = std::sync::Barrier::new(NODES);
            let claimed: usize = std::thread::scope(|s| {
                let handles: Vec<_> = ids
                    .iter()
                    .map(|id| {
                        let start = &start;
                        s.spawn(move || {
                            start.wait();
                            store
                                .write(|w| {
                                    if nodes::claim_firmware_slot(w, id, LIMIT)?.is_err() {
                                        return Ok(false);
                                    }
                                    // What counts as in flight, as the
                                    // controller writes it.
                                    w.execute(
                                        "UPDATE nodes SET firmware_updates = ? WHERE id = ?",
                                        neocloud_store::vals![sent, id.as_str()],
                                    )?;
                                    Ok(true)
                                })
                                .unwrap()
                        })
                    })
                    .collect();
                handles.into_iter().map(|h| h.join().unwrap()).filter(|c| *c).count()
            });
            assert_eq!(claimed, LIMIT as usize, "[{b}] round {round}");
            let holding = store
                .read(|r| {
                    r.query("SELECT COUNT(*) FROM nodes WHERE firmware_updates IS NOT NULL", &[])
                })
                .unwrap()[0]
                .i64(0)
                .unwrap();
            assert_eq!(holding, LIMIT, "[{b}] round {round}");
            store
                .write(|w| {
                    w.execute("UPDATE nodes SET firmware_updates = NULL", &[])?;
                    Ok(())
                })
                .unwrap();
        }
    });
}

/// A MAC is one node's: the boot service finds a node by the MAC it boots
/// from. Declared and inspected MACs another node has are refused, naming
/// where this node has it; nothing is written.
#[test]
fn a_mac_another_node_has_is_refused() {
    each_backend(|store, b| {
        let a = store.write(|w| nodes::create(w, &node("a", "aa:00:00:00:00:01"), None)).unwrap();
        let e =
            store.write(|w| nodes::create(w, &node("b", "AA:00:00:00:00:01"), None)).unwrap_err();
        assert!(
            matches!(&e, neocloud_common::Error::AlreadyExists { field, .. } if field == "nics[0].mac"),
            "[{b}] {e:?}"
        );
        let other =
            store.write(|w| nodes::create(w, &node("b", "aa:00:00:00:00:02"), None)).unwrap();
        assert_eq!(
            store.read(|r| nodes::mac_owner(r, "AA:00:00:00:00:01", &other.id)).unwrap().as_deref(),
            Some("a"),
            "[{b}]"
        );
        assert_eq!(store.read(|r| nodes::mac_owner(r, "aa:00:00:00:00:01", &a.id)).unwrap(), None);
        // Inspected: b's BMC reports a's MAC.
        let e = record_macs(store, &other.id, &["aa:00:00:00:00:01"]).unwrap_err();
        assert!(
            matches!(&e, neocloud_common::Error::AlreadyExists { field, .. } if field == "macs"),
            "[{b}] {e:?}"
        );
        let found = |mac: &str| store.read(|r| nodes::by_mac(r, mac)).unwrap().map(|n| n.name);
        assert_eq!(found("aa:00:00:00:00:02").as_deref(), Some("b"), "[{b}] b's index kept");
    });
}

/// A firmware update is written as sent only if the stored updates are as
/// the writer read them: a second replica that read the same plan does
/// not write (and send) it again.
#[test]
fn a_firmware_send_is_written_once_by_whichever_replica_is_first() {
    each_backend(|store, b| {
        let a = store.write(|w| nodes::create(w, &node("a", "aa:00:00:00:00:01"), None)).unwrap();
        let planned: neocloud_types::FirmwareUpdate = serde_json::from_value(json!({
            "component": "BIOS", "target": "/redfish/v1/UpdateService/FirmwareInventory/BIOS",
            "from": "1.0", "to": "1.1", "image": "http://fw/bios.bin", "state": "planned"
        }))
        .unwrap();
        store
            .write(|w| nodes::set_firmware_updates(w, &a.id, Some(std::slice::from_ref(&planned))))
            .unwrap();
        let mut sent = planned.clone();
        sent.state = neocloud_types::FirmwareUpdateState::Sent;
        sent.sends = 1;
        let as_read = |now: &[neocloud_types::FirmwareUpdate]| {
            now.first().is_some_and(|u| u.state == planned.state && u.sends == planned.sends)
        };
        let first = store
            .write(|w| nodes::set_firmware_updates_if(w, &a.id, as_read, &[sent.clone()]))
            .unwrap();
        assert!(first, "[{b}]");
        let second = store
            .write(|w| nodes::set_firmware_updates_if(w, &a.id, as_read, &[sent.clone()]))
            .unwrap();
        assert!(!second, "[{b}] read planned, stored sent: not written again");
        let now = store.read(|r| nodes::firmware_updates(r, &a.id)).unwrap().unwrap();
        assert_eq!(now[0].sends, 1, "[{b}]");
    });
}

/// One BMC password rotation at a time: a new password is staged only
/// where none is (another's in flight is settled first).
#[test]
fn a_bmc_password_is_staged_only_where_none_is() {
    each_backend(|store, b| {
        let mut p = node("a", "aa:00:00:00:00:01");
        p.bmc = serde_json::from_value(
            json!({"endpoint": "https://bmc-a", "username": "admin", "password": "pw"}),
        )
        .unwrap();
        let a = store.write(|w| nodes::create(w, &p, Some("sealed-0"))).unwrap();
        let stage = |s: &str| store.write(|w| nodes::stage_bmc_password(w, &a.id, s)).unwrap();
        assert!(stage("sealed-1"), "[{b}]");
        assert!(!stage("sealed-2"), "[{b}] one in flight");
        let rec = store.read(|r| nodes::bmc(r, &a.id)).unwrap().unwrap();
        assert_eq!(rec.password_next_sealed.as_deref(), Some("sealed-1"), "[{b}]");
        store.write(|w| nodes::drop_bmc_password(w, &a.id, "sealed-1")).unwrap();
        assert!(stage("sealed-2"), "[{b}]");
        assert!(store.write(|w| nodes::promote_bmc_password(w, &a.id, "sealed-2")).unwrap());
        let rec = store.read(|r| nodes::bmc(r, &a.id)).unwrap().unwrap();
        assert_eq!((rec.password_sealed.as_str(), rec.password_next_sealed), ("sealed-2", None));
    });
}

/// An engine rebuild reads nodes and allocations narrowly
/// (`nodes::list_specs`, `allocations::list_active_placements`): what it
/// reads is what the full records give placement, in every lifecycle state
/// and with either availability.
#[test]
fn placement_reads_nodes_and_allocations_as_their_full_records_give_them() {
    use neocloud_placement::Availability;
    use neocloud_types::NodeLifecycle;
    let states = [
        json!({"state": "enrolling"}),
        json!({"state": "inspecting"}),
        json!({"state": "available"}),
        json!({"state": "provisioning", "tenant_id": "t", "instance_id": "i", "step": "power_cycle"}),
        json!({"state": "active", "tenant_id": "t", "instance_id": "i"}),
        json!({"state": "releasing", "tenant_id": "t", "instance_id": "i", "step": "set_boot"}),
        json!({"state": "sanitizing", "step": "agent_steps"}),
        json!({"state": "maintenance"}),
        json!({"state": "failed", "reason": "r", "from": "inspecting"}),
    ];
    each_backend(|store, b| {
        for (i, state) in states.iter().enumerate() {
            for (k, availability) in
                [Availability::Schedulable, Availability::Maintenance].into_iter().enumerate()
            {
                let mac = format!("aa:00:00:00:{i:02x}:{k:02x}");
                let n = store
                    .write(|w| nodes::create(w, &node(&format!("n{i}-{k}"), &mac), None))
                    .unwrap();
                let n = store
                    .write(|w| nodes::update(w, &n.id, n.generation, availability, None, None))
                    .unwrap();
                let to: NodeLifecycle = serde_json::from_value(state.clone()).unwrap();
                let from = (&n.lifecycle, n.generation);
                assert!(store.write(|w| nodes::transition(w, &n.id, from, &to)).unwrap(), "[{b}]");
            }
        }
        let full: Vec<_> = store.read(nodes::list).unwrap().iter().map(nodes::spec).collect();
        let narrow = store.read(nodes::list_specs).unwrap();
        assert_eq!(narrow, full, "[{b}]");
        let seen: std::collections::BTreeSet<_> =
            narrow.iter().map(|s| format!("{:?}", s.availability)).collect();
        assert_eq!(seen.len(), 3, "[{b}] every availability placement knows: {seen:?}");
    });
}
