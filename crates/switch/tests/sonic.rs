//! The SONiC driver's real HTTP path against the RESTCONF double: a leaf's
//! CONFIG_DB converges from empty (the double validating every write
//! against the YANG constraints), a re-apply writes nothing, a removed
//! tenant network is removed dependents first, a dry run returns the JSON
//! patch unsent, an older generation is refused, credentials and outages
//! map to their errors, a refused write fails the apply without recording
//! the generation, and changes made behind the driver's back show up as
//! drift (and a re-apply repairs them).

mod common;

use common::*;
use neocloud_common::http_double::Response;
use neocloud_fabric::{ObjectId, PortMode, SwitchConfig, SwitchOs};
use neocloud_switch::double::lab::ports;
use neocloud_switch::double::sonic::SonicDouble;
use neocloud_switch::sonic::{Sonic, SonicRestConfig};
use neocloud_switch::{DriverError, SwitchDriver};
use serde_json::{json, Value};

const OS: SwitchOs = SwitchOs::Sonic;

fn double() -> SonicDouble {
    SonicDouble::start(&ports(OS))
}

fn driver(d: &SonicDouble, password: &str) -> Sonic {
    let mut cfg = SonicRestConfig::new("leaf1", &d.url, &d.username, password);
    cfg.timeout = TIMEOUT;
    Sonic::new(cfg)
}

fn empty() -> SwitchConfig {
    SwitchConfig::new(OS)
}

fn ops(steps: &[String]) -> Vec<Value> {
    steps.iter().map(|s| serde_json::from_str(s).unwrap()).collect()
}

#[test]
fn converges_from_empty_and_reapplies_nothing() {
    let d = double();
    let s = driver(&d, &d.password);
    let cfg = leaf1(OS);

    let steps = apply(&s, &empty(), &cfg, 1, false).unwrap();
    let patch = ops(&steps);
    assert_eq!(
        patch.last().unwrap(),
        &json!({"op": "add", "path": "/MGMT_PORT/eth0/description", "value": "neocloud generation 1"}),
        "the generation is written last"
    );
    {
        let st = d.state();
        let reads: Vec<String> = st.requests.iter().take(6).map(|r| r.line()).collect();
        assert_eq!(
            reads,
            [
                "GET /restconf/data/sonic-loopback-interface:sonic-loopback-interface",
                "GET /restconf/data/sonic-vxlan:sonic-vxlan",
                "GET /restconf/data/sonic-vlan:sonic-vlan",
                "GET /restconf/data/sonic-vrf:sonic-vrf",
                "GET /restconf/data/sonic-port:sonic-port",
                "GET /restconf/data/sonic-mgmt_port:sonic-mgmt_port",
            ]
        );
        assert_eq!(st.writes().len(), patch.len(), "one request per patch operation");
        let put = st
            .writes()
            .into_iter()
            .find(|r| r.path.ends_with("VXLAN_TUNNEL_MAP_LIST=vtep1,map_100_Vlan12"))
            .unwrap()
            .clone();
        assert_eq!(put.method, "PUT");
        assert_eq!(
            put.body,
            json!({"sonic-vxlan:VXLAN_TUNNEL_MAP_LIST": [
                {"name": "vtep1", "mapname": "map_100_Vlan12", "vlan": "Vlan12", "vni": 100}
            ]})
        );
        assert_eq!(st.field("VLAN", "Vlan12", "vlanid"), Some("12"));
        assert_eq!(st.field("VRF", "Vrf5001", "vni"), Some("5001"));
        assert_eq!(st.field("VLAN_INTERFACE", "Vlan12", "vrf_name"), Some("Vrf5000"));
        assert!(st.has("VLAN_INTERFACE", "Vlan12|10.100.0.1/24"));
        assert!(st.has("LOOPBACK_INTERFACE", "Loopback0|10.0.0.1/32"));
        assert_eq!(st.field("VLAN_MEMBER", "Vlan12|Ethernet4", "tagging_mode"), Some("untagged"));
        assert_eq!(st.field("PORT", "Ethernet4", "admin_status"), Some("up"));
        assert_eq!(
            st.field("PORT", "Ethernet16", "admin_status"),
            Some("down"),
            "a1's unattached NIC"
        );
        assert_eq!(
            st.field("PORT", "Ethernet4", "speed"),
            Some("100000"),
            "the platform's fields stay"
        );
    }
    assert_in_sync(&s, &cfg, 1);

    let writes = d.state().writes().len();
    assert!(apply(&s, &cfg, &cfg, 1, false).unwrap().is_empty());
    assert_eq!(d.state().writes().len(), writes);
}

#[test]
fn a_removed_network_is_removed_dependents_first_and_a_dry_run_sends_nothing() {
    let d = double();
    let s = driver(&d, &d.password);
    let (before, after) = leaf1_before_and_after_removing(OS, "net-b");
    apply(&s, &empty(), &before, 1, false).unwrap();

    let db = d.state().db.clone();
    let writes = d.state().writes().len();
    let dry = ops(&apply(&s, &before, &after, 2, true).unwrap());
    assert_eq!(dry[0], json!({"op": "remove", "path": "/VLAN_MEMBER/Vlan13|Ethernet8"}));
    assert!(dry.contains(&json!({"op": "remove", "path": "/VRF/Vrf5001"})));
    assert_eq!(d.state().writes().len(), writes, "the patch is not sent");
    assert_eq!(d.state().db, db);

    // The double refuses a VLAN removed before its members: the order held.
    apply(&s, &before, &after, 2, false).unwrap();
    let st = d.state();
    for (table, key) in [
        ("VRF", "Vrf5001"),
        ("VLAN", "Vlan13"),
        ("VLAN", "Vlan11"),
        ("VLAN_MEMBER", "Vlan13|Ethernet8"),
    ] {
        assert!(!st.has(table, key), "{table}|{key} removed");
    }
    assert!(st.has("VRF", "Vrf5000"));
    // b1 is idle now: its port is in the provisioning VLAN.
    assert!(st.has("VLAN_MEMBER", "Vlan4000|Ethernet8"));
    drop(st);
    assert!(s.check(&after).unwrap().drift.is_empty());
    assert_eq!(s.check(&after).unwrap().generation, Some(2));
}

#[test]
fn an_older_generation_is_refused_and_nothing_is_written() {
    let d = double();
    let s = driver(&d, &d.password);
    let cfg = applied_leaf1(&s, 5);
    let writes = d.state().writes().len();
    assert_refuses_generation_4(&s, &cfg);
    assert_eq!(d.state().writes().len(), writes);
}

#[test]
fn credentials_and_outages_map_to_their_errors() {
    let d = double();
    let cfg = leaf1(OS);
    assert_unauthorized(&driver(&d, "wrong"), &cfg);

    let s = driver(&d, &d.password);
    d.server.fail_next(Response::text(500, "rest_server: translib unavailable"));
    assert!(matches!(apply(&s, &empty(), &cfg, 1, false), Err(DriverError::Unreachable(_))));
    d.server.fail_next(Response::text(429, "slow down"));
    assert!(matches!(s.check(&cfg), Err(DriverError::Unreachable(_))));
    apply(&s, &empty(), &cfg, 1, false).unwrap();
}

#[test]
fn a_refused_write_fails_the_apply_and_records_no_generation() {
    let d = double();
    let s = driver(&d, &d.password);
    let mut cfg = leaf1(OS);
    // A port the switch does not have: its VLAN membership is refused.
    cfg.insert(stray_port(
        "Ethernet96",
        PortMode::Provisioning { vni: 9000, vlan: Some(4000), isolated: false },
    ));
    let m = failed(apply(&s, &empty(), &cfg, 1, false));
    assert!(
        m.contains("HTTP 400")
            && m.contains(
                "invalid-value: VLAN_MEMBER Vlan4000|Ethernet96: port Ethernet96 does not exist"
            ),
        "{m}"
    );
    assert_eq!(s.check(&cfg).unwrap().generation, None, "the generation is written last");
}

#[test]
fn changes_behind_the_drivers_back_are_drift_and_a_reapply_repairs_them() {
    let d = double();
    let s = driver(&d, &d.password);
    let cfg = applied_leaf1(&s, 1);
    {
        let mut st = d.state();
        st.db
            .get_mut("PORT")
            .unwrap()
            .get_mut("Ethernet4")
            .unwrap()
            .insert("admin_status".into(), "down".into());
        st.db.get_mut("VLAN_MEMBER").unwrap().remove("Vlan12|Ethernet4");
    }
    let checked = s.check(&cfg).unwrap();
    assert_eq!(drifted(&checked), [&ObjectId::Port("Ethernet4".into())]);
    assert_eq!(
        checked.drift[0].detail,
        "PORT|Ethernet4.admin_status: the switch has \"down\", expected \"up\"; VLAN_MEMBER|Vlan12|Ethernet4 is missing"
    );

    let repair = ops(&apply(&s, &cfg, &cfg, 1, false).unwrap());
    assert_eq!(
        repair,
        [
            json!({"op": "add", "path": "/VLAN_MEMBER/Vlan12|Ethernet4", "value": {"tagging_mode": "untagged"}}),
            json!({"op": "replace", "path": "/PORT/Ethernet4/admin_status", "value": "up"}),
        ]
    );
    assert!(s.check(&cfg).unwrap().drift.is_empty());
}
