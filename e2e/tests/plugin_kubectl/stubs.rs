//! Stand-ins for what the local control plane does not offer: an API server that denies
//! writes as RBAC would, an unreachable cluster, and an SMI TrafficMetrics API.

use crate::plugin_support::rollout_yaml;
use anyhow::Result;
use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use kube::api::{Api, PostParams};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A copy of `kubeconfig` whose server is a closed port: (its path, the server URL).
pub fn unreachable_kubeconfig(kubeconfig: &Path) -> Result<(PathBuf, String)> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let url = format!("http://127.0.0.1:{port}");
    Ok((with_server(kubeconfig, &url, "unreachable")?, url))
}

fn with_server(kubeconfig: &Path, url: &str, suffix: &str) -> Result<PathBuf> {
    let mut doc: serde_yaml::Value = serde_yaml::from_str(&std::fs::read_to_string(kubeconfig)?)?;
    doc["clusters"][0]["cluster"]["server"] = serde_yaml::Value::from(url);
    let path = kubeconfig.with_file_name(format!("kubeconfig-{suffix}"));
    std::fs::write(&path, serde_yaml::to_string(&doc)?)?;
    Ok(path)
}

/// An API server stand-in that serves the Rollout `foobar` (Paused at step 2) and answers
/// every write with the 403 a real API server gives a user RBAC does not allow to patch
/// `rollouts/status`. The local control plane does not enforce RBAC yet.
pub struct ForbiddingServer {
    /// A kubeconfig pointing at it.
    pub kubeconfig: PathBuf,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for ForbiddingServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl ForbiddingServer {
    /// Starts it on a free port.
    pub async fn start(kubeconfig: &Path) -> Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        let mut rollout = serde_json::to_value(rollout_yaml("foobar"))?;
        rollout["status"] = serde_json::json!({
            "phase": "Paused", "stableRevision": 1, "canaryRevision": 2,
            "currentStepIndex": 1, "stepProgress": "2/4"
        });
        let rollout = Arc::new(rollout);
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let rollout = rollout.clone();
                let service = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let rollout = rollout.clone();
                    async move { Ok::<_, std::convert::Infallible>(answer(&req, &rollout)) }
                });
                tokio::spawn(async move {
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(Self {
            kubeconfig: with_server(kubeconfig, &url, "forbidding")?,
            task,
        })
    }
}

fn answer(
    req: &hyper::Request<hyper::body::Incoming>,
    rollout: &serde_json::Value,
) -> hyper::Response<Full<Bytes>> {
    let json = |code: u16, v: serde_json::Value| {
        hyper::Response::builder()
            .status(code)
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(v.to_string())))
            .unwrap_or_default()
    };
    let path = req.uri().path();
    if req.method() == hyper::Method::GET
        && path == "/apis/weir.dev/v1alpha1/namespaces/default/rollouts/foobar"
    {
        return json(200, rollout.clone());
    }
    let sub = if path.ends_with("/status") {
        "rollouts/status"
    } else {
        "rollouts"
    };
    json(
        403,
        serde_json::json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": format!("rollouts.weir.dev \"foobar\" is forbidden: User \"system:serviceaccount:default:viewer\" cannot {} resource \"{sub}\" in API group \"weir.dev\" in the namespace \"default\"", req.method().as_str().to_lowercase()),
            "reason": "Forbidden",
            "details": {"name": "foobar", "group": "weir.dev", "kind": "rollouts"},
            "code": 403
        }),
    )
}

/// A TrafficMetrics API stand-in registered through an APIService (plain HTTP), as any SMI
/// metrics server is: `deployments/foobar-v1` and `-v2` answer in the SMI shape.
pub struct MetricsApi {
    task: tokio::task::JoinHandle<()>,
    port: u16,
}

impl Drop for MetricsApi {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl MetricsApi {
    /// Registers the APIService and its Service (no endpoints yet: the API answers 503).
    pub async fn register(client: &kube::Client) -> Result<Self> {
        use k8s_openapi::api::core::v1::Service;
        use k8s_openapi::kube_aggregator::pkg::apis::apiregistration::v1::APIService;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let service = service_fn(|req: hyper::Request<hyper::body::Incoming>| async move {
                    Ok::<_, std::convert::Infallible>(metrics_answer(req.uri().path()))
                });
                tokio::spawn(async move {
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        let svc: Service = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "smi-metrics", "namespace": "default"},
            "spec": {"ports": [{"name": "http", "port": 80, "targetPort": 8080}]}
        }))?;
        Api::<Service>::namespaced(client.clone(), "default")
            .create(&PostParams::default(), &svc)
            .await?;
        let apiservice: APIService = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "v1alpha1.metrics.smi-spec.io",
                "annotations": {"weir.dev/aggregator-scheme": "http"}},
            "spec": {"group": "metrics.smi-spec.io", "version": "v1alpha1",
                "groupPriorityMinimum": 100, "versionPriority": 10, "insecureSkipTLSVerify": true,
                "service": {"namespace": "default", "name": "smi-metrics", "port": 80}}
        }))?;
        Api::<APIService>::all(client.clone())
            .create(&PostParams::default(), &apiservice)
            .await?;
        Ok(Self { task, port })
    }

    /// Gives the Service an endpoint: from now on the API answers.
    pub async fn serve(&self, client: &kube::Client) -> Result<()> {
        use k8s_openapi::api::discovery::v1::EndpointSlice;
        let slice: EndpointSlice = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "smi-metrics-1", "namespace": "default",
                "labels": {"kubernetes.io/service-name": "smi-metrics"}},
            "addressType": "IPv4",
            "endpoints": [{"addresses": ["127.0.0.1"], "conditions": {"ready": true}}],
            "ports": [{"name": "http", "port": self.port, "protocol": "TCP"}]
        }))?;
        Api::<EndpointSlice>::namespaced(client.clone(), "default")
            .create(&PostParams::default(), &slice)
            .await?;
        Ok(())
    }
}

fn metrics_answer(path: &str) -> hyper::Response<Full<Bytes>> {
    let prefix = "/apis/metrics.smi-spec.io/v1alpha1/namespaces/default/deployments/";
    let figures = match path.strip_prefix(prefix) {
        // (successes, failures, p50, p99) over the last 30s.
        Some("foobar-v1") => Some((1188, 12, "11m", "48m")),
        Some("foobar-v2") => Some((285, 15, "13m", "620m")),
        _ => None,
    };
    let (code, body) = match (path, figures) {
        ("/apis/metrics.smi-spec.io/v1alpha1", _) => (
            200,
            serde_json::json!({
                "kind": "APIResourceList", "apiVersion": "v1", "groupVersion": "metrics.smi-spec.io/v1alpha1",
                "resources": [{"name": "deployments", "namespaced": true, "kind": "TrafficMetrics", "verbs": ["get", "list"]}]
            }),
        ),
        (_, Some((ok, failed, p50, p99))) => (
            200,
            serde_json::json!({
                "apiVersion": "metrics.smi-spec.io/v1alpha1", "kind": "TrafficMetrics",
                "resource": {"kind": "Deployment", "namespace": "default", "name": path.trim_start_matches(prefix)},
                "timestamp": "2026-01-01T00:00:00Z", "window": "30s",
                "metrics": [
                    {"name": "p99_response_latency", "unit": "seconds", "value": p99},
                    {"name": "p90_response_latency", "unit": "seconds", "value": p99},
                    {"name": "p50_response_latency", "unit": "seconds", "value": p50},
                    {"name": "success_count", "value": ok},
                    {"name": "failure_count", "value": failed}
                ]
            }),
        ),
        _ => (
            404,
            serde_json::json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
            "reason": "NotFound", "code": 404, "message": format!("no metrics for {path}")}),
        ),
    };
    hyper::Response::builder()
        .status(code)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap_or_default()
}
