//! What a fresh cluster has before anyone writes: the four system namespaces, and in every
//! namespace what its controllers add (the `default` ServiceAccount and the
//! `kube-root-ca.crt` ConfigMap), plus the `default/kubernetes` Service that points at the
//! API server itself.

use super::State;
use super::admission::stamp_new;
use super::defaulting::{self, service};
use super::resources::builtins;
use serde_json::{Value, json};

fn put_new(st: &mut State, group: &str, plural: &str, ns: &str, mut obj: Value) {
    let key = (group.to_string(), plural.to_string());
    let name = obj["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    if st.store.get(&key, ns, &name).is_some() {
        return;
    }
    if let Some(def) = builtins()
        .into_iter()
        .find(|d| d.group == group && d.plural == plural)
    {
        defaulting::apply(&def, &mut obj);
    }
    stamp_new(&mut obj, false);
    st.store.put(&key, ns, &name, obj);
}

/// Seeds the system namespaces (with their content) and the `kubernetes` Service, which
/// reaches the server on `port`.
pub fn cluster(st: &mut State, port: u16) {
    for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        put_new(
            st,
            "",
            "namespaces",
            "",
            json!({"apiVersion": "v1", "kind": "Namespace",
                "metadata": {"name": ns},
                "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}}),
        );
        namespace_content(st, ns);
    }
    for role in super::auth::bootstrap::cluster_roles() {
        put_new(st, super::auth::RBAC_GROUP, "clusterroles", "", role);
    }
    for binding in super::auth::bootstrap::cluster_role_bindings() {
        put_new(
            st,
            super::auth::RBAC_GROUP,
            "clusterrolebindings",
            "",
            binding,
        );
    }
    for (ns, role) in super::auth::bootstrap::roles() {
        put_new(st, super::auth::RBAC_GROUP, "roles", ns, role);
    }
    let labels = json!({"component": "apiserver", "provider": "kubernetes"});
    let mut svc = json!({"apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "kubernetes", "namespace": "default", "labels": labels},
        "spec": {"type": "ClusterIP", "sessionAffinity": "None",
                 "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": port}]}});
    service::allocate(st, &mut svc, None);
    put_new(st, "", "services", "default", svc);
    put_new(
        st,
        "",
        "endpoints",
        "default",
        json!({"apiVersion": "v1", "kind": "Endpoints",
            "metadata": {"name": "kubernetes", "namespace": "default",
                         "labels": {"endpointslice.kubernetes.io/skip-mirror": "true"}},
            "subsets": [{"addresses": [{"ip": "127.0.0.1"}],
                         "ports": [{"name": "https", "port": port, "protocol": "TCP"}]}]}),
    );
    put_new(
        st,
        "discovery.k8s.io",
        "endpointslices",
        "default",
        json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": "kubernetes", "namespace": "default",
                         "labels": {"kubernetes.io/service-name": "kubernetes"}},
            "addressType": "IPv4",
            "endpoints": [{"addresses": ["127.0.0.1"], "conditions": {"ready": true}}],
            "ports": [{"name": "https", "port": port, "protocol": "TCP"}]}),
    );
}

/// What the service-account and root-CA-publisher controllers put into a new namespace.
///
/// `ca.crt` is empty: the local server speaks plain HTTP, so there is no CA to publish.
pub fn namespace_content(st: &mut State, ns: &str) {
    put_new(
        st,
        "",
        "serviceaccounts",
        ns,
        json!({"apiVersion": "v1", "kind": "ServiceAccount",
            "metadata": {"name": "default", "namespace": ns}}),
    );
    put_new(
        st,
        "",
        "configmaps",
        ns,
        json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "kube-root-ca.crt", "namespace": ns,
                         "annotations": {"kubernetes.io/description": "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across distributions of Kubernetes clusters."}},
            "data": {"ca.crt": ""}}),
    );
}
