//! One node driven by hand: the test runs its own lifecycle controller
//! step by step and plays the node's agents (tenant and sanitizer), on the
//! SIMULATED BMC or on sushy-static serving a mockup.

use super::*;
use crate::common::nodes::{get_text, lifecycle, node, token_of};
use crate::common::{Client, TestServer};
use neocloud_agent::{Hardware, Simulated, SimulatedConfig};
use neocloud_server::controllers::lifecycle::LifecycleController;
use neocloud_server::secrets::SecretBox;
use neocloud_server::simbmc;
use serde_json::{json, Value};

/// The iPXE script node `mac` gets, which must boot `kernel`.
pub fn boot_script(s: &TestServer, mac: &str, kernel: &str) -> String {
    let (status, script) = get_text(&format!("{}/boot/ipxe?mac={mac}", s.url));
    assert!(status == 200 && script.contains(kernel), "{status}: {script}");
    script
}

/// Registers an agent that sees `gpus` GPUs with the token of the script
/// node `mac` gets for `kernel`; its client.
pub fn register(s: &TestServer, mac: &str, kernel: &str, gpus: u32) -> Client {
    let token = token_of(&boot_script(s, mac, kernel));
    let mut c = SimulatedConfig::new(mac);
    c.gpu_count = gpus;
    let inventory = serde_json::to_value(Simulated::new(c).inventory()).unwrap();
    let reg = s
        .anonymous()
        .post("/agent/v1/register", &json!({"token": token, "inventory": inventory}))
        .expect(201)
        .body;
    s.client(reg["credential"].as_str().unwrap())
}

pub struct ByHand<'a> {
    pub s: &'a TestServer,
    pub ctl: LifecycleController,
    pub secrets: SecretBox,
    pub tenant: Client,
    pub mac: String,
    pub gpus: u32,
    /// The mockup sushy-static serves the node's BMC from (its copy):
    /// sushy-static answers a reset and changes nothing, so the test
    /// powers the system off in the mockup where the controller waits for
    /// the BMC to read it off (before the sanitizer's token is issued).
    pub mockup: Option<std::path::PathBuf>,
}

impl ByHand<'_> {
    /// An instance on `bm-1`, provisioned to `active`; its id.
    pub fn provision(&self, name: &str) -> String {
        let id = create(&self.tenant, name)["id"].as_str().unwrap().to_string();
        drive(&self.ctl, &self.secrets, self.s, "bm-1", "provisioning");
        drive_to_boot(&self.ctl, &self.secrets, self.s, "bm-1");
        register(self.s, &self.mac, TENANT_KERNEL, self.gpus);
        drive(&self.ctl, &self.secrets, self.s, "bm-1", "active");
        id
    }

    /// Releases instance `id`: the sanitizer registers and reports every
    /// step done, and the controller finishes over the BMC. The node's
    /// lifecycle after it.
    pub fn release(&self, id: &str) -> Value {
        release(&self.tenant, id).expect(202);
        drive(&self.ctl, &self.secrets, self.s, "bm-1", "releasing");
        self.finish_release()
    }

    /// From `releasing`: the sanitizer boots and registers, and the node
    /// is `sanitizing`; the sanitizer's client.
    pub fn boot_sanitizer(&self) -> Client {
        self.set_static_power("Off");
        drive_to_boot(&self.ctl, &self.secrets, self.s, "bm-1");
        self.set_static_power("On");
        let agent = register(self.s, &self.mac, SANITIZER_KERNEL, self.gpus);
        drive(&self.ctl, &self.secrets, self.s, "bm-1", "sanitizing");
        agent
    }

    /// The rest of [`Self::release`], from `releasing`.
    pub fn finish_release(&self) -> Value {
        let agent = self.boot_sanitizer();
        for st in heartbeat(&agent).expect(200).body["steps"].as_array().unwrap() {
            report(&agent, st["id"].as_str().unwrap(), true).expect(200);
        }
        for _ in 0..10 {
            let l = lifecycle(self.s, "bm-1");
            if l["state"] != "sanitizing" {
                return l;
            }
            self.ctl.run_once(&self.s.store, &self.secrets).unwrap();
        }
        panic!("bm-1 is still sanitizing: {}", lifecycle(self.s, "bm-1"));
    }
}

impl ByHand<'_> {
    /// On sushy-static, sets the node's system's power state in the
    /// mockup, as the BMC would on a reset (elsewhere: nothing).
    fn set_static_power(&self, state: &str) {
        let Some(dir) = &self.mockup else { return };
        let rows =
            self.s.store.read(|r| r.query("SELECT system_path FROM node_bmcs", &[])).unwrap();
        let system = rows[0].str(0).unwrap();
        let file = dir.join(system.trim_start_matches("/redfish/v1/")).join("index.json");
        let text = std::fs::read_to_string(&file).unwrap();
        let mut v: Value = serde_json::from_str(&text).unwrap();
        v["PowerState"] = json!(state);
        std::fs::write(&file, serde_json::to_string_pretty(&v).unwrap()).unwrap();
    }
}

/// Instance `id`'s record, signed and verified, `complete` as said.
pub fn record(h: &ByHand<'_>, id: &str, complete: bool) -> Value {
    let rec = records(&h.tenant, id).remove(0);
    assert_eq!(rec["body"]["complete"], complete, "{rec}");
    assert!(verified(&rec), "{rec}");
    rec
}

pub fn item_detail(check: &Value, i: usize) -> String {
    check["items"][i]["detail"].as_str().unwrap_or_default().to_string()
}

/// `bm-1` behind SIMULATED BMC `i`, inspected to `available` and driven by
/// hand; its hardware as the provider sees it.
pub fn simulated_node<'a>(s: &'a TestServer, f: &Fleet, i: usize) -> (ByHand<'a>, Value) {
    simulated_node_with(s, f, i, |_| {})
}

/// As [`simulated_node`], its controller set up by `set` (a policy).
pub fn simulated_node_with<'a>(
    s: &'a TestServer,
    f: &Fleet,
    i: usize,
    set: impl FnOnce(&mut LifecycleController),
) -> (ByHand<'a>, Value) {
    let tenant = catalog(s, true);
    enroll_simulated(s, f, i);
    let (mut ctl, secrets) = controller(s);
    set(&mut ctl);
    drive(&ctl, &secrets, s, "bm-1", "available");
    let hw = s.admin().get("/v1/nodes/bm-1/hardware").expect(200).body;
    (ByHand { s, ctl, secrets, tenant, mac: simbmc::mac(i), gpus: 8, mockup: None }, hw)
}

/// `bm-1` behind the sushy-static BMC at `url` serving `mockup`,
/// inspected to `available` and driven by hand; its hardware as the
/// provider sees it.
pub fn static_node<'a>(
    s: &'a TestServer,
    url: &str,
    mockup: &std::path::Path,
) -> (ByHand<'a>, Value) {
    let tenant = catalog(s, true);
    enroll_static(s, url, "bm-1", "neocloud");
    let (ctl, secrets) = controller(s);
    drive(&ctl, &secrets, s, "bm-1", "available");
    let hw = s.admin().get("/v1/nodes/bm-1/hardware").expect(200).body;
    let mac = node(s, "bm-1")["macs"][0].as_str().unwrap().to_string();
    (ByHand { s, ctl, secrets, tenant, mac, gpus: 8, mockup: Some(mockup.to_path_buf()) }, hw)
}

/// Node `name` behind the sushy-static BMC at `url`, enrolled with `user`.
pub fn enroll_static(s: &TestServer, url: &str, name: &str, user: &str) {
    s.admin()
        .post(
            "/v1/nodes",
            &json!({"name": name, "site": "s", "pod": "p", "su": "su1", "rack": "r1",
                    "gpu_model": "h100-80gb", "gpus": 8,
                    "bmc": {"endpoint": url, "username": user, "password": "pw"}}),
        )
        .expect(201);
}
