//! The workload simulator against the in-process API server: Deployments
//! become serving pods, Services get slices and a working ClusterIP, and
//! images that cannot run say why.
//!
//! Each test uses its own pod and ClusterIP ranges, because nextest runs
//! tests in parallel processes that share the loopback network.

use std::collections::BTreeSet;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{Endpoints, Event, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde_json::json;
use weir_e2e::apiserver::{Handle, LocalApiServer, Options};
use weir_e2e::loadgen::{self, LoadOptions};
use weir_e2e::simulator::{Simulator, SimulatorOptions};

/// A local API server with a simulator on its own 127.<octet>.0.0/16 pods.
struct Cluster {
    server: Option<Handle>,
    sim: Option<Simulator>,
    client: Client,
}

impl Cluster {
    async fn start(octet: u8) -> Result<Self> {
        let server = LocalApiServer::start(Options::default()).await?;
        let client = server.client().await?;
        let opts = SimulatorOptions {
            pod_cidr: (Ipv4Addr::new(127, octet, 0, 0), 16),
            kubeconfig: Some(server.kubeconfig_path().to_path_buf()),
            resync: Duration::from_secs(2),
            ..SimulatorOptions::default()
        };
        let sim = Simulator::start(client.clone(), opts).await?;
        Ok(Self {
            server: Some(server),
            sim: Some(sim),
            client,
        })
    }

    fn api<K>(&self) -> Api<K>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
    {
        Api::namespaced(self.client.clone(), "default")
    }

    async fn stop(mut self) {
        if let Some(sim) = self.sim.take() {
            sim.shutdown().await;
        }
        if let Some(server) = self.server.take() {
            server.shutdown().await;
        }
    }
}

/// Polls `check` every 100 ms until it returns `Some`, for at most `secs`.
async fn eventually<T, F, Fut>(secs: u64, what: &str, mut check: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<T>>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    let mut last = String::from("never checked");
    while tokio::time::Instant::now() < deadline {
        match check().await {
            Ok(Some(v)) => return Ok(v),
            Ok(None) => last = "not yet".into(),
            Err(e) => last = format!("{e:#}"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("timed out after {secs}s waiting for {what} ({last})")
}

fn deployment(name: &str, replicas: i32, image: &str) -> Result<Deployment> {
    Ok(serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": { "name": name, "namespace": "default" },
        "spec": {
            "replicas": replicas,
            "selector": { "matchLabels": { "app": name } },
            "template": {
                "metadata": { "labels": { "app": name } },
                "spec": { "containers": [{
                    "name": "app", "image": image,
                    "ports": [{ "name": "http", "containerPort": 8080 }],
                }]},
            },
        },
    }))?)
}

fn service(name: &str, cluster_ip: &str) -> Result<Service> {
    Ok(serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": { "name": name, "namespace": "default" },
        "spec": {
            "clusterIP": cluster_ip,
            "selector": { "app": name },
            "ports": [{ "name": "http", "port": 80, "targetPort": "http" }],
        },
    }))?)
}

fn ready(p: &Pod) -> bool {
    let conds = p.status.as_ref().and_then(|s| s.conditions.as_ref());
    conds.is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

fn pod_ip(p: &Pod) -> Option<Ipv4Addr> {
    p.status.as_ref()?.pod_ip.as_deref()?.parse().ok()
}

/// The live pods of app `name` once exactly `n` exist and all are ready.
async fn ready_pods(c: &Cluster, name: &str, n: usize) -> Result<Vec<Pod>> {
    let pods: Api<Pod> = c.api();
    let lp = ListParams::default().labels(&format!("app={name}"));
    eventually(30, &format!("{n} ready pods of {name}"), || async {
        let list = pods.list(&lp).await?;
        let live: Vec<Pod> = list
            .items
            .into_iter()
            .filter(|p| p.metadata.deletion_timestamp.is_none())
            .collect();
        Ok((live.len() == n && live.iter().all(ready)).then_some(live))
    })
    .await
}

/// One HTTP GET from `source`, returning the demo app's JSON body.
async fn get_from(source: IpAddr, target: SocketAddr) -> Result<serde_json::Value> {
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(source, 0))?;
    let mut stream = socket.connect(target).await?;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: foobar\r\nConnection: close\r\n\r\n")
        .await?;
    let mut out = String::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_string(&mut out)).await??;
    let body = out.split("\r\n\r\n").nth(1).context("no body")?;
    Ok(serde_json::from_str(body)?)
}

#[tokio::test]
async fn deployment_becomes_three_pods_on_distinct_ips_answering_with_their_version() -> Result<()>
{
    let c = Cluster::start(21).await?;
    let deploys: Api<Deployment> = c.api();
    deploys
        .create(
            &PostParams::default(),
            &deployment("web", 3, "weir-demo:v1")?,
        )
        .await?;
    let pods = ready_pods(&c, "web", 3).await?;
    let ips: BTreeSet<Ipv4Addr> = pods.iter().filter_map(pod_ip).collect();
    assert_eq!(ips.len(), 3, "distinct IPs: {ips:?}");
    for p in &pods {
        let ip = pod_ip(p).context("pod ip")?;
        assert!(ip.is_loopback() && ip != Ipv4Addr::LOCALHOST, "{ip}");
        let name = p.metadata.name.clone().unwrap_or_default();
        assert!(name.starts_with("web-"), "{name}");
        let spec = p.spec.as_ref().context("spec")?;
        assert_eq!(spec.service_account_name.as_deref(), Some("default"));
        let labels = p.metadata.labels.clone().unwrap_or_default();
        assert!(labels.contains_key("pod-template-hash"));
        let owner = &p.metadata.owner_references.as_ref().context("owner")?[0];
        assert_eq!(owner.kind, "ReplicaSet");
        assert_eq!(
            name.rsplit_once('-').map(|(rs, _)| rs),
            Some(owner.name.as_str())
        );
        let body = get_from(
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            SocketAddr::from((ip, 8080)),
        )
        .await?;
        assert_eq!(body["version"], "v1");
        assert_eq!(body["pod"], name.as_str());
    }
    let rs: Api<ReplicaSet> = c.api();
    let sets = rs.list(&ListParams::default()).await?.items;
    assert_eq!(sets.len(), 1);
    let owner = &sets[0]
        .metadata
        .owner_references
        .as_ref()
        .context("rs owner")?[0];
    assert_eq!(
        (owner.kind.as_str(), owner.controller),
        ("Deployment", Some(true))
    );
    let status = eventually(15, "deployment available 3", || async {
        let d = deploys.get("web").await?;
        let st = d.status.clone().unwrap_or_default();
        let done =
            st.available_replicas == Some(3) && st.observed_generation == d.metadata.generation;
        Ok(done.then_some(st))
    })
    .await?;
    assert_eq!(
        (
            status.ready_replicas,
            status.updated_replicas,
            status.replicas
        ),
        (Some(3), Some(3), Some(3))
    );
    let conds = status.conditions.unwrap_or_default();
    let available = conds
        .iter()
        .find(|c| c.type_.as_deref() == Some("Available"))
        .context("Available")?;
    assert_eq!(available.status.as_deref(), Some("True"));
    c.stop().await;
    Ok(())
}

#[tokio::test]
async fn cluster_ip_forwards_to_an_endpoint_that_sees_the_client_pod_ip() -> Result<()> {
    let c = Cluster::start(22).await?;
    let deploys: Api<Deployment> = c.api();
    deploys
        .create(
            &PostParams::default(),
            &deployment("web", 3, "weir-demo:v1")?,
        )
        .await?;
    deploys
        .create(
            &PostParams::default(),
            &deployment("client", 1, "weir-demo:v1")?,
        )
        .await?;
    let pods = ready_pods(&c, "web", 3).await?;
    let client_ip = pod_ip(&ready_pods(&c, "client", 1).await?[0]).context("client ip")?;
    let svcs: Api<Service> = c.api();
    svcs.create(&PostParams::default(), &service("web", "127.97.22.1")?)
        .await?;
    let names: BTreeSet<String> = pods
        .iter()
        .filter_map(|p| p.metadata.name.clone())
        .collect();
    let slices: Api<EndpointSlice> = c.api();
    let slice = eventually(15, "an EndpointSlice with 3 ready endpoints", || async {
        let lp = ListParams::default().labels("kubernetes.io/service-name=web");
        let list = slices.list(&lp).await?.items;
        Ok(list.into_iter().find(|s| {
            let eps = s.endpoints.clone().unwrap_or_default();
            eps.len() == 3
                && eps
                    .iter()
                    .all(|e| e.conditions.as_ref().and_then(|c| c.ready) == Some(true))
        }))
    })
    .await?;
    let refs: BTreeSet<String> = slice
        .endpoints
        .iter()
        .flatten()
        .filter_map(|e| e.target_ref.as_ref()?.name.clone())
        .collect();
    assert_eq!(refs, names);
    assert_eq!(slice.ports.as_ref().context("ports")?[0].port, Some(8080));
    let labels = slice.metadata.labels.clone().unwrap_or_default();
    assert!(labels.contains_key("endpointslice.kubernetes.io/managed-by"));
    let endpoints: Api<Endpoints> = c.api();
    eventually(10, "core/v1 Endpoints with 3 ready addresses", || async {
        let ep = endpoints.get("web").await?;
        let subset = ep.subsets.unwrap_or_default().into_iter().next();
        let n = subset.and_then(|s| s.addresses).map_or(0, |a| a.len());
        Ok((n == 3).then_some(()))
    })
    .await?;
    let vip: SocketAddr = "127.97.22.1:80".parse()?;
    let mut seen = BTreeSet::new();
    for _ in 0..6 {
        let body = eventually(10, "an answer through the ClusterIP", || async {
            Ok(get_from(IpAddr::V4(client_ip), vip).await.ok())
        })
        .await?;
        let peer: SocketAddr = body["peer"].as_str().context("peer")?.parse()?;
        assert_eq!(
            peer.ip(),
            IpAddr::V4(client_ip),
            "backend saw the client pod IP"
        );
        seen.insert(body["pod"].as_str().unwrap_or_default().to_string());
    }
    assert!(
        seen.is_subset(&names) && seen.len() == 3,
        "round-robin over {seen:?}"
    );
    c.stop().await;
    Ok(())
}

#[tokio::test]
async fn scaling_to_one_leaves_exactly_one_serving() -> Result<()> {
    let c = Cluster::start(23).await?;
    let deploys: Api<Deployment> = c.api();
    deploys
        .create(
            &PostParams::default(),
            &deployment("web", 3, "weir-demo:v1")?,
        )
        .await?;
    let before = ready_pods(&c, "web", 3).await?;
    let svcs: Api<Service> = c.api();
    svcs.create(&PostParams::default(), &service("web", "127.97.23.1")?)
        .await?;
    let patch = Patch::Merge(json!({ "spec": { "replicas": 1 } }));
    deploys
        .patch("web", &PatchParams::default(), &patch)
        .await?;
    let after = ready_pods(&c, "web", 1).await?;
    let survivor = pod_ip(&after[0]).context("ip")?;
    for p in &before {
        let ip = pod_ip(p).context("ip")?;
        if ip == survivor {
            continue;
        }
        eventually(10, "a removed pod to stop serving", || async {
            let refused = tokio::net::TcpStream::connect((ip, 8080)).await.is_err();
            Ok(refused.then_some(()))
        })
        .await?;
    }
    let vip: SocketAddr = "127.97.23.1:80".parse()?;
    eventually(10, "only the survivor behind the ClusterIP", || async {
        let mut opts = LoadOptions::new(vip, "foobar");
        opts.max_requests = Some(20);
        opts.connections = 1;
        opts.source = Some(IpAddr::V4(Ipv4Addr::new(127, 23, 255, 1)));
        let s = loadgen::run(opts).await.summary();
        Ok((s.responses == 20 && s.by_status.get(&200) == Some(&20)).then_some(()))
    })
    .await?;
    let body = get_from(IpAddr::V4(Ipv4Addr::LOCALHOST), vip).await?;
    assert_eq!(
        body["pod"],
        after[0].metadata.name.clone().unwrap_or_default().as_str()
    );
    eventually(15, "deployment status replicas 1", || async {
        let st = deploys.get("web").await?.status.unwrap_or_default();
        Ok((st.replicas == Some(1) && st.available_replicas == Some(1)).then_some(()))
    })
    .await?;
    c.stop().await;
    Ok(())
}

#[tokio::test]
async fn template_change_replaces_pods_with_the_new_version() -> Result<()> {
    let c = Cluster::start(24).await?;
    let deploys: Api<Deployment> = c.api();
    deploys
        .create(
            &PostParams::default(),
            &deployment("web", 2, "weir-demo:v1")?,
        )
        .await?;
    ready_pods(&c, "web", 2).await?;
    let patch = json!({ "spec": { "template": { "spec": { "containers": [{
        "name": "app", "image": "weir-demo:v2",
        "ports": [{ "name": "http", "containerPort": 8080 }],
    }]}}}});
    deploys
        .patch("web", &PatchParams::default(), &Patch::Merge(patch))
        .await?;
    let rs: Api<ReplicaSet> = c.api();
    eventually(30, "all pods on v2 and the old ReplicaSet at 0", || async {
        let pods: Api<Pod> = c.api();
        let live: Vec<Pod> = pods
            .list(&ListParams::default().labels("app=web"))
            .await?
            .items
            .into_iter()
            .filter(|p| p.metadata.deletion_timestamp.is_none())
            .collect();
        let images: Vec<String> = live
            .iter()
            .filter(|p| ready(p))
            .filter_map(|p| p.spec.as_ref()?.containers[0].image.clone())
            .collect();
        let sets = rs.list(&ListParams::default()).await?.items;
        let zeroed = sets.iter().filter(|s| s.spec.replicas == Some(0)).count();
        let ok = live.len() == 2
            && images == ["weir-demo:v2", "weir-demo:v2"]
            && sets.len() == 2
            && zeroed == 1;
        Ok(ok.then_some(()))
    })
    .await?;
    for p in ready_pods(&c, "web", 2).await? {
        let ip = pod_ip(&p).context("ip")?;
        let body = get_from(
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            SocketAddr::from((ip, 8080)),
        )
        .await?;
        assert_eq!(body["version"], "v2");
    }
    c.stop().await;
    Ok(())
}

#[tokio::test]
async fn non_simulated_image_leaves_the_pod_not_ready_with_an_event() -> Result<()> {
    let c = Cluster::start(25).await?;
    let pods: Api<Pod> = c.api();
    let pod: Pod = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": { "name": "nginx", "namespace": "default" },
        "spec": { "containers": [{ "name": "web", "image": "nginx:1.27" }] },
    }))?;
    pods.create(&PostParams::default(), &pod).await?;
    let status = eventually(15, "a waiting container status", || async {
        let p = pods.get("nginx").await?;
        let st = p.status.clone().unwrap_or_default();
        let waiting = st
            .container_statuses
            .iter()
            .flatten()
            .filter_map(|cs| cs.state.as_ref()?.waiting.as_ref()?.reason.clone())
            .any(|r| r == "ImageNotSimulated");
        Ok(waiting.then_some(p))
    })
    .await?;
    assert!(!ready(&status));
    let events: Api<Event> = c.api();
    let event = eventually(10, "an Event on the pod", || async {
        let lp = ListParams::default().fields("involvedObject.name=nginx");
        let list = events.list(&lp).await?.items;
        Ok(list
            .into_iter()
            .find(|e| e.reason.as_deref() == Some("ImageNotSimulated")))
    })
    .await?;
    assert_eq!(event.type_.as_deref(), Some("Warning"));
    assert!(event.message.unwrap_or_default().contains("nginx:1.27"));
    c.stop().await;
    Ok(())
}

#[tokio::test]
async fn steady_state_writes_nothing() -> Result<()> {
    let c = Cluster::start(26).await?;
    let deploys: Api<Deployment> = c.api();
    deploys
        .create(
            &PostParams::default(),
            &deployment("web", 3, "weir-demo:v1")?,
        )
        .await?;
    let svcs: Api<Service> = c.api();
    svcs.create(&PostParams::default(), &service("web", "127.97.26.1")?)
        .await?;
    ready_pods(&c, "web", 3).await?;
    eventually(15, "deployment available 3", || async {
        let st = deploys.get("web").await?.status.unwrap_or_default();
        Ok((st.available_replicas == Some(3)).then_some(()))
    })
    .await?;
    // Let the last status writes land, then expect silence across a resync.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let server = c.server.as_ref().context("server")?;
    let before = server.resource_version();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let after = server.resource_version();
    assert_eq!(after, before, "writes at steady state");
    c.stop().await;
    Ok(())
}

#[tokio::test]
async fn two_simulators_with_one_pod_range_skip_each_others_addresses() -> Result<()> {
    let a = Cluster::start(27).await?;
    let b = Cluster::start(27).await?;
    let mut ips = BTreeSet::new();
    for c in [&a, &b] {
        let deploys: Api<Deployment> = c.api();
        deploys
            .create(
                &PostParams::default(),
                &deployment("web", 2, "weir-demo:v1")?,
            )
            .await?;
    }
    for c in [&a, &b] {
        for p in ready_pods(c, "web", 2).await? {
            let ip = pod_ip(&p).context("ip")?;
            let body = get_from(
                IpAddr::V4(Ipv4Addr::LOCALHOST),
                SocketAddr::from((ip, 8080)),
            )
            .await?;
            assert_eq!(
                body["pod"],
                p.metadata.name.clone().unwrap_or_default().as_str()
            );
            ips.insert(ip);
        }
    }
    assert_eq!(ips.len(), 4, "{ips:?}");
    a.stop().await;
    b.stop().await;
    Ok(())
}
