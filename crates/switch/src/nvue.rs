//! Cumulus Linux NVUE REST driver.
//!
//! NVUE stages changes in revisions (the NVUE API guide, "Use Cases and
//! Recommendations"): `POST /nvue_v1/revision` answers `{"<id>": {"state":
//! "pending", ...}}` (ids look like `changeset/cumulus/2023-04-06_20.22.44_T2XP`
//! and are percent-encoded in URLs); `PATCH /nvue_v1/?rev=<id>` merges a
//! JSON tree into it (a `null` unsets); `PATCH /nvue_v1/revision/<id>`
//! with `{"state": "apply", "auto-prompt": {"ays": "ays_yes"}}` applies
//! it; `GET /nvue_v1/revision/<id>` shows its state until `applied` (or a
//! failure: `invalid`, `apply_fail`, `ignore_fail`, ... with the reasons in
//! `transition.issue`); `PATCH /nvue_v1/revision/applied` with `{"state":
//! "save"}` saves the applied configuration to startup. The applied
//! configuration is `GET /nvue_v1/?rev=applied&filled=false` (without the
//! defaults). HTTP basic auth; the API listens on HTTPS port 8765.
//!
//! The tree pushed is [`tree`]'s, derived from the planner's objects;
//! [`plan`] decides what to unset and set. The generation is the
//! description of the management interface (`eth0` by default).
//!
//! A failure after the revision is created leaves it pending on the switch
//! (staged, never applied); the next apply stages a new one.
//!
//! Unverified against a switch: the revision state names beyond `pending`,
//! `applied`, `invalid` and `ignore_fail` (from NVIDIA's own tooling), and
//! every leaf spelling noted in [`tree`].

pub mod plan;
pub mod tree;

use crate::http::{debug_config, encode, parse_marker, Http};
use crate::{Applied, Apply, Checked, Drift, DriverError, Result, SwitchDriver};
use neocloud_common::tls::TlsOptions;
use neocloud_fabric::{SwitchConfig, SwitchOs};
use serde_json::{json, Value};
use std::fmt;
use std::time::{Duration, Instant};

/// Where a switch's NVUE API is and how to log in.
#[derive(Clone)]
pub struct NvueConfig {
    /// The switch's name in the fabric (its hostname).
    pub switch: String,
    /// e.g. `https://leaf1.mgmt:8765`.
    pub url: String,
    pub username: String,
    pub password: String,
    /// Per request.
    pub timeout: Duration,
    /// Between polls of a revision being applied.
    pub poll_interval: Duration,
    /// How long a revision may take to apply.
    pub apply_timeout: Duration,
    /// The interface whose description records the generation.
    pub marker_interface: String,
    /// How an `https://` URL's certificate is verified (default: the
    /// built-in webpki roots).
    pub tls: TlsOptions,
}

impl NvueConfig {
    pub fn new(switch: &str, url: &str, username: &str, password: &str) -> NvueConfig {
        NvueConfig {
            switch: switch.into(),
            url: url.into(),
            username: username.into(),
            password: password.into(),
            timeout: Duration::from_secs(30),
            poll_interval: Duration::from_secs(1),
            apply_timeout: Duration::from_secs(180),
            marker_interface: "eth0".into(),
            tls: TlsOptions::default(),
        }
    }
}

impl fmt::Debug for NvueConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        debug_config(f, "NvueConfig", &self.switch, &self.url, &self.username, &self.tls)
    }
}

pub struct Nvue {
    cfg: NvueConfig,
    http: Http,
}

/// States a revision passes through on its way to `applied`.
const IN_PROGRESS: &[&str] =
    &["pending", "apply", "applying", "checking", "checked", "verifying", "reloading", "saving"];
const APPLIED: &[&str] = &["applied", "applied_and_saved", "saved"];

impl Nvue {
    pub fn new(cfg: NvueConfig) -> Nvue {
        let http = Http::new(&cfg.url, &cfg.username, &cfg.password, cfg.timeout, &cfg.tls);
        Nvue { cfg, http }
    }

    /// The applied configuration, without defaults.
    pub fn applied(&self) -> Result<Value> {
        let path = "/nvue_v1/?rev=applied&filled=false";
        let v = self.http.json("GET", path, None)?.value(path)?;
        match v {
            Value::Object(_) => Ok(v),
            Value::Null => Ok(json!({})),
            other => Err(DriverError::Failed(format!("GET {path}: not a tree: {other}"))),
        }
    }

    fn generation(&self, device: &Value) -> Option<u64> {
        let path = ["interface", &self.cfg.marker_interface, "description"].map(String::from);
        tree::get(device, &path).and_then(Value::as_str).and_then(parse_marker)
    }

    fn create_revision(&self) -> Result<String> {
        let path = "/nvue_v1/revision";
        let v = self.http.json("POST", path, None)?.value(path)?;
        v.as_object()
            .and_then(|m| m.keys().next().cloned())
            .ok_or_else(|| DriverError::Failed(format!("POST {path}: no revision in {v}")))
    }

    /// Applies revision `rev` and waits until the switch says it is applied.
    fn apply_revision(&self, rev: &str) -> Result<()> {
        let path = format!("/nvue_v1/revision/{}", encode(rev));
        let body = json!({"state": "apply", "auto-prompt": {"ays": "ays_yes"}});
        self.http.json("PATCH", &path, Some(&body))?;
        let deadline = Instant::now() + self.cfg.apply_timeout;
        loop {
            let v = self.http.json("GET", &path, None)?.value(&path)?;
            let state = v["state"].as_str().unwrap_or_default();
            if APPLIED.contains(&state) {
                return Ok(());
            }
            if !IN_PROGRESS.contains(&state) {
                return Err(DriverError::Failed(format!(
                    "revision {rev} ended {state:?}: {}",
                    issues(&v["transition"])
                )));
            }
            if Instant::now() >= deadline {
                return Err(DriverError::Unreachable(format!(
                    "revision {rev} still {state:?} after {:?}",
                    self.cfg.apply_timeout
                )));
            }
            std::thread::sleep(self.cfg.poll_interval);
        }
    }

    fn save(&self) -> Result<()> {
        let body = json!({"state": "save", "auto-prompt": {"ays": "ays_yes"}});
        self.http.json("PATCH", "/nvue_v1/revision/applied", Some(&body)).map(|_| ())
    }
}

/// `transition.progress` and every `transition.issue.*.message`.
fn issues(transition: &Value) -> String {
    let mut out: Vec<String> = transition["progress"]
        .as_str()
        .filter(|s| !s.is_empty())
        .map(String::from)
        .into_iter()
        .collect();
    if let Some(m) = transition["issue"].as_object() {
        for i in m.values() {
            let severity = i["severity"].as_str().unwrap_or("error");
            out.push(format!("[{severity}] {}", i["message"].as_str().unwrap_or_default()));
        }
    }
    if out.is_empty() {
        return "no reason given".into();
    }
    out.join("; ")
}

fn unsupported(e: neocloud_fabric::Error) -> DriverError {
    DriverError::Unsupported(e.to_string())
}

impl SwitchDriver for Nvue {
    fn os(&self) -> SwitchOs {
        SwitchOs::CumulusNvue
    }

    fn apply(&self, a: &Apply<'_>) -> Result<Applied> {
        let switch = &self.cfg.switch;
        // Refuse what NVUE cannot express before touching the switch.
        for o in a.desired.objects.values() {
            tree::claims(switch, o).map_err(unsupported)?;
        }
        let device = self.applied()?;
        if let Some(held) = self.generation(&device) {
            if held > a.generation {
                return Err(DriverError::Stale { device: held, offered: a.generation });
            }
        }
        let marker = plan::marker_claim(&self.cfg.marker_interface, a.generation);
        let change =
            plan::plan(switch, &device, a.actual, a.desired, &marker).map_err(unsupported)?;
        if change.is_empty() {
            return Ok(Applied { steps: Vec::new(), dry_run: a.dry_run });
        }
        let bodies: Vec<Value> = change.unset_body().into_iter().chain(change.set_body()).collect();
        let steps = |rev: &str| {
            let mut s = vec!["POST /nvue_v1/revision".to_string()];
            s.extend(bodies.iter().map(|b| format!("PATCH /nvue_v1/?rev={rev} {b}")));
            s.push(format!("PATCH /nvue_v1/revision/{rev} {{\"state\":\"apply\"}}"));
            s.push("PATCH /nvue_v1/revision/applied {\"state\":\"save\"}".into());
            s
        };
        if a.dry_run {
            return Ok(Applied { steps: steps("(new)"), dry_run: true });
        }
        let rev = self.create_revision()?;
        let path = format!("/nvue_v1/?rev={}", encode(&rev));
        for b in &bodies {
            self.http.json("PATCH", &path, Some(b))?;
        }
        self.apply_revision(&rev)?;
        self.save()?;
        Ok(Applied { steps: steps(&encode(&rev)), dry_run: false })
    }

    fn check(&self, expected: &SwitchConfig) -> Result<Checked> {
        let device = self.applied()?;
        let mut drift = Vec::new();
        for (id, o) in &expected.objects {
            let claims = tree::claims(&self.cfg.switch, o).map_err(unsupported)?;
            let problems: Vec<String> =
                claims.iter().filter_map(|c| tree::holds(&device, c).err()).collect();
            if !problems.is_empty() {
                drift.push(Drift { object: id.clone(), detail: problems.join("; ") });
            }
        }
        Ok(Checked { generation: self.generation(&device), drift })
    }
}
