//! A proxy in front of the local API server: it forwards every request (watches stream
//! through) and first shows each one to the test's rule, which may stop it. The operator
//! SIGKILL test uses it to kill the operator at an exact point: after its writes, before
//! its status write.
//!
//! ```text
//!  process under test ──kubeconfig──► ApiTap ──rule(method, path)──► Forward ─► API server
//!                                                                  └► Refuse ─► 503 (never forwarded)
//! ```

use anyhow::{Context as _, Result};
use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use parking_lot::Mutex;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use weir_e2e::apiserver::kubeconfig;

/// What the tap does with one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Pass it to the API server.
    Forward,
    /// Answer 503 without passing it on.
    Refuse,
}

/// Decides each request by method and path (with the query).
pub type Rule = Box<dyn FnMut(&Method, &str) -> Verdict + Send>;

/// Told of each forwarded request when its response headers arrive: method, path (with
/// the query), status and the time the API server took, seen from the tap.
pub type Observer = Arc<dyn Fn(&Method, &str, StatusCode, Duration) + Send + Sync>;

type Body = BoxBody<Bytes, hyper::Error>;

/// A running tap; it stops when dropped.
pub struct ApiTap {
    addr: SocketAddr,
    kubeconfig: PathBuf,
    task: tokio::task::JoinHandle<()>,
}

// === impl ApiTap ===

impl ApiTap {
    /// Listens on 127.0.0.1 (port 0), in front of the API server at `upstream`, and writes
    /// a kubeconfig pointing at itself to `kubeconfig`.
    pub async fn start(upstream: SocketAddr, kubeconfig: &Path, rule: Rule) -> Result<Self> {
        Self::start_observed(upstream, kubeconfig, rule, None).await
    }

    /// As [`ApiTap::start`], and shows each forwarded request's latency to `observer`.
    pub async fn start_observed(
        upstream: SocketAddr,
        kubeconfig: &Path,
        rule: Rule,
        observer: Option<Observer>,
    ) -> Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let yaml = serde_yaml::to_string(&kubeconfig::build(&format!("http://{addr}")))?;
        std::fs::write(kubeconfig, yaml)
            .with_context(|| format!("write {}", kubeconfig.display()))?;
        let rule = Arc::new(Mutex::new(rule));
        let client: Client<HttpConnector, Incoming> =
            Client::builder(TokioExecutor::new()).build_http();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (rule, client, observer) = (rule.clone(), client.clone(), observer.clone());
                let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
                    let verdict = (rule.lock())(req.method(), path_and_query(req.uri()));
                    let (client, observer) = (client.clone(), observer.clone());
                    let (method, path) =
                        (req.method().clone(), path_and_query(req.uri()).to_string());
                    async move {
                        let started = Instant::now();
                        let rsp = pass(&client, upstream, verdict, req).await;
                        if let Some(observe) = observer.filter(|_| verdict == Verdict::Forward) {
                            observe(&method, &path, rsp.status(), started.elapsed());
                        }
                        Ok::<_, hyper::Error>(rsp)
                    }
                });
                tokio::spawn(async move {
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        Ok(Self {
            addr,
            kubeconfig: kubeconfig.to_path_buf(),
            task,
        })
    }

    /// The kubeconfig that sends a client through the tap.
    pub fn kubeconfig_path(&self) -> &Path {
        &self.kubeconfig
    }

    /// Where the tap listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for ApiTap {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn pass(
    client: &Client<HttpConnector, Incoming>,
    upstream: SocketAddr,
    verdict: Verdict,
    req: Request<Incoming>,
) -> Response<Body> {
    if verdict == Verdict::Refuse {
        return text(
            StatusCode::SERVICE_UNAVAILABLE,
            "refused by the test's ApiTap",
        );
    }
    let (mut parts, body) = req.into_parts();
    let uri = format!("http://{upstream}{}", path_and_query(&parts.uri));
    parts.uri = match uri.parse() {
        Ok(uri) => uri,
        Err(e) => return text(StatusCode::BAD_REQUEST, &format!("bad URI {uri}: {e}")),
    };
    match client.request(Request::from_parts(parts, body)).await {
        Ok(rsp) => rsp.map(BodyExt::boxed),
        Err(e) => text(StatusCode::BAD_GATEWAY, &format!("upstream: {e}")),
    }
}

fn path_and_query(uri: &hyper::Uri) -> &str {
    uri.path_and_query().map_or("/", |p| p.as_str())
}

fn text(code: StatusCode, msg: &str) -> Response<Body> {
    let body = Full::new(Bytes::from(msg.to_string()))
        .map_err(|never| match never {})
        .boxed();
    let mut rsp = Response::new(body);
    *rsp.status_mut() = code;
    rsp
}

/// What one request to the API server is, for counting the requests a process sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestKind {
    /// A watch (`watch=true`): a stream, not a request per reconcile.
    Watch,
    /// POST, PUT, PATCH or DELETE.
    Write,
    /// A GET of a collection that is not a watch.
    List,
    /// Anything else (a GET of one object, discovery).
    Read,
}

/// Kinds whose collection a GET of `…/<plural>` lists.
const PLURALS: &[&str] = &[
    "rollouts",
    "deployments",
    "services",
    "trafficsplits",
    "serviceaccounts",
    "controllerrevisions",
    "events",
    "pods",
    "leases",
];

/// Classifies a request by its method and its path with query.
pub fn classify(method: &Method, path_and_query: &str) -> RequestKind {
    let (path, query) = path_and_query
        .split_once('?')
        .unwrap_or((path_and_query, ""));
    if query
        .split('&')
        .any(|q| q == "watch=true" || q == "watch=1")
    {
        RequestKind::Watch
    } else if [Method::POST, Method::PUT, Method::PATCH, Method::DELETE].contains(method) {
        RequestKind::Write
    } else if *method == Method::GET
        && path
            .rsplit('/')
            .next()
            .is_some_and(|last| PLURALS.contains(&last))
    {
        RequestKind::List
    } else {
        RequestKind::Read
    }
}
