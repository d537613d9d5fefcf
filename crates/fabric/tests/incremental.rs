//! The incremental planner against the whole-intent path, over seeded
//! random sequences of tenant changes (valid and invalid): after every
//! change its intent is the change applied to the whole intent, its ledger
//! is `allocate(intent, previous ledger)`, every switch's configuration is
//! `plan`'s, and the switches it reports are exactly those whose
//! configuration changed; a refused change gives `allocate`'s error (field
//! and reason: `validate`'s first, then the allocator's) and leaves the
//! planner as it was.

mod common;

use common::*;
use neocloud_fabric::*;
use std::collections::BTreeSet;

const LEAVES: [(&str, SwitchOs); 4] = [
    ("leaf1", SwitchOs::Frr),
    ("leaf2", SwitchOs::Sonic),
    ("leaf3", SwitchOs::CumulusNvue),
    ("leaf4", SwitchOs::AristaEos),
];

/// A spine, four leaves of every OS, a border with an uplink (unless
/// `uplink` is false) and one without; small pools so that they run out
/// and wrap. Nodes m0..m11 have eth0 on one leaf and eth1 on the next;
/// the boot server is on leaf1.
fn topology(uplink: bool) -> (Fabric, Vec<Switch>, Vec<Link>) {
    let fabric = Fabric {
        name: "prop".into(),
        kind: FabricKind::Ethernet,
        pools: Pools {
            l2_vni: IdRange { first: 100, last: 111 },
            l3_vni: IdRange { first: 5000, last: 5004 },
            vlan: IdRange { first: 10, last: 16 },
            route_target_asn: 65000,
            provisioning: Provisioning { vni: 9000, vlan: 4000, servers: vec!["boot1".into()] },
            public: vec![net("203.0.113.0/29")],
        },
        gateway_mac: "00:00:5e:00:01:01".into(),
    };
    let mut below: Vec<(&str, SwitchOs, SwitchRole)> =
        LEAVES.iter().map(|&(n, os)| (n, os, SwitchRole::Leaf)).collect();
    below.push(("border1", SwitchOs::Frr, SwitchRole::Border));
    below.push(("border2", SwitchOs::Frr, SwitchRole::Border));
    let mut switches = vec![Switch {
        name: "spine".into(),
        role: SwitchRole::Spine,
        os: SwitchOs::Frr,
        mgmt_address: "192.168.0.254".parse().unwrap(),
        asn: 65000,
        loopback: ip("10.255.0.254"),
        fabric_ports: below
            .iter()
            .enumerate()
            .map(|(i, (n, _, _))| FabricPort {
                port: port(SwitchOs::Frr, i as u32 + 1),
                peer: n.to_string(),
            })
            .collect(),
        uplink: None,
    }];
    for (i, &(name, os, role)) in below.iter().enumerate() {
        switches.push(Switch {
            name: name.into(),
            role,
            os,
            mgmt_address: format!("192.168.0.{}", i + 1).parse().unwrap(),
            asn: 65101 + i as u32,
            loopback: format!("10.255.0.{}", i + 1).parse().unwrap(),
            fabric_ports: vec![FabricPort { port: port(os, 1), peer: "spine".into() }],
            uplink: (uplink && name == "border1").then(|| common::uplink(os)),
        });
    }
    let mut links = Vec::new();
    let mut next_port = vec![2u32; LEAVES.len() + 2];
    let mut cable = |node: &str, nic: &str, sw: usize| {
        let (name, os) = match sw {
            s if s < LEAVES.len() => LEAVES[s],
            s => (if s == LEAVES.len() { "border1" } else { "border2" }, SwitchOs::Frr),
        };
        links.push(link(os, node, nic, name, next_port[sw]));
        next_port[sw] += 1;
    };
    for m in 0..12 {
        let sw = m % (LEAVES.len() + 2);
        cable(&format!("m{m}"), "eth0", sw);
        cable(&format!("m{m}"), "eth1", (sw + 1) % (LEAVES.len() + 2));
    }
    cable("boot1", "eth0", 0);
    (fabric, switches, links)
}

const CIDRS: [&str; 12] = [
    "10.0.0.0/29",
    "10.0.0.8/29",
    "10.0.0.0/28",
    "10.0.1.0/30",
    "10.1.0.0/24",
    "10.2.0.0/24",
    "10.3.0.0/29",
    "10.0.0.4/29",
    "10.2.0.0/31",
    "203.0.113.0/28",
    "169.254.0.0/30",
    "10.4.0.0/29",
];

struct Gen<'a> {
    rng: Rng,
    links: &'a [Link],
}

impl Gen<'_> {
    fn pick<'b, T>(&mut self, v: &'b [T]) -> Option<&'b T> {
        match v.is_empty() {
            true => None,
            false => Some(&v[self.rng.below(v.len() as u64) as usize]),
        }
    }

    /// An existing id `percent` % of the time, else one from the pool
    /// (new or not).
    fn id(&mut self, existing: Vec<String>, prefix: &str, pool: u64, percent: u64) -> String {
        match self.rng.chance(percent) {
            true => self.pick(&existing).cloned(),
            false => None,
        }
        .unwrap_or_else(|| format!("{prefix}{}", self.rng.below(pool)))
    }

    fn vpc_id(&mut self, i: &Intent, percent: u64) -> String {
        self.id(i.vpcs.iter().map(|v| v.id.clone()).collect(), "vpc-", 6, percent)
    }

    fn network_id(&mut self, i: &Intent, percent: u64) -> String {
        self.id(i.networks.iter().map(|n| n.id.clone()).collect(), "net-", 14, percent)
    }

    fn attachment_id(&mut self, i: &Intent, percent: u64) -> String {
        self.id(i.attachments.iter().map(|a| a.id.clone()).collect(), "att-", 24, percent)
    }

    fn rule_id(&mut self, i: &Intent, percent: u64) -> String {
        self.id(i.security_rules.iter().map(|r| r.id.clone()).collect(), "rule-", 8, percent)
    }

    fn fip_id(&mut self, i: &Intent, percent: u64) -> String {
        self.id(i.floating_ips.iter().map(|f| f.id.clone()).collect(), "fip-", 6, percent)
    }

    fn public_ip(&mut self) -> std::net::Ipv4Addr {
        match self.rng.chance(90) {
            true => ip(&format!("203.0.113.{}", 1 + self.rng.below(6))),
            false => ip("198.51.100.77"),
        }
    }

    fn ports(&mut self) -> (Protocol, Option<PortRange>) {
        match self.rng.below(6) {
            0 => (Protocol::Tcp, Some(PortRange { first: 22, last: 22 })),
            1 => (Protocol::Udp, Some(PortRange { first: 5000, last: 5100 })),
            2 => (Protocol::Tcp, None),
            3 => (Protocol::Icmp, None),
            4 => (Protocol::Icmp, Some(PortRange { first: 1, last: 2 })),
            _ => (Protocol::Tcp, Some(PortRange { first: 0, last: 9 })),
        }
    }

    fn vpc(&mut self, i: &Intent) -> Vpc {
        let id = self.vpc_id(i, 50);
        let tenant = match self.rng.chance(95) {
            true => format!("t{}", self.rng.below(3)),
            false => "bad tenant".into(),
        };
        Vpc { id, tenant, name: "v".into(), generation: self.rng.below(3) }
    }

    fn network(&mut self, i: &Intent, vpc: Option<&str>) -> Network {
        let cidr = match self.rng.chance(85) {
            true => net(CIDRS[self.rng.below(7) as usize]),
            false => net(CIDRS[self.rng.below(CIDRS.len() as u64) as usize]),
        };
        let gateway = match self.rng.below(20) {
            0 => Some(ip("10.0.0.5")),
            1 => Some(ip("10.9.9.9")),
            _ => None,
        };
        Network {
            id: self.network_id(i, 50),
            vpc: vpc.map_or_else(|| self.vpc_id(i, 90), String::from),
            name: "n".into(),
            cidr,
            gateway,
        }
    }

    fn attachment(&mut self, i: &Intent, networks: Option<&[String]>) -> Attachment {
        let network = match networks {
            Some(ns) => self.pick(ns).cloned().unwrap_or_else(|| "net-0".into()),
            None => self.network_id(i, 90),
        };
        let (node, nic) = match self.rng.below(20) {
            0 => ("boot1".to_string(), "eth0".to_string()),
            1 => ("m1".to_string(), "eth7".to_string()),
            _ => {
                let l = self.pick(self.links).unwrap();
                (l.node.clone(), l.nic.clone())
            }
        };
        let ip = match self.rng.chance(20) {
            true => {
                let host = i.networks.iter().find(|n| n.id == network).map(|n| n.cidr.host_range());
                let (first, last) = host.unwrap_or((0x0A00_0001, 0x0A00_0006));
                Some(std::net::Ipv4Addr::from(
                    first + self.rng.below(u64::from(last - first) + 1) as u32,
                ))
            }
            false => None,
        };
        Attachment { id: self.attachment_id(i, 40), network, node, nic, ip }
    }

    fn rule(&mut self, i: &Intent, networks: Option<&[String]>) -> SecurityRule {
        let (from, to) = match networks {
            Some(ns) => (
                self.pick(ns).cloned().unwrap_or_default(),
                self.pick(ns).cloned().unwrap_or_default(),
            ),
            None => (self.network_id(i, 90), self.network_id(i, 90)),
        };
        let (protocol, ports) = self.ports();
        SecurityRule { id: self.rule_id(i, 50), from, to, protocol, ports }
    }

    fn nat(&mut self, i: &Intent, vpc: Option<&str>) -> NatGateway {
        NatGateway {
            vpc: vpc.map_or_else(|| self.vpc_id(i, 85), String::from),
            public_ip: self.rng.chance(30).then(|| self.public_ip()),
        }
    }

    fn fip(&mut self, i: &Intent, attachments: Option<&[String]>) -> FloatingIp {
        let attachment = match attachments {
            Some(a) => self.pick(a).cloned().unwrap_or_default(),
            None => self.attachment_id(i, 90),
        };
        let (protocol, ports) = self.ports();
        FloatingIp {
            id: self.fip_id(i, 50),
            attachment,
            public_ip: self.public_ip(),
            allow: match self.rng.chance(50) {
                true => vec![PortAllow { protocol, ports }],
                false => vec![],
            },
        }
    }

    fn object(&mut self, i: &Intent) -> TenantObject {
        match self.rng.below(100) {
            0..=9 => TenantObject::Vpc(self.vpc(i)),
            10..=29 => TenantObject::Network(self.network(i, None)),
            30..=64 => TenantObject::Attachment(self.attachment(i, None)),
            65..=76 => TenantObject::SecurityRule(self.rule(i, None)),
            77..=86 => TenantObject::NatGateway(self.nat(i, None)),
            _ => TenantObject::FloatingIp(self.fip(i, None)),
        }
    }

    fn key(&mut self, i: &Intent) -> TenantKey {
        match self.rng.below(6) {
            0 => TenantKey::Vpc(self.vpc_id(i, 90)),
            1 => TenantKey::Network(self.network_id(i, 90)),
            2 => TenantKey::Attachment(self.attachment_id(i, 90)),
            3 => TenantKey::SecurityRule(self.rule_id(i, 90)),
            4 => TenantKey::NatGateway(self.vpc_id(i, 90)),
            _ => TenantKey::FloatingIp(self.fip_id(i, 90)),
        }
    }

    /// A VPC's objects: some of its current ones (some edited), some new.
    fn replacement(&mut self, i: &Intent, vpc: &str) -> Intent {
        let mut out = Intent::default();
        if self.rng.chance(5) {
            return out;
        }
        out.vpcs.push(Vpc { id: vpc.into(), tenant: "t0".into(), name: "v".into(), generation: 2 });
        for n in i.networks.iter().filter(|n| n.vpc == vpc) {
            if self.rng.chance(92) {
                out.networks.push(n.clone());
            }
        }
        for _ in 0..self.rng.below(3) {
            let n = self.network(i, Some(vpc));
            out.networks.push(n);
        }
        let nets: Vec<String> = out.networks.iter().map(|n| n.id.clone()).collect();
        for a in i.attachments.iter().filter(|a| nets.contains(&a.network)) {
            if self.rng.chance(90) {
                out.attachments.push(a.clone());
            }
        }
        for _ in 0..self.rng.below(4) {
            let a = self.attachment(i, Some(&nets));
            out.attachments.push(a);
        }
        for _ in 0..self.rng.below(3) {
            let r = self.rule(i, Some(&nets));
            out.security_rules.push(r);
        }
        if self.rng.chance(40) {
            out.nat_gateways.push(self.nat(i, Some(vpc)));
        }
        let atts: Vec<String> = out.attachments.iter().map(|a| a.id.clone()).collect();
        if self.rng.chance(40) {
            let f = self.fip(i, Some(&atts));
            out.floating_ips.push(f);
        }
        out
    }

    fn change(&mut self, i: &Intent) -> TenantChange {
        match self.rng.below(100) {
            0..=19 => TenantChange::Add(self.object(i)),
            20..=66 => TenantChange::Put(self.object(i)),
            67..=81 => TenantChange::Remove(self.key(i)),
            _ => {
                let vpc = self.vpc_id(i, 80);
                let objects = self.replacement(i, &vpc);
                TenantChange::ReplaceVpc { vpc, objects }
            }
        }
    }
}

/// Counts of accepted and refused changes over a run.
#[derive(Default)]
struct Tally {
    accepted: usize,
    refused: usize,
    changed_switches: usize,
    ledger_entries: usize,
}

/// Sensible objects to start from: VPCs vpc-0..3 with two networks each,
/// most NICs attached, a NAT gateway and a floating IP where there is an
/// uplink.
fn warm_up(rng: &mut Rng, links: &[Link], uplink: bool) -> Vec<TenantChange> {
    let mut out = Vec::new();
    let put = |o| TenantChange::Put(o);
    for v in 0..4 {
        out.push(put(TenantObject::Vpc(vpc(&format!("vpc-{v}"), "t0"))));
        for (k, cidr) in ["10.1.0.0/24", "10.2.0.0/29"].iter().enumerate() {
            let n = network(&format!("net-{}", 2 * v + k), &format!("vpc-{v}"), cidr);
            out.push(put(TenantObject::Network(n)));
        }
    }
    for (k, l) in links.iter().enumerate().filter(|(_, l)| l.node != "boot1") {
        if rng.chance(75) {
            let n = format!("net-{}", rng.below(8));
            out.push(put(TenantObject::Attachment(attachment(
                &format!("att-{k}"),
                &n,
                &l.node,
                &l.nic,
            ))));
        }
    }
    if uplink {
        out.push(put(TenantObject::NatGateway(NatGateway {
            vpc: "vpc-0".into(),
            public_ip: None,
        })));
        out.push(put(TenantObject::FloatingIp(FloatingIp {
            id: "fip-0".into(),
            attachment: "att-0".into(),
            public_ip: ip("203.0.113.5"),
            allow: vec![],
        })));
    }
    out
}

fn run(seed: u64, steps: usize, tally: &mut Tally) {
    // One seed in four has no uplink (north-south is refused there).
    let uplink = !seed.is_multiple_of(4);
    let (f, s, l) = topology(uplink);
    let mut planner = IncrementalPlanner::new(
        f.clone(),
        s.clone(),
        l.clone(),
        Intent::default(),
        &Allocations::default(),
    )
    .unwrap();
    assert_eq!(
        planner.desired(),
        &plan(&f, &s, &l, &Intent::default(), planner.allocations()).unwrap()
    );
    let mut g = Gen { rng: Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1), links: &l };
    let warm = warm_up(&mut g.rng, &l, uplink);
    for step in 0..warm.len() + steps {
        let intent = planner.intent().clone();
        let ledger = planner.allocations().clone();
        let desired = planner.desired().clone();
        let change = match warm.get(step) {
            Some(c) => c.clone(),
            None => g.change(&intent),
        };
        let mut expected = intent.clone();
        change.apply_to(&mut expected);
        let whole = allocate(&f, &s, &l, &expected, &ledger);
        let got = planner.apply_change(change.clone());
        let at = format!("seed {seed} step {step}: {change:?}");
        match (whole, got) {
            (Err(e), Err(g)) => {
                assert_eq!(g, e, "{at}");
                assert_eq!(planner.intent(), &intent, "{at}: intent after a refused change");
                assert_eq!(planner.allocations(), &ledger, "{at}: ledger after a refused change");
                assert_eq!(planner.desired(), &desired, "{at}: plan after a refused change");
                tally.refused += 1;
            }
            (Ok(next), Ok(applied)) => {
                assert_eq!(planner.intent(), &expected, "{at}");
                assert_eq!(planner.allocations(), &next, "{at}");
                let want = plan(&f, &s, &l, &expected, &next).unwrap();
                for (name, cfg) in &want.switches {
                    assert_eq!(planner.switch_config(name), Some(cfg), "{at}: switch {name}");
                }
                assert_eq!(planner.desired(), &want, "{at}");
                let changed: BTreeSet<&String> = want
                    .switches
                    .keys()
                    .filter(|n| want.switches[*n] != desired.switches[*n])
                    .collect();
                assert_eq!(applied.switches.keys().collect::<BTreeSet<_>>(), changed, "{at}");
                for (name, c) in &applied.switches {
                    assert_eq!(&c.before, &desired.switches[name], "{at}: {name} before");
                    assert_eq!(&c.after, &want.switches[name], "{at}: {name} after");
                }
                assert!(applied.replanned >= applied.switches.len(), "{at}");
                // Every ledger entry that changed is named (a store keeping
                // the ledger entry by entry writes just these).
                let moved = next.changed(&ledger);
                assert!(moved.is_subset(&applied.ledger), "{at}: {moved:?} ⊄ {:?}", applied.ledger);
                tally.ledger_entries += moved.len();
                // What the whole-intent planner says a VPC touches.
                let p = Planner::new(&f, &s, &l, &expected, &next).unwrap();
                for v in &expected.vpcs {
                    assert_eq!(planner.switches_of_vpc(&v.id), p.switches_of_vpc(&v.id), "{at}");
                }
                tally.accepted += 1;
                tally.changed_switches += applied.switches.len();
            }
            (whole, got) => panic!("{at}: whole intent {whole:?}, incremental {got:?}"),
        }
    }
}

#[test]
fn random_changes_give_the_same_ledger_plan_and_errors_as_the_whole_intent() {
    let mut tally = Tally::default();
    for seed in 1..=60u64 {
        run(seed, 120, &mut tally);
    }
    // The generator exercises both outcomes in earnest.
    assert!(tally.accepted > 3000, "accepted {}", tally.accepted);
    assert!(tally.refused > 3000, "refused {}", tally.refused);
    assert!(tally.changed_switches > 3000, "changed switches {}", tally.changed_switches);
    assert!(tally.ledger_entries > 3000, "ledger entries {}", tally.ledger_entries);
}

/// The lab's intent, as one planner.
fn lab_planner() -> (IncrementalPlanner, Lab) {
    let lab = Lab::new(SwitchOs::Frr);
    let planner = IncrementalPlanner::new(
        lab.fabric.clone(),
        lab.switches.clone(),
        lab.links.clone(),
        lab.intent.clone(),
        &Allocations::default(),
    )
    .unwrap();
    (planner, lab)
}

#[test]
fn a_new_node_replans_only_its_switch() {
    let (mut planner, lab) = lab_planner();
    assert_eq!(planner.allocations(), &lab.alloc);
    assert_eq!(planner.desired(), &lab.plan());
    // a1's second NIC joins net-a: only leaf1 changes (a port).
    let a = attachment("att-a1b", "net-a", "a1", "eth1");
    let applied = planner.apply_change(TenantChange::Add(TenantObject::Attachment(a))).unwrap();
    assert_eq!(applied.replanned, 1);
    assert_eq!(applied.switches.keys().collect::<Vec<_>>(), ["leaf1"]);
    let c = &applied.switches["leaf1"];
    let changes = diff_switch("leaf1", Some(&c.after), Some(&c.before));
    assert_eq!(changes.len(), 1, "{changes:?}");
    assert_eq!(planner.allocations().addresses["att-a1b"], ip("10.100.0.4"));
}

#[test]
fn duplicates_are_refused_as_validate_refuses_them_and_missing_removals_are_no_ops() {
    let (mut planner, _) = lab_planner();
    let before = planner.intent().clone();
    let err = planner
        .apply_change(TenantChange::Add(TenantObject::Vpc(vpc("vpc-a", "acme"))))
        .unwrap_err();
    assert_eq!(err, Error::invalid("vpcs[2].id", "\"vpc-a\" is also vpcs[0]"));
    let err = planner
        .apply_change(TenantChange::Add(TenantObject::Attachment(attachment(
            "att-x", "net-b", "a1", "eth0",
        ))))
        .unwrap_err();
    assert_eq!(err.field(), Some("attachments[4].nic"));
    assert_eq!(planner.intent(), &before);
    let none =
        planner.apply_change(TenantChange::Remove(TenantKey::Network("nope".into()))).unwrap();
    assert_eq!(none, Applied::default());
    // Removing a network still in use is refused, naming its attachment.
    let err =
        planner.apply_change(TenantChange::Remove(TenantKey::Network("net-b".into()))).unwrap_err();
    assert_eq!(err.field(), Some("attachments[2].network"));
    assert_eq!(planner.intent(), &before);
}

#[test]
fn replacing_a_vpc_with_nothing_removes_it_and_releases_its_ids() {
    let (mut planner, lab) = lab_planner();
    let applied = planner
        .apply_change(TenantChange::ReplaceVpc { vpc: "vpc-b".into(), objects: Intent::default() })
        .unwrap();
    assert_eq!(applied.switches.keys().collect::<Vec<_>>(), ["leaf1", "leaf2"]);
    let i = planner.intent();
    assert!(i.vpcs.iter().all(|v| v.id != "vpc-b"));
    assert!(i.attachments.iter().all(|a| a.network != "net-b"));
    let a = planner.allocations();
    assert!(!a.vpcs.contains_key("vpc-b") && !a.networks.contains_key("net-b"));
    assert_eq!(a.vpcs["vpc-a"], lab.alloc.vpcs["vpc-a"]);
    // b1 and b2 are back in quarantine.
    let leaf1 = planner.switch_config("leaf1").unwrap();
    let b1 = leaf1.get(&ObjectId::Port("swp3".into()));
    assert!(matches!(
        b1,
        Some(Object::Port(PortConfig { mode: PortMode::Provisioning { .. }, .. }))
    ));
}

#[test]
fn an_address_kept_by_an_earlier_attachment_moves_a_later_ones_floating_ip() {
    // Two VPCs on the same /24; an attachment moving into the other VPC's
    // network keeps its address there (as `allocate` does), taking it from
    // the later attachment, whose floating IP on the border follows.
    let (f, s, l) = topology(true);
    let put = |o| TenantChange::Put(o);
    let mut planner = IncrementalPlanner::new(
        f.clone(),
        s.clone(),
        l.clone(),
        Intent::default(),
        &Allocations::default(),
    )
    .unwrap();
    for c in [
        put(TenantObject::Vpc(vpc("vpc-a", "t0"))),
        put(TenantObject::Vpc(vpc("vpc-b", "t1"))),
        put(TenantObject::Network(network("net-a", "vpc-a", "10.1.0.0/24"))),
        put(TenantObject::Network(network("net-b", "vpc-b", "10.1.0.0/24"))),
        put(TenantObject::Attachment(attachment("att-a", "net-a", "m0", "eth0"))),
        put(TenantObject::Attachment(attachment("att-x", "net-b", "m1", "eth0"))),
        put(TenantObject::FloatingIp(FloatingIp {
            id: "fip-x".into(),
            attachment: "att-x".into(),
            public_ip: ip("203.0.113.5"),
            allow: vec![],
        })),
    ] {
        planner.apply_change(c).unwrap();
    }
    assert_eq!(planner.allocations().addresses["att-x"], ip("10.1.0.2"));
    let applied = planner
        .apply_change(put(TenantObject::Attachment(attachment("att-a", "net-b", "m0", "eth0"))))
        .unwrap();
    let a = planner.allocations();
    assert_eq!((a.addresses["att-a"], a.addresses["att-x"]), (ip("10.1.0.2"), ip("10.1.0.3")));
    assert_eq!(a, &allocate(&f, &s, &l, planner.intent(), a).unwrap());
    assert!(applied.switches.contains_key("border1"), "{:?}", applied.switches.keys());
    assert_eq!(planner.desired(), &plan(&f, &s, &l, planner.intent(), a).unwrap());
}
