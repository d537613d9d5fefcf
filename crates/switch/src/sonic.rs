//! SONiC CONFIG_DB driver.
//!
//! How CONFIG_DB is pushed: the reference (vendor-apis.md §5) documents the
//! CONFIG_DB tables and the `config` CLI, not a remote API. SONiC's
//! documented ways to change CONFIG_DB remotely are gNMI (with a JSON-patch
//! backend, the generic config updater) and the management framework's
//! RESTCONF server (RFC 8040 over the SONiC YANG models, HTTP basic auth).
//! gNMI is gRPC, which a blocking HTTP/1.1 client cannot speak, so this
//! driver uses RESTCONF: the change is computed as an RFC 6902 JSON patch
//! between the switch's CONFIG_DB and `desired` ([`patch`], the form `config
//! apply-patch` takes, and what a dry run returns, unsent), and each
//! operation is sent as its RESTCONF request ([`restconf`]). Unlike
//! apply-patch, the requests are not one transaction: a failure stops the
//! apply with the operations before it done; the generation is written
//! last, so a retry starts again from the switch's state.
//!
//! Not pushed here: SONiC's BGP/EVPN configuration. The fabric renders it
//! as FRR text for split mode (`neocloud_fabric::render::sonic` +
//! `render::frr`), which no SONiC REST interface loads (it needs vtysh or
//! frr-reload on the switch, or the frrcfgd `BGP_GLOBALS*` tables the
//! reference leaves open). `check` therefore judges CONFIG_DB only.
//!
//! The generation is the description of the management port
//! (`MGMT_PORT|eth0`, which must exist: it is merged into, never created):
//! CONFIG_DB tables without a YANG model (such as a `NEOCLOUD|state` key)
//! are refused by the YANG-backed interfaces.

pub mod patch;
pub mod restconf;

use crate::http::{debug_config, marker, parse_marker, status_error, Http, Reply};
use crate::{Applied, Apply, Checked, Drift, DriverError, Result, SwitchDriver};
use neocloud_common::tls::TlsOptions;
use neocloud_fabric::render::sonic::{render, ConfigDb};
use neocloud_fabric::{SwitchConfig, SwitchOs};
use patch::{Kind, Op};
use std::fmt;
use std::time::Duration;

/// Where a switch's RESTCONF server is and how to log in.
#[derive(Clone)]
pub struct SonicRestConfig {
    /// The switch's name in the fabric.
    pub switch: String,
    /// e.g. `https://leaf1.mgmt` (the REST server listens on 443).
    pub url: String,
    pub username: String,
    pub password: String,
    pub timeout: Duration,
    /// The `MGMT_PORT` entry whose description records the generation.
    pub marker_port: String,
    /// How an `https://` URL's certificate is verified (default: the
    /// built-in webpki roots).
    pub tls: TlsOptions,
}

impl SonicRestConfig {
    pub fn new(switch: &str, url: &str, username: &str, password: &str) -> SonicRestConfig {
        SonicRestConfig {
            switch: switch.into(),
            url: url.into(),
            username: username.into(),
            password: password.into(),
            timeout: Duration::from_secs(30),
            marker_port: "eth0".into(),
            tls: TlsOptions::default(),
        }
    }
}

impl fmt::Debug for SonicRestConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        debug_config(f, "SonicRestConfig", &self.switch, &self.url, &self.username, &self.tls)
    }
}

pub struct Sonic {
    cfg: SonicRestConfig,
    http: Http,
}

const YANG_JSON: &str = "application/yang-data+json";

impl Sonic {
    pub fn new(cfg: SonicRestConfig) -> Sonic {
        let http = Http::new(&cfg.url, &cfg.username, &cfg.password, cfg.timeout, &cfg.tls);
        Sonic { cfg, http }
    }

    /// Sends a request; any status but a 2xx is the error it means, with
    /// the RESTCONF error messages. `None` for a 404 where `missing_ok`.
    fn send(
        &self,
        method: &str,
        path: &str,
        body: Option<&serde_json::Value>,
        missing_ok: bool,
    ) -> Result<Option<Reply>> {
        let text = body.map(|b| b.to_string());
        let reply = self.http.send(method, path, text.as_deref().map(|t| (YANG_JSON, t)))?;
        match reply.status {
            200..=299 => Ok(Some(reply)),
            404 if missing_ok => Ok(None),
            status => Err(status_error(
                status,
                &format!("{method} {path}"),
                &restconf::error_message(&reply.body),
            )),
        }
    }

    /// The switch's CONFIG_DB, for the tables the driver knows.
    pub fn config_db(&self) -> Result<ConfigDb> {
        let mut db = ConfigDb::new();
        for m in restconf::modules() {
            let path = restconf::module_path(m);
            // RFC 8040: a container with no data does not exist (404).
            if let Some(r) = self.send("GET", &path, None, true)? {
                restconf::read_module(&mut db, m, &r.value(&path)?);
            }
        }
        Ok(db)
    }

    fn description(&self, db: &ConfigDb) -> Option<String> {
        db.get("MGMT_PORT")?.get(&self.cfg.marker_port)?.get("description").cloned()
    }

    fn rendered(&self, cfg: &SwitchConfig) -> Result<ConfigDb> {
        render(&self.cfg.switch, cfg)
            .map(|r| r.config_db)
            .map_err(|e| DriverError::Unsupported(e.to_string()))
    }
}

impl SwitchDriver for Sonic {
    fn os(&self) -> SwitchOs {
        SwitchOs::Sonic
    }

    fn apply(&self, a: &Apply<'_>) -> Result<Applied> {
        let desired = self.rendered(a.desired)?;
        let actual = self.rendered(a.actual)?;
        let device = self.config_db()?;
        let description = self.description(&device);
        if let Some(held) = description.as_deref().and_then(parse_marker) {
            if held > a.generation {
                return Err(DriverError::Stale { device: held, offered: a.generation });
            }
        }
        let mut ops = patch::patch(&device, &actual, &desired);
        let mark = marker(a.generation);
        if description.as_deref() != Some(mark.as_str()) {
            let kind = if description.is_some() { Kind::Replace } else { Kind::Add };
            ops.push(Op {
                kind,
                table: "MGMT_PORT".into(),
                key: self.cfg.marker_port.clone(),
                field: Some("description".into()),
                value: Some(mark.into()),
            });
        }
        let steps: Vec<String> = ops.iter().map(|o| o.to_json().to_string()).collect();
        if a.dry_run {
            return Ok(Applied { steps, dry_run: true });
        }
        let requests =
            ops.iter().map(restconf::request).collect::<std::result::Result<Vec<_>, _>>();
        for r in requests.map_err(DriverError::Unsupported)? {
            self.send(r.method, &r.path, r.body.as_ref(), false)?;
        }
        Ok(Applied { steps, dry_run: false })
    }

    fn check(&self, expected: &SwitchConfig) -> Result<Checked> {
        let device = self.config_db()?;
        let mut drift = Vec::new();
        for (id, o) in &expected.objects {
            let mut one = SwitchConfig::new(expected.os);
            one.insert(o.clone());
            let mut problems = Vec::new();
            for (table, keys) in self.rendered(&one)? {
                for (key, fields) in keys {
                    let Some(have) = device.get(&table).and_then(|t| t.get(&key)) else {
                        problems.push(format!("{table}|{key} is missing"));
                        continue;
                    };
                    for (f, v) in fields {
                        match have.get(&f) {
                            Some(h) if *h == v => {}
                            Some(h) => problems.push(format!(
                                "{table}|{key}.{f}: the switch has {h:?}, expected {v:?}"
                            )),
                            None => problems.push(format!("{table}|{key}.{f} is missing")),
                        }
                    }
                }
            }
            if !problems.is_empty() {
                drift.push(Drift { object: id.clone(), detail: problems.join("; ") });
            }
        }
        Ok(Checked {
            generation: self.description(&device).as_deref().and_then(parse_marker),
            drift,
        })
    }
}
