//! Fault injection from the route's TrafficPolicy: a fixed delay for `delay.percent` of
//! requests, and a status instead of the endpoint's answer for `abort.percent` of them.
//! Both may hit one request (delay first). A delay counts towards the route's `timeout`.

use super::{BoxError, RequestBody, ResponseBody, routed};
use crate::policy::fires;
use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode, header};
use http_body_util::{Either, Full};
use pin_project_lite::pin_project;
use rand::Rng;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::time::Sleep;

/// Injects the route's faults.
#[derive(Debug, Clone)]
pub struct Faults<S> {
    inner: S,
}

/// Builds [`Faults`] services.
#[derive(Debug, Clone, Copy, Default)]
pub struct FaultsLayer;

pin_project! {
    /// The future of [`Faults`].
    #[allow(missing_docs)] // pin-project-lite cannot document enum fields.
    #[project = FaultFutureProj]
    pub enum FaultFuture<S, F> {
        /// Answered by the proxy (an abort, or a missing route).
        Done { result: Option<Result<Response<ResponseBody>, BoxError>> },
        /// Waiting out an injected delay; then abort or call inward (boxed: rare and large).
        Delayed { delayed: Pin<Box<Delayed<S>>> },
        /// Waiting for the inner service.
        Called { #[pin] fut: F },
    }
}

pin_project! {
    /// An injected delay, and what happens after it.
    pub struct Delayed<S> {
        #[pin]
        sleep: Sleep,
        next: Option<(S, Request<RequestBody>, Option<StatusCode>)>,
    }
}

impl<S> tower::Layer<S> for FaultsLayer {
    type Service = Faults<S>;
    fn layer(&self, inner: S) -> Faults<S> {
        Faults { inner }
    }
}

// === impl Faults ===

impl<S> tower::Service<Request<RequestBody>> for Faults<S>
where
    S: tower::Service<Request<RequestBody>, Response = Response<ResponseBody>> + Clone,
    S::Error: Into<BoxError>,
{
    type Response = Response<ResponseBody>;
    type Error = BoxError;
    type Future = FaultFuture<S, S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, req: Request<RequestBody>) -> Self::Future {
        let (delay, abort) = match routed(&req) {
            Ok(r) => {
                let policy = &r.backend.policy;
                if policy.delay.is_none() && policy.abort.is_none() {
                    return FaultFuture::Called {
                        fut: self.inner.call(req),
                    };
                }
                let mut rng = rand::rng();
                let counters = &r.backend.runtime.counters;
                let delay = policy
                    .delay
                    .filter(|d| fires(d.percent, rng.random_range(0.0..100.0)))
                    .map(|d| d.fixed);
                let abort = policy
                    .abort
                    .filter(|a| fires(a.percent, rng.random_range(0.0..100.0)))
                    .map(|a| a.status);
                if delay.is_some() {
                    counters.faults_delayed.inc();
                }
                if abort.is_some() {
                    counters.faults_aborted.inc();
                }
                (delay, abort)
            }
            Err(e) => {
                return FaultFuture::Done {
                    result: Some(Err(e.into())),
                };
            }
        };
        match (delay, abort) {
            (Some(delay), abort) => {
                // Take the service that was polled ready; leave a clone in its place.
                let clone = self.inner.clone();
                let ready = std::mem::replace(&mut self.inner, clone);
                FaultFuture::Delayed {
                    delayed: Box::pin(Delayed {
                        sleep: tokio::time::sleep(delay),
                        next: Some((ready, req, abort)),
                    }),
                }
            }
            (None, Some(status)) => FaultFuture::Done {
                result: Some(Ok(aborted(status))),
            },
            (None, None) => FaultFuture::Called {
                fut: self.inner.call(req),
            },
        }
    }
}

/// The response of an injected abort: the status, a body saying so, and `x-weir-fault`.
fn aborted(status: StatusCode) -> Response<ResponseBody> {
    let mut rsp = Response::new(Either::Right(Full::new(Bytes::from(format!(
        "weir-proxy: fault injected by a TrafficPolicy: abort with {}\n",
        status.as_u16()
    )))));
    *rsp.status_mut() = status;
    let headers = rsp.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    headers.insert("x-weir-fault", HeaderValue::from_static("abort"));
    rsp
}

impl<S, F, E> Future for FaultFuture<S, F>
where
    S: tower::Service<Request<RequestBody>, Response = Response<ResponseBody>, Future = F>,
    F: Future<Output = Result<Response<ResponseBody>, E>>,
    E: Into<BoxError>,
{
    type Output = Result<Response<ResponseBody>, BoxError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        loop {
            match self.as_mut().project() {
                FaultFutureProj::Done { result } => {
                    return Poll::Ready(result.take().unwrap_or_else(|| {
                        Err("weir-proxy: a finished fault future was polled".into())
                    }));
                }
                FaultFutureProj::Delayed { delayed } => {
                    let delayed = delayed.as_mut().project();
                    std::task::ready!(delayed.sleep.poll(cx));
                    let Some((mut svc, req, abort)) = delayed.next.take() else {
                        return Poll::Ready(Err("weir-proxy: a delay fired twice".into()));
                    };
                    let next = match abort {
                        Some(status) => FaultFuture::Done {
                            result: Some(Ok(aborted(status))),
                        },
                        None => FaultFuture::Called { fut: svc.call(req) },
                    };
                    self.set(next);
                }
                FaultFutureProj::Called { fut } => return fut.poll(cx).map_err(Into::into),
            }
        }
    }
}
