//! The one place where errors become HTTP responses.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use neocloud_common::Error;
use neocloud_types::{ErrorBody, ErrorDetail};

/// The status code of each error. Exhaustive: a new variant must be mapped.
pub fn status(e: &Error) -> StatusCode {
    match e {
        Error::InvalidRequest { .. } => StatusCode::BAD_REQUEST,
        Error::InvalidValue(_) => StatusCode::UNPROCESSABLE_ENTITY,
        Error::Unauthenticated { .. } => StatusCode::UNAUTHORIZED,
        Error::Forbidden { .. } => StatusCode::FORBIDDEN,
        Error::NotFound { .. } => StatusCode::NOT_FOUND,
        Error::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
        Error::AlreadyExists { .. }
        | Error::Conflict { .. }
        | Error::GenerationMismatch { .. }
        | Error::QuotaExceeded { .. } => StatusCode::CONFLICT,
        Error::IdempotencyKeyReused => StatusCode::UNPROCESSABLE_ENTITY,
        Error::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
        Error::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
        Error::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
        Error::Internal { .. } => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// The JSON body clients see: code, external message, field, request id.
pub fn body(e: &Error, request_id: &str) -> ErrorBody {
    ErrorBody {
        error: ErrorDetail {
            code: e.code().as_str().to_string(),
            message: e.external_message(),
            field: e.field().map(str::to_string),
            request_id: request_id.to_string(),
        },
    }
}

/// Logs internal detail (server side only) and builds the response.
pub fn response(e: &Error, request_id: &str) -> Response {
    let status = status(e);
    if let Some(internal) = e.internal_message() {
        if status.is_server_error() {
            tracing::error!(request_id, error = %internal, "request failed");
        } else {
            tracing::info!(request_id, error = %internal, "request refused");
        }
    }
    let mut resp = (status, axum::Json(body(e, request_id))).into_response();
    let headers = resp.headers_mut();
    if let Error::RateLimited { retry_after_secs } = e {
        headers.insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_secs));
    }
    if let Error::Unauthenticated { .. } = e {
        headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    resp
}
