//! `neocloud floating-ip ...`: public addresses mapped one-to-one to an
//! attachment's address, admitting only the protocols and ports allowed.

use super::{allow_text, parse_allow, show, Call, InVpc, Shown};
use crate::commands::{parse_key, to_value, Global};
use crate::output::{short_time, CliError, Row};
use neocloud_types::{Allow, FloatingIp, FloatingIpCreate};

#[derive(clap::Args)]
pub struct FloatingIpArgs {
    #[command(flatten)]
    g: Global,
    #[command(subcommand)]
    cmd: FloatingIpCmd,
}

#[derive(clap::Subcommand)]
enum FloatingIpCmd {
    /// List the VPC's floating IPs.
    List {
        #[command(flatten)]
        vpc: InVpc,
    },
    /// Show one floating IP.
    Get {
        /// Floating IP id.
        #[arg(value_parser = parse_key)]
        floating_ip: String,
        #[command(flatten)]
        vpc: InVpc,
    },
    /// Map a free public address to an attachment.
    Create {
        /// The attachment (id) the address maps to.
        #[arg(long, value_parser = parse_key, value_name = "ID")]
        attachment: String,
        /// What may come in: PROTOCOL[:PORTS], e.g. tcp:22, udp:5000-5100,
        /// icmp (repeat for several; nothing comes in without one).
        #[arg(long = "allow", value_parser = parse_allow, value_name = "PROTOCOL[:PORTS]")]
        allow: Vec<Allow>,
        #[command(flatten)]
        vpc: InVpc,
        /// Retrying with the same key returns the first result instead of a second address.
        #[arg(long, value_name = "KEY")]
        idempotency_key: Option<String>,
    },
    /// Release a floating IP.
    Delete {
        /// Floating IP id.
        #[arg(value_parser = parse_key)]
        floating_ip: String,
        #[command(flatten)]
        vpc: InVpc,
    },
}

impl FloatingIpCmd {
    fn call(&self) -> Result<Call, CliError> {
        Ok(match self {
            FloatingIpCmd::List { vpc } => Call::Get(vpc.path("floating-ips")),
            FloatingIpCmd::Get { floating_ip, vpc } => {
                Call::Get(vpc.item("floating-ips", floating_ip))
            }
            FloatingIpCmd::Create { attachment, allow, vpc, idempotency_key } => {
                let body = to_value(&FloatingIpCreate {
                    attachment: attachment.clone(),
                    allow: allow.clone(),
                })?;
                Call::post(vpc.path("floating-ips"), body, idempotency_key.as_deref())
            }
            FloatingIpCmd::Delete { floating_ip, vpc } => {
                Call::Delete(vpc.item("floating-ips", floating_ip))
            }
        })
    }
}

impl Row for FloatingIp {
    const HEADER: &'static [&'static str] =
        &["ID", "PUBLIC IP", "ATTACHMENT ID", "ALLOW", "GENERATION", "CREATED"];
    fn cells(&self) -> Vec<String> {
        vec![
            self.id.clone(),
            self.public_ip.clone(),
            self.attachment_id.clone(),
            allow_text(&self.allow),
            self.generation.to_string(),
            short_time(&self.created_at),
        ]
    }
}

pub fn floating_ip(a: FloatingIpArgs) -> Result<(), CliError> {
    let c = a.g.client()?;
    let v = a.cmd.call()?.send(&c)?;
    let shown = match &a.cmd {
        FloatingIpCmd::List { .. } => Shown::List,
        FloatingIpCmd::Delete { floating_ip, .. } => {
            Shown::Done(format!("floating ip {floating_ip} released"))
        }
        FloatingIpCmd::Get { .. } | FloatingIpCmd::Create { .. } => Shown::One,
    };
    show::<FloatingIp>(a.g.output, &v, shown)
}

#[cfg(test)]
mod tests {
    use super::super::{parsed_cmd, IN_VPC};
    use super::*;
    use crate::commands::{cli_parses as parses, Cmd};
    use serde_json::json;

    const FIPS: &str = "/v1/tenants/acme/projects/p/vpcs/main/floating-ips";

    fn call(args: &[&str]) -> Call {
        let Cmd::FloatingIp(a) = parsed_cmd("floating-ip", args, &IN_VPC) else {
            panic!("not floating-ip")
        };
        a.cmd.call().unwrap()
    }

    #[test]
    fn requests() {
        assert_eq!(call(&["list"]), Call::Get(FIPS.into()));
        assert_eq!(call(&["get", "f-1"]), Call::Get(format!("{FIPS}/f-1")));
        assert_eq!(call(&["delete", "f-1"]), Call::Delete(format!("{FIPS}/f-1")));
        assert_eq!(
            call(&["create", "--attachment", "a-1", "--allow", "tcp:22", "--allow", "icmp"]),
            Call::Post {
                path: FIPS.into(),
                body: json!({"attachment": "a-1", "allow": [
                    {"protocol": "tcp", "ports": {"first": 22, "last": 22}},
                    {"protocol": "icmp", "ports": null},
                ]}),
                idempotency_key: None,
            }
        );
        assert_eq!(
            call(&["create", "--attachment", "a-1"]),
            Call::Post {
                path: FIPS.into(),
                body: json!({"attachment": "a-1", "allow": []}),
                idempotency_key: None,
            }
        );
    }

    #[test]
    fn arguments() {
        let create =
            |more: &[&'static str]| [&["floating-ip", "create"][..], more, &IN_VPC].concat();
        assert!(!parses(&create(&[])));
        assert!(!parses(&create(&["--attachment", "a", "--allow", "ssh"])));
        assert!(!parses(&create(&["--attachment", "a", "--allow", "icmp:8"])));
        assert!(!parses(&["floating-ip", "list", "--tenant", "t", "--project", "p"]));
    }
}
