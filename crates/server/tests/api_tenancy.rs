//! Tenancy through the API: tenants, projects, users, memberships, tokens,
//! visibility of project-scoped members, deletion rules, and the quota
//! hierarchy (provider -> tenant -> project) with its claims.

mod common;
use common::*;
use serde_json::{json, Value};

fn names(c: &Client, path: &str) -> Vec<String> {
    let r = c.get(path);
    assert_eq!(r.status, 200, "GET {path}: {}", r.text);
    r.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| i["name"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[track_caller]
fn expect_error(
    s: &TestServer,
    what: &str,
    r: &Resp,
    status: u16,
    code: &str,
    field: Option<&str>,
) {
    let b = s.backend.as_str();
    assert_eq!(r.status, status, "[{b}] {what}: {}", r.text);
    assert_eq!(r.error().0, code, "[{b}] {what}: code");
    assert_eq!(r.error().1.as_deref(), field, "[{b}] {what}: field");
}

#[test]
fn tenant_lifecycle() {
    each_backend(|s| {
        let b = s.backend.as_str();
        let a = s.admin();
        let t = a
            .post(
                "/v1/tenants",
                &json!({"name": "acme", "display_name": "ACME Corp", "description": "rockets"}),
            )
            .expect(201);
        assert_eq!(t.body["name"], "acme", "[{b}]");
        assert_eq!(t.body["display_name"], "ACME Corp", "[{b}]");
        assert_eq!(t.body["description"], "rockets", "[{b}]");
        assert_eq!(t.body["generation"], 1, "[{b}]");
        assert_eq!(t.body["suspended"], false, "[{b}]");
        let id = t.body["id"].as_str().unwrap().to_string();
        assert_eq!(a.get("/v1/tenants/acme").expect(200).body, t.body, "[{b}] by name");
        assert_eq!(a.get(&format!("/v1/tenants/{id}")).expect(200).body, t.body, "[{b}] by id");
        let t2 = a.post("/v1/tenants", &json!({"name": "beta"})).expect(201);
        assert_eq!(t2.body["display_name"], "beta", "[{b}] display name defaults to the name");
        assert_eq!(names(&a, "/v1/tenants"), ["acme", "beta"], "[{b}] list");
        let dup = a.post("/v1/tenants", &json!({"name": "acme"}));
        expect_error(s, "duplicate tenant", &dup, 409, "already_exists", Some("name"));
        let r = a
            .patch("/v1/tenants/acme", &json!({"generation": 1, "description": "more rockets"}))
            .expect(200);
        assert_eq!(r.body["description"], "more rockets", "[{b}]");
        assert_eq!(r.body["display_name"], "ACME Corp", "[{b}] untouched fields stay");

        // Tenant admins see their tenant only and cannot manage tenants.
        let alice = s.client(&s.user_with_role("acme", "alice", "tenant-admin", None));
        assert_eq!(names(&alice, "/v1/tenants"), ["acme"], "[{b}] alice's tenants");
        alice.get("/v1/tenants/acme").expect(200);
        expect_error(s, "other tenant", &alice.get("/v1/tenants/beta"), 404, "not_found", None);
        let r = alice.post("/v1/tenants", &json!({"name": "mine"}));
        expect_error(s, "tenant admin creates tenant", &r, 403, "forbidden", None);
        let r = alice.patch("/v1/tenants/acme", &json!({"generation": 2, "display_name": "x"}));
        expect_error(s, "tenant admin updates tenant", &r, 403, "forbidden", None);
        let r = alice.delete("/v1/tenants/acme");
        expect_error(s, "tenant admin deletes tenant", &r, 403, "forbidden", None);

        // A tenant with a project or a user cannot be deleted.
        a.post("/v1/tenants/beta/projects", &json!({"name": "p"})).expect(201);
        let r = a.delete("/v1/tenants/beta");
        expect_error(s, "tenant with a project", &r, 409, "conflict", None);
        a.delete("/v1/tenants/beta/projects/p").expect(204);
        a.post("/v1/tenants/beta/users", &json!({"name": "u", "role": "tenant-viewer"}))
            .expect(201);
        let r = a.delete("/v1/tenants/beta");
        expect_error(s, "tenant with a user", &r, 409, "conflict", None);
        assert_eq!(names(&a, "/v1/tenants"), ["acme", "beta"], "[{b}] still there");
        a.delete("/v1/tenants/beta/users/u").expect(204);
        a.delete("/v1/tenants/beta").expect(204);
        expect_error(s, "deleted tenant", &a.get("/v1/tenants/beta"), 404, "not_found", None);
        let r = a.get("/v1/tenants/beta/quotas");
        expect_error(s, "deleted tenant's quota", &r, 404, "not_found", None);
        assert_eq!(names(&a, "/v1/tenants"), ["acme"], "[{b}] list after delete");
        // The name is free again, for a new tenant with a new id.
        let again = a.post("/v1/tenants", &json!({"name": "beta"})).expect(201);
        assert_ne!(again.body["id"], t2.body["id"], "[{b}] ids are never reused");
        assert!(names(&a, "/v1/tenants/beta/projects").is_empty(), "[{b}] nothing inherited");
    });
}

#[test]
fn projects_users_memberships_and_tokens() {
    each_backend(|s| {
        let b = s.backend.as_str();
        let a = s.admin();
        a.post("/v1/tenants", &json!({"name": "acme"})).expect(201);
        a.post("/v1/tenants", &json!({"name": "beta"})).expect(201);
        a.post("/v1/tenants/beta/projects", &json!({"name": "far"})).expect(201);
        a.post("/v1/tenants/beta/users", &json!({"name": "stranger"})).expect(201);
        let alice = s.client(&s.user_with_role("acme", "alice", "tenant-admin", None));

        // Projects.
        let web = alice
            .post("/v1/tenants/acme/projects", &json!({"name": "web", "description": "front"}))
            .expect(201);
        assert_eq!(web.body["description"], "front", "[{b}]");
        alice.post("/v1/tenants/acme/projects", &json!({"name": "db"})).expect(201);
        assert_eq!(names(&alice, "/v1/tenants/acme/projects"), ["db", "web"], "[{b}]");
        let id = web.body["id"].as_str().unwrap();
        assert_eq!(
            alice.get(&format!("/v1/tenants/acme/projects/{id}")).expect(200).body,
            web.body,
            "[{b}] project by id"
        );
        let r = alice.post("/v1/tenants/acme/projects", &json!({"name": "web"}));
        expect_error(s, "duplicate project", &r, 409, "already_exists", Some("name"));
        // The same name in another tenant is another project.
        a.post("/v1/tenants/beta/projects", &json!({"name": "web"})).expect(201);

        // Users.
        let u = alice
            .post(
                "/v1/tenants/acme/users",
                &json!({"name": "tina", "display_name": "Tina T", "email": "tina@example.com"}),
            )
            .expect(201);
        assert_eq!(u.body["email"], "tina@example.com", "[{b}]");
        assert_eq!(u.body["tenant_id"], web.body["tenant_id"], "[{b}] tenant user");
        alice.post("/v1/tenants/acme/users", &json!({"name": "pat"})).expect(201);
        let r = alice.post("/v1/tenants/acme/users", &json!({"name": "tina"}));
        expect_error(s, "duplicate user", &r, 409, "already_exists", Some("name"));
        let r =
            alice.post("/v1/tenants/acme/users", &json!({"name": "x", "role": "provider-admin"}));
        expect_error(s, "tenant user with provider role", &r, 422, "invalid_value", Some("role"));
        assert_eq!(names(&alice, "/v1/tenants/acme/users"), ["alice", "pat", "tina"], "[{b}]");
        expect_error(
            s,
            "other tenant's user",
            &alice.get("/v1/tenants/acme/users/stranger"),
            404,
            "not_found",
            None,
        );

        // Memberships: tenant-wide and project-scoped.
        let mt = alice
            .post("/v1/tenants/acme/memberships", &json!({"user": "tina", "role": "tenant-member"}))
            .expect(201);
        assert!(mt.body["project_id"].is_null(), "[{b}] tenant-wide");
        let mp = alice
            .post(
                "/v1/tenants/acme/memberships",
                &json!({"user": "pat", "role": "tenant-member", "project": "web"}),
            )
            .expect(201);
        assert_eq!(mp.body["project_id"], web.body["id"], "[{b}] project-scoped");
        let r = alice.post(
            "/v1/tenants/acme/memberships",
            &json!({"user": "tina", "role": "tenant-viewer"}),
        );
        expect_error(s, "duplicate membership", &r, 409, "already_exists", Some("user"));
        let r = alice.post(
            "/v1/tenants/acme/memberships",
            &json!({"user": "stranger", "role": "tenant-viewer"}),
        );
        expect_error(s, "foreign user", &r, 422, "invalid_value", Some("user"));
        let r = alice.post(
            "/v1/tenants/acme/memberships",
            &json!({"user": "tina", "role": "tenant-viewer", "project": "far"}),
        );
        expect_error(s, "foreign project", &r, 422, "invalid_value", Some("project"));
        let r = alice.post(
            "/v1/tenants/acme/memberships",
            &json!({"user": "tina", "role": "provider-admin"}),
        );
        expect_error(s, "provider role in a tenant", &r, 422, "invalid_value", Some("role"));
        let ms = alice.get("/v1/tenants/acme/memberships").expect(200);
        assert_eq!(ms.body["items"].as_array().unwrap().len(), 3, "[{b}] alice, tina, pat");

        // Tenant tokens.
        let tok = alice
            .post("/v1/tenants/acme/tokens", &json!({"name": "pat-cli", "user": "pat"}))
            .expect(201);
        let pat = s.client(tok.body["secret"].as_str().unwrap());
        let tok = alice
            .post("/v1/tenants/acme/tokens", &json!({"name": "tina-cli", "user": "tina"}))
            .expect(201);
        let tina = s.client(tok.body["secret"].as_str().unwrap());
        let r = alice.post("/v1/tenants/acme/tokens", &json!({"name": "x", "user": "stranger"}));
        expect_error(s, "token for a foreign user", &r, 422, "invalid_value", Some("user"));
        let r = a.post("/v1/tenants/acme/tokens", &json!({"name": "x"}));
        expect_error(s, "provider token in a tenant", &r, 422, "invalid_value", Some("user"));
        let toks = alice.get("/v1/tenants/acme/tokens").expect(200);
        assert_eq!(toks.body["items"].as_array().unwrap().len(), 3, "[{b}] alice, pat, tina");

        // A project-scoped member sees its project only.
        assert_eq!(names(&pat, "/v1/tenants"), ["acme"], "[{b}] pat's tenants");
        assert_eq!(names(&pat, "/v1/tenants/acme/projects"), ["web"], "[{b}] pat's projects");
        pat.get("/v1/tenants/acme").expect(200);
        pat.get("/v1/tenants/acme/projects/web").expect(200);
        pat.get("/v1/tenants/acme/projects/web/quotas").expect(200);
        pat.get("/v1/tenants/acme/projects/web/claims").expect(200);
        for (m, p) in [
            ("GET", "/v1/tenants/acme/projects/db"),
            ("GET", "/v1/tenants/acme/projects/db/claims"),
            ("GET", "/v1/tenants/acme/projects/db/quotas"),
            ("DELETE", "/v1/tenants/acme/projects/db"),
            ("GET", "/v1/tenants/beta/projects/web"),
        ] {
            let r = pat.raw(m, p, None, &[]);
            expect_error(s, &format!("pat {m} {p}"), &r, 404, "not_found", None);
        }
        let db_id = alice.get("/v1/tenants/acme/projects/db").expect(200).body["id"].clone();
        let r = pat.get(&format!("/v1/tenants/acme/projects/{}", db_id.as_str().unwrap()));
        expect_error(s, "sibling by id", &r, 404, "not_found", None);
        for p in
            ["/v1/tenants/acme/users", "/v1/tenants/acme/memberships", "/v1/tenants/acme/quotas"]
        {
            let r = pat.get(p);
            expect_error(s, &format!("pat GET {p}"), &r, 403, "forbidden", None);
        }
        let r = pat.post("/v1/tenants/acme/projects", &json!({"name": "mine"}));
        expect_error(s, "pat creates a project", &r, 403, "forbidden", None);
        // A tenant-wide member sees every project but changes none.
        assert_eq!(names(&tina, "/v1/tenants/acme/projects"), ["db", "web"], "[{b}]");
        let r = tina.patch("/v1/tenants/acme/projects/db", &json!({"generation": 1}));
        expect_error(s, "member updates a project", &r, 403, "forbidden", None);
        assert_eq!(names(&tina, "/v1/tenants"), ["acme"], "[{b}] tina's tenants");

        // Changing and withdrawing grants takes effect at once.
        let mid = mp.body["id"].as_str().unwrap();
        let r = alice
            .patch(
                &format!("/v1/tenants/acme/memberships/{mid}"),
                &json!({"generation": 1, "role": "tenant-viewer"}),
            )
            .expect(200);
        assert_eq!(r.body["role"], "tenant-viewer", "[{b}]");
        assert_eq!(r.body["project_id"], web.body["id"], "[{b}] still project-scoped");
        let me = pat.get("/v1/me").expect(200);
        assert_eq!(me.body["grants"][0]["role"], "tenant-viewer", "[{b}] pat's grant");
        alice.delete(&format!("/v1/tenants/acme/memberships/{mid}")).expect(204);
        expect_error(s, "pat without grants", &pat.get("/v1/tenants/acme"), 404, "not_found", None);
        // Without any grant there is nothing to list (policy: Deny).
        let r = pat.get("/v1/tenants");
        expect_error(s, "pat lists tenants without grants", &r, 403, "forbidden", None);
        pat.get("/v1/me").expect(200);

        // Deleting a user removes its memberships and tokens.
        alice.delete("/v1/tenants/acme/users/tina").expect(204);
        expect_error(
            s,
            "deleted user",
            &alice.get("/v1/tenants/acme/users/tina"),
            404,
            "not_found",
            None,
        );
        let ms = alice.get("/v1/tenants/acme/memberships").expect(200);
        assert_eq!(ms.body["items"].as_array().unwrap().len(), 1, "[{b}] alice's only");
        let toks = alice.get("/v1/tenants/acme/tokens").expect(200);
        assert_eq!(toks.body["items"].as_array().unwrap().len(), 2, "[{b}] alice's and pat's");
        expect_error(s, "deleted user's token", &tina.get("/v1/me"), 401, "unauthenticated", None);
        // Deleting a project removes the grants on it.
        alice
            .post(
                "/v1/tenants/acme/memberships",
                &json!({"user": "pat", "role": "tenant-admin", "project": "db"}),
            )
            .expect(201);
        assert_eq!(names(&pat, "/v1/tenants/acme/projects"), ["db"], "[{b}]");
        alice.delete("/v1/tenants/acme/projects/db").expect(204);
        let r = pat.get("/v1/tenants");
        expect_error(s, "the grant went with the project", &r, 403, "forbidden", None);
        assert_eq!(
            alice.get("/v1/tenants/acme/memberships").expect(200).body["items"]
                .as_array()
                .unwrap()
                .len(),
            1,
            "[{b}] the project's membership is gone"
        );
    });
}

#[test]
fn provider_users() {
    each_backend(|s| {
        let b = s.backend.as_str();
        let a = s.admin();
        let u = a.post("/v1/users", &json!({"name": "ops", "role": "provider-viewer"})).expect(201);
        assert!(u.body["tenant_id"].is_null(), "[{b}] a provider user");
        let r = a.post("/v1/users", &json!({"name": "norole"}));
        expect_error(s, "provider user without role", &r, 422, "invalid_value", Some("role"));
        let r = a.post("/v1/users", &json!({"name": "tenanty", "role": "tenant-admin"}));
        expect_error(s, "provider user with tenant role", &r, 422, "invalid_value", Some("role"));
        let r = a.post("/v1/users", &json!({"name": "ops", "role": "provider-admin"}));
        expect_error(s, "duplicate provider user", &r, 409, "already_exists", Some("name"));
        assert_eq!(names(&a, "/v1/users"), ["admin", "ops"], "[{b}]");
        // Provider and tenant user names are separate namespaces.
        a.post("/v1/tenants", &json!({"name": "acme"})).expect(201);
        a.post("/v1/tenants/acme/users", &json!({"name": "ops"})).expect(201);
        assert_eq!(names(&a, "/v1/users"), ["admin", "ops"], "[{b}] tenant users are not listed");
        let alice = s.client(&s.user_with_role("acme", "alice", "tenant-admin", None));
        let r = alice.get("/v1/users");
        expect_error(s, "tenant admin lists provider users", &r, 403, "forbidden", None);
        // The last provider admin cannot be deleted; others can.
        let r = a.delete("/v1/users/admin");
        expect_error(s, "last provider admin", &r, 409, "conflict", None);
        a.get("/v1/me").expect(200);
        a.delete("/v1/users/ops").expect(204);
        assert_eq!(names(&a, "/v1/users"), ["admin"], "[{b}]");
        assert_eq!(
            names(&a, "/v1/tenants/acme/users"),
            ["alice", "ops"],
            "[{b}] tenant's ops stays"
        );
    });
}

/// The quota view of one level.
fn quota(c: &Client, path: &str) -> Value {
    let r = c.get(path);
    assert_eq!(r.status, 200, "GET {path}: {}", r.text);
    r.body
}

fn set_limits(s: &TestServer, path: &str, limits: Value) -> Resp {
    let a = s.admin();
    let g = quota(&a, path)["generation"].as_i64().unwrap();
    a.put(path, &json!({"generation": g, "limits": limits}))
}

/// (reserved, committed) of `res` at the project, tenant and provider levels.
fn usage(s: &TestServer, project: &str, res: &str) -> [(i64, i64); 3] {
    let a = s.admin();
    let at = |p: &str| {
        let q = quota(&a, p);
        let e = &q["resources"][res];
        (e["reserved"].as_i64().unwrap_or(0), e["committed"].as_i64().unwrap_or(0))
    };
    [
        at(&format!("/v1/tenants/acme/projects/{project}/quotas")),
        at("/v1/tenants/acme/quotas"),
        at("/v1/quotas"),
    ]
}

#[test]
fn quota_hierarchy_and_claims() {
    each_backend(|s| {
        let b = s.backend.as_str();
        let a = s.admin();
        a.post("/v1/tenants", &json!({"name": "acme"})).expect(201);
        let alice = s.client(&s.user_with_role("acme", "alice", "tenant-admin", None));
        let mem = s.client(&s.user_with_role("acme", "mem", "tenant-member", None));
        let vic = s.client(&s.user_with_role("acme", "vic", "tenant-viewer", None));
        alice.post("/v1/tenants/acme/projects", &json!({"name": "web"})).expect(201);
        alice.post("/v1/tenants/acme/projects", &json!({"name": "db"})).expect(201);
        let claims = |p: &str| format!("/v1/tenants/acme/projects/{p}/claims");

        // Nothing granted: a tenant may use nothing.
        let r = mem.post(&claims("web"), &json!({"resources": {"nodes": 1}}));
        expect_error(s, "no grant", &r, 409, "quota_exceeded", None);
        assert!(
            r.body["error"]["message"].as_str().unwrap().contains("tenant"),
            "[{b}] {}",
            r.text
        );

        // Limits, top down.
        let r = set_limits(s, "/v1/quotas", json!({"nodes": 10})).expect(200);
        assert_eq!(r.body["resources"]["nodes"]["limit"], 10, "[{b}] provider limit");
        let r = set_limits(s, "/v1/tenants/acme/quotas", json!({"nodes": 6})).expect(200);
        assert_eq!(r.body["scope"], "tenant", "[{b}]");
        let r = set_limits(s, "/v1/tenants/acme/quotas", json!({"nodes": null}));
        expect_error(s, "tenant limit null", &r, 422, "invalid_value", Some("limits.nodes"));
        let r = set_limits(s, "/v1/tenants/acme/projects/web/quotas", json!({"nodes": 7}));
        expect_error(s, "project over tenant", &r, 422, "invalid_value", Some("limits.nodes"));
        set_limits(s, "/v1/tenants/acme/projects/web/quotas", json!({"nodes": 4})).expect(200);
        // Tenant admins set project limits but not their tenant's.
        let g = quota(&alice, "/v1/tenants/acme/quotas")["generation"].clone();
        let r =
            alice.put("/v1/tenants/acme/quotas", &json!({"generation": g, "limits": {"nodes": 9}}));
        expect_error(s, "tenant admin raises its own limit", &r, 403, "forbidden", None);
        let g = quota(&alice, "/v1/tenants/acme/projects/db/quotas")["generation"].clone();
        alice
            .put(
                "/v1/tenants/acme/projects/db/quotas",
                &json!({"generation": g, "limits": {"nodes": 6}}),
            )
            .expect(200);
        let r = vic.post(&claims("web"), &json!({"resources": {"nodes": 1}}));
        expect_error(s, "viewer claims", &r, 403, "forbidden", None);

        // Reserve: every level moves together.
        let c1 = mem
            .post(&claims("web"), &json!({"resources": {"nodes": 3}, "description": "train"}))
            .expect(201);
        assert_eq!(c1.body["state"], "reserved", "[{b}]");
        assert_eq!(usage(s, "web", "nodes"), [(3, 0), (3, 0), (3, 0)], "[{b}] reserved");
        // Over the project limit: refused, nothing reserved anywhere.
        let r = mem.post(&claims("web"), &json!({"resources": {"nodes": 2}}));
        expect_error(s, "over project limit", &r, 409, "quota_exceeded", None);
        assert!(
            r.body["error"]["message"].as_str().unwrap().contains("project"),
            "[{b}] {}",
            r.text
        );
        assert_eq!(usage(s, "web", "nodes"), [(3, 0), (3, 0), (3, 0)], "[{b}] unchanged");
        assert_eq!(quota(&a, &claims("web"))["items"].as_array().unwrap().len(), 1, "[{b}]");
        // Several resources: all or nothing.
        let r = mem.post(&claims("web"), &json!({"resources": {"nodes": 1, "gpu:h100": 1}}));
        expect_error(s, "one resource ungranted", &r, 409, "quota_exceeded", None);
        assert_eq!(usage(s, "web", "nodes"), [(3, 0), (3, 0), (3, 0)], "[{b}] nodes not reserved");
        assert_eq!(
            usage(s, "web", "gpu:h100"),
            [(0, 0), (0, 0), (0, 0)],
            "[{b}] gpus not reserved"
        );
        // Another project draws on the same tenant limit.
        let c2 = mem.post(&claims("db"), &json!({"resources": {"nodes": 2}})).expect(201);
        assert_eq!(usage(s, "db", "nodes"), [(2, 0), (5, 0), (5, 0)], "[{b}] db + tenant");
        let r = mem.post(&claims("db"), &json!({"resources": {"nodes": 2}}));
        expect_error(s, "over tenant limit", &r, 409, "quota_exceeded", None);
        assert!(
            r.body["error"]["message"].as_str().unwrap().contains("tenant"),
            "[{b}] {}",
            r.text
        );
        assert_eq!(usage(s, "db", "nodes"), [(2, 0), (5, 0), (5, 0)], "[{b}] unchanged");

        // Commit, twice: moves once.
        let c1_path = format!("{}/{}", claims("web"), c1.body["id"].as_str().unwrap());
        let r = mem.post_empty(&format!("{c1_path}/commit")).expect(200);
        assert_eq!(r.body["state"], "committed", "[{b}]");
        assert_eq!(usage(s, "web", "nodes"), [(0, 3), (2, 3), (2, 3)], "[{b}] committed");
        mem.post_empty(&format!("{c1_path}/commit")).expect(200);
        assert_eq!(usage(s, "web", "nodes"), [(0, 3), (2, 3), (2, 3)], "[{b}] committed once");
        assert_eq!(mem.get(&c1_path).expect(200).body["state"], "committed", "[{b}]");
        let r = mem.get(&format!("{}?state=committed", claims("web"))).expect(200);
        assert_eq!(r.body["items"].as_array().unwrap().len(), 1, "[{b}] state filter");

        // The provider limit binds too.
        set_limits(s, "/v1/quotas", json!({"nodes": 5})).expect(200);
        let r = mem.post(&claims("db"), &json!({"resources": {"nodes": 1}}));
        expect_error(s, "over provider limit", &r, 409, "quota_exceeded", None);
        assert!(
            r.body["error"]["message"].as_str().unwrap().contains("provider"),
            "[{b}] {}",
            r.text
        );
        assert_eq!(usage(s, "db", "nodes"), [(2, 0), (2, 3), (2, 3)], "[{b}] unchanged");

        // A project holding claims cannot be deleted; released, it can.
        let r = alice.delete("/v1/tenants/acme/projects/web");
        expect_error(s, "project with a claim", &r, 409, "conflict", None);
        alice.get("/v1/tenants/acme/projects/web").expect(200);
        let r = mem.delete(&c1_path).expect(200);
        assert_eq!(r.body["state"], "released", "[{b}]");
        assert_eq!(usage(s, "web", "nodes"), [(0, 0), (2, 0), (2, 0)], "[{b}] released");
        mem.delete(&c1_path).expect(200);
        assert_eq!(usage(s, "web", "nodes"), [(0, 0), (2, 0), (2, 0)], "[{b}] released once");
        let r = mem.post_empty(&format!("{c1_path}/commit"));
        expect_error(s, "commit a released claim", &r, 409, "conflict", None);
        alice.delete("/v1/tenants/acme/projects/web").expect(204);
        expect_error(
            s,
            "deleted project",
            &alice.get("/v1/tenants/acme/projects/web"),
            404,
            "not_found",
            None,
        );
        // The reserved claim in db releases from reserved.
        let c2_path = format!("{}/{}", claims("db"), c2.body["id"].as_str().unwrap());
        mem.delete(&c2_path).expect(200);
        assert_eq!(usage(s, "db", "nodes"), [(0, 0), (0, 0), (0, 0)], "[{b}] all released");
        // A claim is only reachable through its own project.
        let r = mem.get(&format!("{}/{}", claims("db"), c1.body["id"].as_str().unwrap()));
        expect_error(s, "claim via another project", &r, 404, "not_found", None);
    });
}
