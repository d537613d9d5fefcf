//! `/v1/tenants` and `/v1/tenants/{tenant}`.

use super::{schema, Call, Handler, Method, Op, Reply, Resp, Scope};
use neocloud_authz::{Action, Resource};
use neocloud_common::Result;
use neocloud_store::{tenants, Reader, Writer};
use neocloud_types::{check_text, List, Tenant, TenantCreate, TenantUpdate};

pub(super) fn ops() -> Vec<Op> {
    vec![
        Op {
            id: "tenant_list",
            method: Method::Get,
            path: "/v1/tenants",
            summary: "Tenants the caller can see",
            tag: "tenants",
            resource: Resource::Tenant,
            action: Action::List,
            scope: Scope::Global,
            query: &[],
            request: None,
            response: Resp::Json(200, schema::<List<Tenant>>),
            idempotent: false,
            handler: Handler::Read(list),
        },
        Op {
            id: "tenant_create",
            method: Method::Post,
            path: "/v1/tenants",
            summary: "Create a tenant (provider)",
            tag: "tenants",
            resource: Resource::Tenant,
            action: Action::Create,
            scope: Scope::Global,
            query: &[],
            request: Some(schema::<TenantCreate>),
            response: Resp::Json(201, schema::<Tenant>),
            idempotent: true,
            handler: Handler::Write(create),
        },
        Op {
            id: "tenant_get",
            method: Method::Get,
            path: "/v1/tenants/{tenant}",
            summary: "One tenant",
            tag: "tenants",
            resource: Resource::Tenant,
            action: Action::Read,
            scope: Scope::Tenant,
            query: &[],
            request: None,
            response: Resp::Json(200, schema::<Tenant>),
            idempotent: false,
            handler: Handler::Read(get),
        },
        Op {
            id: "tenant_update",
            method: Method::Patch,
            path: "/v1/tenants/{tenant}",
            summary: "Update a tenant (provider); carries the expected generation",
            tag: "tenants",
            resource: Resource::Tenant,
            action: Action::Update,
            scope: Scope::Tenant,
            query: &[],
            request: Some(schema::<TenantUpdate>),
            response: Resp::Json(200, schema::<Tenant>),
            idempotent: false,
            handler: Handler::Write(update),
        },
        Op {
            id: "tenant_delete",
            method: Method::Delete,
            path: "/v1/tenants/{tenant}",
            summary: "Delete an empty tenant (provider)",
            tag: "tenants",
            resource: Resource::Tenant,
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
    let mut items = tenants::list(r)?;
    items.retain(|t| c.principal.sees_tenant(&t.id));
    Reply::ok(&List { items })
}

fn create(c: &Call<'_>, w: &mut dyn Writer) -> Result<Reply> {
    let p: TenantCreate = c.body()?;
    check_text("display_name", &p.display_name)?;
    check_text("description", &p.description)?;
    let t = tenants::create(w, &p)?;
    Reply::created(&t.id.clone(), &t)
}

fn get(c: &Call<'_>, _r: &mut dyn Reader) -> Result<Reply> {
    Reply::ok(c.tenant()?)
}

fn update(c: &Call<'_>, w: &mut dyn Writer) -> Result<Reply> {
    let p: TenantUpdate = c.body()?;
    check_text("display_name", &p.display_name)?;
    check_text("description", &p.description)?;
    Reply::ok(&tenants::update(w, &c.tenant()?.id, &p)?)
}

fn delete(c: &Call<'_>, w: &mut dyn Writer) -> Result<Reply> {
    tenants::delete(w, &c.tenant()?.id)?;
    Reply::empty()
}
