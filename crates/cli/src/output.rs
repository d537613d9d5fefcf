//! Exit codes, error reporting and what the client commands print.

use neocloud_common::{Error, ErrorCode};
use neocloud_placement::Availability;
use neocloud_types::{
    Allocation, AllocationState, AuditEvent, FirmwareBaseline, FirmwareCompliance, Image, Instance,
    InstanceKind, InstanceType, Membership, Node, Progress, Project, ProvisioningNetwork,
    QuotaClaim, Tenant, Token, User,
};
use std::fmt;
use std::io::Write;
use std::process::ExitCode;

pub const EXIT_OTHER: u8 = 1;
pub const EXIT_USAGE: u8 = 2;
pub const EXIT_UNAUTHENTICATED: u8 = 3;
pub const EXIT_FORBIDDEN: u8 = 4;
pub const EXIT_NOT_FOUND: u8 = 5;
pub const EXIT_CONFLICT: u8 = 6;
pub const EXIT_INVALID: u8 = 7;
pub const EXIT_RATE_LIMITED: u8 = 8;
pub const EXIT_UNAVAILABLE: u8 = 9;
/// A verification failed: tampered audit events, or a sanitization record
/// whose signature does not verify.
pub const EXIT_VERIFY_FAILED: u8 = 10;

/// The exit code for an HTTP status (0 for success).
pub fn exit_for_status(status: u16) -> u8 {
    match status {
        200..=299 => 0,
        401 => EXIT_UNAUTHENTICATED,
        403 => EXIT_FORBIDDEN,
        404 => EXIT_NOT_FOUND,
        409 => EXIT_CONFLICT,
        400 | 405 | 413 | 415 | 422 => EXIT_INVALID,
        429 => EXIT_RATE_LIMITED,
        500..=599 => EXIT_UNAVAILABLE,
        _ => EXIT_OTHER,
    }
}

/// Reports an error that happened locally (not from the API).
pub fn fail_local(e: &Error) -> ExitCode {
    eprintln!("error: {}", e.external_message());
    if let Some(f) = e.field() {
        eprintln!("  field: {f}");
    }
    if let Some(i) = e.internal_message() {
        eprintln!("  detail: {i}");
    }
    ExitCode::from(match e.code() {
        ErrorCode::InvalidRequest | ErrorCode::InvalidValue => EXIT_USAGE,
        ErrorCode::Unavailable => EXIT_UNAVAILABLE,
        _ => EXIT_OTHER,
    })
}

/// An error answered by the API (`{"error": {...}}`), or an HTTP error
/// status without such a body.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: u16,
    pub code: String,
    pub message: String,
    pub field: Option<String>,
    pub request_id: Option<String>,
    /// The `Retry-After` header of a 429, in seconds.
    pub retry_after: Option<String>,
}

/// Why a client command failed; each kind has its exit code.
#[derive(Debug)]
pub enum CliError {
    /// Bad arguments, URL or local setup (exit 2).
    Usage(String),
    /// No token to send: not logged in (exit 3).
    NotLoggedIn(String),
    /// The API refused the request (exit code from the HTTP status).
    Api(Box<ApiError>),
    /// The server could not be reached or did not answer (exit 9).
    Unavailable(String),
    /// Anything else: local files, unexpected answers, a `--wait` that
    /// ended in failure or timed out (exit 1).
    Other(String),
    /// A signature or hash check failed (exit 10).
    Verify(String),
}

impl CliError {
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Usage(_) => EXIT_USAGE,
            CliError::NotLoggedIn(_) => EXIT_UNAUTHENTICATED,
            CliError::Api(a) => match exit_for_status(a.status) {
                0 => EXIT_OTHER,
                n => n,
            },
            CliError::Unavailable(_) => EXIT_UNAVAILABLE,
            CliError::Other(_) => EXIT_OTHER,
            CliError::Verify(_) => EXIT_VERIFY_FAILED,
        }
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CliError::Usage(m)
            | CliError::NotLoggedIn(m)
            | CliError::Unavailable(m)
            | CliError::Other(m)
            | CliError::Verify(m) => f.write_str(m),
            CliError::Api(a) => f.write_str(&a.message),
        }
    }
}

/// Prints the error to stderr and returns its exit code.
pub fn fail(e: &CliError) -> ExitCode {
    eprintln!("error: {e}");
    if let CliError::Api(a) = e {
        if !a.code.is_empty() {
            eprintln!("  code: {}", a.code);
        }
        if let Some(f) = &a.field {
            eprintln!("  field: {f}");
        }
        if let Some(s) = &a.retry_after {
            eprintln!("  retry after: {s}s");
        }
        if let Some(r) = &a.request_id {
            eprintln!("  request id: {r}");
        }
    }
    ExitCode::from(e.exit_code())
}

/// `-o`/`--output`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Aligned columns with a header row.
    #[default]
    #[value(alias = "human")]
    Table,
    /// The API's JSON, pretty-printed.
    Json,
}

/// Writes to stdout; a closed pipe (`| head`) is not an error.
pub fn emit(s: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(s.as_bytes()).and_then(|_| out.flush());
}

/// Pretty-prints a JSON value, with a final newline.
pub fn emit_json(v: &serde_json::Value) {
    let mut s = serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string());
    s.push('\n');
    emit(&s);
}

/// Columns aligned with two spaces, a header row in capitals.
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(header: &[&str]) -> Table {
        Table { header: header.iter().map(|h| h.to_string()).collect(), rows: Vec::new() }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells.into_iter().map(|c| clean(&c)).collect());
    }

    pub fn render(&self) -> String {
        let n = self.header.len();
        let mut width: Vec<usize> = self.header.iter().map(|h| h.chars().count()).collect();
        for r in &self.rows {
            for (i, c) in r.iter().enumerate().take(n) {
                width[i] = width[i].max(c.chars().count());
            }
        }
        let mut out = String::new();
        for r in std::iter::once(&self.header).chain(&self.rows) {
            let mut line = String::new();
            for (i, c) in r.iter().enumerate().take(n) {
                line.push_str(c);
                if i + 1 < n {
                    let pad = width[i] - c.chars().count() + 2;
                    line.extend(std::iter::repeat_n(' ', pad));
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

/// The widest a table cell gets.
const MAX_CELL: usize = 48;

/// One line, no control characters, at most [`MAX_CELL`] characters.
fn clean(s: &str) -> String {
    const MAX: usize = MAX_CELL;
    let s: String = s.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    if s.chars().count() > MAX {
        let mut t: String = s.chars().take(MAX - 1).collect();
        t.push('…');
        t
    } else {
        s
    }
}

/// `-` for nothing.
pub fn or_dash(s: Option<&str>) -> String {
    match s {
        Some(s) if !s.is_empty() => s.to_string(),
        _ => "-".to_string(),
    }
}

/// An RFC 3339 time to the second: `2026-01-02T03:04:05Z`.
pub fn short_time(s: &str) -> String {
    match (s.find('.'), s.ends_with('Z')) {
        (Some(dot), true) => format!("{}Z", &s[..dot]),
        _ => s.to_string(),
    }
}

fn opt_time(s: Option<&str>) -> String {
    s.map(short_time).unwrap_or_else(|| "-".to_string())
}

/// An API object shown as one table row.
pub trait Row: serde::de::DeserializeOwned {
    const HEADER: &'static [&'static str];
    fn cells(&self) -> Vec<String>;
}

impl Row for Tenant {
    const HEADER: &'static [&'static str] =
        &["NAME", "ID", "DISPLAY NAME", "SUSPENDED", "GENERATION", "CREATED"];
    fn cells(&self) -> Vec<String> {
        vec![
            self.name.clone(),
            self.id.clone(),
            or_dash(Some(&self.display_name)),
            if self.suspended { "yes" } else { "no" }.to_string(),
            self.generation.to_string(),
            short_time(&self.created_at),
        ]
    }
}

impl Row for Project {
    const HEADER: &'static [&'static str] = &["NAME", "ID", "DESCRIPTION", "GENERATION", "CREATED"];
    fn cells(&self) -> Vec<String> {
        vec![
            self.name.clone(),
            self.id.clone(),
            or_dash(Some(&self.description)),
            self.generation.to_string(),
            short_time(&self.created_at),
        ]
    }
}

impl Row for User {
    const HEADER: &'static [&'static str] =
        &["NAME", "ID", "DISPLAY NAME", "EMAIL", "GENERATION", "CREATED"];
    fn cells(&self) -> Vec<String> {
        vec![
            self.name.clone(),
            self.id.clone(),
            or_dash(Some(&self.display_name)),
            or_dash(Some(&self.email)),
            self.generation.to_string(),
            short_time(&self.created_at),
        ]
    }
}

impl Row for Membership {
    const HEADER: &'static [&'static str] =
        &["ID", "USER ID", "ROLE", "PROJECT ID", "GENERATION", "CREATED"];
    fn cells(&self) -> Vec<String> {
        vec![
            self.id.clone(),
            self.user_id.clone(),
            self.role.to_string(),
            or_dash(self.project_id.as_deref()),
            self.generation.to_string(),
            short_time(&self.created_at),
        ]
    }
}

impl Row for Token {
    const HEADER: &'static [&'static str] =
        &["ID", "NAME", "PREFIX", "USER ID", "EXPIRES", "REVOKED", "LAST USED"];
    fn cells(&self) -> Vec<String> {
        vec![
            self.id.clone(),
            self.name.clone(),
            self.prefix.clone(),
            self.user_id.clone(),
            opt_time(self.expires_at.as_deref()),
            opt_time(self.revoked_at.as_deref()),
            opt_time(self.last_used_at.as_deref()),
        ]
    }
}

impl Row for QuotaClaim {
    const HEADER: &'static [&'static str] =
        &["ID", "STATE", "RESOURCES", "DESCRIPTION", "GENERATION", "CREATED"];
    fn cells(&self) -> Vec<String> {
        let resources: Vec<String> =
            self.resources.iter().map(|(k, v)| format!("{k}={v}")).collect();
        vec![
            self.id.clone(),
            self.state.as_str().to_string(),
            resources.join(","),
            or_dash(Some(&self.description)),
            self.generation.to_string(),
            short_time(&self.created_at),
        ]
    }
}

impl Row for AuditEvent {
    const HEADER: &'static [&'static str] =
        &["SEQ", "TIME", "CHAIN", "ACTOR", "ACTION", "OUTCOME", "STATUS", "TARGET"];
    fn cells(&self) -> Vec<String> {
        vec![
            self.seq.to_string(),
            short_time(&self.time),
            self.chain.clone(),
            self.actor_name.clone(),
            self.action.clone(),
            self.outcome.clone(),
            self.status.to_string(),
            self.target.clone(),
        ]
    }
}

impl Row for Node {
    const HEADER: &'static [&'static str] = &[
        "NAME",
        "ID",
        "SITE",
        "POD",
        "SU",
        "RACK",
        "GPU MODEL",
        "GPUS",
        "MIG",
        "AVAILABILITY",
        "LIFECYCLE",
        "HEALTH",
        "BOOT",
        "GENERATION",
    ];
    fn cells(&self) -> Vec<String> {
        vec![
            self.name.clone(),
            self.id.clone(),
            self.site.clone(),
            self.pod.clone(),
            self.su.clone(),
            self.rack.clone(),
            self.gpu_model.clone(),
            self.gpus.to_string(),
            if self.mig_capable { "yes" } else { "no" }.to_string(),
            match self.availability {
                Availability::Schedulable => "schedulable",
                Availability::Maintenance => "maintenance",
                Availability::Failed => "failed",
            }
            .to_string(),
            match &self.lifecycle {
                neocloud_types::NodeLifecycle::Failed { reason, .. } => {
                    let r: String = reason.chars().take(40).collect();
                    format!("failed: {r}")
                }
                other => other.name().to_string(),
            },
            // As its BMC last said it, with the first part it names.
            hardware_cell(self.hardware_health.as_deref(), &self.hardware_faults),
            // Only a node with a BMC is booted by the controller.
            match (&self.bmc_endpoint, &self.boot_network) {
                (Some(_), None) => self.boot_method.as_str().to_string(),
                (Some(_), Some(n)) => {
                    format!("{} {}", self.boot_method.as_str(), n.address.as_deref().unwrap_or("-"))
                }
                (None, _) => "-".to_string(),
            },
            self.generation.to_string(),
        ]
    }
}

impl Row for InstanceType {
    const HEADER: &'static [&'static str] = &[
        "NAME",
        "ID",
        "KIND",
        "GPU MODEL",
        "GPUS",
        "MIG PROFILE",
        "VCPUS",
        "MEMORY GIB",
        "GENERATION",
        "CREATED",
    ];
    fn cells(&self) -> Vec<String> {
        let num = |n: u32| if n == 0 { "-".to_string() } else { n.to_string() };
        vec![
            self.name.clone(),
            self.id.clone(),
            self.kind.as_str().to_string(),
            self.gpu_model.clone(),
            match self.kind {
                // The whole node, whatever its count.
                InstanceKind::BareMetal => "node".to_string(),
                InstanceKind::Vm | InstanceKind::Mig => num(self.gpus as u32),
            },
            or_dash(self.mig_profile.as_deref()),
            num(self.vcpus),
            num(self.memory_gib),
            self.generation.to_string(),
            short_time(&self.created_at),
        ]
    }
}

impl Row for Allocation {
    const HEADER: &'static [&'static str] =
        &["ID", "TYPE ID", "COUNT", "STATE", "NODES", "GPUS", "CREATED"];
    fn cells(&self) -> Vec<String> {
        let mut nodes: Vec<&str> = Vec::new();
        for a in &self.placement.assignments {
            if !nodes.contains(&a.node_id.as_str()) {
                nodes.push(&a.node_id);
            }
        }
        let gpus = self.placement.gpu_count();
        let slices = self.placement.assignments.iter().filter(|a| a.mig.is_some()).count();
        vec![
            self.id.clone(),
            self.instance_type_id.clone(),
            self.count.to_string(),
            match self.state {
                AllocationState::Active => "active",
                AllocationState::Released => "released",
            }
            .to_string(),
            join_fitting(&nodes, MAX_CELL),
            match (gpus, slices) {
                (g, 0) => g.to_string(),
                (g, s) => {
                    let slices = format!("{s} mig slice{}", if s == 1 { "" } else { "s" });
                    if g == 0 {
                        slices
                    } else {
                        format!("{g} + {slices}")
                    }
                }
            },
            short_time(&self.created_at),
        ]
    }
}

impl Row for Image {
    const HEADER: &'static [&'static str] =
        &["NAME", "ID", "PURPOSE", "KERNEL", "ROOT", "DESCRIPTION", "CREATED"];
    fn cells(&self) -> Vec<String> {
        vec![
            self.name.clone(),
            self.id.clone(),
            self.purpose.as_str().to_string(),
            self.kernel_url.clone(),
            or_dash(self.root_url.as_deref()),
            or_dash(Some(&self.description)),
            short_time(&self.created_at),
        ]
    }
}

impl Row for FirmwareBaseline {
    const HEADER: &'static [&'static str] =
        &["NAME", "ID", "MODEL", "COMPONENTS", "GENERATION", "UPDATED"];
    fn cells(&self) -> Vec<String> {
        // A component with an image to update it from: marked `+image`;
        // with the reset that activates it: `+activation`.
        let components: Vec<String> = self
            .components
            .iter()
            .map(|(id, v)| {
                let image = if self.images.contains_key(id) { " +image" } else { "" };
                let reset = if self.activations.contains_key(id) { " +activation" } else { "" };
                format!("{id}={v}{image}{reset}")
            })
            .collect();
        vec![
            self.name.clone(),
            self.id.clone(),
            self.model.clone(),
            components.join(", "),
            self.generation.to_string(),
            short_time(&self.updated_at),
        ]
    }
}

impl Row for ProvisioningNetwork {
    const HEADER: &'static [&'static str] =
        &["NAME", "SUBNET", "RANGE", "GATEWAY", "DNS", "NODES", "FREE", "GENERATION"];
    fn cells(&self) -> Vec<String> {
        vec![
            self.name.clone(),
            self.subnet.clone(),
            format!("{}-{}", self.first, self.last),
            self.gateway.clone().unwrap_or_else(|| "-".into()),
            if self.dns.is_empty() { "-".into() } else { self.dns.join(",") },
            self.nodes.to_string(),
            self.free.to_string(),
            self.generation.to_string(),
        ]
    }
}

impl Row for FirmwareCompliance {
    const HEADER: &'static [&'static str] =
        &["NODE", "STATE", "COMPLIANT", "DIFFERS", "UPDATING", "READ"];
    fn cells(&self) -> Vec<String> {
        let differs: Vec<String> = self
            .differs
            .iter()
            .map(|d| {
                let have = d.have.as_deref().unwrap_or("not reported");
                let image = if d.image { " +image" } else { "" };
                format!("{} {have} (want {}){image}", d.component, d.want)
            })
            .collect();
        vec![
            self.node.clone(),
            self.lifecycle.clone(),
            yes_no(self.compliant),
            if differs.is_empty() { "-".into() } else { differs.join(", ") },
            yes_no(self.updating),
            short_time(&self.read_at),
        ]
    }
}

fn yes_no(b: bool) -> String {
    if b { "yes" } else { "no" }.into()
}

impl Row for Instance {
    const HEADER: &'static [&'static str] =
        &["NAME", "ID", "STATE", "STEP", "HEALTH", "NODE", "REASON", "AGE"];
    fn cells(&self) -> Vec<String> {
        vec![
            self.name.clone(),
            self.id.clone(),
            self.state.as_str().to_string(),
            self.progress.as_ref().map(step).unwrap_or_else(|| "-".to_string()),
            // `ok` or `degraded`; what is wrong is in the JSON (`-o json`).
            // The BMC's word where it is not OK.
            {
                let agent =
                    or_dash(self.health.as_deref().map(|h| h.split(':').next().unwrap_or(h)));
                match self.hardware_health.as_deref() {
                    Some(bmc) if bmc != "OK" => {
                        format!("{agent} (BMC {})", hardware_cell(Some(bmc), &self.hardware_faults))
                    }
                    _ => agent,
                }
            },
            or_dash(Some(&self.node_id)),
            or_dash(self.reason.as_deref()),
            age(&self.created_at, neocloud_common::time::now_micros()),
        ]
    }
}

/// A node's hardware health as its BMC last said it: the rollup and the
/// first part it names (`Critical GPU_SXM_3 +1`; all of them with `-o
/// json`).
fn hardware_cell(rollup: Option<&str>, faults: &[String]) -> String {
    let Some(r) = rollup else { return "-".into() };
    match faults {
        [] => r.to_string(),
        [one] => format!("{r} {}", one.split(' ').next().unwrap_or(one)),
        [first, rest @ ..] => {
            format!("{r} {} +{}", first.split(' ').next().unwrap_or(first), rest.len())
        }
    }
}

/// A phase's progress: `power_cycle 1/3`.
pub fn step(p: &Progress) -> String {
    format!("{} {}/{}", p.step, p.done, p.total)
}

/// How long ago an RFC 3339 time was, in its largest unit: `42s`, `5m`,
/// `3h`, `12d` (`-` when it does not parse).
pub fn age(time: &str, now_micros: i64) -> String {
    let Ok(t) = neocloud_common::time::from_rfc3339(time) else { return "-".to_string() };
    let s = (now_micros - t).max(0) / 1_000_000;
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m", s / 60),
        3600..=86_399 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86_400),
    }
}

/// Comma-joined items, as many whole ones as fit in `max` characters, then
/// how many were left out (`a,b +3 more`); at least the first is shown.
pub fn join_fitting(items: &[&str], max: usize) -> String {
    if items.is_empty() {
        return "-".to_string();
    }
    let mut out = String::new();
    for (i, it) in items.iter().enumerate() {
        let rest = items.len() - i - 1;
        let sep = if i == 0 { 0 } else { 1 };
        let more = if rest == 0 { 0 } else { format!(" +{rest} more").len() };
        if i > 0 && out.chars().count() + sep + it.chars().count() + more > max {
            out.push_str(&format!(" +{} more", items.len() - i));
            return out;
        }
        if i > 0 {
            out.push(',');
        }
        out.push_str(it);
    }
    out
}

/// Parses an API answer as `T`; an unexpected shape is exit 1.
pub fn parse<T: serde::de::DeserializeOwned>(v: &serde_json::Value) -> Result<T, CliError> {
    T::deserialize(v)
        .map_err(|e| CliError::Other(format!("unexpected answer from the server: {e}")))
}

/// Prints one object: its JSON, or a one-row table.
pub fn print_one<T: Row>(format: Format, v: &serde_json::Value) -> Result<(), CliError> {
    match format {
        Format::Json => emit_json(v),
        Format::Table => {
            let obj: T = parse(v)?;
            let mut t = Table::new(T::HEADER);
            t.row(obj.cells());
            emit(&t.render());
        }
    }
    Ok(())
}

/// Prints a list answer (`{"items": [...]}`): its JSON, or a table.
pub fn print_list<T: Row>(format: Format, v: &serde_json::Value) -> Result<(), CliError> {
    match format {
        Format::Json => emit_json(v),
        Format::Table => {
            let list: neocloud_types::List<T> = parse(v)?;
            let mut t = Table::new(T::HEADER);
            for obj in &list.items {
                t.row(obj.cells());
            }
            emit(&t.render());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_aligns_columns() {
        let mut t = Table::new(&["NAME", "ID"]);
        t.row(vec!["a-long-name".into(), "1".into()]);
        t.row(vec!["b".into(), "22".into()]);
        assert_eq!(t.render(), "NAME         ID\na-long-name  1\nb            22\n");
    }

    #[test]
    fn cells_are_one_line() {
        let mut t = Table::new(&["A", "B"]);
        t.row(vec!["x\ny".into(), "z".repeat(60)]);
        let out = t.render();
        assert_eq!(out.lines().count(), 2);
        assert!(out.contains("x y"));
        assert!(out.contains('…'));
    }

    #[test]
    fn exit_codes() {
        let api = |status| {
            CliError::Api(Box::new(ApiError {
                status,
                code: String::new(),
                message: String::new(),
                field: None,
                request_id: None,
                retry_after: None,
            }))
        };
        assert_eq!(api(404).exit_code(), EXIT_NOT_FOUND);
        assert_eq!(api(409).exit_code(), EXIT_CONFLICT);
        assert_eq!(api(422).exit_code(), EXIT_INVALID);
        assert_eq!(api(503).exit_code(), EXIT_UNAVAILABLE);
        assert_eq!(api(302).exit_code(), EXIT_OTHER);
        assert_eq!(CliError::Usage(String::new()).exit_code(), EXIT_USAGE);
        assert_eq!(CliError::Verify(String::new()).exit_code(), EXIT_VERIFY_FAILED);
        assert_eq!(short_time("2026-01-02T03:04:05.123456Z"), "2026-01-02T03:04:05Z");
    }

    #[test]
    fn ages() {
        let t = "2026-01-02T03:04:05.123456Z";
        let at = neocloud_common::time::from_rfc3339(t).unwrap();
        assert_eq!(age(t, at), "0s");
        assert_eq!(age(t, at + 59_000_000), "59s");
        assert_eq!(age(t, at + 125_000_000), "2m");
        assert_eq!(age(t, at + 3 * 3_600_000_000), "3h");
        assert_eq!(age(t, at + 50 * 3_600_000_000), "2d");
        assert_eq!(age(t, at - 5_000_000), "0s", "a clock behind the server's");
        assert_eq!(age("yesterday", at), "-");
    }

    #[test]
    fn node_lists_fit_a_cell() {
        assert_eq!(join_fitting(&[], 48), "-");
        assert_eq!(join_fitting(&["a", "b", "c"], 48), "a,b,c");
        let id = "0f8fad5b-d9cb-469f-a165-70867728950e";
        assert_eq!(join_fitting(&[id], 48), id);
        assert_eq!(join_fitting(&[id, id, id], 48), format!("{id} +2 more"));
        assert!(join_fitting(&[id, id, id], 48).chars().count() <= 48);
        let four = ["node-1", "node-2", "node-3", "node-4"];
        assert_eq!(join_fitting(&four, 21), "node-1,node-2 +2 more");
        assert_eq!(join_fitting(&four[..3], 21), "node-1,node-2,node-3");
    }
}
