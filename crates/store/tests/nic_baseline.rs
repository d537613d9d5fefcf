//! A node's network adapter baseline: recorded once, sent with a
//! sanitizer's `reset_nic_settings`, and, for a node with none whose
//! sanitization follows a tenant, an empty one (every adapter to its
//! defaults). On both backends.

mod common;

use common::*;
use neocloud_store::{agents, nodes};
use neocloud_types::{AgentStepKind, ImagePurpose, NodeCreate};
use serde_json::json;

#[test]
fn a_nodes_nic_baseline_is_sent_with_its_step_and_a_tenants_never_becomes_one() {
    each_backend(|store, b| {
        let node = |name: &str| {
            let p: NodeCreate = serde_json::from_value(json!({
                "name": name, "site": "s", "pod": "p", "su": "su", "rack": "r",
                "gpu_model": "h100-80gb", "gpus": 8
            }))
            .unwrap();
            store.write(|w| nodes::create(w, &p, None)).unwrap()
        };
        // A sanitizer for the node, after `instance` ("": before any
        // tenant), its steps queued: the baseline its NIC step carries.
        let sent = |node_id: &str, instance: &str, cred: &str| {
            store
                .write(|w| {
                    agents::issue_boot_token(
                        w,
                        node_id,
                        &format!("hash-{cred}"),
                        "sealed",
                        ImagePurpose::Sanitizer,
                        instance,
                    )?;
                    let token = agents::boot_token(w, node_id)?.expect("issued");
                    let a = agents::create_agent(w, &token, cred, &Default::default())?;
                    agents::queue_steps(w, &a, &AgentStepKind::SANITIZE)?;
                    let steps = agents::pending_steps(w, &a.id)?;
                    assert_eq!(steps.len(), AgentStepKind::SANITIZE.len());
                    // Only the NIC step carries it.
                    for s in steps.iter().filter(|s| s.kind != AgentStepKind::ResetNicSettings) {
                        assert_eq!(s.nic_baseline, None);
                    }
                    let nic = steps.iter().find(|s| s.kind == AgentStepKind::ResetNicSettings);
                    Ok(nic.expect("queued").nic_baseline.clone())
                })
                .unwrap()
        };
        let n1 = node("n1");
        // Before any tenant, none: the sanitizer records one.
        assert_eq!(sent(&n1.id, "", "c1"), None, "[{b}]");
        let kept = vec!["0000:3b:00.0".to_string(), "0000:3b:00.0/NUM_OF_VFS=16".into()];
        store.write(|w| nodes::set_nic_baseline(w, &n1.id, &kept)).unwrap();
        // Kept once: a later record changes nothing.
        store.write(|w| nodes::set_nic_baseline(w, &n1.id, &[])).unwrap();
        assert_eq!(store.read(|r| nodes::nic_baseline(r, &n1.id)).unwrap(), Some(kept.clone()));
        assert_eq!(sent(&n1.id, "inst-1", "c2"), Some(kept.clone()), "[{b}]");
        // A node with none whose sanitization follows a tenant: reset to
        // the defaults, nothing of the tenant's kept.
        let n2 = node("n2");
        assert_eq!(sent(&n2.id, "inst-2", "c3"), Some(Vec::new()), "[{b}]");
    });
}
