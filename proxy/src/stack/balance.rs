//! Choosing the endpoint of the routed backend: the route's strategy over the endpoints the
//! circuit breaker admits (and that this request has not tried yet); then feeding the
//! result back to the endpoint's peak-EWMA and breaker.

use super::{BoxError, RequestBody, ResponseBody, RetryState, routed};
use crate::balance::{Strategy, choose};
use crate::breaker::{Admission, BreakerConfig};
use crate::error::ProxyError;
use crate::metrics::EdgeSet;
use crate::snapshot::{Endpoint, PortEndpoints, ServiceTarget};
use crate::state::EndpointState;
use http::{Request, Response};
use pin_project_lite::pin_project;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};
use tokio::time::Instant;

/// Picks an endpoint of the routed backend for each attempt.
#[derive(Debug, Clone)]
pub struct Balance<S> {
    inner: S,
    default: Strategy,
}

/// Builds [`Balance`] services.
#[derive(Debug, Clone, Copy)]
pub struct BalanceLayer {
    default: Strategy,
}

/// On a response: the endpoint that produced it, and its series.
#[derive(Debug, Clone)]
pub struct Served {
    /// The endpoint.
    pub addr: SocketAddr,
    /// The series of the endpoint on this route.
    pub edges: Arc<EdgeSet>,
}

/// An attempt that failed at an endpoint.
#[derive(Debug)]
pub struct AtEndpoint {
    /// The endpoint.
    pub addr: SocketAddr,
    /// The series of the endpoint on this route.
    pub edges: Arc<EdgeSet>,
    /// What went wrong.
    pub error: ProxyError,
}

/// Marks a request as in flight on an endpoint until it is answered or dropped, so that a
/// dropped response future never leaks the endpoint's pending count.
#[derive(Debug)]
struct InFlight {
    state: Arc<EndpointState>,
    start: Instant,
    done: bool,
}

/// What the response future needs once the endpoint answers.
#[derive(Debug)]
struct Attempt {
    in_flight: InFlight,
    edges: Arc<EdgeSet>,
    backend: Arc<ServiceTarget>,
    port_index: usize,
    probe: bool,
}

pin_project! {
    /// The future of [`Balance`].
    pub struct BalanceFuture<F> {
        #[pin]
        fut: Option<F>,
        attempt: Option<Attempt>,
        error: Option<BoxError>,
    }
}

// === impl BalanceLayer ===

impl BalanceLayer {
    /// A layer using `default` where the route's policy names no strategy.
    pub fn new(default: Strategy) -> Self {
        Self { default }
    }
}

impl<S> tower::Layer<S> for BalanceLayer {
    type Service = Balance<S>;
    fn layer(&self, inner: S) -> Balance<S> {
        Balance {
            inner,
            default: self.default,
        }
    }
}

// === impl AtEndpoint ===

impl std::fmt::Display for AtEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.error.fmt(f)
    }
}

impl std::error::Error for AtEndpoint {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        std::error::Error::source(&self.error)
    }
}

// === impl InFlight ===

impl InFlight {
    fn finish(&mut self, now: Instant) {
        self.done = true;
        self.state
            .observe(now.saturating_duration_since(self.start), now);
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if !self.done {
            self.state.cancel();
        }
    }
}

// === impl Balance ===

impl<S> tower::Service<Request<RequestBody>> for Balance<S>
where
    S: tower::Service<Request<RequestBody>, Response = Response<ResponseBody>>,
    S::Error: Into<BoxError>,
{
    type Response = Response<ResponseBody>;
    type Error = BoxError;
    type Future = BalanceFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, mut req: Request<RequestBody>) -> Self::Future {
        let failed = |e: ProxyError| BalanceFuture {
            fut: None,
            attempt: None,
            error: Some(e.into()),
        };
        let (backend, port_index) = match routed(&req) {
            Ok(r) => (r.backend.clone(), r.port_index),
            Err(e) => return failed(e),
        };
        let Some(port) = backend.ports.get(port_index) else {
            return failed(ProxyError::Internal {
                detail: "the routed port is missing".into(),
            });
        };
        let now = Instant::now();
        let attempted = req
            .extensions()
            .get::<RetryState>()
            .map_or(&[][..], |s| &s.attempted[..]);
        let strategy = backend.policy.load_balancer.unwrap_or(self.default);
        let breaker = backend.policy.breaker.as_ref();
        let Some((endpoint, probe)) = pick(&backend, port, strategy, breaker, attempted, now)
        else {
            let ejected = port
                .endpoints
                .iter()
                .filter(|e| e.state.is_ejected())
                .count();
            return failed(ProxyError::NoUsableEndpoint {
                namespace: backend.namespace.clone(),
                service: backend.name.clone(),
                detail: format!(
                    "{ejected} of {} ejected by the circuit breaker",
                    port.endpoints.len()
                ),
            });
        };
        req.extensions_mut().insert(endpoint.state.clone());
        endpoint.state.start();
        let attempt = Attempt {
            in_flight: InFlight {
                state: endpoint.state.clone(),
                start: now,
                done: false,
            },
            edges: endpoint.edges.clone(),
            backend: backend.clone(),
            port_index,
            probe,
        };
        BalanceFuture {
            fut: Some(self.inner.call(req)),
            attempt: Some(attempt),
            error: None,
        }
    }
}

/// Chooses an endpoint the breaker admits, preferring those this request has not tried.
fn pick<'p>(
    backend: &ServiceTarget,
    port: &'p PortEndpoints,
    strategy: Strategy,
    breaker: Option<&BreakerConfig>,
    attempted: &[SocketAddr],
    now: Instant,
) -> Option<(&'p Endpoint, bool)> {
    let eps = &port.endpoints;
    let admits = |e: &Endpoint| breaker.is_none_or(|cfg| e.state.usable(now, cfg));
    let mut rng = rand::rng();
    // A few rounds: another request may claim a probe between `usable` and `admit`.
    for _ in 0..3 {
        let cursor = match strategy {
            Strategy::RoundRobin => backend.runtime.cursor.fetch_add(1, Ordering::Relaxed),
            _ => 0,
        };
        let fresh = |i: usize| admits(&eps[i]) && !attempted.contains(&eps[i].addr);
        let load = |i: usize| eps[i].state.load(now);
        let i = choose(strategy, eps.len(), cursor, &mut rng, fresh, load).or_else(|| {
            // Every admitted endpoint was tried: a retry may go to one of them again.
            choose(
                strategy,
                eps.len(),
                cursor,
                &mut rng,
                |i| admits(&eps[i]),
                load,
            )
        })?;
        let endpoint = &eps[i];
        match breaker.map(|cfg| endpoint.state.admit(now, cfg)) {
            None | Some(Admission::Normal) => return Some((endpoint, false)),
            Some(Admission::Probe) => return Some((endpoint, true)),
            Some(Admission::Refused) => continue,
        }
    }
    None
}

impl<F, E> Future for BalanceFuture<F>
where
    F: Future<Output = Result<Response<ResponseBody>, E>>,
    E: Into<BoxError>,
{
    type Output = Result<Response<ResponseBody>, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let Some(fut) = this.fut.as_pin_mut() else {
            return Poll::Ready(Err(this.error.take().unwrap_or_else(|| {
                "weir-proxy: a balancer future was polled twice".into()
            })));
        };
        let result = std::task::ready!(fut.poll(cx));
        let Some(mut attempt) = this.attempt.take() else {
            return Poll::Ready(Err("weir-proxy: a balancer future was polled twice".into()));
        };
        let now = Instant::now();
        attempt.in_flight.finish(now);
        let success = matches!(&result, Ok(rsp) if !rsp.status().is_server_error());
        if let Some(cfg) = &attempt.backend.policy.breaker {
            let may_eject = !success && may_eject(&attempt, cfg);
            attempt
                .in_flight
                .state
                .record(success, attempt.probe, now, cfg, || may_eject);
        }
        let addr = attempt.in_flight.state.addr;
        Poll::Ready(match result {
            Ok(mut rsp) => {
                rsp.extensions_mut().insert(Served {
                    addr,
                    edges: attempt.edges,
                });
                Ok(rsp)
            }
            Err(e) => {
                let error = match e.into().downcast::<ProxyError>() {
                    Ok(e) => *e,
                    Err(other) => ProxyError::Internal {
                        detail: crate::index::error_chain(other.as_ref()),
                    },
                };
                Err(AtEndpoint {
                    addr,
                    edges: attempt.edges,
                    error,
                }
                .into())
            }
        })
    }
}

/// Whether the breaker's floor allows ejecting one more endpoint of the attempt's port.
fn may_eject(attempt: &Attempt, cfg: &BreakerConfig) -> bool {
    let Some(port) = attempt.backend.ports.get(attempt.port_index) else {
        return false;
    };
    let me = &attempt.in_flight.state;
    let others = port
        .endpoints
        .iter()
        .filter(|e| !Arc::ptr_eq(&e.state, me) && e.state.is_ejected())
        .count();
    others < cfg.max_ejected(port.endpoints.len())
}
