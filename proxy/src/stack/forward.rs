//! Sending the request to the chosen endpoint over a keep-alive connection from its
//! [`Pool`]; response bodies stream, and drive their connection until they end.

mod pool;

pub use pool::{Pool, Upstream};

use super::{RequestBody, ResponseBody, Routed};
use crate::error::ProxyError;
use crate::snapshot::ServiceTarget;
use crate::state::EndpointState;
use bytes::Bytes;
use http::{HeaderMap, HeaderName, Request, Response, Uri, Version, header};
use http_body_util::Either;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

/// Forwards a request to the endpoint the balancer put in its extensions.
#[derive(Debug, Clone, Copy)]
pub struct Forward {
    connect_timeout: Duration,
}

/// The future of [`Forward`].
pub type ForwardFuture =
    Pin<Box<dyn Future<Output = Result<Response<ResponseBody>, ProxyError>> + Send>>;

/// A response body from an endpoint; it drives its connection, and returns it to the pool
/// once it has ended (a body dropped before its end closes the connection).
pub struct UpstreamBody {
    inner: Incoming,
    up: Option<Box<Upstream>>,
    state: Arc<EndpointState>,
}

// === impl Forward ===

impl Forward {
    /// A forwarder that gives up connecting after `connect_timeout`.
    pub fn new(connect_timeout: Duration) -> Self {
        Self { connect_timeout }
    }
}

impl tower::Service<Request<RequestBody>> for Forward {
    type Response = Response<ResponseBody>;
    type Error = ProxyError;
    type Future = ForwardFuture;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<RequestBody>) -> Self::Future {
        let state = req.extensions().get::<Arc<EndpointState>>().cloned();
        let backend = req.extensions().get::<Routed>().map(|r| r.backend.clone());
        let (Some(state), Some(backend)) = (state, backend) else {
            return Box::pin(std::future::ready(Err(ProxyError::Internal {
                detail: "the request reached the forwarder without an endpoint".into(),
            })));
        };
        Box::pin(forward(state, backend, prepare(req), self.connect_timeout))
    }
}

/// Sends on an idle connection (or a new one), and on a new one again when a reused
/// connection closed before the request went out.
async fn forward(
    state: Arc<EndpointState>,
    backend: Arc<ServiceTarget>,
    req: Request<RequestBody>,
    timeout: Duration,
) -> Result<Response<ResponseBody>, ProxyError> {
    let with_service = |e: ProxyError| match e {
        ProxyError::Connect {
            endpoint, source, ..
        } => ProxyError::Connect {
            endpoint,
            service: backend.name.clone(),
            source,
        },
        other => other,
    };
    let idle = std::future::poll_fn(|cx| Poll::Ready(state.pool.checkout(cx))).await;
    let mut up = match idle {
        Some(up) => up,
        None => Upstream::connect(state.addr, timeout)
            .await
            .map_err(with_service)?,
    };
    let mut req = req;
    loop {
        let sent = up.send(req);
        let mut sent = std::pin::pin!(sent);
        let result = std::future::poll_fn(|cx| {
            up.poll_conn(cx);
            sent.as_mut().poll(cx)
        })
        .await;
        match result {
            Ok(rsp) => {
                let (parts, inner) = rsp.into_parts();
                let mut parts = parts;
                strip_hop_by_hop(&mut parts.headers);
                let body = if inner.is_end_stream() {
                    // Nothing to stream: the connection is free now.
                    std::future::poll_fn(|cx| Poll::Ready(up.poll_conn(cx))).await;
                    state.pool.checkin(up);
                    UpstreamBody {
                        inner,
                        up: None,
                        state,
                    }
                } else {
                    UpstreamBody {
                        inner,
                        up: Some(up),
                        state,
                    }
                };
                return Ok(Response::from_parts(parts, Either::Left(body)));
            }
            Err(mut e) => match e.take_message() {
                Some(unsent) if up.reused => {
                    // The idle connection went away before the request was written.
                    req = unsent;
                    up = Upstream::connect(state.addr, timeout)
                        .await
                        .map_err(with_service)?;
                }
                _ => {
                    return Err(ProxyError::Upstream {
                        endpoint: state.addr,
                        service: backend.name.clone(),
                        source: e.into_error().into(),
                    });
                }
            },
        }
    }
}

/// Makes the request an HTTP/1.1 request in origin form (the router has put the client's
/// host in `Host`), without connection-scoped headers.
fn prepare(mut req: Request<RequestBody>) -> Request<RequestBody> {
    *req.version_mut() = Version::HTTP_11;
    if req.uri().authority().is_some() {
        let origin = req
            .uri()
            .path_and_query()
            .map_or_else(|| Uri::from_static("/"), |pq| Uri::from(pq.clone()));
        *req.uri_mut() = origin;
    }
    strip_hop_by_hop(req.headers_mut());
    req
}

/// The headers that belong to one connection, which a proxy must not pass on.
const HOP_BY_HOP: [&str; 9] = [
    "connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "keep-alive",
    "proxy-connection",
];

/// Removes the connection-scoped headers a proxy must not pass on (including those that
/// `Connection` names); looks only when there is something to remove.
fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let present = headers.keys().any(|k| HOP_BY_HOP.contains(&k.as_str()));
    if !present {
        return;
    }
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|n| !n.eq_ignore_ascii_case("close") && !n.eq_ignore_ascii_case("keep-alive"))
        .filter_map(|n| HeaderName::from_bytes(n.as_bytes()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in HOP_BY_HOP {
        headers.remove(name);
    }
}

// === impl UpstreamBody ===

impl std::fmt::Debug for UpstreamBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamBody")
            .field("endpoint", &self.state.addr)
            .field("connection", &self.up)
            .finish()
    }
}

impl UpstreamBody {
    fn release(&mut self, cx: &mut Context<'_>) {
        if let Some(mut up) = self.up.take() {
            up.poll_conn(cx);
            self.state.pool.checkin(up);
        }
    }
}

impl Body for UpstreamBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = &mut *self;
        if let Some(up) = &mut this.up
            && up.poll_conn(cx)
        {
            // The connection ended; whatever it read is still in the body.
            this.up = None;
        }
        let frame = Pin::new(&mut this.inner).poll_frame(cx);
        match &frame {
            Poll::Ready(None) => this.release(cx),
            Poll::Ready(Some(Ok(_))) if this.inner.is_end_stream() => this.release(cx),
            Poll::Ready(Some(Err(_))) => this.up = None,
            _ => {}
        }
        frame
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hop_by_hop_headers_are_removed_including_those_named_by_connection() {
        let mut h = HeaderMap::new();
        h.insert(header::CONNECTION, "close, x-private".parse().unwrap());
        h.insert("x-private", "1".parse().unwrap());
        h.insert("keep-alive", "timeout=5".parse().unwrap());
        h.insert(header::TRANSFER_ENCODING, "chunked".parse().unwrap());
        h.insert("x-kept", "1".parse().unwrap());
        strip_hop_by_hop(&mut h);
        assert_eq!(
            h.keys().map(|k| k.as_str()).collect::<Vec<_>>(),
            vec!["x-kept"]
        );
    }

    #[test]
    fn absolute_request_targets_become_origin_form() {
        let req = Request::get("http://web.shop:80/a/b?c=d")
            .version(Version::HTTP_2)
            .body(RequestBody::Empty)
            .unwrap();
        let req = prepare(req);
        assert_eq!(req.uri().to_string(), "/a/b?c=d");
        assert_eq!(req.version(), Version::HTTP_11);
    }
}
