use neocloud_authz::Role;
use neocloud_common::Name;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UserCreate {
    pub name: Name,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    /// For tenant users: a tenant-wide role to grant at once (optional).
    /// For provider users: required, `provider-admin` or `provider-viewer`.
    #[serde(default)]
    pub role: Option<Role>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UserUpdate {
    pub generation: i64,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct User {
    pub id: String,
    /// `null` for provider users.
    pub tenant_id: Option<String>,
    pub name: String,
    pub display_name: String,
    pub email: String,
    pub generation: i64,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MembershipCreate {
    /// The user (id or name); must belong to this tenant.
    pub user: String,
    pub role: Role,
    /// Limit the role to one project (id or name) of this tenant.
    #[serde(default)]
    pub project: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MembershipUpdate {
    pub generation: i64,
    pub role: Role,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Membership {
    pub id: String,
    pub user_id: String,
    pub role: Role,
    pub tenant_id: Option<String>,
    pub project_id: Option<String>,
    pub generation: i64,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenCreate {
    pub name: Name,
    /// Lifetime in seconds (default 90 days, at most 400 days).
    #[serde(default)]
    pub expires_in_secs: Option<u64>,
    /// Tenant tokens only: the user (id or name) the token acts as; default
    /// the caller.
    #[serde(default)]
    pub user: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Token {
    pub id: String,
    pub user_id: String,
    pub tenant_id: Option<String>,
    pub name: String,
    /// The first characters of the secret, to recognise it.
    pub prefix: String,
    pub expires_at: Option<String>,
    pub revoked_at: Option<String>,
    pub last_used_at: Option<String>,
    pub generation: i64,
    pub created_at: String,
    pub updated_at: String,
}

/// Returned once, on creation: the only time the secret is shown.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct TokenCreated {
    pub token: Token,
    /// The bearer secret. Empty in a replayed answer to an idempotent retry:
    /// secrets are never stored (revoke the token and create another).
    pub secret: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct GrantView {
    pub role: Role,
    pub tenant_id: Option<String>,
    pub project_id: Option<String>,
}

/// The caller.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Me {
    pub user: User,
    pub token_id: String,
    pub grants: Vec<GrantView>,
}
