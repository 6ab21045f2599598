//! Runs one command line: connects, reads, decides, writes, prints. Thin on purpose: the
//! decisions are in [`commands`], the text in [`render`] and [`list`], the watch output in
//! [`watch`].

use super::cli::{Cli, Command, Format, SetCommand};
use super::cluster::Cluster;
use super::commands::{self, Decision, Request};
use super::list::{self, ListRow};
use super::render::{self, Style};
use super::view::{Inputs, LiveInput, View};
use super::watch::{ListScreen, Screen};
use super::{Error, Exit};
use futures::StreamExt;
use k8s_openapi::jiff::Timestamp;
use serde::Serialize;
use std::io::{IsTerminal, Write as _};
use std::time::Duration;
use tokio::time::Instant;
use weir_crds::rollout::Phase;

/// How often a watch refreshes even without a change (ages, live metrics).
const REFRESH: Duration = Duration::from_secs(2);

/// Where output goes and how it looks.
struct Out {
    tty: bool,
    style: Style,
}

// === impl Out ===

impl Out {
    fn new(no_color: bool) -> Self {
        let tty = std::io::stdout().is_terminal();
        let color = tty
            && !no_color
            && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
            && std::env::var("TERM").map_or(true, |t| t != "dumb");
        Self {
            tty,
            style: Style { color },
        }
    }

    fn print(&self, text: &str) -> Result<(), Error> {
        let mut stdout = std::io::stdout().lock();
        stdout
            .write_all(text.as_bytes())
            .and_then(|()| stdout.flush())
            .map_err(|e| Error::Output(e.to_string()))
    }

    fn println(&self, text: &str) -> Result<(), Error> {
        self.print(&format!("{text}\n"))
    }
}

/// Runs `cli` to the end and says how the process should exit.
pub async fn run(cli: Cli) -> Result<Exit, Error> {
    let out = Out::new(cli.no_color);
    if let Command::Version {
        client: true,
        output,
    } = &cli.command
    {
        return version(&out, None, *output).await;
    }
    let cluster = Cluster::connect(&cli.cluster).await?;
    match cli.command {
        Command::Get {
            name,
            watch,
            output,
        } => get(&out, &cluster, &name, watch, output).await,
        Command::List {
            all_namespaces,
            watch,
            output,
        } => list_rollouts(&out, &cluster, all_namespaces, watch, output).await,
        Command::Status {
            name,
            watch,
            timeout,
            output,
        } => status(&out, &cluster, &name, watch, timeout, output).await,
        Command::Promote { name, full } => {
            steer(&out, &cluster, &name, Request::Promote { full }).await
        }
        Command::Abort { name } => steer(&out, &cluster, &name, Request::Abort).await,
        Command::Retry { name } => steer(&out, &cluster, &name, Request::Retry).await,
        Command::Pause { name } => steer(&out, &cluster, &name, Request::Pause).await,
        Command::Resume { name } => steer(&out, &cluster, &name, Request::Resume).await,
        Command::Set(SetCommand::Image { name, images }) => {
            let rollout = cluster.rollout(&name).await?;
            let decision = commands::set_image(&rollout, &images)?;
            apply(&out, &cluster, &name, decision).await
        }
        Command::Undo { name, to_revision } => {
            let rollout = cluster.rollout(&name).await?;
            let history = cluster.history(&name).await?;
            let decision = commands::undo(&rollout, &history, to_revision)?;
            apply(&out, &cluster, &name, decision).await
        }
        Command::Version { output, .. } => version(&out, Some(&cluster), output).await,
    }
}

fn now() -> Timestamp {
    Timestamp::now()
}

/// `HH:MM:SSZ`, the prefix of piped watch lines.
fn clock(now: Timestamp) -> String {
    now.strftime("%H:%M:%SZ").to_string()
}

fn structured<T: Serialize>(value: &T, format: Format) -> Result<String, Error> {
    match format {
        Format::Json => serde_json::to_string_pretty(value)
            .map(|s| format!("{s}\n"))
            .map_err(|e| Error::Output(e.to_string())),
        Format::Yaml => serde_yaml::to_string(value).map_err(|e| Error::Output(e.to_string())),
    }
}

async fn get(
    out: &Out,
    cluster: &Cluster,
    name: &str,
    watch: bool,
    output: Option<Format>,
) -> Result<Exit, Error> {
    let mut changes = watch.then(|| cluster.changes(Some(name), false));
    let mut screen = Screen::new(out.tty);
    let mut last_structured = None;
    loop {
        let inputs = cluster.inputs(name, true).await?;
        let at = now();
        let view = View::build(&inputs, at);
        match output {
            Some(format) => {
                let key = view.timeless();
                if last_structured.as_ref() != Some(&key) {
                    out.print(&structured(&view, format)?)?;
                    last_structured = Some(key);
                }
            }
            None if !watch => out.print(&render::get(&view, out.style))?,
            None => {
                let page = render::get(&view, out.style);
                let line = render::status_line(&view, Style::PLAIN);
                if let Some(text) = screen.frame(&page, &line, &clock(at)) {
                    out.print(&text)?;
                }
            }
        }
        let Some(changes) = changes.as_mut() else {
            return Ok(Exit::Ok);
        };
        wait_for_change(changes, None).await;
    }
}

/// Waits for a change, the refresh period, or `deadline`, whichever comes first.
async fn wait_for_change(
    changes: &mut futures::stream::BoxStream<'static, ()>,
    deadline: Option<Instant>,
) {
    let refresh = Instant::now() + REFRESH;
    let until = deadline.map_or(refresh, |d| d.min(refresh));
    tokio::select! {
        _ = changes.next() => {
            // Let a burst of related changes (split, pods, status) settle into one redraw.
            tokio::time::sleep(Duration::from_millis(100)).await;
            while let Some(Some(())) = futures::FutureExt::now_or_never(changes.next()) {}
        }
        _ = tokio::time::sleep_until(until) => {}
    }
}

async fn list_rollouts(
    out: &Out,
    cluster: &Cluster,
    all_namespaces: bool,
    watch: bool,
    output: Option<Format>,
) -> Result<Exit, Error> {
    let mut changes = watch.then(|| cluster.changes(None, all_namespaces));
    let mut screen = ListScreen::new(out.tty);
    loop {
        let at = now();
        let mut rows: Vec<ListRow> = cluster
            .list(all_namespaces)
            .await?
            .iter()
            .map(|r| ListRow::build(r, at))
            .collect();
        rows.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
        match (output, watch) {
            (Some(format), _) => out.print(&structured(&rows, format)?)?,
            (None, false) => out.print(&list::render(&rows, all_namespaces, out.style))?,
            (None, true) => {
                if let Some(text) = screen.frame(&rows, all_namespaces, out.style) {
                    out.print(&text)?;
                }
            }
        }
        let Some(changes) = changes.as_mut() else {
            return Ok(Exit::Ok);
        };
        wait_for_change(changes, None).await;
    }
}

async fn status(
    out: &Out,
    cluster: &Cluster,
    name: &str,
    watch: bool,
    timeout: Option<Duration>,
    output: Option<Format>,
) -> Result<Exit, Error> {
    let started = Instant::now();
    let deadline = match (timeout, watch) {
        (Some(t), _) => Some(started + t),
        (None, true) => None,
        (None, false) => Some(started),
    };
    let mut changes = (deadline != Some(started)).then(|| cluster.changes(Some(name), false));
    let mut screen = Screen::new(false);
    loop {
        let inputs = Inputs {
            rollout: cluster.rollout(name).await?,
            deployments: Vec::new(),
            pods: Vec::new(),
            split: None,
            live: LiveInput::NotAsked,
        };
        let at = now();
        let view = View::build(&inputs, at);
        let line = render::status_line(&view, out.style);
        if watch
            && output.is_none()
            && let Some(text) = screen.line(&line, &clock(at))
        {
            out.print(&text)?;
        }
        let timed_out = deadline.is_some_and(|d| Instant::now() >= d);
        if view.finished() || timed_out {
            match output {
                Some(format) => out.print(&structured(&view, format)?)?,
                None if !watch => out.println(&line)?,
                None => {}
            }
            let exit = match (view.finished(), view.phase) {
                (true, Some(Phase::Healthy)) => Exit::Ok,
                (true, _) => Exit::Failed,
                (false, _) => Exit::Timeout,
            };
            if exit == Exit::Timeout && timeout.is_some() {
                eprintln!(
                    "timed out after {}s: rollout {name} is not Healthy, Degraded or Aborted yet",
                    started.elapsed().as_secs()
                );
            }
            return Ok(exit);
        }
        if let Some(changes) = changes.as_mut() {
            wait_for_change(changes, deadline).await;
        }
    }
}

async fn steer(out: &Out, cluster: &Cluster, name: &str, request: Request) -> Result<Exit, Error> {
    let rollout = cluster.rollout(name).await?;
    let decision = commands::decide(&rollout, request)?;
    apply(out, cluster, name, decision).await
}

async fn apply(
    out: &Out,
    cluster: &Cluster,
    name: &str,
    decision: Decision,
) -> Result<Exit, Error> {
    match decision {
        Decision::Write(write) => {
            cluster.write(name, &write).await?;
            out.println(&write.message)?;
        }
        Decision::Already(message) => out.println(&message)?,
    }
    Ok(Exit::Ok)
}

/// The versions `version` reports.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Versions {
    plugin: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    operator: Option<OperatorVersion>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct OperatorVersion {
    /// The version from the leader Pod's image tag, if found.
    version: Option<String>,
    /// Where it was found, or why not.
    detail: String,
}

async fn version(
    out: &Out,
    cluster: Option<&Cluster>,
    output: Option<Format>,
) -> Result<Exit, Error> {
    let plugin = env!("CARGO_PKG_VERSION").to_string();
    let operator = match cluster {
        None => None,
        Some(c) => Some(operator_version(c).await?),
    };
    let versions = Versions { plugin, operator };
    if let Some(format) = output {
        out.print(&structured(&versions, format)?)?;
        return Ok(Exit::Ok);
    }
    out.println(&format!("kubectl-weir: {}", versions.plugin))?;
    if let Some(op) = &versions.operator {
        let v = op.version.as_deref().unwrap_or("unknown");
        out.println(&format!("weir-operator: {v} ({})", op.detail))?;
    }
    Ok(Exit::Ok)
}

async fn operator_version(cluster: &Cluster) -> Result<OperatorVersion, Error> {
    let Some((ns, holder, pod)) = cluster.operator().await? else {
        return Ok(OperatorVersion {
            version: None,
            detail: format!(
                "no Lease {:?} has a holder in any namespace: is the operator running?",
                super::cluster::OPERATOR_LEASE
            ),
        });
    };
    let Some(pod) = pod else {
        return Ok(OperatorVersion {
            version: None,
            detail: format!(
                "the leader {holder:?} (Lease {ns}/{}) is not a Pod in {ns}",
                super::cluster::OPERATOR_LEASE
            ),
        });
    };
    let images: Vec<String> = pod
        .spec
        .iter()
        .flat_map(|s| s.containers.iter())
        .filter_map(|c| c.image.clone())
        .collect();
    let image = images
        .iter()
        .find(|i| i.contains("weir-operator"))
        .or(images.first())
        .cloned()
        .unwrap_or_default();
    Ok(OperatorVersion {
        version: image_tag(&image),
        detail: format!("leader Pod {ns}/{holder}, image {image}"),
    })
}

/// The tag of `repo/name:tag` (None for a digest or no tag).
fn image_tag(image: &str) -> Option<String> {
    if image.contains('@') {
        return None;
    }
    let (_, last) = image.rsplit_once('/').unwrap_or(("", image));
    last.split_once(':').map(|(_, tag)| tag.to_string())
}

#[cfg(test)]
mod tests {
    use super::image_tag;

    #[test]
    fn image_tags_ignore_registry_ports_and_digests() {
        assert_eq!(image_tag("weir-operator:0.1.0").as_deref(), Some("0.1.0"));
        assert_eq!(
            image_tag("reg:5000/weir/weir-operator:1.2").as_deref(),
            Some("1.2")
        );
        assert_eq!(image_tag("reg:5000/weir/weir-operator"), None);
        assert_eq!(image_tag("weir-operator@sha256:abc"), None);
    }
}
