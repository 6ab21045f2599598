//! Response timeouts, per request: [`Deadline`] bounds the whole request (retries included)
//! by the route's `timeout` (or the proxy's default), and [`PerTryTimeout`] bounds each
//! attempt by `perTryTimeout`. The durations come from the request's [`Routed`] policy, as
//! linkerd's stream timeouts come from request extensions; tower's `Timeout` takes one fixed
//! duration per service, which does not fit a stack that serves every route.

use super::{BoxError, Inward, RequestBody, ResponseBody, routed};
use crate::error::ProxyError;
use crate::snapshot::ServiceTarget;
use http::{Request, Response};
use pin_project_lite::pin_project;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::time::Sleep;

/// Answers 504 when the route's `timeout` runs out before the response headers.
#[derive(Debug, Clone)]
pub struct Deadline<S> {
    inner: S,
    default: Duration,
}

/// Builds [`Deadline`] services.
#[derive(Debug, Clone, Copy)]
pub struct DeadlineLayer {
    default: Duration,
}

/// Cuts off one attempt that runs past the route's `perTryTimeout`.
#[derive(Debug, Clone)]
pub struct PerTryTimeout<S> {
    inner: S,
}

/// Builds [`PerTryTimeout`] services.
#[derive(Debug, Clone, Copy, Default)]
pub struct PerTryTimeoutLayer;

/// Which timeout a [`Timed`] future enforces.
#[derive(Debug)]
enum Which {
    Total,
    PerTry(Option<std::net::SocketAddr>),
}

pin_project! {
    /// A future raced against a timer.
    pub struct Timed<F> {
        #[pin]
        fut: F,
        #[pin]
        sleep: Option<Sleep>,
        after: Duration,
        backend: Option<Arc<ServiceTarget>>,
        which: Which,
    }
}

// === impl DeadlineLayer ===

impl DeadlineLayer {
    /// A layer whose default timeout is `default`.
    pub fn new(default: Duration) -> Self {
        Self { default }
    }
}

impl<S> tower::Layer<S> for DeadlineLayer {
    type Service = Deadline<S>;
    fn layer(&self, inner: S) -> Deadline<S> {
        Deadline {
            inner,
            default: self.default,
        }
    }
}

impl<S> tower::Layer<S> for PerTryTimeoutLayer {
    type Service = PerTryTimeout<S>;
    fn layer(&self, inner: S) -> PerTryTimeout<S> {
        PerTryTimeout { inner }
    }
}

// === impl Deadline ===

impl<S> tower::Service<Request<RequestBody>> for Deadline<S>
where
    S: tower::Service<Request<RequestBody>, Response = Response<ResponseBody>>,
    S::Error: Into<BoxError>,
{
    type Response = Response<ResponseBody>;
    type Error = BoxError;
    type Future = Inward<Timed<S::Future>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, req: Request<RequestBody>) -> Self::Future {
        let backend = match routed(&req) {
            Ok(r) => r.backend.clone(),
            Err(e) => return Inward::failed(e),
        };
        let after = backend.policy.timeout.unwrap_or(self.default);
        Inward::Called {
            fut: Timed {
                fut: self.inner.call(req),
                sleep: Some(tokio::time::sleep(after)),
                after,
                backend: Some(backend),
                which: Which::Total,
            },
        }
    }
}

// === impl PerTryTimeout ===

impl<S> tower::Service<Request<RequestBody>> for PerTryTimeout<S>
where
    S: tower::Service<Request<RequestBody>, Response = Response<ResponseBody>>,
    S::Error: Into<BoxError>,
{
    type Response = Response<ResponseBody>;
    type Error = BoxError;
    type Future = Inward<Timed<S::Future>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, req: Request<RequestBody>) -> Self::Future {
        let timed = match routed(&req) {
            Ok(r) => r
                .backend
                .policy
                .per_try_timeout
                .map(|after| (after, r.backend.clone())),
            Err(e) => return Inward::failed(e),
        };
        let Some((after, backend)) = timed else {
            return Inward::Called {
                fut: Timed {
                    fut: self.inner.call(req),
                    sleep: None,
                    after: Duration::ZERO,
                    backend: None,
                    which: Which::Total,
                },
            };
        };
        let endpoint = req
            .extensions()
            .get::<Arc<crate::state::EndpointState>>()
            .map(|s| s.addr);
        Inward::Called {
            fut: Timed {
                fut: self.inner.call(req),
                sleep: Some(tokio::time::sleep(after)),
                after,
                backend: Some(backend),
                which: Which::PerTry(endpoint),
            },
        }
    }
}

// === impl Timed ===

impl<F, E> Future for Timed<F>
where
    F: Future<Output = Result<Response<ResponseBody>, E>>,
    E: Into<BoxError>,
{
    type Output = Result<Response<ResponseBody>, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if let Poll::Ready(result) = this.fut.poll(cx) {
            return Poll::Ready(result.map_err(Into::into));
        }
        let Some(sleep) = this.sleep.as_pin_mut() else {
            return Poll::Pending;
        };
        std::task::ready!(sleep.poll(cx));
        let after = *this.after;
        let Some(backend) = this.backend.as_ref() else {
            return Poll::Ready(Err("weir-proxy: a timer without a backend fired".into()));
        };
        let counters = &backend.runtime.counters;
        let error = match this.which {
            Which::Total => {
                counters.timeouts.inc();
                ProxyError::Timeout {
                    namespace: backend.namespace.clone(),
                    service: backend.name.clone(),
                    after,
                }
            }
            Which::PerTry(endpoint) => {
                counters.per_try_timeouts.inc();
                ProxyError::PerTryTimeout {
                    endpoint: endpoint
                        .unwrap_or_else(|| std::net::SocketAddr::from(([0, 0, 0, 0], 0))),
                    service: backend.name.clone(),
                    after,
                }
            }
        };
        Poll::Ready(Err(error.into()))
    }
}
