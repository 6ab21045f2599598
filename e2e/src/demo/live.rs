//! What moves while the demo runs: steady traffic from the client Pods, one progress line a
//! second, and each Event of the Rollout as it happens.

use super::story::{self, ClientSecond, NAMESPACE, ROLLOUT, Snapshot};
use crate::client_pod::ClientPod;
use crate::install::get_raw;
use crate::loadgen::{self, Mode, Report};
use futures::StreamExt;
use k8s_openapi::api::core::v1::Event;
use kube::api::Api;
use kube::runtime::watcher;
use kube::{Client, ResourceExt};
use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use weir_crds::Rollout;

/// Requests per second each client Pod sends.
pub const RATE_PER_CLIENT: f64 = 50.0;

/// Steady traffic from every client Pod to the gateway, one second at a time, each second's
/// answers added to a shared report; stops when cancelled or after `limit`.
pub struct Traffic {
    stop: CancellationToken,
    tasks: JoinSet<()>,
    recent: Arc<parking_lot::Mutex<Report>>,
    total: Arc<parking_lot::Mutex<Report>>,
}

// === impl Traffic ===

impl Traffic {
    /// Starts `RATE_PER_CLIENT` requests a second from each of `clients` to `gateway`
    /// (`Host: foobar`), for at most `limit`.
    pub fn start(clients: &[ClientPod], gateway: SocketAddr, limit: Duration) -> Self {
        let stop = CancellationToken::new();
        let recent = Arc::new(parking_lot::Mutex::new(Report::default()));
        let total = Arc::new(parking_lot::Mutex::new(Report::default()));
        let mut tasks = JoinSet::new();
        for pod in clients {
            let mut opts = pod.load(gateway, ROLLOUT);
            opts.mode = Mode::FixedRate(RATE_PER_CLIENT);
            opts.connections = 4;
            opts.duration = Duration::from_secs(1);
            let (stop, recent, total) = (stop.clone(), recent.clone(), total.clone());
            tasks.spawn(async move {
                let seconds = limit.as_secs().max(1);
                for _ in 0..seconds {
                    if stop.is_cancelled() {
                        break;
                    }
                    let report = loadgen::run(opts.clone()).await.report;
                    recent.lock().merge(report.clone());
                    total.lock().merge(report);
                }
            });
        }
        Self {
            stop,
            tasks,
            recent,
            total,
        }
    }

    /// What the clients saw since the last call.
    pub fn take_recent(&self) -> ClientSecond {
        let report = std::mem::take(&mut *self.recent.lock());
        client_second(&report)
    }

    /// Everything the clients saw so far.
    pub fn total(&self) -> Report {
        self.total.lock().clone()
    }

    /// Stops the traffic and returns everything the clients saw.
    pub async fn stop(mut self) -> Report {
        self.stop.cancel();
        while self.tasks.join_next().await.is_some() {}
        self.total()
    }
}

/// A report's counts as a progress line shows them.
pub fn client_second(report: &Report) -> ClientSecond {
    let ok = report
        .by_status
        .iter()
        .filter(|(s, _)| (200..300).contains(*s))
        .map(|(_, n)| n)
        .sum();
    ClientSecond {
        ok,
        non_2xx: report.responses() - ok,
        errors: report.errors.values().sum(),
        by_version: report
            .by_version
            .iter()
            .map(|(v, n)| (v.clone(), *n))
            .collect(),
    }
}

/// The live figures of Deployment `foobar-v<revision>` over the last 5 s, from the
/// TrafficMetrics API; `None` when the API has none (yet).
async fn figures(client: &Client, revision: Option<i64>) -> Option<story::Figures> {
    let doc = get_raw(client, &story::metrics_path(revision?, "5s"))
        .await
        .ok()?;
    story::figures(&doc)
}

/// The current snapshot: the Rollout's status, the clients' last second, live figures.
pub async fn snapshot(client: &Client, traffic: &Traffic, elapsed: Duration) -> Snapshot {
    let rollouts: Api<Rollout> = Api::namespaced(client.clone(), NAMESPACE);
    let status = rollouts
        .get(ROLLOUT)
        .await
        .ok()
        .and_then(|r| r.status)
        .unwrap_or_default();
    let stable = figures(client, status.stable_revision).await;
    let canary = figures(client, status.canary_revision).await;
    Snapshot {
        elapsed,
        clients: traffic.take_recent(),
        stable,
        canary,
        status,
    }
}

/// Prints each Event of the Rollout `foobar` as it happens (once per event and count),
/// until `stop`.
pub fn print_events(client: &Client, stop: CancellationToken) -> tokio::task::JoinHandle<()> {
    let events: Api<Event> = Api::namespaced(client.clone(), NAMESPACE);
    tokio::spawn(async move {
        let config = watcher::Config::default().fields("involvedObject.kind=Rollout");
        let mut stream = watcher(events, config).boxed();
        let mut seen = HashSet::new();
        loop {
            let next = tokio::select! {
                () = stop.cancelled() => break,
                next = stream.next() => next,
            };
            let Some(next) = next else { break };
            let (watcher::Event::Apply(e) | watcher::Event::InitApply(e)) = (match next {
                Ok(e) => e,
                Err(_) => continue,
            }) else {
                continue;
            };
            if seen.insert((e.uid().unwrap_or_default(), e.count.unwrap_or(1))) {
                println!(
                    "  EVENT {:<7} {:<16} {}",
                    e.type_.as_deref().unwrap_or("-"),
                    e.reason.as_deref().unwrap_or("-"),
                    e.message.as_deref().unwrap_or("")
                );
            }
        }
    })
}
