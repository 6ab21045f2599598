//! The reflector stores every role reads from, and the change signal that
//! wakes the roles.

use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, Resource};
use serde::de::DeserializeOwned;
use tokio::sync::watch;
use tokio::task::JoinSet;

use super::{Error, Result, SimulatorOptions};

/// Read-only views of the watched kinds, shared by every role.
#[derive(Clone)]
pub(crate) struct Caches {
    pub(crate) deployments: Store<Deployment>,
    pub(crate) replica_sets: Store<ReplicaSet>,
    pub(crate) pods: Store<Pod>,
    pub(crate) services: Store<Service>,
    pub(crate) slices: Store<EndpointSlice>,
    /// Bumped on every watch event, and by roles that want a pass.
    pub(crate) changed: Arc<watch::Sender<u64>>,
    waits: Arc<Vec<Waiter>>,
}

/// Something to wait on for one kind's initial list.
struct Waiter {
    kind: &'static str,
    ready: watch::Receiver<bool>,
}

fn watch_kind<K>(
    client: &Client,
    kind: &'static str,
    changed: Arc<watch::Sender<u64>>,
    tasks: &mut JoinSet<()>,
    waits: &mut Vec<Waiter>,
) -> Store<K>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    let (store, writer) = reflector::store::<K>();
    let api: Api<K> = Api::all(client.clone());
    let (ready_tx, ready_rx) = watch::channel(false);
    let waiting = store.clone();
    tasks.spawn(async move {
        let stream = reflector::reflector(writer, watcher(api, watcher::Config::default()))
            .default_backoff();
        futures::pin_mut!(stream);
        while let Some(event) = stream.next().await {
            if let Err(error) = event {
                tracing::debug!(%error, kind, "watch error; retrying with backoff");
                continue;
            }
            changed.send_modify(|n| *n = n.wrapping_add(1));
        }
    });
    tasks.spawn(async move {
        if waiting.wait_until_ready().await.is_ok() {
            let _ = ready_tx.send(true);
        }
    });
    waits.push(Waiter {
        kind,
        ready: ready_rx,
    });
    store
}

// === impl Caches ===

impl Caches {
    /// Starts the watches the options call for; the rest stay empty.
    pub(crate) fn start(client: &Client, opts: &SimulatorOptions, tasks: &mut JoinSet<()>) -> Self {
        let (tx, _) = watch::channel(0u64);
        let changed = Arc::new(tx);
        let mut waits = Vec::new();
        let pods = watch_kind::<Pod>(client, "pods", changed.clone(), tasks, &mut waits);
        let (deployments, replica_sets) = if opts.controllers {
            (
                watch_kind(client, "deployments", changed.clone(), tasks, &mut waits),
                watch_kind(client, "replicasets", changed.clone(), tasks, &mut waits),
            )
        } else {
            (reflector::store().0, reflector::store().0)
        };
        let (services, slices) = if opts.controllers || opts.kube_proxy {
            (
                watch_kind(client, "services", changed.clone(), tasks, &mut waits),
                watch_kind(client, "endpointslices", changed.clone(), tasks, &mut waits),
            )
        } else {
            (reflector::store().0, reflector::store().0)
        };
        Self {
            deployments,
            replica_sets,
            pods,
            services,
            slices,
            changed,
            waits: Arc::new(waits),
        }
    }

    /// Waits until every started watch has listed once.
    pub(crate) async fn wait_synced(&self, timeout: Duration) -> Result<()> {
        for w in self.waits.iter() {
            let mut ready = w.ready.clone();
            let done = tokio::time::timeout(timeout, ready.wait_for(|r| *r)).await;
            if !matches!(done, Ok(Ok(_))) {
                return Err(Error::SyncTimeout {
                    kind: w.kind,
                    timeout,
                });
            }
        }
        Ok(())
    }

    /// A receiver that sees every change from now on.
    pub(crate) fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }
}
