//! Container supervisors: one task per container that runs its program and
//! publishes its [`ContainerRuntime`]. Dropping a [`ContainerHandle`] stops
//! it at once; [`ContainerHandle::stop`] stops it gracefully.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use rustix::process::{Pid, Signal, kill_process_group};
use tokio::net::{TcpListener, TcpStream};
use tokio::process::{Child, Command};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::programs::{ContainerPlan, Program, find_binary};
use super::status::{ContainerRuntime, RunState};
use crate::demo_app;
use crate::simulator::now_secs;

/// Restarts of a crashing binary before the supervisor gives up.
const MAX_RESTARTS: i32 = 20;
/// Longest back-off between restarts.
const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// How long a stopped process may take to exit after SIGTERM.
const GRACE: Duration = Duration::from_secs(5);
/// How long an image that cannot be pulled shows `ErrImagePull` before `ImagePullBackOff`.
const PULL_BACKOFF: Duration = Duration::from_secs(2);
/// Attempts to bind the demo app's address.
const BIND_ATTEMPTS: u32 = 30;

/// What every supervisor needs from the kubelet.
#[derive(Clone)]
pub(crate) struct RunContext {
    pub(crate) bin_dirs: Vec<PathBuf>,
    pub(crate) kubeconfig: Option<PathBuf>,
    /// Asks for the pods' ServiceAccount tokens.
    pub(crate) client: kube::Client,
    pub(crate) log_dir: Option<PathBuf>,
    /// Bumped whenever a container's state changes.
    pub(crate) poke: Arc<watch::Sender<u64>>,
}

/// A running container's supervisor.
#[derive(Debug)]
pub(crate) struct ContainerHandle {
    pub(crate) name: String,
    pub(crate) image: String,
    pub(crate) state: watch::Receiver<ContainerRuntime>,
    stop: CancellationToken,
    task: Option<JoinHandle<()>>,
}

// === impl ContainerHandle ===

impl ContainerHandle {
    /// Stops gracefully (SIGTERM, then SIGKILL after a grace period).
    pub(crate) async fn stop(mut self) {
        self.stop.cancel();
        if let Some(task) = self.task.take() {
            let abort = task.abort_handle();
            if tokio::time::timeout(GRACE + Duration::from_secs(1), task)
                .await
                .is_err()
            {
                abort.abort();
            }
        }
    }
}

impl Drop for ContainerHandle {
    fn drop(&mut self) {
        self.stop.cancel();
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// Publishes state changes and wakes the kubelet.
struct Reporter {
    tx: watch::Sender<ContainerRuntime>,
    poke: Arc<watch::Sender<u64>>,
}

// === impl Reporter ===

impl Reporter {
    fn set(&self, state: RunState) {
        self.tx.send_modify(|rt| rt.state = state);
        self.poke.send_modify(|n| *n = n.wrapping_add(1));
    }

    fn waiting(&self, reason: &str, message: impl Into<String>) {
        self.set(RunState::Waiting {
            reason: reason.into(),
            message: message.into(),
        });
    }

    fn restarted(&self) {
        self.tx.send_modify(|rt| rt.restart_count += 1);
    }
}

/// Starts a supervisor for `plan` on `pod_ip`; `log_name` names its log file.
pub(crate) fn start(
    plan: ContainerPlan,
    pod_ip: Ipv4Addr,
    listener: Option<std::net::TcpListener>,
    log_name: String,
    ctx: &RunContext,
) -> ContainerHandle {
    let (tx, rx) = watch::channel(ContainerRuntime::starting());
    let stop = CancellationToken::new();
    let report = Reporter {
        tx,
        poke: ctx.poke.clone(),
    };
    let (name, image) = (plan.name.clone(), plan.image.clone());
    let ctx = ctx.clone();
    let token = stop.clone();
    let task = tokio::spawn(async move {
        match plan.program.clone() {
            Program::Unavailable { reason, message } => {
                report.waiting(reason, message.clone());
                // As kubelet does: a failed pull is followed by a back-off.
                if reason == "ErrImagePull" {
                    tokio::select! {
                        () = token.cancelled() => {}
                        () = tokio::time::sleep(PULL_BACKOFF) => report.waiting(
                            "ImagePullBackOff",
                            format!("Back-off pulling image {:?}: {message}", plan.image),
                        ),
                    }
                }
            }
            Program::Demo(cfg) => {
                run_demo(cfg, pod_ip, plan.port, listener, &report, token).await;
            }
            Program::Binary { name, args } => {
                run_binary(name, args, &plan, pod_ip, &log_name, &ctx, &report, token).await;
            }
        }
    });
    ContainerHandle {
        name,
        image,
        state: rx,
        stop,
        task: Some(task),
    }
}

async fn run_demo(
    cfg: demo_app::DemoConfig,
    ip: Ipv4Addr,
    port: Option<u16>,
    held: Option<std::net::TcpListener>,
    report: &Reporter,
    stop: CancellationToken,
) {
    let addr = SocketAddr::from((ip, port.unwrap_or(super::programs::DEFAULT_PORT)));
    let mut held = held.and_then(|l| {
        l.set_nonblocking(true).ok()?;
        TcpListener::from_std(l).ok()
    });
    for _ in 0..BIND_ATTEMPTS {
        let bound = match held.take() {
            Some(listener) => Ok(listener),
            None => TcpListener::bind(addr).await,
        };
        match bound {
            Ok(listener) => {
                report.set(RunState::Running {
                    started_at: now_secs(),
                    ready: true,
                });
                demo_app::serve(listener, cfg, stop).await;
                return;
            }
            Err(e) => report.waiting("BindFailed", format!("cannot listen on {addr}: {e}")),
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}

/// A child process whose whole process group is killed on drop.
struct ChildGuard {
    child: Child,
    pgid: Option<Pid>,
}

// === impl ChildGuard ===

impl ChildGuard {
    fn signal(&self, sig: Signal) {
        if let Some(pgid) = self.pgid {
            let _ = kill_process_group(pgid, sig);
        }
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        self.signal(Signal::KILL);
    }
}

fn log_stdio(ctx: &RunContext, log_name: &str) -> (Stdio, Stdio) {
    let Some(dir) = ctx.log_dir.as_ref() else {
        return (Stdio::inherit(), Stdio::inherit());
    };
    let _ = std::fs::create_dir_all(dir);
    let path = dir.join(format!("{log_name}.log"));
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path);
    match file.and_then(|f| Ok((f.try_clone()?, f))) {
        Ok((out, err)) => (Stdio::from(out), Stdio::from(err)),
        Err(error) => {
            tracing::warn!(path = %path.display(), %error, "cannot open pod log");
            (Stdio::null(), Stdio::null())
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn run_binary(
    name: &'static str,
    args: Vec<String>,
    plan: &ContainerPlan,
    ip: Ipv4Addr,
    log_name: &str,
    ctx: &RunContext,
    report: &Reporter,
    stop: CancellationToken,
) {
    let Some(path) = find_binary(name, &ctx.bin_dirs) else {
        let dirs: Vec<_> = ctx
            .bin_dirs
            .iter()
            .map(|d| d.display().to_string())
            .collect();
        report.waiting(
            "BinaryNotFound",
            format!("{name} not found in {}", dirs.join(", ")),
        );
        return;
    };
    let Some(admin) = ctx.kubeconfig.clone() else {
        report.waiting(
            "NoKubeconfig",
            format!("{name} needs a kubeconfig; the simulator has none"),
        );
        return;
    };
    let kubeconfig =
        match super::token::pod_kubeconfig(&ctx.client, &admin, plan, log_name, &stop).await {
            Ok(path) => path,
            Err(message) => {
                report.waiting("CreateContainerConfigError", message);
                return;
            }
        };
    let mut backoff = Duration::from_secs(1);
    for attempt in 0..=MAX_RESTARTS {
        if attempt > 0 {
            report.restarted();
        }
        let (out, err) = log_stdio(ctx, log_name);
        let spawned = Command::new(&path)
            .args(&args)
            .envs(&plan.env)
            .env("KUBECONFIG", &kubeconfig)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .process_group(0)
            .kill_on_drop(true)
            .spawn();
        let child = match spawned {
            Ok(child) => child,
            Err(e) => {
                report.waiting(
                    "RunContainerError",
                    format!("cannot start {}: {e}", path.display()),
                );
                return;
            }
        };
        let pgid = child
            .id()
            .and_then(|id| i32::try_from(id).ok())
            .and_then(Pid::from_raw);
        let mut guard = ChildGuard { child, pgid };
        report.set(RunState::Running {
            started_at: now_secs(),
            ready: plan.port.is_none(),
        });
        let probe = probe_until_ready(ip, plan.port, report);
        tokio::pin!(probe);
        let mut probing = plan.port.is_some();
        let exit = loop {
            tokio::select! {
                status = guard.child.wait() => break status.ok().and_then(|s| s.code()).unwrap_or(-1),
                () = &mut probe, if probing => probing = false,
                () = stop.cancelled() => {
                    guard.signal(Signal::TERM);
                    let _ = tokio::time::timeout(GRACE, guard.child.wait()).await;
                    return;
                }
            }
        };
        tracing::info!(binary = name, exit, "pod process exited");
        // As kubelet does, a container waiting to be restarted says CrashLoopBackOff.
        report.waiting(
            "CrashLoopBackOff",
            format!(
                "back-off {}s restarting failed container {}: {name} exited with code {exit}",
                backoff.as_secs(),
                plan.name
            ),
        );
        drop(guard);
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
    report.waiting(
        "CrashLoopBackOff",
        format!("{name} exited {MAX_RESTARTS} times; giving up"),
    );
}

/// Connects to `ip:port` every 200 ms until it accepts, then marks ready.
async fn probe_until_ready(ip: Ipv4Addr, port: Option<u16>, report: &Reporter) {
    let Some(port) = port else { return };
    let addr = SocketAddr::from((ip, port));
    loop {
        let attempt = tokio::time::timeout(Duration::from_secs(1), TcpStream::connect(addr)).await;
        if matches!(attempt, Ok(Ok(_))) {
            report.tx.send_modify(|rt| {
                if let RunState::Running { ready, .. } = &mut rt.state {
                    *ready = true;
                }
            });
            report.poke.send_modify(|n| *n = n.wrapping_add(1));
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
