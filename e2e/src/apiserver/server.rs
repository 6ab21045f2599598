//! HTTP plumbing: the accept loop, body limits, and dispatch of non-resource paths.

use super::router::{self, Route};
use super::{ApiError, Shared, aggregator, auth, discovery, handlers, openapi};
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited, combinators::BoxBody};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::Value;
use std::convert::Infallible;
use std::sync::Arc;

/// Boxed error for response bodies.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
/// The response body type.
pub type Body = BoxBody<Bytes, BoxError>;

/// A response with a JSON body.
pub fn json_response(code: u16, v: &Value) -> Response<Body> {
    bytes_response(code, "application/json", Bytes::from(v.to_string()))
}

/// A response with raw bytes.
pub fn bytes_response(code: u16, content_type: &str, b: Bytes) -> Response<Body> {
    let mut r = Response::new(
        Full::new(b)
            .map_err(|never: Infallible| match never {})
            .boxed(),
    );
    *r.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if let Ok(v) = http::HeaderValue::from_str(content_type) {
        r.headers_mut().insert(http::header::CONTENT_TYPE, v);
    }
    r
}

/// Renders an [`ApiError`] as a `Status` response.
pub fn error_response(e: &ApiError) -> Response<Body> {
    json_response(e.code, &e.to_status())
}

/// Accepts connections until shutdown.
pub async fn serve(listener: tokio::net::TcpListener, shared: Arc<Shared>) {
    let mut shutdown = shared.shutdown.clone();
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _peer)) = accepted else { continue };
                let shared = shared.clone();
                let svc = hyper::service::service_fn(move |req| {
                    let shared = shared.clone();
                    async move { Ok::<_, Infallible>(handle(shared, req).await) }
                });
                let conn = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection_with_upgrades(TokioIo::new(stream), svc)
                    .into_owned();
                let conn = graceful.watch(conn);
                tokio::spawn(async move {
                    if let Err(e) = conn.await {
                        tracing::debug!(error = %e, "connection closed with an error");
                    }
                });
            }
            _ = shutdown.changed() => break,
        }
    }
    drop(listener);
    let _ = tokio::time::timeout(std::time::Duration::from_secs(3), graceful.shutdown()).await;
}

/// A request as an observer sees it: who sent what, the answer, and how long the server
/// took from reading the request's head to having the response's headers.
#[derive(Debug)]
pub struct ObservedRequest<'a> {
    /// The method.
    pub method: &'a http::Method,
    /// The path with the query.
    pub path_and_query: &'a str,
    /// The user the request runs as (the impersonated one, if any; "" when authentication
    /// failed).
    pub user: &'a str,
    /// The response's status.
    pub status: StatusCode,
    /// From the request's head to the response's headers.
    pub took: std::time::Duration,
}

/// Told of each request as it is answered (see [`super::Options::observer`]).
#[derive(Clone)]
pub struct RequestObserver(pub Arc<dyn Fn(&ObservedRequest<'_>) + Send + Sync>);

impl std::fmt::Debug for RequestObserver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RequestObserver")
    }
}

/// Reads a request body up to `limit` bytes.
pub async fn read_body(body: Incoming, limit: usize) -> Result<Bytes, ApiError> {
    match Limited::new(body, limit).collect().await {
        Ok(c) => Ok(c.to_bytes()),
        Err(e)
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            Err(ApiError::too_large(limit))
        }
        Err(e) => Err(ApiError::bad_request(format!(
            "reading the request body: {e}"
        ))),
    }
}

fn wants_only_protobuf(req: &Request<Incoming>) -> bool {
    let accept = req
        .headers()
        .get(http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("*/*");
    !accept.contains("json") && !accept.contains("*/*")
}

async fn handle(shared: Arc<Shared>, req: Request<Incoming>) -> Response<Body> {
    let Some(observer) = shared.opts.observer.clone() else {
        return respond(shared, req, &mut None).await;
    };
    let started = tokio::time::Instant::now();
    let method = req.method().clone();
    let path_and_query = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_default();
    let mut user = None;
    let rsp = respond(shared, req, &mut user).await;
    (observer.0)(&ObservedRequest {
        method: &method,
        path_and_query: &path_and_query,
        user: user.as_deref().unwrap_or_default(),
        status: rsp.status(),
        took: started.elapsed(),
    });
    rsp
}

/// Answers a request; sets `who` to the user once authenticated.
async fn respond(
    shared: Arc<Shared>,
    req: Request<Incoming>,
    who: &mut Option<String>,
) -> Response<Body> {
    let path = req.uri().path().to_string();
    tracing::debug!(method = %req.method(), uri = %req.uri(), "request");
    if let Some(too_big) = req
        .headers()
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|n| *n > shared.opts.max_body)
    {
        tracing::debug!(too_big, "refusing a large body");
        return error_response(&ApiError::too_large(shared.opts.max_body));
    }
    let get = req.method() == http::Method::GET;
    let route = router::route(&path);
    let user = match auth::check(&shared, req.method(), req.uri(), req.headers(), &route, who) {
        Ok(user) => user,
        Err(e) => return error_response(&e),
    };
    if let Some(target) = aggregator::target_for(&shared, &route) {
        return aggregator::proxy(&shared, target, &user, req).await;
    }
    if let Route::Resource(rp) = &route
        && let Some(review) = auth::review::review_of(rp)
    {
        let method = req.method().clone();
        let content_type = req
            .headers()
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        return auth::review::handle(
            &shared,
            &user,
            review,
            rp,
            &method,
            &content_type,
            req.into_body(),
        )
        .await;
    }
    if let Route::Resource(rp) = &route
        && rp.group.is_empty()
        && rp.plural == "pods"
        && rp.sub.as_deref() == Some("log")
        && rp.name.is_some()
    {
        if !get {
            return error_response(&ApiError::method_not_allowed());
        }
        return super::pod_log::handle(&shared, rp, req.uri().query()).await;
    }
    let reply = |v: Option<Value>| match v {
        Some(v) => json_response(200, &v),
        None => error_response(&ApiError::no_route(&path)),
    };
    match route {
        Route::Version if get => json_response(200, &discovery::version()),
        Route::Health if get => bytes_response(200, "text/plain", Bytes::from_static(b"ok")),
        Route::Api if get => json_response(200, &discovery::api_versions(&shared.addr.to_string())),
        Route::Apis if get => {
            let st = shared.state.lock();
            let agg = aggregator::aggregated_groups(&st);
            json_response(200, &discovery::api_group_list(&st.registry, &agg))
        }
        Route::Group(g) if get => reply(discovery::api_group(&shared.state.lock().registry, &g)),
        Route::Discovery(g, v) if get => reply(discovery::resource_list(
            &shared.state.lock().registry,
            &g,
            &v,
        )),
        Route::OpenApiV2 if get => {
            if wants_only_protobuf(&req) {
                // An empty gnostic Document: kubectl finds no v2 schema for any kind and skips
                // client-side validation, as it does for kinds a real server does not describe.
                return bytes_response(
                    200,
                    "application/com.github.proto-openapi.spec.v2.v1.0+protobuf",
                    Bytes::new(),
                );
            }
            json_response(200, &openapi::v2(&shared.state.lock().registry))
        }
        Route::OpenApiV3Root if get => {
            json_response(200, &openapi::v3_root(&shared.state.lock().registry))
        }
        Route::OpenApiV3(g, v) if get => reply(openapi::v3_group_version(
            &shared.state.lock().registry,
            &g,
            &v,
        )),
        Route::Resource(rp) => handlers::handle(shared, rp, req).await,
        Route::NotFound => error_response(&ApiError::no_route(&path)),
        _ => error_response(&ApiError::method_not_allowed()),
    }
}
