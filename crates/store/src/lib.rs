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
//!
//! **Write transactions may run more than once.** A deadlock victim or a
//! serialization failure on PostgreSQL, or a busy database on SQLite, is the
//! server's concurrency, not a fault: [`Store::write`] rolls the whole
//! transaction back and runs its closure again (a bounded number of times,
//! after a short randomized pause), and answers `unavailable` if it still
//! fails. A write closure must therefore have no effect outside the
//! transaction, and must (re)set any state it hands out on every run.

pub mod agents;
pub mod allocation_holds;
pub mod allocations;
pub mod attachments;
pub mod audit;
mod backend;
pub mod fabrics;
pub mod firmware_baselines;
pub mod idempotency;
pub mod images;
pub mod instance_types;
pub mod instances;
pub mod memberships;
pub mod meta;
mod migrations;
pub mod nodes;
mod pg;
pub mod placement_log;
pub mod projects;
pub mod provisioning_networks;
pub mod quotas;
mod sqlite;
pub mod tenants;
#[doc(hidden)]
pub mod testing;
pub mod tokens;
pub mod users;
pub mod vpcs;

pub use backend::{BackendKind, DbError, Reader, Row, Value, Writer};

use backend::{RerunPolicy, TxError};
use neocloud_common::{Error, Result};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A backend: runs closures inside transactions.
trait Backend: Send + Sync {
    fn kind(&self) -> BackendKind;
    fn read(&self, f: &mut dyn FnMut(&mut dyn Reader) -> Result<()>) -> Result<()>;
    /// One attempt of a write transaction: committed if `f` returns `Ok`
    /// and the commit succeeds, else rolled back.
    fn write(&self, f: &mut dyn FnMut(&mut dyn Writer) -> Result<()>) -> Result<(), TxError>;
    /// When [`Store::write`] runs a transaction again after
    /// [`TxError::Rerun`].
    fn rerun_policy(&self) -> RerunPolicy;
    /// Writes undone after later writes of the same transaction could read
    /// them: SQLite's group commit, whose members share one transaction,
    /// rolled back whole. Always 0 where every write has a transaction of
    /// its own (PostgreSQL).
    fn undone_groups(&self) -> u64 {
        0
    }
}

/// Counters of the store's write transactions since it was opened (shared
/// by every clone of a [`Store`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreStats {
    /// Write transactions run again after a transient failure (each re-run
    /// counts once).
    pub write_reruns: u64,
    /// Write transactions that still failed transiently on their last
    /// attempt and were answered `unavailable`.
    pub write_gave_up: u64,
}

#[derive(Default)]
struct Counters {
    write_reruns: AtomicU64,
    write_gave_up: AtomicU64,
}

/// A handle on the store; cheap to clone.
#[derive(Clone)]
pub struct Store {
    backend: Arc<dyn Backend>,
    url: Arc<str>,
    counters: Arc<Counters>,
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
        let store = Store::connect(url)?;
        store.write(|w| migrations::apply(w, None))?;
        Ok(store)
    }

    /// The store at `url` without migrating it.
    fn connect(url: &str) -> Result<Store> {
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
        Ok(Store { backend, url: url.into(), counters: Arc::default() })
    }

    /// Opens the store at `url` migrated up to `version` only (a
    /// migration's test writes rows in the schema before it, then
    /// [`Store::open`] applies the rest).
    #[doc(hidden)]
    pub fn open_at_version(url: &str, version: i64) -> Result<Store> {
        let store = Store::connect(url)?;
        store.write(|w| migrations::apply(w, Some(version)))?;
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
    ///
    /// When the database fails the transaction for concurrency (a deadlock
    /// or serialization failure on PostgreSQL, a busy database on SQLite),
    /// the whole transaction is rolled back and `f` runs again, a bounded
    /// number of times after a short randomized pause; if the last attempt
    /// fails so too, the answer is [`Error::Unavailable`] (retryable) naming
    /// the cause. `f` must therefore have no effect outside the transaction
    /// and must (re)set, on every run, any state it hands out of it: only the
    /// last run's result counts.
    pub fn write<T>(&self, mut f: impl FnMut(&mut dyn Writer) -> Result<T>) -> Result<T> {
        let policy = self.backend.rerun_policy();
        let start = Instant::now();
        let mut attempt = 1;
        loop {
            let mut out = None;
            let res = self.backend.write(&mut |w| {
                out = Some(f(w)?);
                Ok(())
            });
            let (code, detail) = match res {
                Ok(()) => return out.ok_or_else(|| Error::internal("write closure did not run")),
                Err(TxError::Fatal(e)) => return Err(e),
                Err(TxError::Rerun { code, detail }) => (code, detail),
            };
            let in_budget = policy.budget.is_none_or(|b| start.elapsed() < b);
            if attempt >= policy.attempts || !in_budget {
                self.counters.write_gave_up.fetch_add(1, Ordering::Relaxed);
                // Logged where the error is answered (or reported).
                tracing::debug!(code, attempt, error = %detail, "write transaction given up");
                let attempts = match attempt {
                    1 => "1 attempt".to_string(),
                    n => format!("{n} attempts"),
                };
                return Err(Error::Unavailable {
                    internal: format!("{detail} (write transaction given up after {attempts})"),
                });
            }
            self.counters.write_reruns.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(code, attempt, error = %detail, "write transaction runs again");
            std::thread::sleep(rerun_pause(attempt));
            attempt += 1;
        }
    }

    /// Counters of write transactions run again or given up.
    pub fn stats(&self) -> StoreStats {
        StoreStats {
            write_reruns: self.counters.write_reruns.load(Ordering::Relaxed),
            write_gave_up: self.counters.write_gave_up.load(Ordering::Relaxed),
        }
    }

    /// Times a transaction shared by several writes was rolled back whole
    /// (SQLite's group commit; 0 on PostgreSQL): a write that read another
    /// member's rows read what was then undone, and what it derived from
    /// them (a cache, the placement engine) must be read again.
    pub fn undone_groups(&self) -> u64 {
        self.backend.undone_groups()
    }

    /// Checks the store answers.
    pub fn ping(&self) -> Result<()> {
        self.read(|r| r.query("SELECT 1", &[]).map(|_| ()))
    }
}

/// The pause before attempt `failed + 1` of a write transaction: uniformly
/// random in [b/2, 3b/2) where b doubles from 10 ms per failed attempt, so
/// that transactions that collided do not collide again in step.
fn rerun_pause(failed: u32) -> Duration {
    let base_us = 10_000u64 << failed.clamp(1, 6).saturating_sub(1);
    let mut bytes = [0u8; 8];
    let r = match getrandom::getrandom(&mut bytes) {
        Ok(()) => u64::from_le_bytes(bytes),
        Err(_) => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::from(d.subsec_nanos())),
    };
    Duration::from_micros(base_us / 2 + r % base_us)
}

/// `vals![a, b]` builds a parameter slice.
#[macro_export]
macro_rules! vals {
    ($($v:expr),* $(,)?) => { &[$($crate::Value::from($v)),*] };
}

/// Rows per multi-row `INSERT` (at 16 columns, 1,600 parameters: within
/// both backends' limits, and few distinct statements for PostgreSQL's
/// per-connection statement cache).
const ROWS_PER_INSERT: usize = 100;

/// Inserts `rows` with multi-row `INSERT`s: `head` is `INSERT INTO t (a, b)`,
/// every row holds one value per column. A database error (a unique
/// violation, say) is the caller's to map.
pub(crate) fn insert_rows(
    w: &mut dyn Writer,
    head: &str,
    rows: &[Vec<Value>],
) -> std::result::Result<(), backend::DbError> {
    insert_rows_then(w, head, rows, "")
}

/// As [`insert_rows`], each statement ending with `tail` (`ON CONFLICT DO
/// NOTHING`, say).
pub(crate) fn insert_rows_then(
    w: &mut dyn Writer,
    head: &str,
    rows: &[Vec<Value>],
    tail: &str,
) -> std::result::Result<(), backend::DbError> {
    for chunk in rows.chunks(ROWS_PER_INSERT) {
        let mut sql = String::with_capacity(head.len() + 8 + chunk.len() * 40);
        sql.push_str(head);
        sql.push_str(" VALUES ");
        let mut params = Vec::with_capacity(chunk.iter().map(Vec::len).sum());
        for (i, row) in chunk.iter().enumerate() {
            if i > 0 {
                sql.push_str(", ");
            }
            sql.push('(');
            for j in 0..row.len() {
                sql.push_str(if j == 0 { "?" } else { ", ?" });
            }
            sql.push(')');
            params.extend(row.iter().cloned());
        }
        sql.push_str(tail);
        w.execute(&sql, &params)?;
    }
    Ok(())
}

/// `(?, ?, ..)` with `n` placeholders, for `IN` lists.
pub(crate) fn placeholders(n: usize) -> String {
    let mut s = String::with_capacity(2 + n * 3);
    s.push('(');
    for i in 0..n {
        s.push_str(if i == 0 { "?" } else { ", ?" });
    }
    s.push(')');
    s
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
