//! The demo app: a tiny HTTP server whose behaviour comes from its image tag
//! and env, so a canary can be made good or bad without building anything.
//!
//! ```text
//!   image weir-demo:v2, ERROR_RATE=0.2, LATENCY_MS=50
//!     GET /anything  → 200 {"version":"v2","pod":"…","peer":"127.1.0.7:41234",…} (80%)
//!                    → 500 same body with "status":500                          (20%)
//!     GET /healthz   → 200 always, no delay
//! ```

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use rand::Rng;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// Errors reading the demo app's configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// An env var held something that is not a number in range.
    #[error("invalid {var}={value:?}: {reason}")]
    Invalid {
        /// The variable's name.
        var: &'static str,
        /// Its value.
        value: String,
        /// What is wrong with it.
        reason: &'static str,
    },
}

/// How the demo app behaves.
#[derive(Clone, Debug, PartialEq)]
pub struct DemoConfig {
    /// Reported in every response body.
    pub version: String,
    /// Reported in every response body (`POD_NAME`).
    pub pod_name: String,
    /// Fraction of requests, 0..=1, answered with 500.
    pub error_rate: f64,
    /// Delay added before answering.
    pub latency: Duration,
    /// Extra uniformly random delay, 0..=jitter.
    pub jitter: Duration,
}

// === impl DemoConfig ===

impl Default for DemoConfig {
    fn default() -> Self {
        Self {
            version: "latest".into(),
            pod_name: String::new(),
            error_rate: 0.0,
            latency: Duration::ZERO,
            jitter: Duration::ZERO,
        }
    }
}

/// The tag of an image reference (`weir-demo:v2` → `v2`), ignoring a
/// registry port and any digest; `latest` when there is none.
pub fn image_tag(image: &str) -> &str {
    let image = image.split('@').next().unwrap_or(image);
    let last = image.rsplit('/').next().unwrap_or(image);
    match last.split_once(':') {
        Some((_, tag)) if !tag.is_empty() => tag,
        _ => "latest",
    }
}

fn parse_ms(var: &'static str, value: &str) -> Result<Duration, ConfigError> {
    let ms: f64 = value.trim().parse().map_err(|_| ConfigError::Invalid {
        var,
        value: value.into(),
        reason: "not a number",
    })?;
    if !(0.0..=3_600_000.0).contains(&ms) {
        return Err(ConfigError::Invalid {
            var,
            value: value.into(),
            reason: "must be between 0 and 3600000",
        });
    }
    Ok(Duration::from_secs_f64(ms / 1000.0))
}

impl DemoConfig {
    /// Reads the config from an image reference and env vars: the tag is the
    /// version unless `VERSION` is set; `ERROR_RATE`, `LATENCY_MS`,
    /// `LATENCY_JITTER_MS` and `POD_NAME` as documented on the fields.
    pub fn from_image_env(
        image: &str,
        env: &BTreeMap<String, String>,
    ) -> Result<Self, ConfigError> {
        let get = |k: &str| {
            env.get(k)
                .map(String::as_str)
                .filter(|v| !v.trim().is_empty())
        };
        let mut cfg = Self {
            version: image_tag(image).to_string(),
            ..Self::default()
        };
        if let Some(v) = get("VERSION") {
            cfg.version = v.to_string();
        }
        if let Some(v) = get("POD_NAME") {
            cfg.pod_name = v.to_string();
        }
        if let Some(v) = get("ERROR_RATE") {
            let rate: f64 = v.trim().parse().map_err(|_| ConfigError::Invalid {
                var: "ERROR_RATE",
                value: v.into(),
                reason: "not a number",
            })?;
            if !(0.0..=1.0).contains(&rate) {
                return Err(ConfigError::Invalid {
                    var: "ERROR_RATE",
                    value: v.into(),
                    reason: "must be between 0 and 1",
                });
            }
            cfg.error_rate = rate;
        }
        if let Some(v) = get("LATENCY_MS") {
            cfg.latency = parse_ms("LATENCY_MS", v)?;
        }
        if let Some(v) = get("LATENCY_JITTER_MS") {
            cfg.jitter = parse_ms("LATENCY_JITTER_MS", v)?;
        }
        Ok(cfg)
    }

    /// The status for a request given a uniform roll in `0..1`.
    pub fn status_for(&self, path: &str, roll: f64) -> StatusCode {
        if path == "/healthz" || roll >= self.error_rate {
            StatusCode::OK
        } else {
            StatusCode::INTERNAL_SERVER_ERROR
        }
    }

    /// The delay for a request given a uniform roll in `0..1`.
    pub fn delay_for(&self, path: &str, roll: f64) -> Duration {
        if path == "/healthz" {
            return Duration::ZERO;
        }
        self.latency + self.jitter.mul_f64(roll.clamp(0.0, 1.0))
    }

    /// The response body.
    pub fn body(&self, status: StatusCode, peer: SocketAddr, host: &str, path: &str) -> String {
        serde_json::json!({
            "version": self.version,
            "pod": self.pod_name,
            "peer": peer.to_string(),
            "host": host,
            "path": path,
            "status": status.as_u16(),
        })
        .to_string()
    }
}

async fn handle(
    cfg: Arc<DemoConfig>,
    peer: SocketAddr,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = req.uri().path().to_string();
    let host = req
        .headers()
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let (status_roll, delay_roll) = {
        let mut rng = rand::rng();
        (rng.random::<f64>(), rng.random::<f64>())
    };
    let delay = cfg.delay_for(&path, delay_roll);
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let status = cfg.status_for(&path, status_roll);
    let body = cfg.body(status, peer, &host, &path);
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    Ok(resp)
}

/// Serves the demo app on `listener` until `shutdown`; open connections are
/// closed when it returns (or when its task is dropped).
pub async fn serve(listener: TcpListener, cfg: DemoConfig, shutdown: CancellationToken) {
    let cfg = Arc::new(cfg);
    let mut conns = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            () = shutdown.cancelled() => break,
            Some(_) = conns.join_next(), if !conns.is_empty() => continue,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(error) => {
                tracing::debug!(%error, "demo app accept failed");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let cfg = cfg.clone();
        conns.spawn(async move {
            let svc = service_fn(move |req| handle(cfg.clone(), peer, req));
            let builder = auto::Builder::new(TokioExecutor::new());
            if let Err(error) = builder.serve_connection(TokioIo::new(stream), svc).await {
                tracing::trace!(%error, %peer, "demo app connection ended");
            }
        });
    }
}

#[cfg(test)]
mod tests;
