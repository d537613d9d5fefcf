//! The NVIDIA UFM driver for InfiniBand partitions: reads the PKeys UFM has
//! (`GET /ufmRest/resources/pkeys?guids_data=true`), and applies the call
//! plan `neocloud_fabric::ib::ufm_changes` computes, in order, over HTTP
//! with basic auth. Blocking (call it from a blocking thread). Facts: the
//! UFM Enterprise REST API guide (PKey GUIDs API).
//!
//! `double` is a protocol-faithful UFM test double (no real UFM can run
//! here): the driver's real HTTP path is tested against it.

pub mod double;

use neocloud_common::tls::{self, TlsOptions};
use neocloud_fabric::ib::{
    ufm_changes, IbDesired, IbFabric, IbPartitionState, UfmCall, UfmMethod, DEFAULT_PKEY,
};
use serde_json::Value;
use std::fmt;
use std::time::Duration;

/// Where UFM is and how to log in.
#[derive(Clone)]
pub struct UfmConfig {
    /// e.g. `https://ufm.example:443` (no trailing slash needed).
    pub url: String,
    pub username: String,
    pub password: String,
    pub timeout: Duration,
    /// How an `https://` URL's certificate is verified (default: the
    /// built-in webpki roots).
    pub tls: TlsOptions,
}

impl UfmConfig {
    /// With a 30 s timeout and the default TLS verification.
    pub fn new(url: &str, username: &str, password: &str) -> UfmConfig {
        UfmConfig {
            url: url.into(),
            username: username.into(),
            password: password.into(),
            timeout: Duration::from_secs(30),
            tls: TlsOptions::default(),
        }
    }
}

impl fmt::Debug for UfmConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UfmConfig")
            .field("url", &self.url)
            .field("username", &self.username)
            .field("tls", &self.tls)
            .finish()
    }
}

#[derive(Debug)]
pub enum UfmError {
    /// UFM answered with an error status (the body as it said it).
    Status { status: u16, method: String, path: String, body: String },
    /// UFM could not be reached.
    Transport(String),
    /// UFM's answer was not what its API documents.
    BadAnswer(String),
}

impl UfmError {
    /// Worth retrying later (unreachable, or a server-side error).
    pub fn is_transient(&self) -> bool {
        match self {
            UfmError::Status { status, .. } => *status >= 500 || *status == 429,
            UfmError::Transport(_) => true,
            UfmError::BadAnswer(_) => false,
        }
    }
}

impl fmt::Display for UfmError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UfmError::Status { status, method, path, body } => {
                write!(f, "UFM answered {status} to {method} {path}: {body}")
            }
            UfmError::Transport(m) => write!(f, "UFM unreachable: {m}"),
            UfmError::BadAnswer(m) => write!(f, "unexpected answer from UFM: {m}"),
        }
    }
}

impl std::error::Error for UfmError {}

pub struct Ufm {
    cfg: UfmConfig,
    auth: String,
    http: ureq::Agent,
}

impl Ufm {
    pub fn new(cfg: UfmConfig) -> Ufm {
        let auth = format!(
            "Basic {}",
            neocloud_common::encoding::base64(&format!("{}:{}", cfg.username, cfg.password))
        );
        let http = tls::agent_builder(&cfg.tls).timeout(cfg.timeout).build();
        Ufm { cfg, auth, http }
    }

    fn call(&self, method: &str, path: &str, body: Option<&Value>) -> Result<Value, UfmError> {
        let url = format!("{}{}", self.cfg.url.trim_end_matches('/'), path);
        let req = self.http.request(method, &url).set("Authorization", &self.auth);
        let res = match body {
            Some(b) => req.send_json(b.clone()),
            None => req.call(),
        };
        match res {
            Ok(r) => {
                let text = r.into_string().map_err(|e| UfmError::Transport(e.to_string()))?;
                if text.trim().is_empty() {
                    return Ok(Value::Null);
                }
                serde_json::from_str(&text)
                    .map_err(|e| UfmError::BadAnswer(format!("{method} {path}: {e}")))
            }
            Err(ureq::Error::Status(status, r)) => Err(UfmError::Status {
                status,
                method: method.into(),
                path: path.into(),
                body: r.into_string().unwrap_or_default().chars().take(512).collect(),
            }),
            Err(ureq::Error::Transport(t)) => Err(UfmError::Transport(tls::describe(&t))),
        }
    }

    /// The partitions UFM has, with their GUIDs (the Default 0x7fff left
    /// out: the SM owns it).
    pub fn pkeys(&self) -> Result<IbDesired, UfmError> {
        let v = self.call("GET", "/ufmRest/resources/pkeys?guids_data=true", None)?;
        let map = match v {
            Value::Object(m) => m,
            Value::Null => Default::default(),
            other => return Err(UfmError::BadAnswer(format!("pkeys: not an object: {other}"))),
        };
        let mut out = IbDesired::default();
        for (key, p) in map {
            let pkey = parse_pkey(&key)
                .ok_or_else(|| UfmError::BadAnswer(format!("pkeys: bad PKey {key:?}")))?;
            if pkey == DEFAULT_PKEY {
                continue;
            }
            let name = p["partition"].as_str().unwrap_or_default().to_string();
            let mut state = IbPartitionState { name, ..Default::default() };
            for g in p["guids"].as_array().map(Vec::as_slice).unwrap_or_default() {
                let guid = g["guid"].as_str().ok_or_else(|| {
                    UfmError::BadAnswer(format!("pkey {key}: a GUID without `guid`"))
                })?;
                state.members.insert(guid.to_ascii_lowercase());
            }
            out.partitions.insert(pkey, state);
        }
        Ok(out)
    }

    /// Runs the calls in order; stops at the first refusal.
    pub fn apply(&self, calls: &[UfmCall]) -> Result<(), UfmError> {
        for c in calls {
            let method = match c.method {
                UfmMethod::Post => "POST",
                UfmMethod::Delete => "DELETE",
            };
            self.call(method, &c.path, c.body.as_ref())?;
        }
        Ok(())
    }

    /// Reads what UFM has, applies what differs from `desired` (only PKeys
    /// in the fabric's range), and returns the calls made.
    pub fn converge(
        &self,
        fabric: &IbFabric,
        desired: &IbDesired,
    ) -> Result<Vec<UfmCall>, UfmError> {
        let actual = self.pkeys()?;
        let calls = ufm_changes(fabric, desired, &actual);
        self.apply(&calls)?;
        Ok(calls)
    }
}

/// `0x12` (UFM writes PKeys as hex strings).
pub fn parse_pkey(s: &str) -> Option<u16> {
    let hex = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X"))?;
    u16::from_str_radix(hex, 16).ok().filter(|p| *p <= 0x7fff)
}
