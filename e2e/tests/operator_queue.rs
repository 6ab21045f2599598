//! The reconcile slots end to end. The controller starts every queued reconcile at once and
//! each waits for a slot (`weir_operator::controller::slots`); when the controller stops (a
//! lost leadership, a signal), the reconciles still waiting must go without writing, or a
//! graceful shutdown would first drain the whole queue through the API.

#[path = "support/lib.rs"]
mod support;

use anyhow::{Context as _, Result, ensure};
use hyper::Method;
use kube::ResourceExt;
use kube::api::{Api, PostParams};
use parking_lot::Mutex;
use std::sync::Arc;
use std::time::Duration;
use support::api_tap::{RequestKind, Verdict, classify};
use support::operator::{
    client_through_tap, rollout_yaml, spawn_controller_with, start_with, test_config,
};
use weir_crds::Rollout;
use weir_operator::analysis::FixedSource;
use weir_operator::controller::FINALIZER;

/// Rollouts queued at once when the controller starts.
const QUEUED: usize = 20;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopping_controller_starts_none_of_the_reconciles_still_waiting() -> Result<()> {
    let cluster = start_with(None, false, |_| {}).await?;
    let rollouts: Api<Rollout> = Api::namespaced(cluster.client.clone(), "default");
    // Created before any controller runs: its first listing queues all of them at once.
    for i in 0..QUEUED {
        let mut rollout = rollout_yaml("weir-demo:v1");
        rollout.metadata.name = Some(format!("ro-{i}"));
        rollouts.create(&PostParams::default(), &rollout).await?;
    }
    // The controller's first write (a Rollout's finalizer) stops it, while that write is on
    // its way and the other reconciles wait for the one slot.
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let stop_tx = Arc::new(Mutex::new(Some(stop_tx)));
    let stopper = stop_tx.clone();
    let writes = Arc::new(Mutex::new(Vec::new()));
    let logged = writes.clone();
    let rule = Box::new(move |method: &Method, path: &str| {
        if classify(method, path) == RequestKind::Write {
            logged.lock().push(path.to_string());
            if let Some(stop) = stopper.lock().take() {
                let _ = stop.send(());
            }
        }
        Verdict::Forward
    });
    let (_tap, client) = client_through_tap(&cluster, rule, true).await?;
    let mut config = test_config(false, Duration::from_secs(60));
    config.concurrency = 1;
    let (metrics, stop, task) =
        spawn_controller_with(client, Arc::new(FixedSource::healthy()), config);
    tokio::spawn(async move {
        let _ = stop_rx.await;
        let _ = stop.send(());
    });
    tokio::time::timeout(Duration::from_secs(30), task)
        .await
        .context("the controller had not stopped 30 s after its first write")?
        .context("the controller's task")?;
    ensure!(
        stop_tx.lock().is_none(),
        "the controller stopped before it wrote anything"
    );

    let with_finalizer: Vec<String> = rollouts
        .list(&Default::default())
        .await?
        .items
        .iter()
        .filter(|r| r.finalizers().iter().any(|f| f == FINALIZER))
        .map(|r| r.name_any())
        .collect();
    let writes = writes.lock().clone();
    let started = metrics.reconciles.get();
    println!("{started} reconciles started; writes: {writes:?}; finalizers on {with_finalizer:?}");
    // The reconcile that held the slot finishes its write; one that took the slot in the
    // instant before the stop reached the controller may do the same. Not the other 18.
    assert!(
        with_finalizer.len() <= 2 && started <= 2,
        "{} of {QUEUED} Rollouts were written after the stop ({started} reconciles started)",
        with_finalizer.len()
    );
    assert!(!with_finalizer.is_empty(), "the first write did not land");
    Ok(())
}
