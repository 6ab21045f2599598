//! The edge of the stack: routes each request against the current snapshot, turns every
//! error from below into a response, and records the request on its edge.

use super::{
    AtEndpoint, BoxError, ErrorKind, RequestBody, ResponseBody, Routed, Served, error_response,
};
use crate::error::ProxyError;
use crate::host::parse_host;
use crate::metrics::{EdgeSet, Metrics, SrcLabels};
use crate::snapshot::{RequestInfo, ServiceTarget, Snapshot};
use http::{Request, Response, header};
use pin_project_lite::pin_project;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use tokio::sync::watch;
use tokio::time::Instant;

/// Routes each request by its host, reading the snapshot current at that moment.
#[derive(Debug, Clone)]
pub struct Route<S> {
    inner: S,
    snapshots: watch::Receiver<Arc<Snapshot>>,
    namespace: Arc<str>,
    metrics: Arc<Metrics>,
    peer: Option<SocketAddr>,
    in_flight: Arc<AtomicUsize>,
    max_in_flight: usize,
}

/// Builds [`Route`] services.
#[derive(Debug, Clone)]
pub struct RouteLayer {
    snapshots: watch::Receiver<Arc<Snapshot>>,
    namespace: Arc<str>,
    metrics: Arc<Metrics>,
    in_flight: Arc<AtomicUsize>,
    max_in_flight: usize,
}

/// What the response future needs to record the request.
struct Record {
    start: Instant,
    metrics: Arc<Metrics>,
    source: Arc<SrcLabels>,
    backend: Arc<ServiceTarget>,
    _slot: InFlight,
}

/// One request in flight, counted until its response future is done or dropped.
struct InFlight(Arc<AtomicUsize>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

pin_project! {
    /// The future of [`Route`].
    #[allow(missing_docs)] // pin-project-lite cannot document enum fields.
    #[project = RouteFutureProj]
    pub enum RouteFuture<F> {
        /// Answered without calling inward.
        Done { rsp: Option<Response<ResponseBody>> },
        /// Waiting for the layers below.
        Waiting { #[pin] fut: F, record: Option<Record> },
    }
}

// === impl RouteLayer ===

impl RouteLayer {
    /// A layer reading snapshots from `snapshots`; bare `svc` hosts are in `namespace`;
    /// beyond `max_in_flight` requests at once, a request is answered 503 at once.
    pub fn new(
        snapshots: watch::Receiver<Arc<Snapshot>>,
        namespace: &str,
        metrics: Arc<Metrics>,
        max_in_flight: usize,
    ) -> Self {
        Self {
            snapshots,
            namespace: Arc::from(namespace),
            metrics,
            in_flight: Arc::new(AtomicUsize::new(0)),
            max_in_flight,
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
            metrics: self.metrics.clone(),
            peer: None,
            in_flight: self.in_flight.clone(),
            max_in_flight: self.max_in_flight,
        }
    }
}

// === impl Route ===

impl<S> Route<S> {
    /// The same stack for one connection from `peer` (the client's identity comes from it).
    pub fn with_peer(mut self, peer: SocketAddr) -> Self {
        self.peer = Some(peer);
        self
    }
}

impl<S, B> tower::Service<Request<B>> for Route<S>
where
    S: tower::Service<Request<RequestBody>, Response = Response<ResponseBody>>,
    S::Error: Into<BoxError>,
    RequestBody: From<B>,
{
    type Response = Response<ResponseBody>;
    type Error = std::convert::Infallible;
    type Future = RouteFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // The layers below are always ready; an error from one is answered per request.
        match self.inner.poll_ready(cx) {
            Poll::Ready(_) => Poll::Ready(Ok(())),
            Poll::Pending => Poll::Pending,
        }
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let start = Instant::now();
        let snapshot = self.snapshots.borrow().clone();
        let source = self.peer.and_then(|p| snapshot.pod_by_ip(p.ip())).cloned();
        let src = source
            .as_ref()
            .map_or_else(|| snapshot.unknown_source.clone(), |s| s.labels.clone());
        // Shed load beyond the cap at once (a counter, not a semaphore: nothing waits).
        let slot = InFlight(self.in_flight.clone());
        let decided = if self.in_flight.fetch_add(1, Ordering::Relaxed) >= self.max_in_flight {
            Err((ProxyError::Overloaded, None))
        } else {
            decide(&snapshot, &self.namespace, &req)
        };
        let (backend, port_index) = match decided {
            Ok(d) => d,
            Err((error, backend)) => {
                let edges = backend
                    .as_ref()
                    .map_or(&snapshot.unrouted, |b| &b.runtime.edges);
                let rsp = error_response(&error);
                record(&self.metrics, edges, &src, start, &rsp);
                return RouteFuture::Done { rsp: Some(rsp) };
            }
        };
        let mut req = req.map(RequestBody::from);
        // HTTP/2 names the host in `:authority`; the endpoint gets it as `Host` (HTTP/1.1).
        if !req.headers().contains_key(header::HOST)
            && let Some(value) = req
                .uri()
                .authority()
                .and_then(|a| header::HeaderValue::from_str(a.as_str()).ok())
        {
            req.headers_mut().insert(header::HOST, value);
        }
        req.extensions_mut().insert(Routed {
            snapshot: snapshot.clone(),
            backend: backend.clone(),
            port_index,
            source,
            peer: self.peer,
        });
        RouteFuture::Waiting {
            fut: self.inner.call(req),
            record: Some(Record {
                start,
                metrics: self.metrics.clone(),
                source: src,
                backend,
                _slot: slot,
            }),
        }
    }
}

impl<F, E> Future for RouteFuture<F>
where
    F: Future<Output = Result<Response<ResponseBody>, E>>,
    E: Into<BoxError>,
{
    type Output = Result<Response<ResponseBody>, std::convert::Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            RouteFutureProj::Done { rsp } => match rsp.take() {
                Some(rsp) => Poll::Ready(Ok(rsp)),
                None => Poll::Pending,
            },
            RouteFutureProj::Waiting { fut, record: ctx } => {
                let result = std::task::ready!(fut.poll(cx));
                let Some(ctx) = ctx.take() else {
                    return Poll::Pending;
                };
                let rsp = match result {
                    Ok(rsp) => {
                        let edges = rsp
                            .extensions()
                            .get::<Served>()
                            .map_or(&ctx.backend.runtime.edges, |s| &s.edges);
                        record(&ctx.metrics, edges, &ctx.source, ctx.start, &rsp);
                        rsp
                    }
                    Err(e) => {
                        let e: BoxError = e.into();
                        let (rsp, edges) = respond_to_error(&e, &ctx.backend);
                        record(&ctx.metrics, edges, &ctx.source, ctx.start, &rsp);
                        rsp
                    }
                };
                Poll::Ready(Ok(rsp))
            }
        }
    }
}

/// The one place where errors become responses.
fn respond_to_error<'a>(
    e: &'a BoxError,
    backend: &'a ServiceTarget,
) -> (Response<ResponseBody>, &'a Arc<EdgeSet>) {
    if let Some(at) = e.downcast_ref::<AtEndpoint>() {
        return (error_response(&at.error), &at.edges);
    }
    let rsp = if let Some(err) = e.downcast_ref::<ProxyError>() {
        error_response(err)
    } else {
        error_response(&ProxyError::Internal {
            detail: crate::index::error_chain(e.as_ref()),
        })
    };
    (rsp, &backend.runtime.edges)
}

/// Records a finished request: its edge series, and the error kind when the proxy answered.
fn record(
    metrics: &Metrics,
    edges: &EdgeSet,
    src: &Arc<SrcLabels>,
    start: Instant,
    rsp: &Response<ResponseBody>,
) {
    let error = rsp.extensions().get::<ErrorKind>();
    if let Some(ErrorKind(kind)) = error {
        metrics.error(kind);
    }
    let status = rsp.status();
    let success = error.is_none() && !status.is_server_error();
    edges.record(src, status.as_u16(), success, start.elapsed());
}

type Decided = (Arc<ServiceTarget>, usize);

/// The pure part: the request's host and headers against one snapshot.
fn decide<B>(
    snapshot: &Snapshot,
    namespace: &str,
    req: &Request<B>,
) -> Result<Decided, (ProxyError, Option<Arc<ServiceTarget>>)> {
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
    let host =
        parse_host(raw_host, namespace).map_err(|source| (ProxyError::BadHost { source }, None))?;
    let info = RequestInfo {
        method: req.method().as_str(),
        path: req.uri().path(),
        headers: req.headers(),
    };
    match snapshot.decide(&host, raw_host, info, &mut rand::rng()) {
        Ok(d) => Ok((d.backend.clone(), d.port_index)),
        Err(u) => Err((u.error, u.backend.cloned())),
    }
}
