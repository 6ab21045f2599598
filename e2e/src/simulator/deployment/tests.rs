use super::*;
use crate::simulator::fixtures::{mk_deployment, mk_owned_pod};
use k8s_openapi::api::apps::v1::DeploymentStrategy;

fn now() -> Timestamp {
    "2026-11-25T12:00:00Z".parse().unwrap()
}

fn secs(n: i64) -> SignedDuration {
    SignedDuration::from_secs(n)
}

#[test]
fn new_replica_set_carries_hash_owner_and_revision() {
    let d = mk_deployment(3, "weir-demo:v1");
    let rs = new_replica_set(&d, "abcdefghjk", 4).unwrap();
    assert_eq!(rs.metadata.name.as_deref(), Some("web-abcdefghjk"));
    assert_eq!(revision(&rs), 4);
    let owner = &rs.metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.uid.as_str()),
        ("Deployment", "uid-web")
    );
    assert_eq!(owner.controller, Some(true));
    let spec = &rs.spec;
    assert_eq!(spec.replicas, Some(3));
    let sel = spec.selector.match_labels.as_ref().unwrap();
    assert_eq!(sel[HASH_LABEL], "abcdefghjk");
    let tlabels = spec
        .template
        .as_ref()
        .unwrap()
        .metadata
        .as_ref()
        .unwrap()
        .labels
        .as_ref()
        .unwrap();
    assert_eq!(tlabels[HASH_LABEL], "abcdefghjk");
    assert_eq!(tlabels["app"], "web");
}

#[test]
fn new_pod_is_owned_labelled_and_defaults_service_account() {
    let d = mk_deployment(1, "weir-demo:v1");
    let rs = new_replica_set(&d, "abcdefghjk", 1).unwrap();
    let mut rs = rs;
    rs.metadata.uid = Some("uid-rs".into());
    let pod = new_pod(&rs, "web-abcdefghjk-xxxxx".into()).unwrap();
    assert!(controlled_by(&pod.metadata, "uid-rs"));
    let labels = pod.metadata.labels.as_ref().unwrap();
    assert_eq!(labels[HASH_LABEL], "abcdefghjk");
    assert_eq!(labels["app"], "web");
    let spec = pod.spec.unwrap();
    assert_eq!(spec.service_account_name.as_deref(), Some("default"));
}

#[test]
fn old_replica_sets_keep_what_the_new_one_lacks() {
    let d = mk_deployment(3, "weir-demo:v2");
    let old = vec![
        ("web-new-old".to_string(), 2),
        ("web-oldest".to_string(), 3),
    ];
    assert_eq!(
        scale_old(&d, 0, &old),
        [("web-new-old".into(), 2), ("web-oldest".into(), 1)]
    );
    assert_eq!(
        scale_old(&d, 2, &old),
        [("web-new-old".into(), 1), ("web-oldest".into(), 0)]
    );
    assert_eq!(
        scale_old(&d, 3, &old),
        [("web-new-old".into(), 0), ("web-oldest".into(), 0)]
    );
}

#[test]
fn recreate_scales_old_to_zero_at_once() {
    let mut d = mk_deployment(3, "weir-demo:v2");
    d.spec.strategy = Some(DeploymentStrategy {
        type_: Some("Recreate".into()),
        rolling_update: None,
    });
    assert_eq!(scale_old(&d, 0, &[("a".into(), 3)]), [("a".into(), 0)]);
}

#[test]
fn pods_to_delete_prefers_not_ready_then_newest() {
    let mut a = mk_owned_pod("a", "rs", true);
    let b = mk_owned_pod("b", "rs", false);
    let mut c = mk_owned_pod("c", "rs", true);
    a.metadata.creation_timestamp = Some(Time(now()));
    c.metadata.creation_timestamp = Some(Time(now() + secs(5)));
    assert_eq!(pods_to_delete([&a, &b, &c], 2), ["b", "c"]);
    let mut gone = mk_owned_pod("d", "rs", false);
    gone.metadata.deletion_timestamp = Some(Time(now()));
    assert_eq!(pods_to_delete([&gone, &a], 5), ["a"]);
}

#[test]
fn counts_respect_min_ready_seconds() {
    let mut p = mk_owned_pod("a", "rs", true);
    let cond = &mut p.status.as_mut().unwrap().conditions.as_mut().unwrap()[0];
    cond.last_transition_time = Some(Time(now()));
    let q = mk_owned_pod("b", "rs", false);
    let c = PodCounts::of([&p, &q], 0, now());
    assert_eq!(
        c,
        PodCounts {
            replicas: 2,
            ready: 1,
            available: 1
        }
    );
    let c = PodCounts::of([&p, &q], 10, now());
    assert_eq!(c.available, 0);
    let c = PodCounts::of([&p, &q], 10, now() + secs(10));
    assert_eq!(c.available, 1);
}

#[test]
fn status_reports_counts_generation_and_conditions() {
    let d = mk_deployment(3, "weir-demo:v1");
    let full = PodCounts {
        replicas: 3,
        ready: 3,
        available: 3,
    };
    let st = deployment_status(&d, "web-x", full, full, now());
    assert_eq!(st.observed_generation, Some(2));
    assert_eq!(
        (
            st.replicas,
            st.ready_replicas,
            st.available_replicas,
            st.updated_replicas
        ),
        (Some(3), Some(3), Some(3), Some(3))
    );
    let conds = st.conditions.as_ref().unwrap();
    assert_eq!(conds[0].type_.as_deref(), Some("Available"));
    assert_eq!(conds[0].status.as_deref(), Some("True"));
    assert_eq!(conds[1].reason.as_deref(), Some("NewReplicaSetAvailable"));
}

#[test]
fn status_is_unavailable_below_budget_and_keeps_transition_times() {
    let mut d = mk_deployment(3, "weir-demo:v1");
    let some = PodCounts {
        replicas: 3,
        ready: 1,
        available: 1,
    };
    let st = deployment_status(&d, "web-x", some, some, now());
    let conds = st.conditions.clone().unwrap();
    assert_eq!(conds[0].status.as_deref(), Some("False"));
    assert_eq!(conds[1].reason.as_deref(), Some("ReplicaSetUpdated"));
    assert_eq!(st.unavailable_replicas, Some(2));
    d.status = Some(st.clone());
    let later = now() + secs(30);
    let again = deployment_status(&d, "web-x", some, some, later);
    assert_eq!(
        again.conditions.as_ref().unwrap()[0].last_transition_time,
        Some(Time(now()))
    );
    assert!(!status_changed(Some(&st), &again));
    let full = PodCounts {
        replicas: 3,
        ready: 3,
        available: 3,
    };
    let done = deployment_status(&d, "web-x", full, full, later);
    assert!(status_changed(Some(&st), &done));
    assert_eq!(
        done.conditions.as_ref().unwrap()[0].last_transition_time,
        Some(Time(later))
    );
}
