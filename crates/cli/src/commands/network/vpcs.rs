//! `neocloud vpc ...`: a project's VPCs, each a routing domain of its own
//! on a fabric.

use super::{show, vpc_path, vpcs_path, Call, Shown};
use crate::commands::inventory::InProject;
use crate::commands::{parse_key, parse_name, to_value, Global};
use crate::output::{or_dash, parse, short_time, CliError, Row};
use neocloud_common::Name;
use neocloud_types::{Vpc, VpcCreate, VpcUpdate};

#[derive(clap::Args)]
pub struct VpcArgs {
    #[command(flatten)]
    g: Global,
    #[command(subcommand)]
    cmd: VpcCmd,
}

#[derive(clap::Subcommand)]
enum VpcCmd {
    /// List the project's VPCs.
    List {
        #[command(flatten)]
        at: InProject,
    },
    /// Show one VPC, with its NAT gateway's public address.
    Get {
        /// VPC name or id.
        #[arg(value_parser = parse_key)]
        vpc: String,
        #[command(flatten)]
        at: InProject,
    },
    /// Create a VPC: a routing domain of its own (its address space may
    /// overlap other VPCs').
    Create {
        #[arg(value_parser = parse_name)]
        name: Name,
        /// Fabric name or id (may be left out when the provider runs one
        /// Ethernet fabric).
        #[arg(long, value_parser = parse_key, value_name = "FABRIC")]
        fabric: Option<String>,
        /// Egress for the whole VPC through one public address.
        #[arg(long)]
        nat_gateway: bool,
        #[arg(long)]
        description: Option<String>,
        #[command(flatten)]
        at: InProject,
        /// Retrying with the same key returns the first result instead of a second VPC.
        #[arg(long, value_name = "KEY")]
        idempotency_key: Option<String>,
    },
    /// Turn the NAT gateway on or off, or change the description.
    Update {
        /// VPC name or id.
        #[arg(value_parser = parse_key)]
        vpc: String,
        /// true or false.
        #[arg(
            long,
            value_name = "BOOL",
            action = clap::ArgAction::Set,
            required_unless_present = "description"
        )]
        nat_gateway: Option<bool>,
        #[arg(long)]
        description: Option<String>,
        /// The generation you last saw (a stale one fails with exit 6);
        /// default: the VPC's current one.
        #[arg(long)]
        generation: Option<i64>,
        #[command(flatten)]
        at: InProject,
    },
    /// Delete a VPC without networks.
    Delete {
        /// VPC name or id.
        #[arg(value_parser = parse_key)]
        vpc: String,
        #[command(flatten)]
        at: InProject,
    },
}

impl VpcCmd {
    /// The call. `current` answers the VPC's generation; only an `update`
    /// given none asks it.
    fn call(
        &self,
        current: impl FnOnce(&InProject, &str) -> Result<i64, CliError>,
    ) -> Result<Call, CliError> {
        Ok(match self {
            VpcCmd::List { at } => Call::Get(vpcs_path(at)),
            VpcCmd::Get { vpc, at } => Call::Get(vpc_path(at, vpc)),
            VpcCmd::Create { name, fabric, nat_gateway, description, at, idempotency_key } => {
                let body = to_value(&VpcCreate {
                    name: name.clone(),
                    fabric: fabric.clone(),
                    nat_gateway: *nat_gateway,
                    description: description.clone().unwrap_or_default(),
                })?;
                Call::post(vpcs_path(at), body, idempotency_key.as_deref())
            }
            VpcCmd::Update { vpc, nat_gateway, description, generation, at } => {
                let generation = match generation {
                    Some(g) => *g,
                    None => current(at, vpc)?,
                };
                let body = to_value(&VpcUpdate {
                    generation,
                    nat_gateway: *nat_gateway,
                    description: description.clone(),
                })?;
                Call::Patch { path: vpc_path(at, vpc), body }
            }
            VpcCmd::Delete { vpc, at } => Call::Delete(vpc_path(at, vpc)),
        })
    }
}

impl Row for Vpc {
    const HEADER: &'static [&'static str] =
        &["NAME", "ID", "FABRIC ID", "NAT GATEWAY", "NAT IP", "GENERATION", "CREATED"];
    fn cells(&self) -> Vec<String> {
        vec![
            self.name.clone(),
            self.id.clone(),
            self.fabric_id.clone(),
            if self.nat_gateway { "on" } else { "off" }.to_string(),
            or_dash(self.nat_public_ip.as_deref()),
            self.generation.to_string(),
            short_time(&self.created_at),
        ]
    }
}

pub fn vpc(a: VpcArgs) -> Result<(), CliError> {
    let c = a.g.client()?;
    let current =
        |at: &InProject, vpc: &str| Ok(parse::<Vpc>(&c.get(&vpc_path(at, vpc), &[])?)?.generation);
    let v = a.cmd.call(current)?.send(&c)?;
    let shown = match &a.cmd {
        VpcCmd::List { .. } => Shown::List,
        VpcCmd::Delete { vpc, .. } => Shown::Done(format!("vpc {vpc} deleted")),
        VpcCmd::Get { .. } | VpcCmd::Create { .. } | VpcCmd::Update { .. } => Shown::One,
    };
    show::<Vpc>(a.g.output, &v, shown)
}

#[cfg(test)]
mod tests {
    use super::super::parsed_cmd;
    use super::*;
    use crate::commands::{cli_parses as parses, Cmd};
    use serde_json::json;

    /// The call, the VPC's current generation being `current` (`None`:
    /// the command must not ask).
    fn call(args: &[&str], current: Option<i64>) -> Call {
        let at = ["--tenant", "acme", "--project", "p"];
        let Cmd::Vpc(a) = parsed_cmd("vpc", args, &at) else { panic!("not vpc") };
        a.cmd
            .call(|at, vpc| {
                assert_eq!(vpc_path(at, vpc), format!("{BASE}/main"));
                current.ok_or_else(|| CliError::Other("asked for the generation".into()))
            })
            .unwrap()
    }

    const BASE: &str = "/v1/tenants/acme/projects/p/vpcs";

    #[test]
    fn requests() {
        assert_eq!(call(&["list"], None), Call::Get(BASE.into()));
        assert_eq!(call(&["get", "main"], None), Call::Get(format!("{BASE}/main")));
        assert_eq!(
            call(&["create", "main", "--nat-gateway", "--fabric", "dc1"], None),
            Call::Post {
                path: BASE.into(),
                body: json!({"name": "main", "fabric": "dc1", "nat_gateway": true,
                             "description": ""}),
                idempotency_key: None,
            }
        );
        let Call::Post { body, idempotency_key, .. } =
            call(&["create", "main", "--idempotency-key", "k1"], None)
        else {
            panic!("not a post")
        };
        assert_eq!(
            body,
            json!({"name": "main", "fabric": null, "nat_gateway": false,
                                "description": ""})
        );
        assert_eq!(idempotency_key.as_deref(), Some("k1"));
        // The generation read first, unless given.
        assert_eq!(
            call(&["update", "main", "--nat-gateway", "false"], Some(4)),
            Call::Patch {
                path: format!("{BASE}/main"),
                body: json!({"generation": 4, "nat_gateway": false, "description": null}),
            }
        );
        assert_eq!(
            call(&["update", "main", "--nat-gateway", "true", "--generation", "2"], None),
            Call::Patch {
                path: format!("{BASE}/main"),
                body: json!({"generation": 2, "nat_gateway": true, "description": null}),
            }
        );
        assert_eq!(call(&["delete", "main"], None), Call::Delete(format!("{BASE}/main")));
    }

    #[test]
    fn arguments() {
        let at = ["--tenant", "t", "--project", "p"];
        let with = |args: &[&'static str]| [args, &at[..]].concat();
        assert!(parses(&with(&["vpc", "create", "main"])));
        assert!(!parses(&with(&["vpc", "create", "Bad_Name"])));
        assert!(!parses(&["vpc", "list", "--tenant", "t"]));
        // An update changes something; --nat-gateway takes a value.
        assert!(!parses(&with(&["vpc", "update", "main"])));
        assert!(!parses(&with(&["vpc", "update", "main", "--nat-gateway"])));
        assert!(!parses(&with(&["vpc", "update", "main", "--nat-gateway", "maybe"])));
        assert!(parses(&with(&["vpc", "update", "main", "--description", "x"])));
    }
}
