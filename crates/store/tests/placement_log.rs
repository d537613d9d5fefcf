//! The placement log keeps the last `KEEP` writes, in generation order,
//! on both backends.

use neocloud_store::placement_log::{self, KEEP};
use neocloud_store::testing::{fresh_db, TestBackend};
use neocloud_store::Store;

#[test]
fn the_log_reads_a_range_in_order_and_keeps_the_last_writes() {
    for backend in TestBackend::ALL {
        let Some(db) = fresh_db(backend) else { continue };
        let b = backend.as_str();
        let store = Store::open(&db.url).unwrap();
        let last = KEEP + 10;
        store
            .write(|w| {
                for g in 1..=last {
                    placement_log::record(w, g - 1, g, &format!("[{g}]"))?;
                }
                Ok(())
            })
            .unwrap();
        let range = store.read(|r| placement_log::between(r, last - 3, last - 1)).unwrap();
        assert_eq!(
            range.iter().map(|e| (e.since, e.generation, e.effects.as_str())).collect::<Vec<_>>(),
            vec![
                (last - 3, last - 2, format!("[{}]", last - 2).as_str()),
                (last - 2, last - 1, format!("[{}]", last - 1).as_str())
            ],
            "[{b}]"
        );
        let all = store.read(|r| placement_log::between(r, 0, last)).unwrap();
        assert_eq!(all.len() as i64, KEEP, "[{b}] older rows forgotten");
        assert_eq!(all.first().map(|e| e.generation), Some(last - KEEP + 1), "[{b}]");
        // A generation logged twice is refused (one write per generation).
        assert!(store.write(|w| placement_log::record(w, last - 1, last, "[]")).is_err(), "[{b}]");
    }
}
