//! Sending the request to the chosen endpoint over a pooled keep-alive client; bodies stream.

use super::{ResponseFuture, error_response, text_response};
use crate::error::ProxyError;
use crate::snapshot::Endpoint;
use http::{HeaderMap, Request, StatusCode, Uri, Version, header};
use http_body_util::Either;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use std::task::{Context, Poll};
use std::time::Duration;

/// The pooled HTTP/1.1 client to endpoints.
pub type HttpClient<B> = Client<HttpConnector, B>;

/// Builds the endpoint client: keep-alive pool, no Nagle, bounded connect time.
pub fn new_client<B>(connect_timeout: Duration, idle_timeout: Duration) -> HttpClient<B>
where
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    connector.set_connect_timeout(Some(connect_timeout));
    connector.enforce_http(true);
    Client::builder(TokioExecutor::new())
        .pool_timer(TokioTimer::new())
        .pool_idle_timeout(idle_timeout)
        .pool_max_idle_per_host(1024)
        .build(connector)
}

/// Forwards a request to the [`Endpoint`] in its extensions.
#[derive(Debug)]
pub struct Forward<B> {
    client: HttpClient<B>,
}

// === impl Forward ===

impl<B> Clone for Forward<B> {
    fn clone(&self) -> Self {
        Self {
            client: self.client.clone(),
        }
    }
}

impl<B> Forward<B> {
    /// A forwarder over `client`.
    pub fn new(client: HttpClient<B>) -> Self {
        Self { client }
    }
}

impl<B> tower::Service<Request<B>> for Forward<B>
where
    B: hyper::body::Body + Send + Unpin + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Response = http::Response<super::ResponseBody>;
    type Error = std::convert::Infallible;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let Some(endpoint) = req.extensions().get::<Endpoint>().cloned() else {
            let rsp = text_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                "weir-proxy: request reached the forwarder without an endpoint\n".into(),
                "internal",
            );
            return Box::pin(async move { Ok(rsp) });
        };
        let service = || {
            req.extensions()
                .get::<super::Routed>()
                .map(|r| r.backend.name.clone())
                .unwrap_or_default()
        };
        let service = service();
        let req = match rewrite(req, &endpoint) {
            Ok(r) => r,
            Err(source) => {
                let rsp = error_response(&ProxyError::Rewrite {
                    endpoint: endpoint.addr,
                    source,
                });
                return Box::pin(async move { Ok(rsp) });
            }
        };
        let fut = self.client.request(req);
        Box::pin(async move {
            match fut.await {
                Ok(rsp) => {
                    let (mut parts, body) = rsp.into_parts();
                    strip_hop_by_hop(&mut parts.headers);
                    Ok(http::Response::from_parts(parts, Either::Left(body)))
                }
                Err(source) => {
                    let err = if source.is_connect() {
                        ProxyError::Connect {
                            endpoint: endpoint.addr,
                            service,
                            source,
                        }
                    } else {
                        ProxyError::Upstream {
                            endpoint: endpoint.addr,
                            service,
                            source,
                        }
                    };
                    Ok(error_response(&err))
                }
            }
        })
    }
}

/// Points the request at the endpoint as HTTP/1.1, keeping the client's host.
fn rewrite<B>(req: Request<B>, endpoint: &Endpoint) -> Result<Request<B>, http::Error> {
    let (mut parts, body) = req.into_parts();
    if !parts.headers.contains_key(header::HOST)
        && let Some(authority) = parts.uri.authority()
        && let Ok(value) = header::HeaderValue::from_str(authority.as_str())
    {
        parts.headers.insert(header::HOST, value);
    }
    let path = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    parts.uri = Uri::builder()
        .scheme("http")
        .authority(endpoint.addr.to_string())
        .path_and_query(path)
        .build()?;
    parts.version = Version::HTTP_11;
    strip_hop_by_hop(&mut parts.headers);
    Ok(Request::from_parts(parts, body))
}

/// Removes the connection-scoped headers a proxy must not pass on.
fn strip_hop_by_hop(headers: &mut HeaderMap) {
    if let Some(named) = headers.get(header::CONNECTION).cloned()
        && let Ok(named) = named.to_str()
    {
        for name in named.split(',') {
            let name = name.trim();
            if !name.is_empty()
                && !name.eq_ignore_ascii_case("close")
                && !name.eq_ignore_ascii_case("keep-alive")
            {
                headers.remove(name);
            }
        }
    }
    for name in [
        header::CONNECTION,
        header::PROXY_AUTHENTICATE,
        header::PROXY_AUTHORIZATION,
        header::TE,
        header::TRAILER,
        header::TRANSFER_ENCODING,
        header::UPGRADE,
    ] {
        headers.remove(name);
    }
    headers.remove("keep-alive");
    headers.remove("proxy-connection");
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
}
