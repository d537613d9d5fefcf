//! The PostgreSQL backend: a bounded pool of connections, prepared
//! statements cached per connection, `?` placeholders rewritten to `$n`.
//! Write transactions run at READ COMMITTED; code that must serialize takes
//! row locks (`BackendKind::for_update`) or uses conditional updates. Read
//! transactions run at REPEATABLE READ: one snapshot, like SQLite's.
//!
//! A transaction remembers the first statement that failed for the server's
//! concurrency or availability rather than for what it asked (see
//! [`classify`]): once a statement fails, PostgreSQL aborts the whole
//! transaction, whatever the closure made of the error. A deadlock victim or
//! a serialization failure ends the attempt as [`TxError::Rerun`] (the store
//! runs it again); a lock wait that timed out, a cancelled statement, a
//! server shutting down or a lost connection as `unavailable`.

use crate::backend::{BackendKind, DbError, Reader, RerunPolicy, Row, TxError, Value, Writer};
use crate::Backend;
use bytes::BytesMut;
use neocloud_common::{Error, Result};
use postgres::error::SqlState;
use postgres::types::{IsNull, ToSql, Type};
use postgres::{Client, NoTls, Statement};
use std::collections::HashMap;
use std::sync::{Condvar, Mutex};
use std::time::Duration;

const MAX_CONNECTIONS: usize = 16;

/// How long a transaction waits for a connection before the store answers
/// unavailable (a read nested in a transaction while every connection is
/// taken must fail, not hang).
const POOL_WAIT: Duration = Duration::from_secs(10);

struct Conn {
    client: Client,
    stmts: HashMap<String, Statement>,
}

pub(crate) struct Pg {
    url: String,
    idle: Mutex<(Vec<Conn>, usize)>,
    freed: Condvar,
}

/// Attempts of a write transaction in all (the first included).
const WRITE_ATTEMPTS: u32 = 3;

fn unavailable(e: postgres::Error) -> Error {
    Error::Unavailable { internal: describe(&e) }
}

/// `postgres: SQLSTATE <code>: <message>` where the server answered, else
/// what the client saw.
fn describe(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(d) => format!("postgres: SQLSTATE {}: {}", d.code().code(), d.message()),
        None => format!("postgres: {}", error_chain(e)),
    }
}

fn error_chain(e: &postgres::Error) -> String {
    match std::error::Error::source(e) {
        Some(s) => format!("{e}: {s}"),
        None => e.to_string(),
    }
}

fn db_error(e: postgres::Error) -> DbError {
    match e.code() {
        // The constraint's name says which column (`<table>_<column>_key`),
        // as SQLite's message does.
        Some(c) if *c == SqlState::UNIQUE_VIOLATION => DbError::Unique(error_chain(&e)),
        Some(c) if *c == SqlState::FOREIGN_KEY_VIOLATION => DbError::ForeignKey(describe(&e)),
        _ => DbError::Other(describe(&e)),
    }
}

fn internal(e: postgres::Error) -> Error {
    match db_error(e) {
        DbError::Unique(m) | DbError::ForeignKey(m) | DbError::Other(m) => Error::internal(m),
    }
}

/// A failure of a statement that is not about what it asked.
#[derive(Debug, Clone)]
enum Failure {
    /// The transaction lost to a concurrent one (deadlock victim,
    /// serialization failure): running it again may succeed.
    Rerun { code: String, detail: String },
    /// The server or the connection cannot serve it now.
    Unavailable(String),
}

impl Failure {
    fn into_tx_error(self) -> TxError {
        match self {
            Failure::Rerun { code, detail } => TxError::Rerun { code, detail },
            Failure::Unavailable(m) => TxError::Fatal(Error::Unavailable { internal: m }),
        }
    }
}

/// Sorts a statement's error: `None` for a fault or an answer to what the
/// statement asked (a constraint, a syntax error), which the caller handles.
fn classify(e: &postgres::Error) -> Option<Failure> {
    let Some(code) = e.code() else {
        // No SQLSTATE: the client's own error (a parameter that does not
        // convert, say) unless the connection is gone.
        let io = std::error::Error::source(e).is_some_and(|s| s.is::<std::io::Error>());
        return (e.is_closed() || io).then(|| {
            Failure::Unavailable(format!("postgres: connection lost: {}", error_chain(e)))
        });
    };
    let c = code.code();
    if *code == SqlState::T_R_DEADLOCK_DETECTED || *code == SqlState::T_R_SERIALIZATION_FAILURE {
        return Some(Failure::Rerun { code: c.to_string(), detail: describe(e) });
    }
    // 55P03: a lock wait ran past lock_timeout (none is set by the store;
    // an operator may set one on the role or database); 57014: a statement
    // ran past statement_timeout or was cancelled; 57P0x: the server is
    // shutting down or starting; 53xxx: out of connections, memory, disk;
    // 08xxx: the connection failed; 40003: a statement's completion is
    // unknown. None is the request's fault, and waiting (55P03) or
    // reconnecting would only repeat inside this request what a client's
    // retry does better.
    let unavailable = *code == SqlState::LOCK_NOT_AVAILABLE
        || *code == SqlState::QUERY_CANCELED
        || *code == SqlState::T_R_STATEMENT_COMPLETION_UNKNOWN
        || c.starts_with("57P")
        || c.starts_with("53")
        || c.starts_with("08");
    unavailable.then(|| Failure::Unavailable(describe(e)))
}

/// Rewrites `?` placeholders to `$1..$n`, leaving quoted text alone.
pub(crate) fn rewrite_placeholders(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 8);
    let mut n = 0;
    let mut in_quote = false;
    for c in sql.chars() {
        match c {
            '\'' => {
                in_quote = !in_quote;
                out.push(c);
            }
            '?' if !in_quote => {
                n += 1;
                out.push('$');
                out.push_str(&n.to_string());
            }
            _ => out.push(c),
        }
    }
    out
}

/// The blocking `postgres` client runs a private runtime and closing a
/// connection blocks on it, which panics when the last `Store` handle is
/// dropped on an async thread (e.g. as a server shuts down). Connections are
/// therefore closed on a thread of their own.
impl Drop for Pg {
    fn drop(&mut self) {
        let conns = {
            let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
            std::mem::take(&mut idle.0)
        };
        if !conns.is_empty() {
            let _ = std::thread::spawn(move || drop(conns)).join();
        }
    }
}

impl Pg {
    pub(crate) fn open(url: &str) -> Result<Pg> {
        let pg = Pg { url: url.to_string(), idle: Mutex::new((vec![], 0)), freed: Condvar::new() };
        // Connect once now so a bad URL fails at start, not at first request.
        let c = pg.connect()?;
        pg.put(c, false);
        Ok(pg)
    }

    fn connect(&self) -> Result<Conn> {
        let mut cfg: postgres::Config = self
            .url
            .parse()
            .map_err(|e| Error::invalid_request("db", format!("bad PostgreSQL URL: {e}")))?;
        cfg.connect_timeout(Duration::from_secs(10));
        let client = cfg.connect(NoTls).map_err(unavailable)?;
        Ok(Conn { client, stmts: HashMap::new() })
    }

    /// A connection, and whether it was idle in the pool (it may have been
    /// closed by the server since) rather than opened now.
    fn take(&self) -> Result<(Conn, bool)> {
        let mut g = self.idle.lock().map_err(|_| Error::internal("pool poisoned"))?;
        let deadline = std::time::Instant::now() + POOL_WAIT;
        loop {
            if let Some(c) = g.0.pop() {
                return Ok((c, true));
            }
            if g.1 < MAX_CONNECTIONS {
                g.1 += 1;
                drop(g);
                return self.connect().map(|c| (c, false)).inspect_err(|_| {
                    if let Ok(mut g) = self.idle.lock() {
                        g.1 -= 1;
                    }
                    self.freed.notify_one();
                });
            }
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return Err(Error::Unavailable {
                    internal: format!(
                        "no PostgreSQL connection free within {}s ({MAX_CONNECTIONS} in use)",
                        POOL_WAIT.as_secs()
                    ),
                });
            }
            g = self.freed.wait_timeout(g, left).map_err(|_| Error::internal("pool poisoned"))?.0;
        }
    }

    fn put(&self, c: Conn, counted: bool) {
        if let Ok(mut g) = self.idle.lock() {
            if !counted {
                g.1 += 1;
            }
            if c.client.is_closed() {
                g.1 -= 1;
            } else {
                g.0.push(c);
            }
        }
        self.freed.notify_one();
    }

    /// Drops a connection that failed, counted in the pool.
    fn discard(&self, c: Conn) {
        if let Ok(mut g) = self.idle.lock() {
            g.1 -= 1;
        }
        self.freed.notify_one();
        drop(c);
    }

    /// Runs `f` in one transaction. A connection that was idle in the pool
    /// and fails to begin one was closed meanwhile (a server restart, an
    /// idle timeout): it is dropped and the next one tried, as nothing ran.
    fn run(
        &self,
        read_only: bool,
        f: &mut dyn FnMut(&mut PgTx<'_>) -> Result<()>,
    ) -> Result<(), TxError> {
        let mut stale = 0;
        loop {
            let (mut conn, reused) = self.take().map_err(TxError::Fatal)?;
            match Self::attempt(&mut conn, read_only, f) {
                Attempt::Ended(res) => {
                    self.put(conn, true);
                    return res;
                }
                Attempt::BeginFailed(e) => {
                    let gone = e.code().is_none() || classify(&e).is_some();
                    if !gone {
                        self.put(conn, true);
                        return Err(TxError::Fatal(internal(e)));
                    }
                    self.discard(conn);
                    if !reused || stale >= MAX_CONNECTIONS {
                        return Err(TxError::Fatal(unavailable(e)));
                    }
                    stale += 1;
                    tracing::debug!(error = %describe(&e), "dropped a closed PostgreSQL connection");
                }
            }
        }
    }

    fn attempt(
        conn: &mut Conn,
        read_only: bool,
        f: &mut dyn FnMut(&mut PgTx<'_>) -> Result<()>,
    ) -> Attempt {
        let Conn { client, stmts } = conn;
        // Reads see one snapshot (REPEATABLE READ; a read-only one never
        // fails to serialize), as on SQLite: a multi-query read such as
        // audit::verify must not see commits made between its queries.
        let isolation = if read_only {
            postgres::IsolationLevel::RepeatableRead
        } else {
            postgres::IsolationLevel::ReadCommitted
        };
        let tx = match client
            .build_transaction()
            .isolation_level(isolation)
            .read_only(read_only)
            .start()
        {
            Ok(tx) => tx,
            Err(e) => return Attempt::BeginFailed(e),
        };
        let res = {
            let mut t = PgTx { tx, stmts, failure: None };
            let res = f(&mut t);
            let PgTx { tx, failure, .. } = t;
            // A failed rollback leaves the connection closed; put() drops it.
            match (res, failure) {
                // Once a statement failed the transaction is aborted, whatever
                // the closure made of the error: the failure decides.
                (_, Some(failure)) => {
                    let _ = tx.rollback();
                    Err(failure.into_tx_error())
                }
                (Err(e), None) => {
                    let _ = tx.rollback();
                    Err(TxError::Fatal(e))
                }
                // A commit that fails for a deadlock or a serialization failure
                // was rolled back by the server; one whose connection was lost
                // may or may not have committed: unavailable, never run again.
                (Ok(()), None) => tx.commit().map_err(|e| match classify(&e) {
                    Some(Failure::Unavailable(m)) => TxError::Fatal(Error::Unavailable {
                        internal: format!("{m} (at commit: the transaction may have committed)"),
                    }),
                    Some(other) => other.into_tx_error(),
                    None => TxError::Fatal(internal(e)),
                }),
            }
        };
        // A connection that closed under the transaction is the server's
        // unavailability, whatever error the closure reported for it.
        let res = match res {
            Err(TxError::Fatal(Error::Internal { internal })) if client.is_closed() => {
                Err(TxError::Fatal(Error::Unavailable {
                    internal: format!("postgres: connection lost: {internal}"),
                }))
            }
            res => res,
        };
        Attempt::Ended(res)
    }
}

enum Attempt {
    /// The transaction could not begin; nothing ran.
    BeginFailed(postgres::Error),
    Ended(Result<(), TxError>),
}

impl Backend for Pg {
    fn kind(&self) -> BackendKind {
        BackendKind::Postgres
    }

    /// Reads are not run again (their closures run once); a transient
    /// failure is answered `unavailable`.
    fn read(&self, f: &mut dyn FnMut(&mut dyn Reader) -> Result<()>) -> Result<()> {
        self.run(true, &mut |t| f(t)).map_err(TxError::into_error)
    }

    fn write(&self, f: &mut dyn FnMut(&mut dyn Writer) -> Result<()>) -> Result<(), TxError> {
        self.run(false, &mut |t| f(t))
    }

    fn rerun_policy(&self) -> RerunPolicy {
        RerunPolicy { attempts: WRITE_ATTEMPTS, budget: None }
    }
}

struct PgTx<'a> {
    tx: postgres::Transaction<'a>,
    stmts: &'a mut HashMap<String, Statement>,
    /// The first statement failure that was not about what it asked.
    failure: Option<Failure>,
}

impl PgTx<'_> {
    fn prepare(&mut self, sql: &str) -> Result<Statement, postgres::Error> {
        if let Some(s) = self.stmts.get(sql) {
            return Ok(s.clone());
        }
        let s = self.tx.prepare(&rewrite_placeholders(sql)).map_err(|e| self.noted(e))?;
        self.stmts.insert(sql.to_string(), s.clone());
        Ok(s)
    }

    /// Remembers a failure for the transaction's end, and returns `e`.
    fn noted(&mut self, e: postgres::Error) -> postgres::Error {
        if self.failure.is_none() {
            self.failure = classify(&e);
        }
        e
    }

    /// The error a query answers: `unavailable` for what is the server's,
    /// not the statement's (the transaction's end decides anyway).
    fn query_error(e: postgres::Error) -> Error {
        match classify(&e) {
            Some(Failure::Rerun { detail, .. }) | Some(Failure::Unavailable(detail)) => {
                Error::Unavailable { internal: detail }
            }
            None => internal(e),
        }
    }
}

impl ToSql for Value {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut BytesMut,
    ) -> std::result::Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match self {
            Value::Null => Ok(IsNull::Yes),
            Value::Int(i) => match *ty {
                Type::INT8 => i.to_sql(ty, out),
                Type::INT4 => i32::try_from(*i)?.to_sql(ty, out),
                Type::INT2 => i16::try_from(*i)?.to_sql(ty, out),
                Type::BOOL => (*i != 0).to_sql(ty, out),
                _ => Err(format!("cannot bind an integer to {ty}").into()),
            },
            Value::Text(s) => s.to_sql(ty, out),
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    postgres::types::to_sql_checked!();
}

fn params(p: &[Value]) -> Vec<&(dyn ToSql + Sync)> {
    p.iter().map(|v| v as &(dyn ToSql + Sync)).collect()
}

impl Reader for PgTx<'_> {
    fn kind(&self) -> BackendKind {
        BackendKind::Postgres
    }

    fn query(&mut self, sql: &str, p: &[Value]) -> Result<Vec<Row>> {
        let stmt = self.prepare(sql).map_err(Self::query_error)?;
        let rows = match self.tx.query(&stmt, &params(p)) {
            Ok(rows) => rows,
            Err(e) => return Err(Self::query_error(self.noted(e))),
        };
        rows.iter()
            .map(|r| {
                (0..r.len())
                    .map(|i| {
                        let ty = r.columns()[i].type_().clone();
                        let v = match ty {
                            Type::INT8 => r.get::<_, Option<i64>>(i).map(Value::Int),
                            Type::INT4 => r.get::<_, Option<i32>>(i).map(|v| Value::Int(v as i64)),
                            Type::INT2 => r.get::<_, Option<i16>>(i).map(|v| Value::Int(v as i64)),
                            Type::BOOL => r.get::<_, Option<bool>>(i).map(|v| Value::Int(v as i64)),
                            Type::TEXT | Type::VARCHAR | Type::NAME | Type::BPCHAR => {
                                r.get::<_, Option<String>>(i).map(Value::Text)
                            }
                            other => {
                                return Err(Error::internal(format!(
                                    "unsupported column type {other}"
                                )))
                            }
                        };
                        Ok(v.unwrap_or(Value::Null))
                    })
                    .collect::<Result<Vec<_>>>()
                    .map(Row)
            })
            .collect()
    }
}

impl Writer for PgTx<'_> {
    fn execute(&mut self, sql: &str, p: &[Value]) -> Result<u64, DbError> {
        let stmt = self.prepare(sql).map_err(db_error)?;
        self.tx.execute(&stmt, &params(p)).map_err(|e| db_error(self.noted(e)))
    }

    fn execute_batch(&mut self, sql: &str) -> Result<(), DbError> {
        self.tx.batch_execute(sql).map_err(|e| db_error(self.noted(e)))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn placeholders() {
        assert_eq!(
            super::rewrite_placeholders("SELECT a FROM t WHERE b = ? AND c = '?' AND d = ?"),
            "SELECT a FROM t WHERE b = $1 AND c = '?' AND d = $2"
        );
    }
}
