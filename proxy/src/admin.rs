//! The admin listener: `/metrics`, `/ready`, `/live`, `/config` and `/splits`, apart from the
//! data port.

use crate::metrics::Metrics;
use crate::snapshot::Snapshot;
use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use std::convert::Infallible;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// What the admin endpoints read.
#[derive(Debug, Clone)]
pub struct Admin {
    /// The current snapshot.
    pub snapshots: watch::Receiver<Arc<Snapshot>>,
    /// The proxy's metrics.
    pub metrics: Arc<Metrics>,
}

// === impl Admin ===

impl Admin {
    /// Answers one admin request.
    pub fn handle<B>(&self, req: &Request<B>) -> Response<Full<Bytes>> {
        if req.method() != Method::GET && req.method() != Method::HEAD {
            return text(StatusCode::METHOD_NOT_ALLOWED, "GET only\n".into());
        }
        match req.uri().path() {
            "/metrics" => typed(self.metrics.render(), crate::metrics::CONTENT_TYPE),
            "/live" => text(StatusCode::OK, "live\n".into()),
            "/ready" => {
                if self.snapshots.borrow().is_ready() {
                    text(StatusCode::OK, "ready\n".into())
                } else {
                    text(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "not ready: no config loaded yet\n".into(),
                    )
                }
            }
            "/config" => {
                let snapshot = self.snapshots.borrow().clone();
                match serde_json::to_string_pretty(&*snapshot) {
                    Ok(json) => typed(json, JSON),
                    Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")),
                }
            }
            "/splits" => {
                let snapshot = self.snapshots.borrow().clone();
                typed(splits(&snapshot).to_string(), JSON)
            }
            other => text(
                StatusCode::NOT_FOUND,
                format!("no admin endpoint {other}\n"),
            ),
        }
    }

    /// Serves the admin endpoints until `shutdown`.
    pub async fn serve(self, listener: TcpListener, shutdown: CancellationToken) {
        let tracker = TaskTracker::new();
        let builder = Arc::new(auto::Builder::new(TokioExecutor::new()));
        loop {
            let stream = tokio::select! {
                () = shutdown.cancelled() => break,
                accepted = listener.accept() => match accepted {
                    Ok((s, _)) => s,
                    Err(e) => {
                        tracing::warn!(error = %e, "admin accept failed");
                        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                        continue;
                    }
                },
            };
            let admin = self.clone();
            let builder = builder.clone();
            let shutdown = shutdown.clone();
            tracker.spawn(async move {
                let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
                    let rsp = admin.handle(&req);
                    async move { Ok::<_, Infallible>(rsp) }
                });
                let conn = builder.serve_connection(TokioIo::new(stream), svc);
                tokio::pin!(conn);
                tokio::select! {
                    _ = conn.as_mut() => {}
                    () = shutdown.cancelled() => {
                        conn.as_mut().graceful_shutdown();
                        let _ = tokio::time::timeout(std::time::Duration::from_secs(2), conn).await;
                    }
                }
            });
        }
        tracker.close();
        let _ = tokio::time::timeout(std::time::Duration::from_secs(2), tracker.wait()).await;
    }
}

/// The content type of `/config` and `/splits`.
const JSON: &str = "application/json";

/// A 200 answer of `content_type`.
fn typed(body: String, content_type: &'static str) -> Response<Full<Bytes>> {
    let mut rsp = text(StatusCode::OK, body);
    rsp.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(content_type),
    );
    rsp
}

fn text(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut rsp = Response::new(Full::new(Bytes::from(body)));
    *rsp.status_mut() = status;
    rsp.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    rsp
}

/// The weights in force, compactly: `{"generation": g, "splits": {namespace: {root: {"split":
/// name, "backends": [{"service", "weight_millis", "ready_endpoints"}]}}}}`, for every route
/// with a TrafficSplit. A small answer to poll where `/config` (every endpoint and policy) is
/// megabytes.
pub fn splits(snapshot: &Snapshot) -> serde_json::Value {
    let mut namespaces = serde_json::Map::new();
    for (namespace, routes) in &snapshot.routes {
        let mut roots = serde_json::Map::new();
        for (root, route) in routes {
            let Some(split) = &route.split else { continue };
            let backends: Vec<serde_json::Value> = split
                .backends
                .iter()
                .map(|b| {
                    let ready: usize = b.target.ports.iter().map(|p| p.endpoints.len()).sum();
                    serde_json::json!({
                        "service": b.target.name,
                        "weight_millis": b.weight_millis,
                        "ready_endpoints": ready,
                    })
                })
                .collect();
            roots.insert(
                root.clone(),
                serde_json::json!({"split": split.name, "backends": backends}),
            );
        }
        if !roots.is_empty() {
            namespaces.insert(namespace.clone(), serde_json::Value::Object(roots));
        }
    }
    serde_json::json!({"generation": snapshot.generation, "splits": namespaces})
}
