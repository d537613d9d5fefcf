//! The SQL interface both backends implement.

use neocloud_common::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendKind {
    Sqlite,
    Postgres,
}

impl BackendKind {
    /// Row-lock suffix for `SELECT`s that must hold the rows until commit.
    /// SQLite serializes writers, so it needs none.
    pub fn for_update(self) -> &'static str {
        match self {
            BackendKind::Sqlite => "",
            BackendKind::Postgres => " FOR UPDATE",
        }
    }
}

/// A parameter or column value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Int(i64),
    Text(String),
}

impl From<i64> for Value {
    fn from(v: i64) -> Value {
        Value::Int(v)
    }
}
impl From<bool> for Value {
    fn from(v: bool) -> Value {
        Value::Int(v as i64)
    }
}
impl From<&str> for Value {
    fn from(v: &str) -> Value {
        Value::Text(v.to_string())
    }
}
impl From<&String> for Value {
    fn from(v: &String) -> Value {
        Value::Text(v.clone())
    }
}
impl From<String> for Value {
    fn from(v: String) -> Value {
        Value::Text(v)
    }
}
impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Value {
        v.map(Into::into).unwrap_or(Value::Null)
    }
}
impl From<&Option<String>> for Value {
    fn from(v: &Option<String>) -> Value {
        v.as_ref().map(|s| Value::Text(s.clone())).unwrap_or(Value::Null)
    }
}

/// One result row.
#[derive(Debug, Clone)]
pub struct Row(pub(crate) Vec<Value>);

impl Row {
    fn get(&self, i: usize) -> Result<&Value> {
        self.0.get(i).ok_or_else(|| Error::internal(format!("row has no column {i}")))
    }

    pub fn i64(&self, i: usize) -> Result<i64> {
        match self.get(i)? {
            Value::Int(v) => Ok(*v),
            v => Err(Error::internal(format!("column {i}: expected integer, got {v:?}"))),
        }
    }

    pub fn opt_i64(&self, i: usize) -> Result<Option<i64>> {
        match self.get(i)? {
            Value::Null => Ok(None),
            Value::Int(v) => Ok(Some(*v)),
            v => Err(Error::internal(format!("column {i}: expected integer, got {v:?}"))),
        }
    }

    pub fn bool(&self, i: usize) -> Result<bool> {
        Ok(self.i64(i)? != 0)
    }

    pub fn str(&self, i: usize) -> Result<String> {
        match self.get(i)? {
            Value::Text(v) => Ok(v.clone()),
            v => Err(Error::internal(format!("column {i}: expected text, got {v:?}"))),
        }
    }

    pub fn opt_str(&self, i: usize) -> Result<Option<String>> {
        match self.get(i)? {
            Value::Null => Ok(None),
            Value::Text(v) => Ok(Some(v.clone())),
            v => Err(Error::internal(format!("column {i}: expected text, got {v:?}"))),
        }
    }
}

/// A database error from a write.
#[derive(Debug, Clone)]
pub enum DbError {
    /// A unique or primary-key constraint rejected the row.
    Unique(String),
    /// A foreign-key constraint rejected the row: what it names is gone
    /// (deleted by a transaction that committed first).
    ForeignKey(String),
    Other(String),
}

impl DbError {
    /// Turns a unique violation into `e`; anything else stays internal.
    pub fn unique_as(self, e: Error) -> Error {
        match self {
            DbError::Unique(_) => e,
            DbError::ForeignKey(m) | DbError::Other(m) => Error::internal(m),
        }
    }

    /// Turns a unique or a foreign-key violation into `e` (a row taken, or
    /// what it names gone, since the caller read it); anything else stays
    /// internal.
    pub fn stale_as(self, e: Error) -> Error {
        match self {
            DbError::Unique(_) | DbError::ForeignKey(_) => e,
            DbError::Other(m) => Error::internal(m),
        }
    }
}

impl From<DbError> for Error {
    fn from(e: DbError) -> Error {
        match e {
            DbError::Unique(m) | DbError::ForeignKey(m) | DbError::Other(m) => Error::internal(m),
        }
    }
}

/// A read-only transaction.
pub trait Reader {
    fn kind(&self) -> BackendKind;
    fn query(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Row>>;
}

/// A read-write transaction.
pub trait Writer: Reader {
    fn execute(&mut self, sql: &str, params: &[Value]) -> Result<u64, DbError>;
    /// Several statements without parameters (migrations).
    fn execute_batch(&mut self, sql: &str) -> Result<(), DbError>;
}

/// How one attempt of a write transaction failed.
#[derive(Debug)]
pub(crate) enum TxError {
    /// Final: the closure's own error, or a fault, or an unavailable
    /// dependency that running the transaction again would not cure.
    Fatal(Error),
    /// The server's concurrency, not a fault: the database chose this
    /// transaction as a deadlock victim, could not serialize it, or was
    /// busy. Nothing was committed (the transaction was rolled back), so
    /// the whole transaction may run again.
    Rerun {
        /// The SQLSTATE (PostgreSQL) or result code name (SQLite).
        code: String,
        /// What the database said, for logs.
        detail: String,
    },
}

impl TxError {
    /// The error to answer when the transaction is not run again: a
    /// transient failure is `unavailable` (retryable), never internal.
    pub(crate) fn into_error(self) -> Error {
        match self {
            TxError::Fatal(e) => e,
            TxError::Rerun { detail, .. } => Error::Unavailable { internal: detail },
        }
    }
}

/// How often, and for how long, a backend runs a write transaction again
/// after [`TxError::Rerun`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct RerunPolicy {
    /// Attempts in all, the first included.
    pub(crate) attempts: u32,
    /// No new attempt starts once this long has passed since the first.
    pub(crate) budget: Option<std::time::Duration>,
}
