//! `neocloud login`, `me`, `user ...`, `membership ...` and `token ...`.

use super::{
    parse_duration_secs, parse_key, parse_name, parse_role, print_done, tenant_path, to_value,
    Global,
};
use crate::client::{self, Client, Config};
use crate::output::{
    emit, emit_json, or_dash, parse, print_list, print_one, CliError, Format, Row, Table,
};
use neocloud_authz::Role;
use neocloud_common::Name;
use neocloud_types::{
    Me, Membership, MembershipCreate, MembershipUpdate, Token, TokenCreate, TokenCreated, User,
    UserCreate, UserUpdate,
};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct LoginArgs {
    #[command(flatten)]
    g: Global,
    /// Read the token from this file (`-` for stdin) instead of --token.
    #[arg(long, value_name = "PATH")]
    token_file: Option<PathBuf>,
}

pub fn login(a: LoginArgs) -> Result<(), CliError> {
    let path = client::config_path()?;
    let url = match a.g.url {
        Some(u) => u,
        None => match client::load_config(&path).ok().flatten() {
            Some(c) => c.url,
            None => return Err(CliError::Usage("--url is required".into())),
        },
    };
    let token = match (&a.token_file, &a.g.token) {
        (Some(p), _) => read_token_file(p)?,
        (None, Some(t)) => t.clone(),
        (None, None) => return Err(CliError::Usage("--token or --token-file is required".into())),
    };
    let c = Client::new(&url, &token)?;
    let me_json = c.get("/v1/me", &[])?;
    let me: Me = parse(&me_json)?;
    client::save_config(
        &path,
        &Config { url: c.base_url().to_string(), token: token.trim().to_string() },
    )?;
    match a.g.output {
        Format::Json => emit_json(&me_json),
        Format::Table => emit(&format!(
            "logged in to {} as {}; saved to {}\n",
            c.base_url(),
            me.user.name,
            path.display()
        )),
    }
    Ok(())
}

/// The first non-empty line of the file.
fn read_token_file(p: &std::path::Path) -> Result<String, CliError> {
    let text = if p.as_os_str() == "-" {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)
            .map_err(|e| CliError::Other(format!("cannot read the token from stdin: {e}")))?;
        s
    } else {
        std::fs::read_to_string(p)
            .map_err(|e| CliError::Usage(format!("cannot read {}: {e}", p.display())))?
    };
    match text.lines().map(str::trim).find(|l| !l.is_empty()) {
        Some(t) => Ok(t.to_string()),
        None => Err(CliError::Usage(format!("{} holds no token", p.display()))),
    }
}

#[derive(clap::Args)]
pub struct MeArgs {
    #[command(flatten)]
    g: Global,
}

pub fn me(a: MeArgs) -> Result<(), CliError> {
    let v = a.g.client()?.get("/v1/me", &[])?;
    if a.g.output == Format::Json {
        emit_json(&v);
        return Ok(());
    }
    let me: Me = parse(&v)?;
    let mut out = format!(
        "user:    {} ({})\ntenant:  {}\ntoken:   {}\n\n",
        me.user.name,
        me.user.id,
        or_dash(me.user.tenant_id.as_deref()),
        me.token_id
    );
    let mut t = Table::new(&["ROLE", "TENANT ID", "PROJECT ID"]);
    for g in &me.grants {
        t.row(vec![
            g.role.to_string(),
            or_dash(g.tenant_id.as_deref()),
            or_dash(g.project_id.as_deref()),
        ]);
    }
    out.push_str(&t.render());
    emit(&out);
    Ok(())
}

/// `/v1/tenants/{tenant}/<what>` or the provider's (or caller's) `/v1/<what>`.
fn scoped(tenant: &Option<String>, what: &str) -> String {
    match tenant {
        Some(t) => format!("{}/{what}", tenant_path(t)),
        None => format!("/v1/{what}"),
    }
}

fn item(collection: &str, key: &str) -> String {
    format!("{collection}/{}", client::seg(key))
}

#[derive(clap::Args)]
pub struct UserArgs {
    #[command(flatten)]
    g: Global,
    #[command(subcommand)]
    cmd: UserCmd,
}

#[derive(clap::Subcommand)]
enum UserCmd {
    /// List users.
    List {
        /// The tenant's users (default: provider users).
        #[arg(long, value_parser = parse_key)]
        tenant: Option<String>,
    },
    /// Show one user.
    Get {
        /// User name or id.
        #[arg(value_parser = parse_key)]
        user: String,
        /// A user of this tenant (default: a provider user).
        #[arg(long, value_parser = parse_key)]
        tenant: Option<String>,
    },
    /// Create a user.
    Create {
        #[arg(value_parser = parse_name)]
        name: Name,
        /// A user of this tenant (default: a provider user).
        #[arg(long, value_parser = parse_key)]
        tenant: Option<String>,
        #[arg(long)]
        display_name: Option<String>,
        #[arg(long)]
        email: Option<String>,
        /// Provider users: provider-admin or provider-viewer (required).
        /// Tenant users: a tenant-wide role to grant at once.
        #[arg(long, value_parser = parse_role)]
        role: Option<Role>,
        /// Retrying with the same key returns the first result instead of a second user.
        #[arg(long, value_name = "KEY")]
        idempotency_key: Option<String>,
    },
    /// Change a user; --generation is the one you last saw.
    Update {
        /// User name or id.
        #[arg(value_parser = parse_key)]
        user: String,
        #[arg(long, value_parser = parse_key)]
        tenant: Option<String>,
        #[arg(long)]
        generation: i64,
        #[arg(long)]
        display_name: Option<String>,
        #[arg(long)]
        email: Option<String>,
    },
    /// Delete a user.
    Delete {
        /// User name or id.
        #[arg(value_parser = parse_key)]
        user: String,
        #[arg(long, value_parser = parse_key)]
        tenant: Option<String>,
    },
}

pub fn user(a: UserArgs) -> Result<(), CliError> {
    let c = a.g.client()?;
    let f = a.g.output;
    match a.cmd {
        UserCmd::List { tenant } => print_list::<User>(f, &c.get(&scoped(&tenant, "users"), &[])?),
        UserCmd::Get { user, tenant } => {
            print_one::<User>(f, &c.get(&item(&scoped(&tenant, "users"), &user), &[])?)
        }
        UserCmd::Create { name, tenant, display_name, email, role, idempotency_key } => {
            let body = to_value(&UserCreate { name, display_name, email, role })?;
            let v = c.post(&scoped(&tenant, "users"), Some(&body), idempotency_key.as_deref())?;
            print_one::<User>(f, &v)
        }
        UserCmd::Update { user, tenant, generation, display_name, email } => {
            let body = to_value(&UserUpdate { generation, display_name, email })?;
            print_one::<User>(f, &c.patch(&item(&scoped(&tenant, "users"), &user), &body)?)
        }
        UserCmd::Delete { user, tenant } => {
            c.delete(&item(&scoped(&tenant, "users"), &user))?;
            print_done(f, &format!("user {user} deleted"));
            Ok(())
        }
    }
}

#[derive(clap::Args)]
pub struct MembershipArgs {
    #[command(flatten)]
    g: Global,
    #[command(subcommand)]
    cmd: MembershipCmd,
}

#[derive(clap::Subcommand)]
enum MembershipCmd {
    /// List the tenant's memberships.
    List {
        /// Tenant name or id.
        #[arg(long, value_parser = parse_key)]
        tenant: String,
    },
    /// Grant a role to a user of the tenant.
    Create {
        /// Tenant name or id.
        #[arg(long, value_parser = parse_key)]
        tenant: String,
        /// User name or id (a user of this tenant).
        #[arg(long, value_parser = parse_key)]
        user: String,
        /// tenant-admin, tenant-member or tenant-viewer.
        #[arg(long, value_parser = parse_role)]
        role: Role,
        /// Limit the role to this project (name or id).
        #[arg(long, value_parser = parse_key)]
        project: Option<String>,
        /// Retrying with the same key returns the first result instead of a second membership.
        #[arg(long, value_name = "KEY")]
        idempotency_key: Option<String>,
    },
    /// Change a membership's role; --generation is the one you last saw.
    Update {
        /// Membership id.
        #[arg(value_parser = parse_key)]
        id: String,
        /// Tenant name or id.
        #[arg(long, value_parser = parse_key)]
        tenant: String,
        #[arg(long, value_parser = parse_role)]
        role: Role,
        #[arg(long)]
        generation: i64,
    },
    /// Remove a membership.
    Delete {
        /// Membership id.
        #[arg(value_parser = parse_key)]
        id: String,
        /// Tenant name or id.
        #[arg(long, value_parser = parse_key)]
        tenant: String,
    },
}

pub fn membership(a: MembershipArgs) -> Result<(), CliError> {
    let c = a.g.client()?;
    let f = a.g.output;
    let coll = |tenant: &str| format!("{}/memberships", tenant_path(tenant));
    match a.cmd {
        MembershipCmd::List { tenant } => print_list::<Membership>(f, &c.get(&coll(&tenant), &[])?),
        MembershipCmd::Create { tenant, user, role, project, idempotency_key } => {
            let body = to_value(&MembershipCreate { user, role, project })?;
            let v = c.post(&coll(&tenant), Some(&body), idempotency_key.as_deref())?;
            print_one::<Membership>(f, &v)
        }
        MembershipCmd::Update { id, tenant, role, generation } => {
            let body = to_value(&MembershipUpdate { generation, role })?;
            print_one::<Membership>(f, &c.patch(&item(&coll(&tenant), &id), &body)?)
        }
        MembershipCmd::Delete { id, tenant } => {
            c.delete(&item(&coll(&tenant), &id))?;
            print_done(f, &format!("membership {id} deleted"));
            Ok(())
        }
    }
}

#[derive(clap::Args)]
pub struct TokenArgs {
    #[command(flatten)]
    g: Global,
    #[command(subcommand)]
    cmd: TokenCmd,
}

#[derive(clap::Subcommand)]
enum TokenCmd {
    /// List tokens: the tenant's, or your own.
    List {
        /// The tenant's tokens (default: your own).
        #[arg(long, value_parser = parse_key)]
        tenant: Option<String>,
    },
    /// Show one token (never its secret).
    Get {
        /// Token id.
        #[arg(value_parser = parse_key)]
        id: String,
        #[arg(long, value_parser = parse_key)]
        tenant: Option<String>,
    },
    /// Create a token; its secret is printed this once.
    Create {
        #[arg(value_parser = parse_name)]
        name: Name,
        /// A token of this tenant (default: one for yourself).
        #[arg(long, value_parser = parse_key)]
        tenant: Option<String>,
        /// Lifetime, e.g. 30d or 12h (default 90 days, at most 400 days).
        #[arg(long, value_name = "DURATION", value_parser = parse_duration_secs)]
        expires_in: Option<u64>,
        /// Tenant tokens: the user (name or id) the token acts as (default: you).
        #[arg(long, value_parser = parse_key, requires = "tenant")]
        user: Option<String>,
        /// A token for this provider user (name or id), e.g. a provider-viewer.
        #[arg(long, value_parser = parse_key, conflicts_with_all = ["tenant", "user"])]
        provider_user: Option<String>,
        /// Retrying with the same key returns the first result instead of a second token.
        #[arg(long, value_name = "KEY")]
        idempotency_key: Option<String>,
    },
    /// Revoke a token.
    Revoke {
        /// Token id.
        #[arg(value_parser = parse_key)]
        id: String,
        #[arg(long, value_parser = parse_key)]
        tenant: Option<String>,
    },
}

pub fn token(a: TokenArgs) -> Result<(), CliError> {
    let c = a.g.client()?;
    let f = a.g.output;
    match a.cmd {
        TokenCmd::List { tenant } => {
            print_list::<Token>(f, &c.get(&scoped(&tenant, "tokens"), &[])?)
        }
        TokenCmd::Get { id, tenant } => {
            print_one::<Token>(f, &c.get(&item(&scoped(&tenant, "tokens"), &id), &[])?)
        }
        TokenCmd::Create { name, tenant, expires_in, user, provider_user, idempotency_key } => {
            let body = to_value(&TokenCreate { name, expires_in_secs: expires_in, user })?;
            let path = match &provider_user {
                Some(u) => format!("/v1/users/{}/tokens", crate::client::seg(u)),
                None => scoped(&tenant, "tokens"),
            };
            let v = c.post(&path, Some(&body), idempotency_key.as_deref())?;
            if f == Format::Json {
                emit_json(&v);
                return Ok(());
            }
            let created: TokenCreated = parse(&v)?;
            let mut t = Table::new(Token::HEADER);
            t.row(created.token.cells());
            emit(&format!("{}\nsecret: {}\n", t.render(), created.secret));
            eprintln!("Store the secret now: it is not shown again.");
            Ok(())
        }
        TokenCmd::Revoke { id, tenant } => {
            match c.delete(&item(&scoped(&tenant, "tokens"), &id))? {
                Some(v) => print_one::<Token>(f, &v)?,
                None => print_done(f, &format!("token {id} revoked")),
            }
            Ok(())
        }
    }
}
