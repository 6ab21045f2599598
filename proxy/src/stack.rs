//! The data path as tower layers, composed in [`new_stack`] (outermost first):
//!
//! ```text
//!  Route ─► Authorize ─► Deadline ─► Faults ─► Retry ─► Balance ─► PerTryTimeout ─► Forward
//!  edge:     403s         timeout     delay/   tower     endpoint,  timeout per       per-endpoint
//!  routing,               → 504       abort    Retry +   breaker,   attempt           h1 pool
//!  shedding,                                   budget    EWMA
//!  errors→responses, metrics
//! ```
//!
//! Every layer below [`Route`] is generic over its inner service and fails with an error
//! ([`BoxError`], usually a [`ProxyError`]); [`Route`] is the one place that turns errors into
//! responses and records the request. Per-route settings travel with the request in the
//! [`Routed`] extension that [`Route`] sets (as linkerd passes its stream timeouts), so one
//! stack serves every route and nothing is looked up by name below the router.

mod authorize;
mod balance;
mod body;
mod deadline;
mod faults;
mod forward;
mod retry;
mod route;

pub use authorize::{Authorize, AuthorizeLayer};
pub use balance::{AtEndpoint, Balance, BalanceLayer, Served};
pub use body::{MAX_RETRY_BODY, RequestBody};
pub use deadline::{Deadline, DeadlineLayer, PerTryTimeout, PerTryTimeoutLayer};
pub use faults::{Faults, FaultsLayer};
pub use forward::{Forward, ForwardFuture, Pool, Upstream, UpstreamBody};
pub use retry::{RetryLayer, RetryPolicy, RetryState, Retrying};
pub use route::{Route, RouteLayer};

use crate::app::DefaultPolicy;
use crate::error::ProxyError;
use crate::snapshot::{PodMeta, ServiceTarget, Snapshot};
use bytes::Bytes;
use http::{Response, StatusCode, header};
use http_body_util::{Either, Full};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// The error type of the layers below [`Route`].
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The response body: streamed from the endpoint, or a small body the proxy wrote.
pub type ResponseBody = Either<UpstreamBody, Full<Bytes>>;

/// Where the router sent a request, and who sent it; read by the layers below it.
#[derive(Debug, Clone)]
pub struct Routed {
    /// The snapshot the request was routed with.
    pub snapshot: Arc<Snapshot>,
    /// The chosen backend, bound to this route (policy, endpoints, metric handles).
    pub backend: Arc<ServiceTarget>,
    /// The index of the chosen port in `backend.ports`.
    pub port_index: usize,
    /// The client's Pod, when its IP is known.
    pub source: Option<Arc<PodMeta>>,
    /// The client's address.
    pub peer: Option<SocketAddr>,
}

/// Marks a response the proxy wrote because of an error; the `kind` metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErrorKind(pub &'static str);

/// The settings of the stack that are not per route.
#[derive(Debug, Clone)]
pub struct StackConfig {
    /// Bare `svc` hosts are in this namespace.
    pub namespace: String,
    /// What happens to a request that no TrafficTarget governs.
    pub default_policy: DefaultPolicy,
    /// The response timeout of routes whose TrafficPolicy sets none.
    pub default_timeout: Duration,
    /// The endpoint choice of routes whose TrafficPolicy sets none.
    pub load_balancer: crate::balance::Strategy,
    /// Requests in flight at once; beyond it, requests are shed with a 503.
    pub max_in_flight: usize,
}

impl Default for StackConfig {
    fn default() -> Self {
        Self {
            namespace: "default".into(),
            default_policy: DefaultPolicy::Deny,
            default_timeout: Duration::from_secs(15),
            load_balancer: crate::balance::Strategy::P2cEwma,
            max_in_flight: 10_000,
        }
    }
}

// === impl Routed ===

impl Routed {
    /// The chosen port.
    pub fn port(&self) -> Option<&crate::snapshot::PortEndpoints> {
        self.backend.ports.get(self.port_index)
    }
}

pin_project_lite::pin_project! {
    /// A layer's future: failed before calling inward, or the inner future with its error boxed.
    #[allow(missing_docs)] // pin-project-lite cannot document enum fields.
    #[project = InwardProj]
    pub enum Inward<F> {
        /// Failed without calling inward.
        Failed { error: Option<BoxError> },
        /// Waiting for the inner service.
        Called { #[pin] fut: F },
    }
}

// === impl Inward ===

impl<F> Inward<F> {
    /// A future that fails with `error`.
    pub fn failed(error: impl Into<BoxError>) -> Self {
        Self::Failed {
            error: Some(error.into()),
        }
    }
}

impl<F, T, E> std::future::Future for Inward<F>
where
    F: std::future::Future<Output = Result<T, E>>,
    E: Into<BoxError>,
{
    type Output = Result<T, BoxError>;

    fn poll(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        match self.project() {
            InwardProj::Failed { error } => std::task::Poll::Ready(Err(error
                .take()
                .unwrap_or_else(|| "weir-proxy: a failed future was polled twice".into()))),
            InwardProj::Called { fut } => fut.poll(cx).map_err(Into::into),
        }
    }
}

/// The [`Routed`] extension of a request, or the error that it is missing.
pub fn routed<B>(req: &http::Request<B>) -> Result<&Routed, ProxyError> {
    req.extensions()
        .get::<Routed>()
        .ok_or_else(|| ProxyError::Internal {
            detail: "the request reached a layer below the router unrouted".into(),
        })
}

/// Builds the response for a proxy error: its status, a one-line text body, and [`ErrorKind`].
pub fn error_response(err: &ProxyError) -> Response<ResponseBody> {
    tracing::debug!(error = %err.body().trim_end(), "answering with an error");
    text_response(err.status(), err.body(), err.metric_label())
}

/// A plain-text response marked with an [`ErrorKind`].
pub fn text_response(
    status: StatusCode,
    body: String,
    kind: &'static str,
) -> Response<ResponseBody> {
    let mut rsp = Response::new(Either::Right(Full::new(Bytes::from(body))));
    *rsp.status_mut() = status;
    rsp.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    rsp.extensions_mut().insert(ErrorKind(kind));
    rsp
}

/// The layers below the router, over `S`.
pub type Inner<S> = Authorize<Deadline<Faults<Retrying<Balance<PerTryTimeout<S>>>>>>;

/// The data-path stack over `inner` (the [`Forward`] client, or a stand-in in tests).
pub fn new_stack<S>(
    config: &StackConfig,
    snapshots: tokio::sync::watch::Receiver<Arc<Snapshot>>,
    metrics: Arc<crate::metrics::Metrics>,
    inner: S,
) -> Route<Inner<S>>
where
    S: tower::Service<http::Request<RequestBody>, Response = Response<ResponseBody>>
        + Clone
        + Send
        + 'static,
    S::Error: Into<BoxError>,
    S::Future: Send + 'static,
{
    tower::ServiceBuilder::new()
        .layer(RouteLayer::new(
            snapshots,
            &config.namespace,
            metrics,
            config.max_in_flight.max(1),
        ))
        .layer(AuthorizeLayer::new(config.default_policy))
        .layer(DeadlineLayer::new(config.default_timeout))
        .layer(FaultsLayer)
        .layer(RetryLayer)
        .layer(BalanceLayer::new(config.load_balancer))
        .layer(PerTryTimeoutLayer)
        .service(inner)
}

#[cfg(test)]
mod tests;
