//! What the server serves: resource definitions for the built-in kinds and for CRDs.

use serde_json::Value;
use std::sync::Arc;

/// The storage identity of a resource: `(group, plural)`; versions share it.
pub type StorageKey = (String, String);

/// Where the scale subresource reads and writes its numbers.
#[derive(Debug, Clone, PartialEq)]
pub struct ScalePaths {
    /// JSONPath of the desired replicas, e.g. `.spec.replicas`.
    pub spec_replicas: String,
    /// JSONPath of the observed replicas.
    pub status_replicas: String,
    /// JSONPath of the label selector string, if any.
    pub label_selector: Option<String>,
}

/// One printer column (CRD `additionalPrinterColumns`).
#[derive(Debug, Clone, PartialEq)]
pub struct PrinterColumn {
    /// Column name.
    pub name: String,
    /// OpenAPI type: string, integer, number, boolean, date.
    pub type_: String,
    /// Optional format.
    pub format: String,
    /// Description.
    pub description: String,
    /// Priority (0 = shown by default).
    pub priority: i64,
    /// Simple JSONPath.
    pub json_path: String,
}

/// Everything the server knows about one group/version/resource.
#[derive(Debug, Clone)]
pub struct ResourceDef {
    /// API group ("" for core).
    pub group: String,
    /// Version.
    pub version: String,
    /// Plural resource name.
    pub plural: String,
    /// Singular name.
    pub singular: String,
    /// Kind.
    pub kind: String,
    /// Whether objects live in namespaces.
    pub namespaced: bool,
    /// Short names.
    pub short_names: Vec<String>,
    /// Categories (e.g. `all`).
    pub categories: Vec<String>,
    /// Has a status subresource.
    pub status: bool,
    /// Has a scale subresource.
    pub scale: Option<ScalePaths>,
    /// Tracks `metadata.generation`.
    pub generation: bool,
    /// The CRD's structural schema, when this is a custom resource.
    pub schema: Option<Arc<Value>>,
    /// Printer columns (CRDs).
    pub printer_columns: Vec<PrinterColumn>,
    /// Where objects are stored.
    pub storage: StorageKey,
    /// Served from a CRD.
    pub custom: bool,
    /// Whether this version is the storage version.
    pub storage_version: bool,
    /// A CRD version's `selectableFields`, as field labels (`spec.color`).
    pub selectable_fields: Vec<String>,
}

// === impl ResourceDef ===

impl ResourceDef {
    /// `group/version`, or `version` for core.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// `plural.group` as used in messages.
    pub fn group_resource(&self) -> String {
        super::error::group_resource(&self.group, &self.plural)
    }

    /// `Kind.group` as used in Invalid messages.
    pub fn kind_group(&self) -> String {
        super::error::kind_group(&self.group, &self.kind)
    }

    /// Whether this is the Event kind in either API.
    pub fn is_event(&self) -> bool {
        self.storage == ("".to_string(), "events".to_string())
    }

    /// Whether objects are converted between the served and the stored shape
    /// (`events.k8s.io` Events are stored as core Events).
    pub fn converts(&self) -> bool {
        self.is_event() && self.group == "events.k8s.io"
    }
}

#[allow(clippy::too_many_arguments)]
fn builtin(
    group: &str,
    version: &str,
    plural: &str,
    kind: &str,
    namespaced: bool,
    short: &[&str],
    status: bool,
    generation: bool,
) -> ResourceDef {
    let all = matches!(plural, "pods" | "services" | "deployments" | "replicasets");
    ResourceDef {
        group: group.into(),
        version: version.into(),
        plural: plural.into(),
        singular: kind.to_lowercase(),
        kind: kind.into(),
        namespaced,
        short_names: short.iter().map(|s| s.to_string()).collect(),
        categories: if all { vec!["all".into()] } else { vec![] },
        status,
        scale: None,
        generation,
        schema: None,
        printer_columns: vec![],
        storage: (group.into(), plural.into()),
        custom: false,
        storage_version: true,
        selectable_fields: vec![],
    }
}

/// The built-in resources the local server serves.
pub fn builtins() -> Vec<Arc<ResourceDef>> {
    let replicas = ScalePaths {
        spec_replicas: ".spec.replicas".into(),
        status_replicas: ".status.replicas".into(),
        label_selector: Some(".status.selector".into()),
    };
    let mut deploy = builtin(
        "apps",
        "v1",
        "deployments",
        "Deployment",
        true,
        &["deploy"],
        true,
        true,
    );
    deploy.scale = Some(replicas.clone());
    let mut rs = builtin(
        "apps",
        "v1",
        "replicasets",
        "ReplicaSet",
        true,
        &["rs"],
        true,
        true,
    );
    rs.scale = Some(replicas);
    let mut ev2 = builtin(
        "events.k8s.io",
        "v1",
        "events",
        "Event",
        true,
        &["ev"],
        false,
        false,
    );
    ev2.storage = ("".into(), "events".into());
    ev2.storage_version = false;
    let defs = vec![
        builtin(
            "",
            "v1",
            "namespaces",
            "Namespace",
            false,
            &["ns"],
            true,
            false,
        ),
        builtin("", "v1", "pods", "Pod", true, &["po"], true, false),
        builtin("", "v1", "services", "Service", true, &["svc"], true, false),
        builtin(
            "",
            "v1",
            "endpoints",
            "Endpoints",
            true,
            &["ep"],
            false,
            false,
        ),
        builtin(
            "",
            "v1",
            "serviceaccounts",
            "ServiceAccount",
            true,
            &["sa"],
            false,
            false,
        ),
        builtin(
            "",
            "v1",
            "configmaps",
            "ConfigMap",
            true,
            &["cm"],
            false,
            false,
        ),
        builtin("", "v1", "secrets", "Secret", true, &[], false, false),
        builtin("", "v1", "events", "Event", true, &["ev"], false, false),
        builtin(
            "discovery.k8s.io",
            "v1",
            "endpointslices",
            "EndpointSlice",
            true,
            &[],
            false,
            false,
        ),
        deploy,
        rs,
        builtin(
            "apps",
            "v1",
            "controllerrevisions",
            "ControllerRevision",
            true,
            &[],
            false,
            false,
        ),
        builtin(
            "coordination.k8s.io",
            "v1",
            "leases",
            "Lease",
            true,
            &[],
            false,
            false,
        ),
        ev2,
        builtin(
            "apiextensions.k8s.io",
            "v1",
            "customresourcedefinitions",
            "CustomResourceDefinition",
            false,
            &["crd", "crds"],
            true,
            true,
        ),
        builtin(
            "apiregistration.k8s.io",
            "v1",
            "apiservices",
            "APIService",
            false,
            &[],
            true,
            false,
        ),
    ];
    let rbac = [
        ("roles", "Role", true),
        ("rolebindings", "RoleBinding", true),
        ("clusterroles", "ClusterRole", false),
        ("clusterrolebindings", "ClusterRoleBinding", false),
    ];
    let rbac = rbac.into_iter().map(|(plural, kind, namespaced)| {
        builtin(
            "rbac.authorization.k8s.io",
            "v1",
            plural,
            kind,
            namespaced,
            &[],
            false,
            false,
        )
    });
    let defs: Vec<ResourceDef> = defs.into_iter().chain(rbac).collect();
    defs.into_iter().map(Arc::new).collect()
}

/// Derives the served resource definitions from a CRD object.
pub fn defs_from_crd(crd: &Value) -> Vec<Arc<ResourceDef>> {
    let spec = &crd["spec"];
    let group = spec["group"].as_str().unwrap_or_default().to_string();
    let names = &spec["names"];
    let plural = names["plural"].as_str().unwrap_or_default().to_string();
    let kind = names["kind"].as_str().unwrap_or_default().to_string();
    if group.is_empty() || plural.is_empty() || kind.is_empty() {
        return vec![];
    }
    let singular = names["singular"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| kind.to_lowercase());
    let strs = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    let namespaced = spec["scope"].as_str() != Some("Cluster");
    let mut out = vec![];
    for ver in spec["versions"].as_array().into_iter().flatten() {
        if ver["served"].as_bool() != Some(true) {
            continue;
        }
        let Some(version) = ver["name"].as_str() else {
            continue;
        };
        let sub = &ver["subresources"];
        let scale = sub
            .get("scale")
            .filter(|s| s.is_object())
            .map(|s| ScalePaths {
                spec_replicas: s["specReplicasPath"]
                    .as_str()
                    .unwrap_or(".spec.replicas")
                    .into(),
                status_replicas: s["statusReplicasPath"]
                    .as_str()
                    .unwrap_or(".status.replicas")
                    .into(),
                label_selector: s["labelSelectorPath"].as_str().map(str::to_string),
            });
        let printer_columns = ver["additionalPrinterColumns"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|c| PrinterColumn {
                name: c["name"].as_str().unwrap_or_default().into(),
                type_: c["type"].as_str().unwrap_or("string").into(),
                format: c["format"].as_str().unwrap_or_default().into(),
                description: c["description"].as_str().unwrap_or_default().into(),
                priority: c["priority"].as_i64().unwrap_or(0),
                json_path: c["jsonPath"].as_str().unwrap_or_default().into(),
            })
            .collect();
        out.push(Arc::new(ResourceDef {
            group: group.clone(),
            version: version.into(),
            plural: plural.clone(),
            singular: singular.clone(),
            kind: kind.clone(),
            namespaced,
            short_names: strs(&names["shortNames"]),
            categories: strs(&names["categories"]),
            status: sub.get("status").is_some_and(Value::is_object),
            scale,
            generation: true,
            schema: ver["schema"].get("openAPIV3Schema").cloned().map(Arc::new),
            printer_columns,
            storage: (group.clone(), plural.clone()),
            custom: true,
            storage_version: ver["storage"].as_bool().unwrap_or(false),
            selectable_fields: ver["selectableFields"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|f| f["jsonPath"].as_str())
                .map(|p| p.trim_start_matches('.').to_string())
                .collect(),
        }));
    }
    out
}

/// Orders API versions the way Kubernetes does: GA > beta > alpha, higher numbers first.
pub fn version_priority(v: &str) -> (u8, u64, u64) {
    let Some(rest) = v.strip_prefix('v') else {
        return (0, 0, 0);
    };
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    let Ok(major) = digits.parse::<u64>() else {
        return (0, 0, 0);
    };
    let tail = &rest[digits.len()..];
    if tail.is_empty() {
        return (3, major, 0);
    }
    let (level, num) = if let Some(n) = tail.strip_prefix("beta") {
        (2, n)
    } else if let Some(n) = tail.strip_prefix("alpha") {
        (1, n)
    } else {
        return (0, 0, 0);
    };
    match num.parse::<u64>() {
        Ok(n) => (level, major, n),
        Err(_) => (0, 0, 0),
    }
}

/// The set of served resources: built-ins plus those derived from CRDs.
#[derive(Debug, Clone)]
pub struct Registry {
    builtins: Vec<Arc<ResourceDef>>,
    crds: std::collections::BTreeMap<String, Vec<Arc<ResourceDef>>>,
}

// === impl Registry ===

impl Default for Registry {
    fn default() -> Self {
        Self {
            builtins: builtins(),
            crds: Default::default(),
        }
    }
}

impl Registry {
    /// Every served definition.
    pub fn all(&self) -> impl Iterator<Item = &Arc<ResourceDef>> {
        self.builtins.iter().chain(self.crds.values().flatten())
    }

    /// Finds the definition for `group/version` + plural.
    pub fn find(&self, group: &str, version: &str, plural: &str) -> Option<Arc<ResourceDef>> {
        self.all()
            .find(|d| d.group == group && d.version == version && d.plural == plural)
            .cloned()
    }

    /// Whether a group/version has any resource.
    pub fn has_group_version(&self, group: &str, version: &str) -> bool {
        self.all().any(|d| d.group == group && d.version == version)
    }

    /// Records (or replaces) the resources of a CRD; returns whether a CRD name conflicts.
    pub fn set_crd(&mut self, crd_name: &str, crd: &Value) {
        self.crds.insert(crd_name.to_string(), defs_from_crd(crd));
    }

    /// Forgets a CRD's resources.
    pub fn remove_crd(&mut self, crd_name: &str) {
        self.crds.remove(crd_name);
    }

    /// Sorted served groups with their versions, preferred first.
    pub fn groups(&self) -> Vec<(String, Vec<String>)> {
        let mut map: std::collections::BTreeMap<String, Vec<String>> = Default::default();
        for d in self.all() {
            let vs = map.entry(d.group.clone()).or_default();
            if !vs.contains(&d.version) {
                vs.push(d.version.clone());
            }
        }
        map.into_iter()
            .map(|(g, mut vs)| {
                vs.sort_by_key(|v| std::cmp::Reverse(version_priority(v)));
                (g, vs)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn versions_sort_like_kubernetes() {
        let mut v = vec!["v1alpha1", "v1", "v2beta1", "v1beta2", "v1alpha3"];
        v.sort_by_key(|v| std::cmp::Reverse(version_priority(v)));
        assert_eq!(v, vec!["v1", "v2beta1", "v1beta2", "v1alpha3", "v1alpha1"]);
    }

    #[test]
    fn crd_defs_cover_served_versions_only() {
        let crd = json!({"spec": {"group": "x.dev", "scope": "Namespaced",
        "names": {"plural": "foos", "kind": "Foo", "shortNames": ["f"]},
        "versions": [
            {"name": "v1", "served": true, "storage": true, "subresources": {"status": {}}},
            {"name": "v0", "served": false, "storage": false}
        ]}});
        let defs = defs_from_crd(&crd);
        assert_eq!(defs.len(), 1);
        assert!(defs[0].status);
        assert_eq!(defs[0].short_names, vec!["f"]);
        assert_eq!(defs[0].singular, "foo");
    }
}
