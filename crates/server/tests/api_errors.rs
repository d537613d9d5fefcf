//! Bad input is answered with a 4xx naming the field, a JSON error body
//! carrying the request id, and changes nothing in the store.

mod common;
use common::*;
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// Everything a rejected request must leave as it was.
fn snapshot(s: &TestServer) -> Value {
    let a = s.admin();
    let get = |p: &str| {
        let r = a.get(p);
        assert_eq!(r.status, 200, "[{}] GET {p}: {}", s.backend.as_str(), r.text);
        r.body
    };
    let count = |sql: &str| -> i64 {
        s.store
            .read(|r| r.query(sql, &[]))
            .unwrap_or_else(|e| panic!("[{}] {sql}: {e}", s.backend.as_str()))[0]
            .i64(0)
            .expect("count")
    };
    json!({
        "tenants": get("/v1/tenants"),
        "projects": get("/v1/tenants/acme/projects"),
        "users": get("/v1/tenants/acme/users"),
        "provider_users": get("/v1/users"),
        "memberships": get("/v1/tenants/acme/memberships"),
        "tenant_quota": get("/v1/tenants/acme/quotas"),
        "project_quota": get("/v1/tenants/acme/projects/web/quotas"),
        "claims": get("/v1/tenants/acme/projects/web/claims"),
        "tokens": count("SELECT COUNT(*) FROM api_tokens"),
        "idempotency_keys": count("SELECT COUNT(*) FROM idempotency_keys"),
        "success_events": count("SELECT COUNT(*) FROM audit_events WHERE outcome = 'success'"),
    })
}

fn setup(s: &TestServer) {
    let a = s.admin();
    a.post("/v1/tenants", &json!({"name": "acme"})).expect(201);
    a.post("/v1/tenants/acme/projects", &json!({"name": "web"})).expect(201);
    a.post("/v1/tenants/acme/users", &json!({"name": "bob", "role": "tenant-admin"})).expect(201);
}

/// Asserts an error answer: status, code, field, JSON body, request id.
#[track_caller]
fn check_error(s: &TestServer, what: &str, r: &Resp, status: u16, code: &str, field: Option<&str>) {
    let b = s.backend.as_str();
    assert_ne!(r.status, 500, "[{b}] {what}: server error: {}", r.text);
    assert_eq!(r.status, status, "[{b}] {what}: status; body: {}", r.text);
    let (c, f) = r.error();
    assert_eq!(c, code, "[{b}] {what}: error.code; body: {}", r.text);
    assert_eq!(f.as_deref(), field, "[{b}] {what}: error.field; body: {}", r.text);
    assert!(
        r.body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()),
        "[{b}] {what}: error.message; body: {}",
        r.text
    );
    let hdr = r.header("x-request-id").unwrap_or_else(|| panic!("[{b}] {what}: no x-request-id"));
    assert!(!hdr.is_empty(), "[{b}] {what}: empty x-request-id");
    assert_eq!(
        r.body["error"]["request_id"].as_str(),
        Some(hdr),
        "[{b}] {what}: error.request_id must equal the x-request-id header"
    );
    assert!(
        r.header("content-type").is_some_and(|ct| ct.starts_with("application/json")),
        "[{b}] {what}: content-type {:?}",
        r.header("content-type")
    );
}

struct Case {
    what: &'static str,
    method: &'static str,
    path: String,
    body: Option<Vec<u8>>,
    headers: Vec<(&'static str, String)>,
    status: u16,
    code: &'static str,
    field: Option<&'static str>,
}

fn case(
    what: &'static str,
    method: &'static str,
    path: &str,
    body: Option<&str>,
    status: u16,
    code: &'static str,
    field: Option<&'static str>,
) -> Case {
    Case {
        what,
        method,
        path: path.to_string(),
        body: body.map(|b| b.as_bytes().to_vec()),
        headers: vec![],
        status,
        code,
        field,
    }
}

fn run_cases(s: &TestServer, c: &Client, cases: &[Case]) {
    let before = snapshot(s);
    for k in cases {
        let headers: Vec<(&str, &str)> = k.headers.iter().map(|(h, v)| (*h, v.as_str())).collect();
        let r = c.raw(k.method, &k.path, k.body.as_deref(), &headers);
        check_error(s, k.what, &r, k.status, k.code, k.field);
        let after = snapshot(s);
        assert_eq!(before, after, "[{}] {}: the store changed", s.backend.as_str(), k.what);
    }
}

#[test]
fn malformed_bodies_name_the_field_and_change_nothing() {
    each_backend(|s| {
        setup(s);
        let long_name = "a".repeat(64);
        let long_text = "x".repeat(1025);
        #[rustfmt::skip]
        let cases = vec![
            case("malformed JSON", "POST", "/v1/tenants", Some(r#"{"name": "#), 400, "invalid_request", Some("body")),
            case("trailing garbage", "POST", "/v1/tenants", Some(r#"{"name": "zz"} x"#), 400, "invalid_request", Some("body")),
            case("empty body on tenant create", "POST", "/v1/tenants", None, 400, "invalid_request", Some("body")),
            case("empty body on project create", "POST", "/v1/tenants/acme/projects", None, 400, "invalid_request", Some("body")),
            case("empty body on claim create", "POST", "/v1/tenants/acme/projects/web/claims", None, 400, "invalid_request", Some("body")),
            case("empty body on quota update", "PUT", "/v1/tenants/acme/quotas", None, 400, "invalid_request", Some("body")),
            case("missing field", "POST", "/v1/tenants", Some(r#"{"display_name": "Z"}"#), 400, "invalid_request", Some("name")),
            case("missing generation", "PATCH", "/v1/tenants/acme", Some(r#"{"display_name": "Z"}"#), 400, "invalid_request", Some("generation")),
            case("wrong type (name)", "POST", "/v1/tenants", Some(r#"{"name": 5}"#), 400, "invalid_request", Some("name")),
            case("wrong type (description)", "POST", "/v1/tenants/acme/projects", Some(r#"{"name": "zz", "description": 7}"#), 400, "invalid_request", Some("description")),
            case("wrong type (generation)", "PATCH", "/v1/tenants/acme", Some(r#"{"generation": "1"}"#), 400, "invalid_request", Some("generation")),
            case("wrong type (nested)", "POST", "/v1/tenants/acme/projects/web/claims", Some(r#"{"resources": {"nodes": "two"}}"#), 400, "invalid_request", Some("resources.nodes")),
            case("wrong type (nested limit)", "PUT", "/v1/tenants/acme/quotas", Some(r#"{"generation": 1, "limits": {"nodes": "ten"}}"#), 400, "invalid_request", Some("limits.nodes")),
            case("unknown role", "POST", "/v1/tenants/acme/memberships", Some(r#"{"user": "bob", "role": "god"}"#), 400, "invalid_request", Some("role")),
            case("uppercase name", "POST", "/v1/tenants", Some(r#"{"name": "Acme2"}"#), 400, "invalid_request", Some("name")),
            case("underscore in name", "POST", "/v1/tenants/acme/projects", Some(r#"{"name": "my_project"}"#), 400, "invalid_request", Some("name")),
            case("empty name", "POST", "/v1/tenants/acme/users", Some(r#"{"name": ""}"#), 400, "invalid_request", Some("name")),
        ];
        let mut cases = cases;
        cases.push(Case {
            what: "name too long",
            method: "POST",
            path: "/v1/tenants".into(),
            body: Some(json!({"name": long_name}).to_string().into_bytes()),
            headers: vec![],
            status: 400,
            code: "invalid_request",
            field: Some("name"),
        });
        cases.push(Case {
            what: "description too long",
            method: "POST",
            path: "/v1/tenants".into(),
            body: Some(json!({"name": "zz", "description": long_text}).to_string().into_bytes()),
            headers: vec![],
            status: 422,
            code: "invalid_value",
            field: Some("description"),
        });
        cases.push(Case {
            what: "display_name too long on update",
            method: "PATCH",
            path: "/v1/tenants/acme".into(),
            body: Some(
                json!({"generation": 1, "display_name": long_text}).to_string().into_bytes(),
            ),
            headers: vec![],
            status: 422,
            code: "invalid_value",
            field: Some("display_name"),
        });
        cases.push(Case {
            what: "control character in text",
            method: "POST",
            path: "/v1/tenants/acme/projects".into(),
            body: Some(json!({"name": "zz", "description": "a\u{7}b"}).to_string().into_bytes()),
            headers: vec![],
            status: 422,
            code: "invalid_value",
            field: Some("description"),
        });
        cases.push(Case {
            what: "unknown quota resource",
            method: "POST",
            path: "/v1/tenants/acme/projects/web/claims".into(),
            body: Some(json!({"resources": {"cpus": 1}}).to_string().into_bytes()),
            headers: vec![],
            status: 422,
            code: "invalid_value",
            field: Some("resources.cpus"),
        });
        cases.push(Case {
            what: "negative limit",
            method: "PUT",
            path: "/v1/tenants/acme/quotas".into(),
            body: Some(json!({"generation": 1, "limits": {"nodes": -1}}).to_string().into_bytes()),
            headers: vec![],
            status: 422,
            code: "invalid_value",
            field: Some("limits.nodes"),
        });
        run_cases(s, &s.admin(), &cases);
    });
}

/// An unknown field is named as it was sent: `bogus`, not `bogus.bogus`.
#[test]
fn unknown_fields_are_named_once() {
    each_backend(|s| {
        setup(s);
        #[rustfmt::skip]
        let cases = vec![
            case("unknown field", "POST", "/v1/tenants", Some(r#"{"name": "zz", "bogus": 1}"#), 400, "invalid_request", Some("bogus")),
            case("unknown field on update", "PATCH", "/v1/tenants/acme", Some(r#"{"generation": 1, "colour": "red"}"#), 400, "invalid_request", Some("colour")),
            case("unknown field on a claim", "POST", "/v1/tenants/acme/projects/web/claims", Some(r#"{"resources": {"nodes": 1}, "priority": 9}"#), 400, "invalid_request", Some("priority")),
        ];
        run_cases(s, &s.admin(), &cases);
    });
}

/// A request body must be a JSON object; serde's derived structs also
/// accept a positional array, which the API must not.
#[test]
fn array_bodies_are_refused() {
    each_backend(|s| {
        setup(s);
        #[rustfmt::skip]
        let cases = vec![
            case("positional tenant", "POST", "/v1/tenants", Some(r#"["zz"]"#), 400, "invalid_request", Some("body")),
            case("array of wrong types", "POST", "/v1/tenants", Some("[1, 2]"), 400, "invalid_request", Some("body")),
            case("positional project", "POST", "/v1/tenants/acme/projects", Some(r#"["zz", "d"]"#), 400, "invalid_request", Some("body")),
            case("positional update", "PATCH", "/v1/tenants/acme", Some(r#"[1, "Z"]"#), 400, "invalid_request", Some("body")),
        ];
        run_cases(s, &s.admin(), &cases);
    });
}

#[test]
fn bad_headers_paths_queries_and_methods_change_nothing() {
    each_backend(|s| {
        setup(s);
        let tenant_body = Some(r#"{"name": "zz"}"#);
        #[rustfmt::skip]
        let mut cases = vec![
            case("bad tenant in path", "GET", "/v1/tenants/Bad_Name", None, 400, "invalid_request", Some("tenant")),
            case("bad tenant in a create's path", "POST", "/v1/tenants/Bad_Name/projects", Some(r#"{"name": "zz"}"#), 400, "invalid_request", Some("tenant")),
            case("bad project in path", "DELETE", "/v1/tenants/acme/projects/Web_1", None, 400, "invalid_request", Some("project")),
            case("bad user in path", "GET", "/v1/tenants/acme/users/-bob", None, 400, "invalid_request", Some("user")),
            case("membership name instead of id", "PATCH", "/v1/tenants/acme/memberships/bob", Some(r#"{"generation": 1, "role": "tenant-viewer"}"#), 400, "invalid_request", Some("membership")),
            case("claim name instead of id", "POST", "/v1/tenants/acme/projects/web/claims/abc/commit", None, 400, "invalid_request", Some("claim")),
            case("token name in tenant path", "DELETE", "/v1/tenants/acme/tokens/t", None, 400, "invalid_request", Some("token")),
            case("unknown query parameter", "GET", "/v1/tenants?foo=1", None, 400, "invalid_request", Some("foo")),
            case("unknown query parameter on a create", "POST", "/v1/tenants?dry_run=true", tenant_body, 400, "invalid_request", Some("dry_run")),
            case("limit=0", "GET", "/v1/tenants/acme/audit?limit=0", None, 422, "invalid_value", Some("limit")),
            case("limit=abc", "GET", "/v1/tenants/acme/audit?limit=abc", None, 400, "invalid_request", Some("limit")),
            case("limit too large", "GET", "/v1/audit?limit=1001", None, 422, "invalid_value", Some("limit")),
            case("negative after_seq", "GET", "/v1/tenants/acme/audit?after_seq=-1", None, 422, "invalid_value", Some("after_seq")),
            case("bad format", "GET", "/v1/audit?format=xml", None, 422, "invalid_value", Some("format")),
            case("unknown audit cursor", "GET", "/v1/audit?after=00000000-0000-4000-8000-000000000000", None, 422, "invalid_value", Some("after")),
            case("bad claim state", "GET", "/v1/tenants/acme/projects/web/claims?state=bogus", None, 422, "invalid_value", Some("state")),
            case("body on a GET", "GET", "/v1/tenants", Some(r#"{"name": "zz"}"#), 400, "invalid_request", Some("body")),
            case("body on a DELETE", "DELETE", "/v1/tenants/acme/projects/web", Some("{}"), 400, "invalid_request", Some("body")),
            case("body on a commit", "POST", "/v1/tenants/acme/projects/web/claims/00000000-0000-4000-8000-000000000000/commit", Some("{}"), 400, "invalid_request", Some("body")),
            case("wrong method on a collection", "PUT", "/v1/tenants", tenant_body, 405, "method_not_allowed", None),
            case("DELETE on a collection", "DELETE", "/v1/tenants", None, 405, "method_not_allowed", None),
            case("POST on /v1/me", "POST", "/v1/me", Some("{}"), 405, "method_not_allowed", None),
            case("PATCH on quotas", "PATCH", "/v1/quotas", Some(r#"{"generation": 1, "limits": {}}"#), 405, "method_not_allowed", None),
            case("unknown route", "GET", "/v1/nope", None, 404, "not_found", None),
            case("unknown route under a tenant", "POST", "/v1/tenants/acme/bogus", Some("{}"), 404, "not_found", None),
            case("unknown version", "POST", "/v2/tenants", tenant_body, 404, "not_found", None),
            case("unknown tenant", "GET", "/v1/tenants/nobody", None, 404, "not_found", None),
            case("unknown project", "PATCH", "/v1/tenants/acme/projects/nothing", Some(r#"{"generation": 1}"#), 404, "not_found", None),
        ];
        let ct = |what, path: &str, body: &str, ct: &str| Case {
            what,
            method: "POST",
            path: path.into(),
            body: Some(body.as_bytes().to_vec()),
            headers: vec![("Content-Type", ct.to_string())],
            status: 400,
            code: "invalid_request",
            field: Some("Content-Type"),
        };
        cases.push(ct("text/plain body", "/v1/tenants", r#"{"name": "zz"}"#, "text/plain"));
        cases.push(ct(
            "form body",
            "/v1/tenants/acme/projects",
            "name=zz",
            "application/x-www-form-urlencoded",
        ));
        let idem = |what, key: String| Case {
            what,
            method: "POST",
            path: "/v1/tenants".into(),
            body: Some(br#"{"name": "zz"}"#.to_vec()),
            headers: vec![("Idempotency-Key", key)],
            status: 400,
            code: "invalid_request",
            field: Some("Idempotency-Key"),
        };
        cases.push(idem("Idempotency-Key too long", "k".repeat(256)));
        cases.push(idem("Idempotency-Key with a space", "a b".into()));
        cases.push(Case {
            what: "Idempotency-Key on an update",
            method: "PATCH",
            path: "/v1/tenants/acme".into(),
            body: Some(br#"{"generation": 1, "display_name": "Z"}"#.to_vec()),
            headers: vec![("Idempotency-Key", "k1".into())],
            status: 400,
            code: "invalid_request",
            field: Some("Idempotency-Key"),
        });
        run_cases(s, &s.admin(), &cases);
        // A 405 lists what the path allows.
        for (m, p, allowed) in [
            ("PUT", "/v1/tenants", &["GET", "POST"][..]),
            ("POST", "/v1/me", &["GET"][..]),
            ("PUT", "/v1/tenants/acme/projects/web", &["GET", "PATCH", "DELETE"][..]),
        ] {
            let r = s.admin().raw(m, p, None, &[]);
            check_error(s, "405 Allow", &r, 405, "method_not_allowed", None);
            let allow = r.header("allow").unwrap_or_default().to_string();
            let listed: Vec<&str> = allow.split(',').map(str::trim).collect();
            for a in allowed {
                assert!(
                    listed.contains(a),
                    "[{}] {m} {p}: Allow {allow:?} lacks {a}",
                    s.backend.as_str()
                );
            }
            assert!(!listed.contains(&m), "[{}] {m} {p}: Allow {allow:?}", s.backend.as_str());
        }
        // JSON with a charset parameter is JSON.
        let r = s.admin().raw(
            "POST",
            "/v1/tenants/acme/projects",
            Some(br#"{"name": "charset"}"#),
            &[("Content-Type", "application/json; charset=utf-8")],
        );
        assert_eq!(r.status, 201, "[{}] charset parameter: {}", s.backend.as_str(), r.text);
        // The longest key accepted is 255 characters.
        let r = s.admin().raw(
            "POST",
            "/v1/tenants",
            Some(br#"{"name": "zz"}"#),
            &[("Idempotency-Key", &"k".repeat(255))],
        );
        assert_eq!(r.status, 201, "[{}] 255-character key: {}", s.backend.as_str(), r.text);
    });
}

#[test]
fn unauthenticated_requests_change_nothing() {
    each_backend(|s| {
        setup(s);
        let before = snapshot(s);
        let anon = s.anonymous();
        let r = anon.post("/v1/tenants", &json!({"name": "zz"}));
        check_error(s, "anonymous create", &r, 401, "unauthenticated", None);
        let bogus = s.client("nc_0000000000000000000000000000000000000000000000000000000000000000");
        let r = bogus.post("/v1/tenants/acme/projects", &json!({"name": "zz"}));
        check_error(s, "unknown token create", &r, 401, "unauthenticated", None);
        let r = bogus.delete("/v1/tenants/acme/projects/web");
        check_error(s, "unknown token delete", &r, 401, "unauthenticated", None);
        // Authentication comes first: a bad request from nobody is a 401.
        let r = anon.raw("POST", "/v1/tenants?x=1", Some(b"{"), &[]);
        check_error(s, "anonymous malformed create", &r, 401, "unauthenticated", None);
        assert_eq!(before, snapshot(s), "[{}] the store changed", s.backend.as_str());
    });
}

/// A raw HTTP/1.1 exchange, for what the blocking client cannot send.
fn raw_http(s: &TestServer, request: &[u8]) -> (u16, Vec<(String, String)>, String) {
    let addr = s.url.trim_start_matches("http://");
    let mut c = TcpStream::connect(addr).expect("connect");
    c.set_read_timeout(Some(Duration::from_secs(20))).expect("timeout");
    c.write_all(request).expect("write request");
    let mut buf = Vec::new();
    let _ = c.read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf).to_string();
    let (head, body) =
        text.split_once("\r\n\r\n").unwrap_or_else(|| panic!("no response: {text:?}"));
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("bad status line: {head}"));
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let chunked = headers.iter().any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"));
    let body = if chunked {
        let mut out = String::new();
        let mut rest = body;
        while let Some((size, tail)) = rest.split_once("\r\n") {
            let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
            if n == 0 {
                break;
            }
            out.push_str(&tail[..n]);
            rest = &tail[n + 2..];
        }
        out
    } else {
        body.to_string()
    };
    (status, headers, body)
}

fn raw_resp(s: &TestServer, request: &[u8]) -> Resp {
    let (status, headers, text) = raw_http(s, request);
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    Resp { status, body, text, headers }
}

#[test]
fn oversize_bodies_get_413() {
    each_backend(|s| {
        setup(s);
        let before = snapshot(s);
        // Declared too large: refused before the body is read.
        let req = format!(
            "POST /v1/tenants HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            s.admin_token,
            (1 << 20) + 1
        );
        let r = raw_resp(s, req.as_bytes());
        check_error(s, "Content-Length over 1 MiB", &r, 413, "payload_too_large", None);
        assert_eq!(before, snapshot(s), "[{}] the store changed", s.backend.as_str());

        // Exactly at the limit is not refused as too large (it fails later,
        // on its content).
        let mut at = br#"{"name": "zz", "description": ""#.to_vec();
        at.resize((1 << 20) - 2, b'x');
        at.extend_from_slice(br#""}"#);
        let r = s.admin().raw("POST", "/v1/tenants/acme/projects", Some(&at), &[]);
        check_error(s, "1 MiB body", &r, 422, "invalid_value", Some("description"));
        assert_eq!(before, snapshot(s), "[{}] the store changed", s.backend.as_str());
    });
}

#[test]
fn chunked_body_over_the_limit_gets_413() {
    for b in neocloud_store::testing::TestBackend::ALL {
        let Some(s) = TestServer::start_with(b, |c| c.max_body_bytes = 1024) else { continue };
        setup(&s);
        let before = snapshot(&s);
        let payload = json!({"name": "zz", "description": "y".repeat(3000)}).to_string();
        let mut req = format!(
            "POST /v1/tenants HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
            s.admin_token
        )
        .into_bytes();
        for chunk in payload.as_bytes().chunks(500) {
            req.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
            req.extend_from_slice(chunk);
            req.extend_from_slice(b"\r\n");
        }
        req.extend_from_slice(b"0\r\n\r\n");
        let r = raw_resp(&s, &req);
        check_error(&s, "chunked body over the limit", &r, 413, "payload_too_large", None);
        assert_eq!(before, snapshot(&s), "[{}] the store changed", s.backend.as_str());
    }
}

#[test]
fn request_ids_are_echoed_or_generated() {
    each_backend(|s| {
        let b = s.backend.as_str();
        let a = s.admin();
        // Echoed on success and on error.
        let r = a.raw("GET", "/v1/me", None, &[("X-Request-Id", "client-req-42")]);
        assert_eq!(r.status, 200, "[{b}] {}", r.text);
        assert_eq!(r.header("x-request-id"), Some("client-req-42"), "[{b}] echo on success");
        let r = a.raw("GET", "/v1/tenants/nobody", None, &[("X-Request-Id", "client-req-43")]);
        check_error(s, "echo on 404", &r, 404, "not_found", None);
        assert_eq!(r.header("x-request-id"), Some("client-req-43"), "[{b}] echo on error");
        let r = a.raw("PUT", "/v1/tenants", None, &[("X-Request-Id", "client-req-44")]);
        check_error(s, "echo on 405", &r, 405, "method_not_allowed", None);
        assert_eq!(r.header("x-request-id"), Some("client-req-44"), "[{b}] echo on 405");
        let r = a.raw("GET", "/v1/bogus", None, &[("X-Request-Id", "client-req-45")]);
        check_error(s, "echo on unknown route", &r, 404, "not_found", None);
        assert_eq!(r.header("x-request-id"), Some("client-req-45"), "[{b}] echo on 404 route");
        // Unusable ids are replaced, never reflected.
        for bad in ["has space", "semi;colon", &"x".repeat(129)] {
            let r = a.raw("GET", "/v1/tenants/nobody", None, &[("X-Request-Id", bad)]);
            check_error(s, "replaced request id", &r, 404, "not_found", None);
            let got = r.header("x-request-id").unwrap_or_default();
            assert_ne!(got, bad, "[{b}] a bad request id must not be echoed");
            assert!(!got.is_empty(), "[{b}] a request id is generated");
        }
        // Without one, each request gets its own.
        let r1 = a.get("/v1/me");
        let r2 = a.get("/v1/me");
        assert_ne!(r1.header("x-request-id"), r2.header("x-request-id"), "[{b}] ids are unique");
    });
}

/// A header that is not visible ASCII is named like the other header
/// errors: `Idempotency-Key`, as the API documents it.
#[test]
fn non_ascii_idempotency_key_is_named_consistently() {
    each_backend(|s| {
        setup(s);
        let before = snapshot(s);
        let body = br#"{"name": "zz"}"#;
        let mut req = format!(
            "POST /v1/tenants HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\nIdempotency-Key: k\u{ff}\r\n\r\n",
            s.admin_token,
            body.len()
        )
        .into_bytes();
        // format! wrote U+00FF as two UTF-8 bytes; send the single byte 0xff.
        let pos = req.windows(2).position(|w| w == [0xc3, 0xbf]).expect("marker");
        req.splice(pos..pos + 2, [0xffu8]);
        req.extend_from_slice(body);
        let r = raw_resp(s, &req);
        check_error(
            s,
            "non-ASCII Idempotency-Key",
            &r,
            400,
            "invalid_request",
            Some("Idempotency-Key"),
        );
        assert_eq!(before, snapshot(s), "[{}] the store changed", s.backend.as_str());
    });
}
