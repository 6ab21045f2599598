//! The plugin tests' world: a local control plane whose simulator runs the real
//! `weir-operator` as a Pod, and the real `kubectl` finding the built `kubectl-weir` first on
//! PATH. Every child process is bounded in time.

use crate::support::binaries::workspace_binary;
use crate::support::eventually;
use crate::support::operator::{Cluster, start};
use anyhow::{Context as _, Result, bail, ensure};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, PostParams};
use std::ffi::OsString;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncReadExt;
use tokio::process::{Child, Command};
use weir_crds::Rollout;
use weir_crds::RolloutStatus;

/// How long one kubectl run may take.
const RUN_LIMIT: Duration = Duration::from_secs(60);
/// How long the tests wait for a state of the Rollout.
const STATE_LIMIT: u64 = 90;

/// One finished kubectl run.
#[derive(Debug)]
pub struct Run {
    /// The exit code (-1 when killed by a signal).
    pub code: i32,
    /// Its standard output.
    pub stdout: String,
    /// Its standard error.
    pub stderr: String,
}

impl Run {
    /// The output of a run that succeeded; an error showing everything otherwise.
    pub fn ok(self) -> Result<String> {
        if self.code != 0 {
            bail!("exit {}:\n{}\n{}", self.code, self.stdout, self.stderr);
        }
        Ok(self.stdout)
    }
}

/// The cluster, the operator Pod, and how to run kubectl against them.
pub struct Env {
    /// The local control plane (and its client).
    pub cluster: Cluster,
    /// The admin kubeconfig of the local control plane.
    pub kubeconfig: PathBuf,
    path: OsString,
    cache: PathBuf,
}

const OPERATOR: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: weir-operator, namespace: weir-system}
spec:
  replicas: 1
  selector: {matchLabels: {app: weir-operator}}
  template:
    metadata: {labels: {app: weir-operator}}
    spec:
      serviceAccountName: weir-operator
      containers:
      - name: operator
        image: weir-operator:VERSION
        args: [--no-gateway, --lease-seconds, "3", --metrics-addr, "$(POD_IP):8081", --metrics-api-addr, "$(POD_IP):8443"]
"#;

/// A Rollout `name` at `weir-demo:v1`: 2 replicas, steps setWeight 20, pause, setWeight 60,
/// pause; no analysis (the plugin, not the analysis, is under test).
pub fn rollout_yaml(name: &str) -> Rollout {
    serde_yaml::from_str(&format!(
        r#"
apiVersion: weir.dev/v1alpha1
kind: Rollout
metadata: {{name: {name}, namespace: default}}
spec:
  replicas: 2
  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata: {{labels: {{app: {name}}}}}
    spec: {{containers: [{{name: app, image: "weir-demo:v1", ports: [{{containerPort: 8080}}]}}]}}
  scaleDownDelay: 1s
  strategy:
    steps:
    - setWeight: 20
    - pause: {{}}
    - setWeight: 60
    - pause: {{}}
"#
    ))
    .expect("the test Rollout parses")
}

impl Env {
    /// A cluster on loopback blocks of its own, with the operator running as a Pod in
    /// `weir-system`.
    pub async fn start() -> Result<Self> {
        let plugin = workspace_binary("kubectl-weir")?;
        workspace_binary("weir-operator")?;
        let kubectl = Command::new("kubectl")
            .args(["version", "--client"])
            .output()
            .await;
        ensure!(
            kubectl.is_ok_and(|o| o.status.success()),
            "these tests run the real kubectl, and `kubectl version --client` failed: install kubectl"
        );
        let cluster = start(None).await?;
        let kubeconfig = cluster.server.kubeconfig_path().to_path_buf();
        let namespaces: Api<Namespace> = Api::all(cluster.client.clone());
        let ns: Namespace =
            serde_json::from_value(serde_json::json!({"metadata": {"name": "weir-system"}}))?;
        // `start` installed config/rbac, which creates it.
        let _ = namespaces.create(&PostParams::default(), &ns).await;
        let operator: Deployment =
            serde_yaml::from_str(&OPERATOR.replace("VERSION", env!("CARGO_PKG_VERSION")))?;
        Api::<Deployment>::namespaced(cluster.client.clone(), "weir-system")
            .create(&PostParams::default(), &operator)
            .await?;
        let leases: Api<Lease> = Api::namespaced(cluster.client.clone(), "weir-system");
        eventually(60, "the operator Pod to take its Lease", || async {
            leases
                .get("weir-operator")
                .await
                .ok()?
                .spec?
                .holder_identity
        })
        .await?;
        let dir = plugin.parent().context("kubectl-weir has no directory")?;
        let mut path = OsString::from(dir);
        path.push(":");
        path.push(std::env::var_os("PATH").unwrap_or_default());
        let cache = kubeconfig.with_file_name("kubectl-cache");
        Ok(Self {
            cluster,
            kubeconfig,
            path,
            cache,
        })
    }

    /// The API of `K` in namespace `default`.
    pub fn api<K>(&self) -> Api<K>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>,
        <K as kube::Resource>::DynamicType: Default,
    {
        Api::namespaced(self.cluster.client.clone(), "default")
    }

    fn command(&self, args: &[&str], env: &[(&str, &str)]) -> Command {
        let mut cmd = Command::new("kubectl");
        cmd.args(args)
            .env("PATH", &self.path)
            .env("KUBECONFIG", &self.kubeconfig)
            .env("KUBECACHEDIR", &self.cache)
            .env_remove("NO_COLOR")
            .kill_on_drop(true);
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd
    }

    async fn run(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let output = tokio::time::timeout(RUN_LIMIT, self.command(args, env).output()).await;
        match output {
            Ok(Ok(o)) => Run {
                code: o.status.code().unwrap_or(-1),
                stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
                stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
            },
            Ok(Err(e)) => Run {
                code: -1,
                stdout: String::new(),
                stderr: format!("kubectl {args:?} did not start: {e}"),
            },
            Err(_) => Run {
                code: -1,
                stdout: String::new(),
                stderr: format!("kubectl {args:?} ran past {RUN_LIMIT:?}"),
            },
        }
    }

    /// `kubectl weir <args>`.
    pub async fn weir(&self, args: &[&str]) -> Run {
        self.weir_with_env(args, &[]).await
    }

    /// `kubectl weir <args>` with extra environment.
    pub async fn weir_with_env(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let all: Vec<&str> = std::iter::once("weir")
            .chain(args.iter().copied())
            .collect();
        self.run(&all, env).await
    }

    /// `kubectl <args>`.
    pub async fn kubectl(&self, args: &[&str]) -> Run {
        self.run(args, &[]).await
    }

    /// Starts `kubectl weir <args>` with its output piped, for watches.
    pub fn spawn_weir(&self, args: &[&str]) -> Result<Watch> {
        let all: Vec<&str> = std::iter::once("weir")
            .chain(args.iter().copied())
            .collect();
        let mut child = self
            .command(&all, &[])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        let mut stdout = child.stdout.take().context("no stdout")?;
        let output = Arc::new(tokio::sync::Mutex::new(String::new()));
        let sink = output.clone();
        tokio::spawn(async move {
            let mut buf = [0u8; 4096];
            while let Ok(n) = stdout.read(&mut buf).await {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .await
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        Ok(Watch {
            _child: child,
            output,
        })
    }

    /// Waits until the Rollout `foobar`'s status satisfies `pred`; returns that status.
    pub async fn wait(
        &self,
        rollouts: &Api<Rollout>,
        what: &str,
        pred: impl Fn(&RolloutStatus) -> bool,
    ) -> Result<RolloutStatus> {
        let pred = &pred;
        let found = eventually(STATE_LIMIT, what, || async move {
            let status = rollouts.get("foobar").await.ok()?.status?;
            pred(&status).then_some(status)
        })
        .await;
        match found {
            Ok(status) => Ok(status),
            Err(e) => {
                let last = rollouts.get("foobar").await.ok().and_then(|r| r.status);
                Err(e.context(format!("the last status seen: {last:#?}")))
            }
        }
    }
}

/// A running `kubectl weir … -w` and everything it printed so far; killed on drop.
pub struct Watch {
    _child: Child,
    output: Arc<tokio::sync::Mutex<String>>,
}

impl Watch {
    /// Waits until the output satisfies `pred`; returns it.
    pub async fn read_until(&mut self, what: &str, pred: impl Fn(&str) -> bool) -> Result<String> {
        let output = self.output.clone();
        let pred = &pred;
        let found = eventually(STATE_LIMIT, what, || {
            let output = output.clone();
            async move {
                let text = output.lock().await.clone();
                pred(&text).then_some(text)
            }
        })
        .await;
        match found {
            Ok(text) => Ok(text),
            Err(e) => {
                let printed = self.output.lock().await.clone();
                Err(e.context(format!("the watch printed:\n{printed}")))
            }
        }
    }
}
