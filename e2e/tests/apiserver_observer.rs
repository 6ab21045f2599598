//! The local API server's request observer (what `operator_bench` counts the operator's
//! requests with), and its RBAC policy, compiled once per change of the RBAC objects: a
//! grant or a revocation applies to the very next request.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers outside #[test] fns

#[path = "support/apiserver.rs"]
mod support;

use anyhow::{Context as _, Result, bail};
use k8s_openapi::api::core::v1::{Pod, ServiceAccount};
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use parking_lot::Mutex;
use serde_json::json;
use std::sync::Arc;
use weir_e2e::apiserver::Options;
use weir_e2e::apiserver::server::{ObservedRequest, RequestObserver};

const SA_USER: &str = "system:serviceaccount:default:reader";

/// (method, path with query, user, status) of each request seen.
type Seen = Arc<Mutex<Vec<(String, String, String, u16)>>>;

/// A server whose observer notes every request, an admin client, and a client that is the
/// ServiceAccount `default/reader` (which no role names yet).
async fn server_with_reader() -> Result<(
    weir_e2e::apiserver::Handle,
    kube::Client,
    kube::Client,
    Seen,
)> {
    let seen: Seen = Arc::default();
    let noted = seen.clone();
    let (server, admin) = support::start_with(Options {
        observer: Some(RequestObserver(Arc::new(move |r: &ObservedRequest<'_>| {
            noted.lock().push((
                r.method.to_string(),
                r.path_and_query.to_string(),
                r.user.to_string(),
                r.status.as_u16(),
            ));
        }))),
        ..Options::default()
    })
    .await;
    let sa: ServiceAccount = serde_json::from_value(json!({"metadata": {"name": "reader"}}))?;
    Api::<ServiceAccount>::namespaced(admin.clone(), "default")
        .create(&PostParams::default(), &sa)
        .await?;
    let path = server
        .kubeconfig_path()
        .with_file_name(format!("reader-{}.kubeconfig", std::process::id()));
    server.service_account_kubeconfig("default", "reader", &path)?;
    let reader = support::client_from(&path).await?;
    Ok((server, admin, reader, seen))
}

/// The status code of a LIST of Pods in `default` by `client`.
async fn list_pods(client: &kube::Client) -> Result<u16> {
    match Api::<Pod>::namespaced(client.clone(), "default")
        .list(&ListParams::default())
        .await
    {
        Ok(_) => Ok(200),
        Err(kube::Error::Api(status)) => Ok(status.code),
        Err(e) => bail!("not an API answer: {e}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_observer_sees_each_request_with_its_user_and_status() -> Result<()> {
    let (_server, _admin, reader, seen) = server_with_reader().await?;
    let before = seen.lock().len();
    assert_eq!(list_pods(&reader).await?, 403);
    let seen = seen.lock().clone();
    let new = &seen[before..];
    println!("{new:?}");
    let (method, path, user, status) = new
        .iter()
        .find(|(_, path, _, _)| path.starts_with("/api/v1/namespaces/default/pods"))
        .context("the observer did not see the LIST of pods")?;
    assert_eq!(
        (method.as_str(), user.as_str(), *status),
        ("GET", SA_USER, 403)
    );
    assert!(path.contains('?') || path.ends_with("/pods"), "{path}");
    // The admin's own requests (the ServiceAccount's creation) carry another user.
    assert!(
        seen[..before]
            .iter()
            .any(|(method, path, user, status)| method == "POST"
                && path.contains("/serviceaccounts")
                && !user.is_empty()
                && user != SA_USER
                && *status == 201),
        "{:?}",
        &seen[..before]
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_rbac_grant_and_its_revocation_apply_to_the_next_request() -> Result<()> {
    let (_server, admin, reader, _seen) = server_with_reader().await?;
    assert_eq!(list_pods(&reader).await?, 403, "before any grant");
    let role: Role = serde_json::from_value(json!({
        "metadata": {"name": "pod-reader"},
        "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]}],
    }))?;
    Api::<Role>::namespaced(admin.clone(), "default")
        .create(&PostParams::default(), &role)
        .await?;
    // A Role alone grants nothing: the compiled policy must not be taken as settled by it.
    assert_eq!(list_pods(&reader).await?, 403, "a Role without a binding");
    let binding: RoleBinding = serde_json::from_value(json!({
        "metadata": {"name": "reader-reads-pods"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "pod-reader"},
        "subjects": [{"kind": "ServiceAccount", "name": "reader", "namespace": "default"}],
    }))?;
    let bindings = Api::<RoleBinding>::namespaced(admin.clone(), "default");
    bindings.create(&PostParams::default(), &binding).await?;
    assert_eq!(list_pods(&reader).await?, 200, "right after the binding");
    bindings
        .delete("reader-reads-pods", &DeleteParams::default())
        .await?;
    assert_eq!(list_pods(&reader).await?, 403, "right after the revocation");
    Ok(())
}
