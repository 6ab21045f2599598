//! Scenario 6 of issue 15, access control as a user sees it: on the demo's cluster (the real
//! operator as a Pod, its `weir-proxy` gateway, Rollout `foobar` at v1, two client Pods a
//! TrafficTarget allows sending steady traffic), a client Pod whose ServiceAccount no
//! TrafficTarget names gets a 403 for every request, naming it, while the allowed clients
//! get nothing but 2xx; once a TrafficTarget names it, it is served too. Every answer
//! counts as what it is: nothing is retried.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/lib.rs"]
mod support;

use anyhow::{Context as _, Result, ensure};
use kube::api::{Api, PostParams};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;
use support::binaries::binaries_dir;
use support::eventually;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use weir_crds::Rollout;
use weir_crds::rollout::Phase;
use weir_e2e::client_pod::ClientPod;
use weir_e2e::demo::cluster::DemoCluster;
use weir_e2e::demo::live::{Traffic, client_second};
use weir_e2e::demo::story;

/// One request from `source` to `gateway` with `Host: foobar`: the status and the body.
async fn call_from(source: IpAddr, gateway: SocketAddr) -> Result<(u16, String)> {
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(source, 0))?;
    let mut stream = socket.connect(gateway).await?;
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: foobar\r\nConnection: close\r\n\r\n")
        .await?;
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut raw)).await??;
    let text = String::from_utf8_lossy(&raw).to_string();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .context("no status line")?;
    let body = text.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
    Ok((status, body))
}

/// The 2xx answers, the others and the errors of a report.
fn counts(report: &weir_e2e::loadgen::Report) -> (u64, u64, u64) {
    let s = client_second(report);
    (s.ok, s.non_2xx, s.errors)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_no_traffic_target_names_is_denied_while_the_allowed_ones_are_served() -> Result<()>
{
    let bins = binaries_dir(&["weir-operator", "weir-proxy", "kubectl-weir"])?;
    let dir = std::env::temp_dir().join(format!("weir-scenario-access-{}", std::process::id()));
    let demo =
        DemoCluster::start(&dir, &dir.join("kubeconfig"), &bins, |l| println!("{l}")).await?;
    let rollouts: Api<Rollout> = Api::namespaced(demo.client.clone(), story::NAMESPACE);
    let v1: Rollout = serde_yaml::from_str(&story::rollout_yaml())?;
    rollouts.create(&PostParams::default(), &v1).await?;
    eventually(60, "v1 Healthy", || async {
        let s = rollouts
            .get(story::ROLLOUT)
            .await?
            .status
            .unwrap_or_default();
        ensure!(s.phase == Some(Phase::Healthy), "{:?}", s.phase);
        Ok(())
    })
    .await?;
    let gateway = demo.gateway().await?;
    let traffic = Traffic::start(&demo.clients, gateway, Duration::from_secs(120));

    let intruder = ClientPod::start(&demo.client, story::NAMESPACE, "intruder").await?;
    // Wait until the gateway knows the intruder's Pod: its 403 names its ServiceAccount.
    let who = "ServiceAccount default/intruder";
    let (status, body) = eventually(30, "a 403 naming the intruder", || async {
        let (status, body) = call_from(IpAddr::V4(intruder.ip), gateway).await?;
        ensure!(status == 403 && body.contains(who), "{status} {body:?}");
        Ok((status, body))
    })
    .await?;
    println!("intruder: {status} {body}");
    let denied = intruder.send(gateway, story::ROLLOUT, 300).await?;
    println!(
        "intruder's 300 requests: statuses {:?}, errors {:?}",
        denied.by_status, denied.errors
    );
    ensure!(
        denied.by_status.get(&403) == Some(&300) && denied.errors.is_empty(),
        "the intruder was not denied every request: {:?} {:?}",
        denied.by_status,
        denied.errors
    );

    // Once a TrafficTarget names it, it is served.
    intruder.allow(&demo.client, "default").await?;
    eventually(30, "the intruder served once allowed", || async {
        let (status, body) = call_from(IpAddr::V4(intruder.ip), gateway).await?;
        ensure!(status == 200, "{status} {body:?}");
        Ok(())
    })
    .await?;
    let served = intruder.send(gateway, story::ROLLOUT, 100).await?;
    ensure!(
        served.by_status.get(&200) == Some(&100),
        "allowed now, yet: {:?} {:?}",
        served.by_status,
        served.errors
    );

    // The allowed clients' traffic spans the denial: at least 3 s of it (100 requests/s).
    eventually(30, "300 answers to the allowed clients", || async {
        let n = traffic.total().responses();
        ensure!(n >= 300, "{n} answers");
        Ok(())
    })
    .await?;
    let allowed = traffic.stop().await;
    let (ok, non_2xx, errors) = counts(&allowed);
    println!(
        "allowed clients meanwhile: {ok} 2xx, {non_2xx} other, {errors} errors; statuses {:?}",
        allowed.by_status
    );
    ensure!(ok > 0, "the allowed clients got no answer at all");
    ensure!(
        non_2xx == 0 && errors == 0,
        "the allowed clients were not all served: {:?} {:?}",
        allowed.by_status,
        allowed.errors
    );
    demo.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
