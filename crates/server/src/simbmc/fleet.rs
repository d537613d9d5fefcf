//! The simulated fleet's state: each node's BMC settings and power, the
//! changes a tenant can make from the host (for tests), and the simulated
//! boot that starts a SIMULATED agent.

use super::{mac, Stats, PASSWORD};
use neocloud_agent::{Simulated, SimulatedConfig};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub(super) struct Sim {
    pub(super) power_on: bool,
    /// When a reset last powered it off (µs since the epoch).
    pub(super) off_at: Option<i64>,
    pub(super) boot_target: String,
    pub(super) boot_enabled: String,
    /// `Boot.HttpBootUri`: what a `UefiHttp` boot fetches.
    pub(super) http_boot_uri: Option<String>,
    /// Stops the simulated OS's agent (power off, reset).
    pub(super) agent_stop: Option<Arc<AtomicBool>>,
    /// The image in the virtual CD.
    pub(super) media: Option<String>,
    /// Time this node has spent in simulated waits (its BMC's answers and
    /// its boots), µs.
    pub(super) waited_micros: u64,
    /// UEFI Secure Boot (`SecureBootEnable`).
    pub(super) secure_boot: bool,
    /// The BMC's local accounts, by slot (1-based in their paths).
    pub(super) accounts: Vec<SimAccount>,
    /// [`USER`]'s password.
    pub(super) password: String,
    /// BIOS attributes in effect, and those pending for the next power-on.
    pub(super) bios: BTreeMap<String, Value>,
    pub(super) bios_pending: BTreeMap<String, Value>,
    /// UEFI boot options (by reference) and the persistent boot order.
    pub(super) boot_options: Vec<SimBootOption>,
    pub(super) boot_order: Vec<String>,
    /// The BMC's host interface (`InterfaceEnabled`) and its credential
    /// bootstrapping: both on as the simulated BMC leaves the factory.
    pub(super) host_interface: bool,
    pub(super) credential_bootstrapping: bool,
    /// The firmware inventory (component to version), the versions
    /// staged by an update for the next power-on, and those staged for the
    /// next AC power cycle of the chassis (the HGX baseboard's: `HGX_*`).
    pub(super) firmware: BTreeMap<String, String>,
    pub(super) firmware_pending: BTreeMap<String, String>,
    pub(super) firmware_chassis_pending: BTreeMap<String, String>,
    /// AC power cycles of the chassis done (`Chassis.Reset`).
    pub(super) chassis_resets: u32,
    /// The BMC's tasks (firmware updates), task `n` at index `n - 1`.
    pub(super) tasks: Vec<SimTask>,
    /// The components of each update started, in the order started.
    pub(super) updated: Vec<Vec<String>>,
    /// Restarting: every answer is 503 (see [`SimFleet::set_restarting`]).
    pub(super) restarting: bool,
    /// Components reported other than healthy (`Status.Health`), by `Id`
    /// (a GPU, `GPU_SXM_3`; the host, `Host`); the host's rollup is the
    /// worst of them.
    pub(super) health: BTreeMap<String, String>,
    /// The system event log (`LogServices/SEL`): an entry for each
    /// component set other than healthy, oldest first.
    pub(super) sel: Vec<Value>,
    /// The BMC refuses to clear its SEL (400).
    pub(super) sel_clear_refused: bool,
    /// The BMC fails to serve its SEL's entries (503).
    pub(super) sel_broken: bool,
}

impl Sim {
    /// The host's `Status`: its own health and the worst of every
    /// component's.
    pub(super) fn host_status(&self) -> Value {
        let worst = |it: &mut dyn Iterator<Item = &String>| {
            let rank = |h: &str| match h {
                "Critical" => 2,
                "Warning" => 1,
                _ => 0,
            };
            it.max_by_key(|h| rank(h)).cloned().unwrap_or_else(|| "OK".into())
        };
        let own = worst(&mut self.health.get("Host").into_iter());
        let rollup = worst(&mut self.health.values());
        serde_json::json!({"State": "Enabled", "Health": own, "HealthRollup": rollup})
    }

    /// Appends an entry to the SEL (`Created` now where `dated`: the
    /// BMC's own entries are; a host's in-band ones carry no time here).
    pub(super) fn log_sel(&mut self, severity: &str, message: &str, dated: bool) {
        let n = self.sel.len() + 1;
        let mut entry = serde_json::json!({
            "@odata.id": format!("/redfish/v1/Systems/Host/LogServices/SEL/Entries/{n}"),
            "Id": n.to_string(),
            "EntryType": "SEL",
            "Severity": severity,
            "Message": message,
        });
        if dated {
            entry["Created"] =
                neocloud_common::time::to_rfc3339(neocloud_common::time::now_micros()).into();
        }
        self.sel.push(entry);
    }

    /// A component's `Status`.
    pub(super) fn status_of(&self, id: &str) -> Value {
        let h = self.health.get(id).cloned().unwrap_or_else(|| "OK".into());
        serde_json::json!({"State": "Enabled", "Health": h})
    }
}

/// A task of the simulated BMC (DSP0268 `Task`).
#[derive(Clone)]
pub(super) struct SimTask {
    pub(super) state: String,
    pub(super) status: String,
    pub(super) percent: u32,
    /// DSP0268 `Message` objects.
    pub(super) messages: Vec<Value>,
    /// The request that started it (DSP0268 `Payload`).
    pub(super) payload: Value,
}

/// The simulated firmware as it leaves the factory.
fn default_firmware() -> BTreeMap<String, String> {
    [("BMC", "SIM-BMC-2.1"), ("BIOS", "SIM-BIOS-1.0")]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[derive(Clone)]
pub(super) struct SimBootOption {
    pub(super) reference: String,
    pub(super) name: String,
    pub(super) device_path: String,
    pub(super) enabled: bool,
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
pub(super) const READ_ONLY_BIOS: [&str; 1] = ["SysMemSize"];

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
pub(super) struct SimAccount {
    pub(super) user: String,
    pub(super) role: String,
    pub(super) enabled: bool,
}

impl Sim {
    /// Stops the simulated OS's agent, if one runs (power off, a reset).
    pub(super) fn stop_os(&mut self) {
        if let Some(stop) = self.agent_stop.take() {
            stop.store(true, Ordering::SeqCst);
        }
    }
}

impl Default for Sim {
    fn default() -> Sim {
        Sim {
            power_on: false,
            off_at: None,
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
            host_interface: true,
            credential_bootstrapping: true,
            firmware: default_firmware(),
            firmware_pending: BTreeMap::new(),
            firmware_chassis_pending: BTreeMap::new(),
            chassis_resets: 0,
            tasks: Vec::new(),
            updated: Vec::new(),
            health: BTreeMap::new(),
            sel: Vec::new(),
            sel_clear_refused: false,
            sel_broken: false,
            restarting: false,
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
    /// Simulated boots that started an agent (counted before it
    /// registers, so a phase its registration ends has counted it).
    pub boots: AtomicU64,
    /// Power-ons that booted from the network (a boot override to `Pxe` or
    /// `UefiHttp`, or to `Cd` with an image inserted), with or without a
    /// boot service to boot from.
    pub network_boots: AtomicU64,
    /// Bytes of virtual media the BMCs read from the boot service (their
    /// per-node ISOs), and the boots that failed reading one.
    pub media_bytes: AtomicU64,
    pub media_failures: AtomicU64,
    /// Extra time (ms) a reset takes to be done and answered, on top of
    /// `latency`: a BMC slow to reset (tests of what happens meanwhile).
    pub reset_delay_ms: AtomicU64,
    /// Spread of each wait around `latency` and `boot_delay` (0 to 0.9):
    /// each waits `(1 ± jitter)` times as long, uniformly, as real BMCs and
    /// boots vary, so that nodes do not all move in lockstep.
    pub jitter: f64,
    /// Whether a firmware update that activates only at an AC power cycle
    /// says so in its task (`ResetRequired`); off: it says nothing, as
    /// some BMCs do (tests of the provider's activations).
    pub announce_resets: AtomicBool,
    /// Whether the BMCs list their tasks (`TaskService/Tasks`) and keep
    /// each one's request; off: neither, as some BMCs (tests of a lost
    /// answer that cannot be traced to its task).
    pub list_tasks: AtomicBool,
    /// Whether the BMCs can fetch images (`SimpleUpdate`); off: their
    /// network cannot reach the image server, and only an upload
    /// (`MultipartHttpPushUri`) updates them.
    pub reach_images: AtomicBool,
    /// The first this many nodes that network-boot hang at every boot of
    /// theirs: no agent ever starts (firmware or an image that hangs, as
    /// real nodes now and then do).
    pub dead_nodes: usize,
    /// The nodes that hang (each the first time it booted).
    dead: Mutex<std::collections::HashSet<usize>>,
    /// Draws for the jitter.
    draws: AtomicU64,
    /// See [`SimFleet::on_change`].
    change_hook: Mutex<Option<ChangeHook>>,
}

/// Called with a BMC and what changed (`host_interface`, `account`,
/// `secure_boot`, `boot_option`, `bios_settings`, `system`, `media`,
/// `reset <ResetType>`) once the change is made, before it is answered;
/// `true` loses the answer.
pub type ChangeHook = Arc<dyn Fn(usize, &str) -> bool + Send + Sync>;

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
            media_bytes: AtomicU64::new(0),
            media_failures: AtomicU64::new(0),
            reset_delay_ms: AtomicU64::new(0),
            jitter: 0.0,
            announce_resets: AtomicBool::new(true),
            list_tasks: AtomicBool::new(true),
            reach_images: AtomicBool::new(true),
            dead_nodes: 0,
            dead: Mutex::default(),
            draws: AtomicU64::new(0),
            change_hook: Mutex::new(None),
        })
    }

    /// Calls `hook` on every change a BMC of the fleet makes, after making
    /// it and before answering; where it answers `true` the answer is lost
    /// (the client hears 503 Service Unavailable, the change stays made):
    /// tests of a control plane that dies, or loses the answer, after a
    /// BMC made a change and before it recorded it.
    pub fn on_change(&self, hook: impl Fn(usize, &str) -> bool + Send + Sync + 'static) {
        *self.change_hook.lock().unwrap_or_else(|e| e.into_inner()) = Some(Arc::new(hook));
    }

    /// Whether the answer to BMC `i`'s change `what`, just made, is lost.
    pub(super) fn changed(&self, i: usize, what: &str) -> bool {
        let hook = self.change_hook.lock().unwrap_or_else(|e| e.into_inner()).clone();
        hook.is_some_and(|h| h(i, what))
    }

    pub(super) fn with<T>(&self, i: usize, f: impl FnOnce(&mut Sim) -> T) -> T {
        let mut m = self.sims.lock().unwrap_or_else(|e| e.into_inner());
        f(m.entry(i).or_default())
    }

    /// How long node `i` waits for `base` (jittered), counted as its own
    /// waiting.
    pub(super) fn wait_of(&self, i: usize, base: Duration) -> Duration {
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

    /// Enables or disables `user` on node `i`'s BMC, as a tenant with root
    /// on the host can through its in-band IPMI.
    pub fn set_account_enabled(&self, i: usize, user: &str, on: bool) {
        self.with(i, |s| {
            s.accounts.iter_mut().filter(|a| a.user == user).for_each(|a| a.enabled = on)
        });
    }

    /// Whether node `i` is powered on.
    pub fn power_on(&self, i: usize) -> bool {
        self.with(i, |s| s.power_on)
    }

    /// When a reset last powered node `i` off (µs since the epoch).
    pub fn off_at(&self, i: usize) -> Option<i64> {
        self.with(i, |s| s.off_at)
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

    /// Whether node `i`'s BMC host interface is on.
    pub fn host_interface(&self, i: usize) -> bool {
        self.with(i, |s| s.host_interface)
    }

    /// Turns node `i`'s BMC host interface (and its credential
    /// bootstrapping) on or off, as a tenant can from the host through the
    /// BMC's in-band IPMI or vendor tool.
    pub fn set_host_interface(&self, i: usize, on: bool) {
        self.with(i, |s| {
            s.host_interface = on;
            s.credential_bootstrapping = on;
        });
    }

    /// Node `i`'s firmware version of `component` in effect.
    pub fn firmware(&self, i: usize, component: &str) -> Option<String> {
        self.with(i, |s| s.firmware.get(component).cloned())
    }

    /// Flashes `version` on node `i`'s `component`, in effect at once, as a
    /// tenant with root can from the host (a vendor tool).
    pub fn set_firmware(&self, i: usize, component: &str, version: &str) {
        self.with(i, |s| s.firmware.insert(component.to_string(), version.to_string()));
    }

    /// Sets what node `i`'s BMC reports of component `id`'s health
    /// (`GPU_SXM_3`, `Host`): `OK` clears it. Other than `OK`, its system
    /// event log gets an entry of that severity naming the component.
    pub fn set_health(&self, i: usize, id: &str, health: &str) {
        self.with(i, |s| {
            if health == "OK" {
                s.health.remove(id);
            } else {
                s.health.insert(id.to_string(), health.to_string());
                s.log_sel(health, &format!("SIMULATED: {id} reports {health}"), true);
            }
        });
    }

    /// The host of node `i` writes `message` to its SEL in-band (IPMI
    /// `Add SEL Entry`, as `ipmitool sel add` does).
    pub fn write_sel(&self, i: usize, message: &str) {
        self.with(i, |s| s.log_sel("OK", message, false));
    }

    /// Entries in node `i`'s SEL.
    pub fn sel_len(&self, i: usize) -> usize {
        self.with(i, |s| s.sel.len())
    }

    /// Makes node `i`'s BMC fail (503) to serve its SEL's entries, or serve
    /// them again.
    pub fn set_sel_broken(&self, i: usize, broken: bool) {
        self.with(i, |s| s.sel_broken = broken);
    }

    /// Makes node `i`'s BMC refuse (400) to clear its SEL, or clear it again.
    pub fn set_sel_clear_refused(&self, i: usize, refused: bool) {
        self.with(i, |s| s.sel_clear_refused = refused);
    }

    /// Makes node `i`'s BMC answer every request with 503 (a BMC restarting,
    /// as after its own firmware update), or answer again.
    pub fn set_restarting(&self, i: usize, on: bool) {
        self.with(i, |s| s.restarting = on);
    }

    /// AC power cycles of node `i`'s chassis done (`Chassis.Reset`).
    pub fn chassis_resets(&self, i: usize) -> u32 {
        self.with(i, |s| s.chassis_resets)
    }

    /// Where each of node `i`'s firmware update tasks was asked for (its
    /// request's `TargetUri`: `SimpleUpdate`, or the upload URI).
    pub fn firmware_task_uris(&self, i: usize) -> Vec<String> {
        self.with(i, |s| {
            s.tasks.iter().map(|t| t.payload["TargetUri"].as_str().unwrap_or("").into()).collect()
        })
    }

    /// Firmware updates node `i`'s BMC has run (tasks started).
    pub fn firmware_tasks(&self, i: usize) -> usize {
        self.with(i, |s| s.tasks.len())
    }

    /// The components of each update node `i`'s BMC started, in order.
    pub fn firmware_updates_started(&self, i: usize) -> Vec<Vec<String>> {
        self.with(i, |s| s.updated.clone())
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

    /// Whether node `i`'s boot hangs: it is one of the first
    /// [`Self::dead_nodes`] nodes to network-boot.
    fn hangs(&self, i: usize) -> bool {
        let mut dead = self.dead.lock().unwrap_or_else(|e| e.into_inner());
        if dead.contains(&i) {
            return true;
        }
        if dead.len() < self.dead_nodes {
            dead.insert(i);
            return true;
        }
        false
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
            media_bytes: self.media_bytes.load(Ordering::Relaxed),
            media_failures: self.media_failures.load(Ordering::Relaxed),
            dead_nodes: self.dead.lock().unwrap_or_else(|e| e.into_inner()).len() as u64,
            cpu_secs: neocloud_common::time::process_cpu_secs(),
        }
    }

    /// Stops every simulated agent (shutdown).
    pub fn stop_all(&self) {
        let mut m = self.sims.lock().unwrap_or_else(|e| e.into_inner());
        for s in m.values_mut() {
            s.stop_os();
        }
    }

    /// A simulated power-on: a network boot when the override says so;
    /// from virtual media, the CD's image read first as a BMC reads it (an
    /// image the control plane's boot service serves, its per-node ISO:
    /// one the provider serves elsewhere is taken as read), and no boot
    /// when it cannot be.
    pub(super) fn boot(
        self: &Arc<SimFleet>,
        i: usize,
        stop: Arc<AtomicBool>,
        media: Option<String>,
    ) {
        let Some(base) = self.boot_url.clone() else { return };
        if self.hangs(i) {
            return;
        }
        let fleet = self.clone();
        std::thread::spawn(move || {
            std::thread::sleep(fleet.wait_of(i, fleet.boot_delay));
            if stop.load(Ordering::SeqCst) {
                return;
            }
            if let Some(url) = media.filter(|u| u.starts_with(base.trim_end_matches('/'))) {
                match read_media(&url) {
                    Ok(bytes) => {
                        fleet.media_bytes.fetch_add(bytes, Ordering::Relaxed);
                    }
                    Err(e) => {
                        fleet.media_failures.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(node = i, url, error = %e, "simulated node: virtual media unreadable");
                        return;
                    }
                }
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
            // Counted as it boots, before its agent registers: a phase the
            // registration ends (the node ready) has counted it.
            fleet.boots.fetch_add(1, Ordering::Relaxed);
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
            match agent.run(&stop) {
                Ok(exit) => tracing::debug!(node = i, ?exit, "simulated agent ended"),
                Err(e) => tracing::warn!(node = i, error = %e, "simulated agent gave up"),
            }
        });
    }
}

/// Reads a virtual CD's image as BMCs do: its size (`HEAD`), then the
/// image in ranges of 512 KiB, each answered `206` with its
/// `Content-Range`. The bytes read.
fn read_media(url: &str) -> Result<u64, String> {
    const PART: u64 = 512 * 1024;
    let head = ureq::head(url).call().map_err(|e| format!("HEAD: {e}"))?;
    let size: u64 = head
        .header("Content-Length")
        .and_then(|l| l.parse().ok())
        .ok_or("HEAD: no Content-Length")?;
    let mut at = 0;
    while at < size {
        let last = (at + PART).min(size) - 1;
        let r = ureq::get(url)
            .set("Range", &format!("bytes={at}-{last}"))
            .call()
            .map_err(|e| format!("GET bytes {at}-{last}: {e}"))?;
        if r.status() != 206 {
            return Err(format!("GET bytes {at}-{last}: {} instead of 206", r.status()));
        }
        let mut body = Vec::new();
        std::io::Read::read_to_end(&mut r.into_reader(), &mut body)
            .map_err(|e| format!("GET bytes {at}-{last}: {e}"))?;
        if body.len() as u64 != last - at + 1 {
            return Err(format!("GET bytes {at}-{last}: {} bytes", body.len()));
        }
        at = last + 1;
    }
    Ok(size)
}
