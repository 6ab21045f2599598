//! Property tests over random sequences of template changes, verdicts, commands,
//! clock ticks and controller crashes.
//!
//! A crash is not an operation of its own: any step of a history may crash, and the crash
//! lands on the first plan of that reconcile that writes something. Either its writes apply
//! and its status write is lost, and the restarted controller plans again from the old
//! status (so a template change that crashes loses the status write of the plan creating the
//! new Deployment, the case a crash-safe planner must get right); or, when the plan lets the
//! status go at once with its last run of writes, the status lands and that run is lost.

use super::super::*;
use super::fixtures::*;
use proptest::prelude::*;
use weir_crds::rollout::Verdict;

/// The analysis gate's index in [`steps`].
const GATE: i32 = 3;

fn steps() -> Vec<weir_crds::rollout::Step> {
    vec![
        weight(10),
        pause_for("1m"),
        weight(30),
        analysis(),
        weight(60),
        pause(),
        weight(90),
    ]
}

#[derive(Debug, Clone)]
enum Op {
    ChangeTemplate(u8),
    Check(Option<Verdict>),
    Promote,
    PromoteFull,
    Abort,
    Retry,
    Pause,
    Resume,
    Tick(i64),
}

/// What a crash loses.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Crash {
    /// The status write (the writes before it apply).
    Status,
    /// The last run of writes, when the status goes at once with it (the status applies).
    LastRun,
}

/// One step of a history: an operation, and whether the controller crashes in the
/// reconcile that follows it.
#[derive(Debug, Clone)]
struct Event {
    op: Op,
    crash: Option<Crash>,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        2 => (1u8..4).prop_map(Op::ChangeTemplate),
        4 => prop_oneof![
            Just(Some(Verdict::Pass)),
            Just(Some(Verdict::Fail)),
            Just(Some(Verdict::Inconclusive)),
            Just(Some(Verdict::Error)),
            Just(None)
        ]
        .prop_map(Op::Check),
        2 => Just(Op::Promote),
        1 => Just(Op::PromoteFull),
        1 => Just(Op::Abort),
        1 => Just(Op::Retry),
        1 => Just(Op::Pause),
        1 => Just(Op::Resume),
        4 => (1i64..700).prop_map(Op::Tick),
    ]
}

fn event() -> impl Strategy<Value = Event> {
    let crash = prop_oneof![
        7 => Just(None),
        2 => Just(Some(Crash::Status)),
        1 => Just(Some(Crash::LastRun)),
    ];
    (op(), crash).prop_map(|(op, crash)| Event { op, crash })
}

/// Checks that the runs written at once cover the actions and hold only independent writes:
/// no teardown, no adoption step, no object twice, and no traffic sent to a Service created
/// in the same run while a split routes traffic.
fn check_runs(h: &Harness, p: &Plan) -> Result<(), TestCaseError> {
    prop_assert_eq!(p.runs.iter().sum::<usize>(), p.actions.len(), "{:?}", p);
    prop_assert!(p.runs.iter().all(|n| *n > 0), "{:?}", p.runs);
    let mut at = 0;
    for n in &p.runs {
        let run = &p.actions[at..at + n];
        at += n;
        if run.len() < 2 {
            continue;
        }
        let mut revisions = std::collections::BTreeSet::new();
        let mut created = Vec::new();
        for a in run {
            match a {
                Action::EnsureRootService | Action::WriteSplit { .. } => {}
                Action::EnsureRevision { revision, .. }
                | Action::RestoreRevision { revision, .. } => {
                    prop_assert!(
                        revisions.insert(*revision),
                        "revision {} twice in {:?}",
                        revision,
                        run
                    );
                    created.push(format!(
                        "{}-v{revision}",
                        h.rollout.metadata.name.as_deref().unwrap_or_default()
                    ));
                }
                Action::ScaleRevision { revision, .. } => {
                    prop_assert!(
                        revisions.insert(*revision),
                        "revision {} twice in {:?}",
                        revision,
                        run
                    );
                }
                other => prop_assert!(false, "{:?} written at once with {:?}", other, run),
            }
        }
        let splits: Vec<_> = run
            .iter()
            .filter(|a| matches!(a, Action::WriteSplit { .. }))
            .collect();
        prop_assert!(splits.len() <= 1, "{:?}", run);
        if let Some(Action::WriteSplit { backends }) = splits.first()
            && h.obs.split.is_some()
        {
            prop_assert!(
                backends
                    .iter()
                    .all(|(s, w)| *w == 0 || !created.contains(s)),
                "traffic sent to a Service created at once with the split: {:?}",
                run
            );
        }
    }
    Ok(())
}

/// Checks that the split gives the status's stable and canary revisions the weights the
/// status records.
fn check_split_matches_status(h: &Harness, status: &RolloutStatus) -> Result<(), TestCaseError> {
    let (Some(w), Some(split)) = (status.weights, &h.obs.split) else {
        return Ok(());
    };
    let weight_of = |revision: Option<i64>| {
        let service = format!("foobar-v{}", revision?);
        split.iter().find(|(s, _)| *s == service).map(|(_, w)| *w)
    };
    if let Some(canary) = weight_of(status.canary_revision) {
        prop_assert_eq!(
            canary,
            w.canary,
            "canary weight: split {:?}, status {:?}",
            split,
            w
        );
    }
    if let Some(stable) = weight_of(status.stable_revision) {
        prop_assert_eq!(
            stable,
            w.stable,
            "stable weight: split {:?}, status {:?}",
            split,
            w
        );
    }
    Ok(())
}

/// Checks the invariants of one plan made from `before`.
fn check_plan(h: &Harness, before: &RolloutStatus, p: &Plan) -> Result<(), TestCaseError> {
    if let Some(w) = p.status.weights {
        prop_assert_eq!(w.stable + w.canary, 100, "weights {:?}", w);
        prop_assert!((0..=100).contains(&w.canary));
    }
    for a in &p.actions {
        if let Action::WriteSplit { backends } = a {
            prop_assert_eq!(backends.iter().map(|(_, w)| w).sum::<i32>(), 100);
        }
    }
    if p.status.abort
        && let Some(i) = p
            .actions
            .iter()
            .position(|a| matches!(a, Action::WriteSplit { .. }))
    {
        prop_assert_eq!(i, 0, "abort's first write is the split: {:?}", p.actions);
        let Action::WriteSplit { backends } = &p.actions[0] else {
            unreachable!()
        };
        prop_assert_eq!(
            backends[0].1,
            100,
            "stable takes everything: {:?}",
            backends
        );
    }
    check_runs(h, p)?;
    // Only an explicit promotion of the gate itself, or a full promotion, may pass it
    // without a Pass: a Promote of an earlier step must stop at the gate.
    let promoted_by_user = before.promote_full || before.promote_step == Some(GATE);
    let from = before.current_step.unwrap_or(i32::MAX);
    let finished =
        before.canary_revision.is_some() && p.status.stable_revision == before.canary_revision;
    let to = if finished {
        steps().len() as i32
    } else {
        p.status.current_step.unwrap_or(i32::MIN)
    };
    let same_canary = p.status.canary_revision == before.canary_revision || finished;
    if same_canary && from <= GATE && to > GATE && !promoted_by_user {
        let verdict = h.obs.check.as_ref().and_then(|c| c.verdict);
        prop_assert_eq!(
            verdict,
            Some(Verdict::Pass),
            "the gate was passed without a passing check"
        );
    }
    // A Deployment written before a crash lost the status write is reused, never duplicated.
    let current = &h.obs.template_hash;
    let floor = before
        .stable_revision
        .max(before.canary_revision)
        .unwrap_or(0);
    let orphan = h
        .obs
        .revisions
        .iter()
        .any(|(rev, r)| *rev > floor && &r.template_hash == current);
    for a in &p.actions {
        if let Action::EnsureRevision { revision, .. } = a {
            let new = !h.obs.revisions.contains_key(revision);
            prop_assert!(
                !(new && orphan),
                "created revision {} beside an orphan: {:?}",
                revision,
                h.obs.revisions
            );
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn planner_invariants_hold_over_random_histories(events in prop::collection::vec(event(), 1..40)) {
        let mut h = Harness::healthy(steps());
        for Event { op, crash } in &events {
            match op {
                Op::ChangeTemplate(v) => h.change_template(&format!("v{v}")),
                Op::Check(v) => {
                    if check_due(&h.rollout, h.now) {
                        h.check_with(*v);
                    }
                }
                Op::Promote => h.promote(),
                Op::PromoteFull => h.set_status(|s| s.promote_full = true),
                Op::Abort => h.set_status(|s| s.abort = true),
                Op::Retry => h.set_status(|s| s.abort = false),
                Op::Pause => h.rollout.spec.paused = true,
                Op::Resume => h.rollout.spec.paused = false,
                Op::Tick(s) => h.tick(*s),
            }
            // One reconcile: plan and apply until the plan waits (a weight change asks to
            // continue at once), with new pods not yet ready.
            h.available_on_create = false;
            let mut crash = *crash;
            for _ in 0..20 {
                let before = h.status();
                let p = plan(&h.rollout, &h.obs, h.now);
                check_plan(&h, &before, &p)?;
                if crash == Some(Crash::LastRun) && p.status_with_last_run && !p.actions.is_empty() {
                    // Killed while the last run and the status were in flight: the status
                    // landed, the run did not; the restarted controller plans from it.
                    let last = p.runs.last().copied().unwrap_or(0);
                    h.apply_actions_only(&Plan {
                        actions: p.actions[..p.actions.len() - last].to_vec(),
                        ..p.clone()
                    });
                    h.obs.check = None;
                    h.rollout.status = Some(p.status.clone());
                    crash = None;
                    continue;
                }
                h.apply_actions_only(&p);
                if crash.is_some() && !p.actions.is_empty() {
                    // Killed after the writes: the status write is lost, and the restarted
                    // controller plans again from the old status (the check result with it).
                    crash = None;
                    continue;
                }
                h.obs.check = None;
                h.rollout.status = Some(p.status.clone());
                if p.requeue_after == Some(std::time::Duration::ZERO) {
                    // A retry counts as a move: it restarts the walk at step 0, and a canary
                    // that kept its pods (within scaleDownDelay) takes its first step at once.
                    let retried = before.phase == Some(Phase::Aborted) && p.status.phase != Some(Phase::Aborted);
                    let moved = p.status.current_step != before.current_step || p.status.canary_revision != before.canary_revision || retried;
                    prop_assert!(moved, "asked to continue without moving a step");
                    continue;
                }
                // The plan waits: the split routes what the status says, whatever was lost.
                check_split_matches_status(&h, &p.status)?;
                // The plan waits: planning again must change nothing.
                let again = plan(&h.rollout, &h.obs, h.now);
                prop_assert!(again.actions.is_empty(), "replanning wrote again: {:?} after {:?}", again.actions, op);
                prop_assert!(again.events.is_empty(), "replanning reported again: {:?}", again.events);
                prop_assert_eq!(&again.status, &p.status);
                break;
            }
            // Pods start between reconciles.
            for r in h.obs.revisions.values_mut() {
                r.available = r.replicas;
            }
        }
    }
}
