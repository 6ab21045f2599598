//! The keep-alive connections to one endpoint. Each connection is driven by the request (and
//! then the response body) that uses it, not by a task of its own, and goes back to its
//! endpoint's idle list when the response body ends: no task wake-up, channel hop or global
//! lock per request, and an endpoint that is forgotten takes its connections with it.

use super::super::RequestBody;
use crate::error::ProxyError;
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use parking_lot::Mutex;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::time::Instant;

/// Idle connections kept per endpoint; beyond it, the oldest are closed.
const MAX_IDLE: usize = 512;
/// An idle connection older than this is closed instead of reused.
const IDLE_TIMEOUT: Duration = Duration::from_secs(90);

/// An HTTP/1.1 connection to an endpoint: the handle to send on and the connection itself.
pub struct Upstream {
    sender: http1::SendRequest<RequestBody>,
    conn: http1::Connection<TokioIo<TcpStream>, RequestBody>,
    /// Set once the connection future has finished (closed or failed).
    done: bool,
    /// Whether it came from the idle list (a request it fails to send may go on a new one).
    pub reused: bool,
}

/// One endpoint's idle connections (boxed: a connection is large, and moves with its request).
#[derive(Default)]
pub struct Pool {
    idle: Mutex<Vec<(Box<Upstream>, Instant)>>,
}

impl std::fmt::Debug for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upstream")
            .field("done", &self.done)
            .field("reused", &self.reused)
            .finish()
    }
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("idle", &self.idle.lock().len())
            .finish()
    }
}

// === impl Upstream ===

impl Upstream {
    /// Connects to `addr` within `timeout`.
    pub async fn connect(addr: SocketAddr, timeout: Duration) -> Result<Box<Self>, ProxyError> {
        let connect_error = |source: crate::stack::BoxError| ProxyError::Connect {
            endpoint: addr,
            service: String::new(),
            source,
        };
        let stream = match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => return Err(connect_error(e.into())),
            Err(_) => {
                return Err(connect_error(
                    format!("no connection within {timeout:?}").into(),
                ));
            }
        };
        let _ = stream.set_nodelay(true);
        let (sender, conn) = http1::Builder::new()
            .handshake(TokioIo::new(stream))
            .await
            .map_err(|e| connect_error(e.into()))?;
        Ok(Box::new(Self {
            sender,
            conn,
            done: false,
            reused: false,
        }))
    }

    /// Drives the connection's I/O; `true` once it has finished (closed or failed).
    pub fn poll_conn(&mut self, cx: &mut Context<'_>) -> bool {
        if !self.done && Pin::new(&mut self.conn).poll(cx).is_ready() {
            self.done = true;
        }
        self.done
    }

    /// Sends a request; if it was not sent (the connection went away first), it comes back.
    pub fn send(
        &mut self,
        req: http::Request<RequestBody>,
    ) -> impl Future<
        Output = Result<
            http::Response<hyper::body::Incoming>,
            hyper::client::conn::TrySendError<http::Request<RequestBody>>,
        >,
    > + use<> {
        self.sender.try_send_request(req)
    }

    /// Whether it can take another request now.
    fn poll_usable(&mut self, cx: &mut Context<'_>) -> bool {
        !self.poll_conn(cx) && matches!(self.sender.poll_ready(cx), Poll::Ready(Ok(())))
    }
}

// === impl Pool ===

impl Pool {
    /// An idle connection that is still open and ready, if there is one.
    pub fn checkout(&self, cx: &mut Context<'_>) -> Option<Box<Upstream>> {
        let now = Instant::now();
        loop {
            let (mut up, since) = self.idle.lock().pop()?;
            if now.saturating_duration_since(since) < IDLE_TIMEOUT && up.poll_usable(cx) {
                up.reused = true;
                return Some(up);
            }
        }
    }

    /// Keeps a connection whose response has ended, for the next request.
    pub fn checkin(&self, up: Box<Upstream>) {
        if up.done || up.sender.is_closed() {
            return;
        }
        let mut idle = self.idle.lock();
        if idle.len() >= MAX_IDLE {
            idle.remove(0);
        }
        idle.push((up, Instant::now()));
    }

    /// Idle connections now.
    pub fn idle(&self) -> usize {
        self.idle.lock().len()
    }
}
