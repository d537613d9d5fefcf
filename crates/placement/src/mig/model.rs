//! GPU models and their MIG GPU instance profiles (static tables), plus the
//! precomputed bitmask tables the layout code uses on its hot path.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Memory slices of a MIG-capable GPU: the axis placements are measured on.
pub const MEMORY_SLICES: u8 = 8;
/// Compute slices of a MIG-capable GPU: the instances on one GPU use at
/// most this many together.
pub const COMPUTE_SLICES: u8 = 7;

/// A MIG-capable GPU model. Non-MIG models are out of scope here: a model
/// key that [`GpuModel::parse`] does not know is simply not MIG-capable as
/// far as this module is concerned.
///
/// Serialized as its canonical key ([`GpuModel::name`]), e.g. `h100-80gb`.
#[allow(non_camel_case_types)]
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[schemars(rename = "MigGpuModel")]
pub enum GpuModel {
    #[serde(rename = "a100-40gb")]
    A100_40GB,
    #[serde(rename = "a100-80gb")]
    A100_80GB,
    #[serde(rename = "h100-80gb")]
    H100_80GB,
    /// Grid assumed identical to A100/H100: H200 `-lgipp` output was not
    /// found (reference §7 flag), check it on the hardware.
    #[serde(rename = "h200-141gb")]
    H200_141GB,
    /// Grid assumed identical to A100/H100: B200 `-lgipp` output was not
    /// found (reference §7 flag); profile IDs 19/20/15/14 are confirmed from
    /// `-lgip`, `4g.90gb` appeared in a later driver (March 2025), and
    /// `1g.45gb` reports 30 SMs, not 18.
    #[serde(rename = "b200-180gb")]
    B200_180GB,
}

impl GpuModel {
    /// Every MIG-capable model, in declaration order.
    pub const ALL: [GpuModel; 5] = [
        GpuModel::A100_40GB,
        GpuModel::A100_80GB,
        GpuModel::H100_80GB,
        GpuModel::H200_141GB,
        GpuModel::B200_180GB,
    ];

    /// The canonical lowercase key: `a100-40gb`, `a100-80gb`, `h100-80gb`,
    /// `h200-141gb`, `b200-180gb`.
    pub fn name(self) -> &'static str {
        match self {
            GpuModel::A100_40GB => "a100-40gb",
            GpuModel::A100_80GB => "a100-80gb",
            GpuModel::H100_80GB => "h100-80gb",
            GpuModel::H200_141GB => "h200-141gb",
            GpuModel::B200_180GB => "b200-180gb",
        }
    }

    /// Parses a canonical key, ASCII case-insensitively (`H100-80GB` is
    /// `h100-80gb`). `None` for anything else, including GPU models that
    /// exist but are not MIG-capable.
    pub fn parse(s: &str) -> Option<GpuModel> {
        GpuModel::ALL.into_iter().find(|m| m.name().eq_ignore_ascii_case(s))
    }

    /// GPU memory in GB, as in the model key.
    pub fn memory_gb(self) -> u32 {
        match self {
            GpuModel::A100_40GB => 40,
            GpuModel::A100_80GB | GpuModel::H100_80GB => 80,
            GpuModel::H200_141GB => 141,
            GpuModel::B200_180GB => 180,
        }
    }

    /// The model's GPU instance profiles, smallest first, in the reference's
    /// row order: IDs 19, 20, 15, 14, 9, 5, 0 (1g, 1g+me, 1g double memory,
    /// 2g, 3g, 4g, 7g).
    pub fn mig_profiles(self) -> &'static [Profile] {
        self.table()
    }

    /// The profile called `name` on this model (exact, e.g. `3g.40gb`;
    /// names are model-specific: `3g.40gb` is an H100-80GB profile but not an A100-40GB one).
    pub fn profile(self, name: &str) -> Option<&'static Profile> {
        self.table().iter().find(|p| p.name == name)
    }

    /// The profile with `nvidia-smi` profile ID `id` on this model.
    pub fn profile_by_id(self, id: u32) -> Option<&'static Profile> {
        row_of_id(id).map(|r| &self.table()[r])
    }

    pub(super) fn table(self) -> &'static [Profile; ROWS] {
        match self {
            GpuModel::A100_40GB => &A100_40GB,
            GpuModel::A100_80GB | GpuModel::H100_80GB => &A100_H100_80GB,
            GpuModel::H200_141GB => &H200_141GB,
            GpuModel::B200_180GB => &B200_180GB,
        }
    }
}

impl fmt::Display for GpuModel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// [`GpuModel`]'s `FromStr` error: the key is not a MIG-capable model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownGpuModel(pub String);

impl fmt::Display for UnknownGpuModel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} is not a MIG-capable GPU model (expected one of", self.0)?;
        for (i, m) in GpuModel::ALL.iter().enumerate() {
            write!(f, "{}{m}", if i == 0 { " " } else { ", " })?;
        }
        f.write_str(")")
    }
}

impl std::error::Error for UnknownGpuModel {}

impl FromStr for GpuModel {
    type Err = UnknownGpuModel;

    fn from_str(s: &str) -> Result<GpuModel, UnknownGpuModel> {
        GpuModel::parse(s).ok_or_else(|| UnknownGpuModel(s.to_string()))
    }
}

/// A GPU instance profile of one GPU model (static data; obtain it from
/// [`GpuModel::mig_profiles`], [`GpuModel::profile`] or
/// [`GpuModel::profile_by_id`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, JsonSchema)]
#[schemars(rename = "MigProfile")]
pub struct Profile {
    /// The `nvidia-smi` GPU instance profile ID (19, 20, 15, 14, 9, 5, 0),
    /// not the NVML profile index.
    pub id: u32,
    /// The model-specific name, e.g. `3g.40gb` or `1g.10gb+me`.
    pub name: &'static str,
    /// Compute slices used (of [`COMPUTE_SLICES`]).
    pub compute_slices: u8,
    /// Memory slices used (of [`MEMORY_SLICES`]): the instance's size on the
    /// placement axis.
    pub memory_slices: u8,
    /// Valid start indices on the memory-slice axis, ascending.
    pub starts: &'static [u8],
    /// Most instances of this profile on one GPU.
    pub max_per_gpu: u8,
    /// The `+me` profile: a 1g instance with the media extensions (the
    /// GPU's OFA and more decoders); one per GPU.
    pub media_extensions: bool,
}

impl Profile {
    /// Whether `start` is one of the profile's valid start indices.
    pub fn is_valid_start(&self, start: u8) -> bool {
        self.starts.contains(&start)
    }

    /// The memory slices an instance at `start` occupies, as a bitmask (bit
    /// `i` is slice `i`); `None` when `start` is not a valid start.
    pub fn memory_mask(&self, start: u8) -> Option<u8> {
        if !self.is_valid_start(start) {
            return None;
        }
        Some(range_mask(start, self.memory_slices))
    }
}

/// Number of profiles per model.
pub(super) const ROWS: usize = 7;

/// Rows from the largest profile to the smallest: 7g, 4g, 3g, 2g, 1g double
/// memory, 1g, 1g+me. "Largest" is by memory slices, then compute slices;
/// the plain 1g ranks above `+me` (it is the general-purpose one of the
/// two, and `+me` is the scarcer: one per GPU).
pub(super) const LARGEST_FIRST: [usize; ROWS] = [6, 5, 4, 3, 2, 0, 1];

/// The reference's row for `nvidia-smi` profile ID `id`.
pub(super) const fn row_of_id(id: u32) -> Option<usize> {
    match id {
        19 => Some(0),
        20 => Some(1),
        15 => Some(2),
        14 => Some(3),
        9 => Some(4),
        5 => Some(5),
        0 => Some(6),
        _ => None,
    }
}

const STARTS_0_TO_6: &[u8] = &[0, 1, 2, 3, 4, 5, 6];
const STARTS_EVEN: &[u8] = &[0, 2, 4, 6];
const STARTS_2G: &[u8] = &[0, 2, 4];
const STARTS_3G: &[u8] = &[0, 4];
const STARTS_0: &[u8] = &[0];

/// One model's table from its seven names in row order. The grid (IDs,
/// slices, starts, maxima) is the same for every model (reference §7:
/// identical in the A100 guide example and real H100 SXM/NVL output;
/// assumed for H200/B200).
const fn table(n: [&'static str; ROWS]) -> [Profile; ROWS] {
    const fn p(id: u32, name: &'static str, c: u8, m: u8, s: &'static [u8], max: u8) -> Profile {
        Profile {
            id,
            name,
            compute_slices: c,
            memory_slices: m,
            starts: s,
            max_per_gpu: max,
            media_extensions: id == 20,
        }
    }
    [
        p(19, n[0], 1, 1, STARTS_0_TO_6, 7),
        p(20, n[1], 1, 1, STARTS_0_TO_6, 1),
        p(15, n[2], 1, 2, STARTS_EVEN, 4),
        p(14, n[3], 2, 2, STARTS_2G, 3),
        p(9, n[4], 3, 4, STARTS_3G, 2),
        p(5, n[5], 4, 4, STARTS_0, 1),
        p(0, n[6], 7, 8, STARTS_0, 1),
    ]
}

static A100_40GB: [Profile; ROWS] =
    table(["1g.5gb", "1g.5gb+me", "1g.10gb", "2g.10gb", "3g.20gb", "4g.20gb", "7g.40gb"]);
static A100_H100_80GB: [Profile; ROWS] =
    table(["1g.10gb", "1g.10gb+me", "1g.20gb", "2g.20gb", "3g.40gb", "4g.40gb", "7g.80gb"]);
static H200_141GB: [Profile; ROWS] =
    table(["1g.18gb", "1g.18gb+me", "1g.35gb", "2g.35gb", "3g.71gb", "4g.71gb", "7g.141gb"]);
static B200_180GB: [Profile; ROWS] =
    table(["1g.23gb", "1g.23gb+me", "1g.45gb", "2g.45gb", "3g.90gb", "4g.90gb", "7g.180gb"]);

/// The grid every model shares (names aside).
pub(super) const GRID: [Profile; ROWS] = table(["", "", "", "", "", "", ""]);

/// `size` bits from bit `start` (memory slices `start..start + size`).
pub(super) const fn range_mask(start: u8, size: u8) -> u8 {
    (((1u16 << size) - 1) << start) as u8
}

/// `MASK[row][start]`: the slices an instance of `row` at `start` occupies;
/// 0 when `start` is not valid for the row.
pub(super) const MASK: [[u8; MEMORY_SLICES as usize]; ROWS] = {
    let mut t = [[0u8; MEMORY_SLICES as usize]; ROWS];
    let mut r = 0;
    while r < ROWS {
        let starts = GRID[r].starts;
        let mut i = 0;
        while i < starts.len() {
            t[r][starts[i] as usize] = range_mask(starts[i], GRID[r].memory_slices);
            i += 1;
        }
        r += 1;
    }
    t
};

/// `FREE_COUNT[used][row]`: how many instances of `row` fit, by geometry
/// alone (no compute or per-GPU limits), on a GPU whose occupied slices are
/// `used`. Greedy by lowest start is optimal: all instances of one row have
/// the same size, so the earliest start is also the earliest end.
pub(super) const FREE_COUNT: [[u8; ROWS]; 256] = {
    let mut t = [[0u8; ROWS]; 256];
    let mut used = 0;
    while used < 256 {
        let mut r = 0;
        while r < ROWS {
            let mut taken = used as u8;
            let mut n = 0;
            let mut s = 0;
            while s < MEMORY_SLICES as usize {
                let m = MASK[r][s];
                if m != 0 && m & taken == 0 {
                    taken |= m;
                    n += 1;
                }
                s += 1;
            }
            t[used][r] = n;
            r += 1;
        }
        used += 1;
    }
    t
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_share_the_grid_and_differ_only_in_names() {
        for m in GpuModel::ALL {
            let t = m.mig_profiles();
            assert_eq!(t.len(), ROWS);
            for (r, p) in t.iter().enumerate() {
                let g = GRID[r];
                assert_eq!(Profile { name: "", ..*p }, g, "{m} {}", p.name);
                assert_eq!(row_of_id(p.id), Some(r));
                assert_eq!(m.profile(p.name), Some(p));
                assert_eq!(m.profile_by_id(p.id), Some(p));
                assert_eq!(p.media_extensions, p.name.ends_with("+me"));
                assert!(p.name.starts_with(&format!("{}g.", p.compute_slices)), "{}", p.name);
                assert!(p.starts.windows(2).all(|w| w[0] < w[1]));
                assert!(p.starts.iter().all(|&s| s + p.memory_slices <= MEMORY_SLICES));
            }
            // Names are unique within a model.
            for (i, a) in t.iter().enumerate() {
                assert!(t[i + 1..].iter().all(|b| b.name != a.name));
            }
        }
    }

    #[test]
    fn model_keys_round_trip() {
        for m in GpuModel::ALL {
            assert_eq!(GpuModel::parse(m.name()), Some(m));
            assert_eq!(GpuModel::parse(&m.name().to_uppercase()), Some(m));
            assert_eq!(m.name().parse::<GpuModel>(), Ok(m));
            assert_eq!(m.to_string(), m.name());
            assert!(m.name().ends_with(&format!("-{}gb", m.memory_gb())));
        }
        assert_eq!(GpuModel::parse("l40s-48gb"), None);
        let e = "rtx-4090".parse::<GpuModel>().unwrap_err();
        assert!(e.to_string().contains("\"rtx-4090\""), "{e}");
        assert!(e.to_string().contains("h100-80gb"), "{e}");
    }

    #[test]
    fn masks_and_free_counts() {
        assert_eq!(range_mask(0, 8), 0xff);
        assert_eq!(range_mask(4, 4), 0xf0);
        assert_eq!(range_mask(6, 1), 0b0100_0000);
        assert_eq!(MASK[6][0], 0xff);
        assert_eq!(MASK[0][7], 0, "start 7 is never valid");
        assert_eq!(FREE_COUNT[0], [7, 7, 4, 3, 2, 1, 1]);
        assert_eq!(FREE_COUNT[0xff], [0; ROWS]);
        // Only slice 7 used: 1g still 7, 1g double memory 3, 3g 1, 7g 0.
        assert_eq!(FREE_COUNT[0x80], [7, 7, 3, 3, 1, 1, 0]);
        for r in 0..ROWS {
            let p = GRID[r];
            for s in 0..MEMORY_SLICES {
                assert_eq!(p.memory_mask(s).unwrap_or(0), MASK[r][s as usize]);
            }
        }
    }
}
