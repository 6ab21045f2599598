//! The Pod status kubelet reports, computed from what its containers are
//! doing (pure; `now` is an argument).

use std::net::Ipv4Addr;

use k8s_openapi::api::core::v1::{
    ContainerState, ContainerStateRunning, ContainerStateTerminated, ContainerStateWaiting,
    ContainerStatus, HostIP, PodCondition, PodIP, PodStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

/// What one container is doing, as its supervisor reports it.
#[derive(Clone, Debug, PartialEq)]
pub enum RunState {
    /// Not started: why.
    Waiting {
        /// A `ContainerStateWaiting` reason.
        reason: String,
        /// Details.
        message: String,
    },
    /// Started; `ready` once its port accepts connections.
    Running {
        /// When it started.
        started_at: Timestamp,
        /// Whether it passes readiness.
        ready: bool,
    },
    /// Exited (and will be restarted after a back-off).
    Terminated {
        /// Its exit code (-1 when killed by a signal).
        exit_code: i32,
        /// When it exited.
        finished_at: Timestamp,
    },
}

/// A container's state plus its restart count.
#[derive(Clone, Debug, PartialEq)]
pub struct ContainerRuntime {
    /// What it is doing.
    pub state: RunState,
    /// How often it was restarted.
    pub restart_count: i32,
    /// How its last run ended (exit code, when), shown as `lastState.terminated`.
    pub last_exit: Option<(i32, Timestamp)>,
}

// === impl ContainerRuntime ===

impl ContainerRuntime {
    /// A container that has not started yet.
    pub fn starting() -> Self {
        Self {
            state: RunState::Waiting {
                reason: "ContainerCreating".into(),
                message: String::new(),
            },
            restart_count: 0,
            last_exit: None,
        }
    }

    /// Whether it is running and ready.
    pub fn ready(&self) -> bool {
        matches!(self.state, RunState::Running { ready: true, .. })
    }
}

/// One container as the status lists it.
#[derive(Clone, Debug)]
pub struct ContainerView<'a> {
    /// Container name.
    pub name: &'a str,
    /// Container image.
    pub image: &'a str,
    /// Its runtime.
    pub runtime: ContainerRuntime,
}

fn container_status(pod_uid: &str, c: &ContainerView<'_>) -> ContainerStatus {
    let state = match &c.runtime.state {
        RunState::Waiting { reason, message } => ContainerState {
            waiting: Some(ContainerStateWaiting {
                reason: Some(reason.clone()),
                message: (!message.is_empty()).then(|| message.clone()),
            }),
            ..Default::default()
        },
        RunState::Running { started_at, .. } => ContainerState {
            running: Some(ContainerStateRunning {
                started_at: Some(Time(*started_at)),
            }),
            ..Default::default()
        },
        RunState::Terminated {
            exit_code,
            finished_at,
        } => terminated(*exit_code, *finished_at),
    };
    let running = matches!(c.runtime.state, RunState::Running { .. });
    ContainerStatus {
        name: c.name.to_string(),
        image: c.image.to_string(),
        image_id: format!("weir-simulator://{}", c.image),
        container_id: running.then(|| format!("weir://{pod_uid}/{}", c.name)),
        ready: c.runtime.ready(),
        started: Some(running),
        restart_count: c.runtime.restart_count,
        state: Some(state),
        last_state: c.runtime.last_exit.map(|(code, at)| terminated(code, at)),
        ..Default::default()
    }
}

/// The state of a container that exited with `exit_code` at `finished_at`.
fn terminated(exit_code: i32, finished_at: Timestamp) -> ContainerState {
    ContainerState {
        terminated: Some(ContainerStateTerminated {
            exit_code,
            finished_at: Some(Time(finished_at)),
            reason: Some(if exit_code == 0 { "Completed" } else { "Error" }.into()),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn condition(
    prev: Option<&PodStatus>,
    type_: &str,
    ok: bool,
    reason: Option<&str>,
    now: Timestamp,
) -> PodCondition {
    let status = if ok { "True" } else { "False" }.to_string();
    let old = prev
        .and_then(|p| p.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.type_ == type_));
    let since = match old {
        Some(o) if o.status == status => o.last_transition_time.clone(),
        _ => Some(Time(now)),
    };
    PodCondition {
        type_: type_.into(),
        status,
        last_transition_time: since,
        reason: if ok { None } else { reason.map(Into::into) },
        ..Default::default()
    }
}

/// The status kubelet writes for a pod on `pod_ip`, started at
/// `start_time`, whose containers are `containers`; condition transition
/// times carry over from `prev` when nothing changed.
pub fn pod_status(
    prev: Option<&PodStatus>,
    pod_uid: &str,
    pod_ip: Ipv4Addr,
    start_time: Timestamp,
    containers: &[ContainerView<'_>],
    now: Timestamp,
) -> PodStatus {
    let ready = !containers.is_empty() && containers.iter().all(|c| c.runtime.ready());
    let any_running = containers
        .iter()
        .any(|c| matches!(c.runtime.state, RunState::Running { .. }));
    let phase = if any_running || containers.iter().any(|c| c.runtime.restart_count > 0) {
        "Running"
    } else {
        "Pending"
    };
    let not_ready = Some("ContainersNotReady");
    PodStatus {
        phase: Some(phase.into()),
        conditions: Some(vec![
            condition(prev, "PodReadyToStartContainers", true, None, now),
            condition(prev, "Initialized", true, None, now),
            condition(prev, "Ready", ready, not_ready, now),
            condition(prev, "ContainersReady", ready, not_ready, now),
            condition(prev, "PodScheduled", true, None, now),
        ]),
        container_statuses: Some(
            containers
                .iter()
                .map(|c| container_status(pod_uid, c))
                .collect(),
        ),
        host_ip: Some(Ipv4Addr::LOCALHOST.to_string()),
        host_ips: Some(vec![HostIP {
            ip: Ipv4Addr::LOCALHOST.to_string(),
        }]),
        pod_ip: Some(pod_ip.to_string()),
        pod_ips: Some(vec![PodIP {
            ip: pod_ip.to_string(),
        }]),
        start_time: Some(Time(start_time)),
        qos_class: Some("BestEffort".into()),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> Timestamp {
        "2026-11-25T12:00:00Z".parse().unwrap()
    }

    fn view(runtime: ContainerRuntime) -> ContainerView<'static> {
        ContainerView {
            name: "app",
            image: "weir-demo:v1",
            runtime,
        }
    }

    fn cond<'a>(s: &'a PodStatus, t: &str) -> &'a PodCondition {
        s.conditions
            .as_ref()
            .unwrap()
            .iter()
            .find(|c| c.type_ == t)
            .unwrap()
    }

    #[test]
    fn ready_container_makes_a_running_ready_pod() {
        let rt = ContainerRuntime {
            state: RunState::Running {
                started_at: now(),
                ready: true,
            },
            restart_count: 0,
            last_exit: None,
        };
        let ip = Ipv4Addr::new(127, 1, 0, 3);
        let s = pod_status(None, "u", ip, now(), &[view(rt)], now());
        assert_eq!(s.phase.as_deref(), Some("Running"));
        assert_eq!(s.pod_ip.as_deref(), Some("127.1.0.3"));
        assert_eq!(cond(&s, "Ready").status, "True");
        assert_eq!(cond(&s, "ContainersReady").status, "True");
        assert_eq!(cond(&s, "PodScheduled").status, "True");
        let cs = &s.container_statuses.as_ref().unwrap()[0];
        assert!(cs.ready);
        assert!(cs.state.as_ref().unwrap().running.is_some());
    }

    #[test]
    fn waiting_container_leaves_pod_pending_and_not_ready_with_reason() {
        let rt = ContainerRuntime {
            state: RunState::Waiting {
                reason: "ImageNotSimulated".into(),
                message: "nope".into(),
            },
            restart_count: 0,
            last_exit: None,
        };
        let s = pod_status(
            None,
            "u",
            Ipv4Addr::new(127, 1, 0, 3),
            now(),
            &[view(rt)],
            now(),
        );
        assert_eq!(s.phase.as_deref(), Some("Pending"));
        assert_eq!(cond(&s, "Ready").status, "False");
        assert_eq!(
            cond(&s, "Ready").reason.as_deref(),
            Some("ContainersNotReady")
        );
        let w = s.container_statuses.unwrap()[0]
            .state
            .clone()
            .unwrap()
            .waiting
            .unwrap();
        assert_eq!(w.reason.as_deref(), Some("ImageNotSimulated"));
    }

    #[test]
    fn transition_times_carry_over_until_status_flips() {
        let ip = Ipv4Addr::new(127, 1, 0, 3);
        let waiting = ContainerRuntime::starting();
        let first = pod_status(None, "u", ip, now(), &[view(waiting.clone())], now());
        let later = now() + k8s_openapi::jiff::SignedDuration::from_secs(9);
        let same = pod_status(Some(&first), "u", ip, now(), &[view(waiting)], later);
        assert_eq!(first, same);
        let rt = ContainerRuntime {
            state: RunState::Running {
                started_at: later,
                ready: true,
            },
            restart_count: 0,
            last_exit: None,
        };
        let ready = pod_status(Some(&first), "u", ip, now(), &[view(rt)], later);
        assert_eq!(
            cond(&ready, "Ready").last_transition_time,
            Some(Time(later))
        );
        assert_eq!(
            cond(&ready, "PodScheduled").last_transition_time,
            Some(Time(now()))
        );
    }
}
