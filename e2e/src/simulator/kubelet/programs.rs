//! What a container runs, decided from its image, env and args (pure).
//!
//! | image            | runs                          |
//! |------------------|-------------------------------|
//! | `weir-demo:*`    | the demo app, in-process      |
//! | `weir-proxy:*`   | the `weir-proxy` binary       |
//! | `weir-operator:*`| the `weir-operator` binary    |
//! | anything else    | nothing: `ErrImagePull`, then `ImagePullBackOff` |

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::{Container, Pod};

use crate::demo_app::DemoConfig;

/// Port a container listens on when it declares none.
pub const DEFAULT_PORT: u16 = 8080;

/// The program behind one container.
#[derive(Clone, Debug, PartialEq)]
pub enum Program {
    /// The in-process demo app.
    Demo(DemoConfig),
    /// A real binary, found by name in the binary directories.
    Binary {
        /// `weir-proxy` or `weir-operator`.
        name: &'static str,
        /// Its arguments, `$(VAR)` expanded.
        args: Vec<String>,
    },
    /// Nothing can run it: the container waits with this reason.
    Unavailable {
        /// A `ContainerStateWaiting` reason, e.g. `ErrImagePull`.
        reason: &'static str,
        /// Why, for the status and the Event.
        message: String,
    },
}

/// Everything needed to start one container.
#[derive(Clone, Debug, PartialEq)]
pub struct ContainerPlan {
    /// The container's name.
    pub name: String,
    /// Its image.
    pub image: String,
    /// The port it serves and is probed on, if any.
    pub port: Option<u16>,
    /// Its resolved env, including `POD_IP`, `POD_NAME`, `POD_NAMESPACE`.
    pub env: BTreeMap<String, String>,
    /// What runs.
    pub program: Program,
    /// The pod's (namespace, ServiceAccount): whose token a binary presents.
    pub service_account: (String, String),
}

/// The repository part of an image (`reg:5000/weir-demo:v1` → `weir-demo`).
pub fn image_repo(image: &str) -> &str {
    let image = image.split('@').next().unwrap_or(image);
    let last = image.rsplit('/').next().unwrap_or(image);
    last.split(':').next().unwrap_or(last)
}

/// Expands `$(VAR)` references from `env` as kubelet does; `$$` escapes a
/// `$`, and unknown references stay as written.
pub fn expand(s: &str, env: &BTreeMap<String, String>) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some((name, tail)) = after.strip_prefix('(').and_then(|a| a.split_once(')')) {
            match env.get(name) {
                Some(v) => out.push_str(v),
                None => {
                    out.push_str("$(");
                    out.push_str(name);
                    out.push(')');
                }
            }
            rest = tail;
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

fn field_ref(pod: &Pod, pod_ip: Ipv4Addr, path: &str) -> Option<String> {
    let spec = pod.spec.as_ref();
    match path {
        "metadata.name" => pod.metadata.name.clone(),
        "metadata.namespace" => pod.metadata.namespace.clone(),
        "metadata.uid" => pod.metadata.uid.clone(),
        "status.podIP" => Some(pod_ip.to_string()),
        "status.hostIP" => Some(Ipv4Addr::LOCALHOST.to_string()),
        "spec.nodeName" => spec.and_then(|s| s.node_name.clone()),
        "spec.serviceAccountName" => spec.and_then(|s| s.service_account_name.clone()),
        _ => {
            let key = path.strip_prefix("metadata.labels['")?.strip_suffix("']")?;
            pod.metadata.labels.as_ref()?.get(key).cloned()
        }
    }
}

/// The container's env: literal values and `fieldRef`s (others are
/// skipped), then `POD_IP`, `POD_NAME` and `POD_NAMESPACE` unless set.
pub fn resolve_env(pod: &Pod, c: &Container, pod_ip: Ipv4Addr) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    for var in c.env.iter().flatten() {
        let value = match (&var.value, &var.value_from) {
            (Some(v), _) => Some(expand(v, &env)),
            (None, Some(from)) => from
                .field_ref
                .as_ref()
                .and_then(|f| field_ref(pod, pod_ip, &f.field_path)),
            (None, None) => Some(String::new()),
        };
        if let Some(value) = value {
            env.insert(var.name.clone(), value);
        }
    }
    let defaults = [
        ("POD_IP", Some(pod_ip.to_string())),
        ("POD_NAME", pod.metadata.name.clone()),
        ("POD_NAMESPACE", pod.metadata.namespace.clone()),
    ];
    for (k, v) in defaults {
        if let Some(v) = v {
            env.entry(k.to_string()).or_insert(v);
        }
    }
    env
}

/// The first declared container port, or [`DEFAULT_PORT`] for the demo app.
fn container_port(c: &Container) -> Option<u16> {
    let first = c.ports.iter().flatten().next();
    first.and_then(|p| u16::try_from(p.container_port).ok())
}

/// Decides what a container runs.
pub fn plan_container(pod: &Pod, c: &Container, pod_ip: Ipv4Addr) -> ContainerPlan {
    let image = c.image.clone().unwrap_or_default();
    let env = resolve_env(pod, c, pod_ip);
    let mut port = container_port(c);
    let program = match image_repo(&image) {
        "weir-demo" => {
            port = port.or(Some(DEFAULT_PORT));
            match DemoConfig::from_image_env(&image, &env) {
                Ok(cfg) => Program::Demo(cfg),
                Err(e) => Program::Unavailable {
                    reason: "CreateContainerConfigError",
                    message: e.to_string(),
                },
            }
        }
        repo @ ("weir-proxy" | "weir-operator") => {
            let name = if repo == "weir-proxy" {
                "weir-proxy"
            } else {
                "weir-operator"
            };
            // A `command` names the entrypoint; what follows it are arguments.
            let args = c
                .command
                .iter()
                .flatten()
                .skip(1)
                .chain(c.args.iter().flatten())
                .map(|a| expand(a, &env))
                .collect();
            Program::Binary { name, args }
        }
        _ => Program::Unavailable {
            // What kubelet reports for an image it cannot pull.
            reason: "ErrImagePull",
            message: format!(
                "image {image:?} is not simulated: only weir-demo:*, weir-proxy:* and weir-operator:* run"
            ),
        },
    };
    let service_account = (
        pod.metadata.namespace.clone().unwrap_or_default(),
        pod.spec
            .as_ref()
            .and_then(|s| s.service_account_name.clone())
            .unwrap_or_else(|| "default".into()),
    );
    ContainerPlan {
        name: c.name.clone(),
        image,
        port,
        env,
        program,
        service_account,
    }
}

/// Directories to look for binaries in when none are configured:
/// `WEIR_BIN_DIR` (colon-separated), the current executable's directory and
/// its parent (tests live in `target/debug/deps`), then `target/debug`.
pub fn default_bin_dirs(env_value: Option<&str>, current_exe: Option<&Path>) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = env_value
        .into_iter()
        .flat_map(|v| v.split(':'))
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .collect();
    if let Some(dir) = current_exe.and_then(Path::parent) {
        dirs.push(dir.to_path_buf());
        if let Some(parent) = dir.parent() {
            dirs.push(parent.to_path_buf());
        }
    }
    dirs.push(PathBuf::from("target/debug"));
    dirs
}

/// The first `dir/name` that is a file.
pub fn find_binary(name: &str, dirs: &[PathBuf]) -> Option<PathBuf> {
    dirs.iter().map(|d| d.join(name)).find(|p| p.is_file())
}

#[cfg(test)]
mod tests;
