//! The operator's cost at rest and its manners with the gateway: a settled Rollout makes
//! no writes and no LISTs over several resyncs (counted by an [`ApiTap`] in front of the
//! API server), a `kubectl scale` of the gateway survives reconciles, the gateway goes
//! with its namespace's last Rollout, a Rollout that cannot be read stalls no other, a
//! reconcile whose status write fails sends no Event that its retry would send again, and
//! a root Service name taken by a Service that is not Weir's is left alone until it is free.

#[path = "support/lib.rs"]
mod support;

use anyhow::{Context as _, Result, ensure};
use hyper::Method;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use parking_lot::Mutex;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use support::api_tap::{ApiTap, RequestKind, Verdict, classify};
use support::binaries::binaries_dir;
use support::eventually;
use support::operator::{
    client_through_tap, create_healthy_v1, rollout_yaml, spawn_controller, start_with, wait_gone,
    wait_phase,
};
use weir_crds::Rollout;
use weir_crds::rollout::Phase;
use weir_operator::analysis::FixedSource;
use weir_operator::metrics::Metrics;

/// How often the controller looks at a settled Rollout in these tests.
const RESYNC: Duration = Duration::from_secs(1);

/// Every request the controller sent, as (method, path with query).
type Log = Arc<Mutex<Vec<(Method, String)>>>;

fn is_write(method: &Method) -> bool {
    classify(method, "") == RequestKind::Write
}

fn is_list(method: &Method, path_and_query: &str) -> bool {
    classify(method, path_and_query) == RequestKind::List
}

/// A client that reaches the API server through a tap logging every request.
async fn tapped_client(cluster: &support::operator::Cluster) -> Result<(ApiTap, Client, Log)> {
    let log: Log = Arc::new(Mutex::new(Vec::new()));
    let out = log.clone();
    let rule = Box::new(move |method: &Method, path: &str| {
        out.lock().push((method.clone(), path.to_string()));
        Verdict::Forward
    });
    let (tap, client) = client_through_tap(cluster, rule, true).await?;
    Ok((tap, client, log))
}

/// Waits until the controller has run `n` more reconciles.
async fn reconciles(metrics: &Metrics, n: u64, secs: u64) -> Result<()> {
    let start = metrics.reconciles.get();
    eventually(secs, &format!("{n} more reconciles"), || async {
        let done = metrics.reconciles.get() - start;
        ensure!(done >= n, "{done} reconciles so far");
        Ok(())
    })
    .await
}

/// Runs kubectl against the cluster, bounded to 60 s; fails with its output.
async fn kubectl(cluster: &support::operator::Cluster, args: &[&str]) -> Result<String> {
    let kc = cluster.server.kubeconfig_path().to_path_buf();
    let cache = kc.with_file_name("kubectl-cache");
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let what = args.join(" ");
    let run = tokio::task::spawn_blocking(move || {
        Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(&kc)
            .arg("--cache-dir")
            .arg(&cache)
            .args(&args)
            .output()
    });
    let out = tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .context("kubectl took over 60 s")??
        .context("cannot run kubectl: these tests need it on PATH")?;
    ensure!(
        out.status.success(),
        "kubectl {what} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

async fn gateway_replicas(deployments: &Api<Deployment>) -> Result<Option<i32>> {
    Ok(deployments.get("weir-gateway").await?.spec.replicas)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_settled_rollout_costs_no_writes_and_no_lists_and_a_scaled_gateway_stays_scaled()
-> Result<()> {
    let proxy_dir = binaries_dir(&["weir-proxy"])?;
    let cluster = start_with(None, true, |opts| opts.binaries = vec![proxy_dir]).await?;
    let (_tap, client, log) = tapped_client(&cluster).await?;
    let (metrics, stop) = spawn_controller(client, Arc::new(FixedSource::healthy()), true, RESYNC);
    let rollouts: Api<Rollout> = Api::namespaced(cluster.client.clone(), "default");
    create_healthy_v1(&rollouts, 30).await?;
    let deployments: Api<Deployment> = Api::namespaced(cluster.client.clone(), "default");
    eventually(30, "the gateway available", || async {
        let d = deployments.get("weir-gateway").await?;
        let available = d.status.and_then(|s| s.available_replicas).unwrap_or(0);
        ensure!(available >= 1, "{available} gateway pods available");
        Ok(())
    })
    .await?;
    // One resync to let the last status and pod changes pass, then count from a clean log.
    reconciles(&metrics, 2, 20).await?;
    log.lock().clear();
    reconciles(&metrics, 5, 30).await?;
    let seen = log.lock().clone();
    let writes: Vec<_> = seen.iter().filter(|(m, _)| is_write(m)).collect();
    let lists: Vec<_> = seen.iter().filter(|(m, p)| is_list(m, p)).collect();
    println!(
        "over 5 reconciles at rest: {} requests, {} writes, {} lists: {seen:?}",
        seen.len(),
        writes.len(),
        lists.len()
    );
    assert!(writes.is_empty(), "writes at rest: {writes:#?}");
    assert!(lists.is_empty(), "LISTs at rest: {lists:#?}");

    kubectl(&cluster, &["scale", "deploy/weir-gateway", "--replicas=2"]).await?;
    assert_eq!(gateway_replicas(&deployments).await?, Some(2));
    // Five resyncs: the operator's cache sees the new count within the first.
    reconciles(&metrics, 5, 30).await?;
    assert_eq!(
        gateway_replicas(&deployments).await?,
        Some(2),
        "the operator undid kubectl scale of the gateway"
    );
    let _ = stop.send(());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_goes_with_its_namespaces_last_rollout() -> Result<()> {
    let proxy_dir = binaries_dir(&["weir-proxy"])?;
    let cluster = start_with(None, true, |opts| opts.binaries = vec![proxy_dir]).await?;
    let (metrics, stop) = spawn_controller(
        cluster.client.clone(),
        Arc::new(FixedSource::healthy()),
        true,
        RESYNC,
    );
    let rollouts: Api<Rollout> = Api::namespaced(cluster.client.clone(), "default");
    let mut second = rollout_yaml("weir-demo:v1");
    second.metadata.name = Some("second".into());
    second.spec.selector = serde_yaml::from_str("{matchLabels: {app: second}}")?;
    second
        .spec
        .template
        .as_mut()
        .expect("the sample has a template")
        .metadata = Some(serde_yaml::from_str("{labels: {app: second}}")?);
    rollouts
        .create(&PostParams::default(), &rollout_yaml("weir-demo:v1"))
        .await?;
    rollouts.create(&PostParams::default(), &second).await?;
    wait_phase(&rollouts, Phase::Healthy, 30, "foobar Healthy").await?;
    let deployments: Api<Deployment> = Api::namespaced(cluster.client.clone(), "default");
    eventually(30, "the gateway", || async {
        deployments.get("weir-gateway").await?;
        Ok(())
    })
    .await?;

    rollouts.delete("foobar", &DeleteParams::default()).await?;
    wait_gone(&rollouts, "foobar", 20).await?;
    reconciles(&metrics, 2, 20).await?;
    assert!(
        deployments.get_opt("weir-gateway").await?.is_some(),
        "the gateway went while Rollout `second` still lives"
    );

    rollouts.delete("second", &DeleteParams::default()).await?;
    wait_gone(&rollouts, "second", 20).await?;
    wait_gone(&deployments, "weir-gateway", 20).await?;
    let sas: Api<k8s_openapi::api::core::v1::ServiceAccount> =
        Api::namespaced(cluster.client.clone(), "default");
    wait_gone(&sas, "weir-gateway", 20).await?;
    let _ = stop.send(());
    Ok(())
}

#[test]
fn lists_are_told_from_gets_and_watches() {
    assert!(is_list(
        &Method::GET,
        "/apis/apps/v1/namespaces/default/deployments?labelSelector=a%3Db"
    ));
    assert!(is_list(&Method::GET, "/api/v1/services"));
    assert!(!is_list(
        &Method::GET,
        "/api/v1/services?watch=true&resourceVersion=5"
    ));
    assert!(!is_list(
        &Method::GET,
        "/api/v1/namespaces/default/services/foobar"
    ));
    assert!(!is_list(
        &Method::POST,
        "/api/v1/namespaces/default/services"
    ));
}

/// A cluster without a gateway and with healthy metrics, and a controller on it that
/// resyncs every [`RESYNC`]; its metrics and its stop switch.
async fn cluster_with_controller() -> Result<(
    support::operator::Cluster,
    Arc<Metrics>,
    tokio::sync::oneshot::Sender<()>,
)> {
    let cluster = start_with(None, false, |_| {}).await?;
    let (metrics, stop) = spawn_controller(
        cluster.client.clone(),
        Arc::new(FixedSource::healthy()),
        false,
        RESYNC,
    );
    Ok((cluster, metrics, stop))
}

/// The Events in `default` with `reason` about the object named `name`.
async fn events_about(client: &Client, reason: &str, name: &str) -> Result<Vec<Event>> {
    let events: Api<Event> = Api::namespaced(client.clone(), "default");
    Ok(events
        .list(&Default::default())
        .await?
        .items
        .into_iter()
        .filter(|e| {
            e.reason.as_deref() == Some(reason)
                && e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name)
        })
        .collect())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_rollout_gets_an_event_and_the_others_progress() -> Result<()> {
    let (cluster, _metrics, stop) = cluster_with_controller().await?;
    // `replicas` beyond an i32: the schema takes it (format is not enforced), the
    // operator's Rollout type cannot.
    let mut broken = serde_json::to_value(rollout_yaml("weir-demo:v1"))?;
    broken["metadata"]["name"] = "broken".into();
    broken["spec"]["replicas"] = 3_000_000_000_i64.into();
    let raw: Api<kube::api::DynamicObject> = Api::namespaced_with(
        cluster.client.clone(),
        "default",
        &kube::api::ApiResource::erase::<Rollout>(&()),
    );
    raw.create(&PostParams::default(), &serde_json::from_value(broken)?)
        .await
        .context("the API server took the unreadable Rollout")?;
    let rollouts: Api<Rollout> = Api::namespaced(cluster.client.clone(), "default");
    rollouts
        .create(&PostParams::default(), &rollout_yaml("weir-demo:v1"))
        .await?;
    wait_phase(
        &rollouts,
        Phase::Healthy,
        30,
        "foobar Healthy beside the broken one",
    )
    .await?;
    support::operator::set_image_v2(&rollouts).await?;
    wait_phase(&rollouts, Phase::Paused, 30, "foobar's canary at its pause").await?;
    let note = eventually(20, "an InvalidRollout Event for `broken`", || async {
        let found = events_about(&cluster.client, "InvalidRollout", "broken").await?;
        found
            .into_iter()
            .next()
            .and_then(|e| e.note)
            .context("no Event yet")
    })
    .await?;
    println!("{note}");
    assert!(note.contains("cannot be read"), "{note}");
    let _ = stop.send(());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_status_write_sends_no_event_its_retry_repeats() -> Result<()> {
    let cluster = start_with(None, false, |_| {}).await?;
    // Refuses the first Rollout status write once armed; the writes around it go through.
    let armed = Arc::new(AtomicBool::new(false));
    let refused = Arc::new(AtomicBool::new(false));
    let (arm, told) = (armed.clone(), refused.clone());
    let rule = Box::new(move |method: &Method, path: &str| {
        let status = path.split('?').next().unwrap_or_default()
            == "/apis/weir.dev/v1alpha1/namespaces/default/rollouts/foobar/status";
        if *method == Method::PATCH && status && arm.swap(false, Ordering::SeqCst) {
            told.store(true, Ordering::SeqCst);
            return Verdict::Refuse;
        }
        Verdict::Forward
    });
    // kube retries a 503 by itself; without that the refusal stands for a failed write.
    let (_tap, client) = client_through_tap(&cluster, rule, false).await?;
    let (metrics, stop) = spawn_controller(client, Arc::new(FixedSource::healthy()), false, RESYNC);
    let rollouts: Api<Rollout> = Api::namespaced(cluster.client.clone(), "default");
    create_healthy_v1(&rollouts, 30).await?;
    support::operator::set_image_v2(&rollouts).await?;
    wait_phase(&rollouts, Phase::Paused, 60, "the canary at its pause").await?;
    // At its `pause: {}` the Rollout writes nothing once two more reconciles have passed, so
    // the next status write is the abort's (whose split write goes through).
    reconciles(&metrics, 2, 20).await?;
    armed.store(true, Ordering::SeqCst);
    rollouts
        .patch_status(
            "foobar",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"status": {"abort": true}})),
        )
        .await?;
    wait_phase(&rollouts, Phase::Aborted, 30, "aborted").await?;
    assert!(
        refused.load(Ordering::SeqCst),
        "the tap never refused a status write"
    );
    eventually(20, "the Aborted Event", || async {
        ensure!(
            !events_about(&cluster.client, "Aborted", "foobar")
                .await?
                .is_empty(),
            "no Aborted Event yet"
        );
        Ok(())
    })
    .await?;
    // Events are written by workers after their reconcile: give a repeat time to land.
    reconciles(&metrics, 3, 30).await?;
    let aborted = events_about(&cluster.client, "Aborted", "foobar").await?;
    let sent: Vec<i32> = aborted
        .iter()
        .map(|e| e.series.as_ref().map_or(1, |s| s.count))
        .collect();
    assert_eq!(
        sent,
        vec![1],
        "the abort should make one Event, sent once: {aborted:#?}"
    );
    let _ = stop.send(());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_root_service_that_is_not_weirs_is_left_alone_until_it_goes() -> Result<()> {
    let (cluster, metrics, stop) = cluster_with_controller().await?;
    let services: Api<Service> = Api::namespaced(cluster.client.clone(), "default");
    let theirs: Service = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "foobar", "labels": {"team": "theirs"}},
        "spec": {"selector": {"app": "theirs"}, "ports": [{"port": 80}]}
    }))?;
    services.create(&PostParams::default(), &theirs).await?;
    let rollouts: Api<Rollout> = Api::namespaced(cluster.client.clone(), "default");
    rollouts
        .create(&PostParams::default(), &rollout_yaml("weir-demo:v1"))
        .await?;
    wait_phase(&rollouts, Phase::Degraded, 30, "Degraded by the taken name").await?;
    let status = rollouts.get("foobar").await?.status.unwrap_or_default();
    let invalid = status
        .conditions
        .iter()
        .find(|c| c.type_ == "InvalidSpec" && c.status == "True")
        .context("no InvalidSpec condition")?;
    assert!(
        invalid
            .message
            .contains("belongs to a Service that Weir does not manage"),
        "{}",
        invalid.message
    );
    // Two resyncs later the Service is as its owner made it, and no revision was created.
    reconciles(&metrics, 2, 20).await?;
    let now = services.get("foobar").await?;
    assert_eq!(now.labels().get("team").map(String::as_str), Some("theirs"));
    assert!(
        !now.labels().contains_key("weir.dev/rollout"),
        "{:?}",
        now.labels()
    );
    let selector = now.spec.and_then(|s| s.selector).unwrap_or_default();
    assert_eq!(selector.get("app").map(String::as_str), Some("theirs"));
    let deployments: Api<Deployment> = Api::namespaced(cluster.client.clone(), "default");
    assert!(deployments.get_opt("foobar-v1").await?.is_none());

    // Once the name is free (a resync notices: that Service is not watched), v1 goes out.
    services.delete("foobar", &DeleteParams::default()).await?;
    wait_phase(
        &rollouts,
        Phase::Healthy,
        30,
        "Healthy once the name is free",
    )
    .await?;
    let status = rollouts.get("foobar").await?.status.unwrap_or_default();
    let stale: Vec<_> = status
        .conditions
        .iter()
        .filter(|c| c.type_ == "InvalidSpec" && c.status == "True")
        .collect();
    assert!(stale.is_empty(), "InvalidSpec still true: {stale:?}");
    let ours = services.get("foobar").await?;
    assert_eq!(
        ours.labels().get("weir.dev/rollout").map(String::as_str),
        Some("foobar")
    );
    let _ = stop.send(());
    Ok(())
}
