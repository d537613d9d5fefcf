//! The audit trail through the API: every mutation (successful, denied,
//! failed, anonymous) is recorded with who, what, the role, the outcome and
//! the request id, in the right tenant's chain; reads are not; the chains
//! verify, and tampering is detected.

mod common;
use common::*;
use neocloud_store::BackendKind;
use serde_json::{json, Value};

struct Fixture {
    alice: Client,
    vic: Client,
    mem: Client,
    bea: Client,
    acme_id: String,
    beta_id: String,
}

fn setup(s: &TestServer) -> Fixture {
    let a = s.admin();
    let acme = a.post("/v1/tenants", &json!({"name": "acme"})).expect(201);
    let beta = a.post("/v1/tenants", &json!({"name": "beta"})).expect(201);
    Fixture {
        alice: s.client(&s.user_with_role("acme", "alice", "tenant-admin", None)),
        vic: s.client(&s.user_with_role("acme", "vic", "tenant-viewer", None)),
        mem: s.client(&s.user_with_role("acme", "mem", "tenant-member", None)),
        bea: s.client(&s.user_with_role("beta", "bea", "tenant-admin", None)),
        acme_id: acme.body["id"].as_str().unwrap().to_string(),
        beta_id: beta.body["id"].as_str().unwrap().to_string(),
    }
}

fn items(r: &Resp) -> Vec<Value> {
    r.body["items"].as_array().unwrap_or_else(|| panic!("no items: {}", r.text)).clone()
}

/// A tenant's whole trail.
fn trail(c: &Client, tenant: &str) -> Vec<Value> {
    let r = c.get(&format!("/v1/tenants/{tenant}/audit?limit=1000"));
    assert_eq!(r.status, 200, "audit of {tenant}: {}", r.text);
    items(&r)
}

/// Every event, all chains.
fn all_events(s: &TestServer) -> Vec<Value> {
    let r = s.admin().get("/v1/audit?limit=1000");
    assert_eq!(r.status, 200, "provider audit: {}", r.text);
    items(&r)
}

fn by_request<'a>(events: &'a [Value], rid: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["request_id"] == rid).collect()
}

/// The one event of a request in `events`.
#[track_caller]
fn event_of(s: &TestServer, events: &[Value], r: &Resp, what: &str) -> Value {
    let rid = r.header("x-request-id").expect("x-request-id");
    let found = by_request(events, rid);
    assert_eq!(
        found.len(),
        1,
        "[{}] {what}: one event for request {rid}; have {}",
        s.backend.as_str(),
        serde_json::to_string_pretty(&events).unwrap()
    );
    found[0].clone()
}

fn me(c: &Client) -> (String, String) {
    let m = c.get("/v1/me").expect(200);
    (m.body["user"]["id"].as_str().unwrap().into(), m.body["token_id"].as_str().unwrap().into())
}

#[track_caller]
fn assert_fields(s: &TestServer, what: &str, e: &Value, expect: &Value) {
    for (k, v) in expect.as_object().unwrap() {
        assert_eq!(&e[k], v, "[{}] {what}: field {k} of {e}", s.backend.as_str());
    }
}

#[test]
fn successful_mutations_are_recorded_in_the_tenants_chain() {
    each_backend(|s| {
        let b = s.backend.as_str();
        let f = setup(s);
        let (alice_id, alice_tok) = me(&f.alice);
        let r = f.alice.post("/v1/tenants/acme/projects", &json!({"name": "web"})).expect(201);
        let pid = r.body["id"].as_str().unwrap().to_string();
        let e = event_of(s, &trail(&f.alice, "acme"), &r, "project create");
        assert_fields(
            s,
            "project create",
            &e,
            &json!({
                "chain": f.acme_id, "actor": alice_id, "actor_name": "alice", "token_id": alice_tok,
                "role": "tenant-admin", "tenant_id": f.acme_id, "action": "project_create",
                "target": format!("/v1/tenants/acme/projects/{pid}"), "outcome": "success",
                "status": 201, "request_id": r.header("x-request-id").unwrap(),
            }),
        );

        // A client-chosen request id is recorded as sent.
        let r = f
            .alice
            .raw(
                "PATCH",
                "/v1/tenants/acme/projects/web",
                Some(json!({"generation": 1, "description": "d"}).to_string().as_bytes()),
                &[("X-Request-Id", "audit-probe-1")],
            )
            .expect(200);
        assert_eq!(r.header("x-request-id"), Some("audit-probe-1"), "[{b}] echoed");
        let e = event_of(s, &trail(&f.alice, "acme"), &r, "project update");
        assert_fields(
            s,
            "project update",
            &e,
            &json!({"action": "project_update", "target": "/v1/tenants/acme/projects/web",
                    "status": 200, "outcome": "success", "request_id": "audit-probe-1"}),
        );

        // A member acts with its own role; a claim lives in the tenant's chain.
        let (mem_id, _) = me(&f.mem);
        let r =
            f.mem.post("/v1/tenants/acme/projects/web/claims", &json!({"resources": {"nodes": 1}}));
        // No tenant grant for nodes: refused by quota, after authorization.
        assert_eq!(r.status, 409, "[{b}] claim without a grant: {}", r.text);
        let e = event_of(s, &trail(&f.alice, "acme"), &r, "member claim");
        assert_fields(
            s,
            "member claim",
            &e,
            &json!({"actor": mem_id, "role": "tenant-member", "action": "claim_create",
                    "outcome": "failed", "status": 409, "tenant_id": f.acme_id}),
        );

        // A delete.
        let r = f.alice.delete("/v1/tenants/acme/projects/web").expect(204);
        let e = event_of(s, &trail(&f.alice, "acme"), &r, "project delete");
        assert_fields(
            s,
            "project delete",
            &e,
            &json!({"action": "project_delete", "status": 204, "outcome": "success"}),
        );

        // The provider's own actions go to the provider's chain.
        let (admin_id, _) = me(&s.admin());
        let r = s.admin().post("/v1/tenants", &json!({"name": "gamma"})).expect(201);
        let gid = r.body["id"].as_str().unwrap().to_string();
        let e = event_of(s, &all_events(s), &r, "tenant create");
        assert_fields(
            s,
            "tenant create",
            &e,
            &json!({"chain": "provider", "actor": admin_id, "actor_name": "admin",
                    "role": "provider-admin", "tenant_id": null, "action": "tenant_create",
                    "target": format!("/v1/tenants/{gid}"), "outcome": "success", "status": 201}),
        );
        // The provider acting inside a tenant is recorded in that tenant's chain.
        let r = s.admin().post("/v1/tenants/acme/projects", &json!({"name": "ops"})).expect(201);
        let e = event_of(s, &trail(&f.alice, "acme"), &r, "provider in tenant");
        assert_fields(
            s,
            "provider in tenant",
            &e,
            &json!({"chain": f.acme_id, "actor": admin_id, "role": "provider-admin",
                    "tenant_id": f.acme_id}),
        );

        // Chains are gapless and linked.
        for events in [trail(&f.alice, "acme"), trail(&f.bea, "beta")] {
            let mut prev = "0".repeat(64);
            for (i, e) in events.iter().enumerate() {
                assert_eq!(e["seq"], i as i64 + 1, "[{b}] seq: {e}");
                assert_eq!(e["prev_hash"], prev.as_str(), "[{b}] link: {e}");
                prev = e["hash"].as_str().unwrap().to_string();
            }
        }
        assert!(trail(&f.bea, "beta").iter().all(|e| e["chain"] == f.beta_id), "[{b}] beta chain");
    });
}

#[test]
fn refused_mutations_are_recorded_where_they_belong() {
    each_backend(|s| {
        let b = s.backend.as_str();
        let f = setup(s);
        let (vic_id, _) = me(&f.vic);
        let (alice_id, _) = me(&f.alice);
        let (bea_id, _) = me(&f.bea);

        // Denied by policy: in the tenant's chain.
        let r = f.vic.post("/v1/tenants/acme/projects", &json!({"name": "nope"}));
        assert_eq!(r.status, 403, "[{b}] viewer create: {}", r.text);
        let e = event_of(s, &trail(&f.alice, "acme"), &r, "viewer create");
        assert_fields(
            s,
            "viewer create",
            &e,
            &json!({"actor": vic_id, "actor_name": "vic", "role": "tenant-viewer",
                    "tenant_id": f.acme_id, "chain": f.acme_id, "action": "project_create",
                    "outcome": "denied", "status": 403}),
        );

        // Failed after authorization: duplicate name.
        f.alice.post("/v1/tenants/acme/projects", &json!({"name": "web"})).expect(201);
        let r = f.alice.post("/v1/tenants/acme/projects", &json!({"name": "web"}));
        assert_eq!(r.status, 409, "[{b}] duplicate: {}", r.text);
        let e = event_of(s, &trail(&f.alice, "acme"), &r, "duplicate");
        assert_fields(
            s,
            "duplicate",
            &e,
            &json!({"actor": alice_id, "role": "tenant-admin", "outcome": "failed",
                    "status": 409, "action": "project_create",
                    "target": "/v1/tenants/acme/projects"}),
        );
        // A stale generation is a failure too.
        let r = f
            .alice
            .patch("/v1/tenants/acme/projects/web", &json!({"generation": 9, "description": "x"}));
        assert_eq!(r.status, 409, "[{b}] stale: {}", r.text);
        let e = event_of(s, &trail(&f.alice, "acme"), &r, "stale");
        assert_fields(s, "stale", &e, &json!({"outcome": "failed", "status": 409}));

        // Cross-tenant: not in either tenant's chain, only the provider's.
        let r = f.bea.post("/v1/tenants/acme/projects", &json!({"name": "intrude"}));
        assert_eq!(r.status, 404, "[{b}] cross-tenant: {}", r.text);
        let rid = r.header("x-request-id").unwrap().to_string();
        assert!(by_request(&trail(&f.alice, "acme"), &rid).is_empty(), "[{b}] not in acme's chain");
        assert!(by_request(&trail(&f.bea, "beta"), &rid).is_empty(), "[{b}] not in beta's chain");
        let e = event_of(s, &all_events(s), &r, "cross-tenant");
        assert_fields(
            s,
            "cross-tenant",
            &e,
            &json!({"chain": "provider", "actor": bea_id, "actor_name": "bea",
                    "tenant_id": null, "outcome": "denied", "status": 404,
                    "action": "project_create"}),
        );
        // An acme project seen by id from beta's path is not found either.
        let r = f.bea.delete("/v1/tenants/beta/projects/web");
        assert_eq!(r.status, 404, "[{b}] foreign project by name: {}", r.text);

        // Anonymous: the provider's chain, actor "anonymous".
        let r = s.anonymous().post("/v1/tenants/acme/projects", &json!({"name": "anon"}));
        assert_eq!(r.status, 401, "[{b}] anonymous: {}", r.text);
        let e = event_of(s, &all_events(s), &r, "anonymous");
        assert_fields(
            s,
            "anonymous",
            &e,
            &json!({"chain": "provider", "actor": "anonymous", "actor_name": "",
                    "token_id": null, "role": null, "tenant_id": null,
                    "outcome": "denied", "status": 401, "action": "project_create"}),
        );
        let r = s.client("nc_bogus").delete("/v1/tenants/acme");
        assert_eq!(r.status, 401, "[{b}] unknown token: {}", r.text);
        let e = event_of(s, &all_events(s), &r, "unknown token");
        assert_fields(
            s,
            "unknown token",
            &e,
            &json!({"actor": "anonymous", "action": "tenant_delete"}),
        );

        // Refused before dispatch (bad Content-Type): the provider's chain,
        // attributed to the caller.
        let r = f.alice.raw(
            "POST",
            "/v1/tenants/acme/projects",
            Some(b"name=x"),
            &[("Content-Type", "text/plain")],
        );
        assert_eq!(r.status, 400, "[{b}] bad content type: {}", r.text);
        let e = event_of(s, &all_events(s), &r, "bad content type");
        assert_fields(
            s,
            "bad content type",
            &e,
            &json!({"chain": "provider", "actor": alice_id, "outcome": "denied", "status": 400}),
        );
        assert!(by_request(&trail(&f.alice, "acme"), r.header("x-request-id").unwrap()).is_empty());
    });
}

#[test]
fn reads_are_not_recorded() {
    each_backend(|s| {
        let b = s.backend.as_str();
        let f = setup(s);
        f.alice.post("/v1/tenants/acme/projects", &json!({"name": "web"})).expect(201);
        let count = || {
            s.store.read(|r| r.query("SELECT COUNT(*) FROM audit_events", &[])).expect("count")[0]
                .i64(0)
                .unwrap()
        };
        let before = count();
        for p in [
            "/v1/me",
            "/v1/tokens",
            "/v1/tenants",
            "/v1/tenants/acme",
            "/v1/tenants/acme/projects",
            "/v1/tenants/acme/projects/web",
            "/v1/tenants/acme/users",
            "/v1/tenants/acme/memberships",
            "/v1/tenants/acme/quotas",
            "/v1/tenants/acme/audit",
            "/v1/tenants/acme/projects/web/claims",
        ] {
            f.alice.get(p).expect(200);
        }
        f.vic.get("/v1/tenants/acme/audit").expect(200);
        f.bea.get("/v1/tenants/acme").expect(404);
        f.mem.get("/v1/tenants/acme/audit").expect(403);
        s.anonymous().get("/v1/tenants").expect(401);
        s.admin().get("/v1/audit").expect(200);
        assert_eq!(
            count(),
            before,
            "[{b}] reads (allowed, hidden, denied, anonymous) add no event"
        );
    });
}

#[test]
fn trails_export_page_and_are_access_controlled() {
    each_backend(|s| {
        let b = s.backend.as_str();
        let f = setup(s);
        for i in 0..5 {
            f.alice
                .post("/v1/tenants/acme/projects", &json!({"name": format!("p{i}")}))
                .expect(201);
        }
        let full = trail(&f.alice, "acme");
        assert!(full.len() >= 9, "[{b}] setup and creates recorded: {}", full.len());

        // JSON lines: one parseable event per line, the same events.
        let r = f.alice.get("/v1/tenants/acme/audit?format=jsonl&limit=1000");
        assert_eq!(r.status, 200, "[{b}] jsonl: {}", r.text);
        assert_eq!(r.header("content-type"), Some("application/x-ndjson"), "[{b}] content type");
        assert!(r.text.ends_with('\n'), "[{b}] newline-terminated");
        let lines: Vec<Value> = r
            .text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("[{b}] line {l:?}: {e}")))
            .collect();
        assert_eq!(lines, full, "[{b}] jsonl carries the same events");
        let r = f.alice.get("/v1/tenants/acme/audit?format=json");
        assert_eq!(items(&r), full, "[{b}] format=json is the default shape");
        let r = s.admin().get("/v1/audit?format=jsonl&limit=1000");
        assert_eq!(r.header("content-type"), Some("application/x-ndjson"), "[{b}] provider jsonl");
        assert_eq!(r.text.lines().count(), all_events(s).len(), "[{b}] provider jsonl lines");

        // Paging by after_seq and limit reassembles the trail.
        let mut paged = vec![];
        let mut after = 0;
        loop {
            let r = f.alice.get(&format!("/v1/tenants/acme/audit?after_seq={after}&limit=2"));
            let page = items(&r);
            assert!(page.len() <= 2, "[{b}] limit respected");
            let Some(last) = page.last() else { break };
            after = last["seq"].as_i64().unwrap();
            paged.extend(page);
        }
        assert_eq!(paged, full, "[{b}] pages reassemble the trail");
        let r = f.alice.get("/v1/tenants/acme/audit?after_seq=3&limit=1");
        assert_eq!(items(&r).len(), 1, "[{b}] one");
        assert_eq!(items(&r)[0]["seq"], 4, "[{b}] after_seq=3 starts at 4");
        let r = f.alice.get(&format!("/v1/tenants/acme/audit?after_seq={}", full.len()));
        assert!(items(&r).is_empty(), "[{b}] nothing after the end");

        // The provider's cursor pages through every chain.
        let everything = all_events(s);
        let mut paged = vec![];
        let mut cursor: Option<String> = None;
        loop {
            let p = match &cursor {
                None => "/v1/audit?limit=3".to_string(),
                Some(c) => format!("/v1/audit?limit=3&after={c}"),
            };
            let page = items(&s.admin().get(&p).expect(200));
            let Some(last) = page.last() else { break };
            cursor = Some(last["id"].as_str().unwrap().to_string());
            paged.extend(page);
        }
        assert_eq!(paged, everything, "[{b}] provider pages reassemble everything");

        // Who may read.
        f.vic.get("/v1/tenants/acme/audit").expect(200);
        let r = f.mem.get("/v1/tenants/acme/audit");
        assert_eq!(r.status, 403, "[{b}] member: {}", r.text);
        assert_eq!(r.error().0, "forbidden", "[{b}]");
        let r = f.mem.get("/v1/tenants/acme/audit?format=jsonl");
        assert_eq!(r.status, 403, "[{b}] member export: {}", r.text);
        let r = f.bea.get("/v1/tenants/acme/audit");
        assert_eq!(r.status, 404, "[{b}] other tenant: {}", r.text);
        for c in [&f.alice, &f.vic, &f.mem, &f.bea] {
            let r = c.get("/v1/audit");
            assert_eq!(
                r.status, 403,
                "[{b}] tenant users cannot read the provider trail: {}",
                r.text
            );
        }
        s.admin().get("/v1/tenants/acme/audit").expect(200);
    });
}

#[test]
fn chains_verify_and_tampering_is_detected() {
    each_backend(|s| {
        let b = s.backend.as_str();
        let f = setup(s);
        f.alice.post("/v1/tenants/acme/projects", &json!({"name": "web"})).expect(201);
        f.vic.post("/v1/tenants/acme/projects", &json!({"name": "x"})).expect(403);
        f.bea.post("/v1/tenants/acme/projects", &json!({"name": "x"})).expect(404);
        s.anonymous().post("/v1/tenants", &json!({"name": "x"})).expect(401);
        f.alice.post("/v1/tenants/acme/projects", &json!({"name": "web"})).expect(409);

        let v = s.store.read(neocloud_store::audit::verify).expect("verify");
        assert!(v.problems.is_empty(), "[{b}] intact chains: {:?}", v.problems);
        assert!(v.chains >= 3, "[{b}] provider, acme, beta: {}", v.chains);
        assert_eq!(v.events, all_events(s).len(), "[{b}] every event verified");

        // Append-only: an UPDATE is refused while the triggers stand.
        let upd = format!(
            "UPDATE audit_events SET outcome = 'success' WHERE chain = '{}' AND seq = 1",
            f.acme_id
        );
        let res = s.store.write(|w| w.execute_batch(&upd).map_err(Into::into));
        assert!(res.is_err(), "[{b}] audit_events must refuse UPDATE");
        let del = format!("DELETE FROM audit_events WHERE chain = '{}'", f.acme_id);
        let res = s.store.write(|w| w.execute_batch(&del).map_err(Into::into));
        assert!(res.is_err(), "[{b}] audit_events must refuse DELETE");
        let v = s.store.read(neocloud_store::audit::verify).expect("verify");
        assert!(v.problems.is_empty(), "[{b}] refused tampering left no trace: {:?}", v.problems);

        // Around the triggers, an edit is detected.
        let drop = match s.store.kind() {
            BackendKind::Sqlite => {
                "DROP TRIGGER audit_events_no_update; DROP TRIGGER audit_events_no_delete;"
            }
            BackendKind::Postgres => "DROP TRIGGER audit_events_append_only ON audit_events;",
        };
        s.store.write(|w| w.execute_batch(drop).map_err(Into::into)).expect("drop triggers");
        let denied = trail(&f.alice, "acme")
            .into_iter()
            .find(|e| e["outcome"] == "denied")
            .expect("the viewer's denied event");
        let edit = format!(
            "UPDATE audit_events SET outcome = 'success' WHERE chain = '{}' AND seq = {}",
            f.acme_id, denied["seq"]
        );
        s.store.write(|w| w.execute_batch(&edit).map_err(Into::into)).expect("edit");
        let v = s.store.read(neocloud_store::audit::verify).expect("verify");
        assert!(
            v.problems.iter().any(|p| p.contains(&f.acme_id) && p.contains("edited")),
            "[{b}] the edit is reported: {:?}",
            v.problems
        );
        // A deleted event in another chain is reported too.
        let del = format!("DELETE FROM audit_events WHERE chain = '{}' AND seq = 1", f.beta_id);
        s.store.write(|w| w.execute_batch(&del).map_err(Into::into)).expect("delete");
        let v = s.store.read(neocloud_store::audit::verify).expect("verify");
        assert!(
            v.problems.iter().any(|p| p.contains(&f.beta_id)),
            "[{b}] the deletion is reported: {:?}",
            v.problems
        );
    });
}
