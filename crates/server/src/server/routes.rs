//! The route table as axum routes, and one API call from request to
//! response (the boot service's routes too).

use super::{Shared, REQUEST_ID};
use crate::api::{Body, Method};
use crate::dispatch::{self, Outcome, Request};
use crate::http_error;
use axum::extract::{Path as AxPath, Query};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{on, MethodFilter, MethodRouter};
use axum::Router;
use neocloud_common::{new_id, Error, Result};
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn filter(m: Method) -> MethodFilter {
    match m {
        Method::Get => MethodFilter::GET,
        Method::Post => MethodFilter::POST,
        Method::Put => MethodFilter::PUT,
        Method::Patch => MethodFilter::PATCH,
        Method::Delete => MethodFilter::DELETE,
    }
}

fn request_id(headers: &HeaderMap) -> String {
    headers
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|s| {
            !s.is_empty()
                && s.len() <= 128
                && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
        })
        .map(str::to_string)
        .unwrap_or_else(new_id)
}

fn with_id(mut resp: Response, id: &str) -> Response {
    if let Ok(v) = HeaderValue::from_str(id) {
        resp.headers_mut().insert(REQUEST_ID, v);
    }
    resp
}

fn error(e: &Error, id: &str) -> Response {
    with_id(http_error::response(e, id), id)
}

/// The API's router; `with_boot`: the boot service's routes too (no
/// `boot_listen`).
pub(super) fn router(shared: Arc<Shared>, with_boot: bool) -> Router {
    let mut by_path: BTreeMap<&'static str, Vec<usize>> = BTreeMap::new();
    for (i, op) in shared.app.ops.iter().enumerate() {
        by_path.entry(op.path).or_default().push(i);
    }
    let mut router = Router::new();
    for (path, idxs) in by_path {
        let mut mr: MethodRouter = MethodRouter::new();
        for i in idxs {
            let s = shared.clone();
            mr = mr.on(
                filter(s.app.ops[i].method),
                move |params: std::result::Result<AxPath<HashMap<String, String>>, _>,
                      query: std::result::Result<Query<HashMap<String, String>>, _>,
                      axum::extract::ConnectInfo(peer): axum::extract::ConnectInfo<SocketAddr>,
                      uri: axum::http::Uri,
                      headers: HeaderMap,
                      body: axum::body::Body| async move {
                    api_call(s, i, params, query, peer, uri, headers, body).await
                },
            );
        }
        mr = mr.fallback(|req: axum::extract::Request| async move {
            let id = request_id(req.headers());
            error(&Error::MethodNotAllowed { method: req.method().to_string() }, &id)
        });
        router = router.route(path, mr);
    }
    let s = shared.clone();
    let s2 = shared.clone();
    let s3 = shared.clone();
    router
        .route(
            "/healthz",
            on(MethodFilter::GET, || async { axum::Json(serde_json::json!({"status": "ok"})) }),
        )
        .route(
            "/readyz",
            on(MethodFilter::GET, move |headers: HeaderMap| async move {
                let id = request_id(&headers);
                if s.draining.load(Ordering::SeqCst) {
                    return error(&Error::Unavailable { internal: "draining".into() }, &id);
                }
                let s2 = s.clone();
                match tokio::task::spawn_blocking(move || s2.app.store.ping()).await {
                    Ok(Ok(())) => {
                        axum::Json(serde_json::json!({"status": "ready"})).into_response()
                    }
                    Ok(Err(e)) => error(&Error::Unavailable { internal: e.to_string() }, &id),
                    Err(e) => error(&Error::internal(e.to_string()), &id),
                }
            }),
        )
        .route(
            "/metrics",
            on(MethodFilter::GET, move || async move {
                (
                    [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
                    s2.app.metrics.render()
                        + &s2.app.planners.render_metrics()
                        + &s2.app.lifecycle.render_metrics()
                        + &s2.app.placement.render_metrics(),
                )
            }),
        )
        .merge(agent_routes(shared.clone()))
        .merge(match with_boot {
            true => boot_routes(shared.clone()),
            false => Router::new(),
        })
        .route(
            "/v1/openapi.json",
            on(MethodFilter::GET, move || async move {
                ([(header::CONTENT_TYPE, "application/json")], s3.openapi.clone())
            }),
        )
        .fallback(no_route)
}

/// A path no route serves: 404, naming it.
async fn no_route(req: axum::extract::Request) -> Response {
    let id = request_id(req.headers());
    error(&Error::not_found("route", req.uri().path().to_string()), &id)
}

/// A request's body, at most `max_body_bytes` (a longer one is refused
/// by its `Content-Length` before it is read, else once it passes it).
async fn read_body(
    s: &Shared,
    headers: &HeaderMap,
    body: axum::body::Body,
) -> Result<axum::body::Bytes> {
    if let Some(len) = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
    {
        if len > s.max_body {
            return Err(Error::PayloadTooLarge { limit: s.max_body });
        }
    }
    axum::body::to_bytes(body, s.max_body)
        .await
        .map_err(|_| Error::PayloadTooLarge { limit: s.max_body })
}

#[allow(clippy::too_many_arguments)]
async fn api_call(
    s: Arc<Shared>,
    op: usize,
    params: std::result::Result<
        AxPath<HashMap<String, String>>,
        axum::extract::rejection::PathRejection,
    >,
    query: std::result::Result<
        Query<HashMap<String, String>>,
        axum::extract::rejection::QueryRejection,
    >,
    peer: SocketAddr,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Response {
    let started = Instant::now();
    let id = request_id(&headers);
    let op_id = s.app.ops[op].id;
    let (resp, who) =
        match prepare(&s, op, params, query, peer, uri.path(), &headers, body, &id).await {
            Err(e) => {
                if s.app.ops[op].method.is_mutating() {
                    let req = Request {
                        op,
                        path: uri.path().to_string(),
                        params: HashMap::new(),
                        query: HashMap::new(),
                        authorization: headers
                            .get(header::AUTHORIZATION)
                            .and_then(|v| v.to_str().ok())
                            .map(str::to_string),
                        idempotency_key: None,
                        body: Vec::new(),
                        request_id: id.clone(),
                        peer: peer.ip(),
                    };
                    let (s2, e2) = (s.clone(), e.clone());
                    let _ = tokio::task::spawn_blocking(move || {
                        dispatch::record_rejected(&s2.app, &req, &e2)
                    })
                    .await;
                }
                (Err(e), None)
            }
            Ok(req) => {
                let s2 = s.clone();
                match tokio::task::spawn_blocking(move || {
                    let (res, who) = dispatch::handle(&s2.app, &req);
                    (res, who, req.path)
                })
                .await
                {
                    Ok((res, who, _)) => (res, who),
                    Err(e) => (Err(Error::internal(format!("handler panicked: {e}"))), None),
                }
            }
        };
    let response = match resp {
        Ok(out) => success(out, &id),
        Err(e) => error(&e, &id),
    };
    let status = response.status().as_u16();
    let elapsed = started.elapsed();
    s.app.metrics.request(op_id, status, elapsed);
    tracing::info!(
        request_id = %id,
        op = op_id,
        status,
        principal = who.as_deref().unwrap_or("-"),
        elapsed_us = elapsed.as_micros() as u64,
        "request"
    );
    response
}

#[allow(clippy::too_many_arguments)]
async fn prepare(
    s: &Shared,
    op: usize,
    params: std::result::Result<
        AxPath<HashMap<String, String>>,
        axum::extract::rejection::PathRejection,
    >,
    query: std::result::Result<
        Query<HashMap<String, String>>,
        axum::extract::rejection::QueryRejection,
    >,
    peer: SocketAddr,
    path: &str,
    headers: &HeaderMap,
    body: axum::body::Body,
    id: &str,
) -> Result<Request> {
    let params = params
        .map_err(|e| Error::InvalidRequest { field: Some("path".into()), message: e.body_text() })?
        .0;
    let query = query
        .map_err(|e| Error::InvalidRequest { field: Some("query".into()), message: e.body_text() })?
        .0;
    let header_str = |name: header::HeaderName, canonical: &str| -> Result<Option<String>> {
        match headers.get(&name) {
            None => Ok(None),
            Some(v) => v
                .to_str()
                .map(|v| Some(v.to_string()))
                .map_err(|_| Error::invalid_request(canonical, "must be visible ASCII")),
        }
    };
    // An unreadable credential is no credential: 401 (with its challenge).
    let authorization = header_str(header::AUTHORIZATION, "Authorization")
        .map_err(|_| Error::unauthenticated("Authorization header is not visible ASCII"))?;
    let idempotency_key =
        header_str(header::HeaderName::from_static("idempotency-key"), "Idempotency-Key")?;
    let bytes = read_body(s, headers, body).await?;
    let o = &s.app.ops[op];
    if !bytes.is_empty() && o.request.is_none() {
        return Err(Error::invalid_request("body", "this operation takes no body"));
    }
    if !bytes.is_empty() {
        if let Some(ct) = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) {
            if !ct.starts_with("application/json") {
                return Err(Error::invalid_request("Content-Type", "must be application/json"));
            }
        }
    }
    Ok(Request {
        op,
        path: path.to_string(),
        params,
        query,
        authorization,
        idempotency_key,
        body: bytes.to_vec(),
        request_id: id.to_string(),
        peer: peer.ip(),
    })
}

fn success(out: Outcome, id: &str) -> Response {
    let status = StatusCode::from_u16(out.status).unwrap_or(StatusCode::OK);
    let mut resp = match out.body {
        Body::Json(v) => (status, axum::Json(v)).into_response(),
        Body::JsonLines(s) => {
            (status, [(header::CONTENT_TYPE, "application/x-ndjson")], s).into_response()
        }
        Body::Empty => status.into_response(),
    };
    if out.replayed {
        resp.headers_mut().insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    with_id(resp, id)
}

/// An ISO's answer: the whole of it, or the byte range asked (as BMCs
/// read virtual media; HEAD is answered by the same handler, body dropped).
fn iso_response(asked: crate::boot::handlers::ByteRange, len: u64, bytes: Vec<u8>) -> Response {
    use crate::boot::handlers::ByteRange;
    let iso = (header::CONTENT_TYPE, HeaderValue::from_static("application/x-iso9660-image"));
    let ranges = (header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    let content_range = |v: String| {
        (header::CONTENT_RANGE, HeaderValue::from_str(&v).unwrap_or(HeaderValue::from_static("*")))
    };
    match asked {
        ByteRange::Whole => (StatusCode::OK, [iso, ranges], bytes).into_response(),
        ByteRange::Part(first, last) => {
            let cr = content_range(format!("bytes {first}-{last}/{len}"));
            (StatusCode::PARTIAL_CONTENT, [iso, ranges, cr], bytes).into_response()
        }
        ByteRange::Unsatisfiable => {
            (StatusCode::RANGE_NOT_SATISFIABLE, [content_range(format!("bytes */{len}"))])
                .into_response()
        }
    }
}

use crate::boot::{handlers, tpm};

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f).await.map_err(|e| Error::internal(format!("boot task: {e}")))?
}

fn text(r: Result<handlers::Text>, id: &str) -> Response {
    match r {
        Ok(t) => with_id(
            (
                StatusCode::from_u16(t.status).unwrap_or(StatusCode::OK),
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                t.body,
            )
                .into_response(),
            id,
        ),
        Err(e) => error(&e, id),
    }
}

fn json<T: serde::Serialize>(r: Result<T>, status: StatusCode, id: &str) -> Response {
    match r {
        Ok(v) => with_id((status, axum::Json(v)).into_response(), id),
        Err(e) => error(&e, id),
    }
}

fn auth(h: &HeaderMap) -> Option<String> {
    h.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).map(str::to_string)
}

/// The boot service's own router (`boot_listen`): the boot service and
/// the agent API, nothing else.
pub(super) fn boot_router(shared: Arc<Shared>) -> Router {
    boot_routes(shared.clone()).merge(agent_routes(shared)).fallback(no_route)
}

/// The boot service (see `boot`): iPXE scripts, NoCloud documents and
/// per-node ISOs, answered on blocking threads.
fn boot_routes(shared: Arc<Shared>) -> Router {
    let (s1, s2, s6) = (shared.clone(), shared.clone(), shared);
    Router::new()
        .route(
            "/boot/ipxe",
            on(MethodFilter::GET, move |headers: HeaderMap, q: Query<HashMap<String, String>>| async move {
                let id = request_id(&headers);
                let mac = q.get("mac").cloned();
                let r = blocking(move || handlers::ipxe(&s1.app, &s1.app.boot, mac.as_deref())).await;
                text(r, &id)
            }),
        )
        .route(
            "/boot/nocloud/{token}/{doc}",
            on(MethodFilter::GET, move |headers: HeaderMap, AxPath((token, doc)): AxPath<(String, String)>| async move {
                let id = request_id(&headers);
                let r = blocking(move || handlers::nocloud(&s2.app, &s2.app.boot, &token, &doc)).await;
                text(r, &id)
            }),
        )
        .route(
            "/boot/vmedia/{node}/{file}",
            on(MethodFilter::GET, move |headers: HeaderMap, AxPath((node, file)): AxPath<(String, String)>| async move {
                let id = request_id(&headers);
                let range = headers.get(header::RANGE).and_then(|v| v.to_str().ok()).map(str::to_string);
                let r = blocking(move || {
                    handlers::node_iso_part(&s6.app, &s6.app.boot, &node, &file, range.as_deref())
                })
                .await;
                match r {
                    Ok((asked, len, bytes)) => with_id(iso_response(asked, len, bytes), &id),
                    Err(e) => error(&e, &id),
                }
            }),
        )
}

/// An agent's call with its credential: the body to `handler` on a
/// blocking thread, its answer as JSON.
fn agent_call<T: serde::Serialize + Send + 'static>(
    s: Arc<Shared>,
    handler: fn(&crate::dispatch::App, Option<&str>, &[u8]) -> Result<T>,
) -> MethodRouter {
    on(MethodFilter::POST, move |headers: HeaderMap, body: axum::body::Body| async move {
        let id = request_id(&headers);
        let a = auth(&headers);
        let body = match read_body(&s, &headers, body).await {
            Ok(b) => b,
            Err(e) => return error(&e, &id),
        };
        let r = blocking(move || handler(&s.app, a.as_deref(), &body)).await;
        json(r, StatusCode::OK, &id)
    })
}

/// The agent API (see `boot`): registration, heartbeats, step results,
/// TPM identity, answered on blocking threads.
fn agent_routes(shared: Arc<Shared>) -> Router {
    let (s3, s4, s5) = (shared.clone(), shared.clone(), shared.clone());
    let (s7, s8) = (shared.clone(), shared);
    Router::new()
        .route("/agent/v1/identity/challenge", agent_call(s7, tpm::challenge))
        .route("/agent/v1/identity", agent_call(s8, tpm::prove))
        .route(
            "/agent/v1/register",
            on(MethodFilter::POST, move |headers: HeaderMap,
                  axum::extract::ConnectInfo(peer): axum::extract::ConnectInfo<SocketAddr>,
                  body: axum::body::Body| async move {
                let id = request_id(&headers);
                let body = match read_body(&s3, &headers, body).await {
                    Ok(b) => b,
                    Err(e) => return error(&e, &id),
                };
                let r = blocking(move || handlers::register(&s3.app, &s3.app.boot, &peer.ip().to_string(), &body)).await;
                json(r, StatusCode::CREATED, &id)
            }),
        )
        .route(
            "/agent/v1/heartbeat",
            on(MethodFilter::POST, move |headers: HeaderMap, body: axum::body::Body| async move {
                let id = request_id(&headers);
                let a = auth(&headers);
                let body = match read_body(&s4, &headers, body).await {
                    Ok(b) => b,
                    Err(e) => return error(&e, &id),
                };
                let s = s4.clone();
                let hb = blocking(move || handlers::heartbeat(&s.app, a.as_deref(), &body)).await;
                let r = match hb {
                    Ok(handlers::Heartbeat { await_steps: Some((agent, signal)), .. }) => {
                        // Held until the agent's steps are queued (or a while).
                        let wait = Duration::from_millis(handlers::AWAIT_STEPS_MS);
                        let _ = tokio::time::timeout(wait, signal.notified()).await;
                        s4.app.lifecycle.forget_steps_signal(&agent);
                        let s = s4.clone();
                        blocking(move || handlers::pending_steps(&s.app, &agent)).await
                    }
                    other => other.map(|h| h.reply),
                };
                json(r, StatusCode::OK, &id)
            }),
        )
        .route(
            "/agent/v1/steps/{step}",
            on(MethodFilter::POST, move |headers: HeaderMap, AxPath(step): AxPath<String>, body: axum::body::Body| async move {
                let id = request_id(&headers);
                let a = auth(&headers);
                let body = match read_body(&s5, &headers, body).await {
                    Ok(b) => b,
                    Err(e) => return error(&e, &id),
                };
                let r = blocking(move || handlers::step_result(&s5.app, a.as_deref(), &step, &body)).await;
                json(r.map(|()| serde_json::json!({"recorded": true})), StatusCode::OK, &id)
            }),
        )
}
