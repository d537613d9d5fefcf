//! Diff properties over seeded random-ish intent changes: applying the diff
//! to actual yields desired, changes are ordered (removals, dependents
//! first, before additions), and the FRR/Linux convergence steps, run on a
//! strict model of Linux, reach the same state as building desired from
//! scratch.

mod common;
mod linux_sim;

use common::*;
use linux_sim::Sim;
use neocloud_fabric::render::linux;
use neocloud_fabric::*;

/// A topology for `os` with leaf2 as a border (so north-south is planned).
fn topology(os: SwitchOs) -> (Fabric, Vec<Switch>, Vec<Link>) {
    let mut s = switches(os);
    s[2].role = SwitchRole::Border;
    (fabric(), s, links(os))
}

/// Mutations a second intent gets on top of a fresh random one, to reach
/// in-place and re-create paths: a gateway move and a network moving VPC.
fn mutate(rng: &mut Rng, mut intent: Intent) -> Intent {
    if rng.chance(40) && !intent.networks.is_empty() {
        let k = rng.below(intent.networks.len() as u64) as usize;
        let last = intent.networks[k].cidr.host_range().1;
        intent.networks[k].gateway = Some(std::net::Ipv4Addr::from(last));
        // An attachment may already sit on the new gateway: let IPAM move it.
        let id = intent.networks[k].id.clone();
        for a in intent.attachments.iter_mut().filter(|a| a.network == id) {
            a.ip = None;
        }
    }
    if rng.chance(40) && intent.vpcs.len() > 1 && !intent.networks.is_empty() {
        let k = rng.below(intent.networks.len() as u64) as usize;
        let other =
            intent.vpcs.iter().find(|v| v.id != intent.networks[k].vpc).map(|v| v.id.clone());
        if let Some(v) = other {
            intent.networks[k].vpc = v;
            intent.networks[k].cidr = net("10.99.0.0/24");
            intent.networks[k].gateway = None;
            let id = intent.networks[k].id.clone();
            intent.security_rules.retain(|r| r.from != id && r.to != id);
        }
    }
    intent
}

/// Plans a sequence of random intents through one ledger.
fn plans(seed: u64, os: SwitchOs, steps: usize) -> Vec<DesiredState> {
    let (f, s, l) = topology(os);
    let mut rng = Rng(seed.wrapping_mul(0x9E3779B97F4A7C15) | 1);
    let mut alloc = Allocations::default();
    let mut out = vec![DesiredState::default()];
    for _ in 0..steps {
        let base = random_intent(&mut rng, &l, true);
        let intent = mutate(&mut rng, base);
        alloc =
            allocate(&f, &s, &l, &intent, &alloc).unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        out.push(plan(&f, &s, &l, &intent, &alloc).unwrap_or_else(|e| panic!("seed {seed}: {e}")));
    }
    out.push(DesiredState::default());
    out
}

fn check_order(changes: &[Change]) {
    for w in changes.windows(2) {
        let (a, b) = (&w[0], &w[1]);
        if a.switch != b.switch {
            assert!(a.switch < b.switch, "switches in order");
            continue;
        }
        let rank = |c: &Change| match c.op {
            Op::Remove { .. } => 0,
            Op::Modify { .. } => 1,
            Op::Add { .. } => 2,
        };
        assert!(rank(a) <= rank(b), "removals, then modifications, then additions");
        match (&a.op, &b.op) {
            (Op::Remove { .. }, Op::Remove { .. }) => {
                assert!(a.id() > b.id(), "removals dependents first")
            }
            (Op::Add { .. }, Op::Add { .. }) | (Op::Modify { .. }, Op::Modify { .. }) => {
                assert!(a.id() < b.id())
            }
            _ => {}
        }
    }
}

/// A label for coverage: operation and object kind (segment moves between
/// VRFs and gateway moves get their own).
fn label(c: &Change) -> String {
    let kind = |o: &Object| o.id().to_string().split(':').next().unwrap_or_default().to_string();
    match &c.op {
        Op::Add { object } => format!("add {}", kind(object)),
        Op::Remove { object } => format!("remove {}", kind(object)),
        Op::Modify { from: Object::Segment(a), to: Object::Segment(b) } => {
            match (&a.purpose, &b.purpose) {
                (
                    SegmentPurpose::Tenant { vrf: va, .. },
                    SegmentPurpose::Tenant { vrf: vb, .. },
                ) if va != vb => "segment changes VRF".into(),
                _ => "modify segment".into(),
            }
        }
        Op::Modify { to, .. } => format!("modify {}", kind(to)),
    }
}

#[test]
fn applying_the_diff_to_actual_yields_desired() {
    let mut seen = std::collections::BTreeSet::new();
    for seed in 1..=25u64 {
        let os = [SwitchOs::Frr, SwitchOs::Sonic, SwitchOs::CumulusNvue, SwitchOs::AristaEos]
            [seed as usize % 4];
        let states = plans(seed, os, 6);
        for (i, actual) in states.iter().enumerate() {
            for desired in &states[i..] {
                let changes = diff(desired, actual);
                check_order(&changes);
                seen.extend(changes.iter().map(label));
                let mut got = actual.clone();
                apply(&mut got, &changes);
                assert_eq!(&got, desired, "seed {seed}");
                // And back.
                let back = diff(actual, desired);
                let mut got = desired.clone();
                apply(&mut got, &back);
                assert_eq!(&got, actual, "seed {seed} (reverse)");
            }
            assert!(diff(actual, actual).is_empty());
        }
    }
    // The generator reaches every kind of change worth checking.
    for want in [
        "add vrf",
        "remove segment",
        "modify port",
        "modify segment",
        "segment changes VRF",
        "add policy",
        "remove policy",
        "add nat",
        "add floating_ip",
        "modify vrf",
    ] {
        assert!(seen.contains(want), "never saw {want:?}; saw {seen:?}");
    }
}

#[test]
fn changes_round_trip_through_json() {
    let states = plans(7, SwitchOs::Sonic, 2);
    let changes = diff(&states[2], &states[1]);
    let json = serde_json::to_string(&changes).unwrap();
    let back: Vec<Change> = serde_json::from_str(&json).unwrap();
    assert_eq!(back, changes);
}

fn ports_of(switch: &str, links: &[Link], switches: &[Switch]) -> Vec<String> {
    let mut out: Vec<String> =
        links.iter().filter(|l| l.switch == switch).map(|l| l.port.clone()).collect();
    if let Some(s) = switches.iter().find(|s| s.name == switch) {
        out.extend(s.fabric_ports.iter().map(|p| p.port.clone()));
    }
    out
}

/// Builds `cfg` from scratch on a fresh switch.
fn from_scratch(name: &str, cfg: Option<&SwitchConfig>, ports: &[String]) -> Sim {
    let mut sim = Sim::with_ports(ports.iter().map(String::as_str));
    if let Some(cfg) = cfg {
        sim.run_all(&linux::render(name, cfg).unwrap());
    }
    sim
}

#[test]
fn linux_convergence_reaches_the_same_state_as_a_fresh_build() {
    let (_, s, l) = topology(SwitchOs::Frr);
    let empty = SwitchConfig::new(SwitchOs::Frr);
    for seed in 1..=25u64 {
        let states = plans(seed, SwitchOs::Frr, 6);
        for w in states.windows(2) {
            let (actual, desired) = (&w[0], &w[1]);
            for sw in &s {
                let ports = ports_of(&sw.name, &l, &s);
                let a = actual.switches.get(&sw.name).unwrap_or(&empty);
                let d = desired.switches.get(&sw.name).unwrap_or(&empty);
                let mut sim = from_scratch(&sw.name, Some(a), &ports);
                sim.run_all(&linux::converge(&sw.name, a, d).unwrap());
                let want = from_scratch(&sw.name, Some(d), &ports);
                assert_eq!(sim, want, "seed {seed} switch {}", sw.name);
                // Converging again does nothing.
                assert!(linux::converge(&sw.name, d, d).unwrap().is_empty());
            }
        }
    }
}

#[test]
fn a_vtep_change_rebuilds_everything_built_on_it() {
    let os = SwitchOs::Frr;
    let (f, mut s, l) = topology(os);
    let intent = intent();
    let alloc = allocate(&f, &s, &l, &intent, &Allocations::default()).unwrap();
    let before = plan(&f, &s, &l, &intent, &alloc).unwrap();
    s[1].loopback = ip("10.0.0.11");
    let after = plan(&f, &s, &l, &intent, &alloc).unwrap();
    let (a, d) = (&before.switches["leaf1"], &after.switches["leaf1"]);
    let steps = linux::converge("leaf1", a, d).unwrap();
    assert!(steps.iter().any(|c| c.join(" ") == "ip netns del Vrf5000"));
    let ports = ports_of("leaf1", &l, &s);
    let mut sim = from_scratch("leaf1", Some(a), &ports);
    sim.run_all(&steps);
    assert_eq!(sim, from_scratch("leaf1", Some(d), &ports));
}
