//! The one error type of the fabric core.
//!
//! Every variant names where the problem is, so an API layer can map it to a
//! field error without parsing messages: `field` is a path into the inputs
//! (`networks[2].cidr`, `fabric.pools.l2_vni`, `allocations.networks[net-a]`).
//! Nothing in this crate panics on bad input; it answers one of these.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// An input value is not acceptable (format, range, reference, overlap).
    Invalid { field: String, reason: String },
    /// A pool has no free value left; `field` names the pool.
    Exhausted { field: String, reason: String },
    /// The planner needs an allocation the ledger lacks: run `allocate` first.
    Unallocated { field: String, reason: String },
    /// A renderer cannot express an object on this switch's OS. Refusing is
    /// deliberate: silently dropping a security policy would open traffic.
    Unsupported { switch: String, object: String, reason: String },
}

/// Shorthand used across the crate.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Error {
        Error::Invalid { field: field.into(), reason: reason.into() }
    }

    pub fn exhausted(field: impl Into<String>, reason: impl Into<String>) -> Error {
        Error::Exhausted { field: field.into(), reason: reason.into() }
    }

    pub fn unallocated(field: impl Into<String>, reason: impl Into<String>) -> Error {
        Error::Unallocated { field: field.into(), reason: reason.into() }
    }

    pub fn unsupported(
        switch: impl Into<String>,
        object: impl Into<String>,
        reason: impl Into<String>,
    ) -> Error {
        Error::Unsupported { switch: switch.into(), object: object.into(), reason: reason.into() }
    }

    /// The input path the error is about, where it is about one.
    pub fn field(&self) -> Option<&str> {
        match self {
            Error::Invalid { field, .. }
            | Error::Exhausted { field, .. }
            | Error::Unallocated { field, .. } => Some(field),
            Error::Unsupported { .. } => None,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Invalid { field, reason } => write!(f, "{field}: {reason}"),
            Error::Exhausted { field, reason } => write!(f, "{field}: exhausted: {reason}"),
            Error::Unallocated { field, reason } => write!(f, "{field}: not allocated: {reason}"),
            Error::Unsupported { switch, object, reason } => {
                write!(f, "switch {switch}: cannot render {object}: {reason}")
            }
        }
    }
}

impl std::error::Error for Error {}
