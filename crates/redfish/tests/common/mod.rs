//! Harness for the Redfish integration tests: real Redfish peers on loopback.
//!
//! - [`Emulator`]: `sushy-emulator` (sushy-tools 2.2.0) with its fake driver:
//!   power, boot override and virtual media on N fake systems, optional
//!   HTTP basic auth. No inventory, no sessions.
//! - [`StaticBmc`]: `sushy-static` serving a mockup under `tests/mockups/`
//!   (e.g. `dgx-h100`): full inventory, read-only (POST/PATCH answer 204).
//! - [`FileServer`]: a loopback HTTP server for one file (virtual media images).
//!
//! sushy-tools lives in a venv made by `scripts/sushy-venv` (path in
//! `NEOCLOUD_SUSHY_VENV`, default `~/.cache/neocloud/sushy-venv`). Without it
//! the tests that need it print `SKIPPED (sushy-tools)` and pass, except under
//! `CI`, where they fail.
#![allow(dead_code)]

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub const VENV_ENV: &str = "NEOCLOUD_SUSHY_VENV";

/// How long a peer may take to answer after it was started (loaded CI boxes
/// are slow; it usually takes under a second).
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// The sushy-tools venv, or `None` (after a loud SKIPPED line) when it is
/// missing. Panics instead when `CI` is set: CI must run these tests.
pub fn sushy_venv() -> Option<PathBuf> {
    let venv = match std::env::var_os(VENV_ENV) {
        Some(v) if !v.is_empty() => PathBuf::from(v),
        _ => {
            let home =
                std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| "/root".into());
            home.join(".cache/neocloud/sushy-venv")
        }
    };
    let missing: Vec<&str> = ["sushy-emulator", "sushy-static", "python"]
        .into_iter()
        .filter(|b| !venv.join("bin").join(b).exists())
        .collect();
    if missing.is_empty() {
        return Some(venv);
    }
    let msg = format!(
        "no {} in {}/bin; run scripts/sushy-venv (or set {VENV_ENV})",
        missing.join(", "),
        venv.display()
    );
    if std::env::var_os("CI").is_some() {
        panic!("sushy-tools missing but CI is set: {msg}");
    }
    eprintln!("SKIPPED (sushy-tools): {msg}");
    None
}

/// The directory of a mockup under the redfish crate's `tests/mockups/`
/// (this module is also included by other crates' tests).
pub fn mockup_dir(name: &str) -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    let own = here.join("tests/mockups");
    let base = if own.is_dir() { own } else { here.join("../redfish/tests/mockups") };
    base.join(name)
}

/// A directory under the system temp dir, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(prefix: &str) -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
        let dir = std::env::temp_dir().join(format!(
            "neocloud-{prefix}-{}-{}-{nanos}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// A loopback port that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("bind 127.0.0.1:0").port()
}

/// `Basic <base64(user:pass)>`, the value of an `Authorization` header.
pub fn basic_auth(user: &str, pass: &str) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let input = format!("{user}:{pass}");
    let mut out = String::from("Basic ");
    for chunk in input.as_bytes().chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ABC[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn agent() -> ureq::Agent {
    ureq::AgentBuilder::new()
        .timeout_connect(Duration::from_secs(2))
        .timeout(Duration::from_secs(10))
        .redirects(0)
        .build()
}

/// GET `url` (with basic auth when given) and parse the JSON body; panics on
/// any failure. For test setup and assertions, not for the driver.
pub fn get_json(url: &str, auth: Option<(&str, &str)>) -> serde_json::Value {
    let mut req = agent().get(url);
    if let Some((u, p)) = auth {
        req = req.set("Authorization", &basic_auth(u, p));
    }
    match req.call() {
        Ok(r) => r.into_json().unwrap_or_else(|e| panic!("GET {url}: not JSON: {e}")),
        Err(e) => panic!("GET {url}: {e}"),
    }
}

/// `@odata.id` of every member of a Redfish collection.
pub fn members(collection: &serde_json::Value) -> Vec<String> {
    collection["Members"]
        .as_array()
        .map(|a| a.iter().filter_map(|m| m["@odata.id"].as_str().map(str::to_string)).collect())
        .unwrap_or_default()
}

/// A child process with its log file, killed on drop.
struct Peer {
    child: Child,
    log: PathBuf,
    what: String,
}

impl Peer {
    fn spawn(what: &str, mut cmd: Command, log: PathBuf) -> Peer {
        let out = fs::File::create(&log).expect("create peer log");
        let err = out.try_clone().expect("clone log handle");
        cmd.stdin(Stdio::null()).stdout(out).stderr(err).env("PYTHONUNBUFFERED", "1");
        let child = cmd.spawn().unwrap_or_else(|e| panic!("start {what}: {e}"));
        Peer { child, log, what: what.to_string() }
    }

    fn log_tail(&self) -> String {
        let text = fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    /// Polls `url` until it answers (any HTTP status counts: 401 means the
    /// server is up). `Err` when the process died first (e.g. port taken).
    fn wait_ready(&mut self, url: &str) -> Result<(), String> {
        let start = Instant::now();
        let agent = agent();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("{} exited ({status}):\n{}", self.what, self.log_tail()));
            }
            match agent.get(url).timeout(Duration::from_secs(2)).call() {
                Ok(_) | Err(ureq::Error::Status(..)) => return Ok(()),
                Err(_) if start.elapsed() < START_TIMEOUT => {
                    std::thread::sleep(Duration::from_millis(50))
                }
                Err(e) => panic!(
                    "{} not answering {url} after {START_TIMEOUT:?}: {e}\n{}",
                    self.what,
                    self.log_tail()
                ),
            }
        }
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts a peer on a fresh port, retrying when the port was taken meanwhile.
fn start_peer(
    what: &str,
    dir: &TempDir,
    mut make: impl FnMut(u16) -> Command,
    ready_path: &str,
) -> (Peer, String) {
    let mut last = String::new();
    for attempt in 0..3 {
        let port = free_port();
        let log = dir.path().join(format!("{what}-{attempt}.log"));
        let mut peer = Peer::spawn(what, make(port), log);
        let url = format!("http://127.0.0.1:{port}");
        match peer.wait_ready(&format!("{url}{ready_path}")) {
            Ok(()) => return (peer, url),
            Err(e) => last = e,
        }
    }
    panic!("could not start {what}: {last}")
}

/// `sushy-emulator` with the fake driver: `n` fake systems, fresh state.
pub struct Emulator {
    /// Base URL, e.g. `http://127.0.0.1:41234` (no trailing slash).
    pub url: String,
    /// Ids of the fake systems as the emulator lists them (their UUIDs),
    /// in the emulator's order. Resource path: `/redfish/v1/Systems/{id}`.
    pub systems: Vec<String>,
    /// Credentials when started with basic auth.
    pub auth: Option<(String, String)>,
    peer: Peer,
    dir: TempDir,
}

/// UUID of fake system `i` (1-based), as the emulator is configured.
pub fn fake_uuid(i: usize) -> String {
    format!("00000000-0000-4000-8000-{i:012}")
}

/// MAC of fake system `i`'s one NIC.
pub fn fake_mac(i: usize) -> String {
    format!("52:54:00:00:{:02x}:{:02x}", (i >> 8) & 0xff, i & 0xff)
}

fn py_str(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
}

impl Emulator {
    /// `n` fake systems named `node-1..n`, all powered off, no auth.
    pub fn start(n: usize) -> Option<Emulator> {
        Self::launch(n, None)
    }

    /// Like [`Emulator::start`], with HTTP basic auth on everything but the
    /// service root (`SUSHY_EMULATOR_AUTH_FILE`, bcrypt htpasswd).
    pub fn start_with_auth(n: usize, user: &str, pass: &str) -> Option<Emulator> {
        Self::launch(n, Some((user.to_string(), pass.to_string())))
    }

    fn launch(n: usize, auth: Option<(String, String)>) -> Option<Emulator> {
        assert!(n >= 1, "the emulator needs at least one system");
        let venv = sushy_venv()?;
        let dir = TempDir::new("sushy-emulator");
        let state = dir.path().join("state");
        let tmp = dir.path().join("tmp");
        fs::create_dir_all(&tmp).expect("create tmp");
        let auth_line = match &auth {
            Some((user, pass)) => {
                let htpasswd = dir.path().join("htpasswd");
                let out = Command::new(venv.join("bin/python"))
                    .args([
                        "-c",
                        "import bcrypt, sys; print(sys.argv[1] + ':' + bcrypt.hashpw(\
                         sys.argv[2].encode(), bcrypt.gensalt(rounds=4)).decode())",
                        user,
                        pass,
                    ])
                    .output()
                    .expect("run python to hash the password");
                assert!(
                    out.status.success(),
                    "bcrypt failed: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
                fs::write(&htpasswd, &out.stdout).expect("write htpasswd");
                format!("SUSHY_EMULATOR_AUTH_FILE = {}\n", py_str(&htpasswd.display().to_string()))
            }
            None => String::new(),
        };
        let systems: Vec<String> = (1..=n)
            .map(|i| {
                format!(
                    "  {{'uuid': {}, 'name': 'node-{i}', 'power_state': 'Off', \
                     'external_notifier': False, 'nics': [{{'mac': {}, 'ip': '127.0.0.1'}}]}},",
                    py_str(&fake_uuid(i)),
                    py_str(&fake_mac(i))
                )
            })
            .collect();
        let conf = dir.path().join("emulator.conf");
        let (peer, url) = start_peer(
            "sushy-emulator",
            &dir,
            |port| {
                let _ = fs::remove_dir_all(&state);
                fs::write(
                    &conf,
                    format!(
                        "SUSHY_EMULATOR_LISTEN_IP = '127.0.0.1'\n\
                         SUSHY_EMULATOR_LISTEN_PORT = {port}\n\
                         SUSHY_EMULATOR_FAKE_DRIVER = True\n\
                         SUSHY_EMULATOR_STATE_DIR = {}\n\
                         {auth_line}\
                         SUSHY_EMULATOR_FAKE_SYSTEMS = [\n{}\n]\n",
                        py_str(&state.display().to_string()),
                        systems.join("\n")
                    ),
                )
                .expect("write emulator.conf");
                let mut cmd = Command::new(venv.join("bin/sushy-emulator"));
                // InsertMedia downloads images into $TMPDIR: keep them in our dir.
                cmd.arg("--config").arg(&conf).env("TMPDIR", &tmp);
                cmd
            },
            // Not excluded from auth: 401 until the app is fully up is fine too.
            "/redfish/v1/Systems",
        );
        let auth_ref = auth.as_ref().map(|(u, p)| (u.as_str(), p.as_str()));
        let listed = get_json(&format!("{url}/redfish/v1/Systems"), auth_ref);
        let systems: Vec<String> = members(&listed)
            .iter()
            .map(|p| p.trim_end_matches('/').rsplit('/').next().unwrap_or_default().to_string())
            .collect();
        assert_eq!(systems.len(), n, "emulator lists {listed}");
        Some(Emulator { url, systems, auth, peer, dir })
    }

    /// Resource path of system `i` (0-based, in listing order).
    pub fn system_path(&self, i: usize) -> String {
        format!("/redfish/v1/Systems/{}", self.systems[i])
    }

    /// GET a path (e.g. `/redfish/v1/Systems`) with the emulator's credentials.
    pub fn get(&self, path: &str) -> serde_json::Value {
        get_json(&format!("{}{path}", self.url), self.auth.as_ref().map(|(u, p)| (&**u, &**p)))
    }

    /// PATCH a path with the emulator's credentials (a change made behind
    /// the driver's back, as a tenant's in-band change would be).
    pub fn patch(&self, path: &str, body: serde_json::Value) {
        let url = format!("{}{path}", self.url);
        let mut req = agent().request("PATCH", &url);
        if let Some((u, p)) = &self.auth {
            req = req.set("Authorization", &basic_auth(u, p));
        }
        if let Err(e) = req.send_json(body) {
            panic!("PATCH {url}: {e}");
        }
    }

    /// The emulator's log so far (requests and errors).
    pub fn log(&self) -> String {
        fs::read_to_string(&self.peer.log).unwrap_or_default()
    }

    /// Directory the emulator downloads virtual media images into.
    pub fn download_dir(&self) -> PathBuf {
        self.dir.path().join("tmp")
    }
}

/// `sushy-static` serving `tests/mockups/<name>`: GET only; POST and PATCH
/// answer 204 without doing anything, DELETE answers 501, query strings 404.
pub struct StaticBmc {
    /// Base URL, e.g. `http://127.0.0.1:41235` (no trailing slash).
    pub url: String,
    peer: Peer,
    dir: TempDir,
}

impl StaticBmc {
    pub fn start(mockup: &str) -> Option<StaticBmc> {
        Self::start_dir(&mockup_dir(mockup))
    }

    /// Serves the mockup in `mockup_path` (a test's own copy it may change:
    /// sushy-static reads the files on every request).
    pub fn start_dir(mockup_path: &Path) -> Option<StaticBmc> {
        assert!(mockup_path.join("index.json").is_file(), "no mockup at {}", mockup_path.display());
        let venv = sushy_venv()?;
        let dir = TempDir::new("sushy-static");
        let (peer, url) = start_peer(
            "sushy-static",
            &dir,
            |port| {
                let mut cmd = Command::new(venv.join("bin/sushy-static"));
                cmd.args(["-i", "127.0.0.1", "-p", &port.to_string(), "-m"]).arg(mockup_path);
                cmd
            },
            "/redfish/v1",
        );
        Some(StaticBmc { url, peer, dir })
    }

    pub fn get(&self, path: &str) -> serde_json::Value {
        get_json(&format!("{}{path}", self.url), None)
    }

    /// The server's log: it prints every request's headers and body.
    pub fn log(&self) -> String {
        fs::read_to_string(&self.peer.log).unwrap_or_default()
    }
}

/// A copy of mockup `name` in a temporary directory, for a test to change.
pub fn mockup_copy(name: &str) -> TempDir {
    fn copy(from: &Path, to: &Path) {
        fs::create_dir_all(to).expect("create mockup dir");
        for e in fs::read_dir(from).expect("read mockup dir") {
            let e = e.expect("mockup entry");
            let dest = to.join(e.file_name());
            if e.file_type().expect("file type").is_dir() {
                copy(&e.path(), &dest);
            } else {
                fs::copy(e.path(), &dest).expect("copy mockup file");
            }
        }
    }
    let dir = TempDir::new(&format!("mockup-{name}"));
    copy(&mockup_dir(name), dir.path());
    dir
}

/// [`mockup_copy`] with every log's entries gone (as a cleared SEL reads):
/// sushy-static keeps nothing, so a log with entries reads back full after
/// every `ClearLog`, as from a BMC that does not clear it.
pub fn mockup_copy_logs_cleared(name: &str) -> TempDir {
    fn walk(dir: &Path) {
        for e in fs::read_dir(dir).expect("read mockup dir") {
            let path = e.expect("mockup entry").path();
            if path.is_dir() {
                walk(&path);
                continue;
            }
            let text = fs::read_to_string(&path).expect("mockup file");
            let Ok(mut v) = serde_json::from_str::<serde_json::Value>(&text) else { continue };
            if v["@odata.type"].as_str().is_some_and(|t| t.starts_with("#LogEntryCollection")) {
                v["Members"] = serde_json::json!([]);
                v["Members@odata.count"] = 0.into();
                fs::write(&path, serde_json::to_string_pretty(&v).unwrap()).expect("write");
            }
        }
    }
    let dir = mockup_copy(name);
    walk(dir.path());
    dir
}

/// A loopback HTTP server for one file at `url`; other paths answer 404.
/// GET and HEAD; stopped on drop.
pub struct FileServer {
    /// Full URL of the file, e.g. `http://127.0.0.1:41236/boot.iso`.
    pub url: String,
    hits: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    addr: std::net::SocketAddr,
    thread: Option<JoinHandle<()>>,
}

impl FileServer {
    /// Serves `body` as `/<name>`.
    pub fn start(name: &str, body: impl Into<Vec<u8>>) -> FileServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind file server");
        let addr = listener.local_addr().expect("local addr");
        let body: Arc<Vec<u8>> = Arc::new(body.into());
        let path = format!("/{}", name.trim_start_matches('/'));
        let hits = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (h, s, p) = (hits.clone(), stop.clone(), path.clone());
        let thread = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let (body, path, hits) = (body.clone(), p.clone(), h.clone());
                std::thread::spawn(move || serve_file(conn, &path, &body, &hits));
            }
        });
        FileServer { url: format!("http://{addr}{path}"), hits, stop, addr, thread: Some(thread) }
    }

    /// How many GETs of the file were answered.
    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

fn serve_file(conn: TcpStream, path: &str, body: &[u8], hits: &AtomicUsize) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
    let mut reader = BufReader::new(match conn.try_clone() {
        Ok(c) => c,
        Err(_) => return,
    });
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() {
        return;
    }
    // Skip the headers.
    loop {
        let mut h = String::new();
        match reader.read_line(&mut h) {
            Ok(0) | Err(_) => break,
            Ok(_) if h.trim().is_empty() => break,
            Ok(_) => {}
        }
    }
    let mut parts = line.split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let target = target.split('?').next().unwrap_or("");
    let mut w = conn;
    let head = |status: &str, len: usize, ctype: &str| {
        format!(
            "HTTP/1.1 {status}\r\nContent-Length: {len}\r\nContent-Type: {ctype}\r\n\
             Connection: close\r\n\r\n"
        )
    };
    let _ =
        match (method, target == path) {
            ("GET", true) => {
                hits.fetch_add(1, Ordering::SeqCst);
                w.write_all(head("200 OK", body.len(), "application/octet-stream").as_bytes())
                    .and_then(|_| w.write_all(body))
            }
            ("HEAD", true) => {
                w.write_all(head("200 OK", body.len(), "application/octet-stream").as_bytes())
            }
            ("GET" | "HEAD", false) => {
                let msg = b"not found\n";
                w.write_all(head("404 Not Found", msg.len(), "text/plain").as_bytes())
                    .and_then(|_| if method == "GET" { w.write_all(msg) } else { Ok(()) })
            }
            _ => w.write_all(head("405 Method Not Allowed", 0, "text/plain").as_bytes()),
        };
    let _ = w.flush();
    let _ = w.shutdown(Shutdown::Write);
    // Drain what the client still sends so the close is clean.
    let _ = reader.read(&mut [0u8; 512]);
}

impl Drop for FileServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
