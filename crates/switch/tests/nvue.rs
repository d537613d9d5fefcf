//! The NVUE driver's real HTTP path against the NVUE REST double: a leaf
//! converges from empty through one revision, a re-apply changes nothing,
//! a removed tenant network is unset, dry runs write nothing, an older
//! generation is refused, credentials and outages map to their errors, an
//! invalid revision fails with NVUE's reasons, and changes made behind the
//! driver's back show up as drift (and a re-apply repairs them).

mod common;

use common::*;
use neocloud_common::http_double::Response;
use neocloud_fabric::{ObjectId, PortMode, SwitchConfig, SwitchOs};
use neocloud_switch::double::nvue::NvueDouble;
use neocloud_switch::nvue::{Nvue, NvueConfig};
use neocloud_switch::{DriverError, SwitchDriver};
use serde_json::json;
use std::time::Duration;

const OS: SwitchOs = SwitchOs::CumulusNvue;

fn driver(d: &NvueDouble, password: &str) -> Nvue {
    let mut cfg = NvueConfig::new("leaf1", &d.url, &d.username, password);
    cfg.timeout = TIMEOUT;
    cfg.poll_interval = Duration::from_millis(1);
    Nvue::new(cfg)
}

fn empty() -> SwitchConfig {
    SwitchConfig::new(OS)
}

#[test]
fn converges_from_empty_in_one_revision_and_reapplies_nothing() {
    let d = NvueDouble::start();
    let nv = driver(&d, &d.password);
    let cfg = leaf1(OS);

    let steps = apply(&nv, &empty(), &cfg, 1, false).unwrap();
    assert_eq!(steps.len(), 4, "create, one PATCH (nothing to unset), apply, save: {steps:?}");
    let calls: Vec<String> = d.state().requests.iter().map(|r| r.line()).collect();
    assert_eq!(
        calls,
        [
            "GET /nvue_v1/?rev=applied&filled=false",
            "POST /nvue_v1/revision",
            "PATCH /nvue_v1/?rev=changeset/cumulus/1",
            "PATCH /nvue_v1/revision/changeset/cumulus/1",
            "GET /nvue_v1/revision/changeset/cumulus/1",
            "GET /nvue_v1/revision/changeset/cumulus/1",
            "PATCH /nvue_v1/revision/applied",
        ]
    );
    {
        let st = d.state();
        let rev = &st.requests[3].body;
        assert_eq!(rev, &json!({"state": "apply", "auto-prompt": {"ays": "ays_yes"}}));
        assert_eq!(st.revisions["changeset/cumulus/1"].state, "applied");
        let a = &st.applied;
        assert_eq!(a["system"]["hostname"], "leaf1");
        assert_eq!(a["interface"]["eth0"]["description"], "neocloud generation 1");
        // The management interface the driver did not own is untouched.
        assert_eq!(a["interface"]["eth0"]["ip"]["vrf"], "mgmt");
        assert_eq!(a["interface"]["swp2"]["bridge"]["domain"]["br_default"]["access"], 10);
        assert_eq!(a["vrf"]["Vrf5001"]["evpn"]["vni"], json!({"5001": {}}));
        assert_eq!(st.startup, st.applied, "saved to startup");
    }
    assert_in_sync(&nv, &cfg, 1);

    // Again: one read, nothing written.
    let writes = d.state().writes().len();
    assert!(apply(&nv, &cfg, &cfg, 1, false).unwrap().is_empty());
    assert_eq!(d.state().writes().len(), writes);
    assert_eq!(d.state().requests.last().unwrap().line(), "GET /nvue_v1/?rev=applied&filled=false");
}

#[test]
fn a_removed_network_is_unset_and_dry_runs_write_nothing() {
    let d = NvueDouble::start();
    let nv = driver(&d, &d.password);
    let (before, after) = leaf1_before_and_after_removing(OS, "net-b");
    apply(&nv, &empty(), &before, 1, false).unwrap();

    let applied = d.state().applied.clone();
    let writes = d.state().writes().len();
    let dry = apply(&nv, &before, &after, 2, true).unwrap();
    assert!(dry.iter().any(|s| s.contains("\"Vrf5001\":null")), "{dry:?}");
    assert_eq!(d.state().writes().len(), writes, "a dry run writes nothing");
    assert_eq!(d.state().applied, applied);
    assert!(d.state().revisions.len() == 1, "no revision created");

    let steps = apply(&nv, &before, &after, 2, false).unwrap();
    assert_eq!(steps.len(), 5, "create, unset, set, apply, save: {steps:?}");
    let st = d.state();
    let a = &st.applied;
    assert!(a["vrf"].get("Vrf5001").is_none());
    assert!(a["vrf"].get("Vrf5000").is_some());
    assert!(a["interface"].get("vlan11").is_none());
    assert!(a["evpn"]["vni"].get("101").is_none());
    assert!(a["bridge"]["domain"]["br_default"]["vlan"].get("11").is_none());
    // b1 is idle now: its port is quarantined in the provisioning VLAN.
    assert_eq!(a["interface"]["swp3"]["bridge"]["domain"]["br_default"]["access"], 4000);
    assert_eq!(a["interface"]["eth0"]["description"], "neocloud generation 2");
    drop(st);
    assert!(nv.check(&after).unwrap().drift.is_empty());
}

#[test]
fn an_older_generation_is_refused_and_writes_nothing() {
    let d = NvueDouble::start();
    let nv = driver(&d, &d.password);
    let cfg = applied_leaf1(&nv, 5);
    let writes = d.state().writes().len();
    assert_refuses_generation_4(&nv, &cfg);
    assert_eq!(d.state().writes().len(), writes);
}

#[test]
fn credentials_and_outages_map_to_their_errors() {
    let d = NvueDouble::start();
    let cfg = leaf1(OS);
    assert_unauthorized(&driver(&d, "wrong"), &cfg);

    let nv = driver(&d, &d.password);
    d.server.fail_next(Response::text(503, "nvued is restarting"));
    match apply(&nv, &empty(), &cfg, 1, false) {
        Err(e @ DriverError::Unreachable(_)) => {
            assert!(e.is_transient() && e.to_string().contains("nvued is restarting"))
        }
        other => panic!("{other:?}"),
    }
    // Nothing was staged; the next try converges.
    assert!(d.state().revisions.is_empty());
    apply(&nv, &empty(), &cfg, 1, false).unwrap();

    let gone = Nvue::new(NvueConfig::new("leaf1", "http://127.0.0.1:9", "u", "p"));
    assert!(matches!(gone.check(&cfg), Err(DriverError::Unreachable(_))));
}

#[test]
fn an_invalid_revision_fails_with_nvues_reasons() {
    let d = NvueDouble::start();
    let nv = driver(&d, &d.password);
    // A port in a VLAN no segment maps: NVUE refuses it at apply.
    let mut cfg = empty();
    cfg.insert(stray_port(
        "swp7",
        PortMode::Provisioning { vni: 9000, vlan: Some(77), isolated: false },
    ));
    let m = failed(apply(&nv, &empty(), &cfg, 1, false));
    assert!(
        m.contains("\"invalid\"") && m.contains("access VLAN 77 is not in bridge domain"),
        "{m}"
    );
    assert!(d.state().applied["interface"].get("swp7").is_none(), "nothing applied");
}

#[test]
fn changes_behind_the_drivers_back_are_drift_and_a_reapply_repairs_them() {
    let d = NvueDouble::start();
    let nv = driver(&d, &d.password);
    let cfg = applied_leaf1(&nv, 1);
    {
        let mut st = d.state();
        st.applied["interface"]["swp2"]["bridge"]["domain"]["br_default"]["access"] = json!(11);
        st.applied["vrf"].as_object_mut().unwrap().remove("Vrf5000");
    }
    let checked = nv.check(&cfg).unwrap();
    assert_eq!(
        drifted(&checked),
        [&ObjectId::Vrf("Vrf5000".into()), &ObjectId::Port("swp2".into())]
    );
    assert_eq!(checked.drift[0].detail, "vrf.Vrf5000 is missing");
    assert_eq!(
        checked.drift[1].detail,
        "interface.swp2.bridge.domain.br_default.access: the switch has 11, expected 10"
    );

    // The same generation again repairs exactly the drifted objects.
    let steps = apply(&nv, &cfg, &cfg, 1, false).unwrap();
    let set = steps.iter().find(|s| s.contains("Vrf5000")).expect("the VRF is set again");
    assert!(set.contains("\"swp2\"") && !set.contains("\"swp3\""), "{set}");
    assert!(nv.check(&cfg).unwrap().drift.is_empty());
}
