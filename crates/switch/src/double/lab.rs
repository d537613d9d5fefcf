//! A small lab fabric planned by `neocloud_fabric`, for driver tests: a
//! spine and two leaves of one OS; tenants acme (`vpc-a`, `net-a`) and
//! globex (`vpc-b`, `net-b`) with the same /24, a1/b1 on leaf1 and a2/b2 on
//! leaf2; a1's second NIC unattached (disabled), c1 idle (quarantined), the
//! boot server on leaf2.

use neocloud_fabric::*;
use std::net::Ipv4Addr;

/// A port name in the OS's style: `swpN` (FRR, NVUE), `Ethernet{4(N-1)}`
/// (SONiC), `EthernetN` (EOS).
pub fn port(os: SwitchOs, n: u32) -> String {
    match os {
        SwitchOs::Frr | SwitchOs::CumulusNvue => format!("swp{n}"),
        SwitchOs::Sonic => format!("Ethernet{}", 4 * (n - 1)),
        SwitchOs::AristaEos => format!("Ethernet{n}"),
    }
}

/// The front-panel ports a lab switch has (1-8 in the OS's naming).
pub fn ports(os: SwitchOs) -> Vec<String> {
    (1..=8).map(|n| port(os, n)).collect()
}

pub struct Lab {
    pub fabric: Fabric,
    pub switches: Vec<Switch>,
    pub links: Vec<Link>,
    pub intent: Intent,
    pub alloc: Allocations,
}

impl Lab {
    pub fn new(os: SwitchOs) -> Lab {
        let (fabric, switches, links, intent) = (fabric(), switches(os), links(os), intent());
        let alloc = allocate(&fabric, &switches, &links, &intent, &Allocations::default())
            .expect("the lab allocates");
        Lab { fabric, switches, links, intent, alloc }
    }

    /// One switch's planned configuration.
    pub fn plan(&self, switch: &str) -> SwitchConfig {
        let planner =
            Planner::new(&self.fabric, &self.switches, &self.links, &self.intent, &self.alloc)
                .expect("the lab plans");
        planner.plan_switch(switch).expect("the lab plans").expect("a lab switch")
    }

    /// Removes a tenant network and its attachments (its nodes become idle)
    /// and re-allocates from the ledger.
    pub fn remove_network(&mut self, id: &str) {
        self.intent.networks.retain(|n| n.id != id);
        self.intent.attachments.retain(|a| a.network != id);
        let used: Vec<String> = self.intent.networks.iter().map(|n| n.vpc.clone()).collect();
        self.intent.vpcs.retain(|v| used.contains(&v.id));
        self.alloc = allocate(&self.fabric, &self.switches, &self.links, &self.intent, &self.alloc)
            .expect("the lab re-allocates");
    }
}

fn net(s: &str) -> Ipv4Net {
    s.parse().expect("a lab prefix")
}

fn fabric() -> Fabric {
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

fn switch(
    name: &str,
    role: SwitchRole,
    os: SwitchOs,
    asn: u32,
    lo: [u8; 4],
    peers: &[(u32, &str)],
) -> Switch {
    Switch {
        name: name.into(),
        role,
        os,
        mgmt_address: Ipv4Addr::new(192, 168, 0, lo[3]).into(),
        asn,
        loopback: Ipv4Addr::from(lo),
        fabric_ports: peers
            .iter()
            .map(|(p, peer)| FabricPort { port: port(os, *p), peer: peer.to_string() })
            .collect(),
        uplink: None,
    }
}

fn switches(os: SwitchOs) -> Vec<Switch> {
    vec![
        switch(
            "spine",
            SwitchRole::Spine,
            os,
            65000,
            [10, 0, 0, 254],
            &[(1, "leaf1"), (2, "leaf2")],
        ),
        switch("leaf1", SwitchRole::Leaf, os, 65101, [10, 0, 0, 1], &[(1, "spine")]),
        switch("leaf2", SwitchRole::Leaf, os, 65102, [10, 0, 0, 2], &[(1, "spine")]),
    ]
}

fn links(os: SwitchOs) -> Vec<Link> {
    let link = |node: &str, nic: &str, switch: &str, p: u32| Link {
        node: node.into(),
        nic: nic.into(),
        switch: switch.into(),
        port: port(os, p),
    };
    vec![
        link("a1", "eth0", "leaf1", 2),
        link("b1", "eth0", "leaf1", 3),
        link("c1", "eth0", "leaf1", 4),
        link("a1", "eth1", "leaf1", 5),
        link("a2", "eth0", "leaf2", 2),
        link("b2", "eth0", "leaf2", 3),
        link("boot1", "eth0", "leaf2", 4),
    ]
}

fn intent() -> Intent {
    let vpc = |id: &str, tenant: &str| Vpc {
        id: id.into(),
        tenant: tenant.into(),
        name: id.into(),
        generation: 1,
    };
    let network = |id: &str, vpc: &str| Network {
        id: id.into(),
        vpc: vpc.into(),
        name: id.into(),
        cidr: net("10.100.0.0/24"),
        gateway: None,
    };
    let att = |id: &str, network: &str, node: &str| Attachment {
        id: id.into(),
        network: network.into(),
        node: node.into(),
        nic: "eth0".into(),
        ip: None,
    };
    Intent {
        vpcs: vec![vpc("vpc-a", "acme"), vpc("vpc-b", "globex")],
        networks: vec![network("net-a", "vpc-a"), network("net-b", "vpc-b")],
        attachments: vec![
            att("att-a1", "net-a", "a1"),
            att("att-a2", "net-a", "a2"),
            att("att-b1", "net-b", "b1"),
            att("att-b2", "net-b", "b2"),
        ],
        ..Intent::default()
    }
}
