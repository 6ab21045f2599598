//! Writes one planned action: server-side apply of a child, a scale, a delete or the split.

use super::act::{delete_opt, expect_version};
use super::expect::Want;
use super::{Context, Error, FIELD_MANAGER, adopt, kube_err, split_resource};
use crate::children;
use crate::plan::{
    Action as PlanAction, Plan, deployment_name_with, revision_name, service_name_with,
    template_hash,
};
use k8s_openapi::api::apps::v1::{ControllerRevision, Deployment};
use k8s_openapi::api::core::v1::Service;
use kube::ResourceExt;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use serde_json::json;
use weir_crds::Rollout;

/// What one reconcile writes with: the Rollout, its namespace's APIs and its plan.
pub(super) struct Writer<'a> {
    rollout: &'a Rollout,
    ctx: &'a Context,
    ns: &'a str,
    p: &'a Plan,
    name: String,
    apply: PatchParams,
    deployments: Api<Deployment>,
    services: Api<Service>,
    splits: Api<DynamicObject>,
    revisions: Api<ControllerRevision>,
}

impl<'a> Writer<'a> {
    pub(super) fn new(rollout: &'a Rollout, ctx: &'a Context, ns: &'a str, p: &'a Plan) -> Self {
        Self {
            rollout,
            ctx,
            ns,
            p,
            name: rollout.name_any(),
            apply: PatchParams::apply(FIELD_MANAGER).force(),
            deployments: Api::namespaced(ctx.client.clone(), ns),
            services: Api::namespaced(ctx.client.clone(), ns),
            splits: Api::namespaced_with(ctx.client.clone(), ns, &split_resource()),
            revisions: Api::namespaced(ctx.client.clone(), ns),
        }
    }

    fn dname(&self, revision: i64) -> String {
        deployment_name_with(&self.name, self.p.status.adoption.as_ref(), revision)
    }

    fn sname(&self, revision: i64) -> String {
        service_name_with(&self.name, self.p.status.adoption.as_ref(), revision)
    }

    /// Writes one action.
    pub(super) async fn write(&self, action: &PlanAction) -> Result<(), Error> {
        let (rollout, ctx, ns, name) = (self.rollout, self.ctx, self.ns, &self.name);
        let (apply, deployments, services) = (&self.apply, &self.deployments, &self.services);
        let (splits, revisions) = (&self.splits, &self.revisions);
        let dname = |revision: i64| self.dname(revision);
        let sname = |revision: i64| self.sname(revision);
        tracing::info!(?action, "applying");
        match action {
            PlanAction::EnsureRootService => {
                let svc = children::root_service(rollout, ctx.config.gateway);
                let written = services
                    .patch(&rollout.root_service_name(), apply, &Patch::Apply(&svc))
                    .await
                    .map_err(kube_err("apply the root Service"))?;
                expect_version(ctx, ns, name, "Service", &written);
            }
            PlanAction::EnsureRevision { revision, replicas } => {
                let rev = revision_name(name, *revision);
                let template = rollout
                    .spec
                    .template
                    .as_ref()
                    .ok_or_else(|| Error::NoTemplate(rev.clone()))?;
                let hash = template_hash(template);
                // After adoption, revisions follow the adopted names (`deploy-v2`, `svc-v2`).
                let (deployment_name, service_name) = (dname(*revision), sname(*revision));
                let mut d = children::deployment_from(
                    rollout,
                    *revision,
                    *replicas,
                    &hash,
                    template.clone(),
                );
                d.metadata.name = Some(deployment_name.clone());
                let mut s = children::revision_service(rollout, *revision);
                s.metadata.name = Some(service_name.clone());
                let history = children::controller_revision(rollout, *revision, &hash, template)
                    .map_err(|source| Error::Json {
                        what: format!("ControllerRevision {rev}"),
                        source,
                    })?;
                // Three independent objects: applied at once, so a new revision costs one
                // round trip to the API server instead of three.
                let (deployment, service, _) = futures::try_join!(
                    async {
                        deployments
                            .patch(&deployment_name, apply, &Patch::Apply(&d))
                            .await
                            .map_err(kube_err(format!("apply Deployment {deployment_name}")))
                    },
                    async {
                        services
                            .patch(&service_name, apply, &Patch::Apply(&s))
                            .await
                            .map_err(kube_err(format!("apply Service {service_name}")))
                    },
                    async {
                        revisions
                            .patch(&rev, apply, &Patch::Apply(&history))
                            .await
                            .map_err(kube_err(format!("apply ControllerRevision {rev}")))
                    },
                )?;
                expect_version(ctx, ns, name, "Deployment", &deployment);
                expect_version(ctx, ns, name, "Service", &service);
            }
            PlanAction::RestoreRevision { revision, replicas } => {
                let rev = revision_name(name, *revision);
                let kept = revisions
                    .get_opt(&rev)
                    .await
                    .map_err(kube_err(format!("get ControllerRevision {rev}")))?
                    .ok_or_else(|| Error::NoHistory(rev.clone()))?;
                let (template, hash) =
                    children::kept_template(&kept).map_err(|source| Error::Json {
                        what: format!("the template kept in ControllerRevision {rev}"),
                        source,
                    })?;
                let mut d =
                    children::deployment_from(rollout, *revision, *replicas, &hash, template);
                d.metadata.name = Some(dname(*revision));
                let written = deployments
                    .patch(&dname(*revision), apply, &Patch::Apply(&d))
                    .await
                    .map_err(kube_err(format!(
                        "re-create Deployment {}",
                        dname(*revision)
                    )))?;
                expect_version(ctx, ns, name, "Deployment", &written);
                let mut s = children::revision_service(rollout, *revision);
                s.metadata.name = Some(sname(*revision));
                let written = services
                    .patch(&sname(*revision), apply, &Patch::Apply(&s))
                    .await
                    .map_err(kube_err(format!("re-create Service {}", sname(*revision))))?;
                expect_version(ctx, ns, name, "Service", &written);
            }
            PlanAction::ScaleRevision { revision, replicas } => {
                let rev = dname(*revision);
                let patch = json!({"spec": {"replicas": replicas}});
                let written = deployments
                    .patch(&rev, &PatchParams::default(), &Patch::Merge(&patch))
                    .await
                    .map_err(kube_err(format!("scale Deployment {rev}")))?;
                expect_version(ctx, ns, name, "Deployment", &written);
            }
            PlanAction::WriteSplit { backends } => {
                let split = children::traffic_split(rollout, backends);
                let written = splits
                    .patch(&children::split_name(rollout), apply, &Patch::Apply(&split))
                    .await
                    .map_err(kube_err("apply the TrafficSplit"))?;
                expect_version(ctx, ns, name, "TrafficSplit", &written);
            }
            PlanAction::DeleteService { revision } => {
                let rev = sname(*revision);
                if delete_opt(services, &rev).await? {
                    ctx.expectations
                        .expect(ns, name, "Service", &rev, Want::Gone);
                }
            }
            PlanAction::DeleteDeployment { revision } => {
                let rev = dname(*revision);
                if delete_opt(deployments, &rev).await? {
                    ctx.expectations
                        .expect(ns, name, "Deployment", &rev, Want::Gone);
                }
            }
            PlanAction::AdoptDeployment { .. }
            | PlanAction::AdoptService { .. }
            | PlanAction::EnsureAdoptedService { .. }
            | PlanAction::RepointService { .. } => adopt::act(rollout, ctx, ns, action).await?,
        }
        Ok(())
    }
}
