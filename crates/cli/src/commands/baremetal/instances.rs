//! `neocloud instance ...`: bare-metal instances, created and released
//! (optionally waiting), and their node's sanitization records.

use super::sanitization::{print_records, VerifyFlags};
use super::wait::{created_verdict, rebuilt_verdict, wait_for, ReleaseWatch};
use super::{instance_path, instances_path};
use crate::commands::inventory::{InProject, PlacementFlags};
use crate::commands::wait::Verdict;
use crate::commands::{parse_duration_secs, parse_key, parse_name, to_value, Global};
use crate::output::{parse, print_list, print_one, CliError, Row};
use neocloud_common::Name;
use neocloud_placement::Constraints;
use neocloud_types::{Instance, InstancePower, List, PowerAction};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(clap::Args)]
pub struct InstanceArgs {
    #[command(flatten)]
    g: Global,
    #[command(subcommand)]
    cmd: InstanceCmd,
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
        #[command(flatten)]
        boot: BootFlags,
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
    /// Release instances: each node is wiped by the sanitizer, then returns
    /// to the pool with a signed record (see `instance sanitization`).
    /// Several are released in one request, all or none.
    Release {
        /// Instance names (while not released) or ids.
        #[arg(value_parser = parse_key, required = true, num_args = 1..)]
        instances: Vec<String>,
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
    /// Power a ready instance's node on or off, or reboot it, over its BMC.
    ///
    /// Off and reboot ask the OS first (the BMC's GracefulShutdown,
    /// GracefulRestart) unless --force (ForceOff, ForceRestart). The request
    /// is recorded and done by the control plane; without --wait this
    /// prints it pending. Exit 6 unless the instance is ready (or while an
    /// action sent to the BMC is not recorded yet).
    Power {
        /// Instance name or id.
        #[arg(value_parser = parse_key)]
        instance: String,
        #[arg(value_enum)]
        action: PowerArg,
        /// Do not ask the OS first.
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        at: InProject,
        /// Retrying with the same key answers the first result instead of
        /// acting again.
        #[arg(long, value_name = "KEY")]
        idempotency_key: Option<String>,
        /// Wait until the action is done and print its outcome; exit 1
        /// unless the BMC took it.
        #[arg(long)]
        wait: bool,
        /// How long --wait waits, e.g. 2m.
        #[arg(long, value_parser = parse_duration_secs, default_value = "5m", value_name = "DURATION", requires = "wait")]
        timeout: u64,
    },
    /// Provision a ready instance's node again, with another tenant image
    /// or its own: the OS is replaced, the node stays the tenant's (not
    /// sanitized). SSH keys and user-data stay the instance's unless given.
    /// Exit 6 unless the instance is ready.
    Rebuild {
        /// Instance name or id.
        #[arg(value_parser = parse_key)]
        instance: String,
        /// Tenant image name or id (default: the instance's).
        #[arg(long, value_parser = parse_key, value_name = "IMAGE")]
        image: Option<String>,
        // Keys and user-data: the instance's own unless given.
        #[command(flatten)]
        boot: BootFlags,
        #[command(flatten)]
        at: InProject,
        /// Retrying with the same key answers the first result instead of
        /// rebuilding again.
        #[arg(long, value_name = "KEY")]
        idempotency_key: Option<String>,
        /// Wait until it is ready again (or failed), printing each step
        /// change to stderr; exit 1 unless ready.
        #[arg(long)]
        wait: bool,
        /// How long --wait waits, e.g. 45m.
        #[arg(long, value_parser = parse_duration_secs, default_value = "30m", value_name = "DURATION", requires = "wait")]
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

/// What the image's boot is given: SSH keys and cloud-init user-data.
#[derive(clap::Args)]
struct BootFlags {
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
}

impl BootFlags {
    /// Sets `ssh_keys` and `user_data` in `body` where given (a local file
    /// that cannot be read, or a private key, is a usage error).
    fn apply(&self, body: &mut Value) -> Result<(), CliError> {
        let mut keys = self.ssh_keys.clone();
        for p in &self.ssh_key_files {
            keys.extend(read_ssh_keys(p)?);
        }
        if !keys.is_empty() {
            body["ssh_keys"] = json!(keys);
        }
        if let Some(p) = &self.user_data_file {
            body["user_data"] = json!(read_text(p, "--user-data-file")?);
        }
        Ok(())
    }
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum PowerArg {
    On,
    Off,
    Reboot,
}

impl PowerArg {
    fn action(self) -> PowerAction {
        match self {
            PowerArg::On => PowerAction::On,
            PowerArg::Off => PowerAction::Off,
            PowerArg::Reboot => PowerAction::Reboot,
        }
    }
}

/// An instance's power actions, as `instance power` prints them: the one
/// pending, else the last done.
#[derive(serde::Deserialize)]
struct PowerRow {
    name: String,
    #[serde(default)]
    power: Option<InstancePower>,
}

impl Row for PowerRow {
    const HEADER: &'static [&'static str] =
        &["NAME", "ACTION", "FORCE", "STATUS", "RESET TYPE", "DETAIL", "AT"];
    fn cells(&self) -> Vec<String> {
        let p = self.power.clone().unwrap_or_default();
        let yes = |b: bool| if b { "yes" } else { "no" }.to_string();
        match (p.pending, p.last) {
            (Some(q), _) => vec![
                self.name.clone(),
                q.action.as_str().into(),
                yes(q.force),
                if q.sent_at.is_some() { "sent" } else { "pending" }.into(),
                "-".into(),
                "-".into(),
                q.sent_at.unwrap_or(q.requested_at),
            ],
            (None, Some(d)) => vec![
                self.name.clone(),
                d.action.as_str().into(),
                yes(d.force),
                if d.ok { "done" } else { "failed" }.into(),
                d.reset_type,
                d.detail,
                d.done_at,
            ],
            (None, None) => {
                let mut v = vec![self.name.clone()];
                v.extend(std::iter::repeat_n("-".to_string(), 6));
                v
            }
        }
    }
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
            boot,
            placement,
            at,
            idempotency_key,
            wait,
            timeout,
        } => {
            // Built as JSON, as `allocation create` does: only the fields
            // this command sets.
            let mut body = json!({
                "name": name.as_str(),
                "instance_type": instance_type,
                "image": image,
                "count": count,
            });
            boot.apply(&mut body)?;
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
        InstanceCmd::Release { instances, at, wait, timeout } => {
            let released: Vec<Value> = match instances.as_slice() {
                [one] => vec![c.delete(&instance_path(&at, one))?.ok_or_else(|| {
                    CliError::Other("unexpected empty answer from the server".into())
                })?],
                several => {
                    let path = format!("{}/instance-releases", at.path());
                    let v = c.post(&path, Some(&json!({ "instances": several })), None)?;
                    parse::<List<Value>>(&v)?.items
                }
            };
            if !wait {
                return match released.as_slice() {
                    [one] => print_one::<Instance>(f, one),
                    _ => print_list::<Instance>(f, &json!({ "items": released })),
                };
            }
            // Each instance's own watch: whether it was failed when asked.
            let mut watches = std::collections::HashMap::new();
            for v in &released {
                let i = parse::<Instance>(v)?;
                watches.insert(i.id.clone(), ReleaseWatch::new(&i));
            }
            let w = wait_for(&c, &at, released, Duration::from_secs(timeout), |i| {
                watches.get_mut(&i.id).map_or(Verdict::Waiting, |w| w.verdict(i))
            })?;
            match w.items.as_slice() {
                [one] => print_one::<Instance>(f, one)?,
                several => print_list::<Instance>(f, &json!({ "items": several }))?,
            }
            w.result("released", timeout)
        }
        InstanceCmd::Power { instance, action, force, at, idempotency_key, wait, timeout } => {
            let path = instance_path(&at, &instance);
            let body = json!({"action": action.action(), "force": force});
            let v = c.post(&format!("{path}/power"), Some(&body), idempotency_key.as_deref())?;
            if !wait {
                return print_one::<PowerRow>(f, &v);
            }
            let deadline = std::time::Instant::now() + Duration::from_secs(timeout);
            loop {
                let v = c.get(&path, &[])?;
                let i: Instance = parse(&v)?;
                let power = i.power.unwrap_or_default();
                if power.pending.is_none() {
                    print_one::<PowerRow>(f, &v)?;
                    return match power.last {
                        Some(d) if d.ok => Ok(()),
                        Some(d) => Err(CliError::Other(format!(
                            "{} {}: {}",
                            d.action.as_str(),
                            i.name,
                            d.detail
                        ))),
                        None => Err(CliError::Other("no power action recorded".into())),
                    };
                }
                if std::time::Instant::now() >= deadline {
                    print_one::<PowerRow>(f, &v)?;
                    return Err(CliError::Other(format!(
                        "the power action on {} was not done within {timeout}s",
                        i.name
                    )));
                }
                std::thread::sleep(Duration::from_millis(500));
            }
        }
        InstanceCmd::Rebuild { instance, image, boot, at, idempotency_key, wait, timeout } => {
            let mut body = json!({});
            if let Some(i) = &image {
                body["image"] = json!(i);
            }
            boot.apply(&mut body)?;
            let path = format!("{}/rebuild", instance_path(&at, &instance));
            let v = c.post(&path, Some(&body), idempotency_key.as_deref())?;
            if !wait {
                return print_one::<Instance>(f, &v);
            }
            let w = wait_for(&c, &at, vec![v], Duration::from_secs(timeout), rebuilt_verdict)?;
            if let Some(last) = w.items.first() {
                print_one::<Instance>(f, last)?;
            }
            w.result("ready", timeout)
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
                Some(id) if b.instance_id.as_ref() != Some(id) => Err(format!(
                    "it is about instance {}, not {id}",
                    b.instance_id.as_deref().unwrap_or("(none: a node's first sanitization)")
                )),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_power_row_shows_the_pending_action_else_the_last_done() {
        let row = |power: Value| {
            let v = json!({"name": "job", "power": power});
            serde_json::from_value::<PowerRow>(v).unwrap().cells()
        };
        assert_eq!(
            row(json!({"pending": {"action": "reboot", "force": true,
                                   "requested_at": "T1", "sent_at": "T2"},
                       "last": {"action": "off", "force": false, "reset_type": "GracefulShutdown",
                                "ok": true, "detail": "d", "requested_at": "T0", "done_at": "T0"}})),
            ["job", "reboot", "yes", "sent", "-", "-", "T2"]
        );
        assert_eq!(
            row(json!({"last": {"action": "reboot", "force": false,
                                "reset_type": "GracefulRestart", "ok": false,
                                "detail": "not allowed", "requested_at": "T0", "done_at": "T3"}})),
            ["job", "reboot", "no", "failed", "GracefulRestart", "not allowed", "T3"]
        );
        assert_eq!(row(Value::Null), ["job", "-", "-", "-", "-", "-", "-"]);
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
}
