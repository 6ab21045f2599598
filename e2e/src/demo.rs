//! The demo (`weir-demo`): a progressive rollout on this machine, start to finish, with the
//! real programs. It starts the local control plane and simulator, installs Weir, runs the
//! real `weir-operator` as a Pod (which brings up the `weir-proxy` namespace gateway),
//! deploys Rollout `foobar` at v1 with steady traffic from two client Pods a TrafficTarget
//! allows, updates it to a healthy v2 (promoted step by step) and then to a v3 that fails
//! 20% of its requests (rolled back by analysis), printing a progress line a second and each
//! Event. The analysis reads a real Prometheus the demo starts when one is installed (or
//! asked for), else the SMI TrafficMetrics API that the operator serves.

pub mod cluster;
pub mod live;
pub mod source;
pub mod story;

use anyhow::{Context as _, Result};
use cluster::DemoCluster;
use kube::api::{Api, Patch, PatchParams, PostParams};
use live::Traffic;
use source::{DemoPrometheus, Source, SourceChoice};
use std::path::PathBuf;
use std::time::Duration;
use story::{Ending, NAMESPACE, ROLLOUT};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use weir_crds::Rollout;

/// How the demo runs.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// Where the kubeconfig, the serving certificate and the pods' output go.
    pub dir: PathBuf,
    /// Where `weir-operator`, `weir-proxy` and `kubectl-weir` are ([`cluster::bin_dir`]).
    pub bin_dir: PathBuf,
    /// The longest each update (v1, v2, v3) may take before the demo gives up.
    pub update_timeout: Duration,
    /// After the story, leave everything up until Ctrl-C or SIGTERM.
    pub keep_running: bool,
    /// Which metrics source the analysis reads.
    pub metrics_source: SourceChoice,
}

/// How the story went.
#[derive(Debug, Clone)]
pub struct Summary {
    /// How the healthy v2 ended.
    pub v2: Ending,
    /// How the failing v3 ended.
    pub v3: Ending,
    /// The metrics source the analysis read.
    pub source: Source,
    /// What the clients saw over the whole demo.
    pub clients: story::ClientSecond,
    /// How long the demo took.
    pub elapsed: Duration,
    /// What did not happen as the story says; empty when it all did.
    pub problems: Vec<String>,
}

/// The commands to try in another terminal while the demo runs.
pub fn commands(kubeconfig: &std::path::Path, bin_dir: &std::path::Path) -> Vec<String> {
    let k = kubeconfig.display();
    vec![
        format!("kubectl --kubeconfig {k} describe rollout {ROLLOUT}"),
        format!(
            "PATH={}:$PATH kubectl weir --kubeconfig {k} get {ROLLOUT} -w",
            bin_dir.display()
        ),
        format!("kubectl --kubeconfig {k} get trafficsplits,deployments,pods,events"),
        format!(
            "kubectl --kubeconfig {k} get --raw '{}'",
            story::metrics_path(2, "30s")
        ),
    ]
}

/// A query to try against the demo's Prometheus: the canary's requests by status.
pub fn prometheus_command(addr: std::net::SocketAddr) -> String {
    format!(
        "curl -s 'http://{addr}/api/v1/query' --data-urlencode 'query=sum by (dst_deployment, status_code) (rate(weir_requests_total{{namespace=\"{NAMESPACE}\"}}[30s]))'"
    )
}

/// Waits for the update to `revision` to end, printing a progress line a second.
async fn follow(
    demo: &DemoCluster,
    traffic: &Traffic,
    start: Instant,
    revision: i64,
    timeout: Duration,
) -> Ending {
    let rollouts: Api<Rollout> = Api::namespaced(demo.client.clone(), NAMESPACE);
    let deadline = Instant::now() + timeout;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.tick().await; // the first tick is immediate: the first line comes a second in
    let mut last = String::from("no status yet");
    let mut read_from: Option<String> = None;
    while Instant::now() < deadline {
        tick.tick().await;
        let snap = live::snapshot(&demo.client, traffic, start.elapsed()).await;
        println!("{}", story::progress_line(&snap));
        let source = snap
            .status
            .analysis
            .as_ref()
            .and_then(|a| a.last_result.as_ref())
            .and_then(|r| r.source.clone());
        if source.is_some() && source != read_from {
            println!(
                "[{:6.1}s] the analysis read its figures from {}",
                start.elapsed().as_secs_f64(),
                source.as_deref().unwrap_or_default()
            );
            read_from = source;
        }
        // The status from the snapshot may be a second old: read it again to decide.
        if let Ok(r) = rollouts.get(ROLLOUT).await {
            let status = r.status.unwrap_or_default();
            last = format!(
                "phase {:?} step {:?}: {}",
                status.phase,
                status.step_progress,
                status.message.as_deref().unwrap_or("")
            );
            if status.observed_generation == r.metadata.generation
                && let Some(end) = story::ending(&status, revision)
            {
                return end;
            }
        }
    }
    Ending::Unfinished(last)
}

/// Applies a revision patch to `foobar`.
async fn update(demo: &DemoCluster, version: &str, error_rate: f64) -> Result<()> {
    let rollouts: Api<Rollout> = Api::namespaced(demo.client.clone(), NAMESPACE);
    rollouts
        .patch(
            ROLLOUT,
            &PatchParams::default(),
            &Patch::Merge(&story::revision_patch(version, error_rate)),
        )
        .await
        .with_context(|| format!("update {ROLLOUT} to {version}"))?;
    Ok(())
}

/// Runs the whole story and says how it went; an `Err` is a demo that could not run at all.
pub async fn run(opts: DemoOptions) -> Result<Summary> {
    let start = Instant::now();
    std::fs::create_dir_all(&opts.dir).with_context(|| opts.dir.display().to_string())?;
    let kubeconfig = opts.dir.join("kubeconfig");
    let say = |line: String| println!("[{:6.1}s] {line}", start.elapsed().as_secs_f64());
    let source = source::resolve(opts.metrics_source, crate::prometheus::installed())?;
    // Prometheus's address is fixed before the Rollout names it; it starts once the gateway
    // it scrapes is up (v1 has nothing to analyse).
    let prometheus_addr = match source {
        Source::Prometheus => Some(DemoPrometheus::claim_address()?),
        Source::TrafficMetrics => None,
    };
    let demo = DemoCluster::start(&opts.dir, &kubeconfig, &opts.bin_dir, say).await?;
    match &prometheus_addr {
        Some((_, addr)) => say(format!(
            "metrics source: Prometheus at http://{addr} (the `prometheus` on PATH, started once \
             the gateway is up; config in {}); the progress lines' figures come from the SMI \
             TrafficMetrics API",
            opts.dir.join("prometheus").display()
        )),
        None => say(
            "metrics source: the SMI TrafficMetrics API served by weir-operator \
             (metrics.smi-spec.io/v1alpha1); Prometheus not used (--metrics-source)"
                .into(),
        ),
    }
    println!(
        "\nkubeconfig: {}\nTry in another terminal:",
        kubeconfig.display()
    );
    for c in commands(&kubeconfig, &demo.bin_dir) {
        println!("  {c}");
    }
    if let Some((_, addr)) = &prometheus_addr {
        println!("  {}", prometheus_command(*addr));
    }
    println!();
    let stop_events = CancellationToken::new();
    let events = live::print_events(&demo.client, stop_events.clone());

    let rollouts: Api<Rollout> = Api::namespaced(demo.client.clone(), NAMESPACE);
    let yaml = story::rollout_yaml_reading(prometheus_addr.as_ref().map(|(_, a)| *a));
    let v1: Rollout = serde_yaml::from_str(&yaml).context("the demo Rollout")?;
    rollouts
        .create(&PostParams::default(), &v1)
        .await
        .context("create Rollout foobar")?;
    say("== v1: Rollout foobar created (weir-demo:v1, 2 replicas)".into());
    let rollouts_v1 = rollouts.clone();
    crate::eventually::eventually(opts.update_timeout.as_secs(), "v1 Healthy", || async {
        let s = rollouts_v1.get(ROLLOUT).await?.status.unwrap_or_default();
        anyhow::ensure!(
            story::ending(&s, 1) == Some(Ending::Promoted(1)),
            "{:?}",
            s.phase
        );
        Ok(())
    })
    .await?;
    let gateway = demo.gateway().await?;
    say(format!(
        "v1 Healthy; the namespace gateway (weir-proxy) serves foobar at {gateway}"
    ));
    let _prometheus = match prometheus_addr {
        Some((block, addr)) => {
            let (p, targets) = DemoPrometheus::start(
                &demo.client,
                NAMESPACE,
                block,
                addr,
                &opts.dir.join("prometheus"),
            )
            .await?;
            let list: Vec<String> = targets.iter().map(ToString::to_string).collect();
            say(format!(
                "Prometheus up at http://{addr}, scraping the gateway's /metrics at {} every 500 ms",
                list.join(", ")
            ));
            Some(p)
        }
        None => None,
    };
    let limit = if opts.keep_running {
        Duration::from_secs(3600)
    } else {
        opts.update_timeout * 3
    };
    let traffic = Traffic::start(&demo.clients, gateway, limit);

    // Two seconds of v1 alone, so the clients' steady state shows before the update.
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.tick().await;
    for _ in 0..2 {
        tick.tick().await;
        let snap = live::snapshot(&demo.client, &traffic, start.elapsed()).await;
        println!("{}", story::progress_line(&snap));
    }
    say("== v2: update foobar to weir-demo:v2 (healthy)".into());
    update(&demo, "v2", 0.0).await?;
    let v2 = follow(&demo, &traffic, start, 2, opts.update_timeout).await;
    say(format!("v2 ended: {v2:?}"));

    say("== v3: update foobar to weir-demo:v3 (fails 20% of requests)".into());
    update(&demo, "v3", 0.2).await?;
    let v3 = follow(&demo, &traffic, start, 3, opts.update_timeout).await;
    say(format!("v3 ended: {v3:?}"));

    let problems = story::verdict(&v2, &v3);
    let clients = live::client_second(&traffic.total());
    let summary = Summary {
        v2,
        v3,
        source,
        clients,
        elapsed: start.elapsed(),
        problems,
    };
    if opts.keep_running {
        println!(
            "\nEverything stays up (traffic included) until Ctrl-C. kubeconfig: {}",
            kubeconfig.display()
        );
        for c in commands(&kubeconfig, &demo.bin_dir) {
            println!("  {c}");
        }
        crate::terminated().await;
    }
    let _ = traffic.stop().await;
    stop_events.cancel();
    let _ = events.await;
    demo.stop().await;
    Ok(summary)
}
