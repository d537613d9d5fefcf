//! The placement engine: an in-memory view of free capacity with indexes
//! that make one decision cost O(SUs) or O(candidate nodes), never a scan
//! of the fleet.
//!
//! `plan` decides without changing anything; `apply` records a placement
//! (validating every unit is free: this is also how state is loaded from
//! the store); `release` frees an allocation. The caller commits a plan to
//! the store and only then applies it.

use crate::mig::{GpuModel, Layout};
use crate::request::{
    Assignment, Constraints, MigSlice, NoFit, Placement, Policy, Request, Scope, Shape, Within,
};
use crate::topology::{Availability, NodeSpec};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Most GPUs a node may carry (a `u16` mask).
pub const MAX_GPUS: u8 = 16;

struct Slot {
    spec: NodeSpec,
    model: usize,
    su: usize,
    rack: usize,
    domain: usize,
    all: u16,
    /// Whole GPUs neither allocated nor in MIG mode.
    free: u16,
    /// Allocated as a whole node.
    whole: bool,
    /// MIG layouts of GPUs in MIG mode (at least one instance).
    mig: Vec<Option<Layout>>,
    /// Anti-affinity groups with an allocation here (with counts).
    groups: BTreeMap<String, u32>,
}

impl Slot {
    fn usable(&self) -> bool {
        self.spec.availability == Availability::Schedulable
    }

    fn fully_free(&self) -> bool {
        !self.whole && self.free == self.all
    }
}

#[derive(Default)]
struct ModelIndex {
    name: String,
    mig_model: Option<GpuModel>,
    /// Fully free usable nodes, per SU.
    free_nodes: BTreeMap<usize, BTreeSet<u32>>,
    /// Usable nodes (not whole-allocated) by their count of free whole GPUs.
    by_free: Vec<BTreeSet<u32>>,
    /// MIG-mode GPUs with free memory slices, by that count (index 1..=7).
    mig_by_free: Vec<BTreeSet<(u32, u8)>>,
    nodes: u32,
}

/// The engine. Node order is insertion order; ties break on it, so equal
/// inputs give equal decisions.
#[derive(Default)]
pub struct Engine {
    slots: Vec<Slot>,
    by_id: HashMap<String, u32>,
    models: Vec<ModelIndex>,
    model_ix: HashMap<String, usize>,
    names: Names,
    allocations: HashMap<String, (Placement, Option<String>)>,
}

#[derive(Default)]
struct Names {
    su: Interner,
    pod: Interner,
    rack: Interner,
    domain: Interner,
    /// Pod of each SU.
    su_pod: Vec<usize>,
}

#[derive(Default)]
struct Interner {
    ix: HashMap<String, usize>,
    names: Vec<String>,
}

impl Interner {
    fn get(&mut self, s: &str) -> usize {
        if let Some(i) = self.ix.get(s) {
            return *i;
        }
        self.names.push(s.to_string());
        self.ix.insert(s.to_string(), self.names.len() - 1);
        self.names.len() - 1
    }
}

/// Why a placement could not be applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApplyError {
    UnknownNode(String),
    AlreadyAllocated { allocation: String },
    Busy { node: String, detail: String },
    Invalid(String),
}

impl std::fmt::Display for ApplyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ApplyError::UnknownNode(n) => write!(f, "unknown node {n}"),
            ApplyError::AlreadyAllocated { allocation } => {
                write!(f, "allocation {allocation} is already placed")
            }
            ApplyError::Busy { node, detail } => write!(f, "node {node}: {detail}"),
            ApplyError::Invalid(m) => f.write_str(m),
        }
    }
}

fn mask(gpus: &[u8]) -> u16 {
    gpus.iter().fold(0u16, |m, g| m | (1 << g))
}

fn bits(m: u16) -> Vec<u8> {
    (0..16).filter(|i| m & (1 << i) != 0).collect()
}

/// `n` free GPUs from `free`, as an aligned power-of-two block where one is
/// free (NVSwitch partitions are aligned blocks of 1/2/4/8), else the lowest.
fn pick_gpus(free: u16, all: u16, n: u8) -> Option<u16> {
    if free.count_ones() < n as u32 {
        return None;
    }
    if n.is_power_of_two() {
        let block: u16 = if n >= 16 { u16::MAX } else { (1u16 << n) - 1 };
        let mut start = 0u32;
        while start + n as u32 <= 16 {
            let m = block << start;
            if m & all == m && m & free == m {
                return Some(m);
            }
            start += n as u32;
        }
    }
    let mut m = 0u16;
    for g in bits(free).into_iter().take(n as usize) {
        m |= 1 << g;
    }
    Some(m)
}

impl Engine {
    pub fn new() -> Engine {
        Engine::default()
    }

    /// Adds a node (or replaces its spec when it has nothing allocated).
    pub fn add_node(&mut self, spec: NodeSpec) -> Result<(), ApplyError> {
        if spec.gpus == 0 || spec.gpus > MAX_GPUS {
            return Err(ApplyError::Invalid(format!(
                "node {}: {} GPUs (1 to {MAX_GPUS} supported)",
                spec.id, spec.gpus
            )));
        }
        if let Some(&ix) = self.by_id.get(&spec.id) {
            let s = &self.slots[ix as usize];
            if !(s.fully_free() && s.mig.iter().all(Option::is_none)) {
                return Err(ApplyError::Busy {
                    node: spec.id.clone(),
                    detail: "has allocations; its inventory cannot change".into(),
                });
            }
            self.unindex(ix);
            let slot = self.new_slot(spec);
            self.slots[ix as usize] = slot;
            self.index(ix);
            return Ok(());
        }
        let ix = self.slots.len() as u32;
        let slot = self.new_slot(spec);
        self.by_id.insert(slot.spec.id.clone(), ix);
        self.models[slot.model].nodes += 1;
        self.slots.push(slot);
        self.index(ix);
        Ok(())
    }

    fn new_slot(&mut self, spec: NodeSpec) -> Slot {
        let model = match self.model_ix.get(&spec.gpu_model) {
            Some(m) => *m,
            None => {
                self.models.push(ModelIndex {
                    name: spec.gpu_model.clone(),
                    mig_model: GpuModel::parse(&spec.gpu_model),
                    by_free: vec![BTreeSet::new(); MAX_GPUS as usize + 1],
                    mig_by_free: vec![BTreeSet::new(); 9],
                    ..ModelIndex::default()
                });
                self.model_ix.insert(spec.gpu_model.clone(), self.models.len() - 1);
                self.models.len() - 1
            }
        };
        // Levels are keyed by their full path: an SU named `su-1` in two
        // pods is two SUs (and likewise racks and NVLink domains).
        let pod_path = format!("{}/{}", spec.site, spec.pod);
        let su_path = format!("{pod_path}/{}", spec.su);
        let rack_path = format!("{su_path}/{}", spec.rack);
        let su = self.names.su.get(&su_path);
        let pod = self.names.pod.get(&pod_path);
        if self.names.su_pod.len() <= su {
            self.names.su_pod.resize(su + 1, pod);
        }
        self.names.su_pod[su] = pod;
        let all = if spec.gpus == 16 { u16::MAX } else { (1u16 << spec.gpus) - 1 };
        Slot {
            model,
            su,
            rack: self.names.rack.get(&rack_path),
            domain: self.names.domain.get(&format!("{}/{}", spec.site, spec.nvlink_domain)),
            all,
            free: all,
            whole: false,
            mig: vec![None; spec.gpus as usize],
            groups: BTreeMap::new(),
            spec,
        }
    }

    /// Takes a node in or out of scheduling; its allocations stay.
    pub fn set_availability(&mut self, node_id: &str, a: Availability) -> Result<(), ApplyError> {
        let ix = *self.by_id.get(node_id).ok_or_else(|| ApplyError::UnknownNode(node_id.into()))?;
        self.unindex(ix);
        self.slots[ix as usize].spec.availability = a;
        self.index(ix);
        Ok(())
    }

    fn unindex(&mut self, ix: u32) {
        let s = &self.slots[ix as usize];
        let m = &mut self.models[s.model];
        if let Some(set) = m.free_nodes.get_mut(&s.su) {
            set.remove(&ix);
        }
        let k = s.free.count_ones() as usize;
        m.by_free[k].remove(&ix);
        for (g, l) in s.mig.iter().enumerate() {
            if let Some(l) = l {
                m.mig_by_free[l.free_memory_slices() as usize].remove(&(ix, g as u8));
            }
        }
    }

    fn index(&mut self, ix: u32) {
        let s = &self.slots[ix as usize];
        if !s.usable() {
            return;
        }
        let m = &mut self.models[s.model];
        if s.fully_free() {
            m.free_nodes.entry(s.su).or_default().insert(ix);
        }
        let k = s.free.count_ones() as usize;
        if !s.whole && k > 0 {
            m.by_free[k].insert(ix);
        }
        for (g, l) in s.mig.iter().enumerate() {
            if let Some(l) = l {
                let f = l.free_memory_slices() as usize;
                if f > 0 {
                    m.mig_by_free[f].insert((ix, g as u8));
                }
            }
        }
    }

    fn allowed(&self, ix: u32, c: &Constraints) -> bool {
        let s = &self.slots[ix as usize];
        if let Some(g) = &c.anti_affinity {
            if s.groups.contains_key(g) {
                return false;
            }
        }
        match &c.within {
            None => true,
            // By name: a name used at one level in several places matches all.
            Some(Within::Pod(p)) => &s.spec.pod == p,
            Some(Within::Su(p)) => &s.spec.su == p,
            Some(Within::Rack(p)) => &s.spec.rack == p,
        }
    }

    /// When a request fails: if free capacity exists but the request's
    /// `within` or anti-affinity rules out all of it, say so (rather than
    /// blaming capacity or the NVLink domain).
    fn refused_by_constraints(
        &self,
        m: &ModelIndex,
        c: &Constraints,
        model: &str,
    ) -> Option<NoFit> {
        if c.within.is_none() && c.anti_affinity.is_none() {
            return None;
        }
        let candidates: Vec<u32> = m.by_free[1..]
            .iter()
            .flat_map(|set| set.iter().copied())
            .chain(m.mig_by_free.iter().flat_map(|set| set.iter().map(|(ix, _)| *ix)))
            .collect();
        if candidates.is_empty() || candidates.iter().any(|ix| self.allowed(*ix, c)) {
            return None;
        }
        let within_only = Constraints { within: c.within.clone(), ..Constraints::default() };
        if c.within.is_some() && !candidates.iter().any(|ix| self.allowed(*ix, &within_only)) {
            return Some(NoFit::new(
                "within",
                format!("no {model} node with free capacity matches {:?}", c.within),
            ));
        }
        Some(NoFit::new(
            "anti_affinity",
            format!(
                "every {model} node with free capacity already holds an allocation of group {:?}",
                c.anti_affinity.as_deref().unwrap_or_default()
            ),
        ))
    }

    fn model(&self, name: &str) -> Result<&ModelIndex, NoFit> {
        self.model_ix
            .get(name)
            .map(|i| &self.models[*i])
            .ok_or_else(|| NoFit::new("gpu_model", format!("no nodes with GPU model {name:?}")))
    }

    /// Decides where `req` goes, changing nothing.
    pub fn plan(&self, req: &Request) -> Result<Placement, NoFit> {
        let c = &req.constraints;
        match &req.shape {
            Shape::Nodes { gpu_model, count } => self.plan_nodes(gpu_model, *count, c),
            Shape::Gpus { gpu_model, count } => self.plan_gpus(gpu_model, *count, c),
            Shape::Mig { gpu_model, profile } => self.plan_mig(gpu_model, profile, c),
        }
    }

    fn whole(&self, ix: u32) -> Assignment {
        let s = &self.slots[ix as usize];
        Assignment { node_id: s.spec.id.clone(), gpus: bits(s.all), whole_node: true, mig: None }
    }

    fn free_summary(&self, m: &ModelIndex) -> String {
        let free_nodes: usize = m.free_nodes.values().map(BTreeSet::len).sum();
        let free_gpus: usize = m.by_free.iter().enumerate().map(|(k, set)| k * set.len()).sum();
        format!(
            "{free_nodes} whole node(s) and {free_gpus} GPU(s) of {} free across {} node(s)",
            m.name, m.nodes
        )
    }

    fn plan_nodes(&self, model: &str, count: u32, c: &Constraints) -> Result<Placement, NoFit> {
        let m = self.model(model)?;
        if count == 0 {
            return Err(NoFit::new("capacity", "count must be at least 1"));
        }
        // Candidate free nodes per SU, after the filters.
        let filtered: Vec<(usize, Vec<u32>)> = m
            .free_nodes
            .iter()
            .map(|(su, set)| {
                (*su, set.iter().copied().filter(|ix| self.allowed(*ix, c)).collect::<Vec<_>>())
            })
            .filter(|(_, v): &(usize, Vec<u32>)| !v.is_empty())
            .collect();
        let total: usize = filtered.iter().map(|(_, v)| v.len()).sum();
        if (total as u64) < count as u64 {
            let why = if c.within.is_some() || c.anti_affinity.is_some() {
                ("within", " matching the constraints")
            } else {
                ("capacity", "")
            };
            return Err(NoFit::new(
                if c.anti_affinity.is_some() && c.within.is_none() {
                    "anti_affinity"
                } else {
                    why.0
                },
                format!(
                    "need {count} whole {model} node(s){}; {total} free ({})",
                    why.1,
                    self.free_summary(m)
                ),
            ));
        }
        let take = |ixs: Vec<u32>| Placement {
            assignments: ixs.into_iter().map(|ix| self.whole(ix)).collect(),
        };
        // Groups the candidates by the scope and picks a group.
        let group_key = |su: usize, ix: u32| -> usize {
            match c.scope {
                Scope::Any => 0,
                Scope::Pod => self.names.su_pod[su],
                Scope::Su => su,
                Scope::Rack => self.slots[ix as usize].rack,
            }
        };
        let mut groups: BTreeMap<usize, Vec<(usize, Vec<u32>)>> = BTreeMap::new();
        for (su, ixs) in &filtered {
            if c.scope == Scope::Rack {
                for ix in ixs {
                    let g = groups.entry(group_key(*su, *ix)).or_default();
                    match g.iter_mut().find(|(s, _)| s == su) {
                        Some((_, v)) => v.push(*ix),
                        None => g.push((*su, vec![*ix])),
                    }
                }
            } else {
                groups.entry(group_key(*su, ixs[0])).or_default().push((*su, ixs.clone()));
            }
        }
        // In each group: SUs by free count (largest first for a gang, so it
        // spans as few SUs as possible); how many SUs the gang needs there.
        let mut best: Option<(usize, usize, usize, usize)> = None; // (sus_needed, leftover or -, group, tie)
        for (g, sus) in groups.iter_mut() {
            sus.sort_by(|a, b| b.1.len().cmp(&a.1.len()).then(a.0.cmp(&b.0)));
            let free: usize = sus.iter().map(|(_, v)| v.len()).sum();
            if free < count as usize {
                continue;
            }
            let mut need = 0;
            let mut acc = 0;
            for (_, v) in sus.iter() {
                need += 1;
                acc += v.len();
                if acc >= count as usize {
                    break;
                }
            }
            let leftover = free - count as usize;
            let key = match c.policy {
                // Fewest SUs, then the tightest group (keeps big ones whole).
                Policy::Pack => (need, leftover, *g, 0),
                // Fewest SUs, then the emptiest group.
                Policy::Spread => (need, usize::MAX - leftover, *g, 0),
            };
            if best.is_none_or(|b| key < b) {
                best = Some(key);
            }
        }
        let Some((_, _, g, _)) = best else {
            let largest = groups
                .values()
                .map(|sus| sus.iter().map(|(_, v)| v.len()).sum::<usize>())
                .max()
                .unwrap_or(0);
            return Err(NoFit::new(
                "scope",
                format!(
                    "need {count} whole {model} node(s) in one {}; the best has {largest} free ({})",
                    match c.scope {
                        Scope::Any => "fleet",
                        Scope::Pod => "pod",
                        Scope::Su => "SU",
                        Scope::Rack => "rack",
                    },
                    self.free_summary(m)
                ),
            ));
        };
        let sus = &groups[&g];
        let mut chosen = Vec::with_capacity(count as usize);
        if count == 1 {
            // One node: pack into the fullest SU (fewest free), spread into the emptiest.
            let su = match c.policy {
                Policy::Pack => sus.iter().min_by_key(|(s, v)| (v.len(), *s)),
                Policy::Spread => sus.iter().max_by_key(|(s, v)| (v.len(), usize::MAX - *s)),
            };
            if let Some((_, v)) = su {
                chosen.push(v[0]);
            }
        } else {
            'outer: for (_, v) in sus {
                for ix in v {
                    chosen.push(*ix);
                    if chosen.len() == count as usize {
                        break 'outer;
                    }
                }
            }
        }
        Ok(take(chosen))
    }

    fn plan_gpus(&self, model: &str, n: u8, c: &Constraints) -> Result<Placement, NoFit> {
        let m = self.model(model)?;
        if n == 0 {
            return Err(NoFit::new("capacity", "count must be at least 1"));
        }
        let per_node = m.by_free.len() - 1;
        if (n as usize) <= per_node {
            let order: Vec<usize> = match c.policy {
                Policy::Pack => (n as usize..=per_node).collect(),
                Policy::Spread => (n as usize..=per_node).rev().collect(),
            };
            for k in order {
                for ix in &m.by_free[k] {
                    let s = &self.slots[*ix as usize];
                    if s.spec.gpus < n || !self.allowed(*ix, c) {
                        continue;
                    }
                    if let Some(g) = pick_gpus(s.free, s.all, n) {
                        return Ok(Placement {
                            assignments: vec![Assignment {
                                node_id: s.spec.id.clone(),
                                gpus: bits(g),
                                whole_node: false,
                                mig: None,
                            }],
                        });
                    }
                }
            }
        }
        // Larger than a node: one NVLink domain spanning nodes (NVL72 trays).
        let mut domains: BTreeMap<usize, Vec<u32>> = BTreeMap::new();
        for set in &m.by_free[1..] {
            for ix in set {
                if self.allowed(*ix, c) {
                    domains.entry(self.slots[*ix as usize].domain).or_default().push(*ix);
                }
            }
        }
        let mut best: Option<(usize, usize)> = None;
        for (d, ixs) in &domains {
            let free: usize =
                ixs.iter().map(|ix| self.slots[*ix as usize].free.count_ones() as usize).sum();
            if free >= n as usize {
                let key = match c.policy {
                    Policy::Pack => free,
                    Policy::Spread => usize::MAX - free,
                };
                if best.is_none_or(|(k, _)| key < k) {
                    best = Some((key, *d));
                }
            }
        }
        let Some((_, d)) = best else {
            if let Some(nf) = self.refused_by_constraints(m, c, model) {
                return Err(nf);
            }
            return Err(NoFit::new(
                "nvlink_domain",
                format!("need {n} {model} GPU(s) in one NVLink domain; no domain has that many free ({})", self.free_summary(m)),
            ));
        };
        let mut ixs = domains.remove(&d).unwrap_or_default();
        // Whole free trays first, then the fullest partial ones.
        ixs.sort_by_key(|ix| {
            let s = &self.slots[*ix as usize];
            (std::cmp::Reverse(s.free.count_ones()), *ix)
        });
        let mut left = n as u32;
        let mut assignments = Vec::new();
        for ix in ixs {
            if left == 0 {
                break;
            }
            let s = &self.slots[ix as usize];
            let take = left.min(s.free.count_ones()) as u8;
            let g = pick_gpus(s.free, s.all, take).unwrap_or(0);
            left -= take as u32;
            assignments.push(Assignment {
                node_id: s.spec.id.clone(),
                gpus: bits(g),
                whole_node: false,
                mig: None,
            });
        }
        Ok(Placement { assignments })
    }

    fn plan_mig(&self, model: &str, profile: &str, c: &Constraints) -> Result<Placement, NoFit> {
        let m = self.model(model)?;
        let Some(gm) = m.mig_model else {
            return Err(NoFit::new("mig_profile", format!("{model} does not support MIG")));
        };
        let Some(p) = gm.profile(profile) else {
            return Err(NoFit::new(
                "mig_profile",
                format!("{profile:?} is not a MIG profile of {model}"),
            ));
        };
        // GPUs already in MIG mode, tightest first.
        for f in p.memory_slices as usize..=8 {
            for (ix, g) in &m.mig_by_free[f] {
                if !self.allowed(*ix, c) {
                    continue;
                }
                let s = &self.slots[*ix as usize];
                if let Some(Some(l)) = s.mig.get(*g as usize) {
                    if let Some(start) = l.place(p) {
                        return Ok(self.mig_assignment(*ix, *g, p.name, start));
                    }
                }
            }
        }
        // A free GPU switches to MIG mode: on the node with the fewest free
        // GPUs (keeps whole nodes whole).
        for k in 1..m.by_free.len() {
            for ix in &m.by_free[k] {
                let s = &self.slots[*ix as usize];
                if !s.spec.mig_capable || !self.allowed(*ix, c) {
                    continue;
                }
                let g = (0..s.spec.gpus).rev().find(|g| s.free & (1 << g) != 0);
                if let Some(g) = g {
                    if let Some(start) = Layout::new(gm).place(p) {
                        return Ok(self.mig_assignment(*ix, g, p.name, start));
                    }
                }
            }
        }
        if let Some(nf) = self.refused_by_constraints(m, c, model) {
            return Err(nf);
        }
        Err(NoFit::new(
            "capacity",
            format!(
                "no room for a {profile} slice on any MIG-capable {model} GPU ({})",
                self.free_summary(m)
            ),
        ))
    }

    fn mig_assignment(&self, ix: u32, gpu: u8, profile: &str, start: u8) -> Placement {
        Placement {
            assignments: vec![Assignment {
                node_id: self.slots[ix as usize].spec.id.clone(),
                gpus: vec![],
                whole_node: false,
                mig: Some(MigSlice { gpu, profile: profile.to_string(), start }),
            }],
        }
    }

    /// Records a placement under `id`, checking every unit is free. All or
    /// nothing: on an error nothing is recorded. A node may appear in several
    /// assignments (e.g. two VMs or two MIG slices on one node).
    pub fn apply(
        &mut self,
        id: &str,
        p: &Placement,
        group: Option<&str>,
    ) -> Result<(), ApplyError> {
        if self.allocations.contains_key(id) {
            return Err(ApplyError::AlreadyAllocated { allocation: id.to_string() });
        }
        let mut done: Vec<(u32, &Assignment)> = Vec::with_capacity(p.assignments.len());
        for a in &p.assignments {
            let res = self
                .by_id
                .get(&a.node_id)
                .copied()
                .ok_or_else(|| ApplyError::UnknownNode(a.node_id.clone()))
                .and_then(|ix| self.check_one(ix, a).map(|()| ix));
            match res {
                Ok(ix) => {
                    self.apply_one(ix, a, group);
                    done.push((ix, a));
                }
                Err(e) => {
                    for (ix, a) in done.into_iter().rev() {
                        self.undo_one(ix, a, group);
                    }
                    return Err(e);
                }
            }
        }
        self.allocations.insert(id.to_string(), (p.clone(), group.map(str::to_string)));
        Ok(())
    }

    fn check_one(&self, ix: u32, a: &Assignment) -> Result<(), ApplyError> {
        let s = &self.slots[ix as usize];
        let busy = |d: &str| ApplyError::Busy { node: a.node_id.clone(), detail: d.to_string() };
        if a.whole_node {
            if !s.fully_free() || s.mig.iter().any(Option::is_some) {
                return Err(busy("not entirely free"));
            }
        } else if let Some(ms) = &a.mig {
            let gm = self.models[s.model].mig_model.ok_or_else(|| busy("GPU model has no MIG"))?;
            let prof = gm.profile(&ms.profile).ok_or_else(|| busy("unknown MIG profile"))?;
            if ms.gpu >= s.spec.gpus || s.whole {
                return Err(busy("GPU not available for MIG"));
            }
            match &s.mig[ms.gpu as usize] {
                Some(l) => {
                    l.fits(prof, ms.start).map_err(|e| busy(&format!("MIG slice: {e:?}")))?
                }
                None => {
                    if s.free & (1 << ms.gpu) == 0 {
                        return Err(busy("GPU is allocated whole"));
                    }
                    Layout::new(gm)
                        .fits(prof, ms.start)
                        .map_err(|e| busy(&format!("MIG slice: {e:?}")))?
                }
            }
        } else {
            let g = mask(&a.gpus);
            if a.gpus.is_empty() || g & s.all != g || s.free & g != g || s.whole {
                return Err(busy("GPUs not free"));
            }
        }
        Ok(())
    }

    fn apply_one(&mut self, ix: u32, a: &Assignment, group: Option<&str>) {
        self.unindex(ix);
        let gm = self.models[self.slots[ix as usize].model].mig_model;
        let s = &mut self.slots[ix as usize];
        if a.whole_node {
            s.whole = true;
            s.free = 0;
        } else if let (Some(ms), Some(gm)) = (&a.mig, gm) {
            if let Some(prof) = gm.profile(&ms.profile) {
                let l = s.mig[ms.gpu as usize].get_or_insert_with(|| Layout::new(gm));
                s.free &= !(1 << ms.gpu);
                let _ = l.add(prof, ms.start);
            }
        } else {
            s.free &= !mask(&a.gpus);
        }
        if let Some(g) = group {
            *s.groups.entry(g.to_string()).or_default() += 1;
        }
        self.index(ix);
    }

    fn undo_one(&mut self, ix: u32, a: &Assignment, group: Option<&str>) {
        self.unindex(ix);
        let s = &mut self.slots[ix as usize];
        if a.whole_node {
            s.whole = false;
            s.free = s.all;
        } else if let Some(ms) = &a.mig {
            if let Some(l) = s.mig[ms.gpu as usize].as_mut() {
                l.remove(ms.start);
                if l.is_empty() {
                    s.mig[ms.gpu as usize] = None;
                    s.free |= 1 << ms.gpu;
                }
            }
        } else {
            s.free |= mask(&a.gpus);
        }
        if let Some(g) = group {
            if let Some(n) = s.groups.get_mut(g) {
                *n -= 1;
                if *n == 0 {
                    s.groups.remove(g);
                }
            }
        }
        self.index(ix);
    }

    /// `plan` then `apply`, for callers without a store in between.
    pub fn place(&mut self, id: &str, req: &Request) -> Result<Placement, NoFit> {
        let p = self.plan(req)?;
        self.apply(id, &p, req.constraints.anti_affinity.as_deref())
            .map_err(|e| NoFit::new("capacity", format!("internal: plan did not apply: {e}")))?;
        Ok(p)
    }

    /// Frees an allocation; returns its placement.
    pub fn release(&mut self, id: &str) -> Option<Placement> {
        let (p, group) = self.allocations.remove(id)?;
        for a in p.assignments.iter().rev() {
            if let Some(&ix) = self.by_id.get(&a.node_id) {
                self.undo_one(ix, a, group.as_deref());
            }
        }
        Some(p)
    }

    /// `count` placements of `req` (e.g. several VMs), all or nothing,
    /// changing nothing: each is placed on a scratch id to plan the next,
    /// then all are released again.
    pub fn plan_many(&mut self, req: &Request, count: u32) -> Result<Vec<Placement>, NoFit> {
        let group = req.constraints.anti_affinity.as_deref();
        let mut out = Vec::with_capacity(count as usize);
        let mut res = Ok(());
        for i in 0..count {
            match self.plan(req) {
                Ok(p) => {
                    let scratch = format!("\u{0}plan-many-{i}");
                    if let Err(e) = self.apply(&scratch, &p, group) {
                        res = Err(NoFit::new(
                            "capacity",
                            format!("internal: plan did not apply: {e}"),
                        ));
                        break;
                    }
                    out.push(p);
                }
                Err(e) => {
                    res = Err(if i == 0 {
                        e
                    } else {
                        NoFit::new(&e.constraint, format!("only {i} of {count} fit: {}", e.message))
                    });
                    break;
                }
            }
        }
        for i in 0..out.len() {
            self.release(&format!("\u{0}plan-many-{i}"));
        }
        res.map(|()| out)
    }

    pub fn allocation(&self, id: &str) -> Option<&Placement> {
        self.allocations.get(id).map(|(p, _)| p)
    }

    pub fn node_count(&self) -> usize {
        self.slots.len()
    }

    /// Free and used capacity per GPU model, SU and rack.
    pub fn capacity(&self) -> crate::capacity::Capacity {
        crate::capacity::build(self.slots.iter().map(|s| crate::capacity::NodeView {
            spec: &s.spec,
            free_gpus: s.free.count_ones() as u8,
            whole_allocated: s.whole,
            mig_gpus: s.mig.iter().filter(|l| l.is_some()).count() as u8,
            mig_free_slices: s.mig.iter().flatten().map(|l| l.free_memory_slices() as u32).sum(),
        }))
    }
}
