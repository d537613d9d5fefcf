//! Allocation holds as bit masks: the migration that turned the unit rows
//! into masks keeps every hold, and the masks refuse a unit held twice.

mod common;

use common::*;
use neocloud_common::ErrorCode;
use neocloud_placement::{Constraints, Placement};
use neocloud_store::testing::{fresh_db, TestBackend};
use neocloud_store::{allocation_holds, allocations, instance_types, nodes, vals, Store};
use neocloud_types::{AllocationKind, InstanceKind, NodeCreate};

fn node(store: &Store, name: &str) -> String {
    let n: NodeCreate = serde_json::from_value(serde_json::json!({
        "name": name, "site": "s", "pod": "p", "su": "su", "rack": "r",
        "gpu_model": "h100-80gb", "gpus": 8
    }))
    .unwrap();
    store.write(|w| nodes::create(w, &n, None)).unwrap().id
}

fn bare_metal_type(store: &Store) -> String {
    let new = instance_types::NewInstanceType {
        name: "bm",
        kind: InstanceKind::BareMetal,
        gpu_model: "h100-80gb",
        gpus: 8,
        mig_profile: None,
        vcpus: 1,
        memory_gib: 1,
        description: "",
    };
    store.write(|w| instance_types::create(w, &new)).unwrap().id
}

/// An allocation of one, holding `units`, in project `owner` ((tenant,
/// project, instance type)).
fn allocation<'a>(
    (tenant_id, project_id, instance_type_id): (&'a str, &'a str, &'a str),
    id: &'a str,
    constraints: &'a Constraints,
    placement: &'a Placement,
    units: &'a [allocation_holds::Unit],
) -> allocations::NewAllocation<'a> {
    allocations::NewAllocation {
        id,
        tenant_id,
        project_id,
        instance_type_id,
        kind: AllocationKind::Allocation,
        reservation_id: None,
        count: 1,
        constraints,
        placement,
        claim_id: "claim",
        units,
    }
}

/// Holds of nodes, `(allocation, node, word, mask)`, in order.
fn holds(store: &Store) -> Vec<(String, String, i64, i64)> {
    let rows = store
        .read(|r| {
            r.query(
                "SELECT allocation_id, node_id, word, mask FROM allocation_holds ORDER BY allocation_id, node_id, word",
                &[],
            )
        })
        .unwrap();
    rows.iter()
        .map(|r| (r.str(0).unwrap(), r.str(1).unwrap(), r.i64(2).unwrap(), r.i64(3).unwrap()))
        .collect()
}

fn held(store: &Store, node: &str, word: i64) -> i64 {
    let rows = store
        .read(|r| {
            r.query("SELECT held FROM node_units WHERE node_id = ? AND word = ?", vals![node, word])
        })
        .unwrap();
    rows.first().map(|r| r.i64(0).unwrap()).unwrap_or(0)
}

#[test]
fn the_migration_keeps_every_unit_held_and_the_masks_refuse_one_held_twice() {
    for backend in TestBackend::ALL {
        let Some(db) = fresh_db(backend) else { continue };
        let b = backend.as_str();
        let (t, p, it, n1, n2) = {
            let store = Store::open_at_version(&db.url, 27).unwrap();
            let t = tenant(&store, "acme").id;
            let p = project(&store, &t, "web").id;
            let it = bare_metal_type(&store);
            let (n1, n2) = (node(&store, "n1"), node(&store, "n2"));
            // Units as the schema before the masks held them: a whole node
            // (a), a whole GPU (b), GPU 7's last three slices (c: the word's
            // sign bit), a GPU of the next word (d).
            // (allocation, node, (GPU, slice) held)
            type Old<'a> = (&'a str, &'a str, Vec<(i64, i64)>);
            let units: Vec<Old<'_>> = vec![
                ("a", &n1, (0..8).flat_map(|g| (0..8).map(move |s| (g, s))).collect()),
                ("b", &n2, (0..8).map(|s| (0, s)).collect()),
                ("c", &n2, (5..8).map(|s| (7, s)).collect()),
                ("d", &n2, vec![(8, 0)]),
            ];
            store
                .write(|w| {
                    for (id, node, us) in &units {
                        w.execute(
                            "INSERT INTO allocations (id, tenant_id, project_id, instance_type_id, count, constraints, placement, claim_id, state, generation, created_at, updated_at, kind, reservation_id) \
                             VALUES (?, ?, ?, ?, 1, '{}', '{\"assignments\":[]}', 'claim', 'active', 1, 0, 0, 'allocation', NULL)",
                            vals![*id, t.as_str(), p.as_str(), it.as_str()],
                        )?;
                        for (g, s) in us {
                            w.execute(
                                "INSERT INTO allocation_units (node_id, gpu, slice, allocation_id) VALUES (?, ?, ?, ?)",
                                vals![*node, *g, *s, *id],
                            )?;
                        }
                    }
                    Ok(())
                })
                .unwrap();
            (t, p, it, n1, n2)
        };
        let store = Store::open(&db.url).unwrap();
        let c = 0b111i64 << 61; // GPU 7's slices 5-7: bits 61-63
        assert_eq!(
            holds(&store),
            vec![
                ("a".into(), n1.clone(), 0, -1),
                ("b".into(), n2.clone(), 0, 0xff),
                ("c".into(), n2.clone(), 0, c),
                ("d".into(), n2.clone(), 1, 1),
            ],
            "[{b}] every allocation's units, a mask per node and word"
        );
        assert_eq!(
            (held(&store, &n1, 0), held(&store, &n2, 0), held(&store, &n2, 1)),
            (-1, 0xff | c, 1),
            "[{b}]"
        );
        assert_eq!(store.read(allocation_holds::units_held).unwrap(), (76, 76), "[{b}]");

        // A unit held already is refused, and nothing of the call stays.
        let (cons, place) = (Constraints::default(), Placement { assignments: vec![] });
        let new = |id: &'static str, units: &'static [(u8, u8)]| {
            let units: Vec<allocation_holds::Unit> =
                units.iter().map(|(g, s)| (n2.clone(), *g, *s)).collect();
            (id, units)
        };
        let try_take = |batch: &[(&'static str, Vec<allocation_holds::Unit>)]| {
            store.write(|w| {
                let new: Vec<allocations::NewAllocation<'_>> = batch
                    .iter()
                    .map(|(id, units)| allocation((&t, &p, &it), id, &cons, &place, units))
                    .collect();
                allocations::create_many(w, &new)
            })
        };
        let before = (holds(&store), held(&store, &n2, 0));
        for (what, batch) in [
            ("GPU 7's last slice, held by c", vec![new("e", &[(3, 0), (7, 7)])]),
            ("GPU 0, held by b", vec![new("e", &[(0, 3)])]),
            ("one slice twice in one call", vec![new("e", &[(3, 0)]), new("f", &[(3, 0)])]),
        ] {
            let e = try_take(&batch).unwrap_err();
            assert!(e.to_string().contains("taken concurrently"), "[{b}] {what}: {e}");
            assert_eq!((holds(&store), held(&store, &n2, 0)), before, "[{b}] {what}: nothing kept");
        }
        try_take(&[new("e", &[(3, 0), (7, 4)]), new("f", &[(3, 1)])]).unwrap();
        assert_eq!(held(&store, &n2, 0), 0xff | c | 1 << 24 | 1 << 25 | 1 << 60, "[{b}]");
        assert_eq!(store.read(allocation_holds::units_held).unwrap(), (79, 79), "[{b}]");

        // Released: exactly its bits are free again (a second release
        // frees nothing more).
        for _ in 0..2 {
            store.write(|w| allocations::release(w, &t, &p, "c").map(|_| ())).unwrap();
        }
        assert_eq!(held(&store, &n2, 0), 0xff | 1 << 24 | 1 << 25 | 1 << 60, "[{b}]");
        store.write(|w| allocations::release(w, &t, &p, "a").map(|_| ())).unwrap();
        assert_eq!(held(&store, &n1, 0), 0, "[{b}] the whole node free");
        // A node held by nothing can go; one held cannot.
        store.write(|w| nodes::delete(w, &n1)).unwrap();
        let e = store.write(|w| nodes::delete(w, &n2)).unwrap_err();
        assert!(e.to_string().contains("holds allocations"), "[{b}] {e}");
        // A plan on a node deleted since it was read (by another replica)
        // is a conflict to retry, not a fault.
        let e = try_take(&[("g", vec![(n1.clone(), 0, 0)])]).unwrap_err();
        assert_eq!(e.code(), ErrorCode::Conflict, "[{b}] {e}");
        assert!(e.to_string().contains("taken concurrently"), "[{b}] {e}");
        drop(store);
        drop(db);
    }
}

/// A node deleted while another transaction places on it: whichever
/// commits second gets a conflict, never a fault (on PostgreSQL the delete
/// read no hold before the placing transaction committed, and its `DELETE`
/// then meets the placing rows' foreign keys).
#[test]
fn a_node_deleted_while_placed_on_is_a_conflict() {
    for backend in TestBackend::ALL {
        let Some(db) = fresh_db(backend) else { continue };
        let b = backend.as_str();
        let store = Store::open(&db.url).unwrap();
        let t = tenant(&store, "acme").id;
        let p = project(&store, &t, "web").id;
        let it = bare_metal_type(&store);
        let n = node(&store, "n1");
        let cons = Constraints { anti_affinity: Some("g".into()), ..Constraints::default() };
        let place = Placement {
            assignments: vec![neocloud_placement::Assignment {
                node_id: n.clone(),
                gpus: vec![],
                whole_node: false,
                mig: Some(neocloud_placement::MigSlice {
                    gpu: 0,
                    profile: "1g.10gb".into(),
                    start: 0,
                }),
            }],
        };
        let units: Vec<allocation_holds::Unit> = (0..8).map(|g| (n.clone(), g, 0)).collect();
        let (placed_tx, placed_rx) = std::sync::mpsc::channel();
        let deleted = std::thread::scope(|s| {
            let placing = s.spawn(|| {
                store.write(|w| {
                    allocations::create_many(
                        w,
                        &[allocation((&t, &p, &it), "a", &cons, &place, &units)],
                    )?;
                    let _ = placed_tx.send(());
                    // Uncommitted while the delete runs into it.
                    std::thread::sleep(std::time::Duration::from_millis(300));
                    Ok(())
                })
            });
            placed_rx.recv().unwrap();
            let deleted = store.write(|w| nodes::delete(w, &n));
            placing.join().unwrap().unwrap();
            deleted
        });
        let e = deleted.unwrap_err();
        assert_eq!(e.code(), ErrorCode::Conflict, "[{b}] {e}");
        assert_eq!(holds(&store).len(), 1, "[{b}] the placement stands");
        assert_eq!(held(&store, &n, 0), 0x0101_0101_0101_0101, "[{b}]");
        // An engine rebuild's narrow read gives what the full record does.
        let full = store.read(allocations::list_active).unwrap();
        let narrow = store.read(allocations::list_active_placements).unwrap();
        assert_eq!(
            narrow
                .iter()
                .map(|a| (&a.id, &a.tenant_id, &a.anti_affinity, &a.placement))
                .collect::<Vec<_>>(),
            full.iter()
                .map(|a| (&a.id, &a.tenant_id, &a.constraints.anti_affinity, &a.placement))
                .collect::<Vec<_>>(),
            "[{b}]"
        );
        assert_eq!(narrow[0].anti_affinity.as_deref(), Some("g"), "[{b}]");
        assert_eq!(narrow[0].placement, place, "[{b}]");
        drop(store);
        drop(db);
    }
}
