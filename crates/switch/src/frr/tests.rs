//! The FRR/Linux driver's unit tests: command building, the generation
//! record, stale refusal and drift, through a recording runner.

use super::testing::{argv, leaf, Recorder};
use super::*;
use neocloud_fabric::{Object, ObjectId};
use std::sync::Arc;

/// A runner shared between the test and the driver.
struct Shared(Arc<Recorder>);

impl Runner for Shared {
    fn run(&self, argv: &[String], stdin: Option<&[u8]>) -> Result<Output> {
        self.0.run(argv, stdin)
    }
}

fn config() -> FrrLinuxConfig {
    FrrLinuxConfig::new(Transport::Nsenter { pid: 1 })
}

fn driver_with(config: FrrLinuxConfig, rec: Recorder) -> (FrrLinux, Arc<Recorder>) {
    let rec = Arc::new(rec);
    (FrrLinux::with_runner("leaf1", config, Box::new(Shared(rec.clone()))), rec)
}

fn driver(rec: Recorder) -> (FrrLinux, Arc<Recorder>) {
    driver_with(config(), rec)
}

fn empty() -> SwitchConfig {
    SwitchConfig::new(SwitchOs::Frr)
}

fn apply<'a>(actual: &'a SwitchConfig, desired: &'a SwitchConfig, generation: u64) -> Apply<'a> {
    Apply { actual, desired, generation, dry_run: false }
}

fn record(rec: &Recorder) -> Record {
    serde_json::from_str(&rec.files.lock().unwrap()["/var/lib/neocloud/applied.json"]).unwrap()
}

#[test]
fn a_first_apply_runs_the_steps_then_loads_frr_then_records_the_generation() {
    let (d, rec) = driver(Recorder::new());
    let desired = leaf();
    let out = d.apply(&apply(&empty(), &desired, 7)).unwrap();
    assert!(!out.dry_run);
    let changes = rec.changes();
    let pos = |pred: &dyn Fn(&Vec<String>) -> bool| changes.iter().position(pred).unwrap();
    let netns_add = pos(&|c| c[..] == argv(&["ip", "netns", "add", "Vrf5000"])[..]);
    let frr_write = pos(&|c| c.get(4).is_some_and(|p| p == "/etc/frr/frr.conf"));
    let reload = pos(&|c| c[0] == "/usr/lib/frr/frr-reload.py");
    let last_record = changes.len() - 1;
    assert!(netns_add < frr_write && frr_write < reload && reload < last_record);
    assert_eq!(changes[last_record][4], "/var/lib/neocloud/applied.json");
    assert_eq!(
        changes[reload],
        argv(&[
            "/usr/lib/frr/frr-reload.py",
            "--reload",
            "--confdir",
            "/etc/frr",
            "/etc/frr/frr.conf"
        ])
    );
    let files = rec.files.lock().unwrap().clone();
    assert_eq!(files["/etc/frr/frr.conf"], frr::render("leaf1", &desired).integrated);
    assert_eq!(record(&rec).generation, Some(7));
    assert!(!record(&rec).frr_reload_pending);
    // The reported steps are what ran, as shell lines.
    assert!(out.steps.contains(&"ip netns add Vrf5000".to_string()));
    let written = format!("write /etc/frr/frr.conf ({} bytes)", files["/etc/frr/frr.conf"].len());
    assert!(out.steps.contains(&written));
    assert_eq!(out.steps.last().unwrap(), "record generation 7 in /var/lib/neocloud/applied.json");
}

#[test]
fn an_older_generation_is_refused_before_anything_runs() {
    let (d, rec) = driver(Recorder::new());
    rec.files
        .lock()
        .unwrap()
        .insert("/var/lib/neocloud/applied.json".into(), r#"{"generation": 5}"#.into());
    for dry_run in [false, true] {
        let err = d.apply(&Apply { dry_run, ..apply(&empty(), &leaf(), 4) }).unwrap_err();
        assert_eq!(err, DriverError::Stale { device: 5, offered: 4 });
    }
    assert!(rec.changes().is_empty(), "{:?}", rec.changes());
    // The same or a newer generation is applied.
    d.apply(&apply(&empty(), &leaf(), 5)).unwrap();
    assert_eq!(record(&rec).generation, Some(5));
}

#[test]
fn a_dry_run_reads_but_changes_nothing_and_lists_what_a_real_run_does() {
    let (d, rec) = driver(Recorder::new());
    let dry = d.apply(&Apply { dry_run: true, ..apply(&empty(), &leaf(), 1) }).unwrap();
    assert!(dry.dry_run);
    assert!(rec.changes().is_empty(), "{:?}", rec.changes());
    assert!(rec.files.lock().unwrap().is_empty());
    let real = d.apply(&apply(&empty(), &leaf(), 1)).unwrap();
    assert_eq!(dry.steps, real.steps);
}

#[test]
fn the_same_apply_twice_runs_nothing_the_second_time() {
    let (d, rec) = driver(Recorder::new());
    let desired = leaf();
    d.apply(&apply(&empty(), &desired, 3)).unwrap();
    let before = rec.changes().len();
    // A retry (its answer was lost): same actual, desired, generation.
    let again = d.apply(&apply(&empty(), &desired, 3)).unwrap();
    assert!(again.steps.is_empty(), "{:?}", again.steps);
    // Converged: from the desired state to itself.
    let same = d.apply(&apply(&desired, &desired, 3)).unwrap();
    assert!(same.steps.is_empty(), "{:?}", same.steps);
    assert_eq!(rec.changes().len(), before);
    // A newer generation with nothing to change only records it.
    let newer = d.apply(&apply(&desired, &desired, 4)).unwrap();
    assert_eq!(newer.steps, ["record generation 4 in /var/lib/neocloud/applied.json"]);
}

#[test]
fn a_failing_step_stops_the_apply_with_the_command_and_its_error() {
    let mut rec = Recorder::new();
    rec.answer = Box::new(|c| {
        (c[..] == argv(&["ip", "netns", "add", "Vrf5000"])[..]).then(|| {
            Output::failed(1, "Cannot create namespace file \"/run/netns/Vrf5000\": File exists\n")
        })
    });
    let (d, rec) = driver(rec);
    let err = d.apply(&apply(&empty(), &leaf(), 1)).unwrap_err();
    assert_eq!(
        err,
        DriverError::Failed(
            "leaf1: `ip netns add Vrf5000` exited with status 1: Cannot create namespace file \"/run/netns/Vrf5000\": File exists".into()
        )
    );
    assert!(!err.is_transient());
    // Nothing after it ran: no FRR files, no record.
    assert!(rec.files.lock().unwrap().is_empty());
}

#[test]
fn removals_of_what_is_already_gone_succeed() {
    let mut rec = Recorder::new();
    rec.answer = Box::new(|c| match steps::tolerance(c) {
        steps::Tolerate::Absent => Some(Output::failed(1, "Cannot find device \"x\"\n")),
        _ => None,
    });
    let (d, _) = driver(rec);
    // Everything removed, on a switch that has none of it.
    d.apply(&apply(&leaf(), &empty(), 2)).unwrap();
}

#[test]
fn an_interrupted_apply_completes_when_run_again() {
    let desired = leaf();
    for cut in [3, 10, 25, 40] {
        let mut rec = Recorder::new();
        rec.cut_at = Some(cut);
        let (d, rec) = driver(rec);
        let err = d.apply(&apply(&empty(), &desired, 1)).unwrap_err();
        assert!(err.is_transient(), "{err}");
        // The connection is back; the same apply runs again.
        let (d2, rec2) = driver(Recorder::new());
        *rec2.files.lock().unwrap() = rec.files.lock().unwrap().clone();
        let out = d2.apply(&apply(&empty(), &desired, 1)).unwrap();
        assert!(!out.steps.is_empty());
        assert_eq!(record(&rec2).generation, Some(1));
    }
}

#[test]
fn an_interrupted_frr_load_is_redone_by_the_next_apply() {
    let mut rec = Recorder::new();
    rec.answer = Box::new(|c| {
        (c[0] == "/usr/lib/frr/frr-reload.py").then(|| Output::failed(1, "vtysh failed\n"))
    });
    let (d, rec) = driver(rec);
    let desired = leaf();
    assert!(matches!(d.apply(&apply(&empty(), &desired, 1)), Err(DriverError::Failed(_))));
    assert!(record(&rec).frr_reload_pending);
    // The files on the switch are already the new ones, yet the next
    // apply loads them, and only then records the generation.
    let files = rec.files.lock().unwrap().clone();
    let (d2, rec2) = driver(Recorder::new());
    *rec2.files.lock().unwrap() = files;
    let out = d2.apply(&apply(&empty(), &desired, 1)).unwrap();
    assert!(rec2.changes().iter().any(|c| c[0] == "/usr/lib/frr/frr-reload.py"), "{:?}", out.steps);
    assert!(!record(&rec2).frr_reload_pending);
    assert_eq!(record(&rec2).generation, Some(1));
}

#[test]
fn unchanged_frr_files_are_not_rewritten() {
    let (d, rec) = driver(Recorder::new());
    let a = leaf();
    d.apply(&apply(&empty(), &a, 1)).unwrap();
    // Disable the quarantined port: Linux only, FRR's files stay.
    let mut b = a.clone();
    if let Some(Object::Port(p)) = b.objects.get_mut(&ObjectId::Port("swp4".into())) {
        p.mode = neocloud_fabric::PortMode::Disabled;
    }
    let n = rec.changes().len();
    let out = d.apply(&apply(&a, &b, 2)).unwrap();
    let new: Vec<Vec<String>> = rec.changes()[n..].to_vec();
    assert!(!new.iter().any(|c| c[0] == "/usr/lib/frr/frr-reload.py"), "{:?}", out.steps);
    assert!(new.iter().any(|c| c[..] == argv(&["ip", "link", "set", "swp4", "down"])[..]));
}

#[test]
fn frr_reload_and_command_reloads_are_built_as_configured() {
    let mut c = config();
    c.config_dir = "/tmp/lab/leaf1/".into();
    c.reload = Reload::FrrReload {
        script: "/usr/lib/frr/frr-reload.py".into(),
        bindir: Some("/usr/bin".into()),
        vty_socket: Some("/tmp/lab/leaf1".into()),
        rundir: Some("/tmp/lab/leaf1".into()),
    };
    let d = FrrLinux::with_runner("leaf1", c.clone(), Box::new(Recorder::new()));
    assert_eq!(
        d.reload_commands(),
        [argv(&[
            "/usr/lib/frr/frr-reload.py",
            "--reload",
            "--confdir",
            "/tmp/lab/leaf1",
            "--bindir",
            "/usr/bin",
            "--vty_socket",
            "/tmp/lab/leaf1",
            "--rundir",
            "/tmp/lab/leaf1",
            "/tmp/lab/leaf1/frr.conf"
        ])]
    );
    c.files = FrrFileLayout::PerDaemon;
    c.reload = Reload::FrrReload {
        script: "frr-reload.py".into(),
        bindir: None,
        vty_socket: None,
        rundir: None,
    };
    let d = FrrLinux::with_runner("leaf1", c.clone(), Box::new(Recorder::new()));
    assert_eq!(
        d.reload_commands(),
        [
            argv(&[
                "frr-reload.py",
                "--reload",
                "--daemon",
                "zebra",
                "--confdir",
                "/tmp/lab/leaf1",
                "/tmp/lab/leaf1/zebra.conf"
            ]),
            argv(&[
                "frr-reload.py",
                "--reload",
                "--daemon",
                "bgpd",
                "--confdir",
                "/tmp/lab/leaf1",
                "/tmp/lab/leaf1/bgpd.conf"
            ]),
        ]
    );
    let files = d.frr_files(&frr::render("leaf1", &leaf()));
    assert_eq!(
        files.iter().map(|f| f.0.as_str()).collect::<Vec<_>>(),
        ["/tmp/lab/leaf1/zebra.conf", "/tmp/lab/leaf1/bgpd.conf"]
    );
    c.reload = Reload::Command { argv: argv(&["systemctl", "restart", "frr"]) };
    let d = FrrLinux::with_runner("leaf1", c, Box::new(Recorder::new()));
    assert_eq!(d.reload_commands(), [argv(&["systemctl", "restart", "frr"])]);
}

#[test]
fn config_reads_from_json_with_production_defaults() {
    let c: FrrLinuxConfig = serde_json::from_str(
        r#"{"transport": {"type": "ssh", "host": "192.168.0.1", "user": "neocloud", "identity_file": "/etc/neocloud/switch.key"}}"#,
    )
    .unwrap();
    assert_eq!(c.config_dir, "/etc/frr");
    assert_eq!(c.files, FrrFileLayout::Integrated);
    assert_eq!(c.reload, Reload::default());
    assert_eq!(c.state_dir, "/var/lib/neocloud");
    let lab: FrrLinuxConfig = serde_json::from_str(
        r#"{"transport": {"type": "nsenter", "pid": 4242}, "config_dir": "/tmp/l", "files": "per_daemon",
            "reload": {"method": "command", "argv": ["sh", "/tmp/l/restart"]}, "file_owner": "frr:frr",
            "state_dir": "/tmp/l/state", "command_timeout_s": 30}"#,
    )
    .unwrap();
    assert_eq!(lab.reload, Reload::Command { argv: argv(&["sh", "/tmp/l/restart"]) });
    let back: FrrLinuxConfig = serde_json::from_str(&serde_json::to_string(&lab).unwrap()).unwrap();
    assert_eq!(back, lab);
    assert!(serde_json::from_str::<FrrLinuxConfig>(
        r#"{"transport": {"type": "nsenter", "pid": 1}, "typo": 1}"#
    )
    .is_err());
}

#[test]
fn other_switch_oses_are_refused() {
    let (d, rec) = driver(Recorder::new());
    let sonic = SwitchConfig::new(SwitchOs::Sonic);
    assert!(matches!(d.apply(&apply(&empty(), &sonic, 1)), Err(DriverError::Unsupported(_))));
    assert!(matches!(d.check(&sonic), Err(DriverError::Unsupported(_))));
    assert!(rec.calls().is_empty());
    assert_eq!(d.os(), SwitchOs::Frr);
}

/// Answers the check's reads with the captured lab output.
fn captured() -> Recorder {
    let mut rec = Recorder::new();
    rec.answer = Box::new(|c| {
        let s: Vec<&str> = c.iter().map(String::as_str).collect();
        Some(match s.as_slice() {
            ["ip", "-j", "-d", "addr", "show"] => {
                Output::ok(include_str!("testdata/leaf1-underlay.json"))
            }
            ["ip", "-n", "Vrf5000", "-j", "-d", "addr", "show"] => {
                Output::ok(include_str!("testdata/leaf1-vrf.json"))
            }
            ["ip", "netns", "exec", "Vrf5000", "nft", ..] => {
                Output::ok(include_str!("testdata/nft-table.json"))
            }
            _ => return None,
        })
    });
    rec
}

#[test]
fn check_reads_the_record_and_finds_a_switch_as_given_in_sync() {
    let (d, rec) = driver(captured());
    let expected = leaf();
    rec.files.lock().unwrap().extend([
        ("/var/lib/neocloud/applied.json".to_string(), r#"{"generation": 9}"#.to_string()),
        ("/etc/frr/frr.conf".to_string(), frr::render("leaf1", &expected).integrated),
    ]);
    let checked = d.check(&expected).unwrap();
    assert_eq!(checked, Checked { generation: Some(9), drift: vec![] });
    assert!(rec.changes().iter().all(|c| c[0] == "ip"), "a check only reads");
}

#[test]
fn check_reports_one_drift_per_object_and_observed_drops_them() {
    let (d, rec) = driver(captured());
    let mut expected = leaf();
    // The switch was given a second port that it does not have, and
    // its FRR file lost the segment's export route target.
    expected.insert(Object::Port(neocloud_fabric::PortConfig {
        port: "swp7".into(),
        node: "a3".into(),
        nic: "eth0".into(),
        mode: neocloud_fabric::PortMode::Tenant { vni: 100, vlan: None, vrf: "Vrf5000".into() },
    }));
    let frr_conf = frr::render("leaf1", &expected)
        .integrated
        .replace("   route-target export 65000:100\n", "");
    rec.files.lock().unwrap().insert("/etc/frr/frr.conf".into(), frr_conf);
    let checked = d.check(&expected).unwrap();
    assert_eq!(checked.generation, None);
    assert_eq!(
        checked.drift,
        vec![
            Drift {
                object: ObjectId::Segment(100),
                detail: "frr.conf lacks `router bgp 65101 > address-family l2vpn evpn > vni 100 > route-target export 65000:100`".into()
            },
            Drift { object: ObjectId::Port("swp7".into()), detail: "swp7 is missing from namespace Vrf5000".into() },
        ]
    );
    let base = observed(&expected, &checked);
    assert_eq!(base.objects.len(), expected.objects.len() - 2);
    assert!(!base.objects.contains_key(&ObjectId::Segment(100)));
}

#[test]
fn a_missing_vrf_namespace_is_drift_not_an_error() {
    let mut rec = captured();
    let inner = std::mem::replace(&mut rec.answer, Box::new(|_| None));
    rec.answer = Box::new(move |c| {
        if c.get(2).is_some_and(|n| n == "Vrf5000") {
            return Some(Output::failed(
                255,
                "Cannot open network namespace \"Vrf5000\": No such file or directory\n",
            ));
        }
        inner(c)
    });
    let (d, _) = driver(rec);
    let checked = d.check(&leaf()).unwrap();
    let ids: Vec<String> = checked.drift.iter().map(|d| d.object.to_string()).collect();
    assert_eq!(ids, ["bgp", "vrf:Vrf5000", "segment:100", "port:swp2", "policy:100"]);
}
