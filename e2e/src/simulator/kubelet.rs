//! The kubelet role: for every Pod on its node, an IP in 127.0.0.0/8, a
//! supervisor per container running the program its image names, and a
//! status that says how that is going. Pods it cannot run get an Event.

use std::collections::{HashMap, HashSet};
use std::net::Ipv4Addr;
use std::time::Duration;

use k8s_openapi::api::core::v1::{ObjectReference, Pod, PodStatus};
use k8s_openapi::jiff::Timestamp;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde_json::json;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::cache::Caches;
use super::ipam::IpPool;
use super::recorder::{self, NORMAL, Recorder, WARNING};
use super::{Pacer, SimulatorOptions, now_secs, span};

pub mod programs;
mod runner;
pub mod status;
mod token;

use runner::{ContainerHandle, RunContext};
use status::{ContainerView, RunState};

/// Ports bound on a new pod IP until its programs take them over.
type HeldPorts = HashMap<u16, std::net::TcpListener>;

/// One pod this kubelet runs.
struct PodRuntime {
    ip: Ipv4Addr,
    start_time: Timestamp,
    containers: Vec<ContainerHandle>,
    /// The status we last wrote and when, so a lagging store causes at most
    /// one repeat per second.
    last_write: Option<(PodStatus, Instant)>,
    /// The pod resourceVersion and container states last found in sync, so
    /// an unchanged pod costs one comparison per pass.
    in_sync: Option<(String, Vec<status::ContainerRuntime>)>,
    /// The pod, for the Events about stopping it.
    reference: ObjectReference,
}

/// The kubelet's state.
pub(crate) struct Kubelet {
    client: Client,
    caches: Caches,
    node: String,
    bind_pods: bool,
    pool: IpPool,
    ctx: RunContext,
    pods: HashMap<String, PodRuntime>,
    /// (pod uid, reason) pairs already reported with an Event.
    events: HashSet<(String, String)>,
    /// Pods we bound or finished deleting, so we ask once.
    done: HashSet<(String, &'static str)>,
    stopping: JoinSet<()>,
    /// Events as `kubelet` on this node.
    recorder: Recorder,
    /// Events as `default-scheduler`, for the pods this kubelet takes unscheduled.
    scheduler: Recorder,
}

fn key(pod: &Pod) -> Option<String> {
    pod.metadata.uid.clone()
}

// === impl Kubelet ===

impl Kubelet {
    pub(crate) fn new(client: Client, caches: Caches, opts: &SimulatorOptions) -> Self {
        let bin_dirs = if opts.binaries.is_empty() {
            let exe = std::env::current_exe().ok();
            let env = std::env::var("WEIR_BIN_DIR").ok();
            programs::default_bin_dirs(env.as_deref(), exe.as_deref())
        } else {
            opts.binaries.clone()
        };
        let client_for_events = client.clone();
        let ctx = RunContext {
            bin_dirs,
            kubeconfig: opts.kubeconfig.clone(),
            client: client.clone(),
            log_dir: opts.log_dir.clone(),
            pod_logs: opts.pod_logs.clone(),
            poke: caches.changed.clone(),
        };
        Self {
            client,
            caches,
            node: opts.node_name.clone(),
            bind_pods: !opts.controllers,
            pool: IpPool::new(opts.pod_cidr.0, opts.pod_cidr.1),
            ctx,
            pods: HashMap::new(),
            events: HashSet::new(),
            done: HashSet::new(),
            stopping: JoinSet::new(),
            recorder: Recorder::new(
                client_for_events.clone(),
                "kubelet",
                Some(opts.node_name.clone()),
            ),
            scheduler: Recorder::new(client_for_events, "default-scheduler", None),
        }
    }

    /// Runs pods until shutdown, then stops them all gracefully.
    pub(crate) async fn run(mut self, resync: Duration, shutdown: CancellationToken) {
        let mut pacer = Pacer::new(self.caches.subscribe(), resync);
        loop {
            self.reconcile().await;
            while self.stopping.try_join_next().is_some() {}
            if !pacer.next(&shutdown).await {
                break;
            }
        }
        let all: Vec<String> = self.pods.keys().cloned().collect();
        for uid in all {
            self.stop(&uid);
        }
        while self.stopping.join_next().await.is_some() {}
    }

    fn owns(&self, pod: &Pod) -> bool {
        let node = pod
            .spec
            .as_ref()
            .and_then(|s| s.node_name.as_deref())
            .unwrap_or_default();
        node == self.node || node.is_empty()
    }

    fn stop(&mut self, uid: &str) {
        if let Some(rt) = self.pods.remove(uid) {
            self.ctx.pod_logs.remove_pod(uid);
            for c in &rt.containers {
                self.recorder.record(
                    rt.reference.clone(),
                    NORMAL,
                    "Killing",
                    format!("Stopping container {}", c.name),
                );
            }
            self.pool.release(rt.ip);
            for c in rt.containers {
                self.stopping.spawn(c.stop());
            }
        }
    }

    async fn reconcile(&mut self) {
        let pods = self.caches.pods.state();
        let mine: Vec<_> = pods.iter().filter(|p| self.owns(p)).collect();
        let live: HashSet<String> = mine.iter().filter_map(|p| key(p)).collect();
        let gone: Vec<String> = self
            .pods
            .keys()
            .filter(|u| !live.contains(*u))
            .cloned()
            .collect();
        for uid in gone {
            self.stop(&uid);
        }
        let known: HashSet<&str> = pods
            .iter()
            .filter_map(|p| p.metadata.uid.as_deref())
            .collect();
        self.done.retain(|(uid, _)| known.contains(uid.as_str()));
        self.events.retain(|(uid, _)| known.contains(uid.as_str()));
        for pod in mine {
            if self.unchanged(pod) {
                continue;
            }
            if let Err(error) = self.sync_pod(pod).instrument(span("pod", &**pod)).await {
                tracing::warn!(%error, pod = ?pod.metadata.name, "kubelet sync failed");
            }
        }
    }

    /// Whether `pod` is as it was when last found in sync: the same resourceVersion and the
    /// same container states. Such a pod needs nothing, and costs one comparison per pass.
    fn unchanged(&self, pod: &Pod) -> bool {
        let Some(rt) = pod
            .metadata
            .uid
            .as_deref()
            .and_then(|uid| self.pods.get(uid))
        else {
            return false;
        };
        let Some((rv, states)) = &rt.in_sync else {
            return false;
        };
        pod.metadata.resource_version.as_deref() == Some(rv.as_str())
            && rt.containers.len() == states.len()
            && rt
                .containers
                .iter()
                .zip(states)
                .all(|(c, s)| *c.state.borrow() == *s)
    }

    async fn sync_pod(&mut self, pod: &Pod) -> Result<(), kube::Error> {
        let (Some(uid), Some(ns), Some(name)) = (
            key(pod),
            pod.metadata.namespace.clone(),
            pod.metadata.name.clone(),
        ) else {
            return Ok(());
        };
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &ns);
        let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
        if matches!(phase, Some("Succeeded" | "Failed")) {
            return Ok(());
        }
        if pod.metadata.deletion_timestamp.is_some() {
            self.stop(&uid);
            if !self.done.contains(&(uid.clone(), "deleted")) {
                let dp = DeleteParams {
                    grace_period_seconds: Some(0),
                    ..Default::default()
                };
                match api.delete(&name, &dp).await {
                    Err(kube::Error::Api(s)) if s.code == 404 => {}
                    other => drop(other?),
                }
                self.done.insert((uid, "deleted"));
            }
            return Ok(());
        }
        let unbound = pod
            .spec
            .as_ref()
            .and_then(|s| s.node_name.as_deref())
            .unwrap_or_default()
            .is_empty();
        if unbound && self.bind_pods {
            if !self.done.contains(&(uid.clone(), "bound")) {
                self.bind(&api, &name).await?;
                self.done.insert((uid, "bound"));
            }
            return Ok(());
        }
        if !self.pods.contains_key(&uid) && !self.start_pod(pod, &uid).await {
            return Ok(());
        }
        self.write_status(&api, pod, &uid).await
    }

    async fn bind(&self, api: &Api<Pod>, name: &str) -> Result<(), kube::Error> {
        tracing::info!(pod = name, node = %self.node, "binding pod");
        let binding = json!({
            "apiVersion": "v1", "kind": "Binding",
            "metadata": { "name": name },
            "target": { "apiVersion": "v1", "kind": "Node", "name": self.node },
        });
        let pp = PostParams::default();
        let created =
            api.create_subresource::<_, serde_json::Value>("binding", name, &pp, &binding);
        match created.await {
            Ok(_) => Ok(()),
            // A server without the binding subresource: set the node directly.
            Err(kube::Error::Api(s)) if matches!(s.code, 404 | 405) => {
                let patch = json!({ "spec": { "nodeName": self.node } });
                api.patch(name, &PatchParams::default(), &Patch::Merge(patch))
                    .await
                    .map(drop)
            }
            Err(e) => Err(e),
        }
    }

    /// Allocates an IP and starts every container; false when no IP is left.
    /// A new pod IP whose ports nobody on this machine (another simulator,
    /// say) listens on already, with those ports bound and held so nobody
    /// takes them before the pod's programs start. Busy addresses stay
    /// reserved and are skipped.
    fn allocate_free(&mut self, pod: &Pod) -> Option<(Ipv4Addr, HeldPorts)> {
        let mut ports: Vec<u16> = pod
            .spec
            .iter()
            .flat_map(|s| s.containers.iter())
            .flat_map(|c| c.ports.iter().flatten())
            .filter_map(|p| u16::try_from(p.container_port).ok())
            .collect();
        if ports.is_empty() {
            ports.push(programs::DEFAULT_PORT);
        }
        for _ in 0..64 {
            let ip = self.pool.allocate()?;
            let held: Result<HeldPorts, _> = ports
                .iter()
                .map(|port| std::net::TcpListener::bind((ip, *port)).map(|l| (*port, l)))
                .collect();
            match held {
                Ok(held) => return Some((ip, held)),
                Err(error) => {
                    tracing::debug!(%ip, %error, "pod IP busy on this machine; skipping it")
                }
            }
        }
        None
    }

    async fn start_pod(&mut self, pod: &Pod, uid: &str) -> bool {
        let prev_ip = pod
            .status
            .as_ref()
            .and_then(|s| s.pod_ip.as_deref())
            .and_then(|ip| ip.parse().ok());
        let (ip, mut held) = match prev_ip.filter(|ip| self.pool.reserve(*ip)) {
            Some(ip) => (ip, HeldPorts::new()),
            None => match self.allocate_free(pod) {
                Some(found) => found,
                None => {
                    self.event(pod, "FailedCreatePodSandBox", "pod IP range exhausted")
                        .await;
                    return false;
                }
            },
        };
        let name = pod.metadata.name.clone().unwrap_or_default();
        let ns = pod.metadata.namespace.clone().unwrap_or_default();
        tracing::info!(pod = %format!("{ns}/{name}"), %ip, "starting pod");
        let reference = recorder::reference(pod);
        let unscheduled = pod
            .spec
            .as_ref()
            .and_then(|s| s.node_name.as_deref())
            .is_none_or(str::is_empty);
        if unscheduled {
            self.scheduler.record(
                reference.clone(),
                NORMAL,
                "Scheduled",
                format!("Successfully assigned {ns}/{name} to {}", self.node),
            );
        }
        let containers = pod
            .spec
            .iter()
            .flat_map(|s| s.containers.iter())
            .map(|c| {
                let plan = programs::plan_container(pod, c, ip);
                if !matches!(plan.program, programs::Program::Unavailable { .. }) {
                    let image = c.image.clone().unwrap_or_default();
                    for (reason, message) in [
                        (
                            "Pulled",
                            format!("Container image \"{image}\" already present on machine"),
                        ),
                        ("Created", format!("Created container {}", c.name)),
                        ("Started", format!("Started container {}", c.name)),
                    ] {
                        self.recorder
                            .record(reference.clone(), NORMAL, reason, message);
                    }
                }
                let log = runner::LogKey {
                    ns: ns.clone(),
                    pod: name.clone(),
                    uid: uid.to_string(),
                    container: c.name.clone(),
                };
                // The demo app takes over its held port; binaries bind their own.
                let listener = match (&plan.program, plan.port) {
                    (programs::Program::Demo(_), Some(port)) => held.remove(&port),
                    _ => None,
                };
                runner::start(plan, ip, listener, log, &self.ctx)
            })
            .collect();
        drop(held);
        let start_time = pod
            .status
            .as_ref()
            .and_then(|s| s.start_time.as_ref())
            .map_or_else(now_secs, |t| t.0);
        self.pods.insert(
            uid.to_string(),
            PodRuntime {
                ip,
                start_time,
                containers,
                last_write: None,
                in_sync: None,
                reference,
            },
        );
        true
    }

    async fn write_status(
        &mut self,
        api: &Api<Pod>,
        pod: &Pod,
        uid: &str,
    ) -> Result<(), kube::Error> {
        let Some(rt) = self.pods.get(uid) else {
            return Ok(());
        };
        let views: Vec<ContainerView<'_>> = rt
            .containers
            .iter()
            .map(|c| ContainerView {
                name: &c.name,
                image: &c.image,
                runtime: c.state.borrow().clone(),
            })
            .collect();
        // A pod still as it was when found in sync never gets here (`unchanged`).
        let rv = pod.metadata.resource_version.clone().unwrap_or_default();
        let runtimes: Vec<_> = views.iter().map(|v| v.runtime.clone()).collect();
        let waiting: Vec<(String, String)> = views
            .iter()
            .filter_map(|v| match &v.runtime.state {
                RunState::Waiting { reason, message } if reason != "ContainerCreating" => {
                    Some((reason.clone(), format!("container {}: {message}", v.name)))
                }
                _ => None,
            })
            .collect();
        let prev = pod.status.as_ref();
        let desired = status::pod_status(prev, uid, rt.ip, rt.start_time, &views, now_secs());
        let recent = rt
            .last_write
            .as_ref()
            .is_some_and(|(s, at)| *s == desired && at.elapsed() < Duration::from_secs(1));
        let name = pod.metadata.name.clone().unwrap_or_default();
        if prev != Some(&desired) && !recent {
            let patch = Patch::Merge(json!({ "status": desired }));
            api.patch_status(&name, &PatchParams::default(), &patch)
                .await?;
            if let Some(rt) = self.pods.get_mut(uid) {
                rt.last_write = Some((desired, Instant::now()));
            }
        } else if prev == Some(&desired)
            && let Some(rt) = self.pods.get_mut(uid)
        {
            rt.in_sync = Some((rv, runtimes));
        }
        for (reason, message) in waiting {
            self.event(pod, &reason, &message).await;
        }
        Ok(())
    }

    /// Records a Warning Event on `pod`, once per reason.
    async fn event(&mut self, pod: &Pod, reason: &str, message: &str) {
        let (Some(uid), Some(ns), Some(name)) = (
            pod.metadata.uid.clone(),
            pod.metadata.namespace.as_deref(),
            pod.metadata.name.as_deref(),
        ) else {
            return;
        };
        if !self.events.insert((uid, reason.to_string())) {
            return;
        }
        tracing::warn!(pod = %format!("{ns}/{name}"), reason, message, "pod not runnable");
        self.recorder.record(
            recorder::reference(pod),
            WARNING,
            reason,
            message.to_string(),
        );
    }
}
