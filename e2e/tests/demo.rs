//! The README's demo, end to end: `weir-demo` runs the whole story (local control plane,
//! the real operator and gateway, v1 → healthy v2 → v3 failing 20%) and must exit 0, which
//! it does only when v2 was promoted and v3 rolled back; its output must show both Events.
//! It runs with `--metrics-source prometheus`: the demo starts the installed Prometheus
//! (the test fails when it is missing), and the analysis must have read from it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/lib.rs"]
mod support;

use anyhow::{Context as _, Result};
use std::process::Stdio;
use std::time::Duration;
use support::binaries::binaries_dir;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_promotes_v2_and_rolls_back_v3_reading_prometheus() -> Result<()> {
    let bin_dir = binaries_dir(&["weir-operator", "weir-proxy", "kubectl-weir"])?;
    anyhow::ensure!(
        weir_e2e::prometheus::installed(),
        "prometheus is not installed: {}",
        weir_e2e::prometheus::INSTALL
    );
    let dir = std::env::temp_dir().join(format!("weir-demo-test-{}", std::process::id()));
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_weir-demo"))
        .arg("--dir")
        .arg(&dir)
        .args(["--metrics-source", "prometheus"])
        .env("WEIR_BIN_DIR", &bin_dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .context("start weir-demo")?;
    let out = tokio::time::timeout(Duration::from_secs(180), child.wait_with_output())
        .await
        .context("weir-demo ran longer than 180 s")??;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}\n{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
    assert!(out.status.success(), "weir-demo exited {}", out.status);
    for seen in [
        "EVENT Normal  Promoted         Promoted foobar-v2",
        "EVENT Warning RolledBack       Rolled back: success rate",
        "Canary weight 20 → 50",
        "Canary weight 50 → 80",
        "v2 ended: Promoted(2)",
        "v3 ended: RolledBack { stable: 2",
        "The story happened",
        "metrics source: Prometheus at http://",
        "Prometheus up at http://",
        "the analysis read its figures from Prometheus http://",
        "metrics source Prometheus)",
    ] {
        assert!(stdout.contains(seen), "no {seen:?} in the demo's output");
    }
    Ok(())
}
