//! The InfiniBand partition planner: validation, the PKey ledger, the
//! planner's isolation checks, the OpenSM renderer (snapshot in
//! tests/snapshots/ib-opensm.txt; regenerate with
//! `NEOCLOUD_UPDATE_SNAPSHOTS=1 cargo test -p neocloud-fabric --test ib`)
//! and the UFM call plan.

mod common;

use common::check_snapshot;
use neocloud_fabric::ib::*;
use neocloud_fabric::Error;
use serde_json::Value;
use std::collections::BTreeSet;

fn fabric(first: u16, last: u16) -> IbFabric {
    IbFabric { name: "ib0".into(), pkey_range: PkeyRange { first, last } }
}

fn port(node: &str, guid: &str) -> IbPort {
    IbPort { node: node.into(), guid: guid.into() }
}

fn part(id: &str, tenant: &str, nodes: &[&str]) -> IbPartition {
    IbPartition {
        id: id.into(),
        tenant: tenant.into(),
        nodes: nodes.iter().map(|n| n.to_string()).collect(),
    }
}

fn ports() -> Vec<IbPort> {
    vec![
        port("a1", "0002C903000E0B72"),
        port("a2", "0002c903000e0b73"),
        port("b1", "0002c903000e0c01"),
        port("b2", "0002c903000e0c02"),
    ]
}

fn intent() -> IbIntent {
    IbIntent {
        partitions: vec![
            part("acme-train", "acme", &["a1", "a2"]),
            part("globex", "globex", &["b1", "b2"]),
        ],
    }
}

fn field(e: &Error) -> &str {
    e.field().unwrap_or("")
}

fn invalid_field(r: Result<impl std::fmt::Debug, Error>) -> String {
    match r {
        Err(e @ Error::Invalid { .. }) => field(&e).to_string(),
        other => panic!("expected Invalid, got {other:?}"),
    }
}

#[test]
fn validation_errors_name_fields() {
    let l = PkeyLedger::default();
    assert_eq!(
        invalid_field(allocate_pkeys(&fabric(0, 10), &intent(), &l)),
        "fabric.pkey_range.first"
    );
    assert_eq!(
        invalid_field(allocate_pkeys(&fabric(1, 0x7fff), &intent(), &l)),
        "fabric.pkey_range.last"
    );
    assert_eq!(invalid_field(allocate_pkeys(&fabric(9, 3), &intent(), &l)), "fabric.pkey_range");
    let mut i = intent();
    i.partitions.push(part("acme-train", "acme", &[]));
    assert_eq!(invalid_field(allocate_pkeys(&fabric(1, 10), &i, &l)), "partitions[2].id");
    // Two ids that sanitize to one name would merge in partitions.conf.
    let mut i = intent();
    i.partitions.push(part("acme_train", "acme", &[]));
    assert_eq!(invalid_field(allocate_pkeys(&fabric(1, 10), &i, &l)), "partitions[2].id");
    let mut i = intent();
    i.partitions[1].tenant = " ".into();
    assert_eq!(invalid_field(allocate_pkeys(&fabric(1, 10), &i, &l)), "partitions[1].tenant");

    let f = fabric(1, 10);
    let l = allocate_pkeys(&f, &intent(), &PkeyLedger::default()).unwrap();
    let mut p = ports();
    p[2].guid = "00:02:c9:03:00:0e:0c:01".into();
    assert_eq!(invalid_field(plan(&f, &p, &intent(), &l)), "ports[2].guid");
    let mut p = ports();
    p[3].guid = "0002c903000e0c0".into();
    assert_eq!(invalid_field(plan(&f, &p, &intent(), &l)), "ports[3].guid");
    let mut p = ports();
    p.push(port("b2", "0002c903000e0b72"));
    assert_eq!(invalid_field(plan(&f, &p, &intent(), &l)), "ports[4].guid");
    let mut i = intent();
    i.partitions[0].nodes.push("ghost".into());
    assert_eq!(invalid_field(plan(&f, &ports(), &i, &l)), "partitions[0].nodes[2]");
    let mut i = intent();
    i.partitions.push(part("new", "acme", &["a1"]));
    assert!(matches!(plan(&f, &ports(), &i, &l), Err(Error::Unallocated { .. })));
}

#[test]
fn guids_are_normalized() {
    assert_eq!(normalize_guid("0002C903000E0B72", "x").unwrap(), "0002c903000e0b72");
    let f = fabric(1, 10);
    let l = allocate_pkeys(&f, &intent(), &PkeyLedger::default()).unwrap();
    let d = plan(&f, &ports(), &intent(), &l).unwrap();
    let acme = &d.partitions[&l.pkeys["acme-train"]];
    assert!(acme.members.contains("0002c903000e0b72"));
    assert_eq!(acme.name, "acme_train");
}

#[test]
fn ledger_is_stable() {
    let f = fabric(0x10, 0x1f);
    let l1 = allocate_pkeys(&f, &intent(), &PkeyLedger::default()).unwrap();
    assert_eq!(l1.pkeys["acme-train"], 0x10);
    assert_eq!(l1.pkeys["globex"], 0x11);
    // Same inputs in another order: same ledger.
    let mut rev = intent();
    rev.partitions.reverse();
    assert_eq!(allocate_pkeys(&f, &rev, &PkeyLedger::default()).unwrap(), l1);

    // Add one: nothing moves.
    let mut i = intent();
    i.partitions.push(part("initech", "initech", &[]));
    let l2 = allocate_pkeys(&f, &i, &l1).unwrap();
    assert_eq!(l2.pkeys["acme-train"], 0x10);
    assert_eq!(l2.pkeys["globex"], 0x11);
    assert_eq!(l2.pkeys["initech"], 0x12);

    // Remove one: the others keep theirs, and the released one is not reused
    // before the range wraps.
    i.partitions.retain(|p| p.id != "acme-train");
    let l3 = allocate_pkeys(&f, &i, &l2).unwrap();
    assert_eq!(l3.pkeys.get("acme-train"), None);
    assert_eq!(l3.pkeys["globex"], 0x11);
    assert_eq!(l3.pkeys["initech"], 0x12);
    i.partitions.push(part("hooli", "hooli", &[]));
    let l4 = allocate_pkeys(&f, &i, &l3).unwrap();
    assert_eq!(l4.pkeys["hooli"], 0x13);

    // Narrowing the range never moves an existing entry.
    let l5 = allocate_pkeys(&fabric(0x100, 0x1ff), &i, &l4).unwrap();
    assert_eq!(l5.pkeys, l4.pkeys);
}

#[test]
fn ledger_wraps_then_exhausts() {
    let f = fabric(0x7ffc, 0x7ffe);
    let ids = ["p1", "p2", "p3"];
    let i = IbIntent { partitions: ids.iter().map(|id| part(id, "t", &[])).collect() };
    let l = allocate_pkeys(&f, &i, &PkeyLedger::default()).unwrap();
    let got: BTreeSet<u16> = l.pkeys.values().copied().collect();
    assert_eq!(got, BTreeSet::from([0x7ffc, 0x7ffd, 0x7ffe]));
    assert!(!got.contains(&DEFAULT_PKEY));

    let mut more = i.clone();
    more.partitions.push(part("p4", "t", &[]));
    match allocate_pkeys(&f, &more, &l) {
        Err(e @ Error::Exhausted { .. }) => assert_eq!(field(&e), "fabric.pkey_range"),
        other => panic!("expected Exhausted, got {other:?}"),
    }

    // Release p2: after the wrap, its PKey is the free one.
    more.partitions.retain(|p| p.id != "p2");
    let l2 = allocate_pkeys(&f, &more, &l).unwrap();
    assert_eq!(l2.pkeys["p4"], l.pkeys["p2"]);
    assert_eq!(l2.pkeys["p1"], l.pkeys["p1"]);
}

#[test]
fn corrupt_ledger_entries_refused() {
    let f = fabric(1, 10);
    let mut l = PkeyLedger::default();
    l.pkeys.insert("globex".into(), DEFAULT_PKEY);
    assert_eq!(invalid_field(allocate_pkeys(&f, &intent(), &l)), "ledger.pkeys[globex]");
}

#[test]
fn two_tenants_sharing_a_node_refused() {
    let f = fabric(1, 10);
    let mut i = intent();
    i.partitions[1].nodes.push("a2".into());
    let l = allocate_pkeys(&f, &i, &PkeyLedger::default()).unwrap();
    let e = plan(&f, &ports(), &i, &l).unwrap_err();
    assert!(matches!(e, Error::Invalid { .. }));
    assert_eq!(field(&e), "partitions[1].nodes[2]");
    assert!(e.to_string().contains("acme"), "{e}");
}

#[test]
fn port_pkey_limit_enforced() {
    let f = fabric(1, 0x7ffe);
    // One tenant, 127 partitions on a1: 127 + Default = 128 fits.
    let mut i = IbIntent {
        partitions: (0..127).map(|k| part(&format!("p{k:03}"), "acme", &["a1"])).collect(),
    };
    let l = allocate_pkeys(&f, &i, &PkeyLedger::default()).unwrap();
    assert_eq!(plan(&f, &ports(), &i, &l).unwrap().partitions.len(), 127);
    // One more is 129: refused, naming the port.
    i.partitions.push(part("p127", "acme", &["a1", "a2"]));
    let l = allocate_pkeys(&f, &i, &l).unwrap();
    let e = plan(&f, &ports(), &i, &l).unwrap_err();
    assert!(matches!(e, Error::Invalid { .. }));
    assert_eq!(field(&e), "ports[0].guid");
}

#[test]
fn opensm_snapshot() {
    let f = fabric(0x100, 0x1ff);
    let mut i = intent();
    // Ids that would be syntax in partitions.conf are sanitized.
    i.partitions[1].id = "globex; ALL=full".into();
    i.partitions.push(part("empty", "initech", &[]));
    let l = allocate_pkeys(&f, &i, &PkeyLedger::default()).unwrap();
    let d = plan(&f, &ports(), &i, &l).unwrap();
    let text = render_opensm(&d).unwrap();
    assert!(text.starts_with("Default=0x7fff, ipoib : ALL=limited, SELF=full ;\n"));
    assert!(!text.contains("empty"), "partitions without members are omitted");
    check_snapshot("ib-opensm.txt", &text);

    // A hand-built desired state cannot inject syntax either.
    let mut bad = d.clone();
    bad.partitions.get_mut(&0x100).unwrap().members.insert("0002c903000e0b72=full ; x".into());
    assert!(matches!(render_opensm(&bad), Err(Error::Invalid { .. })));
}

/// Applies a call plan to a UFM state, as UFM would.
fn apply(actual: &IbDesired, calls: &[UfmCall]) -> IbDesired {
    let mut s = actual.clone();
    let parse = |h: &str| u16::from_str_radix(h.trim_start_matches("0x"), 16).unwrap();
    for c in calls {
        let body = c.body.clone().unwrap_or(Value::Null);
        match (c.method, c.path.as_str()) {
            (UfmMethod::Post, "/ufmRest/resources/pkeys/add") => {
                let pkey = parse(body["pkey"].as_str().unwrap());
                assert!(!s.partitions.contains_key(&pkey), "create of existing {pkey:#x}");
                let name = body["partition_name"].as_str().unwrap_or("").to_string();
                s.partitions.insert(pkey, IbPartitionState { name, members: BTreeSet::new() });
            }
            (UfmMethod::Post, "/ufmRest/resources/pkeys/") => {
                assert_eq!(body["membership"], "full");
                let pkey = parse(body["pkey"].as_str().unwrap());
                let p = s.partitions.get_mut(&pkey).expect("add to a missing PKey");
                for g in body["guids"].as_array().unwrap() {
                    p.members.insert(g.as_str().unwrap().to_string());
                }
            }
            (UfmMethod::Delete, path) => {
                let rest = path.strip_prefix("/ufmRest/resources/pkeys/").unwrap();
                match rest.split_once("/guids/") {
                    Some((pk, guids)) => {
                        let p = s.partitions.get_mut(&parse(pk)).unwrap();
                        for g in guids.split(',') {
                            assert!(p.members.remove(g), "remove of absent {g}");
                        }
                    }
                    None => {
                        assert!(s.partitions.remove(&parse(rest)).is_some());
                    }
                }
            }
            (m, p) => panic!("unexpected call {} {p}", m.as_str()),
        }
    }
    s
}

fn state(parts: &[(u16, &str, &[&str])]) -> IbDesired {
    IbDesired {
        partitions: parts
            .iter()
            .map(|(k, n, m)| {
                (
                    *k,
                    IbPartitionState {
                        name: n.to_string(),
                        members: m.iter().map(|g| g.to_string()).collect(),
                    },
                )
            })
            .collect(),
    }
}

#[test]
fn ufm_plan_moves_node_remove_first() {
    let (g1, g2, g3, g4) =
        ("0002c903000e0b72", "0002c903000e0b73", "0002c903000e0c01", "0002c903000e0c02");
    // g2 moves from A (0x101) to B (0x102); C (0x103) unchanged; D (0x104)
    // no longer desired; E (0x105) new; the Default partition is left alone.
    let actual = state(&[
        (0x101, "A", &[g1, g2]),
        (0x102, "B", &[g3]),
        (0x103, "C", &[g4]),
        (0x104, "D", &[]),
        (0x7fff, "Default", &[g1, g2, g3, g4]),
    ]);
    let desired = state(&[
        (0x101, "A", &[g1]),
        (0x102, "B", &[g2, g3]),
        (0x103, "C", &[g4]),
        (0x105, "E", &[g1]),
    ]);
    let calls = ufm_changes(&fabric(1, 0x7ffe), &desired, &actual);
    let lines: Vec<String> = calls
        .iter()
        .map(|c| {
            format!(
                "{} {} {}",
                c.method.as_str(),
                c.path,
                c.body.as_ref().map(|b| b.to_string()).unwrap_or_default()
            )
        })
        .collect();
    let remove = lines
        .iter()
        .position(|l| l.starts_with(&format!("DELETE /ufmRest/resources/pkeys/0x101/guids/{g2}")))
        .expect("remove from A");
    let add = lines
        .iter()
        .position(|l| l.starts_with("POST /ufmRest/resources/pkeys/ ") && l.contains("\"0x102\""))
        .expect("add to B");
    assert!(remove < add, "{lines:#?}");
    assert!(!lines.iter().any(|l| l.contains("0x103") || l.contains("0x7fff")), "{lines:#?}");
    assert!(lines.contains(&"DELETE /ufmRest/resources/pkeys/0x104 ".to_string()), "{lines:#?}");
    // Coalesced: at most one call of each kind per PKey.
    let kinds: BTreeSet<String> = calls
        .iter()
        .map(|c| {
            let pk = c.body.as_ref().map(|b| b["pkey"].to_string()).unwrap_or_default();
            format!("{} {} {pk}", c.method.as_str(), c.path)
        })
        .collect();
    assert_eq!(kinds.len(), calls.len());
    assert_eq!(calls.len(), 5, "{lines:#?}");

    let mut want = desired.clone();
    want.partitions.insert(0x7fff, actual.partitions[&0x7fff].clone());
    assert_eq!(apply(&actual, &calls), want);
    assert!(ufm_changes(&fabric(1, 0x7ffe), &desired, &want).is_empty());
}

#[test]
fn ufm_plan_from_planner_applies() {
    let f = fabric(0x100, 0x1ff);
    let l = allocate_pkeys(&f, &intent(), &PkeyLedger::default()).unwrap();
    let d = plan(&f, &ports(), &intent(), &l).unwrap();
    let calls = ufm_changes(&fabric(1, 0x7ffe), &d, &IbDesired::default());
    assert_eq!(calls.len(), 4);
    assert_eq!(apply(&IbDesired::default(), &calls), d);
    assert!(ufm_changes(&fabric(1, 0x7ffe), &d, &d).is_empty());
    // Moving b2 from globex to acme, one re-plan later.
    let mut i = intent();
    i.partitions[1].nodes.retain(|n| n != "b2");
    i.partitions[0].nodes.push("b2".into());
    let l2 = allocate_pkeys(&f, &i, &l).unwrap();
    let d2 = plan(&f, &ports(), &i, &l2).unwrap();
    let calls = ufm_changes(&fabric(1, 0x7ffe), &d2, &d);
    assert_eq!(calls[0].method, UfmMethod::Delete);
    assert_eq!(calls.len(), 2);
    assert_eq!(apply(&d, &calls), d2);
}

/// PKeys outside the fabric's range (the SM's Default, other tools'
/// partitions) are never changed or deleted, whatever UFM reports.
#[test]
fn ufm_plan_leaves_foreign_pkeys_alone() {
    let f = fabric(0x100, 0x1ff);
    let l = allocate_pkeys(&f, &intent(), &PkeyLedger::default()).unwrap();
    let d = plan(&f, &ports(), &intent(), &l).unwrap();
    let mut actual = d.clone();
    let foreign = IbPartitionState {
        name: "storage".into(),
        members: ["0002c903000e0b99".to_string()].into_iter().collect(),
    };
    actual.partitions.insert(0x2000, foreign.clone());
    actual.partitions.insert(0x0042, foreign);
    assert!(ufm_changes(&f, &d, &actual).is_empty(), "foreign PKeys untouched");
    // The same PKeys inside the range are this fabric's: undesired, deleted.
    let wide = fabric(1, 0x7ffe);
    let calls = ufm_changes(&wide, &d, &actual);
    assert_eq!(calls.len(), 2, "{calls:?}");
    assert!(calls.iter().all(|c| c.method == UfmMethod::Delete));
}
