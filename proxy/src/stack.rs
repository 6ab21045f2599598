//! The data path as tower layers, composed in [`new_stack`]:
//!
//! ```text
//!  Observe ─► Route ─► [access control, retries, timeouts: later] ─► Balance ─► Forward
//!  metrics    host→backend (Routed)                                   endpoint   pooled client
//! ```
//!
//! Each layer answers failures itself with a clear response (the service error is
//! `Infallible`) and leaves what it learnt in extensions: [`Routed`] and [`Endpoint`] on the
//! request for the layers below, [`RouteLabels`] and [`ErrorKind`] on the response for
//! [`Observe`].

mod balance;
mod forward;
mod observe;
mod route;

pub use balance::{Balance, BalanceLayer};
pub use forward::{Forward, HttpClient, new_client};
pub use observe::{Observe, ObserveLayer};
pub use route::{Route, RouteLayer};

use crate::error::ProxyError;
use crate::snapshot::{PodMeta, ServiceTarget};
use bytes::Bytes;
use http::{Response, StatusCode, header};
use http_body_util::{Either, Full};
use hyper::body::Incoming;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

pub use crate::snapshot::Endpoint;

/// The response body: streamed from the endpoint, or a small body the proxy wrote.
pub type ResponseBody = Either<Incoming, Full<Bytes>>;

/// The future every layer returns.
pub type ResponseFuture =
    Pin<Box<dyn Future<Output = Result<Response<ResponseBody>, Infallible>> + Send>>;

/// The client's address, put on each request by the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerAddr(pub SocketAddr);

/// Where the router sent a request; read by the layers below it.
#[derive(Debug, Clone)]
pub struct Routed {
    /// The root Service's namespace.
    pub namespace: String,
    /// The root Service's name.
    pub service: String,
    /// The chosen backend.
    pub backend: Arc<ServiceTarget>,
    /// The index of the chosen port in `backend.ports`.
    pub port_index: usize,
    /// The client's Pod, when its IP is known.
    pub source: Option<Arc<PodMeta>>,
}

/// The edge labels the router learnt; on the response, for [`Observe`].
#[derive(Debug, Clone, Default)]
pub struct RouteLabels {
    /// The root Service's namespace.
    pub namespace: String,
    /// The root Service.
    pub service: String,
    /// The backend Service.
    pub backend: String,
    /// The client's Pod, when known.
    pub source: Option<Arc<PodMeta>>,
}

/// Marks a response the proxy wrote because of an error; the `kind` metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErrorKind(pub &'static str);

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

/// The whole data-path stack over a pooled client.
pub fn new_stack<B>(
    namespace: &str,
    snapshots: tokio::sync::watch::Receiver<Arc<crate::snapshot::Snapshot>>,
    balancer: Arc<crate::balance::Balancer>,
    metrics: Arc<crate::metrics::Metrics>,
    client: HttpClient<B>,
) -> Observe<Route<Balance<Forward<B>>>>
where
    B: hyper::body::Body + Send + Unpin + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    tower::ServiceBuilder::new()
        .layer(ObserveLayer::new(metrics))
        .layer(RouteLayer::new(snapshots, namespace))
        // Access control and resilience layers go here.
        .layer(BalanceLayer::new(balancer))
        .service(Forward::new(client))
}

#[cfg(test)]
mod tests;
