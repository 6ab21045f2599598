//! APIService proxying: a registered group/version is served by a tiny local HTTP backend.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers outside #[test] fns

#[path = "support/apiserver.rs"]
mod support;

use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::kube_aggregator::pkg::apis::apiregistration::v1::APIService;
use kube::api::{Api, PostParams};
use serde_json::json;
use std::convert::Infallible;
use support::raw;

fn tls_acceptor() -> tokio_rustls::TlsAcceptor {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(include_bytes!("fixtures/tls/backend.crt"))
            .collect::<Result<_, _>>()
            .unwrap();
    let key = PrivateKeyDer::from_pem_slice(include_bytes!("fixtures/tls/backend.key")).unwrap();
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(cfg))
}

/// Serves discovery for metrics.smi-spec.io/v1alpha1 and echoes every other request, over
/// HTTPS when `tls`.
async fn backend(tls: bool) -> (u16, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let acceptor = tls.then(tls_acceptor);
    let task = tokio::spawn(async move {
        for _ in 0..100 {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let svc = service_fn(|req: hyper::Request<hyper::body::Incoming>| async move {
                    let body = if req.uri().path() == "/apis/metrics.smi-spec.io/v1alpha1" {
                        json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": "metrics.smi-spec.io/v1alpha1",
                               "resources": [{"name": "deployments", "singularName": "", "namespaced": true,
                                              "kind": "TrafficMetrics", "verbs": ["get", "list"]}]})
                    } else {
                        let groups: Vec<String> = req
                            .headers()
                            .get_all("x-remote-group")
                            .iter()
                            .map(|v| v.to_str().unwrap_or_default().to_string())
                            .collect();
                        json!({"path": req.uri().to_string(),
                               "user": req.headers().get("x-remote-user").and_then(|v| v.to_str().ok()),
                               "groups": groups,
                               "authorization": req.headers().get("authorization").is_some()})
                    };
                    let mut resp = hyper::Response::new(Full::new(Bytes::from(body.to_string())));
                    resp.headers_mut()
                        .insert("content-type", "application/json".parse().unwrap());
                    Ok::<_, Infallible>(resp)
                });
                let http = hyper::server::conn::http1::Builder::new();
                match acceptor {
                    Some(a) => {
                        if let Ok(stream) = a.accept(tcp).await {
                            let _ = http.serve_connection(TokioIo::new(stream), svc).await;
                        }
                    }
                    None => {
                        let _ = http.serve_connection(TokioIo::new(tcp), svc).await;
                    }
                }
            });
        }
    });
    (port, task)
}

#[tokio::test]
async fn apiservice_requests_are_proxied_to_an_https_backend() {
    proxied(true).await;
}

#[tokio::test]
async fn apiservice_requests_are_proxied_to_a_plain_http_backend_when_annotated() {
    proxied(false).await;
}

async fn proxied(tls: bool) {
    // ClusterIPs from a block this test holds: below, nothing may listen on the Service's IP.
    let services = weir_e2e::simulator::ipam::ClaimedBlock::claim(24).unwrap();
    let (h, c) = support::start_with(weir_e2e::apiserver::Options {
        service_cidr: services.cidr(),
        ..weir_e2e::apiserver::Options::default()
    })
    .await;
    let (port, task) = backend(tls).await;
    let svc: Service = serde_json::from_value(
        json!({"metadata": {"name": "weir-metrics", "namespace": "default"},
        "spec": {"ports": [{"name": "https", "port": 443, "targetPort": 8443}]}}),
    )
    .unwrap();
    Api::<Service>::namespaced(c.clone(), "default")
        .create(&PostParams::default(), &svc)
        .await
        .unwrap();
    // HTTPS is the default, as with the real aggregator; plain HTTP needs the annotation.
    let annotations = if tls {
        json!({})
    } else {
        json!({"weir.dev/aggregator-scheme": "http"})
    };
    let apisvc: APIService = serde_json::from_value(json!({"metadata": {"name": "v1alpha1.metrics.smi-spec.io",
        "annotations": annotations},
        "spec": {"group": "metrics.smi-spec.io", "version": "v1alpha1", "groupPriorityMinimum": 100, "versionPriority": 10,
                 "insecureSkipTLSVerify": true,
                 "service": {"namespace": "default", "name": "weir-metrics", "port": 443}}})).unwrap();
    Api::<APIService>::all(c.clone())
        .create(&PostParams::default(), &apisvc)
        .await
        .unwrap();

    // No endpoints yet: the ClusterIP is tried and nothing listens there.
    let r = raw(
        &h,
        "GET",
        "/apis/metrics.smi-spec.io/v1alpha1/namespaces/default/deployments",
        &[],
        "",
    )
    .await;
    assert_eq!(r.status, 503, "{}", String::from_utf8_lossy(&r.body));

    let slice: EndpointSlice = serde_json::from_value(
        json!({"metadata": {"name": "weir-metrics-1", "namespace": "default",
        "labels": {"kubernetes.io/service-name": "weir-metrics"}}, "addressType": "IPv4",
        "endpoints": [{"addresses": ["127.0.0.1"], "conditions": {"ready": true}}],
        "ports": [{"name": "https", "port": port, "protocol": "TCP"}]}),
    )
    .unwrap();
    Api::<EndpointSlice>::namespaced(c.clone(), "default")
        .create(&PostParams::default(), &slice)
        .await
        .unwrap();

    let r = raw(
        &h,
        "GET",
        "/apis/metrics.smi-spec.io/v1alpha1/namespaces/default/deployments/web?x=1",
        &[("authorization", "Bearer weir-local-token")],
        "",
    )
    .await;
    assert_eq!(r.status, 200);
    let body = r.json();
    assert_eq!(
        body["path"],
        "/apis/metrics.smi-spec.io/v1alpha1/namespaces/default/deployments/web?x=1"
    );
    assert_eq!(body["user"], "weir-local-admin");
    assert_eq!(
        body["groups"],
        json!(["system:masters", "system:authenticated"])
    );
    assert_eq!(
        body["authorization"], false,
        "client credentials are not forwarded"
    );

    let groups = raw(&h, "GET", "/apis", &[], "").await.json();
    assert!(
        groups["groups"]
            .as_array()
            .unwrap()
            .iter()
            .any(|g| g["name"] == "metrics.smi-spec.io")
    );
    let disc = kube::Discovery::new(c.clone()).run().await.unwrap();
    assert!(
        disc.get("metrics.smi-spec.io").is_some(),
        "kube discovery follows the proxied resource list"
    );
    task.abort();
    h.shutdown().await;
}
