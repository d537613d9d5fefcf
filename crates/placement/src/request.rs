//! What an allocation asks for, and what the engine answers.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The shape of an allocation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Shape {
    /// Whole nodes of a GPU model; `count` > 1 is a gang: all or nothing.
    Nodes { gpu_model: String, count: u32 },
    /// GPUs inside one NVLink domain (one HGX node, or one NVL72 rack).
    Gpus { gpu_model: String, count: u8 },
    /// One MIG slice of a profile, e.g. `1g.10gb` on `h100-80gb`.
    Mig { gpu_model: String, profile: String },
}

impl Shape {
    pub fn gpu_model(&self) -> &str {
        match self {
            Shape::Nodes { gpu_model, .. }
            | Shape::Gpus { gpu_model, .. }
            | Shape::Mig { gpu_model, .. } => gpu_model,
        }
    }
}

/// How far apart the nodes of a gang may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// Anywhere (the engine still minimizes the SUs spanned).
    #[default]
    Any,
    /// One pod (a group of SUs on one spine layer).
    Pod,
    /// One scalable unit: every rail one leaf hop away.
    Su,
    Rack,
}

/// Which free capacity to take first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Policy {
    /// Fill partly used nodes and SUs first, keeping large blocks free.
    #[default]
    Pack,
    /// Prefer the emptiest nodes and SUs.
    Spread,
}

/// Limits where an allocation may land.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Constraints {
    #[serde(default)]
    pub scope: Scope,
    #[serde(default)]
    pub policy: Policy,
    /// No two allocations of the same group share a node.
    #[serde(default)]
    pub anti_affinity: Option<String>,
    /// Only inside this pod, SU or rack (by name).
    #[serde(default)]
    pub within: Option<Within>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "level", content = "name", rename_all = "snake_case")]
pub enum Within {
    Pod(String),
    Su(String),
    Rack(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Request {
    pub shape: Shape,
    #[serde(default)]
    pub constraints: Constraints,
}

/// One MIG GPU instance.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub struct MigSlice {
    pub gpu: u8,
    pub profile: String,
    /// Start index on the GPU's 8 memory slices.
    pub start: u8,
}

/// What one node contributes to an allocation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Assignment {
    pub node_id: String,
    /// Whole GPUs (all of them for a whole node; empty for a MIG slice).
    pub gpus: Vec<u8>,
    pub whole_node: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mig: Option<MigSlice>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Placement {
    pub assignments: Vec<Assignment>,
}

/// Why a request cannot be met, with the capacity that is free.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct NoFit {
    /// The constraint that could not be met: `gpu_model`, `capacity`,
    /// `scope`, `within`, `anti_affinity`, `nvlink_domain`, `mig_profile`.
    pub constraint: String,
    pub message: String,
}

impl NoFit {
    pub fn new(constraint: &str, message: impl Into<String>) -> NoFit {
        NoFit { constraint: constraint.to_string(), message: message.into() }
    }
}

impl Placement {
    /// The (node, GPU, memory slice) units the placement holds: every slice
    /// of a whole GPU, the profile's slices of a MIG instance. The store
    /// keys allocations on these, so overlapping placements cannot commit.
    pub fn units(&self, gpu_model: &str) -> Vec<(String, u8, u8)> {
        let mig = crate::mig::GpuModel::parse(gpu_model);
        let mut out = Vec::new();
        for a in &self.assignments {
            match &a.mig {
                Some(m) => {
                    let size = mig
                        .and_then(|g| g.profile(&m.profile))
                        .map(|p| p.memory_slices)
                        .unwrap_or(8);
                    out.extend(
                        (m.start..m.start.saturating_add(size))
                            .map(|s| (a.node_id.clone(), m.gpu, s)),
                    );
                }
                None => {
                    for g in &a.gpus {
                        out.extend((0..8).map(|s| (a.node_id.clone(), *g, s)));
                    }
                }
            }
        }
        out
    }

    /// Whole GPUs held (MIG slices not counted).
    pub fn gpu_count(&self) -> u32 {
        self.assignments.iter().map(|a| a.gpus.len() as u32).sum()
    }
}
