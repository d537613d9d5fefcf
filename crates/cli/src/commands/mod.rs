//! Client subcommands: each is one or a few API calls, printed as a table
//! or as the API's JSON (`-o json`).

mod audit;
mod baremetal;
mod hardware;
mod identity;
mod inventory;
pub(crate) use inventory::BootMethodArg;
mod network;
mod quota;
mod tenancy;
mod wait;

use crate::client::{self, Client};
use crate::output::{self, CliError, Format};
use neocloud_authz::Role;
use neocloud_common::Name;
use std::process::ExitCode;

const GLOBAL: &str = "Connection and output";

/// Flags every client command takes, anywhere on the command line
/// (`neocloud -o json tenant list`, `neocloud tenant list -o json`).
#[derive(clap::Args, Debug, Clone)]
pub struct Global {
    /// API URL, e.g. http://127.0.0.1:8080 (default: the saved login).
    #[arg(long, global = true, env = "NEOCLOUD_URL", value_name = "URL", help_heading = GLOBAL)]
    pub url: Option<String>,
    /// API token (default: the saved login).
    #[arg(
        long,
        global = true,
        env = "NEOCLOUD_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN",
        help_heading = GLOBAL
    )]
    pub token: Option<String>,
    /// Output format.
    #[arg(
        short = 'o',
        long,
        global = true,
        value_enum,
        default_value_t = Format::Table,
        help_heading = GLOBAL
    )]
    pub output: Format,
}

impl Global {
    /// A client from the flags and environment, else the saved login.
    pub fn client(&self) -> Result<Client, CliError> {
        let saved = match (&self.url, &self.token) {
            (Some(_), Some(_)) => None,
            _ => client::load_config(&client::config_path()?)?,
        };
        let not_logged_in = || {
            CliError::NotLoggedIn(
                "not logged in: run `neocloud login --url URL --token TOKEN`, or pass --url and --token"
                    .into(),
            )
        };
        let url = match (&self.url, &saved) {
            (Some(u), _) => u.clone(),
            (None, Some(c)) => c.url.clone(),
            (None, None) => return Err(not_logged_in()),
        };
        let token = match (&self.token, &saved) {
            (Some(t), _) => t.clone(),
            (None, Some(c)) => c.token.clone(),
            (None, None) => return Err(not_logged_in()),
        };
        Client::new(&url, &token)
    }
}

/// The client subcommands, flattened into the top-level command.
///
/// A wrapper around the derived [`Cmd`] that also puts the connection and
/// output flags on the top-level command (hidden there, global), so that
/// `neocloud -o json tenant list` works as well as `neocloud tenant list -o
/// json`: clap hands a global flag's value down to the subcommand's own
/// definition of it.
pub struct ClientCommand(Cmd);

impl clap::FromArgMatches for ClientCommand {
    fn from_arg_matches(m: &clap::ArgMatches) -> Result<Self, clap::Error> {
        Cmd::from_arg_matches(m).map(ClientCommand)
    }

    fn update_from_arg_matches(&mut self, m: &clap::ArgMatches) -> Result<(), clap::Error> {
        self.0.update_from_arg_matches(m)
    }
}

impl clap::Subcommand for ClientCommand {
    fn augment_subcommands(cmd: clap::Command) -> clap::Command {
        with_top_level_globals(Cmd::augment_subcommands(cmd))
    }

    fn augment_subcommands_for_update(cmd: clap::Command) -> clap::Command {
        with_top_level_globals(Cmd::augment_subcommands_for_update(cmd))
    }

    fn has_subcommand(name: &str) -> bool {
        Cmd::has_subcommand(name)
    }
}

/// Adds [`Global`]'s flags, exactly as defined there (same ids and value
/// types), to the top-level command, hidden: each client command shows its
/// own copy in its help.
fn with_top_level_globals(mut cmd: clap::Command) -> clap::Command {
    use clap::Args;
    let g = Global::augment_args(clap::Command::new("global"));
    for a in g.get_arguments() {
        if cmd.get_arguments().all(|b| b.get_id() != a.get_id()) {
            cmd = cmd.arg(a.clone().hide(true));
        }
    }
    cmd
}

#[derive(clap::Subcommand)]
enum Cmd {
    /// Check a token against the API and save it, with the URL, for later commands.
    Login(identity::LoginArgs),
    /// Show who the token acts as, and its role grants.
    Me(identity::MeArgs),
    /// Tenants: list, get, create, update, delete.
    Tenant(tenancy::TenantArgs),
    /// A tenant's projects.
    Project(tenancy::ProjectArgs),
    /// Users: a tenant's (--tenant) or the provider's.
    User(identity::UserArgs),
    /// A tenant's role grants to its users.
    Membership(identity::MembershipArgs),
    /// API tokens: a tenant's (--tenant) or the caller's own.
    Token(identity::TokenArgs),
    /// Quota limits and usage of the provider, a tenant or a project.
    Quota(quota::QuotaArgs),
    /// Quota claims: resources reserved, committed and released in a project.
    Claim(quota::ClaimArgs),
    /// The audit trail: list, export as JSON lines, verify the hash chains.
    Audit(audit::AuditArgs),
    /// GPU nodes: the provider's placement inventory.
    Node(inventory::NodeArgs),
    /// Instance types: bare metal, VM (n GPUs) and MIG slices.
    InstanceType(inventory::InstanceTypeArgs),
    /// Free and used capacity per GPU model, SU or rack, with fragmentation.
    Capacity(inventory::CapacityArgs),
    /// Allocations: placed capacity held by a project.
    Allocation(inventory::AllocationArgs),
    /// The image catalog: tenant OS images and the sanitizer.
    Image(baremetal::ImageArgs),
    /// The firmware versions each system model must run (provider).
    FirmwareBaseline(baremetal::FirmwareBaselineArgs),
    /// The networks nodes' static provisioning addresses are drawn from (provider).
    ProvisioningNetwork(baremetal::ProvisioningNetworkArgs),
    /// Bare-metal instances: whole nodes provisioned with an image.
    Instance(baremetal::InstanceArgs),
    /// Fabrics: the provider's switches and cabling, applied as one
    /// document, and the per-switch plan.
    Fabric(network::FabricArgs),
    /// VPCs: a project's routing domains.
    Vpc(network::VpcArgs),
    /// A VPC's networks: subnets with an anycast gateway.
    Network(network::NetworkArgs),
    /// Instance NICs attached to a network.
    Attachment(network::AttachmentArgs),
    /// What may pass between a VPC's networks.
    SecurityRule(network::SecurityRuleArgs),
    /// Public addresses mapped to attachments.
    FloatingIp(network::FloatingIpArgs),
}

pub fn run(c: ClientCommand) -> ExitCode {
    let res = match c.0 {
        Cmd::Login(a) => identity::login(a),
        Cmd::Me(a) => identity::me(a),
        Cmd::Tenant(a) => tenancy::tenant(a),
        Cmd::Project(a) => tenancy::project(a),
        Cmd::User(a) => identity::user(a),
        Cmd::Membership(a) => identity::membership(a),
        Cmd::Token(a) => identity::token(a),
        Cmd::Quota(a) => quota::quota(a),
        Cmd::Claim(a) => quota::claim(a),
        Cmd::Audit(a) => return audit::run(a),
        Cmd::Node(a) => inventory::node(a),
        Cmd::InstanceType(a) => inventory::instance_type(a),
        Cmd::Capacity(a) => inventory::capacity(a),
        Cmd::Allocation(a) => inventory::allocation(a),
        Cmd::Image(a) => baremetal::image(a),
        Cmd::FirmwareBaseline(a) => baremetal::firmware_baseline(a),
        Cmd::ProvisioningNetwork(a) => baremetal::provisioning_network(a),
        Cmd::Instance(a) => baremetal::instance(a),
        Cmd::Fabric(a) => network::fabric(a),
        Cmd::Vpc(a) => network::vpc(a),
        Cmd::Network(a) => network::network(a),
        Cmd::Attachment(a) => network::attachment(a),
        Cmd::SecurityRule(a) => network::security_rule(a),
        Cmd::FloatingIp(a) => network::floating_ip(a),
    };
    match res {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => output::fail(&e),
    }
}

/// `/v1/tenants/{tenant}`.
fn tenant_path(tenant: &str) -> String {
    format!("/v1/tenants/{}", client::seg(tenant))
}

/// `/v1/tenants/{tenant}/projects/{project}`.
fn project_path(tenant: &str, project: &str) -> String {
    format!("{}/projects/{}", tenant_path(tenant), client::seg(project))
}

/// After a call that answers nothing (a DELETE): a line saying what was
/// done (nothing with `-o json`).
fn print_done(format: Format, message: &str) {
    if format == Format::Table {
        output::emit(&format!("{message}\n"));
    }
}

/// A request body as JSON.
fn to_value<T: serde::Serialize>(v: &T) -> Result<serde_json::Value, CliError> {
    serde_json::to_value(v).map_err(|e| CliError::Other(format!("cannot encode the request: {e}")))
}

// Argument parsers (a bad value is a usage error, exit 2).

/// A new object's name.
fn parse_name(s: &str) -> Result<Name, String> {
    Name::parse(s)
}

/// An existing object's name or id, as a path segment.
fn parse_key(s: &str) -> Result<String, String> {
    match s {
        "" => Err("must not be empty".into()),
        "." | ".." => Err("must be a name or an id".into()),
        _ => Ok(s.to_string()),
    }
}

fn parse_role(s: &str) -> Result<Role, String> {
    Role::parse(s).ok_or_else(|| {
        let all: Vec<&str> = Role::ALL.iter().map(|r| r.as_str()).collect();
        format!("expected one of {}", all.join(", "))
    })
}

/// A duration such as `30d`, `12h` or `90days`, in seconds.
fn parse_duration_secs(s: &str) -> Result<u64, String> {
    match humantime::parse_duration(s) {
        Ok(d) if d.as_secs() > 0 => Ok(d.as_secs()),
        Ok(_) => Err("must be at least one second".into()),
        Err(e) => Err(format!("{e} (examples: 30d, 12h, 90m)")),
    }
}

/// Whether the whole `neocloud` command line accepts `args` (tests of the
/// per-resource command files).
#[cfg(test)]
pub(crate) fn cli_parses(args: &[&str]) -> bool {
    let mut all = vec!["neocloud"];
    all.extend_from_slice(args);
    <crate::Cli as clap::CommandFactory>::command().try_get_matches_from(all).is_ok()
}

/// The client command the whole `neocloud` command line `args` parses to
/// (tests of what the per-resource command files send).
#[cfg(test)]
fn cli_parse(args: &[&str]) -> Result<Cmd, String> {
    use clap::FromArgMatches;
    let mut all = vec!["neocloud"];
    all.extend_from_slice(args);
    let m = <crate::Cli as clap::CommandFactory>::command()
        .try_get_matches_from(all)
        .map_err(|e| e.to_string())?;
    ClientCommand::from_arg_matches(&m).map(|c| c.0).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct T {
        #[command(subcommand)]
        c: ClientCommand,
    }

    #[test]
    fn command_tree_is_consistent() {
        <crate::Cli as clap::CommandFactory>::command().debug_assert();
    }

    #[test]
    fn top_level_flags_reach_the_client_commands() {
        use clap::FromArgMatches;
        let m = <crate::Cli as clap::CommandFactory>::command()
            .try_get_matches_from(["neocloud", "-o", "json", "--url", "http://x", "tenant", "list"])
            .unwrap();
        let (_, sub) = m.subcommand().unwrap();
        let c = ClientCommand::from_arg_matches(&m).unwrap();
        let Cmd::Tenant(a) = c.0 else { panic!("not tenant") };
        assert_eq!(a.global().output, Format::Json);
        assert_eq!(a.global().url.as_deref(), Some("http://x"));
        assert!(sub.get_one::<Format>("output").is_some());
    }

    #[test]
    fn parses() {
        assert!(T::try_parse_from(["x", "tenant", "list", "-o", "json"]).is_ok());
        assert!(T::try_parse_from(["x", "tenant", "-o", "json", "get", "acme"]).is_ok());
        assert!(T::try_parse_from(["x", "tenant", "create", "Bad_Name"]).is_err());
        assert!(T::try_parse_from(["x", "project", "list"]).is_err());
        assert!(T::try_parse_from(["x", "quota", "get", "--project", "p"]).is_err());
        assert!(T::try_parse_from(["x", "quota", "set", "nodes=3", "--generation", "1"]).is_ok());
        assert!(T::try_parse_from(["x", "quota", "set", "nodes", "--generation", "1"]).is_err());
        assert!(T::try_parse_from([
            "x",
            "membership",
            "create",
            "--tenant",
            "t",
            "--user",
            "u",
            "--role",
            "boss"
        ])
        .is_err());
        assert!(T::try_parse_from(["x", "token", "create", "ci", "--expires-in", "30d"]).is_ok());
        assert!(T::try_parse_from(["x", "token", "create", "ci", "--expires-in", "soon"]).is_err());
        assert!(T::try_parse_from(["x", "audit", "verify", "--db", "sqlite://x"]).is_ok());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration_secs("30d"), Ok(30 * 86400));
        assert!(parse_duration_secs("0s").is_err());
    }
}
