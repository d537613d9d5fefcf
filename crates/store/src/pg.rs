//! The PostgreSQL backend: a bounded pool of connections, prepared
//! statements cached per connection, `?` placeholders rewritten to `$n`.
//! Write transactions run at READ COMMITTED; code that must serialize takes
//! row locks (`BackendKind::for_update`) or uses conditional updates. Read
//! transactions run at REPEATABLE READ: one snapshot, like SQLite's.

use crate::backend::{BackendKind, DbError, Reader, Row, Value, Writer};
use crate::Backend;
use bytes::BytesMut;
use neocloud_common::{Error, Result};
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

fn unavailable(e: postgres::Error) -> Error {
    Error::Unavailable { internal: format!("postgres: {e}") }
}

fn db_error(e: postgres::Error) -> DbError {
    match e.code() {
        Some(c) if *c == postgres::error::SqlState::UNIQUE_VIOLATION => {
            DbError::Unique(e.to_string())
        }
        _ => DbError::Other(format!(
            "postgres: {}",
            e.as_db_error().map(|d| d.to_string()).unwrap_or_else(|| e.to_string())
        )),
    }
}

fn internal(e: postgres::Error) -> Error {
    match db_error(e) {
        DbError::Unique(m) | DbError::Other(m) => Error::internal(m),
    }
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
        pg.put(c, true);
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

    fn take(&self) -> Result<Conn> {
        let mut g = self.idle.lock().map_err(|_| Error::internal("pool poisoned"))?;
        let deadline = std::time::Instant::now() + POOL_WAIT;
        loop {
            if let Some(c) = g.0.pop() {
                return Ok(c);
            }
            if g.1 < MAX_CONNECTIONS {
                g.1 += 1;
                drop(g);
                return self.connect().inspect_err(|_| {
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

    fn run(&self, read_only: bool, f: &mut dyn FnMut(&mut PgTx<'_>) -> Result<()>) -> Result<()> {
        let mut conn = self.take()?;
        let res = (|| {
            let Conn { client, stmts } = &mut conn;
            // Reads see one snapshot (REPEATABLE READ; a read-only one never
            // fails to serialize), as on SQLite: a multi-query read such as
            // audit::verify must not see commits made between its queries.
            let isolation = if read_only {
                postgres::IsolationLevel::RepeatableRead
            } else {
                postgres::IsolationLevel::ReadCommitted
            };
            let tx = client
                .build_transaction()
                .isolation_level(isolation)
                .read_only(read_only)
                .start()
                .map_err(unavailable)?;
            let mut t = PgTx { tx, stmts };
            match f(&mut t) {
                Ok(()) => t.tx.commit().map_err(internal),
                Err(e) => {
                    // A failed rollback leaves the connection closed; put() drops it.
                    let _ = t.tx.rollback();
                    Err(e)
                }
            }
        })();
        self.put(conn, true);
        res
    }
}

impl Backend for Pg {
    fn kind(&self) -> BackendKind {
        BackendKind::Postgres
    }

    fn read(&self, f: &mut dyn FnMut(&mut dyn Reader) -> Result<()>) -> Result<()> {
        self.run(true, &mut |t| f(t))
    }

    fn write(&self, f: &mut dyn FnMut(&mut dyn Writer) -> Result<()>) -> Result<()> {
        self.run(false, &mut |t| f(t))
    }
}

struct PgTx<'a> {
    tx: postgres::Transaction<'a>,
    stmts: &'a mut HashMap<String, Statement>,
}

impl PgTx<'_> {
    fn prepare(&mut self, sql: &str) -> Result<Statement, postgres::Error> {
        if let Some(s) = self.stmts.get(sql) {
            return Ok(s.clone());
        }
        let s = self.tx.prepare(&rewrite_placeholders(sql))?;
        self.stmts.insert(sql.to_string(), s.clone());
        Ok(s)
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
        let stmt = self.prepare(sql).map_err(internal)?;
        let rows = self.tx.query(&stmt, &params(p)).map_err(internal)?;
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
        self.tx.execute(&stmt, &params(p)).map_err(db_error)
    }

    fn execute_batch(&mut self, sql: &str) -> Result<(), DbError> {
        self.tx.batch_execute(sql).map_err(db_error)
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
