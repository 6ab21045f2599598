//! Config sources behind one interface: each feeds the [`Index`] through a [`Publisher`],
//! which compiles and publishes a new `Arc<Snapshot>` on a `watch` channel.

pub mod file;
pub mod kube;

use crate::error::Error;
use crate::index::{Index, Kind};
use crate::metrics::Metrics;
use crate::snapshot::Snapshot;
use serde_json::Value;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// Where the configuration comes from.
#[derive(Clone)]
pub enum Source {
    /// A YAML file of Kubernetes objects, polled for changes.
    File {
        /// The file.
        path: PathBuf,
        /// How often its metadata is checked.
        poll: Duration,
    },
    /// The Kubernetes API, watched.
    Kube {
        /// The client.
        client: ::kube::Client,
        /// Watch only this namespace; all when `None`.
        namespace: Option<String>,
    },
}

impl std::fmt::Debug for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::File { path, poll } => f
                .debug_struct("File")
                .field("path", path)
                .field("poll", poll)
                .finish(),
            Self::Kube { namespace, .. } => f
                .debug_struct("Kube")
                .field("namespace", namespace)
                .finish(),
        }
    }
}

// === impl Source ===

impl Source {
    /// Feeds `publisher` until `shutdown`.
    pub async fn run(self, publisher: Publisher, shutdown: CancellationToken) -> Result<(), Error> {
        match self {
            Self::File { path, poll } => file::run(path, poll, publisher, shutdown).await,
            Self::Kube { client, namespace } => {
                kube::run(client, namespace, publisher, shutdown).await
            }
        }
    }
}

/// Owns the index; publishes each compiled snapshot and counts reloads and rejections.
#[derive(Debug)]
pub struct Publisher {
    index: Index,
    tx: watch::Sender<Arc<Snapshot>>,
    metrics: Arc<Metrics>,
    newly_rejected: usize,
}

// === impl Publisher ===

impl Publisher {
    /// A publisher with an empty index, and the receiver of its snapshots (generation 0 at first).
    pub fn new(namespace: &str, metrics: Arc<Metrics>) -> (Self, watch::Receiver<Arc<Snapshot>>) {
        let (tx, rx) = watch::channel(Arc::new(Snapshot::default()));
        let publisher = Self {
            index: Index::with_metrics(namespace, metrics.clone()),
            tx,
            metrics,
            newly_rejected: 0,
        };
        (publisher, rx)
    }

    /// Applies one object (see [`Index::apply`]).
    pub fn apply(&mut self, kind: Kind, object: &Value) {
        if self.index.apply(kind, object).is_err() {
            self.newly_rejected += 1;
        }
    }

    /// Deletes one object.
    pub fn delete(&mut self, kind: Kind, namespace: &str, name: &str) {
        self.index.delete(kind, namespace, name);
    }

    /// Replaces every object of a kind.
    pub fn reset(&mut self, kind: Kind, objects: &[Value]) {
        self.newly_rejected += self.index.reset(kind, objects);
    }

    /// Counts a reload that failed as a whole.
    pub fn failed(&self) {
        self.metrics.reload_failed();
    }

    /// Compiles and publishes a new snapshot; the next request uses it.
    pub fn publish(&mut self) {
        let snapshot = self.index.snapshot();
        for w in &snapshot.warnings {
            tracing::warn!(warning = %w, "config");
        }
        self.metrics.reloaded(
            snapshot.generation,
            self.newly_rejected,
            snapshot.rejections.len(),
            snapshot.access.warnings().len(),
        );
        tracing::info!(
            generation = snapshot.generation,
            rejected = snapshot.rejections.len(),
            "published a new snapshot"
        );
        self.newly_rejected = 0;
        self.tx.send_replace(Arc::new(snapshot));
    }
}
