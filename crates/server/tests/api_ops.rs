//! Operations: health, readiness, metrics, the OpenAPI document, the
//! bootstrap token, and per-principal rate limits.

mod common;
use common::*;
use neocloud_store::testing::TestBackend;
use serde_json::{json, Value};
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

#[test]
fn health_readiness_metrics_and_openapi() {
    each_backend(|s| {
        let b = s.backend.as_str();
        let anon = s.anonymous();
        let r = anon.get("/healthz");
        assert_eq!(r.status, 200, "[{b}] healthz: {}", r.text);
        assert_eq!(r.body["status"], "ok", "[{b}] healthz body");
        let r = anon.get("/readyz");
        assert_eq!(r.status, 200, "[{b}] readyz: {}", r.text);
        assert_eq!(r.body["status"], "ready", "[{b}] readyz body");

        let a = s.admin();
        a.get("/v1/me").expect(200);
        a.get("/v1/me").expect(200);
        a.get("/v1/tenants/nobody").expect(404);
        a.post("/v1/tenants", &json!({"name": "acme"})).expect(201);
        a.post("/v1/tenants", &json!({"name": "acme"})).expect(409);
        let r = anon.get("/metrics");
        assert_eq!(r.status, 200, "[{b}] metrics");
        assert!(
            r.header("content-type").is_some_and(|c| c.starts_with("text/plain")),
            "[{b}] metrics content type {:?}",
            r.header("content-type")
        );
        let m = r.text;
        for line in [
            r#"neocloud_http_requests_total{op="me_get",status="200"} 2"#,
            r#"neocloud_http_requests_total{op="tenant_get",status="404"} 1"#,
            r#"neocloud_http_requests_total{op="tenant_create",status="201"} 1"#,
            r#"neocloud_http_requests_total{op="tenant_create",status="409"} 1"#,
            r#"neocloud_http_request_duration_seconds_count{op="me_get"} 2"#,
            r#"neocloud_audit_events_total{outcome="success"} 1"#,
            r#"neocloud_audit_events_total{outcome="failed"} 1"#,
            "# TYPE neocloud_http_requests_total counter",
            "# TYPE neocloud_http_request_duration_seconds histogram",
        ] {
            assert!(m.lines().any(|l| l == line), "[{b}] metrics lack {line:?}:\n{m}");
        }
        // Every sample line is `name{labels} number`.
        for l in m.lines().filter(|l| !l.starts_with('#') && !l.is_empty()) {
            let (_, v) = l.rsplit_once(' ').unwrap_or_else(|| panic!("[{b}] bad line {l:?}"));
            assert!(v.parse::<f64>().is_ok(), "[{b}] bad value in {l:?}");
        }

        let r = anon.get("/v1/openapi.json");
        assert_eq!(r.status, 200, "[{b}] openapi");
        assert!(r.body["openapi"].as_str().is_some_and(|v| v.starts_with("3.")), "[{b}] version");
        let paths = r.body["paths"].as_object().expect("paths");
        for p in [
            "/v1/me",
            "/v1/tenants",
            "/v1/tenants/{tenant}",
            "/v1/tenants/{tenant}/projects/{project}/claims",
            "/v1/tenants/{tenant}/audit",
            "/v1/audit",
        ] {
            assert!(paths.contains_key(p), "[{b}] openapi lacks {p}");
        }
        let ids: Vec<&str> = paths
            .values()
            .flat_map(|p| p.as_object().unwrap().values())
            .filter_map(|o| o["operationId"].as_str())
            .collect();
        for id in ["me_get", "tenant_create", "project_create", "claim_create", "tenant_audit_list"]
        {
            assert!(ids.contains(&id), "[{b}] openapi lacks operation {id}");
        }
        let create = &r.body["paths"]["/v1/tenants"]["post"];
        let params = create["parameters"].as_array().cloned().unwrap_or_default();
        assert!(
            params.iter().any(|p| p["name"] == "Idempotency-Key" && p["in"] == "header"),
            "[{b}] creates document Idempotency-Key: {create}"
        );
    });
}

#[test]
fn the_bootstrap_token_is_private_and_written_once() {
    each_backend(|s| {
        let b = s.backend.as_str();
        let file = s.data_dir.join("admin.token");
        let meta = std::fs::metadata(&file).expect("admin.token");
        assert_eq!(meta.permissions().mode() & 0o777, 0o600, "[{b}] admin.token mode");
        let content = std::fs::read_to_string(&file).unwrap();
        assert_eq!(content.trim(), s.admin_token, "[{b}] the file holds the admin token");
        assert!(!s.data_dir.join("admin.token.tmp").exists(), "[{b}] no temp file left");
        let me = s.admin().get("/v1/me").expect(200);
        assert_eq!(me.body["grants"][0]["role"], "provider-admin", "[{b}] admin grant");

        // Bootstrapping again (a restart) creates nothing and leaves the file.
        let again =
            neocloud_server::bootstrap::bootstrap(&s.store, &s.data_dir).expect("bootstrap");
        assert_eq!(again, None, "[{b}] a bootstrapped store is not bootstrapped again");
        assert_eq!(std::fs::read_to_string(&file).unwrap(), content, "[{b}] file unchanged");
        assert!(!s.data_dir.join("admin.token.tmp").exists(), "[{b}] no temp file left");
        // Into another directory: still nothing.
        let other = s.data_dir.join("elsewhere");
        let again = neocloud_server::bootstrap::bootstrap(&s.store, &other).expect("bootstrap");
        assert_eq!(again, None, "[{b}] no second admin for another data dir");
        assert!(!other.join("admin.token").exists(), "[{b}] no second token file");
        let users = s.admin().get("/v1/users").expect(200);
        let names: Vec<&str> = users.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|u| u["name"].as_str())
            .collect();
        assert_eq!(names, ["admin"], "[{b}] one provider user");
        let tokens = s.store.read(|r| r.query("SELECT COUNT(*) FROM api_tokens", &[])).unwrap();
        assert_eq!(tokens[0].i64(0).unwrap(), 1, "[{b}] one token");
        s.admin().get("/v1/me").expect(200);

        // A second server on the same store (a restart or a replica) does
        // not bootstrap either.
        let dir2 = s.data_dir.join("replica");
        let config = neocloud_server::Config {
            listen: "127.0.0.1:0".into(),
            db: Some(s.db_url.clone()),
            data_dir: dir2.clone(),
            ..neocloud_server::Config::default()
        };
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let server =
            rt.block_on(neocloud_server::Server::bind(config)).expect("second server binds");
        assert!(server.bootstrap_token.is_none(), "[{b}] the second server did not bootstrap");
        drop(server);
        assert!(!dir2.join("admin.token").exists(), "[{b}] no token file for the replica");
        assert_eq!(std::fs::read_to_string(&file).unwrap(), content, "[{b}] file unchanged");
        s.admin().get("/v1/me").expect(200);
    });
}

/// A provider user with a token (two admin requests).
fn provider_user_token(s: &TestServer, name: &str, role: &str) -> String {
    let a = s.admin();
    a.post("/v1/users", &json!({"name": name, "role": role})).expect(201);
    let t = a.post(&format!("/v1/users/{name}/tokens"), &json!({"name": "t"})).expect(201);
    t.body["secret"].as_str().expect("secret").to_string()
}

#[test]
fn rate_limits_are_per_principal() {
    for backend in TestBackend::ALL {
        let Some(s) = TestServer::start_with(backend, |c| {
            c.rate_limit_per_sec = 1;
            c.rate_limit_burst = 3;
        }) else {
            continue;
        };
        let b = s.backend.as_str();
        // Two admin requests, then time to refill the admin's bucket.
        let viewer = s.client(&provider_user_token(&s, "watcher", "provider-viewer"));
        std::thread::sleep(Duration::from_millis(2100));
        let a = s.admin();
        // A full bucket holds 3.
        for i in 0..3 {
            let r = a.get("/v1/me");
            assert_eq!(r.status, 200, "[{b}] request {i} within the burst: {}", r.text);
        }
        let r = a.get("/v1/me");
        let limited_at = std::time::Instant::now();
        assert_eq!(r.status, 429, "[{b}] 4th quick request: {}", r.text);
        assert_eq!(r.error().0, "rate_limited", "[{b}] code");
        let retry: u64 = r
            .header("retry-after")
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("[{b}] Retry-After: {:?}", r.header("retry-after")));
        assert!((1..=2).contains(&retry), "[{b}] Retry-After {retry}");
        assert_eq!(r.body["error"]["request_id"].as_str(), r.header("x-request-id"), "[{b}]");
        // Mutations are limited too, and change nothing.
        let r = a.post("/v1/tenants", &json!({"name": "late"}));
        assert_eq!(r.status, 429, "[{b}] limited create: {}", r.text);
        // Another principal has its own bucket.
        for i in 0..3 {
            let r = viewer.get("/v1/tenants");
            assert_eq!(r.status, 200, "[{b}] other user, request {i}: {}", r.text);
            let names: Vec<Value> =
                r.body["items"].as_array().unwrap().iter().map(|t| t["name"].clone()).collect();
            assert!(names.is_empty(), "[{b}] the limited create created nothing: {names:?}");
        }
        // The bucket refills at the configured rate.
        std::thread::sleep(Duration::from_millis(1100 * retry));
        let r = a.get("/v1/me");
        assert_eq!(r.status, 200, "[{b}] after Retry-After: {}", r.text);
        let r = a.get("/v1/me");
        if limited_at.elapsed() < Duration::from_millis(1800) {
            assert_eq!(r.status, 429, "[{b}] one token refilled, not the burst: {}", r.text);
        }
    }
}
