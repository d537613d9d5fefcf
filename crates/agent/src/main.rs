//! The `neocloud-agent` command ([`neocloud_agent::cli`]).

use std::process::ExitCode;

fn main() -> ExitCode {
    ExitCode::from(neocloud_agent::cli::run(std::env::args_os()))
}
