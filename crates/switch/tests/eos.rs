//! The EOS driver's real HTTP path against the eAPI double: a leaf
//! converges from empty in one committed configure session, a re-apply
//! sends nothing, a removed tenant network is negated, a dry run validates
//! in a session it aborts (nothing committed), an older generation is
//! refused, credentials and outages map to their errors, a refused command
//! fails the apply and leaves no pending session, and changes made at the
//! console show up as drift (and a re-apply repairs them).

mod common;

use common::*;
use neocloud_common::http_double::Response;
use neocloud_fabric::{ObjectId, PortMode, SwitchConfig, SwitchOs};
use neocloud_switch::double::eos::EosDouble;
use neocloud_switch::double::lab::ports;
use neocloud_switch::eos::{Eos, EosConfig};
use neocloud_switch::{DriverError, SwitchDriver};

const OS: SwitchOs = SwitchOs::AristaEos;

fn double() -> EosDouble {
    EosDouble::start(&ports(OS))
}

fn driver(d: &EosDouble, password: &str) -> Eos {
    let mut cfg = EosConfig::new("leaf1", &d.url, &d.username, password);
    cfg.timeout = TIMEOUT;
    Eos::new(cfg)
}

fn empty() -> SwitchConfig {
    SwitchConfig::new(OS)
}

fn section_lines(d: &EosDouble, header: &str) -> Vec<String> {
    d.state()
        .section(header)
        .map(|n| n.children.iter().map(|c| c.line.clone()).collect())
        .unwrap_or_default()
}

#[test]
fn converges_from_empty_in_one_session_and_reapplies_nothing() {
    let d = double();
    let eos = driver(&d, &d.password);
    let cfg = leaf1(OS);

    let steps = apply(&eos, &empty(), &cfg, 1, false).unwrap();
    {
        let st = d.state();
        assert_eq!(st.calls.len(), 2, "read, then one session");
        assert_eq!(st.calls[0].cmds, ["enable", "show running-config"]);
        assert_eq!(st.calls[0].format, "text");
        let run = &st.calls[1].cmds;
        assert_eq!(run[0], "enable");
        assert!(run[1].starts_with("configure session neocloud-1-"), "{}", run[1]);
        assert_eq!(run[run.len() - 2..], ["commit", "copy running-config startup-config"]);
        assert_eq!(&run[1..], &steps[..]);
        assert_eq!(st.committed.len(), 1);
        assert!(st.sessions.is_empty(), "nothing left pending");
        assert_eq!(st.startup, st.running, "saved");
    }
    assert_eq!(
        section_lines(&d, "interface Ethernet2"),
        ["description node a1 nic eth0", "switchport access vlan 12"],
        "`no shutdown` is the default: not shown"
    );
    assert_eq!(
        section_lines(&d, "interface Management1"),
        ["ip address 192.168.0.10/24", "description neocloud generation 1"],
        "the management address is untouched"
    );
    assert!(d.state().section("router bgp 65101").is_some());
    assert!(d.state().section("management api http-commands").is_some());
    assert_in_sync(&eos, &cfg, 1);

    assert!(apply(&eos, &cfg, &cfg, 1, false).unwrap().is_empty());
    let st = d.state();
    assert_eq!(st.calls.len(), 4, "a check and the re-apply's read: {:?}", st.calls);
    assert!(st.calls[2..].iter().all(|c| c.cmds == ["enable", "show running-config"]));
}

#[test]
fn a_removed_network_is_negated_and_a_dry_run_commits_nothing() {
    let d = double();
    let eos = driver(&d, &d.password);
    let (before, after) = leaf1_before_and_after_removing(OS, "net-b");
    apply(&eos, &empty(), &before, 1, false).unwrap();

    let running = d.state().running.clone();
    let dry = apply(&eos, &before, &after, 2, true).unwrap();
    assert!(dry.contains(&"no vrf instance Vrf5001".to_string()), "{dry:?}");
    let diff = dry.last().unwrap();
    assert!(diff.starts_with("show session-config diffs\n--- system:/running-config"), "{diff}");
    assert!(diff.contains("\n-vrf instance Vrf5001\n"), "{diff}");
    {
        let st = d.state();
        assert_eq!(st.running, running, "a dry run changes nothing");
        assert_eq!(st.committed.len(), 1);
        assert!(st.sessions.is_empty(), "the dry run's session was aborted");
        let cmds = &st.calls.last().unwrap().cmds;
        assert_eq!(cmds[cmds.len() - 2..], ["show session-config diffs", "abort"]);
    }

    apply(&eos, &before, &after, 2, false).unwrap();
    let st = d.state();
    for gone in ["vrf instance Vrf5001", "interface Vlan13", "vlan 13", "ip routing vrf Vrf5001"] {
        assert!(st.section(gone).is_none(), "{gone} removed");
    }
    let bgp: Vec<&str> =
        st.section("router bgp 65101").unwrap().children.iter().map(|c| c.line.as_str()).collect();
    assert!(
        bgp.contains(&"vrf Vrf5000") && !bgp.contains(&"vrf Vrf5001") && !bgp.contains(&"vlan 13"),
        "{bgp:?}"
    );
    drop(st);
    // b1 is idle now: its port is in the provisioning VLAN.
    assert_eq!(section_lines(&d, "interface Ethernet3")[1], "switchport access vlan 4000");
    assert!(eos.check(&after).unwrap().drift.is_empty());
}

#[test]
fn an_older_generation_is_refused_and_nothing_is_sent() {
    let d = double();
    let eos = driver(&d, &d.password);
    let cfg = applied_leaf1(&eos, 5);
    let calls = d.state().calls.len();
    assert_refuses_generation_4(&eos, &cfg);
    assert_eq!(d.state().calls.len(), calls + 2, "only the two reads");
}

#[test]
fn credentials_and_outages_map_to_their_errors() {
    let d = double();
    let cfg = leaf1(OS);
    assert_unauthorized(&driver(&d, "wrong"), &cfg);

    let eos = driver(&d, &d.password);
    d.server.fail_next(Response::text(502, "Bad Gateway"));
    assert!(matches!(apply(&eos, &empty(), &cfg, 1, false), Err(DriverError::Unreachable(_))));
    assert!(d.state().calls.is_empty());
    apply(&eos, &empty(), &cfg, 1, false).unwrap();
}

#[test]
fn a_refused_command_fails_the_apply_and_leaves_no_session() {
    let d = double();
    let eos = driver(&d, &d.password);
    let mut cfg = leaf1(OS);
    // A port the switch does not have.
    cfg.insert(stray_port("Ethernet99", PortMode::Disabled));
    let running = d.state().running.clone();
    let m = failed(apply(&eos, &empty(), &cfg, 1, false));
    assert!(
        m.contains("'interface Ethernet99' failed: invalid command") && m.contains("Invalid input"),
        "{m}"
    );
    let st = d.state();
    assert!(st.sessions.is_empty(), "the failed session was aborted");
    assert_eq!(st.calls.last().unwrap().cmds[2], "abort");
    assert_eq!(st.running, running, "nothing committed");
}

#[test]
fn console_changes_are_drift_and_a_reapply_repairs_them() {
    let d = double();
    let eos = driver(&d, &d.password);
    let cfg = applied_leaf1(&eos, 1);
    d.console(&[
        "interface Ethernet2",
        "switchport access vlan 13",
        "exit",
        "router bgp 65101",
        "vlan 12",
        "no rd",
        "exit",
        "exit",
    ])
    .unwrap();

    let checked = eos.check(&cfg).unwrap();
    assert_eq!(drifted(&checked), [&ObjectId::Segment(100), &ObjectId::Port("Ethernet2".into())]);
    assert_eq!(checked.drift[0].detail, "missing `router bgp 65101 > vlan 12 > rd 10.0.0.1:12`");
    assert_eq!(
        checked.drift[1].detail,
        "missing `interface Ethernet2 > switchport access vlan 12`"
    );

    let steps = apply(&eos, &cfg, &cfg, 1, false).unwrap();
    assert!(steps.contains(&"default interface Ethernet2".to_string()), "{steps:?}");
    assert!(
        !steps.contains(&"interface Ethernet3".to_string()),
        "untouched sections are not resent"
    );
    assert!(eos.check(&cfg).unwrap().drift.is_empty());
}
