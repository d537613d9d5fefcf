//! Picking free values from a range, the one primitive every allocator
//! here uses.

use std::collections::BTreeSet;

/// The lowest value in `from..=to` not in `used`, in O(values of `used`
/// in the range) (it skips runs of used values, never scans free space).
pub(crate) fn first_free(used: &BTreeSet<u32>, from: u32, to: u32) -> Option<u32> {
    if from > to {
        return None;
    }
    first_free_of(used.range(from..=to).copied(), from, to)
}

/// `first_free` over the used values of `from..=to`, ascending.
pub(crate) fn first_free_of(used: impl Iterator<Item = u32>, from: u32, to: u32) -> Option<u32> {
    if from > to {
        return None;
    }
    let mut candidate = from;
    for u in used {
        match u.cmp(&candidate) {
            std::cmp::Ordering::Less => {}
            std::cmp::Ordering::Equal => candidate = candidate.checked_add(1)?,
            std::cmp::Ordering::Greater => break,
        }
    }
    (candidate <= to).then_some(candidate)
}

/// The first free value at or after `cursor`, wrapping to `first` once.
///
/// Allocating after a cursor instead of the lowest free value means a value
/// just released is not handed out again until the pool wraps: a switch that
/// has not yet converged (still carrying a deleted tenant's VNI) never meets
/// a new tenant on the same VNI.
pub(crate) fn take_after(used: &BTreeSet<u32>, first: u32, last: u32, cursor: u32) -> Option<u32> {
    let start = match (first..=last).contains(&cursor) {
        true => cursor,
        false => first,
    };
    first_free(used, start, last).or_else(|| match start > first {
        true => first_free(used, first, start - 1),
        false => None,
    })
}

/// The cursor after taking `v`.
pub(crate) fn next_cursor(v: u32, first: u32, last: u32) -> u32 {
    match v >= last {
        true => first,
        false => v + 1,
    }
}
