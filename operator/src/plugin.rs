//! `kubectl weir`: the plugin that watches and steers Rollouts.
//!
//! ```text
//!  cli (clap) ─► run ─► cluster (kube I/O) ─► Inputs ─► View::build ─► render::get / list / -o json
//!                  └──► commands::decide (pure) ─► Write ─► cluster.write (merge or JSON patch)
//! ```
//!
//! Decisions and rendering are pure and tested on fixtures; [`cluster`] is the only part that
//! talks to the API server. Steering goes through the controller's status protocol (see
//! [`commands`]), and every command is idempotent.

pub mod cli;
pub mod cluster;
pub mod commands;
pub mod list;
pub mod render;
mod run;
pub mod view;
pub mod watch;

pub use run::run;

use commands::CommandError;

/// How the plugin ends, as a process exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// 0: done; for `status`, the rollout is Healthy.
    Ok,
    /// 1: an error; for `status`, the rollout is Degraded or Aborted.
    Failed,
    /// 2: `status` ran out of time before Healthy, Degraded or Aborted.
    Timeout,
}

/// What went wrong, in words a person can act on.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The kubeconfig (or in-cluster configuration) could not be loaded.
    #[error("cannot load the cluster configuration: {0}")]
    Kubeconfig(String),
    /// The API server did not answer.
    #[error("cannot reach the cluster at {url}: {detail}")]
    Unreachable {
        /// The API server's URL.
        url: String,
        /// The connection error.
        detail: String,
    },
    /// The object does not exist.
    #[error("{resource} {name:?} not found in namespace {namespace:?}")]
    NotFound {
        /// The resource, such as `rollouts.weir.dev`.
        resource: String,
        /// The name asked for.
        name: String,
        /// The namespace.
        namespace: String,
    },
    /// RBAC denied the call.
    #[error("forbidden: cannot {verb} {resource} in namespace {namespace:?}: {message}")]
    Forbidden {
        /// The verb denied.
        verb: String,
        /// The resource.
        resource: String,
        /// The namespace.
        namespace: String,
        /// The API server's message.
        message: String,
    },
    /// Any other API error.
    #[error("{verb} {resource} failed: {message}")]
    Api {
        /// The verb.
        verb: String,
        /// The resource.
        resource: String,
        /// What the server or client said.
        message: String,
    },
    /// The command cannot be carried out.
    #[error(transparent)]
    Command(#[from] CommandError),
    /// The output could not be written or encoded.
    #[error("cannot write the output: {0}")]
    Output(String),
}

// === impl Exit ===

impl Exit {
    /// The process exit code.
    pub fn code(self) -> u8 {
        match self {
            Self::Ok => 0,
            Self::Failed => 1,
            Self::Timeout => 2,
        }
    }
}

#[cfg(test)]
mod fixtures;
#[cfg(test)]
mod tests;
