//! The CLI tests' harness: scratch dirs, the real `neocloud serve` binary
//! on a free port, and CLI subprocesses with their own config file.
#![allow(dead_code)]

use serde_json::Value;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_neocloud");

/// A fresh scratch directory under the target dir (removed on drop).
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(name: &str) -> Scratch {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let p = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("cli-{name}-{}-{nanos}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).expect("create scratch dir");
        Scratch(p)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `neocloud serve` on a free port; killed on drop, also when a test panics.
pub struct Server {
    pub child: Child,
    pub url: String,
    pub data_dir: PathBuf,
    pub log: PathBuf,
}

impl Server {
    pub fn start(dir: &Path) -> Server {
        let data_dir = dir.join("data");
        let log = dir.join("server.log");
        // The port may be taken between probing and binding: try again.
        for _ in 0..5 {
            let port = TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("find a free port")
                .port();
            let log_file = std::fs::File::create(&log).expect("create server log");
            let child = Command::new(BIN)
                .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--data-dir"])
                .arg(&data_dir)
                .env_remove("NEOCLOUD_CONFIG")
                .env_remove("NEOCLOUD_DB")
                .stdin(Stdio::null())
                .stdout(log_file.try_clone().expect("clone log handle"))
                .stderr(log_file)
                .spawn()
                .expect("start neocloud serve");
            let mut s = Server {
                child,
                url: format!("http://127.0.0.1:{port}"),
                data_dir: data_dir.clone(),
                log: log.clone(),
            };
            if s.wait_healthy() {
                return s;
            }
        }
        panic!("server did not start; log:\n{}", std::fs::read_to_string(&log).unwrap_or_default());
    }

    /// True once /healthz answers; false if the process exited first.
    pub fn wait_healthy(&mut self) -> bool {
        let deadline = Instant::now() + Duration::from_secs(60);
        let agent = ureq::AgentBuilder::new().timeout(Duration::from_secs(2)).build();
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return false;
            }
            if let Ok(r) = agent.get(&format!("{}/healthz", self.url)).call() {
                if r.status() == 200 {
                    return true;
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "server not healthy after 60s; log:\n{}",
            std::fs::read_to_string(&self.log).unwrap_or_default()
        );
    }

    pub fn admin_token_file(&self) -> PathBuf {
        self.data_dir.join("admin.token")
    }

    pub fn admin_token(&self) -> String {
        std::fs::read_to_string(self.admin_token_file()).expect("read admin.token").trim().into()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What one CLI run did.
#[derive(Debug)]
pub struct Out {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", self.stdout))
    }
}

/// Runs the client with its own config file and a clean environment.
pub struct Cli {
    pub config: PathBuf,
}

impl Cli {
    pub fn new(dir: &Path) -> Cli {
        Cli { config: dir.join("config").join("cli.json") }
    }

    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(BIN);
        c.args(args)
            .env("NEOCLOUD_CLI_CONFIG", &self.config)
            .env_remove("NEOCLOUD_URL")
            .env_remove("NEOCLOUD_TOKEN")
            .env_remove("NEOCLOUD_DB")
            .stdin(Stdio::null());
        c
    }

    pub fn run_cmd(mut c: Command, what: &str) -> Out {
        let o = c.output().unwrap_or_else(|e| panic!("run {what}: {e}"));
        Out {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }

    pub fn run(&self, args: &[&str]) -> Out {
        Cli::run_cmd(self.cmd(args), &args.join(" "))
    }

    /// Runs and asserts the exit code.
    pub fn expect(&self, code: i32, args: &[&str]) -> Out {
        let o = self.run(args);
        assert_eq!(
            o.code,
            code,
            "neocloud {}\nstdout:\n{}\nstderr:\n{}",
            args.join(" "),
            o.stdout,
            o.stderr
        );
        o
    }

    pub fn ok(&self, args: &[&str]) -> Out {
        self.expect(0, args)
    }

    pub fn login(&self, s: &Server) {
        let file = s.admin_token_file();
        let o = self.ok(&["login", "--url", &s.url, "--token-file", file.to_str().unwrap()]);
        assert!(o.stdout.contains("admin"), "{}", o.stdout);
    }
}

/// Asserts the table's header row starts with these columns and some row
/// starts with `first_cell`.
pub fn assert_table(out: &str, header: &[&str], first_cell: &str) {
    let mut lines = out.lines();
    let head: Vec<&str> =
        lines.next().unwrap_or("").split("  ").filter(|s| !s.is_empty()).collect();
    let head: Vec<&str> = head.iter().map(|s| s.trim()).collect();
    assert!(head.starts_with(header), "header {head:?} should start with {header:?}:\n{out}");
    assert!(
        lines.any(|l| l.split_whitespace().next() == Some(first_cell)),
        "no row for {first_cell}:\n{out}"
    );
}
