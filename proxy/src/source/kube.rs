//! The Kubernetes source: one watcher per kind (as `DynamicObject`, so a malformed object is
//! rejected alone by the index), merged into one task that applies and publishes.

use super::Publisher;
use crate::error::Error;
use crate::index::Kind;
use futures::StreamExt;
use kube::api::{Api, ApiResource, DynamicObject};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// The verbs the source uses on every kind of [`Kind::ALL`]: a watcher lists, then watches.
pub const VERBS: &[&str] = &["list", "watch"];

/// The API resource watched for a kind (SMI kinds through their storage version).
pub fn api_resource(kind: Kind) -> ApiResource {
    let (group, version, plural) = match kind {
        Kind::Service => ("", "v1", "services"),
        Kind::EndpointSlice => ("discovery.k8s.io", "v1", "endpointslices"),
        Kind::Pod => ("", "v1", "pods"),
        Kind::TrafficSplit => ("split.smi-spec.io", "v1alpha4", "trafficsplits"),
        Kind::HttpRouteGroup => ("specs.smi-spec.io", "v1alpha4", "httproutegroups"),
        Kind::TcpRoute => ("specs.smi-spec.io", "v1alpha4", "tcproutes"),
        Kind::TrafficTarget => ("access.smi-spec.io", "v1alpha3", "traffictargets"),
        Kind::TrafficPolicy => ("weir.dev", "v1alpha1", "trafficpolicies"),
    };
    ApiResource {
        group: group.into(),
        version: version.into(),
        api_version: if group.is_empty() {
            version.into()
        } else {
            format!("{group}/{version}")
        },
        kind: kind.as_str().into(),
        plural: plural.into(),
    }
}

/// Watches every kind and feeds the publisher until `shutdown`.
///
/// Nothing is published until every kind has been listed once, or its watch has failed
/// (a CRD that is not installed delays only its own kind): `/ready` then reports neither a
/// half-empty route table nor access control that has not seen its TrafficTargets yet.
/// Services and EndpointSlices must always be listed first.
pub async fn run(
    client: kube::Client,
    namespace: Option<String>,
    mut publisher: Publisher,
    shutdown: CancellationToken,
) -> Result<(), Error> {
    let (tx, mut rx) = mpsc::channel::<(Kind, Watched)>(1024);
    for kind in Kind::ALL {
        let ar = api_resource(kind);
        let api: Api<DynamicObject> = match &namespace {
            Some(ns) => Api::namespaced_with(client.clone(), ns, &ar),
            None => Api::all_with(client.clone(), &ar),
        };
        let tx = tx.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            let mut stream = watcher::watcher(api, watcher::Config::default())
                .default_backoff()
                .boxed();
            loop {
                let next = tokio::select! {
                    () = shutdown.cancelled() => return,
                    next = stream.next() => next,
                };
                let watched = match next {
                    Some(Ok(event)) => Watched::Event(Box::new(event)),
                    Some(Err(e)) => {
                        tracing::warn!(kind = kind.as_str(), error = %e, "watch failed; retrying with backoff");
                        Watched::Failed
                    }
                    None => return,
                };
                if tx.send((kind, watched)).await.is_err() {
                    return;
                }
            }
        });
    }
    drop(tx);

    let mut state = Synced::default();
    // The earliest moment of the next compile: twice the last compile's cost after it ended.
    let mut not_before = Instant::now();
    loop {
        let first = tokio::select! {
            () = shutdown.cancelled() => return Ok(()),
            first = rx.recv() => first,
        };
        let Some(first) = first else { return Ok(()) };
        let was_ready = state.ready();
        let mut changed = state.handle(&mut publisher, first);
        // Coalesce a burst of events into one snapshot, and hold the compile back until
        // `not_before`, taking every event that comes meanwhile: a compile rebuilds every
        // route, so under a stream of changes compiling takes at most a third of a core.
        loop {
            for _ in 0..1024 {
                match rx.try_recv() {
                    Ok(event) => changed |= state.handle(&mut publisher, event),
                    Err(_) => break,
                }
            }
            if Instant::now() >= not_before {
                break;
            }
            tokio::select! {
                () = shutdown.cancelled() => return Ok(()),
                () = tokio::time::sleep_until(not_before) => break,
                next = rx.recv() => match next {
                    Some(event) => changed |= state.handle(&mut publisher, event),
                    None => return Ok(()),
                },
            }
        }
        let ready = state.ready();
        if ready && (changed || !was_ready) {
            let started = Instant::now();
            publisher.publish();
            let cost = started.elapsed();
            not_before = Instant::now() + (cost * 2).min(MAX_HOLD);
        }
    }
}

/// The longest a compile is held back after the previous one.
const MAX_HOLD: Duration = Duration::from_millis(500);

/// What a watcher task reports.
enum Watched {
    /// A watch event.
    Event(Box<Event<DynamicObject>>),
    /// The watch failed (it retries with backoff).
    Failed,
}

/// Which kinds have been listed (or have failed), and the objects of lists in progress.
#[derive(Default)]
struct Synced {
    buffers: HashMap<Kind, Vec<Value>>,
    synced: HashSet<Kind>,
    failed: HashSet<Kind>,
}

// === impl Synced ===

impl Synced {
    /// Whether a first snapshot may be published.
    fn ready(&self) -> bool {
        self.synced.contains(&Kind::Service)
            && self.synced.contains(&Kind::EndpointSlice)
            && Kind::ALL
                .iter()
                .all(|k| self.synced.contains(k) || self.failed.contains(k))
    }

    /// Applies one watch event; returns whether the index changed.
    fn handle(&mut self, publisher: &mut Publisher, (kind, watched): (Kind, Watched)) -> bool {
        let event = match watched {
            Watched::Event(e) => *e,
            Watched::Failed => {
                self.failed.insert(kind);
                return false;
            }
        };
        match event {
            Event::Apply(obj) => {
                if let Some(v) = to_value(kind, &obj) {
                    publisher.apply(kind, &v);
                }
                true
            }
            Event::Delete(obj) => {
                let ns = obj.metadata.namespace.clone().unwrap_or_default();
                let name = obj.metadata.name.clone().unwrap_or_default();
                publisher.delete(kind, &ns, &name);
                true
            }
            Event::Init => {
                self.buffers.insert(kind, Vec::new());
                false
            }
            Event::InitApply(obj) => {
                if let Some(v) = to_value(kind, &obj) {
                    self.buffers.entry(kind).or_default().push(v);
                }
                false
            }
            Event::InitDone => {
                let objects = self.buffers.remove(&kind).unwrap_or_default();
                publisher.reset(kind, &objects);
                self.synced.insert(kind);
                true
            }
        }
    }
}

/// The object's JSON, with `apiVersion` and `kind` filled in (list items may lack them).
fn to_value(kind: Kind, obj: &DynamicObject) -> Option<Value> {
    let mut v = match serde_json::to_value(obj) {
        Ok(v) => v,
        Err(e) => {
            tracing::warn!(kind = kind.as_str(), error = %e, "cannot re-encode a watched object");
            return None;
        }
    };
    if let Value::Object(map) = &mut v {
        let ar = api_resource(kind);
        map.entry("apiVersion")
            .or_insert_with(|| Value::from(ar.api_version));
        map.entry("kind").or_insert_with(|| Value::from(ar.kind));
    }
    Some(v)
}
