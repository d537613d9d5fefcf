//! Scale check (ignored by default; timings only mean something in
//! release): `cargo test -p neocloud-fabric --release --test scale --
//! --ignored --nocapture`. 1,000 switches x 1,000 tenants; then one
//! tenant's change re-planned on its switches only.

use neocloud_fabric::render::{frr, linux};
use neocloud_fabric::*;
use std::time::Instant;

const LEAVES: u32 = 980;
const SPINES: u32 = 16;
const BORDERS: u32 = 4;
const PORTS_PER_LEAF: u32 = 32;
const TENANTS: u32 = 1000;
const NODES_PER_TENANT: u32 = 30;

fn topology() -> (Fabric, Vec<Switch>, Vec<Link>) {
    let fabric = Fabric {
        name: "scale".into(),
        kind: FabricKind::Ethernet,
        pools: Pools {
            l2_vni: IdRange { first: 10_000, last: 999_999 },
            l3_vni: IdRange { first: 1_000_000, last: 1_999_999 },
            vlan: IdRange { first: 2, last: 3999 },
            route_target_asn: 65000,
            provisioning: Provisioning { vni: 9_000_000, vlan: 4000, servers: vec![] },
            public: vec!["198.18.0.0/16".parse().unwrap()],
        },
        gateway_mac: "00:00:5e:00:01:01".into(),
    };
    let mut switches = Vec::new();
    let addr = |n: u32| std::net::Ipv4Addr::from(0x0A00_0000 + n);
    let mgmt = |n: u32| std::net::IpAddr::V4(std::net::Ipv4Addr::from(0xAC10_0000 + n));
    for s in 0..SPINES {
        let fabric_ports = (0..LEAVES + BORDERS)
            .map(|l| FabricPort { port: format!("swp{}", l + 1), peer: leaf_name(l) })
            .collect();
        switches.push(Switch {
            name: format!("spine{s}"),
            role: SwitchRole::Spine,
            os: SwitchOs::Frr,
            mgmt_address: mgmt(s),
            asn: 65000,
            loopback: addr(s),
            fabric_ports,
        });
    }
    for l in 0..LEAVES + BORDERS {
        let fabric_ports = (0..SPINES)
            .map(|s| FabricPort { port: format!("up{s}"), peer: format!("spine{s}") })
            .collect();
        switches.push(Switch {
            name: leaf_name(l),
            role: if l >= LEAVES { SwitchRole::Border } else { SwitchRole::Leaf },
            os: SwitchOs::Frr,
            mgmt_address: mgmt(1000 + l),
            asn: 4_200_000_000 + l,
            loopback: addr(1000 + l),
            fabric_ports,
        });
    }
    let mut links = Vec::new();
    for l in 0..LEAVES {
        for p in 0..PORTS_PER_LEAF {
            links.push(Link {
                node: format!("n{}", l * PORTS_PER_LEAF + p),
                nic: "eth0".into(),
                switch: leaf_name(l),
                port: format!("swp{}", p + 1),
            });
        }
    }
    (fabric, switches, links)
}

fn leaf_name(l: u32) -> String {
    format!("leaf{l}")
}

/// Tenant t's nodes: spread so each tenant touches NODES_PER_TENANT leaves.
fn intent() -> Intent {
    let mut intent = Intent::default();
    let nodes = LEAVES * PORTS_PER_LEAF;
    for t in 0..TENANTS {
        let vpc = format!("vpc{t}");
        intent.vpcs.push(Vpc {
            id: vpc.clone(),
            tenant: format!("t{t}"),
            name: vpc.clone(),
            generation: 1,
        });
        intent.networks.push(Network {
            id: format!("net{t}"),
            vpc: vpc.clone(),
            name: "n".into(),
            cidr: "10.0.0.0/16".parse().unwrap(),
            gateway: None,
        });
        for k in 0..NODES_PER_TENANT {
            let node = (t + k * TENANTS) % nodes;
            intent.attachments.push(Attachment {
                id: format!("att{t}-{k}"),
                network: format!("net{t}"),
                node: format!("n{node}"),
                nic: "eth0".into(),
                ip: None,
            });
        }
    }
    intent
}

#[test]
#[ignore]
fn thousand_switches_thousand_tenants() {
    let (f, s, l) = topology();
    let mut intent = intent();
    let t = Instant::now();
    let alloc = allocate(&f, &s, &l, &intent, &Allocations::default()).unwrap();
    println!("allocate: {:?}", t.elapsed());

    let t = Instant::now();
    let desired = plan(&f, &s, &l, &intent, &alloc).unwrap();
    let t_plan = t.elapsed();
    let t = Instant::now();
    let mut lines = 0;
    for (name, cfg) in &desired.switches {
        lines += frr::render(name, cfg).bgpd.len();
        lines += linux::render(name, cfg).unwrap().len();
    }
    let t_render = t.elapsed();
    let t = Instant::now();
    let changes = diff(&desired, &desired);
    let t_diff = t.elapsed();
    println!(
        "{} switches, {} attachments: plan {t_plan:?}, render {t_render:?} ({lines}), diff {t_diff:?} ({})",
        desired.switches.len(),
        intent.attachments.len(),
        changes.len()
    );

    // One tenant adds a node on a leaf it was not on yet (n31000 is free).
    let before: Vec<String> = Planner::new(&f, &s, &l, &intent, &alloc)
        .unwrap()
        .switches_of_vpc("vpc7")
        .into_iter()
        .map(String::from)
        .collect();
    intent.attachments.push(Attachment {
        id: "att7-new".into(),
        network: "net7".into(),
        node: "n31000".into(),
        nic: "eth0".into(),
        ip: None,
    });
    let t = Instant::now();
    let alloc = allocate(&f, &s, &l, &intent, &alloc).unwrap();
    let t_alloc = t.elapsed();
    let t = Instant::now();
    let planner = Planner::new(&f, &s, &l, &intent, &alloc).unwrap();
    let t_setup = t.elapsed();
    let t = Instant::now();
    let mut touched: Vec<String> =
        planner.switches_of_vpc("vpc7").into_iter().map(String::from).collect();
    touched.extend(before);
    touched.sort();
    touched.dedup();
    let t_touched = t.elapsed();
    let t = Instant::now();
    let mut changes = Vec::new();
    for name in &touched {
        let new = planner.plan_switch(name).unwrap();
        changes.extend(diff_switch(name, new.as_ref(), desired.switches.get(name)));
        if let (Some(new), Some(old)) = (&new, desired.switches.get(name)) {
            linux::converge(name, old, new).unwrap();
        }
    }
    assert!(!changes.is_empty());
    println!("one-tenant change: allocate {t_alloc:?}, validate+index {t_setup:?}, switches_of_vpc {t_touched:?}");
    println!(
        "  plan+diff+converge of {} switches {:?}, {} changes",
        touched.len(),
        t.elapsed(),
        changes.len()
    );
}
