//! Weir e2e: the local control plane, the workload simulator, the demo app, the load
//! generator, and what the demo and the end-to-end tests share.
pub mod apiserver;
pub mod client_pod;
pub mod demo;
pub mod demo_app;
pub mod eventually;
pub mod install;
pub mod loadgen;
pub mod pod_logs;
pub mod prometheus;
pub mod simulator;

/// Waits for Ctrl-C or SIGTERM (Ctrl-C alone when SIGTERM cannot be watched).
pub async fn terminated() {
    let ctrl_c = tokio::signal::ctrl_c();
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = ctrl_c => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = ctrl_c.await;
        }
    }
}
