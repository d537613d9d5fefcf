//! `neocloud serve --demo`: seeds an empty store with a small SIMULATED
//! datacenter (placement inventory of simulated HGX nodes, named `sim-*`,
//! and a catalogue of instance types) so a newcomer can allocate at once.
//! The simulator never stands in for real hardware elsewhere.

use neocloud_common::{Error, Name, Result};
use neocloud_placement::SimulatedFleet;
use neocloud_store::{allocations, audit, instance_types, nodes, Store};
use neocloud_types::{InstanceKind, Nic, NodeCreate};

/// Nodes in the demo fleet: 2 SUs of 8 nodes, racks of 4, 8 H100 each.
pub const DEMO_NODES: usize = 16;
/// More demo nodes, enrolled through SIMULATED BMCs (see `simbmc`): they go
/// through the real lifecycle (enrolling -> inspecting -> available).
pub const DEMO_BMC_NODES: usize = 4;

fn name(s: &str) -> Result<Name> {
    Name::parse(s).map_err(|e| Error::internal(format!("demo name {s}: {e}")))
}

/// Seeds the demo fleet unless the store already has nodes; returns how
/// many nodes it created.
pub fn seed(store: &Store) -> Result<usize> {
    seed_with_bmcs(store, &[])
}

/// Seeds the demo fleet and, for each `(endpoint, sealed password)` of a
/// simulated BMC, one node enrolled through it.
pub fn seed_with_bmcs(store: &Store, bmcs: &[(String, String)]) -> Result<usize> {
    store.write(|w| {
        if !nodes::list(w)?.is_empty() {
            return Ok(0);
        }
        let fleet = SimulatedFleet {
            nodes_per_su: 8,
            sus_per_pod: 2,
            ..SimulatedFleet::hgx(DEMO_NODES, "h100-80gb")
        };
        for (i, n) in fleet.build().into_iter().enumerate() {
            // Rail-optimized: NIC r of every node of an SU goes to leaf r of that SU.
            let nics = (0..8u8)
                .map(|rail| Nic {
                    name: format!("sim-ib{rail}"),
                    rail,
                    fabric: "sim-compute".into(),
                    switch: format!("sim-leaf-{}-{rail}", n.su),
                    port: format!("p{}", i % fleet.nodes_per_su),
                    mac: None,
                })
                .collect();
            nodes::create(
                w,
                &NodeCreate {
                    name: name(&n.name)?,
                    site: name(&n.site)?,
                    pod: name(&n.pod)?,
                    su: name(&n.su)?,
                    rack: name(&n.rack)?,
                    nvlink_domain: None,
                    gpu_model: name(&n.gpu_model)?,
                    gpus: n.gpus,
                    gpu_memory_gb: None,
                    mig_capable: true,
                    nics,
                    bmc: None,
                },
                None,
            )?;
        }
        let types: [(&str, InstanceKind, u8, Option<&str>, &str); 7] = [
            ("bm-h100", InstanceKind::BareMetal, 0, None, "A whole HGX H100 node (8 GPUs)"),
            ("vm-h100-1", InstanceKind::Vm, 1, None, "1 H100 GPU"),
            ("vm-h100-2", InstanceKind::Vm, 2, None, "2 H100 GPUs"),
            ("vm-h100-4", InstanceKind::Vm, 4, None, "4 H100 GPUs"),
            ("vm-h100-8", InstanceKind::Vm, 8, None, "8 H100 GPUs in one NVLink domain"),
            ("mig-h100-1g", InstanceKind::Mig, 0, Some("1g.10gb"), "One 1g.10gb MIG slice"),
            ("mig-h100-3g", InstanceKind::Mig, 0, Some("3g.40gb"), "One 3g.40gb MIG slice"),
        ];
        for (n, kind, gpus, profile, desc) in types {
            instance_types::create(
                w,
                &instance_types::NewInstanceType {
                    name: n,
                    kind,
                    gpu_model: "h100-80gb",
                    gpus,
                    mig_profile: profile,
                    vcpus: 16 * gpus.max(1) as u32,
                    memory_gib: 128 * gpus.max(1) as u32,
                    description: desc,
                },
            )?;
        }
        for (i, (endpoint, sealed)) in bmcs.iter().enumerate() {
            nodes::create(
                w,
                &NodeCreate {
                    name: name(&format!("sim-bmc-node-{i}"))?,
                    site: name("sim-site")?,
                    pod: name("pod-001")?,
                    su: name("su-bmc")?,
                    rack: name(&format!("rack-bmc-{}", i / 4))?,
                    nvlink_domain: None,
                    gpu_model: name("h100-80gb")?,
                    gpus: 8,
                    gpu_memory_gb: None,
                    mig_capable: true,
                    nics: Vec::new(),
                    bmc: Some(neocloud_types::BmcCredentials {
                        endpoint: endpoint.clone(),
                        username: crate::simbmc::USER.into(),
                        password: String::new(),
                    }),
                },
                Some(sealed),
            )?;
        }
        allocations::bump_placement_generation(w)?;
        audit::append(
            w,
            audit::PROVIDER_CHAIN,
            &audit::NewEvent {
                time: neocloud_common::time::now_micros(),
                actor: "system".into(),
                actor_name: "demo".into(),
                token_id: None,
                role: None,
                tenant_id: None,
                action: "demo_seed".into(),
                target: format!("simulated datacenter: {DEMO_NODES} nodes, 7 instance types"),
                outcome: "success".into(),
                status: 201,
                request_id: neocloud_common::new_id(),
            },
        )?;
        Ok(DEMO_NODES + bmcs.len())
    })
}
