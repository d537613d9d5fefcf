//! `neocloud attachment ...`: instance NICs in a network. An attachment is
//! `configuring` until every switch its port hangs off has applied it,
//! then `ready`; `create --wait` waits for that.

use super::{show, wire, Call, InNetwork, Shown};
use crate::commands::wait::{self, Verdict, Watched};
use crate::commands::{parse_duration_secs, parse_key, to_value, Global};
use crate::output::{or_dash, print_one, short_time, CliError, Row};
use neocloud_types::{Attachment, AttachmentCreate, AttachmentState};
use serde_json::Value;
use std::time::Duration;

#[derive(clap::Args)]
pub struct AttachmentArgs {
    #[command(flatten)]
    g: Global,
    #[command(subcommand)]
    cmd: AttachmentCmd,
}

#[derive(clap::Subcommand)]
enum AttachmentCmd {
    /// List the instance NICs attached to a network.
    List {
        #[command(flatten)]
        network: InNetwork,
    },
    /// Show one attachment: its address and whether the switches carry it.
    Get {
        /// Attachment id.
        #[arg(value_parser = parse_key)]
        attachment: String,
        #[command(flatten)]
        network: InNetwork,
    },
    /// Attach an instance's NIC to a network: its switch port joins the
    /// network and it gets an address.
    Create {
        /// Instance name or id, in the VPC's project.
        #[arg(long, value_parser = parse_key)]
        instance: String,
        /// The node NIC (default: the first one cabled to the VPC's fabric).
        #[arg(long)]
        nic: Option<String>,
        /// A fixed address in the network (default: the first free one).
        #[arg(long, value_name = "IP")]
        ip: Option<String>,
        #[command(flatten)]
        network: InNetwork,
        /// Retrying with the same key returns the first result instead of a second attachment.
        #[arg(long, value_name = "KEY")]
        idempotency_key: Option<String>,
        /// Wait until the switches carry it (`ready`), printing each change
        /// to stderr; exit 1 when the wait times out.
        #[arg(long)]
        wait: bool,
        /// How long --wait waits, e.g. 2m.
        #[arg(long, value_parser = parse_duration_secs, default_value = "5m", value_name = "DURATION", requires = "wait")]
        timeout: u64,
    },
    /// Detach: the port leaves the network, and its floating IP is released.
    Delete {
        /// Attachment id.
        #[arg(value_parser = parse_key)]
        attachment: String,
        #[command(flatten)]
        network: InNetwork,
    },
}

impl AttachmentCmd {
    fn call(&self) -> Result<Call, CliError> {
        Ok(match self {
            AttachmentCmd::List { network } => Call::Get(network.attachments()),
            AttachmentCmd::Get { attachment, network } => Call::Get(network.attachment(attachment)),
            AttachmentCmd::Create { instance, nic, ip, network, idempotency_key, .. } => {
                let body = to_value(&AttachmentCreate {
                    instance: instance.clone(),
                    nic: nic.clone(),
                    ip: ip.clone(),
                })?;
                Call::post(network.attachments(), body, idempotency_key.as_deref())
            }
            AttachmentCmd::Delete { attachment, network } => {
                Call::Delete(network.attachment(attachment))
            }
        })
    }
}

impl Row for Attachment {
    const HEADER: &'static [&'static str] =
        &["ID", "INSTANCE ID", "NIC", "IP", "STATE", "GENERATION", "CREATED"];
    fn cells(&self) -> Vec<String> {
        vec![
            self.id.clone(),
            self.instance_id.clone(),
            self.nic.clone(),
            or_dash(Some(&self.ip)),
            wire(&self.state),
            self.generation.to_string(),
            short_time(&self.created_at),
        ]
    }
}

impl Watched for Attachment {
    fn id(&self) -> &str {
        &self.id
    }

    fn label(&self) -> String {
        format!("attachment {}", self.id)
    }

    /// `attachment ID: configuring (eth0 10.0.0.2)`.
    fn progress_line(&self) -> String {
        format!(
            "{}: {} ({} {})",
            self.label(),
            wire(&self.state),
            self.nic,
            or_dash(Some(&self.ip))
        )
    }
}

/// `create --wait`: ready. An attachment has no failed state: the fabric
/// controller retries a switch that failed to apply it.
fn ready_verdict(a: &Attachment) -> Verdict {
    match a.state {
        AttachmentState::Ready => Verdict::Done,
        AttachmentState::Configuring => Verdict::Waiting,
    }
}

pub fn attachment(a: AttachmentArgs) -> Result<(), CliError> {
    let c = a.g.client()?;
    let f = a.g.output;
    let v = a.cmd.call()?.send(&c)?;
    let shown = match &a.cmd {
        AttachmentCmd::List { .. } => Shown::List,
        AttachmentCmd::Delete { attachment, .. } => {
            Shown::Done(format!("attachment {attachment} deleted"))
        }
        AttachmentCmd::Create { network, wait: true, timeout, .. } => {
            let poll = |ids: &[String]| -> Result<Vec<Value>, CliError> {
                ids.iter().map(|id| c.get(&network.attachment(id), &[])).collect()
            };
            let w = wait::wait_for(vec![v], Duration::from_secs(*timeout), poll, ready_verdict)?;
            if let Some(last) = w.items.first() {
                print_one::<Attachment>(f, last)?;
            }
            return w.result("ready", *timeout);
        }
        AttachmentCmd::Get { .. } | AttachmentCmd::Create { .. } => Shown::One,
    };
    show::<Attachment>(f, &v, shown)
}

#[cfg(test)]
mod tests {
    use super::super::parsed_cmd;
    use super::*;
    use crate::commands::{cli_parses as parses, Cmd};
    use serde_json::json;

    const AT: [&str; 8] =
        ["--vpc", "main", "--network", "web", "--tenant", "acme", "--project", "p"];
    const ATTS: &str = "/v1/tenants/acme/projects/p/vpcs/main/networks/web/attachments";

    fn parsed(args: &[&str]) -> AttachmentCmd {
        let Cmd::Attachment(a) = parsed_cmd("attachment", args, &AT) else {
            panic!("not attachment")
        };
        a.cmd
    }

    fn call(args: &[&str]) -> Call {
        parsed(args).call().unwrap()
    }

    #[test]
    fn requests() {
        assert_eq!(call(&["list"]), Call::Get(ATTS.into()));
        assert_eq!(call(&["get", "a-1"]), Call::Get(format!("{ATTS}/a-1")));
        assert_eq!(call(&["delete", "a-1"]), Call::Delete(format!("{ATTS}/a-1")));
        assert_eq!(
            call(&["create", "--instance", "job-0"]),
            Call::Post {
                path: ATTS.into(),
                body: json!({"instance": "job-0", "nic": null, "ip": null}),
                idempotency_key: None,
            }
        );
        let c =
            parsed(&["create", "--instance", "i", "--nic", "eth1", "--ip", "10.0.0.9", "--wait"]);
        let AttachmentCmd::Create { wait, timeout, .. } = &c else { panic!("not create") };
        assert!(*wait);
        assert_eq!(*timeout, 300);
        let Call::Post { body, .. } = c.call().unwrap() else { panic!("not a post") };
        assert_eq!(body, json!({"instance": "i", "nic": "eth1", "ip": "10.0.0.9"}));
    }

    #[test]
    fn arguments() {
        let create = |more: &[&'static str]| [&["attachment", "create"][..], more, &AT].concat();
        assert!(parses(&create(&["--instance", "i", "--wait", "--timeout", "30s"])));
        // --timeout only with --wait; an instance is required; so is the network.
        assert!(!parses(&create(&["--instance", "i", "--timeout", "30s"])));
        assert!(!parses(&create(&[])));
        assert!(!parses(&["attachment", "list", "--vpc", "v", "--tenant", "t", "--project", "p"]));
    }

    #[test]
    fn waits_for_ready() {
        let a: Attachment = serde_json::from_value(json!({
            "id": "a-1", "network_id": "n", "instance_id": "i", "nic": "eth0", "ip": "10.0.0.2",
            "state": "configuring", "generation": 1,
            "created_at": "2026-01-02T03:04:05.000001Z", "updated_at": "2026-01-02T03:04:05.000001Z"
        }))
        .unwrap();
        assert_eq!(a.progress_line(), "attachment a-1: configuring (eth0 10.0.0.2)");
        assert_eq!(ready_verdict(&a), Verdict::Waiting);
        let ready = Attachment { state: AttachmentState::Ready, ..a.clone() };
        assert_eq!(ready_verdict(&ready), Verdict::Done);
        assert_eq!(ready.cells()[..5], ["a-1", "i", "eth0", "10.0.0.2", "ready"].map(String::from));
    }
}
