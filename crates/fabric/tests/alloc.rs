//! The allocation ledger: stable (nothing existing ever moves), released
//! values not reused until the pool wraps, deterministic, and exhaustion
//! answers a clear error naming the pool.

mod common;

use common::*;
use neocloud_fabric::*;

/// Every entry of `before` whose key is still in `after` has the same value.
fn assert_nothing_moved(before: &Allocations, after: &Allocations) {
    for (id, a) in &before.vpcs {
        if let Some(b) = after.vpcs.get(id) {
            assert_eq!(a, b, "VPC {id} moved");
        }
    }
    for (id, a) in &before.networks {
        if let Some(b) = after.networks.get(id) {
            assert_eq!(a, b, "network {id} moved");
        }
    }
    for (sw, a) in &before.vlans {
        let Some(b) = after.vlans.get(sw) else { continue };
        for (id, v) in a.vrfs.iter().chain(&a.networks) {
            if let Some(w) = b.vrfs.get(id).or(b.networks.get(id)) {
                assert_eq!(v, w, "VLAN of {id} on {sw} moved");
            }
        }
    }
    for (id, a) in &before.addresses {
        if let Some(b) = after.addresses.get(id) {
            assert_eq!(a, b, "address of {id} moved");
        }
    }
    for (id, a) in &before.nat_addresses {
        if let Some(b) = after.nat_addresses.get(id) {
            assert_eq!(a, b, "NAT address of {id} moved");
        }
    }
}

#[test]
fn the_lab_gets_distinct_vnis_rts_and_first_free_addresses() {
    let lab = Lab::new(SwitchOs::Sonic);
    let a = &lab.alloc;
    assert_eq!(a.vpcs["vpc-a"].l3_vni, 5000);
    assert_eq!(a.vpcs["vpc-b"].l3_vni, 5001);
    assert_eq!(a.networks["net-a"].l2_vni, 100);
    assert_eq!(a.networks["net-b"].l2_vni, 101);
    assert_eq!(a.networks["net-b"].route_target.to_string(), "65000:101");
    assert_eq!(a.vpcs["vpc-a"].route_target.to_string(), "65000:5000");
    // First free host, gateway (.1) excluded; b2 asked for .12.
    assert_eq!(a.addresses["att-a1"], ip("10.100.0.2"));
    assert_eq!(a.addresses["att-a2"], ip("10.100.0.3"));
    assert_eq!(a.addresses["att-b1"], ip("10.100.0.2"));
    assert_eq!(a.addresses["att-b2"], ip("10.100.0.12"));
    // SONiC: a VLAN per segment and per VRF on each leaf, none on the spine.
    assert!(!a.vlans.contains_key("spine"));
    let leaf1 = &a.vlans["leaf1"];
    assert_eq!(leaf1.vrfs.len(), 2);
    assert_eq!(leaf1.networks.len(), 2);
    let mut all: Vec<u16> = leaf1.vrfs.values().chain(leaf1.networks.values()).copied().collect();
    all.sort();
    all.dedup();
    assert_eq!(all.len(), 4, "VLANs on one switch are distinct");
}

#[test]
fn frr_needs_no_vlans_and_eos_only_rd_indexes_for_vrfs() {
    let frr = Lab::new(SwitchOs::Frr);
    assert!(frr.alloc.vlans.is_empty());
    let nvue = Lab::new(SwitchOs::CumulusNvue);
    assert!(nvue.alloc.vlans["leaf1"].vrfs.is_empty());
    assert_eq!(nvue.alloc.vlans["leaf1"].networks.len(), 2);
    let eos = Lab::new(SwitchOs::AristaEos);
    assert_eq!(eos.alloc.vlans["leaf1"].vrfs.len(), 2);
}

#[test]
fn allocation_is_idempotent_and_independent_of_list_order() {
    let mut lab = Lab::new(SwitchOs::Sonic);
    let first = lab.alloc.clone();
    lab.reallocate().unwrap();
    assert_eq!(lab.alloc, first);
    let mut reversed = intent();
    reversed.vpcs.reverse();
    reversed.networks.reverse();
    reversed.attachments.reverse();
    let other = Lab::with(SwitchOs::Sonic, reversed);
    assert_eq!(other.alloc, first);
}

#[test]
fn adding_and_removing_tenants_moves_nothing() {
    let os = SwitchOs::Sonic;
    let mut lab = Lab::new(os);
    let mut rng = Rng(0x5EED);
    let mut history = vec![lab.alloc.clone()];
    for step in 0..60 {
        let before = lab.alloc.clone();
        match rng.below(4) {
            // Add a tenant with a network and an attachment on a free NIC.
            0 | 1 => {
                let v = format!("vpc-{step}");
                lab.intent.vpcs.push(vpc(&v, &format!("t{step}")));
                lab.intent.networks.push(network(&format!("net-{step}"), &v, "10.100.0.0/24"));
                let free = lab.links.iter().find(|l| {
                    !lab.intent.attachments.iter().any(|a| a.node == l.node && a.nic == l.nic)
                        && l.node != "boot1"
                });
                if let Some(l) = free.cloned() {
                    lab.intent.attachments.push(attachment(
                        &format!("att-{step}"),
                        &format!("net-{step}"),
                        &l.node,
                        &l.nic,
                    ));
                }
            }
            // Remove a random tenant (its VPC, networks, attachments).
            2 => {
                if lab.intent.vpcs.is_empty() {
                    continue;
                }
                let gone =
                    lab.intent.vpcs.remove(rng.below(lab.intent.vpcs.len() as u64) as usize).id;
                let nets: Vec<String> = lab
                    .intent
                    .networks
                    .iter()
                    .filter(|n| n.vpc == gone)
                    .map(|n| n.id.clone())
                    .collect();
                lab.intent.networks.retain(|n| n.vpc != gone);
                lab.intent.attachments.retain(|a| !nets.contains(&a.network));
            }
            // Release one attachment.
            _ => {
                if !lab.intent.attachments.is_empty() {
                    lab.intent
                        .attachments
                        .remove(rng.below(lab.intent.attachments.len() as u64) as usize);
                }
            }
        }
        lab.reallocate().unwrap();
        assert_nothing_moved(&before, &lab.alloc);
        // Released entries are gone.
        for id in lab.alloc.networks.keys() {
            assert!(
                lab.intent.networks.iter().any(|n| &n.id == id),
                "step {step}: {id} not released"
            );
        }
        for id in lab.alloc.addresses.keys() {
            assert!(
                lab.intent.attachments.iter().any(|a| &a.id == id),
                "step {step}: {id} not released"
            );
        }
        history.push(lab.alloc.clone());
    }
    // Over the whole history, a VNI never served two different networks at
    // once, and every plan along the way was possible.
    for h in &history {
        let mut vnis: Vec<u32> = h
            .networks
            .values()
            .map(|n| n.l2_vni)
            .chain(h.vpcs.values().map(|v| v.l3_vni))
            .collect();
        let n = vnis.len();
        vnis.sort();
        vnis.dedup();
        assert_eq!(vnis.len(), n);
    }
}

#[test]
fn released_vnis_are_not_reused_until_the_pool_wraps() {
    let mut lab = Lab::new(SwitchOs::Frr);
    let old = lab.alloc.networks["net-b"].l2_vni;
    lab.intent.attachments.retain(|a| a.network != "net-b");
    lab.intent.networks.retain(|n| n.id != "net-b");
    lab.reallocate().unwrap();
    lab.intent.networks.push(network("net-c", "vpc-b", "10.7.0.0/24"));
    lab.reallocate().unwrap();
    assert_ne!(lab.alloc.networks["net-c"].l2_vni, old);
    assert_eq!(lab.alloc.networks["net-c"].l2_vni, 102);
}

#[test]
fn the_cursor_wraps_to_released_values() {
    let mut f = fabric();
    f.pools.l2_vni = IdRange { first: 100, last: 102 };
    let os = SwitchOs::Frr;
    let (s, l) = (switches(os), links(os));
    let mut i = intent();
    i.networks.push(network("net-c", "vpc-a", "10.1.0.0/24"));
    let a = allocate(&f, &s, &l, &i, &Allocations::default()).unwrap();
    assert_eq!(a.next_l2_vni, 100, "wrapped after the last");
    i.networks.retain(|n| n.id != "net-a");
    i.attachments.retain(|x| x.network != "net-a");
    let a = allocate(&f, &s, &l, &i, &a).unwrap();
    i.networks.push(network("net-d", "vpc-a", "10.2.0.0/24"));
    let a = allocate(&f, &s, &l, &i, &a).unwrap();
    assert_eq!(a.networks["net-d"].l2_vni, 100, "net-a's VNI, once the pool wrapped");
}

#[test]
fn exhaustion_names_the_pool() {
    let os = SwitchOs::Sonic;
    let (s, l) = (switches(os), links(os));
    let empty = Allocations::default();

    let mut f = fabric();
    f.pools.l2_vni = IdRange { first: 100, last: 100 };
    match allocate(&f, &s, &l, &intent(), &empty) {
        Err(Error::Exhausted { field, reason }) => {
            assert_eq!(field, "fabric.pools.l2_vni");
            assert!(reason.contains("net-b"), "{reason}");
        }
        other => panic!("{other:?}"),
    }

    let mut f = fabric();
    f.pools.l3_vni = IdRange { first: 5000, last: 5000 };
    assert!(matches!(
        allocate(&f, &s, &l, &intent(), &empty),
        Err(Error::Exhausted { field, .. }) if field == "fabric.pools.l3_vni"
    ));

    // Four VLANs needed per leaf (2 VRFs + 2 networks), three available.
    let mut f = fabric();
    f.pools.vlan = IdRange { first: 10, last: 12 };
    match allocate(&f, &s, &l, &intent(), &empty) {
        Err(Error::Exhausted { field, reason }) => {
            assert_eq!(field, "fabric.pools.vlan");
            assert!(reason.contains("leaf1"), "{reason}");
        }
        other => panic!("{other:?}"),
    }

    // A /30 holds the gateway and one host.
    let mut i = intent();
    i.networks[0].cidr = net("10.100.0.0/30");
    assert!(matches!(
        allocate(&fabric(), &s, &l, &i, &empty),
        Err(Error::Exhausted { field, .. }) if field == "networks[0].cidr"
    ));
}

#[test]
fn given_addresses_never_take_an_assigned_one_and_assigned_ones_stay() {
    let mut lab = Lab::new(SwitchOs::Frr);
    assert_eq!(lab.alloc.addresses["att-a1"], ip("10.100.0.2"));
    // A new attachment asking for a1's address is refused, naming its field.
    lab.links.push(link(SwitchOs::Frr, "a3", "eth0", "leaf2", 6));
    let mut a3 = attachment("att-a3", "net-a", "a3", "eth0");
    a3.ip = Some(ip("10.100.0.2"));
    lab.intent.attachments.push(a3);
    match lab.reallocate() {
        Err(Error::Invalid { field, reason }) => {
            assert_eq!(field, "attachments[4].ip");
            assert!(reason.contains("att-a1"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    // Without an address it gets the first free one; releasing a1 and
    // adding another reuses .2 (first free host) without moving a3.
    lab.intent.attachments[4].ip = None;
    lab.reallocate().unwrap();
    assert_eq!(lab.alloc.addresses["att-a3"], ip("10.100.0.4"));
    lab.intent.attachments.retain(|a| a.id != "att-a1");
    lab.reallocate().unwrap();
    lab.intent.attachments.push(attachment("att-a9", "net-a", "a1", "eth0"));
    lab.reallocate().unwrap();
    assert_eq!(lab.alloc.addresses["att-a9"], ip("10.100.0.2"));
    assert_eq!(lab.alloc.addresses["att-a3"], ip("10.100.0.4"));
}

#[test]
fn nat_addresses_are_allocated_stably_around_floating_ips() {
    let mut lab = Lab::new(SwitchOs::Frr);
    make_border(&mut lab.switches[2]);
    lab.intent.floating_ips.push(FloatingIp {
        id: "fip-1".into(),
        attachment: "att-a1".into(),
        public_ip: ip("203.0.113.1"),
        allow: vec![],
    });
    lab.intent.nat_gateways.push(NatGateway { vpc: "vpc-b".into(), public_ip: None });
    lab.reallocate().unwrap();
    assert_eq!(
        lab.alloc.nat_addresses["vpc-b"],
        ip("203.0.113.2"),
        "first free after the floating IP"
    );
    lab.intent.nat_gateways.push(NatGateway { vpc: "vpc-a".into(), public_ip: None });
    lab.reallocate().unwrap();
    assert_eq!(lab.alloc.nat_addresses["vpc-b"], ip("203.0.113.2"));
    assert_eq!(lab.alloc.nat_addresses["vpc-a"], ip("203.0.113.3"));
    // A floating IP asking for a NAT address is refused.
    lab.intent.floating_ips.push(FloatingIp {
        id: "fip-2".into(),
        attachment: "att-a2".into(),
        public_ip: ip("203.0.113.3"),
        allow: vec![],
    });
    assert!(
        matches!(lab.reallocate(), Err(Error::Invalid { field, .. }) if field == "floating_ips[1].public_ip")
    );
}

#[test]
fn a_corrupt_ledger_is_refused() {
    let mut lab = Lab::new(SwitchOs::Frr);
    let vni = lab.alloc.networks["net-a"].l2_vni;
    lab.alloc.networks.get_mut("net-b").unwrap().l2_vni = vni;
    match lab.reallocate() {
        Err(Error::Invalid { field, .. }) => {
            assert_eq!(field, "allocations.networks[net-b].l2_vni")
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_ledger_round_trips_through_json() {
    let lab = Lab::new(SwitchOs::AristaEos);
    let json = serde_json::to_string(&lab.alloc).unwrap();
    let back: Allocations = serde_json::from_str(&json).unwrap();
    assert_eq!(back, lab.alloc);
    let empty: Allocations = serde_json::from_str("{}").unwrap();
    assert_eq!(empty, Allocations::default());
}
