//! `/v1/tenants/{tenant}/tokens`: API tokens of a tenant's users, managed by
//! tenant admins (service accounts, rotation, revocation).

use super::identity::mint;
use super::{schema, Call, Handler, Method, Op, Reply, Resp, Scope};
use neocloud_authz::{Action, Resource};
use neocloud_common::{Error, NameOrId, Result};
use neocloud_store::{tokens, users, Reader, Writer};
use neocloud_types::{List, Token, TokenCreate, TokenCreated};

pub(super) fn ops() -> Vec<Op> {
    vec![
        Op {
            id: "token_list",
            method: Method::Get,
            path: "/v1/tenants/{tenant}/tokens",
            summary: "API tokens of a tenant's users (never their secrets)",
            tag: "users",
            resource: Resource::TenantToken,
            action: Action::List,
            scope: Scope::Tenant,
            query: &[],
            request: None,
            response: Resp::Json(200, schema::<List<Token>>),
            idempotent: false,
            handler: Handler::Read(list),
        },
        Op {
            id: "token_create",
            method: Method::Post,
            path: "/v1/tenants/{tenant}/tokens",
            summary: "Create an API token for a tenant user (the secret is shown once)",
            tag: "users",
            resource: Resource::TenantToken,
            action: Action::Create,
            scope: Scope::Tenant,
            query: &[],
            request: Some(schema::<TokenCreate>),
            response: Resp::Json(201, schema::<TokenCreated>),
            idempotent: true,
            handler: Handler::Write(create),
        },
        Op {
            id: "token_get",
            method: Method::Get,
            path: "/v1/tenants/{tenant}/tokens/{token}",
            summary: "One API token of the tenant",
            tag: "users",
            resource: Resource::TenantToken,
            action: Action::Read,
            scope: Scope::Tenant,
            query: &[],
            request: None,
            response: Resp::Json(200, schema::<Token>),
            idempotent: false,
            handler: Handler::Read(get),
        },
        Op {
            id: "token_revoke",
            method: Method::Delete,
            path: "/v1/tenants/{tenant}/tokens/{token}",
            summary: "Revoke an API token of the tenant",
            tag: "users",
            resource: Resource::TenantToken,
            action: Action::Delete,
            scope: Scope::Tenant,
            query: &[],
            request: None,
            response: Resp::Json(200, schema::<Token>),
            idempotent: false,
            handler: Handler::Write(revoke),
        },
    ]
}

fn list(c: &Call<'_>, r: &mut dyn Reader) -> Result<Reply> {
    Reply::ok(&List { items: tokens::list_for_tenant(r, &c.tenant()?.id)? })
}

fn find(c: &Call<'_>, r: &mut dyn Reader) -> Result<Token> {
    let key = c.key("token")?;
    let tenant = &c.tenant()?.id;
    let NameOrId::Id(id) = &key else {
        return Err(Error::invalid_request("token", format!("{key} is not a token id")));
    };
    match tokens::get(r, id) {
        Ok(t) if t.tenant_id.as_deref() == Some(tenant.as_str()) => Ok(t),
        Ok(_) | Err(Error::NotFound { .. }) => Err(Error::not_found("token", id.clone())),
        Err(e) => Err(e),
    }
}

fn get(c: &Call<'_>, r: &mut dyn Reader) -> Result<Reply> {
    Reply::ok(&find(c, r)?)
}

fn revoke(c: &Call<'_>, w: &mut dyn Writer) -> Result<Reply> {
    let t = find(c, w)?;
    Reply::ok(&tokens::revoke(w, &t.id)?)
}

fn create(c: &Call<'_>, w: &mut dyn Writer) -> Result<Reply> {
    let p: TokenCreate = c.body()?;
    let tenant = c.tenant()?;
    let user = match &p.user {
        Some(u) => {
            let key = NameOrId::parse("user", u).map_err(|e| match e {
                Error::InvalidRequest { message, .. } => Error::invalid_value("user", message),
                other => other,
            })?;
            users::lookup(w, Some(&tenant.id), &key)?.ok_or_else(|| {
                Error::invalid_value("user", format!("no user {u} in this tenant"))
            })?
        }
        None if c.principal.tenant_id.as_deref() == Some(tenant.id.as_str()) => {
            users::get_any(w, &c.principal.user_id)?
        }
        None => {
            return Err(Error::invalid_value(
                "user",
                "required: the caller is not a user of this tenant",
            ))
        }
    };
    let created: TokenCreated = mint(w, &user.id, Some(&tenant.id), &p, c.now)?;
    Reply::created_token(&created)
}
