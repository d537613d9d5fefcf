//! `neocloud serve --demo`: seeds an empty store with a small SIMULATED
//! datacenter so a newcomer can provision and release nodes at once: HGX
//! nodes named `sim-*`, each enrolled through a SIMULATED BMC (see
//! `simbmc`: the real lifecycle enrolls, inspects, provisions and
//! sanitizes them, and simulated agents check in), a catalogue of instance
//! types, two simulated images and the simulated model's firmware
//! baseline. The simulator never stands in for real
//! hardware elsewhere.

use neocloud_common::{Error, Name, Result};
use neocloud_placement::SimulatedFleet;
use neocloud_store::{
    allocations, audit, firmware_baselines, images, instance_types, nodes, Store,
};
use neocloud_types::{
    FirmwareBaselineCreate, FirmwareBaselineUpdate, ImageCreate, ImagePurpose, InstanceKind, Nic,
    NodeCreate,
};

/// The BIOS the demo's baseline wants of its simulated nodes (they leave
/// the factory with SIM-BIOS-1.0).
pub const DEMO_BIOS: &str = "SIM-BIOS-1.1";

/// The HGX baseboard GPU firmware of the demo's simulated nodes: they
/// leave the factory with [`DEMO_GPU_FACTORY`], the baseline wants
/// [`DEMO_GPU`], which activates only at an AC power cycle of the chassis.
pub const DEMO_GPU_COMPONENT: &str = "HGX_FW_GPU_SXM_1";
pub const DEMO_GPU: &str = "SIM-GPU-96.00.5F";
pub const DEMO_GPU_FACTORY: &str = "SIM-GPU-95.00.1A";

/// The demo's simulated nodes as they leave the factory, beyond what every
/// simulated BMC has: their HGX baseboard's GPU firmware.
pub fn factory_firmware(fleet: &crate::simbmc::SimFleet) {
    for i in 0..DEMO_NODES {
        fleet.set_firmware(i, DEMO_GPU_COMPONENT, DEMO_GPU_FACTORY);
    }
}

/// Nodes in the demo fleet: 2 SUs of 8 nodes, racks of 4, 8 H100 each.
pub const DEMO_NODES: usize = 16;

fn name(s: &str) -> Result<Name> {
    Name::parse(s).map_err(|e| Error::internal(format!("demo name {s}: {e}")))
}

/// Seeds the demo fleet unless the store already has nodes; returns how
/// many nodes it created. Without simulated BMCs the nodes are registered
/// available at once (placement only).
pub fn seed(store: &Store) -> Result<usize> {
    seed_with_bmcs(store, None)
}

/// Seeds the demo fleet, node `i` enrolled through simulated BMC `i` of
/// the fleet at `(base URL, sealed password)`.
pub fn seed_with_bmcs(store: &Store, sim: Option<(&str, &str)>) -> Result<usize> {
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
                    bmc: sim.map(|(base, _)| neocloud_types::BmcCredentials {
                        endpoint: crate::simbmc::endpoint(base, i),
                        username: crate::simbmc::USER.into(),
                        password: String::new(),
                    }),
                    boot_method: None,
                    boot_network: None,
                    tpm_identity: None,
                },
                sim.map(|(_, sealed)| sealed),
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
        for (n, purpose, dir) in [
            ("sim-ubuntu-24-04", ImagePurpose::Tenant, "ubuntu-24.04"),
            ("sim-sanitizer", ImagePurpose::Sanitizer, "sanitizer"),
        ] {
            images::create(
                w,
                &ImageCreate {
                    name: name(n)?,
                    purpose,
                    kernel_url: format!("http://sim-images.invalid/{dir}/vmlinuz"),
                    initrd_url: format!("http://sim-images.invalid/{dir}/initrd"),
                    root_url: None,
                    root_sha256: None,
                    cmdline: "console=ttyS0".into(),
                    description: "SIMULATED image: simulated nodes do not fetch it".into(),
                },
            )?;
        }
        // The provider's baseline for the SIMULATED model: every inspection
        // and sanitization checks it. With simulated BMCs it wants a newer
        // BIOS than they leave the factory with, and gives its image (a
        // SIMULATED package the demo's fleet serves): every node is updated
        // before it joins the pool, and back after a tenant flashes another.
        // Likewise a newer HGX GPU firmware, which activates only at an AC
        // power cycle of the chassis (its update's task says so).
        let (bios, images) = match sim {
            Some((base, _)) => (
                DEMO_BIOS,
                [("BIOS", DEMO_BIOS), (DEMO_GPU_COMPONENT, DEMO_GPU)]
                    .map(|(c, v)| (c.to_string(), crate::simbmc::firmware_package_url(base, c, v)))
                    .into(),
            ),
            None => ("SIM-BIOS-1.0", Default::default()),
        };
        let mut components: std::collections::BTreeMap<String, String> =
            [("BMC", "SIM-BMC-2.1"), ("BIOS", bios)]
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .into();
        if sim.is_some() {
            components.insert(DEMO_GPU_COMPONENT.into(), DEMO_GPU.into());
        }
        firmware_baselines::create(
            w,
            &FirmwareBaselineCreate {
                name: name("sim-hgx-h100")?,
                model: "Simulated HGX H100".into(),
                components,
                images,
                activations: Default::default(),
                transfer: Default::default(),
                order: Vec::new(),
                description: "SIMULATED firmware of the demo's simulated BMCs".into(),
            },
        )?;
        allocations::bump_placement_generation(w)?;
        seed_fabric(w)?;
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
                target: format!(
                    "simulated datacenter: {DEMO_NODES} nodes, 7 instance types, a firmware baseline, fabrics {DEMO_FABRIC} and {DEMO_IB_FABRIC}"
                ),
                outcome: "success".into(),
                status: 201,
                request_id: neocloud_common::new_id(),
            },
        )?;
        Ok(DEMO_NODES)
    })
}

/// The demo's Ethernet fabric: SIMULATED switches (they accept and remember
/// what the fabric controller pushes), a spine, one leaf per SU (every
/// node's `eth0` cabled to its SU's leaf) and a border with an uplink for
/// NAT gateways and floating IPs from 198.51.100.0/24.
pub const DEMO_FABRIC: &str = "sim-fabric";

fn seed_fabric(w: &mut dyn neocloud_store::Writer) -> Result<()> {
    use neocloud_types::{
        FabricKindSpec, FabricPortSpec, FabricSpec, LinkSpec, PoolsSpec, Ports32, SwitchManagement,
        SwitchOsSpec, SwitchRoleSpec, SwitchSpec,
    };
    let all = nodes::list(w)?;
    let mut sus: Vec<String> = all.iter().map(|n| n.su.to_string()).collect();
    sus.sort();
    sus.dedup();
    let switch = |name: String, role, asn, loopback: String, ports: Vec<FabricPortSpec>| {
        Ok::<_, Error>(SwitchSpec {
            name: self::name(&name)?,
            role,
            os: SwitchOsSpec::Frr,
            mgmt_address: loopback.clone(),
            asn,
            loopback,
            fabric_ports: ports,
            uplink: None,
            management: SwitchManagement::Simulated,
        })
    };
    let leaf_name = |i: usize| format!("sim-leaf-{}", i + 1);
    let mut switches = vec![switch(
        "sim-spine-1".into(),
        SwitchRoleSpec::Spine,
        65000,
        "10.255.0.1".into(),
        (0..sus.len())
            .map(|i| FabricPortSpec { port: format!("swp{}", i + 1), peer: leaf_name(i) })
            .chain([FabricPortSpec { port: "swp32".into(), peer: "sim-border-1".into() }])
            .collect(),
    )?];
    // North-south: a border with an uplink to the (simulated) internet.
    let mut border = switch(
        "sim-border-1".into(),
        SwitchRoleSpec::Border,
        65200,
        "10.255.2.1".into(),
        vec![FabricPortSpec { port: "swp49".into(), peer: "sim-spine-1".into() }],
    )?;
    border.uplink = Some(neocloud_types::UplinkSpec {
        port: "swp50".into(),
        address: "192.0.2.2/30".into(),
        gateway: "192.0.2.1".into(),
    });
    switches.push(border);
    for i in 0..sus.len() {
        switches.push(switch(
            leaf_name(i),
            SwitchRoleSpec::Leaf,
            65101 + i as u32,
            format!("10.255.1.{}", i + 1),
            vec![FabricPortSpec { port: "swp49".into(), peer: "sim-spine-1".into() }],
        )?);
    }
    let links = all
        .iter()
        .enumerate()
        .map(|(i, n)| LinkSpec {
            node: n.id.clone(),
            nic: "eth0".into(),
            switch: leaf_name(sus.iter().position(|s| *s == n.su.as_str()).unwrap_or(0)),
            port: format!("swp{}", i + 1),
        })
        .collect();
    let spec = FabricSpec {
        generation: None,
        kind: FabricKindSpec::Ethernet,
        infiniband: None,
        pools: Some(PoolsSpec {
            l2_vni: Ports32 { first: 10000, last: 19999 },
            l3_vni: Ports32 { first: 50000, last: 50999 },
            vlan: Ports32 { first: 100, last: 3999 },
            route_target_asn: 65000,
            provisioning_vni: 9999,
            provisioning_vlan: 4000,
            provisioning_servers: Vec::new(),
            public: vec!["198.51.100.0/24".into()],
        }),
        gateway_mac: None,
        switches,
        links,
    };
    // The ledger is kept by entry (`network::ledger`), written below.
    let f = neocloud_store::fabrics::create(w, DEMO_FABRIC, "ethernet", &spec, "")?;
    let links: Vec<_> = spec
        .links
        .iter()
        .map(|l| neocloud_store::fabrics::LinkRecord {
            fabric_id: f.id.clone(),
            node_id: l.node.clone(),
            nic: l.nic.clone(),
            switch: l.switch.clone(),
            port: l.port.clone(),
        })
        .collect();
    neocloud_store::fabrics::set_links(w, &f.id, &links)?;
    crate::network::intent::reallocate(w, &f.id, false)?;
    seed_ib(w, &all)
}

/// The demo's InfiniBand subnet: every node's HCA port (a made-up GUID),
/// partitions programmed into a SIMULATED subnet manager.
pub const DEMO_IB_FABRIC: &str = "sim-ib";

fn seed_ib(w: &mut dyn neocloud_store::Writer, all: &[neocloud_types::Node]) -> Result<()> {
    use neocloud_types::{
        FabricKindSpec, FabricSpec, IbPortSpec, InfinibandSpec, PkeyRangeSpec, SubnetManager,
    };
    let spec = FabricSpec {
        generation: None,
        kind: FabricKindSpec::Infiniband,
        pools: None,
        infiniband: Some(InfinibandSpec {
            pkeys: PkeyRangeSpec { first: 0x100, last: 0x7ff },
            ports: all
                .iter()
                .enumerate()
                .map(|(i, n)| IbPortSpec { node: n.id.clone(), guid: format!("5a1e0000{i:08x}") })
                .collect(),
            subnet_manager: SubnetManager::Simulated,
        }),
        gateway_mac: None,
        switches: Vec::new(),
        links: Vec::new(),
    };
    let ledger = serde_json::to_string(&neocloud_fabric::ib::PkeyLedger::default())
        .map_err(|e| Error::internal(e.to_string()))?;
    neocloud_store::fabrics::create(w, DEMO_IB_FABRIC, "infiniband", &spec, &ledger)?;
    Ok(())
}

/// Points the demo's nodes, and its baselines' SIMULATED firmware images,
/// at this run's simulated BMC fleet (its port changes on every start).
pub fn rebind_sim_bmcs(store: &Store, base: &str) -> Result<usize> {
    store.write(|w| {
        let mut n = 0;
        for (id, endpoint) in nodes::bmc_endpoints(w)? {
            if let Some((_, idx)) = endpoint.rsplit_once("/simbmc/") {
                if let Ok(i) = idx.parse::<usize>() {
                    nodes::set_bmc_endpoint(w, &id, &crate::simbmc::endpoint(base, i))?;
                    n += 1;
                }
            }
        }
        for b in firmware_baselines::list(w)? {
            let images: std::collections::BTreeMap<String, String> = b
                .images
                .iter()
                .map(|(c, url)| match url.split_once("/simbmc/firmware/") {
                    Some((_, rest)) => (
                        c.clone(),
                        format!("{}/simbmc/firmware/{rest}", base.trim_end_matches('/')),
                    ),
                    None => (c.clone(), url.clone()),
                })
                .collect();
            if images != b.images {
                let p = FirmwareBaselineUpdate {
                    generation: b.generation,
                    components: None,
                    images: Some(images),
                    activations: None,
                    transfer: None,
                    order: None,
                    description: None,
                };
                firmware_baselines::update(w, &b.id, &p)?;
            }
        }
        Ok(n)
    })
}
