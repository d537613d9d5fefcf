//! A real server on a loopback port, on either backend, and a small blocking
//! HTTP client for it.
#![allow(dead_code)]

pub mod network;
pub mod nodes;

use neocloud_server::{Config, Server};
pub use neocloud_store::testing::TestBackend;
use neocloud_store::testing::{fresh_db, TestDb};
use neocloud_store::Store;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::sync::mpsc;
use std::thread::JoinHandle;
use tokio_util::sync::CancellationToken;

pub struct TestServer {
    pub backend: TestBackend,
    pub url: String,
    pub admin_token: String,
    pub store: Store,
    pub data_dir: PathBuf,
    pub db_url: String,
    cancel: CancellationToken,
    thread: Option<JoinHandle<()>>,
    _db: Option<TestDb>,
}

impl TestServer {
    /// A server on `backend`; `None` where the backend is unavailable
    /// (after a loud message; CI fails instead).
    pub fn start(backend: TestBackend) -> Option<TestServer> {
        Self::start_with(backend, |_| {})
    }

    pub fn start_with(backend: TestBackend, tweak: impl FnOnce(&mut Config)) -> Option<TestServer> {
        if std::env::var_os("NEOCLOUD_TEST_LOG").is_some() {
            neocloud_server::init_logging(neocloud_server::LogFormat::Text);
        }
        let db = fresh_db(backend)?;
        let data_dir = fresh_data_dir();
        let mut config = test_config(&db.url, &data_dir);
        tweak(&mut config);
        let (addr, cancel, store, thread) = launch(config);
        let admin_token = std::fs::read_to_string(data_dir.join("admin.token"))
            .expect("bootstrap token file")
            .trim()
            .to_string();
        Some(TestServer {
            backend,
            url: format!("http://{addr}"),
            admin_token,
            store,
            data_dir,
            db_url: db.url.clone(),
            cancel,
            thread: Some(thread),
            _db: Some(db),
        })
    }

    /// Another control-plane replica on the same store (its own engine,
    /// caches and port).
    pub fn replica(&self) -> TestServer {
        self.replica_with(|_| {})
    }

    /// A replica configured with `tweak`.
    pub fn replica_with(&self, tweak: impl FnOnce(&mut Config)) -> TestServer {
        let data_dir = fresh_data_dir();
        let mut config = Config {
            // Replicas share the key that seals secrets.
            secrets_key_file: Some(self.data_dir.join("secrets.key")),
            ..test_config(&self.db_url, &data_dir)
        };
        tweak(&mut config);
        let (addr, cancel, store, thread) = launch(config);
        TestServer {
            backend: self.backend,
            url: format!("http://{addr}"),
            admin_token: self.admin_token.clone(),
            store,
            data_dir,
            db_url: self.db_url.clone(),
            cancel,
            thread: Some(thread),
            _db: None,
        }
    }

    /// Stops this server and starts it again on the same store and data
    /// directory (same secrets and signing keys, same admin token; a new
    /// port), configured like `start_with` with `tweak`.
    pub fn restart_with(&mut self, tweak: impl FnOnce(&mut Config)) {
        self.stop();
        let mut config = test_config(&self.db_url, &self.data_dir);
        tweak(&mut config);
        let (addr, cancel, store, thread) = launch(config);
        self.url = format!("http://{addr}");
        self.cancel = cancel;
        self.store = store;
        self.thread = Some(thread);
    }

    pub fn admin(&self) -> Client {
        self.client(&self.admin_token)
    }

    pub fn client(&self, token: &str) -> Client {
        Client { base: self.url.clone(), token: Some(token.to_string()) }
    }

    pub fn anonymous(&self) -> Client {
        Client { base: self.url.clone(), token: None }
    }

    /// Stops the server gracefully and waits for it.
    pub fn stop(&mut self) {
        self.cancel.cancel();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }

    /// Creates a tenant user with a tenant-wide role (or a project role) and
    /// returns a token for it.
    pub fn user_with_role(
        &self,
        tenant: &str,
        name: &str,
        role: &str,
        project: Option<&str>,
    ) -> String {
        let a = self.admin();
        a.post(&format!("/v1/tenants/{tenant}/users"), &json!({"name": name})).expect(201);
        let mut m = json!({"user": name, "role": role});
        if let Some(p) = project {
            m["project"] = json!(p);
        }
        a.post(&format!("/v1/tenants/{tenant}/memberships"), &m).expect(201);
        let t = a
            .post(&format!("/v1/tenants/{tenant}/tokens"), &json!({"name": "t", "user": name}))
            .expect(201);
        t.body["secret"].as_str().expect("secret").to_string()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.data_dir);
    }
}

fn fresh_data_dir() -> PathBuf {
    std::env::temp_dir().join(format!("neocloud-srv-{}", neocloud_common::new_id()))
}

/// A loopback server on `db_url` without rate limits.
fn test_config(db_url: &str, data_dir: &std::path::Path) -> Config {
    Config {
        listen: "127.0.0.1:0".into(),
        db: Some(db_url.to_string()),
        data_dir: data_dir.to_path_buf(),
        rate_limit_per_sec: 0,
        anonymous_rate_limit_per_sec: 0,
        // A new node is available after its inspection; the tests of the
        // first sanitization turn it on.
        sanitize_before_first_use: false,
        ..Config::default()
    }
}

/// Binds and runs a server on its own runtime thread; answers once it listens.
fn launch(config: Config) -> (std::net::SocketAddr, CancellationToken, Store, JoinHandle<()>) {
    let (tx, rx) = mpsc::channel();
    let thread = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async move {
            let server = Server::bind(config).await.expect("server binds");
            let _ = tx.send((server.local_addr(), server.cancel_token(), server.store()));
            server.run().await.expect("server runs");
        });
        // Steps still blocked on a silent BMC must not hold the test up.
        rt.shutdown_timeout(std::time::Duration::from_millis(500));
    });
    let (addr, cancel, store) = rx.recv().expect("server started");
    (addr, cancel, store, thread)
}

/// Runs `f` on every available backend.
pub fn each_backend(mut f: impl FnMut(&TestServer)) {
    for b in TestBackend::ALL {
        if let Some(s) = TestServer::start(b) {
            f(&s);
        }
    }
}

#[derive(Clone)]
pub struct Client {
    pub base: String,
    pub token: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Resp {
    pub status: u16,
    pub body: Value,
    pub text: String,
    pub headers: Vec<(String, String)>,
}

impl Resp {
    /// Asserts the status and returns self.
    #[track_caller]
    pub fn expect(self, status: u16) -> Resp {
        assert_eq!(self.status, status, "unexpected status; body: {}", self.text);
        self
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// The error code and field of an error body.
    pub fn error(&self) -> (String, Option<String>) {
        (
            self.body["error"]["code"].as_str().unwrap_or_default().to_string(),
            self.body["error"]["field"].as_str().map(str::to_string),
        )
    }
}

impl Client {
    pub fn raw(
        &self,
        method: &str,
        path: &str,
        body: Option<&[u8]>,
        headers: &[(&str, &str)],
    ) -> Resp {
        let agent = ureq::AgentBuilder::new().build();
        let mut req = agent.request(method, &format!("{}{}", self.base, path));
        if let Some(t) = &self.token {
            req = req.set("Authorization", &format!("Bearer {t}"));
        }
        let mut has_ct = false;
        for (k, v) in headers {
            has_ct |= k.eq_ignore_ascii_case("content-type");
            req = req.set(k, v);
        }
        if body.is_some() && !has_ct {
            req = req.set("Content-Type", "application/json");
        }
        let res = match body {
            Some(b) => req.send_bytes(b),
            None => req.call(),
        };
        let resp = match res {
            Ok(r) => r,
            Err(ureq::Error::Status(_, r)) => r,
            Err(e) => panic!("{method} {path}: transport error {e}"),
        };
        let status = resp.status();
        let headers = resp
            .headers_names()
            .into_iter()
            .filter_map(|n| resp.header(&n).map(|v| (n.clone(), v.to_string())))
            .collect();
        let text = resp.into_string().unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Resp { status, body, text, headers }
    }

    pub fn get(&self, path: &str) -> Resp {
        self.raw("GET", path, None, &[])
    }

    pub fn delete(&self, path: &str) -> Resp {
        self.raw("DELETE", path, None, &[])
    }

    pub fn post(&self, path: &str, body: &Value) -> Resp {
        self.raw("POST", path, Some(body.to_string().as_bytes()), &[])
    }

    pub fn post_empty(&self, path: &str) -> Resp {
        self.raw("POST", path, None, &[])
    }

    pub fn put(&self, path: &str, body: &Value) -> Resp {
        self.raw("PUT", path, Some(body.to_string().as_bytes()), &[])
    }

    pub fn patch(&self, path: &str, body: &Value) -> Resp {
        self.raw("PATCH", path, Some(body.to_string().as_bytes()), &[])
    }
}
