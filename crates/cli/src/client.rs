//! HTTP client for the API (filled in by the client commands).
