//! The weir-proxy binary in Kubernetes mode against the local API server: it routes from
//! watched Services, EndpointSlices and TrafficSplits, and a weight change made through the
//! API is enforced for the next request.
//!
//! The binary is the current build's `weir-proxy` ([`support::binaries`]); it listens on
//! addresses of a loopback block this test holds, so parallel runs never collide.

#[path = "support/lib.rs"]
mod support;

use anyhow::{Context, Result, ensure};
use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, PostParams};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::time::Duration;
use support::binaries::workspace_binary;
use support::{eventually, seen};
use tokio::time::Instant;
use weir_e2e::apiserver::{LocalApiServer, Options};
use weir_e2e::simulator::ipam::ClaimedBlock;

const SPLIT_CRD: &str = include_str!("../../crds/manifests/trafficsplits.split.smi-spec.io.yaml");
const ROUTES_CRD: &str =
    include_str!("../../crds/manifests/httproutegroups.specs.smi-spec.io.yaml");

/// A backend answering with its name.
async fn backend(name: &'static str) -> Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |_req| async move {
                    Ok::<_, std::convert::Infallible>(hyper::Response::new(Full::new(Bytes::from(
                        name,
                    ))))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    Ok(addr)
}

async fn create(client: &kube::Client, ar: &ApiResource, obj: Value) -> Result<()> {
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), "default", ar);
    let obj: DynamicObject = serde_json::from_value(obj)?;
    api.create(&PostParams::default(), &obj).await?;
    Ok(())
}

fn ar(group: &str, version: &str, kind: &str, plural: &str) -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural)
}

fn service(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
           "spec": {"ports": [{"name": "http", "port": 80, "targetPort": 8080}]}})
}

fn slice(svc: &str, addr: SocketAddr) -> Value {
    json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
           "metadata": {"name": format!("{svc}-x"), "labels": {"kubernetes.io/service-name": svc}},
           "addressType": "IPv4", "ports": [{"name": "http", "port": addr.port()}],
           "endpoints": [{"addresses": [addr.ip().to_string()], "conditions": {"ready": true}}]})
}

fn split(w1: u32, w2: u32) -> Value {
    json!({"apiVersion": "split.smi-spec.io/v1alpha2", "kind": "TrafficSplit",
           "metadata": {"name": "foobar-rollout"},
           "spec": {"service": "foobar", "backends": [
               {"service": "foobar-v1", "weight": w1}, {"service": "foobar-v2", "weight": w2}]}})
}

async fn get(url: &str, host: Option<&str>) -> Option<(u16, String)> {
    let client: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let mut req = hyper::Request::get(url);
    if let Some(h) = host {
        req = req.header("host", h);
    }
    let rsp = tokio::time::timeout(
        Duration::from_secs(2),
        client.request(req.body(Empty::new()).ok()?),
    )
    .await
    .ok()?
    .ok()?;
    let status = rsp.status().as_u16();
    let body = rsp.into_body().collect().await.ok()?.to_bytes();
    Some((status, String::from_utf8_lossy(&body).into_owned()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_source_routes_and_enforces_an_api_weight_change_for_the_next_request() -> Result<()> {
    let dir = std::env::temp_dir().join(format!("weir-proxy-kube-{}", std::process::id()));
    let server = LocalApiServer::start(Options {
        kubeconfig_path: Some(dir.join("kubeconfig")),
        ..Options::default()
    })
    .await?;
    let client = server.client().await?;
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in [SPLIT_CRD, ROUTES_CRD] {
        crds.create(&PostParams::default(), &serde_yaml::from_str(crd)?)
            .await?;
    }
    let services = ar("", "v1", "Service", "services");
    let slices = ar("discovery.k8s.io", "v1", "EndpointSlice", "endpointslices");
    let splits = ar(
        "split.smi-spec.io",
        "v1alpha2",
        "TrafficSplit",
        "trafficsplits",
    );
    let (v1, v2) = (backend("v1").await?, backend("v2").await?);
    for name in ["foobar", "foobar-v1", "foobar-v2"] {
        create(&client, &services, service(name)).await?;
    }
    create(&client, &slices, slice("foobar-v1", v1)).await?;
    create(&client, &slices, slice("foobar-v2", v2)).await?;
    create(&client, &splits, split(100, 0)).await?;

    let block = ClaimedBlock::claim(24)?;
    let ip = block.nth(1).context("an address of the block")?;
    let (data, admin) = (SocketAddr::from((ip, 8080)), SocketAddr::from((ip, 9990)));
    let mut child = tokio::process::Command::new(workspace_binary("weir-proxy")?)
        .args(["--listen", &data.to_string(), "--admin", &admin.to_string()])
        .args(["--namespace", "default", "--threads", "1"])
        // This test is about routing and weight changes; access control through the API is
        // tested in proxy_kube_access.rs.
        .args(["--default-policy", "allow"])
        .env("KUBECONFIG", server.kubeconfig_path())
        .env("RUST_LOG", "warn")
        .kill_on_drop(true)
        .spawn()?;
    let result = async {
        eventually(10, "the proxy ready", || async {
            let ready = get(&format!("http://{admin}/ready"), None).await;
            seen(ready.as_ref().map(|r| r.0) == Some(200), "/ready", ready).map(drop)
        })
        .await?;
        let url = format!("http://{data}/");
        eventually(10, "foobar routed to v1", || async {
            let answer = get(&url, Some("foobar")).await;
            seen(answer == Some((200, "v1".into())), "answer", answer).map(drop)
        })
        .await?;
        for _ in 0..20 {
            let answer = get(&url, Some("foobar")).await;
            ensure!(answer == Some((200, "v1".into())), "at 100/0: {answer:?}");
        }
        // Change the weights through the API; from the first v2 answer on, all are v2's.
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), "default", &splits);
        let mut current = api.get("foobar-rollout").await?;
        current.data["spec"] = split(0, 100)["spec"].clone();
        let start = Instant::now();
        api.replace("foobar-rollout", &PostParams::default(), &current)
            .await?;
        eventually(10, "the weight change enforced", || async {
            let answer = get(&url, Some("foobar.default.svc.cluster.local")).await;
            seen(answer == Some((200, "v2".into())), "answer", answer).map(drop)
        })
        .await?;
        println!(
            "API write to first request on the new weights: {:?} (polled every 50 ms)",
            start.elapsed()
        );
        for _ in 0..20 {
            let answer = get(&url, Some("foobar")).await;
            ensure!(answer == Some((200, "v2".into())), "at 0/100: {answer:?}");
        }
        Ok(())
    }
    .await;
    let _ = child.kill().await;
    server.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
    result
}
