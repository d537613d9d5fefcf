//! The caller's own identity and tokens: `/v1/me`, `/v1/tokens`.

use super::{schema, Call, Handler, Method, Op, Reply, Resp, Scope};
use crate::auth;
use neocloud_authz::{Action, GrantScope, Resource};
use neocloud_common::{Error, NameOrId, Result};
use neocloud_store::{tokens, users, Reader, Writer};
use neocloud_types::{GrantView, List, Me, Token, TokenCreate, TokenCreated};

pub(super) fn ops() -> Vec<Op> {
    vec![
        Op {
            id: "me_get",
            method: Method::Get,
            path: "/v1/me",
            summary: "The caller: user, token and grants",
            tag: "identity",
            resource: Resource::OwnIdentity,
            action: Action::Read,
            scope: Scope::Own,
            query: &[],
            request: None,
            response: Resp::Json(200, schema::<Me>),
            idempotent: false,
            handler: Handler::Read(me_get),
        },
        Op {
            id: "own_token_list",
            method: Method::Get,
            path: "/v1/tokens",
            summary: "The caller's API tokens",
            tag: "identity",
            resource: Resource::OwnIdentity,
            action: Action::List,
            scope: Scope::Own,
            query: &[],
            request: None,
            response: Resp::Json(200, schema::<List<Token>>),
            idempotent: false,
            handler: Handler::Read(own_token_list),
        },
        Op {
            id: "own_token_create",
            method: Method::Post,
            path: "/v1/tokens",
            summary: "Create an API token for the caller (the secret is shown once)",
            tag: "identity",
            resource: Resource::OwnIdentity,
            action: Action::Create,
            scope: Scope::Own,
            query: &[],
            request: Some(schema::<TokenCreate>),
            response: Resp::Json(201, schema::<TokenCreated>),
            idempotent: true,
            handler: Handler::Write(own_token_create),
        },
        Op {
            id: "own_token_get",
            method: Method::Get,
            path: "/v1/tokens/{token}",
            summary: "One of the caller's API tokens",
            tag: "identity",
            resource: Resource::OwnIdentity,
            action: Action::Read,
            scope: Scope::Own,
            query: &[],
            request: None,
            response: Resp::Json(200, schema::<Token>),
            idempotent: false,
            handler: Handler::Read(own_token_get),
        },
        Op {
            id: "own_token_revoke",
            method: Method::Delete,
            path: "/v1/tokens/{token}",
            summary: "Revoke one of the caller's API tokens",
            tag: "identity",
            resource: Resource::OwnIdentity,
            action: Action::Delete,
            scope: Scope::Own,
            query: &[],
            request: None,
            response: Resp::Json(200, schema::<Token>),
            idempotent: false,
            handler: Handler::Write(own_token_revoke),
        },
    ]
}

fn me_get(c: &Call<'_>, r: &mut dyn Reader) -> Result<Reply> {
    let user = users::get_any(r, &c.principal.user_id)?;
    let grants = c
        .principal
        .grants
        .iter()
        .map(|g| match &g.scope {
            GrantScope::Provider => GrantView { role: g.role, tenant_id: None, project_id: None },
            GrantScope::Tenant { tenant_id } => {
                GrantView { role: g.role, tenant_id: Some(tenant_id.clone()), project_id: None }
            }
            GrantScope::Project { tenant_id, project_id } => GrantView {
                role: g.role,
                tenant_id: Some(tenant_id.clone()),
                project_id: Some(project_id.clone()),
            },
        })
        .collect();
    Reply::ok(&Me { user, token_id: c.principal.token_id.clone(), grants })
}

fn own_token_list(c: &Call<'_>, r: &mut dyn Reader) -> Result<Reply> {
    Reply::ok(&List { items: tokens::list_for_user(r, &c.principal.user_id)? })
}

/// A token of the caller's, by id or name; others' tokens are not found.
fn own_token(c: &Call<'_>, r: &mut dyn Reader) -> Result<Token> {
    let key = c.key("token")?;
    let mine = tokens::list_for_user(r, &c.principal.user_id)?;
    mine.into_iter()
        .find(|t| match &key {
            NameOrId::Id(id) => &t.id == id,
            NameOrId::Name(n) => t.name == n.as_str() && t.revoked_at.is_none(),
        })
        .ok_or_else(|| Error::not_found("token", key.to_string()))
}

fn own_token_get(c: &Call<'_>, r: &mut dyn Reader) -> Result<Reply> {
    Reply::ok(&own_token(c, r)?)
}

fn own_token_revoke(c: &Call<'_>, w: &mut dyn Writer) -> Result<Reply> {
    let t = own_token(c, w)?;
    Reply::ok(&tokens::revoke(w, &t.id)?)
}

fn own_token_create(c: &Call<'_>, w: &mut dyn Writer) -> Result<Reply> {
    let p: TokenCreate = c.body()?;
    if p.user.is_some() {
        return Err(Error::invalid_value(
            "user",
            "tokens created here act as the caller; use the tenant's tokens endpoint to choose a user",
        ));
    }
    let user_id = c.principal.user_id.clone();
    let tenant_id = c.principal.tenant_id.clone();
    let created = mint(w, &user_id, tenant_id.as_deref(), &p, c.now)?;
    Reply::created_token(&created)
}

/// Longest token lifetime.
pub const MAX_TOKEN_SECS: u64 = 400 * 24 * 3600;
pub const DEFAULT_TOKEN_SECS: u64 = 90 * 24 * 3600;

/// Creates a token for `user_id`; the secret is returned once.
pub(super) fn mint(
    w: &mut dyn Writer,
    user_id: &str,
    tenant_id: Option<&str>,
    p: &TokenCreate,
    now: i64,
) -> Result<TokenCreated> {
    let secs = p.expires_in_secs.unwrap_or(DEFAULT_TOKEN_SECS);
    if secs == 0 || secs > MAX_TOKEN_SECS {
        return Err(Error::invalid_value(
            "expires_in_secs",
            format!("must be between 1 and {MAX_TOKEN_SECS}"),
        ));
    }
    // A user's token names are unique among its live tokens.
    if tokens::list_for_user(w, user_id)?
        .iter()
        .any(|t| t.name == p.name.as_str() && t.revoked_at.is_none())
    {
        return Err(Error::AlreadyExists {
            kind: "token",
            field: "name".into(),
            value: p.name.to_string(),
        });
    }
    let secret = auth::new_secret()?;
    let token = tokens::create(
        w,
        &tokens::NewToken {
            user_id,
            tenant_id,
            name: p.name.as_str(),
            secret_hash: &auth::hash_secret(&secret),
            prefix: &auth::shown_prefix(&secret),
            expires_at: Some(now + secs as i64 * 1_000_000),
        },
    )?;
    Ok(TokenCreated { token, secret })
}
