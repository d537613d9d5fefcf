//! Audit trails: a tenant reads (and exports as JSON lines) its own chain;
//! the provider reads every chain.

use super::{
    schema, Body, Call, Handler, Method, Op, QueryKind, QueryParam, Reply, Resp, Scope, LIMIT_PARAM,
};
use neocloud_authz::{Action, Resource};
use neocloud_common::{Error, Result};
use neocloud_store::{audit, Reader};
use neocloud_types::{AuditEvent, List};

const AFTER_SEQ: QueryParam = QueryParam {
    name: "after_seq",
    kind: QueryKind::Integer,
    description: "Only events after this sequence number of the chain (default 0).",
};
const FORMAT: QueryParam = QueryParam {
    name: "format",
    kind: QueryKind::String,
    description: "`json` (default) or `jsonl` for one event per line (export).",
};
const AFTER: QueryParam = QueryParam {
    name: "after",
    kind: QueryKind::String,
    description: "Cursor: the `id` of the last event of the previous page.",
};

pub(super) fn ops() -> Vec<Op> {
    vec![
        Op {
            id: "tenant_audit_list",
            method: Method::Get,
            path: "/v1/tenants/{tenant}/audit",
            summary: "The tenant's audit trail, in chain order",
            tag: "audit",
            resource: Resource::TenantAudit,
            action: Action::List,
            scope: Scope::Tenant,
            query: &[AFTER_SEQ, LIMIT_PARAM, FORMAT],
            request: None,
            response: Resp::JsonOrLines(schema::<List<AuditEvent>>, schema::<AuditEvent>),
            idempotent: false,
            handler: Handler::Read(tenant_list),
        },
        Op {
            id: "provider_audit_list",
            method: Method::Get,
            path: "/v1/audit",
            summary: "Every audit event, all chains, in time order",
            tag: "audit",
            resource: Resource::ProviderAudit,
            action: Action::List,
            scope: Scope::Global,
            query: &[AFTER, LIMIT_PARAM, FORMAT],
            request: None,
            response: Resp::JsonOrLines(schema::<List<AuditEvent>>, schema::<AuditEvent>),
            idempotent: false,
            handler: Handler::Read(provider_list),
        },
    ]
}

fn render(c: &Call<'_>, items: Vec<AuditEvent>) -> Result<Reply> {
    match c.query_str("format").unwrap_or("json") {
        "json" => Reply::ok(&List { items }),
        "jsonl" => {
            let mut out = String::new();
            for e in &items {
                out.push_str(
                    &serde_json::to_string(e).map_err(|e| Error::internal(e.to_string()))?,
                );
                out.push('\n');
            }
            Ok(Reply {
                status: 200,
                body: Body::JsonLines(out),
                created: None,
                replay: None,
                effects: Vec::new(),
                nudge: Vec::new(),
                prebuild_isos: false,
            })
        }
        _ => Err(Error::invalid_value("format", "must be json or jsonl")),
    }
}

fn tenant_list(c: &Call<'_>, r: &mut dyn Reader) -> Result<Reply> {
    let after = c.query_int("after_seq", 0, 0, i64::MAX)?;
    let limit = c.query_int("limit", 100, 1, 1000)?;
    let items = audit::list_chain(r, &c.tenant()?.id, after, limit)?;
    render(c, items)
}

fn provider_list(c: &Call<'_>, r: &mut dyn Reader) -> Result<Reply> {
    let limit = c.query_int("limit", 100, 1, 1000)?;
    let after = match c.query_str("after") {
        None => None,
        Some(id) => {
            let t = audit::event_time(r, id)?
                .ok_or_else(|| Error::invalid_value("after", "no audit event with this id"))?;
            Some((t, id.to_string()))
        }
    };
    let items = audit::list_all(r, after.as_ref().map(|(t, id)| (*t, id.as_str())), limit)?;
    render(c, items)
}
