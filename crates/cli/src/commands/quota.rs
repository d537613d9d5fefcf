//! `neocloud quota ...` and `neocloud claim ...`.

use super::{parse_key, project_path, tenant_path, to_value, Global};
use crate::client;
use crate::output::{emit, emit_json, parse, print_list, print_one, CliError, Format, Table};
use neocloud_types::{Quota, QuotaClaim, QuotaClaimCreate, QuotaUpdate};
use std::collections::BTreeMap;

/// Which quota: the provider's, a tenant's or a project's.
#[derive(clap::Args, Debug)]
struct Level {
    /// A tenant's quota (default: the provider's).
    #[arg(long, value_parser = parse_key)]
    tenant: Option<String>,
    /// A project's quota (needs --tenant).
    #[arg(long, value_parser = parse_key, requires = "tenant")]
    project: Option<String>,
}

impl Level {
    fn path(&self) -> String {
        match (&self.tenant, &self.project) {
            (Some(t), Some(p)) => format!("{}/quotas", project_path(t, p)),
            (Some(t), None) => format!("{}/quotas", tenant_path(t)),
            _ => "/v1/quotas".to_string(),
        }
    }
}

#[derive(clap::Args)]
pub struct QuotaArgs {
    #[command(flatten)]
    g: Global,
    #[command(subcommand)]
    cmd: QuotaCmd,
}

#[derive(clap::Subcommand)]
enum QuotaCmd {
    /// Show limits and usage.
    Get {
        #[command(flatten)]
        level: Level,
    },
    /// Set limits: KEY=VALUE..., VALUE a number or `none` to remove the
    /// limit at this level. Keys: nodes, networks, public_ips,
    /// storage_bytes, gpu:<model>, mig:<profile>.
    Set {
        #[arg(value_name = "KEY=VALUE", required = true, value_parser = parse_limit)]
        limits: Vec<(String, Option<i64>)>,
        /// The quota's generation you last saw (a stale one fails with exit 6).
        #[arg(long)]
        generation: i64,
        #[command(flatten)]
        level: Level,
    },
}

pub fn quota(a: QuotaArgs) -> Result<(), CliError> {
    let c = a.g.client()?;
    let v = match a.cmd {
        QuotaCmd::Get { level } => c.get(&level.path(), &[])?,
        QuotaCmd::Set { limits, generation, level } => {
            let body = to_value(&QuotaUpdate { generation, limits: limits.into_iter().collect() })?;
            c.put(&level.path(), &body)?
        }
    };
    print_quota(a.g.output, &v)
}

fn print_quota(f: Format, v: &serde_json::Value) -> Result<(), CliError> {
    if f == Format::Json {
        emit_json(v);
        return Ok(());
    }
    let q: Quota = parse(v)?;
    let mut out =
        format!("scope:       {} {}\ngeneration:  {}\n\n", q.scope, q.scope_id, q.generation);
    let mut t = Table::new(&["RESOURCE", "LIMIT", "RESERVED", "COMMITTED"]);
    for (k, e) in &q.resources {
        t.row(vec![
            k.clone(),
            e.limit.map(|l| l.to_string()).unwrap_or_else(|| "none".into()),
            e.reserved.to_string(),
            e.committed.to_string(),
        ]);
    }
    out.push_str(&t.render());
    emit(&out);
    Ok(())
}

/// `KEY=VALUE`, VALUE an integer or `none`.
fn parse_limit(s: &str) -> Result<(String, Option<i64>), String> {
    let (k, v) = split_pair(s)?;
    if v == "none" {
        return Ok((k, None));
    }
    v.parse::<i64>().map(|n| (k, Some(n))).map_err(|_| "VALUE must be an integer or none".into())
}

/// `KEY=N`, N an integer.
fn parse_amount(s: &str) -> Result<(String, i64), String> {
    let (k, v) = split_pair(s)?;
    v.parse::<i64>().map(|n| (k, n)).map_err(|_| "N must be an integer".into())
}

fn split_pair(s: &str) -> Result<(String, &str), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() && !v.trim().is_empty() => {
            Ok((k.trim().to_string(), v.trim()))
        }
        _ => Err("expected KEY=VALUE, e.g. nodes=4 or gpu:h100-80gb=8".into()),
    }
}

#[derive(clap::Args)]
pub struct ClaimArgs {
    #[command(flatten)]
    g: Global,
    #[command(subcommand)]
    cmd: ClaimCmd,
}

/// The project whose claims these are.
#[derive(clap::Args, Debug)]
struct InProject {
    /// Tenant name or id.
    #[arg(long, value_parser = parse_key)]
    tenant: String,
    /// Project name or id.
    #[arg(long, value_parser = parse_key)]
    project: String,
}

impl InProject {
    fn claims(&self) -> String {
        format!("{}/claims", project_path(&self.tenant, &self.project))
    }

    fn claim(&self, id: &str) -> String {
        format!("{}/{}", self.claims(), client::seg(id))
    }
}

#[derive(clap::Subcommand)]
enum ClaimCmd {
    /// List the project's claims.
    List {
        #[command(flatten)]
        at: InProject,
        /// Only claims in this state.
        #[arg(long, value_parser = ["reserved", "committed", "released"])]
        state: Option<String>,
    },
    /// Reserve resources: KEY=N... (fails with exit 6 when a quota would be exceeded).
    Create {
        #[arg(value_name = "KEY=N", required = true, value_parser = parse_amount)]
        resources: Vec<(String, i64)>,
        #[command(flatten)]
        at: InProject,
        #[arg(long)]
        description: Option<String>,
        /// Retrying with the same key returns the first result instead of a second claim.
        #[arg(long, value_name = "KEY")]
        idempotency_key: Option<String>,
    },
    /// Show one claim.
    Get {
        /// Claim id.
        #[arg(value_parser = parse_key)]
        id: String,
        #[command(flatten)]
        at: InProject,
    },
    /// Commit a reserved claim (the resources are in use).
    Commit {
        /// Claim id.
        #[arg(value_parser = parse_key)]
        id: String,
        #[command(flatten)]
        at: InProject,
    },
    /// Release a claim, giving its resources back.
    Release {
        /// Claim id.
        #[arg(value_parser = parse_key)]
        id: String,
        #[command(flatten)]
        at: InProject,
    },
}

pub fn claim(a: ClaimArgs) -> Result<(), CliError> {
    let c = a.g.client()?;
    let f = a.g.output;
    match a.cmd {
        ClaimCmd::List { at, state } => {
            let query: Vec<(&str, String)> = state.into_iter().map(|s| ("state", s)).collect();
            print_list::<QuotaClaim>(f, &c.get(&at.claims(), &query)?)
        }
        ClaimCmd::Create { resources, at, description, idempotency_key } => {
            let resources: BTreeMap<String, i64> = resources.into_iter().collect();
            let body = to_value(&QuotaClaimCreate { resources, description })?;
            let v = c.post(&at.claims(), Some(&body), idempotency_key.as_deref())?;
            print_one::<QuotaClaim>(f, &v)
        }
        ClaimCmd::Get { id, at } => print_one::<QuotaClaim>(f, &c.get(&at.claim(&id), &[])?),
        ClaimCmd::Commit { id, at } => {
            let v = c.post(&format!("{}/commit", at.claim(&id)), None, None)?;
            print_one::<QuotaClaim>(f, &v)
        }
        ClaimCmd::Release { id, at } => match c.delete(&at.claim(&id))? {
            Some(v) => print_one::<QuotaClaim>(f, &v),
            None => {
                super::print_done(f, &format!("claim {id} released"));
                Ok(())
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs() {
        assert_eq!(parse_limit("nodes=4"), Ok(("nodes".into(), Some(4))));
        assert_eq!(parse_limit("gpu:h100-80gb=none"), Ok(("gpu:h100-80gb".into(), None)));
        assert!(parse_limit("nodes").is_err());
        assert!(parse_limit("nodes=x").is_err());
        assert_eq!(parse_amount("mig:1g.10gb=2"), Ok(("mig:1g.10gb".into(), 2)));
        assert!(parse_amount("nodes=none").is_err());
    }
}
