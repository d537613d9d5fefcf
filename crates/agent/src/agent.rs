//! The agent's side of the control plane protocol.
//!
//! 1. `POST {api}/agent/v1/register` with the one-time provisioning token
//!    and the inventory; the answer carries the agent's own credential.
//! 2. `POST {api}/agent/v1/heartbeat` (bearer credential) every
//!    `heartbeat_interval_ms`; the answer lists the steps waiting.
//! 3. Each step is run once, in order, on a worker thread (heartbeats go on
//!    meanwhile), and its result is sent to `POST {api}/agent/v1/steps/{id}`.
//!
//! A 401 on a heartbeat (or a step report) means the credential was
//! revoked: the node was handed back or its sanitization is over, and
//! [`Agent::run`] answers [`Exit::Revoked`]. Transport failures, 408, 429
//! and 5xx answers are retried with a capped exponential backoff.

use neocloud_common::tls::TlsOptions;
use std::collections::{HashSet, VecDeque};
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use neocloud_types::{
    AgentHeartbeat, AgentHeartbeatReply, AgentRegister, AgentRegistered, AgentStep, AgentStepKind,
    AgentStepResult, AgentTpmChallenge, AgentTpmKeys, AgentTpmProof, AgentTpmProven, ErrorBody,
    StepItem,
};

use crate::tpm::TpmError;
use crate::tpm_identity::{IdentityError, TpmIdentity};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::{run_step, Hardware};

/// How often `stop` is looked at while waiting (a finished step wakes the
/// loop at once). Agents are long-lived and mostly idle: a short slice
/// costs CPU on every node for nothing.
const SLICE: Duration = Duration::from_millis(100);
/// The first retry delay; it doubles up to [`BACKOFF_MAX`].
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);
/// Bounds on the server-given heartbeat interval.
const INTERVAL_MIN: Duration = Duration::from_millis(10);
const INTERVAL_MAX: Duration = Duration::from_secs(600);

/// Why [`Agent::run`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// The control plane revoked the credential (answered 401): the node
    /// was handed back or sanitization finished. Nothing more to do.
    Revoked,
    /// `stop` was set.
    Stopped,
}

/// An error answer from the control plane.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiFailure {
    pub status: u16,
    /// The error body's `code` (empty when the body was not the API's).
    pub code: String,
    pub message: String,
}

impl fmt::Display for ApiFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.code.is_empty() {
            write!(f, "HTTP {}: {}", self.status, self.message)
        } else {
            write!(f, "HTTP {} {}: {}", self.status, self.code, self.message)
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgentError {
    /// A bad argument (API URL, empty token).
    Usage(String),
    /// Registration answered 401, 403, 404 or 409: the token is wrong,
    /// expired or already used. Retrying cannot help.
    TokenRefused(ApiFailure),
    /// Any other answer that retrying will not fix (a 4xx).
    Api(ApiFailure),
    /// The control plane could not be reached, or answered 408, 429 or
    /// 5xx: retrying may help.
    Unavailable(String),
    /// An answer that is not what the protocol says.
    Protocol(String),
}

impl AgentError {
    /// Whether trying again later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, AgentError::Unavailable(_))
    }
}

impl fmt::Display for AgentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AgentError::Usage(m) => f.write_str(m),
            AgentError::TokenRefused(e) => {
                write!(f, "the provisioning token was refused by the control plane ({e})")
            }
            AgentError::Api(e) => write!(f, "the control plane answered {e}"),
            AgentError::Unavailable(m) => write!(f, "the control plane is unavailable: {m}"),
            AgentError::Protocol(m) => write!(f, "unexpected answer from the control plane: {m}"),
        }
    }
}

impl std::error::Error for AgentError {}

/// Where a log line goes; one line per event.
pub type Logger = Arc<dyn Fn(&str) + Send + Sync>;

/// A registered agent.
pub struct Agent {
    api: String,
    agent_id: String,
    node_id: String,
    credential: String,
    interval: Duration,
    hw: Arc<dyn Hardware>,
    /// The GPUs (uuids) registered with: one no longer seen is a problem.
    expected_gpus: Vec<String>,
    http: ureq::Agent,
    log: Logger,
    /// Ids of the steps started by this process, never run again.
    started: Mutex<HashSet<String>>,
    /// Where proving the machine's TPM identity stands.
    identity: Mutex<Identity>,
    identity_tries: std::sync::atomic::AtomicU32,
}

/// A failed call, before it is classified per endpoint.
enum CallError {
    Status(ApiFailure),
    Transport(String),
    /// The control plane's certificate was refused (an untrusted issuer:
    /// `--ca-file` missing or another CA's; expired; another name):
    /// trying again cannot help.
    Certificate(String),
    /// A success status with a body that is not what was expected.
    BadAnswer(String),
}

impl CallError {
    fn transient(&self) -> bool {
        match self {
            // A bad answer may be a proxy or a server being upgraded.
            CallError::Transport(_) | CallError::BadAnswer(_) => true,
            CallError::Certificate(_) => false,
            CallError::Status(f) => f.status == 408 || f.status == 429 || f.status >= 500,
        }
    }
    fn status(&self) -> Option<u16> {
        match self {
            CallError::Status(f) => Some(f.status),
            CallError::Transport(_) | CallError::Certificate(_) | CallError::BadAnswer(_) => None,
        }
    }
}

impl fmt::Display for CallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CallError::Status(e) => e.fmt(f),
            CallError::Transport(m) | CallError::Certificate(m) | CallError::BadAnswer(m) => {
                f.write_str(m)
            }
        }
    }
}

/// How a step report ended.
enum Reported {
    Done,
    Revoked,
    Stopped,
}

fn stderr_logger() -> Logger {
    Arc::new(|m: &str| eprintln!("neocloud-agent: {m}"))
}

/// Checks the scheme and drops trailing slashes.
fn normalize_api(api: &str) -> Result<String, AgentError> {
    let u = api.trim().trim_end_matches('/');
    if !(u.starts_with("http://") || u.starts_with("https://")) || u.contains(char::is_whitespace) {
        return Err(AgentError::Usage(format!(
            "bad API URL {api:?}: expected http://HOST[:PORT] or https://HOST[:PORT]"
        )));
    }
    Ok(u.to_string())
}

/// The agent's HTTP client: an `https://` control plane's certificate
/// checked against `tls` (the built-in webpki roots by default).
fn http_client(tls: &TlsOptions) -> ureq::Agent {
    neocloud_common::tls::agent_builder(tls)
        .timeout_connect(Duration::from_secs(5))
        .timeout(Duration::from_secs(30))
        .user_agent(concat!("neocloud-agent/", env!("CARGO_PKG_VERSION")))
        .build()
}

fn post<B: Serialize, R: DeserializeOwned>(
    http: &ureq::Agent,
    url: &str,
    bearer: Option<&str>,
    body: &B,
    want_body: bool,
) -> Result<Option<R>, CallError> {
    let mut req = http.post(url).set("Accept", "application/json");
    if let Some(b) = bearer {
        req = req.set("Authorization", &format!("Bearer {b}"));
    }
    match req.send_json(body) {
        Ok(resp) if want_body => resp
            .into_json::<R>()
            .map(Some)
            .map_err(|e| CallError::BadAnswer(format!("cannot read the answer of {url}: {e}"))),
        Ok(_) => Ok(None),
        Err(ureq::Error::Status(status, resp)) => Err(CallError::Status(api_failure(status, resp))),
        Err(ureq::Error::Transport(t)) if neocloud_common::tls::is_certificate_error(&t) => {
            Err(CallError::Certificate(format!("{url}: the control plane's certificate: {t}")))
        }
        Err(ureq::Error::Transport(t)) => Err(CallError::Transport(format!("{url}: {t}"))),
    }
}

fn api_failure(status: u16, resp: ureq::Response) -> ApiFailure {
    let status_text = resp.status_text().to_string();
    let text = resp.into_string().unwrap_or_default();
    match serde_json::from_str::<ErrorBody>(&text) {
        Ok(b) => ApiFailure { status, code: b.error.code, message: b.error.message },
        Err(_) => {
            // Not the API's error body (a proxy, say): say what we got.
            let first = text.lines().map(str::trim).find(|l| !l.is_empty()).unwrap_or("");
            let first: String = first.chars().take(200).collect();
            let message = if first.is_empty() { status_text } else { first };
            ApiFailure { status, code: String::new(), message }
        }
    }
}

/// Percent-encodes a path segment.
fn segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Sleeps `d` in slices; false when `stop` was set meanwhile.
fn sleep_unless_stopped(d: Duration, stop: &AtomicBool) -> bool {
    let until = Instant::now() + d;
    loop {
        if stop.load(Ordering::Relaxed) {
            return false;
        }
        let now = Instant::now();
        if now >= until {
            return true;
        }
        std::thread::sleep(SLICE.min(until - now));
    }
}

struct Backoff(Duration);

impl Backoff {
    fn new() -> Backoff {
        Backoff(BACKOFF_MIN)
    }
    /// The delay to wait now; the next one is twice as long (capped).
    fn next(&mut self) -> Duration {
        let d = self.0;
        self.0 = (self.0 * 2).min(BACKOFF_MAX);
        d
    }
    fn reset(&mut self) {
        self.0 = BACKOFF_MIN;
    }
}

impl Agent {
    /// Registers with the control plane at `api` (e.g.
    /// `http://10.0.0.1:8080`) using the one-time provisioning `token`,
    /// reporting `hw`'s inventory. One attempt: on
    /// [`AgentError::is_transient`] errors the caller may try again (the
    /// `neocloud-agent` binary does, with backoff).
    pub fn register(api: &str, token: &str, hw: Arc<dyn Hardware>) -> Result<Agent, AgentError> {
        Agent::register_with_log(api, token, hw, stderr_logger())
    }

    /// [`Agent::register`] with log lines sent to `log` instead of stderr.
    pub fn register_with_log(
        api: &str,
        token: &str,
        hw: Arc<dyn Hardware>,
        log: Logger,
    ) -> Result<Agent, AgentError> {
        Registration::new(api, token)?.attempt(hw, log)
    }
}

/// One registration of a booted image: the agent chooses its credential
/// once, so that trying again after an answer was lost (the control plane
/// restarted, the network dropped the reply) is recognised as the same
/// registration and answered again, not refused as a second use of the
/// one-time token. Loop on [`Registration::attempt`] while the error
/// [`AgentError::is_transient`].
pub struct Registration {
    api: String,
    token: String,
    credential: String,
    tls: TlsOptions,
}

impl Registration {
    pub fn new(api: &str, token: &str) -> Result<Registration, AgentError> {
        let api = normalize_api(api)?;
        let token = token.trim();
        if token.is_empty() {
            return Err(AgentError::Usage("the provisioning token is empty".into()));
        }
        Ok(Registration {
            api,
            token: token.to_string(),
            credential: new_credential()?,
            tls: TlsOptions::default(),
        })
    }

    /// The control plane's certificate checked against `tls` instead of
    /// the built-in webpki roots (a provider's CA: `--ca-file`).
    pub fn with_tls(mut self, tls: TlsOptions) -> Registration {
        self.tls = tls;
        self
    }

    /// One registration call.
    pub fn attempt(&self, hw: Arc<dyn Hardware>, log: Logger) -> Result<Agent, AgentError> {
        let api = self.api.clone();
        let http = http_client(&self.tls);
        let body = AgentRegister {
            token: self.token.clone(),
            inventory: hw.inventory(),
            credential: Some(self.credential.clone()),
        };
        let expected_gpus = body.inventory.gpus.iter().map(|g| g.uuid.clone()).collect();
        let url = format!("{api}/agent/v1/register");
        let reg: AgentRegistered = match post(&http, &url, None, &body, true) {
            Ok(Some(r)) => r,
            Ok(None) => unreachable!("a body was asked for"),
            Err(CallError::BadAnswer(m)) => return Err(AgentError::Protocol(m)),
            Err(e) if e.transient() => return Err(AgentError::Unavailable(e.to_string())),
            Err(CallError::Status(f)) if matches!(f.status, 401 | 403 | 404 | 409) => {
                return Err(AgentError::TokenRefused(f))
            }
            Err(CallError::Status(f)) => return Err(AgentError::Api(f)),
            Err(CallError::Transport(m)) => return Err(AgentError::Unavailable(m)),
            Err(CallError::Certificate(m)) => return Err(AgentError::Usage(m)),
        };
        // The control plane may have chosen another credential (one that
        // does not take proposals): it is the one to use.
        if reg.credential.is_empty() {
            return Err(AgentError::Protocol("registration gave an empty credential".into()));
        }
        let interval =
            Duration::from_millis(reg.heartbeat_interval_ms).clamp(INTERVAL_MIN, INTERVAL_MAX);
        log(&format!(
            "registered as agent {} of node {} (heartbeat every {} ms)",
            reg.agent_id,
            reg.node_id,
            interval.as_millis()
        ));
        Ok(Agent {
            api,
            agent_id: reg.agent_id,
            node_id: reg.node_id,
            credential: reg.credential,
            interval,
            hw,
            expected_gpus,
            http,
            log,
            started: Mutex::new(HashSet::new()),
            identity: Mutex::new(Identity::Pending),
            identity_tries: std::sync::atomic::AtomicU32::new(0),
        })
    }
}

/// Where proving the machine's TPM identity ([`crate::tpm_identity`])
/// stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Identity {
    /// Not tried, or the control plane was unreachable: tried again at
    /// the next heartbeat (with no step running: a TPM may serve one
    /// client at a time).
    Pending,
    /// A tenant's endorsement authorization is in the way: tried again
    /// after the sanitizer's `clear_tpm` step, before its report.
    AfterClear,
    /// Proven, refused, or nothing to prove (no TPM): not tried again.
    Settled,
}

/// How many times a proof whose TPM failed for a passing reason is tried.
const IDENTITY_TRIES: u32 = 10;

/// A TPM error that may pass: no answer, or a warning (`TPM_RC_RETRY`,
/// `_OBJECT_MEMORY`, `_TESTING`...: Part 2, 6.6.3).
fn passing(e: &TpmError) -> bool {
    match e {
        TpmError::Io(_) => true,
        TpmError::Rc(rc) => rc & 0x980 == 0x900,
        TpmError::Version12 | TpmError::Malformed(_) => false,
    }
}

pub(crate) fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) || !s.is_ascii() {
        return None;
    }
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok()).collect()
}

/// 32 random bytes, hex: the credential an agent proposes.
fn new_credential() -> Result<String, AgentError> {
    let mut b = [0u8; 32];
    getrandom::getrandom(&mut b)
        .map_err(|e| AgentError::Usage(format!("no randomness for a credential: {e}")))?;
    Ok(hex(&b))
}

impl Agent {
    /// The agent's own credential (a bearer token).
    pub fn credential(&self) -> &str {
        &self.credential
    }

    pub fn node_id(&self) -> &str {
        &self.node_id
    }

    pub fn agent_id(&self) -> &str {
        &self.agent_id
    }

    /// The heartbeat interval the server asked for (bounded to 10 ms..10 min).
    pub fn heartbeat_interval(&self) -> Duration {
        self.interval
    }

    /// Heartbeats until the credential is revoked ([`Exit::Revoked`]) or
    /// `stop` is set ([`Exit::Stopped`], noticed within ~10 ms between
    /// requests; a request in flight finishes or times out first).
    ///
    /// Steps from heartbeat answers are run one at a time, in order, each
    /// at most once per process, on a worker thread so heartbeats go on
    /// during a long wipe; a step still running when `run` returns is left
    /// to finish on its thread, unreported. After a step's result is
    /// reported the next heartbeat is sent at once.
    ///
    /// Errors are permanent ones only: a 4xx other than 401 (and 408/429)
    /// on a heartbeat.
    pub fn run(&self, stop: &AtomicBool) -> Result<Exit, AgentError> {
        self.prove_identity_if(Identity::Pending);
        let mut queue: VecDeque<AgentStep> = VecDeque::new();
        // A step's thread says when it is done, so its result goes out at once.
        let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
        let mut step_done = false;
        let mut running: Option<(AgentStep, Instant, JoinHandle<AgentStepResult>)> = None;
        let mut next_beat = Instant::now();
        let mut backoff = Backoff::new();
        let mut failing = false;
        loop {
            if stop.load(Ordering::Relaxed) {
                (self.log)("stopping");
                return Ok(Exit::Stopped);
            }

            // Signalled done: the thread is returning, joining it is immediate.
            if running.as_ref().is_some_and(|(_, _, h)| step_done || h.is_finished()) {
                step_done = false;
                let (step, since, handle) = running.take().expect("checked above");
                let result = handle.join().unwrap_or_else(|_| AgentStepResult {
                    ok: false,
                    items: vec![StepItem {
                        target: "agent".into(),
                        method: "none".into(),
                        ok: false,
                        detail: "the step panicked".into(),
                    }],
                });
                (self.log)(&format!(
                    "step {} ({}) {} in {} ms ({} items)",
                    step.id,
                    step.kind.as_str(),
                    if result.ok { "succeeded" } else { "FAILED" },
                    since.elapsed().as_millis(),
                    result.items.len()
                ));
                for it in result.items.iter().filter(|i| !i.ok) {
                    (self.log)(&format!("  {} ({}): {}", it.target, it.method, it.detail));
                }
                // Before the step is reported (the last report may end the
                // sanitization, whose check must see the proof): a proof
                // still to make, and after the clear, which gave the
                // endorsement key back, one a tenant's authorization held.
                if step.kind == AgentStepKind::ClearTpm {
                    self.prove_identity_if(Identity::AfterClear);
                }
                self.prove_identity_if(Identity::Pending);
                match self.report(&step, &result, stop) {
                    // The last step queued here: ask at once what comes
                    // next (more steps, or the end); with steps still
                    // queued, the next one starts now and the heartbeat
                    // keeps its time (a thousand nodes finishing a step
                    // together must not all heartbeat at once).
                    Reported::Done if queue.is_empty() => next_beat = Instant::now(),
                    Reported::Done => {}
                    Reported::Revoked => {
                        (self.log)("credential revoked; stopping");
                        return Ok(Exit::Revoked);
                    }
                    Reported::Stopped => {
                        (self.log)("stopping");
                        return Ok(Exit::Stopped);
                    }
                }
            }

            if running.is_none() {
                if let Some(step) = queue.pop_front() {
                    running = Some(self.start(step, done_tx.clone()));
                }
            }

            if Instant::now() >= next_beat {
                if running.is_none() {
                    self.prove_identity_if(Identity::Pending);
                }
                match self.heartbeat() {
                    Ok(reply) => {
                        if failing {
                            (self.log)("control plane reachable again");
                            failing = false;
                        }
                        backoff.reset();
                        let asked = reply
                            .next_heartbeat_ms
                            .map(|ms| Duration::from_millis(ms).clamp(INTERVAL_MIN, INTERVAL_MAX));
                        next_beat = Instant::now() + asked.unwrap_or(self.interval);
                        let mut added = false;
                        for step in reply.steps {
                            let known = self.was_started(&step.id)
                                || running.as_ref().is_some_and(|(s, _, _)| s.id == step.id)
                                || queue.iter().any(|s| s.id == step.id);
                            if !known {
                                (self.log)(&format!(
                                    "step {} ({}) received",
                                    step.id,
                                    step.kind.as_str()
                                ));
                                queue.push_back(step);
                                added = true;
                            }
                        }
                        if added && running.is_none() {
                            continue;
                        }
                    }
                    Err(CallError::Status(f)) if f.status == 401 => {
                        (self.log)("credential revoked (heartbeat answered 401); stopping");
                        return Ok(Exit::Revoked);
                    }
                    Err(e) if e.transient() => {
                        let wait = backoff.next();
                        (self.log)(&format!(
                            "heartbeat failed: {e}; retrying in {} ms",
                            wait.as_millis()
                        ));
                        failing = true;
                        next_beat = Instant::now() + wait;
                    }
                    Err(CallError::Status(f)) => return Err(AgentError::Api(f)),
                    Err(CallError::Transport(m) | CallError::BadAnswer(m)) => {
                        return Err(AgentError::Unavailable(m))
                    }
                    Err(CallError::Certificate(m)) => return Err(AgentError::Usage(m)),
                }
            }

            let until_beat = next_beat.saturating_duration_since(Instant::now());
            step_done = done_rx.recv_timeout(until_beat.min(SLICE)).is_ok();
        }
    }

    /// Runs [`Agent::run`] on a thread of its own.
    pub fn spawn(self, stop: Arc<AtomicBool>) -> JoinHandle<Result<Exit, AgentError>> {
        std::thread::Builder::new()
            .name(format!("neocloud-agent-{}", self.node_id))
            .spawn(move || self.run(&stop))
            .expect("cannot spawn the agent thread")
    }

    fn was_started(&self, id: &str) -> bool {
        self.started.lock().unwrap_or_else(|e| e.into_inner()).contains(id)
    }

    fn start(
        &self,
        step: AgentStep,
        done: std::sync::mpsc::Sender<()>,
    ) -> (AgentStep, Instant, JoinHandle<AgentStepResult>) {
        self.started.lock().unwrap_or_else(|e| e.into_inner()).insert(step.id.clone());
        (self.log)(&format!("step {} ({}) running", step.id, step.kind.as_str()));
        let hw = Arc::clone(&self.hw);
        let kind = step.kind;
        let running = step.clone();
        let handle = std::thread::Builder::new()
            .name(format!("neocloud-step-{}", kind.as_str()))
            .spawn(move || {
                let result = run_step(hw.as_ref(), &running);
                let _ = done.send(());
                result
            })
            .expect("cannot spawn a step thread");
        (step, Instant::now(), handle)
    }

    /// Proves the machine's TPM identity when it stands at `at`.
    fn prove_identity_if(&self, at: Identity) {
        let mut state = self.identity.lock().unwrap_or_else(|e| e.into_inner());
        if *state == at {
            *state = self.prove_identity();
        }
    }

    /// After a TPM error that may pass: `Pending`, at most
    /// [`IDENTITY_TRIES`] times.
    fn tpm_again(&self, what: String) -> Identity {
        let tries = self.identity_tries.fetch_add(1, Ordering::Relaxed) + 1;
        if tries >= IDENTITY_TRIES {
            (self.log)(&format!("TPM identity: {what}; giving up after {tries} tries"));
            return Identity::Settled;
        }
        (self.log)(&format!("TPM identity: {what}; trying again"));
        Identity::Pending
    }

    /// Loads the TPM's keys, asks the control plane for a credential only
    /// that TPM can activate, activates it and sends it back.
    fn prove_identity(&self) -> Identity {
        let Some(path) = self.hw.tpm_path() else { return Identity::Settled };
        let log = |m: String| (self.log)(&m);
        let mut id = match TpmIdentity::open(&path) {
            Ok(id) => id,
            Err(e @ IdentityError::EndorsementLocked) => {
                log(format!("TPM identity not proven yet: {e}"));
                return Identity::AfterClear;
            }
            Err(IdentityError::Tpm(e)) if passing(&e) => {
                return self.tpm_again(format!("{path}: {e}"));
            }
            Err(e) => {
                log(format!("TPM identity not proven: {path}: {e}"));
                return Identity::Settled;
            }
        };
        for e in &id.ek_certificate_errors {
            log(format!("TPM identity: the endorsement key's certificate: {e}"));
        }
        let keys = AgentTpmKeys {
            ek_public: hex(&id.ek_public),
            ak_public: hex(&id.ak_public),
            ek_certificate: id.ek_certificate.as_deref().map(hex),
            ek_certificate_chain: id.ek_certificate_chain.iter().map(|c| hex(c)).collect(),
        };
        let url = format!("{}/agent/v1/identity/challenge", self.api);
        let challenge: AgentTpmChallenge =
            match post(&self.http, &url, Some(&self.credential), &keys, true) {
                Ok(c) => c.expect("a body was asked for"),
                Err(e) if e.transient() => {
                    log(format!("TPM identity: {e}; trying again"));
                    return Identity::Pending;
                }
                Err(e) => {
                    log(format!("TPM identity refused: {e}"));
                    return Identity::Settled;
                }
            };
        let (Some(blob), Some(secret)) =
            (unhex(&challenge.credential_blob), unhex(&challenge.secret))
        else {
            log("TPM identity: the challenge is not hex".into());
            return Identity::Settled;
        };
        let activation = match id.activate(&blob, &secret) {
            Ok(a) => a,
            Err(e) if passing(&e) => return self.tpm_again(format!("activating: {e}")),
            Err(e) => {
                log(format!("TPM identity: the TPM did not activate the credential: {e}"));
                return Identity::Settled;
            }
        };
        drop(id);
        let proof = AgentTpmProof {
            ek_public: keys.ek_public,
            ak_public: keys.ak_public,
            activation: hex(&activation),
            ek_certificate: keys.ek_certificate,
            ek_certificate_chain: keys.ek_certificate_chain,
        };
        let url = format!("{}/agent/v1/identity", self.api);
        match post::<_, AgentTpmProven>(&self.http, &url, Some(&self.credential), &proof, true) {
            Ok(p) => {
                let p = p.expect("a body was asked for");
                log(format!(
                    "TPM identity proven: endorsement key {}{}",
                    p.ek_name,
                    if p.pinned { " (recorded as the node's)" } else { "" }
                ));
                Identity::Settled
            }
            Err(e) if e.transient() => {
                log(format!("TPM identity: {e}; trying again"));
                Identity::Pending
            }
            Err(e) => {
                log(format!("TPM identity refused: {e}"));
                Identity::Settled
            }
        }
    }

    fn heartbeat(&self) -> Result<AgentHeartbeatReply, CallError> {
        let gpu_status = self.hw.gpu_status();
        let health = crate::health::summary(&self.expected_gpus, &gpu_status);
        // The GPU inventory went with the registration; the readings are
        // what changes.
        let body = AgentHeartbeat { health, gpus: Vec::new(), gpu_status };
        let url = format!("{}/agent/v1/heartbeat", self.api);
        post(&self.http, &url, Some(&self.credential), &body, true)
            .map(|r| r.expect("a body was asked for"))
    }

    /// Sends a step's result, retrying transient failures until it is
    /// taken, refused for good, the credential is revoked or `stop` is set.
    fn report(&self, step: &AgentStep, result: &AgentStepResult, stop: &AtomicBool) -> Reported {
        let url = format!("{}/agent/v1/steps/{}", self.api, segment(&step.id));
        let mut backoff = Backoff::new();
        loop {
            match post::<_, serde_json::Value>(
                &self.http,
                &url,
                Some(&self.credential),
                result,
                false,
            ) {
                Ok(_) => {
                    (self.log)(&format!("step {} reported", step.id));
                    return Reported::Done;
                }
                Err(e) if e.status() == Some(401) => return Reported::Revoked,
                Err(e) if e.transient() => {
                    let wait = backoff.next();
                    (self.log)(&format!(
                        "reporting step {} failed: {e}; retrying in {} ms",
                        step.id,
                        wait.as_millis()
                    ));
                    if !sleep_unless_stopped(wait, stop) {
                        return Reported::Stopped;
                    }
                }
                Err(e) => {
                    // 404/409/410: the server no longer wants it (cancelled
                    // or already reported); anything else cannot be fixed by
                    // sending it again. Either way, go on.
                    (self.log)(&format!("step {} report not taken: {e}; giving up", step.id));
                    return Reported::Done;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tpm_warnings_and_lost_answers_may_pass_errors_do_not() {
        use crate::tpm::TpmError;
        assert!(passing(&TpmError::Io("reset".into())));
        for warning in [0x922, 0x908, 0x90a, 0x902] {
            assert!(passing(&TpmError::Rc(warning)), "{warning:x}");
        }
        for error in [0x9a2, 0x98e, 0x101, 0x184] {
            assert!(!passing(&TpmError::Rc(error)), "{error:x}");
        }
        assert!(!passing(&TpmError::Version12));
        assert_eq!(unhex("00ff10"), Some(vec![0, 255, 16]));
        assert_eq!(unhex("0"), None);
        assert_eq!(unhex("zz"), None);
        assert_eq!(hex(&[0, 255]), "00ff");
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        let mut b = Backoff::new();
        let got: Vec<u128> = (0..9).map(|_| b.next().as_millis()).collect();
        assert_eq!(got, [100, 200, 400, 800, 1600, 3200, 5000, 5000, 5000]);
        b.reset();
        assert_eq!(b.next(), BACKOFF_MIN);
    }

    #[test]
    fn path_segments_are_escaped() {
        assert_eq!(segment("stp_01H-x.y~z"), "stp_01H-x.y~z");
        assert_eq!(segment("a/b c?"), "a%2Fb%20c%3F");
    }

    #[test]
    fn api_urls_are_checked() {
        assert_eq!(normalize_api(" http://h:1/ ").unwrap(), "http://h:1");
        assert!(matches!(normalize_api("h:1"), Err(AgentError::Usage(_))));
        assert!(matches!(normalize_api("http://a b"), Err(AgentError::Usage(_))));
    }

    #[test]
    fn empty_token_is_a_usage_error() {
        let hw = Arc::new(crate::Simulated::new(crate::SimulatedConfig::new("t")));
        let err = Agent::register("http://127.0.0.1:9", "  ", hw).err().unwrap();
        assert!(matches!(err, AgentError::Usage(_)), "{err}");
    }

    #[test]
    fn transport_errors_are_transient() {
        // Port 9 (discard) on localhost: nothing listens there.
        let hw = Arc::new(crate::Simulated::new(crate::SimulatedConfig::new("t")));
        let err = Agent::register("http://127.0.0.1:9", "tok", hw).err().unwrap();
        assert!(err.is_transient(), "{err}");
    }

    #[test]
    fn stop_interrupts_sleep() {
        let stop = AtomicBool::new(true);
        let t = Instant::now();
        assert!(!sleep_unless_stopped(Duration::from_secs(5), &stop));
        assert!(t.elapsed() < Duration::from_secs(1));
        assert!(sleep_unless_stopped(Duration::from_millis(1), &AtomicBool::new(false)));
    }
}
