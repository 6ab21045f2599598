//! `progressDeadline` on a revision whose pods never become available, the first included.

use super::super::*;
use super::fixtures::*;

const PULL: &str =
    r#"pod foobar-v1-x: container app ImagePullBackOff (Back-off pulling image "nope:v1")"#;

/// Plans as the controller does: when the plan asks what the pods report, fill it in and
/// plan again.
fn step_with_pods(h: &mut Harness, revision: i64, report: &str) -> Plan {
    let first = plan(&h.rollout, &h.obs, h.now);
    assert_eq!(
        first.inspect_pods,
        Some(revision),
        "the plan asks for the pods"
    );
    let mut obs = h.obs.clone();
    obs.revisions.get_mut(&revision).unwrap().pods = Some(report.into());
    let p = plan(&h.rollout, &obs, h.now);
    assert_eq!(p.inspect_pods, None, "asked once");
    h.apply_actions_only(&p);
    h.rollout.status = Some(p.status.clone());
    p
}

#[test]
fn first_revision_past_its_deadline_is_degraded_naming_the_pods_report() {
    let mut h = Harness::new(steps_basic());
    h.available_on_create = false;
    h.step();
    // The Deployment's write wakes the next reconcile, which sees when it was created.
    let p = h.step();
    assert_eq!(h.phase(), Phase::Progressing);
    assert_eq!(p.inspect_pods, None, "no pods read before the deadline");
    assert_eq!(
        p.requeue_after,
        Some(Duration::from_secs(600)),
        "wakes at the deadline"
    );
    h.tick(599);
    assert_eq!(h.step().inspect_pods, None);
    assert_eq!(h.phase(), Phase::Progressing);
    h.tick(1);
    let p = step_with_pods(&mut h, 1, PULL);
    assert_eq!(h.phase(), Phase::Degraded);
    let c = h.condition("Progressing");
    assert_eq!(
        (c.status.as_str(), c.reason.as_str()),
        ("False", "ProgressDeadlineExceeded")
    );
    assert!(c.message.contains("No progress for 10m"), "{}", c.message);
    assert!(c.message.contains("0/3 pods available"), "{}", c.message);
    assert!(c.message.contains(PULL), "{}", c.message);
    assert_eq!(h.status().message.as_deref(), Some(c.message.as_str()));
    let warnings: Vec<_> = p
        .events
        .iter()
        .filter(|e| e.reason == "ProgressDeadlineExceeded")
        .collect();
    assert_eq!(warnings.len(), 1, "{:?}", p.events);
    assert!(warnings[0].warning && warnings[0].message.contains(PULL));
    // Later reconciles keep the state without another Event.
    h.tick(30);
    let p = step_with_pods(&mut h, 1, PULL);
    assert_eq!(h.phase(), Phase::Degraded);
    assert!(p.events.is_empty(), "{:?}", p.events);
    // Pods that become available after all make it Healthy.
    h.make_available(1);
    h.step();
    assert_eq!(h.phase(), Phase::Healthy);
    assert_eq!(h.condition("Progressing").reason, "RolloutComplete");
}

#[test]
fn a_new_first_template_gets_its_own_deadline() {
    let mut h = Harness::new(steps_basic());
    h.available_on_create = false;
    h.step();
    h.tick(601);
    step_with_pods(&mut h, 1, PULL);
    assert_eq!(h.phase(), Phase::Degraded);
    h.change_template("v1-fixed");
    let p = h.step();
    assert!(p.actions.contains(&Action::EnsureRevision {
        revision: 2,
        replicas: 3
    }));
    assert_eq!(
        h.phase(),
        Phase::Progressing,
        "revision 2's clock starts at its creation"
    );
    assert_eq!(p.inspect_pods, None);
}

#[test]
fn a_canary_past_its_deadline_pauses_naming_the_pods_report() {
    let mut h = Harness::healthy(steps_basic());
    h.available_on_create = false;
    h.change_template("v2");
    h.step();
    assert_eq!(h.phase(), Phase::Progressing);
    h.tick(601);
    let report =
        "pod foobar-v2-x: container app CrashLoopBackOff (back-off 10s), restarted 5 times";
    let p = step_with_pods(&mut h, 2, report);
    assert_eq!(h.phase(), Phase::Paused);
    let c = h.condition("Progressing");
    assert_eq!(c.reason, "ProgressDeadlineExceeded");
    assert!(c.message.contains(report), "{}", c.message);
    assert!(
        p.events.iter().any(|e| e.message.contains(report)),
        "{:?}",
        p.events
    );
    assert_eq!(
        h.split(),
        split(&[("foobar-v1", 100), ("foobar-v2", 0)]),
        "stable keeps the traffic"
    );
}
