//! Shared fixtures: the lab-shaped fabric (a spine and two leaves, two
//! tenants with the same subnet), a seeded generator, and snapshots.
#![allow(dead_code)]

use neocloud_fabric::*;
use std::net::Ipv4Addr;
use std::path::PathBuf;

pub fn ip(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

pub fn net(s: &str) -> Ipv4Net {
    s.parse().unwrap()
}

pub fn fabric() -> Fabric {
    Fabric {
        name: "lab".into(),
        kind: FabricKind::Ethernet,
        pools: Pools {
            l2_vni: IdRange { first: 100, last: 4999 },
            l3_vni: IdRange { first: 5000, last: 5999 },
            vlan: IdRange { first: 10, last: 3999 },
            route_target_asn: 65000,
            provisioning: Provisioning { vni: 9000, vlan: 4000, servers: vec!["boot1".into()] },
            public: vec![net("203.0.113.0/28")],
        },
        gateway_mac: "00:00:5e:00:01:01".into(),
    }
}

/// A port name in the OS's style: `swpN` (FRR, NVUE), `Ethernet{4(N-1)}`
/// (SONiC), `EthernetN` (EOS).
pub fn port(os: SwitchOs, n: u32) -> String {
    match os {
        SwitchOs::Frr | SwitchOs::CumulusNvue => format!("swp{n}"),
        SwitchOs::Sonic => format!("Ethernet{}", 4 * (n - 1)),
        SwitchOs::AristaEos => format!("Ethernet{n}"),
    }
}

fn switch(
    name: &str,
    role: SwitchRole,
    os: SwitchOs,
    asn: u32,
    lo: &str,
    mgmt: &str,
    peers: &[(u32, &str)],
) -> Switch {
    Switch {
        name: name.into(),
        role,
        os,
        mgmt_address: mgmt.parse().unwrap(),
        asn,
        loopback: ip(lo),
        fabric_ports: peers
            .iter()
            .map(|(p, peer)| FabricPort { port: port(os, *p), peer: peer.to_string() })
            .collect(),
        uplink: None,
    }
}

/// A border's uplink: port 9 to an upstream router on 198.51.100.0/30.
pub fn uplink(os: SwitchOs) -> Uplink {
    Uplink { port: port(os, 9), address: net("198.51.100.2/30"), gateway: ip("198.51.100.1") }
}

/// Makes `sw` a border with `uplink(os)`.
pub fn make_border(sw: &mut Switch) {
    sw.role = SwitchRole::Border;
    sw.uplink = Some(uplink(sw.os));
}

/// The recipe's topology: spine (swp1 -> leaf1, swp2 -> leaf2), leaves
/// with swp1 up to the spine.
pub fn switches(os: SwitchOs) -> Vec<Switch> {
    vec![
        switch(
            "spine",
            SwitchRole::Spine,
            os,
            65000,
            "10.0.0.254",
            "192.168.0.254",
            &[(1, "leaf1"), (2, "leaf2")],
        ),
        switch("leaf1", SwitchRole::Leaf, os, 65101, "10.0.0.1", "192.168.0.1", &[(1, "spine")]),
        switch("leaf2", SwitchRole::Leaf, os, 65102, "10.0.0.2", "192.168.0.2", &[(1, "spine")]),
    ]
}

pub fn link(os: SwitchOs, node: &str, nic: &str, switch: &str, p: u32) -> Link {
    Link { node: node.into(), nic: nic.into(), switch: switch.into(), port: port(os, p) }
}

/// a1/b1 on leaf1, a2/b2 on leaf2 (as in the recipe); a1's second NIC on
/// leaf1; an idle node c1 on leaf1; the boot server on leaf2.
pub fn links(os: SwitchOs) -> Vec<Link> {
    vec![
        link(os, "a1", "eth0", "leaf1", 2),
        link(os, "b1", "eth0", "leaf1", 3),
        link(os, "c1", "eth0", "leaf1", 4),
        link(os, "a1", "eth1", "leaf1", 5),
        link(os, "a2", "eth0", "leaf2", 2),
        link(os, "b2", "eth0", "leaf2", 3),
        link(os, "boot1", "eth0", "leaf2", 4),
    ]
}

pub fn vpc(id: &str, tenant: &str) -> Vpc {
    Vpc { id: id.into(), tenant: tenant.into(), name: id.into(), generation: 1 }
}

pub fn network(id: &str, vpc: &str, cidr: &str) -> Network {
    Network { id: id.into(), vpc: vpc.into(), name: id.into(), cidr: net(cidr), gateway: None }
}

pub fn attachment(id: &str, network: &str, node: &str, nic: &str) -> Attachment {
    Attachment {
        id: id.into(),
        network: network.into(),
        node: node.into(),
        nic: nic.into(),
        ip: None,
    }
}

/// Two tenants, both 10.100.0.0/24, each with a node on each leaf.
pub fn intent() -> Intent {
    let mut b2 = attachment("att-b2", "net-b", "b2", "eth0");
    b2.ip = Some(ip("10.100.0.12"));
    Intent {
        vpcs: vec![vpc("vpc-a", "acme"), vpc("vpc-b", "globex")],
        networks: vec![
            network("net-a", "vpc-a", "10.100.0.0/24"),
            network("net-b", "vpc-b", "10.100.0.0/24"),
        ],
        attachments: vec![
            attachment("att-a1", "net-a", "a1", "eth0"),
            attachment("att-a2", "net-a", "a2", "eth0"),
            attachment("att-b1", "net-b", "b1", "eth0"),
            b2,
        ],
        ..Intent::default()
    }
}

/// Everything for one OS, allocated from an empty ledger.
pub struct Lab {
    pub fabric: Fabric,
    pub switches: Vec<Switch>,
    pub links: Vec<Link>,
    pub intent: Intent,
    pub alloc: Allocations,
}

impl Lab {
    pub fn new(os: SwitchOs) -> Lab {
        Lab::with(os, intent())
    }

    pub fn with(os: SwitchOs, intent: Intent) -> Lab {
        let (fabric, switches, links) = (fabric(), switches(os), links(os));
        let alloc = allocate(&fabric, &switches, &links, &intent, &Allocations::default()).unwrap();
        Lab { fabric, switches, links, intent, alloc }
    }

    /// Re-allocates (ledger in, ledger out) after an intent change.
    pub fn reallocate(&mut self) -> Result<()> {
        self.alloc =
            allocate(&self.fabric, &self.switches, &self.links, &self.intent, &self.alloc)?;
        Ok(())
    }

    pub fn plan(&self) -> DesiredState {
        plan(&self.fabric, &self.switches, &self.links, &self.intent, &self.alloc).unwrap()
    }
}

/// xorshift64*, for reproducible random sequences without a dependency.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545F4914F6CDD1D)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// A random-ish intent over `links`: a few VPCs (some sharing CIDRs), some
/// networks each, attachments on a random subset of NICs, rules, NAT and
/// floating IPs.
pub fn random_intent(rng: &mut Rng, links: &[Link], north_south: bool) -> Intent {
    let mut intent = Intent::default();
    let vpcs = 1 + rng.below(4);
    for v in 0..vpcs {
        let vid = format!("vpc-{}", rng.below(6));
        if intent.vpcs.iter().any(|x| x.id == vid) {
            continue;
        }
        intent.vpcs.push(vpc(&vid, &format!("t{v}")));
        let nets = 1 + rng.below(3);
        for k in 0..nets {
            // Same CIDRs in every VPC: overlap across VPCs is allowed.
            intent.networks.push(network(&format!("{vid}-n{k}"), &vid, &format!("10.{k}.0.0/24")));
        }
    }
    let mut attached_nodes = std::collections::BTreeSet::new();
    for (i, l) in links.iter().enumerate() {
        if l.node == "boot1" || !rng.chance(60) {
            continue;
        }
        let n = &intent.networks[rng.below(intent.networks.len() as u64) as usize];
        intent.attachments.push(attachment(&format!("att-{i}"), &n.id.clone(), &l.node, &l.nic));
        attached_nodes.insert(l.node.clone());
    }
    for i in 0..rng.below(3) {
        let a = &intent.networks[rng.below(intent.networks.len() as u64) as usize];
        let same: Vec<&Network> =
            intent.networks.iter().filter(|b| b.vpc == a.vpc && b.id != a.id).collect();
        if same.is_empty() {
            continue;
        }
        let b = same[rng.below(same.len() as u64) as usize];
        let (protocol, ports) = match rng.below(3) {
            0 => (Protocol::Tcp, Some(PortRange { first: 22, last: 22 })),
            1 => (Protocol::Udp, Some(PortRange { first: 5000, last: 5100 })),
            _ => (Protocol::Icmp, None),
        };
        intent.security_rules.push(SecurityRule {
            id: format!("rule-{i}"),
            from: a.id.clone(),
            to: b.id.clone(),
            protocol,
            ports,
        });
    }
    if north_south {
        if let Some(v) = intent.vpcs.first() {
            if rng.chance(70) {
                intent.nat_gateways.push(NatGateway { vpc: v.id.clone(), public_ip: None });
            }
        }
        if let Some(a) = intent.attachments.first() {
            if rng.chance(70) {
                intent.floating_ips.push(FloatingIp {
                    id: "fip-0".into(),
                    attachment: a.id.clone(),
                    public_ip: ip("203.0.113.9"),
                    allow: vec![PortAllow {
                        protocol: Protocol::Tcp,
                        ports: Some(PortRange { first: 443, last: 443 }),
                    }],
                });
            }
        }
    }
    intent
}

/// Compares `actual` with tests/snapshots/`name`; with
/// NEOCLOUD_UPDATE_SNAPSHOTS=1 writes it first (review the diff).
pub fn check_snapshot(name: &str, actual: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots").join(name);
    if std::env::var_os("NEOCLOUD_UPDATE_SNAPSHOTS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, actual).unwrap();
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!("{}: {e}; generate with NEOCLOUD_UPDATE_SNAPSHOTS=1", path.display())
    });
    if expected != actual {
        let diff: Vec<String> = expected
            .lines()
            .zip(actual.lines())
            .enumerate()
            .filter(|(_, (a, b))| a != b)
            .take(10)
            .map(|(i, (a, b))| format!("  line {}:\n    snapshot: {a}\n    actual:   {b}", i + 1))
            .collect();
        panic!(
            "{} differs from the rendering ({} vs {} lines):\n{}\nregenerate with NEOCLOUD_UPDATE_SNAPSHOTS=1 and review the diff",
            path.display(),
            expected.lines().count(),
            actual.lines().count(),
            diff.join("\n")
        );
    }
}

/// A command as one shell-readable line (arguments with spaces quoted).
pub fn shell_line(c: &[String]) -> String {
    c.iter()
        .map(|a| match a.contains(' ') || a.contains('"') || a.contains('{') {
            true => format!("'{a}'"),
            false => a.clone(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}
