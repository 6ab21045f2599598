//! What kubelet mounts into a pod: a token of the pod's own ServiceAccount, asked for with
//! `TokenRequest`, here written as a kubeconfig the pod's binary reads.

use std::path::{Path, PathBuf};
use std::time::Duration;

use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::ServiceAccount;
use kube::Api;
use kube::api::PostParams;
use tokio_util::sync::CancellationToken;

use super::programs::ContainerPlan;
use crate::apiserver::{kubeconfig, write_yaml};

/// How often a token is asked for before the container is given up on (the ServiceAccount
/// may be created just after the pod).
const ATTEMPTS: u32 = 15;
/// Token lifetime, as kubelet's projected tokens (1 h, and the pod's binary is not
/// expected to outlive a test).
const TTL_SECONDS: i64 = 3600;

/// The server URL in the kubeconfig at `path`.
fn server_of(path: &Path) -> Result<String, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read the kubeconfig {}: {e}", path.display()))?;
    let kc: serde_json::Value = serde_yaml::from_str(&text)
        .map_err(|e| format!("cannot parse the kubeconfig {}: {e}", path.display()))?;
    kc["clusters"][0]["cluster"]["server"]
        .as_str()
        .map(String::from)
        .ok_or_else(|| format!("the kubeconfig {} names no server", path.display()))
}

/// Writes a kubeconfig for the pod's ServiceAccount, with a fresh token, next to the admin
/// kubeconfig's server; the error says why there is none.
pub(crate) async fn pod_kubeconfig(
    client: &kube::Client,
    admin: &Path,
    plan: &ContainerPlan,
    log_name: &str,
    stop: &CancellationToken,
) -> Result<PathBuf, String> {
    let server = server_of(admin)?;
    let (ns, sa) = &plan.service_account;
    let api: Api<ServiceAccount> = Api::namespaced(client.clone(), ns);
    let request = TokenRequest {
        spec: Some(TokenRequestSpec {
            expiration_seconds: Some(TTL_SECONDS),
            ..TokenRequestSpec::default()
        }),
        ..TokenRequest::default()
    };
    let mut last = String::new();
    for _ in 0..ATTEMPTS {
        match api
            .create_subresource::<TokenRequest, TokenRequest>(
                "token",
                sa,
                &PostParams::default(),
                &request,
            )
            .await
        {
            Ok(answer) => {
                let Some(token) = answer.status.and_then(|s| s.token) else {
                    last = "the TokenRequest answer has no token".into();
                    continue;
                };
                let user = format!("system:serviceaccount:{ns}:{sa}");
                let path = std::env::temp_dir().join(format!(
                    "weir-pod-{}-{log_name}.kubeconfig",
                    std::process::id()
                ));
                write_yaml(&path, &kubeconfig::for_user(&server, &user, &token, ns))
                    .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
                return Ok(path);
            }
            Err(e) => last = e.to_string(),
        }
        tokio::select! {
            () = stop.cancelled() => break,
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
    Err(format!("no token for ServiceAccount {ns}/{sa}: {last}"))
}
