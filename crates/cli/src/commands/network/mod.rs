//! Tenant networking: the provider's fabrics (`neocloud fabric ...`) and a
//! project's VPCs, networks, attachments, security rules and floating IPs.
//!
//! Each command's API call is built from its arguments as a [`Call`] and
//! then sent, so the tests check paths and bodies without a server.

mod attachments;
mod fabrics;
mod floating_ips;
mod networks;
mod rules;
mod vpcs;

pub use attachments::{attachment, AttachmentArgs};
pub use fabrics::{fabric, FabricArgs};
pub use floating_ips::{floating_ip, FloatingIpArgs};
pub use networks::{network, NetworkArgs};
pub use rules::{security_rule, SecurityRuleArgs};
pub use vpcs::{vpc, VpcArgs};

use crate::client::{self, Client};
use crate::commands::inventory::InProject;
use crate::commands::{parse_key, print_done};
use crate::output::{print_list, print_one, CliError, Format, Row};
use neocloud_types::{Allow, IpProtocol, Ports};
use serde_json::Value;

/// One API call.
#[derive(Debug, Clone, PartialEq)]
enum Call {
    Get(String),
    Post { path: String, body: Value, idempotency_key: Option<String> },
    Patch { path: String, body: Value },
    Put { path: String, body: Value },
    Delete(String),
}

impl Call {
    fn post(path: String, body: Value, idempotency_key: Option<&str>) -> Call {
        Call::Post { path, body, idempotency_key: idempotency_key.map(str::to_string) }
    }

    /// The answer's JSON (`null` for an empty one).
    fn send(&self, c: &Client) -> Result<Value, CliError> {
        match self {
            Call::Get(path) => c.get(path, &[]),
            Call::Post { path, body, idempotency_key } => {
                c.post(path, Some(body), idempotency_key.as_deref())
            }
            Call::Patch { path, body } => c.patch(path, body),
            Call::Put { path, body } => c.put(path, body),
            Call::Delete(path) => Ok(c.delete(path)?.unwrap_or(Value::Null)),
        }
    }
}

/// How a command prints its call's answer.
#[derive(Debug)]
enum Shown {
    /// A list of rows.
    List,
    /// One row.
    One,
    /// Nothing came back (a DELETE): this line says what was done.
    Done(String),
}

/// Prints a call's answer `v`, of `T`s, as `shown`.
fn show<T: Row>(format: Format, v: &Value, shown: Shown) -> Result<(), CliError> {
    match shown {
        Shown::List => print_list::<T>(format, v),
        Shown::One => print_one::<T>(format, v),
        Shown::Done(message) => {
            print_done(format, &message);
            Ok(())
        }
    }
}

/// `/v1/tenants/{tenant}/projects/{project}/vpcs`.
fn vpcs_path(at: &InProject) -> String {
    format!("{}/vpcs", at.path())
}

/// `.../vpcs/{vpc}`.
fn vpc_path(at: &InProject, vpc: &str) -> String {
    format!("{}/{}", vpcs_path(at), client::seg(vpc))
}

/// The VPC (and its project) a command works in.
#[derive(clap::Args, Debug)]
struct InVpc {
    /// VPC name or id.
    #[arg(long, value_parser = parse_key)]
    vpc: String,
    #[command(flatten)]
    at: InProject,
}

impl InVpc {
    /// `.../vpcs/{vpc}/{what}`: `networks`, `rules`, `floating-ips`.
    fn path(&self, what: &str) -> String {
        format!("{}/{what}", vpc_path(&self.at, &self.vpc))
    }

    /// `.../vpcs/{vpc}/{what}/{key}`.
    fn item(&self, what: &str, key: &str) -> String {
        format!("{}/{}", self.path(what), client::seg(key))
    }
}

/// The network (and its VPC and project) a command works in.
#[derive(clap::Args, Debug)]
struct InNetwork {
    /// Network name or id.
    #[arg(long, value_parser = parse_key)]
    network: String,
    #[command(flatten)]
    vpc: InVpc,
}

impl InNetwork {
    /// `.../vpcs/{vpc}/networks/{network}/attachments`.
    fn attachments(&self) -> String {
        format!("{}/attachments", self.vpc.item("networks", &self.network))
    }

    /// `.../attachments/{attachment}`.
    fn attachment(&self, id: &str) -> String {
        format!("{}/{}", self.attachments(), client::seg(id))
    }
}

/// An API enum as the API spells it (`in_sync`, `cumulus-nvue`, `tcp`).
fn wire<T: serde::Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(Value::String(s)) => s,
        Ok(other) => other.to_string(),
        Err(_) => "?".to_string(),
    }
}

/// `--protocol`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum ProtocolArg {
    Tcp,
    Udp,
    Icmp,
    /// Every protocol.
    Any,
}

impl From<ProtocolArg> for IpProtocol {
    fn from(p: ProtocolArg) -> IpProtocol {
        match p {
            ProtocolArg::Tcp => IpProtocol::Tcp,
            ProtocolArg::Udp => IpProtocol::Udp,
            ProtocolArg::Icmp => IpProtocol::Icmp,
            ProtocolArg::Any => IpProtocol::Any,
        }
    }
}

/// `PORT` or `FIRST-LAST`, e.g. `22` or `8000-8100`.
fn parse_ports(s: &str) -> Result<Ports, String> {
    let port = |p: &str| match p.trim().parse::<u16>() {
        Ok(0) | Err(_) => Err(format!("{p:?} is not a port (1 to 65535)")),
        Ok(n) => Ok(n),
    };
    let (first, last) = match s.split_once('-') {
        Some((a, b)) => (port(a)?, port(b)?),
        None => (port(s)?, port(s)?),
    };
    if first > last {
        return Err(format!("{first}-{last}: the first port is after the last"));
    }
    Ok(Ports { first, last })
}

/// `PROTOCOL[:PORTS]`, e.g. `tcp:22`, `udp:5000-5100`, `icmp`.
fn parse_allow(s: &str) -> Result<Allow, String> {
    let (proto, ports) = match s.split_once(':') {
        Some((p, ports)) => (p, Some(ports)),
        None => (s, None),
    };
    let protocol = match proto.to_ascii_lowercase().as_str() {
        "tcp" => IpProtocol::Tcp,
        "udp" => IpProtocol::Udp,
        "icmp" => IpProtocol::Icmp,
        "any" => IpProtocol::Any,
        _ => {
            return Err(format!(
                "unknown protocol {proto:?}: expected tcp, udp, icmp or any (e.g. tcp:22)"
            ))
        }
    };
    let ports = ports.map(parse_ports).transpose()?;
    if ports.is_some() && !matches!(protocol, IpProtocol::Tcp | IpProtocol::Udp) {
        return Err("only tcp and udp have ports".into());
    }
    Ok(Allow { protocol, ports })
}

/// `22`, `8000-8100`, `-` for every port.
fn ports_text(p: Option<&Ports>) -> String {
    match p {
        None => "-".to_string(),
        Some(p) if p.first == p.last => p.first.to_string(),
        Some(p) => format!("{}-{}", p.first, p.last),
    }
}

/// `tcp:22,icmp`; `-` for nothing.
fn allow_text(allow: &[Allow]) -> String {
    if allow.is_empty() {
        return "-".to_string();
    }
    let all: Vec<String> = allow
        .iter()
        .map(|a| match &a.ports {
            None => wire(&a.protocol),
            Some(_) => format!("{}:{}", wire(&a.protocol), ports_text(a.ports.as_ref())),
        })
        .collect();
    all.join(",")
}

/// The client command that `command`, then `args`, then `at` parse to
/// (tests of what the command files send).
#[cfg(test)]
fn parsed_cmd(command: &str, args: &[&str], at: &[&str]) -> crate::commands::Cmd {
    crate::commands::cli_parse(&[&[command], args, at].concat()).unwrap()
}

/// The VPC the tests' VPC-scoped commands work in:
/// `/v1/tenants/acme/projects/p/vpcs/main`.
#[cfg(test)]
const IN_VPC: [&str; 6] = ["--vpc", "main", "--tenant", "acme", "--project", "p"];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_and_allows() {
        assert_eq!(parse_ports("22"), Ok(Ports { first: 22, last: 22 }));
        assert_eq!(parse_ports("8000-8100"), Ok(Ports { first: 8000, last: 8100 }));
        assert!(parse_ports("0").is_err());
        assert!(parse_ports("80-22").is_err());
        assert!(parse_ports("70000").is_err());
        assert!(parse_ports("ssh").is_err());
        assert_eq!(
            parse_allow("tcp:22"),
            Ok(Allow { protocol: IpProtocol::Tcp, ports: Some(Ports { first: 22, last: 22 }) })
        );
        assert_eq!(parse_allow("ICMP"), Ok(Allow { protocol: IpProtocol::Icmp, ports: None }));
        assert_eq!(parse_allow("udp"), Ok(Allow { protocol: IpProtocol::Udp, ports: None }));
        assert!(parse_allow("icmp:1").is_err());
        assert!(parse_allow("sctp:22").is_err());
        assert!(parse_allow("tcp:").is_err());
        let allow = [parse_allow("tcp:22").unwrap(), parse_allow("udp:5000-5100").unwrap()];
        assert_eq!(allow_text(&allow), "tcp:22,udp:5000-5100");
        assert_eq!(allow_text(&[parse_allow("any").unwrap()]), "any");
        assert_eq!(allow_text(&[]), "-");
        assert_eq!(wire(&neocloud_types::SwitchOsSpec::CumulusNvue), "cumulus-nvue");
    }
}
