//! The operator at scale: N Rollouts (1,000 by default) on the local control plane with the
//! workload simulator, each taking a template change and walking its steps at once, then
//! all aborted. Starts the real `weir-operator` binary as a process, as its ServiceAccount
//! under the install's RBAC; the API server counts its requests. Prints figures; asserts
//! nothing.
//!
//! ```text
//! cargo build --release -p weir-operator --bin weir-operator && cargo build -p weir-proxy --bin weir-proxy
//! cargo run --release -p weir-e2e --example operator_bench -- [--rollouts N] [--operator PATH] [--proxy-dir DIR] [-- OPERATOR FLAGS]
//! ```
//!
//! Phases: create N Rollouts at v1 and wait until every one is Healthy; change every
//! template to v2 at once and wait until every canary has walked `setWeight 10, 30, 50`
//! to its `pause: {}` (Paused, canary at 50%); then abort every one at once (the plugin's
//! status patch) and poll the namespace gateway's `/splits` until it sends all of each
//! Rollout's traffic to stable. Reported: the operator's peak RSS (VmHWM) and CPU seconds
//! (utime+stime) from /proc, reconcile p50/p99 from its own histogram, its API requests
//! per reconcile (counted by the API server; watches apart), and abort-to-stable p50/p99.

#[path = "../tests/support/api_tap.rs"]
#[allow(dead_code)]
mod api_tap;
#[path = "operator_bench/measure.rs"]
mod measure;

use anyhow::{Context as _, Result, bail};
use futures::{StreamExt, TryStreamExt, stream};
use k8s_openapi::api::core::v1::Pod;
use kube::Client;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::reflector::{self, Store, reflector};
use kube::runtime::{WatchStreamExt, watcher};
use measure::{Requests, Snapshot, http_get, percentile, proc_mb, quantile, snapshot};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::time::Instant;
use weir_crds::Rollout;
use weir_crds::rollout::Phase;
use weir_e2e::apiserver::server::{ObservedRequest, RequestObserver};
use weir_e2e::apiserver::{LocalApiServer, Options};
use weir_e2e::simulator::ipam::ClaimedBlock;
use weir_e2e::simulator::{Simulator, SimulatorOptions};
use weir_operator::children::{GATEWAY_ADMIN_PORT, GATEWAY_NAME};

/// The local API server and simulator allocate a JSON tree per write; glibc's malloc was
/// 40% of this process's CPU in a `perf` profile of the walk.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const NS: &str = "default";
/// The operator's namespace (its ServiceAccount and leader-election Lease), as installed.
const OPERATOR_NS: &str = "weir-system";
/// The user the operator's requests come as.
const OPERATOR_USER: &str = "system:serviceaccount:weir-system:weir-operator";
/// Requests sent to the API server at once while creating or patching Rollouts.
const PARALLEL: usize = 16;

fn rollout(i: usize, image: &str) -> Result<Rollout> {
    Ok(serde_yaml::from_str(&format!(
        r#"
apiVersion: weir.dev/v1alpha1
kind: Rollout
metadata: {{name: ro-{i}, namespace: {NS}}}
spec:
  replicas: 1
  selector: {{matchLabels: {{app: ro-{i}}}}}
  template:
    metadata: {{labels: {{app: ro-{i}}}}}
    spec: {{containers: [{{name: app, image: "{image}", ports: [{{containerPort: 8080}}]}}]}}
  scaleDownDelay: 10m
  strategy:
    steps: [{{setWeight: 10}}, {{setWeight: 30}}, {{setWeight: 50}}, {{pause: {{}}}}]
"#
    ))?)
}

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

/// The arguments after `--`, passed on to the operator (e.g. `--max-concurrent-reconciles 0`).
fn operator_args() -> Vec<String> {
    std::env::args().skip_while(|a| a != "--").skip(1).collect()
}

fn workspace_target() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../target")
}

/// Waits (up to `secs`) until `done` holds for every Rollout in `cache` (a watch, so that
/// waiting does not load the API server with LISTs of every Rollout); prints progress.
async fn wait_all(
    cache: &Store<Rollout>,
    n: usize,
    secs: u64,
    what: &str,
    done: impl Fn(&Rollout) -> bool,
) -> Result<Duration> {
    let start = Instant::now();
    let mut last = usize::MAX;
    while start.elapsed() < Duration::from_secs(secs) {
        let ok = cache.state().iter().filter(|r| done(r)).count();
        if ok != last {
            eprintln!(
                "  {what}: {ok}/{n} after {:.1}s",
                start.elapsed().as_secs_f64()
            );
            last = ok;
        }
        if ok >= n {
            return Ok(start.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    bail!("{what}: not every Rollout within {secs}s ({last}/{n})")
}

fn phase_of(r: &Rollout) -> Option<Phase> {
    r.status.as_ref().and_then(|s| s.phase)
}

/// The gateway's admin address, once its pod is ready.
async fn gateway_admin(client: &Client) -> Result<String> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), NS);
    for _ in 0..600 {
        let lp = ListParams::default().labels(&format!("app.kubernetes.io/name={GATEWAY_NAME}"));
        let ready = pods.list(&lp).await?.items.into_iter().find_map(|p| {
            let s = p.status?;
            let ready = s
                .conditions?
                .iter()
                .any(|c| c.type_ == "Ready" && c.status == "True");
            ready.then_some(s.pod_ip?)
        });
        if let Some(ip) = ready {
            return Ok(format!("{ip}:{GATEWAY_ADMIN_PORT}"));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    bail!("no ready gateway pod within 120s")
}

/// For each Rollout `ro-i` in the gateway's `/splits`: the canary's weight in thousandths.
fn canary_weights(splits: &Value) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    let Some(routes) = splits["splits"][NS].as_object() else {
        return out;
    };
    for (root, route) in routes {
        let stable = format!("{root}-v1");
        let canary: u64 = route["backends"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|b| b["service"].as_str() != Some(stable.as_str()))
            .map(|b| b["weight_millis"].as_u64().unwrap_or(0))
            .sum();
        out.insert(root.clone(), canary);
    }
    out
}

fn print_phase(name: &str, wall: Duration, a: &Snapshot, b: &Snapshot) {
    let reconciles = b.reconciles - a.reconciles;
    let per = |x: u64, y: u64| (y - x) as f64 / reconciles.max(1.0);
    println!(
        "| {name} | {:.1} | {:.1} | {reconciles:.0} | {:.2} / {:.2} | {:.1} / {:.1} | {:.2} ({:.2} writes, {:.3} lists) | {:.1} |",
        wall.as_secs_f64(),
        b.cpu_secs - a.cpu_secs,
        quantile(&a.buckets, &b.buckets, 0.5) * 1000.0,
        quantile(&a.buckets, &b.buckets, 0.99) * 1000.0,
        quantile(&a.queue_buckets, &b.queue_buckets, 0.5) * 1000.0,
        quantile(&a.queue_buckets, &b.queue_buckets, 0.99) * 1000.0,
        per(a.calls, b.calls),
        per(a.writes, b.writes),
        per(a.lists, b.lists),
        b.rss_mb,
    );
}

#[tokio::main]
async fn main() -> Result<()> {
    let n: usize = arg("--rollouts")
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(1000);
    let release = workspace_target().join("release/weir-operator");
    let operator = arg("--operator").map(PathBuf::from).unwrap_or_else(|| {
        if release.is_file() {
            release
        } else {
            workspace_target().join("debug/weir-operator")
        }
    });
    let proxy_dir = arg("--proxy-dir")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_target().join("debug"));
    // The gateway's pod runs this binary; without it the bench would wait for a Ready gateway.
    if !proxy_dir.join("weir-proxy").is_file() {
        bail!(
            "no weir-proxy in {}: build it (cargo build -p weir-proxy) or name its directory with --proxy-dir",
            proxy_dir.display()
        );
    }
    eprintln!("{n} Rollouts; operator {}", operator.display());
    // Two revisions of one pod each per Rollout, and three Services: /20s hold 4,094 each.
    let pods_block = ClaimedBlock::claim(20)?;
    let services_block = ClaimedBlock::claim(20)?;
    // The operator's requests, counted and timed by the API server itself: a proxy in front
    // of it (an earlier version) added a hop that doubled the reconcile p99 it measured.
    let requests = Arc::new(Requests::default());
    let observed = requests.clone();
    let server = LocalApiServer::start(Options {
        service_cidr: services_block.cidr(),
        observer: Some(RequestObserver(Arc::new(move |r: &ObservedRequest<'_>| {
            if r.user == OPERATOR_USER {
                observed.observe(r.method, r.path_and_query, r.took);
            }
        }))),
        ..Options::default()
    })
    .await?;
    let client = server.client().await?;
    weir_e2e::install::install_crds(&client).await?;
    weir_e2e::install::install_rbac(&client).await?;
    let logs = std::env::temp_dir().join(format!("weir-operator-bench-{}", std::process::id()));
    std::fs::create_dir_all(&logs)?;
    let sim = Simulator::start(
        client.clone(),
        SimulatorOptions {
            pod_cidr: pods_block.cidr(),
            service_cidr: services_block.cidr(),
            kubeconfig: Some(server.kubeconfig_path().to_path_buf()),
            // The gateway reads endpoints from EndpointSlices; no ClusterIP listeners needed.
            kube_proxy: false,
            binaries: vec![proxy_dir],
            log_dir: Some(logs.clone()),
            resync: Duration::from_secs(5),
            ..SimulatorOptions::default()
        },
    )
    .await?;

    // The operator runs as its own ServiceAccount, under the install's RBAC.
    let operator_kubeconfig = server.service_account_kubeconfig(
        OPERATOR_NS,
        "weir-operator",
        &logs.join("operator.kubeconfig"),
    )?;
    let admin_port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let admin = format!("127.0.0.1:{admin_port}");
    let mut child = tokio::process::Command::new(&operator)
        .args(["--metrics-addr", &admin, "--no-metrics-api"])
        .args(operator_args())
        .args([
            "--gateway-image",
            "weir-proxy:bench",
            "--lease-namespace",
            OPERATOR_NS,
        ])
        .env("KUBECONFIG", &operator_kubeconfig)
        .env(
            "RUST_LOG",
            std::env::var("WEIR_BENCH_LOG").unwrap_or_else(|_| "info,kube=warn".into()),
        )
        .stdout(std::fs::File::create(logs.join("operator.log"))?)
        .stderr(std::fs::File::create(logs.join("operator.err"))?)
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("start {}", operator.display()))?;
    let pid = child.id().context("the operator's pid")?;
    let started = Instant::now();
    // `/ready`: this replica leads and every watch has listed.
    while let Err(e) = http_get(&admin, "/ready").await {
        if started.elapsed() > Duration::from_secs(60) {
            bail!(
                "the operator was not ready in 60s ({e}); see {}",
                logs.display()
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    eprintln!(
        "operator ready after {:.1}s",
        started.elapsed().as_secs_f64()
    );
    let rollouts: Api<Rollout> = Api::namespaced(client.clone(), NS);
    let (cache, cache_writer) = reflector::store();
    tokio::spawn(
        reflector(
            cache_writer,
            watcher(rollouts.clone(), watcher::Config::default()),
        )
        .default_backoff()
        .applied_objects()
        .for_each(|_| std::future::ready(())),
    );
    let s0 = snapshot(pid, &admin, &requests).await?;

    stream::iter(0..n)
        .map(|i| {
            let rollouts = rollouts.clone();
            async move {
                rollouts
                    .create(&PostParams::default(), &rollout(i, "weir-demo:v1")?)
                    .await?;
                anyhow::Ok(())
            }
        })
        .buffer_unordered(PARALLEL)
        .try_collect::<Vec<_>>()
        .await?;
    let create_wall = wait_all(&cache, n, 1800, "Healthy at v1", |r| {
        phase_of(r) == Some(Phase::Healthy)
    })
    .await?;
    let s1 = snapshot(pid, &admin, &requests).await?;

    let patch = json!({"spec": {"template": {"spec": {"containers": [
        {"name": "app", "image": "weir-demo:v2", "ports": [{"containerPort": 8080}]}]}}}});
    stream::iter(0..n)
        .map(|i| {
            let (rollouts, patch) = (rollouts.clone(), patch.clone());
            async move {
                let p = Patch::Merge(&patch);
                rollouts
                    .patch(&format!("ro-{i}"), &PatchParams::default(), &p)
                    .await?;
                anyhow::Ok(())
            }
        })
        .buffer_unordered(PARALLEL)
        .try_collect::<Vec<_>>()
        .await?;
    let walk_wall = wait_all(&cache, n, 1800, "canary at 50%, paused", |r| {
        phase_of(r) == Some(Phase::Paused)
            && r.status.as_ref().and_then(|s| s.weights).map(|w| w.canary) == Some(50)
    })
    .await?;
    let s2 = snapshot(pid, &admin, &requests).await?;

    let gateway = gateway_admin(&client).await?;
    let start = Instant::now();
    loop {
        let config: Value = serde_json::from_str(&http_get(&gateway, "/splits").await?)?;
        let w = canary_weights(&config);
        if w.len() >= n && w.values().all(|c| *c == 50_000) {
            break;
        }
        if start.elapsed() > Duration::from_secs(120) {
            let sample: Vec<_> = w.iter().take(3).collect();
            let text = config.to_string();
            bail!(
                "the gateway did not show every split at 50% in 120s: {} routes, {sample:?}; config starts {}",
                w.len(),
                &text[..text.len().min(1500)]
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let config_bytes = http_get(&gateway, "/config").await?.len();
    let splits_bytes = http_get(&gateway, "/splits").await?.len();
    let aborted_at: Arc<parking_lot::Mutex<BTreeMap<String, Instant>>> = Arc::default();
    let abort = json!({"status": {"abort": true}});
    let sent = aborted_at.clone();
    let asked_at: Arc<parking_lot::Mutex<BTreeMap<String, Instant>>> = Arc::default();
    let asked = asked_at.clone();
    let abort_task = tokio::spawn({
        let rollouts = rollouts.clone();
        async move {
            stream::iter(0..n)
                .map(|i| {
                    let (rollouts, abort, sent) = (rollouts.clone(), abort.clone(), sent.clone());
                    let asked = asked.clone();
                    async move {
                        let name = format!("ro-{i}");
                        asked.lock().insert(name.clone(), Instant::now());
                        let p = Patch::Merge(&abort);
                        rollouts
                            .patch_status(&name, &PatchParams::default(), &p)
                            .await?;
                        sent.lock().insert(name, Instant::now());
                        anyhow::Ok(())
                    }
                })
                .buffer_unordered(PARALLEL)
                .try_collect::<Vec<_>>()
                .await
        }
    });
    let mut to_stable: BTreeMap<String, f64> = BTreeMap::new();
    let mut poll_secs = Vec::new();
    let start = Instant::now();
    while to_stable.len() < n && start.elapsed() < Duration::from_secs(300) {
        let asked = Instant::now();
        let config: Value = serde_json::from_str(&http_get(&gateway, "/splits").await?)?;
        let seen = Instant::now();
        poll_secs.push(seen.duration_since(asked).as_secs_f64());
        let sent = aborted_at.lock().clone();
        for (root, canary) in canary_weights(&config) {
            // The config was read between `asked` and `seen`: count from `asked`.
            if canary == 0
                && !to_stable.contains_key(&root)
                && let Some(t0) = sent.get(&root)
            {
                let secs = asked.saturating_duration_since(*t0).as_secs_f64();
                to_stable.insert(root, secs);
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    abort_task.await??;
    let abort_wall = start.elapsed();
    let s3 = snapshot(pid, &admin, &requests).await?;
    let hwm = proc_mb(pid, "VmHWM")?;
    let rss = proc_mb(pid, "VmRSS")?;

    // Where the time went: abort to the operator's first split write after it, and that write to
    // the gateway's config showing it (which includes the probe's resolution).
    let (mut to_write, mut write_to_seen) = (Vec::new(), Vec::new());
    {
        let sent = aborted_at.lock();
        let asked = asked_at.lock();
        let writes = requests.split_writes.lock();
        for (root, secs) in &to_stable {
            let first_after = |t0: &Instant| {
                writes
                    .get(root)
                    .and_then(|ws| ws.iter().find(|w| *w >= t0).copied())
            };
            if let (Some(t0), Some(t_asked)) = (sent.get(root), asked.get(root))
                && let Some(w) = first_after(t_asked)
            {
                // Counted, like the total, from the abort's acknowledgement (0 if before).
                let a = w.saturating_duration_since(*t0).as_secs_f64();
                to_write.push(a);
                write_to_seen.push((secs - a).max(0.0));
            }
        }
    }
    to_write.sort_by(f64::total_cmp);
    write_to_seen.sort_by(f64::total_cmp);
    let mut secs: Vec<f64> = to_stable.values().copied().collect();
    secs.sort_by(f64::total_cmp);
    poll_secs.sort_by(f64::total_cmp);
    println!(
        "\noperator: {} ({n} Rollouts, one pod each)",
        operator.display()
    );
    println!(
        "peak RSS (VmHWM) {hwm:.1} MB; RSS before the first Rollout {:.1} MB, at the end {rss:.1} MB; CPU {:.1} s in all",
        s0.rss_mb,
        s3.cpu_secs - s0.cpu_secs
    );
    println!(
        "\n| phase | wall s | operator CPU s | reconciles | reconcile p50 / p99 ms | wait for a slot p50 / p99 ms | API requests per reconcile | RSS at the end, MB |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    print_phase("create, to Healthy", create_wall, &s0, &s1);
    print_phase("template change, walk to 50%", walk_wall, &s1, &s2);
    print_phase("abort, to stable at the gateway", abort_wall, &s2, &s3);
    print_phase(
        "all",
        s3.at.zip(s0.at).map_or(Duration::ZERO, |(b, a)| b - a),
        &s0,
        &s3,
    );
    println!(
        "\nabort to stable at the gateway: {} of {n} seen; p50 {:.3} s, p99 {:.3} s, max {:.3} s",
        secs.len(),
        percentile(&secs, 0.5),
        percentile(&secs, 0.99),
        secs.last().copied().unwrap_or(f64::NAN)
    );
    println!(
        "  of which abort to the operator's split write: p50 {:.3} s, p99 {:.3} s; split write to seen at the gateway: p50 {:.3} s, p99 {:.3} s",
        percentile(&to_write, 0.5),
        percentile(&to_write, 0.99),
        percentile(&write_to_seen, 0.5),
        percentile(&write_to_seen, 0.99)
    );
    println!(
        "gateway /splits: {splits_bytes} bytes (/config: {config_bytes}), read in p50 {:.0} ms / max {:.0} ms (the resolution of the figure above)",
        percentile(&poll_secs, 0.5) * 1000.0,
        poll_secs.last().copied().unwrap_or(0.0) * 1000.0
    );
    println!(
        "watch requests: {} (in all)",
        requests.watches.load(Ordering::Relaxed)
    );
    measure::print_latencies(&requests);
    child.kill().await.ok();
    sim.shutdown().await;
    server.shutdown().await;
    Ok(())
}
