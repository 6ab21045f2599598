//! The real `weir-operator` binary against the local control plane: killed with SIGKILL
//! between its writes and its status write, then replaced; and two replicas with one
//! leader.

#[path = "support/lib.rs"]
mod support;

use anyhow::{Context as _, Result, ensure};
use hyper::Method;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::coordination::v1::Lease;
use kube::api::{Api, Patch, PatchParams};
use rustix::process::{Pid, Signal, kill_process};
use std::net::SocketAddr;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::time::Duration;
use support::api_tap::{ApiTap, Observer, Verdict};
use support::binaries::workspace_binary;
use support::operator::*;
use support::{eventually, seen};
use tokio::process::{Child, Command};
use weir_crds::Rollout;
use weir_crds::rollout::Phase;

/// The operator's metrics port, on an address of the test's own block.
const METRICS_PORT: u16 = 8081;

/// Starts one operator replica with its metrics on `metrics`.
fn spawn_operator(kubeconfig: &Path, identity: &str, metrics: SocketAddr) -> Result<Child> {
    spawn_operator_with(kubeconfig, identity, metrics, &[], None)
}

/// [`spawn_operator`] with more arguments.
fn spawn_operator_with(
    kubeconfig: &Path,
    identity: &str,
    metrics: SocketAddr,
    extra: &[&str],
    log: Option<&Path>,
) -> Result<Child> {
    let stdout = match log {
        Some(path) => Stdio::from(std::fs::File::create(path)?),
        None => Stdio::null(),
    };
    Command::new(workspace_binary("weir-operator")?)
        .args(["--no-gateway", "--no-metrics-api", "--lease-seconds", "3"])
        .args(["--metrics-addr", &metrics.to_string()])
        .args(extra)
        .env("KUBECONFIG", kubeconfig)
        .env("POD_NAME", identity)
        .env("RUST_LOG", "warn")
        .stdout(stdout)
        .kill_on_drop(true)
        .spawn()
        .context("start weir-operator")
}

/// The whole HTTP/1.0 answer (status line, headers, body) to `GET path` on the admin port.
async fn admin_get(addr: SocketAddr, path: &str) -> Result<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    stream
        .write_all(format!("GET {path} HTTP/1.0\r\n\r\n").as_bytes())
        .await?;
    let mut answer = String::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_string(&mut answer)).await??;
    Ok(answer)
}

/// `weir_operator_reconciles_total` from the operator's `/metrics`.
async fn reconciles(addr: SocketAddr) -> Result<u64> {
    let body = admin_get(addr, "/metrics").await?;
    body.lines()
        .find(|l| l.starts_with("weir_operator_reconciles_total "))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .with_context(|| format!("no reconcile count in {body}"))
}

/// The status line of the operator's `/ready` (e.g. `HTTP/1.0 200 OK`).
async fn ready(addr: SocketAddr) -> Result<String> {
    let answer = admin_get(addr, "/ready").await?;
    Ok(answer.lines().next().unwrap_or_default().to_string())
}

/// Waits until `/ready` at `addr` answers 200.
async fn wait_ready(addr: SocketAddr, who: &str) -> Result<()> {
    eventually(20, who, || async {
        let status = ready(addr).await?;
        seen(status.contains(" 200 "), "/ready", status)
    })
    .await
    .map(drop)
}

async fn holder(client: &kube::Client) -> Result<String> {
    let leases: Api<Lease> = Api::namespaced(client.clone(), "default");
    leases
        .get("weir-operator")
        .await?
        .spec
        .and_then(|s| s.holder_identity)
        .context("the Lease has no holder")
}

async fn deployment_names(client: &kube::Client) -> Result<Vec<String>> {
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let mut names: Vec<String> = deployments
        .list(&Default::default())
        .await?
        .items
        .into_iter()
        .filter_map(|d| d.metadata.name)
        .collect();
    names.sort();
    Ok(names)
}

const STATUS_PATH: &str = "/apis/weir.dev/v1alpha1/namespaces/default/rollouts/foobar/status";
const DEPLOYMENT_V2_PATH: &str = "/apis/apps/v1/namespaces/default/deployments/foobar-v2";

/// What the kill test's tap has seen. Once armed, every Rollout status write is refused, and
/// the operator whose pid is `victim` is SIGKILLed as soon as one was refused and the API
/// server has answered its apply of `foobar-v2`'s Deployment: the operator may send the two
/// at once, and the Deployment must land while the status never does.
#[derive(Default)]
struct KillSwitch {
    armed: AtomicBool,
    refused_status: AtomicBool,
    applied_v2: AtomicBool,
    killed: AtomicBool,
    victim: AtomicI32,
}

impl KillSwitch {
    /// SIGKILLs the victim (once) when both writes have been seen.
    fn fire_when_due(&self) {
        let due =
            self.refused_status.load(Ordering::SeqCst) && self.applied_v2.load(Ordering::SeqCst);
        if due
            && !self.killed.swap(true, Ordering::SeqCst)
            && let Some(pid) = Pid::from_raw(self.victim.load(Ordering::SeqCst))
        {
            let _ = kill_process(pid, Signal::KILL);
        }
    }

    /// The tap's rule and observer for this switch.
    fn tap(self: &Arc<Self>) -> (support::api_tap::Rule, Observer) {
        let switch = self.clone();
        let rule = Box::new(move |method: &Method, path: &str| {
            let path = path.split('?').next().unwrap_or_default();
            if switch.killed.load(Ordering::SeqCst) {
                return Verdict::Refuse;
            }
            if switch.armed.load(Ordering::SeqCst) && method == Method::PATCH && path == STATUS_PATH
            {
                switch.refused_status.store(true, Ordering::SeqCst);
                switch.fire_when_due();
                return Verdict::Refuse;
            }
            Verdict::Forward
        });
        let switch = self.clone();
        let observer: Observer = Arc::new(move |method, path, status, _| {
            let path = path.split('?').next().unwrap_or_default();
            if switch.armed.load(Ordering::SeqCst)
                && method == Method::PATCH
                && path == DEPLOYMENT_V2_PATH
                && status.is_success()
            {
                switch.applied_v2.store(true, Ordering::SeqCst);
                switch.fire_when_due();
            }
        });
        (rule, observer)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_killed_before_its_status_write_is_replaced_without_duplicates_or_weight_jumps()
-> Result<()> {
    let cluster = start(None).await?;
    let client = cluster.client.clone();
    let splits = record_splits(&client);
    let switch = Arc::new(KillSwitch::default());
    let tap_kubeconfig = cluster
        .server
        .kubeconfig_path()
        .with_file_name("tapped-kubeconfig");
    let (rule, observer) = switch.tap();
    let tap = ApiTap::start_observed(cluster.server.addr(), &tap_kubeconfig, rule, Some(observer))
        .await?;
    let mut first = spawn_operator(
        tap.kubeconfig_path(),
        "op-a",
        SocketAddr::new(cluster.net.host(1)?.into(), METRICS_PORT),
    )?;
    switch.victim.store(
        i32::try_from(first.id().context("op-a has no pid")?)?,
        Ordering::SeqCst,
    );
    let rollouts: Api<Rollout> = Api::namespaced(client.clone(), "default");
    create_healthy_v1(&rollouts, 40).await?;
    switch.armed.store(true, Ordering::SeqCst);
    set_image_v2(&rollouts).await?;

    let exit = tokio::time::timeout(Duration::from_secs(40), first.wait())
        .await
        .context("op-a was not killed at its status write within 40 s")??;
    assert_eq!(exit.signal(), Some(9), "op-a died of SIGKILL: {exit:?}");
    let lost = rollouts.get("foobar").await?.status.unwrap_or_default();
    assert_eq!(
        (lost.canary_revision, deployment_names(&client).await?),
        (None, vec!["foobar-v1".to_string(), "foobar-v2".to_string()]),
        "op-a died after applying foobar-v2 and before recording it"
    );

    let _second = spawn_operator(
        cluster.server.kubeconfig_path(),
        "op-b",
        SocketAddr::new(cluster.net.host(2)?.into(), METRICS_PORT),
    )?;
    let canary = eventually(
        40,
        "op-b to drive the canary to the pause at 50%",
        || async {
            let s = rollouts.get("foobar").await?.status.unwrap_or_default();
            let at = (s.phase, s.current_step);
            seen(at == (Some(Phase::Paused), Some(3)), "phase and step", at)?;
            Ok(s.canary_revision)
        },
    )
    .await?;
    assert_eq!(holder(&client).await?, "op-b");
    assert_eq!(
        (canary, deployment_names(&client).await?),
        (
            Some(2),
            vec!["foobar-v1".to_string(), "foobar-v2".to_string()]
        ),
        "op-b reuses the Deployment op-a applied instead of creating another"
    );

    rollouts
        .patch_status(
            "foobar",
            &PatchParams::default(),
            &Patch::Merge(&serde_json::json!({"status": {"promoteStep": 3}})),
        )
        .await?;
    // No metrics here: the analysis gate (step 5) never passes on its own, so it is promoted too.
    eventually(20, "the analysis gate", || async {
        let s = rollouts.get("foobar").await?.status.unwrap_or_default();
        seen(s.current_step == Some(4), "step", s.current_step)
    })
    .await?;
    rollouts
        .patch_status(
            "foobar",
            &PatchParams::default(),
            &Patch::Merge(&serde_json::json!({"status": {"promoteStep": 4}})),
        )
        .await?;
    eventually(40, "v2 promoted", || async {
        let s = rollouts.get("foobar").await?.status.unwrap_or_default();
        let state = (s.phase, s.stable_revision);
        seen(
            state == (Some(Phase::Healthy), Some(2)),
            "phase and stable",
            state,
        )
    })
    .await?;
    let history = splits.lock().await.clone();
    assert_eq!(
        history,
        full_walk(),
        "the restart neither repeated nor skipped a weight"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_elect_one_leader_and_the_other_takes_over() -> Result<()> {
    let cluster = start(None).await?;
    let client = cluster.client.clone();
    let kubeconfig = cluster.server.kubeconfig_path().to_path_buf();
    let addr_a = SocketAddr::new(cluster.net.host(1)?.into(), METRICS_PORT);
    let addr_b = SocketAddr::new(cluster.net.host(2)?.into(), METRICS_PORT);
    let a = spawn_operator(&kubeconfig, "op-a", addr_a)?;
    let b = spawn_operator(&kubeconfig, "op-b", addr_b)?;
    let leader = eventually(20, "a leader", || holder(&client)).await?;
    let rollouts: Api<Rollout> = Api::namespaced(client.clone(), "default");
    create_healthy_v1(&rollouts, 40).await?;
    let (mut leader_child, leader_addr, follower, follower_addr) = if leader == "op-a" {
        (a, addr_a, "op-b", addr_b)
    } else {
        (b, addr_b, "op-a", addr_a)
    };
    assert!(reconciles(leader_addr).await? > 0, "the leader reconciles");
    assert_eq!(
        reconciles(follower_addr).await?,
        0,
        "the follower writes nothing"
    );
    // Without the metrics API, `/ready` means: this replica leads and its watches listed.
    wait_ready(leader_addr, "the leader's /ready").await?;
    let standby = ready(follower_addr).await?;
    assert!(standby.contains(" 503 "), "the standby's /ready: {standby}");

    leader_child.start_kill()?;
    leader_child.wait().await?;
    eventually(20, "the follower to take the lease", || async {
        let now = holder(&client).await?;
        seen(now == follower, "holder", now)
    })
    .await?;
    set_image_v2(&rollouts).await?;
    wait_phase(
        &rollouts,
        Phase::Paused,
        40,
        "the new leader to drive v2 to the pause",
    )
    .await?;
    let count = reconciles(follower_addr).await?;
    ensure!(count > 0, "the new leader reconciled {count} times");
    wait_ready(follower_addr, "the new leader's /ready").await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_under_its_service_account_and_config_rbac_completes_a_rollout() -> Result<()>
{
    // `start` installs config/rbac; the operator presents its ServiceAccount's token.
    let cluster = start(None).await?;
    let client = cluster.client.clone();
    let kubeconfig = cluster.server.service_account_kubeconfig(
        "weir-system",
        "weir-operator",
        &cluster.server.kubeconfig_path().with_file_name(format!(
            "weir-operator-sa-{}.kubeconfig",
            std::process::id()
        )),
    )?;
    let metrics = SocketAddr::new(cluster.net.host(1)?.into(), METRICS_PORT);
    let log = kubeconfig.with_extension("log");
    let _operator = spawn_operator_with(
        &kubeconfig,
        "op-sa",
        metrics,
        &["--lease-namespace", "weir-system"],
        Some(&log),
    )?;
    let walk = async {
        let rollouts: Api<Rollout> = Api::namespaced(client.clone(), "default");
        create_healthy_v1(&rollouts, 40).await?;
        set_image_v2(&rollouts).await?;
        // The pause (step 3) and the analysis gate (step 4: no metrics here) are promoted.
        for step in [3, 4] {
            eventually(40, "the rollout to wait at the step", || async {
                let s = rollouts.get("foobar").await?.status.unwrap_or_default();
                seen(s.current_step == Some(step), "step", s.current_step)
            })
            .await?;
            rollouts
                .patch_status(
                    "foobar",
                    &PatchParams::default(),
                    &Patch::Merge(&serde_json::json!({"status": {"promoteStep": step}})),
                )
                .await?;
        }
        eventually(
            40,
            "v2 promoted by the operator running as weir-operator",
            || async {
                let s = rollouts.get("foobar").await?.status.unwrap_or_default();
                let state = (s.phase, s.stable_revision);
                seen(
                    state == (Some(Phase::Healthy), Some(2)),
                    "phase and stable",
                    state,
                )
            },
        )
        .await?;
        anyhow::Ok(())
    };
    if let Err(e) = walk.await {
        // What the API server refused, from the operator's own log.
        let log = std::fs::read_to_string(&log).unwrap_or_default();
        let refused: Vec<&str> = log
            .lines()
            .filter(|l| l.contains("forbidden") || l.contains("may not make calls"))
            .collect();
        anyhow::bail!(
            "{e:#}\nthe operator's refused calls:\n{}",
            refused.join("\n")
        );
    }
    let leases: Api<Lease> = Api::namespaced(client.clone(), "weir-system");
    let holder = leases
        .get("weir-operator")
        .await?
        .spec
        .and_then(|s| s.holder_identity);
    assert_eq!(holder.as_deref(), Some("op-sa"));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_port_that_cannot_be_bound_stops_the_operator_with_a_clear_error() -> Result<()> {
    let cluster = start(None).await?;
    let taken = std::net::TcpListener::bind(SocketAddr::new(cluster.net.host(2)?.into(), 0))?;
    let addr = taken.local_addr()?;
    let out = Command::new(workspace_binary("weir-operator")?)
        .args(["--no-gateway", "--no-metrics-api"])
        .args(["--metrics-addr", &addr.to_string()])
        .env("KUBECONFIG", cluster.server.kubeconfig_path())
        .env("RUST_LOG", "warn")
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(30), out)
        .await
        .context("the operator kept running without its admin port")??;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "exit: {:?}, stderr: {stderr}",
        out.status
    );
    assert!(
        stderr.contains(&format!(
            "cannot bind the admin port (--metrics-addr {addr})"
        )),
        "stderr: {stderr}"
    );
    println!("{stderr}");
    drop(taken);
    Ok(())
}
