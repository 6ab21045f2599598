//! Analysis from live traffic on the local control plane, no injected verdicts: the real
//! `weir-operator` (run by the simulator as a Pod, serving the TrafficMetrics API behind the
//! aggregator with a caBundle), its `weir-proxy` gateway, demo-app revisions with a known
//! error rate and latency, and a client Pod whose ServiceAccount a TrafficTarget allows.
//!
//! - a healthy v2 is promoted, and `kubectl get --raw` shows live figures matching the
//!   gateway's own counters;
//! - a v2 with `ERROR_RATE=0.2`, and one with `LATENCY_MS` above the p99 bound, are rolled
//!   back: the first write of the rollback is the split's reset, and at the clients the canary
//!   never got more than its step's 20% (4.5 binomial standard deviations);
//! - with Prometheus as the source, stopping it pauses the analysis (AnalysisError) and
//!   starting it again resumes it.
//!
//! `repeated_good_and_bad_rollouts` (ignored by default) runs the good and the bad case 10
//! times each and prints the counts: `cargo nextest run -p weir-e2e --test analysis_rollout
//! --run-ignored only`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/analysis_rollout.rs"]
mod analysis_rollout_support;
#[path = "support/analysis.rs"]
mod analysis_support;
#[path = "support/lib.rs"]
mod support;
use support::operator as operator_support;

use analysis_rollout_support::*;
use analysis_support::*;
use anyhow::{Context as _, Result};
use k8s_openapi::api::core::v1::Pod;
use kube::api::Api;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Mutex;
use weir_crds::Rollout;
use weir_crds::rollout::Phase;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_healthy_canary_is_promoted_with_live_figures_in_the_api() -> Result<()> {
    let cluster = Cluster::start().await?;
    let outcome = run_rollout(&cluster, Canary::Healthy, "", async |_| Ok(())).await?;
    println!("{}", outcome.describe);
    assert_eq!(outcome.phase, Phase::Healthy, "{}", outcome.describe);
    let history = outcome.splits.lock().await.clone();
    assert_eq!(
        history.last(),
        Some(&operator_support::b(&[("foobar-v2", 100)]))
    );
    assert!(
        outcome.describe.contains("AnalysisPassed"),
        "{}",
        outcome.describe
    );

    // Live figures through `kubectl get --raw`, against the gateway's own counters.
    let (data, admin) = gateway(&cluster.client).await?;
    let source_ip: Ipv4Addr = Api::<Pod>::namespaced(cluster.client.clone(), "default")
        .get("loadgen")
        .await?
        .status
        .and_then(|s| s.pod_ip)
        .context("client IP")?
        .parse()?;
    let traffic = Traffic::start(data, source_ip, 100.0);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let report = traffic.stop().await;
    tokio::time::sleep(Duration::from_millis(750)).await;
    let before = proxy_counters(admin, "foobar-v2").await?;
    let raw = kubectl(
        &cluster,
        &[
            "get",
            "--raw",
            "/apis/metrics.smi-spec.io/v1alpha1/namespaces/default/deployments/foobar-v2?t=10m",
        ],
    )
    .await?;
    println!(
        "kubectl get --raw: {raw}\nproxy counters {before:?}, clients {:?}",
        report.by_version
    );
    let doc: serde_json::Value = serde_json::from_str(&raw)?;
    assert_eq!(doc["resource"]["name"], "foobar-v2");
    let ok = metric(&doc, "success_count").context("success_count")?;
    let failed = metric(&doc, "failure_count").context("failure_count")?;
    assert_eq!(failed, 0.0);
    assert!(
        (ok - before.0).abs() <= before.0 * 0.10 + 2.0,
        "the API's {ok} successes vs the gateway's counter {}",
        before.0
    );
    assert!(metric(&doc, "p99_response_latency").is_some());
    cluster.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_canary_with_a_fifth_of_errors_is_rolled_back() -> Result<()> {
    let cluster = Cluster::start().await?;
    let outcome = run_rollout(&cluster, Canary::Failing, "", async |_| Ok(())).await?;
    println!("{}", outcome.describe);
    assert_rolled_back(&outcome).await?;
    assert!(
        outcome.describe.contains("success rate"),
        "{}",
        outcome.describe
    );
    cluster.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_canary_slower_than_the_p99_bound_is_rolled_back() -> Result<()> {
    let cluster = Cluster::start().await?;
    let outcome = run_rollout(&cluster, Canary::Slow, "", async |_| Ok(())).await?;
    println!("{}", outcome.describe);
    assert_rolled_back(&outcome).await?;
    assert!(
        outcome.describe.contains("p99 latency"),
        "{}",
        outcome.describe
    );
    cluster.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_prometheus_pauses_the_analysis_until_it_returns() -> Result<()> {
    let cluster = Cluster::start().await?;
    let block = random_block();
    let prometheus: Arc<Mutex<Option<Prometheus>>> = Arc::new(Mutex::new(None));
    let address = SocketAddr::new(IpAddr::V4(host(block, 1)), 9090);
    let source = format!("source: {{prometheus: {{address: \"http://{address}\"}}}}");
    let slot = prometheus.clone();
    let rollouts: Api<Rollout> = Api::namespaced(cluster.client.clone(), "default");
    let watcher_rollouts = rollouts.clone();
    // Stops Prometheus after the first passed check, and starts it again once the rollout
    // paused with AnalysisError.
    let chaos = tokio::spawn(async move {
        wait_for(120, "a first passed check", || async {
            let s = watcher_rollouts.get("foobar").await.ok()?.status?;
            (s.analysis?.checks >= 1).then_some(())
        })
        .await?;
        slot.lock()
            .await
            .as_mut()
            .context("prometheus")?
            .stop()
            .await?;
        let paused = wait_for(60, "the AnalysisError pause", || async {
            let s = watcher_rollouts.get("foobar").await.ok()?.status?;
            let error = s
                .conditions
                .iter()
                .any(|c| c.type_ == "AnalysisError" && c.status == "True");
            (s.phase == Some(Phase::Paused) && error).then_some(s.message.unwrap_or_default())
        })
        .await?;
        println!("paused: {paused}");
        slot.lock()
            .await
            .as_mut()
            .context("prometheus")?
            .restart()
            .await?;
        anyhow::Ok(paused)
    });
    let slot = prometheus.clone();
    let outcome = run_rollout(&cluster, Canary::Healthy, &source, async move |admin| {
        let p = Prometheus::start(address, &[admin], "500ms").await?;
        p.wait_scraping(1).await?;
        *slot.lock().await = Some(p);
        Ok(())
    })
    .await?;
    println!("{}", outcome.describe);
    let paused = chaos.await??;
    // The pause comes at the third error in a row; on a loaded machine the poll may first see
    // it after a fourth or fifth, which the message then counts.
    let errors_in_a_row = paused
        .split("failed ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse::<u32>().ok());
    assert!(
        errors_in_a_row.is_some_and(|n| n >= 3) && paused.contains("times in a row"),
        "{paused}"
    );
    assert_eq!(outcome.phase, Phase::Healthy, "{}", outcome.describe);
    for reason in ["AnalysisError", "AnalysisResumed", "Promoted"] {
        assert!(
            outcome.describe.contains(reason),
            "no {reason} in:\n{}",
            outcome.describe
        );
    }
    cluster.stop().await;
    Ok(())
}

/// The good and the bad case 10 times each; prints the counts. Run explicitly:
/// `cargo nextest run -p weir-e2e --test analysis_rollout --run-ignored only`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "about 5 minutes: 20 rollouts; run with --run-ignored only"]
async fn repeated_good_and_bad_rollouts() -> Result<()> {
    let mut counts = std::collections::BTreeMap::new();
    for round in 0..10 {
        for canary in [Canary::Healthy, Canary::Failing] {
            let cluster = Cluster::start().await?;
            let result = run_rollout(&cluster, canary, "", async |_| Ok(())).await;
            let verdict = match (&result, canary) {
                (Ok(o), Canary::Healthy) if o.phase == Phase::Healthy => "promoted as expected",
                (Ok(o), Canary::Failing) => match assert_rolled_back(o).await {
                    Ok(()) => "rolled back as expected",
                    Err(e) => {
                        println!("round {round}: {e}");
                        "rolled back, but a check failed"
                    }
                },
                (Ok(_), _) => "wrong outcome",
                (Err(e), _) => {
                    println!("round {round} {canary:?}: {e}");
                    "did not finish"
                }
            };
            println!("round {round} {canary:?}: {verdict}");
            *counts.entry((format!("{canary:?}"), verdict)).or_insert(0) += 1;
            cluster.stop().await;
        }
    }
    println!("counts: {counts:?}");
    let good = counts
        .get(&("Healthy".to_string(), "promoted as expected"))
        .copied()
        .unwrap_or(0);
    let bad = counts
        .get(&("Failing".to_string(), "rolled back as expected"))
        .copied()
        .unwrap_or(0);
    assert_eq!((good, bad), (10, 10), "{counts:?}");
    Ok(())
}
