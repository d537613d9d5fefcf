//! Pieces every neocloud crate shares: the one error type, identifiers and
//! names, and time helpers. Nothing here performs I/O.

pub mod encoding;
mod error;
// The one module here that does I/O: the HTTP server of test doubles.
pub mod http_double;
mod ids;
pub mod time;

pub use error::{Error, ErrorCode, FieldError};
pub use ids::{new_id, Name, NameOrId};

pub type Result<T, E = Error> = std::result::Result<T, E>;
