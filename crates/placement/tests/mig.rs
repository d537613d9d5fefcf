//! MIG planner: the profile tables against the reference (vendor-apis.md
//! §7), the documented layouts accepted and the impossible mixes refused,
//! the placement policy, and seeded randomized properties checked against
//! an independent brute-force model of the rules.

use neocloud_placement::mig::*;
use std::collections::HashSet;

// ---------------------------------------------------------------------------
// The reference, written out independently of the crate's tables.

/// (ID, compute slices, memory slices, valid starts, max per GPU, +me), in
/// the reference's row order.
type GridRow = (u32, u8, u8, &'static [u8], u8, bool);

const GRID: [GridRow; 7] = [
    (19, 1, 1, &[0, 1, 2, 3, 4, 5, 6], 7, false),
    (20, 1, 1, &[0, 1, 2, 3, 4, 5, 6], 1, true),
    (15, 1, 2, &[0, 2, 4, 6], 4, false),
    (14, 2, 2, &[0, 2, 4], 3, false),
    (9, 3, 4, &[0, 4], 2, false),
    (5, 4, 4, &[0], 1, false),
    (0, 7, 8, &[0], 1, false),
];

fn reference_names(m: GpuModel) -> [&'static str; 7] {
    match m {
        GpuModel::A100_40GB => {
            ["1g.5gb", "1g.5gb+me", "1g.10gb", "2g.10gb", "3g.20gb", "4g.20gb", "7g.40gb"]
        }
        GpuModel::A100_80GB | GpuModel::H100_80GB => {
            ["1g.10gb", "1g.10gb+me", "1g.20gb", "2g.20gb", "3g.40gb", "4g.40gb", "7g.80gb"]
        }
        GpuModel::H200_141GB => {
            ["1g.18gb", "1g.18gb+me", "1g.35gb", "2g.35gb", "3g.71gb", "4g.71gb", "7g.141gb"]
        }
        GpuModel::B200_180GB => {
            ["1g.23gb", "1g.23gb+me", "1g.45gb", "2g.45gb", "3g.90gb", "4g.90gb", "7g.180gb"]
        }
    }
}

fn row_of(id: u32) -> usize {
    GRID.iter().position(|g| g.0 == id).expect("known profile id")
}

/// Size order used by "largest": memory, then compute, then plain before
/// +me. Larger value = larger profile.
fn size_rank(row: usize) -> (u8, u8, bool) {
    (GRID[row].2, GRID[row].1, !GRID[row].5)
}

// ---------------------------------------------------------------------------
// Independent brute-force rules over (row, start) pairs.

fn overlaps(a: (usize, u8), b: (usize, u8)) -> bool {
    let (a0, a1) = (a.1, a.1 + GRID[a.0].2);
    let (b0, b1) = (b.1, b.1 + GRID[b.0].2);
    a0 < b1 && b0 < a1
}

fn valid(instances: &[(usize, u8)]) -> bool {
    for (i, &a) in instances.iter().enumerate() {
        if !GRID[a.0].3.contains(&a.1) {
            return false;
        }
        if instances[i + 1..].iter().any(|&b| overlaps(a, b)) {
            return false;
        }
    }
    let compute: u32 = instances.iter().map(|i| GRID[i.0].1 as u32).sum();
    if compute > 7 {
        return false;
    }
    (0..7).all(|r| instances.iter().filter(|i| i.0 == r).count() <= GRID[r].4 as usize)
}

fn pairs(l: &Layout) -> Vec<(usize, u8)> {
    l.instances().iter().map(|i| (row_of(i.profile_id), i.start)).collect()
}

fn brute_fits(l: &Layout, row: usize, start: u8) -> bool {
    let mut v = pairs(l);
    v.push((row, start));
    valid(&v)
}

/// Most instances of `row` alone that could be added (tries every subset
/// of its starts).
fn brute_placeable_count(l: &Layout, row: usize) -> u8 {
    let base = pairs(l);
    let starts = GRID[row].3;
    let mut best = 0;
    for set in 0u32..(1 << starts.len()) {
        let mut v = base.clone();
        v.extend(
            starts.iter().enumerate().filter(|(i, _)| set & (1 << i) != 0).map(|(_, &s)| (row, s)),
        );
        if valid(&v) {
            best = best.max(set.count_ones() as u8);
        }
    }
    best
}

/// Every valid layout of one GPU, as per-row instance counts.
fn all_feasible_multisets() -> HashSet<[u8; 7]> {
    let universe: Vec<(usize, u8)> =
        (0..7).flat_map(|r| GRID[r].3.iter().map(move |&s| (r, s))).collect();
    let mut out = HashSet::new();
    fn go(u: &[(usize, u8)], k: usize, cur: &mut Vec<(usize, u8)>, out: &mut HashSet<[u8; 7]>) {
        if k == u.len() {
            let mut c = [0u8; 7];
            for i in cur.iter() {
                c[i.0] += 1;
            }
            out.insert(c);
            return;
        }
        go(u, k + 1, cur, out);
        cur.push(u[k]);
        if valid(cur) {
            go(u, k + 1, cur, out);
        }
        cur.pop();
    }
    go(&universe, 0, &mut Vec::new(), &mut out);
    out
}

// ---------------------------------------------------------------------------
// Helpers.

/// xorshift64, seeded: deterministic randomness without a dependency.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            v.swap(i, self.below(i + 1));
        }
    }
}

fn p(m: GpuModel, name: &str) -> &'static Profile {
    m.profile(name).unwrap_or_else(|| panic!("{name} is a profile of {m}"))
}

const H100: GpuModel = GpuModel::H100_80GB;
const A100_40: GpuModel = GpuModel::A100_40GB;

/// Plans, then checks the answer independently: valid, and instance `i` is
/// of `names[i]`.
fn plan_ok(m: GpuModel, names: &[&str]) -> Vec<Instance> {
    let got = plan_layout(m, names).unwrap_or_else(|e| panic!("{m} {names:?}: {e}"));
    check_plan(m, names, &got);
    got
}

fn check_plan(m: GpuModel, names: &[&str], got: &[Instance]) {
    assert_eq!(got.len(), names.len());
    for (i, n) in got.iter().zip(names) {
        assert_eq!(i.profile(m).map(|p| p.name), Some(*n), "{m} {names:?} -> {got:?}");
    }
    let v: Vec<(usize, u8)> = got.iter().map(|i| (row_of(i.profile_id), i.start)).collect();
    assert!(valid(&v), "{m} {names:?} -> invalid {got:?}");
    let l = Layout::from_instances(m, got.iter().copied()).expect("a plan is a valid layout");
    assert_eq!(l.len(), names.len());
}

fn repeat<'a>(parts: &[(&'a str, usize)]) -> Vec<&'a str> {
    parts.iter().flat_map(|&(n, k)| std::iter::repeat_n(n, k)).collect()
}

// ---------------------------------------------------------------------------
// Tables.

#[test]
fn profile_tables_match_the_reference() {
    for m in GpuModel::ALL {
        let t = m.mig_profiles();
        let names = reference_names(m);
        assert_eq!(t.len(), 7, "{m}");
        for (r, pr) in t.iter().enumerate() {
            let (id, compute, memory, starts, max, me) = GRID[r];
            assert_eq!(pr.id, id, "{m} row {r}");
            assert_eq!(pr.name, names[r], "{m} row {r}");
            assert_eq!(pr.compute_slices, compute, "{m} {}", pr.name);
            assert_eq!(pr.memory_slices, memory, "{m} {}", pr.name);
            assert_eq!(pr.starts, starts, "{m} {}", pr.name);
            assert_eq!(pr.max_per_gpu, max, "{m} {}", pr.name);
            assert_eq!(pr.media_extensions, me, "{m} {}", pr.name);
            assert_eq!(m.profile(names[r]), Some(pr));
            assert_eq!(m.profile_by_id(id), Some(pr));
        }
        assert_eq!(m.profile("9g.99gb"), None);
        assert_eq!(m.profile_by_id(7), None, "an NVML index is not a profile ID");
    }
    assert_eq!(COMPUTE_SLICES, 7);
    assert_eq!(MEMORY_SLICES, 8);
    let keys: Vec<&str> = GpuModel::ALL.iter().map(|m| m.name()).collect();
    assert_eq!(keys, ["a100-40gb", "a100-80gb", "h100-80gb", "h200-141gb", "b200-180gb"]);
    let gb: Vec<u32> = GpuModel::ALL.iter().map(|m| m.memory_gb()).collect();
    assert_eq!(gb, [40, 80, 80, 141, 180]);
    assert_eq!(GpuModel::parse("h100-80gb"), Some(H100));
    assert_eq!(GpuModel::parse("h100"), None);
    // Names are per model.
    assert_eq!(
        A100_40.profile("1g.10gb").map(|p| p.id),
        Some(15),
        "1g.10gb is A100-40GB's double-memory 1g"
    );
    assert_eq!(A100_40.profile("2g.20gb"), None);
    assert_eq!(GpuModel::H200_141GB.profile("7g.80gb"), None);
}

#[test]
fn memory_masks_follow_the_starts() {
    let g = p(H100, "3g.40gb");
    assert_eq!(g.memory_mask(0), Some(0x0f));
    assert_eq!(g.memory_mask(4), Some(0xf0));
    assert_eq!(g.memory_mask(2), None);
    assert_eq!(p(H100, "1g.10gb").memory_mask(7), None);
    assert_eq!(p(H100, "7g.80gb").memory_mask(0), Some(0xff));
}

// ---------------------------------------------------------------------------
// Documented layouts.

#[test]
fn documented_h100_layouts_are_accepted() {
    let cases: Vec<Vec<&str>> = vec![
        vec!["3g.40gb", "2g.20gb", "1g.10gb", "1g.10gb"],
        repeat(&[("1g.10gb", 7)]),
        vec!["4g.40gb", "3g.40gb"],
        vec!["3g.40gb", "3g.40gb"],
        repeat(&[("2g.20gb", 3), ("1g.10gb", 1)]),
        repeat(&[("1g.20gb", 4)]),
        vec!["7g.80gb"],
        vec!["4g.40gb", "2g.20gb", "1g.10gb"],
        vec!["4g.40gb", "1g.10gb", "1g.10gb", "1g.10gb"],
        repeat(&[("1g.10gb+me", 1), ("1g.10gb", 6)]),
        repeat(&[("3g.40gb", 1), ("1g.20gb", 2)]),
        repeat(&[("2g.20gb", 3), ("1g.20gb", 1)]),
        repeat(&[("3g.40gb", 1), ("1g.10gb", 4)]),
        repeat(&[("2g.20gb", 2), ("1g.10gb", 3)]),
    ];
    for names in &cases {
        plan_ok(H100, names);
        // The order names are given in does not matter.
        let mut rev = names.clone();
        rev.reverse();
        plan_ok(H100, &rev);
    }
    // Exact layouts for the tight ones.
    let got = plan_ok(H100, &["1g.10gb", "3g.40gb", "2g.20gb", "1g.10gb"]);
    assert_eq!(got[1].start, 4, "the 3g must take the upper half: {got:?}");
    let got = plan_ok(H100, &["3g.40gb", "4g.40gb"]);
    assert_eq!((got[0].start, got[1].start), (4, 0));
    let got = plan_ok(H100, &repeat(&[("1g.10gb", 7)]));
    assert_eq!(got.iter().map(|i| i.start).collect::<Vec<_>>(), [0, 1, 2, 3, 4, 5, 6]);
}

/// The NVIDIA MIG User Guide's "Getting started" examples (A100-40GB).
#[test]
fn nvidia_guide_examples_are_accepted() {
    // `-lgipp`: two 3g.20gb or seven 1g.5gb.
    plan_ok(A100_40, &["3g.20gb", "3g.20gb"]);
    plan_ok(A100_40, &repeat(&[("1g.5gb", 7)]));
    // `-cgi 9,3g.20gb`: the driver reported them at 4:4 and 0:4.
    let l = Layout::from_instances(
        A100_40,
        [Instance { profile_id: 9, start: 4 }, Instance { profile_id: 9, start: 0 }],
    )
    .unwrap();
    assert_eq!(l.largest_placeable(), None);
    // Example 2, the 3-2-1-1 geometry `-cgi 9,19,14,19`, as the driver
    // placed it: 1g at 0:1 and 1:1, 2g at 2:2, 3g at 4:4.
    plan_ok(A100_40, &["3g.20gb", "1g.5gb", "2g.10gb", "1g.5gb"]);
    let ex2 =
        [(19, 0), (19, 1), (14, 2), (9, 4)].map(|(id, s)| Instance { profile_id: id, start: s });
    let l = Layout::from_instances(A100_40, ex2).unwrap();
    assert_eq!(l.used_compute_slices(), 7);
    // Example 3, the 2-1-1-1-1-1 geometry `-cgi 14,19,19,19,19,19`: 1g at
    // 0..=3 and 6, 2g at 4:2.
    plan_ok(A100_40, &repeat(&[("2g.10gb", 1), ("1g.5gb", 5)]));
    let ex3 = [(19, 0), (19, 1), (19, 2), (19, 3), (19, 6), (14, 4)]
        .map(|(id, s)| Instance { profile_id: id, start: s });
    let l = Layout::from_instances(A100_40, ex3).unwrap();
    assert_eq!(l.largest_placeable(), None);
    assert_eq!(l.free_memory_slices(), 1, "slice 7 stays free and useless");
}

/// The guide's known issue: `-cgi 19,19,14,9` fails because the 3g comes
/// last. One instance at a time, this policy makes the same choice (it
/// keeps a 4g possible instead); asking for the 3g first, or planning the
/// whole multiset, works.
#[test]
fn guide_ordering_issue_one_at_a_time_versus_planned() {
    let seq = |order: &[&str]| -> Option<Layout> {
        let mut l = Layout::new(A100_40);
        for n in order {
            let pr = p(A100_40, n);
            let s = l.place(pr)?;
            l.add(pr, s).unwrap();
        }
        Some(l)
    };
    assert!(seq(&["1g.5gb", "1g.5gb", "2g.10gb", "3g.20gb"]).is_none());
    let l = seq(&["3g.20gb", "1g.5gb", "2g.10gb", "1g.5gb"]).expect("3g first fits");
    assert_eq!(l.used_compute_slices(), 7);
    plan_ok(A100_40, &["1g.5gb", "1g.5gb", "2g.10gb", "3g.20gb"]);
}

// ---------------------------------------------------------------------------
// Impossible mixes.

#[test]
fn impossible_mixes_are_refused_with_the_reason() {
    for other in H100.mig_profiles() {
        let e = plan_layout(H100, &["7g.80gb", other.name]).unwrap_err();
        let expected = if other.name == "7g.80gb" {
            PlanError::TooMany { profile: "7g.80gb", requested: 2, max: 1 }
        } else {
            PlanError::ComputeExceeded { requested: 7 + other.compute_slices as u32, available: 7 }
        };
        assert_eq!(e, expected, "7g.80gb + {}", other.name);
    }
    assert_eq!(
        plan_layout(H100, &["4g.40gb", "4g.40gb"]),
        Err(PlanError::TooMany { profile: "4g.40gb", requested: 2, max: 1 })
    );
    assert_eq!(
        plan_layout(H100, &repeat(&[("1g.10gb", 8)])),
        Err(PlanError::TooMany { profile: "1g.10gb", requested: 8, max: 7 })
    );
    assert_eq!(
        plan_layout(H100, &["1g.10gb+me", "1g.10gb+me"]),
        Err(PlanError::TooMany { profile: "1g.10gb+me", requested: 2, max: 1 })
    );
    assert_eq!(
        plan_layout(H100, &["3g.40gb", "3g.40gb", "1g.10gb"]),
        Err(PlanError::MemoryExceeded { requested: 9, available: 8 })
    );
    assert_eq!(
        plan_layout(H100, &["4g.40gb", "3g.40gb", "1g.10gb"]),
        Err(PlanError::ComputeExceeded { requested: 8, available: 7 })
    );
    assert_eq!(
        plan_layout(H100, &repeat(&[("2g.20gb", 3), ("1g.10gb", 2)])),
        Err(PlanError::ComputeExceeded { requested: 8, available: 7 })
    );
    // Unknown names are per model, and the error names the culprit.
    let e = plan_layout(A100_40, &["1g.5gb", "1g.10gb+me", "1g.10gb"]).unwrap_err();
    assert_eq!(e, PlanError::UnknownProfile { model: A100_40, name: "1g.10gb+me".into() });
    let e = plan_layout(A100_40, &["1g.10gb", "2g.20gb"]).unwrap_err();
    assert_eq!(e, PlanError::UnknownProfile { model: A100_40, name: "2g.20gb".into() });
    let msg = e.to_string();
    assert!(
        msg.contains("\"2g.20gb\"") && msg.contains("a100-40gb") && msg.contains("2g.10gb"),
        "{msg}"
    );
    let e = plan_layout(GpuModel::B200_180GB, &["3g.71gb"]).unwrap_err();
    assert!(e.to_string().contains("3g.71gb"), "{e}");
    for e in [
        plan_layout(H100, &["4g.40gb", "3g.40gb", "1g.10gb"]).unwrap_err(),
        plan_layout(H100, &["3g.40gb", "3g.40gb", "1g.10gb"]).unwrap_err(),
        plan_layout(H100, &["1g.10gb+me", "1g.10gb+me"]).unwrap_err(),
    ] {
        assert!(!e.to_string().is_empty());
    }
}

#[test]
fn impossible_additions_to_a_layout_say_why() {
    let mut l = Layout::new(H100);
    l.add(p(H100, "7g.80gb"), 0).unwrap();
    for other in H100.mig_profiles() {
        assert_eq!(l.place(other), None, "{}", other.name);
        let e = l.fits(other, other.starts[0]).unwrap_err();
        if other.name == "7g.80gb" {
            assert!(matches!(e, Conflict::MaxPerGpu { max: 1, .. }), "{e:?}");
        } else {
            assert!(matches!(e, Conflict::ComputeExhausted { free: 0, .. }), "{e:?}");
        }
    }
    assert_eq!(l.largest_placeable(), None);

    let mut l = Layout::new(H100);
    l.add(p(H100, "4g.40gb"), 0).unwrap();
    assert!(matches!(l.fits(p(H100, "4g.40gb"), 0), Err(Conflict::MaxPerGpu { max: 1, .. })));
    l.add(p(H100, "3g.40gb"), 4).unwrap();
    assert_eq!(
        l.fits(p(H100, "1g.10gb"), 6),
        Err(Conflict::ComputeExhausted { profile: "1g.10gb", needed: 1, free: 0 })
    );

    let mut l = Layout::new(H100);
    l.add(p(H100, "3g.40gb"), 0).unwrap();
    l.add(p(H100, "3g.40gb"), 4).unwrap();
    let e = l.fits(p(H100, "1g.10gb"), 5).unwrap_err();
    assert!(
        matches!(e, Conflict::Overlap { with: Instance { profile_id: 9, start: 4 }, .. }),
        "{e:?}"
    );
    assert_eq!(l.place(p(H100, "1g.10gb")), None);
    assert_eq!(l.add(p(H100, "1g.10gb"), 5), Err(e));
    assert_eq!(l.len(), 2, "a refused add changes nothing");

    let mut l = Layout::new(H100);
    for s in 0..7 {
        l.add(p(H100, "1g.10gb"), s).unwrap();
    }
    assert!(matches!(l.fits(p(H100, "1g.10gb"), 7), Err(Conflict::InvalidStart { start: 7, .. })));
    assert_eq!(l.place(p(H100, "1g.10gb")), None);
    assert_eq!(l.free_memory_slices(), 1);
    assert_eq!(l.largest_placeable(), None);

    let mut l = Layout::new(H100);
    l.add(p(H100, "1g.10gb+me"), 0).unwrap();
    assert_eq!(l.place(p(H100, "1g.10gb+me")), None);
    assert!(l.place(p(H100, "1g.10gb")).is_some());

    assert!(matches!(
        Layout::new(H100).fits(p(A100_40, "1g.5gb"), 0),
        Err(Conflict::WrongModel { profile: "1g.5gb", model: GpuModel::H100_80GB })
    ));
    assert_eq!(
        Layout::from_instances(H100, [Instance { profile_id: 7, start: 0 }]),
        Err(LayoutError::UnknownProfileId { model: H100, id: 7 })
    );
    let overlapping =
        [Instance { profile_id: 14, start: 2 }, Instance { profile_id: 19, start: 3 }];
    assert!(matches!(
        Layout::from_instances(H100, overlapping),
        Err(LayoutError::Conflict { instance: Instance { profile_id: 19, start: 3 }, .. })
    ));
}

// ---------------------------------------------------------------------------
// Placement policy.

fn place_all(l: &mut Layout, pr: &Profile, n: usize) -> Vec<u8> {
    (0..n)
        .map(|_| {
            let s = l.place(pr).expect("fits");
            l.add(pr, s).unwrap();
            s
        })
        .collect()
}

#[test]
fn one_small_instance_keeps_the_big_profiles_possible() {
    let mut l = Layout::new(H100);
    let s = l.place(p(H100, "1g.10gb")).unwrap();
    l.add(p(H100, "1g.10gb"), s).unwrap();
    assert_eq!(s, 6);
    // Not less than a 3g: a 4g (same memory, more compute) and a 3g both
    // still fit.
    assert_eq!(l.largest_placeable().map(|p| p.name), Some("4g.40gb"));
    assert!(l.can_place(p(H100, "3g.40gb")));
    assert_eq!(l.placeable_count(p(H100, "2g.20gb")), 3);
    assert_eq!(l.placeable_count(p(H100, "1g.10gb")), 6);

    // Whatever single profile goes first, the largest profile that can
    // still follow is the largest any start would leave.
    for m in GpuModel::ALL {
        for pr in m.mig_profiles() {
            let empty = Layout::new(m);
            let chosen = empty.place(pr).unwrap();
            let rank_after = |s: u8| {
                let mut l = empty.clone();
                l.add(pr, s).unwrap();
                l.largest_placeable().map(|q| size_rank(row_of(q.id)))
            };
            for &s in pr.starts {
                assert!(rank_after(chosen) >= rank_after(s), "{m} {} at {chosen} vs {s}", pr.name);
            }
        }
    }
}

#[test]
fn repeated_placements_pack_from_one_side() {
    let mut l = Layout::new(H100);
    let starts = place_all(&mut l, p(H100, "1g.10gb"), 7);
    assert_eq!(starts, [6, 5, 4, 3, 2, 1, 0]);
    // After each placement the occupied slices are one contiguous run.
    let mut l = Layout::new(H100);
    for k in 1..=7 {
        place_all(&mut l, p(H100, "1g.10gb"), 1);
        let used = l.occupied_mask();
        assert_eq!(used.count_ones(), k);
        let shifted = used >> used.trailing_zeros();
        assert_eq!(shifted & (shifted + 1), 0, "{used:08b} is one run");
    }

    let mut l = Layout::new(H100);
    assert_eq!(place_all(&mut l, p(H100, "2g.20gb"), 3), [4, 2, 0]);
    assert_eq!(place_all(&mut l, p(H100, "1g.10gb"), 1), [6]);

    let mut l = Layout::new(H100);
    assert_eq!(place_all(&mut l, p(H100, "1g.20gb"), 4), [6, 4, 2, 0]);

    let mut l = Layout::new(H100);
    assert_eq!(place_all(&mut l, p(H100, "3g.40gb"), 1), [4]);
    assert_eq!(l.largest_placeable().map(|p| p.name), Some("4g.40gb"));
    assert_eq!(place_all(&mut l, p(H100, "3g.40gb"), 1), [0]);

    // Mixed: a 2g after a 1g keeps the 4g at 0 possible.
    let mut l = Layout::new(H100);
    place_all(&mut l, p(H100, "1g.10gb"), 1);
    assert_eq!(place_all(&mut l, p(H100, "2g.20gb"), 1), [4]);
    assert!(l.can_place(p(H100, "4g.40gb")));
}

// ---------------------------------------------------------------------------
// Randomized properties.

/// Checks every invariant of `l` against the brute-force rules.
fn check_layout(l: &Layout) {
    let m = l.model();
    let v = pairs(l);
    assert!(valid(&v), "{m} invalid layout {:?}", l.instances());
    assert!(l.instances().windows(2).all(|w| w[0].start < w[1].start), "by start");
    let mut mask = 0u8;
    for &(r, s) in &v {
        mask |= (((1u16 << GRID[r].2) - 1) << s) as u8;
    }
    assert_eq!(l.occupied_mask(), mask);
    assert_eq!(l.free_memory_slices() as u32, 8 - mask.count_ones());
    let compute: u8 = v.iter().map(|i| GRID[i.0].1).sum();
    assert!(compute <= 7);
    assert_eq!(l.used_compute_slices(), compute);
    assert_eq!(l.free_compute_slices(), 7 - compute);
    assert_eq!(l.is_empty(), v.is_empty());
    assert_eq!(l.len(), v.len());
    for (r, pr) in m.mig_profiles().iter().enumerate() {
        let n = v.iter().filter(|i| i.0 == r).count() as u8;
        assert!(n <= pr.max_per_gpu);
        assert_eq!(l.count(pr), n);
    }
    // Largest placeable, by brute force.
    let expected = (0..7)
        .filter(|&r| (0..8).any(|s| brute_fits(l, r, s)))
        .max_by_key(|&r| size_rank(r))
        .map(|r| m.mig_profiles()[r].name);
    assert_eq!(l.largest_placeable().map(|p| p.name), expected, "{m} {:?}", l.instances());
    // Rebuilding from the instances, in any order, gives the same layout.
    let rebuilt = Layout::from_instances(m, l.instances().iter().rev().copied()).unwrap();
    assert_eq!(&rebuilt, l);
}

/// The capacity vector the policy maximizes (keys 1 and 2), from the
/// public API: how many of each profile could still be placed, largest
/// profile first.
fn capacity(l: &Layout) -> Vec<u8> {
    let mut rows: Vec<usize> = (0..7).collect();
    rows.sort_by_key(|&r| std::cmp::Reverse(size_rank(r)));
    rows.iter().map(|&r| l.placeable_count(&l.model().mig_profiles()[r])).collect()
}

#[test]
fn random_place_add_remove_sequences_keep_every_invariant() {
    let mut rng = Rng::new(0x5eed_0001);
    let mut placed = 0u32;
    let mut refused = 0u32;
    for m in GpuModel::ALL {
        let profiles = m.mig_profiles();
        for _ in 0..1500 {
            let mut l = Layout::new(m);
            for _ in 0..20 {
                match rng.below(10) {
                    // place, then add where it says
                    0..=4 => {
                        let r = rng.below(7);
                        let pr = &profiles[r];
                        let any = (0..8).any(|s| brute_fits(&l, r, s));
                        match l.place(pr) {
                            Some(s) => {
                                assert!(any);
                                assert!(brute_fits(&l, r, s), "{m} {} at {s}", pr.name);
                                assert_eq!(l.fits(pr, s), Ok(()));
                                // Policy keys 1-2: no other start leaves
                                // more room.
                                let after = |s: u8| {
                                    let mut c = l.clone();
                                    c.add(pr, s).unwrap();
                                    capacity(&c)
                                };
                                let best = after(s);
                                for &o in pr.starts {
                                    if brute_fits(&l, r, o) {
                                        assert!(best >= after(o), "{m} {} {s} vs {o}", pr.name);
                                    }
                                }
                                l.add(pr, s).unwrap();
                                placed += 1;
                            }
                            None => {
                                assert!(
                                    !any,
                                    "{m} {} fits somewhere in {:?}",
                                    pr.name,
                                    l.instances()
                                );
                                assert!(!l.can_place(pr));
                                refused += 1;
                            }
                        }
                    }
                    // add at a random start (some invalid)
                    5..=7 => {
                        let r = rng.below(7);
                        let pr = &profiles[r];
                        let s = rng.below(10) as u8;
                        let expect = brute_fits(&l, r, s);
                        let before = l.clone();
                        match l.add(pr, s) {
                            Ok(()) => assert!(expect, "{m} {} at {s} accepted", pr.name),
                            Err(e) => {
                                assert!(!expect, "{m} {} at {s} refused: {e}", pr.name);
                                assert_eq!(l, before);
                                let ok_start = pr.starts.contains(&s);
                                let n = before.count(pr);
                                let compute_ok = before.free_compute_slices() >= pr.compute_slices;
                                match e {
                                    Conflict::InvalidStart { .. } => assert!(!ok_start),
                                    Conflict::MaxPerGpu { .. } => {
                                        assert!(ok_start && n >= pr.max_per_gpu)
                                    }
                                    Conflict::ComputeExhausted { .. } => {
                                        assert!(ok_start && n < pr.max_per_gpu && !compute_ok)
                                    }
                                    Conflict::Overlap { with, .. } => {
                                        assert!(ok_start && n < pr.max_per_gpu && compute_ok);
                                        assert!(overlaps(
                                            (r, s),
                                            (row_of(with.profile_id), with.start)
                                        ));
                                    }
                                    Conflict::WrongModel { .. } => panic!("own model's profile"),
                                }
                            }
                        }
                    }
                    // remove an instance (or a start with none)
                    _ => {
                        let s = if !l.is_empty() && rng.below(4) != 0 {
                            l.instances()[rng.below(l.len())].start
                        } else {
                            rng.below(8) as u8
                        };
                        let had = l.instances().iter().find(|i| i.start == s).copied();
                        assert_eq!(l.remove(s), had);
                    }
                }
                check_layout(&l);
                // Geometry and budgets together, against brute force.
                if rng.below(4) == 0 {
                    for (r, pr) in profiles.iter().enumerate() {
                        assert_eq!(l.placeable_count(pr), brute_placeable_count(&l, r));
                    }
                }
            }
        }
    }
    assert!(placed > 10_000 && refused > 1_000, "placed {placed}, refused {refused}");
}

#[test]
fn plan_layout_succeeds_exactly_when_some_assignment_exists() {
    let feasible = all_feasible_multisets();
    assert!(feasible.contains(&[7, 0, 0, 0, 0, 0, 0]));
    assert!(!feasible.contains(&[8, 0, 0, 0, 0, 0, 0]));
    let mut rng = Rng::new(0x5eed_0002);
    let mut ok = 0;
    let mut cases = 0;
    for m in GpuModel::ALL {
        let names = reference_names(m);
        // Every multiset of up to 8 instances (6435 of them per model).
        let mut c = [0u8; 7];
        loop {
            let mut list: Vec<&str> =
                (0..7).flat_map(|r| std::iter::repeat_n(names[r], c[r] as usize)).collect();
            rng.shuffle(&mut list);
            cases += 1;
            match plan_layout(m, &list) {
                Ok(got) => {
                    assert!(feasible.contains(&c), "{m} {list:?} planned but infeasible");
                    check_plan(m, &list, &got);
                    ok += 1;
                }
                Err(e) => {
                    assert!(!feasible.contains(&c), "{m} {list:?} refused: {e}");
                    let too_many = (0..7).find(|&r| c[r] > GRID[r].4);
                    let compute: u32 = (0..7).map(|r| c[r] as u32 * GRID[r].1 as u32).sum();
                    let memory: u32 = (0..7).map(|r| c[r] as u32 * GRID[r].2 as u32).sum();
                    match e {
                        PlanError::TooMany { profile, requested, max } => {
                            let r = too_many.expect("some profile over its maximum");
                            assert_eq!(
                                (profile, requested, max),
                                (names[r], c[r] as usize, GRID[r].4)
                            );
                        }
                        PlanError::ComputeExceeded { requested, .. } => {
                            assert!(too_many.is_none());
                            assert_eq!(requested, compute);
                            assert!(compute > 7);
                        }
                        PlanError::MemoryExceeded { requested, .. } => {
                            assert!(too_many.is_none() && compute <= 7);
                            assert_eq!(requested, memory);
                            assert!(memory > 8);
                        }
                        PlanError::DoesNotFit { .. } => {
                            // With the reference grid the budgets decide:
                            // every multiset within them has a layout.
                            panic!("{m} {list:?}: within budgets yet refused")
                        }
                        PlanError::UnknownProfile { .. } => panic!("known names"),
                    }
                }
            }
            // Next count vector with a total of at most 8.
            let mut i = 0;
            loop {
                if i == 7 {
                    break;
                }
                c[i] += 1;
                if c.iter().map(|&x| x as u32).sum::<u32>() <= 8 {
                    break;
                }
                c[i] = 0;
                i += 1;
            }
            if i == 7 {
                break;
            }
        }
    }
    assert_eq!(cases, 5 * 6435);
    assert_eq!(ok, 5 * feasible.len());
}

#[test]
fn random_requests_with_foreign_names_name_the_first_unknown() {
    let mut rng = Rng::new(0x5eed_0003);
    let all_names: Vec<&str> = GpuModel::ALL.iter().flat_map(|m| reference_names(*m)).collect();
    for _ in 0..5000 {
        let m = GpuModel::ALL[rng.below(5)];
        let n = rng.below(6);
        let list: Vec<&str> = (0..n).map(|_| all_names[rng.below(all_names.len())]).collect();
        let first_unknown = list.iter().find(|n| m.profile(n).is_none());
        match (plan_layout(m, &list), first_unknown) {
            (Err(PlanError::UnknownProfile { model, name }), Some(u)) => {
                assert_eq!((model, name.as_str()), (m, *u));
            }
            (Err(PlanError::UnknownProfile { name, .. }), None) => panic!("{name} is known"),
            (_, Some(u)) => panic!("{m} {list:?}: {u} should be refused first"),
            (Ok(got), None) => check_plan(m, &list, &got),
            (Err(_), None) => {}
        }
    }
}

/// Plans agree with one-at-a-time placement where the policy can do it:
/// a plan rebuilt as a layout leaves at least the room that placing the
/// same profiles one by one (largest first) leaves.
#[test]
fn planned_layouts_leave_at_least_the_room_of_greedy_placement() {
    let mut rng = Rng::new(0x5eed_0004);
    for _ in 0..3000 {
        let m = GpuModel::ALL[rng.below(5)];
        let profiles = m.mig_profiles();
        let mut rows: Vec<usize> = (0..rng.below(6) + 1).map(|_| rng.below(6)).collect();
        rows.sort_by_key(|&r| std::cmp::Reverse(size_rank(r)));
        let mut greedy = Layout::new(m);
        let mut all_placed = true;
        for &r in &rows {
            match greedy.place(&profiles[r]) {
                Some(s) => greedy.add(&profiles[r], s).unwrap(),
                None => {
                    all_placed = false;
                    break;
                }
            }
        }
        let names: Vec<&str> = rows.iter().map(|&r| profiles[r].name).collect();
        let plan = plan_layout(m, &names);
        if all_placed {
            let got = plan.expect("greedy found a layout, so the planner must");
            let planned = Layout::from_instances(m, got).unwrap();
            assert!(capacity(&planned) >= capacity(&greedy), "{m} {names:?}");
        }
    }
}

/// Timing of the hot path; run with
/// `cargo test -p neocloud-placement --release --test mig -- --ignored --nocapture`.
#[test]
#[ignore]
fn place_speed() {
    let mut rng = Rng::new(7);
    let mut layouts = Vec::new();
    for _ in 0..1024 {
        let mut l = Layout::new(H100);
        for _ in 0..rng.below(5) {
            let pr = &H100.mig_profiles()[rng.below(6)];
            if let Some(s) = l.place(pr) {
                l.add(pr, s).unwrap();
            }
        }
        layouts.push(l);
    }
    let profiles = H100.mig_profiles();
    let n = 10_000_000usize;
    let t = std::time::Instant::now();
    let mut hits = 0usize;
    for i in 0..n {
        let l = &layouts[i & 1023];
        if std::hint::black_box(l.place(&profiles[i % 7])).is_some() {
            hits += 1;
        }
    }
    let ns = t.elapsed().as_nanos() as f64 / n as f64;
    println!("place: {ns:.1} ns/call ({hits} of {n} fit)");
    let t = std::time::Instant::now();
    for i in 0..n {
        std::hint::black_box(layouts[i & 1023].largest_placeable());
    }
    let ns2 = t.elapsed().as_nanos() as f64 / n as f64;
    println!("largest_placeable: {ns2:.1} ns/call");
}
