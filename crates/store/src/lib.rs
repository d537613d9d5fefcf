//! The control plane's store.
//!
//! Two backends behind one small SQL interface: SQLite (embedded, the
//! default) and PostgreSQL (for several control-plane replicas). Queries are
//! written once, per resource, against [`Reader`] (read-only transactions)
//! and [`Writer`] (read-write transactions); placeholders are `?` and the
//! PostgreSQL backend rewrites them.
//!
//! **Invariants.** Every object row has `id`, `generation`, `created_at`,
//! `updated_at`; every update of an object checks `generation = expected`
//! and bumps it. Transactions are short and never span I/O other than the
//! database: callers run them on a blocking thread and do nothing else inside.

pub mod agents;
pub mod allocations;
pub mod audit;
mod backend;
pub mod idempotency;
pub mod images;
pub mod instance_types;
pub mod instances;
pub mod memberships;
pub mod meta;
mod migrations;
pub mod nodes;
mod pg;
pub mod projects;
pub mod quotas;
mod sqlite;
pub mod tenants;
#[doc(hidden)]
pub mod testing;
pub mod tokens;
pub mod users;

pub use backend::{BackendKind, DbError, Reader, Row, Value, Writer};

use neocloud_common::{Error, Result};
use std::path::Path;
use std::sync::Arc;

/// A backend: runs closures inside transactions.
trait Backend: Send + Sync {
    fn kind(&self) -> BackendKind;
    fn read(&self, f: &mut dyn FnMut(&mut dyn Reader) -> Result<()>) -> Result<()>;
    fn write(&self, f: &mut dyn FnMut(&mut dyn Writer) -> Result<()>) -> Result<()>;
}

/// A handle on the store; cheap to clone.
#[derive(Clone)]
pub struct Store {
    backend: Arc<dyn Backend>,
    url: Arc<str>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("backend", &self.backend.kind()).finish()
    }
}

impl Store {
    /// Opens (creating where needed) the store at `url` and applies
    /// migrations. `sqlite://PATH` (relative paths are taken from the current
    /// directory) or `postgres://...`.
    pub fn open(url: &str) -> Result<Store> {
        let backend: Arc<dyn Backend> = if let Some(path) = url.strip_prefix("sqlite://") {
            if path.is_empty() {
                return Err(Error::invalid_request("db", "sqlite:// needs a file path"));
            }
            Arc::new(sqlite::Sqlite::open(Path::new(path))?)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Arc::new(pg::Pg::open(url)?)
        } else {
            return Err(Error::invalid_request(
                "db",
                "database URL must start with sqlite:// or postgres://",
            ));
        };
        let store = Store { backend, url: url.into() };
        store.write(|w| migrations::apply(w))?;
        Ok(store)
    }

    pub fn kind(&self) -> BackendKind {
        self.backend.kind()
    }

    /// The URL with any password masked, for logs.
    pub fn display_url(&self) -> String {
        match (self.url.find("://"), self.url.rfind('@')) {
            (Some(s), Some(at)) if at > s => {
                let creds = &self.url[s + 3..at];
                match creds.split_once(':') {
                    Some((user, _)) => {
                        format!("{}{}:***{}", &self.url[..s + 3], user, &self.url[at..])
                    }
                    None => self.url.to_string(),
                }
            }
            _ => self.url.to_string(),
        }
    }

    /// Runs `f` in a read-only transaction.
    pub fn read<T>(&self, f: impl FnOnce(&mut dyn Reader) -> Result<T>) -> Result<T> {
        let mut f = Some(f);
        let mut out = None;
        self.backend.read(&mut |r| {
            let f = f.take().ok_or_else(|| Error::internal("read closure ran twice"))?;
            out = Some(f(r)?);
            Ok(())
        })?;
        out.ok_or_else(|| Error::internal("read closure did not run"))
    }

    /// Runs `f` in a read-write transaction: committed if `f` returns `Ok`,
    /// rolled back (nothing written) if it returns `Err`.
    pub fn write<T>(&self, f: impl FnOnce(&mut dyn Writer) -> Result<T>) -> Result<T> {
        let mut f = Some(f);
        let mut out = None;
        self.backend.write(&mut |w| {
            let f = f.take().ok_or_else(|| Error::internal("write closure ran twice"))?;
            out = Some(f(w)?);
            Ok(())
        })?;
        out.ok_or_else(|| Error::internal("write closure did not run"))
    }

    /// Checks the store answers.
    pub fn ping(&self) -> Result<()> {
        self.read(|r| r.query("SELECT 1", &[]).map(|_| ()))
    }
}

/// `vals![a, b]` builds a parameter slice.
#[macro_export]
macro_rules! vals {
    ($($v:expr),* $(,)?) => { &[$($crate::Value::from($v)),*] };
}

/// Maps a generation-checked `UPDATE`'s row count to the right error.
/// `scope` is the `(column, value)` the `UPDATE` was also restricted to (the
/// owning tenant, say): a row outside it is not found, not a mismatch.
pub(crate) fn check_generation(
    w: &mut dyn Writer,
    updated: u64,
    table: &str,
    kind: &'static str,
    id: &str,
    expected: i64,
    scope: Option<(&str, &str)>,
) -> Result<()> {
    if updated == 1 {
        return Ok(());
    }
    let rows = match scope {
        None => w.query(&format!("SELECT generation FROM {table} WHERE id = ?"), vals![id])?,
        Some((col, val)) => w.query(
            &format!("SELECT generation FROM {table} WHERE id = ? AND {col} = ?"),
            vals![id, val],
        )?,
    };
    match rows.first() {
        None => Err(Error::not_found(kind, id)),
        Some(r) => Err(Error::GenerationMismatch { kind, expected, current: r.i64(0)? }),
    }
}

pub(crate) fn rfc(micros: i64) -> String {
    neocloud_common::time::to_rfc3339(micros)
}

pub(crate) fn opt_rfc(micros: Option<i64>) -> Option<String> {
    micros.map(rfc)
}
