//! Integration tests of the store: tenancy and identity CRUD, transactional
//! rollback, tokens, idempotency records. Every test runs on SQLite and on
//! PostgreSQL (see `common::each_backend`).

mod common;

use common::*;
use neocloud_authz::{Grant, GrantScope, Role};
use neocloud_common::{time::now_micros, Error, NameOrId};
use neocloud_store::{
    idempotency, memberships, meta, projects, quotas, tenants, tokens, users, vals, DbError,
};
use neocloud_types::{
    ProjectCreate, ProjectUpdate, TenantCreate, TenantUpdate, UserCreate, UserUpdate,
};

fn by_name(n: &str) -> NameOrId {
    NameOrId::Name(name(n))
}

fn by_id(id: &str) -> NameOrId {
    NameOrId::Id(id.to_string())
}

#[test]
fn tenant_crud() {
    each_backend(|store, b| {
        let p = TenantCreate {
            name: name("acme"),
            display_name: Some("Acme Corp".into()),
            description: Some("rockets".into()),
        };
        let acme = store.write(|w| tenants::create(w, &p)).unwrap();
        assert_eq!(acme.name, "acme", "{b}");
        assert_eq!(acme.display_name, "Acme Corp", "{b}");
        assert_eq!(acme.description, "rockets", "{b}");
        assert!(!acme.suspended, "{b}");
        assert_eq!(acme.generation, 1, "{b}");
        assert_eq!(acme.created_at, acme.updated_at, "{b}");
        // Defaults: display name is the name, description empty.
        let globex = tenant(store, "globex");
        assert_eq!(globex.display_name, "globex", "{b}");
        assert_eq!(globex.description, "", "{b}");
        // A tenant gets its quota scope.
        assert_eq!(quota(store, &acme.id).scope, "tenant", "{b}");

        // Get, lookup by id and by name, list ordered by name.
        assert_eq!(store.read(|r| tenants::get(r, &acme.id)).unwrap(), acme, "{b}");
        assert_eq!(
            store.read(|r| tenants::lookup(r, &by_name("acme"))).unwrap(),
            Some(acme.clone()),
            "{b}"
        );
        assert_eq!(
            store.read(|r| tenants::lookup(r, &by_id(&acme.id))).unwrap(),
            Some(acme.clone()),
            "{b}"
        );
        assert_eq!(store.read(|r| tenants::lookup(r, &by_name("nobody"))).unwrap(), None, "{b}");
        let missing = neocloud_common::new_id();
        assert_eq!(store.read(|r| tenants::lookup(r, &by_id(&missing))).unwrap(), None, "{b}");
        assert_eq!(
            store.read(|r| tenants::get(r, &missing)).unwrap_err(),
            Error::not_found("tenant", &missing),
            "{b}"
        );
        let names: Vec<_> =
            store.read(tenants::list).unwrap().into_iter().map(|t| t.name).collect();
        assert_eq!(names, ["acme", "globex"], "{b}");

        // Update with the right generation: bumped, updated_at moves,
        // unspecified fields unchanged.
        tick();
        let up = TenantUpdate {
            generation: 1,
            display_name: Some("ACME".into()),
            description: None,
            suspended: None,
        };
        let acme2 = store.write(|w| tenants::update(w, &acme.id, &up)).unwrap();
        assert_eq!(acme2.generation, 2, "{b}");
        assert_eq!(acme2.display_name, "ACME", "{b}");
        assert_eq!(acme2.description, "rockets", "{b}");
        assert!(!acme2.suspended, "{b}");
        assert_eq!(acme2.created_at, acme.created_at, "{b}");
        assert!(micros(&acme2.updated_at) > micros(&acme.updated_at), "{b}: updated_at must move");

        // A stale generation is refused and changes nothing.
        let stale = TenantUpdate {
            generation: 1,
            display_name: Some("stale".into()),
            description: Some("stale".into()),
            suspended: Some(true),
        };
        assert_eq!(
            store.write(|w| tenants::update(w, &acme.id, &stale)).unwrap_err(),
            Error::GenerationMismatch { kind: "tenant", expected: 1, current: 2 },
            "{b}"
        );
        assert_eq!(store.read(|r| tenants::get(r, &acme.id)).unwrap(), acme2, "{b}");

        let susp = TenantUpdate {
            generation: 2,
            display_name: None,
            description: None,
            suspended: Some(true),
        };
        let acme3 = store.write(|w| tenants::update(w, &acme.id, &susp)).unwrap();
        assert!(acme3.suspended, "{b}");
        assert_eq!(acme3.generation, 3, "{b}");
        assert_eq!(acme3.display_name, "ACME", "{b}");
        assert_eq!(
            store.write(|w| tenants::update(w, &missing, &susp)).unwrap_err(),
            Error::not_found("tenant", &missing),
            "{b}"
        );

        // Duplicate name: AlreadyExists, and neither a row nor a quota scope written.
        let scopes = count(store, "quota_scopes", &[]);
        let dup = TenantCreate { name: name("acme"), display_name: None, description: None };
        assert_eq!(
            store.write(|w| tenants::create(w, &dup)).unwrap_err(),
            Error::AlreadyExists { kind: "tenant", field: "name".into(), value: "acme".into() },
            "{b}"
        );
        assert_eq!(count(store, "tenants", &[]), 2, "{b}");
        assert_eq!(count(store, "quota_scopes", &[]), scopes, "{b}");
        assert_eq!(store.read(|r| tenants::get(r, &acme.id)).unwrap(), acme3, "{b}");

        // A tenant with a project cannot be deleted; nothing is removed.
        let web = project(store, &acme.id, "web");
        assert!(
            matches!(store.write(|w| tenants::delete(w, &acme.id)), Err(Error::Conflict { .. })),
            "{b}"
        );
        assert!(store.read(|r| tenants::get(r, &acme.id)).is_ok(), "{b}");
        assert!(store.read(|r| projects::get(r, &acme.id, &web.id)).is_ok(), "{b}");
        assert_eq!(quota(store, &acme.id).scope, "tenant", "{b}");

        // Delete an empty tenant: its row and quota scope go.
        set_limits(store, &globex.id, &[(gpu(), Some(3))]).unwrap();
        store.write(|w| tenants::delete(w, &globex.id)).unwrap();
        assert_eq!(
            store.read(|r| tenants::get(r, &globex.id)).unwrap_err(),
            Error::not_found("tenant", &globex.id),
            "{b}"
        );
        assert_eq!(
            store.read(|r| quotas::get(r, &globex.id)).unwrap_err(),
            Error::not_found("quota", &globex.id),
            "{b}"
        );
        assert_eq!(count(store, "quota_usage WHERE scope_id = ?", vals![&globex.id]), 0, "{b}");
        assert_eq!(
            store.write(|w| tenants::delete(w, &globex.id)).unwrap_err(),
            Error::not_found("tenant", &globex.id),
            "{b}"
        );
        // The name is free again.
        tenant(store, "globex");
    });
}

#[test]
fn project_crud() {
    each_backend(|store, b| {
        let acme = tenant(store, "acme");
        let other = tenant(store, "other");
        let p = ProjectCreate { name: name("web"), description: Some("front end".into()) };
        let web = store.write(|w| projects::create(w, &acme.id, &p)).unwrap();
        assert_eq!((web.tenant_id.as_str(), web.name.as_str()), (acme.id.as_str(), "web"), "{b}");
        assert_eq!(web.description, "front end", "{b}");
        assert_eq!(web.generation, 1, "{b}");
        assert_eq!(quota(store, &web.id).scope, "project", "{b}");
        let api = project(store, &acme.id, "api");

        // Names are unique per tenant, not globally.
        let other_web = project(store, &other.id, "web");
        assert_ne!(other_web.id, web.id, "{b}");
        let scopes = count(store, "quota_scopes", &[]);
        assert_eq!(
            store.write(|w| projects::create(w, &acme.id, &p)).unwrap_err(),
            Error::AlreadyExists { kind: "project", field: "name".into(), value: "web".into() },
            "{b}"
        );
        assert_eq!(count(store, "projects WHERE tenant_id = ?", vals![&acme.id]), 2, "{b}");
        assert_eq!(count(store, "quota_scopes", &[]), scopes, "{b}");

        // Lookup by name and id, scoped to the tenant.
        assert_eq!(
            store.read(|r| projects::lookup(r, &acme.id, &by_name("web"))).unwrap(),
            Some(web.clone()),
            "{b}"
        );
        assert_eq!(
            store.read(|r| projects::lookup(r, &acme.id, &by_id(&web.id))).unwrap(),
            Some(web.clone()),
            "{b}"
        );
        assert_eq!(
            store.read(|r| projects::lookup(r, &other.id, &by_id(&web.id))).unwrap(),
            None,
            "{b}: a project is not visible through another tenant"
        );
        assert_eq!(
            store.read(|r| projects::get(r, &other.id, &web.id)).unwrap_err(),
            Error::not_found("project", &web.id),
            "{b}"
        );
        let list: Vec<_> = store.read(|r| projects::list(r, &acme.id)).unwrap();
        assert_eq!(list, [api.clone(), web.clone()], "{b}: listed by name");

        // Update.
        tick();
        let up = ProjectUpdate { generation: 1, description: Some("new".into()) };
        let web2 = store.write(|w| projects::update(w, &acme.id, &web.id, &up)).unwrap();
        assert_eq!((web2.generation, web2.description.as_str()), (2, "new"), "{b}");
        assert_eq!(web2.created_at, web.created_at, "{b}");
        assert!(micros(&web2.updated_at) > micros(&web.updated_at), "{b}");
        let stale = ProjectUpdate { generation: 1, description: Some("stale".into()) };
        assert_eq!(
            store.write(|w| projects::update(w, &acme.id, &web.id, &stale)).unwrap_err(),
            Error::GenerationMismatch { kind: "project", expected: 1, current: 2 },
            "{b}"
        );
        assert_eq!(store.read(|r| projects::get(r, &acme.id, &web.id)).unwrap(), web2, "{b}");
        // Through the wrong tenant the project does not exist, whatever
        // the generation: neither changed nor revealed.
        let cur = ProjectUpdate { generation: 2, description: Some("hijack".into()) };
        assert_eq!(
            store.write(|w| projects::update(w, &other.id, &web.id, &cur)).unwrap_err(),
            Error::not_found("project", &web.id),
            "{b}"
        );
        assert_eq!(store.read(|r| projects::get(r, &acme.id, &web.id)).unwrap(), web2, "{b}");

        // Delete through the wrong tenant: not found, nothing removed.
        assert_eq!(
            store.write(|w| projects::delete(w, &other.id, &web.id)).unwrap_err(),
            Error::not_found("project", &web.id),
            "{b}"
        );
        assert!(store.read(|r| projects::get(r, &acme.id, &web.id)).is_ok(), "{b}");
        assert_eq!(quota(store, &web.id).scope, "project", "{b}");

        // A project holding quota cannot be deleted until released.
        set_limits(store, &acme.id, &[(gpu(), Some(4))]).unwrap();
        let claim = store
            .write(|w| quotas::create_claim(w, &acme.id, &web.id, &[(gpu(), 1)], "vm"))
            .unwrap();
        assert!(
            matches!(
                store.write(|w| projects::delete(w, &acme.id, &web.id)),
                Err(Error::Conflict { .. })
            ),
            "{b}"
        );
        assert_eq!(entry(store, &web.id, GPU).reserved, 1, "{b}");
        store.write(|w| quotas::release_claim(w, &acme.id, &web.id, &claim.id)).unwrap();
        store.write(|w| projects::delete(w, &acme.id, &web.id)).unwrap();
        assert_eq!(
            store.read(|r| projects::get(r, &acme.id, &web.id)).unwrap_err(),
            Error::not_found("project", &web.id),
            "{b}"
        );
        assert_eq!(count(store, "quota_claims WHERE project_id = ?", vals![&web.id]), 0, "{b}");
        assert_eq!(count(store, "quota_scopes WHERE id = ?", vals![&web.id]), 0, "{b}");
        assert_eq!(
            store.write(|w| projects::delete(w, &acme.id, &web.id)).unwrap_err(),
            Error::not_found("project", &web.id),
            "{b}"
        );
        // The other tenant's "web" is untouched.
        assert!(store.read(|r| projects::get(r, &other.id, &other_web.id)).is_ok(), "{b}");
    });
}

fn user_create(n: &str, role: Option<Role>) -> UserCreate {
    UserCreate { name: name(n), display_name: None, email: Some(format!("{n}@example.com")), role }
}

#[test]
fn user_crud() {
    each_backend(|store, b| {
        let acme = tenant(store, "acme");
        let other = tenant(store, "other");
        let alice = store
            .write(|w| {
                users::create(w, Some(&acme.id), &user_create("alice", Some(Role::TenantAdmin)))
            })
            .unwrap();
        assert_eq!(alice.tenant_id.as_deref(), Some(acme.id.as_str()), "{b}");
        assert_eq!((alice.name.as_str(), alice.display_name.as_str()), ("alice", "alice"), "{b}");
        assert_eq!(alice.email, "alice@example.com", "{b}");
        assert_eq!(alice.generation, 1, "{b}");
        // The role became a tenant-wide membership.
        assert_eq!(
            store.read(|r| memberships::grants_for_user(r, &alice.id)).unwrap(),
            [Grant {
                role: Role::TenantAdmin,
                scope: GrantScope::Tenant { tenant_id: acme.id.clone() }
            }],
            "{b}"
        );
        let bob =
            store.write(|w| users::create(w, Some(&acme.id), &user_create("bob", None))).unwrap();
        assert!(
            store.read(|r| memberships::grants_for_user(r, &bob.id)).unwrap().is_empty(),
            "{b}"
        );
        // The same name in another tenant and among provider users.
        let alice_other = store
            .write(|w| users::create(w, Some(&other.id), &user_create("alice", None)))
            .unwrap();
        let root = store
            .write(|w| users::create(w, None, &user_create("alice", Some(Role::ProviderAdmin))))
            .unwrap();
        assert_eq!(root.tenant_id, None, "{b}");
        assert_eq!(
            store.read(|r| memberships::grants_for_user(r, &root.id)).unwrap(),
            [Grant { role: Role::ProviderAdmin, scope: GrantScope::Provider }],
            "{b}"
        );

        // Lookups are scoped.
        let l = |t: Option<&str>, k: NameOrId| store.read(|r| users::lookup(r, t, &k)).unwrap();
        assert_eq!(l(Some(&acme.id), by_name("alice")), Some(alice.clone()), "{b}");
        assert_eq!(l(Some(&acme.id), by_id(&alice.id)), Some(alice.clone()), "{b}");
        assert_eq!(l(Some(&other.id), by_name("alice")), Some(alice_other.clone()), "{b}");
        assert_eq!(l(None, by_name("alice")), Some(root.clone()), "{b}");
        assert_eq!(l(Some(&other.id), by_id(&alice.id)), None, "{b}");
        assert_eq!(l(None, by_id(&alice.id)), None, "{b}");
        assert_eq!(store.read(|r| users::get_any(r, &alice.id)).unwrap(), alice, "{b}");
        let missing = neocloud_common::new_id();
        assert_eq!(
            store.read(|r| users::get_any(r, &missing)).unwrap_err(),
            Error::not_found("user", &missing),
            "{b}"
        );
        let names = |t: Option<&str>| -> Vec<String> {
            store.read(|r| users::list(r, t)).unwrap().into_iter().map(|u| u.name).collect()
        };
        assert_eq!(names(Some(&acme.id)), ["alice", "bob"], "{b}");
        assert_eq!(names(Some(&other.id)), ["alice"], "{b}");
        assert_eq!(names(None), ["alice"], "{b}");

        // Duplicates: AlreadyExists, and no user or membership written.
        let (nu, nm) = (count(store, "users", &[]), count(store, "memberships", &[]));
        assert_eq!(
            store
                .write(|w| users::create(
                    w,
                    Some(&acme.id),
                    &user_create("bob", Some(Role::TenantViewer))
                ))
                .unwrap_err(),
            Error::AlreadyExists { kind: "user", field: "name".into(), value: "bob".into() },
            "{b}"
        );
        // A role that does not fit the scope fails after the user row was
        // inserted: the whole write must roll back.
        assert!(
            matches!(
                store.write(|w| users::create(
                    w,
                    None,
                    &user_create("carol", Some(Role::TenantAdmin))
                )),
                Err(Error::InvalidValue(_))
            ),
            "{b}"
        );
        assert_eq!(l(None, by_name("carol")), None, "{b}");
        assert_eq!((count(store, "users", &[]), count(store, "memberships", &[])), (nu, nm), "{b}");

        // Update.
        tick();
        let up = UserUpdate { generation: 1, display_name: Some("Alice A.".into()), email: None };
        let alice2 = store.write(|w| users::update(w, Some(&acme.id), &alice.id, &up)).unwrap();
        assert_eq!((alice2.generation, alice2.display_name.as_str()), (2, "Alice A."), "{b}");
        assert_eq!(alice2.email, "alice@example.com", "{b}");
        assert!(micros(&alice2.updated_at) > micros(&alice.updated_at), "{b}");
        assert_eq!(
            store.write(|w| users::update(w, Some(&acme.id), &alice.id, &up)).unwrap_err(),
            Error::GenerationMismatch { kind: "user", expected: 1, current: 2 },
            "{b}"
        );
        assert_eq!(store.read(|r| users::get_any(r, &alice.id)).unwrap(), alice2, "{b}");
        // Through another scope the user does not exist.
        let cur = UserUpdate { generation: 2, display_name: Some("x".into()), email: None };
        for scope in [Some(other.id.as_str()), None] {
            assert_eq!(
                store.write(|w| users::update(w, scope, &alice.id, &cur)).unwrap_err(),
                Error::not_found("user", &alice.id),
                "{b}: update through scope {scope:?}"
            );
            assert_eq!(
                store.write(|w| users::delete(w, scope, &alice.id)).unwrap_err(),
                Error::not_found("user", &alice.id),
                "{b}: delete through scope {scope:?}"
            );
        }
        assert_eq!(store.read(|r| users::get_any(r, &alice.id)).unwrap(), alice2, "{b}");
        assert_eq!(count(store, "memberships WHERE user_id = ?", vals![&alice.id]), 1, "{b}");

        // Delete takes memberships and tokens along.
        let tok = tokens::NewToken {
            user_id: &alice.id,
            tenant_id: Some(&acme.id),
            name: "ci",
            secret_hash: "hash-alice",
            prefix: "nc_alic",
            expires_at: None,
        };
        store.write(|w| tokens::create(w, &tok)).unwrap();
        store.write(|w| users::delete(w, Some(&acme.id), &alice.id)).unwrap();
        assert_eq!(l(Some(&acme.id), by_id(&alice.id)), None, "{b}");
        assert_eq!(count(store, "memberships WHERE user_id = ?", vals![&alice.id]), 0, "{b}");
        assert_eq!(count(store, "api_tokens WHERE user_id = ?", vals![&alice.id]), 0, "{b}");
        assert_eq!(
            store.read(|r| tokens::authenticate(r, "hash-alice", now_micros())).unwrap(),
            None,
            "{b}"
        );
        assert_eq!(
            store.write(|w| users::delete(w, Some(&acme.id), &alice.id)).unwrap_err(),
            Error::not_found("user", &alice.id),
            "{b}"
        );

        // The last provider admin cannot be deleted; once there is another, it can.
        assert!(
            matches!(
                store.write(|w| users::delete(w, None, &root.id)),
                Err(Error::Conflict { .. })
            ),
            "{b}"
        );
        assert!(store.read(|r| users::get_any(r, &root.id)).is_ok(), "{b}");
        let viewer = store
            .write(|w| users::create(w, None, &user_create("viewer", Some(Role::ProviderViewer))))
            .unwrap();
        assert!(
            matches!(
                store.write(|w| users::delete(w, None, &root.id)),
                Err(Error::Conflict { .. })
            ),
            "{b}: a provider-viewer does not count as an admin"
        );
        let root2 = store
            .write(|w| users::create(w, None, &user_create("root2", Some(Role::ProviderAdmin))))
            .unwrap();
        store.write(|w| users::delete(w, None, &root.id)).unwrap();
        assert!(
            matches!(
                store.write(|w| users::delete(w, None, &root2.id)),
                Err(Error::Conflict { .. })
            ),
            "{b}"
        );
        store.write(|w| users::delete(w, None, &viewer.id)).unwrap();
        assert_eq!(names(None), ["root2"], "{b}");
    });
}

#[test]
fn membership_crud() {
    each_backend(|store, b| {
        let acme = tenant(store, "acme");
        let other = tenant(store, "other");
        let web = project(store, &acme.id, "web");
        let u = store
            .write(|w| {
                users::create(w, Some(&acme.id), &user_create("dana", Some(Role::TenantViewer)))
            })
            .unwrap();
        let root = store
            .write(|w| users::create(w, None, &user_create("root", Some(Role::ProviderAdmin))))
            .unwrap();

        let m = store
            .write(|w| {
                memberships::create(w, &u.id, Role::TenantMember, Some(&acme.id), Some(&web.id))
            })
            .unwrap();
        assert_eq!(m.role, Role::TenantMember, "{b}");
        assert_eq!(m.tenant_id.as_deref(), Some(acme.id.as_str()), "{b}");
        assert_eq!(m.project_id.as_deref(), Some(web.id.as_str()), "{b}");
        assert_eq!(m.generation, 1, "{b}");
        assert_eq!(store.read(|r| memberships::get(r, Some(&acme.id), &m.id)).unwrap(), m, "{b}");
        assert_eq!(
            store.read(|r| memberships::get(r, Some(&other.id), &m.id)).unwrap_err(),
            Error::not_found("membership", &m.id),
            "{b}"
        );
        assert_eq!(
            store.read(|r| memberships::get(r, None, &m.id)).unwrap_err(),
            Error::not_found("membership", &m.id),
            "{b}"
        );

        // One membership per user and scope.
        let n = count(store, "memberships", &[]);
        assert!(
            matches!(
                store.write(|w| memberships::create(
                    w,
                    &u.id,
                    Role::TenantAdmin,
                    Some(&acme.id),
                    Some(&web.id)
                )),
                Err(Error::AlreadyExists { kind: "membership", .. })
            ),
            "{b}"
        );
        // Provider roles only in the provider scope and vice versa.
        for (role, t) in [(Role::ProviderAdmin, Some(acme.id.as_str())), (Role::TenantAdmin, None)]
        {
            assert!(
                matches!(
                    store.write(|w| memberships::create(w, &u.id, role, t, None)),
                    Err(Error::InvalidValue(_))
                ),
                "{b}: {role} in {t:?}"
            );
        }
        assert_eq!(count(store, "memberships", &[]), n, "{b}");

        let all = store.read(|r| memberships::list(r, &acme.id)).unwrap();
        assert_eq!(all.len(), 2, "{b}: tenant-wide and project memberships");
        assert!(all.iter().any(|x| x.project_id.is_none() && x.role == Role::TenantViewer), "{b}");
        assert!(all.contains(&m), "{b}");
        assert!(store.read(|r| memberships::list(r, &other.id)).unwrap().is_empty(), "{b}");
        let mut grants = store.read(|r| memberships::grants_for_user(r, &u.id)).unwrap();
        grants.sort_by_key(|g| g.role);
        assert_eq!(
            grants,
            [
                Grant {
                    role: Role::TenantMember,
                    scope: GrantScope::Project {
                        tenant_id: acme.id.clone(),
                        project_id: web.id.clone()
                    }
                },
                Grant {
                    role: Role::TenantViewer,
                    scope: GrantScope::Tenant { tenant_id: acme.id.clone() }
                },
            ],
            "{b}"
        );

        // Change the role.
        tick();
        let m2 = store
            .write(|w| memberships::update_role(w, &acme.id, &m.id, Role::TenantAdmin, 1))
            .unwrap();
        assert_eq!((m2.role, m2.generation), (Role::TenantAdmin, 2), "{b}");
        assert!(micros(&m2.updated_at) > micros(&m.updated_at), "{b}");
        assert_eq!(
            store
                .write(|w| memberships::update_role(w, &acme.id, &m.id, Role::TenantViewer, 1))
                .unwrap_err(),
            Error::GenerationMismatch { kind: "membership", expected: 1, current: 2 },
            "{b}"
        );
        assert!(
            matches!(
                store.write(|w| memberships::update_role(
                    w,
                    &acme.id,
                    &m.id,
                    Role::ProviderAdmin,
                    2
                )),
                Err(Error::InvalidValue(_))
            ),
            "{b}"
        );
        assert_eq!(store.read(|r| memberships::get(r, Some(&acme.id), &m.id)).unwrap(), m2, "{b}");
        // Through another tenant, or a provider membership through a
        // tenant: not found, even with the current generation.
        assert_eq!(
            store
                .write(|w| memberships::update_role(w, &other.id, &m.id, Role::TenantViewer, 2))
                .unwrap_err(),
            Error::not_found("membership", &m.id),
            "{b}"
        );
        let root_m = store
            .read(|r| r.query("SELECT id FROM memberships WHERE user_id = ?", vals![&root.id]))
            .unwrap()[0]
            .str(0)
            .unwrap();
        assert_eq!(
            store
                .write(|w| memberships::update_role(w, &acme.id, &root_m, Role::TenantViewer, 1))
                .unwrap_err(),
            Error::not_found("membership", &root_m),
            "{b}"
        );
        assert_eq!(
            store.write(|w| memberships::delete(w, &acme.id, &root_m)).unwrap_err(),
            Error::not_found("membership", &root_m),
            "{b}"
        );
        assert_eq!(
            store.read(|r| memberships::get(r, None, &root_m)).unwrap().role,
            Role::ProviderAdmin,
            "{b}"
        );

        // Delete.
        assert_eq!(
            store.write(|w| memberships::delete(w, &other.id, &m.id)).unwrap_err(),
            Error::not_found("membership", &m.id),
            "{b}"
        );
        store.write(|w| memberships::delete(w, &acme.id, &m.id)).unwrap();
        assert_eq!(
            store.read(|r| memberships::get(r, Some(&acme.id), &m.id)).unwrap_err(),
            Error::not_found("membership", &m.id),
            "{b}"
        );
        assert_eq!(
            store.write(|w| memberships::delete(w, &acme.id, &m.id)).unwrap_err(),
            Error::not_found("membership", &m.id),
            "{b}"
        );
        assert_eq!(store.read(|r| memberships::list(r, &acme.id)).unwrap().len(), 1, "{b}");
    });
}

#[test]
fn failed_write_leaves_nothing() {
    each_backend(|store, b| {
        let base_scopes = count(store, "quota_scopes", &[]);
        // One insert, then an error from the closure.
        let err = store
            .write(|w| {
                tenants::create(
                    w,
                    &TenantCreate { name: name("ghost"), display_name: None, description: None },
                )?;
                Err::<(), _>(Error::conflict("changed my mind"))
            })
            .unwrap_err();
        assert_eq!(err, Error::conflict("changed my mind"), "{b}: the closure's error is returned");
        assert_eq!(store.read(|r| tenants::lookup(r, &by_name("ghost"))).unwrap(), None, "{b}");
        assert_eq!(count(store, "tenants", &[]), 0, "{b}");
        assert_eq!(count(store, "quota_scopes", &[]), base_scopes, "{b}: no orphan quota scope");

        // Several writes across tables, then a failing statement.
        let acme = tenant(store, "acme");
        let err = store
            .write(|w| {
                let p = projects::create(w, &acme.id, &ProjectCreate { name: name("p1"), description: None })?;
                users::create(w, Some(&acme.id), &user_create("erin", Some(Role::TenantAdmin)))?;
                w.execute("UPDATE tenants SET description = 'dirty' WHERE id = ?", vals![&acme.id])?;
                // A duplicate primary key: the database refuses it.
                w.execute(
                    "INSERT INTO quota_scopes (id, kind, tenant_id, generation, created_at, updated_at) VALUES (?, 'project', ?, 1, 0, 0)",
                    vals![&p.id, &acme.id],
                )?;
                Ok(())
            })
            .unwrap_err();
        assert!(matches!(err, Error::Internal { .. }), "{b}: {err:?}");
        assert_eq!(count(store, "projects", &[]), 0, "{b}");
        assert_eq!(count(store, "users", &[]), 0, "{b}");
        assert_eq!(count(store, "memberships", &[]), 0, "{b}");
        assert_eq!(count(store, "quota_scopes", &[]), base_scopes + 1, "{b}");
        assert_eq!(store.read(|r| tenants::get(r, &acme.id)).unwrap(), acme, "{b}");

        // The store is still usable after the rollbacks (the connection
        // went back to the pool in a clean state).
        for i in 0..3 {
            project(store, &acme.id, &format!("p{i}"));
        }
        assert_eq!(count(store, "projects", &[]), 3, "{b}");
        store.ping().unwrap();
    });
}

#[test]
fn tokens_authenticate_expire_revoke_touch() {
    each_backend(|store, b| {
        let acme = tenant(store, "acme");
        let u =
            store.write(|w| users::create(w, Some(&acme.id), &user_create("ci", None))).unwrap();
        let now = now_micros();
        let hour = 3_600_000_000;
        let new =
            |name: &'static str, hash: &'static str, expires_at: Option<i64>| tokens::NewToken {
                user_id: &u.id,
                tenant_id: Some(&acme.id),
                name,
                secret_hash: hash,
                prefix: "nc_1234",
                expires_at,
            };
        let live =
            store.write(|w| tokens::create(w, &new("live", "h-live", Some(now + hour)))).unwrap();
        assert_eq!((live.name.as_str(), live.prefix.as_str()), ("live", "nc_1234"), "{b}");
        assert_eq!(live.expires_at.as_deref().map(micros), Some(now + hour), "{b}");
        assert_eq!((live.revoked_at.clone(), live.last_used_at.clone()), (None, None), "{b}");
        assert_eq!(live.generation, 1, "{b}");
        assert_eq!(store.read(|r| tokens::get(r, &live.id)).unwrap(), live, "{b}");

        let auth = |hash: &str, at: i64| store.read(|r| tokens::authenticate(r, hash, at)).unwrap();
        assert_eq!(auth("h-live", now), Some((live.id.clone(), u.id.clone())), "{b}");
        assert_eq!(auth("h-unknown", now), None, "{b}");
        assert_eq!(auth("h-LIVE", now), None, "{b}: hashes compare exactly");
        // Expiry: valid strictly before expires_at.
        assert_eq!(auth("h-live", now + hour - 1), Some((live.id.clone(), u.id.clone())), "{b}");
        assert_eq!(auth("h-live", now + hour), None, "{b}");

        let expired =
            store.write(|w| tokens::create(w, &new("old", "h-old", Some(now - 1)))).unwrap();
        assert_eq!(auth("h-old", now), None, "{b}: expired");
        let forever =
            store.write(|w| tokens::create(w, &new("forever", "h-forever", None))).unwrap();
        assert_eq!(
            auth("h-forever", now + 1000 * hour),
            Some((forever.id.clone(), u.id.clone())),
            "{b}"
        );

        // A secret hash is unique; a duplicate writes nothing.
        assert!(store.write(|w| tokens::create(w, &new("dup", "h-live", None))).is_err(), "{b}");
        assert_eq!(count(store, "api_tokens", &[]), 3, "{b}");

        let ids = |v: Vec<neocloud_types::Token>| v.into_iter().map(|t| t.id).collect::<Vec<_>>();
        let mut want = vec![live.id.clone(), expired.id.clone(), forever.id.clone()];
        want.sort();
        let mut got = ids(store.read(|r| tokens::list_for_user(r, &u.id)).unwrap());
        got.sort();
        assert_eq!(got, want, "{b}");
        let mut got = ids(store.read(|r| tokens::list_for_tenant(r, &acme.id)).unwrap());
        got.sort();
        assert_eq!(got, want, "{b}");

        // Revocation.
        tick();
        let revoked = store.write(|w| tokens::revoke(w, &forever.id)).unwrap();
        assert!(revoked.revoked_at.is_some(), "{b}");
        assert_eq!(revoked.generation, 2, "{b}");
        assert!(micros(&revoked.updated_at) > micros(&forever.updated_at), "{b}");
        assert_eq!(auth("h-forever", now_micros()), None, "{b}: revoked");
        let again = store.write(|w| tokens::revoke(w, &forever.id)).unwrap();
        assert_eq!(again, revoked, "{b}: revoking twice changes nothing");
        let missing = neocloud_common::new_id();
        assert_eq!(
            store.write(|w| tokens::revoke(w, &missing)).unwrap_err(),
            Error::not_found("token", &missing),
            "{b}"
        );
        assert_eq!(
            auth("h-live", now),
            Some((live.id.clone(), u.id.clone())),
            "{b}: others unaffected"
        );

        // touch() records the latest use and never goes back.
        let t1 = now + 10;
        store
            .write(|w| tokens::touch(w, &[(live.id.clone(), t1), (expired.id.clone(), t1 + 5)]))
            .unwrap();
        let got = store.read(|r| tokens::get(r, &live.id)).unwrap();
        assert_eq!(got.last_used_at.as_deref().map(micros), Some(t1), "{b}");
        assert_eq!(got.generation, 1, "{b}: touch is not an object update");
        let got = store.read(|r| tokens::get(r, &expired.id)).unwrap();
        assert_eq!(got.last_used_at.as_deref().map(micros), Some(t1 + 5), "{b}");
        store.write(|w| tokens::touch(w, &[(live.id.clone(), t1 - 5)])).unwrap();
        let got = store.read(|r| tokens::get(r, &live.id)).unwrap();
        assert_eq!(got.last_used_at.as_deref().map(micros), Some(t1), "{b}: older use ignored");
        store.write(|w| tokens::touch(w, &[(live.id.clone(), t1 + 100)])).unwrap();
        let got = store.read(|r| tokens::get(r, &live.id)).unwrap();
        assert_eq!(got.last_used_at.as_deref().map(micros), Some(t1 + 100), "{b}");
        assert_eq!(
            store.read(|r| tokens::get(r, &forever.id)).unwrap().last_used_at,
            None,
            "{b}: untouched token"
        );
    });
}

#[test]
fn idempotency_insert_lookup_expire() {
    each_backend(|store, b| {
        let rec = |h: &str, status: u16| idempotency::Stored {
            request_hash: h.into(),
            status,
            response: format!("{{\"hash\":\"{h}\"}}"),
        };
        let before = now_micros();
        store.write(|w| Ok(idempotency::insert(w, "tenant-a", "k1", &rec("r1", 201))?)).unwrap();
        let got =
            store.read(|r| idempotency::lookup(r, "tenant-a", "k1")).unwrap().expect("stored");
        assert_eq!(
            (got.request_hash.as_str(), got.status, got.response.as_str()),
            ("r1", 201, "{\"hash\":\"r1\"}"),
            "{b}"
        );
        assert!(store.read(|r| idempotency::lookup(r, "tenant-b", "k1")).unwrap().is_none(), "{b}");
        assert!(store.read(|r| idempotency::lookup(r, "tenant-a", "k2")).unwrap().is_none(), "{b}");

        // The same key in the same scope: a unique violation, the first result stays.
        let dup = store
            .write(|w| match idempotency::insert(w, "tenant-a", "k1", &rec("r2", 202)) {
                Err(DbError::Unique(_)) => Ok(true),
                Err(e) => Err(e.into()),
                Ok(()) => Ok(false),
            })
            .unwrap();
        assert!(dup, "{b}: a duplicate key must be a unique violation");
        let got = store.read(|r| idempotency::lookup(r, "tenant-a", "k1")).unwrap().unwrap();
        assert_eq!(got.request_hash, "r1", "{b}");
        // The same key in another scope is fine.
        store.write(|w| Ok(idempotency::insert(w, "tenant-b", "k1", &rec("r3", 200))?)).unwrap();

        // Expire: only keys created before the cut-off go.
        assert_eq!(store.write(|w| idempotency::expire(w, before)).unwrap(), 0, "{b}");
        tick();
        let cut = now_micros();
        tick();
        store.write(|w| Ok(idempotency::insert(w, "tenant-a", "k-new", &rec("r4", 201))?)).unwrap();
        assert_eq!(store.write(|w| idempotency::expire(w, cut)).unwrap(), 2, "{b}");
        assert!(store.read(|r| idempotency::lookup(r, "tenant-a", "k1")).unwrap().is_none(), "{b}");
        assert!(store.read(|r| idempotency::lookup(r, "tenant-b", "k1")).unwrap().is_none(), "{b}");
        assert!(
            store.read(|r| idempotency::lookup(r, "tenant-a", "k-new")).unwrap().is_some(),
            "{b}"
        );
        // An expired key can be used again.
        store.write(|w| Ok(idempotency::insert(w, "tenant-a", "k1", &rec("r5", 201))?)).unwrap();
        assert_eq!(
            store.read(|r| idempotency::lookup(r, "tenant-a", "k1")).unwrap().unwrap().request_hash,
            "r5",
            "{b}"
        );
        assert_eq!(store.write(|w| idempotency::expire(w, now_micros() + 1)).unwrap(), 2, "{b}");
        assert_eq!(count(store, "idempotency_keys", &[]), 0, "{b}");
    });
}

#[test]
fn meta_insert_once() {
    each_backend(|store, b| {
        assert_eq!(store.read(|r| meta::get(r, "bootstrapped")).unwrap(), None, "{b}");
        store.write(|w| Ok(meta::insert(w, "bootstrapped", "yes")?)).unwrap();
        assert_eq!(
            store.read(|r| meta::get(r, "bootstrapped")).unwrap().as_deref(),
            Some("yes"),
            "{b}"
        );
        let second = store.write(|w| Ok(meta::insert(w, "bootstrapped", "again"))).unwrap();
        assert!(matches!(second, Err(DbError::Unique(_))), "{b}: {second:?}");
        assert_eq!(
            store.read(|r| meta::get(r, "bootstrapped")).unwrap().as_deref(),
            Some("yes"),
            "{b}"
        );
    });
}

#[test]
fn reopen_keeps_data_and_skips_applied_migrations() {
    for backend in neocloud_store::testing::TestBackend::ALL {
        let b = backend.as_str();
        let Some(db) = neocloud_store::testing::fresh_db(backend) else { continue };
        let store = neocloud_store::Store::open(&db.url).unwrap();
        let acme = tenant(&store, "acme");
        drop(store);
        let store =
            neocloud_store::Store::open(&db.url).unwrap_or_else(|e| panic!("{b}: reopen: {e}"));
        assert_eq!(store.read(|r| tenants::get(r, &acme.id)).unwrap(), acme, "{b}");
        let migrations = count(&store, "schema_migrations", &[]);
        assert!(migrations >= 2, "{b}: {migrations} migrations recorded");
        let store = {
            drop(store);
            neocloud_store::Store::open(&db.url).unwrap_or_else(|e| panic!("{b}: reopen: {e}"))
        };
        assert_eq!(count(&store, "schema_migrations", &[]), migrations, "{b}: nothing re-applied");
        assert_eq!(count(&store, "quota_scopes WHERE kind = 'provider'", &[]), 1, "{b}");
        // A newer build migrated the store: this build refuses to run on a
        // schema it does not know, saying why.
        store
            .write(|w| {
                w.execute(
                    "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, 'from a newer build', 0)",
                    neocloud_store::vals![migrations + 1000],
                )?;
                Ok(())
            })
            .unwrap();
        drop(store);
        let Err(refused) = neocloud_store::Store::open(&db.url) else {
            panic!("{b}: a newer schema opened");
        };
        assert!(refused.to_string().contains("newer than this build knows"), "{b}: {refused}");
    }
}

#[test]
fn concurrent_deletes_never_remove_the_last_provider_admin() {
    each_backend(|store, b| {
        for round in 0..20 {
            let admins: Vec<_> = (0..2)
                .map(|i| {
                    let u = user_create(&format!("admin-{round}-{i}"), Some(Role::ProviderAdmin));
                    store.write(|w| users::create(w, None, &u)).unwrap()
                })
                .collect();
            if round > 0 {
                // Only these two are admins: drop the survivor of the last round.
                let left: Vec<_> = store
                    .read(|r| users::list(r, None))
                    .unwrap()
                    .into_iter()
                    .filter(|u| !admins.contains(u))
                    .collect();
                for u in left {
                    store.write(|w| users::delete(w, None, &u.id)).unwrap();
                }
            }
            let barrier = std::sync::Barrier::new(2);
            let results: Vec<_> = std::thread::scope(|s| {
                let handles: Vec<_> = admins
                    .iter()
                    .map(|u| {
                        let (store, barrier) = (store.clone(), &barrier);
                        s.spawn(move || {
                            barrier.wait();
                            store.write(|w| users::delete(w, None, &u.id))
                        })
                    })
                    .collect();
                handles.into_iter().map(|h| h.join().unwrap()).collect()
            });
            let ok = results.iter().filter(|r| r.is_ok()).count();
            assert_eq!(ok, 1, "{b}: round {round}: exactly one delete may succeed: {results:?}");
            assert!(
                results.iter().all(|r| matches!(r, Ok(()) | Err(Error::Conflict { .. }))),
                "{b}: {results:?}"
            );
            assert_eq!(
                count(store, "memberships WHERE role = 'provider-admin'", &[]),
                1,
                "{b}: round {round}: one provider-admin must remain"
            );
        }
    });
}
