//! The external API's types: request parameters (`*Create`, `*Update`) and
//! views. Shared by the server (which derives the OpenAPI document from them)
//! and the CLI. Requests reject unknown fields.

mod audit;
mod baremetal;
mod boot_network;
mod firmware;
mod identity;
mod inventory;
mod network;
mod quota;
mod tenancy;

pub use audit::*;
pub use baremetal::*;
pub use boot_network::*;
pub use firmware::*;
pub use identity::*;
pub use inventory::*;
pub use network::*;
pub use quota::*;
pub use tenancy::*;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The body of every error response.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct ErrorDetail {
    /// Stable machine-readable code, e.g. `invalid_value`, `generation_mismatch`.
    pub code: String,
    pub message: String,
    /// The request field (JSON path, path or query parameter, header) to fix.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    pub request_id: String,
}

/// A page of results.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct List<T> {
    pub items: Vec<T>,
}

/// Health and readiness.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Health {
    pub status: String,
}

/// `null` read as `Some(None)` (clear), an absent field as `None` (keep).
pub(crate) fn some_or_null<'de, D, T>(d: D) -> std::result::Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}
