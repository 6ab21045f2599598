//! The real `kubectl` on PATH against a local cluster's kubeconfig, as a person runs it:
//! a private cache dir, a bounded run time, and what it printed.

use super::cluster::LocalCluster;
use anyhow::{Context as _, Result};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

/// What one kubectl run printed, and whether it exited 0.
#[derive(Debug)]
pub struct Run {
    /// Exit status 0.
    pub ok: bool,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

/// kubectl bound to one kubeconfig.
#[derive(Clone, Debug)]
pub struct Kubectl {
    kubeconfig: PathBuf,
    cache: PathBuf,
    env: Vec<(String, String)>,
}

impl Kubectl {
    /// kubectl with `kubeconfig` and a cache dir beside it.
    pub fn new(kubeconfig: &Path) -> Self {
        Self {
            kubeconfig: kubeconfig.to_path_buf(),
            cache: kubeconfig.with_file_name("kubectl-cache"),
            env: Vec::new(),
        }
    }

    /// The same kubectl with `key=value` in its environment.
    pub fn with_env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Runs `args` for at most `secs` seconds (then kills it) and returns what it printed.
    pub async fn run_for(&self, secs: u64, args: &[&str]) -> Result<Run> {
        let mut cmd = tokio::process::Command::new("kubectl");
        cmd.arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .arg("--cache-dir")
            .arg(&self.cache)
            .args(args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .kill_on_drop(true);
        let out = tokio::time::timeout(Duration::from_secs(secs), cmd.output())
            .await
            .with_context(|| format!("kubectl {args:?} still running after {secs} s"))?
            .context("cannot run kubectl: these tests need kubectl on PATH (scripts/install-deps.sh checks for it)")?;
        Ok(Run {
            ok: out.status.success(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        })
    }

    /// Runs `args` (60 s at most).
    pub async fn run(&self, args: &[&str]) -> Result<Run> {
        self.run_for(60, args).await
    }

    /// Runs `args` and returns stdout; an error with both outputs when it fails.
    pub async fn ok(&self, args: &[&str]) -> Result<String> {
        let r = self.run(args).await?;
        anyhow::ensure!(r.ok, "kubectl {args:?} failed:\n{}\n{}", r.stdout, r.stderr);
        Ok(r.stdout)
    }

    /// The name of the first `kind` object that `kubectl get -l selector` lists.
    pub async fn first_name(&self, kind: &str, selector: &str) -> Result<String> {
        self.ok(&[
            "get",
            kind,
            "-l",
            selector,
            "-o",
            "jsonpath={.items[0].metadata.name}",
        ])
        .await
    }

    /// Runs `args`, which must fail, and returns stderr.
    pub async fn fails(&self, args: &[&str]) -> Result<String> {
        let r = self.run(args).await?;
        anyhow::ensure!(
            !r.ok,
            "kubectl {args:?} should fail but printed:\n{}",
            r.stdout
        );
        Ok(r.stderr)
    }
}

/// A local cluster (API server and simulator) and kubectl on its admin kubeconfig; panics
/// when the cluster cannot start.
pub async fn on_local_cluster() -> (LocalCluster, Kubectl) {
    let c = LocalCluster::start(|_| {})
        .await
        .expect("start a local cluster");
    let k = Kubectl::new(c.server.kubeconfig_path());
    (c, k)
}
