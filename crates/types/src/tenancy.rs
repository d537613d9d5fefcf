use neocloud_common::Name;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TenantCreate {
    pub name: Name,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TenantUpdate {
    /// The generation this update is based on; a stale one gets 409.
    pub generation: i64,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    /// A suspended tenant's principals can read but not change anything.
    #[serde(default)]
    pub suspended: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Tenant {
    pub id: String,
    pub name: String,
    pub display_name: String,
    pub description: String,
    pub suspended: bool,
    pub generation: i64,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProjectCreate {
    pub name: Name,
    #[serde(default)]
    pub description: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProjectUpdate {
    pub generation: i64,
    #[serde(default)]
    pub description: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Project {
    pub id: String,
    pub tenant_id: String,
    pub name: String,
    pub description: String,
    pub generation: i64,
    pub created_at: String,
    pub updated_at: String,
}

/// Longest free-text field (descriptions, display names) accepted.
pub const MAX_TEXT: usize = 1024;

/// Checks a free-text field's length.
pub fn check_text(field: &str, v: &Option<String>) -> Result<(), neocloud_common::Error> {
    match v {
        Some(s) if s.len() > MAX_TEXT => Err(neocloud_common::Error::invalid_value(
            field,
            format!("must be at most {MAX_TEXT} bytes"),
        )),
        Some(s) if s.chars().any(|c| c.is_control() && c != '\n' && c != '\t') => {
            Err(neocloud_common::Error::invalid_value(field, "must not contain control characters"))
        }
        _ => Ok(()),
    }
}
