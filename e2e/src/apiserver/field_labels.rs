//! The field labels each kind accepts in a field selector, as upstream registers them
//! (`AddFieldLabelConversionFunc` in `pkg/apis/*/v1/conversion.go`, 1.32): `metadata.name` and
//! `metadata.namespace` everywhere, plus a few per kind. Anything else is a 400
//! `field label not supported: <label>`, for lists and watches alike.

use super::resources::ResourceDef;

const META: &[&str] = &["metadata.name", "metadata.namespace"];

const POD: &[&str] = &[
    "spec.nodeName",
    "spec.restartPolicy",
    "spec.schedulerName",
    "spec.serviceAccountName",
    "spec.hostNetwork",
    "status.phase",
    "status.podIP",
    "status.podIPs",
    "status.nominatedNodeName",
];

const CORE_EVENT: &[&str] = &[
    "involvedObject.kind",
    "involvedObject.namespace",
    "involvedObject.name",
    "involvedObject.uid",
    "involvedObject.apiVersion",
    "involvedObject.resourceVersion",
    "involvedObject.fieldPath",
    "reason",
    "reportingComponent",
    "source",
    "type",
];

const EVENTS_V1: &[&str] = &[
    "regarding.kind",
    "regarding.namespace",
    "regarding.name",
    "regarding.uid",
    "regarding.apiVersion",
    "regarding.resourceVersion",
    "regarding.fieldPath",
    "reason",
    "reportingController",
    "type",
];

/// The object path a supported field label reads, or the real server's error.
pub fn resolve(def: &ResourceDef, label: &str) -> Result<String, String> {
    let extra: &[&str] = match (def.group.as_str(), def.kind.as_str()) {
        ("", "Pod") => POD,
        ("", "Event") => CORE_EVENT,
        ("events.k8s.io", "Event") => EVENTS_V1,
        ("", "Secret") => &["type"],
        ("", "Service") => &["spec.clusterIP", "spec.type"],
        ("apps", "ReplicaSet") => &["status.replicas"],
        _ => &[],
    };
    let namespace = def.group.is_empty() && def.kind == "Namespace";
    let ok = if namespace {
        matches!(label, "metadata.name" | "status.phase")
    } else {
        META.contains(&label)
            || extra.contains(&label)
            || def.selectable_fields.iter().any(|f| f == label)
    };
    match label {
        _ if !ok && def.group.is_empty() && def.kind == "Pod" && label == "spec.host" => {
            Ok("spec.nodeName".into())
        }
        _ if !ok => Err(format!("field label not supported: {label}")),
        "source" => Ok("source.component".into()),
        _ => Ok(label.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apiserver::resources::builtins;

    fn def(group: &str, kind: &str) -> ResourceDef {
        (*builtins()
            .into_iter()
            .find(|d| d.group == group && d.kind == kind)
            .unwrap())
        .clone()
    }

    #[test]
    fn each_kind_has_its_own_labels() {
        let pod = def("", "Pod");
        assert_eq!(resolve(&pod, "status.phase").unwrap(), "status.phase");
        assert_eq!(resolve(&pod, "spec.host").unwrap(), "spec.nodeName");
        assert_eq!(
            resolve(&pod, "metadata.labels").unwrap_err(),
            "field label not supported: metadata.labels"
        );
        let cm = def("", "ConfigMap");
        assert!(resolve(&cm, "metadata.namespace").is_ok());
        assert!(resolve(&cm, "data.k").is_err());
        let ns = def("", "Namespace");
        assert!(resolve(&ns, "status.phase").is_ok());
        assert!(resolve(&ns, "metadata.namespace").is_err());
        assert_eq!(
            resolve(&def("", "Event"), "source").unwrap(),
            "source.component"
        );
        assert!(resolve(&def("events.k8s.io", "Event"), "involvedObject.name").is_err());
        assert!(resolve(&def("events.k8s.io", "Event"), "regarding.name").is_ok());
    }
}
