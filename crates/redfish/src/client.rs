//! One BMC: its session, its request limits, retries and timeouts.

use crate::error::{RedfishError, Result};
use crate::limiter::Limiter;
use neocloud_common::tls::{self, TlsOptions};
use serde_json::Value;
use std::sync::Mutex;
use std::time::Duration;

/// How to reach a BMC and how patiently.
#[derive(Clone)]
pub struct BmcConfig {
    /// `http://host:port` or `https://host:port` (no trailing slash).
    pub endpoint: String,
    pub username: String,
    pub password: String,
    /// Per request.
    pub timeout: Duration,
    /// Requests in flight to this BMC at once (BMCs are small computers).
    pub max_in_flight: usize,
    /// Extra attempts for transient failures, with exponential backoff.
    pub retries: u32,
    pub backoff: Duration,
    /// How an `https://` endpoint's certificate is verified (default: the
    /// built-in webpki roots; BMCs with self-signed certificates need
    /// `ca_pem`, or `insecure_skip_verify`, which the caller logs).
    pub tls: TlsOptions,
}

impl std::fmt::Debug for BmcConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BmcConfig")
            .field("endpoint", &self.endpoint)
            .field("username", &self.username)
            .field("password", &"***")
            .field("tls", &self.tls)
            .finish()
    }
}

impl BmcConfig {
    pub fn new(endpoint: &str, username: &str, password: &str) -> BmcConfig {
        BmcConfig {
            endpoint: endpoint.trim_end_matches('/').to_string(),
            username: username.to_string(),
            password: password.to_string(),
            timeout: Duration::from_secs(30),
            max_in_flight: 4,
            retries: 3,
            backoff: Duration::from_millis(250),
            tls: TlsOptions::default(),
        }
    }
}

#[derive(Clone)]
enum Auth {
    /// Not logged in yet.
    None,
    /// A Redfish session: `X-Auth-Token`, and where to DELETE it.
    Session { token: String, location: Option<String> },
    /// The BMC has no session service: HTTP basic auth on every request.
    Basic,
}

/// A BMC login kept beyond one client: a Redfish session (its token and
/// where to end it), or the finding that the BMC takes basic auth. A
/// client resumed with it ([`Bmc::resume`]) logs in only when the BMC
/// refuses it (the session expired, the BMC restarted).
#[derive(Clone)]
pub struct Session(Auth);

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the token.
        f.write_str(match self.0 {
            Auth::None => "Session(none)",
            Auth::Session { .. } => "Session(token)",
            Auth::Basic => "Session(basic)",
        })
    }
}

pub struct Bmc {
    cfg: BmcConfig,
    agent: ureq::Agent,
    auth: Mutex<Auth>,
    lane: Limiter,
    /// Slow calls (firmware inventory) take one of these first, so they never
    /// fill the BMC's normal lane.
    slow_lane: Limiter,
}

/// A JSON answer with its status, `Location` and `X-Auth-Token` headers.
pub struct Answer {
    pub status: u16,
    pub body: Value,
    pub location: Option<String>,
    pub token: Option<String>,
}

fn transport(path: &str, e: ureq::Transport) -> RedfishError {
    let msg = tls::describe(&e);
    let timed_out =
        msg.contains("timed out") || msg.contains("Timeout") || msg.contains("WouldBlock");
    if timed_out {
        RedfishError::Timeout(format!("{path}: {msg}"))
    } else {
        RedfishError::Unreachable(format!("{path}: {msg}"))
    }
}

fn message_of(body: &Value) -> String {
    body["error"]["@Message.ExtendedInfo"][0]["Message"]
        .as_str()
        .or_else(|| body["error"]["message"].as_str())
        .unwrap_or("")
        .chars()
        .take(300)
        .collect()
}

/// The answer to one exchange (a status is an answer; a transport failure
/// an error).
fn answer_of(path: &str, res: std::result::Result<ureq::Response, ureq::Error>) -> Result<Answer> {
    let resp = match res {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(ureq::Error::Transport(t)) => return Err(transport(path, t)),
    };
    let status = resp.status();
    let location = resp.header("Location").map(str::to_string);
    let token = resp.header("X-Auth-Token").map(str::to_string);
    let text = resp
        .into_string()
        .map_err(|e| RedfishError::Timeout(format!("{path}: reading body: {e}")))?;
    let body = if text.trim().is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::Null)
    };
    Ok(Answer { status, body, location, token })
}

/// The error an answer's status makes of it (`None`: not one).
fn refusal(method: &str, path: &str, a: &Answer) -> Option<RedfishError> {
    match a.status {
        401 | 403 => Some(RedfishError::Auth(format!("{method} {path} refused ({})", a.status))),
        501 => Some(RedfishError::Unsupported(format!("{method} {path}: {}", message_of(&a.body)))),
        s if s >= 400 => Some(RedfishError::Status {
            status: s,
            path: path.to_string(),
            message: message_of(&a.body),
        }),
        _ => None,
    }
}

impl Bmc {
    /// A client that starts with `session` (from [`Bmc::keep_session`] of an
    /// earlier client of the same BMC and credentials) instead of logging in.
    pub fn resume(cfg: BmcConfig, session: Session) -> Bmc {
        let bmc = Bmc::new(cfg);
        *bmc.auth.lock().unwrap_or_else(|e| e.into_inner()) = session.0;
        bmc
    }

    /// Ends this client without ending its login, for the next client of the
    /// BMC to resume: `None` when it never logged in. Its connections close.
    pub fn keep_session(self) -> Option<Session> {
        let auth = std::mem::replace(
            &mut *self.auth.lock().unwrap_or_else(|e| e.into_inner()),
            Auth::None,
        );
        match auth {
            Auth::None => None,
            a @ (Auth::Session { .. } | Auth::Basic) => Some(Session(a)),
        }
    }

    pub fn new(cfg: BmcConfig) -> Bmc {
        let agent = tls::agent_builder(&cfg.tls)
            .timeout_connect(cfg.timeout.min(Duration::from_secs(10)))
            .timeout(cfg.timeout)
            .build();
        let lanes = cfg.max_in_flight.max(2);
        Bmc {
            agent,
            auth: Mutex::new(Auth::None),
            // One permit of the normal lane is kept from slow calls.
            lane: Limiter::new(lanes),
            slow_lane: Limiter::new(lanes - 1),
            cfg,
        }
    }

    pub fn endpoint(&self) -> &str {
        &self.cfg.endpoint
    }

    /// Holds the normal lane's permits right now (for tests and metrics).
    pub fn in_flight(&self) -> usize {
        self.lane.in_use()
    }

    fn url(&self, path: &str) -> String {
        if path.starts_with("http://") || path.starts_with("https://") {
            path.to_string()
        } else {
            format!("{}{path}", self.cfg.endpoint)
        }
    }

    /// A request with its credentials.
    fn start(&self, method: &str, path: &str, auth: &Auth) -> ureq::Request {
        let req = self.agent.request(method, &self.url(path)).set("Accept", "application/json");
        match auth {
            Auth::Session { token, .. } => req.set("X-Auth-Token", token),
            Auth::Basic => {
                let cred = neocloud_common::encoding::base64(&format!(
                    "{}:{}",
                    self.cfg.username, self.cfg.password
                ));
                req.set("Authorization", &format!("Basic {cred}"))
            }
            Auth::None => req,
        }
    }

    /// One HTTP exchange, no retry.
    fn once(&self, method: &str, path: &str, body: Option<&Value>, auth: &Auth) -> Result<Answer> {
        let req = self.start(method, path, auth);
        let res = match body {
            Some(b) => req.send_json(b.clone()),
            None => req.call(),
        };
        answer_of(path, res)
    }

    /// Uploads `len` bytes of `content_type` from `body` in one POST with
    /// a timeout of its own, on the slow lane: sent once (a streamed body
    /// cannot be sent again, nor after a refused session: a 401 is an
    /// error here). Statuses read as [`Self::request`] reads them.
    pub(crate) fn upload(
        &self,
        path: &str,
        content_type: &str,
        body: impl std::io::Read,
        len: u64,
        timeout: Duration,
    ) -> Result<Answer> {
        let _slow = self.slow_lane.acquire();
        let _permit = self.lane.acquire();
        let auth = self.current_auth()?;
        let res = self
            .start("POST", path, &auth)
            .set("Content-Type", content_type)
            .set("Content-Length", &len.to_string())
            .timeout(timeout)
            .send(body);
        let a = answer_of(path, res)?;
        match refusal("POST", path, &a) {
            Some(e) => Err(e),
            None => Ok(a),
        }
    }

    /// Logs in: a Redfish session where the service root links a session
    /// collection (`Links.Sessions`; the root is readable without
    /// credentials), else HTTP basic auth.
    fn login(&self) -> Result<Auth> {
        let root = self.once("GET", "/redfish/v1", None, &Auth::None)?;
        let sessions = match root.status {
            200..=299 => root.body["Links"]["Sessions"]["@odata.id"].as_str().map(str::to_string),
            _ => None,
        };
        let Some(sessions) = sessions else { return Ok(Auth::Basic) };
        let body =
            serde_json::json!({"UserName": self.cfg.username, "Password": self.cfg.password});
        let a = self.once("POST", &sessions, Some(&body), &Auth::None)?;
        match a.status {
            200..=299 => Ok(match a.token {
                Some(token) => Auth::Session { token, location: a.location },
                // A session service that hands out no token: basic auth.
                None => Auth::Basic,
            }),
            401 | 403 => Err(RedfishError::Auth(format!(
                "login as {} refused ({})",
                self.cfg.username, a.status
            ))),
            404 | 405 | 501 => Ok(Auth::Basic),
            s => Err(RedfishError::Status {
                status: s,
                path: sessions,
                message: message_of(&a.body),
            }),
        }
    }

    fn current_auth(&self) -> Result<Auth> {
        let mut guard = self.auth.lock().unwrap_or_else(|e| e.into_inner());
        if let Auth::None = *guard {
            *guard = self.login()?;
        }
        Ok(guard.clone())
    }

    fn forget_session(&self) {
        *self.auth.lock().unwrap_or_else(|e| e.into_inner()) = Auth::None;
    }

    /// A request with authentication, the lane limit, re-login on an
    /// expired session, and retries with backoff for transient failures.
    pub fn request(&self, method: &str, path: &str, body: Option<&Value>) -> Result<Answer> {
        self.request_with(method, path, body, self.cfg.retries)
    }

    /// [`Self::request`] sent at most once: no retry after a failure that
    /// may have reached the BMC (a timeout, a lost or 5xx answer), for
    /// actions that must not be done twice (a tenant's reboot). A session
    /// refused (401) is still renewed and the request sent again: the BMC
    /// did not act on it.
    pub fn request_at_most_once(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Answer> {
        self.request_with(method, path, body, 0)
    }

    fn request_with(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
        retries: u32,
    ) -> Result<Answer> {
        let _permit = self.lane.acquire();
        let mut delay = self.cfg.backoff;
        let mut relogged = false;
        let mut attempt = 0;
        loop {
            let res = self.current_auth().and_then(|auth| self.once(method, path, body, &auth));
            let res = match res {
                Ok(a) if a.status == 401 && !relogged => {
                    // The session expired or the BMC restarted: log in again once.
                    self.forget_session();
                    relogged = true;
                    continue;
                }
                Ok(a) => match refusal(method, path, &a) {
                    Some(e) => Err(e),
                    None => Ok(a),
                },
                other => other,
            };
            match res {
                Err(e) if e.is_transient() && attempt < retries => {
                    attempt += 1;
                    tracing::debug!(bmc = %self.cfg.endpoint, %path, error = %e, attempt, "retrying");
                    std::thread::sleep(delay);
                    delay = delay.saturating_mul(2);
                }
                other => return other,
            }
        }
    }

    /// A slow call: waits for the slow lane first, so slow calls never take
    /// every permit of the BMC.
    pub fn slow_get(&self, path: &str) -> Result<Value> {
        let _slow = self.slow_lane.acquire();
        self.get(path)
    }

    pub fn get(&self, path: &str) -> Result<Value> {
        self.request("GET", path, None).map(|a| a.body)
    }

    /// A GET where "not there / not implemented" means "nothing": `None`.
    pub fn get_optional(&self, path: &str) -> Result<Option<Value>> {
        match self.get(path) {
            Ok(v) => Ok(Some(v)),
            Err(RedfishError::Unsupported(_)) => Ok(None),
            Err(RedfishError::Status { status: 404 | 405 | 500, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Ends the session (best effort).
    pub fn logout(&self) {
        let auth = std::mem::replace(
            &mut *self.auth.lock().unwrap_or_else(|e| e.into_inner()),
            Auth::None,
        );
        if let Auth::Session { location: Some(loc), .. } = &auth {
            let _ = self.once("DELETE", loc, None, &auth);
        }
    }
}

impl Drop for Bmc {
    fn drop(&mut self) {
        self.logout();
    }
}
