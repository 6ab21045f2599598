//! The proxy's Kubernetes source feeds access control and TrafficPolicies: against the local
//! API server, a client Pod is denied, then allowed by a TrafficTarget created through the
//! API (an HTTPRouteGroup rule, then a TCPRoute rule), denied again when it is deleted, and a
//! TrafficPolicy applied through the API changes what it gets.
//!
//! The proxy runs in-process (its library, with the Kubernetes source), so the test always
//! runs the code of this build.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/apiserver.rs"]
mod apiserver_support;
#[path = "support/eventually.rs"]
#[allow(dead_code)]
mod wait;

use apiserver_support::start;
use bytes::Bytes;
use clap::Parser;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams,
};
use serde_json::{Value, json};
use std::net::SocketAddr;
use weir_proxy::app::{self, Args};
use weir_proxy::source::Source;

const CRDS: [&str; 5] = [
    include_str!("../../crds/manifests/trafficsplits.split.smi-spec.io.yaml"),
    include_str!("../../crds/manifests/httproutegroups.specs.smi-spec.io.yaml"),
    include_str!("../../crds/manifests/tcproutes.specs.smi-spec.io.yaml"),
    include_str!("../../crds/manifests/traffictargets.access.smi-spec.io.yaml"),
    include_str!("../../crds/manifests/trafficpolicies.weir.dev.yaml"),
];

/// The client Pod's address (its ServiceAccount is `prometheus`).
const CLIENT_IP: &str = "127.63.0.1";

fn ar(group: &str, version: &str, kind: &str, plural: &str) -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural)
}

async fn create(client: &kube::Client, ar: &ApiResource, obj: Value) {
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), "default", ar);
    let obj: DynamicObject = serde_json::from_value(obj).unwrap();
    api.create(&PostParams::default(), &obj).await.unwrap();
}

async fn delete(client: &kube::Client, ar: &ApiResource, name: &str) {
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), "default", ar);
    api.delete(name, &DeleteParams::default()).await.unwrap();
}

/// A Pod with an IP (set through the status subresource, as a kubelet does).
async fn pod(client: &kube::Client, name: &str, ip: &str, sa: &str) {
    let pods = ar("", "v1", "Pod", "pods");
    create(
        client,
        &pods,
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
               "spec": {"serviceAccountName": sa, "containers": [{"name": "app", "image": "x"}]}}),
    )
    .await;
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), "default", &pods);
    api.patch_status(
        name,
        &PatchParams::default(),
        &Patch::Merge(json!({"status": {"podIP": ip, "podIPs": [{"ip": ip}]}})),
    )
    .await
    .unwrap();
}

/// A backend answering with "api".
async fn backend() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(|_req| async {
                    Ok::<_, std::convert::Infallible>(hyper::Response::new(
                        http_body_util::Full::new(Bytes::from("api")),
                    ))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    addr
}

/// GET / with `Host: api` from the client Pod's address: status and body.
async fn call(proxy: SocketAddr) -> (u16, String) {
    let mut connector = HttpConnector::new();
    connector.set_local_address(Some(CLIENT_IP.parse().unwrap()));
    let client: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new()).build(connector);
    let req = hyper::Request::get(format!("http://{proxy}/"))
        .header("host", "api")
        .body(Empty::new())
        .unwrap();
    let rsp = client.request(req).await.unwrap();
    let status = rsp.status().as_u16();
    let body = rsp.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

/// Polls until an answer satisfies `done` (at most 10 s); returns the last answer and whether
/// it did.
async fn poll(proxy: SocketAddr, done: impl Fn(&(u16, String)) -> bool) -> ((u16, String), bool) {
    let last = std::sync::Arc::new(parking_lot::Mutex::new((0, String::new())));
    let ok = wait::eventually(10, "the awaited answer", || {
        let last = last.clone();
        let done = &done;
        async move {
            let answer = call(proxy).await;
            let ok = done(&answer);
            *last.lock() = answer;
            ok
        }
    })
    .await
    .is_ok();
    let answer = last.lock().clone();
    (answer, ok)
}

/// Polls until the proxy answers `want` (at most 10 s); fails with the last answer.
async fn until(proxy: SocketAddr, want: u16, what: &str) {
    let (last, ok) = poll(proxy, |a| a.0 == want).await;
    assert!(ok, "{what}: wanted {want}, last answer {last:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traffic_targets_and_policies_from_the_api_are_enforced() {
    let (server, client) = start().await;
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in CRDS {
        crds.create(&PostParams::default(), &serde_yaml::from_str(crd).unwrap())
            .await
            .unwrap();
    }
    let api_addr = backend().await;
    create(
        &client,
        &ar("", "v1", "Service", "services"),
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "api"},
               "spec": {"ports": [{"name": "http", "port": 80, "targetPort": 8080}]}}),
    )
    .await;
    create(
        &client,
        &ar("discovery.k8s.io", "v1", "EndpointSlice", "endpointslices"),
        json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
               "metadata": {"name": "api-x", "labels": {"kubernetes.io/service-name": "api"}},
               "addressType": "IPv4", "ports": [{"name": "http", "port": api_addr.port()}],
               "endpoints": [{"addresses": [api_addr.ip().to_string()], "conditions": {"ready": true},
                              "targetRef": {"kind": "Pod", "name": "api-0", "namespace": "default"}}]}),
    )
    .await;
    pod(&client, "api-0", &api_addr.ip().to_string(), "api-service").await;
    pod(&client, "client-0", CLIENT_IP, "prometheus").await;

    let args = Args::parse_from([
        "weir-proxy",
        "--listen",
        "127.0.0.1:0",
        "--admin",
        "127.0.0.1:0",
        "--namespace",
        "default",
    ]);
    let source = Source::Kube {
        client: client.clone(),
        namespace: Some("default".into()),
    };
    let running = app::start(&args, source).await.unwrap();
    let proxy = running.data_addr;

    // No TrafficTarget: denied (once the client Pod is known, the 403 names its identity).
    let (last, known) = poll(proxy, |a| a.1.contains("ServiceAccount default/prometheus")).await;
    assert!(known, "the 403 never named the client Pod: {last:?}");
    assert_eq!(last.0, 403);
    assert!(last.1.contains("no TrafficTarget allows"), "{}", last.1);

    // A TrafficTarget (v1alpha2) with an HTTPRouteGroup rule allows it.
    let groups = ar(
        "specs.smi-spec.io",
        "v1alpha4",
        "HTTPRouteGroup",
        "httproutegroups",
    );
    create(
        &client,
        &groups,
        json!({"apiVersion": "specs.smi-spec.io/v1alpha4", "kind": "HTTPRouteGroup",
               "metadata": {"name": "all"}, "spec": {"matches": [{"name": "all", "pathRegex": "/.*"}]}}),
    )
    .await;
    let targets = ar(
        "access.smi-spec.io",
        "v1alpha2",
        "TrafficTarget",
        "traffictargets",
    );
    let target = |rule: Value| {
        json!({"apiVersion": "access.smi-spec.io/v1alpha2", "kind": "TrafficTarget",
               "metadata": {"name": "t"},
               "spec": {"destination": {"kind": "ServiceAccount", "name": "api-service", "namespace": "default"},
                        "rules": [rule],
                        "sources": [{"kind": "ServiceAccount", "name": "prometheus", "namespace": "default"}]}})
    };
    create(
        &client,
        &targets,
        target(json!({"kind": "HTTPRouteGroup", "name": "all"})),
    )
    .await;
    until(proxy, 200, "allowed by the TrafficTarget").await;

    // A TrafficPolicy that aborts every request, then its removal.
    let policies = ar("weir.dev", "v1alpha1", "TrafficPolicy", "trafficpolicies");
    create(
        &client,
        &policies,
        json!({"apiVersion": "weir.dev/v1alpha1", "kind": "TrafficPolicy", "metadata": {"name": "p"},
               "spec": {"targetRef": {"kind": "Service", "name": "api"},
                        "faultInjection": {"abort": {"percent": 100, "httpStatus": 418}}}}),
    )
    .await;
    until(proxy, 418, "the TrafficPolicy's abort").await;
    delete(&client, &policies, "p").await;
    until(proxy, 200, "the TrafficPolicy removed").await;

    // Deleting the TrafficTarget denies again; a TCPRoute rule (v1alpha1 shape) allows again.
    delete(&client, &targets, "t").await;
    until(proxy, 403, "denied once the TrafficTarget is gone").await;
    create(
        &client,
        &ar("specs.smi-spec.io", "v1alpha4", "TCPRoute", "tcproutes"),
        json!({"apiVersion": "specs.smi-spec.io/v1alpha4", "kind": "TCPRoute",
               "metadata": {"name": "tcp"}, "spec": {"matches": {"ports": [api_addr.port()]}}}),
    )
    .await;
    create(
        &client,
        &targets,
        target(json!({"kind": "TCPRoute", "name": "tcp"})),
    )
    .await;
    until(proxy, 200, "allowed by a TCPRoute rule").await;

    running.shutdown();
    running.wait().await;
    server.shutdown().await;
}
