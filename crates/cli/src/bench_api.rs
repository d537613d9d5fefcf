//! What the server benchmarks share: a blocking API client and a pool of
//! client threads.

use neocloud_server::{Config, Server};
use serde_json::{json, Value};
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub struct Api {
    base: String,
    token: String,
    agent: ureq::Agent,
}

impl Api {
    pub fn new(base: &str, token: &str) -> Api {
        Api {
            base: base.to_string(),
            token: token.to_string(),
            agent: ureq::AgentBuilder::new().timeout(Duration::from_secs(120)).build(),
        }
    }

    /// One call; the status and the JSON body (Null when there is none).
    pub fn call(&self, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
        let r = self
            .agent
            .request(method, &format!("{}{path}", self.base))
            .set("Authorization", &format!("Bearer {}", self.token));
        let res = match body {
            Some(b) => r.send_json(b.clone()),
            None => r.call(),
        };
        let (status, resp) = match res {
            Ok(resp) => (resp.status(), resp),
            Err(ureq::Error::Status(s, resp)) => (s, resp),
            Err(e) => return (0, json!({"error": e.to_string()})),
        };
        let text = resp.into_string().unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// A GET that must succeed.
    pub fn get(&self, path: &str) -> Result<Value, String> {
        self.ok("GET", path, self.call("GET", path, None))
    }

    /// A DELETE that must succeed.
    pub fn delete(&self, path: &str) -> Result<Value, String> {
        self.ok("DELETE", path, self.call("DELETE", path, None))
    }

    /// A body that is not JSON (`/metrics`); empty on failure.
    pub fn text(&self, path: &str) -> String {
        let r = self.agent.get(&format!("{}{path}", self.base)).call();
        r.ok().and_then(|r| r.into_string().ok()).unwrap_or_default()
    }

    fn ok(&self, method: &str, path: &str, (s, v): (u16, Value)) -> Result<Value, String> {
        if (200..300).contains(&s) {
            Ok(v)
        } else {
            Err(format!("{method} {path} answered {s}: {v}"))
        }
    }

    pub fn must(&self, method: &str, path: &str, body: &Value) -> Result<Value, String> {
        self.ok(method, path, self.call(method, path, Some(body)))
    }
}

/// Runs `jobs` calls on `clients` threads; the results in order and the
/// wall time.
pub fn parallel<T: Send + 'static>(
    base: &str,
    token: &str,
    clients: usize,
    jobs: usize,
    f: impl Fn(&Api, usize) -> T + Send + Sync + 'static,
) -> (Vec<T>, Duration) {
    let start = Instant::now();
    let next = Arc::new(AtomicUsize::new(0));
    let f = Arc::new(f);
    let handles: Vec<_> = (0..clients.clamp(1, jobs.max(1)))
        .map(|_| {
            let (next, f) = (next.clone(), f.clone());
            let api = Api::new(base, token);
            std::thread::spawn(move || {
                let mut out = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    if i >= jobs {
                        return out;
                    }
                    out.push((i, f(&api, i)));
                }
            })
        })
        .collect();
    let mut all: Vec<(usize, T)> =
        handles.into_iter().flat_map(|h| h.join().unwrap_or_default()).collect();
    all.sort_by_key(|(i, _)| *i);
    (all.into_iter().map(|(_, t)| t).collect(), start.elapsed())
}

/// Tenant `name` with a quota of `nodes` H100 nodes and project `p`.
pub fn tenant(api: &Api, name: &str, nodes: usize) -> Result<(), String> {
    api.must("POST", "/v1/tenants", &json!({"name": name}))?;
    api.must(
        "PUT",
        &format!("/v1/tenants/{name}/quotas"),
        &json!({"generation": 1, "limits": {"nodes": nodes, "gpu:h100-80gb": 8 * nodes}}),
    )?;
    api.must("POST", &format!("/v1/tenants/{name}/projects"), &json!({"name": "p"}))?;
    Ok(())
}

/// A whole-node H100 instance type and a tenant and a sanitizer image
/// (never fetched: the nodes are simulated or placement-only).
pub fn catalog(api: &Api, instance_type: &str, images: [&str; 2]) -> Result<(), String> {
    api.must(
        "POST",
        "/v1/instance-types",
        &json!({"name": instance_type, "kind": "bare_metal", "gpu_model": "h100-80gb"}),
    )?;
    for (name, purpose) in images.into_iter().zip(["tenant", "sanitizer"]) {
        api.must(
            "POST",
            "/v1/images",
            &json!({"name": name, "purpose": purpose,
                    "kernel_url": format!("http://images.invalid/{name}/vmlinuz"),
                    "initrd_url": format!("http://images.invalid/{name}/initrd"),
                    "description": "SIMULATED: simulated nodes never fetch it"}),
        )?;
    }
    Ok(())
}

/// A server bound in this process on `config` (not yet running: spawn its
/// `run` on `rt`), its base URL and the admin token it bootstrapped.
pub fn bind(
    rt: &tokio::runtime::Runtime,
    config: Config,
) -> Result<(Server, String, String), ExitCode> {
    let dir = config.data_dir.clone();
    let server = rt.block_on(Server::bind(config)).map_err(|e| crate::output::fail_local(&e))?;
    let token = std::fs::read_to_string(dir.join("admin.token")).map_err(|e| {
        eprintln!("error: no bootstrap token: {e}");
        ExitCode::from(1)
    })?;
    let base = format!("http://{}", server.local_addr());
    Ok((server, base, token.trim().to_string()))
}
