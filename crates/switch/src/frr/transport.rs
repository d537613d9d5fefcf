//! How the driver reaches a switch: a command's argument vector run over
//! SSH (the system `ssh`, batch mode, the command quoted for the remote
//! shell) or locally in a process's network and mount namespaces
//! (`nsenter`, the namespace lab's switches). Every command the driver
//! runs goes through a [`Runner`], so tests can put a recorder in its place.

use crate::{DriverError, Result};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// Where the switch is and how to get a shell there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Transport {
    /// `ssh -o BatchMode=yes [-i identity_file] [-o option]... -p port -l
    /// user -- host COMMAND`. Batch mode: the host key must already be
    /// known and the key must need no passphrase. Exit status 255 (ssh's
    /// own failure) counts as unreachable.
    Ssh {
        host: String,
        #[serde(default = "default_ssh_port")]
        port: u16,
        user: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        identity_file: Option<String>,
        /// More `-o` options (`ConnectTimeout=5`, `ControlMaster=auto`...).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        options: Vec<String>,
    },
    /// `nsenter -t PID -m -n -- COMMAND` on this machine: the switch is the
    /// network and mount namespaces of process `pid`.
    Nsenter { pid: u32 },
}

fn default_ssh_port() -> u16 {
    22
}

/// The mark before the remote command's exit status on standard error.
const SSH_STATUS_MARK: &str = "neocloud-exit-status:";

/// Run after the command on the remote side: ssh answers 255 for its own
/// failures and for a command that exits with 255 (as `ip -n` does for a
/// missing namespace); the status on standard error tells them apart.
const SSH_EPILOGUE: &str = r#"s=$?; printf '\nneocloud-exit-status:%s\n' "$s" >&2; exit "$s""#;

/// Splits the remote exit status off standard error: `None` when the
/// remote side never reported one (ssh failed, or the connection dropped).
fn split_ssh_status(stderr: &str) -> (Option<i32>, String) {
    let tail = format!("\n{SSH_STATUS_MARK}");
    let body = stderr.strip_suffix('\n').unwrap_or(stderr);
    match body.rfind(&tail) {
        Some(at) => match body[at + tail.len()..].parse() {
            Ok(status) => (Some(status), body[..at].to_string()),
            Err(_) => (None, stderr.to_string()),
        },
        None => (None, stderr.to_string()),
    }
}

/// What a command answered.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Output {
    /// The exit status (-1 when killed by a signal).
    pub status: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    pub fn ok(stdout: impl Into<String>) -> Output {
        Output { status: 0, stdout: stdout.into(), stderr: String::new() }
    }

    pub fn failed(status: i32, stderr: impl Into<String>) -> Output {
        Output { status, stdout: String::new(), stderr: stderr.into() }
    }

    pub fn success(&self) -> bool {
        self.status == 0
    }
}

/// Runs one command on the switch.
pub trait Runner: Send + Sync {
    /// Runs `argv` on the switch with `stdin` as its standard input. A
    /// command that ran and failed is an `Ok` with its status; `Err` is
    /// only for a switch that could not be reached
    /// ([`DriverError::Unreachable`]).
    fn run(&self, argv: &[String], stdin: Option<&[u8]>) -> Result<Output>;
}

/// A [`Transport`] with a time limit per command: the driver's real path.
#[derive(Debug, Clone)]
pub struct TransportRunner {
    pub transport: Transport,
    pub timeout: Duration,
}

impl Transport {
    /// The local argument vector that runs `argv` on the switch.
    pub fn command(&self, argv: &[String]) -> Vec<String> {
        match self {
            Transport::Ssh { host, port, user, identity_file, options } => {
                let mut c: Vec<String> = vec!["ssh".into(), "-o".into(), "BatchMode=yes".into()];
                if let Some(f) = identity_file {
                    c.extend(["-i".to_string(), f.clone()]);
                }
                for o in options {
                    c.extend(["-o".to_string(), o.clone()]);
                }
                c.extend(["-p".to_string(), port.to_string(), "-l".to_string(), user.clone()]);
                // `--` first: a host can never be read as an option. The
                // remote side gets one string that its shell splits back
                // into exactly `argv`, then reports the exit status.
                let remote = format!("{}; {SSH_EPILOGUE}", shell_line(argv));
                c.extend(["--".to_string(), host.clone(), remote]);
                c
            }
            Transport::Nsenter { pid } => {
                let mut c: Vec<String> = ["nsenter", "-t", &pid.to_string(), "-m", "-n", "--"]
                    .iter()
                    .map(|s| s.to_string())
                    .collect();
                c.extend(argv.iter().cloned());
                c
            }
        }
    }

    /// Where the switch is, for messages.
    pub fn describe(&self) -> String {
        match self {
            Transport::Ssh { host, port, user, .. } => format!("ssh {user}@{host}:{port}"),
            Transport::Nsenter { pid } => format!("namespaces of process {pid}"),
        }
    }
}

impl Runner for TransportRunner {
    fn run(&self, argv: &[String], stdin: Option<&[u8]>) -> Result<Output> {
        let unreachable =
            |m: String| DriverError::Unreachable(format!("{}: {m}", self.transport.describe()));
        if let Transport::Nsenter { pid } = &self.transport {
            // nsenter's own failures share exit statuses with the command's.
            if !Path::new(&format!("/proc/{pid}/ns/net")).exists() {
                return Err(unreachable("the process holding the namespaces is gone".into()));
            }
        }
        let local = self.transport.command(argv);
        let out = run_local(&local, stdin, self.timeout)
            .map_err(|e| unreachable(format!("{}: {e}", local[0])))?;
        match (&self.transport, out) {
            (_, None) => Err(unreachable(format!(
                "`{}` did not finish within {:?}",
                shell_line(argv),
                self.timeout
            ))),
            (Transport::Ssh { .. }, Some(o)) => match split_ssh_status(&o.stderr) {
                (Some(status), stderr) => Ok(Output { status, stdout: o.stdout, stderr }),
                (None, _) if o.status == 255 => Err(unreachable(o.stderr.trim().to_string())),
                (None, _) => Ok(o),
            },
            (Transport::Nsenter { .. }, Some(o)) => Ok(o),
        }
    }
}

/// Runs `argv` here; `None` when it ran past `timeout` (it is killed).
fn run_local(
    argv: &[String],
    stdin: Option<&[u8]>,
    timeout: Duration,
) -> std::io::Result<Option<Output>> {
    let mut child = Command::new(&argv[0])
        .args(&argv[1..])
        .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    if let (Some(data), Some(mut pipe)) = (stdin, child.stdin.take()) {
        let data = data.to_vec();
        // A writer thread: a large input must not block reading the output.
        std::thread::spawn(move || {
            let _ = pipe.write_all(&data);
        });
    }
    // Readers report when both pipes close (the command exited, or handed
    // its descriptors to nobody); the wait is bounded by `timeout`.
    let (tx, rx) = mpsc::channel();
    for (i, pipe) in [
        child.stdout.take().map(|p| Box::new(p) as Box<dyn Read + Send>),
        child.stderr.take().map(|p| Box::new(p) as Box<dyn Read + Send>),
    ]
    .into_iter()
    .enumerate()
    {
        let tx = tx.clone();
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_end(&mut buf);
            }
            let _ = tx.send((i, buf));
        });
    }
    drop(tx);
    let deadline = std::time::Instant::now() + timeout;
    let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
    for _ in 0..2 {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match rx.recv_timeout(left) {
            Ok((0, b)) => stdout = b,
            Ok((_, b)) => stderr = b,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                return Ok(None);
            }
        }
    }
    let status = child.wait()?;
    Ok(Some(Output {
        status: status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    }))
}

/// One argument as a POSIX shell reads it back: as is when it has only
/// characters no shell treats specially, else in single quotes (a single
/// quote inside becomes `'\''`).
pub fn shell_quote(arg: &str) -> Cow<'_, str> {
    let plain = |c: char| c.is_ascii_alphanumeric() || "_-+=./:,@%^".contains(c);
    if !arg.is_empty() && arg.chars().all(plain) {
        Cow::Borrowed(arg)
    } else {
        Cow::Owned(format!("'{}'", arg.replace('\'', r"'\''")))
    }
}

/// A command as one shell line that runs exactly `argv`.
pub fn shell_line(argv: &[String]) -> String {
    argv.iter().map(|a| shell_quote(a)).collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(args: &[&str]) -> Vec<String> {
        args.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn quoting_leaves_plain_words_and_quotes_the_rest() {
        assert_eq!(shell_quote("vni100"), "vni100");
        assert_eq!(shell_quote("10.0.0.1/32"), "10.0.0.1/32");
        assert_eq!(shell_quote("net.ipv4.ip_forward=1"), "net.ipv4.ip_forward=1");
        assert_eq!(shell_quote(""), "''");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(
            shell_quote("{ type filter hook forward priority 0 ; policy accept ; }"),
            "'{ type filter hook forward priority 0 ; policy accept ; }'"
        );
        for hostile in
            ["$(reboot)", "`id`", "a;b", "a|b", "a&b", "*", "~", "a\nb", "\"br100\"", "!x", "#x"]
        {
            assert!(shell_quote(hostile).starts_with('\''), "{hostile}");
        }
    }

    /// What a POSIX shell makes of the quoted line is the original argv.
    #[test]
    fn a_shell_reads_the_quoted_line_back_as_the_same_arguments() {
        let argv = v(&[
            "printf",
            "%s\\n",
            "plain",
            "two words",
            "it's",
            "$(echo no)",
            "`echo no`",
            "a;b|c&d",
            "",
            "{ type nat hook postrouting priority 100 ; }",
            "\"br100\"",
            "tab\there",
            "new\nline",
            "back\\slash",
            "'",
        ]);
        let line = shell_line(&argv);
        let out = Command::new("sh").arg("-c").arg(&line).output().unwrap();
        assert!(out.status.success());
        let got = String::from_utf8(out.stdout).unwrap();
        let expected: String = argv[2..].iter().map(|a| format!("{a}\n")).collect();
        assert_eq!(got, expected);
    }

    #[test]
    fn ssh_command_is_batch_mode_with_the_host_after_the_option_end() {
        let t = Transport::Ssh {
            host: "leaf1.mgmt".into(),
            port: 2222,
            user: "neocloud".into(),
            identity_file: Some("/etc/neocloud/switch key".into()),
            options: vec!["ConnectTimeout=5".into()],
        };
        let c = t.command(&v(&["ip", "-n", "Vrf5000", "link", "del", "vni100"]));
        assert_eq!(
            c,
            v(&[
                "ssh",
                "-o",
                "BatchMode=yes",
                "-i",
                "/etc/neocloud/switch key",
                "-o",
                "ConnectTimeout=5",
                "-p",
                "2222",
                "-l",
                "neocloud",
                "--",
                "leaf1.mgmt",
                &format!("ip -n Vrf5000 link del vni100; {SSH_EPILOGUE}"),
            ])
        );
        let c =
            t.command(&v(&["nft", "add", "chain", "inet", "neocloud", "snat", "{ type nat ; }"]));
        let remote = c.last().unwrap();
        assert!(remote.starts_with("nft add chain inet neocloud snat '{ type nat ; }'; "));
    }

    /// What the remote side runs reports the command's own status, 255
    /// included, and leaves its output as it was.
    #[test]
    fn the_remote_status_is_told_apart_from_sshs_own_failure() {
        let t = Transport::Ssh {
            host: "h".into(),
            port: 22,
            user: "u".into(),
            identity_file: None,
            options: vec![],
        };
        for (script, status, stderr) in [
            (
                "echo out; echo 'Cannot open network namespace' >&2; exit 255",
                255,
                "Cannot open network namespace\n",
            ),
            ("echo out; printf 'no newline' >&2; exit 1", 1, "no newline"),
            ("echo out", 0, ""),
        ] {
            let remote = t.command(&v(&["sh", "-c", script])).pop().unwrap();
            let out = run_local(&v(&["sh", "-c", &remote]), None, Duration::from_secs(10))
                .unwrap()
                .unwrap();
            assert_eq!(out.status, status);
            assert_eq!(out.stdout, "out\n");
            assert_eq!(
                split_ssh_status(&out.stderr),
                (Some(status), stderr.to_string()),
                "{script}"
            );
        }
        // ssh's own failure: no status reported.
        let refused = "ssh: connect to host h port 22: Connection refused\n";
        assert_eq!(split_ssh_status(refused), (None, refused.to_string()));
    }

    #[test]
    fn nsenter_command_enters_both_namespaces_and_passes_argv_untouched() {
        let t = Transport::Nsenter { pid: 4242 };
        let c = t.command(&v(&["ip", "link", "set", "a b", "up"]));
        assert_eq!(
            c,
            v(&["nsenter", "-t", "4242", "-m", "-n", "--", "ip", "link", "set", "a b", "up"])
        );
    }

    #[test]
    fn transports_round_trip_through_serde_with_defaults() {
        let t: Transport =
            serde_json::from_str(r#"{"type":"ssh","host":"10.1.0.5","user":"nc"}"#).unwrap();
        assert_eq!(
            t,
            Transport::Ssh {
                host: "10.1.0.5".into(),
                port: 22,
                user: "nc".into(),
                identity_file: None,
                options: vec![]
            }
        );
        let n: Transport = serde_json::from_str(r#"{"type":"nsenter","pid":77}"#).unwrap();
        assert_eq!(n, Transport::Nsenter { pid: 77 });
        assert_eq!(serde_json::to_string(&n).unwrap(), r#"{"type":"nsenter","pid":77}"#);
        assert!(serde_json::from_str::<Transport>(r#"{"type":"nsenter","pid":1,"x":2}"#).is_err());
    }

    #[test]
    fn ssh_failing_to_connect_is_unreachable() {
        // Port 1 on the loopback: refused at once (exit status 255).
        let r = TransportRunner {
            transport: Transport::Ssh {
                host: "127.0.0.1".into(),
                port: 1,
                user: "nobody".into(),
                identity_file: None,
                options: vec!["ConnectTimeout=5".into()],
            },
            timeout: Duration::from_secs(20),
        };
        match r.run(&v(&["true"]), None) {
            Err(DriverError::Unreachable(m)) => assert!(m.contains("127.0.0.1"), "{m}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_gone_namespace_holder_is_unreachable() {
        let r = TransportRunner {
            transport: Transport::Nsenter { pid: u32::MAX },
            timeout: Duration::from_secs(5),
        };
        assert!(matches!(r.run(&v(&["true"]), None), Err(DriverError::Unreachable(_))));
    }

    #[test]
    fn local_runs_feed_stdin_capture_both_streams_and_time_out() {
        let out = run_local(
            &v(&["sh", "-c", "cat; echo err >&2; exit 3"]),
            Some(b"in"),
            Duration::from_secs(10),
        )
        .unwrap()
        .unwrap();
        assert_eq!(out, Output { status: 3, stdout: "in".into(), stderr: "err\n".into() });
        let start = std::time::Instant::now();
        assert_eq!(run_local(&v(&["sleep", "5"]), None, Duration::from_millis(200)).unwrap(), None);
        assert!(start.elapsed() < Duration::from_secs(3));
        assert!(run_local(&v(&["/nonexistent/binary"]), None, Duration::from_secs(1)).is_err());
    }
}
