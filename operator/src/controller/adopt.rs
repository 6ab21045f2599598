//! Carries out adoption: reads the Deployment and Service a Rollout's `spec.workloadRef`
//! names, labels them, re-points the user's Service to the gateway, and hands everything
//! back when the Rollout is deleted. Every write is a JSON merge patch of metadata, or of a
//! Service's selector and ports: the adopted Deployment's pod template and selector are
//! never written, so no pod restarts.

use super::act::expect_version;
use super::{Context, Error, FIELD_MANAGER, kube_err};
use crate::children::{
    self, ADOPTED_ANNOTATION, GATEWAY_NAME, MANAGED_BY, ORIGINAL_ANNOTATION, REVISION_LABEL,
    ROLLOUT_LABEL,
};
use crate::plan::{
    Action, AdoptObserved, AdoptedDeployment, AdoptedService, HandBack, template_hash,
};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::ResourceExt;
use kube::api::{Api, ListParams, Patch, PatchParams};
use serde_json::{Value, json};
use weir_crds::Rollout;
use weir_crds::rollout::AdoptionStatus;

/// Reads the Deployment and Service `spec.workloadRef` names, and whether the gateway serves
/// the adopted revision's Service. Only called while a Rollout adopts (no stable revision yet).
pub async fn gather(
    rollout: &Rollout,
    ctx: &Context,
    ns: &str,
    revision_service: Option<&str>,
) -> Result<Option<AdoptObserved>, Error> {
    let Some(workload) = rollout.spec.workload_ref.as_ref() else {
        return Ok(None);
    };
    let deployments: Api<Deployment> = Api::namespaced(ctx.client.clone(), ns);
    let deployment = deployments
        .get_opt(&workload.name)
        .await
        .map_err(kube_err(format!(
            "get the adopted Deployment {}",
            workload.name
        )))?
        .map(|d| AdoptedDeployment {
            owner: d.labels().get(ROLLOUT_LABEL).cloned(),
            template_hash: template_hash(&d.spec.template),
            pod_labels: d
                .spec
                .template
                .metadata
                .as_ref()
                .and_then(|m| m.labels.clone())
                .unwrap_or_default(),
            replicas: d.spec.replicas.unwrap_or(1),
            available: d
                .status
                .as_ref()
                .and_then(|s| s.available_replicas)
                .unwrap_or(0),
        });
    let service = match &workload.service_name {
        None => None,
        Some(name) => {
            let services: Api<Service> = Api::namespaced(ctx.client.clone(), ns);
            services
                .get_opt(name)
                .await
                .map_err(kube_err(format!("get the adopted Service {name}")))?
                .map(|s| AdoptedService {
                    owner: s.labels().get(ROLLOUT_LABEL).cloned(),
                    repointed: selects_gateway(&s),
                })
        }
    };
    let gateway_ready = match revision_service {
        Some(svc) => gateway_serves(ctx, ns, svc).await?,
        None => false,
    };
    Ok(Some(AdoptObserved {
        deployment,
        service,
        gateway_ready,
    }))
}

/// Whether a gateway pod is available and `service` has a ready endpoint.
async fn gateway_serves(ctx: &Context, ns: &str, service: &str) -> Result<bool, Error> {
    let gateway_up = !ctx.config.gateway
        || ctx
            .stores
            .gateway(ns)
            .is_some_and(|g| g.available_replicas.unwrap_or(0) > 0);
    if !gateway_up {
        return Ok(false);
    }
    let slices: Api<EndpointSlice> = Api::namespaced(ctx.client.clone(), ns);
    let list = slices
        .list(&ListParams::default().labels(&format!("kubernetes.io/service-name={service}")))
        .await
        .map_err(kube_err(format!("list the EndpointSlices of {service}")))?;
    Ok(list
        .items
        .iter()
        .flat_map(|s| s.endpoints.iter().flatten())
        .any(|e| e.conditions.as_ref().and_then(|c| c.ready).unwrap_or(false)))
}

fn selects_gateway(service: &Service) -> bool {
    service
        .spec
        .as_ref()
        .and_then(|s| s.selector.as_ref())
        .and_then(|s| s.get("app.kubernetes.io/name"))
        .is_some_and(|v| v == GATEWAY_NAME)
}

/// The labels and annotations adoption adds to an object's metadata.
fn adopted_metadata(rollout: &str, revision: Option<i64>, hash: Option<&str>) -> Value {
    let mut labels = json!({ MANAGED_BY.0: MANAGED_BY.1, ROLLOUT_LABEL: rollout });
    if let Some(r) = revision {
        labels[REVISION_LABEL] = json!(r.to_string());
    }
    let mut annotations = json!({ ADOPTED_ANNOTATION: "true" });
    if let Some(h) = hash {
        annotations[children::TEMPLATE_HASH_ANNOTATION] = json!(h);
    }
    json!({"metadata": {"labels": labels, "annotations": annotations}})
}

/// The merge patch that removes what [`adopted_metadata`] (and a re-point) added.
fn released_metadata() -> Value {
    json!({"metadata": {
        "labels": { MANAGED_BY.0: null, ROLLOUT_LABEL: null, REVISION_LABEL: null },
        "annotations": {
            ADOPTED_ANNOTATION: null,
            children::TEMPLATE_HASH_ANNOTATION: null,
            ORIGINAL_ANNOTATION: null
        }
    }})
}

/// Carries out one adoption action of a plan (the others are `act::execute`'s).
pub async fn act(rollout: &Rollout, ctx: &Context, ns: &str, action: &Action) -> Result<(), Error> {
    let name = rollout.name_any();
    match action {
        Action::AdoptDeployment {
            name: target,
            revision,
            template_hash,
        } => {
            let written =
                adopt_deployment(ctx, ns, &name, target, *revision, template_hash).await?;
            expect_version(ctx, ns, &name, "Deployment", &written);
        }
        Action::AdoptService {
            name: target,
            revision,
        } => {
            let written = adopt_service(ctx, ns, &name, target, *revision).await?;
            expect_version(ctx, ns, &name, "Service", &written);
        }
        Action::EnsureAdoptedService {
            name: target,
            revision,
            selector,
        } => {
            let services: Api<Service> = Api::namespaced(ctx.client.clone(), ns);
            let s = children::adopted_revision_service(rollout, target, *revision, selector);
            let apply = PatchParams::apply(FIELD_MANAGER).force();
            let written = services
                .patch(target, &apply, &Patch::Apply(&s))
                .await
                .map_err(kube_err(format!("apply Service {target}")))?;
            expect_version(ctx, ns, &name, "Service", &written);
        }
        Action::RepointService { name: target } => {
            let written = repoint_service(ctx, ns, &name, target).await?;
            expect_version(ctx, ns, &name, "Service", &written);
        }
        other => tracing::warn!(?other, "not an adoption action"),
    }
    Ok(())
}

/// Labels the Deployment's metadata as revision `revision` of `rollout`.
pub async fn adopt_deployment(
    ctx: &Context,
    ns: &str,
    rollout: &str,
    name: &str,
    revision: i64,
    hash: &str,
) -> Result<Deployment, Error> {
    let api: Api<Deployment> = Api::namespaced(ctx.client.clone(), ns);
    let patch = adopted_metadata(rollout, Some(revision), Some(hash));
    api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map_err(kube_err(format!("label the adopted Deployment {name}")))
}

/// Labels the Service's metadata as revision `revision`'s Service of `rollout`.
pub async fn adopt_service(
    ctx: &Context,
    ns: &str,
    rollout: &str,
    name: &str,
    revision: i64,
) -> Result<Service, Error> {
    let api: Api<Service> = Api::namespaced(ctx.client.clone(), ns);
    let patch = adopted_metadata(rollout, Some(revision), None);
    api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map_err(kube_err(format!("label the adopted Service {name}")))
}

/// Points the Service at the gateway, keeping its selector and ports in an annotation.
pub async fn repoint_service(
    ctx: &Context,
    ns: &str,
    rollout: &str,
    name: &str,
) -> Result<Service, Error> {
    let api: Api<Service> = Api::namespaced(ctx.client.clone(), ns);
    let current = api
        .get(name)
        .await
        .map_err(kube_err(format!("get Service {name} to re-point it")))?;
    let patch = children::repoint_patch(&current, rollout).map_err(|source| Error::Json {
        what: format!("the original selector of Service {name}"),
        source,
    })?;
    api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map_err(kube_err(format!("re-point Service {name} to the gateway")))
}

/// Hands adopted objects back (see [`crate::plan::hand_back`]); an object already gone is skipped.
pub async fn hand_back(ctx: &Context, ns: &str, steps: &[HandBack]) -> Result<(), Error> {
    let services: Api<Service> = Api::namespaced(ctx.client.clone(), ns);
    let deployments: Api<Deployment> = Api::namespaced(ctx.client.clone(), ns);
    let release = released_metadata();
    for step in steps {
        match step {
            HandBack::RestoreService(name) => {
                let Some(current) = services
                    .get_opt(name)
                    .await
                    .map_err(kube_err(format!("get Service {name} to restore it")))?
                else {
                    continue;
                };
                let patch = children::restore_patch(&current).map_err(|source| Error::Json {
                    what: format!("the original selector kept on Service {name}"),
                    source,
                })?;
                if let Some(patch) = patch {
                    services
                        .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
                        .await
                        .map_err(kube_err(format!("restore Service {name}")))?;
                }
                patch_if_present(&services, name, &release).await?;
            }
            HandBack::ReleaseService(name) => patch_if_present(&services, name, &release).await?,
            HandBack::ReleaseDeployment(name) => {
                patch_if_present(&deployments, name, &release).await?;
            }
        }
    }
    Ok(())
}

async fn patch_if_present<K>(api: &Api<K>, name: &str, patch: &Value) -> Result<(), Error>
where
    K: Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    match api
        .patch(name, &PatchParams::default(), &Patch::Merge(patch))
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(e) => Err(kube_err(format!("hand back {name}"))(e)),
    }
}

/// The names of the objects a Rollout adopted (never deleted by its cleanup).
pub fn adopted_names(adoption: &AdoptionStatus) -> Vec<String> {
    let mut names = vec![adoption.deployment.clone()];
    if adoption.revision_service_adopted {
        names.push(adoption.revision_service.clone());
    }
    names.extend(adoption.repointed_service.clone());
    names
}
