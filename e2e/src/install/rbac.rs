//! The identities and roles of `config/rbac`, created as the install creates them.

use anyhow::{Context as _, Result};
use kube::Client;
use kube::api::{Api, DynamicObject, PostParams};

/// The plural of each kind `config/rbac` holds.
fn rbac_plural(kind: &str) -> Option<&'static str> {
    Some(match kind {
        "ServiceAccount" => "serviceaccounts",
        "Role" => "roles",
        "RoleBinding" => "rolebindings",
        "ClusterRole" => "clusterroles",
        "ClusterRoleBinding" => "clusterrolebindings",
        _ => return None,
    })
}

/// Every object of `config/rbac` (the files its kustomization lists), in order.
pub fn rbac_objects() -> Result<Vec<serde_json::Value>> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../config/rbac");
    let kustomization: serde_json::Value = serde_yaml::from_str(&std::fs::read_to_string(
        format!("{dir}/kustomization.yaml"),
    )?)?;
    let mut out = Vec::new();
    for file in kustomization["resources"]
        .as_array()
        .context("no resources")?
    {
        let path = format!(
            "{dir}/{}",
            file.as_str().context("a resource is not a path")?
        );
        let text = std::fs::read_to_string(&path).with_context(|| path.clone())?;
        for doc in serde_yaml::Deserializer::from_str(&text) {
            let v: serde_json::Value =
                serde::Deserialize::deserialize(doc).with_context(|| path.clone())?;
            if !v.is_null() {
                out.push(v);
            }
        }
    }
    Ok(out)
}

/// Creates namespace `weir-system` and every object of `config/rbac`: the identities and
/// roles the operator and the gateway run under.
pub async fn install_rbac(client: &Client) -> Result<()> {
    use kube::discovery::ApiResource;
    let ns: k8s_openapi::api::core::v1::Namespace =
        serde_json::from_value(serde_json::json!({"metadata": {"name": "weir-system"}}))?;
    match Api::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await
    {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 409 => {}
        Err(e) => return Err(e).context("create namespace weir-system"),
    }
    for v in rbac_objects()? {
        let obj: DynamicObject = serde_json::from_value(v.clone())?;
        let types = obj
            .types
            .clone()
            .context("an object without apiVersion/kind")?;
        let plural = rbac_plural(&types.kind)
            .with_context(|| format!("config/rbac holds a {}", types.kind))?;
        let (group, version) = match types.api_version.split_once('/') {
            Some((g, v)) => (g.to_string(), v.to_string()),
            None => (String::new(), types.api_version.clone()),
        };
        let ar = ApiResource {
            group,
            version,
            api_version: types.api_version.clone(),
            kind: types.kind.clone(),
            plural: plural.into(),
        };
        let api: Api<DynamicObject> = match obj.metadata.namespace.as_deref() {
            Some(ns) => Api::namespaced_with(client.clone(), ns, &ar),
            None => Api::all_with(client.clone(), &ar),
        };
        api.create(&PostParams::default(), &obj)
            .await
            .with_context(|| format!("create {} {:?}", types.kind, obj.metadata.name))?;
    }
    Ok(())
}
