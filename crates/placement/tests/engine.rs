//! Placement engine: behaviour of each shape and constraint, and randomized
//! properties (no unit ever given twice, index consistency, no false
//! "does not fit").

use neocloud_placement::*;
use std::collections::{BTreeMap, HashSet};

fn fleet(nodes: usize) -> Engine {
    let mut e = Engine::new();
    for n in SimulatedFleet::hgx(nodes, "h100-80gb").build() {
        e.add_node(n).unwrap();
    }
    e
}

fn req(shape: Shape) -> Request {
    Request { shape, constraints: Constraints::default() }
}

fn nodes(count: u32) -> Shape {
    Shape::Nodes { gpu_model: "h100-80gb".into(), count }
}

fn gpus(count: u8) -> Shape {
    Shape::Gpus { gpu_model: "h100-80gb".into(), count }
}

fn mig(profile: &str) -> Shape {
    Shape::Mig { gpu_model: "h100-80gb".into(), profile: profile.into() }
}

fn su_of(id: &str) -> usize {
    id.trim_start_matches("sim-").parse::<usize>().unwrap() / 32
}

#[test]
fn whole_nodes_pack_into_the_fullest_su_and_spread_into_the_emptiest() {
    let mut e = fleet(96); // 3 SUs
                           // Take 10 nodes of SU 1 and 5 of SU 2 by name.
    for i in (32..42).chain(64..69) {
        let p = Placement {
            assignments: vec![Assignment {
                node_id: format!("sim-{i:05}"),
                gpus: (0..8).collect(),
                whole_node: true,
                mig: None,
            }],
        };
        e.apply(&format!("pre-{i}"), &p, None).unwrap();
    }
    let p = e.place("a", &req(nodes(1))).unwrap();
    assert_eq!(su_of(&p.assignments[0].node_id), 1, "pack: fullest SU");
    let mut r = req(nodes(1));
    r.constraints.policy = Policy::Spread;
    let p = e.place("b", &r).unwrap();
    assert_eq!(su_of(&p.assignments[0].node_id), 0, "spread: emptiest SU");
    assert!(p.assignments[0].whole_node);
    assert_eq!(p.assignments[0].gpus, (0..8).collect::<Vec<u8>>());
}

#[test]
fn gangs_span_as_few_sus_as_possible_and_respect_scope() {
    let mut e = fleet(256); // 8 SUs, 2 pods of 4 SUs
    let p = e.place("g", &req(nodes(128))).unwrap();
    let sus: HashSet<usize> = p.assignments.iter().map(|a| su_of(&a.node_id)).collect();
    assert_eq!(sus.len(), 4, "128 nodes need exactly 4 SUs of 32");
    assert_eq!(p.assignments.len(), 128);
    // One SU cannot hold 33 nodes.
    let mut r = req(nodes(33));
    r.constraints.scope = Scope::Su;
    let err = e.plan(&r).unwrap_err();
    assert_eq!(err.constraint, "scope", "{err:?}");
    assert!(err.message.contains("SU") && err.message.contains("32"), "{}", err.message);
    // A pod holds 128: the remaining pod is whole.
    let mut r = req(nodes(128));
    r.constraints.scope = Scope::Pod;
    let p = e.place("g2", &r).unwrap();
    let pods: HashSet<usize> = p.assignments.iter().map(|a| su_of(&a.node_id) / 4).collect();
    assert_eq!(pods.len(), 1);
    // Nothing left: a clear capacity answer.
    let err = e.plan(&req(nodes(1))).unwrap_err();
    assert_eq!(err.constraint, "capacity");
    assert!(err.message.contains("0 free"), "{}", err.message);
    // All or nothing: a failed gang took nothing.
    e.release("g");
    let err = e.plan(&req(nodes(129))).unwrap_err();
    assert_eq!(err.constraint, "capacity");
    assert_eq!(e.capacity().models[0].total.free_nodes, 128);
}

#[test]
fn rack_scope_keeps_a_gang_in_one_rack() {
    let mut e = fleet(64);
    let mut r = req(nodes(4));
    r.constraints.scope = Scope::Rack;
    let p = e.place("r", &r).unwrap();
    let racks: HashSet<usize> = p
        .assignments
        .iter()
        .map(|a| a.node_id.trim_start_matches("sim-").parse::<usize>().unwrap() / 4)
        .collect();
    assert_eq!(racks.len(), 1);
    r.shape = nodes(5);
    assert_eq!(e.plan(&r).unwrap_err().constraint, "scope");
}

#[test]
fn gpus_pack_onto_used_nodes_in_aligned_blocks() {
    let mut e = fleet(4);
    let a = e.place("a", &req(gpus(2))).unwrap();
    let b = e.place("b", &req(gpus(2))).unwrap();
    assert_eq!(a.assignments[0].node_id, b.assignments[0].node_id, "pack on the same node");
    assert_eq!(a.assignments[0].gpus, vec![0, 1]);
    assert_eq!(b.assignments[0].gpus, vec![2, 3]);
    let c = e.place("c", &req(gpus(4))).unwrap();
    assert_eq!(c.assignments[0].node_id, a.assignments[0].node_id);
    assert_eq!(c.assignments[0].gpus, vec![4, 5, 6, 7], "aligned block of 4");
    let d = e.place("d", &req(gpus(8))).unwrap();
    assert_ne!(d.assignments[0].node_id, a.assignments[0].node_id);
    assert!(!d.assignments[0].whole_node);
    // 9 GPUs do not fit one HGX NVLink domain.
    let err = e.plan(&req(gpus(9))).unwrap_err();
    assert_eq!(err.constraint, "nvlink_domain", "{err:?}");
}

#[test]
fn nvl72_requests_span_trays_of_one_rack_domain() {
    let mut e = Engine::new();
    for rack in 0..2 {
        for tray in 0..18 {
            e.add_node(NodeSpec {
                id: format!("r{rack}-t{tray:02}"),
                name: format!("r{rack}-t{tray:02}"),
                site: "s".into(),
                pod: "p".into(),
                su: "su".into(),
                rack: format!("nvl72-{rack}"),
                nvlink_domain: format!("nvl72-{rack}"),
                gpu_model: "gb200".into(),
                gpus: 4,
                mig_capable: false,
                availability: Availability::Schedulable,
            })
            .unwrap();
        }
    }
    let p = e.place("big", &req(Shape::Gpus { gpu_model: "gb200".into(), count: 16 })).unwrap();
    assert_eq!(p.assignments.len(), 4, "four whole trays");
    let racks: HashSet<&str> = p.assignments.iter().map(|a| &a.node_id[..2]).collect();
    assert_eq!(racks.len(), 1, "one NVLink domain");
    let err = e.plan(&req(Shape::Gpus { gpu_model: "gb200".into(), count: 73 })).unwrap_err();
    assert_eq!(err.constraint, "nvlink_domain");
    // 72 - 16 = 56 left in rack 0, 72 in rack 1: a 60-GPU request goes to rack 1.
    let p = e.place("60", &req(Shape::Gpus { gpu_model: "gb200".into(), count: 60 })).unwrap();
    assert!(p.assignments.iter().all(|a| a.node_id.starts_with("r1")));
    assert_eq!(p.assignments.iter().map(|a| a.gpus.len()).sum::<usize>(), 60);
}

#[test]
fn mig_slices_pack_onto_mig_gpus_first() {
    let mut e = fleet(2);
    let mut used = Vec::new();
    for i in 0..7 {
        let p = e.place(&format!("m{i}"), &req(mig("1g.10gb"))).unwrap();
        used.push(p.assignments[0].clone());
    }
    let first = &used[0];
    assert!(
        used.iter().all(|a| a.node_id == first.node_id
            && a.mig.as_ref().unwrap().gpu == first.mig.as_ref().unwrap().gpu),
        "seven 1g slices share one GPU: {used:?}"
    );
    let eighth = e.place("m7", &req(mig("1g.10gb"))).unwrap();
    assert_ne!(eighth.assignments[0].mig.as_ref().unwrap().gpu, first.mig.as_ref().unwrap().gpu);
    // The eighth slice opens a second GPU on the same node (pack): the other
    // node stays whole, the MIG node cannot be given out whole.
    assert_eq!(eighth.assignments[0].node_id, first.node_id);
    let cap = e.capacity();
    assert_eq!(cap.models[0].total.free_nodes, 1);
    assert!(e.plan(&req(nodes(2))).is_err());
    assert_eq!(cap.models[0].total.mig_gpus, 2);
    let err = e.plan(&req(mig("9g.10gb"))).unwrap_err();
    assert_eq!(err.constraint, "mig_profile");
    // Releasing every slice of a GPU returns it whole.
    for i in 0..8 {
        e.release(&format!("m{i}")).unwrap();
    }
    assert_eq!(e.capacity().models[0].total.free_nodes, 2);
}

#[test]
fn anti_affinity_and_availability_limit_candidates() {
    let mut e = fleet(2);
    let mut r = req(gpus(1));
    r.constraints.anti_affinity = Some("web".into());
    let a = e.place("a", &r).unwrap();
    let b = e.place("b", &r).unwrap();
    assert_ne!(a.assignments[0].node_id, b.assignments[0].node_id);
    let err = e.plan(&r).unwrap_err();
    assert_eq!(err.constraint, "anti_affinity", "{err:?}");
    assert!(err.message.contains("web"), "{err:?}");
    e.release("a");
    e.place("c", &r).unwrap();

    let mut e = fleet(2);
    e.set_availability("sim-00000", Availability::Maintenance).unwrap();
    let p = e.place("x", &req(nodes(1))).unwrap();
    assert_eq!(p.assignments[0].node_id, "sim-00001");
    assert_eq!(e.plan(&req(nodes(1))).unwrap_err().constraint, "capacity");
    let cap = e.capacity();
    assert_eq!(cap.models[0].total.unavailable_nodes, 1);
    let mut r = req(nodes(1));
    r.constraints.within = Some(Within::Rack("rack-0000".into()));
    e.set_availability("sim-00000", Availability::Schedulable).unwrap();
    assert_eq!(e.plan(&r).unwrap().assignments[0].node_id, "sim-00000");
    r.constraints.within = Some(Within::Rack("rack-9999".into()));
    assert_eq!(e.plan(&r).unwrap_err().constraint, "within");
}

#[test]
fn apply_refuses_double_allocation_and_changes_nothing() {
    let mut e = fleet(2);
    let p = e.place("a", &req(gpus(4))).unwrap();
    assert!(matches!(e.apply("b", &p, None), Err(ApplyError::Busy { .. })));
    assert!(matches!(e.apply("a", &p, None), Err(ApplyError::AlreadyAllocated { .. })));
    let whole = Placement {
        assignments: vec![Assignment {
            node_id: p.assignments[0].node_id.clone(),
            gpus: (0..8).collect(),
            whole_node: true,
            mig: None,
        }],
    };
    assert!(e.apply("w", &whole, None).is_err());
    // A two-node placement with one busy node applies nothing.
    let mut both = whole.clone();
    both.assignments.insert(
        0,
        Assignment {
            node_id: "sim-00001".into(),
            gpus: (0..8).collect(),
            whole_node: true,
            mig: None,
        },
    );
    assert!(e.apply("both", &both, None).is_err());
    assert_eq!(e.capacity().models[0].total.free_nodes, 1, "sim-00001 still free");
    assert!(e
        .apply(
            "x",
            &Placement {
                assignments: vec![Assignment {
                    node_id: "nope".into(),
                    gpus: vec![0],
                    whole_node: false,
                    mig: None
                }]
            },
            None
        )
        .is_err());
}

/// xorshift64*, for reproducible random sequences.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545F4914F6CDD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Every (node, gpu, memory slice) unit is held by at most one allocation.
fn check_units(allocs: &BTreeMap<String, Placement>) {
    let mut held: BTreeMap<(String, u8, u8), String> = BTreeMap::new();
    for (id, p) in allocs {
        for a in &p.assignments {
            let units: Vec<(u8, u8)> = match &a.mig {
                Some(m) => {
                    let size = match m.profile.as_str() {
                        "1g.10gb" | "1g.10gb+me" => 1,
                        "1g.20gb" | "2g.20gb" => 2,
                        "3g.40gb" | "4g.40gb" => 4,
                        _ => 8,
                    };
                    (m.start..m.start + size).map(|s| (m.gpu, s)).collect()
                }
                None => a.gpus.iter().flat_map(|g| (0..8).map(move |s| (*g, s))).collect(),
            };
            for (g, s) in units {
                if let Some(other) = held.insert((a.node_id.clone(), g, s), id.clone()) {
                    panic!("unit {}/{g}/{s} held by {other} and {id}", a.node_id);
                }
            }
        }
    }
}

#[test]
fn random_sequences_never_double_allocate_and_never_miss_capacity() {
    let profiles = ["1g.10gb", "1g.20gb", "2g.20gb", "3g.40gb", "4g.40gb", "7g.80gb", "1g.10gb+me"];
    for seed in 1..=40u64 {
        let mut rng = Rng(seed.wrapping_mul(0x9E3779B97F4A7C15));
        let mut e = fleet(64);
        let mut live: BTreeMap<String, Placement> = BTreeMap::new();
        for step in 0..400 {
            if !live.is_empty() && rng.below(3) == 0 {
                let k = live.keys().nth(rng.below(live.len() as u64) as usize).unwrap().clone();
                let p = e.release(&k).unwrap();
                assert_eq!(live.remove(&k).unwrap(), p);
                continue;
            }
            let shape = match rng.below(4) {
                0 => nodes(1 + rng.below(6) as u32),
                1 => gpus([1, 2, 3, 4, 8][rng.below(5) as usize]),
                _ => mig(profiles[rng.below(profiles.len() as u64) as usize]),
            };
            let mut r = req(shape.clone());
            if rng.below(4) == 0 {
                r.constraints.policy = Policy::Spread;
            }
            if rng.below(5) == 0 {
                r.constraints.scope = Scope::Su;
            }
            let id = format!("s{seed}-{step}");
            match e.place(&id, &r) {
                Ok(p) => {
                    live.insert(id, p);
                }
                Err(nf) => {
                    // No false "does not fit" for shapes with a simple oracle
                    // (a failed place changes nothing, so this is the state it saw).
                    let cap = e.capacity();
                    let t = &cap.models[0];
                    match &shape {
                        Shape::Nodes { count, .. } if r.constraints.scope == Scope::Any => {
                            assert!(
                                t.total.free_nodes < *count,
                                "seed {seed} step {step}: {nf:?} with {} free nodes",
                                t.total.free_nodes
                            )
                        }
                        Shape::Gpus { count, .. } => {
                            // Oracle: some node has `count` free GPUs.
                            let any = (0..64).any(|i| {
                                let single = Request {
                                    shape: Shape::Gpus {
                                        gpu_model: "h100-80gb".into(),
                                        count: *count,
                                    },
                                    constraints: Constraints {
                                        within: Some(Within::Rack(format!("rack-{:04}", i / 4))),
                                        ..Constraints::default()
                                    },
                                };
                                e.plan(&single).is_ok()
                            });
                            assert!(
                                !any,
                                "seed {seed} step {step}: {nf:?} but a rack-restricted plan fits"
                            );
                        }
                        _ => {}
                    }
                }
            }
            if step % 10 == 0 {
                check_units(&live);
            }
        }
        check_units(&live);
        // Release everything: the fleet is whole again.
        let ids: Vec<String> = live.keys().cloned().collect();
        for id in ids {
            e.release(&id).unwrap();
        }
        let t = &e.capacity().models[0].total;
        assert_eq!((t.free_nodes, t.free_gpus, t.mig_gpus), (64, 512, 0), "seed {seed}");
    }
}
