//! API tokens: shown once, stored as a hash, revocable, expiring, with
//! last use recorded; every authentication failure is a 401 with
//! `WWW-Authenticate: Bearer`.

mod common;
use common::*;
use neocloud_store::testing::TestBackend;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

fn sha256_hex(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

#[track_caller]
fn assert_401(s: &TestServer, what: &str, r: &Resp) {
    let b = s.backend.as_str();
    assert_eq!(r.status, 401, "[{b}] {what}: {}", r.text);
    assert_eq!(r.error().0, "unauthenticated", "[{b}] {what}: code");
    assert_eq!(r.header("www-authenticate"), Some("Bearer"), "[{b}] {what}: WWW-Authenticate");
    assert_eq!(
        r.body["error"]["request_id"].as_str(),
        r.header("x-request-id"),
        "[{b}] {what}: request id"
    );
}

fn setup(s: &TestServer) -> Client {
    let a = s.admin();
    a.post("/v1/tenants", &json!({"name": "acme"})).expect(201);
    a.post("/v1/tenants", &json!({"name": "other"})).expect(201);
    s.client(&s.user_with_role("acme", "alice", "tenant-admin", None))
}

/// Every text column of the store's rows where a secret could leak.
fn store_text(s: &TestServer, table: &str) -> String {
    let rows = s
        .store
        .read(|r| r.query(&format!("SELECT * FROM {table}"), &[]))
        .unwrap_or_else(|e| panic!("[{}] SELECT * FROM {table}: {e}", s.backend.as_str()));
    format!("{rows:?}")
}

#[test]
fn secrets_are_shown_once_and_stored_as_hashes() {
    each_backend(|s| {
        let b = s.backend.as_str();
        let alice = setup(s);
        let a = s.admin();
        // A tenant admin mints a token for a new user; the user mints its own.
        a.post("/v1/tenants/acme/users", &json!({"name": "svc", "role": "tenant-member"}))
            .expect(201);
        let created = alice
            .post("/v1/tenants/acme/tokens", &json!({"name": "ci", "user": "svc"}))
            .expect(201);
        let secret = created.body["secret"].as_str().expect("secret").to_string();
        let id = created.body["token"]["id"].as_str().expect("id").to_string();
        assert!(secret.starts_with("nc_") && secret.len() == 67, "[{b}] secret shape: {secret}");
        assert_eq!(
            created.body["token"]["prefix"].as_str(),
            Some(&secret[..10]),
            "[{b}] the prefix is the secret's start"
        );
        let svc = s.client(&secret);
        let me = svc.get("/v1/me").expect(200);
        assert_eq!(me.body["user"]["name"], "svc", "[{b}] the token acts as its user");
        assert_eq!(me.body["token_id"], id.as_str(), "[{b}] token id");
        let own = svc.post("/v1/tokens", &json!({"name": "laptop"})).expect(201);
        let own_secret = own.body["secret"].as_str().expect("secret").to_string();
        let own_id = own.body["token"]["id"].as_str().expect("id").to_string();
        assert_ne!(own_secret, secret, "[{b}] distinct secrets");
        s.client(&own_secret).get("/v1/me").expect(200);

        // A provider user's token, minted by the provider admin.
        a.post("/v1/users", &json!({"name": "ops", "role": "provider-viewer"})).expect(201);
        let r = a.post("/v1/users/ops/tokens", &json!({"name": "ops", "user": "admin"}));
        assert_eq!(r.status, 422, "[{b}] the user is the path's: {}", r.text);
        let r = alice.post("/v1/users/ops/tokens", &json!({"name": "ops"}));
        assert_eq!(r.status, 403, "[{b}] tenant admins cannot mint provider tokens: {}", r.text);
        let r = a.post("/v1/users/ops/tokens", &json!({"name": "ops"})).expect(201);
        let ops_secret = r.body["secret"].as_str().expect("secret").to_string();
        let me = s.client(&ops_secret).get("/v1/me").expect(200);
        assert_eq!(me.body["user"]["name"], "ops", "[{b}] the token acts as ops");
        assert_eq!(me.body["grants"][0]["role"], "provider-viewer", "[{b}] ops's role");

        // Never again in any answer.
        let reads = [
            (&svc, "/v1/tokens".to_string()),
            (&svc, format!("/v1/tokens/{id}")),
            (&svc, format!("/v1/tokens/{own_id}")),
            (&svc, "/v1/tokens/laptop".to_string()),
            (&svc, "/v1/me".to_string()),
            (&alice, "/v1/tenants/acme/tokens".to_string()),
            (&alice, format!("/v1/tenants/acme/tokens/{id}")),
            (&alice, format!("/v1/tenants/acme/tokens/{own_id}")),
            (&alice, "/v1/tenants/acme/audit?limit=1000".to_string()),
            (&alice, "/v1/tenants/acme/audit?format=jsonl&limit=1000".to_string()),
            (&a, "/v1/audit?limit=1000".to_string()),
            (&a, "/v1/users/ops".to_string()),
            (&a, "/v1/users".to_string()),
            (&s.client(&ops_secret), "/v1/tokens".to_string()),
            (&s.client(&ops_secret), "/v1/me".to_string()),
        ];
        for (c, p) in &reads {
            let r = c.get(p);
            assert_eq!(r.status, 200, "[{b}] GET {p}: {}", r.text);
            for sec in [&secret, &own_secret, &ops_secret] {
                assert!(!r.text.contains(sec.as_str()), "[{b}] GET {p} shows a secret");
                assert!(!r.text.contains(&sec[3..]), "[{b}] GET {p} shows a secret's digits");
            }
            assert!(!r.text.contains("\"secret\""), "[{b}] GET {p} has a secret field");
        }
        let listed = alice.get("/v1/tenants/acme/tokens").expect(200);
        let ids: Vec<&str> = listed.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|t| t["id"].as_str())
            .collect();
        assert!(ids.contains(&id.as_str()) && ids.contains(&own_id.as_str()), "[{b}] listed");

        // The store holds the hash and the shown prefix, never the secret.
        let rows = s
            .store
            .read(|r| r.query("SELECT secret_hash, prefix FROM api_tokens", &[]))
            .expect("query api_tokens");
        let pairs: Vec<(String, String)> =
            rows.iter().map(|r| (r.str(0).unwrap(), r.str(1).unwrap())).collect();
        for sec in [&secret, &own_secret, &ops_secret] {
            assert!(
                pairs.iter().any(|(h, p)| *h == sha256_hex(sec) && *p == sec[..10]),
                "[{b}] sha256 of the secret is stored with its prefix: {pairs:?}"
            );
        }
        for table in ["api_tokens", "audit_events", "users", "memberships"] {
            let text = store_text(s, table);
            for sec in [&secret, &own_secret, &ops_secret] {
                assert!(!text.contains(&sec[3..]), "[{b}] {table} holds a secret in clear");
            }
        }
    });
}

/// A keyed token create stores its answer for replay; that answer must not
/// keep the secret in clear.
#[test]
fn keyed_token_creates_do_not_store_the_secret() {
    each_backend(|s| {
        let b = s.backend.as_str();
        let alice = setup(s);
        let r = alice.raw(
            "POST",
            "/v1/tokens",
            Some(json!({"name": "keyed"}).to_string().as_bytes()),
            &[("Idempotency-Key", "tok-1")],
        );
        assert_eq!(r.status, 201, "[{b}] {}", r.text);
        let secret = r.body["secret"].as_str().expect("secret").to_string();
        // The retry names the same token but cannot show its secret again.
        let again = alice.raw(
            "POST",
            "/v1/tokens",
            Some(json!({"name": "keyed"}).to_string().as_bytes()),
            &[("Idempotency-Key", "tok-1")],
        );
        assert_eq!(again.status, 201, "[{b}] {}", again.text);
        assert_eq!(again.header("idempotent-replayed"), Some("true"), "[{b}]");
        assert_eq!(again.body["token"]["id"], r.body["token"]["id"], "[{b}]");
        assert_eq!(again.body["secret"], "", "[{b}] a replay never carries the secret");
        let r = alice.raw(
            "POST",
            "/v1/tenants/acme/tokens",
            Some(json!({"name": "keyed2"}).to_string().as_bytes()),
            &[("Idempotency-Key", "tok-2")],
        );
        assert_eq!(r.status, 201, "[{b}] {}", r.text);
        let secret2 = r.body["secret"].as_str().expect("secret").to_string();
        s.admin().post("/v1/users", &json!({"name": "ops", "role": "provider-viewer"})).expect(201);
        let r = s.admin().raw(
            "POST",
            "/v1/users/ops/tokens",
            Some(json!({"name": "keyed3"}).to_string().as_bytes()),
            &[("Idempotency-Key", "tok-3")],
        );
        assert_eq!(r.status, 201, "[{b}] {}", r.text);
        let secret3 = r.body["secret"].as_str().expect("secret").to_string();
        let text = store_text(s, "idempotency_keys");
        for sec in [&secret, &secret2, &secret3] {
            assert!(!text.contains(&sec[3..]), "[{b}] idempotency_keys holds a token secret");
        }
    });
}

#[test]
fn revoked_and_deleted_users_tokens_are_refused() {
    each_backend(|s| {
        let b = s.backend.as_str();
        let alice = setup(s);
        let bob_secret = s.user_with_role("acme", "bob", "tenant-member", None);
        let bob = s.client(&bob_secret);
        bob.get("/v1/me").expect(200);
        // A tenant admin revokes bob's token.
        let toks = alice.get("/v1/tenants/acme/tokens").expect(200);
        let bob_id = bob.get("/v1/me").expect(200).body["token_id"].as_str().unwrap().to_string();
        assert!(toks.text.contains(&bob_id), "[{b}] bob's token is the tenant's");
        let r = alice.delete(&format!("/v1/tenants/acme/tokens/{bob_id}")).expect(200);
        assert!(r.body["revoked_at"].is_string(), "[{b}] revoked_at set: {}", r.text);
        assert_401(s, "revoked token GET", &bob.get("/v1/me"));
        assert_401(
            s,
            "revoked token POST",
            &bob.post("/v1/tenants/acme/projects/x/claims", &json!({"resources": {"nodes": 1}})),
        );
        // Revoking again changes nothing.
        let again = alice.delete(&format!("/v1/tenants/acme/tokens/{bob_id}")).expect(200);
        assert_eq!(again.body["revoked_at"], r.body["revoked_at"], "[{b}] revoked once");
        assert_eq!(again.body["generation"], r.body["generation"], "[{b}] generation once");

        // A user revokes their own token, by name: it stops working at once.
        let t = alice.post("/v1/tokens", &json!({"name": "second"})).expect(201);
        let second = s.client(t.body["secret"].as_str().unwrap());
        second.get("/v1/me").expect(200);
        second.delete("/v1/tokens/second").expect(200);
        assert_401(s, "self-revoked token", &second.get("/v1/me"));
        alice.get("/v1/me").expect(200);
        // The name is free again once the token is revoked.
        alice.post("/v1/tokens", &json!({"name": "second"})).expect(201);
        let dup = alice.post("/v1/tokens", &json!({"name": "second"}));
        assert_eq!(dup.status, 409, "[{b}] live duplicate name: {}", dup.text);
        assert_eq!(
            dup.error(),
            ("already_exists".to_string(), Some("name".to_string())),
            "[{b}] duplicate"
        );

        // Deleting a user ends its tokens.
        let carol = s.client(&s.user_with_role("acme", "carol", "tenant-viewer", None));
        carol.get("/v1/me").expect(200);
        alice.delete("/v1/tenants/acme/users/carol").expect(204);
        assert_401(s, "deleted user's token", &carol.get("/v1/me"));

        // Other tenants' admins cannot see or revoke acme's tokens.
        let olga = s.client(&s.user_with_role("other", "olga", "tenant-admin", None));
        let alice_id =
            alice.get("/v1/me").expect(200).body["token_id"].as_str().unwrap().to_string();
        for r in [
            olga.get(&format!("/v1/tenants/other/tokens/{alice_id}")),
            olga.delete(&format!("/v1/tenants/other/tokens/{alice_id}")),
            olga.delete(&format!("/v1/tenants/acme/tokens/{alice_id}")),
        ] {
            assert_eq!(r.status, 404, "[{b}] foreign token: {}", r.text);
        }
        // Nor can a tenant admin reach the provider admin's token.
        let admin_id =
            s.admin().get("/v1/me").expect(200).body["token_id"].as_str().unwrap().to_string();
        let r = alice.delete(&format!("/v1/tenants/acme/tokens/{admin_id}"));
        assert_eq!(r.status, 404, "[{b}] provider token via a tenant: {}", r.text);
        // Nor another user's token through /v1/tokens.
        let r = olga.delete(&format!("/v1/tokens/{alice_id}"));
        assert_eq!(r.status, 404, "[{b}] someone else's own token: {}", r.text);
        alice.get("/v1/me").expect(200);
        s.admin().get("/v1/me").expect(200);
    });
}

#[test]
fn lifetimes_are_bounded_and_short_tokens_expire() {
    each_backend(|s| {
        let b = s.backend.as_str();
        let alice = setup(s);
        let before = alice.get("/v1/tenants/acme/tokens").expect(200).body;
        for (secs, status) in [
            (json!(0), 422),
            (json!(400 * 24 * 3600 + 1), 422),
            (json!(u64::MAX), 422),
            (json!(-1), 400),
            (json!(1.5), 400),
            (json!("60"), 400),
        ] {
            for path in ["/v1/tokens", "/v1/tenants/acme/tokens"] {
                let r = alice.post(path, &json!({"name": "t2", "expires_in_secs": secs}));
                assert_eq!(r.status, status, "[{b}] {path} expires_in_secs={secs}: {}", r.text);
                assert_eq!(
                    r.error().1.as_deref(),
                    Some("expires_in_secs"),
                    "[{b}] {path} expires_in_secs={secs}: field"
                );
            }
        }
        assert_eq!(
            alice.get("/v1/tenants/acme/tokens").expect(200).body,
            before,
            "[{b}] no token created"
        );
        // The longest lifetime is accepted.
        let r =
            alice.post("/v1/tokens", &json!({"name": "long", "expires_in_secs": 400 * 24 * 3600}));
        assert_eq!(r.status, 201, "[{b}] 400 days: {}", r.text);
        assert!(r.body["token"]["expires_at"].is_string(), "[{b}] expires_at set");

        let r = alice
            .post("/v1/tenants/acme/tokens", &json!({"name": "short", "expires_in_secs": 1}))
            .expect(201);
        let short = s.client(r.body["secret"].as_str().unwrap());
        let started = Instant::now();
        short.get("/v1/me").expect(200);
        std::thread::sleep(Duration::from_millis(2100).saturating_sub(started.elapsed()));
        assert_401(s, "expired token", &short.get("/v1/me"));
        assert_401(s, "expired token POST", &short.post("/v1/tokens", &json!({"name": "x"})));
    });
}

#[test]
fn last_use_is_recorded() {
    for backend in TestBackend::ALL {
        let Some(s) = TestServer::start_with(backend, |c| c.token_flush_secs = 1) else {
            continue;
        };
        let b = s.backend.as_str();
        let alice = setup(&s);
        let r = alice.post("/v1/tokens", &json!({"name": "used"})).expect(201);
        let id = r.body["token"]["id"].as_str().unwrap().to_string();
        assert!(r.body["token"]["last_used_at"].is_null(), "[{b}] never used yet");
        // Not used: stays null across flushes.
        std::thread::sleep(Duration::from_millis(1200));
        let t = alice.get(&format!("/v1/tokens/{id}")).expect(200);
        assert!(t.body["last_used_at"].is_null(), "[{b}] unused token: {}", t.text);
        let used_from = neocloud_common::time::now_micros();
        s.client(r.body["secret"].as_str().unwrap()).get("/v1/me").expect(200);
        let deadline = Instant::now() + Duration::from_secs(6);
        let last: Value = loop {
            let t = alice.get(&format!("/v1/tokens/{id}")).expect(200);
            if !t.body["last_used_at"].is_null() {
                break t.body["last_used_at"].clone();
            }
            assert!(Instant::now() < deadline, "[{b}] last_used_at never set: {}", t.text);
            std::thread::sleep(Duration::from_millis(200));
        };
        let at = neocloud_common::time::from_rfc3339(last.as_str().unwrap()).expect("rfc3339");
        assert!(
            at >= used_from - 1_000_000 && at <= neocloud_common::time::now_micros(),
            "[{b}] last_used_at {last} is the time of use"
        );
    }
}

#[test]
fn bad_credentials_are_401_with_a_bearer_challenge() {
    each_backend(|s| {
        let b = s.backend.as_str();
        setup(s);
        let anon = s.anonymous();
        assert_401(s, "no Authorization on GET", &anon.get("/v1/me"));
        assert_401(s, "no Authorization on POST", &anon.post("/v1/tenants", &json!({"name": "x"})));
        assert_401(s, "no Authorization on DELETE", &anon.delete("/v1/tenants/acme"));
        let long = format!("Bearer nc_{}", "a".repeat(300));
        let wrong = format!("Bearer nc_{}", "0".repeat(64));
        let basic = format!("Basic {}", s.admin_token);
        let token_scheme = format!("Token {}", s.admin_token);
        let bare = s.admin_token.clone();
        for h in [
            "Bearer",
            "Bearer ",
            "Bearer    ",
            wrong.as_str(),
            "Bearer nc_short",
            long.as_str(),
            basic.as_str(),
            token_scheme.as_str(),
            bare.as_str(),
            "",
        ] {
            let r = anon.raw("GET", "/v1/tenants", None, &[("Authorization", h)]);
            assert_401(s, &format!("Authorization {h:?}"), &r);
            let r =
                anon.raw("POST", "/v1/tenants", Some(br#"{"name": "x"}"#), &[("Authorization", h)]);
            assert_401(s, &format!("POST with Authorization {h:?}"), &r);
        }
        s.admin().get("/v1/tenants/x").expect(404);
        // The scheme is case-insensitive.
        let r = anon.raw(
            "GET",
            "/v1/me",
            None,
            &[("Authorization", &format!("bearer {}", s.admin_token))],
        );
        assert_eq!(r.status, 200, "[{b}] lowercase scheme: {}", r.text);
        // Authentication comes before everything else: an unknown token on
        // another tenant's object is a 401, not a 404.
        let r = s.client("nc_nope").get("/v1/tenants/nobody/projects");
        assert_401(s, "unknown token, unknown tenant", &r);
    });
}

/// Sends one GET with a raw Authorization header value (bytes).
fn raw_get(s: &TestServer, path: &str, auth: &[u8]) -> (u16, String) {
    let addr = s.url.trim_start_matches("http://");
    let mut c = TcpStream::connect(addr).expect("connect");
    c.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    let mut req = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: ")
        .into_bytes();
    req.extend_from_slice(auth);
    req.extend_from_slice(b"\r\n\r\n");
    c.write_all(&req).expect("write");
    let mut buf = Vec::new();
    let _ = c.read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf).to_string();
    let status = text.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, text)
}

/// An Authorization header with bytes outside visible ASCII is a garbled
/// credential: 401 with a challenge, like any other bad credential.
#[test]
fn non_ascii_authorization_is_401() {
    each_backend(|s| {
        let b = s.backend.as_str();
        let (status, text) = raw_get(s, "/v1/me", b"Bearer nc_\xff\xfe");
        assert_eq!(status, 401, "[{b}] non-ASCII bearer token: {text}");
        assert!(text.to_ascii_lowercase().contains("www-authenticate: bearer"), "[{b}] {text}");
    });
}
