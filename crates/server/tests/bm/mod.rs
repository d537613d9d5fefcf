//! What the bare-metal fault and API tests share: servers tuned for them,
//! the catalog, enrollment against the sushy-tools emulator, the test
//! playing the node (iPXE by MAC, the agent, raw agent calls), and views
//! of the store.
#![allow(dead_code)]

mod by_hand;
mod firmware;
mod iso;
#[allow(unused_imports)]
pub use by_hand::*;
#[allow(unused_imports)]
pub use firmware::*;
#[allow(unused_imports)]
pub use iso::*;

use crate::common::nodes::{get_text, lifecycle, token_of, wait_for, wait_node};
use crate::common::{Client, Resp, TestBackend, TestServer};
use crate::peers;
use neocloud_agent::{Agent, AgentError, Exit, Hardware, Simulated, SimulatedConfig};
use neocloud_server::controllers::lifecycle::LifecycleController;
use neocloud_server::secrets::SecretBox;
use neocloud_server::signing::{verify, Signer};
use neocloud_types::AgentStepKind;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

pub const INSTANCES: &str = "/v1/tenants/acme/projects/train/instances";

pub const TENANT_KERNEL: &str = "kernel http://img.local/ubuntu/vmlinuz";

pub const SANITIZER_KERNEL: &str = "kernel http://img.local/sanitizer/vmlinuz";

pub const KEY: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBm9Tq0example tenant@laptop";

pub fn tweak(c: &mut neocloud_server::Config, agent_timeout_secs: u64) {
    c.lifecycle_interval_ms = 100;
    c.bmc_timeout_ms = 5_000;
    c.heartbeat_interval_ms = 100;
    c.agent_timeout_secs = agent_timeout_secs;
    // One network boot, as long as the agent deadline.
    c.boot_timeout_secs = agent_timeout_secs;
    c.boot_attempts = 1;
}

pub fn server(b: TestBackend, agent_timeout_secs: u64) -> Option<TestServer> {
    TestServer::start_with(b, |c| tweak(c, agent_timeout_secs))
}

/// A server whose lifecycle controller does not run: the test drives one
/// by hand.
pub fn server_without_controller(b: TestBackend) -> Option<TestServer> {
    TestServer::start_with(b, |c| {
        tweak(c, 120);
        c.lifecycle_interval_ms = 0;
    })
}

/// A controller of the test's own on the server's store and key.
pub fn controller(s: &TestServer) -> (LifecycleController, SecretBox) {
    let ctl = LifecycleController::new(
        Some(Duration::from_secs(5)),
        Arc::new(Signer::from_seed([7; 32])),
    );
    (ctl, SecretBox::load_or_create(&s.data_dir).expect("the server's secrets key"))
}

/// Tenant acme (project train, quota for 4 nodes), tenant-member alice,
/// the bare-metal type and the tenant image; the sanitizer image too when
/// `sanitizer`. Returns alice's client.
pub fn catalog(s: &TestServer, sanitizer: bool) -> Client {
    let a = s.admin();
    a.post("/v1/tenants", &json!({"name": "acme"})).expect(201);
    a.put(
        "/v1/tenants/acme/quotas",
        &json!({"generation": 1, "limits": {"nodes": 4, "gpu:h100-80gb": 32}}),
    )
    .expect(200);
    a.post("/v1/tenants/acme/projects", &json!({"name": "train"})).expect(201);
    a.post(
        "/v1/instance-types",
        &json!({"name": "bm-h100", "kind": "bare_metal", "gpu_model": "h100-80gb"}),
    )
    .expect(201);
    a.post(
        "/v1/images",
        &json!({"name": "ubuntu", "kernel_url": "http://img.local/ubuntu/vmlinuz",
                "initrd_url": "http://img.local/ubuntu/initrd"}),
    )
    .expect(201);
    if sanitizer {
        add_sanitizer(s);
    }
    s.client(&s.user_with_role("acme", "alice", "tenant-member", None))
}

pub fn add_sanitizer(s: &TestServer) {
    s.admin()
        .post(
            "/v1/images",
            &json!({"name": "sanitizer", "purpose": "sanitizer",
                    "kernel_url": "http://img.local/sanitizer/vmlinuz",
                    "initrd_url": "http://img.local/sanitizer/initrd"}),
        )
        .expect(201);
}

/// Node `bm-{i}` behind the emulator's fake system `i`.
pub fn enroll(s: &TestServer, emu: &peers::Emulator, i: usize) {
    s.admin()
        .post(
            "/v1/nodes",
            &json!({"name": format!("bm-{i}"), "site": "s", "pod": "p", "su": "su1", "rack": "r1",
                    "gpu_model": "h100-80gb", "gpus": 8,
                    "nics": [{"name": "eno1", "rail": 0, "fabric": "prov", "switch": "leaf1",
                              "port": format!("p{i}"), "mac": peers::fake_mac(i)}],
                    "bmc": {"endpoint": emu.url, "username": "admin", "password": "pw"}}),
        )
        .expect(201);
}

/// The catalog with the sanitizer and `n` enrolled nodes, all available.
pub fn setup(s: &TestServer, emu: &peers::Emulator, n: usize) -> Client {
    let tenant = catalog(s, true);
    for i in 1..=n {
        enroll(s, emu, i);
    }
    for i in 1..=n {
        wait_node(s, &format!("bm-{i}"), "available", None);
    }
    tenant
}

pub fn create(tenant: &Client, name: &str) -> Value {
    let r = tenant
        .post(INSTANCES, &json!({"name": name, "instance_type": "bm-h100", "image": "ubuntu"}))
        .expect(201);
    r.body["items"][0].clone()
}

pub fn instance(c: &Client, id: &str) -> Value {
    c.get(&format!("{INSTANCES}/{id}")).expect(200).body
}

/// Waits until the instance is in `state`; returns it.
pub fn wait_instance(c: &Client, id: &str, state: &str) -> Value {
    wait_for(&format!("instance {id} {state}"), Duration::from_secs(30), || {
        let i = instance(c, id);
        (i["state"] == state).then_some(i)
    })
}

pub fn release(c: &Client, id: &str) -> Resp {
    c.delete(&format!("{INSTANCES}/{id}"))
}

pub fn records(c: &Client, id: &str) -> Vec<Value> {
    c.get(&format!("{INSTANCES}/{id}/sanitization")).expect(200).body["items"]
        .as_array()
        .unwrap()
        .clone()
}

/// The names of a record's checks, in order.
pub fn check_names(rec: &Value) -> Vec<&str> {
    rec["body"]["checks"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect()
}

/// A record's check by name.
pub fn check<'a>(rec: &'a Value, name: &str) -> &'a Value {
    rec["body"]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no check {name} in {rec}"))
}

pub fn verified(rec: &Value) -> bool {
    verify(
        rec["public_key"].as_str().unwrap(),
        rec["signed_json"].as_str().unwrap().as_bytes(),
        rec["signature"].as_str().unwrap(),
    )
}

/// What iPXE gets for fake system `i`'s MAC.
pub fn ipxe(s: &TestServer, i: usize) -> (u16, String) {
    get_text(&format!("{}/boot/ipxe?mac={}", s.url, peers::fake_mac(i)))
}

/// Waits until node `i` network-boots the image whose kernel line is
/// `kernel`; returns the script. Like a real node, it boots once the
/// controller has reset it for that boot (`await_agent`): the token a
/// script served before the reset would be refused (replaced by it).
pub fn wait_boot(s: &TestServer, i: usize, kernel: &str) -> String {
    wait_for(&format!("node {i} to boot {kernel}"), Duration::from_secs(60), || {
        if lifecycle(s, &format!("bm-{i}"))["step"] != "await_agent" {
            return None;
        }
        let (status, script) = ipxe(s, i);
        (status == 200 && script.contains(kernel)).then_some(script)
    })
}

/// Runs the test's controller until the node has been reset for its
/// boot and waits for the image's agent.
/// Passes that do not move it (a release waiting for its firmware
/// updates' tasks) are paced, up to 20 s.
pub fn drive_to_boot(ctl: &LifecycleController, secrets: &SecretBox, s: &TestServer, name: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    for pass in 0.. {
        if lifecycle(s, name)["step"] == "await_agent" {
            return;
        }
        if std::time::Instant::now() > deadline {
            break;
        }
        if pass >= 10 {
            std::thread::sleep(Duration::from_millis(20));
        }
        ctl.run_once(&s.store, secrets).unwrap();
    }
    panic!("{name} is not booting: {}", lifecycle(s, name));
}

/// Simulated hardware without GPUs: the emulator's fake systems show none
/// to the BMC, so a sanitizer that sees none has reset every GPU there is.
pub fn hw(seed: &str, fail: Option<AgentStepKind>) -> Arc<dyn Hardware> {
    let mut c = SimulatedConfig::new(seed);
    c.gpu_count = 0;
    c.fail_step = fail;
    Arc::new(Simulated::new(c))
}

/// Plays node `i` booting the image with `kernel`: its iPXE script, then
/// the agent registering with the script's one-time token.
pub fn boot(s: &TestServer, i: usize, kernel: &str, hw: Arc<dyn Hardware>) -> Agent {
    let script = wait_boot(s, i, kernel);
    Agent::register(&s.url, &token_of(&script), hw)
        .unwrap_or_else(|e| panic!("node {i}'s agent ({kernel}) registers: {e}"))
}

pub type Running = (Arc<AtomicBool>, JoinHandle<Result<Exit, AgentError>>);

pub fn spawn(agent: Agent) -> Running {
    let stop = Arc::new(AtomicBool::new(false));
    (stop.clone(), agent.spawn(stop))
}

/// How the agent's loop ended (it must end on its own).
pub fn exit_of(r: Running) -> Exit {
    r.1.join().expect("agent thread").expect("agent loop")
}

pub fn stop(r: Running) {
    r.0.store(true, Ordering::Relaxed);
    let _ = r.1.join();
}

/// `POST /agent/v1/register` by hand.
pub fn register_raw(s: &TestServer, token: &str, seed: &str) -> Resp {
    let inventory = serde_json::to_value(hw(seed, None).inventory()).unwrap();
    s.anonymous().post("/agent/v1/register", &json!({"token": token, "inventory": inventory}))
}

pub fn heartbeat(c: &Client) -> Resp {
    c.post("/agent/v1/heartbeat", &json!({"health": "ok"}))
}

pub fn report(c: &Client, step: &str, ok: bool) -> Resp {
    c.post(
        &format!("/agent/v1/steps/{step}"),
        &json!({"ok": ok, "items": [{"target": "/dev/test0", "method": "test", "ok": ok,
                                     "detail": "reported by hand"}]}),
    )
}

pub fn committed(s: &TestServer, key: &str) -> i64 {
    s.admin().get("/v1/tenants/acme/quotas").expect(200).body["resources"][key]["committed"]
        .as_i64()
        .unwrap_or(0)
}

pub fn free_nodes(s: &TestServer) -> i64 {
    let cap = s.admin().get("/v1/capacity").expect(200).body;
    cap["models"][0]["total"]["free_nodes"].as_i64().unwrap_or_else(|| panic!("{cap}"))
}

/// (GPU, memory slice) units held, checked the same by the allocations'
/// records and by the nodes' words.
pub fn units_held(s: &TestServer) -> i64 {
    let (by_allocation, by_node) =
        s.store.read(neocloud_store::allocation_holds::units_held).unwrap();
    assert_eq!(by_allocation, by_node, "the allocations' holds and the nodes' words agree");
    by_allocation as i64
}

pub fn count(s: &TestServer, sql: &str) -> i64 {
    s.store.read(|r| r.query(sql, &[])).unwrap_or_else(|e| panic!("{sql}: {e}"))[0].i64(0).unwrap()
}

/// Audit actions (all chains) whose target ends with `target`.
pub fn actions(s: &TestServer, target: &str) -> Vec<String> {
    s.admin().get("/v1/audit?limit=1000").expect(200).body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["target"].as_str().unwrap_or_default().ends_with(target))
        .map(|e| e["action"].as_str().unwrap().to_string())
        .collect()
}

pub fn times(list: &[String], action: &str) -> usize {
    list.iter().filter(|a| *a == action).count()
}

/// The provider's API keeps the last sanitizer image while instances live;
/// the catalog can still lose it (on PostgreSQL a delete and an instance
/// create on two replicas do not see each other): removed here behind the
/// API's back.
pub fn lose_sanitizer(s: &TestServer) {
    let b = s.backend.as_str();
    let r = s.admin().delete("/v1/images/sanitizer").expect(409);
    assert!(r.text.contains("the only sanitizer image"), "[{b}] {}", r.text);
    s.store
        .write(|w| {
            w.execute("DELETE FROM images WHERE purpose = 'sanitizer'", &[]).map_err(Into::into)
        })
        .unwrap_or_else(|e| panic!("[{b}] {e}"));
}

/// One node (`bm-1`, emulator system 1) with a full catalog, enrolled and
/// made available by the test's own controller; the tenant's client.
pub fn one_node_by_hand(
    s: &TestServer,
    emu: &peers::Emulator,
) -> (Client, LifecycleController, SecretBox) {
    nodes_by_hand(s, emu, 1)
}

/// [`one_node_by_hand`] with `n` nodes (`bm-1` to `bm-{n}`, emulator
/// systems 1 to `n`).
pub fn nodes_by_hand(
    s: &TestServer,
    emu: &peers::Emulator,
    n: usize,
) -> (Client, LifecycleController, SecretBox) {
    let tenant = catalog(s, true);
    for i in 1..=n {
        enroll(s, emu, i);
    }
    let (ctl, secrets) = controller(s);
    for i in 1..=n {
        drive(&ctl, &secrets, s, &format!("bm-{i}"), "available");
    }
    (tenant, ctl, secrets)
}

/// Runs the test's controller until the node is in `state`.
pub fn drive(
    ctl: &LifecycleController,
    secrets: &SecretBox,
    s: &TestServer,
    name: &str,
    state: &str,
) {
    for _ in 0..10 {
        if lifecycle(s, name)["state"] == state {
            return;
        }
        ctl.run_once(&s.store, secrets).unwrap();
    }
    panic!("{name} is not {state}: {}", lifecycle(s, name));
}

/// Everything a refused create must leave as it was.
pub fn snapshot(s: &TestServer) -> Vec<i64> {
    let mut v: Vec<i64> = ["instances", "allocations", "allocation_holds", "quota_claims"]
        .iter()
        .map(|t| count(s, &format!("SELECT COUNT(*) FROM {t}")))
        .collect();
    v.push(committed(s, "nodes"));
    v.push(committed(s, "gpu:h100-80gb"));
    v.push(free_nodes(s));
    v.push(units_held(s));
    v
}

/// `POST /agent/v1/register` with a proposed credential.
pub fn register_as(s: &TestServer, token: &str, credential: Option<&str>) -> Resp {
    let inventory = serde_json::to_value(hw("n1", None).inventory()).unwrap();
    s.anonymous().post(
        "/agent/v1/register",
        &json!({"token": token, "inventory": inventory, "credential": credential}),
    )
}

/// A SIMULATED fleet on a loopback listener. No boot URL: its nodes do not
/// boot by themselves; the tests play their agents.
pub struct Fleet {
    _rt: tokio::runtime::Runtime,
    pub sim: Arc<neocloud_server::simbmc::SimFleet>,
    pub base: String,
}

pub fn fleet() -> Fleet {
    use neocloud_server::simbmc::{self, SimFleet};
    let rt = tokio::runtime::Runtime::new().unwrap();
    let sim = SimFleet::new(None, Duration::ZERO);
    let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    rt.spawn(simbmc::serve(listener, sim.clone(), std::future::pending::<()>()));
    Fleet { _rt: rt, sim, base }
}

/// Node `bm-1` behind SIMULATED BMC `i` of fleet `f`.
pub fn enroll_simulated(s: &TestServer, f: &Fleet, i: usize) {
    use neocloud_server::simbmc;
    s.admin()
        .post(
            "/v1/nodes",
            &json!({"name": "bm-1", "site": "s", "pod": "p", "su": "su1", "rack": "r1",
                    "gpu_model": "h100-80gb", "gpus": 8,
                    "bmc": {"endpoint": simbmc::endpoint(&f.base, i),
                            "username": simbmc::USER, "password": simbmc::PASSWORD}}),
        )
        .expect(201);
}
