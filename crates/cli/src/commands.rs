//! Client subcommands.
use std::process::ExitCode;

#[derive(clap::Subcommand)]
pub enum ClientCommand {
    /// Verify the audit trail's hash chains directly in the store.
    #[command(subcommand)]
    Audit(AuditCommand),
}

#[derive(clap::Subcommand)]
pub enum AuditCommand {
    /// Recompute every hash chain in the store and report edited or deleted rows.
    Verify {
        /// Store URL (sqlite://PATH or postgres://...).
        #[arg(long, env = "NEOCLOUD_DB")]
        db: String,
    },
}

pub fn run(c: ClientCommand) -> ExitCode {
    match c {
        ClientCommand::Audit(AuditCommand::Verify { db }) => audit_verify(&db),
    }
}

pub fn audit_verify(db: &str) -> ExitCode {
    let store = match neocloud_store::Store::open(db) {
        Ok(s) => s,
        Err(e) => return crate::output::fail_local(&e),
    };
    match store.read(neocloud_store::audit::verify) {
        Ok(v) if v.problems.is_empty() => {
            println!("ok: {} chain(s), {} event(s), all intact", v.chains, v.events);
            ExitCode::SUCCESS
        }
        Ok(v) => {
            for p in &v.problems {
                println!("TAMPERED: {p}");
            }
            println!(
                "{} problem(s) in {} chain(s), {} event(s)",
                v.problems.len(),
                v.chains,
                v.events
            );
            ExitCode::from(10)
        }
        Err(e) => crate::output::fail_local(&e),
    }
}
