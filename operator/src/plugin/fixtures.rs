//! Hand-built Rollouts, Deployments, Pods and splits at each phase, for the plugin's tests.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::view::{Inputs, LiveInput, LiveRow};
use k8s_openapi::api::apps::v1::{Deployment, DeploymentStatus};
use k8s_openapi::api::core::v1::{
    ContainerState, ContainerStateWaiting, ContainerStatus, Pod, PodStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};
use weir_crds::Rollout;
use weir_crds::rollout::{
    AnalysisResult, AnalysisStatus, Phase, RolloutStatus, StepWeights, Verdict,
};

/// The fixtures' "now".
pub fn now() -> Timestamp {
    Timestamp::from_second(1_800_000_000).unwrap()
}

/// `now` minus `secs`.
pub fn ago(secs: i64) -> Time {
    Time(now().checked_sub(SignedDuration::from_secs(secs)).unwrap())
}

/// The sample Rollout (steps: setWeight 10, analysis, setWeight 50, pause, setWeight 100)
/// with image `weir-demo:<image>` and this status.
pub fn rollout(image: &str, status: RolloutStatus) -> Rollout {
    let mut ro: Rollout =
        serde_yaml::from_str(include_str!("../../../config/samples/rollout.yaml")).unwrap();
    ro.spec
        .template
        .as_mut()
        .unwrap()
        .spec
        .as_mut()
        .unwrap()
        .containers[0]
        .image = Some(format!("weir-demo:{image}"));
    ro.metadata.creation_timestamp = Some(ago(3600));
    ro.metadata.generation = Some(2);
    ro.metadata.uid = Some("uid-1".into());
    ro.status = Some(RolloutStatus {
        observed_generation: Some(2),
        ..status
    });
    ro
}

/// A condition of type `type_`.
pub fn condition(type_: &str, status: bool, reason: &str, message: &str) -> Condition {
    Condition {
        type_: type_.into(),
        status: if status { "True" } else { "False" }.into(),
        reason: reason.into(),
        message: message.into(),
        last_transition_time: ago(60),
        observed_generation: Some(2),
    }
}

/// Revision `rev`'s Deployment with image `weir-demo:<image>`.
pub fn deployment(rev: i64, image: &str, desired: i32, ready: i32) -> Deployment {
    serde_json::from_value(json!({
        "metadata": {"name": format!("foobar-v{rev}"), "namespace": "default",
            "labels": {"weir.dev/rollout": "foobar", "weir.dev/revision": rev.to_string()}},
        "spec": {"replicas": desired, "selector": {"matchLabels": {"app": "foobar"}},
            "template": {"metadata": {"labels": {"app": "foobar"}},
                "spec": {"containers": [{"name": "app", "image": format!("weir-demo:{image}")}]}}},
        "status": {"readyReplicas": ready, "availableReplicas": ready}
    }))
    .map(|mut d: Deployment| {
        d.status.get_or_insert_with(DeploymentStatus::default);
        d
    })
    .unwrap()
}

/// Pod `i` of revision `rev`: Running and ready, unless `waiting` names a reason.
pub fn pod(rev: i64, i: u8, age_secs: i64, waiting: Option<&str>) -> Pod {
    let mut p: Pod = serde_json::from_value(json!({
        "metadata": {"name": format!("foobar-v{rev}-7f9c6-{i}x{rev}"), "namespace": "default",
            "labels": {"weir.dev/rollout": "foobar", "weir.dev/revision": rev.to_string()}},
        "spec": {"containers": [{"name": "app", "image": "weir-demo"}]}
    }))
    .unwrap();
    p.metadata.creation_timestamp = Some(ago(age_secs));
    let ready = waiting.is_none();
    p.status = Some(PodStatus {
        phase: Some(if ready { "Running" } else { "Pending" }.into()),
        pod_ip: ready.then(|| format!("127.0.{rev}.{}", i + 10)),
        container_statuses: Some(vec![ContainerStatus {
            name: "app".into(),
            ready,
            restart_count: 0,
            image: "weir-demo".into(),
            image_id: String::new(),
            state: waiting.map(|reason| ContainerState {
                waiting: Some(ContainerStateWaiting {
                    reason: Some(reason.into()),
                    message: None,
                }),
                ..ContainerState::default()
            }),
            ..ContainerStatus::default()
        }]),
        ..PodStatus::default()
    });
    p
}

/// The TrafficSplit `foobar-rollout` (v1alpha4) with these backends.
pub fn split(backends: &[(&str, i32)]) -> Value {
    json!({
        "apiVersion": "split.smi-spec.io/v1alpha4", "kind": "TrafficSplit",
        "metadata": {"name": "foobar-rollout", "namespace": "default"},
        "spec": {"service": "foobar", "backends": backends.iter()
            .map(|(s, w)| json!({"service": s, "weight": w})).collect::<Vec<_>>()}
    })
}

fn live_row(deployment: &str, requests: u64, success: f64, p50: f64, p99: f64) -> LiveRow {
    LiveRow {
        role: None,
        revision: None,
        deployment: deployment.into(),
        window: Some("30s".into()),
        requests: Some(requests),
        success_rate: Some(success),
        p50_ms: Some(p50),
        p99_ms: Some(p99),
        unavailable: None,
    }
}

fn check(verdict: Verdict, message: &str, success: f64, p99: f64, secs_ago: i64) -> AnalysisResult {
    AnalysisResult {
        success_rate: Some(success),
        p50: Some(12.0),
        p90: Some(30.0),
        p99: Some(p99),
        requests: Some(240),
        verdict: Some(verdict),
        message: Some(message.into()),
        at: Some(ago(secs_ago)),
        ..AnalysisResult::default()
    }
}

fn pods(rev: i64, n: u8, age_secs: i64) -> Vec<Pod> {
    (0..n).map(|i| pod(rev, i, age_secs, None)).collect()
}

/// A first revision becoming available: v1 at 1/3 ready, nothing to canary against.
pub fn first_revision() -> Inputs {
    let message = "Waiting for foobar-v1: 1/3 pods available";
    let status = RolloutStatus {
        phase: Some(Phase::Progressing),
        weights: Some(StepWeights {
            stable: 100,
            canary: 0,
        }),
        message: Some(message.into()),
        conditions: vec![condition(
            "Progressing",
            true,
            "RolloutProgressing",
            message,
        )],
        ..RolloutStatus::default()
    };
    let mut v1_pods = vec![pod(1, 0, 20, None)];
    v1_pods.push(pod(1, 1, 20, Some("ContainerCreating")));
    v1_pods.push(pod(1, 2, 20, Some("ContainerCreating")));
    Inputs {
        rollout: rollout("v1", status),
        deployments: vec![deployment(1, "v1", 3, 1)],
        pods: v1_pods,
        split: Some(split(&[("foobar-v1", 100)])),
        live: LiveInput::Unavailable(
            "metrics.smi-spec.io/v1alpha1 is not served by this cluster".into(),
        ),
    }
}

/// Mid-step: canary v2 at 10%, analysing (step 2/5), live figures for both revisions.
pub fn mid_step() -> Inputs {
    let message = "Analysing the canary at 10% (step 2/5): 0/1 checks passed, 1 failed (limit 2)";
    let status = RolloutStatus {
        phase: Some(Phase::Progressing),
        stable_revision: Some(1),
        canary_revision: Some(2),
        current_step: Some(1),
        step_progress: Some("2/5".into()),
        step_started_at: Some(ago(45)),
        weights: Some(StepWeights {
            stable: 90,
            canary: 10,
        }),
        analysis: Some(AnalysisStatus {
            checks: 0,
            failures: 1,
            consecutive_errors: 0,
            last_result: Some(check(
                Verdict::Fail,
                "Halt: p99 latency 620ms > 500ms",
                99.6,
                620.0,
                10,
            )),
        }),
        message: Some(message.into()),
        conditions: vec![
            condition("Progressing", true, "RolloutProgressing", message),
            condition(
                "Available",
                true,
                "RevisionAvailable",
                "Revision foobar-v1 takes all traffic",
            ),
        ],
        ..RolloutStatus::default()
    };
    let mut all_pods = pods(2, 3, 50);
    all_pods.extend(pods(1, 3, 3000));
    Inputs {
        rollout: rollout("v2", status),
        deployments: vec![deployment(1, "v1", 3, 3), deployment(2, "v2", 3, 3)],
        pods: all_pods,
        split: Some(split(&[("foobar-v1", 90), ("foobar-v2", 10)])),
        live: LiveInput::Answers(vec![
            (
                "foobar-v1".into(),
                Ok(live_row("foobar-v1", 2160, 100.0, 11.0, 48.0)),
            ),
            (
                "foobar-v2".into(),
                Ok(live_row("foobar-v2", 240, 99.6, 12.0, 620.0)),
            ),
        ]),
    }
}

/// Paused at step 4/5, waiting for `kubectl weir promote`, with a promote already requested.
pub fn paused() -> Inputs {
    let message = "Waiting at step 4/5 for `kubectl weir promote`";
    let mut inputs = mid_step();
    let status = inputs.rollout.status.as_mut().unwrap();
    status.phase = Some(Phase::Paused);
    status.current_step = Some(3);
    status.step_progress = Some("4/5".into());
    status.weights = Some(StepWeights {
        stable: 50,
        canary: 50,
    });
    status.analysis = Some(AnalysisStatus {
        checks: 0,
        failures: 1,
        consecutive_errors: 0,
        last_result: Some(check(
            Verdict::Pass,
            "Pass: success rate 99.9% ≥ 99%, p99 41ms ≤ 500ms",
            99.9,
            41.0,
            120,
        )),
    });
    status.message = Some(message.into());
    status.conditions = vec![
        condition("Progressing", true, "RolloutPaused", message),
        condition("Paused", true, "PausedForPromotion", message),
    ];
    inputs.split = Some(split(&[("foobar-v1", 50), ("foobar-v2", 50)]));
    inputs.live = LiveInput::Unavailable(
        "the metrics API answered 503 Service Unavailable: no endpoints for weir-operator".into(),
    );
    inputs
}

/// Aborted after the third failed check: all traffic back on v1, v2 scaling to 0.
pub fn aborted_after_failed_analysis() -> Inputs {
    let message = "Rolled back: Halt: success rate 91.2% < 99%: all traffic is back on foobar-v1 and foobar-v2 is scaled to 0; `kubectl weir retry` starts it again";
    let mut inputs = mid_step();
    let status = inputs.rollout.status.as_mut().unwrap();
    status.phase = Some(Phase::Aborted);
    status.abort = true;
    status.aborted_at = Some(ago(5));
    status.weights = Some(StepWeights {
        stable: 100,
        canary: 0,
    });
    status.analysis = Some(AnalysisStatus {
        checks: 0,
        failures: 3,
        consecutive_errors: 0,
        last_result: Some(check(
            Verdict::Fail,
            "Halt: success rate 91.2% < 99%",
            91.2,
            45.0,
            5,
        )),
    });
    status.message = Some(message.into());
    status.conditions = vec![
        condition("Progressing", false, "RolloutAborted", message),
        condition("Aborted", true, "AnalysisFailed", message),
    ];
    inputs.deployments = vec![deployment(1, "v1", 3, 3), deployment(2, "v2", 0, 0)];
    let mut all_pods: Vec<Pod> = pods(2, 2, 50)
        .into_iter()
        .map(|mut p| {
            p.metadata.deletion_timestamp = Some(ago(4));
            p
        })
        .collect();
    all_pods.extend(pods(1, 3, 3000));
    inputs.pods = all_pods;
    inputs.split = Some(split(&[("foobar-v1", 100), ("foobar-v2", 0)]));
    inputs
}

/// Healthy at v2 after promotion; v1's Deployment waits for `scaleDownAt`.
pub fn promoted() -> Inputs {
    let message = "Revision foobar-v2 takes all traffic";
    let mut inputs = mid_step();
    inputs.rollout.status = Some(RolloutStatus {
        phase: Some(Phase::Healthy),
        observed_generation: Some(2),
        stable_revision: Some(2),
        step_progress: Some("5/5".into()),
        weights: Some(StepWeights {
            stable: 100,
            canary: 0,
        }),
        scale_down_at: Some(Time(
            now().checked_add(SignedDuration::from_secs(20)).unwrap(),
        )),
        message: Some(message.into()),
        conditions: vec![condition("Completed", true, "RolloutComplete", message)],
        ..RolloutStatus::default()
    });
    inputs.split = Some(split(&[("foobar-v2", 100)]));
    inputs
}
