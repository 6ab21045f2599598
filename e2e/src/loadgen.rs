//! The load generator: HTTP/1.1 keep-alive connections from a chosen source
//! IP (a client pod's), so access control and metrics see a real identity.
//!
//! ```text
//!   closed loop:  N connections, each sends the next request when the last answered
//!   fixed rate:   a ticker schedules requests; N connections take them;
//!                 latency counts from the scheduled time (no coordinated omission)
//! ```
//! Both stop at the duration or the request count, whichever comes first.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use http::{Request, header};
use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::net::TcpSocket;
use tokio::sync::{Mutex, mpsc};
use tokio::task::JoinSet;
use tokio::time::Instant;

pub mod report;

pub use report::{Report, Summary};

/// How requests are paced.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Mode {
    /// Each connection sends as fast as it gets answers.
    ClosedLoop,
    /// Requests per second across all connections.
    FixedRate(f64),
}

/// A load run's settings.
#[derive(Clone, Debug)]
pub struct LoadOptions {
    /// Where to connect (a ClusterIP or pod IP, and port).
    pub target: SocketAddr,
    /// The `Host` header.
    pub host: String,
    /// The request path.
    pub path: String,
    /// Source address to bind (the client pod's IP); `None`: any.
    pub source: Option<IpAddr>,
    /// Pacing.
    pub mode: Mode,
    /// Concurrent keep-alive connections.
    pub connections: usize,
    /// Longest the run lasts.
    pub duration: Duration,
    /// Most requests sent; `None`: until `duration`.
    pub max_requests: Option<u64>,
    /// Per-request timeout.
    pub timeout: Duration,
}

// === impl LoadOptions ===

impl LoadOptions {
    /// Closed-loop defaults against `target` with `Host: host`.
    pub fn new(target: SocketAddr, host: impl Into<String>) -> Self {
        Self {
            target,
            host: host.into(),
            path: "/".into(),
            source: None,
            mode: Mode::ClosedLoop,
            connections: 1,
            duration: Duration::from_secs(10),
            max_requests: None,
            timeout: Duration::from_secs(5),
        }
    }
}

/// The outcome of a run.
#[derive(Clone, Debug)]
pub struct LoadResult {
    /// Everything recorded.
    pub report: Report,
    /// How long it took.
    pub elapsed: Duration,
}

// === impl LoadResult ===

impl LoadResult {
    /// The summary numbers.
    pub fn summary(&self) -> Summary {
        self.report.summary(self.elapsed)
    }
}

/// One keep-alive connection, re-established after errors.
struct Conn {
    opts: Arc<LoadOptions>,
    sender: Option<SendRequest<Empty<Bytes>>>,
    driver: JoinSet<()>,
}

// === impl Conn ===

impl Conn {
    fn new(opts: Arc<LoadOptions>) -> Self {
        Self {
            opts,
            sender: None,
            driver: JoinSet::new(),
        }
    }

    async fn connect(&mut self) -> Result<(), &'static str> {
        let socket = TcpSocket::new_v4().map_err(|_| "socket")?;
        if let Some(ip) = self.opts.source {
            socket.bind(SocketAddr::new(ip, 0)).map_err(|_| "bind")?;
        }
        let stream = tokio::time::timeout(self.opts.timeout, socket.connect(self.opts.target))
            .await
            .map_err(|_| "connect_timeout")?
            .map_err(|_| "connect")?;
        let _ = stream.set_nodelay(true);
        let (sender, conn) = http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|_| "handshake")?;
        self.driver.abort_all();
        self.driver.spawn(async move {
            let _ = conn.await;
        });
        self.sender = Some(sender);
        Ok(())
    }

    /// Sends one request; latency counts from `since`.
    async fn request(&mut self, since: Instant, report: &mut Report) {
        if self.sender.as_ref().is_none_or(|s| s.is_closed())
            && let Err(kind) = self.connect().await
        {
            report.error(kind);
            return;
        }
        let Some(sender) = self.sender.as_mut() else {
            return;
        };
        let req = Request::get(self.opts.path.as_str())
            .header(header::HOST, self.opts.host.as_str())
            .body(Empty::new());
        let Ok(req) = req else {
            report.error("bad_request");
            return;
        };
        let exchange = async {
            sender.ready().await?;
            let resp = sender.send_request(req).await?;
            let status = resp.status().as_u16();
            let body = resp.into_body().collect().await?.to_bytes();
            Ok::<_, hyper::Error>((status, body))
        };
        match tokio::time::timeout(self.opts.timeout, exchange).await {
            Ok(Ok((status, body))) => {
                report.response(status, report::version_of(&body), since.elapsed());
                report.failure_body(status, &body);
            }
            Ok(Err(_)) => {
                self.sender = None;
                report.error("io");
            }
            Err(_) => {
                self.sender = None;
                report.error("timeout");
            }
        }
    }
}

/// Takes one unit from the request budget; false when it is spent.
fn take(budget: &AtomicU64) -> bool {
    budget
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
        .is_ok()
}

/// Runs the load and returns what it saw.
pub async fn run(opts: LoadOptions) -> LoadResult {
    let opts = Arc::new(opts);
    let start = Instant::now();
    let deadline = start + opts.duration;
    let budget = Arc::new(AtomicU64::new(opts.max_requests.unwrap_or(u64::MAX)));
    let mut workers = JoinSet::new();
    match opts.mode {
        Mode::ClosedLoop => {
            for _ in 0..opts.connections.max(1) {
                let (opts, budget) = (opts.clone(), budget.clone());
                workers.spawn(async move {
                    let mut conn = Conn::new(opts);
                    let mut report = Report::default();
                    while Instant::now() < deadline && take(&budget) {
                        let since = Instant::now();
                        tokio::select! {
                            () = conn.request(since, &mut report) => {}
                            () = tokio::time::sleep_until(deadline) => break,
                        }
                    }
                    report
                });
            }
        }
        Mode::FixedRate(rps) => {
            let (tx, rx) = mpsc::channel::<Instant>(1024);
            let rx = Arc::new(Mutex::new(rx));
            for _ in 0..opts.connections.max(1) {
                let (opts, rx) = (opts.clone(), rx.clone());
                workers.spawn(async move {
                    let mut conn = Conn::new(opts);
                    let mut report = Report::default();
                    loop {
                        let next = rx.lock().await.recv().await;
                        let Some(scheduled) = next else { break };
                        tokio::select! {
                            () = conn.request(scheduled, &mut report) => {}
                            () = tokio::time::sleep_until(deadline) => break,
                        }
                    }
                    report
                });
            }
            let period = Duration::from_secs_f64(1.0 / rps.max(0.001));
            let mut ticker = tokio::time::interval(period);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            while take(&budget) {
                let tick = tokio::select! {
                    t = ticker.tick() => t,
                    () = tokio::time::sleep_until(deadline) => break,
                };
                if tick >= deadline || tx.send(tick).await.is_err() {
                    break;
                }
            }
        }
    }
    let mut report = Report::default();
    while let Some(done) = workers.join_next().await {
        if let Ok(part) = done {
            report.merge(part);
        }
    }
    LoadResult {
        report,
        elapsed: start.elapsed(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::demo_app::{self, DemoConfig};
    use tokio_util::sync::CancellationToken;

    async fn demo(ip: [u8; 4], version: &str) -> (SocketAddr, CancellationToken) {
        let l = tokio::net::TcpListener::bind(SocketAddr::from((ip, 0)))
            .await
            .unwrap();
        let addr = l.local_addr().unwrap();
        let stop = CancellationToken::new();
        let cfg = DemoConfig {
            version: version.into(),
            ..DemoConfig::default()
        };
        tokio::spawn(demo_app::serve(l, cfg, stop.clone()));
        (addr, stop)
    }

    #[tokio::test]
    async fn closed_loop_stops_at_count_and_counts_versions() {
        let (addr, _stop) = demo([127, 1, 210, 1], "v3").await;
        let mut opts = LoadOptions::new(addr, "foobar");
        opts.source = Some(IpAddr::from([127, 1, 210, 9]));
        opts.connections = 2;
        opts.max_requests = Some(40);
        let out = run(opts).await;
        let s = out.summary();
        assert_eq!(s.responses, 40, "{s}");
        assert_eq!(s.by_version, [("v3".into(), 40)].into());
        assert_eq!(s.success_rate, 100.0);
    }

    #[tokio::test]
    async fn fixed_rate_paces_requests() {
        let (addr, _stop) = demo([127, 1, 210, 2], "v1").await;
        let mut opts = LoadOptions::new(addr, "foobar");
        opts.mode = Mode::FixedRate(100.0);
        opts.connections = 2;
        opts.duration = Duration::from_millis(500);
        let out = run(opts).await;
        let n = out.summary().responses;
        assert!((30..=60).contains(&n), "{n} responses at 100 rps for 0.5 s");
    }

    #[tokio::test]
    async fn refused_connections_are_counted_as_errors() {
        let addr = {
            let l = tokio::net::TcpListener::bind("127.1.210.3:0")
                .await
                .unwrap();
            l.local_addr().unwrap()
        };
        let mut opts = LoadOptions::new(addr, "foobar");
        opts.max_requests = Some(3);
        let out = run(opts).await;
        assert_eq!(out.report.errors, [("connect".into(), 3)].into());
    }
}
