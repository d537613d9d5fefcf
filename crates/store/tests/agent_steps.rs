//! A sanitizer's steps: queued once per kind however often the controller
//! queues them (a step retried after a crash), counted down as the agent
//! reports them, each report taken once. On both backends.

mod common;

use common::*;
use neocloud_store::agents;
use neocloud_types::{AgentStepKind, AgentStepResult};

#[test]
fn steps_are_queued_once_and_counted_down_as_they_are_reported() {
    each_backend(|store, b| {
        let (_, agent) = node_with_sanitizer(store, "n1", "cred");
        assert!(!store.read(|r| agents::steps_queued(r, &agent.id)).unwrap(), "[{b}]");
        // Queued twice (the controller's step repeated after a restart):
        // one of each kind, in order.
        for _ in 0..2 {
            store.write(|w| agents::queue_steps(w, &agent, &AgentStepKind::SANITIZE)).unwrap();
        }
        let steps = store.read(|r| agents::pending_steps(r, &agent.id)).unwrap();
        let kinds: Vec<AgentStepKind> = steps.iter().map(|s| s.kind).collect();
        assert_eq!(kinds, AgentStepKind::SANITIZE.to_vec(), "[{b}]");
        let left = || store.read(|r| agents::steps_left(r, &agent.id)).unwrap();
        assert_eq!(left(), AgentStepKind::SANITIZE.len() as i64, "[{b}]");
        let done = AgentStepResult { ok: true, items: Vec::new() };
        for (i, s) in steps.iter().enumerate() {
            let taken = store.write(|w| agents::complete_step(w, &agent.id, &s.id, &done)).unwrap();
            assert!(taken, "[{b}] step {i}");
            // A retried report changes nothing.
            let again = store.write(|w| agents::complete_step(w, &agent.id, &s.id, &done)).unwrap();
            assert!(!again, "[{b}] step {i} again");
            assert_eq!(left(), (steps.len() - i - 1) as i64, "[{b}] after step {i}");
        }
        // Queued again once all are done: nothing new to run.
        store.write(|w| agents::queue_steps(w, &agent, &AgentStepKind::SANITIZE)).unwrap();
        assert_eq!(left(), 0, "[{b}]");
        assert!(store.read(|r| agents::pending_steps(r, &agent.id)).unwrap().is_empty(), "[{b}]");
        // Another agent's step is not this one's.
        assert!(!store.read(|r| agents::step_exists(r, "other", &steps[0].id)).unwrap(), "[{b}]");
    });
}
