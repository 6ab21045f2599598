//! The workload simulator against the in-process API server: Deployments
//! become serving pods, Services get slices and a working ClusterIP, and
//! images that cannot run say why.
//!
//! Each test runs on loopback blocks it claims ([`support::cluster`]), because nextest
//! runs tests in parallel processes, and two copies of the suite may run at once.

#[path = "support/lib.rs"]
mod support;

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{Endpoints, Event, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::Api;
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use serde_json::json;
use support::cluster::LocalCluster;
use support::{eventually, seen};
use weir_e2e::loadgen::{self, LoadOptions};

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
async fn ready_pods(c: &LocalCluster, name: &str, n: usize) -> Result<Vec<Pod>> {
    let pods: Api<Pod> = c.api();
    let lp = ListParams::default().labels(&format!("app={name}"));
    eventually(30, &format!("{n} ready pods of {name}"), || async {
        let list = pods.list(&lp).await?;
        let live: Vec<Pod> = list
            .items
            .into_iter()
            .filter(|p| p.metadata.deletion_timestamp.is_none())
            .collect();
        let ready_count = live.iter().filter(|p| ready(p)).count();
        ensure!(
            live.len() == n && ready_count == n,
            "{} live pods, {ready_count} ready",
            live.len()
        );
        Ok(live)
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
    let c = LocalCluster::start(|_| {}).await?;
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
        seen(done, "status", st)
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
    let c = LocalCluster::start(|_| {}).await?;
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
    let vip = SocketAddr::new(c.net.cluster_ip(200)?.into(), 80);
    svcs.create(
        &PostParams::default(),
        &service("web", &vip.ip().to_string())?,
    )
    .await?;
    let names: BTreeSet<String> = pods
        .iter()
        .filter_map(|p| p.metadata.name.clone())
        .collect();
    let slices: Api<EndpointSlice> = c.api();
    let slice = eventually(15, "an EndpointSlice with 3 ready endpoints", || async {
        let lp = ListParams::default().labels("kubernetes.io/service-name=web");
        let list = slices.list(&lp).await?.items;
        let full = list.iter().find(|s| {
            let eps = s.endpoints.clone().unwrap_or_default();
            eps.len() == 3
                && eps
                    .iter()
                    .all(|e| e.conditions.as_ref().and_then(|c| c.ready) == Some(true))
        });
        full.cloned().with_context(|| {
            format!(
                "slices {:?}",
                list.iter().map(|s| &s.endpoints).collect::<Vec<_>>()
            )
        })
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
        seen(n == 3, "ready addresses", n).map(drop)
    })
    .await?;
    let mut answered = BTreeSet::new();
    for _ in 0..6 {
        let body = eventually(10, "an answer through the ClusterIP", || {
            get_from(IpAddr::V4(client_ip), vip)
        })
        .await?;
        let peer: SocketAddr = body["peer"].as_str().context("peer")?.parse()?;
        assert_eq!(
            peer.ip(),
            IpAddr::V4(client_ip),
            "backend saw the client pod IP"
        );
        answered.insert(body["pod"].as_str().unwrap_or_default().to_string());
    }
    assert!(
        answered.is_subset(&names) && answered.len() == 3,
        "round-robin over {answered:?}"
    );
    c.stop().await;
    Ok(())
}

#[tokio::test]
async fn scaling_to_one_leaves_exactly_one_serving() -> Result<()> {
    let c = LocalCluster::start(|_| {}).await?;
    let deploys: Api<Deployment> = c.api();
    deploys
        .create(
            &PostParams::default(),
            &deployment("web", 3, "weir-demo:v1")?,
        )
        .await?;
    let before = ready_pods(&c, "web", 3).await?;
    let svcs: Api<Service> = c.api();
    let vip = SocketAddr::new(c.net.cluster_ip(200)?.into(), 80);
    svcs.create(
        &PostParams::default(),
        &service("web", &vip.ip().to_string())?,
    )
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
            tokio::net::TcpStream::connect((ip, 8080)).await.is_err()
        })
        .await?;
    }
    let source = IpAddr::V4(c.net.host(1)?);
    eventually(10, "only the survivor behind the ClusterIP", || async {
        let mut opts = LoadOptions::new(vip, "foobar");
        opts.max_requests = Some(20);
        opts.connections = 1;
        opts.source = Some(source);
        let s = loadgen::run(opts).await.summary();
        let by_pod = &s.by_status;
        seen(
            s.responses == 20 && by_pod.get(&200) == Some(&20),
            "statuses",
            by_pod,
        )
        .map(drop)
    })
    .await?;
    let body = get_from(IpAddr::V4(Ipv4Addr::LOCALHOST), vip).await?;
    assert_eq!(
        body["pod"],
        after[0].metadata.name.clone().unwrap_or_default().as_str()
    );
    eventually(15, "deployment status replicas 1", || async {
        let st = deploys.get("web").await?.status.unwrap_or_default();
        let counts = (st.replicas, st.available_replicas);
        seen(counts == (Some(1), Some(1)), "replicas, available", counts).map(drop)
    })
    .await?;
    c.stop().await;
    Ok(())
}

#[tokio::test]
async fn template_change_replaces_pods_with_the_new_version() -> Result<()> {
    let c = LocalCluster::start(|_| {}).await?;
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
        let state = (live.len(), images, sets.len(), zeroed);
        seen(ok, "live pods, ready images, ReplicaSets, zeroed", state).map(drop)
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
    let c = LocalCluster::start(|_| {}).await?;
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
            .any(|r| r == "ErrImagePull" || r == "ImagePullBackOff");
        ensure!(waiting, "container statuses {:?}", st.container_statuses);
        Ok(p)
    })
    .await?;
    assert!(!ready(&status));
    let events: Api<Event> = c.api();
    let event = eventually(10, "an Event on the pod", || async {
        let lp = ListParams::default().fields("involvedObject.name=nginx");
        let list = events.list(&lp).await?.items;
        let reasons: Vec<Option<String>> = list.iter().map(|e| e.reason.clone()).collect();
        list.into_iter()
            .find(|e| e.reason.as_deref() == Some("ErrImagePull"))
            .with_context(|| format!("events with reasons {reasons:?}"))
    })
    .await?;
    assert_eq!(event.type_.as_deref(), Some("Warning"));
    assert!(event.message.unwrap_or_default().contains("nginx:1.27"));
    c.stop().await;
    Ok(())
}

#[tokio::test]
async fn steady_state_writes_nothing() -> Result<()> {
    let c = LocalCluster::start(|_| {}).await?;
    let deploys: Api<Deployment> = c.api();
    deploys
        .create(
            &PostParams::default(),
            &deployment("web", 3, "weir-demo:v1")?,
        )
        .await?;
    let svcs: Api<Service> = c.api();
    let vip = c.net.cluster_ip(200)?;
    svcs.create(&PostParams::default(), &service("web", &vip.to_string())?)
        .await?;
    let pods = ready_pods(&c, "web", 3).await?;
    let ips: BTreeSet<String> = pods
        .iter()
        .filter_map(|p| Some(pod_ip(p)?.to_string()))
        .collect();
    // Wait until every object the simulator writes is in its final state ...
    let slices: Api<EndpointSlice> = c.api();
    let endpoints: Api<Endpoints> = c.api();
    eventually(15, "the Deployment, slice and Endpoints final", || async {
        let d = deploys.get("web").await?;
        let st = d.status.clone().unwrap_or_default();
        ensure!(
            st.available_replicas == Some(3)
                && st.updated_replicas == Some(3)
                && st.observed_generation == d.metadata.generation,
            "deployment status {st:?}"
        );
        let lp = ListParams::default().labels("kubernetes.io/service-name=web");
        let slice_ips: BTreeSet<String> = slices
            .list(&lp)
            .await?
            .items
            .iter()
            .flat_map(|s| s.endpoints.iter().flatten())
            .filter(|e| e.conditions.as_ref().and_then(|c| c.ready) == Some(true))
            .flat_map(|e| e.addresses.clone())
            .collect();
        ensure!(
            slice_ips == ips,
            "ready slice addresses {slice_ips:?}, pods {ips:?}"
        );
        let ep = endpoints.get("web").await?;
        let addresses: BTreeSet<String> = ep
            .subsets
            .iter()
            .flatten()
            .flat_map(|s| s.addresses.iter().flatten())
            .map(|a| a.ip.clone())
            .collect();
        ensure!(
            addresses == ips,
            "Endpoints addresses {addresses:?}, pods {ips:?}"
        );
        Ok(())
    })
    .await?;
    // ... then watch for writes over more than one resync (2 s): there must be none.
    let before = c.server.resource_version();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let after = c.server.resource_version();
    assert_eq!(after, before, "writes at steady state");
    c.stop().await;
    Ok(())
}

#[tokio::test]
async fn two_simulators_with_one_pod_range_skip_each_others_addresses() -> Result<()> {
    let a = LocalCluster::start(|_| {}).await?;
    let shared = a.net.pods.cidr();
    let b = LocalCluster::start(|opts| opts.pod_cidr = shared).await?;
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
