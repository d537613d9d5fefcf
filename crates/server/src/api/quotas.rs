//! Quotas: limits per scope (provider, tenant, project) and the admission
//! ledger's claims (reserve, commit, release).

use super::{schema, Call, Handler, Method, Op, QueryKind, QueryParam, Reply, Resp, Scope};
use neocloud_authz::{Action, Resource};
use neocloud_common::{Error, NameOrId, Result};
use neocloud_store::{audit::PROVIDER_CHAIN, quotas, Reader, Writer};
use neocloud_types::{
    check_text, parse_amounts, List, Quota, QuotaClaim, QuotaClaimCreate, QuotaResource,
    QuotaUpdate,
};

fn quota_op(
    id: &'static str,
    method: Method,
    path: &'static str,
    resource: Resource,
    scope: Scope,
    handler: Handler,
) -> Op {
    let update = method == Method::Put;
    Op {
        id,
        method,
        path,
        summary: if update {
            "Set limits (null removes a limit where allowed); carries the expected generation"
        } else {
            "Limits and usage (reserved, committed) per resource"
        },
        tag: "quotas",
        resource,
        action: if update { Action::Update } else { Action::Read },
        scope,
        query: &[],
        request: if update { Some(schema::<QuotaUpdate>) } else { None },
        response: Resp::Json(200, schema::<Quota>),
        idempotent: false,
        handler,
    }
}

const STATE_PARAM: QueryParam = QueryParam {
    name: "state",
    kind: QueryKind::String,
    description: "Only claims in this state: reserved, committed or released.",
};

pub(super) fn ops() -> Vec<Op> {
    vec![
        quota_op(
            "provider_quota_get",
            Method::Get,
            "/v1/quotas",
            Resource::ProviderQuota,
            Scope::Global,
            Handler::Read(|_, r| Reply::ok(&quotas::get(r, PROVIDER_CHAIN)?)),
        ),
        quota_op(
            "provider_quota_update",
            Method::Put,
            "/v1/quotas",
            Resource::ProviderQuota,
            Scope::Global,
            Handler::Write(|c, w| set(c, w, PROVIDER_CHAIN)),
        ),
        quota_op(
            "tenant_quota_get",
            Method::Get,
            "/v1/tenants/{tenant}/quotas",
            Resource::TenantQuota,
            Scope::Tenant,
            Handler::Read(|c, r| Reply::ok(&quotas::get(r, &c.tenant()?.id)?)),
        ),
        quota_op(
            "tenant_quota_update",
            Method::Put,
            "/v1/tenants/{tenant}/quotas",
            Resource::TenantQuota,
            Scope::Tenant,
            Handler::Write(|c, w| set(c, w, &c.tenant()?.id)),
        ),
        quota_op(
            "project_quota_get",
            Method::Get,
            "/v1/tenants/{tenant}/projects/{project}/quotas",
            Resource::ProjectQuota,
            Scope::Project,
            Handler::Read(|c, r| Reply::ok(&quotas::get(r, &c.project()?.id)?)),
        ),
        quota_op(
            "project_quota_update",
            Method::Put,
            "/v1/tenants/{tenant}/projects/{project}/quotas",
            Resource::ProjectQuota,
            Scope::Project,
            Handler::Write(|c, w| set(c, w, &c.project()?.id)),
        ),
        Op {
            id: "claim_list",
            method: Method::Get,
            path: "/v1/tenants/{tenant}/projects/{project}/claims",
            summary: "Quota claims of a project",
            tag: "quotas",
            resource: Resource::QuotaClaim,
            action: Action::List,
            scope: Scope::Project,
            query: &[STATE_PARAM],
            request: None,
            response: Resp::Json(200, schema::<List<QuotaClaim>>),
            idempotent: false,
            handler: Handler::Read(claim_list),
        },
        Op {
            id: "claim_create",
            method: Method::Post,
            path: "/v1/tenants/{tenant}/projects/{project}/claims",
            summary: "Reserve quota at project, tenant and provider level, atomically",
            tag: "quotas",
            resource: Resource::QuotaClaim,
            action: Action::Create,
            scope: Scope::Project,
            query: &[],
            request: Some(schema::<QuotaClaimCreate>),
            response: Resp::Json(201, schema::<QuotaClaim>),
            idempotent: true,
            handler: Handler::Write(claim_create),
        },
        Op {
            id: "claim_get",
            method: Method::Get,
            path: "/v1/tenants/{tenant}/projects/{project}/claims/{claim}",
            summary: "One quota claim",
            tag: "quotas",
            resource: Resource::QuotaClaim,
            action: Action::Read,
            scope: Scope::Project,
            query: &[],
            request: None,
            response: Resp::Json(200, schema::<QuotaClaim>),
            idempotent: false,
            handler: Handler::Read(|c, r| {
                let id = claim_id(c)?;
                Reply::ok(&quotas::get_claim(r, &c.tenant()?.id, &c.project()?.id, &id)?)
            }),
        },
        Op {
            id: "claim_commit",
            method: Method::Post,
            path: "/v1/tenants/{tenant}/projects/{project}/claims/{claim}/commit",
            summary: "Turn a reservation into committed usage",
            tag: "quotas",
            resource: Resource::QuotaClaim,
            action: Action::Update,
            scope: Scope::Project,
            query: &[],
            request: None,
            response: Resp::Json(200, schema::<QuotaClaim>),
            idempotent: false,
            handler: Handler::Write(|c, w| {
                let id = claim_id(c)?;
                Reply::ok(&quotas::commit_claim(w, &c.tenant()?.id, &c.project()?.id, &id)?)
            }),
        },
        Op {
            id: "claim_release",
            method: Method::Delete,
            path: "/v1/tenants/{tenant}/projects/{project}/claims/{claim}",
            summary: "Release a claim's reserved or committed usage",
            tag: "quotas",
            resource: Resource::QuotaClaim,
            action: Action::Delete,
            scope: Scope::Project,
            query: &[],
            request: None,
            response: Resp::Json(200, schema::<QuotaClaim>),
            idempotent: false,
            handler: Handler::Write(|c, w| {
                let id = claim_id(c)?;
                Reply::ok(&quotas::release_claim(w, &c.tenant()?.id, &c.project()?.id, &id)?)
            }),
        },
    ]
}

fn set(c: &Call<'_>, w: &mut dyn Writer, scope_id: &str) -> Result<Reply> {
    let p: QuotaUpdate = c.body()?;
    if p.limits.is_empty() {
        return Err(Error::invalid_value("limits", "must name at least one resource"));
    }
    let mut limits = Vec::with_capacity(p.limits.len());
    for (k, v) in &p.limits {
        let field = format!("limits.{k}");
        let r = QuotaResource::parse(k).map_err(|e| Error::invalid_value(&field, e))?;
        if matches!(v, Some(n) if *n < 0) {
            return Err(Error::invalid_value(field, "must not be negative"));
        }
        limits.push((r, *v));
    }
    Reply::ok(&quotas::set_limits(w, scope_id, p.generation, &limits)?)
}

fn claim_id(c: &Call<'_>) -> Result<String> {
    match c.key("claim")? {
        NameOrId::Id(id) => Ok(id),
        NameOrId::Name(n) => Err(Error::invalid_request("claim", format!("{n} is not a claim id"))),
    }
}

fn claim_list(c: &Call<'_>, r: &mut dyn Reader) -> Result<Reply> {
    let state = match c.query_str("state") {
        None => None,
        Some(s) => Some(neocloud_types::ClaimState::parse(s).ok_or_else(|| {
            Error::invalid_value("state", "must be reserved, committed or released")
        })?),
    };
    let mut items = quotas::list_claims(r, &c.tenant()?.id, &c.project()?.id)?;
    if let Some(s) = state {
        items.retain(|cl| cl.state == s);
    }
    Reply::ok(&List { items })
}

fn claim_create(c: &Call<'_>, w: &mut dyn Writer) -> Result<Reply> {
    let p: QuotaClaimCreate = c.body()?;
    check_text("description", &p.description)?;
    let amounts = parse_amounts("resources", &p.resources, false)?;
    let claim = quotas::create_claim(
        w,
        &c.tenant()?.id,
        &c.project()?.id,
        &amounts,
        p.description.as_deref().unwrap_or(""),
    )?;
    Reply::created(&claim.id.clone(), &claim)
}
