//! The provider's firmware baselines: the versions a system model must
//! run. A clean node of that model whose inspection finds another version
//! of a listed component fails; every sanitization checks them.

use neocloud_common::Name;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct FirmwareBaseline {
    pub id: String,
    pub name: String,
    /// The system model as the BMC reports it (`Model`): unique.
    pub model: String,
    /// Component id (as the BMC's firmware inventory names it) to version.
    pub components: BTreeMap<String, String>,
    pub description: String,
    pub generation: i64,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FirmwareBaselineCreate {
    pub name: Name,
    /// The system model as the BMC reports it, e.g. `DGX H100`.
    pub model: String,
    /// At least one component id to its version.
    pub components: BTreeMap<String, String>,
    #[serde(default)]
    pub description: String,
}

/// A new set of versions (replacing the old one whole) or description.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FirmwareBaselineUpdate {
    pub generation: i64,
    #[serde(default)]
    pub components: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub description: Option<String>,
}
