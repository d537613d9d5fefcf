//! A fabric deleted while its controller records what a switch holds: the
//! deletion never fails on a state row written meanwhile, and the record of
//! a gone fabric's switch is dropped, on both backends.

mod common;

use common::*;
use neocloud_store::fabrics;
use neocloud_types::FabricSpec;
use std::sync::mpsc;
use std::time::Duration;

fn spec() -> FabricSpec {
    serde_json::from_value(serde_json::json!({"kind": "ethernet"})).unwrap()
}

#[test]
fn a_switch_state_recorded_during_a_fabric_deletion_is_dropped() {
    each_backend(|store, b| {
        let f = store.write(|w| fabrics::create(w, "dc1", "ethernet", &spec(), "")).unwrap();
        store.write(|w| fabrics::record_status(w, &f.id, "leaf1", "in_sync", None)).unwrap();
        let (deleting, deleted) = mpsc::channel();
        std::thread::scope(|s| {
            s.spawn(|| {
                store
                    .write(|w| {
                        fabrics::delete(w, &f.id)?;
                        // The deletion holds its rows while the controller
                        // records the first state of another switch.
                        deleting.send(()).unwrap();
                        std::thread::sleep(Duration::from_millis(300));
                        Ok(())
                    })
                    .unwrap_or_else(|e| panic!("[{b}] the deletion: {e:?}"));
            });
            deleted.recv().unwrap();
            store
                .write(|w| fabrics::record_status(w, &f.id, "leaf2", "error", Some("down")))
                .unwrap_or_else(|e| panic!("[{b}] the status of a deleted fabric: {e:?}"));
            let applied =
                store.write(|w| fabrics::record_applied(w, &f.id, "leaf3", "{}", 4, "in_sync"));
            assert_eq!(applied.map_err(|e| format!("{e:?}")), Ok(false), "[{b}]");
        });
        assert_eq!(count(store, "fabrics", &[]), 0, "[{b}]");
        assert_eq!(count(store, "switch_states", &[]), 0, "[{b}]");
    });
}
