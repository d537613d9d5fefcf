//! SIMULATED BMCs for `serve --demo` and the benchmarks: one listener
//! serves any number of simulated Redfish BMCs, BMC `i` under
//! `/simbmc/{i}` (service root, a host system with power, boot override, a
//! virtual CD and a MAC, an HGX baseboard with 8 simulated H100 GPUs, a firmware
//! inventory). The real Redfish driver and lifecycle controller drive them
//! exactly as they drive real BMCs.
//!
//! A simulated node also boots: powering it on (or restarting it) with a
//! network boot override (or a one-time boot from its virtual CD with an
//! image inserted: the image stands for an iPXE ISO) fetches its iPXE script from the boot service and,
//! when the script carries a token, starts a SIMULATED agent (the real
//! agent library over simulated hardware) that registers with it. Powering
//! it off stops that agent. Each answer can be delayed by a latency
//! (benchmarks use 1 s), and answers and boots spread around their nominal
//! times by a jitter; the fleet accounts each node's waiting. Never a peer
//! in a driver's tests (those use sushy-tools).

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use neocloud_agent::{Simulated, SimulatedConfig};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The credentials every simulated BMC accepts (basic auth).
pub const USER: &str = "admin";
pub const PASSWORD: &str = "simulated";

/// BMC `i`'s endpoint under a fleet served at `base` (`http://host:port`).
pub fn endpoint(base: &str, i: usize) -> String {
    format!("{}/simbmc/{i}", base.trim_end_matches('/'))
}

/// The MAC of simulated node `i`'s NIC.
pub fn mac(i: usize) -> String {
    format!("02:5e:00:{:02x}:{:02x}:{:02x}", (i >> 16) & 0xff, (i >> 8) & 0xff, i & 0xff)
}

/// What a fleet has answered and started, its timings, and the CPU its
/// process has used (`GET /simbmc/stats`, not counted as a request: a
/// benchmark reads it from a fleet that runs in a process of its own).
#[derive(Clone, Copy, Debug, serde::Serialize, serde::Deserialize)]
pub struct Stats {
    pub requests: u64,
    pub delayed: u64,
    pub boots: u64,
    pub latency_secs: f64,
    pub boot_delay_secs: f64,
    /// See [`SimFleet::jitter`] (0 when absent: older fleets).
    #[serde(default)]
    pub jitter: f64,
    /// The fleet's process, user + system (`None` where the OS does not say).
    pub cpu_secs: Option<f64>,
}

struct Sim {
    power_on: bool,
    boot_target: String,
    boot_enabled: String,
    /// `Boot.HttpBootUri`: what a `UefiHttp` boot fetches.
    http_boot_uri: Option<String>,
    /// Stops the simulated OS's agent (power off, reset).
    agent_stop: Option<Arc<AtomicBool>>,
    /// The image in the virtual CD.
    media: Option<String>,
    /// Time this node has spent in simulated waits (its BMC's answers and
    /// its boots), µs.
    waited_micros: u64,
    /// UEFI Secure Boot (`SecureBootEnable`).
    secure_boot: bool,
    /// The BMC's local accounts, by slot (1-based in their paths).
    accounts: Vec<SimAccount>,
    /// [`USER`]'s password.
    password: String,
    /// BIOS attributes in effect, and those pending for the next power-on.
    bios: BTreeMap<String, Value>,
    bios_pending: BTreeMap<String, Value>,
    /// UEFI boot options (by reference) and the persistent boot order.
    boot_options: Vec<SimBootOption>,
    boot_order: Vec<String>,
}

#[derive(Clone)]
struct SimBootOption {
    reference: String,
    name: String,
    device_path: String,
    enabled: bool,
}

/// The simulated firmware's boot options: PXE on the provisioning NIC,
/// then the OS disk.
fn default_boot_options() -> Vec<SimBootOption> {
    [
        (
            "Boot0001",
            "UEFI PXE IPv4 (simulated NIC)",
            "PciRoot(0x0)/Pci(0x1,0x0)/MAC(000000000000,0x1)/IPv4(0.0.0.0)",
        ),
        (
            "Boot0002",
            "UEFI OS",
            "PciRoot(0x0)/Pci(0x2,0x0)/NVMe(0x1,00-00-00-00-00-00-00-00)/HD(1,GPT)",
        ),
    ]
    .into_iter()
    .map(|(r, n, p)| SimBootOption {
        reference: r.into(),
        name: n.into(),
        device_path: p.into(),
        enabled: true,
    })
    .collect()
}

/// Attributes the simulated BIOS reports but takes no value for (they
/// follow the hardware).
const READ_ONLY_BIOS: [&str; 1] = ["SysMemSize"];

/// The simulated BIOS's attributes as they leave the factory.
fn default_bios() -> BTreeMap<String, Value> {
    [
        ("BootMode", json!("Uefi")),
        ("SriovGlobalEnable", json!("Enabled")),
        ("IommuSupport", json!("Enabled")),
        ("NumaNodesPerSocket", json!(1)),
        ("PcieAcsControl", json!(true)),
        ("SysMemSize", json!("2048 GB")),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

#[derive(Clone)]
struct SimAccount {
    user: String,
    role: String,
    enabled: bool,
}

impl Default for Sim {
    fn default() -> Sim {
        Sim {
            power_on: false,
            boot_target: "None".into(),
            boot_enabled: "Disabled".into(),
            http_boot_uri: None,
            agent_stop: None,
            media: None,
            waited_micros: 0,
            secure_boot: true,
            accounts: vec![SimAccount {
                user: "admin".into(),
                role: "Administrator".into(),
                enabled: true,
            }],
            password: PASSWORD.into(),
            bios: default_bios(),
            bios_pending: BTreeMap::new(),
            boot_options: default_boot_options(),
            boot_order: vec!["Boot0001".into(), "Boot0002".into()],
        }
    }
}

/// A fleet of simulated BMCs and the nodes behind them.
pub struct SimFleet {
    sims: Mutex<HashMap<usize, Sim>>,
    /// Added to every answer.
    pub latency: Duration,
    /// Where simulated nodes network-boot from (the boot service); `None`:
    /// they do not boot.
    pub boot_url: Option<String>,
    /// How long a simulated boot takes before the agent starts.
    pub boot_delay: Duration,
    /// Requests answered (for benchmarks).
    pub requests: AtomicU64,
    /// Of those, the ones that waited `latency` (all but the service root,
    /// which is answered at once): a node's BMC calls are sequential, so
    /// these per node times the latency is its ideal time in BMC waits.
    pub delayed: AtomicU64,
    /// Agents started by simulated boots.
    pub boots: AtomicU64,
    /// Power-ons that booted from the network (a boot override to `Pxe` or
    /// `UefiHttp`, or to `Cd` with an image inserted), with or without a
    /// boot service to boot from.
    pub network_boots: AtomicU64,
    /// Extra time (ms) a reset takes to be done and answered, on top of
    /// `latency`: a BMC slow to reset (tests of what happens meanwhile).
    pub reset_delay_ms: AtomicU64,
    /// Spread of each wait around `latency` and `boot_delay` (0 to 0.9):
    /// each waits `(1 ± jitter)` times as long, uniformly, as real BMCs and
    /// boots vary, so that nodes do not all move in lockstep.
    pub jitter: f64,
    /// Draws for the jitter.
    draws: AtomicU64,
}

impl SimFleet {
    pub fn new(boot_url: Option<String>, latency: Duration) -> Arc<SimFleet> {
        Arc::new(SimFleet {
            sims: Mutex::new(HashMap::new()),
            latency,
            boot_url,
            boot_delay: Duration::from_millis(200),
            requests: AtomicU64::new(0),
            delayed: AtomicU64::new(0),
            boots: AtomicU64::new(0),
            network_boots: AtomicU64::new(0),
            reset_delay_ms: AtomicU64::new(0),
            jitter: 0.0,
            draws: AtomicU64::new(0),
        })
    }

    fn with<T>(&self, i: usize, f: impl FnOnce(&mut Sim) -> T) -> T {
        let mut m = self.sims.lock().unwrap_or_else(|e| e.into_inner());
        f(m.entry(i).or_default())
    }

    /// How long node `i` waits for `base` (jittered), counted as its own
    /// waiting.
    fn wait_of(&self, i: usize, base: Duration) -> Duration {
        let d = if self.jitter > 0.0 && !base.is_zero() {
            // splitmix64 over a counter: a uniform draw in [-1, 1).
            let mut z =
                self.draws.fetch_add(1, Ordering::Relaxed).wrapping_add(0x9E37_79B9_7F4A_7C15);
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            let u = (z >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0;
            base.mul_f64(1.0 + self.jitter.clamp(0.0, 0.9) * u)
        } else {
            base
        };
        self.with(i, |s| s.waited_micros += d.as_micros() as u64);
        d
    }

    /// Adds an enabled account to node `i`'s BMC, as a tenant with root on
    /// the host can through its in-band IPMI.
    pub fn add_account(&self, i: usize, user: &str, role: &str) {
        let a = SimAccount { user: user.into(), role: role.into(), enabled: true };
        self.with(i, |s| s.accounts.push(a));
    }

    /// Whether node `i`'s BMC has `user` enabled.
    pub fn account_enabled(&self, i: usize, user: &str) -> bool {
        self.with(i, |s| s.accounts.iter().any(|a| a.user == user && a.enabled))
    }

    /// Node `i`'s Secure Boot setting.
    pub fn secure_boot(&self, i: usize) -> bool {
        self.with(i, |s| s.secure_boot)
    }

    /// Sets node `i`'s Secure Boot, as a tenant can from the UEFI setup.
    pub fn set_secure_boot(&self, i: usize, on: bool) {
        self.with(i, |s| s.secure_boot = on);
    }

    /// Node `i`'s BMC password for [`USER`].
    pub fn password(&self, i: usize) -> String {
        self.with(i, |s| s.password.clone())
    }

    /// Sets node `i`'s BMC password for [`USER`] (as a rotation the
    /// control plane sent, in a test of a crash after sending it).
    pub fn set_password(&self, i: usize, password: &str) {
        self.with(i, |s| s.password = password.to_string());
    }

    /// Node `i`'s `HttpBootUri`.
    pub fn http_boot_uri(&self, i: usize) -> Option<String> {
        self.with(i, |s| s.http_boot_uri.clone())
    }

    /// Adds a UEFI boot option first in node `i`'s boot order, as a tenant
    /// can from the host (`efibootmgr`).
    pub fn add_boot_option(&self, i: usize, reference: &str, name: &str, device_path: &str) {
        self.with(i, |s| {
            s.boot_options.push(SimBootOption {
                reference: reference.into(),
                name: name.into(),
                device_path: device_path.into(),
                enabled: true,
            });
            s.boot_order.insert(0, reference.into());
        });
    }

    /// Node `i`'s persistent boot order.
    pub fn boot_order(&self, i: usize) -> Vec<String> {
        self.with(i, |s| s.boot_order.clone())
    }

    /// Enables or disables node `i`'s boot option `reference`, as a tenant
    /// can from the host.
    pub fn set_boot_option_enabled(&self, i: usize, reference: &str, enabled: bool) {
        self.with(i, |s| {
            for o in s.boot_options.iter_mut().filter(|o| o.reference == reference) {
                o.enabled = enabled;
            }
        });
    }

    /// Whether node `i`'s boot option `reference` is enabled.
    pub fn boot_option_enabled(&self, i: usize, reference: &str) -> bool {
        self.with(i, |s| s.boot_options.iter().any(|o| o.reference == reference && o.enabled))
    }

    /// Node `i`'s BIOS attribute `name` in effect.
    pub fn bios_attribute(&self, i: usize, name: &str) -> Option<Value> {
        self.with(i, |s| s.bios.get(name).cloned())
    }

    /// Changes node `i`'s BIOS attribute in effect, as a tenant's vendor
    /// tool or the UEFI setup can.
    pub fn set_bios_attribute(&self, i: usize, name: &str, value: Value) {
        self.with(i, |s| s.bios.insert(name.to_string(), value));
    }

    /// Stages a BIOS attribute for node `i`'s next power-on, as a tenant
    /// can through the host interface.
    pub fn stage_bios_attribute(&self, i: usize, name: &str, value: Value) {
        self.with(i, |s| s.bios_pending.insert(name.to_string(), value));
    }

    /// The image in node `i`'s virtual CD.
    pub fn media(&self, i: usize) -> Option<String> {
        self.with(i, |s| s.media.clone())
    }

    /// Each node's simulated waiting so far (BMC answers and boots), in
    /// seconds, by node index.
    pub fn waits(&self) -> Vec<(usize, f64)> {
        let m = self.sims.lock().unwrap_or_else(|e| e.into_inner());
        let mut v: Vec<(usize, f64)> =
            m.iter().map(|(i, s)| (*i, s.waited_micros as f64 / 1e6)).collect();
        v.sort_unstable_by_key(|(i, _)| *i);
        v
    }

    /// The counters now, and the CPU this process has used.
    pub fn stats(&self) -> Stats {
        Stats {
            requests: self.requests.load(Ordering::Relaxed),
            delayed: self.delayed.load(Ordering::Relaxed),
            boots: self.boots.load(Ordering::Relaxed),
            latency_secs: self.latency.as_secs_f64(),
            boot_delay_secs: self.boot_delay.as_secs_f64(),
            jitter: self.jitter,
            cpu_secs: neocloud_common::time::process_cpu_secs(),
        }
    }

    /// Stops every simulated agent (shutdown).
    pub fn stop_all(&self) {
        let mut m = self.sims.lock().unwrap_or_else(|e| e.into_inner());
        for s in m.values_mut() {
            if let Some(stop) = s.agent_stop.take() {
                stop.store(true, Ordering::SeqCst);
            }
        }
    }

    /// A simulated power-on: a network boot when the override says so.
    fn boot(self: &Arc<SimFleet>, i: usize, stop: Arc<AtomicBool>) {
        let Some(base) = self.boot_url.clone() else { return };
        let fleet = self.clone();
        std::thread::spawn(move || {
            std::thread::sleep(fleet.wait_of(i, fleet.boot_delay));
            if stop.load(Ordering::SeqCst) {
                return;
            }
            // Like firmware retrying its network boot, and an agent its
            // registration, while the control plane is unreachable.
            let deadline = std::time::Instant::now() + Duration::from_secs(60);
            let url = format!("{}/boot/ipxe?mac={}", base.trim_end_matches('/'), mac(i));
            let script = loop {
                if stop.load(Ordering::SeqCst) {
                    return;
                }
                match ureq::get(&url).call() {
                    Ok(r) => break r.into_string().unwrap_or_default(),
                    Err(ureq::Error::Transport(_)) | Err(ureq::Error::Status(500..=599, _))
                        if std::time::Instant::now() < deadline =>
                    {
                        std::thread::sleep(Duration::from_millis(200))
                    }
                    Err(e) => {
                        tracing::warn!(node = i, error = %e, "simulated node: no boot script");
                        return;
                    }
                }
            };
            let Some(token) =
                script.split_whitespace().find_map(|w| w.strip_prefix("neocloud.token="))
            else {
                // `exit`: the simulated node boots its local disk (no agent).
                return;
            };
            let mut cfg = SimulatedConfig::new(&format!("simnode-{i}"));
            cfg.hostname = format!("simnode-{i}");
            let hw: Arc<dyn neocloud_agent::Hardware> = Arc::new(Simulated::new(cfg));
            let registration = match neocloud_agent::Registration::new(&base, token) {
                Ok(r) => r,
                Err(e) => {
                    tracing::warn!(node = i, error = %e, "simulated agent did not register");
                    return;
                }
            };
            let agent = loop {
                if stop.load(Ordering::SeqCst) {
                    return;
                }
                let log: neocloud_agent::Logger =
                    Arc::new(move |m: &str| tracing::debug!(node = i, "simulated agent: {m}"));
                match registration.attempt(hw.clone(), log) {
                    Ok(a) => break a,
                    Err(e) if e.is_transient() && std::time::Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_millis(200))
                    }
                    Err(e) => {
                        tracing::warn!(node = i, error = %e, "simulated agent did not register");
                        return;
                    }
                }
            };
            fleet.boots.fetch_add(1, Ordering::Relaxed);
            match agent.run(&stop) {
                Ok(exit) => tracing::debug!(node = i, ?exit, "simulated agent ended"),
                Err(e) => tracing::warn!(node = i, error = %e, "simulated agent gave up"),
            }
        });
    }
}

/// Basic auth as [`USER`] with the node's password (its password changes
/// when the control plane rotates it).
fn authorized(h: &HeaderMap, password: &str) -> bool {
    let want =
        format!("Basic {}", neocloud_common::encoding::base64(&format!("{USER}:{password}")));
    h.get("authorization").and_then(|v| v.to_str().ok()) == Some(want.as_str())
}

fn unauthorized() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        Json(json!({"error": {"message": "simulated BMC: wrong credentials"}})),
    )
        .into_response()
}

fn link(p: &str) -> Value {
    json!({"@odata.id": p})
}

type Fleet = Arc<SimFleet>;

/// Counts the request, waits BMC `i`'s latency, then answers `v` if
/// authorized.
async fn answer(f: &SimFleet, h: &HeaderMap, i: usize, v: impl FnOnce() -> Value) -> Response {
    f.requests.fetch_add(1, Ordering::Relaxed);
    f.delayed.fetch_add(1, Ordering::Relaxed);
    let d = f.wait_of(i, f.latency);
    if !d.is_zero() {
        tokio::time::sleep(d).await;
    }
    if authorized(h, &f.with(i, |s| s.password.clone())) {
        Json(v()).into_response()
    } else {
        unauthorized()
    }
}

const GPUS: usize = 8;

/// The router of a whole simulated fleet.
pub fn router(fleet: Fleet) -> Router {
    Router::new()
        .route("/simbmc/stats", get(|State(f): State<Fleet>| async move { Json(f.stats()) }))
        .route("/simbmc/waits", get(|State(f): State<Fleet>| async move { Json(f.waits()) }))
        .route(
            "/simbmc/{i}/redfish/v1",
            get(|State(f): State<Fleet>| async move {
                f.requests.fetch_add(1, Ordering::Relaxed);
                Json(json!({"Id": "RootService", "Systems": link("/redfish/v1/Systems"),
                            "UpdateService": link("/redfish/v1/UpdateService"),
                            "AccountService": link("/redfish/v1/AccountService")}))
            }),
        )
        .route(
            "/simbmc/{i}/redfish/v1/Systems",
            get(|State(f): State<Fleet>, h: HeaderMap, Path(i): Path<usize>| async move {
                answer(&f, &h, i, || json!({"Members": [link("/redfish/v1/Systems/Host"), link("/redfish/v1/Systems/HGX_Baseboard_0")]})).await
            }),
        )
        .route("/simbmc/{i}/redfish/v1/Systems/Host", get(host).patch(patch_host))
        .route("/simbmc/{i}/redfish/v1/Systems/Host/Bios", get(bios))
        .route(
            "/simbmc/{i}/redfish/v1/Systems/Host/BootOptions",
            get(|State(f): State<Fleet>, h: HeaderMap, Path(i): Path<usize>| async move {
                let refs: Vec<String> =
                    f.with(i, |s| s.boot_options.iter().map(|o| o.reference.clone()).collect());
                answer(&f, &h, i, || {
                    let members: Vec<Value> = refs
                        .iter()
                        .map(|r| link(&format!("/redfish/v1/Systems/Host/BootOptions/{r}")))
                        .collect();
                    json!({"Members@odata.count": members.len(), "Members": members})
                })
                .await
            }),
        )
        .route(
            "/simbmc/{i}/redfish/v1/Systems/Host/BootOptions/{r}",
            get(boot_option).patch(patch_boot_option),
        )
        .route(
            "/simbmc/{i}/redfish/v1/Systems/Host/Bios/Settings",
            get(bios_settings).patch(patch_bios_settings),
        )
        .route(
            "/simbmc/{i}/redfish/v1/Systems/Host/SecureBoot",
            get(secure_boot).patch(patch_secure_boot),
        )
        .route(
            "/simbmc/{i}/redfish/v1/AccountService",
            get(|State(f): State<Fleet>, h: HeaderMap, Path(i): Path<usize>| async move {
                answer(&f, &h, i, || json!({"Id": "AccountService", "Accounts": link("/redfish/v1/AccountService/Accounts")})).await
            }),
        )
        .route(
            "/simbmc/{i}/redfish/v1/AccountService/Accounts",
            get(|State(f): State<Fleet>, h: HeaderMap, Path(i): Path<usize>| async move {
                let n = f.with(i, |s| s.accounts.len());
                answer(&f, &h, i, || {
                    let m: Vec<Value> =
                        (1..=n).map(|a| link(&format!("/redfish/v1/AccountService/Accounts/{a}"))).collect();
                    json!({"Members": m})
                })
                .await
            }),
        )
        .route(
            "/simbmc/{i}/redfish/v1/AccountService/Accounts/{a}",
            get(account).patch(patch_account),
        )
        .route("/simbmc/{i}/redfish/v1/Systems/Host/Actions/ComputerSystem.Reset", post(reset))
        .route(
            "/simbmc/{i}/redfish/v1/Systems/Host/VirtualMedia",
            get(|State(f): State<Fleet>, h: HeaderMap, Path(i): Path<usize>| async move {
                answer(&f, &h, i, || json!({"Members": [link("/redfish/v1/Systems/Host/VirtualMedia/Cd")]})).await
            }),
        )
        .route("/simbmc/{i}/redfish/v1/Systems/Host/VirtualMedia/Cd", get(cd))
        .route(
            "/simbmc/{i}/redfish/v1/Systems/Host/VirtualMedia/Cd/Actions/VirtualMedia.InsertMedia",
            post(insert_media),
        )
        .route(
            "/simbmc/{i}/redfish/v1/Systems/Host/VirtualMedia/Cd/Actions/VirtualMedia.EjectMedia",
            post(eject_media),
        )
        .route(
            "/simbmc/{i}/redfish/v1/Systems/Host/EthernetInterfaces",
            get(|State(f): State<Fleet>, h: HeaderMap, Path(i): Path<usize>| async move {
                answer(&f, &h, i, || json!({"Members": [link("/redfish/v1/Systems/Host/EthernetInterfaces/0")]})).await
            }),
        )
        .route(
            "/simbmc/{i}/redfish/v1/Systems/Host/EthernetInterfaces/0",
            get(|State(f): State<Fleet>, h: HeaderMap, Path(i): Path<usize>| async move {
                answer(&f, &h, i, || json!({"@odata.id": "/redfish/v1/Systems/Host/EthernetInterfaces/0", "Id": "0", "MACAddress": mac(i)})).await
            }),
        )
        .route(
            "/simbmc/{i}/redfish/v1/Systems/HGX_Baseboard_0",
            get(|State(f): State<Fleet>, h: HeaderMap, Path(i): Path<usize>| async move {
                answer(&f, &h, i, || json!({"Id": "HGX_Baseboard_0", "Processors": link("/redfish/v1/Systems/HGX_Baseboard_0/Processors"),
                                         "Memory": link("/redfish/v1/Systems/HGX_Baseboard_0/Memory")})).await
            }),
        )
        .route(
            "/simbmc/{i}/redfish/v1/Systems/HGX_Baseboard_0/Processors",
            get(|State(f): State<Fleet>, h: HeaderMap, Path(i): Path<usize>| async move {
                answer(&f, &h, i, || {
                    let m: Vec<Value> = (1..=GPUS)
                        .map(|g| link(&format!("/redfish/v1/Systems/HGX_Baseboard_0/Processors/GPU_SXM_{g}")))
                        .collect();
                    json!({"Members": m})
                })
                .await
            }),
        )
        .route("/simbmc/{i}/redfish/v1/Systems/HGX_Baseboard_0/Processors/{gpu}", get(gpu))
        .route(
            "/simbmc/{i}/redfish/v1/Systems/HGX_Baseboard_0/Memory",
            get(|State(f): State<Fleet>, h: HeaderMap, Path(i): Path<usize>| async move {
                answer(&f, &h, i, || {
                    let m: Vec<Value> = (1..=GPUS)
                        .map(|g| link(&format!("/redfish/v1/Systems/HGX_Baseboard_0/Memory/GPU_SXM_{g}_DRAM_0")))
                        .collect();
                    json!({"Members": m})
                })
                .await
            }),
        )
        .route(
            "/simbmc/{i}/redfish/v1/Systems/HGX_Baseboard_0/Memory/{dram}",
            get(|State(f): State<Fleet>, h: HeaderMap, Path((i, d)): Path<(usize, String)>| async move {
                answer(&f, &h, i, || json!({"@odata.id": format!("/redfish/v1/Systems/HGX_Baseboard_0/Memory/{d}"), "Id": d, "CapacityMiB": 81559})).await
            }),
        )
        .route(
            "/simbmc/{i}/redfish/v1/UpdateService/FirmwareInventory",
            get(|State(f): State<Fleet>, h: HeaderMap, Path(i): Path<usize>| async move {
                answer(&f, &h, i, || json!({"Members": [link("/redfish/v1/UpdateService/FirmwareInventory/BMC"),
                                                     link("/redfish/v1/UpdateService/FirmwareInventory/BIOS")]})).await
            }),
        )
        .route(
            "/simbmc/{i}/redfish/v1/UpdateService/FirmwareInventory/{fw}",
            get(|State(f): State<Fleet>, h: HeaderMap, Path((i, fw)): Path<(usize, String)>| async move {
                let version = if fw == "BMC" { "SIM-BMC-2.1" } else { "SIM-BIOS-1.0" };
                answer(&f, &h, i, || json!({"Id": fw, "Name": format!("simulated {fw}"), "Version": version})).await
            }),
        )
        .with_state(fleet)
}

async fn host(State(f): State<Fleet>, h: HeaderMap, Path(i): Path<usize>) -> Response {
    let (power_on, target, enabled, uri, order) = f.with(i, |s| {
        (
            s.power_on,
            s.boot_target.clone(),
            s.boot_enabled.clone(),
            s.http_boot_uri.clone(),
            s.boot_order.clone(),
        )
    });
    answer(&f, &h, i, || {
        json!({
            "@odata.id": "/redfish/v1/Systems/Host",
            "Id": "Host",
            "UUID": format!("5e1a0000-0000-4000-8000-{i:012}"),
            "Manufacturer": "neocloud simulator",
            "Model": "Simulated HGX H100",
            "SerialNumber": format!("SIM{i:06}"),
            "PowerState": if power_on { "On" } else { "Off" },
            "Boot": {
                "BootSourceOverrideTarget": target,
                "BootSourceOverrideEnabled": enabled,
                "HttpBootUri": uri,
                "BootOrder": order,
                "BootOptions": link("/redfish/v1/Systems/Host/BootOptions"),
                "BootSourceOverrideTarget@Redfish.AllowableValues": ["None", "Pxe", "Cd", "Hdd", "UefiHttp"]
            },
            "Actions": {"#ComputerSystem.Reset": {
                "target": "/redfish/v1/Systems/Host/Actions/ComputerSystem.Reset",
                "ResetType@Redfish.AllowableValues": ["On", "ForceOff", "GracefulShutdown", "ForceRestart"]
            }},
            "MemorySummary": {"TotalSystemMemoryGiB": 2048},
            "VirtualMedia": link("/redfish/v1/Systems/Host/VirtualMedia"),
            "SecureBoot": link("/redfish/v1/Systems/Host/SecureBoot"),
            "Bios": link("/redfish/v1/Systems/Host/Bios"),
            "Links": {"ManagedBy": []},
            "EthernetInterfaces": link("/redfish/v1/Systems/Host/EthernetInterfaces")
        })
    })
    .await
}

/// An action's answer (its latency, its credentials); once accepted, the
/// change to the simulated node.
async fn act(f: &SimFleet, h: &HeaderMap, i: usize, change: impl FnOnce(&mut Sim)) -> Response {
    let resp = answer(f, h, i, || json!({})).await;
    if resp.status() != StatusCode::OK {
        return resp;
    }
    f.with(i, change);
    StatusCode::NO_CONTENT.into_response()
}

async fn patch_host(
    State(f): State<Fleet>,
    h: HeaderMap,
    Path(i): Path<usize>,
    Json(v): Json<Value>,
) -> Response {
    act(&f, &h, i, |s| {
        if let Some(t) = v["Boot"]["BootSourceOverrideTarget"].as_str() {
            s.boot_target = t.to_string();
        }
        if let Some(e) = v["Boot"]["BootSourceOverrideEnabled"].as_str() {
            s.boot_enabled = e.to_string();
        }
        if let Some(u) = v["Boot"]["HttpBootUri"].as_str() {
            s.http_boot_uri = Some(u.to_string()).filter(|u| !u.is_empty());
        }
        // A boot order naming options it does not have: kept as is (the
        // read back shows it unchanged).
        if let Some(order) = v["Boot"]["BootOrder"].as_array() {
            let order: Vec<String> =
                order.iter().filter_map(|r| r.as_str().map(str::to_string)).collect();
            if order.iter().all(|r| s.boot_options.iter().any(|o| &o.reference == r)) {
                s.boot_order = order;
            }
        }
    })
    .await
}

async fn secure_boot(State(f): State<Fleet>, h: HeaderMap, Path(i): Path<usize>) -> Response {
    let on = f.with(i, |s| s.secure_boot);
    answer(&f, &h, i, || {
        json!({"@odata.id": "/redfish/v1/Systems/Host/SecureBoot", "Id": "SecureBoot",
               "SecureBootEnable": on, "SecureBootMode": "DeployedMode"})
    })
    .await
}

async fn patch_secure_boot(
    State(f): State<Fleet>,
    h: HeaderMap,
    Path(i): Path<usize>,
    Json(v): Json<Value>,
) -> Response {
    act(&f, &h, i, |s| {
        if let Some(on) = v["SecureBootEnable"].as_bool() {
            s.secure_boot = on;
        }
    })
    .await
}

async fn boot_option(
    State(f): State<Fleet>,
    h: HeaderMap,
    Path((i, r)): Path<(usize, String)>,
) -> Response {
    let Some(o) = f.with(i, |s| s.boot_options.iter().find(|o| o.reference == r).cloned()) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    answer(&f, &h, i, || {
        json!({"@odata.id": format!("/redfish/v1/Systems/Host/BootOptions/{r}"), "Id": r,
               "BootOptionReference": o.reference, "DisplayName": o.name,
               "UefiDevicePath": o.device_path, "BootOptionEnabled": o.enabled})
    })
    .await
}

async fn patch_boot_option(
    State(f): State<Fleet>,
    h: HeaderMap,
    Path((i, r)): Path<(usize, String)>,
    Json(v): Json<Value>,
) -> Response {
    act(&f, &h, i, |s| {
        if let (Some(o), Some(on)) =
            (s.boot_options.iter_mut().find(|o| o.reference == r), v["BootOptionEnabled"].as_bool())
        {
            o.enabled = on;
        }
    })
    .await
}

async fn bios(State(f): State<Fleet>, h: HeaderMap, Path(i): Path<usize>) -> Response {
    let attrs = f.with(i, |s| s.bios.clone());
    answer(&f, &h, i, || {
        json!({"@odata.id": "/redfish/v1/Systems/Host/Bios", "Id": "Bios", "Attributes": attrs,
               "@Redfish.Settings": {
                   "SettingsObject": link("/redfish/v1/Systems/Host/Bios/Settings"),
                   "SupportedApplyTimes": ["OnReset"]}})
    })
    .await
}

async fn bios_settings(State(f): State<Fleet>, h: HeaderMap, Path(i): Path<usize>) -> Response {
    let attrs = f.with(i, |s| s.bios_pending.clone());
    answer(&f, &h, i, || {
        json!({"@odata.id": "/redfish/v1/Systems/Host/Bios/Settings", "Id": "Settings",
               "Attributes": attrs})
    })
    .await
}

/// Pending values, applied at the next power-on (unknown names refused,
/// as BMCs check them against their attribute registry).
async fn patch_bios_settings(
    State(f): State<Fleet>,
    h: HeaderMap,
    Path(i): Path<usize>,
    Json(v): Json<Value>,
) -> Response {
    let Some(attrs) = v["Attributes"].as_object().cloned() else {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": {"message": "Attributes missing"}})),
        )
            .into_response();
    };
    let resp = answer(&f, &h, i, || json!({})).await;
    if resp.status() != StatusCode::OK {
        return resp;
    }
    let refused =
        |k: &String, s: &Sim| !s.bios.contains_key(k) || READ_ONLY_BIOS.contains(&k.as_str());
    let unknown = f.with(i, |s| match attrs.keys().find(|k| refused(k, s)) {
        Some(k) => Some(k.clone()),
        None => {
            s.bios_pending.extend(attrs);
            None
        }
    });
    match unknown {
        Some(k) => (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": {"message": format!("unknown or read-only attribute {k}")}})),
        )
            .into_response(),
        None => StatusCode::NO_CONTENT.into_response(),
    }
}

async fn account(
    State(f): State<Fleet>,
    h: HeaderMap,
    Path((i, a)): Path<(usize, usize)>,
) -> Response {
    let Some(acc) = f.with(i, |s| a.checked_sub(1).and_then(|k| s.accounts.get(k).cloned())) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    answer(&f, &h, i, || {
        json!({"@odata.id": format!("/redfish/v1/AccountService/Accounts/{a}"), "Id": a.to_string(),
               "UserName": acc.user, "RoleId": acc.role, "Enabled": acc.enabled})
    })
    .await
}

async fn patch_account(
    State(f): State<Fleet>,
    h: HeaderMap,
    Path((i, a)): Path<(usize, usize)>,
    Json(v): Json<Value>,
) -> Response {
    act(&f, &h, i, |s| {
        let Some(acc) = a.checked_sub(1).and_then(|k| s.accounts.get_mut(k)) else { return };
        if let Some(on) = v["Enabled"].as_bool() {
            acc.enabled = on;
        }
        if let (Some(pw), true) = (v["Password"].as_str(), acc.user == USER) {
            s.password = pw.to_string();
        }
    })
    .await
}

async fn cd(State(f): State<Fleet>, h: HeaderMap, Path(i): Path<usize>) -> Response {
    let media = f.with(i, |s| s.media.clone());
    let base = "/redfish/v1/Systems/Host/VirtualMedia/Cd";
    answer(&f, &h, i, || {
        json!({
            "@odata.id": base,
            "Id": "Cd",
            "MediaTypes": ["CD", "DVD"],
            "Image": media.clone().unwrap_or_default(),
            "Inserted": media.is_some(),
            "Actions": {
                "#VirtualMedia.InsertMedia": {"target": format!("{base}/Actions/VirtualMedia.InsertMedia")},
                "#VirtualMedia.EjectMedia": {"target": format!("{base}/Actions/VirtualMedia.EjectMedia")}
            }
        })
    })
    .await
}

async fn insert_media(
    State(f): State<Fleet>,
    h: HeaderMap,
    Path(i): Path<usize>,
    Json(v): Json<Value>,
) -> Response {
    let Some(image) = v["Image"].as_str().filter(|s| !s.is_empty()) else {
        return (StatusCode::BAD_REQUEST, Json(json!({"error": {"message": "Image required"}})))
            .into_response();
    };
    act(&f, &h, i, |s| s.media = Some(image.to_string())).await
}

async fn eject_media(State(f): State<Fleet>, h: HeaderMap, Path(i): Path<usize>) -> Response {
    act(&f, &h, i, |s| s.media = None).await
}

async fn reset(
    State(f): State<Fleet>,
    h: HeaderMap,
    Path(i): Path<usize>,
    Json(v): Json<Value>,
) -> Response {
    let slow = f.reset_delay_ms.load(Ordering::Relaxed);
    if slow > 0 {
        tokio::time::sleep(Duration::from_millis(slow)).await;
    }
    let resp = answer(&f, &h, i, || json!({})).await;
    if resp.status() != StatusCode::OK {
        return resp;
    }
    let on = match v["ResetType"].as_str() {
        Some("On") | Some("ForceRestart") => true,
        Some("ForceOff") | Some("GracefulShutdown") => false,
        _ => {
            return (
                StatusCode::BAD_REQUEST,
                Json(json!({"error": {"message": "unsupported ResetType"}})),
            )
                .into_response()
        }
    };
    let boot = f.with(i, |s| {
        // Whatever ran stops: power went away or the node restarts.
        if let Some(stop) = s.agent_stop.take() {
            stop.store(true, Ordering::SeqCst);
        }
        s.power_on = on;
        if !on {
            return None;
        }
        // The firmware applies pending BIOS settings as it starts.
        let pending = std::mem::take(&mut s.bios_pending);
        s.bios.extend(pending);
        let network = s.boot_enabled != "Disabled"
            && match s.boot_target.as_str() {
                "Pxe" => true,
                // The firmware fetches the iPXE EFI binary it is pointed at
                // (not really: the SIMULATED one needs only to be pointed).
                "UefiHttp" => s.http_boot_uri.is_some(),
                "Cd" => s.media.is_some(),
                _ => false,
            };
        if s.boot_enabled == "Once" {
            s.boot_enabled = "Disabled".into();
            s.boot_target = "None".into();
        }
        network.then(|| {
            let stop = Arc::new(AtomicBool::new(false));
            s.agent_stop = Some(stop.clone());
            stop
        })
    });
    if let Some(stop) = boot {
        f.network_boots.fetch_add(1, Ordering::Relaxed);
        f.boot(i, stop);
    }
    StatusCode::NO_CONTENT.into_response()
}

async fn gpu(
    State(f): State<Fleet>,
    h: HeaderMap,
    Path((i, g)): Path<(usize, String)>,
) -> Response {
    answer(&f, &h, i, || {
        json!({
            "@odata.id": format!("/redfish/v1/Systems/HGX_Baseboard_0/Processors/{g}"),
            "Id": g,
            "ProcessorType": "GPU",
            "Manufacturer": "NVIDIA",
            "Model": "NVIDIA H100 80GB HBM3 (simulated)",
            "SerialNumber": format!("SIMGPU{i:06}-{g}"),
            "UUID": format!("GPU-5e1a{i:04}-{}", g.trim_start_matches("GPU_SXM_")),
            "Oem": {"Nvidia": {"MIGModeEnabled": false}}
        })
    })
    .await
}

/// Serves the fleet on `listener` until `shutdown` completes, then stops
/// its simulated agents.
pub async fn serve(
    listener: tokio::net::TcpListener,
    fleet: Arc<SimFleet>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) {
    let _ = axum::serve(listener, router(fleet.clone())).with_graceful_shutdown(shutdown).await;
    fleet.stop_all();
}
