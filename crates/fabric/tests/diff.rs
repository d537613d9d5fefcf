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
    make_border(&mut s[2]);
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
        "add uplink",
        "remove uplink",
        "add public_link",
        "modify public_link",
        "remove public_link",
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
        out.extend(s.uplink.iter().map(|u| u.port.clone()));
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

/// Leaf2 as a border with an uplink, VPC A with a NAT gateway.
fn north_south(fip: bool) -> (Fabric, Vec<Switch>, Vec<Link>, Intent) {
    let (f, s, l) = topology(SwitchOs::Frr);
    let mut i = intent();
    i.nat_gateways.push(NatGateway { vpc: "vpc-a".into(), public_ip: None });
    if fip {
        i.floating_ips.push(FloatingIp {
            id: "fip".into(),
            attachment: "att-a2".into(),
            public_ip: ip("203.0.113.9"),
            allow: vec![PortAllow { protocol: Protocol::Icmp, ports: None }],
        });
    }
    (f, s, l, i)
}

fn plan_of(f: &Fabric, s: &[Switch], l: &[Link], i: &Intent) -> SwitchConfig {
    let alloc = allocate(f, s, l, i, &Allocations::default()).unwrap();
    plan(f, s, l, i, &alloc).unwrap().switches.remove("leaf2").unwrap()
}

/// Converges leaf2 from `a` to `d` on the model and checks it matches a
/// fresh build; returns the steps as lines.
fn converge_leaf2(a: &SwitchConfig, d: &SwitchConfig, s: &[Switch], l: &[Link]) -> Vec<String> {
    let mut ports = ports_of("leaf2", l, s);
    ports.extend(["swp8".to_string(), "swp9".to_string()]);
    ports.sort();
    ports.dedup();
    let steps = linux::converge("leaf2", a, d).unwrap();
    let mut sim = from_scratch("leaf2", Some(a), &ports);
    sim.run_all(&steps);
    assert_eq!(sim, from_scratch("leaf2", Some(d), &ports));
    assert!(linux::converge("leaf2", d, d).unwrap().is_empty());
    steps.iter().map(|c| c.join(" ")).collect()
}

#[test]
fn the_border_is_built_with_its_public_path_and_nothing_else_crosses() {
    let (f, s, l, i) = north_south(true);
    let d = plan_of(&f, &s, &l, &i);
    let sim = from_scratch("leaf2", Some(&d), &ports_of("leaf2", &l, &s));
    let route = |ns: &str, table: &str, dst: &str| {
        sim.routes.get(&(ns.to_string(), table.to_string())).and_then(|r| r.get(dst)).cloned()
    };
    // The default route only in the uplink's table, never the underlay's.
    assert_eq!(route("", "200", "default").as_deref(), Some("via 198.51.100.1 dev swp9"));
    assert_eq!(route("", "main", "default"), None);
    // The VPC's public addresses to its VRF, its default route back.
    for p in ["203.0.113.1/32", "203.0.113.9/32"] {
        assert_eq!(route("", "main", p).as_deref(), Some("via 169.254.255.2 dev pub5000 onlink"));
    }
    assert_eq!(
        route("Vrf5000", "main", "default").as_deref(),
        Some("via 169.254.255.1 dev ext5000 onlink")
    );
    // B is not north-south: no link, no route.
    assert_eq!(route("Vrf5001", "main", "default"), None);
    assert!(!sim.devs.contains_key("pub5001"));
    assert_eq!(
        sim.rules,
        [(String::new(), "iif pub5000 lookup 200 priority 200".to_string())].into()
    );
    assert_eq!(sim.devs["ext5000"].ns, "Vrf5000");
    assert_eq!(sim.devs["swp9"].addrs, ["198.51.100.2/30".to_string()].into());
    assert_eq!(
        sim.sets[&(String::new(), "public-links".to_string())],
        ["\"pub5000\"".to_string()].into()
    );
    let rules = |ns: &str, chain: &str| sim.chains[&(ns.to_string(), chain.to_string())].clone();
    assert_eq!(
        rules("", "public-5000"),
        vec![
            "oifname \"pub5000\" ip daddr != { 203.0.113.1, 203.0.113.9 } drop",
            "iifname \"pub5000\" ip saddr != { 203.0.113.1, 203.0.113.9 } drop",
        ]
    );
    assert!(rules("", "uplink-in").contains(&"iifname @public-links drop".to_string()));
    assert!(
        rules("", "uplink-fwd").contains(&"iifname \"swp9\" oifname != @public-links drop".into())
    );
    assert_eq!(rules("Vrf5000", "public-in").last().unwrap(), "iifname \"ext5000\" drop");
}

#[test]
fn public_addresses_change_in_place_and_an_uplink_change_rebuilds_the_links() {
    let (f, mut s, l, i) = north_south(false);
    let before = plan_of(&f, &s, &l, &i);
    // A floating IP appears: one route and the link's rules, in place.
    let (_, _, _, with_fip) = north_south(true);
    let after = plan_of(&f, &s, &l, &with_fip);
    let steps = converge_leaf2(&before, &after, &s, &l);
    assert!(
        steps.contains(&"ip route add 203.0.113.9/32 via 169.254.255.2 dev pub5000 onlink".into())
    );
    assert!(steps.contains(&"nft flush chain inet neocloud public-5000".into()));
    assert!(
        !steps.iter().any(|c| c.contains("link del") || c.contains("delete table")),
        "{steps:#?}"
    );
    // And goes again.
    let steps = converge_leaf2(&after, &before, &s, &l);
    assert!(
        steps.contains(&"ip route del 203.0.113.9/32 via 169.254.255.2 dev pub5000 onlink".into())
    );

    // A new gateway on the same link: one route replaced.
    let up = s[2].uplink.as_mut().unwrap();
    up.address = net("198.51.100.2/29");
    let wide = plan_of(&f, &s, &l, &i);
    s[2].uplink.as_mut().unwrap().gateway = ip("198.51.100.6");
    let moved = plan_of(&f, &s, &l, &i);
    assert_eq!(
        converge_leaf2(&wide, &moved, &s, &l),
        vec!["ip route replace default via 198.51.100.6 dev swp9 table 200".to_string()]
    );
    // Another port: the uplink and every public link are rebuilt.
    s[2].uplink.as_mut().unwrap().port = "swp8".into();
    let other = plan_of(&f, &s, &l, &i);
    let steps = converge_leaf2(&moved, &other, &s, &l);
    for want in ["ip link del pub5000", "nft delete table inet neocloud", "ip link set swp9 down"] {
        assert!(steps.contains(&want.to_string()), "{want}: {steps:#?}");
    }
    // The last north-south service gone: the uplink goes with it.
    let (_, _, _, mut none) = north_south(false);
    none.nat_gateways.clear();
    let bare = plan_of(&f, &s, &l, &none);
    assert!(bare.get(&ObjectId::Uplink).is_none());
    let steps = converge_leaf2(&other, &bare, &s, &l);
    assert!(steps.contains(&"ip link set swp8 down".to_string()), "{steps:#?}");
}
