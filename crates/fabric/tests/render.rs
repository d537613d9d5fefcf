//! Renderer snapshots for the lab fabric (spine + 2 leaves, two tenants
//! with the same subnet), one per OS, plus north-south and convergence.
//! Expected outputs live in tests/snapshots/; regenerate with
//! `NEOCLOUD_UPDATE_SNAPSHOTS=1 cargo test -p neocloud-fabric --test render`
//! and review the diff.

mod common;

use common::*;
use neocloud_fabric::render::{self, eos, frr, linux, nvue, sonic, Rendered};
use neocloud_fabric::*;
use std::fmt::Write;

fn header(out: &mut String, title: &str) {
    let _ = writeln!(out, "### {title}");
}

fn frr_text(d: &DesiredState) -> String {
    let mut out = String::new();
    for (name, cfg) in &d.switches {
        let files = frr::render(name, cfg);
        header(&mut out, &format!("{name} zebra.conf"));
        out.push_str(&files.zebra);
        header(&mut out, &format!("{name} bgpd.conf"));
        out.push_str(&files.bgpd);
        header(&mut out, &format!("{name} netdev"));
        for c in linux::render(name, cfg).unwrap() {
            let _ = writeln!(out, "{}", shell_line(&c));
        }
    }
    out
}

#[test]
fn frr_and_linux_snapshot() {
    let d = Lab::new(SwitchOs::Frr).plan();
    let text = frr_text(&d);
    // The recipe's shape, spot-checked independently of the snapshot.
    assert!(text.contains(" neighbor swp1 interface peer-group fabric\n"));
    assert!(text.contains("  advertise-all-vni\n"));
    assert!(text
        .contains("ip link add vni100 type vxlan id 100 local 10.0.0.1 dstport 4789 nolearning"));
    assert!(text.contains("bridge -n Vrf5000 link set dev vni100 learning off neigh_suppress on"));
    check_snapshot("frr.txt", &text);
}

/// The lab with leaf2 as a border with an uplink: a NAT gateway, a floating
/// IP and a rule.
fn north_south_lab() -> Lab {
    let mut intent = intent();
    intent.networks.push(network("net-a2", "vpc-a", "10.101.0.0/24"));
    intent.attachments.push(attachment("att-c1", "net-a2", "c1", "eth0"));
    intent.security_rules.push(SecurityRule {
        id: "web".into(),
        from: "net-a".into(),
        to: "net-a2".into(),
        protocol: Protocol::Tcp,
        ports: Some(PortRange { first: 80, last: 443 }),
    });
    intent.security_rules.push(SecurityRule {
        id: "ping".into(),
        from: "net-a".into(),
        to: "net-a2".into(),
        protocol: Protocol::Icmp,
        ports: None,
    });
    intent.nat_gateways.push(NatGateway { vpc: "vpc-a".into(), public_ip: None });
    intent.floating_ips.push(FloatingIp {
        id: "fip-a2".into(),
        attachment: "att-a2".into(),
        public_ip: ip("203.0.113.10"),
        allow: vec![
            PortAllow { protocol: Protocol::Tcp, ports: Some(PortRange { first: 22, last: 22 }) },
            PortAllow { protocol: Protocol::Icmp, ports: None },
        ],
    });
    let os = SwitchOs::Frr;
    let mut switches = switches(os);
    make_border(&mut switches[2]);
    let (fabric, links) = (fabric(), links(os));
    let alloc = allocate(&fabric, &switches, &links, &intent, &Allocations::default()).unwrap();
    Lab { fabric, switches, links, intent, alloc }
}

#[test]
fn frr_north_south_snapshot() {
    let d = north_south_lab().plan();
    let text = frr_text(&d);
    assert!(text.contains("  default-originate ipv4\n"));
    assert!(text.contains("snat ip to 203.0.113.1"));
    // The border's public path: the uplink's own table, the VRF's link.
    assert!(text.contains("\nip route add default via 198.51.100.1 dev swp9 table 200\n"));
    assert!(text.contains("\nip link add pub5000 type veth peer name ext5000\n"));
    assert!(
        text.contains("\nip -n Vrf5000 route add default via 169.254.255.1 dev ext5000 onlink\n")
    );
    assert!(text.contains("\nip route add 203.0.113.10/32 via 169.254.255.2 dev pub5000 onlink\n"));
    assert!(text.contains("\nip rule add iif pub5000 lookup 200 priority 200\n"));
    check_snapshot("frr-north-south.txt", &text);
}

#[test]
fn the_uplink_and_public_links_are_refused_where_not_rendered() {
    let lab = north_south_lab();
    let d = lab.plan();
    // Only the uplink plumbing: NAT and floating IPs are refused already.
    let mut cfg = d.switches["leaf2"].clone();
    cfg.objects
        .retain(|id, _| matches!(id, ObjectId::Bgp | ObjectId::Uplink | ObjectId::PublicLink(_)));
    assert_eq!(cfg.objects.len(), 3);
    for os in [SwitchOs::Sonic, SwitchOs::CumulusNvue, SwitchOs::AristaEos] {
        cfg.os = os;
        let res = match os {
            SwitchOs::Sonic => sonic::render("leaf2", &cfg).map(|_| ()),
            SwitchOs::CumulusNvue => nvue::render("leaf2", &cfg).map(|_| ()),
            SwitchOs::AristaEos => eos::render("leaf2", &cfg).map(|_| ()),
            SwitchOs::Frr => unreachable!(),
        };
        match res {
            Err(Error::Unsupported { object, .. }) => {
                assert!(object == "uplink" || object.starts_with("public_link:"), "{object}")
            }
            other => panic!("{os:?}: {other:?}"),
        }
    }
    // FRR's files are the same with or without them (Linux state only).
    cfg.os = SwitchOs::Frr;
    let mut bare = cfg.clone();
    bare.objects.retain(|id, _| *id == ObjectId::Bgp);
    assert_eq!(frr::render("leaf2", &cfg), frr::render("leaf2", &bare));
}

#[test]
fn sonic_snapshot() {
    let d = Lab::new(SwitchOs::Sonic).plan();
    let mut out = String::new();
    for (name, cfg) in &d.switches {
        let r = sonic::render(name, cfg).unwrap();
        header(&mut out, &format!("{name} config_db.json"));
        out.push_str(&r.config_db_json());
        out.push('\n');
        header(&mut out, &format!("{name} frr.conf"));
        out.push_str(&r.frr.integrated);
    }
    assert!(out.contains("\"vtep1|map_100_Vlan"));
    assert!(out.contains("\"VXLAN_EVPN_NVO\""));
    check_snapshot("sonic.txt", &out);
}

#[test]
fn nvue_snapshot() {
    let d = Lab::new(SwitchOs::CumulusNvue).plan();
    let mut out = String::new();
    for (name, cfg) in &d.switches {
        header(&mut out, name);
        for line in nvue::render(name, cfg).unwrap() {
            let _ = writeln!(out, "{line}");
        }
    }
    assert!(out.contains("nv set nve vxlan arp-nd-suppress on\n"));
    check_snapshot("nvue.txt", &out);
}

#[test]
fn eos_snapshot() {
    let d = Lab::new(SwitchOs::AristaEos).plan();
    let mut out = String::new();
    for (name, cfg) in &d.switches {
        header(&mut out, name);
        out.push_str(&eos::render(name, cfg).unwrap());
    }
    assert!(out.contains("   vxlan source-interface Loopback0\n"));
    check_snapshot("eos.txt", &out);
}

/// The lab, then: b2 released (tenant B leaves leaf2), a third tenant on
/// c1 (leaf1), and net-a's gateway moved to .254.
fn changed(os: SwitchOs) -> (DesiredState, DesiredState) {
    let mut lab = Lab::new(os);
    let before = lab.plan();
    lab.intent.attachments.retain(|a| a.id != "att-b2");
    lab.intent.vpcs.push(vpc("vpc-c", "initech"));
    lab.intent.networks.push(network("net-c", "vpc-c", "10.100.0.0/24"));
    lab.intent.attachments.push(attachment("att-c1", "net-c", "c1", "eth0"));
    lab.intent.networks[0].gateway = Some(ip("10.100.0.254"));
    lab.reallocate().unwrap();
    (before, lab.plan())
}

#[test]
fn frr_converge_snapshot() {
    let (before, after) = changed(SwitchOs::Frr);
    let mut out = String::new();
    for (name, cfg) in &after.switches {
        let c = render::converge_frr(name, &before.switches[name], cfg).unwrap();
        header(&mut out, &format!("{name} netdev"));
        for cmd in &c.commands {
            let _ = writeln!(out, "{}", shell_line(cmd));
        }
        header(&mut out, &format!("{name} frr reload: {}", c.frr.is_some()));
    }
    check_snapshot("frr-converge.txt", &out);
    // Nothing changes on the spine: no steps, no reload.
    let spine =
        render::converge_frr("spine", &before.switches["spine"], &after.switches["spine"]).unwrap();
    assert!(spine.commands.is_empty() && spine.frr.is_none());
}

#[test]
fn nvue_converge_snapshot() {
    let (before, after) = changed(SwitchOs::CumulusNvue);
    let mut out = String::new();
    for (name, cfg) in &after.switches {
        header(&mut out, name);
        for line in nvue::converge(name, &before.switches[name], cfg).unwrap() {
            let _ = writeln!(out, "{line}");
        }
    }
    check_snapshot("nvue-converge.txt", &out);
    assert!(nvue::converge("spine", &before.switches["spine"], &after.switches["spine"])
        .unwrap()
        .is_empty());
}

#[test]
fn filters_are_refused_where_not_rendered_never_dropped() {
    let lab = north_south_lab();
    for os in [SwitchOs::Sonic, SwitchOs::CumulusNvue, SwitchOs::AristaEos] {
        let mut d = lab.plan();
        for cfg in d.switches.values_mut() {
            cfg.os = os;
        }
        // Leaf1 carries a policy; leaf2 (border) NAT and a floating IP.
        for name in ["leaf1", "leaf2"] {
            let cfg = &d.switches[name];
            let err = match os {
                SwitchOs::Sonic => sonic::render(name, cfg).map(|_| ()),
                SwitchOs::CumulusNvue => nvue::render(name, cfg).map(|_| ()),
                SwitchOs::AristaEos => eos::render(name, cfg).map(|_| ()),
                SwitchOs::Frr => unreachable!(),
            };
            match err {
                Err(Error::Unsupported { switch, .. }) => assert_eq!(switch, name),
                other => panic!("{os:?} {name}: {other:?}"),
            }
        }
    }
}

#[test]
fn render_dispatches_on_the_os() {
    for os in [SwitchOs::Frr, SwitchOs::Sonic, SwitchOs::CumulusNvue, SwitchOs::AristaEos] {
        let d = Lab::new(os).plan();
        let r = render::render("leaf1", &d.switches["leaf1"]).unwrap();
        let ok = matches!(
            (&r, os),
            (Rendered::Frr { .. }, SwitchOs::Frr)
                | (Rendered::Sonic(_), SwitchOs::Sonic)
                | (Rendered::Nvue(_), SwitchOs::CumulusNvue)
                | (Rendered::Eos(_), SwitchOs::AristaEos)
        );
        assert!(ok, "{os:?}");
    }
}

#[test]
fn missing_local_ids_are_refused() {
    let d = Lab::new(SwitchOs::Frr).plan();
    // FRR plans carry no VLANs; rendering them for SONiC must fail cleanly.
    let mut cfg = d.switches["leaf1"].clone();
    cfg.os = SwitchOs::Sonic;
    assert!(matches!(sonic::render("leaf1", &cfg), Err(Error::Unsupported { .. })));
    assert!(matches!(eos::render("leaf1", &cfg), Err(Error::Unsupported { .. })));
    assert!(matches!(nvue::render("leaf1", &cfg), Err(Error::Unsupported { .. })));
}
