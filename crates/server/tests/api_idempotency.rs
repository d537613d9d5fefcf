//! `Idempotency-Key` on creates: a retry replays the first answer and
//! creates nothing; the same key with another body is refused; keys are per
//! user; concurrent retries create exactly one object.

mod common;
use common::*;
use serde_json::{json, Value};
use std::sync::Barrier;

fn post_key(c: &Client, path: &str, body: &Value, key: &str) -> Resp {
    c.raw("POST", path, Some(body.to_string().as_bytes()), &[("Idempotency-Key", key)])
}

fn names(c: &Client, path: &str) -> Vec<String> {
    let r = c.get(path);
    assert_eq!(r.status, 200, "GET {path}: {}", r.text);
    r.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| i["name"].as_str().or(i["id"].as_str()).unwrap_or_default().to_string())
        .collect()
}

fn count(s: &TestServer, sql: &str) -> i64 {
    s.store.read(|r| r.query(sql, &[])).expect("count")[0].i64(0).expect("count")
}

/// Reserved amount of a resource in a quota view.
fn reserved(q: &Value, res: &str) -> i64 {
    q["resources"][res]["reserved"].as_i64().unwrap_or(0)
}

fn setup(s: &TestServer) {
    let a = s.admin();
    a.post("/v1/tenants", &json!({"name": "acme"})).expect(201);
    a.post("/v1/tenants/acme/projects", &json!({"name": "web"})).expect(201);
    let q = a.get("/v1/tenants/acme/quotas").expect(200);
    a.put(
        "/v1/tenants/acme/quotas",
        &json!({"generation": q.body["generation"], "limits": {"nodes": 100}}),
    )
    .expect(200);
}

/// Posts, retries, and checks the retry is a replay; returns the answer.
fn create_and_retry(s: &TestServer, c: &Client, path: &str, body: &Value, key: &str) -> Resp {
    let b = s.backend.as_str();
    let first = post_key(c, path, body, key);
    assert_eq!(first.status, 201, "[{b}] {path}: first: {}", first.text);
    assert_eq!(first.header("idempotent-replayed"), None, "[{b}] {path}: first is not a replay");
    for i in 0..2 {
        let again = post_key(c, path, body, key);
        assert_eq!(again.status, first.status, "[{b}] {path}: retry {i}: {}", again.text);
        assert_eq!(again.text, first.text, "[{b}] {path}: retry {i}: identical body");
        assert_eq!(
            again.header("idempotent-replayed"),
            Some("true"),
            "[{b}] {path}: retry {i} is marked as a replay"
        );
        assert_ne!(
            again.header("x-request-id"),
            first.header("x-request-id"),
            "[{b}] {path}: a replay has its own request id"
        );
    }
    first
}

#[test]
fn retries_replay_the_first_answer() {
    each_backend(|s| {
        let b = s.backend.as_str();
        setup(s);
        let a = s.admin();
        let events = |outcome: &str| {
            count(s, &format!("SELECT COUNT(*) FROM audit_events WHERE outcome = '{outcome}'"))
        };
        let (succ0, repl0) = (events("success"), events("replayed"));

        // A tenant.
        let t = create_and_retry(s, &a, "/v1/tenants", &json!({"name": "idem-t"}), "key-tenant");
        let tenants = names(&a, "/v1/tenants");
        assert_eq!(tenants.iter().filter(|n| *n == "idem-t").count(), 1, "[{b}] one tenant");
        assert_eq!(
            a.get("/v1/tenants/idem-t").expect(200).body["id"],
            t.body["id"],
            "[{b}] the replayed id is the object's"
        );

        // A project.
        create_and_retry(s, &a, "/v1/tenants/acme/projects", &json!({"name": "p1"}), "key-p");
        assert_eq!(names(&a, "/v1/tenants/acme/projects"), ["p1", "web"], "[{b}] one project");

        // A quota claim: reserved once, not per retry.
        let path = "/v1/tenants/acme/projects/web/claims";
        let c = create_and_retry(s, &a, path, &json!({"resources": {"nodes": 3}}), "key-claim");
        let claims = a.get(path).expect(200);
        assert_eq!(claims.body["items"].as_array().map(Vec::len), Some(1), "[{b}] one claim");
        assert_eq!(claims.body["items"][0]["id"], c.body["id"], "[{b}] the claim");
        for q in ["/v1/tenants/acme/projects/web/quotas", "/v1/tenants/acme/quotas", "/v1/quotas"] {
            let q = a.get(q).expect(200);
            assert_eq!(reserved(&q.body, "nodes"), 3, "[{b}] reserved once: {}", q.text);
        }

        // Three creates succeeded; the four retries are recorded as replays.
        assert_eq!(events("success"), succ0 + 3, "[{b}] success events");
        assert_eq!(events("replayed"), repl0 + 6, "[{b}] replayed events");
        assert_eq!(count(s, "SELECT COUNT(*) FROM idempotency_keys"), 3, "[{b}] stored keys");

        // The key is bound to the path: the same key on another collection
        // is a different request.
        let r = post_key(&a, "/v1/tenants/acme/users", &json!({"name": "kim"}), "key-p");
        assert_eq!(r.status, 201, "[{b}] same key, other operation: {}", r.text);
        assert_eq!(r.header("idempotent-replayed"), None, "[{b}] not a replay");
    });
}

#[test]
fn same_key_with_another_body_is_refused() {
    each_backend(|s| {
        let b = s.backend.as_str();
        setup(s);
        let a = s.admin();
        post_key(&a, "/v1/tenants", &json!({"name": "first"}), "k").expect(201);
        let before = a.get("/v1/tenants").expect(200).body;
        let claims_before = a.get("/v1/tenants/acme/projects/web/claims").expect(200).body;
        let r = post_key(&a, "/v1/tenants", &json!({"name": "second"}), "k");
        assert_eq!(r.status, 422, "[{b}] reused key: {}", r.text);
        assert_eq!(r.error().0, "idempotency_key_reused", "[{b}]");
        assert_eq!(r.header("idempotent-replayed"), None, "[{b}] not a replay");
        assert_eq!(
            r.body["error"]["request_id"].as_str(),
            r.header("x-request-id"),
            "[{b}] request id"
        );
        assert_eq!(a.get("/v1/tenants").expect(200).body, before, "[{b}] nothing created");
        a.get("/v1/tenants/second").expect(404);

        let path = "/v1/tenants/acme/projects/web/claims";
        post_key(&a, path, &json!({"resources": {"nodes": 1}}), "c").expect(201);
        let after_first = a.get(path).expect(200).body;
        assert_ne!(after_first, claims_before, "[{b}] the first claim exists");
        let r = post_key(&a, path, &json!({"resources": {"nodes": 2}}), "c");
        assert_eq!(r.status, 422, "[{b}] reused claim key: {}", r.text);
        assert_eq!(r.error().0, "idempotency_key_reused", "[{b}]");
        assert_eq!(a.get(path).expect(200).body, after_first, "[{b}] no second claim");
        let q = a.get("/v1/tenants/acme/quotas").expect(200);
        assert_eq!(reserved(&q.body, "nodes"), 1, "[{b}] nothing more reserved");
        // The original request still replays.
        let r = post_key(&a, path, &json!({"resources": {"nodes": 1}}), "c");
        assert_eq!(r.header("idempotent-replayed"), Some("true"), "[{b}] still replays");
    });
}

#[test]
fn keys_are_per_user() {
    each_backend(|s| {
        let b = s.backend.as_str();
        setup(s);
        let a = s.admin();
        let alice = s.client(&s.user_with_role("acme", "alice", "tenant-admin", None));
        let bob = s.client(&s.user_with_role("acme", "bob", "tenant-admin", None));
        let path = "/v1/tenants/acme/projects";
        let pa = post_key(&alice, path, &json!({"name": "pa"}), "shared-key").expect(201);
        // Bob's request with the same key is his own: executed, not replayed
        // from Alice's and not refused as a reuse.
        let pb = post_key(&bob, path, &json!({"name": "pb"}), "shared-key");
        assert_eq!(pb.status, 201, "[{b}] bob, other body: {}", pb.text);
        assert_eq!(pb.header("idempotent-replayed"), None, "[{b}] bob is not replayed");
        assert_ne!(pa.body["id"], pb.body["id"], "[{b}] two projects");
        // Same key and same body from a third user: executed (and so fails
        // on the duplicate name), not answered with Alice's project.
        let carol = s.client(&s.user_with_role("acme", "carol", "tenant-admin", None));
        let pc = post_key(&carol, path, &json!({"name": "pa"}), "shared-key");
        assert_eq!(pc.status, 409, "[{b}] carol, alice's body: {}", pc.text);
        assert_eq!(pc.error().0, "already_exists", "[{b}]");
        assert_eq!(names(&a, path), ["pa", "pb", "web"], "[{b}] projects");
        // Each user's retry replays their own answer.
        let again = post_key(&bob, path, &json!({"name": "pb"}), "shared-key");
        assert_eq!(again.text, pb.text, "[{b}] bob's replay");
        let again = post_key(&alice, path, &json!({"name": "pa"}), "shared-key");
        assert_eq!(again.text, pa.text, "[{b}] alice's replay");
    });
}

/// Sends the same keyed create from `n` threads at once.
fn race(c: &Client, path: &str, body: &Value, key: &str, n: usize) -> Vec<Resp> {
    let barrier = Barrier::new(n);
    std::thread::scope(|sc| {
        let hs: Vec<_> = (0..n)
            .map(|_| {
                let (c, barrier) = (c.clone(), &barrier);
                sc.spawn(move || {
                    barrier.wait();
                    post_key(&c, path, body, key)
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().expect("thread")).collect()
    })
}

fn assert_one_winner(s: &TestServer, what: &str, rs: &[Resp]) -> Value {
    let b = s.backend.as_str();
    let all: Vec<(u16, &str)> = rs.iter().map(|r| (r.status, r.text.as_str())).collect();
    for r in rs {
        assert_eq!(r.status, 201, "[{b}] {what}: every request gets the created answer: {all:?}");
    }
    let ids: Vec<&Value> = rs.iter().map(|r| &r.body["id"]).collect();
    assert!(ids.iter().all(|id| *id == ids[0]), "[{b}] {what}: one id for all: {all:?}");
    let fresh = rs.iter().filter(|r| r.header("idempotent-replayed").is_none()).count();
    assert_eq!(fresh, 1, "[{b}] {what}: exactly one request created: {all:?}");
    ids[0].clone()
}

#[test]
fn concurrent_retries_of_a_claim_reserve_once() {
    each_backend(|s| {
        let b = s.backend.as_str();
        setup(s);
        let a = s.admin();
        let path = "/v1/tenants/acme/projects/web/claims";
        for round in 0..3 {
            let key = format!("claim-race-{round}");
            let rs = race(&a, path, &json!({"resources": {"nodes": 2}}), &key, 6);
            let id = assert_one_winner(s, "claim", &rs);
            let claims = a.get(path).expect(200);
            let items = claims.body["items"].as_array().expect("items");
            assert_eq!(items.len(), round + 1, "[{b}] one claim per key: {}", claims.text);
            assert!(items.iter().any(|c| c["id"] == id), "[{b}] the winner's claim exists");
        }
        for q in ["/v1/tenants/acme/projects/web/quotas", "/v1/tenants/acme/quotas", "/v1/quotas"] {
            let q = a.get(q).expect(200);
            assert_eq!(reserved(&q.body, "nodes"), 6, "[{b}] 3 claims of 2: {}", q.text);
        }
    });
}

/// Objects with a unique name: the losers of the race must be answered
/// with the winner's result too, not with "already exists".
#[test]
fn concurrent_retries_of_a_named_create_make_one_object() {
    each_backend(|s| {
        let b = s.backend.as_str();
        setup(s);
        let a = s.admin();
        for round in 0..3 {
            let name = format!("race-{round}");
            let rs = race(&a, "/v1/tenants", &json!({"name": name}), &format!("t-{round}"), 6);
            let id = assert_one_winner(s, "tenant", &rs);
            assert_eq!(a.get(&format!("/v1/tenants/{name}")).expect(200).body["id"], id, "[{b}]");
            let rs = race(
                &a,
                "/v1/tenants/acme/projects",
                &json!({"name": name}),
                &format!("p-{round}"),
                6,
            );
            assert_one_winner(s, "project", &rs);
        }
        assert_eq!(names(&a, "/v1/tenants").len(), 4, "[{b}] acme and three raced tenants");
    });
}

#[test]
fn keys_on_other_operations_are_refused() {
    each_backend(|s| {
        let b = s.backend.as_str();
        setup(s);
        let a = s.admin();
        let claim = a
            .post("/v1/tenants/acme/projects/web/claims", &json!({"resources": {"nodes": 1}}))
            .expect(201);
        let cid = claim.body["id"].as_str().expect("id").to_string();
        let before = (
            a.get("/v1/tenants/acme").expect(200).body,
            a.get("/v1/tenants/acme/projects/web/claims").expect(200).body,
            a.get("/v1/tenants/acme/projects").expect(200).body,
            a.get("/v1/tenants/acme/quotas").expect(200).body,
        );
        let calls: Vec<(&str, String, Option<Value>)> = vec![
            (
                "PATCH",
                "/v1/tenants/acme".into(),
                Some(json!({"generation": 1, "display_name": "x"})),
            ),
            (
                "PUT",
                "/v1/tenants/acme/quotas".into(),
                Some(json!({"generation": 2, "limits": {"nodes": 5}})),
            ),
            ("DELETE", "/v1/tenants/acme/projects/web".into(), None),
            ("POST", format!("/v1/tenants/acme/projects/web/claims/{cid}/commit"), None),
            ("DELETE", format!("/v1/tenants/acme/projects/web/claims/{cid}"), None),
            ("GET", "/v1/tenants/acme".into(), None),
        ];
        for (m, p, body) in &calls {
            let bytes = body.as_ref().map(|v| v.to_string().into_bytes());
            let r = a.raw(m, p, bytes.as_deref(), &[("Idempotency-Key", "k1")]);
            assert_eq!(r.status, 400, "[{b}] {m} {p} with a key: {}", r.text);
            assert_eq!(
                r.error(),
                ("invalid_request".to_string(), Some("Idempotency-Key".to_string())),
                "[{b}] {m} {p}"
            );
        }
        let after = (
            a.get("/v1/tenants/acme").expect(200).body,
            a.get("/v1/tenants/acme/projects/web/claims").expect(200).body,
            a.get("/v1/tenants/acme/projects").expect(200).body,
            a.get("/v1/tenants/acme/quotas").expect(200).body,
        );
        assert_eq!(before, after, "[{b}] nothing changed");
        assert_eq!(count(s, "SELECT COUNT(*) FROM idempotency_keys"), 0, "[{b}] no key stored");
    });
}

#[test]
fn failed_creates_are_not_remembered() {
    each_backend(|s| {
        let b = s.backend.as_str();
        setup(s);
        let a = s.admin();
        // Over quota: refused, and the key stays free for a later success.
        let path = "/v1/tenants/acme/projects/web/claims";
        let r = post_key(&a, path, &json!({"resources": {"nodes": 1000}}), "big");
        assert_eq!(r.status, 409, "[{b}] over quota: {}", r.text);
        assert_eq!(r.error().0, "quota_exceeded", "[{b}]");
        assert_eq!(count(s, "SELECT COUNT(*) FROM idempotency_keys"), 0, "[{b}] nothing stored");
        let q = a.get("/v1/tenants/acme/quotas").expect(200);
        a.put(
            "/v1/tenants/acme/quotas",
            &json!({"generation": q.body["generation"], "limits": {"nodes": 1000}}),
        )
        .expect(200);
        let r = post_key(&a, path, &json!({"resources": {"nodes": 1000}}), "big");
        assert_eq!(r.status, 201, "[{b}] the same keyed request now fits: {}", r.text);
        assert_eq!(r.header("idempotent-replayed"), None, "[{b}] executed, not replayed");
    });
}
