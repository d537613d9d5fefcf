//! The planner: tenant config only where the tenant's nodes are, distinct
//! VNIs/VRFs for identical CIDRs, releases remove what they should,
//! quarantine, spines underlay-only, policies and north-south placement.

mod common;

use common::*;
use neocloud_fabric::*;
use std::collections::BTreeSet;

fn vrfs(cfg: &SwitchConfig) -> BTreeSet<String> {
    cfg.objects
        .values()
        .filter_map(|o| match o {
            Object::Vrf(v) => Some(v.vpc.clone()),
            _ => None,
        })
        .collect()
}

fn tenant_networks(cfg: &SwitchConfig) -> BTreeSet<String> {
    cfg.objects
        .values()
        .filter_map(|o| match o {
            Object::Segment(SegmentConfig {
                purpose: SegmentPurpose::Tenant { network, .. },
                ..
            }) => Some(network.clone()),
            _ => None,
        })
        .collect()
}

fn port<'a>(cfg: &'a SwitchConfig, name: &str) -> &'a PortConfig {
    match cfg.get(&ObjectId::Port(name.into())) {
        Some(Object::Port(p)) => p,
        other => panic!("port {name}: {other:?}"),
    }
}

#[test]
fn spines_carry_only_the_underlay() {
    let d = Lab::new(SwitchOs::Frr).plan();
    let spine = &d.switches["spine"];
    assert_eq!(spine.objects.keys().cloned().collect::<Vec<_>>(), vec![ObjectId::Bgp]);
    let bgp = spine.bgp().unwrap();
    assert!(!bgp.vtep);
    assert_eq!(bgp.peers.iter().map(|p| p.peer.as_str()).collect::<Vec<_>>(), ["leaf1", "leaf2"]);
    assert_eq!(bgp.peers[0].peer_asn, 65101);
    assert!(d.switches["leaf1"].bgp().unwrap().vtep);
}

#[test]
fn tenant_config_lands_only_on_leaves_with_its_nodes() {
    let mut lab = Lab::new(SwitchOs::Frr);
    // Tenant B leaves leaf2: only b1 on leaf1 remains.
    lab.intent.attachments.retain(|a| a.id != "att-b2");
    lab.reallocate().unwrap();
    let d = lab.plan();
    assert_eq!(vrfs(&d.switches["leaf1"]), ["vpc-a", "vpc-b"].map(String::from).into());
    assert_eq!(vrfs(&d.switches["leaf2"]), ["vpc-a"].map(String::from).into());
    assert_eq!(tenant_networks(&d.switches["leaf2"]), ["net-a"].map(String::from).into());
    // Nothing on leaf2 mentions tenant B's VNIs or VRF.
    let b = &lab.alloc;
    let (l2, l3) = (b.networks["net-b"].l2_vni, b.vpcs["vpc-b"].l3_vni);
    let text = serde_json::to_string(&d.switches["leaf2"]).unwrap();
    assert!(!text.contains(&format!("Vrf{l3}")), "{text}");
    assert!(d.switches["leaf2"].get(&ObjectId::Segment(l2)).is_none());
    let planner =
        Planner::new(&lab.fabric, &lab.switches, &lab.links, &lab.intent, &lab.alloc).unwrap();
    assert_eq!(planner.switches_of_vpc("vpc-b"), ["leaf1"].into());
    assert_eq!(planner.switches_of_vpc("vpc-a"), ["leaf1", "leaf2"].into());
}

#[test]
fn two_tenants_with_the_same_cidr_get_distinct_vnis_and_vrfs() {
    let d = Lab::new(SwitchOs::Frr).plan();
    let leaf1 = &d.switches["leaf1"];
    let segs: Vec<&SegmentConfig> = leaf1
        .objects
        .values()
        .filter_map(|o| match o {
            Object::Segment(s @ SegmentConfig { purpose: SegmentPurpose::Tenant { .. }, .. }) => {
                Some(s)
            }
            _ => None,
        })
        .collect();
    assert_eq!(segs.len(), 2);
    assert_ne!(segs[0].vni, segs[1].vni);
    assert_ne!(segs[0].route_target, segs[1].route_target);
    let (
        SegmentPurpose::Tenant { vrf: v0, gateway: g0, .. },
        SegmentPurpose::Tenant { vrf: v1, gateway: g1, .. },
    ) = (&segs[0].purpose, &segs[1].purpose)
    else {
        unreachable!()
    };
    assert_ne!(v0, v1);
    assert_eq!(g0, g1, "same subnet, same gateway, different routing domains");
    assert_eq!(g0.to_string(), "10.100.0.1/24");
}

#[test]
fn ports_follow_attachments_quarantine_and_disable() {
    let d = Lab::new(SwitchOs::Sonic).plan();
    let (leaf1, leaf2) = (&d.switches["leaf1"], &d.switches["leaf2"]);
    let lab = Lab::new(SwitchOs::Sonic);
    let vni_a = lab.alloc.networks["net-a"].l2_vni;
    match &port(leaf1, "Ethernet4").mode {
        PortMode::Tenant { vni, vlan, vrf } => {
            assert_eq!(*vni, vni_a);
            assert_eq!(*vlan, Some(lab.alloc.vlans["leaf1"].networks["net-a"]));
            assert_eq!(*vrf, format!("Vrf{}", lab.alloc.vpcs["vpc-a"].l3_vni));
        }
        other => panic!("{other:?}"),
    }
    // c1 has no attachment: quarantined, isolated, in the provider VNI.
    assert_eq!(
        port(leaf1, "Ethernet12").mode,
        PortMode::Provisioning { vni: 9000, vlan: Some(4000), isolated: true }
    );
    // a1's second NIC: a tenant's node never reaches provisioning.
    assert_eq!(port(leaf1, "Ethernet16").mode, PortMode::Disabled);
    // The boot server is in provisioning, not isolated.
    assert_eq!(
        port(leaf2, "Ethernet12").mode,
        PortMode::Provisioning { vni: 9000, vlan: Some(4000), isolated: false }
    );
    for leaf in [leaf1, leaf2] {
        match leaf.get(&ObjectId::Segment(9000)) {
            Some(Object::Segment(s)) => assert_eq!(s.purpose, SegmentPurpose::Provisioning),
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn quarantine_never_puts_a_port_in_a_tenant_network() {
    let mut rng = Rng(42);
    for round in 0..50 {
        let os =
            [SwitchOs::Frr, SwitchOs::Sonic, SwitchOs::CumulusNvue, SwitchOs::AristaEos][round % 4];
        let links = links(os);
        let intent = random_intent(&mut rng, &links, false);
        let lab = Lab::with(os, intent);
        let d = lab.plan();
        let attached: BTreeSet<&str> =
            lab.intent.attachments.iter().map(|a| a.node.as_str()).collect();
        for l in &lab.links {
            let p = port(&d.switches[&l.switch], &l.port);
            let att = lab.intent.attachments.iter().find(|a| a.node == l.node && a.nic == l.nic);
            match (&p.mode, att) {
                (PortMode::Tenant { vni, .. }, Some(a)) => {
                    assert_eq!(*vni, lab.alloc.networks[&a.network].l2_vni)
                }
                (PortMode::Provisioning { .. }, None) => {
                    assert!(!attached.contains(l.node.as_str()))
                }
                (PortMode::Disabled, None) => assert!(attached.contains(l.node.as_str())),
                (mode, att) => {
                    panic!("round {round}: {} {}: {mode:?} with {att:?}", l.switch, l.port)
                }
            }
        }
    }
}

#[test]
fn releasing_an_attachment_removes_the_port_and_the_last_vni() {
    let mut lab = Lab::new(SwitchOs::Frr);
    let before = lab.plan();
    let vni_b = lab.alloc.networks["net-b"].l2_vni;
    let vrf_b = ObjectId::Vrf(format!("Vrf{}", lab.alloc.vpcs["vpc-b"].l3_vni));
    assert!(before.switches["leaf2"].get(&ObjectId::Segment(vni_b)).is_some());

    lab.intent.attachments.retain(|a| a.id != "att-b2");
    lab.reallocate().unwrap();
    let after = lab.plan();
    let changes: Vec<(String, String, &'static str)> = diff(&after, &before)
        .iter()
        .map(|c| {
            let op = match &c.op {
                Op::Add { .. } => "add",
                Op::Remove { .. } => "remove",
                Op::Modify { .. } => "modify",
            };
            (c.switch.clone(), c.id().to_string(), op)
        })
        .collect();
    // b2's node has no attachment left: its port is quarantined (a
    // modification), the provisioning segment was already there for the
    // boot server, and tenant B's VNI and VRF leave leaf2: the segment
    // first, then the VRF it lives in (removals run dependents first).
    assert_eq!(
        changes,
        vec![
            ("leaf2".into(), format!("segment:{vni_b}"), "remove"),
            ("leaf2".into(), vrf_b.to_string(), "remove"),
            ("leaf2".into(), "port:swp3".into(), "modify"),
        ]
    );

    assert!(matches!(port(&after.switches["leaf2"], "swp3").mode, PortMode::Provisioning { .. }));

    // Releasing a1, net-a's only node on leaf1, removes net-a from leaf1
    // but leaves it on leaf2 where a2 is.
    lab.intent.attachments.retain(|a| a.id != "att-a1");
    lab.reallocate().unwrap();
    let later = lab.plan();
    let vni_a = lab.alloc.networks["net-a"].l2_vni;
    assert!(later.switches["leaf1"].get(&ObjectId::Segment(vni_a)).is_none());
    assert!(later.switches["leaf2"].get(&ObjectId::Segment(vni_a)).is_some());
    assert_eq!(
        port(&later.switches["leaf1"], "swp2").mode,
        PortMode::Provisioning { vni: 9000, vlan: None, isolated: true }
    );
}

#[test]
fn the_vni_stays_while_another_attachment_of_the_network_is_on_the_leaf() {
    let mut intent = intent();
    intent.attachments.push(attachment("att-a1b", "net-a", "c1", "eth0"));
    let mut lab = Lab::with(SwitchOs::Frr, intent);
    let vni_a = lab.alloc.networks["net-a"].l2_vni;
    lab.intent.attachments.retain(|a| a.id != "att-a1");
    lab.reallocate().unwrap();
    let d = lab.plan();
    let leaf1 = &d.switches["leaf1"];
    assert!(leaf1.get(&ObjectId::Segment(vni_a)).is_some());
    assert!(matches!(port(leaf1, "swp4").mode, PortMode::Tenant { vni, .. } if vni == vni_a));
    // a1 has no attachment left: both its NICs are quarantined.
    assert!(matches!(port(leaf1, "swp2").mode, PortMode::Provisioning { .. }));
    assert!(matches!(port(leaf1, "swp5").mode, PortMode::Provisioning { .. }));
}

#[test]
fn rules_become_policies_on_leaves_with_the_destination() {
    let mut intent = intent();
    intent.networks.push(network("net-a2", "vpc-a", "10.101.0.0/24"));
    intent.networks.push(network("net-a3", "vpc-a", "10.102.0.0/24"));
    intent.attachments.push(attachment("att-x", "net-a2", "c1", "eth0"));
    intent.security_rules.push(SecurityRule {
        id: "ssh".into(),
        from: "net-a".into(),
        to: "net-a2".into(),
        protocol: Protocol::Tcp,
        ports: Some(PortRange { first: 22, last: 22 }),
    });
    let lab = Lab::with(SwitchOs::Frr, intent);
    let d = lab.plan();
    let vni = lab.alloc.networks["net-a2"].l2_vni;
    match d.switches["leaf1"].get(&ObjectId::Policy(vni)) {
        Some(Object::Policy(p)) => {
            assert_eq!(
                p.allow,
                vec![PolicyAllow {
                    from: net("10.100.0.0/24"),
                    protocol: Protocol::Tcp,
                    ports: Some(PortRange { first: 22, last: 22 })
                }]
            );
            assert_eq!(p.deny_from, vec![net("10.100.0.0/24"), net("10.102.0.0/24")]);
        }
        other => panic!("{other:?}"),
    }
    // No rule targets net-a: open inside the VPC, no policy object.
    let vni_a = lab.alloc.networks["net-a"].l2_vni;
    assert!(d.switches["leaf1"].get(&ObjectId::Policy(vni_a)).is_none());
    // leaf2 has no net-a2 node: no policy there.
    assert!(d.switches["leaf2"].get(&ObjectId::Policy(vni)).is_none());
}

#[test]
fn north_south_lives_on_borders() {
    let mut intent = intent();
    intent.nat_gateways.push(NatGateway { vpc: "vpc-a".into(), public_ip: None });
    intent.floating_ips.push(FloatingIp {
        id: "fip".into(),
        attachment: "att-b1".into(),
        public_ip: ip("203.0.113.5"),
        allow: vec![PortAllow {
            protocol: Protocol::Tcp,
            ports: Some(PortRange { first: 443, last: 443 }),
        }],
    });
    let os = SwitchOs::Frr;
    let (fabric, mut switches, links) = (fabric(), switches(os), links(os));
    switches.push(Switch {
        name: "border1".into(),
        role: SwitchRole::Border,
        os,
        mgmt_address: "192.168.0.9".parse().unwrap(),
        asn: 65109,
        loopback: ip("10.0.0.9"),
        fabric_ports: vec![FabricPort { port: "swp1".into(), peer: "spine".into() }],
        uplink: Some(uplink(os)),
    });
    let alloc = allocate(&fabric, &switches, &links, &intent, &Allocations::default()).unwrap();
    let d = plan(&fabric, &switches, &links, &intent, &alloc).unwrap();
    let border = &d.switches["border1"];
    assert_eq!(vrfs(border), ["vpc-a", "vpc-b"].map(String::from).into());
    for o in border.objects.values() {
        if let Object::Vrf(v) = o {
            assert!(v.default_originate);
        }
    }
    let vrf_a = format!("Vrf{}", alloc.vpcs["vpc-a"].l3_vni);
    match border.get(&ObjectId::Nat(vrf_a.clone())) {
        Some(Object::Nat(n)) => {
            assert_eq!(n.public_ip, ip("203.0.113.1"));
            assert_eq!(n.sources, vec![net("10.100.0.0/24")]);
        }
        other => panic!("{other:?}"),
    }
    match border.get(&ObjectId::FloatingIp(ip("203.0.113.5"))) {
        Some(Object::FloatingIp(f)) => assert_eq!(f.private_ip, alloc.addresses["att-b1"]),
        other => panic!("{other:?}"),
    }
    // Leaves never originate defaults nor carry NAT.
    for leaf in ["leaf1", "leaf2"] {
        for o in d.switches[leaf].objects.values() {
            match o {
                Object::Vrf(v) => assert!(!v.default_originate),
                Object::Nat(_) | Object::FloatingIp(_) => panic!("{leaf}: {o:?}"),
                _ => {}
            }
        }
    }
}

#[test]
fn planning_without_allocations_names_the_missing_entry() {
    let lab = Lab::new(SwitchOs::Sonic);
    let mut alloc = lab.alloc.clone();
    alloc.networks.remove("net-b");
    match plan(&lab.fabric, &lab.switches, &lab.links, &lab.intent, &alloc) {
        Err(Error::Unallocated { field, .. }) => assert_eq!(field, "allocations.networks[net-b]"),
        other => panic!("{other:?}"),
    }
    let mut alloc = lab.alloc.clone();
    alloc.vlans.get_mut("leaf2").unwrap().networks.remove("net-a");
    match plan(&lab.fabric, &lab.switches, &lab.links, &lab.intent, &alloc) {
        Err(Error::Unallocated { field, .. }) => {
            assert_eq!(field, "allocations.vlans[leaf2].networks[net-a]")
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn plan_switch_matches_the_full_plan_and_the_plan_round_trips() {
    let lab = Lab::new(SwitchOs::AristaEos);
    let d = lab.plan();
    let planner =
        Planner::new(&lab.fabric, &lab.switches, &lab.links, &lab.intent, &lab.alloc).unwrap();
    for (name, cfg) in &d.switches {
        assert_eq!(planner.plan_switch(name).unwrap().as_ref(), Some(cfg));
    }
    assert_eq!(planner.plan_switch("nope").unwrap(), None);
    let json = serde_json::to_string_pretty(&d).unwrap();
    let back: DesiredState = serde_json::from_str(&json).unwrap();
    assert_eq!(back, d);
    for id in d.switches["leaf1"].objects.keys() {
        assert_eq!(id.to_string().parse::<ObjectId>().unwrap(), *id);
    }
}

#[test]
fn the_vpc_generation_never_reaches_a_switch() {
    let mut lab = Lab::new(SwitchOs::Frr);
    let before = lab.plan();
    lab.intent.vpcs[0].generation += 1;
    lab.intent.vpcs[0].name = "renamed".into();
    assert_eq!(lab.plan(), before);
}

/// The lab with leaf2 as a border with an uplink, a NAT gateway for A and
/// a floating IP for a2.
fn north_south_lab() -> Lab {
    let mut intent = intent();
    intent.nat_gateways.push(NatGateway { vpc: "vpc-a".into(), public_ip: None });
    intent.floating_ips.push(FloatingIp {
        id: "fip".into(),
        attachment: "att-a2".into(),
        public_ip: ip("203.0.113.9"),
        allow: vec![],
    });
    let os = SwitchOs::Frr;
    let mut switches = switches(os);
    make_border(&mut switches[2]);
    let (fabric, links) = (fabric(), links(os));
    let alloc = allocate(&fabric, &switches, &links, &intent, &Allocations::default()).unwrap();
    Lab { fabric, switches, links, intent, alloc }
}

#[test]
fn a_border_with_an_uplink_gets_the_uplink_and_a_public_link_per_north_south_vrf() {
    let lab = north_south_lab();
    let d = lab.plan();
    let border = &d.switches["leaf2"];
    match border.get(&ObjectId::Uplink) {
        Some(Object::Uplink(u)) => {
            assert_eq!(
                *u,
                UplinkConfig {
                    port: "swp9".into(),
                    address: net("198.51.100.2/30"),
                    gateway: ip("198.51.100.1")
                }
            );
        }
        other => panic!("{other:?}"),
    }
    let l3 = lab.alloc.vpcs["vpc-a"].l3_vni;
    let vrf_a = format!("Vrf{l3}");
    match border.get(&ObjectId::PublicLink(vrf_a.clone())) {
        Some(Object::PublicLink(l)) => {
            // The NAT address and the floating IP, sorted.
            assert_eq!(
                *l,
                PublicLinkConfig {
                    vrf: vrf_a.clone(),
                    l3_vni: l3,
                    public: vec![lab.alloc.nat_addresses["vpc-a"], ip("203.0.113.9")]
                }
            );
        }
        other => panic!("{other:?}"),
    }
    // B has no north-south service: no public link, no default route.
    let vrf_b = format!("Vrf{}", lab.alloc.vpcs["vpc-b"].l3_vni);
    assert!(border.get(&ObjectId::PublicLink(vrf_b.clone())).is_none());
    match border.get(&ObjectId::Vrf(vrf_b)) {
        Some(Object::Vrf(v)) => assert!(!v.default_originate),
        other => panic!("{other:?}"),
    }
    // Nothing of it on the leaf or the spine.
    for name in ["leaf1", "spine"] {
        for o in d.switches[name].objects.values() {
            assert!(!matches!(o, Object::Uplink(_) | Object::PublicLink(_)), "{name}: {o:?}");
        }
    }
    let json = serde_json::to_string(&d).unwrap();
    assert_eq!(serde_json::from_str::<DesiredState>(&json).unwrap(), d);
    for id in [ObjectId::Uplink, ObjectId::PublicLink(vrf_a)] {
        assert_eq!(id.to_string().parse::<ObjectId>().unwrap(), id);
    }
}

#[test]
fn the_uplink_is_planned_only_while_the_border_carries_north_south() {
    let mut lab = north_south_lab();
    lab.intent.nat_gateways.clear();
    lab.intent.floating_ips.clear();
    lab.reallocate().unwrap();
    let d = lab.plan();
    for o in d.switches["leaf2"].objects.values() {
        match o {
            Object::Uplink(_) | Object::PublicLink(_) | Object::Nat(_) => panic!("{o:?}"),
            Object::Vrf(v) => assert!(!v.default_originate),
            _ => {}
        }
    }
}

#[test]
fn a_border_without_an_uplink_is_planned_as_a_leaf() {
    let mut lab = north_south_lab();
    // A second border, without an uplink: it carries only its own nodes'
    // VRFs, never the north-south ones (a default route it cannot forward
    // would black-hole part of the egress).
    lab.switches[1].role = SwitchRole::Border;
    lab.intent.attachments.retain(|a| a.id != "att-b1");
    lab.reallocate().unwrap();
    let d = lab.plan();
    let leaf1 = &d.switches["leaf1"];
    for o in leaf1.objects.values() {
        match o {
            Object::Uplink(_) | Object::PublicLink(_) | Object::Nat(_) | Object::FloatingIp(_) => {
                panic!("{o:?}")
            }
            Object::Vrf(v) => assert!(!v.default_originate && v.vpc == "vpc-a"),
            _ => {}
        }
    }
    let planner =
        Planner::new(&lab.fabric, &lab.switches, &lab.links, &lab.intent, &lab.alloc).unwrap();
    assert_eq!(planner.switches_of_vpc("vpc-b"), ["leaf2"].into());
    assert_eq!(planner.switches_of_vpc("vpc-a"), ["leaf1", "leaf2"].into());
}
