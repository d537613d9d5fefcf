//! The FRR + Linux driver: switches whose data plane is the Linux kernel
//! (bridges, VXLAN devices, network namespaces as VRFs, nftables) and whose
//! control plane is FRR (zebra + bgpd), configured as
//! `neocloud_fabric::render::{linux, frr}` render them. The namespace lab's
//! switches are such switches; so are whitebox switches running a Linux
//! NOS with FRR.
//!
//! The driver reaches a switch through a [`Transport`] (SSH, or `nsenter`
//! into the namespaces of a local process) and runs everything as argument
//! vectors; nothing of the switch's is parsed but `ip -j`, `nft -j`, the
//! FRR files it wrote and its own record.
//!
//! Apply, in order: read the record (`<state_dir>/applied.json`) and refuse
//! an older generation than it holds; run the netdev/nftables steps
//! (`render::converge_frr`'s, made re-runnable: see `steps`) as one batch,
//! one round trip whatever their number; if FRR's files on the switch
//! differ from the rendered ones, write them and reload FRR (frr-reload.py
//! or a configured command); record the generation last. An
//! apply that stops anywhere is completed by running it again: removals
//! count an absent object as removed, rebuilt objects are first taken down,
//! and a reload that may not have happened is marked in the record and
//! done by the next apply. Applying the same `actual`, `desired` and
//! generation again runs nothing.
//!
//! Check: the record's generation, and per object of `expected` where the
//! switch differs (`drift`): its devices, addresses, bridge ports and
//! nftables chains as `ip -j -d addr show` (in the switch's namespace and
//! each VRF namespace) and `nft -j list table inet neocloud` show them, and
//! FRR's files against the rendered ones. To repair, apply from
//! [`observed`] (the expected state without the drifted objects) to the
//! expected state: the drifted objects, and what is built on them, are
//! rebuilt.
//!
//! Reloading: `frr-reload.py` is the production path (FRR computes and
//! applies its own difference, nothing restarts). With FRR's namespace VRF
//! backend (`zebra -n`, as in the lab) it is not usable on FRR 8.4: zebra
//! shows each namespace VRF with a `netns /run/netns/X` line that the
//! rendered configuration does not have, and frr-reload.py removes it,
//! which deactivates the VRF. Such switches restart their daemons on new
//! files (`Reload::Command`).
//!
//! One writer per switch: the record refuses plans older than the last
//! completed apply, but does not lock the switch; two applies running at
//! once on one switch are the caller's to prevent (the control plane
//! applies to a switch from one task at a time).

mod drift;
mod observe;
mod steps;
#[cfg(test)]
mod testing;
mod transport;

pub use transport::{shell_line, shell_quote, Output, Runner, Transport, TransportRunner};

use crate::{Applied, Apply, Checked, Drift, DriverError, Result, SwitchDriver};
use neocloud_fabric::render::frr::{self, FrrFiles};
use neocloud_fabric::render::linux::{Command, NFT_TABLE};
use neocloud_fabric::{SwitchConfig, SwitchOs};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::time::Duration;

/// How to reach and configure one FRR/Linux switch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FrrLinuxConfig {
    pub transport: Transport,
    /// Where FRR's configuration files live on the switch.
    #[serde(default = "default_config_dir")]
    pub config_dir: String,
    #[serde(default)]
    pub files: FrrFileLayout,
    #[serde(default)]
    pub reload: Reload,
    /// `user:group` given the FRR files (FRR reads them as `frr`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_owner: Option<String>,
    /// Where the driver keeps its record (`applied.json`) on the switch.
    #[serde(default = "default_state_dir")]
    pub state_dir: String,
    /// The longest one command may run (a reload of a large configuration
    /// takes a while).
    #[serde(default = "default_timeout_s")]
    pub command_timeout_s: u64,
}

fn default_config_dir() -> String {
    "/etc/frr".into()
}

fn default_state_dir() -> String {
    "/var/lib/neocloud".into()
}

fn default_timeout_s() -> u64 {
    120
}

fn default_frr_reload() -> String {
    "/usr/lib/frr/frr-reload.py".into()
}

impl FrrLinuxConfig {
    /// The defaults of a production switch: integrated `/etc/frr/frr.conf`
    /// loaded with `frr-reload.py`, the record in `/var/lib/neocloud`.
    pub fn new(transport: Transport) -> FrrLinuxConfig {
        FrrLinuxConfig {
            transport,
            config_dir: default_config_dir(),
            files: FrrFileLayout::default(),
            reload: Reload::default(),
            file_owner: None,
            state_dir: default_state_dir(),
            command_timeout_s: default_timeout_s(),
        }
    }
}

/// Which FRR files the driver writes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FrrFileLayout {
    /// One `frr.conf` (FRR's integrated configuration; `frr-reload.py`
    /// loads it).
    #[default]
    Integrated,
    /// `zebra.conf` and `bgpd.conf`, for daemons started on their own files.
    PerDaemon,
}

/// How FRR takes up new files.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "method", rename_all = "snake_case", deny_unknown_fields)]
pub enum Reload {
    /// `frr-reload.py --reload`: compares the file with the running
    /// configuration and applies the difference through vtysh, without
    /// restarting anything. With per-daemon files, once per daemon
    /// (`--daemon`). Needs FRR's python tools on the switch.
    FrrReload {
        #[serde(default = "default_frr_reload")]
        script: String,
        /// Where vtysh is (`--bindir`; the script's default: `/usr/bin`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        bindir: Option<String>,
        /// The daemons' vty socket directory (`--vty_socket`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        vty_socket: Option<String>,
        /// A writable directory for the script's temporary file (`--rundir`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        rundir: Option<String>,
    },
    /// A command run on the switch after the files are written
    /// (`systemctl restart frr`, or a script restarting the daemons).
    Command { argv: Vec<String> },
}

impl Default for Reload {
    fn default() -> Reload {
        Reload::FrrReload {
            script: default_frr_reload(),
            bindir: None,
            vty_socket: None,
            rundir: None,
        }
    }
}

/// What the driver keeps on the switch.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Record {
    /// The generation of the last completed apply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    generation: Option<u64>,
    /// A digest of that apply's (`actual`, `desired`): the same apply
    /// again is a no-op.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    applied: Option<String>,
    /// Set while new FRR files are written and loaded: still set, an apply
    /// stopped there, and the next one loads whatever the files say.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    frr_reload_pending: bool,
}

/// The FRR/Linux driver for one switch.
pub struct FrrLinux {
    switch: String,
    config: FrrLinuxConfig,
    runner: Box<dyn Runner>,
}

impl std::fmt::Debug for FrrLinux {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FrrLinux")
            .field("switch", &self.switch)
            .field("config", &self.config)
            .finish()
    }
}

/// The switch as far as a check can tell: `expected` without the objects
/// the check found drifted. Applying from it to `expected` rebuilds them.
pub fn observed(expected: &SwitchConfig, checked: &Checked) -> SwitchConfig {
    let mut out = expected.clone();
    for d in &checked.drift {
        out.objects.remove(&d.object);
    }
    out
}

fn fabric_error(e: neocloud_fabric::Error) -> DriverError {
    match e {
        neocloud_fabric::Error::Unsupported { .. } => DriverError::Unsupported(e.to_string()),
        _ => DriverError::Failed(e.to_string()),
    }
}

fn digest(actual: &SwitchConfig, desired: &SwitchConfig) -> String {
    let mut h = Sha256::new();
    // Serializing these types cannot fail (string keys, no floats).
    h.update(serde_json::to_vec(&(actual, desired)).unwrap_or_default());
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

fn cmd(args: &[&str]) -> Command {
    args.iter().map(|s| s.to_string()).collect()
}

/// Prints `present` and the file, or `absent`.
const READ_FILE: &str =
    r#"if [ -e "$1" ]; then echo present; exec cat -- "$1"; else echo absent; fi"#;

/// Writes standard input to `$1` atomically (a sibling file renamed over
/// it), owned by `$2` when given.
const WRITE_FILE: &str = r#"set -e; mkdir -p -- "$(dirname -- "$1")"; cat > "$1.new"; if [ -n "$2" ]; then chown -- "$2" "$1.new"; fi; mv -f -- "$1.new" "$1""#;

impl FrrLinux {
    /// The driver for `switch` (its name: FRR's hostname), reached and
    /// configured as `config` says.
    pub fn new(switch: impl Into<String>, config: FrrLinuxConfig) -> FrrLinux {
        let runner = TransportRunner {
            transport: config.transport.clone(),
            timeout: Duration::from_secs(config.command_timeout_s.max(1)),
        };
        FrrLinux::with_runner(switch, config, Box::new(runner))
    }

    /// The same, running its commands through `runner` instead of the
    /// config's transport (a wrapper around a [`TransportRunner`] that
    /// adds logging or fault injection, or a test double).
    pub fn with_runner(
        switch: impl Into<String>,
        config: FrrLinuxConfig,
        runner: Box<dyn Runner>,
    ) -> FrrLinux {
        FrrLinux { switch: switch.into(), config, runner }
    }

    pub fn switch(&self) -> &str {
        &self.switch
    }

    pub fn config(&self) -> &FrrLinuxConfig {
        &self.config
    }

    /// The driver's record on the switch.
    pub fn state_file(&self) -> String {
        format!("{}/applied.json", self.config.state_dir.trim_end_matches('/'))
    }

    /// The files written for `files`, as (path on the switch, content).
    pub fn frr_files(&self, files: &FrrFiles) -> Vec<(String, String)> {
        let dir = self.config.config_dir.trim_end_matches('/');
        match self.config.files {
            FrrFileLayout::Integrated => {
                vec![(format!("{dir}/frr.conf"), files.integrated.clone())]
            }
            FrrFileLayout::PerDaemon => vec![
                (format!("{dir}/zebra.conf"), files.zebra.clone()),
                (format!("{dir}/bgpd.conf"), files.bgpd.clone()),
            ],
        }
    }

    /// The commands that make FRR take up the files.
    pub fn reload_commands(&self) -> Vec<Command> {
        let dir = self.config.config_dir.trim_end_matches('/');
        match &self.config.reload {
            Reload::Command { argv } => vec![argv.clone()],
            Reload::FrrReload { script, bindir, vty_socket, rundir } => {
                let one = |daemon: Option<&str>, file: String| {
                    let mut c = cmd(&[script, "--reload"]);
                    if let Some(d) = daemon {
                        c.extend(cmd(&["--daemon", d]));
                    }
                    c.extend(cmd(&["--confdir", dir]));
                    for (flag, v) in
                        [("--bindir", bindir), ("--vty_socket", vty_socket), ("--rundir", rundir)]
                    {
                        if let Some(v) = v {
                            c.extend(cmd(&[flag, v]));
                        }
                    }
                    c.push(file);
                    c
                };
                match self.config.files {
                    FrrFileLayout::Integrated => vec![one(None, format!("{dir}/frr.conf"))],
                    FrrFileLayout::PerDaemon => ["zebra", "bgpd"]
                        .iter()
                        .map(|d| one(Some(d), format!("{dir}/{d}.conf")))
                        .collect(),
                }
            }
        }
    }

    fn failed(&self, argv: &[String], out: &Output) -> DriverError {
        let said = match (out.stderr.trim(), out.stdout.trim()) {
            ("", "") => String::new(),
            ("", o) => format!(": {o}"),
            (e, _) => format!(": {e}"),
        };
        DriverError::Failed(format!(
            "{}: `{}` exited with status {}{said}",
            self.switch,
            shell_line(argv),
            out.status
        ))
    }

    /// Runs a command that must succeed; its standard output.
    fn must(&self, argv: &[String], stdin: Option<&[u8]>) -> Result<String> {
        let out = self.runner.run(argv, stdin)?;
        match out.success() {
            true => Ok(out.stdout),
            false => Err(self.failed(argv, &out)),
        }
    }

    /// Runs the netdev steps on the switch in one batch (one round trip):
    /// in order, a failure that means the work is already done (see
    /// `steps::tolerated`) counting as success, stopping at the first
    /// other failure, which is reported as that step's.
    fn run_steps(&self, commands: &[Command]) -> Result<()> {
        if commands.is_empty() {
            return Ok(());
        }
        let script = steps::batch_script(commands);
        let out = self.runner.run(&cmd(&["sh", "-s"]), Some(script.as_bytes()))?;
        if out.success() {
            return Ok(());
        }
        match steps::batch_failure(&out.stdout, &out.stderr) {
            Some((i, status, stderr)) if i < commands.len() => {
                Err(self.failed(&commands[i], &Output { status, stdout: String::new(), stderr }))
            }
            _ => Err(DriverError::Failed(format!(
                "{}: the batch of {} steps failed with status {}: {}",
                self.switch,
                commands.len(),
                out.status,
                out.stderr.trim()
            ))),
        }
    }

    fn read_file(&self, path: &str) -> Result<Option<String>> {
        let out = self.must(&cmd(&["sh", "-c", READ_FILE, "sh", path]), None)?;
        match out.split_once('\n') {
            Some(("present", text)) => Ok(Some(text.to_string())),
            Some(("absent", _)) => Ok(None),
            _ => Err(DriverError::Failed(format!(
                "{}: reading {path}: unexpected answer {out:?}",
                self.switch
            ))),
        }
    }

    fn write_file(&self, path: &str, text: &str, owner: Option<&str>) -> Result<()> {
        let argv = cmd(&["sh", "-c", WRITE_FILE, "sh", path, owner.unwrap_or("")]);
        self.must(&argv, Some(text.as_bytes())).map(|_| ())
    }

    fn read_record(&self) -> Result<Record> {
        let path = self.state_file();
        match self.read_file(&path)? {
            None => Ok(Record::default()),
            Some(text) => serde_json::from_str(&text).map_err(|e| {
                DriverError::Failed(format!(
                    "{}: {path}: not the driver's record: {e}",
                    self.switch
                ))
            }),
        }
    }

    fn write_record(&self, r: &Record) -> Result<()> {
        let text = serde_json::to_string_pretty(r).unwrap_or_default() + "\n";
        self.write_file(&self.state_file(), &text, None)
    }

    fn check_os(&self, cfg: &SwitchConfig) -> Result<()> {
        match cfg.os {
            SwitchOs::Frr => Ok(()),
            other => Err(DriverError::Unsupported(format!(
                "{}: the FRR/Linux driver cannot configure a {} switch",
                self.switch,
                other.as_str()
            ))),
        }
    }

    fn parsed<T>(&self, argv: &[String], r: std::result::Result<T, String>) -> Result<T> {
        r.map_err(|e| DriverError::Failed(format!("{}: `{}`: {e}", self.switch, shell_line(argv))))
    }

    /// Reads the switch's Linux side for the objects of `expected`.
    fn observe(&self, expected: &SwitchConfig) -> Result<drift::Observed> {
        let argv = cmd(&["ip", "-j", "-d", "addr", "show"]);
        let underlay = self.parsed(&argv, observe::parse_links(&self.must(&argv, None)?))?;
        let mut vrfs = BTreeMap::new();
        for ns in drift::vrf_namespaces(expected) {
            let argv = cmd(&["ip", "-n", &ns, "-j", "-d", "addr", "show"]);
            let out = self.runner.run(&argv, None)?;
            if !out.success() {
                if out.stderr.contains("Cannot open network namespace")
                    && out.stderr.contains("No such file")
                {
                    vrfs.insert(ns, None);
                    continue;
                }
                return Err(self.failed(&argv, &out));
            }
            let links = self.parsed(&argv, observe::parse_links(&out.stdout))?;
            let nft = self.nft_table(&cmd(&[
                "ip", "netns", "exec", &ns, "nft", "-j", "list", "table", "inet", NFT_TABLE,
            ]))?;
            vrfs.insert(ns, Some(drift::VrfNs { links, nft }));
        }
        let underlay_nft = match drift::needs_underlay_nft(&self.switch, expected) {
            false => None,
            true => self.nft_table(&cmd(&["nft", "-j", "list", "table", "inet", NFT_TABLE]))?,
        };
        Ok(drift::Observed { underlay, underlay_nft, vrfs })
    }

    /// The chains of an nftables table (`None`: no such table).
    fn nft_table(&self, argv: &[String]) -> Result<Option<BTreeMap<String, observe::Chain>>> {
        let out = self.runner.run(argv, None)?;
        match (out.success(), out.stderr.contains("No such file or directory")) {
            (true, _) => Ok(Some(self.parsed(argv, observe::parse_nft_table(&out.stdout))?)),
            (false, true) => Ok(None),
            (false, false) => Err(self.failed(argv, &out)),
        }
    }
}

/// What an apply will do, before it does it.
struct Plan {
    commands: Vec<Command>,
    /// The FRR files to write, when they differ from the switch's (or a
    /// reload is pending).
    frr: Option<Vec<(String, String)>>,
    /// Whether to write the record (not when nothing changes).
    record: bool,
}

impl FrrLinux {
    fn plan(&self, apply: &Apply<'_>, record: &Record) -> Result<Plan> {
        let commands =
            steps::netdev_steps(&self.switch, apply.actual, apply.desired).map_err(fabric_error)?;
        let files = self.frr_files(&frr::render(&self.switch, apply.desired));
        let mut differ = record.frr_reload_pending;
        for (path, text) in &files {
            if differ {
                break;
            }
            differ = self.read_file(path)?.as_deref() != Some(text.as_str());
        }
        let record_it =
            !commands.is_empty() || differ || record.generation != Some(apply.generation);
        Ok(Plan { commands, frr: differ.then_some(files), record: record_it })
    }

    fn lines(&self, plan: &Plan, generation: u64) -> Vec<String> {
        let mut out: Vec<String> = plan.commands.iter().map(|c| shell_line(c)).collect();
        if let Some(files) = &plan.frr {
            out.extend(
                files.iter().map(|(path, text)| format!("write {path} ({} bytes)", text.len())),
            );
            out.extend(self.reload_commands().iter().map(|c| shell_line(c)));
        }
        if plan.record {
            out.push(format!("record generation {generation} in {}", self.state_file()));
        }
        out
    }
}

impl SwitchDriver for FrrLinux {
    fn os(&self) -> SwitchOs {
        SwitchOs::Frr
    }

    fn apply(&self, apply: &Apply<'_>) -> Result<Applied> {
        self.check_os(apply.actual)?;
        self.check_os(apply.desired)?;
        let record = self.read_record()?;
        if let Some(device) = record.generation {
            if device > apply.generation {
                return Err(DriverError::Stale { device, offered: apply.generation });
            }
        }
        let applied = digest(apply.actual, apply.desired);
        if record.generation == Some(apply.generation)
            && record.applied.as_deref() == Some(applied.as_str())
            && !record.frr_reload_pending
        {
            return Ok(Applied { steps: Vec::new(), dry_run: apply.dry_run });
        }
        let plan = self.plan(apply, &record)?;
        let steps = self.lines(&plan, apply.generation);
        if apply.dry_run {
            return Ok(Applied { steps, dry_run: true });
        }
        self.run_steps(&plan.commands)?;
        if let Some(files) = &plan.frr {
            if !record.frr_reload_pending {
                self.write_record(&Record { frr_reload_pending: true, ..record.clone() })?;
            }
            for (path, text) in files {
                self.write_file(path, text, self.config.file_owner.as_deref())?;
            }
            for c in self.reload_commands() {
                self.must(&c, None)?;
            }
        }
        if plan.record {
            self.write_record(&Record {
                generation: Some(apply.generation),
                applied: Some(applied),
                frr_reload_pending: false,
            })?;
        }
        Ok(Applied { steps, dry_run: false })
    }

    fn check(&self, expected: &SwitchConfig) -> Result<Checked> {
        self.check_os(expected)?;
        let record = self.read_record()?;
        let observed = self.observe(expected)?;
        let mut found = drift::linux_drift(&self.switch, expected, &observed);
        for (path, text) in self.frr_files(&frr::render(&self.switch, expected)) {
            let name = path.rsplit('/').next().unwrap_or(&path).to_string();
            let device = self.read_file(&path)?;
            for (id, details) in drift::frr_drift(&name, &text, device.as_deref()) {
                found.entry(id).or_default().extend(details);
            }
        }
        Ok(Checked {
            generation: record.generation,
            drift: found
                .into_iter()
                .map(|(object, d)| Drift { object, detail: d.join("; ") })
                .collect(),
        })
    }
}

#[cfg(test)]
mod tests;
