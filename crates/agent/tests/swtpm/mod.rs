//! A software TPM 2.0 for tests: swtpm (Debian's) on its TCP command port,
//! its state in a directory that outlives it where asked, and tpm2-tools
//! run against it, playing a tenant or reading the TPM back. Shared by the
//! agent's TPM tests and the end-to-end machine's (`crates/server/tests`).

#![allow(dead_code)] // each test binary uses its part

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use neocloud_agent::tpm::TpmPath;

pub struct Swtpm {
    child: Child,
    /// Its TCP command port (the control port is the next one).
    pub port: u16,
    /// Its state (and the tools' working directory).
    pub dir: PathBuf,
    /// Keep the TPM's state when stopped (another swtpm goes on with it).
    keep: bool,
}

fn have(tool: &str, arg: &str) -> bool {
    Command::new(tool).arg(arg).stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok()
}

/// Whether swtpm and tpm2-tools are here; saying so when not (and failing
/// under CI, where scripts/test installs them).
pub fn available() -> bool {
    if have("swtpm", "--version") && have("tpm2_getcap", "--version") {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "swtpm and tpm2-tools are missing but CI is set: scripts/test installs them"
    );
    eprintln!("SKIPPED: swtpm or tpm2-tools not installed (apt-get install swtpm tpm2-tools)");
    false
}

/// Two free ports in a row: tpm2-tools' swtpm transport finds the control
/// port next to the command port.
fn free_ports() -> (u16, u16) {
    loop {
        let a = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = a.local_addr().unwrap().port();
        if port < u16::MAX && std::net::TcpListener::bind(("127.0.0.1", port + 1)).is_ok() {
            return (port, port + 1);
        }
    }
}

impl Swtpm {
    /// A fresh software TPM, or `None` (the test skips) without swtpm.
    pub fn start() -> Option<Swtpm> {
        if !available() {
            return None;
        }
        let dir = std::env::temp_dir().join(format!(
            "neocloud-swtpm-{}-{}",
            std::process::id(),
            free_ports().0
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Some(Swtpm::start_in(dir))
    }

    /// A software TPM on its TCP port with the state in `dir`.
    pub fn start_in(dir: PathBuf) -> Swtpm {
        let (port, ctrl) = free_ports();
        let child = Command::new("swtpm")
            .args(["socket", "--tpm2", "--tpmstate"])
            .arg(format!("dir={}", dir.display()))
            .arg("--server")
            .arg(format!("type=tcp,port={port},bindaddr=127.0.0.1"))
            .arg("--ctrl")
            .arg(format!("type=tcp,port={ctrl},bindaddr=127.0.0.1"))
            .args(["--flags", "not-need-init,startup-clear"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start swtpm");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "swtpm did not listen on {port}");
            std::thread::sleep(Duration::from_millis(50));
        }
        // Listening is not answering: a command right after the port
        // opens can find its connection reset while swtpm sets its state
        // up. Ready once a command is answered.
        let swtpm = Swtpm { child, port, dir, keep: false };
        loop {
            let answered = neocloud_agent::tpm::Tpm::open(&swtpm.path())
                .and_then(|mut t| t.read_state().map(|_| ()));
            match answered {
                Ok(()) => return swtpm,
                Err(e) => {
                    assert!(Instant::now() < deadline, "swtpm on {port} does not answer: {e}")
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops it, keeping its state: the directory.
    pub fn stop(mut self) -> PathBuf {
        self.keep = true;
        self.dir.clone()
    }

    pub fn path(&self) -> TpmPath {
        TpmPath::Tcp(format!("127.0.0.1:{}", self.port))
    }

    /// Runs `tpm2_<tool>` on this TPM; its output, or its error.
    pub fn try_tool(&self, tool: &str, args: &[&str]) -> Result<String, String> {
        let out = Command::new(format!("tpm2_{tool}"))
            .args(args)
            .current_dir(&self.dir)
            .env("TPM2TOOLS_TCTI", format!("swtpm:host=127.0.0.1,port={}", self.port))
            .output()
            .expect("run tpm2-tools");
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        if out.status.success() {
            Ok(text)
        } else {
            Err(format!("{text}{}", String::from_utf8_lossy(&out.stderr)))
        }
    }

    pub fn tool(&self, tool: &str, args: &[&str]) -> String {
        self.try_tool(tool, args).unwrap_or_else(|e| panic!("tpm2_{tool} {args:?}: {e}"))
    }

    /// `neocloud-agent --inventory` (the binary at `bin`) on this TPM: its
    /// JSON report.
    pub fn agent_inventory(&self, bin: &str) -> serde_json::Value {
        let out = Command::new(bin)
            .args(["--inventory", "--tpm", &format!("tcp:127.0.0.1:{}", self.port)])
            .env_remove("NEOCLOUD_API")
            .env_remove("NEOCLOUD_AGENT_TOKEN")
            .output()
            .unwrap();
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)))
    }

    /// `ownerAuthSet: 1` and the like, as tpm2-tools reads them.
    pub fn flag(&self, name: &str) -> bool {
        let props = self.tool("getcap", &["properties-variable"]);
        let line = props.lines().find(|l| l.trim_start().starts_with(&format!("{name}:")));
        line.unwrap_or_else(|| panic!("{name} not in {props}")).trim_end().ends_with('1')
    }

    pub fn handles(&self, kind: &str) -> Vec<String> {
        let out = self.tool("getcap", &[&format!("handles-{kind}")]);
        out.lines().filter_map(|l| l.trim().strip_prefix("- ")).map(str::to_lowercase).collect()
    }

    /// The owner's storage primary key (an ECC key from the default
    /// template): the same while the storage seed is.
    pub fn storage_primary(&self, owner_auth: &str) -> Vec<u8> {
        let mut args = vec!["-Q", "-C", "o", "-G", "ecc", "-c", "srk.ctx"];
        if !owner_auth.is_empty() {
            args.extend(["-P", owner_auth]);
        }
        self.tool("createprimary", &args);
        self.tool("readpublic", &["-Q", "-c", "srk.ctx", "-o", "srk.pub"]);
        self.tool("flushcontext", &["-t"]);
        std::fs::read(self.dir.join("srk.pub")).unwrap()
    }

    /// What a tenant with root leaves: a persistent key, an NV index with
    /// data, and every hierarchy's authorization set.
    pub fn tenant_takes_it(&self) {
        self.tool("createprimary", &["-Q", "-C", "o", "-G", "ecc", "-c", "key.ctx"]);
        self.tool("evictcontrol", &["-Q", "-C", "o", "-c", "key.ctx", "0x81000001"]);
        self.tool("flushcontext", &["-t"]);
        self.tool(
            "nvdefine",
            &["-Q", "0x1500016", "-C", "o", "-s", "8", "-a", "ownerread|ownerwrite"],
        );
        std::fs::write(self.dir.join("secret"), b"tenant-a").unwrap();
        self.tool("nvwrite", &["-Q", "0x1500016", "-C", "o", "-i", "secret"]);
        self.tool("changeauth", &["-c", "owner", "owner-pw"]);
        self.tool("changeauth", &["-c", "endorsement", "endorsement-pw"]);
    }
}

impl Drop for Swtpm {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if !self.keep {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|v| format!("{v:02x}")).collect()
}

/// A TPM maker's certificate authority, for tests: swtpm's own
/// (`swtpm_localca`, which swtpm_setup runs when it manufactures a TPM: a
/// root CA and an intermediate that signs endorsement key certificates in
/// the TCG's format), its state in a directory of its own.
pub struct Manufacturer {
    dir: PathBuf,
}

impl Manufacturer {
    /// A maker with its own root and intermediate (made at its first
    /// certificate).
    pub fn new(name: &str) -> Manufacturer {
        let dir = std::env::temp_dir().join(format!(
            "neocloud-tpm-maker-{}-{name}-{}",
            std::process::id(),
            free_ports().0
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let d = dir.display();
        std::fs::write(
            dir.join("localca.conf"),
            format!(
                "statedir = {d}\nsigningkey = {d}/signkey.pem\nissuercert = {d}/issuercert.pem\n\
                 certserial = {d}/certserial\n"
            ),
        )
        .unwrap();
        std::fs::write(
            dir.join("localca.options"),
            format!(
                "--platform-manufacturer {name}\n--platform-version 2.1\n--platform-model test\n"
            ),
        )
        .unwrap();
        Manufacturer { dir }
    }

    /// Writes a certificate of the TPM's ECC P-256 endorsement key (its
    /// public point `x`, `y`) into its NV memory at 0x01c0000a, as its
    /// maker would (a platform index, larger than the certificate: padded
    /// after it); the certificate (DER).
    pub fn certify(&self, tpm: &Swtpm, x: &[u8], y: &[u8]) -> Vec<u8> {
        let ek = format!("x={},y={},id=secp256r1", hex(x), hex(y));
        self.certify_key(tpm, &ek, "0x1c0000a")
    }

    /// As [`Self::certify`], for the TPM's RSA 2048 endorsement key (its
    /// modulus), at 0x01c00002.
    pub fn certify_rsa(&self, tpm: &Swtpm, modulus: &[u8]) -> Vec<u8> {
        self.certify_key(tpm, &hex(modulus), "0x1c00002")
    }

    /// A certificate of the key `ek` (swtpm_localca's `--ek`) written at
    /// NV `index`.
    fn certify_key(&self, tpm: &Swtpm, ek: &str, index: &str) -> Vec<u8> {
        let out = self.dir.join(format!("ek-{}-{index}", tpm.port));
        std::fs::create_dir_all(&out).unwrap();
        let status = Command::new("swtpm_localca")
            .args(["--type", "ek", "--ek", ek, "--dir"])
            .arg(&out)
            .args(["--tpm-spec-family", "2.0", "--tpm-spec-level", "0"])
            .args(["--tpm-spec-revision", "164", "--tpm-manufacturer", "id:00001014"])
            .args(["--tpm-model", "swtpm", "--tpm-version", "id:20191023", "--tpm2"])
            .arg("--configfile")
            .arg(self.dir.join("localca.conf"))
            .arg("--optsfile")
            .arg(self.dir.join("localca.options"))
            .stdout(Stdio::null())
            .status()
            .expect("run swtpm_localca (swtpm-tools)");
        assert!(status.success(), "swtpm_localca: {status}");
        let cert = std::fs::read(out.join("ek.cert")).unwrap();
        let mut padded = cert.clone();
        padded.extend([0u8; 32]);
        let file = tpm.dir.join("ek-cert.bin");
        std::fs::write(&file, &padded).unwrap();
        let size = padded.len().to_string();
        let attributes = "platformcreate|ppwrite|writedefine|ppread|ownerread|authread|no_da";
        tpm.tool("nvdefine", &["-Q", index, "-C", "p", "-s", &size, "-a", attributes]);
        tpm.tool("nvwrite", &["-Q", index, "-C", "p", "-i", "ek-cert.bin"]);
        cert
    }

    /// Writes the maker's intermediate (DER) into the TPM's NV memory at
    /// 0x01c00100, the first of the EK certificate chain's indices, as
    /// makers whose roots sign per-model intermediates do; the DER.
    pub fn write_chain(&self, tpm: &Swtpm) -> Vec<u8> {
        let der = self.dir.join("intermediate.der");
        let status = Command::new("certtool")
            .args(["--certificate-info", "--outder", "--infile"])
            .arg(self.dir.join("issuercert.pem"))
            .arg("--outfile")
            .arg(&der)
            .stdout(Stdio::null())
            .status()
            .expect("run certtool (gnutls-bin)");
        assert!(status.success(), "certtool: {status}");
        let data = std::fs::read(&der).unwrap();
        std::fs::copy(&der, tpm.dir.join("chain.bin")).unwrap();
        let size = data.len().to_string();
        let attributes = "platformcreate|ppwrite|writedefine|ppread|ownerread|authread|no_da";
        tpm.tool("nvdefine", &["-Q", "0x1c00100", "-C", "p", "-s", &size, "-a", attributes]);
        tpm.tool("nvwrite", &["-Q", "0x1c00100", "-C", "p", "-i", "chain.bin"]);
        data
    }

    /// The maker's CA certificates (PEM): the intermediate that signs
    /// endorsement key certificates, then its root.
    pub fn ca_pem(&self) -> String {
        let read = |f: &str| std::fs::read_to_string(self.dir.join(f)).unwrap();
        format!("{}{}", read("issuercert.pem"), read("swtpm-localca-rootca-cert.pem"))
    }

    /// The root's certificate alone (PEM).
    pub fn root_pem(&self) -> String {
        std::fs::read_to_string(self.dir.join("swtpm-localca-rootca-cert.pem")).unwrap()
    }
}

impl Drop for Manufacturer {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
