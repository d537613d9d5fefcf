use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// One entry of the append-only, hash-chained audit trail. Each tenant has
/// its own chain; provider-scope actions go to the `provider` chain.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct AuditEvent {
    pub id: String,
    /// `provider` or the tenant id.
    pub chain: String,
    /// Position in the chain, from 1, without gaps.
    pub seq: i64,
    pub time: String,
    /// The user id of the actor, or `anonymous`.
    pub actor: String,
    pub actor_name: String,
    pub token_id: Option<String>,
    /// The role that allowed (or would have allowed) the action.
    pub role: Option<String>,
    pub tenant_id: Option<String>,
    /// The API operation (its OpenAPI operationId), e.g. `project_create`.
    pub action: String,
    /// The request path; for creates, with the new object's id appended.
    pub target: String,
    /// `success`, `replayed` (an idempotent retry), `denied` (authentication,
    /// authorization or rate limit) or `failed` (allowed, then refused).
    pub outcome: String,
    pub status: u16,
    pub request_id: String,
    pub prev_hash: String,
    pub hash: String,
}
