//! Users: provider users at `/v1/users`, tenant users at
//! `/v1/tenants/{tenant}/users`.

use super::{schema, Call, Handler, Method, Op, Reply, Resp, Scope};
use neocloud_authz::{Action, Resource};
use neocloud_common::{Error, Result};
use neocloud_store::{users, Reader, Writer};
use neocloud_types::{check_text, List, TokenCreate, TokenCreated, User, UserCreate, UserUpdate};

fn user_ops(
    prefix: &'static [&'static str; 2],
    resource: Resource,
    scope: Scope,
    tag: &'static str,
    handlers: [Handler; 5],
) -> Vec<Op> {
    let [list, create, get, update, delete] = handlers;
    let [coll, item] = *prefix;
    let who = if resource == Resource::ProviderUser { "provider" } else { "tenant" };
    vec![
        Op {
            id: if who == "provider" { "provider_user_list" } else { "user_list" },
            method: Method::Get,
            path: coll,
            summary: if who == "provider" { "Provider users" } else { "Users of a tenant" },
            tag,
            resource,
            action: Action::List,
            scope,
            query: &[],
            request: None,
            response: Resp::Json(200, schema::<List<User>>),
            idempotent: false,
            handler: list,
        },
        Op {
            id: if who == "provider" { "provider_user_create" } else { "user_create" },
            method: Method::Post,
            path: coll,
            summary: if who == "provider" {
                "Create a provider user with a provider role"
            } else {
                "Create a user in a tenant, optionally with a tenant-wide role"
            },
            tag,
            resource,
            action: Action::Create,
            scope,
            query: &[],
            request: Some(schema::<UserCreate>),
            response: Resp::Json(201, schema::<User>),
            idempotent: true,
            handler: create,
        },
        Op {
            id: if who == "provider" { "provider_user_get" } else { "user_get" },
            method: Method::Get,
            path: item,
            summary: "One user",
            tag,
            resource,
            action: Action::Read,
            scope,
            query: &[],
            request: None,
            response: Resp::Json(200, schema::<User>),
            idempotent: false,
            handler: get,
        },
        Op {
            id: if who == "provider" { "provider_user_update" } else { "user_update" },
            method: Method::Patch,
            path: item,
            summary: "Update a user; carries the expected generation",
            tag,
            resource,
            action: Action::Update,
            scope,
            query: &[],
            request: Some(schema::<UserUpdate>),
            response: Resp::Json(200, schema::<User>),
            idempotent: false,
            handler: update,
        },
        Op {
            id: if who == "provider" { "provider_user_delete" } else { "user_delete" },
            method: Method::Delete,
            path: item,
            summary: "Delete a user with its memberships and tokens",
            tag,
            resource,
            action: Action::Delete,
            scope,
            query: &[],
            request: None,
            response: Resp::Empty,
            idempotent: false,
            handler: delete,
        },
    ]
}

pub(super) fn ops() -> Vec<Op> {
    let mut v = user_ops(
        &["/v1/users", "/v1/users/{user}"],
        Resource::ProviderUser,
        Scope::Global,
        "provider",
        [
            Handler::Read(|c, r| list(c, r, None)),
            Handler::Write(|c, w| create(c, w, None)),
            Handler::Read(|c, r| get(c, r, None)),
            Handler::Write(|c, w| update(c, w, None)),
            Handler::Write(|c, w| delete(c, w, None)),
        ],
    );
    v.push(Op {
        id: "provider_user_token_create",
        method: Method::Post,
        path: "/v1/users/{user}/tokens",
        summary: "Create an API token for a provider user (the secret is shown once)",
        tag: "provider",
        resource: Resource::ProviderUser,
        action: Action::Create,
        scope: Scope::Global,
        query: &[],
        request: Some(schema::<TokenCreate>),
        response: Resp::Json(201, schema::<TokenCreated>),
        idempotent: true,
        handler: Handler::Write(provider_token_create),
    });
    v.extend(user_ops(
        &["/v1/tenants/{tenant}/users", "/v1/tenants/{tenant}/users/{user}"],
        Resource::User,
        Scope::Tenant,
        "users",
        [
            Handler::Read(|c, r| list(c, r, Some(c.tenant()?.id.as_str()))),
            Handler::Write(|c, w| create(c, w, Some(c.tenant()?.id.as_str()))),
            Handler::Read(|c, r| get(c, r, Some(c.tenant()?.id.as_str()))),
            Handler::Write(|c, w| update(c, w, Some(c.tenant()?.id.as_str()))),
            Handler::Write(|c, w| delete(c, w, Some(c.tenant()?.id.as_str()))),
        ],
    ));
    v
}

/// The user named by the `{user}` path parameter, in `tenant` (or the provider).
pub(super) fn find(c: &Call<'_>, r: &mut dyn Reader, tenant: Option<&str>) -> Result<User> {
    let key = c.key("user")?;
    users::lookup(r, tenant, &key)?.ok_or_else(|| Error::not_found("user", key.to_string()))
}

fn list(_c: &Call<'_>, r: &mut dyn Reader, tenant: Option<&str>) -> Result<Reply> {
    Reply::ok(&List { items: users::list(r, tenant)? })
}

fn create(c: &Call<'_>, w: &mut dyn Writer, tenant: Option<&str>) -> Result<Reply> {
    let p: UserCreate = c.body()?;
    check_text("display_name", &p.display_name)?;
    check_text("email", &p.email)?;
    match (tenant, p.role) {
        (None, None) => {
            return Err(Error::invalid_value(
                "role",
                "provider users need a role: provider-admin or provider-viewer",
            ))
        }
        (None, Some(r)) if !r.is_provider() => {
            return Err(Error::invalid_value(
                "role",
                "provider users take provider-admin or provider-viewer",
            ))
        }
        (Some(_), Some(r)) if r.is_provider() => {
            return Err(Error::invalid_value(
                "role",
                "tenant users take tenant-admin, tenant-member or tenant-viewer",
            ))
        }
        _ => {}
    }
    let u = users::create(w, tenant, &p)?;
    Reply::created(&u.id.clone(), &u)
}

fn get(c: &Call<'_>, r: &mut dyn Reader, tenant: Option<&str>) -> Result<Reply> {
    Reply::ok(&find(c, r, tenant)?)
}

fn update(c: &Call<'_>, w: &mut dyn Writer, tenant: Option<&str>) -> Result<Reply> {
    let p: UserUpdate = c.body()?;
    check_text("display_name", &p.display_name)?;
    check_text("email", &p.email)?;
    let u = find(c, w, tenant)?;
    Reply::ok(&users::update(w, tenant, &u.id, &p)?)
}

fn delete(c: &Call<'_>, w: &mut dyn Writer, tenant: Option<&str>) -> Result<Reply> {
    let u = find(c, w, tenant)?;
    users::delete(w, tenant, &u.id)?;
    Reply::empty()
}

fn provider_token_create(c: &Call<'_>, w: &mut dyn Writer) -> Result<Reply> {
    let p: TokenCreate = c.body()?;
    if p.user.is_some() {
        return Err(Error::invalid_value("user", "the user is given by the path"));
    }
    let u = find(c, w, None)?;
    let created: TokenCreated = super::identity::mint(w, &u.id, None, &p, c.now)?;
    Reply::created_token(&created)
}
