//! What a revision's pods report, in one line a condition can carry: the reasons their
//! containers wait (an image that cannot be pulled, a process that keeps exiting), so
//! `kubectl describe rollout` says why a revision is stuck, not only that it is.

use k8s_openapi::api::core::v1::{ContainerStatus, Pod};
use std::collections::BTreeMap;

/// At most this many different problems are named; the rest are counted.
const MAX_PROBLEMS: usize = 3;
/// A container's message is cut to this many characters.
const MAX_MESSAGE: usize = 200;

/// Describes what keeps `pods` from being available, for example
/// `pod foobar-v1-x7k2p: container app ImagePullBackOff (Back-off pulling image "nope:v1")`.
/// Pods with the same problem are folded into one entry that counts them.
pub fn describe(pods: &[Pod]) -> String {
    if pods.is_empty() {
        return "no pod of this revision exists".into();
    }
    let mut problems: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut sorted: Vec<&Pod> = pods.iter().collect();
    sorted.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    for pod in sorted {
        let name = pod.metadata.name.clone().unwrap_or_default();
        if let Some(problem) = pod_problem(pod) {
            problems.entry(problem).or_default().push(name);
        }
    }
    if problems.is_empty() {
        return format!("{} pods exist and report no waiting container", pods.len());
    }
    let mut groups: Vec<(String, Vec<String>)> = problems.into_iter().collect();
    // The problem most pods share comes first; ties in name order.
    groups.sort_by(|a, b| b.1.len().cmp(&a.1.len()).then(a.1.cmp(&b.1)));
    let shown = groups.len().min(MAX_PROBLEMS);
    let mut parts: Vec<String> = groups[..shown]
        .iter()
        .map(|(problem, names)| match names.len() {
            1 => format!("pod {}: {problem}", names[0]),
            n => format!("pod {} and {} more: {problem}", names[0], n - 1),
        })
        .collect();
    if groups.len() > shown {
        parts.push(format!("{} other problems", groups.len() - shown));
    }
    parts.join("; ")
}

/// The first thing wrong with one pod, if any.
fn pod_problem(pod: &Pod) -> Option<String> {
    let status = pod.status.as_ref();
    let containers = status
        .into_iter()
        .flat_map(|s| {
            s.init_container_statuses
                .iter()
                .flatten()
                .chain(s.container_statuses.iter().flatten())
        })
        .collect::<Vec<_>>();
    if let Some(problem) = containers.iter().find_map(|c| container_problem(c)) {
        return Some(problem);
    }
    // No container says why: the pod's own conditions may (unschedulable, say).
    let unmet = status
        .and_then(|s| s.conditions.as_ref())
        .into_iter()
        .flatten()
        .find(|c| c.status == "False" && c.reason.is_some() && c.type_ == "PodScheduled");
    if let Some(c) = unmet {
        return Some(with_message(
            &format!("not scheduled: {}", c.reason.as_deref().unwrap_or_default()),
            c.message.as_deref(),
        ));
    }
    if containers.is_empty() {
        let phase = status.and_then(|s| s.phase.as_deref()).unwrap_or("Pending");
        return Some(format!("{phase}, no container has started"));
    }
    containers
        .iter()
        .find(|c| !c.ready)
        .map(|c| format!("container {} is running but not ready", c.name))
}

/// What is wrong with one container: it waits, or its last run ended in failure.
fn container_problem(c: &ContainerStatus) -> Option<String> {
    let state = c.state.as_ref()?;
    if let Some(w) = &state.waiting {
        let reason = w.reason.as_deref().unwrap_or("Waiting");
        let mut text = with_message(
            &format!("container {} {reason}", c.name),
            w.message.as_deref(),
        );
        if c.restart_count > 0 {
            text.push_str(&format!(", restarted {} times", c.restart_count));
        }
        return Some(text);
    }
    let t = state.terminated.as_ref()?;
    if t.exit_code == 0 {
        return None;
    }
    let reason = t.reason.as_deref().unwrap_or("Terminated");
    Some(with_message(
        &format!(
            "container {} {reason} (exit code {}), restarted {} times",
            c.name, t.exit_code, c.restart_count
        ),
        t.message.as_deref(),
    ))
}

fn with_message(head: &str, message: Option<&str>) -> String {
    match message.map(str::trim).filter(|m| !m.is_empty()) {
        None => head.to_string(),
        Some(m) if m.chars().count() > MAX_MESSAGE => {
            let cut: String = m.chars().take(MAX_MESSAGE).collect();
            format!("{head} ({cut}…)")
        }
        Some(m) => format!("{head} ({m})"),
    }
}

#[cfg(test)]
mod tests;
