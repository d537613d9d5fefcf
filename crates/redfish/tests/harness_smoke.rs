//! The test harness itself (tests/common), exercised with plain HTTP: the
//! sushy-tools peers start and answer, the mockups are consistent, the file
//! server serves. No driver code here.

mod common;

use common::{basic_auth, fake_uuid, members, mockup_dir, Emulator, FileServer, StaticBmc};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

fn agent() -> ureq::Agent {
    ureq::AgentBuilder::new().timeout(Duration::from_secs(10)).redirects(0).build()
}

fn status_of(r: Result<ureq::Response, ureq::Error>) -> u16 {
    match r {
        Ok(r) => r.status(),
        Err(ureq::Error::Status(code, _)) => code,
        Err(e) => panic!("transport error: {e}"),
    }
}

#[test]
fn emulator_lists_its_fake_systems() {
    let Some(emu) = Emulator::start(3) else { return };
    assert!(emu.url.starts_with("http://127.0.0.1:"), "{}", emu.url);
    let got: BTreeSet<String> = emu.systems.iter().cloned().collect();
    let want: BTreeSet<String> = (1..=3).map(fake_uuid).collect();
    assert_eq!(got, want);

    let listed = emu.get("/redfish/v1/Systems");
    assert_eq!(listed["Members@odata.count"], json!(3));
    let sys = emu.get(&emu.system_path(0));
    assert_eq!(sys["Id"].as_str(), Some(emu.systems[0].as_str()));
    assert_eq!(sys["PowerState"], json!("Off"));
    assert!(sys["Actions"]["#ComputerSystem.Reset"]["ResetType@Redfish.AllowableValues"]
        .as_array()
        .is_some_and(|a| a.contains(&json!("ForceOff"))));
    let nics = emu.get(&format!("{}/EthernetInterfaces", emu.system_path(0)));
    assert_eq!(members(&nics).len(), 1);
}

#[test]
fn emulator_state_is_fresh_each_start() {
    let Some(first) = Emulator::start(1) else { return };
    let path = first.system_path(0);
    let r = agent()
        .request("PATCH", &format!("{}{path}", first.url))
        .send_json(json!({"Boot": {"BootSourceOverrideTarget": "Pxe", "BootSourceOverrideEnabled": "Continuous"}}));
    assert_eq!(status_of(r), 204);
    assert_eq!(first.get(&path)["Boot"]["BootSourceOverrideTarget"], json!("Pxe"));
    drop(first);
    let Some(second) = Emulator::start(1) else { return };
    assert_eq!(second.get(&path)["Boot"]["BootSourceOverrideTarget"], json!("Hdd"));
}

#[test]
fn emulator_basic_auth() {
    let Some(emu) = Emulator::start_with_auth(1, "admin", "s3cr:t pass") else { return };
    let systems = format!("{}/redfish/v1/Systems", emu.url);
    // The service root is open (so clients can discover), the rest is not.
    assert_eq!(status_of(agent().get(&format!("{}/redfish/v1", emu.url)).call()), 200);
    assert_eq!(status_of(agent().get(&systems).call()), 401);
    let wrong = agent().get(&systems).set("Authorization", &basic_auth("admin", "nope")).call();
    assert_eq!(status_of(wrong), 401);
    let right =
        agent().get(&systems).set("Authorization", &basic_auth("admin", "s3cr:t pass")).call();
    assert_eq!(status_of(right), 200);
    assert_eq!(emu.systems, vec![fake_uuid(1)]);
}

#[test]
fn emulator_insert_media_downloads_from_the_file_server() {
    let Some(emu) = Emulator::start(1) else { return };
    let files = FileServer::start("boot.iso", b"not really an ISO".to_vec());
    let cd = format!("{}/VirtualMedia/Cd", emu.system_path(0));
    let r = agent()
        .post(&format!("{}{cd}/Actions/VirtualMedia.InsertMedia", emu.url))
        .send_json(json!({"Image": files.url, "Inserted": true}));
    assert_eq!(status_of(r), 204, "{}", emu.log());
    assert_eq!(files.hits(), 1);
    let slot = emu.get(&cd);
    assert_eq!(slot["Image"].as_str(), Some(files.url.as_str()));
    assert_eq!(slot["Inserted"], json!(true));
}

#[test]
fn static_bmc_serves_the_dgx_mockup() {
    let Some(bmc) = StaticBmc::start("dgx-h100") else { return };
    let ids: Vec<String> = members(&bmc.get("/redfish/v1/Systems"))
        .iter()
        .map(|p| p.rsplit('/').next().unwrap().to_string())
        .collect();
    assert_eq!(ids, ["DGX", "HGX_Baseboard_0"]);
    let gpu = bmc.get("/redfish/v1/Systems/HGX_Baseboard_0/Processors/GPU_SXM_3");
    assert_eq!(gpu["Id"], json!("GPU_SXM_3"));
    assert_eq!(gpu["ProcessorType"], json!("GPU"));
    assert_eq!(gpu["Model"], json!("NVIDIA H100 80GB HBM3"));
    assert_eq!(gpu["Oem"]["Nvidia"]["MIGModeEnabled"], json!(false));
    let mem = bmc.get("/redfish/v1/Systems/HGX_Baseboard_0/Memory/GPU_SXM_3_DRAM_0");
    assert_eq!(mem["CapacityMiB"], json!(81559));
    let missing = agent().get(&format!("{}/redfish/v1/Systems/1", bmc.url)).call();
    assert_eq!(status_of(missing), 404);
}

#[test]
fn static_bmc_serves_the_generic_mockup() {
    let Some(bmc) = StaticBmc::start("generic-2cpu") else { return };
    assert_eq!(members(&bmc.get("/redfish/v1/Systems")), ["/redfish/v1/Systems/System.Embedded.1"]);
    let sys = bmc.get("/redfish/v1/Systems/System.Embedded.1");
    assert_eq!(sys["ProcessorSummary"]["Count"], json!(2));
    assert!(sys.get("Processors").is_some());
}

#[test]
fn static_bmc_accepts_a_session_post() {
    let Some(bmc) = StaticBmc::start("dgx-h100") else { return };
    let r = agent()
        .post(&format!("{}/redfish/v1/SessionService/Sessions", bmc.url))
        .send_json(json!({"UserName": "admin", "Password": "admin"}))
        .expect("session POST");
    assert!((200..300).contains(&r.status()), "{}", r.status());
    // sushy-static answers 204 without a token: a driver must cope (fall back to basic auth).
    assert_eq!(r.header("X-Auth-Token"), None);
}

#[test]
fn file_server_serves_its_file_only() {
    let files = FileServer::start("images/boot.iso", vec![7u8; 100_000]);
    assert!(files.url.ends_with("/images/boot.iso"), "{}", files.url);
    let r = agent().get(&files.url).call().expect("GET file");
    assert_eq!(r.header("Content-Length"), Some("100000"));
    let mut body = Vec::new();
    std::io::Read::read_to_end(&mut r.into_reader(), &mut body).unwrap();
    assert_eq!(body, vec![7u8; 100_000]);
    let head = agent().head(&files.url).call().expect("HEAD file");
    assert_eq!(head.status(), 200);
    let other = files.url.replace("boot.iso", "other.iso");
    assert_eq!(status_of(agent().get(&other).call()), 404);
    assert_eq!(files.hits(), 1);
}

/// Every mockup resource is where its `@odata.id` says, every link in it
/// resolves to a file, and collection counts match (no sushy-tools needed).
#[test]
fn mockup_links_resolve() {
    for name in ["dgx-h100", "generic-2cpu"] {
        let root = mockup_dir(name);
        let mut files = Vec::new();
        collect_index_files(&root, &mut files);
        assert!(files.len() > 10, "{name}: only {} resources", files.len());
        for file in files {
            let text = std::fs::read_to_string(&file).unwrap();
            let doc: Value =
                serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
            let rel = file.parent().unwrap().strip_prefix(&root).unwrap();
            let want = if rel.as_os_str().is_empty() {
                "/redfish/v1".to_string()
            } else {
                format!("/redfish/v1/{}", rel.display())
            };
            assert_eq!(doc["@odata.id"].as_str(), Some(want.as_str()), "{}", file.display());
            if let Some(m) = doc["Members"].as_array() {
                assert_eq!(doc["Members@odata.count"], json!(m.len()), "{want}");
            }
            let mut links = Vec::new();
            collect_links(&doc, &mut links);
            for l in links {
                // A member inline in its resource (`Power#/PowerSupplies/0`):
                // that resource must exist.
                let l = l.split('#').next().unwrap_or(&l).to_string();
                let rest = l
                    .strip_prefix("/redfish/v1")
                    .unwrap_or_else(|| panic!("{want}: link {l} outside /redfish/v1"));
                let target = root.join(rest.trim_start_matches('/')).join("index.json");
                assert!(target.is_file(), "{name}{want}: link {l} has no {}", target.display());
            }
        }
    }
}

fn collect_index_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let p = entry.unwrap().path();
        if p.is_dir() {
            collect_index_files(&p, out);
        } else if p.file_name().is_some_and(|n| n == "index.json") {
            out.push(p);
        }
    }
}

fn collect_links(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(map) => {
            for (k, x) in map {
                if k == "@odata.id" {
                    out.extend(x.as_str().map(str::to_string));
                } else {
                    collect_links(x, out);
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|x| collect_links(x, out)),
        _ => {}
    }
}
