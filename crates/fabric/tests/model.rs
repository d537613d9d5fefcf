//! Model validation: every bad input answers `Error::Invalid` naming the
//! offending field; good inputs (including overlapping CIDRs across VPCs)
//! pass; the serde forms round-trip.

mod common;

use common::*;
use neocloud_fabric::*;

/// Validates the lab with one mutation and returns the error's field.
fn field_of(
    mutate: impl FnOnce(&mut Fabric, &mut Vec<Switch>, &mut Vec<Link>, &mut Intent),
) -> String {
    let os = SwitchOs::Frr;
    let (mut f, mut s, mut l, mut i) = (fabric(), switches(os), links(os), intent());
    mutate(&mut f, &mut s, &mut l, &mut i);
    match validate(&f, &s, &l, &i) {
        Err(Error::Invalid { field, reason }) => {
            assert!(!reason.is_empty());
            field
        }
        other => panic!("expected Error::Invalid, got {other:?}"),
    }
}

#[test]
fn the_lab_is_valid_with_the_same_cidr_in_two_vpcs() {
    let os = SwitchOs::Frr;
    validate(&fabric(), &switches(os), &links(os), &intent()).unwrap();
}

#[test]
fn fabric_and_pool_errors_name_the_field() {
    assert_eq!(field_of(|f, _, _, _| f.kind = FabricKind::Infiniband), "fabric.kind");
    assert_eq!(field_of(|f, _, _, _| f.name = "bad name".into()), "fabric.name");
    assert_eq!(
        field_of(|f, _, _, _| f.gateway_mac = "01:00:5e:00:00:01".into()),
        "fabric.gateway_mac"
    );
    assert_eq!(
        field_of(|f, _, _, _| f.pools.l2_vni = IdRange { first: 10, last: 5 }),
        "fabric.pools.l2_vni"
    );
    assert_eq!(
        field_of(|f, _, _, _| f.pools.l2_vni = IdRange { first: 1, last: 16_777_216 }),
        "fabric.pools.l2_vni"
    );
    assert_eq!(
        field_of(|f, _, _, _| f.pools.l3_vni = IdRange { first: 4000, last: 6000 }),
        "fabric.pools.l3_vni"
    );
    assert_eq!(
        field_of(|f, _, _, _| f.pools.vlan = IdRange { first: 1, last: 100 }),
        "fabric.pools.vlan"
    );
    assert_eq!(
        field_of(|f, _, _, _| f.pools.route_target_asn = 0),
        "fabric.pools.route_target_asn"
    );
    assert_eq!(
        field_of(|f, _, _, _| f.pools.provisioning.vni = 150),
        "fabric.pools.provisioning.vni"
    );
    assert_eq!(
        field_of(|f, _, _, _| f.pools.provisioning.vlan = 20),
        "fabric.pools.provisioning.vlan"
    );
    assert_eq!(
        field_of(|f, _, _, _| f.pools.public = vec![net("203.0.113.1/28")]),
        "fabric.pools.public[0]"
    );
    assert_eq!(
        field_of(|f, _, _, _| f.pools.public.push(net("203.0.113.8/29"))),
        "fabric.pools.public[1]"
    );
}

#[test]
fn switch_and_link_errors_name_the_field() {
    assert_eq!(field_of(|_, s, _, _| s[1].name = "leaf\n1".into()), "switches[1].name");
    assert_eq!(field_of(|_, s, _, _| s[2].name = "leaf1".into()), "switches[2].name");
    assert_eq!(field_of(|_, s, _, _| s[0].asn = 0), "switches[0].asn");
    assert_eq!(field_of(|_, s, _, _| s[2].loopback = ip("10.0.0.1")), "switches[2].loopback");
    assert_eq!(
        field_of(|_, s, _, _| s[2].mgmt_address = s[1].mgmt_address),
        "switches[2].mgmt_address"
    );
    assert_eq!(
        field_of(|_, s, _, _| s[1].fabric_ports[0].peer = "nope".into()),
        "switches[1].fabric_ports[0].peer"
    );
    assert_eq!(
        field_of(|_, s, _, _| s[1].fabric_ports[0].peer = "leaf1".into()),
        "switches[1].fabric_ports[0].peer"
    );
    assert_eq!(
        field_of(|_, s, _, _| s[1].fabric_ports[0].port = "a-very-long-port-name".into()),
        "switches[1].fabric_ports[0].port"
    );
    assert_eq!(field_of(|_, _, l, _| l[3].switch = "nope".into()), "links[3].switch");
    assert_eq!(field_of(|_, _, l, _| l[3].switch = "spine".into()), "links[3].switch");
    assert_eq!(field_of(|_, _, l, _| l[1].port = "swp2".into()), "links[1].port");
    assert_eq!(field_of(|_, _, l, _| l[0].port = "swp1".into()), "links[0].port");
    assert_eq!(field_of(|_, _, l, _| l[2].port = "swp9\"; reboot".into()), "links[2].port");
    assert_eq!(
        field_of(|_, _, l, _| {
            l[2].nic = "eth0".into();
            l[2].node = "a1".into();
        }),
        "links[2].nic"
    );
}

#[test]
fn intent_errors_name_the_field() {
    assert_eq!(field_of(|_, _, _, i| i.vpcs[1].id = "vpc-a".into()), "vpcs[1].id");
    assert_eq!(field_of(|_, _, _, i| i.vpcs[0].tenant = String::new()), "vpcs[0].tenant");
    assert_eq!(field_of(|_, _, _, i| i.vpcs[0].name = "a\u{7}".into()), "vpcs[0].name");
    assert_eq!(field_of(|_, _, _, i| i.networks[1].vpc = "nope".into()), "networks[1].vpc");
    assert_eq!(
        field_of(|_, _, _, i| i.networks[1].cidr = net("10.100.0.1/24")),
        "networks[1].cidr"
    );
    assert_eq!(
        field_of(|_, _, _, i| i.networks[0].cidr = net("10.100.0.0/31")),
        "networks[0].cidr"
    );
    assert_eq!(
        field_of(|_, _, _, i| i.networks[0].gateway = Some(ip("10.100.1.1"))),
        "networks[0].gateway"
    );
    assert_eq!(
        field_of(|_, _, _, i| i.networks[0].gateway = Some(ip("10.100.0.255"))),
        "networks[0].gateway"
    );
    assert_eq!(
        field_of(|_, _, _, i| i.attachments[2].network = "nope".into()),
        "attachments[2].network"
    );
    assert_eq!(field_of(|_, _, _, i| i.attachments[2].nic = "eth7".into()), "attachments[2].nic");
    assert_eq!(
        field_of(|_, _, _, i| {
            let mut dup = i.attachments[0].clone();
            dup.id = "att-dup".into();
            i.attachments.push(dup);
        }),
        "attachments[4].nic"
    );
    assert_eq!(
        field_of(|_, _, _, i| i.attachments[0].ip = Some(ip("10.100.0.1"))),
        "attachments[0].ip"
    );
    assert_eq!(
        field_of(|_, _, _, i| i.attachments[0].ip = Some(ip("10.100.1.5"))),
        "attachments[0].ip"
    );
    assert_eq!(
        field_of(|_, _, _, i| {
            i.attachments[0].ip = Some(ip("10.100.0.5"));
            i.attachments[1].ip = Some(ip("10.100.0.5"));
        }),
        "attachments[1].ip"
    );
    assert_eq!(
        field_of(|_, _, l, i| {
            l.push(link(SwitchOs::Frr, "boot1", "eth1", "leaf2", 6));
            i.attachments.push(attachment("att-x", "net-a", "boot1", "eth1"));
        }),
        "attachments[4].node"
    );
}

#[test]
fn overlapping_cidrs_inside_one_vpc_are_refused_and_name_the_later_network() {
    let field = field_of(|_, _, _, i| {
        i.networks.push(network("net-a2", "vpc-a", "10.100.0.128/25"));
    });
    assert_eq!(field, "networks[2].cidr");
    // A wide network listed after narrow ones that do not overlap each other.
    let field = field_of(|_, _, _, i| {
        i.networks.push(network("net-a2", "vpc-a", "10.101.0.0/24"));
        i.networks.push(network("net-a3", "vpc-a", "10.96.0.0/12"));
    });
    assert_eq!(field, "networks[3].cidr");
    // Adjacent prefixes do not overlap.
    let os = SwitchOs::Frr;
    let mut i = intent();
    i.networks.push(network("net-a2", "vpc-a", "10.100.1.0/24"));
    validate(&fabric(), &switches(os), &links(os), &i).unwrap();
}

#[test]
fn security_rule_and_north_south_errors_name_the_field() {
    let rule = |from: &str, to: &str, protocol, ports| SecurityRule {
        id: "r".into(),
        from: from.into(),
        to: to.into(),
        protocol,
        ports,
    };
    assert_eq!(
        field_of(|_, _, _, i| i.security_rules.push(rule("net-a", "net-b", Protocol::Tcp, None))),
        "security_rules[0].to"
    );
    assert_eq!(
        field_of(|_, _, _, i| i.security_rules.push(rule("net-a", "net-a", Protocol::Tcp, None))),
        "security_rules[0].to"
    );
    assert_eq!(
        field_of(|_, _, _, i| i.security_rules.push(rule("nope", "net-a", Protocol::Tcp, None))),
        "security_rules[0].from"
    );
    assert_eq!(
        field_of(|_, _, _, i| {
            i.networks.push(network("net-a2", "vpc-a", "10.101.0.0/24"));
            i.security_rules.push(rule(
                "net-a",
                "net-a2",
                Protocol::Icmp,
                Some(PortRange { first: 1, last: 2 }),
            ));
        }),
        "security_rules[0].ports"
    );
    assert_eq!(
        field_of(|_, _, _, i| {
            i.networks.push(network("net-a2", "vpc-a", "10.101.0.0/24"));
            i.security_rules.push(rule(
                "net-a",
                "net-a2",
                Protocol::Tcp,
                Some(PortRange { first: 9, last: 2 }),
            ));
        }),
        "security_rules[0].ports"
    );
    // No border switch in the lab.
    assert_eq!(
        field_of(|_, _, _, i| i
            .nat_gateways
            .push(NatGateway { vpc: "vpc-a".into(), public_ip: None })),
        "nat_gateways[0].vpc"
    );
    let with_border = |f: &mut Fabric, s: &mut Vec<Switch>| {
        make_border(&mut s[2]);
        f.pools.public = vec![net("203.0.113.0/28")];
    };
    assert_eq!(
        field_of(|f, s, _, i| {
            with_border(f, s);
            i.nat_gateways
                .push(NatGateway { vpc: "vpc-a".into(), public_ip: Some(ip("198.51.100.1")) });
        }),
        "nat_gateways[0].public_ip"
    );
    assert_eq!(
        field_of(|f, s, _, i| {
            with_border(f, s);
            i.nat_gateways.push(NatGateway { vpc: "vpc-a".into(), public_ip: None });
            i.nat_gateways.push(NatGateway { vpc: "vpc-a".into(), public_ip: None });
        }),
        "nat_gateways[1].vpc"
    );
    let fip = |id: &str, att: &str, public: &str| FloatingIp {
        id: id.into(),
        attachment: att.into(),
        public_ip: ip(public),
        allow: vec![],
    };
    assert_eq!(
        field_of(|f, s, _, i| {
            with_border(f, s);
            i.floating_ips.push(fip("f1", "nope", "203.0.113.5"));
        }),
        "floating_ips[0].attachment"
    );
    assert_eq!(
        field_of(|f, s, _, i| {
            with_border(f, s);
            i.floating_ips.push(fip("f1", "att-a1", "203.0.113.5"));
            i.floating_ips.push(fip("f2", "att-a2", "203.0.113.5"));
        }),
        "floating_ips[1].public_ip"
    );
    assert_eq!(
        field_of(|f, s, _, i| {
            with_border(f, s);
            i.floating_ips.push(fip("f1", "att-a1", "203.0.113.5"));
            i.floating_ips.push(fip("f2", "att-a1", "203.0.113.6"));
        }),
        "floating_ips[1].attachment"
    );
    assert_eq!(
        field_of(|f, s, _, i| {
            with_border(f, s);
            let mut x = fip("f1", "att-a1", "203.0.113.5");
            x.allow.push(PortAllow {
                protocol: Protocol::Any,
                ports: Some(PortRange { first: 1, last: 1 }),
            });
            i.floating_ips.push(x);
        }),
        "floating_ips[0].allow[0].ports"
    );
}

#[test]
fn errors_display_their_field() {
    let e = Error::invalid("networks[2].cidr", "overlaps");
    assert_eq!(e.to_string(), "networks[2].cidr: overlaps");
    assert_eq!(e.field(), Some("networks[2].cidr"));
}

#[test]
fn inputs_round_trip_through_json_and_refuse_unknown_fields() {
    let os = SwitchOs::CumulusNvue;
    let f = fabric();
    let s = switches(os);
    let i = intent();
    let back: Fabric = serde_json::from_str(&serde_json::to_string(&f).unwrap()).unwrap();
    assert_eq!(back, f);
    let back: Vec<Switch> = serde_json::from_str(&serde_json::to_string(&s).unwrap()).unwrap();
    assert_eq!(back, s);
    let back: Intent = serde_json::from_str(&serde_json::to_string(&i).unwrap()).unwrap();
    assert_eq!(back, i);
    let json = serde_json::to_value(&s[0]).unwrap();
    assert_eq!(json["os"], "cumulus-nvue");
    assert_eq!(json["role"], "spine");
    let bad = r#"{"id":"v","tenant":"t","name":"n","colour":"red"}"#;
    assert!(serde_json::from_str::<Vpc>(bad).is_err());
    let n: Network =
        serde_json::from_str(r#"{"id":"n","vpc":"v","name":"n","cidr":"10.0.0.0/24"}"#).unwrap();
    assert_eq!(n.gateway_ip(), ip("10.0.0.1"));
    assert!(serde_json::from_str::<Network>(
        r#"{"id":"n","vpc":"v","name":"n","cidr":"10.0.0.0/33"}"#
    )
    .is_err());
}

#[test]
fn prefixes_behave() {
    let n = net("10.1.0.0/24");
    assert!(n.is_canonical());
    assert!(!net("10.1.0.1/24").is_canonical());
    assert_eq!(net("10.1.0.77/24").trunc(), n);
    assert!(n.contains(ip("10.1.0.255")) && !n.contains(ip("10.1.1.0")));
    assert!(
        n.is_host(ip("10.1.0.1")) && !n.is_host(ip("10.1.0.0")) && !n.is_host(ip("10.1.0.255"))
    );
    assert!(n.overlaps(&net("10.0.0.0/8")) && !n.overlaps(&net("10.1.1.0/24")));
    assert_eq!(net("0.0.0.0/0").broadcast(), ip("255.255.255.255"));
    assert!(net("192.0.2.1/32").is_host(ip("192.0.2.1")));
    assert!("10.0.0.0".parse::<Ipv4Net>().is_err());
    assert_eq!("65000:100".parse::<RouteTarget>().unwrap(), RouteTarget { asn: 65000, value: 100 });
    assert!("70000:1".parse::<RouteTarget>().is_err());
}

#[test]
fn uplink_errors_name_the_field() {
    fn up(s: &mut [Switch]) -> &mut Uplink {
        s[2].uplink.as_mut().unwrap()
    }
    let border = |s: &mut Vec<Switch>| make_border(&mut s[2]);
    assert_eq!(
        field_of(|_, s, _, _| s[1].uplink = Some(uplink(SwitchOs::Frr))),
        "switches[1].uplink"
    );
    assert_eq!(
        field_of(|_, s, _, _| {
            border(s);
            up(s).port = "swp1".into();
        }),
        "switches[2].uplink.port"
    );
    for bad in ["swp9\n", "a-very-long-port-name", "pub5000", "br100", "ext7", "vni9"] {
        assert_eq!(
            field_of(|_, s, _, _| {
                border(s);
                up(s).port = bad.into();
            }),
            "switches[2].uplink.port",
            "{bad:?}"
        );
    }
    for bad in [
        "198.51.100.2/32",  // no room for the gateway
        "198.51.100.0/30",  // the link's network address
        "198.51.100.3/30",  // its broadcast address
        "203.0.113.2/30",   // overlaps the public block
        "203.0.0.2/16",     // contains the public block
        "10.0.0.3/24",      // contains the switches' loopbacks
        "169.254.255.5/16", // the public links' addresses
        "224.0.0.1/24",     // not unicast
    ] {
        assert_eq!(
            field_of(|_, s, _, _| {
                border(s);
                up(s).address = net(bad);
            }),
            "switches[2].uplink.address",
            "{bad}"
        );
    }
    // Two borders may share the upstream link, not an address.
    assert_eq!(
        field_of(|_, s, _, _| {
            border(s);
            make_border(&mut s[1]);
        }),
        "switches[2].uplink.address"
    );
    for bad in ["198.51.100.2", "198.51.100.5", "198.51.100.3"] {
        assert_eq!(
            field_of(|_, s, _, _| {
                border(s);
                up(s).gateway = ip(bad);
            }),
            "switches[2].uplink.gateway",
            "{bad}"
        );
    }
    // A node cabled to the uplink port.
    assert_eq!(
        field_of(|_, s, l, _| {
            border(s);
            l[4].port = "swp9".into();
        }),
        "links[4].port"
    );
    // A port named like a device the fabric creates.
    assert_eq!(field_of(|_, _, l, _| l[0].port = "br100".into()), "links[0].port");
    // Valid: a /31 link, and two borders on one upstream link.
    let os = SwitchOs::Frr;
    let (f, mut s, l, i) = (fabric(), switches(os), links(os), intent());
    make_border(&mut s[2]);
    s[2].uplink.as_mut().unwrap().address = net("198.51.100.0/31");
    s[2].uplink.as_mut().unwrap().gateway = ip("198.51.100.1");
    validate(&f, &s, &l, &i).unwrap();
    make_border(&mut s[1]);
    s[2].uplink.as_mut().unwrap().address = net("198.51.100.3/29");
    validate(&f, &s, &l, &i).unwrap();
}

#[test]
fn north_south_needs_an_uplink_and_networks_clear_of_its_addresses() {
    let nat = NatGateway { vpc: "vpc-a".into(), public_ip: None };
    let fip = FloatingIp {
        id: "f".into(),
        attachment: "att-b1".into(),
        public_ip: ip("203.0.113.5"),
        allow: vec![],
    };
    // A border without an uplink cannot carry north-south.
    assert_eq!(
        field_of(|_, s, _, i| {
            s[2].role = SwitchRole::Border;
            i.nat_gateways.push(nat.clone());
        }),
        "nat_gateways[0].vpc"
    );
    assert_eq!(
        field_of(|_, s, _, i| {
            s[2].role = SwitchRole::Border;
            i.floating_ips.push(fip.clone());
        }),
        "floating_ips[0].attachment"
    );
    // A north-south VPC's network may not cover public or link addresses
    // (here VPC B, north-south through its floating IP).
    for bad in ["203.0.113.0/24", "169.254.255.0/30", "169.254.0.0/16"] {
        assert_eq!(
            field_of(|_, s, _, i| {
                make_border(&mut s[2]);
                i.floating_ips.push(fip.clone());
                i.networks[1].cidr = net(bad);
                i.attachments[3].ip = None;
            }),
            "networks[1].cidr",
            "{bad}"
        );
    }
    // Other VPCs may use them: they never reach the public side.
    let os = SwitchOs::Frr;
    let (f, mut s, l, mut i) = (fabric(), switches(os), links(os), intent());
    make_border(&mut s[2]);
    i.nat_gateways.push(nat);
    i.networks[1].cidr = net("169.254.255.0/24");
    i.attachments[3].ip = None;
    validate(&f, &s, &l, &i).unwrap();
}

#[test]
fn switches_without_an_uplink_read_as_before_and_uplinks_round_trip() {
    let old = r#"{"name":"leaf2","role":"border","os":"frr","mgmt_address":"192.168.0.2",
        "asn":65102,"loopback":"10.0.0.2","fabric_ports":[{"port":"swp1","peer":"spine"}]}"#;
    let s: Switch = serde_json::from_str(old).unwrap();
    assert_eq!(s.uplink, None);
    assert!(!serde_json::to_string(&s).unwrap().contains("uplink"));
    let mut s = s;
    s.uplink = Some(uplink(SwitchOs::Frr));
    let json = serde_json::to_value(&s).unwrap();
    assert_eq!(json["uplink"]["address"], "198.51.100.2/30");
    assert_eq!(json["uplink"]["gateway"], "198.51.100.1");
    assert_eq!(serde_json::from_value::<Switch>(json).unwrap(), s);
    let bad = r#"{"port":"swp9","address":"198.51.100.2/30","gateway":"198.51.100.1","vlan":4}"#;
    assert!(serde_json::from_str::<Uplink>(bad).is_err());
}
