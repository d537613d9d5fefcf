//! One BMC: its session, its request limits, retries and timeouts.

use crate::error::{RedfishError, Result};
use crate::limiter::Lanes;
use neocloud_common::tls::{self, TlsOptions};
use serde_json::Value;
use std::sync::{Arc, Mutex};
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
    /// The longest wait a `Retry-After` (of a 503 or 429) is granted before
    /// the next attempt: a BMC may ask for minutes, and a step that waits
    /// that long holds a worker; the step is tried again later instead.
    pub max_retry_after: Duration,
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
            max_retry_after: Duration::from_secs(10),
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
    /// The BMC's lanes: its own, or shared with every client of the BMC
    /// ([`Bmc::sharing_lanes`]). Slow calls (firmware inventory) take a
    /// permit of the slow lane first, so they never fill the normal lane.
    lanes: Arc<Lanes>,
    /// The endpoint's origin (`scheme://host:port`, see [`origin_and_rest`])
    /// and the path it is served under (empty for most BMCs): the only
    /// place credentials are sent to.
    origin: Option<String>,
    prefix: String,
}

/// A JSON answer with its status, `Location`, `X-Auth-Token` and
/// `Retry-After` headers.
pub struct Answer {
    pub status: u16,
    pub body: Value,
    pub location: Option<String>,
    pub token: Option<String>,
    /// `Retry-After` in seconds (the HTTP-date form is not read).
    pub retry_after: Option<Duration>,
}

/// GET redirects followed at most (ureq's own following is off: it turns a
/// redirected POST into a GET and keeps `X-Auth-Token` across hosts).
const MAX_REDIRECTS: usize = 3;

fn timed_out(msg: &str) -> bool {
    msg.contains("timed out") || msg.contains("Timeout") || msg.contains("WouldBlock")
}

/// A transport failure, by whether the request left: never sent (no
/// connection, no TLS handshake, no URL to send it to) is
/// [`RedfishError::Unreachable`], which even a POST may be sent again
/// after; failed after the connection was made is a timeout or a lost
/// connection, which the BMC may have acted on.
fn transport(path: &str, e: ureq::Transport) -> RedfishError {
    use ureq::ErrorKind as K;
    let msg = format!("{path}: {}", tls::describe(&e));
    match e.kind() {
        K::Dns
        | K::ConnectionFailed
        | K::InvalidUrl
        | K::UnknownScheme
        | K::InsecureRequestHttpsOnly
        | K::InvalidProxyUrl
        | K::ProxyConnect
        | K::ProxyUnauthorized => RedfishError::Unreachable(msg),
        K::Io | K::BadStatus | K::BadHeader | K::TooManyRedirects | K::HTTP => {
            if timed_out(&msg) {
                RedfishError::Timeout(msg)
            } else {
                RedfishError::ConnectionLost(msg)
            }
        }
    }
}

/// An absolute URL's origin, normalized for comparison (`scheme://host:port`,
/// lowercase, the scheme's default port written out), and the rest of it
/// (path and query, `/` where empty; no fragment). `None` for a path.
pub(crate) fn origin_and_rest(url: &str) -> Option<(String, &str)> {
    let (scheme, rest) = url.split_once("://")?;
    let scheme_ok = !scheme.is_empty()
        && scheme.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    if !scheme_ok {
        return None;
    }
    let rest = rest.split('#').next().unwrap_or("");
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let scheme = scheme.to_ascii_lowercase();
    let authority = authority.to_ascii_lowercase();
    // `host:port`, `[v6]:port`: a port is after the last `:` not inside `[]`.
    let has_port = authority.rfind(':').is_some_and(|i| !authority[i..].contains(']'));
    let authority = match (has_port, scheme.as_str()) {
        (false, "http") => format!("{authority}:80"),
        (false, "https") => format!("{authority}:443"),
        _ => authority,
    };
    let tail = if tail.is_empty() { "/" } else { tail };
    Some((format!("{scheme}://{authority}"), tail))
}

/// A BMC URI's path and query: an absolute URL's (whatever host it
/// names), or the URI as it is.
pub(crate) fn path_of(uri: &str) -> &str {
    origin_and_rest(uri).map(|(_, rest)| rest).unwrap_or(uri)
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
    let retry_after = resp
        .header("Retry-After")
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let text = resp.into_string().map_err(|e| {
        let msg = format!("{path}: reading body: {e}");
        match e.kind() {
            std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock => {
                RedfishError::Timeout(msg)
            }
            _ if timed_out(&msg) => RedfishError::Timeout(msg),
            _ => RedfishError::ConnectionLost(msg),
        }
    })?;
    let body = if text.trim().is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::Null)
    };
    Ok(Answer { status, body, location, token, retry_after })
}

/// The error an answer's status makes of it (`None`: not one). A redirect
/// still standing is one: a write redirected was not done (it is never
/// sent on), and a GET is followed before this ([`Bmc::once`]).
fn refusal(method: &str, path: &str, a: &Answer) -> Option<RedfishError> {
    match a.status {
        s @ 300..=399 => Some(RedfishError::Status {
            status: s,
            path: path.to_string(),
            message: format!(
                "{method} redirected to {}: not followed",
                a.location.as_deref().unwrap_or("no Location")
            ),
        }),
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
            // Redirects are ours to follow (GETs only, same origin only).
            .redirects(0)
            .build();
        let (origin, prefix) = match origin_and_rest(&cfg.endpoint) {
            Some((o, rest)) => (Some(o), rest.split('?').next().unwrap_or("").to_string()),
            None => (None, String::new()),
        };
        Bmc {
            agent,
            auth: Mutex::new(Auth::None),
            lanes: Lanes::new(cfg.max_in_flight),
            origin,
            prefix: prefix.trim_end_matches('/').to_string(),
            cfg,
        }
    }

    pub fn endpoint(&self) -> &str {
        &self.cfg.endpoint
    }

    /// This client takes its permits from `lanes` (the BMC's, shared with
    /// its other clients: [`crate::LanesByEndpoint`]) instead of its own.
    pub fn sharing_lanes(mut self, lanes: Arc<Lanes>) -> Bmc {
        self.lanes = lanes;
        self
    }

    /// Holds the normal lane's permits right now (for tests and metrics).
    pub fn in_flight(&self) -> usize {
        self.lanes.lane.in_use()
    }

    /// Where a path (or a URI the BMC gave: an `@odata.id`, an action's
    /// `target`, a `Location`) is requested: always under the configured
    /// endpoint. An absolute URL is taken as its path and query only: a
    /// BMC (or whoever wrote its answers, a tenant through the host
    /// interface) naming another host never gets the credentials sent
    /// there.
    fn url(&self, path: &str) -> String {
        let Some((origin, rest)) = origin_and_rest(path) else {
            return format!("{}{path}", self.cfg.endpoint);
        };
        if self.origin.as_deref() == Some(origin.as_str()) {
            // The endpoint's own URL, its path prefix included.
            if let Some(under) = rest.strip_prefix(self.prefix.as_str()) {
                if under.starts_with('/') || under.starts_with('?') || under.is_empty() {
                    return format!("{}{under}", self.cfg.endpoint);
                }
            }
        } else {
            tracing::debug!(bmc = %self.cfg.endpoint, url = %path, "a URL naming another host: its path is requested of the BMC");
        }
        format!("{}{rest}", self.cfg.endpoint)
    }

    /// Where a redirect from `current` (a URL [`Self::url`] made, or one
    /// followed) to `location` goes, where that is the endpoint's origin;
    /// `None` for another origin (credentials are never sent there).
    fn redirect_target(&self, current: &str, location: &str) -> Option<String> {
        let origin = self.origin.as_deref()?;
        let scheme = origin.split("://").next().unwrap_or("http");
        let absolute = if location.starts_with("//") {
            format!("{scheme}:{location}")
        } else if origin_and_rest(location).is_some() {
            location.to_string()
        } else if location.starts_with('/') {
            format!("{origin}{location}")
        } else {
            // Relative to the current path's directory.
            let (_, rest) = origin_and_rest(current)?;
            let path = rest.split('?').next().unwrap_or("/");
            let dir = path.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
            format!("{origin}{dir}/{location}")
        };
        let (o, rest) = origin_and_rest(&absolute)?;
        (o == origin).then(|| format!("{o}{rest}"))
    }

    /// A request of `url` with its credentials.
    fn start(&self, method: &str, url: &str, auth: &Auth) -> ureq::Request {
        let req = self.agent.request(method, url).set("Accept", "application/json");
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

    /// One HTTP exchange, no retry. A GET redirected (301, 302, 303, 307,
    /// 308) is followed, at most [`MAX_REDIRECTS`] times and only within the
    /// endpoint's origin (a redirect elsewhere is a protocol error naming
    /// it: the credentials are not sent there). Other methods are never
    /// followed: their redirect is the answer ([`refusal`] makes it an
    /// error).
    fn once(&self, method: &str, path: &str, body: Option<&Value>, auth: &Auth) -> Result<Answer> {
        let mut url = self.url(path);
        let mut followed = 0;
        loop {
            let req = self.start(method, &url, auth);
            let res = match body {
                Some(b) => req.send_json(b.clone()),
                None => req.call(),
            };
            let a = answer_of(path, res)?;
            let redirected = matches!(a.status, 301 | 302 | 303 | 307 | 308);
            let location = match a.location.as_deref() {
                Some(l) if redirected && method.eq_ignore_ascii_case("GET") => l,
                _ => return Ok(a),
            };
            if followed == MAX_REDIRECTS {
                return Err(RedfishError::Protocol(format!(
                    "GET {path}: more than {MAX_REDIRECTS} redirects (the last to {location})"
                )));
            }
            url = self.redirect_target(&url, location).ok_or_else(|| {
                RedfishError::Protocol(format!(
                    "GET {path}: redirected to {location}, outside the BMC's endpoint: not followed"
                ))
            })?;
            followed += 1;
        }
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
        let _slow = self.lanes.slow_lane.acquire();
        let _permit = self.lanes.lane.acquire();
        let auth = self.current_auth()?;
        let res = self
            .start("POST", &self.url(path), &auth)
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
    /// expired session, and retries with backoff for transient failures
    /// (waiting at least what a 503's or 429's `Retry-After` asks, up to
    /// [`BmcConfig::max_retry_after`]).
    ///
    /// A POST (an action: a reset, an update, media, clearing a log) is
    /// not idempotent: it is sent again only where the BMC provably did not
    /// act on it (no connection was made, or it answered 503 or 429).
    /// After a timeout, a connection lost mid-exchange or another 5xx the
    /// error surfaces at once (transient: the caller reads the state again
    /// before deciding to repeat the step); a second reset or update task
    /// would otherwise be started, or a second "On" refused as already on.
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
        let _permit = self.lanes.lane.acquire();
        let not_idempotent = method.eq_ignore_ascii_case("POST");
        let mut delay = self.cfg.backoff;
        let mut relogged = false;
        let mut attempt = 0;
        loop {
            // A failed login sent nothing of this request.
            let (res, sent) = match self.current_auth() {
                Ok(auth) => (self.once(method, path, body, &auth), true),
                Err(e) => (Err(e), false),
            };
            let mut wait = delay;
            let res = match res {
                Ok(a) if a.status == 401 && !relogged => {
                    // The session expired or the BMC restarted: log in again once.
                    self.forget_session();
                    relogged = true;
                    continue;
                }
                Ok(a) => {
                    if let (429 | 503, Some(after)) = (a.status, a.retry_after) {
                        wait = wait.max(after.min(self.cfg.max_retry_after));
                    }
                    match refusal(method, path, &a) {
                        Some(e) => Err(e),
                        None => Ok(a),
                    }
                }
                Err(e) => Err(e),
            };
            match res {
                Err(e) if attempt < retries && worth_retrying(&e, sent && not_idempotent) => {
                    attempt += 1;
                    tracing::debug!(bmc = %self.cfg.endpoint, %path, error = %e, attempt, "retrying");
                    std::thread::sleep(wait);
                    delay = delay.saturating_mul(2);
                }
                other => return other,
            }
        }
    }

    /// A slow call: waits for the slow lane first, so slow calls never take
    /// every permit of the BMC.
    pub fn slow_get(&self, path: &str) -> Result<Value> {
        let _slow = self.lanes.slow_lane.acquire();
        self.get(path)
    }

    pub fn get(&self, path: &str) -> Result<Value> {
        self.request("GET", path, None).map(|a| a.body)
    }

    /// A GET where "not there / not implemented" (404, 405, 501) means
    /// "nothing": `None`. A 500 that outlasted the retries is an error: a
    /// resource the BMC failed to serve is not one it lacks (a collection's
    /// member read as absent is left out of what the caller checks: a BMC
    /// account, a host interface, a boot option the sanitizer never sees).
    pub fn get_optional(&self, path: &str) -> Result<Option<Value>> {
        match self.get(path) {
            Ok(v) => Ok(Some(v)),
            Err(RedfishError::Unsupported(_)) => Ok(None),
            Err(RedfishError::Status { status: 404 | 405, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// [`Self::get_optional`] that reads a 500 (after the retries) as
    /// "nothing" too: for resources some BMCs fail with 500 where they have
    /// none (sushy-tools answers 500 for `Storage`), and reads for
    /// diagnosis only, where one part the BMC fails to serve must not hide
    /// the others.
    pub(crate) fn get_optional_or_failed(&self, path: &str) -> Result<Option<Value>> {
        match self.get_optional(path) {
            Err(RedfishError::Status { status: 500, .. }) => Ok(None),
            other => other,
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

/// Whether a failed request is worth another try. `may_have_acted`: it
/// must not be done twice (a POST) and it was sent, so only a failure that
/// proves the BMC did not act on it counts: no connection was made, or the
/// BMC said it is busy (503) or asked to slow down (429).
fn worth_retrying(e: &RedfishError, may_have_acted: bool) -> bool {
    if !may_have_acted {
        return e.is_transient();
    }
    match e {
        RedfishError::Unreachable(_) => true,
        RedfishError::Status { status: 429 | 503, .. } => true,
        RedfishError::ConnectionLost(_)
        | RedfishError::Timeout(_)
        | RedfishError::Status { .. }
        | RedfishError::Auth(_)
        | RedfishError::Unsupported(_)
        | RedfishError::Protocol(_) => false,
    }
}

impl Drop for Bmc {
    fn drop(&mut self) {
        self.logout();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_compared_normalized() {
        let o = |u: &str| origin_and_rest(u).map(|(o, r)| (o, r.to_string()));
        assert_eq!(o("HTTP://BMC:80/a?b#c"), Some(("http://bmc:80".into(), "/a?b".into())));
        assert_eq!(o("https://10.0.0.9"), Some(("https://10.0.0.9:443".into(), "/".into())));
        assert_eq!(o("https://[fd00::1]/x"), Some(("https://[fd00::1]:443".into(), "/x".into())));
        assert_eq!(o("http://[fd00::1]:8000/x").unwrap().0, "http://[fd00::1]:8000");
        assert_eq!(o("/redfish/v1"), None);
        assert_eq!(path_of("https://evil:1/redfish/v1/Systems/1?x"), "/redfish/v1/Systems/1?x");
        assert_eq!(path_of("/redfish/v1"), "/redfish/v1");
    }

    /// Everything is requested under the endpoint (its path prefix kept):
    /// an absolute URL of another host by its path only, one of the
    /// endpoint's own as it is; redirects stay within the endpoint's origin.
    #[test]
    fn urls_stay_under_the_endpoint() {
        let bmc = Bmc::new(BmcConfig::new("http://sim:8080/simbmc/3/", "u", "p"));
        assert_eq!(bmc.url("/redfish/v1"), "http://sim:8080/simbmc/3/redfish/v1");
        assert_eq!(
            bmc.url("https://evil/redfish/v1/x?y"),
            "http://sim:8080/simbmc/3/redfish/v1/x?y"
        );
        assert_eq!(
            bmc.url("http://SIM:8080/simbmc/3/redfish/v1/x"),
            "http://sim:8080/simbmc/3/redfish/v1/x"
        );
        // Same host, outside the prefix: under the endpoint all the same.
        assert_eq!(
            bmc.url("http://sim:8080/simbmc/30/redfish/v1"),
            "http://sim:8080/simbmc/3/simbmc/30/redfish/v1"
        );
        let from = "http://sim:8080/simbmc/3/redfish/v1/Systems";
        let to = |l: &str| bmc.redirect_target(from, l);
        assert_eq!(
            to("/redfish/v1/Systems/").as_deref(),
            Some("http://sim:8080/redfish/v1/Systems/")
        );
        assert_eq!(to("Systems/").as_deref(), Some("http://sim:8080/simbmc/3/redfish/v1/Systems/"));
        assert_eq!(to("http://sim/x"), None, "another port");
        assert_eq!(to("https://sim:8080/x"), None, "another scheme");
        assert_eq!(to("//evil:8080/x"), None, "another host");
        assert_eq!(to("//sim:8080/x").as_deref(), Some("http://sim:8080/x"));
    }
}
