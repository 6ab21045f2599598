//! Helpers shared by the apiserver_* tests: starting a server and raw HTTP requests.
//! Self-contained, so a test may include this file alone.

#![allow(dead_code)]

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;
use std::time::Duration;
use weir_e2e::apiserver::{Handle, LocalApiServer, Options};

/// Starts a server with default options and returns it with a client.
pub async fn start() -> (Handle, kube::Client) {
    start_with(Options::default()).await
}

/// Starts a server with the given options.
pub async fn start_with(opts: Options) -> (Handle, kube::Client) {
    let dir = std::env::temp_dir().join(format!("weir-apiserver-test-{}", rand_suffix()));
    let opts = Options {
        kubeconfig_path: Some(dir.join("kubeconfig")),
        ..opts
    };
    let h = LocalApiServer::start(opts).await.unwrap();
    let c = h.client().await.unwrap();
    (h, c)
}

/// A client of the kubeconfig at `path` (for example one a ServiceAccount's token signs).
pub async fn client_from(path: &std::path::Path) -> anyhow::Result<kube::Client> {
    let kubeconfig = kube::config::Kubeconfig::read_from(path)?;
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default()).await?;
    Ok(kube::Client::try_from(config)?)
}

fn rand_suffix() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// A raw response.
pub struct Raw {
    /// Status code.
    pub status: u16,
    /// Headers.
    pub headers: http::HeaderMap,
    /// Body.
    pub body: Bytes,
}

impl Raw {
    /// The body as JSON (Null when it is not JSON).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

/// Sends one request to the server, with a 10 s bound.
pub async fn raw(
    h: &Handle,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: impl Into<Bytes>,
) -> Raw {
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let mut b = http::Request::builder()
        .method(method)
        .uri(format!("{}{path}", h.url()));
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    // As the admin kubeconfig does, unless the test brings its own credentials.
    if !headers
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("authorization"))
    {
        b = b.header(
            "authorization",
            format!("Bearer {}", weir_e2e::apiserver::kubeconfig::TOKEN),
        );
    }
    let req = b.body(Full::new(body.into())).unwrap();
    let resp = tokio::time::timeout(Duration::from_secs(10), client.request(req))
        .await
        .unwrap()
        .unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = tokio::time::timeout(Duration::from_secs(10), resp.into_body().collect())
        .await
        .unwrap()
        .unwrap()
        .to_bytes();
    Raw {
        status,
        headers,
        body,
    }
}

/// The status code of a kube API error, or 0.
pub fn code(e: &kube::Error) -> u16 {
    match e {
        kube::Error::Api(s) => s.code,
        _ => 0,
    }
}
