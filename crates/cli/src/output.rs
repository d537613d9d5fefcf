#![allow(dead_code)] // wired up by the client commands
//! Exit codes and error output.

use neocloud_common::{Error, ErrorCode};
use std::process::ExitCode;

pub const EXIT_OTHER: u8 = 1;
pub const EXIT_USAGE: u8 = 2;
pub const EXIT_UNAUTHENTICATED: u8 = 3;
pub const EXIT_FORBIDDEN: u8 = 4;
pub const EXIT_NOT_FOUND: u8 = 5;
pub const EXIT_CONFLICT: u8 = 6;
pub const EXIT_INVALID: u8 = 7;
pub const EXIT_RATE_LIMITED: u8 = 8;
pub const EXIT_UNAVAILABLE: u8 = 9;

/// The exit code for an HTTP status (0 for success).
pub fn exit_for_status(status: u16) -> u8 {
    match status {
        200..=299 => 0,
        401 => EXIT_UNAUTHENTICATED,
        403 => EXIT_FORBIDDEN,
        404 => EXIT_NOT_FOUND,
        409 => EXIT_CONFLICT,
        400 | 405 | 413 | 415 | 422 => EXIT_INVALID,
        429 => EXIT_RATE_LIMITED,
        500..=599 => EXIT_UNAVAILABLE,
        _ => EXIT_OTHER,
    }
}

/// Reports an error that happened locally (not from the API).
pub fn fail_local(e: &Error) -> ExitCode {
    eprintln!("error: {}", e.external_message());
    if let Some(f) = e.field() {
        eprintln!("  field: {f}");
    }
    if let Some(i) = e.internal_message() {
        eprintln!("  detail: {i}");
    }
    ExitCode::from(match e.code() {
        ErrorCode::InvalidRequest | ErrorCode::InvalidValue => EXIT_USAGE,
        ErrorCode::Unavailable => EXIT_UNAVAILABLE,
        _ => EXIT_OTHER,
    })
}
