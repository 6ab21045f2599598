//! The kubeconfig the local server writes for its clients.

use serde_json::{Value, json};

/// The bearer token of the admin kubeconfig (a member of `system:masters`).
pub const TOKEN: &str = "weir-local-token";
/// The user name the server reports to aggregated APIs.
pub const USER: &str = "weir-local-admin";
/// The context name.
pub const CONTEXT: &str = "weir-local";

/// Builds a kubeconfig pointing at `server`, with default namespace `default`.
pub fn build(server: &str) -> Value {
    for_user(server, USER, TOKEN, "default")
}

/// Builds a kubeconfig for `user` presenting `token`, with default namespace `namespace`.
pub fn for_user(server: &str, user: &str, token: &str, namespace: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": CONTEXT, "cluster": {"server": server}}],
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [{"name": CONTEXT, "context": {"cluster": CONTEXT, "user": user, "namespace": namespace}}],
        "current-context": CONTEXT,
        "preferences": {},
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubeconfig_parses_with_kube() {
        let yaml = serde_yaml::to_string(&build("http://127.0.0.1:1")).unwrap();
        let kc = kube::config::Kubeconfig::from_yaml(&yaml).unwrap();
        assert_eq!(kc.current_context.as_deref(), Some(CONTEXT));
        assert_eq!(
            kc.clusters[0].cluster.as_ref().unwrap().server.as_deref(),
            Some("http://127.0.0.1:1")
        );
    }
}
