//! The Deployment and ReplicaSet controllers: gather from the stores, decide
//! with [`super::deployment`], write with the API.

use super::recorder::{NORMAL, Recorder, reference};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use rand::SeedableRng;
use rand::rngs::StdRng;
use serde_json::json;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::cache::Caches;
use super::deployment::{self as plan, PodCounts};
use super::index::OwnerIndex;
use super::{Error, Pacer, Result, describe, names, now_secs, span};

/// Most pods created or deleted for one ReplicaSet in one pass.
const BURST: usize = 50;
/// How long a create or delete is expected to show in the store.
const EXPECTATION_TTL: Duration = Duration::from_secs(30);

/// Pods we created or deleted whose watch events have not arrived yet, so a
/// stale store never makes us create or delete twice.
#[derive(Debug)]
struct Expectations {
    creates: HashSet<String>,
    deletes: HashSet<String>,
    since: Instant,
}

/// Both controllers' state.
pub(crate) struct Controllers {
    client: Client,
    caches: Caches,
    expectations: HashMap<String, Expectations>,
    rng: StdRng,
    /// Deployment uid → (generation, pod-template-hash), so the template is
    /// hashed once per generation rather than once per pass.
    hashes: HashMap<String, (i64, String)>,
    /// This pass's pods by controlling ReplicaSet.
    pods: OwnerIndex<Pod>,
    /// This pass's ReplicaSets by controlling Deployment.
    sets: OwnerIndex<ReplicaSet>,
    /// Events on Deployments, as `deployment-controller`.
    deployment_events: Recorder,
    /// Events on ReplicaSets, as `replicaset-controller`.
    replica_set_events: Recorder,
}

fn kube_err<K: kube::Resource<DynamicType = ()>>(
    action: &'static str,
    obj: &K,
) -> impl FnOnce(kube::Error) -> Error {
    let object = describe(obj);
    move |source| Error::Kube {
        action,
        object,
        source,
    }
}

fn already_exists(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 409)
}

// === impl Controllers ===

impl Controllers {
    pub(crate) fn new(client: Client, caches: Caches) -> Self {
        Self {
            deployment_events: Recorder::new(client.clone(), "deployment-controller", None),
            replica_set_events: Recorder::new(client.clone(), "replicaset-controller", None),
            client,
            caches,
            expectations: HashMap::new(),
            rng: StdRng::from_os_rng(),
            pods: OwnerIndex::build([]),
            sets: OwnerIndex::build([]),
            hashes: HashMap::new(),
        }
    }

    /// Reconciles every Deployment and ReplicaSet on each change until shutdown.
    pub(crate) async fn run(mut self, resync: Duration, shutdown: CancellationToken) {
        let mut pacer = Pacer::new(self.caches.subscribe(), resync);
        loop {
            self.pods = OwnerIndex::build(self.caches.pods.state());
            let sets = self.caches.replica_sets.state();
            let live: std::collections::HashSet<&str> = sets
                .iter()
                .filter_map(|rs| rs.metadata.uid.as_deref())
                .collect();
            self.expectations
                .retain(|uid, _| live.contains(uid.as_str()));
            self.sets = OwnerIndex::build(sets.iter().cloned());
            let deployments = self.caches.deployments.state();
            let live: std::collections::HashSet<&str> = deployments
                .iter()
                .filter_map(|d| d.metadata.uid.as_deref())
                .collect();
            self.hashes.retain(|uid, _| live.contains(uid.as_str()));
            for d in deployments {
                if let Err(error) = self
                    .reconcile_deployment(&d)
                    .instrument(span("deployment", &*d))
                    .await
                {
                    tracing::warn!(%error, "deployment reconcile failed");
                }
            }
            for rs in sets {
                if let Err(error) = self
                    .reconcile_replica_set(&rs)
                    .instrument(span("replicaset", &*rs))
                    .await
                {
                    tracing::warn!(%error, "replicaset reconcile failed");
                }
            }
            if !pacer.next(&shutdown).await {
                return;
            }
        }
    }

    fn pods_of(&self, uid: &str) -> Vec<Arc<Pod>> {
        self.pods.get(uid).to_vec()
    }

    async fn reconcile_deployment(&mut self, d: &Deployment) -> Result<()> {
        let spec = &d.spec;
        let (Some(uid), Some(ns)) = (d.metadata.uid.as_deref(), d.metadata.namespace.as_deref())
        else {
            return Ok(());
        };
        if d.metadata.deletion_timestamp.is_some() {
            return Ok(());
        }
        let generation = d.metadata.generation;
        let hash = match self.hashes.get(uid) {
            Some((g, h)) if Some(*g) == generation => h.clone(),
            _ => {
                let h = names::pod_template_hash(&spec.template);
                if let Some(g) = generation {
                    self.hashes.insert(uid.to_string(), (g, h.clone()));
                }
                h
            }
        };
        let new_name =
            names::replica_set_name(d.metadata.name.as_deref().unwrap_or_default(), &hash);
        let mut owned = self.sets.get(uid).to_vec();
        owned.sort_by_key(|rs| std::cmp::Reverse(plan::revision(rs)));
        let rs_api: Api<ReplicaSet> = Api::namespaced(self.client.clone(), ns);
        let Some(new_rs) = owned
            .iter()
            .find(|rs| rs.metadata.name.as_deref() == Some(&new_name))
            .cloned()
        else {
            if spec.paused == Some(true) {
                return Ok(());
            }
            let rev = owned.first().map_or(0, |rs| plan::revision(rs)) + 1;
            let Some(rs) = plan::new_replica_set(d, &hash, rev) else {
                return Ok(());
            };
            tracing::info!(rs = %new_name, "creating replicaset");
            return match rs_api.create(&PostParams::default(), &rs).await {
                Err(e) if already_exists(&e) => Ok(()),
                Ok(_) => {
                    let to = rs.spec.replicas.unwrap_or(1);
                    self.deployment_events.record(
                        reference(d),
                        NORMAL,
                        "ScalingReplicaSet",
                        format!("Scaled up replica set {new_name} from 0 to {to}"),
                    );
                    Ok(())
                }
                Err(e) => Err(kube_err("create", &rs)(e)),
            };
        };
        let desired = plan::desired_replicas(d);
        self.scale(&rs_api, d, &new_rs, desired).await?;
        let now = now_secs();
        let min_ready = spec.min_ready_seconds.unwrap_or(0);
        let new_uid = new_rs.metadata.uid.as_deref().unwrap_or_default();
        let updated = PodCounts::of(self.pods_of(new_uid).iter().map(|p| &**p), min_ready, now);
        let old: Vec<_> = owned
            .iter()
            .filter(|rs| rs.metadata.uid != new_rs.metadata.uid)
            .collect();
        let current: Vec<(String, i32)> = old
            .iter()
            .map(|rs| {
                let n = rs.spec.replicas.unwrap_or(0);
                (rs.metadata.name.clone().unwrap_or_default(), n)
            })
            .collect();
        let mut all = updated;
        for (rs, (_, target)) in old.iter().zip(plan::scale_old(d, updated.ready, &current)) {
            self.scale(&rs_api, d, rs, target).await?;
            let uid = rs.metadata.uid.as_deref().unwrap_or_default();
            all = all.plus(PodCounts::of(
                self.pods_of(uid).iter().map(|p| &**p),
                min_ready,
                now,
            ));
        }
        let status = plan::deployment_status(d, &new_name, all, updated, now);
        if plan::status_changed(d.status.as_ref(), &status) {
            let api: Api<Deployment> = Api::namespaced(self.client.clone(), ns);
            let name = d.metadata.name.as_deref().unwrap_or_default();
            api.patch_status(
                name,
                &PatchParams::default(),
                &Patch::Merge(json!({ "status": status })),
            )
            .await
            .map_err(kube_err("patch status", d))?;
        }
        Ok(())
    }

    async fn scale(
        &self,
        api: &Api<ReplicaSet>,
        d: &Deployment,
        rs: &ReplicaSet,
        replicas: i32,
    ) -> Result<()> {
        let current = rs.spec.replicas.unwrap_or(1);
        if current == replicas {
            return Ok(());
        }
        let name = rs.metadata.name.as_deref().unwrap_or_default();
        tracing::info!(
            rs = name,
            from = current,
            to = replicas,
            "scaling replicaset"
        );
        let patch = Patch::Merge(json!({ "spec": { "replicas": replicas } }));
        api.patch(name, &PatchParams::default(), &patch)
            .await
            .map_err(kube_err("scale", rs))?;
        let way = if replicas > current { "up" } else { "down" };
        self.deployment_events.record(
            reference(d),
            NORMAL,
            "ScalingReplicaSet",
            format!("Scaled {way} replica set {name} from {current} to {replicas}"),
        );
        Ok(())
    }

    async fn reconcile_replica_set(&mut self, rs: &ReplicaSet) -> Result<()> {
        let (Some(uid), Some(ns)) = (rs.metadata.uid.clone(), rs.metadata.namespace.clone()) else {
            return Ok(());
        };
        if rs.metadata.deletion_timestamp.is_some() {
            return Ok(());
        }
        let pods = self.pods_of(&uid);
        let live: HashSet<String> = pods
            .iter()
            .filter(|p| plan::pod_active(p))
            .filter_map(|p| p.metadata.name.clone())
            .collect();
        let seen: HashSet<String> = pods
            .iter()
            .filter_map(|p| p.metadata.name.clone())
            .collect();
        let exp = self
            .expectations
            .entry(uid.clone())
            .or_insert_with(|| Expectations {
                creates: HashSet::new(),
                deletes: HashSet::new(),
                since: Instant::now(),
            });
        exp.creates.retain(|n| !seen.contains(n));
        exp.deletes.retain(|n| live.contains(n));
        if exp.since.elapsed() > EXPECTATION_TTL {
            exp.creates.clear();
            exp.deletes.clear();
        }
        let count = live.len() + exp.creates.len() - exp.deletes.len();
        let desired = usize::try_from(rs.spec.replicas.unwrap_or(1)).unwrap_or(0);
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &ns);
        let rs_name = rs.metadata.name.as_deref().unwrap_or_default();
        if count < desired {
            for _ in 0..(desired - count).min(BURST) {
                let name = names::pod_name(rs_name, &mut self.rng);
                let Some(pod) = plan::new_pod(rs, name.clone()) else {
                    break;
                };
                tracing::info!(pod = %name, rs = rs_name, "creating pod");
                match api.create(&PostParams::default(), &pod).await {
                    Ok(_) => {
                        self.replica_set_events.record(
                            reference(rs),
                            NORMAL,
                            "SuccessfulCreate",
                            format!("Created pod: {name}"),
                        );
                        exp.creates.insert(name);
                        exp.since = Instant::now();
                    }
                    Err(e) if already_exists(&e) => {}
                    Err(e) => return Err(kube_err("create", &pod)(e)),
                }
            }
        } else if count > desired {
            let candidates = pods
                .iter()
                .filter(|p| {
                    p.metadata
                        .name
                        .as_ref()
                        .is_some_and(|n| !exp.deletes.contains(n))
                })
                .map(|p| &**p);
            for name in plan::pods_to_delete(candidates, (count - desired).min(BURST)) {
                tracing::info!(pod = %name, rs = rs_name, "deleting pod");
                match api.delete(&name, &DeleteParams::default()).await {
                    Ok(_) => {
                        self.replica_set_events.record(
                            reference(rs),
                            NORMAL,
                            "SuccessfulDelete",
                            format!("Deleted pod: {name}"),
                        );
                        exp.deletes.insert(name);
                        exp.since = Instant::now();
                    }
                    Err(kube::Error::Api(s)) if s.code == 404 => {}
                    Err(source) => {
                        return Err(Error::Kube {
                            action: "delete",
                            object: format!("Pod {ns}/{name}"),
                            source,
                        });
                    }
                }
            }
        }
        self.write_rs_status(rs, &pods).await
    }

    async fn write_rs_status(&self, rs: &ReplicaSet, pods: &[Arc<Pod>]) -> Result<()> {
        let min_ready = rs.spec.min_ready_seconds.unwrap_or(0);
        let counts = PodCounts::of(pods.iter().map(|p| &**p), min_ready, now_secs());
        let status = plan::replica_set_status(rs, counts);
        if rs.status.as_ref() == Some(&status) {
            return Ok(());
        }
        let (Some(ns), Some(name)) = (
            rs.metadata.namespace.as_deref(),
            rs.metadata.name.as_deref(),
        ) else {
            return Ok(());
        };
        let api: Api<ReplicaSet> = Api::namespaced(self.client.clone(), ns);
        api.patch_status(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({ "status": status })),
        )
        .await
        .map(drop)
        .map_err(kube_err("patch status", rs))
    }
}
