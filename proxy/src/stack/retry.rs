//! Retries with tower's [`tower::retry::Retry`] and [`TpsBudget`]: [`RetryPolicy`] decides per
//! request from the route's settings, and [`Retrying`] prepares a request for it (deposits in
//! the budget, buffers a small body) or sends it straight through when the route has no
//! retries or its body cannot be replayed.

use super::{AtEndpoint, BoxError, RequestBody, ResponseBody, Routed, Served, routed};
use crate::error::ProxyError;
use crate::policy::Outcome;
use http::{Request, Response};
use pin_project_lite::pin_project;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use tower::retry::budget::Budget;

/// The retry bookkeeping of one request, in its extensions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RetryState {
    /// Retries left.
    pub remaining: u32,
    /// Endpoints already tried (the balancer avoids them while others are usable).
    pub attempted: Vec<SocketAddr>,
}

/// The tower retry policy: retry what the route's settings name, while the budget lasts.
#[derive(Debug, Clone, Copy, Default)]
pub struct RetryPolicy;

/// Retries requests of routes whose TrafficPolicy has `retries`.
#[derive(Debug, Clone)]
pub struct Retrying<S> {
    retry: tower::retry::Retry<RetryPolicy, S>,
}

/// Builds [`Retrying`] services.
#[derive(Debug, Clone, Copy, Default)]
pub struct RetryLayer;

type BufferFuture = Pin<Box<dyn Future<Output = Result<RequestBody, hyper::Error>> + Send>>;

pin_project! {
    /// The future of [`Retrying`].
    #[allow(missing_docs)] // pin-project-lite cannot document enum fields.
    #[project = RetryFutureProj]
    pub enum RetryFuture<S, F, R> {
        /// Sent once, without retries.
        Direct { #[pin] fut: F },
        /// Reading a small body into memory before the first attempt (boxed: rare and large).
        Buffering {
            body: BufferFuture,
            next: Option<Box<(tower::retry::Retry<RetryPolicy, S>, http::request::Parts)>>,
        },
        /// Under tower's retry.
        Retried { #[pin] fut: R },
    }
}

impl<S> tower::Layer<S> for RetryLayer {
    type Service = Retrying<S>;
    fn layer(&self, inner: S) -> Retrying<S> {
        Retrying {
            retry: tower::retry::Retry::new(RetryPolicy, inner),
        }
    }
}

// === impl RetryPolicy ===

impl tower::retry::Policy<Request<RequestBody>, Response<ResponseBody>, BoxError> for RetryPolicy {
    type Future = std::future::Ready<()>;

    fn retry(
        &mut self,
        req: &mut Request<RequestBody>,
        result: &mut Result<Response<ResponseBody>, BoxError>,
    ) -> Option<Self::Future> {
        let backend = req.extensions().get::<Routed>()?.backend.clone();
        let settings = backend.policy.retry.as_ref()?;
        let (outcome, endpoint) = outcome(result)?;
        if !settings.retries(req.method(), outcome) {
            return None;
        }
        let state = req.extensions_mut().get_mut::<RetryState>()?;
        if state.remaining == 0 {
            return None;
        }
        let counters = &backend.runtime.counters;
        if !backend
            .runtime
            .budget
            .as_ref()
            .is_some_and(|b| b.withdraw())
        {
            counters.budget_exhausted.inc();
            tracing::debug!(backend = %backend.name, "retry budget exhausted; not retrying");
            return None;
        }
        state.remaining -= 1;
        state.attempted.extend(endpoint);
        counters.retries.inc();
        Some(std::future::ready(()))
    }

    fn clone_request(&mut self, req: &Request<RequestBody>) -> Option<Request<RequestBody>> {
        if req.extensions().get::<RetryState>()?.remaining == 0 {
            return None;
        }
        let mut copy = Request::new(req.body().try_clone()?);
        *copy.method_mut() = req.method().clone();
        *copy.uri_mut() = req.uri().clone();
        *copy.version_mut() = req.version();
        *copy.headers_mut() = req.headers().clone();
        *copy.extensions_mut() = req.extensions().clone();
        Some(copy)
    }
}

/// What an attempt came to, and the endpoint that produced it; `None` when it succeeded.
fn outcome(
    result: &Result<Response<ResponseBody>, BoxError>,
) -> Option<(Outcome, Option<SocketAddr>)> {
    match result {
        Ok(rsp) if rsp.status().is_server_error() => Some((
            Outcome::Status(rsp.status()),
            rsp.extensions().get::<Served>().map(|s| s.addr),
        )),
        Ok(_) => None,
        Err(e) => {
            let at = e.downcast_ref::<AtEndpoint>()?;
            let outcome = match &at.error {
                ProxyError::Connect { .. } => Outcome::ConnectFailure,
                ProxyError::Upstream { .. } => Outcome::UpstreamFailure,
                ProxyError::PerTryTimeout { .. } => Outcome::PerTryTimeout,
                _ => return None,
            };
            Some((outcome, Some(at.addr)))
        }
    }
}

// === impl Retrying ===

impl<S> tower::Service<Request<RequestBody>> for Retrying<S>
where
    S: tower::Service<Request<RequestBody>, Response = Response<ResponseBody>, Error = BoxError>
        + Clone
        + Send
        + 'static,
{
    type Response = Response<ResponseBody>;
    type Error = BoxError;
    type Future = RetryFuture<
        S,
        S::Future,
        tower::retry::future::ResponseFuture<RetryPolicy, S, Request<RequestBody>>,
    >;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.retry.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<RequestBody>) -> Self::Future {
        let attempts = match routed(&req) {
            Ok(r) => r.backend.policy.retry.as_ref().map(|settings| {
                if let Some(budget) = &r.backend.runtime.budget {
                    budget.deposit();
                }
                settings.attempts
            }),
            Err(_) => None,
        };
        let Some(attempts) = attempts.filter(|_| req.body().fits_retry_buffer()) else {
            return RetryFuture::Direct {
                fut: self.retry.get_mut().call(req),
            };
        };
        req.extensions_mut().insert(RetryState {
            remaining: attempts,
            attempted: Vec::new(),
        });
        if req.body().try_clone().is_some() {
            return RetryFuture::Retried {
                fut: self.retry.call(req),
            };
        }
        // Take the service that was polled ready; leave a clone in its place.
        let clone = self.retry.clone();
        let ready = std::mem::replace(&mut self.retry, clone);
        let (parts, body) = req.into_parts();
        RetryFuture::Buffering {
            body: Box::pin(body.buffer()),
            next: Some(Box::new((ready, parts))),
        }
    }
}

impl<S, F, R> Future for RetryFuture<S, F, R>
where
    S: tower::Service<Request<RequestBody>, Response = Response<ResponseBody>, Error = BoxError>
        + Clone,
    F: Future<Output = Result<Response<ResponseBody>, BoxError>>,
    R: Future<Output = Result<Response<ResponseBody>, BoxError>>,
    tower::retry::Retry<RetryPolicy, S>: tower::Service<
            Request<RequestBody>,
            Response = Response<ResponseBody>,
            Error = BoxError,
            Future = R,
        >,
{
    type Output = Result<Response<ResponseBody>, BoxError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        loop {
            match self.as_mut().project() {
                RetryFutureProj::Direct { fut } => return fut.poll(cx),
                RetryFutureProj::Retried { fut } => return fut.poll(cx),
                RetryFutureProj::Buffering { body, next } => {
                    let body = match std::task::ready!(body.as_mut().poll(cx)) {
                        Ok(body) => body,
                        Err(source) => {
                            return Poll::Ready(Err(ProxyError::RequestBody { source }.into()));
                        }
                    };
                    let Some(boxed) = next.take() else {
                        return Poll::Ready(Err(
                            "weir-proxy: a buffered body was taken twice".into()
                        ));
                    };
                    let (mut retry, parts) = *boxed;
                    let fut = tower::Service::call(&mut retry, Request::from_parts(parts, body));
                    self.set(RetryFuture::Retried { fut });
                }
            }
        }
    }
}
