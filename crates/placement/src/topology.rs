//! The inventory as placement sees it: site -> pod (a group of scalable
//! units sharing a spine) -> scalable unit (SU: nodes rail-aligned on one
//! set of leaves, one leaf hop per rail) -> rack -> node -> GPUs.
//!
//! NVLink domains: an HGX 8-GPU node is one domain; an NVL72 rack is one
//! domain of 72 GPUs over 18 trays (each tray a node of 4 GPUs). Nodes
//! carry the id of their domain, so both shapes are the same model.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Whether the scheduler may use a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Availability {
    Schedulable,
    Maintenance,
    Failed,
}

/// One node's placement-relevant inventory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct NodeSpec {
    pub id: String,
    pub name: String,
    pub site: String,
    pub pod: String,
    pub su: String,
    pub rack: String,
    /// The NVLink domain: the node itself (HGX) or the rack (NVL72).
    pub nvlink_domain: String,
    /// GPU model key, e.g. `h100-80gb`.
    pub gpu_model: String,
    /// GPUs on the node (at most 16).
    pub gpus: u8,
    /// Whether the GPUs may be partitioned with MIG.
    pub mig_capable: bool,
    pub availability: Availability,
}

/// Parameters of a simulated fleet of HGX nodes (for the demo and the
/// scale benchmarks; never a stand-in for real inventory in driver tests).
#[derive(Debug, Clone)]
pub struct SimulatedFleet {
    pub nodes: usize,
    pub nodes_per_su: usize,
    pub sus_per_pod: usize,
    pub nodes_per_rack: usize,
    pub gpu_model: String,
    pub gpus_per_node: u8,
}

impl SimulatedFleet {
    /// DGX-SuperPOD-like: SUs of 32 nodes, 4 nodes per rack, 4 SUs per pod.
    pub fn hgx(nodes: usize, gpu_model: &str) -> SimulatedFleet {
        SimulatedFleet {
            nodes,
            nodes_per_su: 32,
            sus_per_pod: 4,
            nodes_per_rack: 4,
            gpu_model: gpu_model.to_string(),
            gpus_per_node: 8,
        }
    }

    pub fn build(&self) -> Vec<NodeSpec> {
        (0..self.nodes)
            .map(|i| {
                let su = i / self.nodes_per_su;
                let pod = su / self.sus_per_pod;
                let rack = i / self.nodes_per_rack;
                let name = format!("sim-node-{i:05}");
                NodeSpec {
                    id: format!("sim-{i:05}"),
                    nvlink_domain: name.clone(),
                    name,
                    site: "sim-site".into(),
                    pod: format!("pod-{pod:03}"),
                    su: format!("su-{su:04}"),
                    rack: format!("rack-{rack:04}"),
                    gpu_model: self.gpu_model.clone(),
                    gpus: self.gpus_per_node,
                    mig_capable: true,
                    availability: Availability::Schedulable,
                }
            })
            .collect()
    }
}
