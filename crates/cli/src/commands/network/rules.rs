//! `neocloud security-rule ...`: what may pass between a VPC's networks.
//! Once a network is the destination of any rule, only what its rules
//! allow comes in from the VPC's other networks.

use super::{parse_ports, ports_text, wire, Call, InVpc, ProtocolArg};
use crate::client::Client;
use crate::commands::{parse_key, print_done, to_value, Global};
use crate::output::{emit, emit_json, parse, short_time, CliError, Format, Table};
use neocloud_types::{List, Network, Ports, SecurityRule, SecurityRuleCreate};
use std::collections::HashMap;

#[derive(clap::Args)]
pub struct SecurityRuleArgs {
    #[command(flatten)]
    g: Global,
    #[command(subcommand)]
    cmd: SecurityRuleCmd,
}

#[derive(clap::Subcommand)]
enum SecurityRuleCmd {
    /// List the VPC's security rules.
    List {
        #[command(flatten)]
        vpc: InVpc,
    },
    /// Allow traffic from one network of the VPC into another.
    Create {
        /// Source network name or id.
        #[arg(long, value_parser = parse_key, value_name = "NETWORK")]
        from: String,
        /// Destination network name or id.
        #[arg(long, value_parser = parse_key, value_name = "NETWORK")]
        to: String,
        #[arg(long, value_enum)]
        protocol: ProtocolArg,
        /// TCP and UDP: PORT or FIRST-LAST (default: every port).
        #[arg(long, value_parser = parse_ports, value_name = "PORTS")]
        ports: Option<Ports>,
        #[command(flatten)]
        vpc: InVpc,
        /// Retrying with the same key returns the first result instead of a second rule.
        #[arg(long, value_name = "KEY")]
        idempotency_key: Option<String>,
    },
    /// Delete a security rule.
    Delete {
        /// Rule id.
        #[arg(value_parser = parse_key)]
        rule: String,
        #[command(flatten)]
        vpc: InVpc,
    },
}

impl SecurityRuleCmd {
    fn call(&self) -> Result<Call, CliError> {
        Ok(match self {
            SecurityRuleCmd::List { vpc } => Call::Get(vpc.path("rules")),
            SecurityRuleCmd::Create { from, to, protocol, ports, vpc, idempotency_key } => {
                let body = to_value(&SecurityRuleCreate {
                    from: from.clone(),
                    to: to.clone(),
                    protocol: (*protocol).into(),
                    ports: *ports,
                })?;
                Call::post(vpc.path("rules"), body, idempotency_key.as_deref())
            }
            SecurityRuleCmd::Delete { rule, vpc } => Call::Delete(vpc.item("rules", rule)),
        })
    }
}

const HEADER: &[&str] = &["ID", "FROM", "TO", "PROTOCOL", "PORTS", "CREATED"];

/// The rules as a table, networks by name where `names` knows them.
fn rules_table(rules: &[SecurityRule], names: &HashMap<String, String>) -> String {
    let name = |id: &String| names.get(id).unwrap_or(id).clone();
    let mut t = Table::new(HEADER);
    for r in rules {
        t.row(vec![
            r.id.clone(),
            name(&r.from_network_id),
            name(&r.to_network_id),
            wire(&r.protocol),
            ports_text(r.ports.as_ref()),
            short_time(&r.created_at),
        ]);
    }
    t.render()
}

/// The VPC's network names by id (none when they cannot be read: the
/// table then shows ids).
fn network_names(c: &Client, vpc: &InVpc) -> HashMap<String, String> {
    c.get(&vpc.path("networks"), &[])
        .and_then(|v| parse::<List<Network>>(&v))
        .map(|l| l.items.into_iter().map(|n| (n.id, n.name)).collect())
        .unwrap_or_default()
}

pub fn security_rule(a: SecurityRuleArgs) -> Result<(), CliError> {
    let c = a.g.client()?;
    let f = a.g.output;
    let v = a.cmd.call()?.send(&c)?;
    let vpc = match &a.cmd {
        SecurityRuleCmd::Delete { rule, .. } => {
            print_done(f, &format!("security rule {rule} deleted"));
            return Ok(());
        }
        SecurityRuleCmd::List { vpc } | SecurityRuleCmd::Create { vpc, .. } => vpc,
    };
    if f == Format::Json {
        emit_json(&v);
        return Ok(());
    }
    let rules = match &a.cmd {
        SecurityRuleCmd::List { .. } => parse::<List<SecurityRule>>(&v)?.items,
        _ => vec![parse::<SecurityRule>(&v)?],
    };
    let names = if rules.is_empty() { HashMap::new() } else { network_names(&c, vpc) };
    emit(&rules_table(&rules, &names));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::{parsed_cmd, IN_VPC};
    use super::*;
    use crate::commands::{cli_parses as parses, Cmd};
    use serde_json::json;

    const RULES: &str = "/v1/tenants/acme/projects/p/vpcs/main/rules";

    fn call(args: &[&str]) -> Call {
        let Cmd::SecurityRule(a) = parsed_cmd("security-rule", args, &IN_VPC) else {
            panic!("not security-rule")
        };
        a.cmd.call().unwrap()
    }

    #[test]
    fn requests() {
        assert_eq!(call(&["list"]), Call::Get(RULES.into()));
        assert_eq!(call(&["delete", "r-1"]), Call::Delete(format!("{RULES}/r-1")));
        let create =
            |more: &[&str]| call(&[&["create", "--from", "web", "--to", "db"][..], more].concat());
        assert_eq!(
            create(&["--protocol", "tcp", "--ports", "5432"]),
            Call::Post {
                path: RULES.into(),
                body: json!({"from": "web", "to": "db", "protocol": "tcp",
                             "ports": {"first": 5432, "last": 5432}}),
                idempotency_key: None,
            }
        );
        assert_eq!(
            create(&["--protocol", "icmp"]),
            Call::Post {
                path: RULES.into(),
                body: json!({"from": "web", "to": "db", "protocol": "icmp", "ports": null}),
                idempotency_key: None,
            }
        );
    }

    #[test]
    fn arguments() {
        let create = |more: &[&'static str]| {
            [&["security-rule", "create", "--from", "a", "--to", "b"][..], more, &IN_VPC].concat()
        };
        assert!(parses(&create(&["--protocol", "udp", "--ports", "5000-5100"])));
        assert!(!parses(&create(&[])));
        assert!(!parses(&create(&["--protocol", "sctp"])));
        assert!(!parses(&create(&["--protocol", "tcp", "--ports", "22-21"])));
    }

    #[test]
    fn table_names_networks() {
        let rule: SecurityRule = serde_json::from_value(json!({
            "id": "r-1", "vpc_id": "v", "from_network_id": "n-web", "to_network_id": "n-db",
            "protocol": "tcp", "ports": {"first": 5432, "last": 5432}, "generation": 1,
            "created_at": "2026-01-02T03:04:05.000001Z", "updated_at": "2026-01-02T03:04:05.000001Z"
        }))
        .unwrap();
        let names = HashMap::from([("n-web".to_string(), "web".to_string())]);
        let out = rules_table(&[rule], &names);
        assert_eq!(
            out,
            "ID   FROM  TO    PROTOCOL  PORTS  CREATED\n\
             r-1  web   n-db  tcp       5432   2026-01-02T03:04:05Z\n"
        );
    }
}
