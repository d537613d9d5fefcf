//! The OpenAPI 3.0 document, derived from the route table and the API types.
//! The checked-in copy under `openapi/` is compared with this in a test.

use crate::api::{Op, QueryKind, Resp};
use neocloud_types::ErrorBody;
use schemars::gen::{SchemaGenerator, SchemaSettings};
use serde_json::{json, Map, Value};

const ERRORS: [(u16, &str); 9] = [
    (400, "Malformed request: bad JSON, unknown field, wrong type, bad parameter"),
    (401, "Missing, unknown, expired or revoked token"),
    (403, "The caller's roles do not allow this"),
    (404, "Not found, or not visible to the caller"),
    (409, "Conflict: exists already, stale generation, quota exceeded"),
    (413, "Body too large"),
    (422, "A value is not acceptable"),
    (429, "Too many requests"),
    (503, "Temporarily unavailable"),
];

fn path_params(path: &str) -> Vec<&str> {
    path.split('/').filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}'))).collect()
}

fn to_value(s: schemars::schema::Schema) -> Value {
    serde_json::to_value(s).unwrap_or(Value::Null)
}

pub fn document(ops: &[Op]) -> Value {
    let mut settings = SchemaSettings::openapi3();
    settings.option_add_null_type = false;
    let mut gen = SchemaGenerator::new(settings);
    let error_schema = to_value(gen.subschema_for::<ErrorBody>());
    let mut paths = Map::new();
    for op in ops {
        let mut o = Map::new();
        o.insert("operationId".into(), json!(op.id));
        o.insert("summary".into(), json!(op.summary));
        o.insert("tags".into(), json!([op.tag]));
        o.insert(
            "x-neocloud-authz".into(),
            json!({"resource": op.resource.as_str(), "action": op.action.as_str()}),
        );
        let mut params: Vec<Value> = path_params(op.path)
            .into_iter()
            .map(|p| {
                json!({"name": p, "in": "path", "required": true,
                       "description": "Name or id.", "schema": {"type": "string"}})
            })
            .collect();
        for q in op.query {
            let ty = match q.kind {
                QueryKind::Integer => "integer",
                QueryKind::String => "string",
            };
            params.push(json!({"name": q.name, "in": "query", "required": false,
                               "description": q.description, "schema": {"type": ty}}));
        }
        if op.idempotent {
            params.push(json!({"name": "Idempotency-Key", "in": "header", "required": false,
                "description": "Makes retries safe: a repeated request with the same key returns the first result.",
                "schema": {"type": "string", "maxLength": 255}}));
        }
        if !params.is_empty() {
            o.insert("parameters".into(), Value::Array(params));
        }
        if let Some(req) = op.request {
            o.insert(
                "requestBody".into(),
                json!({"required": true, "content": {"application/json": {"schema": to_value(req(&mut gen))}}}),
            );
        }
        let mut responses = Map::new();
        match op.response {
            Resp::Json(status, s) => {
                responses.insert(
                    status.to_string(),
                    json!({"description": "Success", "content": {"application/json": {"schema": to_value(s(&mut gen))}}}),
                );
            }
            Resp::Empty => {
                responses.insert("204".into(), json!({"description": "Done"}));
            }
            Resp::JsonOrLines(list, line) => {
                responses.insert(
                    "200".into(),
                    json!({"description": "Success", "content": {
                        "application/json": {"schema": to_value(list(&mut gen))},
                        "application/x-ndjson": {"schema": to_value(line(&mut gen))}}}),
                );
            }
        }
        for (code, _) in ERRORS {
            responses.insert(
                code.to_string(),
                json!({"$ref": format!("#/components/responses/Error{code}")}),
            );
        }
        o.insert("responses".into(), Value::Object(responses));
        let entry = paths.entry(op.path.to_string()).or_insert_with(|| json!({}));
        if let Value::Object(m) = entry {
            m.insert(op.method.lower().into(), Value::Object(o));
        }
    }
    let error_responses: Map<String, Value> = ERRORS
        .iter()
        .map(|(code, desc)| {
            (
                format!("Error{code}"),
                json!({"description": desc, "content": {"application/json": {"schema": error_schema.clone()}}}),
            )
        })
        .collect();
    let schemas: Map<String, Value> =
        gen.take_definitions().into_iter().map(|(k, v)| (k, to_value(v))).collect();
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "neocloud API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "The neocloud control plane's API. Every operation takes a bearer token; x-neocloud-authz names the resource and action the policy checks.",
            "license": {"name": "Apache-2.0"}
        },
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "responses": error_responses,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}
        }
    })
}

/// The document as checked in: pretty JSON with a trailing newline.
pub fn render(ops: &[Op]) -> String {
    let mut s = serde_json::to_string_pretty(&document(ops)).unwrap_or_default();
    s.push('\n');
    s
}
