//! The checked-in OpenAPI document must match the code. To accept a change:
//! `NEOCLOUD_UPDATE_SNAPSHOTS=1 cargo test -p neocloud-server --test openapi`
//! and review the diff.

mod common;

use std::path::PathBuf;

fn checked_in() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../openapi/neocloud.json")
}

#[test]
fn openapi_document_matches_the_checked_in_file() {
    let generated = neocloud_server::openapi::render(&neocloud_server::api::ops());
    let path = checked_in();
    if std::env::var_os("NEOCLOUD_UPDATE_SNAPSHOTS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &generated).unwrap();
    }
    let on_disk = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!("{}: {e}; regenerate with NEOCLOUD_UPDATE_SNAPSHOTS=1", path.display())
    });
    if on_disk != generated {
        let first = on_disk
            .lines()
            .zip(generated.lines())
            .enumerate()
            .find(|(_, (a, b))| a != b)
            .map(|(i, (a, b))| format!("line {}: file has {a:?}, code has {b:?}", i + 1))
            .unwrap_or_else(|| "lengths differ".into());
        panic!(
            "openapi/neocloud.json is out of date with the code ({first}); \
             regenerate with NEOCLOUD_UPDATE_SNAPSHOTS=1 and review the diff"
        );
    }
}

#[test]
fn served_document_is_the_checked_in_one() {
    let s = common::TestServer::start(common::TestBackend::Sqlite).expect("sqlite always runs");
    let served = s.anonymous().get("/v1/openapi.json").expect(200);
    let file: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(checked_in()).unwrap()).unwrap();
    assert_eq!(served.body, file);
}

#[test]
fn every_operation_is_unique_and_documented() {
    let ops = neocloud_server::api::ops();
    let mut ids = std::collections::BTreeSet::new();
    let mut routes = std::collections::BTreeSet::new();
    for op in &ops {
        assert!(ids.insert(op.id), "duplicate operationId {}", op.id);
        assert!(routes.insert((op.method, op.path)), "duplicate route {:?} {}", op.method, op.path);
        assert!(op.path.starts_with("/v1/"), "{} is not under /v1", op.path);
        assert!(!op.summary.is_empty(), "{} has no summary", op.id);
        // Path parameters and scope agree: the dispatcher resolves exactly these.
        let has = |p: &str| op.path.contains(&format!("{{{p}}}"));
        match op.scope {
            neocloud_server::api::Scope::Global | neocloud_server::api::Scope::Own => {
                assert!(!has("tenant") && !has("project"), "{}", op.id)
            }
            neocloud_server::api::Scope::Tenant => {
                assert!(has("tenant") && !has("project"), "{}", op.id)
            }
            neocloud_server::api::Scope::Project => {
                assert!(has("tenant") && has("project"), "{}", op.id)
            }
        }
        // Every create takes an Idempotency-Key, and so do the actions a
        // retry would do twice; nothing else.
        const ACTIONS: [&str; 2] = ["instance_power", "instance_rebuild"];
        assert_eq!(
            op.idempotent,
            op.action == neocloud_authz::Action::Create || ACTIONS.contains(&op.id),
            "{}: idempotency flag",
            op.id
        );
    }
}
