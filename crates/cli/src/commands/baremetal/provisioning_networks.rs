//! `neocloud provisioning-network ...`: the subnets and ranges nodes'
//! static provisioning addresses are drawn from (provider only).

use crate::client;
use crate::commands::{parse_key, parse_name, print_done, to_value, Global};
use crate::output::{print_list, print_one, CliError};
use neocloud_common::Name;
use neocloud_types::{ProvisioningNetwork, ProvisioningNetworkCreate, ProvisioningNetworkUpdate};

#[derive(clap::Args)]
pub struct ProvisioningNetworkArgs {
    #[command(flatten)]
    g: Global,
    #[command(subcommand)]
    cmd: ProvisioningNetworkCmd,
}

#[derive(clap::Subcommand)]
enum ProvisioningNetworkCmd {
    /// List the networks, with their nodes and free addresses.
    List,
    /// Show one network.
    Get {
        /// Network name or id.
        #[arg(value_parser = parse_key)]
        network: String,
    },
    /// Add a network: nodes given `--boot-network NAME` draw their static
    /// address from its range and take its gateway and name servers.
    Create {
        #[arg(value_parser = parse_name)]
        name: Name,
        /// The subnet, e.g. 10.0.8.0/22 (it cannot change, nor overlap
        /// another network's).
        #[arg(long)]
        subnet: String,
        /// The first address drawn.
        #[arg(long)]
        first: String,
        /// The last address drawn.
        #[arg(long)]
        last: String,
        /// The default gateway its nodes take.
        #[arg(long)]
        gateway: Option<String>,
        /// A name server its nodes take (the first is iPXE's); at most two.
        #[arg(long = "dns")]
        dns: Vec<String>,
        /// Retrying with the same key returns the first result instead of a second network.
        #[arg(long, value_name = "KEY")]
        idempotency_key: Option<String>,
    },
    /// Change the range, gateway or name servers: its nodes take a new
    /// gateway or name servers at once (their ISOs are built again) and
    /// keep their addresses.
    Update {
        /// Network name or id.
        #[arg(value_parser = parse_key)]
        network: String,
        /// The generation last read (the update is refused if it changed since).
        #[arg(long)]
        generation: i64,
        #[arg(long)]
        first: Option<String>,
        #[arg(long)]
        last: Option<String>,
        #[arg(long, conflicts_with = "no_gateway")]
        gateway: Option<String>,
        /// Remove the gateway.
        #[arg(long)]
        no_gateway: bool,
        /// The new name servers (all of them); repeat for each.
        #[arg(long = "dns", conflicts_with = "no_dns")]
        dns: Vec<String>,
        /// Remove every name server.
        #[arg(long)]
        no_dns: bool,
    },
    /// Remove a network no node holds an address of.
    Delete {
        /// Network name or id.
        #[arg(value_parser = parse_key)]
        network: String,
    },
}

fn network_path(n: &str) -> String {
    format!("/v1/provisioning-networks/{}", client::seg(n))
}

pub fn provisioning_network(a: ProvisioningNetworkArgs) -> Result<(), CliError> {
    let c = a.g.client()?;
    let f = a.g.output;
    match a.cmd {
        ProvisioningNetworkCmd::List => {
            print_list::<ProvisioningNetwork>(f, &c.get("/v1/provisioning-networks", &[])?)
        }
        ProvisioningNetworkCmd::Get { network } => {
            print_one::<ProvisioningNetwork>(f, &c.get(&network_path(&network), &[])?)
        }
        ProvisioningNetworkCmd::Create {
            name,
            subnet,
            first,
            last,
            gateway,
            dns,
            idempotency_key,
        } => {
            let body =
                to_value(&ProvisioningNetworkCreate { name, subnet, first, last, gateway, dns })?;
            let created =
                c.post("/v1/provisioning-networks", Some(&body), idempotency_key.as_deref())?;
            print_one::<ProvisioningNetwork>(f, &created)
        }
        ProvisioningNetworkCmd::Update {
            network,
            generation,
            first,
            last,
            gateway,
            no_gateway,
            dns,
            no_dns,
        } => {
            let body = to_value(&ProvisioningNetworkUpdate {
                generation,
                first,
                last,
                gateway: if no_gateway { Some(None) } else { gateway.map(Some) },
                dns: (no_dns || !dns.is_empty()).then_some(dns),
            })?;
            print_one::<ProvisioningNetwork>(f, &c.patch(&network_path(&network), &body)?)
        }
        ProvisioningNetworkCmd::Delete { network } => {
            c.delete(&network_path(&network))?;
            print_done(f, &format!("provisioning network {network} deleted"));
            Ok(())
        }
    }
}
