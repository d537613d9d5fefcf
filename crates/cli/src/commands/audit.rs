//! `neocloud audit ...`: list and export through the API; verify directly
//! against the store.

use super::{parse_key, tenant_path, Global};
use crate::output::{self, emit, print_list, CliError, Format};
use neocloud_types::{AuditEvent, List};
use std::io::Write;
use std::process::ExitCode;

/// Largest page the API serves.
const PAGE: usize = 1000;

#[derive(clap::Args)]
pub struct AuditArgs {
    #[command(flatten)]
    g: Global,
    #[command(subcommand)]
    cmd: AuditCmd,
}

#[derive(clap::Subcommand)]
enum AuditCmd {
    /// List audit events: a tenant's chain, or every chain (provider).
    List {
        /// The tenant's chain (default: all chains, for provider roles).
        #[arg(long, value_parser = parse_key)]
        tenant: Option<String>,
        /// Page size (1-1000, default 100).
        #[arg(long, value_parser = clap::value_parser!(u16).range(1..=1000))]
        limit: Option<u16>,
        /// Start after this event: a sequence number with --tenant, else an event id.
        #[arg(long, value_parser = parse_key)]
        after: Option<String>,
    },
    /// Export the whole trail as JSON lines (one event per line) to stdout.
    Export {
        /// The tenant's chain (default: all chains, for provider roles).
        #[arg(long, value_parser = parse_key)]
        tenant: Option<String>,
    },
    /// Recompute every hash chain in the store and report edited or deleted rows.
    Verify {
        /// Store URL (sqlite://PATH or postgres://...).
        #[arg(long, env = "NEOCLOUD_DB")]
        db: String,
    },
}

pub fn run(a: AuditArgs) -> ExitCode {
    let res = match a.cmd {
        AuditCmd::Verify { db } => return audit_verify(&db),
        AuditCmd::List { tenant, limit, after } => list(&a.g, tenant, limit, after),
        AuditCmd::Export { tenant } => export(&a.g, tenant),
    };
    match res {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => output::fail(&e),
    }
}

/// The path and the name of its cursor parameter.
fn endpoint(tenant: &Option<String>) -> (String, &'static str) {
    match tenant {
        Some(t) => (format!("{}/audit", tenant_path(t)), "after_seq"),
        None => ("/v1/audit".to_string(), "after"),
    }
}

/// The cursor that continues after this event.
fn cursor(tenant: &Option<String>, e: &AuditEvent) -> String {
    match tenant {
        Some(_) => e.seq.to_string(),
        None => e.id.clone(),
    }
}

fn list(
    g: &Global,
    tenant: Option<String>,
    limit: Option<u16>,
    after: Option<String>,
) -> Result<(), CliError> {
    let c = g.client()?;
    let (path, after_param) = endpoint(&tenant);
    let mut query = Vec::new();
    if let Some(l) = limit {
        query.push(("limit", l.to_string()));
    }
    if let Some(a) = after {
        query.push((after_param, a));
    }
    let v = c.get(&path, &query)?;
    print_list::<AuditEvent>(g.output, &v)?;
    if g.output == Format::Table {
        let page: List<AuditEvent> = output::parse(&v)?;
        if page.items.len() == usize::from(limit.unwrap_or(100)) {
            if let Some(last) = page.items.last() {
                eprintln!("(more: --after {})", cursor(&tenant, last));
            }
        }
    }
    Ok(())
}

/// Pages through the trail with `format=jsonl`, writing the lines as they come.
fn export(g: &Global, tenant: Option<String>) -> Result<(), CliError> {
    let c = g.client()?;
    let (path, after_param) = endpoint(&tenant);
    let mut after: Option<String> = None;
    let mut out = std::io::stdout().lock();
    loop {
        let mut query = vec![("limit", PAGE.to_string()), ("format", "jsonl".to_string())];
        if let Some(a) = &after {
            query.push((after_param, a.clone()));
        }
        let text = c.get_text(&path, &query)?;
        let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        for l in &lines {
            if writeln!(out, "{l}").is_err() {
                return Ok(()); // stdout closed (`| head`): stop quietly
            }
        }
        let Some(last) = lines.last() else { break };
        let last: AuditEvent = serde_json::from_str(last)
            .map_err(|e| CliError::Other(format!("unexpected audit line from the server: {e}")))?;
        if lines.len() < PAGE {
            break;
        }
        after = Some(cursor(&tenant, &last));
    }
    let _ = out.flush();
    Ok(())
}

pub fn audit_verify(db: &str) -> ExitCode {
    let store = match neocloud_store::Store::open(db) {
        Ok(s) => s,
        Err(e) => return crate::output::fail_local(&e),
    };
    match store.read(neocloud_store::audit::verify) {
        Ok(v) if v.problems.is_empty() => {
            emit(&format!("ok: {} chain(s), {} event(s), all intact\n", v.chains, v.events));
            ExitCode::SUCCESS
        }
        Ok(v) => {
            let mut s = String::new();
            for p in &v.problems {
                s.push_str(&format!("TAMPERED: {p}\n"));
            }
            s.push_str(&format!(
                "{} problem(s) in {} chain(s), {} event(s)\n",
                v.problems.len(),
                v.chains,
                v.events
            ));
            emit(&s);
            ExitCode::from(output::EXIT_VERIFY_FAILED)
        }
        Err(e) => crate::output::fail_local(&e),
    }
}
