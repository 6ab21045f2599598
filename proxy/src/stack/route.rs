//! Routing: host → root Service → split → backend, against the current snapshot.

use super::{PeerAddr, ResponseFuture, RouteLabels, Routed, error_response};
use crate::error::ProxyError;
use crate::host::parse_host;
use crate::snapshot::{RequestInfo, Snapshot};
use http::{Request, header};
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::sync::watch;

/// Routes each request by its host, reading the snapshot current at that moment.
#[derive(Debug, Clone)]
pub struct Route<S> {
    inner: S,
    snapshots: watch::Receiver<Arc<Snapshot>>,
    namespace: Arc<str>,
}

/// Builds [`Route`] services.
#[derive(Debug, Clone)]
pub struct RouteLayer {
    snapshots: watch::Receiver<Arc<Snapshot>>,
    namespace: Arc<str>,
}

// === impl RouteLayer ===

impl RouteLayer {
    /// A layer reading snapshots from `snapshots`; bare `svc` hosts are in `namespace`.
    pub fn new(snapshots: watch::Receiver<Arc<Snapshot>>, namespace: &str) -> Self {
        Self {
            snapshots,
            namespace: Arc::from(namespace),
        }
    }
}

impl<S> tower::Layer<S> for RouteLayer {
    type Service = Route<S>;
    fn layer(&self, inner: S) -> Route<S> {
        Route {
            inner,
            snapshots: self.snapshots.clone(),
            namespace: self.namespace.clone(),
        }
    }
}

// === impl Route ===

impl<S, B> tower::Service<Request<B>> for Route<S>
where
    S: tower::Service<
            Request<B>,
            Response = http::Response<super::ResponseBody>,
            Error = std::convert::Infallible,
            Future = ResponseFuture,
        >,
{
    type Response = http::Response<super::ResponseBody>;
    type Error = std::convert::Infallible;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        let snapshot = self.snapshots.borrow().clone();
        let source = req
            .extensions()
            .get::<PeerAddr>()
            .and_then(|p| snapshot.pod_by_ip(p.0.ip()).cloned());
        let routed = match route(&snapshot, &self.namespace, &req) {
            Ok(r) => r,
            Err(e) => {
                let mut rsp = error_response(&e);
                rsp.extensions_mut().insert(RouteLabels {
                    source,
                    ..RouteLabels::default()
                });
                return Box::pin(async move { Ok(rsp) });
            }
        };
        let labels = RouteLabels {
            namespace: routed.namespace.clone(),
            service: routed.service.clone(),
            backend: routed.backend.name.clone(),
            source: source.clone(),
        };
        req.extensions_mut().insert(Routed { source, ..routed });
        let fut = self.inner.call(req);
        Box::pin(async move {
            let mut rsp = fut.await?;
            rsp.extensions_mut().insert(labels);
            Ok(rsp)
        })
    }
}

/// The pure part: the request's host and headers against one snapshot.
fn route<B>(snapshot: &Snapshot, namespace: &str, req: &Request<B>) -> Result<Routed, ProxyError> {
    // HTTP/1.1 sends Host; HTTP/2 sends `:authority` (and may add Host). An explicit Host
    // header wins, so that a client may address the gateway by IP and name the Service.
    let raw_host = match req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
    {
        Some(h) => h,
        None => req.uri().authority().map_or("", |a| a.as_str()),
    };
    let host = parse_host(raw_host, namespace).map_err(|source| ProxyError::BadHost { source })?;
    let info = RequestInfo {
        method: req.method().as_str(),
        path: req.uri().path(),
        headers: req.headers(),
    };
    let decision = snapshot.decide(&host, raw_host, info, &mut rand::rng())?;
    Ok(Routed {
        namespace: host.namespace,
        service: host.service,
        backend: decision.backend.clone(),
        port_index: decision.port_index,
        source: None,
    })
}
