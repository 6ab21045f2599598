//! Table-driven tests of every planner rule; property tests live in `tests/proptests.rs`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod adopt;
mod deadline;
mod fixtures;
mod history;
mod proptests;
mod status_text;

use super::*;
use fixtures::*;
use weir_crds::rollout::Verdict;

#[test]
fn first_revision_waits_for_availability_then_is_healthy() {
    let mut h = Harness::new(steps_basic());
    h.available_on_create = false;
    let p = h.step();
    assert!(p.actions.contains(&Action::EnsureRootService));
    assert!(p.actions.contains(&Action::EnsureRevision {
        revision: 1,
        replicas: 3
    }));
    assert_eq!(h.split(), vec![("foobar-v1".to_string(), 100)]);
    assert_eq!(
        p.runs,
        vec![3],
        "no split routes traffic yet: root Service, revision and split are written at once"
    );
    assert_eq!(h.phase(), Phase::Progressing);
    assert!(h.status().message.unwrap().contains("0/3 pods available"));
    h.make_available(1);
    let p = h.step();
    assert_eq!(h.phase(), Phase::Healthy);
    assert_eq!(h.status().stable_revision, Some(1));
    assert_eq!(p.events[0].reason, "Available");
    assert!(h.step().actions.is_empty());
}

#[test]
fn template_change_walks_every_step_and_finalises_like_the_brief() {
    let mut h = Harness::healthy(vec![
        weight(20),
        pause_for("1m"),
        weight(50),
        pause(),
        analysis(),
        weight(80),
    ]);
    h.available_on_create = false;
    h.change_template("v2");
    let p = h.step();
    assert!(p.actions.contains(&Action::EnsureRevision {
        revision: 2,
        replicas: 3
    }));
    assert_eq!(p.events[0].reason, "RevisionCreated");
    // The brief's stage 1 (v2 at 0) is written while v2 becomes available.
    assert_eq!(h.split(), split(&[("foobar-v1", 100), ("foobar-v2", 0)]));
    assert_eq!(
        p.runs,
        vec![2],
        "the split gives the new revision 0: written with it"
    );
    assert_eq!(h.phase(), Phase::Progressing);
    h.make_available(2);
    let p = h.step();
    assert_eq!(h.split(), split(&[("foobar-v1", 80), ("foobar-v2", 20)]));
    assert_eq!(
        p.events
            .iter()
            .filter(|e| e.reason == "WeightChanged")
            .count(),
        1
    );
    assert!(
        p.events[0].message.contains("0 → 20 (step 1/6)"),
        "{:?}",
        p.events
    );
    assert_eq!(h.status().step_progress.as_deref(), Some("2/6"));
    assert_eq!(p.requeue_after, Some(Duration::from_secs(60)));
    h.tick(61);
    h.step();
    assert_eq!(h.split(), split(&[("foobar-v1", 50), ("foobar-v2", 50)]));
    assert_eq!(h.phase(), Phase::Paused);
    assert!(h.status().message.unwrap().contains("kubectl weir promote"));
    h.promote();
    h.step();
    assert_eq!(h.phase(), Phase::Progressing, "analysis gate");
    assert_eq!(h.status().current_step, Some(4));
    h.tick(30);
    h.check(Verdict::Pass);
    let p = h.step();
    assert!(p.events.iter().any(|e| e.reason == "AnalysisPassed"));
    // After the last weight step, finalisation: v2 alone, v1's Service deleted at once.
    assert_eq!(h.split(), split(&[("foobar-v2", 100)]));
    assert!(p.actions.contains(&Action::DeleteService { revision: 1 }));
    let write = p
        .actions
        .iter()
        .position(|a| matches!(a, Action::WriteSplit { .. }))
        .unwrap();
    let delete = p
        .actions
        .iter()
        .position(|a| a == &Action::DeleteService { revision: 1 })
        .unwrap();
    assert!(
        write < delete,
        "v1 leaves the split before its Service goes"
    );
    assert!(
        !p.actions
            .contains(&Action::DeleteDeployment { revision: 1 })
    );
    assert_eq!(h.phase(), Phase::Healthy);
    assert_eq!(h.status().stable_revision, Some(2));
    assert_eq!(h.status().canary_revision, None);
    assert!(p.events.iter().any(|e| e.reason == "Promoted"));
}

#[test]
fn old_deployment_is_deleted_after_scale_down_delay() {
    let mut h = Harness::healthy(vec![weight(100)]);
    h.change_template("v2");
    h.step();
    let p = h.step();
    assert_eq!(h.status().stable_revision, Some(2));
    assert_eq!(p.requeue_after, Some(Duration::from_secs(30)));
    h.tick(29);
    assert!(
        !h.step()
            .actions
            .iter()
            .any(|a| matches!(a, Action::DeleteDeployment { .. }))
    );
    h.tick(1);
    let p = h.step();
    assert_eq!(p.actions, vec![Action::DeleteDeployment { revision: 1 }]);
    assert!(h.obs.revisions.keys().eq([2].iter()));
    assert_eq!(h.status().scale_down_at, None);
    assert!(h.step().actions.is_empty());
}

#[test]
fn abort_resets_weights_at_once_and_scales_the_canary_down_after_the_delay() {
    let mut h = Harness::in_canary(vec![weight(30), pause()]);
    assert_eq!(h.status().weights.unwrap().canary, 30);
    h.set_status(|s| s.abort = true);
    let p = h.step();
    assert_eq!(
        p.actions,
        vec![Action::WriteSplit {
            backends: split(&[("foobar-v1", 100), ("foobar-v2", 0)])
        }],
        "the canary keeps its pods for scaleDownDelay"
    );
    assert!(
        p.status_with_last_run,
        "the split and the status go at once"
    );
    assert_eq!(p.requeue_after, Some(Duration::from_secs(30)));
    assert!(
        p.events[0]
            .message
            .contains("scaled to 0 after scaleDownDelay (30s)")
    );
    h.tick(29);
    assert!(h.step().actions.is_empty(), "not before the delay");
    h.tick(1);
    let later = h.step();
    assert_eq!(
        later.actions,
        vec![Action::ScaleRevision {
            revision: 2,
            replicas: 0
        }]
    );
    assert!(
        !later.status_with_last_run,
        "a scale-down is teardown: the status follows it"
    );
    assert_eq!(h.phase(), Phase::Aborted);
    assert_eq!(
        h.status().weights,
        Some(StepWeights {
            stable: 100,
            canary: 0
        })
    );
    assert_eq!(p.events[0].reason, "Aborted");
    assert!(p.events[0].warning);
    assert!(h.step().actions.is_empty(), "abort is idempotent");
    assert!(h.step().events.is_empty());
}

#[test]
fn abort_with_no_scale_down_delay_scales_the_canary_down_right_after_the_split() {
    let mut h = Harness::in_canary(vec![weight(30), pause()]);
    h.rollout.spec.scale_down_delay = Some("0s".into());
    h.set_status(|s| s.abort = true);
    let p = h.step();
    assert_eq!(
        p.actions,
        vec![
            Action::WriteSplit {
                backends: split(&[("foobar-v1", 100), ("foobar-v2", 0)])
            },
            Action::ScaleRevision {
                revision: 2,
                replicas: 0
            }
        ]
    );
    assert!(p.events[0].message.contains("foobar-v2 is scaled to 0; "));
}

#[test]
fn retry_within_the_scale_down_delay_walks_the_canary_that_kept_its_pods() {
    let mut h = Harness::in_canary(vec![weight(30), pause()]);
    h.set_status(|s| s.abort = true);
    h.step();
    h.set_status(|s| s.abort = false);
    let p = h.step();
    assert_eq!(
        p.events.iter().filter(|e| e.reason == "Retried").count(),
        1,
        "{:?}",
        p.events
    );
    assert!(
        !p.actions
            .iter()
            .any(|a| matches!(a, Action::EnsureRevision { .. }))
    );
    assert_eq!(h.split(), split(&[("foobar-v1", 70), ("foobar-v2", 30)]));
    assert_eq!(h.phase(), Phase::Paused);
}

#[test]
fn retry_restarts_the_same_revision_from_step_zero() {
    let mut h = Harness::in_canary(vec![weight(30), pause()]);
    h.set_status(|s| s.abort = true);
    h.step();
    h.tick(30);
    h.step(); // the canary scaled down after scaleDownDelay
    h.set_status(|s| s.abort = false);
    let p = h.step();
    assert!(p.events.iter().any(|e| e.reason == "Retried"));
    assert!(p.actions.contains(&Action::EnsureRevision {
        revision: 2,
        replicas: 3
    }));
    assert_eq!(h.status().canary_revision, Some(2));
    assert_eq!(h.status().current_step, Some(0));
    assert_eq!(
        h.phase(),
        Phase::Progressing,
        "waits for the canary to scale back up"
    );
    h.step();
    assert_eq!(h.split(), split(&[("foobar-v1", 70), ("foobar-v2", 30)]));
    assert_eq!(h.phase(), Phase::Paused);
}

#[test]
fn failed_checks_over_the_limit_roll_back_automatically() {
    let mut h = Harness::in_canary(vec![weight(10), analysis(), weight(100)]);
    for n in 1..=2 {
        h.tick(30);
        h.check(Verdict::Fail);
        let p = h.step();
        assert_eq!(h.status().analysis.unwrap().failures, n);
        assert_eq!(h.phase(), Phase::Progressing);
        assert!(
            p.events
                .iter()
                .any(|e| e.reason == "AnalysisFailed" && e.message.contains("Halt"))
        );
    }
    h.tick(30);
    h.check(Verdict::Fail);
    let p = h.step();
    assert_eq!(
        p.actions[0],
        Action::WriteSplit {
            backends: split(&[("foobar-v1", 100), ("foobar-v2", 0)])
        }
    );
    assert_eq!(h.phase(), Phase::Aborted);
    let aborted = h.condition("Aborted");
    assert_eq!(aborted.reason, "AnalysisFailed");
    assert!(p.events.iter().any(|e| e.reason == "RolledBack"));
}

#[test]
fn inconclusive_error_or_missing_verdicts_never_promote() {
    for verdict in [Some(Verdict::Inconclusive), Some(Verdict::Error), None] {
        let mut h = Harness::in_canary(vec![weight(10), analysis(), weight(100)]);
        for _ in 0..5 {
            h.tick(30);
            h.check_with(verdict);
            h.step();
            assert_eq!(h.status().current_step, Some(1), "{verdict:?}");
            assert_eq!(h.status().stable_revision, Some(1));
        }
    }
}

#[test]
fn three_errors_in_a_row_pause_and_data_returning_resumes() {
    let mut h = Harness::in_canary(vec![weight(10), analysis(), weight(100)]);
    for _ in 0..3 {
        h.tick(30);
        h.check(Verdict::Error);
        h.step();
    }
    assert_eq!(h.phase(), Phase::Paused);
    assert!(conditions::is_true(
        &h.status().conditions,
        conditions::Type::AnalysisError
    ));
    // More errors while paused: each is its own AnalysisError Event, but no new Paused one.
    h.tick(30);
    h.check(Verdict::Error);
    let p = h.step();
    assert_eq!(
        p.events.iter().map(|e| e.reason).collect::<Vec<_>>(),
        ["AnalysisError"]
    );
    assert!(
        h.status()
            .message
            .unwrap()
            .contains("failed 4 times in a row")
    );
    h.tick(30);
    h.check(Verdict::Inconclusive);
    let p = h.step();
    assert!(p.events.iter().any(|e| e.reason == "AnalysisResumed"));
    assert!(!conditions::is_true(
        &h.status().conditions,
        conditions::Type::AnalysisError
    ));
    assert_eq!(h.phase(), Phase::Progressing);
}

#[test]
fn a_check_is_counted_once() {
    let mut h = Harness::in_canary(vec![weight(10), analysis_checks(2), weight(100)]);
    h.tick(30);
    h.check(Verdict::Pass);
    let kept = h.obs.check.clone();
    h.step();
    h.obs.check = kept;
    h.step();
    assert_eq!(h.status().analysis.unwrap().checks, 1);
}

#[test]
fn promote_moves_past_one_step_only_and_stale_requests_are_dropped() {
    let mut h = Harness::in_canary(vec![weight(10), pause(), weight(20), pause(), weight(100)]);
    assert_eq!(h.status().current_step, Some(1));
    h.promote();
    h.step();
    assert_eq!(h.status().current_step, Some(3));
    assert_eq!(h.status().weights.unwrap().canary, 20);
    h.set_status(|s| s.promote_step = Some(1));
    h.step();
    assert_eq!(h.status().current_step, Some(3));
    assert_eq!(h.status().promote_step, None);
}

#[test]
fn promote_full_goes_straight_to_the_canary_alone() {
    let mut h = Harness::in_canary(vec![weight(10), pause(), weight(50), pause()]);
    h.set_status(|s| s.promote_full = true);
    let p = h.step();
    assert_eq!(h.split(), split(&[("foobar-v2", 100)]));
    assert_eq!(h.status().stable_revision, Some(2));
    assert!(!h.status().promote_full);
    assert!(p.events.iter().any(|e| e.reason == "PromotedFull"));
}

#[test]
fn pause_holds_the_weights_and_resume_continues() {
    let mut h = Harness::in_canary(vec![weight(10), pause_for("10s"), weight(60), pause()]);
    h.rollout.spec.paused = true;
    h.tick(20);
    let p = h.step();
    assert!(p.actions.is_empty());
    assert_eq!(h.phase(), Phase::Paused);
    assert_eq!(h.status().weights.unwrap().canary, 10);
    assert!(h.status().message.unwrap().contains("kubectl weir resume"));
    h.rollout.spec.paused = false;
    h.step();
    assert_eq!(h.status().weights.unwrap().canary, 60);
}

#[test]
fn template_change_mid_rollout_supersedes_and_starts_over_from_stable() {
    let mut h = Harness::in_canary(vec![weight(40), pause()]);
    h.change_template("v3");
    let p = h.step();
    assert!(p.events.iter().any(|e| e.reason == "CanarySuperseded"));
    assert_eq!(h.status().canary_revision, Some(3));
    assert!(p.actions.contains(&Action::DeleteService { revision: 2 }));
    let writes: Vec<&Action> = p
        .actions
        .iter()
        .filter(|a| matches!(a, Action::WriteSplit { .. }))
        .collect();
    assert_eq!(
        writes,
        vec![
            &Action::WriteSplit {
                backends: split(&[("foobar-v1", 100), ("foobar-v3", 0)])
            },
            &Action::WriteSplit {
                backends: split(&[("foobar-v1", 60), ("foobar-v3", 40)])
            },
        ],
        "the old canary's traffic goes back to stable before the new canary gets any"
    );
}

#[test]
fn template_reverted_to_stable_abandons_the_canary() {
    let mut h = Harness::in_canary(vec![weight(40), pause()]);
    h.change_template("v1");
    let p = h.step();
    assert!(p.events.iter().any(|e| e.reason == "CanaryAbandoned"));
    assert_eq!(h.split(), split(&[("foobar-v1", 100)]));
    assert_eq!(h.phase(), Phase::Healthy);
}

#[test]
fn progress_deadline_pauses_a_stuck_step() {
    let mut h = Harness::in_canary(vec![weight(10), analysis(), weight(100)]);
    h.tick(601);
    h.step();
    assert_eq!(h.phase(), Phase::Paused);
    let c = h.condition("Progressing");
    assert_eq!(c.reason, "ProgressDeadlineExceeded");
    assert!(c.message.contains("kubectl weir promote"));
    h.check(Verdict::Pass);
    h.step();
    assert_eq!(
        h.status().stable_revision,
        Some(2),
        "a passing check still moves on"
    );
}

#[test]
fn invalid_selector_sets_invalid_spec_and_writes_nothing() {
    let mut h = Harness::new(steps_basic());
    h.rollout.spec.selector.match_labels = Some([("app".to_string(), "other".to_string())].into());
    let p = h.step();
    assert!(p.actions.is_empty());
    assert_eq!(h.phase(), Phase::Degraded);
    let c = h.condition("InvalidSpec");
    assert!(
        c.message.contains("does not match the template's labels"),
        "{}",
        c.message
    );
    assert_eq!(p.events.len(), 1);
    assert!(
        h.step().events.is_empty(),
        "the same problem is reported once"
    );
}

#[test]
fn analysis_step_without_analysis_is_invalid_spec() {
    let mut h = Harness::new(vec![weight(10), analysis()]);
    h.rollout.spec.strategy.as_mut().unwrap().analysis = None;
    h.step();
    let c = h.condition("InvalidSpec");
    assert!(
        c.message
            .contains("spec.strategy.steps[1] is an analysis gate"),
        "{}",
        c.message
    );
}

#[test]
fn a_revision_written_before_a_restart_is_reused_not_duplicated() {
    let mut h = Harness::healthy(vec![weight(10), pause()]);
    h.change_template("v2");
    let p = plan(&h.rollout, &h.obs, h.now);
    h.apply_actions_only(&p);
    h.step();
    assert_eq!(h.status().canary_revision, Some(2));
    assert_eq!(h.obs.revisions.len(), 2);
}

#[test]
fn children_deleted_by_hand_are_recreated() {
    let mut h = Harness::healthy(vec![weight(10), pause()]);
    h.obs.split = None;
    h.obs.services.clear();
    h.obs.root_service = false;
    let p = h.step();
    assert!(p.actions.contains(&Action::EnsureRootService));
    assert!(p.actions.contains(&Action::EnsureRevision {
        revision: 1,
        replicas: 3
    }));
    assert!(p.actions.contains(&Action::WriteSplit {
        backends: split(&[("foobar-v1", 100)])
    }));
}

#[test]
fn check_is_due_one_interval_after_the_step_and_each_check() {
    let mut h = Harness::in_canary(vec![weight(10), analysis(), weight(100)]);
    assert!(!check_due(&h.rollout, h.now));
    h.tick(29);
    assert!(!check_due(&h.rollout, h.now));
    h.tick(1);
    assert!(check_due(&h.rollout, h.now));
    h.check(Verdict::Inconclusive);
    h.step();
    assert!(!check_due(&h.rollout, h.now));
    h.rollout.spec.paused = true;
    h.tick(60);
    assert!(!check_due(&h.rollout, h.now));
}

#[test]
fn template_hash_is_stable_and_sensitive() {
    let a = fixtures::template("v1");
    assert_eq!(template_hash(&a), template_hash(&a.clone()));
    assert_ne!(template_hash(&a), template_hash(&fixtures::template("v2")));
    assert_eq!(template_hash(&a).len(), 10);
}

#[test]
fn a_root_service_owned_by_someone_else_is_invalid_spec() {
    let mut h = Harness::new(steps_basic());
    h.obs.root_service = true;
    h.obs.root_service_conflict = Some("Rollout other".into());
    let p = h.step();
    assert!(
        p.actions.is_empty(),
        "nothing is written over another owner's Service"
    );
    let c = h.condition("InvalidSpec");
    assert!(
        c.message.contains("belongs to Rollout other"),
        "{}",
        c.message
    );
    assert!(c.message.contains("spec.service.name"), "{}", c.message);
}

#[test]
fn a_stable_revision_deleted_mid_canary_is_restored_from_its_kept_template() {
    let mut h = Harness::in_canary(vec![weight(30), pause()]);
    assert!(h.step().actions.is_empty());
    h.obs.revisions.remove(&1);
    let p = h.step();
    assert_eq!(
        p.actions,
        vec![Action::RestoreRevision {
            revision: 1,
            replicas: 3
        }]
    );
    assert!(h.step().actions.is_empty(), "restored once");
    // The canary's own Deployment comes from the spec, as before.
    h.obs.revisions.remove(&2);
    assert!(h.step().actions.contains(&Action::EnsureRevision {
        revision: 2,
        replicas: 3
    }));
}

#[test]
fn a_split_sending_traffic_to_a_revision_restored_in_the_same_plan_waits_for_it() {
    let mut h = Harness::in_canary(vec![weight(30), pause()]);
    h.obs.revisions.remove(&1);
    // The split was also changed by hand: the plan restores stable and rewrites the split,
    // which gives stable 70.
    h.obs.split = Some(split(&[("foobar-v1", 0), ("foobar-v2", 100)]));
    let p = h.step();
    assert_eq!(
        p.actions,
        vec![
            Action::RestoreRevision {
                revision: 1,
                replicas: 3
            },
            Action::WriteSplit {
                backends: split(&[("foobar-v1", 70), ("foobar-v2", 30)])
            }
        ]
    );
    assert_eq!(
        p.runs,
        vec![1, 1],
        "the restore is written before the split"
    );
}
