//! Shared pieces of the component tests: backends that fail or stall on command, clients
//! bound to chosen 127.x source addresses, config files and a proxy in-process.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)] // Test support: failing loudly is the point.

use bytes::Bytes;
use clap::Parser;
use http::{Request, Response};
use http_body_util::{BodyExt, Empty, Full, StreamBody, combinators::BoxBody};
use hyper::body::{Frame, Incoming};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use parking_lot::Mutex;
use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::{Notify, Semaphore};
use weir_proxy::app::{self, Args, Running};

/// Flags for tests about routing rather than access control: destinations that no
/// TrafficTarget names take any client.
pub const ALLOW: [&str; 2] = ["--default-policy", "allow"];

/// How a backend answers, set by the test while it runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Normally (200 with its name, or what the path asks for).
    Normal,
    /// With this status.
    Status(u16),
    /// Never.
    Stall,
}

/// A local backend: answers with its name; `/hold` and `/stream` wait for [`Backend::release`];
/// `/echo` returns the request body; `/host` returns the Host header.
#[derive(Debug, Clone)]
pub struct Backend {
    /// Where it listens.
    pub addr: SocketAddr,
    ctl: Arc<Control>,
}

#[derive(Debug)]
struct Control {
    name: &'static str,
    mode: Mutex<Mode>,
    hits: AtomicU64,
    arrived: Notify,
    release: Semaphore,
}

impl Backend {
    /// Changes how it answers from now on.
    pub fn set(&self, mode: Mode) {
        *self.ctl.mode.lock() = mode;
    }

    /// Requests it has received.
    pub fn hits(&self) -> u64 {
        self.ctl.hits.load(Ordering::SeqCst)
    }

    /// Waits until a `/hold` or `/stream` request has arrived (at most 10 s).
    pub async fn arrived(&self) {
        tokio::time::timeout(Duration::from_secs(10), self.ctl.arrived.notified())
            .await
            .expect("no request arrived at the backend within 10 s");
    }

    /// Lets one waiting `/hold` or `/stream` request go on.
    pub fn release(&self) {
        self.ctl.release.add_permits(1);
    }
}

/// A backend on 127.0.0.1.
pub async fn backend(name: &'static str) -> Backend {
    backend_on("127.0.0.1", name).await
}

/// A backend on `ip` (any 127.x address; the port is chosen by the OS).
pub async fn backend_on(ip: &str, name: &'static str) -> Backend {
    let listener = tokio::net::TcpListener::bind((ip.parse::<IpAddr>().unwrap(), 0))
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let ctl = Arc::new(Control {
        name,
        mode: Mutex::new(Mode::Normal),
        hits: AtomicU64::new(0),
        arrived: Notify::new(),
        release: Semaphore::new(0),
    });
    let c = ctl.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let ctl = c.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req| handle(ctl.clone(), req));
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    Backend { addr, ctl }
}

type Body = BoxBody<Bytes, hyper::Error>;

fn full(s: impl Into<Bytes>) -> Body {
    Full::new(s.into()).map_err(|never| match never {}).boxed()
}

async fn handle(ctl: Arc<Control>, req: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    ctl.hits.fetch_add(1, Ordering::SeqCst);
    let mode = *ctl.mode.lock();
    match mode {
        Mode::Stall => std::future::pending::<()>().await,
        Mode::Status(s) => {
            let mut rsp = Response::new(full(format!("{} says {s}", ctl.name)));
            *rsp.status_mut() = http::StatusCode::from_u16(s).unwrap();
            return Ok(rsp);
        }
        Mode::Normal => {}
    }
    let rsp = match req.uri().path() {
        "/hold" => {
            ctl.arrived.notify_one();
            ctl.release.acquire().await.unwrap().forget();
            Response::new(full(ctl.name))
        }
        "/stream" => {
            // The first chunk goes at once; the rest only when the test releases it, so the
            // test sees whether the proxy passed the first chunk on before the body ended.
            let (tx, rx) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, hyper::Error>>(4);
            let ctl = ctl.clone();
            tokio::spawn(async move {
                let _ = tx.send(Ok(Frame::data(Bytes::from("chunk0;")))).await;
                ctl.arrived.notify_one();
                ctl.release.acquire().await.unwrap().forget();
                for i in 1..3 {
                    let _ = tx
                        .send(Ok(Frame::data(Bytes::from(format!("chunk{i};")))))
                        .await;
                }
            });
            let stream = futures::stream::unfold(rx, |mut rx| async move {
                rx.recv().await.map(|item| (item, rx))
            });
            Response::new(StreamBody::new(stream).boxed())
        }
        "/echo" => Response::new(req.into_body().boxed()),
        "/host" => {
            let host = req
                .headers()
                .get("host")
                .and_then(|h| h.to_str().ok())
                .unwrap_or("")
                .to_string();
            Response::new(full(host))
        }
        _ => Response::new(full(ctl.name)),
    };
    Ok(rsp)
}

/// A port that refuses connections: bound (so no one else gets it) but not listening. Keep
/// the socket for as long as the port must stay refused.
pub fn refusing_port() -> (tokio::net::TcpSocket, SocketAddr) {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = socket.local_addr().unwrap();
    (socket, addr)
}

/// A Service `name` (port 80 → 8080) in namespace `test`.
pub fn service(name: &str) -> String {
    format!(
        "---\napiVersion: v1\nkind: Service\nmetadata: {{name: {name}, namespace: test}}\nspec:\n  ports:\n  - {{name: http, port: 80, targetPort: 8080}}\n"
    )
}

/// EndpointSlices of `svc` with ready endpoints at these backends; endpoint `i` names Pod
/// `<svc>-abc12-<i>`.
pub fn slice(svc: &str, backends: &[&Backend]) -> String {
    slice_at(svc, &backends.iter().map(|b| b.addr).collect::<Vec<_>>())
}

/// EndpointSlices of `svc` with ready endpoints at these addresses: one slice per address,
/// since each may have its own port (a slice has one port list for all its endpoints).
pub fn slice_at(svc: &str, addrs: &[SocketAddr]) -> String {
    let mut out = String::new();
    for (i, a) in addrs.iter().enumerate() {
        out.push_str(&format!(
            "---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: {svc}-x{i}\n  namespace: test\n  labels: {{kubernetes.io/service-name: {svc}}}\naddressType: IPv4\nports:\n- {{name: http, port: {}}}\nendpoints:\n- addresses: [\"{}\"]\n  conditions: {{ready: true}}\n  targetRef: {{kind: Pod, name: {svc}-abc12-{i}, namespace: test}}\n",
            a.port(),
            a.ip()
        ));
    }
    out
}

/// A Pod with this IP and ServiceAccount, owned by Deployment `deploy`.
pub fn pod(name: &str, ip: &str, sa: &str, deploy: &str) -> String {
    format!(
        "---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  namespace: test\n  labels: {{pod-template-hash: abc12}}\n  ownerReferences:\n  - {{apiVersion: apps/v1, kind: ReplicaSet, name: {deploy}-abc12, uid: u}}\nspec:\n  serviceAccountName: {sa}\n  containers: [{{name: app}}]\nstatus: {{podIP: \"{ip}\"}}\n"
    )
}

/// A TrafficSplit (v1alpha1, so weights may be quantities).
pub fn split(name: &str, root: &str, backends: &[(&str, &str)]) -> String {
    let mut out = format!(
        "---\napiVersion: split.smi-spec.io/v1alpha1\nkind: TrafficSplit\nmetadata: {{name: {name}, namespace: test}}\nspec:\n  service: {root}\n  backends:\n"
    );
    for (svc, w) in backends {
        out.push_str(&format!("  - service: {svc}\n    weight: {w}\n"));
    }
    out
}

/// A TrafficPolicy for Service `service` whose spec (besides `targetRef`) is `spec_yaml`,
/// a YAML mapping indented by two spaces.
pub fn policy(name: &str, service: &str, spec_yaml: &str) -> String {
    format!(
        "---\napiVersion: weir.dev/v1alpha1\nkind: TrafficPolicy\nmetadata: {{name: {name}, namespace: test}}\nspec:\n  targetRef: {{kind: Service, name: {service}}}\n{spec_yaml}"
    )
}

/// A config directory that is removed on drop.
pub struct ConfigFile {
    _dir: tempfile::TempDir,
    /// The file's path.
    pub path: PathBuf,
}

impl ConfigFile {
    /// A new config file holding `text`.
    pub fn new(text: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("weir.yaml");
        write_atomic(&path, text);
        Self { _dir: dir, path }
    }

    /// Replaces the file's content atomically (write, then rename).
    pub fn write(&self, text: &str) {
        write_atomic(&self.path, text);
    }
}

fn write_atomic(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// Starts a proxy on 127.0.0.1 reading `file`, with extra flags; waits for its first snapshot.
pub async fn proxy(file: &ConfigFile, extra: &[&str]) -> Running {
    proxy_in("test", file, extra).await
}

/// Like [`proxy`], with bare hosts in `namespace`.
pub async fn proxy_in(namespace: &str, file: &ConfigFile, extra: &[&str]) -> Running {
    let mut argv = vec![
        "weir-proxy",
        "--listen",
        "127.0.0.1:0",
        "--admin",
        "127.0.0.1:0",
        "--namespace",
        namespace,
        "--config-poll-ms",
        "20",
    ];
    argv.extend_from_slice(extra);
    let path = file.path.to_str().unwrap().to_string();
    let mut argv: Vec<String> = argv.into_iter().map(String::from).collect();
    argv.push("--config-file".into());
    argv.push(path);
    let args = Args::parse_from(argv);
    let running = app::start(&args, args.source().await.unwrap())
        .await
        .unwrap();
    wait_generation(&running, 1).await;
    running
}

/// Waits (at most 5 s) until the proxy has published generation `n`.
pub async fn wait_generation(running: &Running, n: u64) {
    let mut rx = running.snapshots.clone();
    let ok = tokio::time::timeout(Duration::from_secs(5), rx.wait_for(|s| s.generation >= n)).await;
    assert!(ok.is_ok(), "no snapshot of generation {n} within 5 s");
}

/// An HTTP client.
pub type HttpClient = Client<HttpConnector, Full<Bytes>>;

/// An HTTP/1.1 keep-alive client.
pub fn client() -> HttpClient {
    Client::builder(TokioExecutor::new()).build_http()
}

/// An HTTP/1.1 client whose connections come from `ip` (a client Pod's address).
pub fn client_from(ip: &str) -> HttpClient {
    let mut connector = HttpConnector::new();
    connector.set_local_address(Some(ip.parse().unwrap()));
    Client::builder(TokioExecutor::new()).build(connector)
}

/// An h2c (prior knowledge) client.
pub fn h2c_client() -> HttpClient {
    Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build_http()
}

/// Sends `method path` to `addr` with a Host header and extra headers; returns status and body.
pub async fn send(
    client: &HttpClient,
    addr: SocketAddr,
    host: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> (u16, String) {
    let mut req = Request::builder()
        .method(method)
        .uri(format!("http://{addr}{path}"))
        .header("host", host);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let rsp = client
        .request(req.body(Full::new(Bytes::new())).unwrap())
        .await
        .unwrap();
    let status = rsp.status().as_u16();
    let body = rsp.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

/// GETs `path` on `addr` with a Host header; returns status and body.
pub async fn get(client: &HttpClient, addr: SocketAddr, host: &str, path: &str) -> (u16, String) {
    send(client, addr, host, "GET", path, &[]).await
}

/// GETs an admin path; returns status and body.
pub async fn admin_get(running: &Running, path: &str) -> (u16, String) {
    let c: Client<HttpConnector, Empty<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let rsp = c
        .get(
            format!("http://{}{path}", running.admin_addr)
                .parse()
                .unwrap(),
        )
        .await
        .unwrap();
    let status = rsp.status().as_u16();
    let body = rsp.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

/// Polls `check` every 20 ms until it returns `Some` (at most `secs` seconds); fails naming
/// `what` and the last value seen otherwise.
pub async fn eventually<T, F, Fut>(secs: u64, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, String>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    let mut last = String::new();
    while tokio::time::Instant::now() < deadline {
        match check().await {
            Ok(v) => return v,
            Err(seen) => last = seen,
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("{what}: not within {secs} s; last seen: {last}");
}
