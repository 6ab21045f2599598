//! Choosing the endpoint of the routed backend, and feeding its latency back to the balancer.

use super::{ResponseFuture, Routed, text_response};
use crate::balance::Balancer;
use http::{Request, StatusCode};
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::time::Instant;

/// Picks an endpoint of the [`Routed`] backend and records its latency.
#[derive(Debug, Clone)]
pub struct Balance<S> {
    inner: S,
    balancer: Arc<Balancer>,
}

/// Builds [`Balance`] services.
#[derive(Debug, Clone)]
pub struct BalanceLayer {
    balancer: Arc<Balancer>,
}

// === impl BalanceLayer ===

impl BalanceLayer {
    /// A layer sharing `balancer`.
    pub fn new(balancer: Arc<Balancer>) -> Self {
        Self { balancer }
    }
}

impl<S> tower::Layer<S> for BalanceLayer {
    type Service = Balance<S>;
    fn layer(&self, inner: S) -> Balance<S> {
        Balance {
            inner,
            balancer: self.balancer.clone(),
        }
    }
}

// === impl Balance ===

impl<S, B> tower::Service<Request<B>> for Balance<S>
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
        let now = Instant::now();
        let endpoint = req.extensions().get::<Routed>().and_then(|r| {
            let port = r.backend.ports.get(r.port_index)?;
            let i = self
                .balancer
                .choose(&r.backend.name, &port.addrs, now, &mut rand::rng())?;
            port.endpoints.get(i).cloned()
        });
        let Some(endpoint) = endpoint else {
            let rsp = text_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                "weir-proxy: request reached the balancer unrouted\n".into(),
                "internal",
            );
            return Box::pin(async move { Ok(rsp) });
        };
        let addr = endpoint.addr;
        let meta = endpoint.meta.clone();
        req.extensions_mut().insert(endpoint);
        let fut = self.inner.call(req);
        let balancer = self.balancer.clone();
        Box::pin(async move {
            let mut rsp = fut.await?;
            let end = Instant::now();
            balancer.observe(addr, end.saturating_duration_since(now), end);
            rsp.extensions_mut().insert(meta);
            Ok(rsp)
        })
    }
}
