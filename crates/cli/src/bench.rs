//! `neocloud bench api`: placeholder, replaced below.
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct BenchArgs {}

pub fn run(_a: BenchArgs) -> ExitCode {
    ExitCode::from(1)
}
