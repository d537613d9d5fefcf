//! The FRR/Linux driver against real switches: the lab fabric (spine + 2
//! leaves, tenants A and B both on 10.100.0.0/24, a node of each on each
//! leaf) built from network namespaces and configured only by `FrrLinux`
//! (its `nsenter` transport), with real FRR (BGP EVPN, namespace VRFs).
//! A<->A and B<->B reach across the leaves, every A<->B pair is blocked, an
//! idle node reaches no tenant; the same apply again changes nothing; a
//! device deleted by hand is drift that `check` names and an apply from the
//! observed state repairs; a dry run changes nothing; an apply interrupted
//! half-way completes when run again; an older generation is refused; and
//! after A releases a node (re-planned, applied from the previous state)
//! A no longer reaches it while B is unaffected. Needs root and FRR; skips
//! loudly elsewhere (fails under CI: the test command installs FRR).

#[path = "../../fabric/tests/common/mod.rs"]
mod common;
mod nslab;

use common::*;
use neocloud_fabric::*;
use neocloud_switch::frr::{self, shell_line, FrrLinux, Output, Runner, TransportRunner};
use neocloud_switch::{Applied, Apply, Drift, DriverError, SwitchDriver};
use nslab::{FrrService, NsLab, FRR_RELOAD};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Convergence bound (the FRR floor here is about 3.3 s from daemon start).
const CONVERGE: Duration = Duration::from_secs(40);

/// How a lab switch's FRR takes up new files. The production path,
/// `frr-reload.py` into running daemons, where FRR's python tools are
/// installed and the switch has no VRFs: zebra `-n` shows each namespace
/// VRF with a `netns /run/netns/X` line that the rendered configuration
/// does not have, and FRR 8.4's frr-reload.py removes that line (which
/// deactivates the VRF). So leaves restart their daemons on new files.
fn service(switch: &Switch) -> FrrService {
    match (switch.role, Path::new(FRR_RELOAD).exists()) {
        (SwitchRole::Spine, true) => FrrService::Reload,
        (SwitchRole::Spine, false) => {
            static NOTE: std::sync::Once = std::sync::Once::new();
            NOTE.call_once(|| {
                eprintln!("NOTE: {FRR_RELOAD} missing (frr-pythontools): the spine restarts FRR")
            });
            FrrService::Restart
        }
        (SwitchRole::Leaf | SwitchRole::Border, _) => FrrService::Restart,
    }
}

fn service_of(lab: &Lab, name: &str) -> FrrService {
    service(lab.switches.iter().find(|s| s.name == name).unwrap())
}

/// The node's address and its network's gateway.
fn address(lab: &Lab, attachment: &str) -> (String, String) {
    let a = lab.intent.attachments.iter().find(|a| a.id == attachment).unwrap();
    let n = lab.intent.networks.iter().find(|n| n.id == a.network).unwrap();
    let ip = lab.alloc.addresses[&a.id];
    (format!("{ip}/{}", n.cidr.prefix()), n.gateway_ip().to_string())
}

fn ip_of(lab: &Lab, attachment: &str) -> String {
    lab.alloc.addresses[attachment].to_string()
}

type Drivers = BTreeMap<String, FrrLinux>;

fn config_of<'a>(
    state: &'a DesiredState,
    switch: &str,
    empty: &'a SwitchConfig,
) -> &'a SwitchConfig {
    state.switches.get(switch).unwrap_or(empty)
}

/// Applies `desired` on every switch at once (as a controller would),
/// each from what `actual` says it was given.
fn apply_all(
    drivers: &Drivers,
    actual: &DesiredState,
    desired: &DesiredState,
    generation: u64,
) -> BTreeMap<String, Applied> {
    let empty = SwitchConfig::new(SwitchOs::Frr);
    std::thread::scope(|s| {
        let handles: Vec<_> = drivers
            .iter()
            .map(|(name, d)| {
                let (a, w) = (config_of(actual, name, &empty), config_of(desired, name, &empty));
                s.spawn(move || {
                    let r = d.apply(&Apply { actual: a, desired: w, generation, dry_run: false });
                    (name.clone(), r.unwrap_or_else(|e| panic!("{name}: {e}")))
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

/// The real transport, cut like a lost connection at the first step equal
/// to `at`: a batch of steps (`sh -s`, its script on standard input) runs
/// up to that step, then nothing runs any more.
struct CutAt {
    inner: TransportRunner,
    at: Vec<String>,
    cut: AtomicBool,
}

impl Runner for CutAt {
    fn run(&self, argv: &[String], stdin: Option<&[u8]>) -> neocloud_switch::Result<Output> {
        let lost = || Err(DriverError::Unreachable("connection lost (cut by the test)".into()));
        if self.cut.load(Ordering::SeqCst) || argv == self.at.as_slice() {
            self.cut.store(true, Ordering::SeqCst);
            return lost();
        }
        let script = stdin.map(|s| String::from_utf8_lossy(s).into_owned()).unwrap_or_default();
        let step = format!(" {}\n", shell_line(&self.at));
        match (argv == ["sh", "-s"], script.find(&step)) {
            (true, Some(at)) => {
                let line = script[..at].rfind('\n').map_or(0, |n| n + 1);
                self.inner.run(argv, Some(&script.as_bytes()[..line]))?;
                self.cut.store(true, Ordering::SeqCst);
                lost()
            }
            _ => self.inner.run(argv, stdin),
        }
    }
}

fn cut_driver(ns: &NsLab, switch: &str, service: FrrService, at: &[&str]) -> FrrLinux {
    let config = ns.driver_config(switch, service);
    let inner = TransportRunner {
        transport: config.transport.clone(),
        timeout: Duration::from_secs(config.command_timeout_s),
    };
    let at = at.iter().map(|s| s.to_string()).collect();
    FrrLinux::with_runner(
        switch,
        config,
        Box::new(CutAt { inner, at, cut: AtomicBool::new(false) }),
    )
}

fn argv(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

/// What can change on a switch, for "nothing changed": every device in
/// every namespace with its index (a re-created device gets a new one),
/// master, state, MAC, addresses and VNI; each VRF's nftables ruleset;
/// the FRR files, the driver's record and the daemons' pids.
fn snapshot(ns: &NsLab, switch: &str) -> String {
    let links = |netns: Option<&str>| {
        let mut c = argv(&["ip"]);
        if let Some(n) = netns {
            c.extend(argv(&["-n", n]));
        }
        c.extend(argv(&["-j", "-d", "addr", "show"]));
        let v: serde_json::Value = serde_json::from_str(&ns.run(switch, &c).unwrap()).unwrap();
        let mut out = String::new();
        for l in v.as_array().unwrap() {
            let inet: Vec<String> = l["addr_info"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|a| a["family"] == "inet")
                .map(|a| format!("{}/{}", a["local"], a["prefixlen"]))
                .collect();
            let up = l["flags"].as_array().unwrap().iter().any(|f| f == "UP");
            out.push_str(&format!(
                "{} #{} master={} up={up} mac={} inet={inet:?} vni={}\n",
                l["ifname"],
                l["ifindex"],
                l["master"],
                l["address"],
                l["linkinfo"]["info_data"]["id"]
            ));
        }
        out
    };
    let mut out = format!("== {switch}\n{}", links(None));
    let list: serde_json::Value =
        serde_json::from_str(&ns.run(switch, &argv(&["ip", "-j", "netns", "list"])).unwrap())
            .unwrap();
    for n in list.as_array().unwrap() {
        let name = n["name"].as_str().unwrap();
        if name == "underlay" {
            continue;
        }
        out.push_str(&format!("== {name}\n{}", links(Some(name))));
        out.push_str(
            &ns.run(switch, &argv(&["ip", "netns", "exec", name, "nft", "list", "ruleset"]))
                .unwrap(),
        );
    }
    let dir = ns.dir(switch);
    for f in ["zebra.conf", "bgpd.conf", "frr.conf", "state/applied.json", "zebra.pid", "bgpd.pid"]
    {
        out.push_str(&format!(
            "== {f}\n{}",
            std::fs::read_to_string(dir.join(f)).unwrap_or_default()
        ));
    }
    out
}

/// The namespaces, cables and nodes of the lab; the switches up with FRR
/// running but unconfigured (`FrrService::Reload`) or not yet started.
fn machines(lab: &Lab, tag: &str, only: Option<&str>) -> NsLab {
    let mut ns = NsLab::new(tag);
    let wanted = |s: &str| only.is_none_or(|o| o == s);
    for s in lab.switches.iter().filter(|s| wanted(&s.name)) {
        ns.switch(&s.name, service(s));
    }
    for s in lab.switches.iter().filter(|_| only.is_none()) {
        for fp in s.fabric_ports.iter().filter(|fp| s.name < fp.peer) {
            let peer = lab.switches.iter().find(|p| p.name == fp.peer).unwrap();
            let back = peer.fabric_ports.iter().find(|p| p.peer == s.name).unwrap();
            ns.cable(&s.name, &fp.port, &peer.name, &back.port);
        }
    }
    for l in lab.links.iter().filter(|l| wanted(&l.switch)) {
        ns.nic(&l.node, &l.nic, &l.switch, &l.port);
    }
    for a in &lab.intent.attachments {
        let node_here = lab.links.iter().any(|l| l.node == a.node && wanted(&l.switch));
        if node_here {
            let (cidr, gw) = address(lab, &a.id);
            ns.address(&a.node, &a.nic, &cidr, &gw);
        }
    }
    ns
}

fn drivers(ns: &NsLab, lab: &Lab, only: Option<&str>) -> Drivers {
    lab.switches
        .iter()
        .filter(|s| only.is_none_or(|o| o == s.name))
        .map(|s| (s.name.clone(), FrrLinux::new(&s.name, ns.driver_config(&s.name, service(s)))))
        .collect()
}

/// The tenant segment of `network` on `switch`: (VNI, VRF).
fn segment_of(d: &DesiredState, switch: &str, network: &str) -> (u32, String) {
    d.switches[switch]
        .objects
        .values()
        .find_map(|o| match o {
            Object::Segment(SegmentConfig {
                vni,
                purpose: SegmentPurpose::Tenant { network: n, vrf, .. },
                ..
            }) if n == network => Some((*vni, vrf.clone())),
            _ => None,
        })
        .unwrap()
}

/// The port of `node` on `switch`.
fn port_of(d: &DesiredState, switch: &str, node: &str) -> String {
    d.switches[switch]
        .objects
        .values()
        .find_map(|o| match o {
            Object::Port(p) if p.node == node => Some(p.port.clone()),
            _ => None,
        })
        .unwrap()
}

fn assert_in_sync(drivers: &Drivers, d: &DesiredState, generation: u64) {
    for (name, drv) in drivers {
        let c = drv.check(&d.switches[name]).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(c.drift, vec![], "{name} drifted");
        assert_eq!(c.generation, Some(generation), "{name}");
    }
}

#[test]
fn tenants_reach_their_own_nodes_across_leaves_and_never_each_other() {
    let Some(()) = NsLab::available() else { return };
    let mut lab = Lab::new(SwitchOs::Frr);
    let ns = machines(&lab, "nf", None);
    let drivers = drivers(&ns, &lab, None);
    let (a2, b2) = (ip_of(&lab, "att-a2"), ip_of(&lab, "att-b2"));
    let (a1, b1) = (ip_of(&lab, "att-a1"), ip_of(&lab, "att-b1"));
    // Same subnet for both tenants, different VNIs and VRFs.
    assert!(a1.starts_with("10.100.0.") && b1.starts_with("10.100.0."));

    // From here on: what a tenant's intent costs until its first packet
    // (the cabled, running machines are the lab's, not the intent's).
    let intent = Instant::now();
    let before = lab.plan();
    let applied = apply_all(&drivers, &DesiredState::default(), &before, 1);
    let apply_time = intent.elapsed();
    // Each tenant reaches its node on the other leaf.
    ns.wait_reach("a1", &a2, CONVERGE);
    let first = intent.elapsed();
    ns.wait_reach("b1", &b2, CONVERGE);
    ns.wait_reach("a2", &a1, CONVERGE);
    // Plan, apply through the driver on every switch (netdev steps, FRR
    // files and load), first packet: an upper bound for intent on running
    // switches.
    eprintln!(
        "intent to first cross-leaf packet {first:?} (applies {apply_time:?}, {} steps)",
        applied.values().map(|a| a.steps.len()).sum::<usize>()
    );
    // The tenants never reach each other: every address of the other
    // tenant that is not also one of their own (a1 and b1 share one: a
    // ping to it stays in the pinging tenant's network).
    let (a_ips, b_ips) = ([&a1, &a2], [&b1, &b2]);
    let mut checked = 0;
    for (nodes, own, other) in [(["a1", "a2"], a_ips, b_ips), (["b1", "b2"], b_ips, a_ips)] {
        for from in nodes {
            for to in other.iter().filter(|ip| !own.contains(ip)) {
                assert!(!ns.ping(from, to), "{from} reached {to}\n{}", ns.diagnostics());
                checked += 1;
            }
        }
    }
    assert_eq!(checked, 4, "a1/b1 share an address, a2 and b2 do not");
    // An idle node (quarantined in the provisioning network) reaches no tenant.
    for to in [&a1, &a2, &b1, &b2] {
        assert!(!ns.ping("c1", to), "the idle node reached {to}");
    }
    let t = Instant::now();
    assert_in_sync(&drivers, &before, 1);
    eprintln!("check of 3 switches: {:?}", t.elapsed());

    // The same apply again (a retry whose answer was lost), and an apply
    // from the converged state: nothing runs, nothing changes.
    let snaps: Vec<String> = drivers.keys().map(|s| snapshot(&ns, s)).collect();
    for again in [
        apply_all(&drivers, &DesiredState::default(), &before, 1),
        apply_all(&drivers, &before, &before, 1),
    ] {
        for (name, a) in again {
            assert_eq!(a.steps, Vec::<String>::new(), "{name}");
        }
    }
    assert_eq!(drivers.keys().map(|s| snapshot(&ns, s)).collect::<Vec<_>>(), snaps);

    // Drift: A's VXLAN device deleted by hand on leaf1, B's access port
    // detached from its bridge on leaf2.
    let (vni_a, vrf_a) = segment_of(&before, "leaf1", "net-a");
    let (_, vrf_b) = segment_of(&before, "leaf2", "net-b");
    let port_b2 = port_of(&before, "leaf2", "b2");
    let vx = format!("vni{vni_a}");
    ns.run("leaf1", &argv(&["ip", "-n", &vrf_a, "link", "del", &vx])).unwrap();
    ns.run("leaf2", &argv(&["ip", "-n", &vrf_b, "link", "set", &port_b2, "nomaster"])).unwrap();
    assert!(!ns.ping("a1", &a2), "A still crosses the leaves without its VXLAN device");
    assert!(!ns.ping("b1", &b2), "B still reaches a detached port");
    let drift = |sw: &str| drivers[sw].check(&before.switches[sw]).unwrap();
    let (c1, c2) = (drift("leaf1"), drift("leaf2"));
    assert_eq!(
        c1.drift,
        vec![Drift {
            object: ObjectId::Segment(vni_a),
            detail: format!("{vx} is missing from namespace {vrf_a}")
        }]
    );
    assert_eq!(
        c2.drift,
        vec![Drift {
            object: ObjectId::Port(port_b2.clone()),
            detail: format!(
                "{port_b2} is attached to no bridge, not br{}",
                segment_of(&before, "leaf2", "net-b").0
            )
        }]
    );
    assert_eq!(drift("spine").drift, vec![]);
    // Repaired by applying from what the check observed.
    let t = Instant::now();
    for (sw, c) in [("leaf1", &c1), ("leaf2", &c2)] {
        let observed = frr::observed(&before.switches[sw], c);
        let a = drivers[sw]
            .apply(&Apply {
                actual: &observed,
                desired: &before.switches[sw],
                generation: 1,
                dry_run: false,
            })
            .unwrap();
        assert!(!a.steps.is_empty());
    }
    ns.wait_reach("a1", &a2, CONVERGE);
    ns.wait_reach("b1", &b2, CONVERGE);
    eprintln!("drift repaired, tenants reach again after {:?}", t.elapsed());
    assert_in_sync(&drivers, &before, 1);

    // A releases a2: re-planned, applied from the previous state.
    lab.intent.attachments.retain(|a| a.id != "att-a2");
    lab.reallocate().unwrap();
    let after = lab.plan();
    assert!(!after.switches["leaf2"].objects.contains_key(&ObjectId::Vrf(vrf_a.clone())));
    let leaf2 = |dry_run| Apply {
        actual: &before.switches["leaf2"],
        desired: &after.switches["leaf2"],
        generation: 2,
        dry_run,
    };
    // A dry run says what it would do and does none of it.
    let snap = snapshot(&ns, "leaf2");
    let dry = drivers["leaf2"].apply(&leaf2(true)).unwrap();
    assert!(dry.dry_run);
    assert!(dry.steps.contains(&format!("ip netns del {vrf_a}")), "{:#?}", dry.steps);
    assert_eq!(snapshot(&ns, "leaf2"), snap);
    // Interrupted after the port left A's VRF, before its namespace goes.
    let cut = cut_driver(&ns, "leaf2", service_of(&lab, "leaf2"), &["ip", "netns", "del", &vrf_a]);
    match cut.apply(&leaf2(false)) {
        Err(DriverError::Unreachable(_)) => {}
        other => panic!("{other:?}"),
    }
    assert_ne!(snapshot(&ns, "leaf2"), snap, "the interrupted apply did part of its work");
    assert_eq!(drivers["leaf2"].check(&before.switches["leaf2"]).unwrap().generation, Some(1));
    // Run again (on every switch): it completes.
    let t = Instant::now();
    let applied = apply_all(&drivers, &before, &after, 2);
    eprintln!("release applied in {:?}", t.elapsed());
    // leaf1 and the spine keep their configuration: only the generation.
    for sw in ["leaf1", "spine"] {
        assert_eq!(applied[sw].steps.len(), 1, "{sw}: {:?}", applied[sw].steps);
    }
    // B is unaffected; A no longer reaches the released node.
    ns.wait_reach("b1", &b2, CONVERGE);
    for _ in 0..3 {
        assert!(!ns.ping("a1", &a2), "A still reaches its released node\n{}", ns.diagnostics());
    }
    assert_in_sync(&drivers, &after, 2);
    // A replica with the old plan is refused, and changes nothing.
    let snap = snapshot(&ns, "leaf2");
    let stale = drivers["leaf2"].apply(&Apply {
        actual: &after.switches["leaf2"],
        desired: &before.switches["leaf2"],
        generation: 1,
        dry_run: false,
    });
    assert_eq!(stale.unwrap_err(), DriverError::Stale { device: 2, offered: 1 });
    assert_eq!(snapshot(&ns, "leaf2"), snap);
}

#[test]
fn an_interrupted_first_build_completes_when_run_again() {
    let Some(()) = NsLab::available() else { return };
    let lab = Lab::new(SwitchOs::Frr);
    let service = service_of(&lab, "leaf1");
    let ns = machines(&lab, "ni", Some("leaf1"));
    let d = lab.plan();
    let leaf1 = &d.switches["leaf1"];
    let (vni_a, vrf_a) = segment_of(&d, "leaf1", "net-a");
    let port_a1 = port_of(&d, "leaf1", "a1");
    // Cut after A's port moved into its VRF, before it joins the bridge.
    let br = format!("br{vni_a}");
    let cut = cut_driver(
        &ns,
        "leaf1",
        service,
        &["ip", "-n", &vrf_a, "link", "set", &port_a1, "master", &br],
    );
    let empty = SwitchConfig::new(SwitchOs::Frr);
    let apply = Apply { actual: &empty, desired: leaf1, generation: 1, dry_run: false };
    assert!(matches!(cut.apply(&apply), Err(DriverError::Unreachable(_))));
    ns.run("leaf1", &argv(&["ip", "-n", &vrf_a, "link", "show", &port_a1]))
        .expect("the port was left in the VRF");
    let drv = FrrLinux::new("leaf1", ns.driver_config("leaf1", service));
    let checked = drv.check(leaf1).unwrap();
    assert_eq!(checked.generation, None);
    assert!(
        checked.drift.iter().any(|x| x.object == ObjectId::Port(port_a1.clone())),
        "{checked:#?}"
    );
    // The same apply again completes it.
    drv.apply(&apply).unwrap();
    assert_eq!(
        drv.check(leaf1).unwrap(),
        neocloud_switch::Checked { generation: Some(1), drift: vec![] }
    );
}
