//! `/v1/tenants/{tenant}/projects`.

use super::{schema, Call, Handler, Method, Op, Reply, Resp, Scope};
use neocloud_authz::{Action, Resource};
use neocloud_common::Result;
use neocloud_store::{projects, Reader, Writer};
use neocloud_types::{check_text, List, Project, ProjectCreate, ProjectUpdate};

pub(super) fn ops() -> Vec<Op> {
    vec![
        Op {
            id: "project_list",
            method: Method::Get,
            path: "/v1/tenants/{tenant}/projects",
            summary: "Projects of a tenant the caller can see",
            tag: "projects",
            resource: Resource::Project,
            action: Action::List,
            scope: Scope::Tenant,
            query: &[],
            request: None,
            response: Resp::Json(200, schema::<List<Project>>),
            idempotent: false,
            handler: Handler::Read(list),
        },
        Op {
            id: "project_create",
            method: Method::Post,
            path: "/v1/tenants/{tenant}/projects",
            summary: "Create a project",
            tag: "projects",
            resource: Resource::Project,
            action: Action::Create,
            scope: Scope::Tenant,
            query: &[],
            request: Some(schema::<ProjectCreate>),
            response: Resp::Json(201, schema::<Project>),
            idempotent: true,
            handler: Handler::Write(create),
        },
        Op {
            id: "project_get",
            method: Method::Get,
            path: "/v1/tenants/{tenant}/projects/{project}",
            summary: "One project",
            tag: "projects",
            resource: Resource::Project,
            action: Action::Read,
            scope: Scope::Project,
            query: &[],
            request: None,
            response: Resp::Json(200, schema::<Project>),
            idempotent: false,
            handler: Handler::Read(get),
        },
        Op {
            id: "project_update",
            method: Method::Patch,
            path: "/v1/tenants/{tenant}/projects/{project}",
            summary: "Update a project; carries the expected generation",
            tag: "projects",
            resource: Resource::Project,
            action: Action::Update,
            scope: Scope::Project,
            query: &[],
            request: Some(schema::<ProjectUpdate>),
            response: Resp::Json(200, schema::<Project>),
            idempotent: false,
            handler: Handler::Write(update),
        },
        Op {
            id: "project_delete",
            method: Method::Delete,
            path: "/v1/tenants/{tenant}/projects/{project}",
            summary: "Delete a project holding no active quota claims",
            tag: "projects",
            resource: Resource::Project,
            action: Action::Delete,
            scope: Scope::Project,
            query: &[],
            request: None,
            response: Resp::Empty,
            idempotent: false,
            handler: Handler::Write(delete),
        },
    ]
}

fn list(c: &Call<'_>, r: &mut dyn Reader) -> Result<Reply> {
    let t = c.tenant()?;
    let mut items = projects::list(r, &t.id)?;
    items.retain(|p| c.principal.sees_project(&t.id, &p.id));
    Reply::ok(&List { items })
}

fn create(c: &Call<'_>, w: &mut dyn Writer) -> Result<Reply> {
    let p: ProjectCreate = c.body()?;
    check_text("description", &p.description)?;
    let pr = projects::create(w, &c.tenant()?.id, &p)?;
    Reply::created(&pr.id.clone(), &pr)
}

fn get(c: &Call<'_>, _r: &mut dyn Reader) -> Result<Reply> {
    Reply::ok(c.project()?)
}

fn update(c: &Call<'_>, w: &mut dyn Writer) -> Result<Reply> {
    let p: ProjectUpdate = c.body()?;
    check_text("description", &p.description)?;
    Reply::ok(&projects::update(w, &c.tenant()?.id, &c.project()?.id, &p)?)
}

fn delete(c: &Call<'_>, w: &mut dyn Writer) -> Result<Reply> {
    projects::delete(w, &c.tenant()?.id, &c.project()?.id)?;
    Reply::empty()
}
