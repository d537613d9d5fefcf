//! `neocloud node ...`, `instance-type ...`, `capacity` and `allocation ...`.

use super::baremetal::{print_records, VerifyFlags};
use super::{parse_key, parse_name, print_done, project_path, to_value, Global};
use crate::client;
use crate::output::{emit, emit_json, parse, print_list, print_one, CliError, Format, Table};
use neocloud_common::Name;
use neocloud_placement::capacity::{Capacity, Counts};
use neocloud_placement::{Availability, Constraints, Policy, Scope, Within};
use neocloud_types::{
    Allocation, BootMethod, InstanceKind, InstanceType, InstanceTypeCreate, InstanceTypeUpdate,
    Node, NodeCreate, NodeUpdate,
};

// Nodes.

#[derive(clap::Args)]
pub struct NodeArgs {
    #[command(flatten)]
    g: Global,
    #[command(subcommand)]
    cmd: NodeCmd,
}

/// `--availability`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum AvailabilityArg {
    /// The scheduler may place on the node.
    Schedulable,
    /// Out of scheduling for planned work.
    Maintenance,
    /// Out of scheduling: broken.
    Failed,
}

impl From<AvailabilityArg> for Availability {
    fn from(a: AvailabilityArg) -> Availability {
        match a {
            AvailabilityArg::Schedulable => Availability::Schedulable,
            AvailabilityArg::Maintenance => Availability::Maintenance,
            AvailabilityArg::Failed => Availability::Failed,
        }
    }
}

/// A static provisioning address (`--boot-mac`, `--boot-address`, ...).
#[derive(Debug, Clone, clap::Args)]
#[command(group(clap::ArgGroup::new("boot_where").args(["boot_address", "boot_network"]).multiple(true)))]
pub(crate) struct BootNetworkArgs {
    /// A static provisioning address, for networks without DHCP
    /// (virtual_media boots: the node gets an ISO of its own): the MAC of
    /// the NIC it boots from.
    #[arg(long, value_name = "MAC", requires = "boot_where")]
    boot_mac: Option<String>,
    /// Its address and prefix length, e.g. 10.0.0.5/24.
    #[arg(long, value_name = "CIDR", requires = "boot_mac")]
    boot_address: Option<String>,
    /// Or a provisioning network (`neocloud provisioning-network`) to
    /// draw it from, or that the --boot-address given belongs to (its
    /// gateway and name servers too).
    #[arg(long, value_name = "NAME", requires = "boot_mac")]
    boot_network: Option<String>,
    /// Its default gateway (without --boot-network).
    #[arg(long, value_name = "IP", requires = "boot_mac", conflicts_with = "boot_network")]
    boot_gateway: Option<String>,
    /// A name server (repeat for a second; without --boot-network).
    #[arg(
        long = "boot-dns",
        value_name = "IP",
        requires = "boot_mac",
        conflicts_with = "boot_network"
    )]
    boot_dns: Vec<String>,
}

impl BootNetworkArgs {
    fn network(self) -> Option<neocloud_types::BootNetwork> {
        Some(neocloud_types::BootNetwork {
            mac: self.boot_mac?,
            address: self.boot_address,
            network: self.boot_network,
            gateway: self.boot_gateway,
            dns: self.boot_dns,
        })
    }
}

/// `--boot-method`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum BootMethodArg {
    /// A one-time PXE boot from the provisioning network.
    Pxe,
    /// The server's iPXE ISO in the BMC's virtual CD (`virtual_media_iso_url`).
    VirtualMedia,
    /// A one-time UEFI HTTP boot of the server's iPXE EFI binary
    /// (`uefi_http_boot_url`).
    UefiHttp,
}

impl From<BootMethodArg> for BootMethod {
    fn from(a: BootMethodArg) -> BootMethod {
        match a {
            BootMethodArg::Pxe => BootMethod::Pxe,
            BootMethodArg::VirtualMedia => BootMethod::VirtualMedia,
            BootMethodArg::UefiHttp => BootMethod::UefiHttp,
        }
    }
}

// Parsed once per process: the size of the largest variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(clap::Subcommand)]
enum NodeCmd {
    /// List GPU nodes.
    List,
    /// Show one node.
    Get {
        /// Node name or id.
        #[arg(value_parser = parse_key)]
        node: String,
    },
    /// Register a node's placement inventory.
    Create {
        #[arg(value_parser = parse_name)]
        name: Name,
        #[arg(long, value_parser = parse_name)]
        site: Name,
        #[arg(long, value_parser = parse_name)]
        pod: Name,
        /// Scalable unit.
        #[arg(long, value_parser = parse_name)]
        su: Name,
        #[arg(long, value_parser = parse_name)]
        rack: Name,
        /// GPU model key, e.g. h100-80gb.
        #[arg(long, value_parser = parse_name, value_name = "MODEL")]
        gpu_model: Name,
        /// GPUs on the node, 1 to 16.
        #[arg(long, value_name = "N")]
        gpus: u8,
        /// NVLink domain (default: the node itself; the rack for NVL72 trays).
        #[arg(long, value_parser = parse_name, value_name = "DOMAIN")]
        nvlink_domain: Option<Name>,
        /// The node's GPUs can be split into MIG slices.
        #[arg(long)]
        mig_capable: bool,
        /// Memory per GPU in GB (default: known per GPU model).
        #[arg(long, value_name = "GB")]
        gpu_memory_gb: Option<u32>,
        /// Enroll through this BMC (http(s)://host[:port]): the node starts
        /// `enrolling` and becomes available once inspected over Redfish.
        #[arg(long, value_name = "URL", requires_all = ["bmc_username", "bmc_password_file"])]
        bmc_endpoint: Option<String>,
        #[arg(long, value_name = "USER")]
        bmc_username: Option<String>,
        /// File holding the BMC password (kept off the command line).
        #[arg(long, value_name = "PATH")]
        bmc_password_file: Option<std::path::PathBuf>,
        /// How the BMC boots the node into images (default pxe; needs
        /// --bmc-endpoint).
        #[arg(long, value_enum, requires = "bmc_endpoint")]
        boot_method: Option<BootMethodArg>,
        #[command(flatten)]
        boot_network: BootNetworkArgs,
        /// A fabric NIC, NAME:RAIL:FABRIC:SWITCH:PORT[@MAC] (repeat per NIC).
        #[arg(long = "nic", value_parser = parse_nic, value_name = "NIC")]
        nics: Vec<neocloud_types::Nic>,
        /// The node's TPM endorsement key name from your records
        /// (`neocloud-agent --inventory` prints it): every agent proves it.
        #[arg(long, value_name = "HEX")]
        tpm_identity: Option<String>,
        /// Retrying with the same key returns the first result instead of a second node.
        #[arg(long, value_name = "KEY")]
        idempotency_key: Option<String>,
    },
    /// Take a node in or out of scheduling; --generation is the one you last
    /// saw (a stale one fails with exit 6).
    Update {
        /// Node name or id.
        #[arg(value_parser = parse_key)]
        node: String,
        #[arg(long, value_enum)]
        availability: AvailabilityArg,
        /// A new boot method, used from the node's next boot on.
        #[arg(long, value_enum)]
        boot_method: Option<BootMethodArg>,
        /// A new static provisioning address (all of it: --boot-mac,
        /// --boot-address, ...), used from the node's next boot on.
        #[command(flatten)]
        boot_network: BootNetworkArgs,
        /// Remove the node's static provisioning address (its boots get
        /// one by DHCP again).
        #[arg(long, conflicts_with = "boot_mac")]
        no_boot_network: bool,
        #[arg(long)]
        generation: i64,
    },
    /// Remove a node that holds no allocation.
    Delete {
        /// Node name or id.
        #[arg(value_parser = parse_key)]
        node: String,
    },
    /// The node's signed sanitization records, newest first, one row per
    /// check; --verify checks each record's ed25519 signature (exit 10 when
    /// one does not verify).
    Sanitizations {
        /// Node name or id.
        #[arg(value_parser = parse_key)]
        node: String,
        #[command(flatten)]
        verify: VerifyFlags,
    },
    /// What the node's BMC reported at its last inspection (system, NICs,
    /// GPUs, firmware, Secure Boot, BMC accounts) and its agent's last
    /// report (health, each GPU's readings).
    Hardware {
        /// Node name or id.
        #[arg(value_parser = parse_key)]
        node: String,
    },
    /// Inspect a node again through its BMC, optionally with new credentials.
    Inspect {
        /// Node name or id.
        #[arg(value_parser = parse_key)]
        node: String,
        #[arg(long, value_name = "URL", requires_all = ["bmc_username", "bmc_password_file"])]
        bmc_endpoint: Option<String>,
        #[arg(long, value_name = "USER")]
        bmc_username: Option<String>,
        /// File holding the BMC password (kept off the command line).
        #[arg(long, value_name = "PATH")]
        bmc_password_file: Option<std::path::PathBuf>,
        /// Forget the node's TPM identity (its TPM or mainboard was
        /// replaced): the next sanitizer records the new one.
        #[arg(long)]
        forget_tpm_identity: bool,
        /// Forget the node's UEFI variable and network adapter baselines
        /// (changed on purpose, an adapter removed): the node is sanitized
        /// before it rejoins the pool, which records them anew.
        #[arg(long)]
        forget_baselines: bool,
    },
}

/// BMC credentials from the flags, the password read from its file.
fn bmc_from_flags(
    endpoint: Option<String>,
    username: Option<String>,
    password_file: Option<std::path::PathBuf>,
) -> Result<Option<neocloud_types::BmcCredentials>, CliError> {
    match (endpoint, username, password_file) {
        (Some(endpoint), Some(username), Some(file)) => {
            let password = std::fs::read_to_string(&file)
                .map_err(|e| {
                    CliError::Usage(format!("--bmc-password-file {}: {e}", file.display()))
                })?
                .trim_end_matches(['\n', '\r'])
                .to_string();
            Ok(Some(neocloud_types::BmcCredentials { endpoint, username, password }))
        }
        _ => Ok(None),
    }
}

fn node_path(node: &str) -> String {
    format!("/v1/nodes/{}", client::seg(node))
}

pub fn node(a: NodeArgs) -> Result<(), CliError> {
    let c = a.g.client()?;
    let f = a.g.output;
    match a.cmd {
        NodeCmd::List => print_list::<Node>(f, &c.get("/v1/nodes", &[])?),
        NodeCmd::Get { node } => print_one::<Node>(f, &c.get(&node_path(&node), &[])?),
        NodeCmd::Create {
            name,
            site,
            pod,
            su,
            rack,
            gpu_model,
            gpus,
            nvlink_domain,
            mig_capable,
            gpu_memory_gb,
            nics,
            bmc_endpoint,
            bmc_username,
            bmc_password_file,
            boot_method,
            boot_network,
            tpm_identity,
            idempotency_key,
        } => {
            let bmc = bmc_from_flags(bmc_endpoint, bmc_username, bmc_password_file)?;
            let body = to_value(&NodeCreate {
                name,
                site,
                pod,
                su,
                rack,
                nvlink_domain,
                gpu_model,
                gpus,
                gpu_memory_gb,
                mig_capable,
                nics,
                bmc,
                boot_method: boot_method.map(Into::into),
                boot_network: boot_network.network(),
                tpm_identity,
            })?;
            print_one::<Node>(f, &c.post("/v1/nodes", Some(&body), idempotency_key.as_deref())?)
        }
        NodeCmd::Update {
            node,
            availability,
            boot_method,
            boot_network,
            no_boot_network,
            generation,
        } => {
            let boot_network = match (boot_network.network(), no_boot_network) {
                (Some(n), _) => Some(Some(n)),
                (None, true) => Some(None),
                (None, false) => None,
            };
            let body = to_value(&NodeUpdate {
                generation,
                availability: availability.into(),
                boot_method: boot_method.map(Into::into),
                boot_network,
            })?;
            print_one::<Node>(f, &c.patch(&node_path(&node), &body)?)
        }
        NodeCmd::Delete { node } => {
            c.delete(&node_path(&node))?;
            print_done(f, &format!("node {node} deleted"));
            Ok(())
        }
        NodeCmd::Sanitizations { node, verify } => {
            let records = c.get(&format!("{}/sanitizations", node_path(&node)), &[])?;
            // The records must be about this node.
            let node_id = match verify.enabled() {
                true => Some(parse::<Node>(&c.get(&node_path(&node), &[])?)?.id),
                false => None,
            };
            print_records(f, &records, &verify, |b| match &node_id {
                Some(id) if &b.node_id != id => {
                    Err(format!("it is about node {}, not {id}", b.node_id))
                }
                _ => Ok(()),
            })
        }
        NodeCmd::Hardware { node } => {
            let v = c.get(&format!("{}/hardware", node_path(&node)), &[])?;
            match f {
                Format::Json => emit_json(&v),
                Format::Table => emit(&super::hardware::table(&parse(&v)?)),
            }
            Ok(())
        }
        NodeCmd::Inspect {
            node,
            bmc_endpoint,
            bmc_username,
            bmc_password_file,
            forget_tpm_identity,
            forget_baselines,
        } => {
            let bmc = bmc_from_flags(bmc_endpoint, bmc_username, bmc_password_file)?;
            let body = to_value(&neocloud_types::NodeInspect {
                bmc,
                forget_tpm_identity,
                forget_baselines,
            })?;
            let path = format!("{}/inspect", node_path(&node));
            print_one::<Node>(f, &c.post(&path, Some(&body), None)?)
        }
    }
}

// Instance types.

#[derive(clap::Args)]
pub struct InstanceTypeArgs {
    #[command(flatten)]
    g: Global,
    #[command(subcommand)]
    cmd: InstanceTypeCmd,
}

/// `--kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum KindArg {
    /// Whole nodes of a GPU model.
    #[value(alias = "bare_metal")]
    BareMetal,
    /// --gpus GPUs inside one NVLink domain.
    Vm,
    /// One MIG slice of --mig-profile.
    Mig,
}

impl From<KindArg> for InstanceKind {
    fn from(k: KindArg) -> InstanceKind {
        match k {
            KindArg::BareMetal => InstanceKind::BareMetal,
            KindArg::Vm => InstanceKind::Vm,
            KindArg::Mig => InstanceKind::Mig,
        }
    }
}

#[derive(clap::Subcommand)]
enum InstanceTypeCmd {
    /// List instance types.
    List,
    /// Show one instance type.
    Get {
        /// Instance type name or id.
        #[arg(value_parser = parse_key)]
        instance_type: String,
    },
    /// Define an instance type: bare metal, VM (--gpus) or MIG slice (--mig-profile).
    Create {
        #[arg(value_parser = parse_name)]
        name: Name,
        #[arg(long, value_enum)]
        kind: KindArg,
        /// GPU model key, e.g. h100-80gb.
        #[arg(long, value_parser = parse_name, value_name = "MODEL")]
        gpu_model: Name,
        /// VM types: GPUs per instance.
        #[arg(long, value_name = "N")]
        gpus: Option<u8>,
        /// MIG types: the profile, e.g. 1g.10gb.
        #[arg(long, value_name = "PROFILE")]
        mig_profile: Option<String>,
        #[arg(long, value_name = "N")]
        vcpus: Option<u32>,
        #[arg(long, value_name = "N")]
        memory_gib: Option<u32>,
        #[arg(long)]
        description: Option<String>,
        /// Retrying with the same key returns the first result instead of a second type.
        #[arg(long, value_name = "KEY")]
        idempotency_key: Option<String>,
    },
    /// Change an instance type's description; --generation is the one you last saw.
    Update {
        /// Instance type name or id.
        #[arg(value_parser = parse_key)]
        instance_type: String,
        #[arg(long)]
        generation: i64,
        #[arg(long)]
        description: Option<String>,
    },
    /// Delete an instance type no active allocation uses.
    Delete {
        /// Instance type name or id.
        #[arg(value_parser = parse_key)]
        instance_type: String,
    },
}

fn instance_type_path(t: &str) -> String {
    format!("/v1/instance-types/{}", client::seg(t))
}

pub fn instance_type(a: InstanceTypeArgs) -> Result<(), CliError> {
    let c = a.g.client()?;
    let f = a.g.output;
    match a.cmd {
        InstanceTypeCmd::List => print_list::<InstanceType>(f, &c.get("/v1/instance-types", &[])?),
        InstanceTypeCmd::Get { instance_type } => {
            print_one::<InstanceType>(f, &c.get(&instance_type_path(&instance_type), &[])?)
        }
        InstanceTypeCmd::Create {
            name,
            kind,
            gpu_model,
            gpus,
            mig_profile,
            vcpus,
            memory_gib,
            description,
            idempotency_key,
        } => {
            let body = to_value(&InstanceTypeCreate {
                name,
                kind: kind.into(),
                gpu_model,
                gpus,
                mig_profile,
                vcpus,
                memory_gib,
                description,
            })?;
            let v = c.post("/v1/instance-types", Some(&body), idempotency_key.as_deref())?;
            print_one::<InstanceType>(f, &v)
        }
        InstanceTypeCmd::Update { instance_type, generation, description } => {
            let body = to_value(&InstanceTypeUpdate { generation, description })?;
            print_one::<InstanceType>(f, &c.patch(&instance_type_path(&instance_type), &body)?)
        }
        InstanceTypeCmd::Delete { instance_type } => {
            c.delete(&instance_type_path(&instance_type))?;
            print_done(f, &format!("instance type {instance_type} deleted"));
            Ok(())
        }
    }
}

// Capacity.

/// `capacity --by`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
enum ByArg {
    /// One row per GPU model.
    #[default]
    Model,
    /// One row per GPU model and scalable unit.
    Su,
    /// One row per GPU model and rack.
    Rack,
}

#[derive(clap::Args)]
pub struct CapacityArgs {
    #[command(flatten)]
    g: Global,
    /// Only this GPU model.
    #[arg(long, value_name = "MODEL", value_parser = parse_key)]
    gpu_model: Option<String>,
    /// Group the table rows (ignored with -o json, which prints every grouping).
    #[arg(long, value_enum, default_value_t = ByArg::Model)]
    by: ByArg,
}

pub fn capacity(a: CapacityArgs) -> Result<(), CliError> {
    let c = a.g.client()?;
    let query: Vec<(&str, String)> = a.gpu_model.into_iter().map(|m| ("gpu_model", m)).collect();
    let v = c.get("/v1/capacity", &query)?;
    if a.g.output == Format::Json {
        emit_json(&v);
        return Ok(());
    }
    let cap: Capacity = parse(&v)?;
    emit(&capacity_table(&cap, a.by));
    Ok(())
}

const COUNT_HEADER: &[&str] = &[
    "NODES",
    "UNAVAILABLE",
    "FREE NODES",
    "GPUS",
    "FREE GPUS",
    "MIG GPUS",
    "FREE MIG SLICES",
    "FRAGMENTATION",
];

fn count_cells(c: &Counts) -> Vec<String> {
    vec![
        c.nodes.to_string(),
        c.unavailable_nodes.to_string(),
        c.free_nodes.to_string(),
        c.gpus.to_string(),
        c.free_gpus.to_string(),
        c.mig_gpus.to_string(),
        c.mig_free_slices.to_string(),
        format!("{:.2}", c.fragmentation),
    ]
}

fn capacity_table(cap: &Capacity, by: ByArg) -> String {
    let mut header = vec!["GPU MODEL"];
    match by {
        ByArg::Model => {}
        ByArg::Su => header.push("SU"),
        ByArg::Rack => header.push("RACK"),
    }
    header.extend_from_slice(COUNT_HEADER);
    let mut t = Table::new(&header);
    for m in &cap.models {
        let groups = match by {
            ByArg::Model => {
                t.row([vec![m.gpu_model.clone()], count_cells(&m.total)].concat());
                continue;
            }
            ByArg::Su => &m.by_su,
            ByArg::Rack => &m.by_rack,
        };
        for (k, c) in groups {
            t.row([vec![m.gpu_model.clone(), k.clone()], count_cells(c)].concat());
        }
    }
    t.render()
}

// Allocations.

#[derive(clap::Args)]
pub struct AllocationArgs {
    #[command(flatten)]
    g: Global,
    #[command(subcommand)]
    cmd: AllocationCmd,
}

/// The project whose allocations (or instances) these are.
#[derive(clap::Args, Debug)]
pub(super) struct InProject {
    /// Tenant name or id.
    #[arg(long, value_parser = parse_key)]
    tenant: String,
    /// Project name or id.
    #[arg(long, value_parser = parse_key)]
    project: String,
}

impl InProject {
    /// `/v1/tenants/{tenant}/projects/{project}`.
    pub(super) fn path(&self) -> String {
        project_path(&self.tenant, &self.project)
    }

    fn allocations(&self) -> String {
        format!("{}/allocations", self.path())
    }

    fn allocation(&self, id: &str) -> String {
        format!("{}/{}", self.allocations(), client::seg(id))
    }
}

/// `--scope`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum ScopeArg {
    /// Anywhere (still spanning as few SUs as it can).
    Any,
    /// Inside one pod.
    Pod,
    /// Inside one scalable unit.
    Su,
    /// Inside one rack.
    Rack,
}

impl From<ScopeArg> for Scope {
    fn from(s: ScopeArg) -> Scope {
        match s {
            ScopeArg::Any => Scope::Any,
            ScopeArg::Pod => Scope::Pod,
            ScopeArg::Su => Scope::Su,
            ScopeArg::Rack => Scope::Rack,
        }
    }
}

/// `--policy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum PolicyArg {
    /// Fill partly used nodes and SUs first.
    Pack,
    /// Prefer the emptiest nodes and SUs.
    Spread,
}

impl From<PolicyArg> for Policy {
    fn from(p: PolicyArg) -> Policy {
        match p {
            PolicyArg::Pack => Policy::Pack,
            PolicyArg::Spread => Policy::Spread,
        }
    }
}

/// Placement constraints: `allocation create` and `instance create`.
#[derive(clap::Args, Debug)]
pub(super) struct PlacementFlags {
    /// How close together the instances must be.
    #[arg(long, value_enum)]
    scope: Option<ScopeArg>,
    /// Which free capacity to take first.
    #[arg(long, value_enum)]
    policy: Option<PolicyArg>,
    /// No two allocations of this group share a node.
    #[arg(long, value_name = "GROUP")]
    anti_affinity: Option<String>,
    /// Only inside this pod, SU or rack: pod:NAME, su:NAME or rack:NAME.
    #[arg(long, value_parser = parse_within, value_name = "LEVEL:NAME")]
    within: Option<Within>,
}

impl PlacementFlags {
    pub(super) fn constraints(self) -> Constraints {
        Constraints {
            scope: self.scope.map(Scope::from).unwrap_or_default(),
            policy: self.policy.map(Policy::from).unwrap_or_default(),
            anti_affinity: self.anti_affinity,
            within: self.within,
        }
    }
}

#[derive(clap::Subcommand)]
enum AllocationCmd {
    /// List the project's allocations (or, with --reservations, its reservations).
    List {
        #[command(flatten)]
        at: InProject,
        #[arg(long)]
        reservations: bool,
    },
    /// Place and hold instances of a type (a bare-metal count > 1 is an
    /// all-or-nothing gang). Exit 6 when it cannot be placed or the quota
    /// would be exceeded.
    Create {
        /// Instance type name or id.
        #[arg(long, value_parser = parse_key, value_name = "TYPE")]
        instance_type: String,
        /// Instances (bare metal: nodes).
        #[arg(long, default_value_t = 1, value_name = "N")]
        count: u32,
        #[command(flatten)]
        placement: PlacementFlags,
        #[command(flatten)]
        at: InProject,
        /// Retrying with the same key returns the first result instead of a second allocation.
        #[arg(long, value_name = "KEY")]
        idempotency_key: Option<String>,
        /// Hold the capacity as a reservation, to allocate against later.
        #[arg(long, conflicts_with = "from_reservation")]
        reserve: bool,
        /// Allocate out of this reservation (id) instead of free capacity.
        #[arg(long, value_parser = parse_key, value_name = "ID")]
        from_reservation: Option<String>,
    },
    /// Show one allocation (or, with --reservation, one reservation).
    Get {
        /// Allocation id.
        #[arg(value_parser = parse_key)]
        id: String,
        #[command(flatten)]
        at: InProject,
        #[arg(long)]
        reservation: bool,
    },
    /// Release an allocation (or, with --reservation, what remains of a
    /// reservation): its nodes, GPUs and quota return to the pool.
    Release {
        /// Allocation id.
        #[arg(value_parser = parse_key)]
        id: String,
        #[command(flatten)]
        at: InProject,
        #[arg(long)]
        reservation: bool,
    },
}

/// `NAME:RAIL:FABRIC:SWITCH:PORT[@MAC]`, e.g. `ibp24s0:0:compute:leaf-0:p12`
/// or `eno1:0:prov:leaf-0:p12@52:54:00:12:34:56`.
fn parse_nic(s: &str) -> Result<neocloud_types::Nic, String> {
    let (s, mac) = match s.split_once('@') {
        Some((nic, mac)) => (nic, Some(mac.to_ascii_lowercase())),
        None => (s, None),
    };
    let parts: Vec<&str> = s.split(':').collect();
    let [name, rail, fabric, switch, port] = parts[..] else {
        return Err(
            "expected NAME:RAIL:FABRIC:SWITCH:PORT[@MAC], e.g. ibp24s0:0:compute:leaf-0:p12".into(),
        );
    };
    let rail = rail.parse::<u8>().map_err(|_| format!("rail {rail:?} is not a number"))?;
    Ok(neocloud_types::Nic {
        name: name.into(),
        rail,
        fabric: fabric.into(),
        switch: switch.into(),
        port: port.into(),
        mac,
    })
}

/// `pod:NAME`, `su:NAME` or `rack:NAME`.
fn parse_within(s: &str) -> Result<Within, String> {
    let (level, name) =
        s.split_once(':').ok_or("expected pod:NAME, su:NAME or rack:NAME, e.g. su:su-1")?;
    let name = parse_name(name)?.as_str().to_string();
    match level {
        "pod" => Ok(Within::Pod(name)),
        "su" => Ok(Within::Su(name)),
        "rack" => Ok(Within::Rack(name)),
        _ => Err(format!("unknown level {level:?}: expected pod, su or rack")),
    }
}

/// The reservations path for an allocations path.
fn kind_path(allocations_path: String, reservation: bool) -> String {
    if reservation {
        allocations_path.replacen("/allocations", "/reservations", 1)
    } else {
        allocations_path
    }
}

pub fn allocation(a: AllocationArgs) -> Result<(), CliError> {
    let c = a.g.client()?;
    let f = a.g.output;
    match a.cmd {
        AllocationCmd::List { at, reservations } => {
            print_list::<Allocation>(f, &c.get(&kind_path(at.allocations(), reservations), &[])?)
        }
        AllocationCmd::Create {
            instance_type,
            count,
            placement,
            at,
            idempotency_key,
            reserve,
            from_reservation,
        } => {
            let constraints = placement.constraints();
            // Built as JSON, not as `AllocationCreate`: only the fields this
            // command sets, so optional fields added to the API later keep
            // their defaults.
            let mut body = serde_json::json!({
                "instance_type": instance_type,
                "count": count,
            });
            if constraints != Constraints::default() {
                body["constraints"] = to_value(&constraints)?;
            }
            if let Some(r) = from_reservation {
                body["reservation"] = serde_json::json!(r);
            }
            let path = kind_path(at.allocations(), reserve);
            let v = c.post(&path, Some(&body), idempotency_key.as_deref())?;
            print_one::<Allocation>(f, &v)
        }
        AllocationCmd::Get { id, at, reservation } => {
            print_one::<Allocation>(f, &c.get(&kind_path(at.allocation(&id), reservation), &[])?)
        }
        AllocationCmd::Release { id, at, reservation } => {
            match c.delete(&kind_path(at.allocation(&id), reservation))? {
                Some(v) => print_one::<Allocation>(f, &v),
                None => {
                    print_done(f, &format!("allocation {id} released"));
                    Ok(())
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use neocloud_placement::capacity::ModelCapacity;

    use crate::commands::cli_parses as parses;

    #[test]
    fn arguments() {
        assert!(parses(&["node", "list", "-o", "json"]));
        assert!(parses(&[
            "node",
            "create",
            "n1",
            "--site",
            "s",
            "--pod",
            "p",
            "--su",
            "su-1",
            "--rack",
            "r1",
            "--gpu-model",
            "h100-80gb",
            "--gpus",
            "8",
            "--mig-capable"
        ]));
        assert!(!parses(&["node", "create", "n1", "--site", "s"]));
        assert!(parses(&[
            "node",
            "update",
            "n1",
            "--availability",
            "maintenance",
            "--generation",
            "2"
        ]));
        assert!(!parses(&[
            "node",
            "update",
            "n1",
            "--availability",
            "broken",
            "--generation",
            "2"
        ]));
        for kind in ["bare-metal", "bare_metal", "vm", "mig"] {
            assert!(parses(&[
                "instance-type",
                "create",
                "t",
                "--kind",
                kind,
                "--gpu-model",
                "h100-80gb"
            ]));
        }
        assert!(!parses(&["instance-type", "create", "t", "--kind", "x", "--gpu-model", "m"]));
        assert!(parses(&["capacity", "--by", "su", "--gpu-model", "h100-80gb"]));
        assert!(!parses(&["capacity", "--by", "pod"]));
        assert!(parses(&[
            "allocation",
            "create",
            "--instance-type",
            "bm",
            "--count",
            "2",
            "--scope",
            "su",
            "--policy",
            "spread",
            "--within",
            "pod:p1",
            "--tenant",
            "t",
            "--project",
            "p"
        ]));
        assert!(!parses(&["allocation", "create", "--instance-type", "bm", "--tenant", "t"]));
        assert!(!parses(&["allocation", "list", "--tenant", "t", "--project", "p", "--x"]));
    }

    #[test]
    fn within() {
        assert_eq!(parse_within("su:su-1"), Ok(Within::Su("su-1".into())));
        assert_eq!(parse_within("rack:r1"), Ok(Within::Rack("r1".into())));
        assert!(parse_within("su").is_err());
        assert!(parse_within("row:r1").is_err());
        assert!(parse_within("su:Bad_Name").is_err());
    }

    #[test]
    fn capacity_rows() {
        let counts =
            Counts { nodes: 2, free_nodes: 1, gpus: 16, fragmentation: 0.5, ..Default::default() };
        let mut m = ModelCapacity {
            gpu_model: "h100-80gb".into(),
            total: counts.clone(),
            ..Default::default()
        };
        m.by_su.insert("su-a".into(), counts.clone());
        m.by_su.insert("su-b".into(), counts.clone());
        m.by_rack.insert("r1".into(), counts);
        let cap = Capacity { models: vec![m] };
        let t = capacity_table(&cap, ByArg::Model);
        assert_eq!(t.lines().count(), 2, "{t}");
        assert!(t.starts_with("GPU MODEL  NODES"), "{t}");
        assert!(t.contains("0.50"), "{t}");
        let t = capacity_table(&cap, ByArg::Su);
        assert_eq!(t.lines().count(), 3, "{t}");
        assert!(t.lines().nth(2).unwrap().starts_with("h100-80gb  su-b"), "{t}");
        assert_eq!(capacity_table(&cap, ByArg::Rack).lines().count(), 2);
    }
}
