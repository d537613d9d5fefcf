//! Arista EOS eAPI driver.
//!
//! eAPI is JSON-RPC 2.0 over HTTP(S) (the eAPI guide; pyeapi): `POST
//! /command-api` with `{"jsonrpc": "2.0", "method": "runCmds", "params":
//! {"version": 1, "cmds": [...], "format": "json"|"text"}, "id": ...}`,
//! HTTP basic auth. Commands run in order in one CLI session; the answer
//! is `{"result": [one object per command]}` (`{"output": "..."}` in text
//! format), or an `error` object `{"code", "message": "CLI command 3 of 5
//! 'x' failed: invalid command", "data": [per command, the failing one with
//! "errors": [...]]}` (still HTTP 200). Execution stops at the failing
//! command; what ran before it stays.
//!
//! Apply: one request `enable`, `configure session <name>`, the commands
//! [`config::commands`] computes, `commit`, `copy running-config
//! startup-config`. Dry run: the same session with `show session-config
//! diffs` and `abort` instead (the switch validates every command, nothing
//! is committed). A session left pending by a failed command is aborted.
//! Session names are unique per apply (`neocloud-<generation>-<n>`): EOS
//! resumes a pending session of the same name, which must never happen.
//!
//! Check reads `show running-config` (text) and compares per object.
//! The generation is the description of the management interface
//! (`Management1` by default).

pub mod config;

use crate::http::{debug_config, marker, parse_marker, Http};
use crate::{Applied, Apply, Checked, Drift, DriverError, Result, SwitchDriver};
use config::Node;
use neocloud_common::tls::TlsOptions;
use neocloud_fabric::{SwitchConfig, SwitchOs};
use serde_json::{json, Value};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Where a switch's eAPI is and how to log in.
#[derive(Clone)]
pub struct EosConfig {
    /// The switch's name in the fabric (its hostname).
    pub switch: String,
    /// e.g. `https://leaf1.mgmt` (eAPI's default is HTTPS on 443).
    pub url: String,
    pub username: String,
    pub password: String,
    pub timeout: Duration,
    /// The interface whose description records the generation.
    pub marker_interface: String,
    /// How an `https://` URL's certificate is verified (default: the
    /// built-in webpki roots).
    pub tls: TlsOptions,
}

impl EosConfig {
    pub fn new(switch: &str, url: &str, username: &str, password: &str) -> EosConfig {
        EosConfig {
            switch: switch.into(),
            url: url.into(),
            username: username.into(),
            password: password.into(),
            timeout: Duration::from_secs(60),
            marker_interface: "Management1".into(),
            tls: TlsOptions::default(),
        }
    }
}

impl fmt::Debug for EosConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        debug_config(f, "EosConfig", &self.switch, &self.url, &self.username, &self.tls)
    }
}

pub struct Eos {
    cfg: EosConfig,
    http: Http,
    requests: AtomicU64,
}

const PATH: &str = "/command-api";

impl Eos {
    pub fn new(cfg: EosConfig) -> Eos {
        let http = Http::new(&cfg.url, &cfg.username, &cfg.password, cfg.timeout, &cfg.tls);
        Eos { cfg, http, requests: AtomicU64::new(0) }
    }

    /// One `runCmds`: the result per command, or the device's error.
    pub fn run(&self, cmds: &[String], format: &str) -> Result<Vec<Value>> {
        let n = self.requests.fetch_add(1, Ordering::Relaxed);
        let body = json!({
            "jsonrpc": "2.0",
            "method": "runCmds",
            "params": {"version": 1, "cmds": cmds, "format": format},
            "id": format!("neocloud-{n}"),
        });
        let reply = self.http.json("POST", PATH, Some(&body))?;
        let v = reply.value(PATH)?;
        if let Some(e) = v.get("error") {
            return Err(eapi_error(e));
        }
        match v.get("result").and_then(Value::as_array) {
            Some(r) if r.len() == cmds.len() => Ok(r.clone()),
            _ => Err(DriverError::Failed(format!("{PATH}: unexpected answer {v}"))),
        }
    }

    /// The running configuration, parsed.
    pub fn running(&self) -> Result<Vec<Node>> {
        let r = self.run(&["enable".into(), "show running-config".into()], "text")?;
        let text = r[1]["output"].as_str().unwrap_or_default();
        Ok(config::parse(text))
    }

    fn generation(&self, device: &[Node]) -> Option<u64> {
        config::description(device, &self.cfg.marker_interface).as_deref().and_then(parse_marker)
    }

    fn session_name(&self, generation: u64) -> String {
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        let n = self.requests.fetch_add(1, Ordering::Relaxed);
        format!("neocloud-{generation}-{:x}{n}", nanos & 0xffff_ffff)
    }

    /// Runs a session; on a refusal, aborts what the failed request left
    /// pending and answers the refusal.
    fn run_session(&self, session: &str, cmds: Vec<String>, format: &str) -> Result<Vec<Value>> {
        self.run(&cmds, format).inspect_err(|_| {
            let abort =
                ["enable", &format!("configure session {session}"), "abort"].map(String::from);
            let _ = self.run(&abort, "json");
        })
    }
}

/// A JSON-RPC error object as the driver reports it: the message and the
/// failing command's own errors.
fn eapi_error(e: &Value) -> DriverError {
    let code = e["code"].as_i64().unwrap_or_default();
    let message = e["message"].as_str().unwrap_or("eAPI error");
    let errors: Vec<&str> = e["data"]
        .as_array()
        .map(|d| {
            d.iter()
                .flat_map(|r| r["errors"].as_array().into_iter().flatten())
                .filter_map(Value::as_str)
                .collect()
        })
        .unwrap_or_default();
    let m = format!("eAPI error {code}: {message} ({})", errors.join("; "));
    match code {
        // JSON-RPC's own internal error: the server, not the request.
        -32603 => DriverError::Unreachable(m),
        _ => DriverError::Failed(m),
    }
}

fn unsupported(e: neocloud_fabric::Error) -> DriverError {
    DriverError::Unsupported(e.to_string())
}

impl SwitchDriver for Eos {
    fn os(&self) -> SwitchOs {
        SwitchOs::AristaEos
    }

    fn apply(&self, a: &Apply<'_>) -> Result<Applied> {
        let switch = &self.cfg.switch;
        let desired = config::rendered(switch, a.desired).map_err(unsupported)?;
        let actual = config::rendered(switch, a.actual).map_err(unsupported)?;
        let device = self.running()?;
        if let Some(held) = self.generation(&device) {
            if held > a.generation {
                return Err(DriverError::Stale { device: held, offered: a.generation });
            }
        }
        let mut cmds = config::commands(&device, &actual, &desired);
        let mark = marker(a.generation);
        if config::description(&device, &self.cfg.marker_interface).as_deref()
            != Some(mark.as_str())
        {
            cmds.extend([
                format!("interface {}", self.cfg.marker_interface),
                format!("description {mark}"),
                "exit".into(),
            ]);
        }
        if cmds.is_empty() {
            return Ok(Applied { steps: Vec::new(), dry_run: a.dry_run });
        }
        let session = self.session_name(a.generation);
        let mut run = vec!["enable".to_string(), format!("configure session {session}")];
        run.extend(cmds);
        if a.dry_run {
            run.extend(["show session-config diffs".into(), "abort".into()]);
            let r = self.run_session(&session, run.clone(), "text")?;
            let diff = r[r.len() - 2]["output"].as_str().unwrap_or_default().to_string();
            let mut steps = run[1..run.len() - 2].to_vec();
            steps.push(format!("show session-config diffs\n{diff}"));
            return Ok(Applied { steps, dry_run: true });
        }
        run.extend(["commit".into(), "copy running-config startup-config".into()]);
        self.run_session(&session, run.clone(), "json")?;
        Ok(Applied { steps: run[1..].to_vec(), dry_run: false })
    }

    fn check(&self, expected: &SwitchConfig) -> Result<Checked> {
        let device = self.running()?;
        let have = config::paths(&device);
        let mut drift = Vec::new();
        for (id, o) in &expected.objects {
            let want = config::object_paths(&self.cfg.switch, expected, o).map_err(unsupported)?;
            let missing: Vec<String> = want
                .iter()
                .filter(|p| !config::holds(&have, p))
                .map(|p| format!("`{}`", p.join(" > ")))
                .collect();
            if !missing.is_empty() {
                drift.push(Drift {
                    object: id.clone(),
                    detail: format!("missing {}", missing.join(", ")),
                });
            }
        }
        Ok(Checked { generation: self.generation(&device), drift })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eapi_errors_carry_the_failing_commands_reasons() {
        let e = json!({
            "code": 1002,
            "message": "CLI command 3 of 4 'vlan 5000' failed: invalid command",
            "data": [{}, {}, {"errors": ["Invalid input (at token 1: '5000')"]}],
        });
        assert_eq!(
            eapi_error(&e),
            DriverError::Failed(
                "eAPI error 1002: CLI command 3 of 4 'vlan 5000' failed: invalid command (Invalid input (at token 1: '5000'))".into()
            )
        );
    }
}
