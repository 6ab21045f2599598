//! The data listener: HTTP/1.1 and h2c on one port, with limits, timeouts and graceful drain.

mod idle;

use crate::error::CONNECTION_LIMIT_LABEL;
use crate::metrics::Metrics;
use crate::stack::{ResponseBody, text_response};
use http::{Request, Response, StatusCode, header};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use idle::{Activity, IdleStream};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Limits and timeouts of the data listener.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Connections served at once; beyond this, each new one gets a 503 and is closed.
    pub max_connections: usize,
    /// Time allowed for a client to send a request's headers (HTTP/1.1).
    pub header_read_timeout: Duration,
    /// A connection with no bytes in either direction for this long is closed gracefully.
    pub idle_timeout: Duration,
    /// The HTTP/1.1 read buffer, which bounds the size of a request head.
    pub max_header_bytes: usize,
    /// The most request headers accepted.
    pub max_headers: usize,
    /// How long in-flight requests get to finish after shutdown begins.
    pub drain_timeout: Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            max_connections: 10_000,
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            max_header_bytes: 64 * 1024,
            max_headers: 100,
            drain_timeout: Duration::from_secs(20),
        }
    }
}

/// Serves `listener` until `shutdown`, then drains open connections; `stack` makes the
/// service of each connection from the client's address.
pub async fn serve<S, M>(
    listener: TcpListener,
    stack: M,
    config: ServerConfig,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
) where
    M: Fn(SocketAddr) -> S,
    S: tower::Service<Request<Incoming>, Response = Response<ResponseBody>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    let builder = Arc::new(builder(&config));
    let permits = Arc::new(Semaphore::new(config.max_connections));
    let tracker = TaskTracker::new();
    loop {
        let (stream, peer) = tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Typically EMFILE: back off briefly rather than spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let permit = permits.clone().try_acquire_owned().ok();
        let conn = Conn {
            builder: builder.clone(),
            metrics: metrics.clone(),
            shutdown: shutdown.clone(),
            idle_timeout: config.idle_timeout,
            max_connections: config.max_connections,
        };
        tracker.spawn(conn.run(stream, peer, permit, stack(peer)));
    }
    drop(listener);
    tracker.close();
    if tokio::time::timeout(config.drain_timeout, tracker.wait())
        .await
        .is_err()
    {
        tracing::warn!(
            open = tracker.len(),
            "drain timeout: closing remaining connections"
        );
    }
}

fn builder(config: &ServerConfig) -> auto::Builder<TokioExecutor> {
    let mut b = auto::Builder::new(TokioExecutor::new());
    b.http1()
        .timer(TokioTimer::new())
        .header_read_timeout(config.header_read_timeout)
        .max_buf_size(config.max_header_bytes.max(8192))
        .max_headers(config.max_headers)
        .keep_alive(true);
    b.http2()
        .timer(TokioTimer::new())
        .max_header_list_size(u32::try_from(config.max_header_bytes).unwrap_or(u32::MAX))
        .max_concurrent_streams(1024)
        .keep_alive_interval(Some(config.idle_timeout / 2))
        .keep_alive_timeout(Duration::from_secs(20));
    b
}

struct Conn {
    builder: Arc<auto::Builder<TokioExecutor>>,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
    idle_timeout: Duration,
    max_connections: usize,
}

// === impl Conn ===

impl Conn {
    async fn run<S>(
        self,
        stream: TcpStream,
        peer: SocketAddr,
        permit: Option<OwnedSemaphorePermit>,
        stack: S,
    ) where
        S: tower::Service<Request<Incoming>, Response = Response<ResponseBody>, Error = Infallible>
            + Clone
            + Send
            + 'static,
        S::Future: Send + 'static,
    {
        let Some(_permit) = permit else {
            return self.refuse(stream).await;
        };
        self.metrics.connection_opened();
        let activity = Activity::default();
        let io = TokioIo::new(IdleStream::new(stream, activity.clone()));
        let conn = self
            .builder
            .serve_connection_with_upgrades(io, TowerToHyperService::new(stack));
        tokio::pin!(conn);
        let mut seen = activity.get();
        let mut draining = false;
        loop {
            tokio::select! {
                res = conn.as_mut() => {
                    if let Err(e) = res {
                        tracing::debug!(%peer, error = %e, "connection ended with an error");
                    }
                    break;
                }
                () = self.shutdown.cancelled(), if !draining => {
                    conn.as_mut().graceful_shutdown();
                    draining = true;
                }
                () = tokio::time::sleep(self.idle_timeout), if !draining => {
                    let now = activity.get();
                    if now == seen {
                        tracing::debug!(%peer, "idle timeout");
                        conn.as_mut().graceful_shutdown();
                        draining = true;
                    }
                    seen = now;
                }
            }
        }
        self.metrics.connection_closed();
    }

    /// Beyond the cap: one clear 503, then close.
    async fn refuse(self, stream: TcpStream) {
        let max = self.max_connections;
        let metrics = self.metrics.clone();
        let svc = hyper::service::service_fn(move |_req: Request<Incoming>| {
            metrics.error(CONNECTION_LIMIT_LABEL);
            let mut rsp = text_response(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("weir-proxy: connection limit ({max}) reached; retry later\n"),
                CONNECTION_LIMIT_LABEL,
            );
            rsp.headers_mut().insert(
                header::CONNECTION,
                header::HeaderValue::from_static("close"),
            );
            async move { Ok::<_, Infallible>(rsp) }
        });
        let conn = self.builder.serve_connection(TokioIo::new(stream), svc);
        let _ = tokio::time::timeout(Duration::from_secs(5), conn).await;
    }
}
