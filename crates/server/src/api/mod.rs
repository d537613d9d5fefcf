//! The API's route table. Each operation names its method, path, the
//! resource and action the policy checks, its request and response types
//! (from which the OpenAPI document is derived) and its handler.
//!
//! Handlers are plain functions over one store transaction: read handlers get
//! a [`Reader`], write handlers a [`Writer`]. They never retry and never
//! decide authorization: the dispatcher has resolved the path's tenant and
//! project and checked the policy before a handler runs, and records the
//! audit event in the handler's own transaction.

mod allocations;
mod attachments;
mod audit;
mod fabrics;
mod firmware_baselines;
mod identity;
mod images;
mod instance_types;
mod instances;
mod memberships;
mod nodes;
mod projects;
mod provisioning_networks;
mod quotas;
mod tenants;
mod tokens;
mod users;
mod vpc_policy;
mod vpcs;

use neocloud_authz::{Action, Principal, Resource, Role};
use neocloud_common::{Error, NameOrId, Result};
use neocloud_store::{Reader, Writer};
use neocloud_types::{Project, Tenant};
use schemars::gen::SchemaGenerator;
use schemars::schema::Schema;
use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::collections::HashMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Method {
    Get,
    Post,
    Put,
    Patch,
    Delete,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
        }
    }

    pub fn lower(self) -> &'static str {
        match self {
            Method::Get => "get",
            Method::Post => "post",
            Method::Put => "put",
            Method::Patch => "patch",
            Method::Delete => "delete",
        }
    }

    /// Whether requests with this method change state (and are audited).
    pub fn is_mutating(self) -> bool {
        match self {
            Method::Get => false,
            Method::Post | Method::Put | Method::Patch | Method::Delete => true,
        }
    }
}

/// What the policy is asked about, from the path's shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Provider-wide collections.
    Global,
    /// The caller's own identity.
    Own,
    /// Under `/v1/tenants/{tenant}`.
    Tenant,
    /// Under `/v1/tenants/{tenant}/projects/{project}`.
    Project,
}

pub type SchemaFn = fn(&mut SchemaGenerator) -> Schema;

pub fn schema<T: JsonSchema>(g: &mut SchemaGenerator) -> Schema {
    g.subschema_for::<T>()
}

#[derive(Debug, Clone, Copy)]
pub enum QueryKind {
    Integer,
    String,
}

#[derive(Debug, Clone, Copy)]
pub struct QueryParam {
    pub name: &'static str,
    pub kind: QueryKind,
    pub description: &'static str,
}

/// What a successful call answers.
#[derive(Clone, Copy)]
pub enum Resp {
    /// JSON with this status.
    Json(u16, SchemaFn),
    /// 204, no body.
    Empty,
    /// JSON, or JSON lines with `format=jsonl` (the schema is of one line).
    JsonOrLines(SchemaFn, SchemaFn),
}

pub enum Handler {
    Read(fn(&Call<'_>, &mut dyn Reader) -> Result<Reply>),
    Write(fn(&Call<'_>, &mut dyn Writer) -> Result<Reply>),
}

pub struct Op {
    /// The OpenAPI operationId and the audit trail's action name.
    pub id: &'static str,
    pub method: Method,
    pub path: &'static str,
    pub summary: &'static str,
    pub tag: &'static str,
    pub resource: Resource,
    pub action: Action,
    pub scope: Scope,
    pub query: &'static [QueryParam],
    pub request: Option<SchemaFn>,
    pub response: Resp,
    /// Accepts an `Idempotency-Key` header (creates, and actions whose
    /// repeat would act twice).
    pub idempotent: bool,
    pub handler: Handler,
}

/// The body of a successful reply.
pub enum Body {
    Json(serde_json::Value),
    JsonLines(String),
    Empty,
}

pub struct Reply {
    pub status: u16,
    pub body: Body,
    /// The id of a created object, appended to the audit target.
    pub created: Option<String>,
    /// What an idempotent retry replays, where it must differ from the body
    /// (secrets are never stored).
    pub replay: Option<serde_json::Value>,
    /// Changes to the placement engine, applied once the write commits.
    pub effects: Vec<crate::placement::Effect>,
    /// Nodes whose lifecycle step this write gave work (stepped at once
    /// once it commits).
    pub nudge: Vec<String>,
    /// A node's static provisioning address was set: its ISO is built
    /// ahead of its boot once the write commits.
    pub prebuild_isos: bool,
}

impl Reply {
    /// Adds an engine change to apply after commit.
    /// Names a node whose lifecycle step this write gave work.
    pub fn with_nudge(mut self, node_id: &str) -> Reply {
        self.nudge.push(node_id.to_string());
        self
    }

    /// Asks for the per-node ISOs to be built once the write commits.
    pub fn with_iso_prebuild(mut self, set: bool) -> Reply {
        self.prebuild_isos |= set;
        self
    }

    pub fn with_effect(mut self, e: crate::placement::Effect) -> Reply {
        self.effects.push(e);
        self
    }

    pub fn ok<T: Serialize>(v: &T) -> Result<Reply> {
        Ok(Reply {
            status: 200,
            body: Body::Json(to_json(v)?),
            created: None,
            replay: None,
            effects: Vec::new(),
            nudge: Vec::new(),
            prebuild_isos: false,
        })
    }

    pub fn created<T: Serialize>(id: &str, v: &T) -> Result<Reply> {
        Ok(Reply {
            status: 201,
            body: Body::Json(to_json(v)?),
            created: Some(id.to_string()),
            replay: None,
            effects: Vec::new(),
            nudge: Vec::new(),
            prebuild_isos: false,
        })
    }

    /// A created token: the secret is answered once and never stored, so a
    /// replayed create returns the token with an empty secret.
    pub fn created_token(created: &neocloud_types::TokenCreated) -> Result<Reply> {
        let mut r = Reply::created(&created.token.id, created)?;
        let mut redacted = created.clone();
        redacted.secret = String::new();
        r.replay = Some(to_json(&redacted)?);
        Ok(r)
    }

    pub fn empty() -> Result<Reply> {
        Ok(Reply {
            status: 204,
            body: Body::Empty,
            created: None,
            replay: None,
            effects: Vec::new(),
            nudge: Vec::new(),
            prebuild_isos: false,
        })
    }
}

fn to_json<T: Serialize>(v: &T) -> Result<serde_json::Value> {
    serde_json::to_value(v).map_err(|e| Error::internal(format!("serialize reply: {e}")))
}

/// Everything a handler may look at.
pub struct Call<'a> {
    pub principal: &'a Principal,
    /// The role that allowed the call.
    pub role: Role,
    pub tenant: Option<&'a Tenant>,
    pub project: Option<&'a Project>,
    pub params: &'a HashMap<String, String>,
    pub query: &'a HashMap<String, String>,
    pub body: &'a [u8],
    pub now: i64,
    pub placement: &'a crate::placement::PlacementService,
    pub secrets: &'a crate::secrets::SecretBox,
    pub planners: &'a crate::network::planners::Planners,
    /// How nodes boot (the boot service's settings).
    pub boot: &'a crate::boot::handlers::BootConfig,
    /// A new node is sanitized before it joins the pool
    /// (`sanitize_before_first_use`).
    pub sanitize_before_first_use: bool,
}

impl Call<'_> {
    /// Parses the JSON body, naming the offending field on error.
    pub fn body<T: DeserializeOwned>(&self) -> Result<T> {
        parse_body(self.body)
    }

    pub fn tenant(&self) -> Result<&Tenant> {
        self.tenant.ok_or_else(|| Error::internal("route has no tenant"))
    }

    pub fn project(&self) -> Result<&Project> {
        self.project.ok_or_else(|| Error::internal("route has no project"))
    }

    /// A path parameter, as a name or an id.
    pub fn key(&self, name: &str) -> Result<NameOrId> {
        let v = self
            .params
            .get(name)
            .ok_or_else(|| Error::internal(format!("route has no {{{name}}} parameter")))?;
        NameOrId::parse(name, v)
    }

    /// An integer query parameter within `[min, max]`.
    pub fn query_int(&self, name: &str, default: i64, min: i64, max: i64) -> Result<i64> {
        match self.query.get(name) {
            None => Ok(default),
            Some(v) => match v.parse::<i64>() {
                Ok(n) if (min..=max).contains(&n) => Ok(n),
                Ok(_) => {
                    Err(Error::invalid_value(name, format!("must be between {min} and {max}")))
                }
                Err(_) => Err(Error::invalid_request(name, "must be an integer")),
            },
        }
    }

    pub fn query_str(&self, name: &str) -> Option<&str> {
        self.query.get(name).map(String::as_str)
    }
}

/// JSON body parsing: malformed JSON and wrong shapes are 400 naming the
/// field (its JSON path); values that parse but are unacceptable are the
/// handlers' 422s.
pub fn parse_body<T: DeserializeOwned>(body: &[u8]) -> Result<T> {
    // Objects only: serde's derived structs would also take positional arrays.
    match body.iter().find(|b| !b.is_ascii_whitespace()) {
        None => return Err(Error::invalid_request("body", "a JSON body is required")),
        Some(b'{') => {}
        Some(_) => return Err(Error::invalid_request("body", "the body must be a JSON object")),
    }
    let mut de = serde_json::Deserializer::from_slice(body);
    let v: T = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let msg = inner.to_string();
        let field = match (inner.classify(), extract_ticked(&msg)) {
            // The path points at the object missing the field: append it.
            (serde_json::error::Category::Data, Some(name)) if msg.starts_with("missing field") => {
                if path == "." {
                    name.to_string()
                } else {
                    format!("{path}.{name}")
                }
            }
            (serde_json::error::Category::Syntax | serde_json::error::Category::Eof, _) => {
                "body".to_string()
            }
            // Unknown fields and wrong types: the path ends at the field.
            _ if path == "." => "body".to_string(),
            _ => path,
        };
        let msg = match msg.find(" at line ") {
            Some(i) => msg[..i].to_string(),
            None => msg,
        };
        Error::invalid_request(field, msg)
    })?;
    de.end()
        .map_err(|_| Error::invalid_request("body", "trailing characters after the JSON value"))?;
    Ok(v)
}

fn extract_ticked(msg: &str) -> Option<&str> {
    let start = msg.find('`')? + 1;
    let len = msg[start..].find('`')?;
    Some(&msg[start..start + len])
}

/// Every operation of the API, in documentation order.
pub fn ops() -> Vec<Op> {
    let mut v = Vec::new();
    v.extend(identity::ops());
    v.extend(tenants::ops());
    v.extend(projects::ops());
    v.extend(users::ops());
    v.extend(memberships::ops());
    v.extend(tokens::ops());
    v.extend(quotas::ops());
    v.extend(audit::ops());
    v.extend(nodes::ops());
    v.extend(instance_types::ops());
    v.extend(allocations::ops());
    v.extend(images::ops());
    v.extend(firmware_baselines::ops());
    v.extend(provisioning_networks::ops());
    v.extend(instances::ops());
    v.extend(fabrics::ops());
    v.extend(vpcs::ops());
    v.extend(attachments::ops());
    v.extend(vpc_policy::ops());
    v
}

/// The operations of one API module: the resource they are authorized
/// against, their OpenAPI tag and their scope. Each module declares its
/// group once (`const API: OpGroup = OpGroup::global(Resource::Image,
/// "images")`) and builds its operations with [`OpGroup::op`].
#[derive(Clone, Copy)]
pub(super) struct OpGroup {
    resource: Resource,
    tag: &'static str,
    scope: Scope,
}

impl OpGroup {
    /// Provider-scope operations.
    pub const fn global(resource: Resource, tag: &'static str) -> OpGroup {
        OpGroup { resource, tag, scope: Scope::Global }
    }

    /// Project-scope operations.
    pub const fn project(resource: Resource, tag: &'static str) -> OpGroup {
        OpGroup { resource, tag, scope: Scope::Project }
    }

    /// An operation of the group without query parameters; creates take an
    /// `Idempotency-Key`.
    #[allow(clippy::too_many_arguments)]
    pub fn op(
        &self,
        id: &'static str,
        method: Method,
        path: &'static str,
        summary: &'static str,
        action: Action,
        request: Option<SchemaFn>,
        response: Resp,
        handler: Handler,
    ) -> Op {
        Op {
            id,
            method,
            path,
            summary,
            tag: self.tag,
            resource: self.resource,
            action,
            scope: self.scope,
            query: &[],
            request,
            response,
            idempotent: action == Action::Create,
            handler,
        }
    }
}

pub const LIMIT_PARAM: QueryParam = QueryParam {
    name: "limit",
    kind: QueryKind::Integer,
    description: "Page size (1-1000, default 100).",
};

#[cfg(test)]
mod tests {
    use super::*;
    use neocloud_types::TenantCreate;

    fn field_of(body: &str) -> (String, String) {
        match parse_body::<TenantCreate>(body.as_bytes()) {
            Err(Error::InvalidRequest { field, message }) => (field.unwrap_or_default(), message),
            other => panic!("{body}: expected InvalidRequest, got {other:?}"),
        }
    }

    #[test]
    fn body_errors_name_the_field() {
        assert_eq!(field_of("{").0, "body");
        assert_eq!(field_of("").0, "body");
        assert_eq!(field_of("[1]").0, "body");
        assert_eq!(field_of(r#"{"name": "ok", "bogus": 1}"#).0, "bogus");
        assert_eq!(field_of(r#"{"display_name": "x"}"#).0, "name");
        assert_eq!(field_of(r#"{"name": 5}"#).0, "name");
        assert_eq!(field_of(r#"{"name": "Bad_Name"}"#).0, "name");
        assert_eq!(field_of(r#"{"name": "ok"} x"#).0, "body");
        assert_eq!(field_of(r#"["zz"]"#).0, "body");
        assert_eq!(field_of(r#"  [1, "Z"]"#).0, "body");
        assert_eq!(field_of(r#"{"bogus": 1}"#).0, "bogus");
        let (_, msg) = field_of(r#"{"name": "ok", "description": 7}"#);
        assert!(!msg.contains("line"), "{msg}");
    }
}
