//! `neocloud network ...`: a VPC's networks, each an L2 segment with its
//! subnet and anycast gateway.

use super::{show, Call, InVpc, Shown};
use crate::commands::{parse_key, parse_name, to_value, Global};
use crate::output::{short_time, CliError, Row};
use neocloud_common::Name;
use neocloud_types::{Network, NetworkCreate};

#[derive(clap::Args)]
pub struct NetworkArgs {
    #[command(flatten)]
    g: Global,
    #[command(subcommand)]
    cmd: NetworkCmd,
}

#[derive(clap::Subcommand)]
enum NetworkCmd {
    /// List the VPC's networks.
    List {
        #[command(flatten)]
        vpc: InVpc,
    },
    /// Show one network.
    Get {
        /// Network name or id.
        #[arg(value_parser = parse_key)]
        network: String,
        #[command(flatten)]
        vpc: InVpc,
    },
    /// Create a network in a VPC. Its CIDR may overlap other VPCs', never
    /// another network of this one.
    Create {
        #[arg(value_parser = parse_name)]
        name: Name,
        /// IPv4 CIDR, host bits zero, /30 or larger, e.g. 10.0.0.0/24.
        #[arg(long, value_name = "CIDR")]
        cidr: String,
        /// The gateway address (default: the first host of --cidr).
        #[arg(long, value_name = "IP")]
        gateway: Option<String>,
        #[command(flatten)]
        vpc: InVpc,
        /// Retrying with the same key returns the first result instead of a second network.
        #[arg(long, value_name = "KEY")]
        idempotency_key: Option<String>,
    },
    /// Delete a network no instance is attached to and no rule names.
    Delete {
        /// Network name or id.
        #[arg(value_parser = parse_key)]
        network: String,
        #[command(flatten)]
        vpc: InVpc,
    },
}

impl NetworkCmd {
    fn call(&self) -> Result<Call, CliError> {
        Ok(match self {
            NetworkCmd::List { vpc } => Call::Get(vpc.path("networks")),
            NetworkCmd::Get { network, vpc } => Call::Get(vpc.item("networks", network)),
            NetworkCmd::Create { name, cidr, gateway, vpc, idempotency_key } => {
                let body = to_value(&NetworkCreate {
                    name: name.clone(),
                    cidr: cidr.clone(),
                    gateway: gateway.clone(),
                })?;
                Call::post(vpc.path("networks"), body, idempotency_key.as_deref())
            }
            NetworkCmd::Delete { network, vpc } => Call::Delete(vpc.item("networks", network)),
        })
    }
}

impl Row for Network {
    const HEADER: &'static [&'static str] =
        &["NAME", "ID", "CIDR", "GATEWAY", "GENERATION", "CREATED"];
    fn cells(&self) -> Vec<String> {
        vec![
            self.name.clone(),
            self.id.clone(),
            self.cidr.clone(),
            self.gateway.clone(),
            self.generation.to_string(),
            short_time(&self.created_at),
        ]
    }
}

pub fn network(a: NetworkArgs) -> Result<(), CliError> {
    let c = a.g.client()?;
    let v = a.cmd.call()?.send(&c)?;
    let shown = match &a.cmd {
        NetworkCmd::List { .. } => Shown::List,
        NetworkCmd::Delete { network, .. } => Shown::Done(format!("network {network} deleted")),
        NetworkCmd::Get { .. } | NetworkCmd::Create { .. } => Shown::One,
    };
    show::<Network>(a.g.output, &v, shown)
}

#[cfg(test)]
mod tests {
    use super::super::{parsed_cmd, IN_VPC};
    use super::*;
    use crate::commands::{cli_parses as parses, Cmd};
    use serde_json::json;

    fn call(args: &[&str]) -> Call {
        let Cmd::Network(a) = parsed_cmd("network", args, &IN_VPC) else { panic!("not network") };
        a.cmd.call().unwrap()
    }

    const NETS: &str = "/v1/tenants/acme/projects/p/vpcs/main/networks";

    #[test]
    fn requests() {
        assert_eq!(call(&["list"]), Call::Get(NETS.into()));
        assert_eq!(call(&["get", "web"]), Call::Get(format!("{NETS}/web")));
        assert_eq!(
            call(&["create", "web", "--cidr", "10.0.0.0/24"]),
            Call::Post {
                path: NETS.into(),
                body: json!({"name": "web", "cidr": "10.0.0.0/24", "gateway": null}),
                idempotency_key: None,
            }
        );
        let Call::Post { body, .. } =
            call(&["create", "db", "--cidr", "10.1.0.0/24", "--gateway", "10.1.0.254"])
        else {
            panic!("not a post")
        };
        assert_eq!(body["gateway"], "10.1.0.254");
        assert_eq!(call(&["delete", "web"]), Call::Delete(format!("{NETS}/web")));
        // A mistyped name cannot change the path.
        assert_eq!(call(&["get", "a/b"]), Call::Get(format!("{NETS}/a%2Fb")));
    }

    #[test]
    fn arguments() {
        let at = ["--vpc", "v", "--tenant", "t", "--project", "p"];
        let with = |args: &[&'static str]| [args, &at].concat();
        assert!(!parses(&["network", "list", "--tenant", "t", "--project", "p"]));
        assert!(!parses(&with(&["network", "create", "web"])));
        assert!(!parses(&with(&["network", "get", ".."])));
    }
}
