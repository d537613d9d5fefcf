//! Optimistic concurrency: every update carries the generation it is based
//! on; a stale one is refused with 409 generation_mismatch and changes
//! nothing, the right one bumps the generation by one, and of two concurrent
//! updates based on the same generation exactly one wins.

mod common;
use common::*;
use serde_json::{json, Value};
use std::sync::Barrier;

type GetFn = Box<dyn Fn(&Client) -> Value + Sync>;
type BodyFn = Box<dyn Fn(i64, u32) -> Value + Sync>;
type ShowsFn = Box<dyn Fn(&Value, u32) -> bool + Sync>;

/// An updatable object, seen through the API.
struct Obj {
    what: &'static str,
    method: &'static str,
    path: String,
    /// The object as a read shows it.
    get: GetFn,
    /// An update based on generation `g` setting variant `n` of a field.
    body: BodyFn,
    /// Whether the object shows variant `n`.
    shows: ShowsFn,
}

fn get_path(path: String) -> GetFn {
    Box::new(move |c: &Client| {
        let r = c.get(&path);
        assert_eq!(r.status, 200, "GET {path}: {}", r.text);
        r.body
    })
}

fn setup(s: &TestServer) -> Vec<Obj> {
    let a = s.admin();
    a.post("/v1/tenants", &json!({"name": "acme"})).expect(201);
    a.post("/v1/tenants", &json!({"name": "other"})).expect(201);
    a.post("/v1/tenants/acme/projects", &json!({"name": "web"})).expect(201);
    a.post("/v1/tenants/acme/users", &json!({"name": "bob"})).expect(201);
    a.post("/v1/users", &json!({"name": "ops", "role": "provider-viewer"})).expect(201);
    let m = a
        .post("/v1/tenants/acme/memberships", &json!({"user": "bob", "role": "tenant-viewer"}))
        .expect(201);
    let mid = m.body["id"].as_str().expect("membership id").to_string();
    // Room for project limits under the tenant's.
    let tq = a.get("/v1/tenants/acme/quotas").expect(200);
    a.put(
        "/v1/tenants/acme/quotas",
        &json!({"generation": tq.body["generation"], "limits": {"nodes": 1000}}),
    )
    .expect(200);

    let mid2 = mid.clone();
    vec![
        Obj {
            what: "tenant",
            method: "PATCH",
            path: "/v1/tenants/acme".into(),
            get: get_path("/v1/tenants/acme".into()),
            body: Box::new(|g, n| json!({"generation": g, "display_name": format!("Acme {n}")})),
            shows: Box::new(|o, n| o["display_name"] == format!("Acme {n}")),
        },
        Obj {
            what: "project",
            method: "PATCH",
            path: "/v1/tenants/acme/projects/web".into(),
            get: get_path("/v1/tenants/acme/projects/web".into()),
            body: Box::new(|g, n| json!({"generation": g, "description": format!("web {n}")})),
            shows: Box::new(|o, n| o["description"] == format!("web {n}")),
        },
        Obj {
            what: "tenant user",
            method: "PATCH",
            path: "/v1/tenants/acme/users/bob".into(),
            get: get_path("/v1/tenants/acme/users/bob".into()),
            body: Box::new(
                |g, n| json!({"generation": g, "display_name": format!("Bob {n}"), "email": format!("bob{n}@example.com")}),
            ),
            shows: Box::new(|o, n| {
                o["display_name"] == format!("Bob {n}")
                    && o["email"] == format!("bob{n}@example.com")
            }),
        },
        Obj {
            what: "provider user",
            method: "PATCH",
            path: "/v1/users/ops".into(),
            get: get_path("/v1/users/ops".into()),
            body: Box::new(|g, n| json!({"generation": g, "display_name": format!("Ops {n}")})),
            shows: Box::new(|o, n| o["display_name"] == format!("Ops {n}")),
        },
        Obj {
            what: "membership",
            method: "PATCH",
            path: format!("/v1/tenants/acme/memberships/{mid}"),
            get: Box::new(move |c: &Client| {
                let r = c.get("/v1/tenants/acme/memberships");
                assert_eq!(r.status, 200, "membership list: {}", r.text);
                r.body["items"]
                    .as_array()
                    .and_then(|v| v.iter().find(|m| m["id"] == mid2.as_str()).cloned())
                    .expect("membership listed")
            }),
            body: Box::new(|g, n| json!({"generation": g, "role": role(n)})),
            shows: Box::new(|o, n| o["role"] == role(n)),
        },
        Obj {
            what: "provider quota",
            method: "PUT",
            path: "/v1/quotas".into(),
            get: get_path("/v1/quotas".into()),
            body: Box::new(|g, n| json!({"generation": g, "limits": {"public_ips": 10 + n}})),
            shows: Box::new(|o, n| o["resources"]["public_ips"]["limit"] == 10 + n),
        },
        Obj {
            what: "tenant quota",
            method: "PUT",
            path: "/v1/tenants/acme/quotas".into(),
            get: get_path("/v1/tenants/acme/quotas".into()),
            body: Box::new(|g, n| json!({"generation": g, "limits": {"networks": 10 + n}})),
            shows: Box::new(|o, n| o["resources"]["networks"]["limit"] == 10 + n),
        },
        Obj {
            what: "project quota",
            method: "PUT",
            path: "/v1/tenants/acme/projects/web/quotas".into(),
            get: get_path("/v1/tenants/acme/projects/web/quotas".into()),
            body: Box::new(|g, n| json!({"generation": g, "limits": {"nodes": 10 + n}})),
            shows: Box::new(|o, n| o["resources"]["nodes"]["limit"] == 10 + n),
        },
    ]
}

fn role(n: u32) -> &'static str {
    if n.is_multiple_of(2) {
        "tenant-viewer"
    } else {
        "tenant-member"
    }
}

fn send(c: &Client, o: &Obj, body: &Value) -> Resp {
    c.raw(o.method, &o.path, Some(body.to_string().as_bytes()), &[])
}

fn generation(v: &Value) -> i64 {
    v["generation"].as_i64().unwrap_or_else(|| panic!("no generation in {v}"))
}

#[test]
fn stale_generations_are_refused_and_change_nothing() {
    each_backend(|s| {
        let b = s.backend.as_str();
        let a = s.admin();
        for o in setup(s) {
            let w = o.what;
            let g0 = generation(&(o.get)(&a));
            // The right generation: applied, generation + 1.
            let r = send(&a, &o, &(o.body)(g0, 1));
            assert_eq!(r.status, 200, "[{b}] {w}: update at the current generation: {}", r.text);
            assert_eq!(generation(&r.body), g0 + 1, "[{b}] {w}: generation after update");
            assert!((o.shows)(&r.body, 1), "[{b}] {w}: the answer shows the change: {}", r.text);
            let seen = (o.get)(&a);
            assert_eq!(seen, r.body, "[{b}] {w}: a read shows what the update answered");

            // Stale (the generation before) and future generations: refused.
            for (bad, n) in [(g0, 2), (g0 + 7, 3), (0, 4), (-1, 5)] {
                let r = send(&a, &o, &(o.body)(bad, n));
                assert_eq!(r.status, 409, "[{b}] {w}: generation {bad}: {}", r.text);
                assert_eq!(r.error().0, "generation_mismatch", "[{b}] {w}: generation {bad}");
                let msg = r.body["error"]["message"].as_str().unwrap_or_default();
                assert!(
                    msg.contains(&format!("current is {}", g0 + 1)),
                    "[{b}] {w}: the message names the current generation: {msg}"
                );
                assert_eq!(
                    r.body["error"]["request_id"].as_str(),
                    r.header("x-request-id"),
                    "[{b}] {w}: request id"
                );
                assert_eq!((o.get)(&a), seen, "[{b}] {w}: a refused update changed the object");
            }

            // The current generation works again.
            let r = send(&a, &o, &(o.body)(g0 + 1, 6));
            assert_eq!(r.status, 200, "[{b}] {w}: update after refusals: {}", r.text);
            assert_eq!(generation(&r.body), g0 + 2, "[{b}] {w}: generation");
            assert!((o.shows)(&(o.get)(&a), 6), "[{b}] {w}: change visible");
        }
    });
}

#[test]
fn concurrent_updates_with_one_generation_have_one_winner() {
    each_backend(|s| {
        let b = s.backend.as_str();
        let a = s.admin();
        let objs = setup(s);
        for o in &objs {
            let w = o.what;
            for round in 0..3u32 {
                let g = generation(&(o.get)(&a));
                let contenders = 3u32;
                let barrier = Barrier::new(contenders as usize);
                let results: Vec<(u32, Resp)> = std::thread::scope(|sc| {
                    let hs: Vec<_> = (0..contenders)
                        .map(|i| {
                            let (c, barrier) = (a.clone(), &barrier);
                            let n = 100 + round * 10 + i;
                            sc.spawn(move || {
                                let body = (o.body)(g, n);
                                barrier.wait();
                                (n, send(&c, o, &body))
                            })
                        })
                        .collect();
                    hs.into_iter().map(|h| h.join().expect("thread")).collect()
                });
                let winners: Vec<u32> =
                    results.iter().filter(|(_, r)| r.status == 200).map(|(n, _)| *n).collect();
                assert_eq!(
                    winners.len(),
                    1,
                    "[{b}] {w} round {round}: exactly one winner; got {:?}",
                    results.iter().map(|(_, r)| (r.status, r.text.clone())).collect::<Vec<_>>()
                );
                for (_, r) in results.iter().filter(|(_, r)| r.status != 200) {
                    assert_eq!(r.status, 409, "[{b}] {w} round {round}: loser: {}", r.text);
                    assert_eq!(r.error().0, "generation_mismatch", "[{b}] {w}: loser code");
                }
                let now = (o.get)(&a);
                assert_eq!(generation(&now), g + 1, "[{b}] {w} round {round}: one bump");
                assert!((o.shows)(&now, winners[0]), "[{b}] {w} round {round}: the winner's value");
            }
        }
    });
}

#[test]
fn updates_are_scoped_to_their_tenant() {
    each_backend(|s| {
        let b = s.backend.as_str();
        let a = s.admin();
        setup(s);
        a.post("/v1/tenants/other/users", &json!({"name": "olga"})).expect(201);
        let m = a
            .post("/v1/tenants/other/memberships", &json!({"user": "olga", "role": "tenant-admin"}))
            .expect(201);
        let id = m.body["id"].as_str().expect("id").to_string();
        // Another tenant's membership, through this tenant's path: not found,
        // whatever the generation.
        for g in [1, 2] {
            let r = a.patch(
                &format!("/v1/tenants/acme/memberships/{id}"),
                &json!({"generation": g, "role": "tenant-viewer"}),
            );
            assert_eq!(r.status, 404, "[{b}] foreign membership, generation {g}: {}", r.text);
            assert_eq!(r.error().0, "not_found", "[{b}]");
        }
        let r = a.delete(&format!("/v1/tenants/acme/memberships/{id}"));
        assert_eq!(r.status, 404, "[{b}] foreign membership delete: {}", r.text);
        let list = a.get("/v1/tenants/other/memberships").expect(200);
        let still =
            list.body["items"].as_array().and_then(|v| v.iter().find(|x| x["id"] == id.as_str()));
        let still = still.unwrap_or_else(|| panic!("[{b}] the membership must survive"));
        assert_eq!(still["role"], "tenant-admin", "[{b}] role unchanged");
        assert_eq!(still["generation"], 1, "[{b}] generation unchanged");
        // A missing object is not found, not a generation mismatch.
        let r = a.patch(
            "/v1/tenants/acme/memberships/00000000-0000-4000-8000-000000000000",
            &json!({"generation": 1, "role": "tenant-viewer"}),
        );
        assert_eq!(r.status, 404, "[{b}] missing membership: {}", r.text);
        // A user of another tenant is not reachable through this one.
        let r =
            a.patch("/v1/tenants/acme/users/olga", &json!({"generation": 1, "display_name": "x"}));
        assert_eq!(r.status, 404, "[{b}] foreign user: {}", r.text);
        let olga = a.get("/v1/tenants/other/users/olga").expect(200);
        assert_eq!(olga.body["generation"], 1, "[{b}] foreign user unchanged");
    });
}
