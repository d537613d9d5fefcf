//! The UFM driver's real HTTP path against the protocol-faithful UFM test
//! double: tenant partitions converge, a second converge changes nothing,
//! a node moving between tenants leaves one partition before it joins the
//! other, PKeys outside the fabric's range survive, and refusals surface.

use neocloud_fabric::ib::*;
use neocloud_ufm::double::{Pkey, UfmDouble};
use neocloud_ufm::{Ufm, UfmConfig, UfmError};
use std::time::Duration;

fn fabric() -> IbFabric {
    IbFabric { name: "ib0".into(), pkey_range: PkeyRange { first: 0x100, last: 0x1ff } }
}

fn ports() -> Vec<IbPort> {
    [
        ("a1", "0002c903000e0b72"),
        ("a2", "0002c903000e0b73"),
        ("b1", "0002c903000e0c01"),
        ("b2", "0002c903000e0c02"),
    ]
    .iter()
    .map(|(n, g)| IbPort { node: n.to_string(), guid: g.to_string() })
    .collect()
}

fn intent(acme: &[&str], globex: &[&str]) -> IbIntent {
    let part = |id: &str, nodes: &[&str]| IbPartition {
        id: id.into(),
        tenant: id.into(),
        nodes: nodes.iter().map(|n| n.to_string()).collect(),
    };
    IbIntent { partitions: vec![part("acme", acme), part("globex", globex)] }
}

fn driver(d: &UfmDouble, password: &str) -> Ufm {
    Ufm::new(UfmConfig {
        url: d.url.clone(),
        username: d.username.clone(),
        password: password.into(),
        timeout: Duration::from_secs(5),
        tls: Default::default(),
    })
}

#[test]
fn partitions_converge_on_ufm_and_stay_put() {
    let double = UfmDouble::start();
    let ufm = driver(&double, &double.password);
    // Another tool's partition, outside the fabric's range.
    double.state().pkeys.insert(
        0x2000,
        Pkey {
            partition: "storage".into(),
            guids: [("0002c903000e0b99".into(), "full".into())].into(),
        },
    );
    let f = fabric();
    let i = intent(&["a1", "a2"], &["b1", "b2"]);
    let ledger = allocate_pkeys(&f, &i, &PkeyLedger::default()).unwrap();
    let desired = plan(&f, &ports(), &i, &ledger).unwrap();

    let calls = ufm.converge(&f, &desired).unwrap();
    assert_eq!(calls.len(), 4, "create + add GUIDs per partition: {calls:?}");
    // What UFM now has, read back through the driver, is what was planned.
    let mut have = ufm.pkeys().unwrap();
    let foreign = have.partitions.remove(&0x2000).expect("the other tool's PKey survives");
    assert_eq!(foreign.members.len(), 1);
    assert_eq!(have, desired);
    for p in double.state().pkeys.values() {
        assert!(p.guids.values().all(|m| m == "full"), "{p:?}");
    }
    // Nothing to do the second time.
    assert!(ufm.converge(&f, &desired).unwrap().is_empty());

    // b2 moves from globex to acme: it leaves globex before it joins acme.
    let moved = intent(&["a1", "a2", "b2"], &["b1"]);
    let ledger2 = allocate_pkeys(&f, &moved, &ledger).unwrap();
    assert_eq!(ledger2, ledger, "the PKeys did not move");
    let desired2 = plan(&f, &ports(), &moved, &ledger2).unwrap();
    let before = double.state().requests.len();
    ufm.converge(&f, &desired2).unwrap();
    let requests: Vec<String> = double.state().requests[before..].to_vec();
    let leave =
        requests.iter().position(|r| r.starts_with("DELETE") && r.contains("0002c903000e0c02"));
    let join = requests.iter().position(|r| r == "POST /ufmRest/resources/pkeys/");
    assert!(leave.is_some() && join.is_some() && leave < join, "{requests:#?}");
    let mut have = ufm.pkeys().unwrap();
    have.partitions.remove(&0x2000);
    assert_eq!(have, desired2);

    // globex is gone: its PKey is deleted, acme's and the foreign one stay.
    let only_acme = IbIntent { partitions: vec![moved.partitions[0].clone()] };
    let ledger3 = allocate_pkeys(&f, &only_acme, &ledger2).unwrap();
    let desired3 = plan(&f, &ports(), &only_acme, &ledger3).unwrap();
    ufm.converge(&f, &desired3).unwrap();
    let s = double.state();
    assert_eq!(s.pkeys.len(), 2, "{:?}", s.pkeys.keys());
    assert!(s.pkeys.contains_key(&0x2000));
}

#[test]
fn refusals_and_unreachable_ufm_surface_as_errors() {
    let double = UfmDouble::start();
    let e = driver(&double, "wrong").pkeys().unwrap_err();
    assert!(matches!(e, UfmError::Status { status: 401, .. }), "{e}");
    assert!(!e.is_transient());
    // A call UFM refuses (a PKey out of its range) stops the plan there.
    let ufm = driver(&double, &double.password);
    let bad = UfmCall {
        method: UfmMethod::Post,
        path: "/ufmRest/resources/pkeys/add".into(),
        body: Some(serde_json::json!({"pkey": "0x8000"})),
    };
    let e = ufm.apply(&[bad]).unwrap_err();
    assert!(
        matches!(&e, UfmError::Status { status: 400, body, .. } if body.contains("0x7fff")),
        "{e}"
    );
    assert!(double.state().pkeys.is_empty());
    // Nobody listening: transient.
    let gone = Ufm::new(UfmConfig {
        url: "http://127.0.0.1:9".into(),
        username: "a".into(),
        password: "b".into(),
        timeout: Duration::from_secs(2),
        tls: Default::default(),
    });
    let e = gone.pkeys().unwrap_err();
    assert!(e.is_transient(), "{e}");
}

/// UFM's documented quirk: an unknown PKey is 200 with `{}`, not a 404.
#[test]
fn the_double_answers_an_unknown_pkey_with_an_empty_object() {
    let double = UfmDouble::start();
    let auth = format!("Basic {}", neocloud_common::encoding::base64("admin:123456"));
    let r = ureq::get(&format!("{}/ufmRest/resources/pkeys/0x123", double.url))
        .set("Authorization", &auth)
        .call()
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.into_string().unwrap().trim(), "{}");
}
