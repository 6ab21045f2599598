//! The Rollout controller: watch, observe, plan, act.
//!
//! ```text
//!  Rollout / owned Deployment, Service, TrafficSplit changes
//!        │
//!        ▼
//!  reconcile ── observe::gather ──► Observed ──► plan::plan ──► act::apply
//!                 (children, split, due check)       (pure)      (SSA writes, Events, status)
//! ```

mod act;
mod adopt;
pub mod cached;
pub mod events;
pub mod expect;
mod lean;
mod observe;
mod settle;
pub mod slots;
pub mod stores;
mod write;

use crate::analysis::Analyst;
use crate::metrics::{ErrorLabels, Metrics};
use futures::StreamExt;
use k8s_openapi::api::core::v1::{Service, ServiceAccount};
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind};
use kube::api::{Patch, PatchParams};
use kube::core::DeserializeGuard;
use kube::runtime::controller::{self, Action, Controller};
use kube::runtime::events::{Event, EventType};
use kube::runtime::finalizer::{Event as Finalizer, finalizer};
use kube::runtime::reflector::{ObjectRef, reflector};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, Resource, ResourceExt};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use tracing::Instrument;
use weir_crds::Rollout;

/// The field manager of every write the controller makes.
pub const FIELD_MANAGER: &str = "weir-operator";
/// The finalizer that removes the TrafficSplit and Services on delete.
pub const FINALIZER: &str = "weir.dev/cleanup";

/// How the controller is set up.
#[derive(Debug, Clone)]
pub struct Config {
    /// Whether to run a `weir-proxy` gateway in each namespace with a Rollout.
    pub gateway: bool,
    /// The gateway's image.
    pub gateway_image: String,
    /// How often to look at a Rollout even when nothing changes.
    pub resync: Duration,
    /// How many Rollouts are reconciled at once (0: no limit). The rest wait their turn in
    /// the order they were queued.
    pub concurrency: u16,
}

/// What every reconcile shares.
pub struct Context {
    /// The Kubernetes client.
    pub client: Client,
    /// Records `events.k8s.io` Events.
    pub recorder: events::EventRecorder,
    /// The operator's metrics.
    pub metrics: Arc<Metrics>,
    /// Measures and judges the canaries.
    pub analyst: Arc<Analyst>,
    /// The settings.
    pub config: Config,
    /// The watch caches every reconcile reads from.
    pub stores: stores::Stores,
    /// The writes the watch caches have not shown yet.
    pub expectations: expect::Expectations,
    /// The reconcile slots, handed out first come, first served.
    slots: slots::Slots,
    writers: parking_lot::Mutex<Option<stores::Writers>>,
}

/// Why a reconcile failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A call to the API server failed.
    #[error("{what}")]
    Kube {
        /// What the call was for.
        what: String,
        /// The client error.
        #[source]
        source: kube::Error,
    },
    /// Adding or removing the finalizer failed.
    #[error("finalizer")]
    Finalizer(#[source] Box<kube::runtime::finalizer::Error<Error>>),
    /// The Rollout has no namespace.
    #[error("the Rollout has no namespace")]
    NoNamespace,
    /// A revision to restore has no ControllerRevision holding its template.
    #[error(
        "revision {0} must be re-created, but its ControllerRevision (its kept template) is gone"
    )]
    NoHistory(String),
    /// A revision must be built from `spec.template`, but the Rollout has none (it adopts).
    #[error("revision {0} must be built from spec.template, but the Rollout has no template")]
    NoTemplate(String),
    /// An object could not be serialised.
    #[error("cannot serialise {what}")]
    Json {
        /// What was serialised.
        what: String,
        /// The serde error.
        #[source]
        source: serde_json::Error,
    },
}

impl Error {
    /// A short label for the error metric.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Self::Kube { .. } => "kube",
            Self::Finalizer(_) => "finalizer",
            Self::NoNamespace => "no_namespace",
            Self::Json { .. } => "json",
            Self::NoHistory(_) => "no_history",
            Self::NoTemplate(_) => "no_template",
        }
    }
}

/// An error with all its sources, `outer: inner: innermost`.
pub fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        text.push_str(": ");
        text.push_str(&e.to_string());
        source = e.source();
    }
    text
}

/// Wraps a kube error with what the call was for.
pub(crate) fn kube_err(what: impl Into<String>) -> impl FnOnce(kube::Error) -> Error {
    let what = what.into();
    move |source| Error::Kube { what, source }
}

// === impl Context ===

impl Context {
    /// A context with a recorder reporting as `weir-operator` from `instance`.
    pub fn new(
        client: Client,
        metrics: Arc<Metrics>,
        analyst: Arc<Analyst>,
        config: Config,
        instance: Option<String>,
    ) -> Self {
        let (stores, writers) = stores::new();
        let slots = slots::Slots::new(config.concurrency);
        Self {
            recorder: events::EventRecorder::new(client.clone(), FIELD_MANAGER, instance),
            client,
            metrics,
            analyst,
            config,
            stores,
            expectations: expect::Expectations::default(),
            slots,
            writers: parking_lot::Mutex::new(Some(writers)),
        }
    }
}

/// The API resource of TrafficSplits as the controller writes them (v1alpha4).
pub fn split_resource() -> ApiResource {
    let gvk = GroupVersionKind::gvk("split.smi-spec.io", "v1alpha4", "TrafficSplit");
    ApiResource::from_gvk_with_plural(&gvk, "trafficsplits")
}

/// Runs the controller until `shutdown` resolves. `/ready` turns true once every watch
/// has its first listing. A context runs one controller: a second call returns at once.
pub async fn run(ctx: Arc<Context>, shutdown: impl Future<Output = ()> + Send + Sync + 'static) {
    let Some(w) = ctx.writers.lock().take() else {
        tracing::error!("this context's controller already ran");
        return;
    };
    let client = ctx.client.clone();
    let owned = watcher::Config::default().labels("app.kubernetes.io/managed-by=weir");
    let split = split_resource();
    let rollouts = reflector(
        w.rollouts,
        watcher(
            Api::<DeserializeGuard<Rollout>>::all(client.clone()),
            watcher::Config::default(),
        )
        .modify(lean::object),
    )
    .default_backoff()
    .inspect(seen(&ctx, "Rollout", expect::self_owner))
    .applied_objects();
    let deployments = reflector(
        w.deployments,
        watcher(
            Api::<cached::CachedDeployment>::all(client.clone()),
            owned.clone(),
        )
        .inspect(index(&ctx, "Deployment")),
    )
    .default_backoff()
    .inspect(seen(&ctx, "Deployment", expect::child_owner))
    .touched_objects();
    let services = reflector(
        w.services,
        watcher(Api::<Service>::all(client.clone()), owned.clone())
            .modify(lean::service)
            .inspect(index(&ctx, "Service")),
    )
    .default_backoff()
    .inspect(seen(&ctx, "Service", expect::child_owner))
    .touched_objects();
    let splits = reflector(
        w.splits,
        watcher(
            Api::<DynamicObject>::all_with(client.clone(), &split),
            owned.clone(),
        )
        .modify(lean::object),
    )
    .default_backoff()
    .inspect(seen(&ctx, "TrafficSplit", expect::child_owner))
    .touched_objects();
    // No Rollout owns the gateway ServiceAccounts: a change wakes their namespace's Rollouts.
    let service_accounts = reflector(
        w.service_accounts,
        watcher(Api::<ServiceAccount>::all(client), owned).modify(lean::object),
    )
    .default_backoff()
    .inspect(seen(&ctx, "ServiceAccount", expect::child_owner))
    .touched_objects();
    let gateway_watchers = ctx.stores.rollouts.clone();
    Controller::for_stream(rollouts, ctx.stores.rollouts.clone())
        .owns_stream(deployments)
        .owns_stream(services)
        .owns_stream_with(splits, split)
        .watches_stream(service_accounts, move |sa: ServiceAccount| {
            // A gateway that went (its namespace's last Rollout was deleted, or by hand):
            // the namespace's Rollouts look again, and re-create it if one still lives.
            let ns = sa.namespace();
            gateway_watchers
                .state_filter(|r| r.namespace() == ns)
                .iter()
                .map(|r| ObjectRef::from_obj(r.as_ref()))
                .collect::<Vec<_>>()
        })
        // No limit here: each reconcile waits for one of `Context::slots`, served in order.
        .with_config(controller::Config::default().concurrency(0))
        .graceful_shutdown_on(close_slots_on(shutdown, ctx.clone()))
        .run(reconcile, error_policy, ctx.clone())
        .for_each(|result| async move {
            if let Err(e) = result {
                tracing::debug!(error = %e, "reconcile result");
            }
        })
        .await;
    ctx.metrics
        .ready
        .store(false, std::sync::atomic::Ordering::Relaxed);
}

/// `shutdown`, after which a reconcile still waiting for a slot gives up instead of writing
/// (a graceful shutdown waits only for those that hold one, as after a lost leadership).
async fn close_slots_on(shutdown: impl Future<Output = ()>, ctx: Arc<Context>) {
    shutdown.await;
    ctx.slots.close();
}

/// A stream hook that notes each Rollout's children before the store shows them (so that
/// the index is never behind the store).
fn index<K: kube::Resource>(
    ctx: &Arc<Context>,
    kind: &'static str,
) -> impl Fn(&Result<watcher::Event<K>, watcher::Error>) + use<K> {
    let ctx = ctx.clone();
    move |event| {
        if let Ok(event) = event {
            ctx.stores.children.observe(kind, event);
        }
    }
}

/// A stream hook that ticks off the expectations each watch event satisfies.
fn seen<K: kube::Resource>(
    ctx: &Arc<Context>,
    kind: &'static str,
    owner_of: fn(&K) -> Option<String>,
) -> impl Fn(&Result<watcher::Event<K>, watcher::Error>) + use<K> {
    let ctx = ctx.clone();
    move |event| {
        if let Ok(event) = event {
            ctx.expectations.observe(kind, event, owner_of);
            if matches!(event, watcher::Event::InitDone) {
                ctx.stores.listed(kind, &ctx.metrics);
            }
        }
    }
}

/// One reconcile of one Rollout, once a slot is free (in the order they were queued). The
/// reconcile is boxed, so a Rollout waiting its turn holds a small future, not a full one.
async fn reconcile(
    guard: Arc<DeserializeGuard<Rollout>>,
    ctx: Arc<Context>,
) -> Result<Action, Error> {
    let queued = Instant::now();
    let Some(_slot) = ctx.slots.take().await else {
        // Closed: the controller is shutting down.
        return Ok(Action::await_change());
    };
    ctx.metrics
        .queue_wait
        .observe(queued.elapsed().as_secs_f64());
    Box::pin(reconcile_in_slot(guard, ctx.clone())).await
}

/// One reconcile of one Rollout, in a span naming it. A Rollout whose stored JSON cannot
/// be read gets a Warning Event instead (and, when deleted, loses its finalizer).
async fn reconcile_in_slot(
    guard: Arc<DeserializeGuard<Rollout>>,
    ctx: Arc<Context>,
) -> Result<Action, Error> {
    let ns = guard.namespace().ok_or(Error::NoNamespace)?;
    let span = tracing::info_span!("reconcile", rollout = %format!("{ns}/{}", guard.name_any()));
    async move {
        let started = Instant::now();
        ctx.metrics.reconciles.inc();
        let api: Api<Rollout> = Api::namespaced(ctx.client.clone(), &ns);
        let result = match &guard.0 {
            Ok(queued) => match settle::settled_rollout(queued, &ctx, &ns) {
                None => Ok(settle::unsettled()),
                Some(rollout)
                    if rollout.meta().deletion_timestamp.is_none()
                        && !rollout.finalizers().iter().any(|f| f == FINALIZER) =>
                {
                    settle::add_finalizer(&rollout, &api, &ctx, &ns).await
                }
                Some(rollout) => finalizer(&api, FINALIZER, Arc::new(rollout), |event| async {
                    match event {
                        Finalizer::Apply(ro) => act::reconcile_apply(&ro, &ctx).await,
                        Finalizer::Cleanup(ro) => act::cleanup(&ro, &ctx).await,
                    }
                })
                .await
                .map_err(|e| Error::Finalizer(Box::new(e))),
            },
            Err(invalid) => unreadable(&guard, invalid, &api, &ctx).await,
        };
        ctx.metrics
            .duration
            .observe(started.elapsed().as_secs_f64());
        result
    }
    .instrument(span)
    .await
}

/// Reports a Rollout that cannot be read; lets it go when it is deleted (its children have
/// ownerReferences, so garbage collection removes them).
async fn unreadable(
    guard: &DeserializeGuard<Rollout>,
    invalid: &kube::core::error_boundary::InvalidObject,
    api: &Api<Rollout>,
    ctx: &Context,
) -> Result<Action, Error> {
    let name = guard.name_any();
    tracing::warn!(error = %invalid.error, "the Rollout cannot be read");
    let event = Event {
        type_: EventType::Warning,
        reason: crate::plan::reasons::INVALID_ROLLOUT.into(),
        note: Some(format!(
            "The stored Rollout cannot be read: {}",
            invalid.error
        )),
        action: "Read".into(),
        secondary: None,
    };
    ctx.recorder.record(event, guard.object_ref(&())).await;
    let finalizers = guard.finalizers();
    if guard.meta().deletion_timestamp.is_some() && finalizers.iter().any(|f| f == FINALIZER) {
        let kept: Vec<&String> = finalizers.iter().filter(|f| *f != FINALIZER).collect();
        let patch = serde_json::json!({"metadata": {"finalizers": kept}});
        api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map_err(kube_err("remove the finalizer of an unreadable Rollout"))?;
    }
    Ok(Action::await_change())
}

fn error_policy(
    rollout: Arc<DeserializeGuard<Rollout>>,
    error: &Error,
    ctx: Arc<Context>,
) -> Action {
    tracing::warn!(rollout = %rollout.name_any(), error = %chain(error), "reconcile failed");
    ctx.metrics
        .errors
        .get_or_create(&ErrorLabels {
            error: error.metric_label().into(),
        })
        .inc();
    Action::requeue(Duration::from_secs(5))
}
