//! One GPU's MIG layout: its GPU instances, whether another fits where, and
//! the placement policy.

use super::model::{
    range_mask, row_of_id, GpuModel, Profile, COMPUTE_SLICES, FREE_COUNT, GRID, LARGEST_FIRST,
    MASK, MEMORY_SLICES, ROWS,
};
use schemars::gen::SchemaGenerator;
use schemars::schema::Schema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::fmt;

/// One GPU instance: its profile (by `nvidia-smi` profile ID; the name
/// depends on the GPU model) and its start on the memory-slice axis.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[schemars(rename = "MigInstance")]
pub struct Instance {
    /// `nvidia-smi` GPU instance profile ID (19, 20, 15, 14, 9, 5 or 0).
    pub profile_id: u32,
    /// First memory slice (0..=7).
    pub start: u8,
}

impl Instance {
    /// The instance's profile on `model`; `None` for an unknown profile ID.
    pub fn profile(self, model: GpuModel) -> Option<&'static Profile> {
        model.profile_by_id(self.profile_id)
    }
}

/// Why a profile does not fit at a start on a [`Layout`]. Checked, and
/// reported, in the order of the variants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Conflict {
    /// The profile is not one of the layout's GPU model.
    WrongModel { profile: &'static str, model: GpuModel },
    /// `start` is not one of the profile's valid starts.
    InvalidStart { profile: &'static str, start: u8, valid: &'static [u8] },
    /// The GPU already has the most instances of this profile it may have
    /// (in practice only `+me`, one per GPU: the geometry enforces the
    /// other maxima by itself).
    MaxPerGpu { profile: &'static str, max: u8 },
    /// Not enough free compute slices (of 7).
    ComputeExhausted { profile: &'static str, needed: u8, free: u8 },
    /// The memory slices overlap an existing instance (the first one by
    /// start).
    Overlap { profile: &'static str, start: u8, with: Instance, with_profile: &'static str },
}

impl fmt::Display for Conflict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Conflict::WrongModel { profile, model } => {
                write!(f, "{profile} is not a MIG profile of {model}")
            }
            Conflict::InvalidStart { profile, start, valid } => {
                write!(
                    f,
                    "{profile} cannot start at memory slice {start} (valid starts: {valid:?})"
                )
            }
            Conflict::MaxPerGpu { profile, max } => {
                write!(f, "a GPU holds at most {max} {profile} instance(s)")
            }
            Conflict::ComputeExhausted { profile, needed, free } => write!(
                f,
                "{profile} needs {needed} compute slice(s), {free} of {COMPUTE_SLICES} are free"
            ),
            Conflict::Overlap { profile, start, with, with_profile } => write!(
                f,
                "{profile} at memory slice {start} overlaps the {with_profile} instance at {}",
                with.start
            ),
        }
    }
}

impl std::error::Error for Conflict {}

/// Why a list of instances is not a valid [`Layout`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LayoutError {
    /// No profile of the model has this ID.
    UnknownProfileId { model: GpuModel, id: u32 },
    /// The instance does not fit next to the ones before it.
    Conflict { instance: Instance, conflict: Conflict },
}

impl fmt::Display for LayoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LayoutError::UnknownProfileId { model, id } => {
                write!(f, "{model} has no MIG profile with ID {id}")
            }
            LayoutError::Conflict { conflict, .. } => write!(f, "invalid MIG layout: {conflict}"),
        }
    }
}

impl std::error::Error for LayoutError {}

/// One GPU's MIG layout: the GPU instances on it, always valid (no overlap,
/// valid starts, per-GPU maxima and the compute budget respected).
///
/// Occupancy is kept as a bitmask of the 8 memory slices, so every query is
/// a handful of table lookups. Serialized as `{ model, instances }` and
/// validated when deserialized.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "LayoutRepr", into = "LayoutRepr")]
pub struct Layout {
    model: GpuModel,
    /// By start.
    instances: Vec<Instance>,
    /// Occupied memory slices (bit `i` is slice `i`).
    used: u8,
    /// Compute slices in use.
    compute: u8,
    /// Instances per profile row.
    counts: [u8; ROWS],
}

impl Layout {
    /// An empty layout (MIG mode on, no instances).
    pub fn new(model: GpuModel) -> Layout {
        Layout { model, instances: Vec::new(), used: 0, compute: 0, counts: [0; ROWS] }
    }

    /// A layout with these instances, in any order, each checked as by
    /// [`Layout::add`].
    pub fn from_instances(
        model: GpuModel,
        instances: impl IntoIterator<Item = Instance>,
    ) -> Result<Layout, LayoutError> {
        let mut l = Layout::new(model);
        for i in instances {
            let p = i
                .profile(model)
                .ok_or(LayoutError::UnknownProfileId { model, id: i.profile_id })?;
            l.add(p, i.start)
                .map_err(|conflict| LayoutError::Conflict { instance: i, conflict })?;
        }
        Ok(l)
    }

    pub fn model(&self) -> GpuModel {
        self.model
    }

    /// The instances, by start.
    pub fn instances(&self) -> &[Instance] {
        &self.instances
    }

    pub fn len(&self) -> usize {
        self.instances.len()
    }

    pub fn is_empty(&self) -> bool {
        self.instances.is_empty()
    }

    /// Occupied memory slices as a bitmask (bit `i` is slice `i`).
    pub fn occupied_mask(&self) -> u8 {
        self.used
    }

    /// Memory slices no instance occupies (0..=8). Slice 7 counts although
    /// only a 1g double-memory at 6, a 3g at 4 or the 7g can use it: use
    /// [`Layout::largest_placeable`] or [`Layout::place`] to know what fits.
    pub fn free_memory_slices(&self) -> u8 {
        MEMORY_SLICES - self.used.count_ones() as u8
    }

    pub fn used_compute_slices(&self) -> u8 {
        self.compute
    }

    pub fn free_compute_slices(&self) -> u8 {
        COMPUTE_SLICES - self.compute
    }

    /// How many instances of `profile` the layout has (0 for a profile of
    /// another model).
    pub fn count(&self, profile: &Profile) -> u8 {
        self.row(profile).map_or(0, |r| self.counts[r])
    }

    /// Whether `profile` fits at `start`, or the first reason it does not
    /// (in [`Conflict`]'s variant order).
    pub fn fits(&self, profile: &Profile, start: u8) -> Result<(), Conflict> {
        let r = self
            .row(profile)
            .ok_or(Conflict::WrongModel { profile: profile.name, model: self.model })?;
        let m = if (start as usize) < MASK[r].len() { MASK[r][start as usize] } else { 0 };
        if m == 0 {
            return Err(Conflict::InvalidStart {
                profile: profile.name,
                start,
                valid: profile.starts,
            });
        }
        self.limits(r)?;
        if m & self.used != 0 {
            let with = *self
                .instances
                .iter()
                .find(|i| self.mask_of(i) & m != 0)
                .expect("occupied slices belong to an instance");
            let with_profile = with.profile(self.model).map_or("?", |p| p.name);
            return Err(Conflict::Overlap { profile: profile.name, start, with, with_profile });
        }
        Ok(())
    }

    /// Whether `profile` fits at some start.
    pub fn can_place(&self, profile: &Profile) -> bool {
        self.placeable_count(profile) > 0
    }

    /// How many more instances of `profile` alone the GPU could take now
    /// (geometry, compute budget and per-GPU maximum together).
    pub fn placeable_count(&self, profile: &Profile) -> u8 {
        let Some(r) = self.row(profile) else { return 0 };
        count_for(r, self.used, self.compute, &self.counts)
    }

    /// Where `profile` should go: the start [`Layout::add`] should be given,
    /// or `None` when it fits nowhere. Does not change the layout.
    ///
    /// # Placement policy
    ///
    /// Among the valid starts where the profile fits, pick the one whose
    /// resulting layout leaves the largest remaining free capacity, compared
    /// key by key:
    ///
    /// 1. the largest profile that could still be placed afterwards (by
    ///    memory slices, then compute; the order is 7g, 4g, 3g, 2g, 1g
    ///    double memory, 1g, 1g+me);
    /// 2. then how many of each profile could still be placed (each alone,
    ///    with the compute budget and per-GPU maxima), compared from the
    ///    largest profile down;
    /// 3. then the most occupied neighbour slices of the new instance (the
    ///    slices just below and just above it; the GPU's edges do not
    ///    count): pack against existing instances;
    /// 4. then the lowest start.
    ///
    /// Keys 1 and 2 are one lexicographic comparison of the per-profile
    /// counts, largest profile first (the first non-zero count is key 1).
    /// Key 3 only separates starts the counts cannot tell apart (mirror
    /// images such as a 1g at 0 or at 3 next to instances at 4..=6); it is
    /// what makes repeated small placements pack from one side. (Fewest
    /// free fragments, tried as a key between 2 and 3, never changes a
    /// choice over all 2,319 valid layouts of a GPU, so it is not used.)
    ///
    /// Consequences: on an empty GPU a 1g goes to slice 6 (a 4g at 0 and 3g
    /// at 0 stay possible), a 3g to 4 (a 4g at 0 stays possible), a 2g to 4;
    /// successive 1g instances fill 6, 5, 4, 3, 2, 1, 0, 2g instances 4, 2,
    /// 0. Like any one-at-a-time policy it cannot foresee every later
    /// request: keeping a 4g possible means 1g, 1g, 2g, then 3g is refused,
    /// although 3g, 1g, 2g, 1g succeeds (the NVIDIA driver has the same
    /// ordering caveat: its guide says to create the 3g first).
    /// [`plan_layout`](super::plan_layout) plans a whole multiset exactly.
    ///
    /// Cost: at most 7 candidate starts, each scored with 7 table lookups;
    /// no allocation.
    pub fn place(&self, profile: &Profile) -> Option<u8> {
        let r = self.row(profile)?;
        self.limits(r).ok()?;
        let mut counts = self.counts;
        counts[r] += 1;
        let compute = self.compute + GRID[r].compute_slices;
        let size = GRID[r].memory_slices;
        let mut best: Option<(u32, u8)> = None;
        for &s in GRID[r].starts {
            let m = MASK[r][s as usize];
            if m & self.used != 0 {
                continue;
            }
            let after = self.used | m;
            let cap = capacity(after, compute, &counts);
            let mut key = 0u32;
            for c in cap {
                key = key << 3 | c as u32;
            }
            let left = s > 0 && self.used & (1 << (s - 1)) != 0;
            let right = s + size < MEMORY_SLICES && self.used & (1 << (s + size)) != 0;
            let snug = left as u32 + right as u32;
            key = key << 2 | snug;
            key = key << 3 | (7 - s as u32);
            if best.is_none_or(|(k, _)| key > k) {
                best = Some((key, s));
            }
        }
        best.map(|(_, s)| s)
    }

    /// Adds an instance of `profile` at `start`, or says why it does not fit
    /// (the layout is then unchanged).
    pub fn add(&mut self, profile: &Profile, start: u8) -> Result<(), Conflict> {
        self.fits(profile, start)?;
        let r = self.row(profile).expect("checked by fits");
        let at = self.instances.partition_point(|i| i.start < start);
        self.instances.insert(at, Instance { profile_id: profile.id, start });
        self.used |= MASK[r][start as usize];
        self.compute += GRID[r].compute_slices;
        self.counts[r] += 1;
        Ok(())
    }

    /// Removes the instance that starts at `start` and returns it; `None`
    /// (and nothing changes) when no instance starts there.
    pub fn remove(&mut self, start: u8) -> Option<Instance> {
        let at = self.instances.iter().position(|i| i.start == start)?;
        let i = self.instances.remove(at);
        let r = row_of_id(i.profile_id).expect("instances have known profiles");
        self.used &= !MASK[r][start as usize];
        self.compute -= GRID[r].compute_slices;
        self.counts[r] -= 1;
        Some(i)
    }

    /// The largest profile (by memory slices, then compute slices; plain 1g
    /// before 1g+me) that fits somewhere now; `None` when the GPU is full.
    pub fn largest_placeable(&self) -> Option<&'static Profile> {
        let cap = capacity(self.used, self.compute, &self.counts);
        let i = cap.iter().position(|&c| c > 0)?;
        Some(&self.model.table()[LARGEST_FIRST[i]])
    }

    /// The table row of `profile` if it is one of this model's profiles.
    fn row(&self, profile: &Profile) -> Option<usize> {
        let r = row_of_id(profile.id)?;
        let own = &self.model.table()[r];
        (std::ptr::eq(own, profile) || own == profile).then_some(r)
    }

    /// The per-GPU maximum and the compute budget, for one more of `r`.
    fn limits(&self, r: usize) -> Result<(), Conflict> {
        let p = &self.model.table()[r];
        if self.counts[r] >= p.max_per_gpu {
            return Err(Conflict::MaxPerGpu { profile: p.name, max: p.max_per_gpu });
        }
        let free = COMPUTE_SLICES - self.compute;
        if p.compute_slices > free {
            return Err(Conflict::ComputeExhausted {
                profile: p.name,
                needed: p.compute_slices,
                free,
            });
        }
        Ok(())
    }

    fn mask_of(&self, i: &Instance) -> u8 {
        let r = row_of_id(i.profile_id).expect("instances have known profiles");
        range_mask(i.start, GRID[r].memory_slices)
    }
}

/// How many instances of row `r` alone fit on a GPU in this state.
fn count_for(r: usize, used: u8, compute: u8, counts: &[u8; ROWS]) -> u8 {
    let g = &GRID[r];
    FREE_COUNT[used as usize][r]
        .min((COMPUTE_SLICES - compute) / g.compute_slices)
        .min(g.max_per_gpu.saturating_sub(counts[r]))
}

/// [`count_for`] of every row, largest profile first ([`LARGEST_FIRST`]).
fn capacity(used: u8, compute: u8, counts: &[u8; ROWS]) -> [u8; ROWS] {
    LARGEST_FIRST.map(|r| count_for(r, used, compute, counts))
}

/// The serialized form of a [`Layout`].
#[derive(Serialize, Deserialize, JsonSchema)]
#[schemars(rename = "MigLayout")]
struct LayoutRepr {
    model: GpuModel,
    /// The GPU instances, by start.
    instances: Vec<Instance>,
}

impl TryFrom<LayoutRepr> for Layout {
    type Error = LayoutError;

    fn try_from(r: LayoutRepr) -> Result<Layout, LayoutError> {
        Layout::from_instances(r.model, r.instances)
    }
}

impl From<Layout> for LayoutRepr {
    fn from(l: Layout) -> LayoutRepr {
        LayoutRepr { model: l.model, instances: l.instances }
    }
}

impl JsonSchema for Layout {
    fn schema_name() -> String {
        LayoutRepr::schema_name()
    }

    fn json_schema(gen: &mut SchemaGenerator) -> Schema {
        LayoutRepr::json_schema(gen)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h100(name: &str) -> &'static Profile {
        GpuModel::H100_80GB.profile(name).unwrap()
    }

    #[test]
    fn add_remove_keep_the_caches_in_step() {
        let mut l = Layout::new(GpuModel::H100_80GB);
        l.add(h100("3g.40gb"), 4).unwrap();
        l.add(h100("1g.10gb"), 1).unwrap();
        l.add(h100("2g.20gb"), 2).unwrap();
        assert_eq!(l.occupied_mask(), 0b1111_1110);
        assert_eq!(l.used_compute_slices(), 6);
        assert_eq!(l.free_memory_slices(), 1);
        assert_eq!(l.instances().iter().map(|i| i.start).collect::<Vec<_>>(), [1, 2, 4]);
        assert_eq!(l.remove(2), Some(Instance { profile_id: 14, start: 2 }));
        assert_eq!(l.remove(2), None);
        assert_eq!(l.occupied_mask(), 0b1111_0010);
        assert_eq!(l.used_compute_slices(), 4);
        assert_eq!(l.count(h100("3g.40gb")), 1);
        assert_eq!(l.count(h100("2g.20gb")), 0);
        let rebuilt =
            Layout::from_instances(l.model(), l.instances().iter().rev().copied()).unwrap();
        assert_eq!(rebuilt, l);
    }

    #[test]
    fn conflicts_are_reported_in_order() {
        let mut l = Layout::new(GpuModel::H100_80GB);
        let a100 = GpuModel::A100_40GB.profile("1g.5gb").unwrap();
        assert_eq!(
            l.fits(a100, 0),
            Err(Conflict::WrongModel { profile: "1g.5gb", model: GpuModel::H100_80GB })
        );
        assert!(matches!(l.fits(h100("2g.20gb"), 1), Err(Conflict::InvalidStart { start: 1, .. })));
        assert!(matches!(l.fits(h100("1g.10gb"), 7), Err(Conflict::InvalidStart { .. })));
        assert!(matches!(l.fits(h100("1g.10gb"), 200), Err(Conflict::InvalidStart { .. })));
        l.add(h100("1g.10gb+me"), 3).unwrap();
        assert_eq!(
            l.fits(h100("1g.10gb+me"), 5),
            Err(Conflict::MaxPerGpu { profile: "1g.10gb+me", max: 1 })
        );
        assert_eq!(
            l.fits(h100("2g.20gb"), 2),
            Err(Conflict::Overlap {
                profile: "2g.20gb",
                start: 2,
                with: Instance { profile_id: 20, start: 3 },
                with_profile: "1g.10gb+me",
            })
        );
        let msg = l.fits(h100("2g.20gb"), 2).unwrap_err().to_string();
        assert!(msg.contains("1g.10gb+me") && msg.contains("at 3"), "{msg}");
        assert!(matches!(l.fits(h100("7g.80gb"), 0), Err(Conflict::ComputeExhausted { .. })));
    }

    #[test]
    fn place_does_not_change_the_layout() {
        let l = Layout::new(GpuModel::A100_80GB);
        let before = l.clone();
        assert_eq!(l.place(GpuModel::A100_80GB.profile("7g.80gb").unwrap()), Some(0));
        assert_eq!(l, before);
        assert_eq!(l.place(GpuModel::A100_40GB.profile("7g.40gb").unwrap()), None, "wrong model");
    }
}
