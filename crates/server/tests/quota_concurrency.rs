//! Many concurrent claims through the API never over-commit a quota, at any
//! level of the hierarchy, on either backend.

mod common;

use common::{each_backend, Client, TestServer};
use serde_json::json;
use std::sync::{Arc, Barrier};

fn fire(s: &TestServer, token: &str, paths: Vec<String>, amount: i64) -> (usize, usize) {
    let barrier = Arc::new(Barrier::new(paths.len()));
    let handles: Vec<_> = paths
        .into_iter()
        .map(|p| {
            let c: Client = s.client(token);
            let b = barrier.clone();
            std::thread::spawn(move || {
                b.wait();
                c.post(&p, &json!({"resources": {"gpu:h100": amount}}))
            })
        })
        .collect();
    let (mut ok, mut refused) = (0, 0);
    for h in handles {
        let r = h.join().expect("client thread");
        match r.status {
            201 => ok += 1,
            409 => {
                assert_eq!(r.error().0, "quota_exceeded", "[{}] {}", s.backend.as_str(), r.text);
                refused += 1
            }
            other => panic!("[{}] unexpected {other}: {}", s.backend.as_str(), r.text),
        }
    }
    (ok, refused)
}

fn reserved(c: &Client, path: &str) -> i64 {
    let q = c.get(path).expect(200);
    q.body["resources"]["gpu:h100"]["reserved"].as_i64().unwrap_or(0)
}

#[test]
fn parallel_claims_never_overcommit() {
    each_backend(|s| {
        let b = s.backend.as_str();
        let a = s.admin();
        a.post("/v1/tenants", &json!({"name": "t"})).expect(201);
        a.put("/v1/quotas", &json!({"generation": 1, "limits": {"gpu:h100": 45}})).expect(200);
        a.put("/v1/tenants/t/quotas", &json!({"generation": 1, "limits": {"gpu:h100": 30}}))
            .expect(200);
        for p in ["p1", "p2"] {
            a.post("/v1/tenants/t/projects", &json!({"name": p})).expect(201);
        }
        a.put(
            "/v1/tenants/t/projects/p1/quotas",
            &json!({"generation": 1, "limits": {"gpu:h100": 12}}),
        )
        .expect(200);
        let tok = s.user_with_role("t", "alice", "tenant-member", None);

        // The project limit binds: 12 of 40.
        let paths = vec!["/v1/tenants/t/projects/p1/claims".to_string(); 40];
        assert_eq!(fire(s, &tok, paths, 1), (12, 28), "[{b}] project level");
        assert_eq!(reserved(&a, "/v1/tenants/t/projects/p1/quotas"), 12, "[{b}]");

        // The tenant limit binds across projects: 30 - 12 = 18 more, of 40.
        let paths = (0..40)
            .map(|i| {
                format!("/v1/tenants/t/projects/{}/claims", if i % 2 == 0 { "p2" } else { "p1" })
            })
            .collect();
        let (ok, _) = fire(s, &tok, paths, 1);
        assert_eq!(ok, 18, "[{b}] tenant level");
        let p1 = reserved(&a, "/v1/tenants/t/projects/p1/quotas");
        let p2 = reserved(&a, "/v1/tenants/t/projects/p2/quotas");
        assert_eq!(p1, 12, "[{b}] p1 was already full");
        assert_eq!(p1 + p2, 30, "[{b}]");
        assert_eq!(reserved(&a, "/v1/tenants/t/quotas"), 30, "[{b}]");

        // The provider limit binds across tenants: 45 - 30 = 15 more.
        a.post("/v1/tenants", &json!({"name": "u"})).expect(201);
        a.put("/v1/tenants/u/quotas", &json!({"generation": 1, "limits": {"gpu:h100": 100}}))
            .expect(200);
        a.post("/v1/tenants/u/projects", &json!({"name": "q"})).expect(201);
        let tok_u = s.user_with_role("u", "bob", "tenant-member", None);
        let paths = vec!["/v1/tenants/u/projects/q/claims".to_string(); 24];
        assert_eq!(fire(s, &tok_u, paths, 1), (15, 9), "[{b}] provider level");
        assert_eq!(reserved(&a, "/v1/quotas"), 45, "[{b}]");

        // Every claim is accounted for: listing matches the ledger.
        let claims = a.get("/v1/tenants/t/projects/p2/claims?state=reserved").expect(200);
        assert_eq!(claims.body["items"].as_array().unwrap().len() as i64, p2, "[{b}]");

        // Concurrent commits and releases of the same claims keep exact totals.
        let ids: Vec<String> = claims.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["id"].as_str().unwrap().to_string())
            .collect();
        let handles: Vec<_> = ids
            .iter()
            .enumerate()
            .flat_map(|(i, id)| {
                let base = format!("/v1/tenants/t/projects/p2/claims/{id}");
                let c1 = s.client(&tok);
                let c2 = s.client(&tok);
                let b1 = base.clone();
                vec![
                    std::thread::spawn(move || {
                        c1.post_empty(&format!("{b1}/commit"));
                    }),
                    std::thread::spawn(move || {
                        if i % 2 == 0 {
                            c2.delete(&base);
                        }
                    }),
                ]
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        let q = a.get("/v1/tenants/t/projects/p2/quotas").expect(200);
        let e = &q.body["resources"]["gpu:h100"];
        let live = a.get("/v1/tenants/t/projects/p2/claims?state=committed").expect(200);
        let committed = live.body["items"].as_array().unwrap().len() as i64;
        assert_eq!(e["reserved"].as_i64().unwrap(), 0, "[{b}] all commits or releases done: {e}");
        assert_eq!(e["committed"].as_i64().unwrap(), committed, "[{b}] ledger matches claims: {e}");
        let t = a.get("/v1/tenants/t/quotas").expect(200);
        let te = &t.body["resources"]["gpu:h100"];
        assert_eq!(
            te["reserved"].as_i64().unwrap() + te["committed"].as_i64().unwrap(),
            12 + committed,
            "[{b}] tenant totals: {te}"
        );
    });
}
