//! What `kubectl describe rollout` and `kubectl get rollouts` read from the status at
//! each phase: the STEP column, conditions that agree with the phase, Event texts.

use super::*;

#[test]
fn step_column_reads_n_of_n_once_healthy_first_revision_and_after_promotion() {
    let mut h = Harness::healthy(vec![weight(20), pause(), weight(100)]);
    assert_eq!(h.status().step_progress.as_deref(), Some("3/3"));
    h.change_template("v2");
    h.step();
    h.step();
    assert_eq!(h.status().step_progress.as_deref(), Some("2/3"));
    h.promote();
    h.step();
    assert_eq!(h.phase(), Phase::Healthy);
    assert_eq!(h.status().step_progress.as_deref(), Some("3/3"));
}

#[test]
fn an_aborted_rollout_keeps_the_step_it_stopped_at_and_its_conditions_agree() {
    let mut h = Harness::in_canary(vec![weight(30), pause(), weight(100)]);
    h.set_status(|s| s.abort = true);
    h.step();
    assert_eq!(h.phase(), Phase::Aborted);
    assert_eq!(h.status().step_progress.as_deref(), Some("2/3"));
    let completed = h.condition("Completed");
    assert_eq!(
        (completed.status.as_str(), completed.reason.as_str()),
        ("False", "RolloutAborted")
    );
    assert_eq!(Some(completed.message), h.status().message);
}

#[test]
fn weight_events_name_the_revision_so_revisions_never_fold_together() {
    let mut h = Harness::healthy(vec![weight(20), pause()]);
    h.change_template("v2");
    let mut events = h.step().events;
    events.extend(h.step().events);
    let weight_event = events.iter().find(|e| e.reason == "WeightChanged");
    assert_eq!(
        weight_event.map(|e| e.message.as_str()),
        Some("Canary weight 0 → 20 (step 1/2): foobar-v2 takes 20% of traffic")
    );
}

#[test]
fn the_failure_that_crosses_the_limit_says_so() {
    let mut h = Harness::in_canary(vec![weight(10), analysis(), weight(100)]);
    let mut texts = Vec::new();
    for _ in 0..3 {
        h.tick(30);
        h.check(Verdict::Fail);
        let p = h.step();
        texts.extend(
            p.events
                .into_iter()
                .filter(|e| e.reason == "AnalysisFailed")
                .map(|e| e.message),
        );
    }
    assert_eq!(
        texts,
        [
            "Halt: success rate 91.2% < 99% (failure 1 of 2 tolerated)",
            "Halt: success rate 91.2% < 99% (failure 2 of 2 tolerated)",
            "Halt: success rate 91.2% < 99% (failure 3, over the 2 tolerated)",
        ]
    );
}

#[test]
fn available_speaks_of_stable_during_a_canary() {
    let h = Harness::in_canary(vec![weight(20), pause()]);
    let available = h.condition("Available");
    assert_eq!(available.status, "True");
    assert_eq!(available.message, "Stable revision foobar-v1 is available");
}
