//! Shared pieces of the component tests: tiny backends, config files and a proxy in-process.
#![allow(dead_code, clippy::unwrap_used)] // Test support: failing loudly is the point.

use bytes::Bytes;
use clap::Parser;
use http::{Request, Response};
use http_body_util::{BodyExt, Empty, Full, StreamBody, combinators::BoxBody};
use hyper::body::{Frame, Incoming};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;
use weir_proxy::app::{self, Args, Running};

/// A local backend that answers with its name; `/slow`, `/stream` and `/echo` do what they say.
pub async fn backend(name: &'static str) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let svc =
                    hyper::service::service_fn(move |req: Request<Incoming>| handle(name, req));
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    addr
}

type Body = BoxBody<Bytes, hyper::Error>;

async fn handle(name: &'static str, req: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    let full = |s: String| {
        Full::new(Bytes::from(s))
            .map_err(|never| match never {})
            .boxed()
    };
    let rsp = match req.uri().path() {
        "/slow" => {
            tokio::time::sleep(Duration::from_millis(300)).await;
            Response::new(full(name.to_string()))
        }
        "/stream" => {
            let (tx, rx) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, hyper::Error>>(1);
            tokio::spawn(async move {
                for i in 0..3 {
                    let _ = tx
                        .send(Ok(Frame::data(Bytes::from(format!("chunk{i};")))))
                        .await;
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            });
            let stream = tokio_stream_from(rx);
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
        _ => Response::new(full(name.to_string())),
    };
    Ok(rsp)
}

fn tokio_stream_from<T: Send + 'static>(
    mut rx: tokio::sync::mpsc::Receiver<T>,
) -> impl futures::Stream<Item = T> + Send + 'static {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

/// A Service `name` (port 80 → `target`) in namespace `test`.
pub fn service(name: &str) -> String {
    format!(
        "---\napiVersion: v1\nkind: Service\nmetadata: {{name: {name}, namespace: test}}\nspec:\n  ports:\n  - {{name: http, port: 80, targetPort: 8080}}\n"
    )
}

/// An EndpointSlice of `svc` with ready endpoints at these addresses (one port for all).
pub fn slice(svc: &str, addrs: &[SocketAddr]) -> String {
    let port = addrs.first().map_or(8080, |a| a.port());
    let mut out = format!(
        "---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: {svc}-x\n  namespace: test\n  labels: {{kubernetes.io/service-name: {svc}}}\naddressType: IPv4\nports:\n- {{name: http, port: {port}}}\nendpoints:\n"
    );
    for (i, a) in addrs.iter().enumerate() {
        out.push_str(&format!(
            "- addresses: [\"{}\"]\n  conditions: {{ready: true}}\n  targetRef: {{kind: Pod, name: {svc}-abc12-{i}, namespace: test}}\n",
            a.ip()
        ));
    }
    out
}

/// A Pod behind an endpoint, owned by Deployment `deploy`.
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
    let mut argv = vec![
        "weir-proxy",
        "--listen",
        "127.0.0.1:0",
        "--admin",
        "127.0.0.1:0",
        "--namespace",
        "test",
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

/// An HTTP/1.1 keep-alive client.
pub fn client() -> Client<HttpConnector, Full<Bytes>> {
    Client::builder(TokioExecutor::new()).build_http()
}

/// An h2c (prior knowledge) client.
pub fn h2c_client() -> Client<HttpConnector, Full<Bytes>> {
    Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build_http()
}

/// GETs `path` on `addr` with a Host header; returns status and body.
pub async fn get(
    client: &Client<HttpConnector, Full<Bytes>>,
    addr: SocketAddr,
    host: &str,
    path: &str,
) -> (u16, String) {
    let req = Request::get(format!("http://{addr}{path}"))
        .header("host", host)
        .body(Full::new(Bytes::new()))
        .unwrap();
    let rsp = client.request(req).await.unwrap();
    let status = rsp.status().as_u16();
    let body = rsp.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
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
