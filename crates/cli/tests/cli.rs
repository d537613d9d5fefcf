//! End to end: the real `neocloud` binary serves the API, and the same binary
//! is run as the client, as a user would run it.

mod common;
use common::*;
use serde_json::Value;
#[allow(unused_imports)]
use std::net::TcpListener;
#[allow(unused_imports)]
use std::process::Command;
#[allow(unused_imports)]
use std::time::Duration;

fn audit_lines(cli: &Cli, args: &[&str]) -> Vec<Value> {
    let o = cli.ok(args);
    o.stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}")))
        .collect()
}

#[test]
fn end_to_end() {
    let dir = Scratch::new("e2e");
    let server = Server::start(&dir.0);
    let cli = Cli::new(&dir.0);

    // login saves {url, token} with mode 0600.
    cli.login(&server);
    let saved: Value =
        serde_json::from_str(&std::fs::read_to_string(&cli.config).expect("config written"))
            .expect("config is JSON");
    assert_eq!(saved["url"], server.url.as_str());
    assert_eq!(saved["token"], server.admin_token().as_str());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&cli.config).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "config mode {mode:o}");
    }
    let me = cli.ok(&["me"]);
    assert!(me.stdout.contains("admin") && me.stdout.contains("provider-admin"), "{}", me.stdout);

    // Tenants: create (idempotently), list, get, update, stale update.
    let o = cli.ok(&[
        "tenant",
        "create",
        "acme",
        "--display-name",
        "Acme Corp",
        "--idempotency-key",
        "create-acme-1",
    ]);
    assert_table(&o.stdout, &["NAME", "ID", "DISPLAY NAME"], "acme");
    let again = cli.ok(&[
        "tenant",
        "create",
        "acme",
        "--display-name",
        "Acme Corp",
        "--idempotency-key",
        "create-acme-1",
        "-o",
        "json",
    ]);
    let acme = again.json();
    assert_eq!(acme["name"], "acme");
    let dup = cli.expect(6, &["tenant", "create", "acme"]);
    assert!(dup.stderr.starts_with("error: "), "{}", dup.stderr);

    let list = cli.ok(&["tenant", "list"]);
    assert_table(&list.stdout, &["NAME", "ID"], "acme");
    assert!(list.stdout.contains("Acme Corp"), "{}", list.stdout);
    let got = cli.ok(&["tenant", "get", "acme", "-o", "json"]).json();
    assert_eq!(got["id"], acme["id"]);
    assert_eq!(got["display_name"], "Acme Corp");
    assert_eq!(got["generation"], 1);
    let listed = cli.ok(&["tenant", "list", "--output", "json"]).json();
    assert!(listed["items"].as_array().unwrap().iter().any(|t| t["name"] == "acme"));
    // The output flag works before the command too.
    let listed = cli.ok(&["-o", "json", "tenant", "list"]).json();
    assert!(listed["items"].as_array().unwrap().iter().any(|t| t["name"] == "acme"));

    let upd = cli
        .ok(&[
            "tenant",
            "update",
            "acme",
            "--generation",
            "1",
            "--description",
            "GPUs",
            "-o",
            "json",
        ])
        .json();
    assert_eq!(upd["description"], "GPUs");
    assert_eq!(upd["generation"], 2);
    let stale =
        cli.expect(6, &["tenant", "update", "acme", "--generation", "1", "--description", "x"]);
    assert!(stale.stderr.starts_with("error: "), "{}", stale.stderr);
    assert!(stale.stderr.contains("generation"), "{}", stale.stderr);
    assert!(stale.stderr.contains("request id: "), "{}", stale.stderr);
    assert!(stale.stdout.is_empty(), "{}", stale.stdout);

    let missing = cli.expect(5, &["tenant", "get", "no-such-tenant"]);
    assert!(missing.stderr.contains("not found"), "{}", missing.stderr);

    // Projects, users, memberships, tokens.
    let o = cli.ok(&["project", "create", "ml", "--tenant", "acme", "--description", "ML team"]);
    assert_table(&o.stdout, &["NAME", "ID"], "ml");
    assert_table(&cli.ok(&["project", "list", "--tenant", "acme"]).stdout, &["NAME"], "ml");
    let ml = cli.ok(&["project", "get", "ml", "--tenant", "acme", "-o", "json"]).json();
    assert_eq!(ml["tenant_id"], acme["id"]);

    let o = cli.ok(&[
        "user",
        "create",
        "alice",
        "--tenant",
        "acme",
        "--email",
        "alice@example.com",
        "--role",
        "tenant-member",
    ]);
    assert_table(&o.stdout, &["NAME", "ID"], "alice");
    let users = cli.ok(&["user", "list", "--tenant", "acme"]);
    assert_table(&users.stdout, &["NAME", "ID"], "alice");
    assert!(users.stdout.contains("alice@example.com"), "{}", users.stdout);
    // Without --tenant: provider users.
    assert_table(&cli.ok(&["user", "list"]).stdout, &["NAME"], "admin");
    let alice = cli.ok(&["user", "get", "alice", "--tenant", "acme", "-o", "json"]).json();
    assert_eq!(alice["email"], "alice@example.com");

    let m = cli
        .ok(&[
            "membership",
            "create",
            "--tenant",
            "acme",
            "--user",
            "alice",
            "--role",
            "tenant-admin",
            "--project",
            "ml",
            "-o",
            "json",
        ])
        .json();
    assert_eq!(m["user_id"], alice["id"]);
    assert_eq!(m["project_id"], ml["id"]);
    let mid = m["id"].as_str().unwrap().to_string();
    let ms = cli.ok(&["membership", "list", "--tenant", "acme"]);
    assert_table(&ms.stdout, &["ID", "USER ID", "ROLE"], &mid);
    let m2 = cli
        .ok(&[
            "membership",
            "update",
            &mid,
            "--tenant",
            "acme",
            "--role",
            "tenant-viewer",
            "--generation",
            "1",
            "-o",
            "json",
        ])
        .json();
    assert_eq!(m2["role"], "tenant-viewer");

    let tok = cli
        .ok(&[
            "token",
            "create",
            "ci",
            "--tenant",
            "acme",
            "--user",
            "alice",
            "--expires-in",
            "30d",
            "-o",
            "json",
        ])
        .json();
    let secret = tok["secret"].as_str().expect("secret").to_string();
    assert_eq!(tok["token"]["name"], "ci");
    assert!(tok["token"]["expires_at"].is_string());
    let table = cli.ok(&["token", "create", "ci-2", "--tenant", "acme", "--user", "alice"]);
    assert!(table.stdout.contains("secret: "), "{}", table.stdout);
    let tid = tok["token"]["id"].as_str().unwrap();
    assert_table(&cli.ok(&["token", "list", "--tenant", "acme"]).stdout, &["ID", "NAME"], tid);
    let toks = cli.ok(&["token", "list", "--tenant", "acme", "-o", "json"]).json();
    assert_eq!(toks["items"].as_array().unwrap().len(), 2);

    // The new token, from --token and from NEOCLOUD_TOKEN, overrides the login.
    let as_alice = cli.ok(&["me", "--token", &secret]);
    assert!(as_alice.stdout.contains("alice"), "{}", as_alice.stdout);
    let mut c = cli.cmd(&["me", "-o", "json"]);
    c.env("NEOCLOUD_TOKEN", &secret);
    let o = Cli::run_cmd(c, "me (NEOCLOUD_TOKEN)");
    assert_eq!(o.code, 0, "{o:?}");
    assert_eq!(o.json()["user"]["name"], "alice");

    let revoked = cli.ok(&["token", "revoke", tid, "--tenant", "acme", "-o", "json"]).json();
    assert!(revoked["revoked_at"].is_string());
    cli.expect(3, &["me", "--token", &secret]);

    // Quotas and claims.
    let q = cli.ok(&["quota", "get", "--tenant", "acme", "-o", "json"]).json();
    let generation = q["generation"].to_string();
    let o = cli.ok(&[
        "quota",
        "set",
        "nodes=10",
        "gpu:h100-80gb=8",
        "--generation",
        &generation,
        "--tenant",
        "acme",
    ]);
    assert_table(
        o.stdout.split("\n\n").nth(1).unwrap_or(""),
        &["RESOURCE", "LIMIT"],
        "gpu:h100-80gb",
    );
    let q = cli.ok(&["quota", "get", "--tenant", "acme", "-o", "json"]).json();
    assert_eq!(q["resources"]["nodes"]["limit"], 10);
    cli.expect(6, &["quota", "set", "nodes=1", "--generation", &generation, "--tenant", "acme"]);

    let pq = cli.ok(&["quota", "get", "--tenant", "acme", "--project", "ml", "-o", "json"]).json();
    let pq = cli
        .ok(&[
            "quota",
            "set",
            "nodes=4",
            "--generation",
            &pq["generation"].to_string(),
            "--tenant",
            "acme",
            "--project",
            "ml",
            "-o",
            "json",
        ])
        .json();
    assert_eq!(pq["resources"]["nodes"]["limit"], 4);
    let pq = cli
        .ok(&[
            "quota",
            "set",
            "nodes=none",
            "--generation",
            &pq["generation"].to_string(),
            "--tenant",
            "acme",
            "--project",
            "ml",
            "-o",
            "json",
        ])
        .json();
    assert!(pq["resources"]["nodes"]["limit"].is_null(), "{pq}");
    cli.ok(&["quota", "get"]);

    let claim = cli
        .ok(&[
            "claim",
            "create",
            "nodes=2",
            "gpu:h100-80gb=4",
            "--tenant",
            "acme",
            "--project",
            "ml",
            "--description",
            "job 1",
            "-o",
            "json",
        ])
        .json();
    assert_eq!(claim["state"], "reserved");
    assert_eq!(claim["resources"]["gpu:h100-80gb"], 4);
    let cid = claim["id"].as_str().unwrap();
    let over = cli
        .expect(6, &["claim", "create", "gpu:h100-80gb=5", "--tenant", "acme", "--project", "ml"]);
    assert!(over.stderr.contains("quota"), "{}", over.stderr);
    let o = cli.ok(&["claim", "list", "--tenant", "acme", "--project", "ml"]);
    assert_table(&o.stdout, &["ID", "STATE", "RESOURCES"], cid);
    let committed = cli
        .ok(&["claim", "commit", cid, "--tenant", "acme", "--project", "ml", "-o", "json"])
        .json();
    assert_eq!(committed["state"], "committed");
    let got =
        cli.ok(&["claim", "get", cid, "--tenant", "acme", "--project", "ml", "-o", "json"]).json();
    assert_eq!(got["state"], "committed");
    let released = cli
        .ok(&["claim", "release", cid, "--tenant", "acme", "--project", "ml", "-o", "json"])
        .json();
    assert_eq!(released["state"], "released");

    // Audit: export is JSON lines; a mutation adds one.
    let before = audit_lines(&cli, &["audit", "export", "--tenant", "acme"]);
    assert!(!before.is_empty());
    for (i, e) in before.iter().enumerate() {
        assert_eq!(e["seq"], i as i64 + 1, "{e}");
    }
    cli.ok(&[
        "project",
        "update",
        "ml",
        "--tenant",
        "acme",
        "--generation",
        "1",
        "--description",
        "x",
    ]);
    let after = audit_lines(&cli, &["audit", "export", "--tenant", "acme"]);
    assert!(after.len() > before.len(), "{} -> {}", before.len(), after.len());
    assert_eq!(after.last().unwrap()["action"], "project_update");
    let all = audit_lines(&cli, &["audit", "export"]);
    assert!(all.len() > after.len());
    let o = cli.ok(&["audit", "list", "--tenant", "acme", "--limit", "2"]);
    assert_table(&o.stdout, &["SEQ", "TIME"], "1");
    assert_eq!(o.stdout.lines().count(), 3, "{}", o.stdout);
    let page = cli.ok(&["audit", "list", "--limit", "5", "-o", "json"]).json();
    assert_eq!(page["items"].as_array().unwrap().len(), 5);

    // Deletes, then the trail still verifies, read straight from the store.
    let o = cli.ok(&["membership", "delete", &mid, "--tenant", "acme"]);
    assert!(o.stdout.contains("deleted"), "{}", o.stdout);
    cli.ok(&["user", "delete", "alice", "--tenant", "acme"]);
    cli.ok(&["project", "delete", "ml", "--tenant", "acme"]);
    let o = cli.ok(&["tenant", "delete", "acme", "-o", "json"]);
    assert!(o.stdout.is_empty(), "{}", o.stdout);
    cli.expect(5, &["tenant", "get", "acme"]);
    let db = format!("sqlite://{}", server.data_dir.join("neocloud.db").display());
    let v = cli.ok(&["audit", "verify", "--db", &db]);
    assert!(v.stdout.starts_with("ok:"), "{}", v.stdout);

    // Someone with write access to the database file rewrites history: the
    // triggers go, one outcome is edited, another event is deleted.
    let store = neocloud_store::Store::open(&db).expect("open store");
    store
        .write(|w| {
            w.execute_batch(
                "DROP TRIGGER audit_events_no_update; DROP TRIGGER audit_events_no_delete; \
                 UPDATE audit_events SET outcome = 'success' WHERE seq = 2 AND chain <> 'provider'",
            )?;
            Ok(())
        })
        .expect("tamper");
    drop(store);
    let o = cli.expect(10, &["audit", "verify", "--db", &db]);
    assert!(o.stdout.contains("TAMPERED"), "{}", o.stdout);
    let edited = o.stdout.lines().filter(|l| l.starts_with("TAMPERED")).count();
    assert!(edited >= 1, "{}", o.stdout);
    let store = neocloud_store::Store::open(&db).expect("open store");
    store
        .write(|w| {
            w.execute_batch("DELETE FROM audit_events WHERE seq = 1 AND chain = 'provider'")?;
            Ok(())
        })
        .expect("tamper");
    drop(store);
    let o = cli.expect(10, &["audit", "verify", "--db", &db]);
    let problems = o.stdout.lines().filter(|l| l.starts_with("TAMPERED")).count();
    assert!(problems > edited, "the deletion adds a problem: {}", o.stdout);
    assert!(o.stdout.contains("provider"), "{}", o.stdout);
}

#[test]
fn exit_codes() {
    let dir = Scratch::new("exit");
    let server = Server::start(&dir.0);
    let cli = Cli::new(&dir.0);

    // Not logged in yet.
    let o = cli.expect(3, &["tenant", "list"]);
    assert!(o.stderr.contains("login"), "{}", o.stderr);
    // Explicit URL and token work without a login.
    let token = server.admin_token();
    cli.ok(&["tenant", "list", "--url", &server.url, "--token", &token]);
    cli.ok(&["--url", &server.url, "--token", &token, "tenant", "list"]);
    let mut c = cli.cmd(&["tenant", "list"]);
    c.env("NEOCLOUD_URL", &server.url).env("NEOCLOUD_TOKEN", &token);
    let o = Cli::run_cmd(c, "tenant list (environment)");
    assert_eq!(o.code, 0, "{o:?}");

    // A bad token is refused and not saved.
    let o = cli.expect(3, &["login", "--url", &server.url, "--token", "nc_wrong"]);
    assert!(o.stderr.starts_with("error: "), "{}", o.stderr);
    assert!(!cli.config.exists());
    cli.login(&server);
    let o = cli.expect(3, &["tenant", "list", "--token", "nc_wrong"]);
    assert!(o.stderr.contains("request id: "), "{}", o.stderr);
    cli.expect(3, &["--token", "nc_wrong", "tenant", "list"]);

    // Usage errors.
    cli.expect(2, &["tenant", "list", "--bogus"]);
    cli.expect(2, &["tenant", "create", "Not_A_Name"]);
    cli.expect(2, &["tenant", "list", "-o", "yaml"]);
    cli.expect(2, &["project", "list"]);
    cli.expect(2, &["quota", "set", "nodes", "--generation", "1"]);
    cli.expect(2, &["quota", "get", "--project", "p"]);
    cli.expect(2, &["membership", "create", "--tenant", "t", "--user", "u", "--role", "boss"]);
    cli.expect(2, &["token", "create", "x", "--expires-in", "whenever"]);
    cli.expect(2, &["tenant", "list", "--url", "not-a-url"]);

    // Invalid values the server refuses: 7.
    let o = cli.expect(7, &["quota", "set", "bogus=1", "--generation", "1"]);
    assert!(o.stderr.contains("field: limits.bogus"), "{}", o.stderr);

    // Nobody listening: 9.
    let closed = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let o = cli.expect(9, &["tenant", "list", "--url", &format!("http://127.0.0.1:{closed}")]);
    assert!(o.stderr.starts_with("error: "), "{}", o.stderr);

    // Help is not an error.
    let o = cli.ok(&["tenant", "--help"]);
    assert!(o.stdout.contains("update"), "{}", o.stdout);
}

/// Export pages through more events than one page holds (1000).
#[test]
fn audit_export_pages() {
    let dir = Scratch::new("audit");
    let server = Server::start(&dir.0);
    let cli = Cli::new(&dir.0);
    cli.login(&server);
    cli.ok(&["tenant", "create", "big"]);
    // Refused updates are audited too and change nothing: a cheap way to
    // fill the chain.
    let agent = ureq::AgentBuilder::new().timeout(Duration::from_secs(30)).build();
    let auth = format!("Bearer {}", server.admin_token());
    for _ in 0..1005 {
        let r = agent
            .patch(&format!("{}/v1/tenants/big", server.url))
            .set("Authorization", &auth)
            .send_json(serde_json::json!({"generation": 999}));
        assert!(matches!(r, Err(ureq::Error::Status(409, _))));
    }
    let lines = audit_lines(&cli, &["audit", "export", "--tenant", "big"]);
    assert_eq!(lines.len(), 1005);
    for (i, e) in lines.iter().enumerate() {
        assert_eq!(e["seq"], i as i64 + 1);
    }
    let all = audit_lines(&cli, &["audit", "export"]);
    assert_eq!(all.len(), 1006); // + tenant.create on the provider chain
    let mut ids: Vec<&str> = all.iter().map(|e| e["id"].as_str().unwrap()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 1006);
    let o = cli.ok(&["audit", "list", "--tenant", "big", "--limit", "3", "--after", "1000"]);
    assert_table(&o.stdout, &["SEQ"], "1001");
}

#[test]
fn bench_api_runs_and_reports_every_phase() {
    let out = Command::new(env!("CARGO_BIN_EXE_neocloud"))
        .args([
            "bench",
            "api",
            "--duration",
            "1s",
            "--write-rate",
            "40",
            "--read-rate",
            "40",
            "--workers",
            "4",
        ])
        .args(["--concurrency", "2", "--json"])
        .output()
        .expect("run bench");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).expect("bench prints JSON");
    let phases = v["phases"].as_array().expect("phases");
    assert_eq!(phases.len(), 4, "{v}");
    for p in phases {
        assert!(p["requests"].as_u64().unwrap() > 0, "{p}");
        assert_eq!(p["errors"], 0, "{p}");
        let (p50, p99) = (p["p50_ms"].as_f64().unwrap(), p["p99_ms"].as_f64().unwrap());
        assert!(p50 > 0.0 && p50 <= p99, "{p}");
    }
    // Open-loop phases keep their schedule: 40/s for 1 s is 40 requests.
    assert_eq!(phases[0]["requests"], 40, "{v}");
}
