//! Finds the gateway pods (a reflector on pods labelled `app.kubernetes.io/name=weir-gateway`)
//! and scrapes each one's `admin` container port at `/metrics` every interval.

use super::exposition;
use super::store::{BUCKETS, REQUESTS, Store, TargetRef};
use crate::children::GATEWAY_NAME;
use crate::metrics::{Metrics, ScrapeLabels};
use futures::StreamExt;
use http_body_util::{BodyExt, Empty, Limited};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client as HttpClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::Timestamp;
use kube::runtime::reflector::{self, Store as Reflector};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, ResourceExt};
use parking_lot::Mutex;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// The largest scrape body accepted.
const MAX_BODY: usize = 32 * 1024 * 1024;

/// How the gateways are scraped.
#[derive(Debug, Clone)]
pub struct ScrapeConfig {
    /// How often.
    pub interval: Duration,
    /// How long one scrape may take.
    pub timeout: Duration,
}

/// One gateway pod to scrape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// The pod.
    pub target: TargetRef,
    /// Its admin address.
    pub addr: SocketAddr,
    /// Whether its Ready condition is True.
    pub ready: bool,
}

/// The admin endpoint of a gateway pod, if it has an IP and a container port named `admin`.
pub fn endpoint(pod: &Pod) -> Option<Endpoint> {
    if pod.metadata.deletion_timestamp.is_some() {
        return None;
    }
    let status = pod.status.as_ref()?;
    let ip = status.pod_ip.as_deref()?.parse().ok()?;
    let port = pod
        .spec
        .as_ref()?
        .containers
        .iter()
        .flat_map(|c| c.ports.iter().flatten())
        .find(|p| p.name.as_deref() == Some("admin"))?
        .container_port;
    let ready = status
        .conditions
        .iter()
        .flatten()
        .any(|c| c.type_ == "Ready" && c.status == "True");
    Some(Endpoint {
        target: TargetRef {
            namespace: pod.namespace()?,
            pod: pod.name_any(),
        },
        addr: SocketAddr::new(ip, u16::try_from(port).ok()?),
        ready,
    })
}

/// Scrapes forever: the caller aborts the task to stop.
pub async fn run(
    client: kube::Client,
    store: Arc<Mutex<Store>>,
    config: ScrapeConfig,
    metrics: Arc<Metrics>,
) {
    let pods: Api<Pod> = Api::all(client);
    let (reader, writer) = reflector::store();
    let selector = format!("app.kubernetes.io/name={GATEWAY_NAME}");
    let stream = watcher(pods, watcher::Config::default().labels(&selector))
        .default_backoff()
        .reflect(writer)
        .applied_objects();
    tokio::spawn(async move {
        futures::pin_mut!(stream);
        while let Some(event) = stream.next().await {
            if let Err(e) = event {
                tracing::warn!(error = %e, "watching gateway pods");
            }
        }
    });
    let http: HttpClient<HttpConnector, Empty<Bytes>> =
        HttpClient::builder(TokioExecutor::new()).build_http();
    let mut tick = tokio::time::interval(config.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        round(&reader, &http, &store, &config, &metrics).await;
    }
}

async fn round(
    reader: &Reflector<Pod>,
    http: &HttpClient<HttpConnector, Empty<Bytes>>,
    store: &Mutex<Store>,
    config: &ScrapeConfig,
    metrics: &Metrics,
) {
    let endpoints: Vec<Endpoint> = reader.state().iter().filter_map(|p| endpoint(p)).collect();
    let scrapes = endpoints.iter().map(|e| async move {
        let at = Timestamp::now().as_millisecond();
        let result = tokio::time::timeout(config.timeout, scrape(http, e.addr))
            .await
            .unwrap_or_else(|_| Err(format!("no answer within {:?}", config.timeout)));
        (e, at, result)
    });
    let results = futures::future::join_all(scrapes).await;
    let mut store = store.lock();
    let live: Vec<(TargetRef, bool)> = endpoints
        .iter()
        .map(|e| (e.target.clone(), e.ready))
        .collect();
    store.set_live(&live);
    for (e, at, result) in results {
        let ok = result.is_ok();
        match result {
            Ok(samples) => store.ingest(&e.target, at, samples),
            Err(error) => {
                tracing::debug!(pod = %e.target.pod, addr = %e.addr, %error, "scrape failed");
                store.scrape_failed(
                    &e.target,
                    at,
                    format!("GET http://{}/metrics: {error}", e.addr),
                );
            }
        }
        let labels = ScrapeLabels {
            result: if ok { "ok" } else { "error" }.into(),
        };
        metrics.scrapes.get_or_create(&labels).inc();
    }
    store.prune(Timestamp::now().as_millisecond());
    metrics.series.set(store.series_count() as i64);
    metrics.series_dropped.set(store.dropped_series() as i64);
}

async fn scrape(
    http: &HttpClient<HttpConnector, Empty<Bytes>>,
    addr: SocketAddr,
) -> Result<Vec<exposition::Sample>, String> {
    let uri: hyper::Uri = format!("http://{addr}/metrics")
        .parse()
        .map_err(|e| format!("{e}"))?;
    let response = http
        .get(uri)
        .await
        .map_err(|e| crate::controller::chain(&e))?;
    if !response.status().is_success() {
        return Err(format!("status {}", response.status()));
    }
    let body = Limited::new(response.into_body(), MAX_BODY)
        .collect()
        .await
        .map_err(|e| format!("reading the body: {e}"))?
        .to_bytes();
    let text = std::str::from_utf8(&body).map_err(|_| "the body is not UTF-8".to_string())?;
    exposition::parse(text, |name| name == REQUESTS || name == BUCKETS).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gateway_pod_is_scraped_on_its_admin_port_when_it_has_an_ip() {
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "weir-gateway-1", "namespace": "prod"},
            "spec": {"containers": [{"name": "proxy", "ports": [
                {"name": "http", "containerPort": 8080}, {"name": "admin", "containerPort": 9990}]}]},
            "status": {"podIP": "127.3.0.4", "conditions": [{"type": "Ready", "status": "True"}]}
        }))
        .unwrap();
        assert_eq!(
            endpoint(&pod),
            Some(Endpoint {
                target: TargetRef {
                    namespace: "prod".into(),
                    pod: "weir-gateway-1".into()
                },
                addr: "127.3.0.4:9990".parse().unwrap(),
                ready: true
            })
        );
        let mut no_ip = pod.clone();
        no_ip.status.as_mut().unwrap().pod_ip = None;
        assert_eq!(endpoint(&no_ip), None);
        let mut no_admin = pod.clone();
        no_admin.spec.as_mut().unwrap().containers[0]
            .ports
            .as_mut()
            .unwrap()
            .pop();
        assert_eq!(endpoint(&no_admin), None);
    }
}
