//! The writes adoption makes to objects Weir does not own, built as pure functions: the
//! adopted revision's Service, and the merge patches that re-point a user's Service to the
//! gateway and restore it.

use super::{
    GATEWAY_NAME, GATEWAY_PORT, MANAGED_BY, REVISION_LABEL, ROLLOUT_LABEL, http_port, meta, ports,
};
use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use weir_crds::Rollout;

/// The annotation marking an object Weir adopted (and hands back on delete).
pub const ADOPTED_ANNOTATION: &str = "weir.dev/adopted";
/// The annotation holding a re-pointed Service's original selector and ports (JSON).
pub const ORIGINAL_ANNOTATION: &str = "weir.dev/original-service";

/// The adopted revision's Service `name` (common form: `<rollout>-v1`), selecting the
/// adopted pods by their template labels; owned by the Rollout like any revision Service.
pub fn adopted_revision_service(
    rollout: &Rollout,
    name: &str,
    revision: i64,
    selector: &BTreeMap<String, String>,
) -> Service {
    let (port, target) = ports(rollout);
    Service {
        metadata: meta(
            rollout,
            name.to_string(),
            &[(REVISION_LABEL, revision.to_string())],
        ),
        spec: Some(ServiceSpec {
            selector: Some(selector.clone()),
            ports: Some(vec![http_port(port, target)]),
            ..ServiceSpec::default()
        }),
        status: None,
    }
}

fn annotation<'a>(service: &'a Service, key: &str) -> Option<&'a String> {
    service.metadata.annotations.as_ref()?.get(key)
}

/// A merge patch of a selector map: every current key removed, then `want` set.
fn selector_patch(
    current: Option<&BTreeMap<String, String>>,
    want: &BTreeMap<String, String>,
) -> Value {
    let mut out = Map::new();
    for k in current.into_iter().flatten().map(|(k, _)| k) {
        out.insert(k.clone(), Value::Null);
    }
    for (k, v) in want {
        out.insert(k.clone(), json!(v));
    }
    Value::Object(out)
}

/// The merge patch that points `service` to the gateway (every port's target becomes the
/// gateway's port), labels it as `rollout`'s, and keeps its original selector and ports in
/// [`ORIGINAL_ANNOTATION`] (kept as first written when the patch is made again).
pub fn repoint_patch(service: &Service, rollout: &str) -> Result<Value, serde_json::Error> {
    let spec = service.spec.clone().unwrap_or_default();
    let original = match annotation(service, ORIGINAL_ANNOTATION) {
        Some(kept) => kept.clone(),
        None => serde_json::to_string(&json!({"selector": spec.selector, "ports": spec.ports}))?,
    };
    let gateway = BTreeMap::from([(
        "app.kubernetes.io/name".to_string(),
        GATEWAY_NAME.to_string(),
    )]);
    let ports: Vec<ServicePort> = spec
        .ports
        .clone()
        .unwrap_or_default()
        .into_iter()
        .map(|p| ServicePort {
            target_port: Some(IntOrString::Int(GATEWAY_PORT)),
            ..p
        })
        .collect();
    Ok(json!({
        "metadata": {
            "labels": { MANAGED_BY.0: MANAGED_BY.1, ROLLOUT_LABEL: rollout },
            "annotations": { ADOPTED_ANNOTATION: "true", ORIGINAL_ANNOTATION: original },
        },
        "spec": {
            "selector": selector_patch(spec.selector.as_ref(), &gateway),
            "ports": serde_json::to_value(ports)?,
        }
    }))
}

/// The merge patch that gives a re-pointed Service its original selector and ports back
/// (None when it has no [`ORIGINAL_ANNOTATION`]: it was never re-pointed).
pub fn restore_patch(service: &Service) -> Result<Option<Value>, serde_json::Error> {
    let Some(kept) = annotation(service, ORIGINAL_ANNOTATION) else {
        return Ok(None);
    };
    #[derive(serde::Deserialize)]
    struct Original {
        selector: Option<BTreeMap<String, String>>,
        ports: Option<Vec<ServicePort>>,
    }
    let original: Original = serde_json::from_str(kept)?;
    let current = service.spec.as_ref().and_then(|s| s.selector.as_ref());
    Ok(Some(json!({
        "spec": {
            "selector": selector_patch(current, &original.selector.unwrap_or_default()),
            "ports": serde_json::to_value(original.ports.unwrap_or_default())?,
        }
    })))
}
