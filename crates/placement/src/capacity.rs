//! The capacity view: free and used per GPU model, per SU and per rack,
//! with a fragmentation figure.

use crate::topology::{Availability, NodeSpec};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Counts for one group of nodes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Counts {
    pub nodes: u32,
    /// Nodes out of service: in maintenance, failed, or being enrolled,
    /// inspected, released or sanitized (a tenant's node, provisioning or
    /// handed over, is in service and full).
    pub unavailable_nodes: u32,
    /// Schedulable nodes with nothing allocated.
    pub free_nodes: u32,
    pub gpus: u32,
    /// Whole GPUs free on schedulable nodes.
    pub free_gpus: u32,
    /// GPUs in MIG mode, and their free memory slices (of 8 each).
    pub mig_gpus: u32,
    pub mig_free_slices: u32,
    /// Share of free GPUs that are not on entirely free nodes (0: every
    /// free GPU is on a free node; 1: no whole node can be given out).
    pub fragmentation: f64,
}

impl Counts {
    fn add(&mut self, v: &NodeView<'_>) {
        self.nodes += 1;
        self.gpus += v.spec.gpus as u32;
        if v.spec.availability != Availability::Schedulable {
            self.unavailable_nodes += 1;
            return;
        }
        let fully_free = !v.whole_allocated && v.free_gpus == v.spec.gpus;
        if fully_free {
            self.free_nodes += 1;
        }
        self.free_gpus += v.free_gpus as u32;
        self.mig_gpus += v.mig_gpus as u32;
        self.mig_free_slices += v.mig_free_slices;
    }

    fn finish(&mut self, gpus_on_free_nodes: u32) {
        self.fragmentation = if self.free_gpus == 0 {
            0.0
        } else {
            1.0 - gpus_on_free_nodes as f64 / self.free_gpus as f64
        };
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ModelCapacity {
    pub gpu_model: String,
    pub total: Counts,
    /// Keyed `pod/su`.
    pub by_su: BTreeMap<String, Counts>,
    /// Keyed `pod/su/rack`.
    pub by_rack: BTreeMap<String, Counts>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Capacity {
    pub models: Vec<ModelCapacity>,
}

/// What the engine knows of one node's usage.
pub struct NodeView<'a> {
    pub spec: &'a NodeSpec,
    pub free_gpus: u8,
    pub whole_allocated: bool,
    pub mig_gpus: u8,
    pub mig_free_slices: u32,
}

/// Per model: the view, GPUs on free nodes per SU and per rack, and in total.
type Acc = (ModelCapacity, BTreeMap<String, u32>, BTreeMap<String, u32>, u32);

pub fn build<'a>(nodes: impl Iterator<Item = NodeView<'a>>) -> Capacity {
    let mut models: BTreeMap<String, Acc> = BTreeMap::new();
    for v in nodes {
        let e = models.entry(v.spec.gpu_model.clone()).or_insert_with(|| {
            (
                ModelCapacity { gpu_model: v.spec.gpu_model.clone(), ..Default::default() },
                BTreeMap::new(),
                BTreeMap::new(),
                0,
            )
        });
        let on_free = if v.spec.availability == Availability::Schedulable
            && !v.whole_allocated
            && v.free_gpus == v.spec.gpus
        {
            v.spec.gpus as u32
        } else {
            0
        };
        e.0.total.add(&v);
        // Keyed by path: `pod/su` and `pod/su/rack` (names repeat across pods).
        let su = format!("{}/{}", v.spec.pod, v.spec.su);
        let rack = format!("{su}/{}", v.spec.rack);
        e.0.by_su.entry(su.clone()).or_default().add(&v);
        e.0.by_rack.entry(rack.clone()).or_default().add(&v);
        *e.1.entry(su).or_default() += on_free;
        *e.2.entry(rack).or_default() += on_free;
        e.3 += on_free;
    }
    Capacity {
        models: models
            .into_values()
            .map(|(mut m, su_free, rack_free, total_free)| {
                m.total.finish(total_free);
                for (k, c) in m.by_su.iter_mut() {
                    c.finish(su_free.get(k).copied().unwrap_or(0));
                }
                for (k, c) in m.by_rack.iter_mut() {
                    c.finish(rack_free.get(k).copied().unwrap_or(0));
                }
                m
            })
            .collect(),
    }
}
