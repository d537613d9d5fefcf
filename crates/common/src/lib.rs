//! Pieces every neocloud crate shares: the one error type, identifiers and
//! names, time helpers, and the TLS options of the device drivers' HTTPS
//! clients. Nothing here performs I/O but the test doubles' server.

pub mod encoding;
mod error;
// The one module here that does I/O: the HTTP server of test doubles.
pub mod http_double;
mod ids;
pub mod time;
pub mod tls;

pub use error::{Error, ErrorCode, FieldError};
pub use ids::{new_id, Name, NameOrId};

pub type Result<T, E = Error> = std::result::Result<T, E>;
