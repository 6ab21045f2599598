//! Table tests of what a stuck revision's pods are said to report.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::describe;
use k8s_openapi::api::core::v1::{
    ContainerState, ContainerStateRunning, ContainerStateTerminated, ContainerStateWaiting,
    ContainerStatus, Pod, PodCondition, PodStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

fn pod(name: &str, containers: Vec<ContainerStatus>) -> Pod {
    Pod {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..ObjectMeta::default()
        },
        status: Some(PodStatus {
            phase: Some("Pending".into()),
            container_statuses: (!containers.is_empty()).then_some(containers),
            ..PodStatus::default()
        }),
        ..Pod::default()
    }
}

fn waiting(reason: &str, message: &str, restarts: i32) -> ContainerStatus {
    ContainerStatus {
        name: "app".into(),
        restart_count: restarts,
        state: Some(ContainerState {
            waiting: Some(ContainerStateWaiting {
                reason: Some(reason.into()),
                message: (!message.is_empty()).then(|| message.into()),
            }),
            ..ContainerState::default()
        }),
        ..ContainerStatus::default()
    }
}

fn exited(code: i32, restarts: i32) -> ContainerStatus {
    ContainerStatus {
        name: "app".into(),
        restart_count: restarts,
        state: Some(ContainerState {
            terminated: Some(ContainerStateTerminated {
                exit_code: code,
                reason: Some(if code == 0 { "Completed" } else { "Error" }.into()),
                ..ContainerStateTerminated::default()
            }),
            ..ContainerState::default()
        }),
        ..ContainerStatus::default()
    }
}

fn running(ready: bool) -> ContainerStatus {
    ContainerStatus {
        name: "app".into(),
        ready,
        state: Some(ContainerState {
            running: Some(ContainerStateRunning::default()),
            ..ContainerState::default()
        }),
        ..ContainerStatus::default()
    }
}

#[test]
fn names_what_the_pods_report() {
    let pull = r#"Back-off pulling image "nope:v1""#;
    let cases: Vec<(&str, Vec<Pod>, &str)> = vec![
        ("no pods", vec![], "no pod of this revision exists"),
        (
            "image that cannot be pulled",
            vec![pod("web-v1-a", vec![waiting("ImagePullBackOff", pull, 0)])],
            r#"pod web-v1-a: container app ImagePullBackOff (Back-off pulling image "nope:v1")"#,
        ),
        (
            "crash loop counts restarts",
            vec![pod(
                "web-v1-a",
                vec![waiting("CrashLoopBackOff", "back-off 10s", 4)],
            )],
            "pod web-v1-a: container app CrashLoopBackOff (back-off 10s), restarted 4 times",
        ),
        (
            "a failed exit",
            vec![pod("web-v1-a", vec![exited(3, 1)])],
            "pod web-v1-a: container app Error (exit code 3), restarted 1 times",
        ),
        (
            "pods alike fold into one entry",
            vec![
                pod("web-v1-b", vec![waiting("ErrImagePull", "", 0)]),
                pod("web-v1-a", vec![waiting("ErrImagePull", "", 0)]),
                pod("web-v1-c", vec![waiting("ErrImagePull", "", 0)]),
            ],
            "pod web-v1-a and 2 more: container app ErrImagePull",
        ),
        (
            "the most common problem first",
            vec![
                pod(
                    "web-v1-a",
                    vec![waiting("CreateContainerConfigError", "bad env", 0)],
                ),
                pod("web-v1-b", vec![waiting("ErrImagePull", "", 0)]),
                pod("web-v1-c", vec![waiting("ErrImagePull", "", 0)]),
            ],
            "pod web-v1-b and 1 more: container app ErrImagePull; pod web-v1-a: container app CreateContainerConfigError (bad env)",
        ),
        (
            "a pod no container has started in",
            vec![pod("web-v1-a", vec![])],
            "pod web-v1-a: Pending, no container has started",
        ),
        (
            "running but not ready",
            vec![pod("web-v1-a", vec![running(false)])],
            "pod web-v1-a: container app is running but not ready",
        ),
        (
            "healthy pods",
            vec![pod("web-v1-a", vec![running(true)])],
            "1 pods exist and report no waiting container",
        ),
    ];
    for (what, pods, want) in cases {
        assert_eq!(describe(&pods), want, "{what}");
    }
}

#[test]
fn an_unschedulable_pod_says_so() {
    let mut p = pod("web-v1-a", vec![]);
    p.status.as_mut().unwrap().conditions = Some(vec![PodCondition {
        type_: "PodScheduled".into(),
        status: "False".into(),
        reason: Some("Unschedulable".into()),
        message: Some("0/1 nodes are available".into()),
        ..PodCondition::default()
    }]);
    assert_eq!(
        describe(&[p]),
        "pod web-v1-a: not scheduled: Unschedulable (0/1 nodes are available)"
    );
}

#[test]
fn long_messages_are_cut_and_many_problems_counted() {
    let long = "x".repeat(500);
    let pods: Vec<Pod> = (0..5)
        .map(|i| pod(&format!("p{i}"), vec![waiting(&format!("R{i}"), &long, 0)]))
        .collect();
    let text = describe(&pods);
    assert!(text.ends_with("; 2 other problems"), "{text}");
    assert!(text.len() < 3 * 260, "{} chars: {text}", text.len());
    assert!(text.contains('…'));
}
