//! The request pipeline every API operation goes through, in this order:
//! authenticate, rate-limit, check query parameters, resolve the path's
//! tenant and project, authorize, (creates) look up the idempotency key, run
//! the handler, record the audit event, store the idempotent result.
//!
//! For mutating operations everything from resolution to the audit event
//! and the idempotency record happens in ONE write transaction: the change,
//! its audit event and its replayable result commit together or not at all.
//! Refused and failed mutations are recorded afterwards in their own
//! transaction (the handler's was rolled back).

use crate::api::{Body, Call, Handler, Op, Scope};
use crate::auth::{self, TokenUsage};
use crate::metrics::Metrics;
use crate::ratelimit::RateLimiter;
use neocloud_authz::{authorize, Decision, Principal, Role, Target};
use neocloud_common::{time::now_micros, Error, NameOrId, Result};
use neocloud_store::{audit, idempotency, projects, tenants, Reader, Store};
use neocloud_types::{Project, Tenant};
use sha2::{Digest, Sha256};
use std::collections::HashMap;

/// Shared state of the API.
pub struct App {
    pub store: Store,
    pub ops: Vec<Op>,
    pub metrics: Metrics,
    pub usage: TokenUsage,
    pub limiter: RateLimiter,
    /// Per client address, for requests whose credential fails.
    pub anonymous_limiter: RateLimiter,
    pub placement: std::sync::Arc<crate::placement::PlacementService>,
    pub secrets: crate::secrets::SecretBox,
    /// The Ethernet fabrics' kept planners (shared with the controllers).
    pub planners: std::sync::Arc<crate::network::planners::Planners>,
    pub lifecycle: crate::controllers::lifecycle::LifecycleController,
    pub fabric: crate::controllers::fabric::FabricController,
    pub boot: crate::boot::handlers::BootConfig,
}

/// One API request, as the transport hands it over.
pub struct Request {
    pub op: usize,
    pub path: String,
    pub params: HashMap<String, String>,
    pub query: HashMap<String, String>,
    pub authorization: Option<String>,
    pub idempotency_key: Option<String>,
    pub body: Vec<u8>,
    pub request_id: String,
    pub peer: std::net::IpAddr,
}

/// A successful answer.
pub struct Outcome {
    pub status: u16,
    pub body: Body,
    /// Answered from a stored idempotent result.
    pub replayed: bool,
}

/// What the audit trail needs to know about a request as it is resolved.
struct Seen {
    chain: String,
    tenant_id: Option<String>,
    role: Option<Role>,
    /// The policy allowed the request (a later error is a failure, not a denial).
    authorized: bool,
}

pub const MAX_IDEMPOTENCY_KEY: usize = 255;

/// Runs one request to completion. Blocking: call from a blocking thread.
pub fn handle(app: &App, req: &Request) -> (Result<Outcome>, Option<String>) {
    let op = &app.ops[req.op];
    let now = now_micros();
    let mut seen = Seen {
        chain: audit::PROVIDER_CHAIN.to_string(),
        tenant_id: None,
        role: None,
        authorized: false,
    };
    let principal = match auth::bearer(req.authorization.as_deref())
        .and_then(|secret| app.store.read(|r| auth::principal(r, secret, now)))
    {
        Ok(p) => p,
        Err(e) => {
            // Failed credentials are limited per client address, so a flood
            // of them cannot flood the provider's audit chain.
            if let Err(limited) = app.anonymous_limiter.check(&req.peer.to_string()) {
                app.metrics.audit_event("dropped_rate_limited");
                return (Err(limited), None);
            }
            if op.method.is_mutating() {
                record_refusal(app, op, req, None, &seen, &e);
            }
            return (Err(e), None);
        }
    };
    app.usage.record(&principal.token_id, now);
    let who = Some(principal.user_name.clone());
    let res = app
        .limiter
        .check(&principal.user_id)
        .and_then(|()| check_request(op, req))
        .and_then(|()| run(app, op, req, &principal, now, &mut seen));
    if let Err(e) = &res {
        if op.method.is_mutating() {
            record_refusal(app, op, req, Some(&principal), &seen, e);
        }
    }
    (res, who)
}

/// Records a mutation refused before it could be dispatched (unparseable
/// path, query, headers or body), attributed to the caller when its token
/// is valid. Such requests never resolved a tenant: the provider's chain.
pub fn record_rejected(app: &App, req: &Request, e: &Error) {
    let op = &app.ops[req.op];
    if !op.method.is_mutating() {
        return;
    }
    if app.anonymous_limiter.check(&req.peer.to_string()).is_err() {
        app.metrics.audit_event("dropped_rate_limited");
        return;
    }
    let p = auth::bearer(req.authorization.as_deref())
        .and_then(|secret| app.store.read(|r| auth::principal(r, secret, now_micros())))
        .ok();
    let seen = Seen {
        chain: audit::PROVIDER_CHAIN.to_string(),
        tenant_id: None,
        role: None,
        authorized: false,
    };
    record_refusal(app, op, req, p.as_ref(), &seen, e);
}

fn check_request(op: &Op, req: &Request) -> Result<()> {
    for k in req.query.keys() {
        if !op.query.iter().any(|q| q.name == k) {
            return Err(Error::invalid_request(k.clone(), "unknown query parameter"));
        }
    }
    if let Some(key) = &req.idempotency_key {
        if !op.idempotent {
            return Err(Error::invalid_request(
                "Idempotency-Key",
                "only creates and actions (power, rebuild) accept an Idempotency-Key",
            ));
        }
        if key.is_empty()
            || key.len() > MAX_IDEMPOTENCY_KEY
            || !key.bytes().all(|b| b.is_ascii_graphic())
        {
            return Err(Error::invalid_request(
                "Idempotency-Key",
                format!("must be 1 to {MAX_IDEMPOTENCY_KEY} printable ASCII characters"),
            ));
        }
    }
    Ok(())
}

fn run(
    app: &App,
    op: &Op,
    req: &Request,
    p: &Principal,
    now: i64,
    seen: &mut Seen,
) -> Result<Outcome> {
    match op.handler {
        Handler::Read(h) => app.store.read(|r| {
            let (tenant, project, role) = resolve(r, op, req, p, seen)?;
            let call = call(app, p, role, tenant.as_ref(), project.as_ref(), req, now);
            let reply = h(&call, r)?;
            Ok(Outcome { status: reply.status, body: reply.body, replayed: false })
        }),
        Handler::Write(h) => {
            let idem = req.idempotency_key.as_ref().map(|k| IdemKey {
                scope: format!("{}:{}:{}", p.user_id, op.id, req.path),
                key: k.clone(),
                hash: hex_sha256(&req.body),
            });
            let mut lost_race = false;
            // Placement-changing writes are serialized per replica: plan,
            // commit and engine update happen as one step.
            let _serial = changes_placement(op).then(|| app.placement.serialize());
            let mut effects = Vec::new();
            let mut nudge: Vec<String> = Vec::new();
            let mut prebuild_isos = false;
            let res = app.store.write(|w| {
                // The store may run this again (a lost deadlock): nothing of
                // an earlier run may leak into this one.
                lost_race = false;
                effects.clear();
                nudge.clear();
                prebuild_isos = false;
                let (tenant, project, role) = resolve(w, op, req, p, seen)?;
                if let Some(k) = &idem {
                    if let Some(stored) = idempotency::lookup(w, &k.scope, &k.key)? {
                        let out = replay(k, stored)?;
                        append(app, w, op, req, Some(p), seen, "replayed", out.status, None)?;
                        return Ok(out);
                    }
                }
                let call = call(app, p, role, tenant.as_ref(), project.as_ref(), req, now);
                let reply = h(&call, w)?;
                append(
                    app,
                    w,
                    op,
                    req,
                    Some(p),
                    seen,
                    "success",
                    reply.status,
                    reply.created.as_deref(),
                )?;
                if let Some(k) = &idem {
                    let response = match (&reply.replay, &reply.body) {
                        (Some(v), _) | (None, Body::Json(v)) => v.to_string(),
                        (None, Body::JsonLines(_) | Body::Empty) => String::new(),
                    };
                    let stored = idempotency::Stored {
                        request_hash: k.hash.clone(),
                        status: reply.status,
                        response,
                    };
                    idempotency::insert(w, &k.scope, &k.key, &stored).map_err(|e| {
                        lost_race = matches!(e, neocloud_store::DbError::Unique(_));
                        e.unique_as(Error::conflict(
                            "a request with this Idempotency-Key is in flight",
                        ))
                    })?;
                }
                // Other replicas replay what this write changed.
                crate::placement::log(w, &reply.effects)?;
                effects = reply.effects;
                nudge = reply.nudge;
                prebuild_isos = reply.prebuild_isos;
                Ok(Outcome { status: reply.status, body: reply.body, replayed: false })
            });
            // New intent for the lifecycle controller: act now, not at the
            // next tick, on the nodes the write names (else on every node).
            if res.is_ok() && changes_placement(op) && nudge.is_empty() {
                app.lifecycle.wake_all();
            }
            if res.is_ok() && changes_fabric(op) {
                app.fabric.wake.notify_one();
            }
            if res.is_ok() {
                for node in &nudge {
                    app.lifecycle.nudge(node);
                }
            }
            if let (true, true, Some(isos)) = (res.is_ok(), prebuild_isos, &app.boot.node_isos) {
                isos.wake.notify_one();
            }
            match &res {
                Ok(_) if !effects.is_empty() => app.placement.commit(effects),
                Ok(_) => {}
                // A conflict on a placement write may mean another replica
                // took the capacity: see the store's truth.
                Err(Error::Conflict { .. }) if changes_placement(op) => app.placement.reload(),
                Err(_) => {}
            }
            match (res, &idem) {
                // A concurrent request with the same key may have committed
                // first: its insert of the key (or of a uniquely named
                // object) made ours fail. Answer with its result.
                (Err(e), Some(k)) if seen.authorized => {
                    match app.store.read(|r| idempotency::lookup(r, &k.scope, &k.key))? {
                        Some(stored) => replay(k, stored),
                        None if lost_race => Err(Error::internal("idempotency record vanished")),
                        None => Err(e),
                    }
                }
                (res, _) => res,
            }
        }
    }
}

/// Writes that change what the fabric controller must push (instances:
/// InfiniBand partitions follow the tenants' nodes).
fn changes_fabric(op: &Op) -> bool {
    op.method.is_mutating()
        && matches!(
            op.resource,
            neocloud_authz::Resource::Fabric
                | neocloud_authz::Resource::Vpc
                | neocloud_authz::Resource::Instance
        )
}

fn changes_placement(op: &Op) -> bool {
    match op.resource {
        neocloud_authz::Resource::Node
        | neocloud_authz::Resource::Allocation
        | neocloud_authz::Resource::Instance => true,
        neocloud_authz::Resource::Fabric
        | neocloud_authz::Resource::Vpc
        | neocloud_authz::Resource::Tenant
        | neocloud_authz::Resource::Project
        | neocloud_authz::Resource::User
        | neocloud_authz::Resource::Membership
        | neocloud_authz::Resource::TenantToken
        | neocloud_authz::Resource::TenantQuota
        | neocloud_authz::Resource::ProjectQuota
        | neocloud_authz::Resource::QuotaClaim
        | neocloud_authz::Resource::TenantAudit
        | neocloud_authz::Resource::ProviderUser
        | neocloud_authz::Resource::ProviderQuota
        | neocloud_authz::Resource::ProviderAudit
        | neocloud_authz::Resource::OwnIdentity
        | neocloud_authz::Resource::InstanceType
        | neocloud_authz::Resource::Capacity
        | neocloud_authz::Resource::Image => false,
    }
}

struct IdemKey {
    scope: String,
    key: String,
    hash: String,
}

fn replay(k: &IdemKey, stored: idempotency::Stored) -> Result<Outcome> {
    if stored.request_hash != k.hash {
        return Err(Error::IdempotencyKeyReused);
    }
    let body = if stored.response.is_empty() {
        Body::Empty
    } else {
        Body::Json(
            serde_json::from_str(&stored.response)
                .map_err(|e| Error::internal(format!("stored idempotent response: {e}")))?,
        )
    };
    Ok(Outcome { status: stored.status, body, replayed: true })
}

fn hex_sha256(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

fn call<'a>(
    app: &'a App,
    p: &'a Principal,
    role: Role,
    tenant: Option<&'a Tenant>,
    project: Option<&'a Project>,
    req: &'a Request,
    now: i64,
) -> Call<'a> {
    Call {
        principal: p,
        role,
        tenant,
        project,
        params: &req.params,
        query: &req.query,
        body: &req.body,
        now,
        placement: &app.placement,
        secrets: &app.secrets,
        planners: &app.planners,
        boot: &app.boot,
        sanitize_before_first_use: app.lifecycle.sanitize_before_first_use,
    }
}

/// Resolves `{tenant}` and `{project}` and asks the policy. Objects the
/// principal may not see are reported exactly like missing ones.
fn resolve(
    r: &mut dyn Reader,
    op: &Op,
    req: &Request,
    p: &Principal,
    seen: &mut Seen,
) -> Result<(Option<Tenant>, Option<Project>, Role)> {
    let param = |name: &str| {
        req.params
            .get(name)
            .ok_or_else(|| Error::internal(format!("route {} has no {{{name}}}", op.path)))
            .and_then(|v| NameOrId::parse(name, v))
    };
    let (tenant, project) = match op.scope {
        Scope::Global | Scope::Own => (None, None),
        Scope::Tenant | Scope::Project => {
            let tkey = param("tenant")?;
            let t = match tenants::lookup(r, &tkey)? {
                Some(t) if p.sees_tenant(&t.id) => t,
                Some(_) | None => return Err(Error::not_found("tenant", tkey.to_string())),
            };
            seen.chain = t.id.clone();
            seen.tenant_id = Some(t.id.clone());
            let project = if op.scope == Scope::Project {
                let pkey = param("project")?;
                match projects::lookup(r, &t.id, &pkey)? {
                    Some(pr) if p.sees_project(&t.id, &pr.id) => Some(pr),
                    Some(_) | None => return Err(Error::not_found("project", pkey.to_string())),
                }
            } else {
                None
            };
            (Some(t), project)
        }
    };
    let target = match (op.scope, &tenant, &project) {
        (Scope::Global, _, _) => Target::Global,
        (Scope::Own, _, _) => Target::Own,
        (Scope::Tenant, Some(t), _) => Target::Tenant { tenant_id: t.id.clone() },
        (Scope::Project, Some(t), Some(pr)) => {
            Target::Project { tenant_id: t.id.clone(), project_id: pr.id.clone() }
        }
        (Scope::Tenant | Scope::Project, _, _) => {
            return Err(Error::internal("scope resolved without its objects"))
        }
    };
    match authorize(p, op.resource, op.action, &target) {
        Decision::Allow(role) => {
            seen.role = Some(role);
            // A suspended tenant is read-only to its own principals; the
            // provider can still act on it (and lift the suspension).
            if op.method.is_mutating()
                && !p.is_provider()
                && tenant.as_ref().is_some_and(|t| t.suspended)
            {
                return Err(Error::Forbidden {
                    action: format!(
                        "{} {} while the tenant is suspended",
                        op.action.as_str(),
                        op.resource.as_str()
                    ),
                });
            }
            seen.authorized = true;
            Ok((tenant, project, role))
        }
        Decision::Deny => Err(Error::Forbidden {
            action: format!("{} {}", op.action.as_str(), op.resource.as_str()),
        }),
        Decision::Hide => match &target {
            Target::Project { .. } => Err(Error::not_found(
                "project",
                req.params.get("project").cloned().unwrap_or_default(),
            )),
            Target::Tenant { .. } | Target::Global | Target::Own => Err(Error::not_found(
                "tenant",
                req.params.get("tenant").cloned().unwrap_or_default(),
            )),
        },
    }
}

#[allow(clippy::too_many_arguments)]
fn append(
    app: &App,
    w: &mut dyn neocloud_store::Writer,
    op: &Op,
    req: &Request,
    p: Option<&Principal>,
    seen: &Seen,
    outcome: &'static str,
    status: u16,
    created: Option<&str>,
) -> Result<()> {
    let target = match created {
        Some(id) => format!("{}/{}", req.path.trim_end_matches('/'), id),
        None => req.path.clone(),
    };
    let role = seen.role.or_else(|| p.and_then(|p| p.grants.iter().map(|g| g.role).min()));
    audit::append(
        w,
        &seen.chain,
        &audit::NewEvent {
            time: now_micros(),
            actor: p.map(|p| p.user_id.clone()).unwrap_or_else(|| "anonymous".into()),
            actor_name: p.map(|p| p.user_name.clone()).unwrap_or_default(),
            token_id: p.map(|p| p.token_id.clone()),
            role: role.map(|r| r.as_str().to_string()),
            tenant_id: seen.tenant_id.clone(),
            action: op.id.to_string(),
            target,
            outcome: outcome.to_string(),
            status,
            request_id: req.request_id.clone(),
        },
    )?;
    app.metrics.audit_event(outcome);
    Ok(())
}

/// Records a refused or failed mutation in its own transaction.
fn record_refusal(
    app: &App,
    op: &Op,
    req: &Request,
    p: Option<&Principal>,
    seen: &Seen,
    e: &Error,
) {
    let outcome = if seen.authorized { "failed" } else { "denied" };
    let status = crate::http_error::status(e).as_u16();
    let res = app.store.write(|w| append(app, w, op, req, p, seen, outcome, status, None));
    if let Err(err) = res {
        app.metrics.background_error("audit");
        tracing::error!(request_id = %req.request_id, error = %err, "could not record audit event");
    }
}
