//! Tests of the Route, Balance and Observe layers over a stub endpoint, without sockets.

use super::*;
use crate::balance::{Balancer, Strategy};
use crate::fixtures::*;
use crate::index::{Index, Kind};
use crate::metrics::Metrics;
use http::Request;
use http_body_util::BodyExt;
use serde_json::json;
use tower::{Service, ServiceExt};

/// A stand-in for Forward: answers with the chosen endpoint's address.
fn stub() -> impl Service<
    Request<()>,
    Response = Response<ResponseBody>,
    Error = Infallible,
    Future = ResponseFuture,
> + Clone {
    tower::service_fn(|req: Request<()>| -> ResponseFuture {
        let addr = req
            .extensions()
            .get::<Endpoint>()
            .map(|e| e.addr.to_string())
            .unwrap_or_default();
        Box::pin(async move { Ok(Response::new(Either::Right(Full::new(Bytes::from(addr))))) })
    })
}

fn snapshot() -> tokio::sync::watch::Receiver<Arc<crate::snapshot::Snapshot>> {
    let mut ix = Index::new("prod");
    for name in ["foobar", "foobar-v1", "foobar-v2"] {
        ix.apply(Kind::Service, &mk_service("prod", name, 80, json!(8080)))
            .unwrap();
    }
    ix.apply(
        Kind::EndpointSlice,
        &mk_slice(
            "prod",
            "a",
            "foobar-v1",
            8080,
            &[("10.0.0.1", true, "v1-abc12-x")],
        ),
    )
    .unwrap();
    ix.apply(
        Kind::EndpointSlice,
        &mk_slice(
            "prod",
            "b",
            "foobar-v2",
            8080,
            &[("10.0.0.2", true, "v2-abc12-y")],
        ),
    )
    .unwrap();
    ix.apply(
        Kind::Pod,
        &mk_pod("prod", "v1-abc12-x", "10.0.0.1", "web", "foobar-v1"),
    )
    .unwrap();
    ix.apply(
        Kind::Pod,
        &mk_pod("prod", "client", "10.9.9.9", "loadgen", "client"),
    )
    .unwrap();
    ix.apply(
        Kind::TrafficSplit,
        &mk_split(
            "v1alpha4",
            "prod",
            "s",
            "foobar",
            &[("foobar-v1", json!(1)), ("foobar-v2", json!(0))],
        ),
    )
    .unwrap();
    tokio::sync::watch::channel(Arc::new(ix.snapshot())).1
}

fn request(host: &str) -> Request<()> {
    let mut req = Request::get("/").header("host", host).body(()).unwrap();
    req.extensions_mut()
        .insert(PeerAddr("10.9.9.9:5000".parse().unwrap()));
    req
}

async fn body(rsp: Response<ResponseBody>) -> String {
    String::from_utf8_lossy(&rsp.into_body().collect().await.unwrap().to_bytes()).into_owned()
}

#[tokio::test]
async fn the_stack_routes_through_the_split_and_records_the_edge() {
    let metrics = Arc::new(Metrics::default());
    let svc = tower::ServiceBuilder::new()
        .layer(ObserveLayer::new(metrics.clone()))
        .layer(RouteLayer::new(snapshot(), "prod"))
        .layer(BalanceLayer::new(Arc::new(Balancer::new(
            Strategy::P2cEwma,
        ))))
        .service(stub());
    let rsp = svc.clone().oneshot(request("foobar")).await.unwrap();
    assert_eq!(body(rsp).await, "10.0.0.1:8080");
    let n = metrics.requests_where(|k| {
        k.service == "foobar"
            && k.backend == "foobar-v1"
            && k.dst_deployment == "foobar-v1"
            && k.src_service_account == "loadgen"
            && k.success
    });
    assert_eq!(n, 1);
}

#[tokio::test]
async fn route_errors_are_answered_and_marked_without_calling_inward() {
    let metrics = Arc::new(Metrics::default());
    let svc = tower::ServiceBuilder::new()
        .layer(ObserveLayer::new(metrics.clone()))
        .layer(RouteLayer::new(snapshot(), "prod"))
        .service(tower::service_fn(|_: Request<()>| -> ResponseFuture {
            panic!("must not be called")
        }));
    let rsp = svc.oneshot(request("missing")).await.unwrap();
    assert_eq!(rsp.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        rsp.extensions().get::<ErrorKind>(),
        Some(&ErrorKind("unknown_host"))
    );
    assert!(
        metrics
            .render()
            .contains("weir_proxy_errors_total{kind=\"unknown_host\"} 1")
    );
}
