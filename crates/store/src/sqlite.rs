//! The embedded SQLite backend: one writer connection (writers are
//! serialized, `BEGIN IMMEDIATE`), a bounded pool of reader connections, WAL.
//!
//! **Group commit.** Writers queued behind one another share a
//! transaction: each runs its closure in a savepoint of the transaction
//! open on the writer connection (a closure's error rolls back its
//! savepoint only), and the writer that finds no one queued behind it (or
//! the group at [`MAX_GROUP`] members or [`MAX_GROUP_AGE`] old) commits for
//! all. Every member returns only once the group's commit is decided, with
//! its outcome: committed, or failed as a whole (each member's
//! [`crate::Store::write`] then runs its closure again, as after any busy
//! database). Under a burst of small writes (a fleet's lifecycle steps and
//! agent reports) this writes each hot page to the WAL once per group
//! instead of once per write, and resets the readers' page caches once per
//! group.
//!
//! Another process may hold the database (a second server on the same file,
//! a backup): SQLite's busy handler waits for it up to [`BUSY_TIMEOUT`]. A
//! database still busy or locked after that is `unavailable`, not a fault:
//! a write transaction that met it is rolled back and, while the busy
//! timeout since its first attempt has not passed, run again.

use crate::backend::{BackendKind, DbError, Reader, RerunPolicy, Row, TxError, Value, Writer};
use crate::Backend;
use neocloud_common::{Error, Result};
use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{Connection, ErrorCode, OpenFlags};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

/// Reader connections open at most (readers beyond it wait for one to
/// come back). Opening a connection per burst of reads costs more than the
/// reads: a thousand nodes reporting at once must not open a thousand.
const MAX_READERS: usize = 16;

/// How long a read waits for a pooled connection before opening one
/// beyond the cap (a read nested in a read must never wait forever).
const READER_WAIT: Duration = Duration::from_secs(1);

/// How long SQLite's busy handler waits for a lock another connection holds.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Attempts of a write transaction in all (within [`BUSY_TIMEOUT`]).
const WRITE_ATTEMPTS: u32 = 3;

/// Most writes committed together.
const MAX_GROUP: usize = 64;

/// A group is committed once open this long, queued writers or not (they
/// start the next): members that are done wait no longer than this for it.
const MAX_GROUP_AGE: Duration = Duration::from_millis(10);

#[derive(Default)]
struct ReaderPool {
    idle: Vec<Connection>,
    /// Pooled connections open (idle or in use).
    open: usize,
}

/// The writer connection and the group transaction open on it.
struct WriterState {
    conn: Connection,
    open: Option<Group>,
    next_group: u64,
}

struct Group {
    id: u64,
    /// Writes done in it, waiting for its commit.
    members: usize,
    began: Instant,
}

/// How a group ended, for the members waiting on it. A group that could
/// not commit was rolled back whole: its members' own writes did not fail,
/// so each runs again (as after a busy database).
#[derive(Clone)]
enum GroupEnd {
    Committed,
    RolledBack { code: String, detail: String },
}

impl GroupEnd {
    fn result(self) -> Result<(), TxError> {
        match self {
            GroupEnd::Committed => Ok(()),
            GroupEnd::RolledBack { code, detail } => Err(TxError::Rerun { code, detail }),
        }
    }

    fn of(e: &TxError) -> GroupEnd {
        match e {
            TxError::Rerun { code, detail } => {
                GroupEnd::RolledBack { code: code.clone(), detail: detail.clone() }
            }
            TxError::Fatal(e) => GroupEnd::RolledBack {
                code: "GROUP_ROLLED_BACK".into(),
                detail: format!("sqlite: the group transaction was rolled back: {e}"),
            },
        }
    }
}

pub(crate) struct Sqlite {
    path: PathBuf,
    writer: Mutex<WriterState>,
    /// Writers waiting for the writer connection: a member leaves its group
    /// open only while one is, so that one of them ends it.
    queued: AtomicUsize,
    /// Ended groups' outcomes, with how many members have yet to take them.
    ended: Mutex<HashMap<u64, (GroupEnd, usize)>>,
    group_ended: Condvar,
    /// Groups rolled back whole ([`Backend::undone_groups`]).
    undone: AtomicU64,
    readers: Mutex<ReaderPool>,
    returned: Condvar,
}

fn internal(e: rusqlite::Error) -> Error {
    match busy(&e) {
        Some(TxError::Rerun { detail, .. }) => Error::Unavailable { internal: detail },
        _ => Error::internal(format!("sqlite: {e}")),
    }
}

/// `SQLITE_BUSY` or `SQLITE_LOCKED` (with any extended code): another
/// connection holds the database, past the busy handler's wait.
fn busy(e: &rusqlite::Error) -> Option<TxError> {
    let rusqlite::Error::SqliteFailure(f, _) = e else { return None };
    let code = match f.code {
        ErrorCode::DatabaseBusy => "SQLITE_BUSY",
        ErrorCode::DatabaseLocked => "SQLITE_LOCKED",
        _ => return None,
    };
    Some(TxError::Rerun {
        code: code.to_string(),
        detail: format!("sqlite: {code} (extended code {}): {e}", f.extended_code),
    })
}

/// A failed `BEGIN`, `COMMIT` or `ROLLBACK`.
fn tx_error(e: rusqlite::Error) -> TxError {
    busy(&e).unwrap_or_else(|| TxError::Fatal(internal(e)))
}

fn db_error(e: rusqlite::Error) -> DbError {
    match &e {
        rusqlite::Error::SqliteFailure(f, _) if f.code == ErrorCode::ConstraintViolation => {
            let msg = e.to_string();
            if msg.contains("UNIQUE") || msg.contains("PRIMARY KEY") {
                DbError::Unique(msg)
            } else if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_FOREIGNKEY {
                DbError::ForeignKey(format!("sqlite: {msg}"))
            } else {
                DbError::Other(format!("sqlite: {msg}"))
            }
        }
        _ => DbError::Other(format!("sqlite: {e}")),
    }
}

impl Sqlite {
    pub(crate) fn open(path: &Path) -> Result<Sqlite> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| Error::internal(format!("creating {}: {e}", dir.display())))?;
        }
        let writer = Self::connect(path, false)?;
        writer.pragma_update(None, "journal_mode", "WAL").map_err(internal)?;
        Ok(Sqlite {
            path: path.to_path_buf(),
            writer: Mutex::new(WriterState { conn: writer, open: None, next_group: 0 }),
            queued: AtomicUsize::new(0),
            ended: Mutex::default(),
            group_ended: Condvar::new(),
            undone: AtomicU64::new(0),
            readers: Mutex::new(ReaderPool::default()),
            returned: Condvar::new(),
        })
    }

    /// A reader connection: an idle pooled one, a new pooled one while
    /// fewer than [`MAX_READERS`] are open, else the next one returned; an
    /// unpooled one after [`READER_WAIT`].
    fn reader(&self) -> Result<Lease<'_>> {
        let lease = |conn, pooled| Lease { db: self, conn: Some(conn), pooled };
        let poisoned = || Error::internal("reader pool poisoned");
        let mut pool = self.readers.lock().map_err(|_| poisoned())?;
        let deadline = std::time::Instant::now() + READER_WAIT;
        loop {
            if let Some(c) = pool.idle.pop() {
                return Ok(lease(c, true));
            }
            if pool.open < MAX_READERS {
                pool.open += 1;
                drop(pool);
                return match Self::connect(&self.path, true) {
                    Ok(c) => Ok(lease(c, true)),
                    Err(e) => {
                        self.readers.lock().map_err(|_| poisoned())?.open -= 1;
                        Err(e)
                    }
                };
            }
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                drop(pool);
                return Ok(lease(Self::connect(&self.path, true)?, false));
            }
            pool = self.returned.wait_timeout(pool, left).map_err(|_| poisoned())?.0;
        }
    }

    /// Runs one write in a savepoint of the open group. `Ok(Err(e))`: the
    /// closure failed, its savepoint is rolled back and the group goes on;
    /// `Err`: the group's transaction is lost (a busy database, or the
    /// savepoint could not be undone).
    fn member(
        &self,
        conn: &Connection,
        f: &mut dyn FnMut(&mut dyn Writer) -> Result<()>,
    ) -> Result<Result<()>, TxError> {
        conn.execute_batch("SAVEPOINT member").map_err(tx_error)?;
        let (res, busy) = {
            let mut w = SqliteTx { conn, busy: None };
            let res = f(&mut w);
            (res, w.busy)
        };
        match (res, busy) {
            // A statement found the database busy: whatever the closure
            // made of it, the group ends here (SQLite may have rolled the
            // transaction back already).
            (_, Some(busy)) => Err(busy),
            (Err(e), None) => {
                conn.execute_batch("ROLLBACK TO member; RELEASE member").map_err(tx_error)?;
                Ok(Err(e))
            }
            (Ok(()), None) => {
                conn.execute_batch("RELEASE member").map_err(tx_error)?;
                Ok(Ok(()))
            }
        }
    }

    /// Ends the open group (rolled back unless `end` is a commit already
    /// made) and hands its outcome to its members.
    fn end_group(&self, st: &mut WriterState, end: GroupEnd) {
        let Some(g) = st.open.take() else { return };
        match end {
            GroupEnd::Committed => {}
            GroupEnd::RolledBack { .. } => {
                if !st.conn.is_autocommit() {
                    let _ = st.conn.execute_batch("ROLLBACK");
                }
                // Counted before any member hears of it or the next group
                // begins (the writer is still held).
                self.undone.fetch_add(1, Ordering::SeqCst);
            }
        }
        if g.members > 0 {
            let mut ended = self.ended.lock().unwrap_or_else(|p| p.into_inner());
            ended.insert(g.id, (end, g.members));
            self.group_ended.notify_all();
        }
    }

    /// A member's share of its group's outcome, once the group ended.
    fn wait_for(&self, group: u64) -> Result<(), TxError> {
        let mut ended = self.ended.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if let Some((end, left)) = ended.get_mut(&group) {
                let end = end.clone();
                *left -= 1;
                if *left == 0 {
                    ended.remove(&group);
                }
                return end.result();
            }
            ended = self.group_ended.wait(ended).unwrap_or_else(|p| p.into_inner());
        }
    }

    fn connect(path: &Path, read_only: bool) -> Result<Connection> {
        let flags = if read_only {
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX
        } else {
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX
        };
        let c = Connection::open_with_flags(path, flags).map_err(|e| Error::Unavailable {
            internal: format!("opening {}: {e}", path.display()),
        })?;
        c.busy_timeout(BUSY_TIMEOUT).map_err(internal)?;
        c.pragma_update(None, "synchronous", "NORMAL").map_err(internal)?;
        c.pragma_update(None, "foreign_keys", "ON").map_err(internal)?;
        c.set_prepared_statement_cache_capacity(256);
        Ok(c)
    }
}

/// A reader connection in use; back to the pool when dropped (also when
/// the read panicked: its transaction was rolled back by then).
struct Lease<'a> {
    db: &'a Sqlite,
    conn: Option<Connection>,
    pooled: bool,
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        if !self.pooled {
            return;
        }
        let mut pool = self.db.readers.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = self.conn.take() {
            pool.idle.push(c);
        }
        self.db.returned.notify_one();
    }
}

impl Backend for Sqlite {
    fn kind(&self) -> BackendKind {
        BackendKind::Sqlite
    }

    fn read(&self, f: &mut dyn FnMut(&mut dyn Reader) -> Result<()>) -> Result<()> {
        let mut lease = self.reader()?;
        let conn = lease.conn.as_mut().expect("a leased connection");
        let tx = conn.transaction().map_err(internal)?;
        let mut r = SqliteTx { conn: &tx, busy: None };
        // Read-only: ending the transaction either way is the same.
        let res = f(&mut r);
        match r.busy {
            Some(busy) => Err(busy.into_error()),
            None => res,
        }
    }

    fn write(&self, f: &mut dyn FnMut(&mut dyn Writer) -> Result<()>) -> Result<(), TxError> {
        self.queued.fetch_add(1, Ordering::SeqCst);
        let lock = self.writer.lock();
        self.queued.fetch_sub(1, Ordering::SeqCst);
        // Poisoned only by a panic outside a closure (those are caught and
        // end their group): the state is still consistent.
        let mut st = lock.unwrap_or_else(|p| p.into_inner());
        if st.open.is_none() {
            st.conn.execute_batch("BEGIN IMMEDIATE").map_err(tx_error)?;
            let id = st.next_group;
            st.next_group += 1;
            st.open = Some(Group { id, members: 0, began: Instant::now() });
        }
        let group = st.open.as_ref().map_or(0, |g| g.id);
        let turn =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.member(&st.conn, f)));
        let mine = match turn {
            Ok(Ok(mine)) => mine,
            // The group cannot be committed: its members run again.
            Ok(Err(e)) => {
                self.end_group(&mut st, GroupEnd::of(&e));
                return Err(e);
            }
            Err(panic) => {
                let end = GroupEnd::RolledBack {
                    code: "GROUP_ROLLED_BACK".into(),
                    detail: "sqlite: a write in the group panicked; the group was rolled back"
                        .into(),
                };
                self.end_group(&mut st, end);
                drop(st);
                std::panic::resume_unwind(panic);
            }
        };
        if mine.is_ok() {
            if let Some(g) = st.open.as_mut() {
                g.members += 1;
            }
        }
        let keep_open = st.open.as_ref().is_some_and(|g| {
            self.queued.load(Ordering::SeqCst) > 0
                && g.members < MAX_GROUP
                && g.began.elapsed() < MAX_GROUP_AGE
        });
        if keep_open {
            drop(st);
            return match mine {
                Ok(()) => self.wait_for(group),
                Err(e) => Err(TxError::Fatal(e)),
            };
        }
        // No one behind: this write ends the group, for all its members.
        let end = match st.conn.execute_batch("COMMIT") {
            Ok(()) => GroupEnd::Committed,
            Err(e) => {
                // A failed COMMIT leaves the transaction open.
                let _ = st.conn.execute_batch("ROLLBACK");
                GroupEnd::of(&tx_error(e))
            }
        };
        let mine_done = mine.is_ok();
        self.end_group(&mut st, end.clone());
        if mine_done {
            // Counted among the members in end_group: take our share.
            drop(st);
            return self.wait_for(group);
        }
        mine.map_err(TxError::Fatal)
    }

    fn rerun_policy(&self) -> RerunPolicy {
        RerunPolicy { attempts: WRITE_ATTEMPTS, budget: Some(BUSY_TIMEOUT) }
    }

    fn undone_groups(&self) -> u64 {
        self.undone.load(Ordering::SeqCst)
    }
}

struct SqliteTx<'a> {
    conn: &'a Connection,
    /// The first statement that found the database busy or locked.
    busy: Option<TxError>,
}

impl SqliteTx<'_> {
    /// Remembers a busy database for the transaction's end, and returns `e`.
    fn noted(&mut self, e: rusqlite::Error) -> rusqlite::Error {
        if self.busy.is_none() {
            self.busy = busy(&e);
        }
        e
    }
}

impl rusqlite::ToSql for Value {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match self {
            Value::Null => ToSqlOutput::Borrowed(ValueRef::Null),
            Value::Int(i) => ToSqlOutput::Borrowed(ValueRef::Integer(*i)),
            Value::Text(s) => ToSqlOutput::Borrowed(ValueRef::Text(s.as_bytes())),
        })
    }
}

impl Reader for SqliteTx<'_> {
    fn kind(&self) -> BackendKind {
        BackendKind::Sqlite
    }

    fn query(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Row>> {
        let res = query(self.conn, sql, params);
        res.map_err(|e| internal(self.noted(e)))
    }
}

fn query(conn: &Connection, sql: &str, params: &[Value]) -> rusqlite::Result<Vec<Row>> {
    let mut stmt = conn.prepare_cached(sql)?;
    let n = stmt.column_count();
    let mut rows = stmt.query(rusqlite::params_from_iter(params.iter()))?;
    let mut out = vec![];
    while let Some(r) = rows.next()? {
        let mut vals = Vec::with_capacity(n);
        for i in 0..n {
            vals.push(match r.get_ref(i)? {
                ValueRef::Null => Value::Null,
                ValueRef::Integer(v) => Value::Int(v),
                ValueRef::Real(v) => Value::Int(v as i64),
                ValueRef::Text(t) => Value::Text(String::from_utf8_lossy(t).into_owned()),
                ValueRef::Blob(b) => Value::Text(String::from_utf8_lossy(b).into_owned()),
            });
        }
        out.push(Row(vals));
    }
    Ok(out)
}

impl Writer for SqliteTx<'_> {
    fn execute(&mut self, sql: &str, params: &[Value]) -> Result<u64, DbError> {
        let res = self
            .conn
            .prepare_cached(sql)
            .and_then(|mut stmt| stmt.execute(rusqlite::params_from_iter(params.iter())));
        res.map(|n| n as u64).map_err(|e| db_error(self.noted(e)))
    }

    fn execute_batch(&mut self, sql: &str) -> Result<(), DbError> {
        let res = self.conn.execute_batch(sql);
        res.map_err(|e| db_error(self.noted(e)))
    }
}
