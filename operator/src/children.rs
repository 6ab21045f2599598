//! The objects a Rollout owns, built as pure functions of the Rollout: revision
//! Deployments, Services and ControllerRevisions (the template history `kubectl weir undo`
//! reads), the root Service, the TrafficSplit and the namespace gateway.

mod adopt;

pub use adopt::{
    ADOPTED_ANNOTATION, ORIGINAL_ANNOTATION, adopted_revision_service, repoint_patch, restore_patch,
};

use crate::plan::revision_name;
use k8s_openapi::api::apps::v1::{ControllerRevision, Deployment, DeploymentSpec};
use k8s_openapi::api::core::v1::{
    Container, ContainerPort, EnvVar, EnvVarSource, ObjectFieldSelector, PodSpec, PodTemplateSpec,
    Service, ServiceAccount, ServicePort, ServiceSpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference};
use k8s_openapi::apimachinery::pkg::runtime::RawExtension;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::Resource;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use weir_crds::Rollout;

/// The label on every object Weir makes.
pub const MANAGED_BY: (&str, &str) = ("app.kubernetes.io/managed-by", "weir");
/// The label naming the Rollout an object belongs to.
pub const ROLLOUT_LABEL: &str = "weir.dev/rollout";
/// The label naming a revision; revision Services select on it.
pub const REVISION_LABEL: &str = "weir.dev/revision";
/// The annotation holding a revision's template hash.
pub const TEMPLATE_HASH_ANNOTATION: &str = "weir.dev/template-hash";
/// The name of the namespace gateway's Deployment, ServiceAccount and pod label value.
pub const GATEWAY_NAME: &str = "weir-gateway";
/// The gateway's data port.
pub const GATEWAY_PORT: i32 = 8080;
/// The gateway's admin (metrics) port.
pub const GATEWAY_ADMIN_PORT: i32 = 9990;
/// How many revisions' templates are kept as ControllerRevisions (besides stable and canary).
pub const HISTORY_LIMIT: usize = 10;

/// The TrafficSplit's name for a Rollout: `name-rollout`, as in the brief.
pub fn split_name(rollout: &Rollout) -> String {
    format!(
        "{}-rollout",
        rollout.metadata.name.as_deref().unwrap_or_default()
    )
}

/// Labels every child carries.
pub fn child_labels(rollout: &Rollout) -> BTreeMap<String, String> {
    BTreeMap::from([
        (MANAGED_BY.0.to_string(), MANAGED_BY.1.to_string()),
        (
            ROLLOUT_LABEL.to_string(),
            rollout.metadata.name.clone().unwrap_or_default(),
        ),
    ])
}

fn owner(rollout: &Rollout) -> Vec<OwnerReference> {
    rollout.controller_owner_ref(&()).into_iter().collect()
}

fn meta(rollout: &Rollout, name: String, extra: &[(&str, String)]) -> ObjectMeta {
    let mut labels = child_labels(rollout);
    for (k, v) in extra {
        labels.insert((*k).to_string(), v.clone());
    }
    ObjectMeta {
        name: Some(name),
        namespace: rollout.metadata.namespace.clone(),
        labels: Some(labels),
        owner_references: Some(owner(rollout)),
        ..ObjectMeta::default()
    }
}

fn revision_selector(rollout: &Rollout, revision: i64) -> BTreeMap<String, String> {
    let mut selector = rollout
        .spec
        .selector
        .match_labels
        .clone()
        .unwrap_or_default();
    selector.insert(REVISION_LABEL.to_string(), revision.to_string());
    selector
}

/// Revision N's Deployment `name-vN`, from `spec.template` with the revision label added;
/// None for a Rollout with no template (one that adopts a Deployment).
pub fn deployment(
    rollout: &Rollout,
    revision: i64,
    replicas: i32,
    template_hash: &str,
) -> Option<Deployment> {
    let template = rollout.spec.template.clone()?;
    Some(deployment_from(
        rollout,
        revision,
        replicas,
        template_hash,
        template,
    ))
}

/// The template and template hash a ControllerRevision keeps (see [`controller_revision`]).
pub fn kept_template(
    kept: &ControllerRevision,
) -> Result<(PodTemplateSpec, String), serde_json::Error> {
    let template = serde_json::from_value(kept.data.0["spec"]["template"].clone())?;
    let hash = kept
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(TEMPLATE_HASH_ANNOTATION))
        .cloned()
        .unwrap_or_default();
    Ok((template, hash))
}

/// Revision N's Deployment `name-vN` from `template` (its kept template, when it is no
/// longer the spec's), with the revision label added.
pub fn deployment_from(
    rollout: &Rollout,
    revision: i64,
    replicas: i32,
    template_hash: &str,
    mut template: PodTemplateSpec,
) -> Deployment {
    let name = revision_name(
        rollout.metadata.name.as_deref().unwrap_or_default(),
        revision,
    );
    let mut metadata = meta(rollout, name, &[(REVISION_LABEL, revision.to_string())]);
    metadata.annotations = Some(BTreeMap::from([(
        TEMPLATE_HASH_ANNOTATION.to_string(),
        template_hash.to_string(),
    )]));
    let pod_meta = template.metadata.get_or_insert_with(ObjectMeta::default);
    let labels = pod_meta.labels.get_or_insert_with(BTreeMap::new);
    labels.insert(REVISION_LABEL.to_string(), revision.to_string());
    labels.insert(
        ROLLOUT_LABEL.to_string(),
        rollout.metadata.name.clone().unwrap_or_default(),
    );
    let mut selector = rollout.spec.selector.clone();
    selector
        .match_labels
        .get_or_insert_with(BTreeMap::new)
        .insert(REVISION_LABEL.to_string(), revision.to_string());
    Deployment {
        metadata,
        spec: DeploymentSpec {
            replicas: Some(replicas),
            selector,
            template,
            ..DeploymentSpec::default()
        },
        status: None,
    }
}

/// Revision N's ControllerRevision `name-vN`: its template, kept after its Deployment is
/// gone, as `data.spec.template` (the path it has in the Rollout).
pub fn controller_revision(
    rollout: &Rollout,
    revision: i64,
    template_hash: &str,
    template: &PodTemplateSpec,
) -> Result<ControllerRevision, serde_json::Error> {
    let name = revision_name(
        rollout.metadata.name.as_deref().unwrap_or_default(),
        revision,
    );
    let mut metadata = meta(rollout, name, &[(REVISION_LABEL, revision.to_string())]);
    metadata.annotations = Some(BTreeMap::from([(
        TEMPLATE_HASH_ANNOTATION.to_string(),
        template_hash.to_string(),
    )]));
    let template = serde_json::to_value(template)?;
    Ok(ControllerRevision {
        metadata,
        data: RawExtension(json!({ "spec": { "template": template } })),
        revision: Some(revision),
    })
}

/// Whether writing revision `newest` may leave more than [`HISTORY_LIMIT`] ControllerRevisions,
/// so that they must be listed and pruned. Revision numbers are distinct and positive, and a
/// new one is above every revision whose Deployment exists, so while the newest is at most
/// the limit, so are (nearly always) all the others: the controller then skips the LIST. The
/// exception, a kept ControllerRevision above the newest because its Deployment was deleted,
/// is pruned at the first revision written above the limit.
pub fn history_may_overflow(newest: i64) -> bool {
    usize::try_from(newest).map_or(true, |n| n > HISTORY_LIMIT)
}

/// The revisions whose ControllerRevisions go: all but the newest [`HISTORY_LIMIT`], never one in `keep`.
pub fn history_to_prune(revisions: &[i64], keep: &[i64]) -> Vec<i64> {
    let mut old: Vec<i64> = revisions
        .iter()
        .copied()
        .filter(|r| !keep.contains(r))
        .collect();
    old.sort_unstable_by(|a, b| b.cmp(a));
    old.dedup();
    old.into_iter().skip(HISTORY_LIMIT).collect()
}

/// Revision N's Service `name-vN`, selecting only that revision's pods.
pub fn revision_service(rollout: &Rollout, revision: i64) -> Service {
    let name = revision_name(
        rollout.metadata.name.as_deref().unwrap_or_default(),
        revision,
    );
    let (port, target) = ports(rollout);
    Service {
        metadata: meta(rollout, name, &[(REVISION_LABEL, revision.to_string())]),
        spec: Some(ServiceSpec {
            selector: Some(revision_selector(rollout, revision)),
            ports: Some(vec![http_port(port, target)]),
            ..ServiceSpec::default()
        }),
        status: None,
    }
}

/// The root Service clients call. With the gateway it selects the gateway pods, which
/// route by Host through the TrafficSplit; without it, it selects every revision's pods.
pub fn root_service(rollout: &Rollout, gateway: bool) -> Service {
    let (port, target) = ports(rollout);
    let (selector, target) = if gateway {
        (
            BTreeMap::from([(
                "app.kubernetes.io/name".to_string(),
                GATEWAY_NAME.to_string(),
            )]),
            GATEWAY_PORT,
        )
    } else {
        (
            rollout
                .spec
                .selector
                .match_labels
                .clone()
                .unwrap_or_default(),
            target,
        )
    };
    Service {
        metadata: meta(rollout, rollout.root_service_name(), &[]),
        spec: Some(ServiceSpec {
            selector: Some(selector),
            ports: Some(vec![http_port(port, target)]),
            ..ServiceSpec::default()
        }),
        status: None,
    }
}

fn ports(rollout: &Rollout) -> (i32, i32) {
    let service = rollout.spec.service.clone().unwrap_or_default();
    let port = if service.port == 0 { 80 } else { service.port };
    let target = if service.target_port == 0 {
        8080
    } else {
        service.target_port
    };
    (port, target)
}

fn http_port(port: i32, target: i32) -> ServicePort {
    ServicePort {
        name: Some("http".into()),
        port,
        target_port: Some(IntOrString::Int(target)),
        protocol: Some("TCP".into()),
        ..ServicePort::default()
    }
}

/// The TrafficSplit `name-rollout` (SMI v1alpha4) with these backends.
pub fn traffic_split(rollout: &Rollout, backends: &[(String, i32)]) -> Value {
    let meta = meta(rollout, split_name(rollout), &[]);
    json!({
        "apiVersion": "split.smi-spec.io/v1alpha4",
        "kind": "TrafficSplit",
        "metadata": meta,
        "spec": {
            "service": rollout.root_service_name(),
            "backends": backends.iter().map(|(s, w)| json!({"service": s, "weight": w})).collect::<Vec<_>>(),
        }
    })
}

/// The namespace gateway's ServiceAccount.
pub fn gateway_service_account(namespace: &str) -> ServiceAccount {
    ServiceAccount {
        metadata: gateway_meta(namespace),
        ..ServiceAccount::default()
    }
}

/// The namespace gateway: one `weir-proxy` Deployment serving every root Service in the namespace.
pub fn gateway_deployment(namespace: &str, image: &str) -> Deployment {
    let labels = BTreeMap::from([(
        "app.kubernetes.io/name".to_string(),
        GATEWAY_NAME.to_string(),
    )]);
    let port = |name: &str, p: i32| ContainerPort {
        name: Some(name.into()),
        container_port: p,
        ..ContainerPort::default()
    };
    Deployment {
        metadata: gateway_meta(namespace),
        spec: DeploymentSpec {
            // Not set: the server defaults it to 1, and whoever scales the gateway owns it.
            replicas: None,
            selector: LabelSelector {
                match_labels: Some(labels.clone()),
                ..LabelSelector::default()
            },
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels),
                    ..ObjectMeta::default()
                }),
                spec: Some(PodSpec {
                    service_account_name: Some(GATEWAY_NAME.into()),
                    containers: vec![Container {
                        name: "proxy".into(),
                        image: Some(image.into()),
                        // Bound to the pod's own IP: the local simulator runs every pod on
                        // one loopback network, so a wildcard bind would clash.
                        args: Some(vec![
                            "--namespace".into(),
                            namespace.into(),
                            "--listen".into(),
                            format!("$(POD_IP):{GATEWAY_PORT}"),
                            "--admin".into(),
                            format!("$(POD_IP):{GATEWAY_ADMIN_PORT}"),
                        ]),
                        env: Some(vec![
                            field_env("POD_IP", "status.podIP"),
                            field_env("POD_NAME", "metadata.name"),
                            field_env("POD_NAMESPACE", "metadata.namespace"),
                        ]),
                        ports: Some(vec![
                            port("http", GATEWAY_PORT),
                            port("admin", GATEWAY_ADMIN_PORT),
                        ]),
                        ..Container::default()
                    }],
                    ..PodSpec::default()
                }),
            },
            ..DeploymentSpec::default()
        },
        status: None,
    }
}

/// Whether the live gateway Deployment differs from `want` in a field Weir sets: its
/// labels, selector, pod labels, ServiceAccount, and each container's image, args, env
/// and ports. Fields others set (replicas, defaults, annotations) are not compared.
pub fn gateway_differs(live: &Deployment, want: &Deployment) -> bool {
    let subset = |want: Option<&BTreeMap<String, String>>,
                  live: Option<&BTreeMap<String, String>>| {
        want.into_iter()
            .flatten()
            .all(|(k, v)| live.and_then(|l| l.get(k)) == Some(v))
    };
    if !subset(want.metadata.labels.as_ref(), live.metadata.labels.as_ref())
        || want.spec.selector.match_labels != live.spec.selector.match_labels
    {
        return true;
    }
    let (Some(want_pod), Some(live_pod)) = (&want.spec.template.spec, &live.spec.template.spec)
    else {
        return true;
    };
    let pod_labels = |t: &PodTemplateSpec| t.metadata.as_ref().and_then(|m| m.labels.clone());
    if !subset(
        pod_labels(&want.spec.template).as_ref(),
        pod_labels(&live.spec.template).as_ref(),
    ) || want_pod.service_account_name != live_pod.service_account_name
    {
        return true;
    }
    want_pod.containers.iter().any(|w| {
        live_pod
            .containers
            .iter()
            .find(|l| l.name == w.name)
            .is_none_or(|l| container_differs(l, w))
    })
}

fn container_differs(live: &Container, want: &Container) -> bool {
    let env = |c: &Container| -> Vec<(String, Option<String>, Option<String>)> {
        c.env
            .iter()
            .flatten()
            .map(|e| {
                let path = e
                    .value_from
                    .as_ref()
                    .and_then(|v| v.field_ref.as_ref())
                    .map(|f| f.field_path.clone());
                (e.name.clone(), e.value.clone(), path)
            })
            .collect()
    };
    let ports = |c: &Container| -> Vec<(Option<String>, i32)> {
        c.ports
            .iter()
            .flatten()
            .map(|p| (p.name.clone(), p.container_port))
            .collect()
    };
    live.image != want.image
        || live.args != want.args
        || env(live) != env(want)
        || ports(live) != ports(want)
}

fn field_env(name: &str, path: &str) -> EnvVar {
    EnvVar {
        name: name.into(),
        value_from: Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector {
                field_path: path.into(),
                ..ObjectFieldSelector::default()
            }),
            ..EnvVarSource::default()
        }),
        ..EnvVar::default()
    }
}

fn gateway_meta(namespace: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(GATEWAY_NAME.into()),
        namespace: Some(namespace.into()),
        labels: Some(BTreeMap::from([
            (MANAGED_BY.0.to_string(), MANAGED_BY.1.to_string()),
            (
                "app.kubernetes.io/name".to_string(),
                GATEWAY_NAME.to_string(),
            ),
        ])),
        ..ObjectMeta::default()
    }
}

#[cfg(test)]
mod tests;
