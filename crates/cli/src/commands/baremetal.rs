//! `neocloud image ...`, `neocloud instance ...` and the signed sanitization
//! records (`instance sanitization`, `node sanitizations`).

use super::inventory::{InProject, PlacementFlags};
use super::{parse_duration_secs, parse_key, parse_name, print_done, to_value, Global};
use crate::client::{self, Client};
use crate::output::{self, emit, emit_json, parse, print_list, print_one, CliError, Format, Table};
use neocloud_common::Name;
use neocloud_placement::Constraints;
use neocloud_types::{
    Image, ImageCreate, ImagePurpose, Instance, InstanceState, List, SanitizationBody,
    SanitizationRecord, StepItem,
};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

// Images.

#[derive(clap::Args)]
pub struct ImageArgs {
    #[command(flatten)]
    g: Global,
    #[command(subcommand)]
    cmd: ImageCmd,
}

/// `--purpose`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum PurposeArg {
    /// An operating system tenants provision instances with.
    Tenant,
    /// The sanitizer (a ramdisk running neocloud-agent), booted to wipe
    /// and check a node between tenants.
    Sanitizer,
}

impl From<PurposeArg> for ImagePurpose {
    fn from(p: PurposeArg) -> ImagePurpose {
        match p {
            PurposeArg::Tenant => ImagePurpose::Tenant,
            PurposeArg::Sanitizer => ImagePurpose::Sanitizer,
        }
    }
}

#[derive(clap::Subcommand)]
enum ImageCmd {
    /// List the image catalog.
    List,
    /// Show one image.
    Get {
        /// Image name or id.
        #[arg(value_parser = parse_key)]
        image: String,
    },
    /// Add an image: a tenant OS, or (--purpose sanitizer) the ramdisk booted
    /// to wipe nodes between tenants. No instance can be created before a
    /// sanitizer is registered.
    Create {
        #[arg(value_parser = parse_name)]
        name: Name,
        /// http(s):// URL of the kernel.
        #[arg(long, value_name = "URL")]
        kernel: String,
        /// http(s):// URL of the initrd.
        #[arg(long, value_name = "URL")]
        initrd: String,
        /// http(s):// URL of the root filesystem or disk image the initrd installs.
        #[arg(long, value_name = "URL")]
        root: Option<String>,
        /// SHA-256 of the root image (64 hex digits), checked by the installer.
        #[arg(long, value_name = "HEX", requires = "root")]
        root_sha256: Option<String>,
        /// Extra kernel command line (`neocloud.*` and `ds=` are the boot service's).
        #[arg(long, value_name = "ARGS", allow_hyphen_values = true)]
        cmdline: Option<String>,
        /// What the image is booted for.
        #[arg(long, value_enum, default_value_t = PurposeArg::Tenant)]
        purpose: PurposeArg,
        #[arg(long)]
        description: Option<String>,
        /// Retrying with the same key returns the first result instead of a second image.
        #[arg(long, value_name = "KEY")]
        idempotency_key: Option<String>,
    },
    /// Remove an image no live instance uses.
    Delete {
        /// Image name or id.
        #[arg(value_parser = parse_key)]
        image: String,
    },
}

fn image_path(image: &str) -> String {
    format!("/v1/images/{}", client::seg(image))
}

pub fn image(a: ImageArgs) -> Result<(), CliError> {
    let c = a.g.client()?;
    let f = a.g.output;
    match a.cmd {
        ImageCmd::List => print_list::<Image>(f, &c.get("/v1/images", &[])?),
        ImageCmd::Get { image } => print_one::<Image>(f, &c.get(&image_path(&image), &[])?),
        ImageCmd::Create {
            name,
            kernel,
            initrd,
            root,
            root_sha256,
            cmdline,
            purpose,
            description,
            idempotency_key,
        } => {
            let body = to_value(&ImageCreate {
                name,
                purpose: purpose.into(),
                kernel_url: kernel,
                initrd_url: initrd,
                root_url: root,
                root_sha256,
                cmdline: cmdline.unwrap_or_default(),
                description: description.unwrap_or_default(),
            })?;
            print_one::<Image>(f, &c.post("/v1/images", Some(&body), idempotency_key.as_deref())?)
        }
        ImageCmd::Delete { image } => {
            c.delete(&image_path(&image))?;
            print_done(f, &format!("image {image} deleted"));
            Ok(())
        }
    }
}

// Instances.

#[derive(clap::Args)]
pub struct InstanceArgs {
    #[command(flatten)]
    g: Global,
    #[command(subcommand)]
    cmd: InstanceCmd,
}

/// `--verify` and `--public-key`: checking signed sanitization records.
#[derive(clap::Args, Debug, Default)]
pub(super) struct VerifyFlags {
    /// Check each record's ed25519 signature over its signed JSON, that the
    /// record shown is what was signed, and that it is about this
    /// instance (node); exit 10 when one does not verify, 1 when there is
    /// no record yet.
    #[arg(long)]
    verify: bool,
    /// The control plane's public key (64 hex digits) the records must be
    /// signed with, e.g. one published by the provider; implies --verify.
    #[arg(long, value_name = "HEX", value_parser = parse_public_key)]
    public_key: Option<String>,
}

impl VerifyFlags {
    pub(super) fn enabled(&self) -> bool {
        self.verify || self.public_key.is_some()
    }
}

// Parsed once per process: the size of the largest variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(clap::Subcommand)]
enum InstanceCmd {
    /// List the project's instances, with their progress.
    List {
        #[command(flatten)]
        at: InProject,
    },
    /// Show one instance: its state, the step running (done/total), why it
    /// failed and its node.
    Get {
        /// Instance name (while not released) or id.
        #[arg(value_parser = parse_key)]
        instance: String,
        #[command(flatten)]
        at: InProject,
    },
    /// Create bare-metal instances: whole nodes provisioned with an image.
    ///
    /// --count whole nodes of a bare-metal type, placed together (all or
    /// nothing), each provisioned with --image and named NAME (one) or
    /// NAME-0, NAME-1, ... (several). Exit 6 when they cannot be placed, the
    /// quota would be exceeded or the provider has no sanitizer image.
    Create {
        #[arg(value_parser = parse_name)]
        name: Name,
        /// Bare-metal instance type name or id.
        #[arg(
            long = "type",
            visible_alias = "instance-type",
            value_parser = parse_key,
            value_name = "TYPE"
        )]
        instance_type: String,
        /// Tenant image name or id.
        #[arg(long, value_parser = parse_key, value_name = "IMAGE")]
        image: String,
        /// Instances (whole nodes).
        #[arg(long, default_value_t = 1, value_name = "N")]
        count: u32,
        /// An OpenSSH public key for the default user (repeat for several).
        #[arg(long = "ssh-key", value_name = "KEY")]
        ssh_keys: Vec<String>,
        /// A file of OpenSSH public keys, one per line, e.g.
        /// ~/.ssh/id_ed25519.pub (repeatable; after the --ssh-key keys).
        #[arg(long = "ssh-key-file", value_name = "PATH")]
        ssh_key_files: Vec<PathBuf>,
        /// cloud-init user-data, served to the instances as is (at most 64 KiB).
        #[arg(long, value_name = "PATH")]
        user_data_file: Option<PathBuf>,
        #[command(flatten)]
        placement: PlacementFlags,
        #[command(flatten)]
        at: InProject,
        /// Retrying with the same key returns the first result instead of more instances.
        #[arg(long, value_name = "KEY")]
        idempotency_key: Option<String>,
        /// Wait until every instance is ready or failed, printing each step
        /// change to stderr; exit 1 when one fails or the wait times out.
        #[arg(long)]
        wait: bool,
        /// How long --wait waits, e.g. 45m.
        #[arg(long, value_parser = parse_duration_secs, default_value = "30m", value_name = "DURATION", requires = "wait")]
        timeout: u64,
    },
    /// Release an instance: its node is wiped by the sanitizer, then returns
    /// to the pool with a signed record (see `instance sanitization`).
    Release {
        /// Instance name (while not released) or id.
        #[arg(value_parser = parse_key)]
        instance: String,
        #[command(flatten)]
        at: InProject,
        /// Wait until it is released (or failed, or its release stalls on a
        /// node the provider must repair), printing each step change to
        /// stderr; exit 1 unless released.
        #[arg(long)]
        wait: bool,
        /// How long --wait waits, e.g. 90m (sanitizing wipes every disk).
        #[arg(long, value_parser = parse_duration_secs, default_value = "2h", value_name = "DURATION", requires = "wait")]
        timeout: u64,
    },
    /// The signed sanitization records of the instance's node, one row per
    /// check; --verify checks their signatures.
    Sanitization {
        /// Instance id (or its name while not released).
        #[arg(value_parser = parse_key)]
        instance: String,
        #[command(flatten)]
        at: InProject,
        #[command(flatten)]
        verify: VerifyFlags,
    },
}

fn instances_path(at: &InProject) -> String {
    format!("{}/instances", at.path())
}

fn instance_path(at: &InProject, instance: &str) -> String {
    format!("{}/{}", instances_path(at), client::seg(instance))
}

pub fn instance(a: InstanceArgs) -> Result<(), CliError> {
    let c = a.g.client()?;
    let f = a.g.output;
    match a.cmd {
        InstanceCmd::List { at } => print_list::<Instance>(f, &c.get(&instances_path(&at), &[])?),
        InstanceCmd::Get { instance, at } => {
            print_one::<Instance>(f, &c.get(&instance_path(&at, &instance), &[])?)
        }
        InstanceCmd::Create {
            name,
            instance_type,
            image,
            count,
            ssh_keys,
            ssh_key_files,
            user_data_file,
            placement,
            at,
            idempotency_key,
            wait,
            timeout,
        } => {
            let mut keys = ssh_keys;
            for p in &ssh_key_files {
                keys.extend(read_ssh_keys(p)?);
            }
            // Built as JSON, as `allocation create` does: only the fields
            // this command sets.
            let mut body = json!({
                "name": name.as_str(),
                "instance_type": instance_type,
                "image": image,
                "count": count,
            });
            if !keys.is_empty() {
                body["ssh_keys"] = json!(keys);
            }
            if let Some(p) = &user_data_file {
                body["user_data"] = json!(read_text(p, "--user-data-file")?);
            }
            let constraints = placement.constraints();
            if constraints != Constraints::default() {
                body["constraints"] = to_value(&constraints)?;
            }
            let v = c.post(&instances_path(&at), Some(&body), idempotency_key.as_deref())?;
            if !wait {
                return print_list::<Instance>(f, &v);
            }
            let created: List<Value> = parse(&v)?;
            let w =
                wait_for(&c, &at, created.items, Duration::from_secs(timeout), created_verdict)?;
            print_list::<Instance>(f, &json!({ "items": w.items }))?;
            w.result("ready", timeout)
        }
        InstanceCmd::Release { instance, at, wait, timeout } => {
            let v = c
                .delete(&instance_path(&at, &instance))?
                .ok_or_else(|| CliError::Other("unexpected empty answer from the server".into()))?;
            if !wait {
                return print_one::<Instance>(f, &v);
            }
            let mut watch = ReleaseWatch::new(&parse::<Instance>(&v)?);
            let w = wait_for(&c, &at, vec![v], Duration::from_secs(timeout), |i| watch.verdict(i))?;
            if let Some(last) = w.items.first() {
                print_one::<Instance>(f, last)?;
            }
            w.result("released", timeout)
        }
        InstanceCmd::Sanitization { instance, at, verify } => {
            // The records must be about this instance: its id, whatever the
            // argument named.
            let instance_id = match verify.enabled() {
                true => Some(parse::<Instance>(&c.get(&instance_path(&at, &instance), &[])?)?.id),
                false => None,
            };
            let v = c.get(&format!("{}/sanitization", instance_path(&at, &instance)), &[])?;
            print_records(f, &v, &verify, |b| match &instance_id {
                Some(id) if &b.instance_id != id => {
                    Err(format!("it is about instance {}, not {id}", b.instance_id))
                }
                _ => Ok(()),
            })
        }
    }
}

/// A file's text; an unreadable file is a usage error.
fn read_text(p: &Path, flag: &str) -> Result<String, CliError> {
    std::fs::read_to_string(p).map_err(|e| CliError::Usage(format!("{flag} {}: {e}", p.display())))
}

/// The OpenSSH public keys in a file, one per line (blank lines and `#`
/// comments skipped). A private key is refused before it leaves the machine.
fn read_ssh_keys(p: &Path) -> Result<Vec<String>, CliError> {
    let text = read_text(p, "--ssh-key-file")?;
    if text.contains("PRIVATE KEY-----") {
        return Err(CliError::Usage(format!(
            "--ssh-key-file {}: this is a private key; give the public one (.pub)",
            p.display()
        )));
    }
    let keys: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect();
    if keys.is_empty() {
        return Err(CliError::Usage(format!(
            "--ssh-key-file {}: no public key in it",
            p.display()
        )));
    }
    Ok(keys)
}

// Waiting.

/// How often `--wait` asks.
const POLL: Duration = Duration::from_secs(1);

/// Where one waited-for instance stands.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Verdict {
    Waiting,
    Done,
    /// Will not get there, and why.
    Failed(String),
}

fn reason_or(i: &Instance, default: &str) -> String {
    i.reason.clone().filter(|r| !r.is_empty()).unwrap_or_else(|| default.to_string())
}

/// `instance create --wait`: ready, or failed.
fn created_verdict(i: &Instance) -> Verdict {
    match i.state {
        InstanceState::Ready => Verdict::Done,
        InstanceState::Failed => Verdict::Failed(reason_or(i, "failed")),
        InstanceState::Releasing | InstanceState::Released => {
            Verdict::Failed(format!("{} before it was ready", i.state.as_str()))
        }
        InstanceState::Pending | InstanceState::Provisioning => Verdict::Waiting,
    }
}

/// `instance release --wait`: released, or failed. A failed instance
/// stays `failed` until the controller starts its release, so `failed`
/// counts only once it has moved. A release that fails leaves the instance
/// `releasing` with a reason: the node is failed and waits for the
/// provider, so that ends the wait too.
struct ReleaseWatch {
    started_failed: bool,
    moved: bool,
}

impl ReleaseWatch {
    fn new(first: &Instance) -> ReleaseWatch {
        ReleaseWatch { started_failed: first.state == InstanceState::Failed, moved: false }
    }

    fn verdict(&mut self, i: &Instance) -> Verdict {
        match i.state {
            InstanceState::Released => Verdict::Done,
            InstanceState::Failed if self.started_failed && !self.moved => Verdict::Waiting,
            InstanceState::Failed => Verdict::Failed(reason_or(i, "failed")),
            InstanceState::Releasing if i.reason.as_deref().is_some_and(|r| !r.is_empty()) => {
                self.moved = true;
                Verdict::Failed(format!(
                    "the release stalled: {} (the provider must repair the node and inspect it again)",
                    reason_or(i, "")
                ))
            }
            InstanceState::Pending
            | InstanceState::Provisioning
            | InstanceState::Ready
            | InstanceState::Releasing => {
                self.moved = true;
                Verdict::Waiting
            }
        }
    }
}

/// One line per change: `job-0: provisioning (power_cycle 1/3)`, with the
/// reason when there is one.
fn progress_line(i: &Instance) -> String {
    let mut s = format!("{}: {}", i.name, i.state.as_str());
    if let Some(p) = &i.progress {
        s.push_str(&format!(" ({})", output::step(p)));
    }
    if let Some(r) = i.reason.as_deref().filter(|r| !r.is_empty()) {
        s.push_str(&format!(": {r}"));
    }
    s.chars().map(|c| if c.is_control() { ' ' } else { c }).collect()
}

/// What a wait ended with: the instances as last seen (the API's JSON).
struct Waited {
    items: Vec<Value>,
    failures: Vec<String>,
    /// Names still not there when the time ran out.
    waiting: Vec<String>,
}

impl Waited {
    fn result(self, goal: &str, timeout: u64) -> Result<(), CliError> {
        let mut problems = self.failures;
        if !self.waiting.is_empty() {
            problems.push(format!(
                "timed out after {}: {} not {goal} yet",
                humantime::format_duration(Duration::from_secs(timeout)),
                self.waiting.join(", ")
            ));
        }
        match problems.len() {
            0 => Ok(()),
            1 => Err(CliError::Other(problems.remove(0))),
            _ => Err(CliError::Other(problems.join("\n  "))),
        }
    }
}

/// Polls the instances until none is [`Verdict::Waiting`] or the time runs
/// out, printing each change of state, step or reason to stderr. Answers
/// that may pass (5xx, 429, no answer) are retried until then.
fn wait_for(
    c: &Client,
    at: &InProject,
    first: Vec<Value>,
    timeout: Duration,
    mut verdict: impl FnMut(&Instance) -> Verdict,
) -> Result<Waited, CliError> {
    let deadline = Instant::now() + timeout;
    let mut ids = Vec::with_capacity(first.len());
    for v in &first {
        ids.push(parse::<Instance>(v)?.id);
    }
    let mut shown: HashMap<String, String> = HashMap::new();
    let mut last_error: Option<String> = None;
    let mut items = first;
    loop {
        let mut failures = Vec::new();
        let mut waiting = Vec::new();
        for v in &items {
            let i: Instance = parse(v)?;
            let line = progress_line(&i);
            if shown.get(&i.id) != Some(&line) {
                eprintln!("{line}");
                shown.insert(i.id.clone(), line);
            }
            match verdict(&i) {
                Verdict::Waiting => waiting.push(i.name.clone()),
                Verdict::Done => {}
                Verdict::Failed(why) => failures.push(format!("{}: {why}", i.name)),
            }
        }
        let now = Instant::now();
        if waiting.is_empty() || now >= deadline {
            return Ok(Waited { items, failures, waiting });
        }
        std::thread::sleep(POLL.min(deadline - now));
        match poll(c, at, &ids) {
            Ok(v) => {
                items = v;
                last_error = None;
            }
            Err(e) if is_transient(&e) => {
                let msg = e.to_string();
                if last_error.as_deref() != Some(msg.as_str()) {
                    eprintln!("(still waiting: {msg})");
                    last_error = Some(msg);
                }
            }
            Err(e) => return Err(e),
        }
    }
}

fn is_transient(e: &CliError) -> bool {
    matches!(e.exit_code(), output::EXIT_UNAVAILABLE | output::EXIT_RATE_LIMITED)
}

/// The instances by id (by name they are not found once released): one
/// GET for one, else the project's list.
fn poll(c: &Client, at: &InProject, ids: &[String]) -> Result<Vec<Value>, CliError> {
    if let [id] = ids {
        return Ok(vec![c.get(&instance_path(at, id), &[])?]);
    }
    let v = c.get(&instances_path(at), &[])?;
    let all: List<Value> = parse(&v)?;
    ids.iter()
        .map(|id| {
            all.items.iter().find(|x| x["id"] == id.as_str()).cloned().ok_or_else(|| {
                CliError::Other(format!("instance {id} is no longer listed by the server"))
            })
        })
        .collect()
}

// Sanitization records.

/// `--public-key`: 64 hex digits, compared case-insensitively.
fn parse_public_key(s: &str) -> Result<String, String> {
    if s.len() == 64 && s.chars().all(|c| c.is_ascii_hexdigit()) {
        Ok(s.to_ascii_lowercase())
    } else {
        Err("expected an ed25519 public key: 64 hex digits".into())
    }
}

/// Checks one record: signed by `pinned` (when given), the signature of
/// `signed_json` verifies with the record's key, and `body` is what was
/// signed. Returns the signed body.
pub(super) fn verify_record(
    r: &SanitizationRecord,
    pinned: Option<&str>,
) -> Result<SanitizationBody, String> {
    if let Some(k) = pinned {
        if !k.eq_ignore_ascii_case(&r.public_key) {
            return Err(format!("it is signed with key {}, not the expected {k}", r.public_key));
        }
    }
    if !neocloud_server::signing::verify(&r.public_key, r.signed_json.as_bytes(), &r.signature) {
        return Err(format!(
            "the signature does not verify with key {}: the record was altered or not signed with that key",
            r.public_key
        ));
    }
    let body: SanitizationBody = serde_json::from_str(&r.signed_json)
        .map_err(|e| format!("what was signed is not a sanitization record: {e}"))?;
    if body != r.body {
        return Err("the record shown differs from what was signed".into());
    }
    Ok(body)
}

/// Prints a list of records (a row per check, or the API's JSON). With
/// `--verify`, every record must verify and satisfy `about` (it is about
/// the instance or node asked for) before anything is printed.
pub(super) fn print_records(
    f: Format,
    v: &Value,
    flags: &VerifyFlags,
    about: impl Fn(&SanitizationBody) -> Result<(), String>,
) -> Result<(), CliError> {
    let list: List<SanitizationRecord> = parse(v)?;
    check_records(&list.items, flags, about)?;
    match f {
        Format::Json => emit_json(v),
        Format::Table => {
            let mut out = records_table(&list.items);
            if flags.enabled() {
                for r in &list.items {
                    out.push_str(&format!(
                        "verified: record {} signed by {}\n",
                        r.id, r.public_key
                    ));
                }
            }
            emit(&out);
        }
    }
    Ok(())
}

/// With `--verify`: every record verifies and is about what was asked for.
fn check_records(
    records: &[SanitizationRecord],
    flags: &VerifyFlags,
    about: impl Fn(&SanitizationBody) -> Result<(), String>,
) -> Result<(), CliError> {
    if flags.enabled() {
        if records.is_empty() {
            return Err(CliError::Other(
                "no sanitization record to verify yet: one is signed once the released node has been sanitized"
                    .into(),
            ));
        }
        let problems: Vec<String> = records
            .iter()
            .filter_map(|r| {
                verify_record(r, flags.public_key.as_deref())
                    .and_then(|b| about(&b))
                    .err()
                    .map(|e| format!("record {}: {e}", r.id))
            })
            .collect();
        if !problems.is_empty() {
            return Err(CliError::Verify(format!(
                "{} of {} sanitization record(s) do not verify:\n  {}",
                problems.len(),
                records.len(),
                problems.join("\n  ")
            )));
        }
    }
    Ok(())
}

/// One row per check of each record.
fn records_table(records: &[SanitizationRecord]) -> String {
    let mut t = Table::new(&["RECORD", "FINISHED", "COMPLETE", "CHECK", "OK", "ITEMS"]);
    let yes_no = |b: bool| if b { "yes" } else { "no" }.to_string();
    for r in records {
        let b = &r.body;
        let head = || vec![r.id.clone(), output::short_time(&b.finished_at), yes_no(b.complete)];
        if b.checks.is_empty() {
            t.row([head(), vec!["-".into(), "-".into(), "-".into()]].concat());
        }
        for c in &b.checks {
            t.row([head(), vec![c.name.clone(), yes_no(c.ok), items_cell(&c.items)]].concat());
        }
    }
    t.render()
}

/// `3 ok (nvme-crypto-erase)`, or the first failure:
/// `1 of 3 failed: /dev/nvme1n1 timeout`.
fn items_cell(items: &[StepItem]) -> String {
    if items.is_empty() {
        return "-".into();
    }
    let failed: Vec<&StepItem> = items.iter().filter(|i| !i.ok).collect();
    match failed.first() {
        None => {
            let mut methods: Vec<&str> = Vec::new();
            for i in items {
                if !i.method.is_empty() && !methods.contains(&i.method.as_str()) {
                    methods.push(&i.method);
                }
            }
            match methods.is_empty() {
                true => format!("{} ok", items.len()),
                false => format!("{} ok ({})", items.len(), methods.join(",")),
            }
        }
        Some(first) => {
            format!("{} of {} failed: {} {}", failed.len(), items.len(), first.target, first.detail)
                .trim_end()
                .to_string()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use neocloud_server::signing::Signer;
    use neocloud_types::{Progress, SanitizationCheck};

    fn parses(args: &[&str]) -> bool {
        let mut all = vec!["neocloud"];
        all.extend_from_slice(args);
        <crate::Cli as clap::CommandFactory>::command().try_get_matches_from(all).is_ok()
    }

    #[test]
    fn arguments() {
        fn with_at<'a>(args: &[&'a str]) -> Vec<&'a str> {
            let mut v = args.to_vec();
            v.extend_from_slice(&["--tenant", "t", "--project", "p"]);
            v
        }
        assert!(parses(&["image", "list", "-o", "json"]));
        assert!(parses(&[
            "image",
            "create",
            "ubuntu",
            "--kernel",
            "http://x/k",
            "--initrd",
            "http://x/i",
            "--root",
            "http://x/r",
            "--root-sha256",
            "ab",
            "--cmdline",
            "-- console=ttyS0",
            "--purpose",
            "sanitizer",
        ]));
        // A checksum needs the image it checks.
        assert!(!parses(&[
            "image",
            "create",
            "u",
            "--kernel",
            "k",
            "--initrd",
            "i",
            "--root-sha256",
            "ab"
        ]));
        assert!(!parses(&["image", "create", "u", "--kernel", "k"]));
        assert!(!parses(&[
            "image",
            "create",
            "u",
            "--kernel",
            "k",
            "--initrd",
            "i",
            "--purpose",
            "vm"
        ]));
        assert!(parses(&with_at(&[
            "instance",
            "create",
            "job",
            "--type",
            "bm",
            "--image",
            "ubuntu",
            "--count",
            "2",
            "--ssh-key",
            "ssh-ed25519 AAAA a@b",
            "--ssh-key",
            "ssh-rsa AAAA c@d",
            "--ssh-key-file",
            "/k.pub",
            "--scope",
            "su",
            "--within",
            "rack:r1",
            "--wait",
            "--timeout",
            "10m",
        ])));
        assert!(parses(&with_at(&[
            "instance",
            "create",
            "j",
            "--instance-type",
            "bm",
            "--image",
            "u"
        ])));
        // --timeout only with --wait; no image, no instance.
        assert!(!parses(&with_at(&[
            "instance",
            "create",
            "j",
            "--type",
            "bm",
            "--image",
            "u",
            "--timeout",
            "1m"
        ])));
        assert!(!parses(&with_at(&["instance", "create", "j", "--type", "bm"])));
        assert!(!parses(&["instance", "list", "--tenant", "t"]));
        assert!(parses(&with_at(&["instance", "release", "j", "--wait", "--timeout", "5s"])));
        assert!(!parses(&with_at(&["instance", "release", "j", "--timeout", "5s"])));
        assert!(parses(&with_at(&["instance", "sanitization", "j", "--verify"])));
        let key = "ab".repeat(32);
        assert!(parses(&with_at(&["instance", "sanitization", "j", "--public-key", &key])));
        assert!(!parses(&with_at(&["instance", "sanitization", "j", "--public-key", "abc"])));
        assert!(parses(&["node", "sanitizations", "n1", "--verify", "-o", "json"]));
    }

    const KEY: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBm9Tq0example me@laptop";

    #[test]
    fn ssh_key_files() {
        let dir = std::env::temp_dir().join(format!("neocloud-cli-keys-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("keys.pub");
        std::fs::write(&p, format!("# mine\n{KEY}\n\n  ssh-rsa AAAAB3 other  \n")).unwrap();
        assert_eq!(
            read_ssh_keys(&p).unwrap(),
            vec![KEY.to_string(), "ssh-rsa AAAAB3 other".into()]
        );
        std::fs::write(&p, "# nothing\n\n").unwrap();
        assert!(matches!(read_ssh_keys(&p), Err(CliError::Usage(_))));
        std::fs::write(&p, "-----BEGIN OPENSSH PRIVATE KEY-----\nb3Bl\n").unwrap();
        let e = read_ssh_keys(&p).unwrap_err();
        assert!(e.to_string().contains("private key"), "{e}");
        assert!(matches!(read_ssh_keys(&dir.join("missing")), Err(CliError::Usage(_))));
        let _ = std::fs::remove_dir_all(&dir);
    }

    fn instance(state: InstanceState, reason: Option<&str>) -> Instance {
        Instance {
            id: "i-1".into(),
            name: "job-0".into(),
            tenant_id: "t".into(),
            project_id: "p".into(),
            instance_type_id: "bm".into(),
            image_id: "img".into(),
            allocation_id: "a".into(),
            node_id: "n".into(),
            state,
            release_requested: false,
            reason: reason.map(str::to_string),
            progress: None,
            ssh_keys: vec![],
            generation: 1,
            created_at: "2026-01-02T03:04:05.000001Z".into(),
            updated_at: "2026-01-02T03:04:05.000001Z".into(),
        }
    }

    #[test]
    fn progress_lines_and_table() {
        let mut i = instance(InstanceState::Provisioning, None);
        i.progress = Some(Progress {
            step: "power_cycle".into(),
            done: 1,
            total: 3,
            since: "2026-01-02T03:04:05Z".into(),
        });
        assert_eq!(progress_line(&i), "job-0: provisioning (power_cycle 1/3)");
        let f = instance(InstanceState::Failed, Some("no BMC\nrecorded"));
        assert_eq!(progress_line(&f), "job-0: failed: no BMC recorded");
        let mut t = Table::new(<Instance as output::Row>::HEADER);
        t.row(output::Row::cells(&i));
        let out = t.render();
        assert!(
            out.starts_with("NAME   ID   STATE         STEP             NODE  REASON  AGE"),
            "{out}"
        );
        assert!(out.contains("power_cycle 1/3"), "{out}");
    }

    #[test]
    fn verdicts() {
        use InstanceState::*;
        assert_eq!(created_verdict(&instance(Pending, None)), Verdict::Waiting);
        assert_eq!(created_verdict(&instance(Provisioning, None)), Verdict::Waiting);
        assert_eq!(created_verdict(&instance(Ready, None)), Verdict::Done);
        assert_eq!(
            created_verdict(&instance(Failed, Some("no BMC"))),
            Verdict::Failed("no BMC".into())
        );
        assert!(matches!(created_verdict(&instance(Released, None)), Verdict::Failed(_)));

        // Released from ready: releasing, then released.
        let mut w = ReleaseWatch::new(&instance(Ready, None));
        assert_eq!(w.verdict(&instance(Releasing, None)), Verdict::Waiting);
        assert_eq!(w.verdict(&instance(Released, None)), Verdict::Done);
        // Released from failed: `failed` until the controller starts it.
        let failed = instance(Failed, Some("no BMC"));
        let mut w = ReleaseWatch::new(&failed);
        assert_eq!(w.verdict(&failed), Verdict::Waiting);
        assert_eq!(w.verdict(&instance(Releasing, None)), Verdict::Waiting);
        assert!(matches!(w.verdict(&failed), Verdict::Failed(_)));
        // A release that failed: `releasing` with a reason.
        let mut w = ReleaseWatch::new(&instance(Ready, None));
        let Verdict::Failed(why) = w.verdict(&instance(Releasing, Some("BMC gone"))) else {
            panic!("a stalled release ends the wait")
        };
        assert!(why.contains("stalled: BMC gone"), "{why}");
    }

    #[test]
    fn waits_report_failures_and_timeouts() {
        let ok = Waited { items: vec![], failures: vec![], waiting: vec![] };
        assert!(ok.result("ready", 60).is_ok());
        let w = Waited {
            items: vec![],
            failures: vec!["job-0: no BMC".into()],
            waiting: vec!["job-1".into()],
        };
        let e = w.result("ready", 90).unwrap_err();
        assert_eq!(e.exit_code(), output::EXIT_OTHER);
        let msg = e.to_string();
        assert!(msg.contains("job-0: no BMC"), "{msg}");
        assert!(msg.contains("timed out after 1m 30s: job-1 not ready yet"), "{msg}");
    }

    fn item(target: &str, method: &str, ok: bool, detail: &str) -> StepItem {
        StepItem { target: target.into(), method: method.into(), ok, detail: detail.into() }
    }

    /// A record as the lifecycle controller signs it.
    fn signed(signer: &Signer, node: &str, instance: &str) -> SanitizationRecord {
        let body = SanitizationBody {
            node_id: node.into(),
            tenant_id: "t".into(),
            instance_id: instance.into(),
            complete: true,
            checks: vec![
                SanitizationCheck {
                    name: "wipe_disks".into(),
                    ok: true,
                    items: vec![
                        item("/dev/nvme0n1", "nvme-crypto-erase", true, ""),
                        item("/dev/nvme1n1", "nvme-crypto-erase", true, ""),
                    ],
                },
                SanitizationCheck { name: "power_off".into(), ok: true, items: vec![] },
            ],
            started_at: "2026-01-02T03:04:05.000001Z".into(),
            finished_at: "2026-01-02T03:14:05.000001Z".into(),
        };
        let signed_json = serde_json::to_string(&body).unwrap();
        SanitizationRecord {
            id: "rec-1".into(),
            signature: signer.sign(signed_json.as_bytes()),
            public_key: signer.public_key(),
            body,
            signed_json,
        }
    }

    #[test]
    fn verifies_signed_records() {
        let signer = Signer::from_seed([42; 32]);
        let rec = signed(&signer, "node-1", "inst-1");
        let body = verify_record(&rec, None).expect("a valid record verifies");
        assert_eq!(body.instance_id, "inst-1");
        // Pinned to its own key, in either case.
        assert!(verify_record(&rec, Some(&signer.public_key())).is_ok());
        assert!(verify_record(&rec, Some(&signer.public_key().to_ascii_uppercase())).is_ok());

        // What was signed, altered.
        let mut tampered = rec.clone();
        tampered.signed_json =
            tampered.signed_json.replace("\"complete\":true", "\"complete\":false");
        assert_ne!(tampered.signed_json, rec.signed_json);
        let e = verify_record(&tampered, None).unwrap_err();
        assert!(e.contains("does not verify"), "{e}");
        // The record shown differs from what was signed.
        let mut shown = rec.clone();
        shown.body.checks[0].ok = false;
        assert!(verify_record(&shown, None).unwrap_err().contains("differs"));
        // Re-signed by another key: valid, but not the key pinned.
        let other = Signer::from_seed([7; 32]);
        let forged = signed(&other, "node-1", "inst-1");
        assert!(verify_record(&forged, None).is_ok());
        let e = verify_record(&forged, Some(&signer.public_key())).unwrap_err();
        assert!(e.contains("not the expected"), "{e}");
        // Another key claimed for this signature.
        let mut swapped = rec.clone();
        swapped.public_key = other.public_key();
        assert!(verify_record(&swapped, None).is_err());
        // Garbage.
        let mut bad = rec;
        bad.signature = "zz".into();
        assert!(verify_record(&bad, None).is_err());
    }

    #[test]
    fn every_record_is_checked() {
        let signer = Signer::from_seed([42; 32]);
        let good = signed(&signer, "node-1", "inst-1");
        let mut bad = signed(&signer, "node-1", "inst-1");
        bad.id = "rec-2".into();
        bad.signature = Signer::from_seed([7; 32]).sign(bad.signed_json.as_bytes());
        let list = |r: Vec<SanitizationRecord>| r;
        let verify = VerifyFlags { verify: true, public_key: None };
        let anything = |_: &SanitizationBody| Ok(());
        assert!(check_records(&list(vec![good.clone()]), &verify, anything).is_ok());
        let e = check_records(&list(vec![good.clone(), bad]), &verify, anything).unwrap_err();
        assert_eq!(e.exit_code(), output::EXIT_VERIFY_FAILED);
        assert!(e.to_string().starts_with("1 of 2 sanitization record(s) do not verify"), "{e}");
        assert!(e.to_string().contains("record rec-2: the signature does not verify"), "{e}");
        // About another instance.
        let e = check_records(&list(vec![good.clone()]), &verify, |b| {
            Err(format!("it is about instance {}, not inst-9", b.instance_id))
        })
        .unwrap_err();
        assert!(e.to_string().contains("about instance inst-1, not inst-9"), "{e}");
        // Pinned to another key.
        let pinned = VerifyFlags { verify: false, public_key: Some("ab".repeat(32)) };
        assert!(pinned.enabled());
        let e = check_records(&list(vec![good]), &pinned, anything).unwrap_err();
        assert_eq!(e.exit_code(), output::EXIT_VERIFY_FAILED);
        // Nothing to verify is not a pass.
        let e = check_records(&list(vec![]), &verify, anything).unwrap_err();
        assert_eq!(e.exit_code(), output::EXIT_OTHER);
        // Without --verify, nothing is checked.
        assert!(check_records(&list(vec![]), &VerifyFlags::default(), anything).is_ok());
    }

    #[test]
    fn record_rows() {
        let signer = Signer::from_seed([1; 32]);
        let mut rec = signed(&signer, "node-1", "inst-1");
        let out = records_table(std::slice::from_ref(&rec));
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 3, "{out}");
        assert!(lines[0].starts_with("RECORD  FINISHED"), "{out}");
        assert!(lines[1].contains("2026-01-02T03:14:05Z"), "{out}");
        assert!(lines[1].contains("wipe_disks  yes  2 ok (nvme-crypto-erase)"), "{out}");
        assert!(lines[2].trim_end().ends_with("power_off   yes  -"), "{out}");
        rec.body.checks[0].items[1] = item("/dev/nvme1n1", "blkdiscard", false, "I/O error");
        assert_eq!(items_cell(&rec.body.checks[0].items), "1 of 2 failed: /dev/nvme1n1 I/O error");
        rec.body.checks.clear();
        assert_eq!(records_table(&[rec]).lines().count(), 2);
        assert_eq!(records_table(&[]).lines().count(), 1);
    }
}
