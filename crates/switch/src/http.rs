//! The HTTP transport the REST drivers (NVUE, eAPI, SONiC RESTCONF) share:
//! basic auth, one blocking `ureq` agent, and the one mapping from HTTP
//! outcomes to [`DriverError`]: 401/403 are `Unauthorized`; connection
//! failures, 5xx and 429 are `Unreachable` (worth retrying); any other
//! 4xx is `Failed` with the device's own message.
//!
//! TLS: `https://` URLs are verified as the configuration's
//! [`TlsOptions`] say (default: the built-in webpki roots; a switch's own
//! CA through `ca_pem`); a refused certificate is `Unreachable`, saying so.

use crate::DriverError;
use neocloud_common::tls::{self, TlsOptions};
use std::fmt;
use std::time::Duration;

/// What a device answered: any HTTP status, with its body.
#[derive(Debug, Clone)]
pub(crate) struct Reply {
    pub status: u16,
    pub body: String,
}

pub(crate) struct Http {
    base: String,
    auth: String,
    agent: ureq::Agent,
}

impl Http {
    pub fn new(
        url: &str,
        username: &str,
        password: &str,
        timeout: Duration,
        tls: &TlsOptions,
    ) -> Http {
        let auth = format!(
            "Basic {}",
            neocloud_common::encoding::base64(&format!("{username}:{password}"))
        );
        Http {
            base: url.trim_end_matches('/').to_string(),
            auth,
            agent: tls::agent_builder(tls).timeout(timeout).build(),
        }
    }

    /// Sends one request. Any HTTP status is a [`Reply`]; only a transport
    /// failure (refused, reset, timed out) is an error here.
    pub fn send(
        &self,
        method: &str,
        path: &str,
        body: Option<(&str, &str)>,
    ) -> Result<Reply, DriverError> {
        let url = format!("{}{}", self.base, path);
        let req = self.agent.request(method, &url).set("Authorization", &self.auth);
        let res = match body {
            Some((content_type, text)) => req.set("Content-Type", content_type).send_string(text),
            None => req.call(),
        };
        let r = match res {
            Ok(r) => r,
            Err(ureq::Error::Status(_, r)) => r,
            Err(ureq::Error::Transport(t)) => {
                return Err(DriverError::Unreachable(format!(
                    "{method} {path}: {}",
                    tls::describe(&t)
                )))
            }
        };
        let status = r.status();
        let body = r
            .into_string()
            .map_err(|e| DriverError::Unreachable(format!("{method} {path}: reading: {e}")))?;
        Ok(Reply { status, body })
    }

    /// Sends a JSON body (or none) and requires a 2xx answer.
    pub fn json(
        &self,
        method: &str,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<Reply, DriverError> {
        let text = body.map(|b| b.to_string());
        let reply = self.send(method, path, text.as_deref().map(|t| ("application/json", t)))?;
        reply.ok(method, path)
    }
}

impl Reply {
    /// The reply if it is a 2xx; otherwise the error its status means.
    pub fn ok(self, method: &str, path: &str) -> Result<Reply, DriverError> {
        if (200..300).contains(&self.status) {
            return Ok(self);
        }
        Err(status_error(self.status, &format!("{method} {path}"), &self.body))
    }

    /// The body as JSON (`Null` when empty).
    pub fn value(&self, what: &str) -> Result<serde_json::Value, DriverError> {
        if self.body.trim().is_empty() {
            return Ok(serde_json::Value::Null);
        }
        serde_json::from_str(&self.body).map_err(|e| {
            DriverError::Failed(format!("{what}: the switch's answer is not JSON: {e}"))
        })
    }
}

/// The error an HTTP status means (the body is the device's message).
pub(crate) fn status_error(status: u16, what: &str, body: &str) -> DriverError {
    let said: String = body.trim().chars().take(512).collect();
    let m = format!("{what}: HTTP {status}: {said}");
    match status {
        401 | 403 => DriverError::Unauthorized(m),
        429 | 500..=599 => DriverError::Unreachable(m),
        _ => DriverError::Failed(m),
    }
}

/// A REST driver configuration's `Debug`: the switch, its URL, the user
/// and the TLS options, never the password.
pub(crate) fn debug_config(
    f: &mut fmt::Formatter<'_>,
    name: &str,
    switch: &str,
    url: &str,
    username: &str,
    tls: &TlsOptions,
) -> fmt::Result {
    f.debug_struct(name)
        .field("switch", &switch)
        .field("url", &url)
        .field("username", &username)
        .field("tls", tls)
        .finish()
}

/// Percent-encodes everything but RFC 3986 unreserved characters (for a
/// path segment or a query value: `changeset/a/b` -> `changeset%2Fa%2Fb`).
pub(crate) fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// The generation marker every driver writes in a description the driver
/// owns on the device: `neocloud generation 7`.
pub(crate) fn marker(generation: u64) -> String {
    format!("{MARKER_PREFIX}{generation}")
}

const MARKER_PREFIX: &str = "neocloud generation ";

/// Reads a marker back (`None`: not ours, or never written).
pub(crate) fn parse_marker(description: &str) -> Option<u64> {
    description.trim().strip_prefix(MARKER_PREFIX)?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_to_driver_errors() {
        assert!(matches!(status_error(401, "x", ""), DriverError::Unauthorized(_)));
        assert!(matches!(status_error(403, "x", ""), DriverError::Unauthorized(_)));
        assert!(matches!(status_error(429, "x", ""), DriverError::Unreachable(_)));
        assert!(matches!(status_error(502, "x", ""), DriverError::Unreachable(_)));
        match status_error(400, "PATCH /x", "{\"detail\":\"bad vlan\"}") {
            DriverError::Failed(m) => assert!(m.contains("bad vlan") && m.contains("PATCH /x")),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn configs_never_show_the_password() {
        let (sw, url, user, pw) = ("leaf1", "http://leaf1.mgmt", "admin", "s3cret");
        for shown in [
            format!("{:?}", crate::eos::EosConfig::new(sw, url, user, pw)),
            format!("{:?}", crate::nvue::NvueConfig::new(sw, url, user, pw)),
            format!("{:?}", crate::sonic::SonicRestConfig::new(sw, url, user, pw)),
        ] {
            assert!(
                shown.ends_with(
                    r#"{ switch: "leaf1", url: "http://leaf1.mgmt", username: "admin", tls: TlsOptions { ca_pem: None, insecure_skip_verify: false } }"#
                ),
                "{shown}"
            );
            assert!(!shown.contains(pw), "{shown}");
        }
    }

    #[test]
    fn encoding_and_markers() {
        assert_eq!(
            encode("changeset/cumulus/2023-04-06_20.22.44"),
            "changeset%2Fcumulus%2F2023-04-06_20.22.44"
        );
        assert_eq!(encode("Vlan10,10.0.0.1/24"), "Vlan10%2C10.0.0.1%2F24");
        assert_eq!(parse_marker(&marker(42)), Some(42));
        assert_eq!(parse_marker("uplink to spine"), None);
    }
}
