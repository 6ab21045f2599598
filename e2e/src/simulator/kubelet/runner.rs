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
use crate::pod_logs::{PodLogs, RunLog};
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
    /// Where each container run's output is kept for `kubectl logs`.
    pub(crate) pod_logs: Arc<PodLogs>,
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

    /// Records how the last run ended (`lastState.terminated`).
    fn exited(&self, exit_code: i32) {
        self.tx
            .send_modify(|rt| rt.last_exit = Some((exit_code, now_secs())));
    }

    fn restarted(&self) {
        self.tx.send_modify(|rt| rt.restart_count += 1);
    }
}

/// Which container's output this is.
#[derive(Debug, Clone)]
pub(crate) struct LogKey {
    pub(crate) ns: String,
    pub(crate) pod: String,
    pub(crate) uid: String,
    pub(crate) container: String,
}

// === impl LogKey ===

impl LogKey {
    /// The log file's name in `log_dir`, without `.log`.
    fn file_name(&self) -> String {
        format!("{}_{}_{}", self.ns, self.pod, self.container)
    }

    fn start_run(&self, ctx: &RunContext) -> Arc<RunLog> {
        ctx.pod_logs
            .start_run(&self.ns, &self.pod, &self.uid, &self.container)
    }
}

/// Starts a supervisor for `plan` on `pod_ip`; `log` names its output.
pub(crate) fn start(
    plan: ContainerPlan,
    pod_ip: Ipv4Addr,
    listener: Option<std::net::TcpListener>,
    log: LogKey,
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
                let run = log.start_run(&ctx);
                run_demo(cfg, pod_ip, plan.port, listener, &report, &run, token).await;
                run.end();
            }
            Program::Binary { name, args } => {
                run_binary(name, args, &plan, pod_ip, &log, &ctx, &report, token).await;
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
    run: &RunLog,
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
                run.push(format!("weir-demo {} serving on {addr}", cfg.version).as_bytes());
                report.set(RunState::Running {
                    started_at: now_secs(),
                    ready: true,
                });
                demo_app::serve(listener, cfg, stop).await;
                return;
            }
            Err(e) => {
                run.push(format!("cannot listen on {addr}: {e}").as_bytes());
                report.waiting("BindFailed", format!("cannot listen on {addr}: {e}"));
            }
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

/// The longest line kept; a longer one is split.
const MAX_LINE: u64 = 64 * 1024;

/// Where a process's output is copied besides its [`RunLog`].
type Sink = Box<dyn std::io::Write + Send>;

/// The sinks of a process's stdout and stderr: its log file in `log_dir` (both), or the
/// simulator's own stdout and stderr without one, as an inherited descriptor would.
fn sinks(ctx: &RunContext, log: &LogKey) -> (Option<Sink>, Option<Sink>) {
    if ctx.log_dir.is_none() {
        return (
            Some(Box::new(std::io::stdout())),
            Some(Box::new(std::io::stderr())),
        );
    }
    let Some(f) = log_file(ctx, log) else {
        return (None, None);
    };
    let second = f.try_clone().ok().map(|f| Box::new(f) as Sink);
    (Some(Box::new(f)), second)
}

/// The container's log file in `log_dir`, opened for appending, when there is a `log_dir`.
fn log_file(ctx: &RunContext, log: &LogKey) -> Option<std::fs::File> {
    let dir = ctx.log_dir.as_ref()?;
    let _ = std::fs::create_dir_all(dir);
    let path = dir.join(format!("{}.log", log.file_name()));
    match std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
    {
        Ok(f) => Some(f),
        Err(error) => {
            tracing::warn!(path = %path.display(), %error, "cannot open pod log");
            None
        }
    }
}

/// Copies `stream` line by line into `run`, and into `file` when there is one.
fn capture<R>(stream: Option<R>, run: Arc<RunLog>, mut file: Option<Sink>) -> JoinHandle<()>
where
    R: tokio::io::AsyncRead + Unpin + Send + 'static,
{
    use std::io::Write as _;
    use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _};
    tokio::spawn(async move {
        let Some(stream) = stream else { return };
        let mut reader = tokio::io::BufReader::new(stream);
        let mut line = Vec::new();
        loop {
            line.clear();
            match (&mut reader)
                .take(MAX_LINE)
                .read_until(b'\n', &mut line)
                .await
            {
                Ok(0) | Err(_) => return,
                Ok(_) => {
                    if let Some(f) = file.as_mut() {
                        let _ = f.write_all(&line);
                    }
                    run.push(&line);
                }
            }
        }
    })
}

#[allow(clippy::too_many_arguments)]
async fn run_binary(
    name: &'static str,
    args: Vec<String>,
    plan: &ContainerPlan,
    ip: Ipv4Addr,
    log: &LogKey,
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
    let kubeconfig = match super::token::pod_kubeconfig(
        &ctx.client,
        &admin,
        plan,
        &log.file_name(),
        &stop,
    )
    .await
    {
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
        let run = log.start_run(ctx);
        let spawned = Command::new(&path)
            .args(&args)
            .envs(&plan.env)
            .env("KUBECONFIG", &kubeconfig)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true)
            .spawn();
        let mut child = match spawned {
            Ok(child) => child,
            Err(e) => {
                run.push(format!("cannot start {}: {e}", path.display()).as_bytes());
                run.end();
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
        let (out, err) = sinks(ctx, log);
        let readers = [
            capture(child.stdout.take(), run.clone(), out),
            capture(child.stderr.take(), run.clone(), err),
        ];
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
                status = guard.child.wait() => break status.ok().map_or(-1, exit_code),
                () = &mut probe, if probing => probing = false,
                () = stop.cancelled() => {
                    guard.signal(Signal::TERM);
                    let _ = tokio::time::timeout(GRACE, guard.child.wait()).await;
                    drop(guard);
                    finish(readers, &run).await;
                    return;
                }
            }
        };
        drop(guard);
        finish(readers, &run).await;
        tracing::info!(binary = name, exit, "pod process exited");
        // As kubelet does, a container waiting to be restarted says CrashLoopBackOff.
        report.exited(exit);
        report.waiting(
            "CrashLoopBackOff",
            format!(
                "back-off {}s restarting failed container {}: {name} exited with code {exit}",
                backoff.as_secs(),
                plan.name
            ),
        );
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

/// Waits (1 s at most) for the readers to copy what the process wrote, then ends the run.
async fn finish(readers: [JoinHandle<()>; 2], run: &RunLog) {
    for r in readers {
        let abort = r.abort_handle();
        if tokio::time::timeout(Duration::from_secs(1), r)
            .await
            .is_err()
        {
            abort.abort();
        }
    }
    run.end();
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

/// The exit code a container runtime reports: the process's own, or 128 plus the signal that
/// killed it (137 for SIGKILL), as a shell and the kubelet show it.
fn exit_code(status: std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status
        .code()
        .or_else(|| status.signal().map(|signal| 128 + signal))
        .unwrap_or(-1)
}
