//! The weir-proxy binary in Kubernetes mode against the local API server: it routes from
//! watched Services, EndpointSlices and TrafficSplits, and a weight change made through the
//! API is enforced for the next request.
//!
//! The binary is `$WEIR_PROXY_BIN`, or `weir-proxy` next to this test's target directory
//! (built with `cargo build -p weir-proxy --bin weir-proxy` when missing).

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, PostParams};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;
use tokio::time::Instant;
use weir_e2e::apiserver::{LocalApiServer, Options};

const SPLIT_CRD: &str = include_str!("../../crds/manifests/trafficsplits.split.smi-spec.io.yaml");
const ROUTES_CRD: &str =
    include_str!("../../crds/manifests/httproutegroups.specs.smi-spec.io.yaml");

fn proxy_bin() -> Result<PathBuf> {
    if let Ok(p) = std::env::var("WEIR_PROXY_BIN") {
        return Ok(PathBuf::from(p));
    }
    let exe = std::env::current_exe()?;
    let profile_dir = exe
        .parent()
        .and_then(|d| d.parent())
        .context("test binary has no target directory")?;
    let bin = profile_dir.join("weir-proxy");
    if !bin.exists() {
        let status = std::process::Command::new(env!("CARGO"))
            .args(["build", "-p", "weir-proxy", "--bin", "weir-proxy"])
            .status()?;
        if !status.success() {
            bail!("building weir-proxy failed");
        }
    }
    Ok(bin)
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

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

    let (data, admin) = (free_port()?, free_port()?);
    let mut child = tokio::process::Command::new(proxy_bin()?)
        .args([
            "--listen",
            &format!("127.0.0.1:{data}"),
            "--admin",
            &format!("127.0.0.1:{admin}"),
        ])
        .args(["--namespace", "default", "--threads", "1"])
        .env("KUBECONFIG", server.kubeconfig_path())
        .env("RUST_LOG", "warn")
        .kill_on_drop(true)
        .spawn()?;
    let result = async {
        let mut ready = false;
        for _ in 0..100 {
            if get(&format!("http://127.0.0.1:{admin}/ready"), None)
                .await
                .map(|r| r.0)
                == Some(200)
            {
                ready = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        if !ready {
            bail!("the proxy never became ready");
        }
        let url = format!("http://127.0.0.1:{data}/");
        for _ in 0..20 {
            assert_eq!(get(&url, Some("foobar")).await, Some((200, "v1".into())));
        }
        // Change the weights through the API and time until the next request follows them.
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), "default", &splits);
        let mut current = api.get("foobar-rollout").await?;
        current.data["spec"] = split(0, 100)["spec"].clone();
        let start = Instant::now();
        api.replace("foobar-rollout", &PostParams::default(), &current)
            .await?;
        let mut delay = None;
        for _ in 0..2000 {
            if get(&url, Some("foobar.default.svc.cluster.local"))
                .await
                .map(|r| r.1)
                .as_deref()
                == Some("v2")
            {
                delay = Some(start.elapsed());
                break;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let delay = delay.context("the weight change was never enforced")?;
        println!(
            "kube propagation delay (API write to first request on the new weights): {delay:?}"
        );
        for _ in 0..20 {
            assert_eq!(get(&url, Some("foobar")).await, Some((200, "v2".into())));
        }
        assert!(delay < Duration::from_secs(1), "{delay:?}");
        Ok(())
    }
    .await;
    let _ = child.kill().await;
    server.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
    result
}
