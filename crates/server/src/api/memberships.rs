//! `/v1/tenants/{tenant}/memberships`: roles of a tenant's users, tenant-wide
//! or limited to one project.

use super::{schema, Call, Handler, Method, Op, Reply, Resp, Scope};
use neocloud_authz::{Action, Resource};
use neocloud_common::{Error, NameOrId, Result};
use neocloud_store::{memberships, projects, Reader, Writer};
use neocloud_types::{List, Membership, MembershipCreate, MembershipUpdate};

pub(super) fn ops() -> Vec<Op> {
    vec![
        Op {
            id: "membership_list",
            method: Method::Get,
            path: "/v1/tenants/{tenant}/memberships",
            summary: "Role grants in a tenant",
            tag: "users",
            resource: Resource::Membership,
            action: Action::List,
            scope: Scope::Tenant,
            query: &[],
            request: None,
            response: Resp::Json(200, schema::<List<Membership>>),
            idempotent: false,
            handler: Handler::Read(list),
        },
        Op {
            id: "membership_create",
            method: Method::Post,
            path: "/v1/tenants/{tenant}/memberships",
            summary: "Grant a tenant user a role, tenant-wide or in one project",
            tag: "users",
            resource: Resource::Membership,
            action: Action::Create,
            scope: Scope::Tenant,
            query: &[],
            request: Some(schema::<MembershipCreate>),
            response: Resp::Json(201, schema::<Membership>),
            idempotent: true,
            handler: Handler::Write(create),
        },
        Op {
            id: "membership_update",
            method: Method::Patch,
            path: "/v1/tenants/{tenant}/memberships/{membership}",
            summary: "Change a grant's role; carries the expected generation",
            tag: "users",
            resource: Resource::Membership,
            action: Action::Update,
            scope: Scope::Tenant,
            query: &[],
            request: Some(schema::<MembershipUpdate>),
            response: Resp::Json(200, schema::<Membership>),
            idempotent: false,
            handler: Handler::Write(update),
        },
        Op {
            id: "membership_delete",
            method: Method::Delete,
            path: "/v1/tenants/{tenant}/memberships/{membership}",
            summary: "Withdraw a grant",
            tag: "users",
            resource: Resource::Membership,
            action: Action::Delete,
            scope: Scope::Tenant,
            query: &[],
            request: None,
            response: Resp::Empty,
            idempotent: false,
            handler: Handler::Write(delete),
        },
    ]
}

fn list(c: &Call<'_>, r: &mut dyn Reader) -> Result<Reply> {
    Reply::ok(&List { items: memberships::list(r, &c.tenant()?.id)? })
}

fn create(c: &Call<'_>, w: &mut dyn Writer) -> Result<Reply> {
    let p: MembershipCreate = c.body()?;
    let tenant = c.tenant()?;
    let ukey = NameOrId::parse("user", &p.user).map_err(|e| match e {
        Error::InvalidRequest { message, .. } => Error::invalid_value("user", message),
        other => other,
    })?;
    let user = neocloud_store::users::lookup(w, Some(&tenant.id), &ukey)?.ok_or_else(|| {
        Error::invalid_value("user", format!("no user {} in this tenant", p.user))
    })?;
    let project_id = match &p.project {
        None => None,
        Some(pk) => {
            let key = NameOrId::parse("project", pk).map_err(|e| match e {
                Error::InvalidRequest { message, .. } => Error::invalid_value("project", message),
                other => other,
            })?;
            let pr = projects::lookup(w, &tenant.id, &key)?.ok_or_else(|| {
                Error::invalid_value("project", format!("no project {pk} in this tenant"))
            })?;
            Some(pr.id)
        }
    };
    let m = memberships::create(w, &user.id, p.role, Some(&tenant.id), project_id.as_deref())?;
    Reply::created(&m.id.clone(), &m)
}

fn membership_id(c: &Call<'_>) -> Result<String> {
    match c.key("membership")? {
        NameOrId::Id(id) => Ok(id),
        NameOrId::Name(n) => {
            Err(Error::invalid_request("membership", format!("{n} is not a membership id")))
        }
    }
}

fn update(c: &Call<'_>, w: &mut dyn Writer) -> Result<Reply> {
    let p: MembershipUpdate = c.body()?;
    let id = membership_id(c)?;
    Reply::ok(&memberships::update_role(w, &c.tenant()?.id, &id, p.role, p.generation)?)
}

fn delete(c: &Call<'_>, w: &mut dyn Writer) -> Result<Reply> {
    let id = membership_id(c)?;
    memberships::delete(w, &c.tenant()?.id, &id)?;
    Reply::empty()
}
