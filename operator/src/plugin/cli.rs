//! The command line of `kubectl weir`, parsed with clap.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use std::time::Duration;

/// Watch and steer Weir Rollouts.
#[derive(Parser, Debug, Clone)]
#[command(name = "kubectl-weir", bin_name = "kubectl weir", version, about)]
pub struct Cli {
    /// How to reach the cluster, as kubectl does.
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// Never colour the output (colour is used only on a terminal, and never when NO_COLOR is set).
    #[arg(long, global = true)]
    pub no_color: bool,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The kubectl flags the plugin honours; `KUBECONFIG` is read as kubectl reads it.
#[derive(Args, Debug, Clone, Default)]
pub struct ClusterArgs {
    /// Path to the kubeconfig file (default: $KUBECONFIG, else ~/.kube/config, else in-cluster).
    #[arg(long, global = true, value_name = "PATH")]
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context to use (default: its current-context).
    #[arg(long, global = true, value_name = "NAME")]
    pub context: Option<String>,
    /// The kubeconfig cluster to use (default: the context's).
    #[arg(long, global = true, value_name = "NAME")]
    pub cluster: Option<String>,
    /// The kubeconfig user to use (default: the context's).
    #[arg(long, global = true, value_name = "NAME")]
    pub user: Option<String>,
    /// The namespace (default: the context's namespace, else `default`).
    #[arg(short = 'n', long, global = true, value_name = "NAMESPACE")]
    pub namespace: Option<String>,
    /// Act as this user (impersonation, as `kubectl --as`).
    #[arg(long = "as", global = true, value_name = "USER")]
    pub as_user: Option<String>,
    /// Act with this group (impersonation, as `kubectl --as-group`; repeatable).
    #[arg(long = "as-group", global = true, value_name = "GROUP")]
    pub as_groups: Vec<String>,
}

/// The subcommands.
#[derive(Subcommand, Debug, Clone)]
pub enum Command {
    /// Show a rollout: phase, step, weights, images, revisions → Deployments → Pods, analysis and live metrics.
    Get {
        /// The Rollout.
        name: String,
        /// Keep showing it as it changes (redrawn on a terminal, one line per change when piped).
        #[arg(short, long)]
        watch: bool,
        /// Print the view as JSON or YAML instead of text.
        #[arg(short, long, value_name = "FORMAT")]
        output: Option<Format>,
    },
    /// List rollouts: the columns of `kubectl get rollouts`, plus the weights.
    List {
        /// Every namespace.
        #[arg(short = 'A', long)]
        all_namespaces: bool,
        /// Keep listing as they change.
        #[arg(short, long)]
        watch: bool,
        /// Print the rows as JSON or YAML instead of a table.
        #[arg(short, long, value_name = "FORMAT")]
        output: Option<Format>,
    },
    /// Report progress until Healthy (exit 0), Degraded or Aborted (exit 1), or the timeout (exit 2).
    Status {
        /// The Rollout.
        name: String,
        /// Print each change while waiting (without it, only the final state).
        #[arg(short, long)]
        watch: bool,
        /// How long to wait for Healthy, Degraded or Aborted, such as 90s or 10m
        /// (default: no limit with --watch, else 0: report the current state at once).
        #[arg(long, value_parser = parse_timeout, value_name = "DURATION")]
        timeout: Option<Duration>,
        /// Print the final state as JSON or YAML.
        #[arg(short, long, value_name = "FORMAT")]
        output: Option<Format>,
    },
    /// Move past the current pause or analysis step (with --full: straight to 100% and finalise).
    Promote {
        /// The Rollout.
        name: String,
        /// Skip every remaining step.
        #[arg(long)]
        full: bool,
    },
    /// Put all traffic back on stable and scale the canary down.
    Abort {
        /// The Rollout.
        name: String,
    },
    /// Start an aborted canary again from its first step.
    Retry {
        /// The Rollout.
        name: String,
    },
    /// Stop the rollout where it is (sets spec.paused).
    Pause {
        /// The Rollout.
        name: String,
    },
    /// Let a paused rollout continue (clears spec.paused).
    Resume {
        /// The Rollout.
        name: String,
    },
    /// Change the template; `set image` starts a new revision.
    #[command(subcommand)]
    Set(SetCommand),
    /// Set the template back to an earlier revision's (by default the one before stable, or
    /// stable itself while a canary runs); the controller delivers it as a new revision.
    Undo {
        /// The Rollout.
        name: String,
        /// The revision whose template to restore.
        #[arg(long, value_name = "N")]
        to_revision: Option<i64>,
    },
    /// Print the plugin's version and the running operator's.
    Version {
        /// Only the plugin's version; do not contact the cluster.
        #[arg(long)]
        client: bool,
        /// Print as JSON or YAML.
        #[arg(short, long, value_name = "FORMAT")]
        output: Option<Format>,
    },
}

/// `kubectl weir set …`.
#[derive(Subcommand, Debug, Clone)]
pub enum SetCommand {
    /// Set container images: `set image NAME CONTAINER=IMAGE…` (`*=IMAGE` sets every container).
    Image {
        /// The Rollout.
        name: String,
        /// One or more CONTAINER=IMAGE pairs.
        #[arg(required = true, value_parser = parse_image_pair, value_name = "CONTAINER=IMAGE")]
        images: Vec<(String, String)>,
    },
}

/// A structured output format.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// JSON, pretty-printed.
    Json,
    /// YAML.
    Yaml,
}

fn parse_timeout(text: &str) -> Result<Duration, String> {
    weir_crds::duration::parse_duration("--timeout", text).map_err(|e| e.to_string())
}

fn parse_image_pair(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((container, image)) if !container.is_empty() && !image.is_empty() => {
            Ok((container.to_string(), image.to_string()))
        }
        _ => Err(format!("{text:?} is not CONTAINER=IMAGE")),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("kubectl-weir").chain(args.iter().copied()))
    }

    #[test]
    fn kubectl_flags_work_before_and_after_the_subcommand() {
        let cli = parse(&["-n", "shop", "get", "foobar", "--context", "kind"]).unwrap();
        assert_eq!(cli.cluster.namespace.as_deref(), Some("shop"));
        assert_eq!(cli.cluster.context.as_deref(), Some("kind"));
        let cli = parse(&["list", "-A", "--kubeconfig", "/tmp/kc", "-o", "json"]).unwrap();
        assert_eq!(
            cli.cluster.kubeconfig.as_deref(),
            Some(std::path::Path::new("/tmp/kc"))
        );
        assert!(matches!(
            cli.command,
            Command::List {
                all_namespaces: true,
                output: Some(Format::Json),
                ..
            }
        ));
    }

    #[test]
    fn status_timeout_and_image_pairs_are_checked() {
        let cli = parse(&["status", "foobar", "-w", "--timeout", "90s"]).unwrap();
        assert!(matches!(
            cli.command,
            Command::Status { timeout: Some(t), watch: true, .. } if t == Duration::from_secs(90)
        ));
        assert!(parse(&["status", "foobar", "--timeout", "soon"]).is_err());
        let cli = parse(&["set", "image", "foobar", "app=demo:v2", "*=x:1"]).unwrap();
        let Command::Set(SetCommand::Image { images, .. }) = cli.command else {
            panic!("not set image");
        };
        assert_eq!(
            images,
            [("app".into(), "demo:v2".into()), ("*".into(), "x:1".into())]
        );
        let err = parse(&["set", "image", "foobar", "demo:v2"]).unwrap_err();
        assert!(err.to_string().contains("is not CONTAINER=IMAGE"), "{err}");
    }

    #[test]
    fn the_command_line_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
