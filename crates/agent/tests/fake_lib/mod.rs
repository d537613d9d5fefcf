//! Builds a test double of an NVIDIA driver library (its C source under
//! `tests/`) with the system's C compiler. Shared by the NVML and CUDA
//! tests.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Builds `tests/<source>` (with `defines`) into `dir/name`.
pub fn build(source: &str, dir: &Path, name: &str, defines: &[&str]) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests").join(source);
    std::fs::create_dir_all(dir).unwrap();
    let out = dir.join(name);
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let status = Command::new(&cc)
        .args(["-shared", "-fPIC", "-Wall", "-Werror", "-o"])
        .arg(&out)
        .arg(&src)
        .args(defines)
        .status()
        .unwrap_or_else(|e| panic!("cannot run the C compiler {cc}: {e}"));
    assert!(status.success(), "building {source} failed");
    out
}

/// A scratch directory for one test's libraries.
pub fn scratch(kind: &str, test: &str) -> PathBuf {
    std::env::temp_dir().join(format!("neocloud-fake-{kind}-{}-{test}", std::process::id()))
}
