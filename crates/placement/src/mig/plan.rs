//! Exact planning of a whole GPU's MIG layout for a multiset of profiles.

use super::layout::Instance;
use super::model::{
    GpuModel, COMPUTE_SLICES, FREE_COUNT, GRID, LARGEST_FIRST, MASK, MEMORY_SLICES, ROWS,
};
use std::fmt;

/// Why [`plan_layout`] found no layout. Checked, and reported, in the order
/// of the variants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlanError {
    /// `name` is not a MIG profile of `model` (names are model-specific).
    UnknownProfile { model: GpuModel, name: String },
    /// More instances of `profile` than one GPU may hold (e.g. two `+me`).
    TooMany { profile: &'static str, requested: usize, max: u8 },
    /// The profiles need more than the GPU's 7 compute slices.
    ComputeExceeded { requested: u32, available: u8 },
    /// The profiles need more than the GPU's 8 memory slices.
    MemoryExceeded { requested: u32, available: u8 },
    /// Within every budget, but no assignment of valid starts avoids an
    /// overlap. With the current grid the checks above already decide
    /// (every multiset within the budgets has a layout; the exhaustive
    /// tests confirm it), but the search is exact whatever the grid, so
    /// this stays the answer of record should a model's grid turn out to
    /// differ.
    DoesNotFit { model: GpuModel },
}

impl fmt::Display for PlanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PlanError::UnknownProfile { model, name } => {
                write!(f, "{name:?} is not a MIG profile of {model} (its profiles:")?;
                for (i, p) in model.mig_profiles().iter().enumerate() {
                    write!(f, "{}{}", if i == 0 { " " } else { ", " }, p.name)?;
                }
                f.write_str(")")
            }
            PlanError::TooMany { profile, requested, max } => {
                write!(f, "{requested} x {profile} requested, a GPU holds at most {max}")
            }
            PlanError::ComputeExceeded { requested, available } => {
                write!(f, "the profiles need {requested} compute slices, a GPU has {available}")
            }
            PlanError::MemoryExceeded { requested, available } => {
                write!(f, "the profiles need {requested} memory slices, a GPU has {available}")
            }
            PlanError::DoesNotFit { model } => {
                write!(f, "no placement of these profiles fits on one {model} GPU")
            }
        }
    }
}

impl std::error::Error for PlanError {}

/// A layout of one empty GPU of `model` holding exactly the named profiles
/// (a multiset: repeat a name for several instances), or why there is none.
///
/// The `i`-th instance returned is for `profiles[i]`; instances of the same
/// profile get ascending starts in the order they are named.
///
/// The search is exact: backtracking over valid starts, largest profiles
/// first, with instances of one profile at increasing starts (so
/// permutations of identical instances are not revisited). When several
/// layouts exist it returns the one leaving the most room: by the first two
/// keys of [`Layout::place`](super::Layout::place)'s policy (the largest
/// profile still placeable, then how many of each profile, largest first),
/// then the fewest free fragments (maximal runs of free memory slices: a 1g
/// goes next to a double-memory 1g at 6, not one slice away), then the
/// first found (lowest starts for the largest profiles). At most 7
/// instances fit on a GPU, so the search is tiny.
pub fn plan_layout(model: GpuModel, profiles: &[&str]) -> Result<Vec<Instance>, PlanError> {
    let table = model.table();
    let mut rows = Vec::with_capacity(profiles.len());
    for name in profiles {
        let r = table
            .iter()
            .position(|p| p.name == *name)
            .ok_or_else(|| PlanError::UnknownProfile { model, name: name.to_string() })?;
        rows.push(r);
    }
    let mut counts = [0u8; ROWS];
    for (r, p) in table.iter().enumerate() {
        let requested = rows.iter().filter(|&&x| x == r).count();
        if requested > p.max_per_gpu as usize {
            return Err(PlanError::TooMany { profile: p.name, requested, max: p.max_per_gpu });
        }
        counts[r] = requested as u8;
    }
    let compute: u32 = rows.iter().map(|&r| GRID[r].compute_slices as u32).sum();
    if compute > COMPUTE_SLICES as u32 {
        return Err(PlanError::ComputeExceeded { requested: compute, available: COMPUTE_SLICES });
    }
    let memory: u32 = rows.iter().map(|&r| GRID[r].memory_slices as u32).sum();
    if memory > MEMORY_SLICES as u32 {
        return Err(PlanError::MemoryExceeded { requested: memory, available: MEMORY_SLICES });
    }
    // Every instance uses a compute slice, so now at most 7 of them.
    let rank = |r: usize| LARGEST_FIRST.iter().position(|&x| x == r).expect("every row ranks");
    let mut order: Vec<usize> = (0..rows.len()).collect();
    order.sort_by_key(|&i| rank(rows[i]));
    let mut s = Search {
        items: [0; COMPUTE_SLICES as usize],
        len: order.len(),
        cur: [0; COMPUTE_SLICES as usize],
        best: None,
        compute: compute as u8,
        counts,
    };
    for (k, &i) in order.iter().enumerate() {
        s.items[k] = rows[i];
    }
    s.dfs(0, 0);
    let (_, starts) = s.best.ok_or(PlanError::DoesNotFit { model })?;
    let mut out = vec![Instance { profile_id: 0, start: 0 }; rows.len()];
    for (k, &i) in order.iter().enumerate() {
        out[i] = Instance { profile_id: table[rows[i]].id, start: starts[k] };
    }
    Ok(out)
}

struct Search {
    /// Profile rows to place, largest first.
    items: [usize; COMPUTE_SLICES as usize],
    len: usize,
    /// Starts chosen so far, per item.
    cur: [u8; COMPUTE_SLICES as usize],
    /// Best complete assignment: its score and starts.
    best: Option<(u32, [u8; COMPUTE_SLICES as usize])>,
    /// Compute slices and per-row counts of the whole multiset.
    compute: u8,
    counts: [u8; ROWS],
}

impl Search {
    fn dfs(&mut self, k: usize, used: u8) {
        if k == self.len {
            let score = self.score(used);
            if self.best.is_none_or(|(b, _)| score > b) {
                self.best = Some((score, self.cur));
            }
            return;
        }
        let r = self.items[k];
        let min = if k > 0 && self.items[k - 1] == r { self.cur[k - 1] + 1 } else { 0 };
        for &start in GRID[r].starts {
            let m = MASK[r][start as usize];
            if start < min || m & used != 0 {
                continue;
            }
            self.cur[k] = start;
            self.dfs(k + 1, used | m);
        }
    }

    /// Room left by a complete layout: per-profile counts, largest first,
    /// then fewest free fragments.
    fn score(&self, used: u8) -> u32 {
        let mut key = 0u32;
        for r in LARGEST_FIRST {
            let g = &GRID[r];
            let n = FREE_COUNT[used as usize][r]
                .min((COMPUTE_SLICES - self.compute) / g.compute_slices)
                .min(g.max_per_gpu - self.counts[r]);
            key = key << 3 | n as u32;
        }
        let free = !used;
        key << 3 | (7 - (free & !(free << 1)).count_ones())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_order_is_kept_and_equal_profiles_ascend() {
        let got =
            plan_layout(GpuModel::A100_40GB, &["1g.5gb", "3g.20gb", "1g.5gb", "2g.10gb"]).unwrap();
        let ids: Vec<u32> = got.iter().map(|i| i.profile_id).collect();
        assert_eq!(ids, [19, 9, 19, 14]);
        assert!(got[0].start < got[2].start);
    }

    #[test]
    fn among_equal_rooms_the_plan_keeps_free_slices_together() {
        let got = plan_layout(GpuModel::H100_80GB, &["1g.10gb", "1g.20gb"]).unwrap();
        assert_eq!(got.iter().map(|i| i.start).collect::<Vec<_>>(), [5, 6]);
    }

    #[test]
    fn empty_request_is_an_empty_layout() {
        assert_eq!(plan_layout(GpuModel::H100_80GB, &[]), Ok(vec![]));
    }

    #[test]
    fn a_single_profile_goes_where_place_puts_it() {
        for m in GpuModel::ALL {
            let empty = crate::mig::Layout::new(m);
            for p in m.mig_profiles() {
                let plan = plan_layout(m, &[p.name]).unwrap();
                assert_eq!(Some(plan[0].start), empty.place(p), "{m} {}", p.name);
            }
        }
    }
}
