//! Tests of the whole stack over scripted endpoints, without sockets and (for anything about
//! time) on tokio's paused clock.

mod resilience;

use super::*;
use crate::fixtures::*;
use crate::index::{Index, Kind};
use crate::metrics::Metrics;
use http::Request;
use http_body_util::BodyExt;
use parking_lot::Mutex;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use tower::{Service, ServiceExt};

/// How a scripted endpoint answers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Behaviour {
    /// Answer with this status at once.
    Status(u16),
    /// Answer 200 after this long.
    Slow(Duration),
    /// Never answer.
    Stall,
    /// Refuse the connection.
    Refuse,
}

/// Stands in for Forward: each endpoint answers as scripted; every call is counted.
#[derive(Debug, Clone, Default)]
pub(super) struct Endpoints {
    script: Arc<Mutex<HashMap<SocketAddr, Behaviour>>>,
    calls: Arc<Mutex<HashMap<SocketAddr, u32>>>,
}

impl Endpoints {
    pub(super) fn set(&self, addr: &str, b: Behaviour) {
        self.script.lock().insert(addr.parse().unwrap(), b);
    }

    pub(super) fn calls(&self, addr: &str) -> u32 {
        let addr: SocketAddr = addr.parse().unwrap();
        self.calls.lock().get(&addr).copied().unwrap_or(0)
    }

    pub(super) fn total_calls(&self) -> u32 {
        self.calls.lock().values().sum()
    }
}

type EndpointFuture =
    Pin<Box<dyn Future<Output = Result<Response<ResponseBody>, ProxyError>> + Send>>;

impl Service<Request<RequestBody>> for Endpoints {
    type Response = Response<ResponseBody>;
    type Error = ProxyError;
    type Future = EndpointFuture;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), ProxyError>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<RequestBody>) -> EndpointFuture {
        let addr = req
            .extensions()
            .get::<Arc<crate::state::EndpointState>>()
            .unwrap()
            .addr;
        *self.calls.lock().entry(addr).or_default() += 1;
        let behaviour = self
            .script
            .lock()
            .get(&addr)
            .copied()
            .unwrap_or(Behaviour::Status(200));
        let ok = move |status: u16| {
            let mut rsp = Response::new(Either::Right(Full::new(Bytes::from(addr.to_string()))));
            *rsp.status_mut() = StatusCode::from_u16(status).unwrap();
            rsp
        };
        Box::pin(async move {
            match behaviour {
                Behaviour::Status(s) => Ok(ok(s)),
                Behaviour::Slow(d) => {
                    tokio::time::sleep(d).await;
                    Ok(ok(200))
                }
                Behaviour::Stall => std::future::pending().await,
                Behaviour::Refuse => Err(ProxyError::Connect {
                    endpoint: addr,
                    service: "scripted".into(),
                    source: "connection refused".into(),
                }),
            }
        })
    }
}

/// Namespace `prod`: Service `web` with endpoints at these addresses (Pods `web-<i>` of
/// ServiceAccount `web`), a client Pod at 10.9.9.9 (ServiceAccount `loadgen`), and `extra`.
pub(super) fn snapshot_with(
    endpoints: &[&str],
    extra: &[Value],
) -> (
    tokio::sync::watch::Receiver<Arc<Snapshot>>,
    Arc<Metrics>,
    Index,
) {
    let metrics = Arc::new(Metrics::default());
    let mut ix = Index::with_metrics("prod", metrics.clone());
    ix.apply(Kind::Service, &mk_service("prod", "web", 80, json!(8080)))
        .unwrap();
    let eps: Vec<(String, String)> = endpoints
        .iter()
        .enumerate()
        .map(|(i, a)| {
            (
                a.split(':').next().unwrap().to_string(),
                format!("web-abc12-{i}"),
            )
        })
        .collect();
    let refs: Vec<(&str, bool, &str)> = eps
        .iter()
        .map(|(ip, pod)| (ip.as_str(), true, pod.as_str()))
        .collect();
    ix.apply(
        Kind::EndpointSlice,
        &mk_slice("prod", "web-a", "web", 8080, &refs),
    )
    .unwrap();
    for (ip, pod) in &eps {
        ix.apply(Kind::Pod, &mk_pod("prod", pod, ip, "web", "web"))
            .unwrap();
    }
    ix.apply(
        Kind::Pod,
        &mk_pod("prod", "client", "10.9.9.9", "loadgen", "client"),
    )
    .unwrap();
    for o in extra {
        let kind = crate::index::objects::kind_of(o["kind"].as_str().unwrap()).unwrap();
        ix.apply(kind, o).unwrap();
    }
    let rx = tokio::sync::watch::channel(Arc::new(ix.snapshot())).1;
    (rx, metrics, ix)
}

/// The whole stack over `endpoints`, for a client at 10.9.9.9.
pub(super) fn stack(
    snapshots: tokio::sync::watch::Receiver<Arc<Snapshot>>,
    metrics: Arc<Metrics>,
    endpoints: Endpoints,
    default_policy: DefaultPolicy,
) -> impl Service<
    Request<()>,
    Response = Response<ResponseBody>,
    Error = std::convert::Infallible,
    Future: Send,
> + Clone
+ Send
+ 'static {
    let config = StackConfig {
        namespace: "prod".into(),
        default_policy,
        ..StackConfig::default()
    };
    new_stack(&config, snapshots, metrics, endpoints).with_peer("10.9.9.9:5000".parse().unwrap())
}

pub(super) fn get(path: &str) -> Request<()> {
    Request::get(path).header("host", "web").body(()).unwrap()
}

pub(super) async fn body(rsp: Response<ResponseBody>) -> String {
    String::from_utf8_lossy(&rsp.into_body().collect().await.unwrap().to_bytes()).into_owned()
}

fn allow_all() -> Vec<Value> {
    vec![
        mk_route_group(
            "prod",
            "all",
            json!([{"name": "all", "pathRegex": ".*", "methods": ["*"]}]),
        ),
        mk_target(
            "prod",
            "t",
            "web",
            json!([{"kind": "HTTPRouteGroup", "name": "all"}]),
            &["loadgen"],
        ),
    ]
}

#[tokio::test]
async fn an_allowed_request_reaches_the_endpoint_and_is_recorded_with_its_source_pod() {
    let (snaps, metrics, _ix) = snapshot_with(&["10.0.0.1:8080"], &allow_all());
    let svc = stack(
        snaps,
        metrics.clone(),
        Endpoints::default(),
        DefaultPolicy::Deny,
    );
    let rsp = svc.oneshot(get("/")).await.unwrap();
    assert_eq!(rsp.status(), 200);
    assert_eq!(body(rsp).await, "10.0.0.1:8080");
    let n = metrics.requests_where(|dst, src, status, ok| {
        &*dst.service == "web"
            && &*dst.dst_pod == "web-abc12-0"
            && &*dst.dst_deployment == "web"
            && &*src.pod == "client"
            && &*src.service_account == "loadgen"
            && status == 200
            && ok
    });
    assert_eq!(n, 1);
}

#[tokio::test]
async fn without_a_traffic_target_every_request_is_denied_with_a_403_naming_both_ends() {
    let (snaps, metrics, _ix) = snapshot_with(&["10.0.0.1:8080"], &[]);
    let endpoints = Endpoints::default();
    let svc = stack(
        snaps,
        metrics.clone(),
        endpoints.clone(),
        DefaultPolicy::Deny,
    );
    let rsp = svc.oneshot(get("/")).await.unwrap();
    assert_eq!(rsp.status(), StatusCode::FORBIDDEN);
    let text = body(rsp).await;
    assert!(
        text.contains("ServiceAccount prod/loadgen")
            && text.contains("ServiceAccount prod/web")
            && text.contains("no TrafficTarget"),
        "{text}"
    );
    assert_eq!(text.lines().count(), 1, "{text}");
    assert_eq!(endpoints.total_calls(), 0);
    let rendered = metrics.render();
    assert!(
        rendered.contains("weir_denied_total{namespace=\"prod\",service=\"web\",backend=\"web\",reason=\"no_traffic_target\"} 1"),
        "{rendered}"
    );
}

#[tokio::test]
async fn the_permissive_default_opens_only_destinations_no_traffic_target_names() {
    let (snaps, metrics, _ix) = snapshot_with(&["10.0.0.1:8080"], &[]);
    let svc = stack(
        snaps,
        metrics.clone(),
        Endpoints::default(),
        DefaultPolicy::Allow,
    );
    assert_eq!(svc.clone().oneshot(get("/")).await.unwrap().status(), 200);
    // Once a TrafficTarget names `web`, it is enforced: this one allows another client only.
    let target = mk_target(
        "prod",
        "t",
        "web",
        json!([{"kind": "HTTPRouteGroup", "name": "all"}]),
        &["other"],
    );
    let mut extra = allow_all();
    extra[1] = target;
    let (snaps, metrics, _ix) = snapshot_with(&["10.0.0.1:8080"], &extra);
    let svc = stack(snaps, metrics, Endpoints::default(), DefaultPolicy::Allow);
    assert_eq!(
        svc.oneshot(get("/")).await.unwrap().status(),
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn route_errors_are_answered_and_counted_without_calling_inward() {
    let (snaps, metrics, _ix) = snapshot_with(&["10.0.0.1:8080"], &allow_all());
    let endpoints = Endpoints::default();
    let svc = stack(
        snaps,
        metrics.clone(),
        endpoints.clone(),
        DefaultPolicy::Deny,
    );
    let req = Request::get("/")
        .header("host", "missing")
        .body(())
        .unwrap();
    let rsp = svc.oneshot(req).await.unwrap();
    assert_eq!(rsp.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        rsp.extensions().get::<ErrorKind>(),
        Some(&ErrorKind("unknown_host"))
    );
    assert_eq!(endpoints.total_calls(), 0);
    let rendered = metrics.render();
    assert!(
        rendered.contains("weir_proxy_errors_total{kind=\"unknown_host\"} 1"),
        "{rendered}"
    );
    assert!(
        rendered.contains("weir_requests_total{namespace=\"\",service=\"\",backend=\"\",dst_deployment=\"\",dst_pod=\"\",src_namespace=\"prod\",src_service_account=\"loadgen\",src_pod=\"client\",status_code=\"404\",classification=\"failure\"} 1"),
        "{rendered}"
    );
}

#[tokio::test]
async fn the_series_of_a_pod_that_is_gone_are_forgotten() {
    let mut objects = allow_all();
    objects.push(mk_policy(
        "prod",
        "rr",
        "web",
        json!({"loadBalancer": "round-robin"}),
    ));
    let (snaps, metrics, mut ix) = snapshot_with(&["10.0.0.1:8080", "10.0.0.2:8080"], &objects);
    let (tx, rx) = tokio::sync::watch::channel(snaps.borrow().clone());
    let svc = stack(
        rx,
        metrics.clone(),
        Endpoints::default(),
        DefaultPolicy::Deny,
    );
    for _ in 0..20 {
        assert_eq!(svc.clone().oneshot(get("/")).await.unwrap().status(), 200);
    }
    // Request series only (other families name endpoints too).
    let series = |text: &str, label: &str| {
        text.lines()
            .filter(|l| l.starts_with("weir_requests_total{") && l.contains(label))
            .count()
    };
    let before = metrics.render();
    assert_eq!(series(&before, "dst_pod=\"web-abc12-0\""), 1, "{before}");
    assert_eq!(series(&before, "dst_pod=\"web-abc12-1\""), 1, "{before}");
    // Pod web-abc12-1 and its endpoint go away.
    ix.apply(
        Kind::EndpointSlice,
        &mk_slice(
            "prod",
            "web-a",
            "web",
            8080,
            &[("10.0.0.1", true, "web-abc12-0")],
        ),
    )
    .unwrap();
    ix.delete(Kind::Pod, "prod", "web-abc12-1");
    drop(snaps);
    tx.send_replace(Arc::new(ix.snapshot()));
    drop(svc);
    let after = metrics.render();
    assert_eq!(series(&after, "dst_pod=\"web-abc12-0\""), 1, "{after}");
    assert_eq!(series(&after, "dst_pod=\"web-abc12-1\""), 0, "{after}");
    // The client Pod goes too: its series go with it.
    ix.delete(Kind::Pod, "prod", "client");
    tx.send_replace(Arc::new(ix.snapshot()));
    let after = metrics.render();
    assert_eq!(series(&after, "src_pod=\"client\""), 0, "{after}");
}

#[tokio::test]
async fn an_in_flight_count_is_released_when_the_response_future_is_dropped() {
    let (snaps, metrics, _ix) = snapshot_with(&["10.0.0.1:8080"], &allow_all());
    let endpoints = Endpoints::default();
    endpoints.set("10.0.0.1:8080", Behaviour::Stall);
    let svc = stack(
        snaps.clone(),
        metrics,
        endpoints.clone(),
        DefaultPolicy::Deny,
    );
    let state = snaps.borrow().route("prod", "web").unwrap().root.ports[0].endpoints[0]
        .state
        .clone();
    let mut fut = Box::pin(svc.oneshot(get("/")));
    // Drive it until the endpoint has the request, then drop it.
    let polled = futures::poll!(fut.as_mut());
    assert!(polled.is_pending());
    assert_eq!(endpoints.calls("10.0.0.1:8080"), 1);
    assert_eq!(state.pending(), 1);
    drop(fut);
    assert_eq!(
        state.pending(),
        0,
        "the dropped request is no longer counted in flight"
    );
}

#[tokio::test]
async fn requests_beyond_max_in_flight_are_shed_at_once() {
    let (snaps, metrics, _ix) = snapshot_with(&["10.0.0.1:8080"], &allow_all());
    let endpoints = Endpoints::default();
    endpoints.set("10.0.0.1:8080", Behaviour::Stall);
    let config = StackConfig {
        namespace: "prod".into(),
        max_in_flight: 1,
        ..StackConfig::default()
    };
    let svc = new_stack(&config, snaps, metrics.clone(), endpoints.clone())
        .with_peer("10.9.9.9:5000".parse().unwrap());
    let mut held = Box::pin(svc.clone().oneshot(get("/")));
    assert!(futures::poll!(held.as_mut()).is_pending());
    let rsp = svc.clone().oneshot(get("/")).await.unwrap();
    assert_eq!(rsp.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(body(rsp).await.contains("overloaded"));
    assert_eq!(
        endpoints.calls("10.0.0.1:8080"),
        1,
        "the shed request was not sent"
    );
    drop(held);
    endpoints.set("10.0.0.1:8080", Behaviour::Status(200));
    assert_eq!(
        svc.oneshot(get("/")).await.unwrap().status(),
        200,
        "the slot is free again"
    );
}
