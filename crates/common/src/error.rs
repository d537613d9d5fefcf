//! The one transport-agnostic error type of the control plane.
//!
//! Every variant carries what a client may see; `Internal` and `Unavailable`
//! also carry an internal message that is logged but never sent. The mapping
//! to HTTP status codes lives in exactly one place: `neocloud-server`'s
//! `http_error` module.

use std::fmt;

/// Stable, machine-readable error codes. Clients (and the CLI's exit codes)
/// depend on these strings; never rename one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    InvalidRequest,
    InvalidValue,
    Unauthenticated,
    Forbidden,
    NotFound,
    MethodNotAllowed,
    AlreadyExists,
    Conflict,
    GenerationMismatch,
    QuotaExceeded,
    IdempotencyKeyReused,
    PayloadTooLarge,
    RateLimited,
    Unavailable,
    Internal,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::InvalidValue => "invalid_value",
            ErrorCode::Unauthenticated => "unauthenticated",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::NotFound => "not_found",
            ErrorCode::MethodNotAllowed => "method_not_allowed",
            ErrorCode::AlreadyExists => "already_exists",
            ErrorCode::Conflict => "conflict",
            ErrorCode::GenerationMismatch => "generation_mismatch",
            ErrorCode::QuotaExceeded => "quota_exceeded",
            ErrorCode::IdempotencyKeyReused => "idempotency_key_reused",
            ErrorCode::PayloadTooLarge => "payload_too_large",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::Internal => "internal",
        }
    }
}

/// A problem with one field of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// JSON path of the offending field (`spec.limits.gpu:h100`), or a path,
    /// query or header parameter name.
    pub field: String,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The request could not be parsed: malformed JSON, unknown field, wrong
    /// type, bad path parameter. (400)
    InvalidRequest { field: Option<String>, message: String },
    /// The request parsed but a value is not acceptable. (422)
    InvalidValue(FieldError),
    /// No credential, or a credential that is unknown, expired or revoked. (401)
    Unauthenticated { internal: String },
    /// The principal can see the object but may not perform the action. (403)
    Forbidden { action: String },
    /// The object does not exist, or the principal may not know it exists. (404)
    NotFound { kind: &'static str, key: String },
    /// The path exists but not with this method. (405)
    MethodNotAllowed { method: String },
    /// An object with this unique key already exists. (409)
    AlreadyExists { kind: &'static str, field: String, value: String },
    /// The request conflicts with the state of the object. (409)
    Conflict { message: String },
    /// An update carried a generation that is not the current one. (409)
    GenerationMismatch { kind: &'static str, expected: i64, current: i64 },
    /// Admission would exceed a quota at some level of the hierarchy. (409)
    QuotaExceeded { scope: String, resource: String, limit: i64, in_use: i64, requested: i64 },
    /// An `Idempotency-Key` was reused with a different request. (422)
    IdempotencyKeyReused,
    /// The body exceeds the configured limit. (413)
    PayloadTooLarge { limit: usize },
    /// Too many requests from this principal. (429)
    RateLimited { retry_after_secs: u64 },
    /// A dependency (the store) is not available right now. (503)
    Unavailable { internal: String },
    /// A bug or an unexpected failure. (500) The internal message is logged only.
    Internal { internal: String },
}

impl Error {
    pub fn invalid_request(field: impl Into<String>, message: impl Into<String>) -> Error {
        Error::InvalidRequest { field: Some(field.into()), message: message.into() }
    }

    pub fn invalid_value(field: impl Into<String>, message: impl Into<String>) -> Error {
        Error::InvalidValue(FieldError { field: field.into(), message: message.into() })
    }

    pub fn not_found(kind: &'static str, key: impl Into<String>) -> Error {
        Error::NotFound { kind, key: key.into() }
    }

    pub fn conflict(message: impl Into<String>) -> Error {
        Error::Conflict { message: message.into() }
    }

    pub fn internal(internal: impl Into<String>) -> Error {
        Error::Internal { internal: internal.into() }
    }

    pub fn unauthenticated(internal: impl Into<String>) -> Error {
        Error::Unauthenticated { internal: internal.into() }
    }

    pub fn code(&self) -> ErrorCode {
        match self {
            Error::InvalidRequest { .. } => ErrorCode::InvalidRequest,
            Error::InvalidValue(_) => ErrorCode::InvalidValue,
            Error::Unauthenticated { .. } => ErrorCode::Unauthenticated,
            Error::Forbidden { .. } => ErrorCode::Forbidden,
            Error::NotFound { .. } => ErrorCode::NotFound,
            Error::MethodNotAllowed { .. } => ErrorCode::MethodNotAllowed,
            Error::AlreadyExists { .. } => ErrorCode::AlreadyExists,
            Error::Conflict { .. } => ErrorCode::Conflict,
            Error::GenerationMismatch { .. } => ErrorCode::GenerationMismatch,
            Error::QuotaExceeded { .. } => ErrorCode::QuotaExceeded,
            Error::IdempotencyKeyReused => ErrorCode::IdempotencyKeyReused,
            Error::PayloadTooLarge { .. } => ErrorCode::PayloadTooLarge,
            Error::RateLimited { .. } => ErrorCode::RateLimited,
            Error::Unavailable { .. } => ErrorCode::Unavailable,
            Error::Internal { .. } => ErrorCode::Internal,
        }
    }

    /// The field a client should fix, where there is one.
    pub fn field(&self) -> Option<&str> {
        match self {
            Error::InvalidRequest { field, .. } => field.as_deref(),
            Error::InvalidValue(f) => Some(&f.field),
            Error::AlreadyExists { field, .. } => Some(field),
            Error::Unauthenticated { .. }
            | Error::Forbidden { .. }
            | Error::NotFound { .. }
            | Error::MethodNotAllowed { .. }
            | Error::Conflict { .. }
            | Error::GenerationMismatch { .. }
            | Error::QuotaExceeded { .. }
            | Error::IdempotencyKeyReused
            | Error::PayloadTooLarge { .. }
            | Error::RateLimited { .. }
            | Error::Unavailable { .. }
            | Error::Internal { .. } => None,
        }
    }

    /// The message a client sees. Never contains internal detail.
    pub fn external_message(&self) -> String {
        match self {
            Error::InvalidRequest { message, .. } => message.clone(),
            Error::InvalidValue(f) => f.message.clone(),
            Error::Unauthenticated { .. } => "missing, unknown, expired or revoked credential".into(),
            Error::Forbidden { action } => format!("not allowed to {action}"),
            Error::NotFound { kind, key } => format!("{kind} {key:?} not found"),
            Error::MethodNotAllowed { method } => format!("method {method} is not allowed here"),
            Error::AlreadyExists { kind, field, value } => {
                format!("a {kind} with {field} {value:?} already exists")
            }
            Error::Conflict { message } => message.clone(),
            Error::GenerationMismatch { kind, expected, current } => format!(
                "{kind} was changed concurrently: request expected generation {expected}, current is {current}"
            ),
            Error::QuotaExceeded { scope, resource, limit, in_use, requested } => format!(
                "quota exceeded for {resource} in {scope}: limit {limit}, in use {in_use}, requested {requested}"
            ),
            Error::IdempotencyKeyReused => {
                "Idempotency-Key was already used with a different request".into()
            }
            Error::PayloadTooLarge { limit } => format!("request body exceeds {limit} bytes"),
            Error::RateLimited { retry_after_secs } => {
                format!("too many requests; retry after {retry_after_secs} s")
            }
            Error::Unavailable { .. } => "service temporarily unavailable".into(),
            Error::Internal { .. } => "internal error".into(),
        }
    }

    /// Detail for logs only.
    pub fn internal_message(&self) -> Option<&str> {
        match self {
            Error::Unauthenticated { internal }
            | Error::Unavailable { internal }
            | Error::Internal { internal } => Some(internal),
            Error::InvalidRequest { .. }
            | Error::InvalidValue(_)
            | Error::Forbidden { .. }
            | Error::NotFound { .. }
            | Error::MethodNotAllowed { .. }
            | Error::AlreadyExists { .. }
            | Error::Conflict { .. }
            | Error::GenerationMismatch { .. }
            | Error::QuotaExceeded { .. }
            | Error::IdempotencyKeyReused
            | Error::PayloadTooLarge { .. }
            | Error::RateLimited { .. } => None,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code().as_str(), self.external_message())?;
        if let Some(i) = self.internal_message() {
            write!(f, " ({i})")?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_detail_never_reaches_the_external_message() {
        let e = Error::internal("SELECT * FROM secrets failed: disk I/O error");
        assert_eq!(e.external_message(), "internal error");
        assert!(e.to_string().contains("disk I/O"));
        let e = Error::unauthenticated("token hash abc not found");
        assert!(!e.external_message().contains("abc"));
    }

    #[test]
    fn field_is_reported_for_field_errors() {
        assert_eq!(Error::invalid_value("name", "too long").field(), Some("name"));
        assert_eq!(Error::invalid_request("body", "x").field(), Some("body"));
        assert_eq!(Error::conflict("x").field(), None);
    }
}
