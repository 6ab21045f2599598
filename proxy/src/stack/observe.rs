//! Per-edge metrics: latency to response headers, status and classification.

use super::{ErrorKind, ResponseFuture, RouteLabels};
use crate::metrics::{EdgeKey, Metrics};
use crate::snapshot::EndpointMeta;
use http::Request;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::time::Instant;

/// Records every request into [`Metrics`].
#[derive(Debug, Clone)]
pub struct Observe<S> {
    inner: S,
    metrics: Arc<Metrics>,
}

/// Builds [`Observe`] services.
#[derive(Debug, Clone)]
pub struct ObserveLayer {
    metrics: Arc<Metrics>,
}

// === impl ObserveLayer ===

impl ObserveLayer {
    /// A layer recording into `metrics`.
    pub fn new(metrics: Arc<Metrics>) -> Self {
        Self { metrics }
    }
}

impl<S> tower::Layer<S> for ObserveLayer {
    type Service = Observe<S>;
    fn layer(&self, inner: S) -> Observe<S> {
        Observe {
            inner,
            metrics: self.metrics.clone(),
        }
    }
}

// === impl Observe ===

impl<S> Observe<S> {
    /// The inner service, mutably (to configure it).
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }
}

impl<S, B> tower::Service<Request<B>> for Observe<S>
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

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let start = Instant::now();
        let fut = self.inner.call(req);
        let metrics = self.metrics.clone();
        Box::pin(async move {
            let rsp = fut.await?;
            let latency = start.elapsed();
            let ext = rsp.extensions();
            let error = ext.get::<ErrorKind>().copied();
            if let Some(ErrorKind(kind)) = error {
                metrics.error(kind);
            }
            let labels = ext.get::<RouteLabels>();
            let dst = ext.get::<Arc<EndpointMeta>>();
            let unknown = || "unknown".to_string();
            let status = rsp.status();
            let key = EdgeKey {
                namespace: labels.map(|l| l.namespace.clone()).unwrap_or_default(),
                service: labels.map(|l| l.service.clone()).unwrap_or_default(),
                backend: labels.map(|l| l.backend.clone()).unwrap_or_default(),
                dst_deployment: dst.map(|d| d.deployment.clone()).unwrap_or_default(),
                dst_pod: dst.map(|d| d.pod.clone()).unwrap_or_default(),
                src_namespace: labels
                    .and_then(|l| l.source.as_ref())
                    .map_or_else(unknown, |s| s.namespace.clone()),
                src_service_account: labels
                    .and_then(|l| l.source.as_ref())
                    .map_or_else(unknown, |s| s.service_account.clone()),
                status_code: status.as_u16(),
                success: error.is_none() && !status.is_server_error(),
            };
            metrics.record(key, latency);
            Ok(rsp)
        })
    }
}
