use std::fmt;

/// What can go wrong talking to a BMC. Every variant says enough for an
/// operator (the node's Failed(reason) shows it); none carries credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RedfishError {
    /// No TCP connection (refused, unreachable, DNS, no TLS handshake)
    /// after the retries: the request never reached the BMC.
    Unreachable(String),
    /// The connection broke after it was made (reset, closed before the
    /// whole answer, a garbled answer): the request may have reached the
    /// BMC and been acted on.
    ConnectionLost(String),
    /// No answer within the timeout after the retries.
    Timeout(String),
    /// The BMC refused the credentials.
    Auth(String),
    /// The BMC does not implement this (501, or not in its allowed values).
    Unsupported(String),
    /// Another HTTP error status.
    Status { status: u16, path: String, message: String },
    /// The answer did not have the expected shape.
    Protocol(String),
}

impl RedfishError {
    /// Worth another try: transport failures, timeouts, 429 (too many
    /// requests) and server errors other than 501.
    pub fn is_transient(&self) -> bool {
        match self {
            RedfishError::Unreachable(_)
            | RedfishError::ConnectionLost(_)
            | RedfishError::Timeout(_) => true,
            RedfishError::Status { status, .. } => {
                *status == 429 || (*status >= 500 && *status != 501)
            }
            RedfishError::Auth(_) | RedfishError::Unsupported(_) | RedfishError::Protocol(_) => {
                false
            }
        }
    }
}

impl fmt::Display for RedfishError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RedfishError::Unreachable(m) => write!(f, "BMC unreachable: {m}"),
            RedfishError::ConnectionLost(m) => write!(f, "BMC connection lost mid-request: {m}"),
            RedfishError::Timeout(m) => write!(f, "BMC timed out: {m}"),
            RedfishError::Auth(m) => write!(f, "BMC refused the credentials: {m}"),
            RedfishError::Unsupported(m) => write!(f, "not supported by this BMC: {m}"),
            RedfishError::Status { status, path, message } => {
                write!(f, "BMC answered {status} for {path}: {message}")
            }
            RedfishError::Protocol(m) => write!(f, "unexpected BMC answer: {m}"),
        }
    }
}

impl std::error::Error for RedfishError {}

pub type Result<T, E = RedfishError> = std::result::Result<T, E>;
