//! The canary's life: availability, the step engine, analysis gates, abort, retry and
//! promotion.

use super::{Planner, Settings, after, conditions, reasons, validate, verdict_of};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use std::time::Duration;
use weir_crds::Rollout;
use weir_crds::rollout::{AnalysisResult, AnalysisStatus, Phase, Step, StepWeights, Verdict};

/// How many metric-source errors in a row pause the rollout.
const ERRORS_BEFORE_PAUSE: i32 = 3;

/// What a step did.
enum StepOutcome {
    /// The step is done; go on to the next.
    Advance,
    /// The step is done and wrote the split; the next step waits for the next reconcile,
    /// so every weight change is its own split write (requeued at once).
    AdvanceThenYield,
    /// The step is waiting; stop here.
    Wait,
}

/// Drives the canary `canary` against `stable`.
pub(super) fn run(p: &mut Planner<'_>, settings: &Settings, stable: i64, canary: i64) {
    let replicas = p.rollout.spec.replicas;
    p.keep_revision(stable, replicas);
    // During a canary, Available speaks of stable; it must not keep claiming "all traffic".
    if p.available(stable) {
        let msg = format!("Stable revision {} is available", p.dname(stable));
        p.set_condition(
            conditions::Type::Available,
            true,
            reasons::REVISION_AVAILABLE,
            &msg,
        );
    } else {
        let msg = p.waiting_message(stable);
        p.set_condition(
            conditions::Type::Available,
            false,
            reasons::REVISION_UNAVAILABLE,
            &msg,
        );
    }
    if p.status.abort {
        abort(
            p,
            settings,
            stable,
            canary,
            reasons::ABORTED_BY_USER,
            "Aborted by request",
        );
        return;
    }
    let retried =
        p.before.phase == Some(Phase::Aborted) && p.before.canary_revision == Some(canary);
    if retried {
        restart(p);
        let name = p.dname(canary);
        let text = format!("Retrying {name} from step 1");
        // Progressing at once: a canary that kept its pods (retried within scaleDownDelay)
        // moves its first step in this plan, and the next must not take it for a new retry.
        p.progressing(&text);
        p.event(false, reasons::RETRIED, text);
    }
    p.ensure_revision(canary, replicas);
    set_weight(p, stable, canary, current_weight(p));
    let n = settings.steps.len();
    if p.fresh_canary {
        // Every new revision first appears in the split at 0 (the brief's stage 1).
        let msg = format!("New revision {} added to the split at 0%", p.dname(canary));
        p.progressing(&msg);
        p.wake_at(p.now);
        return;
    }
    if !p.available(canary) {
        let msg = p.waiting_message(canary);
        if deadline_passed(p, settings, &msg) {
            p.want_pods(canary);
        } else {
            p.progressing(&msg);
        }
        return;
    }
    if p.rollout.spec.paused {
        let step = p.status.current_step.unwrap_or(0).clamp(0, n as i32) + 1;
        let msg =
            format!("Paused by spec.paused at step {step}/{n}; `kubectl weir resume` continues");
        p.paused(reasons::PAUSED_BY_USER, &msg);
        return;
    }
    if p.status.promote_full {
        let name = p.dname(canary);
        p.event(
            false,
            reasons::PROMOTED_FULL,
            format!("Full promotion requested: {name} goes to 100% now"),
        );
        finalise(p, settings, stable, canary);
        return;
    }
    if p.status.promote_step.is_some() && p.status.promote_step != p.status.current_step {
        p.status.promote_step = None;
    }
    for _ in 0..=n {
        let i = p.status.current_step.unwrap_or(0).clamp(0, n as i32) as usize;
        if i >= n {
            finalise(p, settings, stable, canary);
            return;
        }
        p.status.step_progress = Some(format!("{}/{n}", i + 1));
        let promoted = p.status.promote_step == Some(i as i32);
        let step = settings.steps[i].clone();
        let outcome = if promoted {
            let kind = step_kind(&step);
            p.event(
                false,
                reasons::PROMOTED,
                format!("Promoted past the {kind} at step {}/{n}", i + 1),
            );
            StepOutcome::Advance
        } else {
            run_step(p, settings, &step, i, n, stable, canary)
        };
        if let StepOutcome::Wait = outcome {
            return;
        }
        p.status.current_step = Some(i as i32 + 1);
        p.status.step_started_at = Some(Time(p.now));
        p.status.promote_step = None;
        if let Some(a) = p.status.analysis.as_mut() {
            a.checks = 0;
        }
        if let StepOutcome::AdvanceThenYield = outcome {
            p.status.step_progress = Some(format!("{}/{n}", (i + 2).min(n)));
            p.wake_at(p.now);
            return;
        }
        if p.status.abort {
            return;
        }
    }
}

fn run_step(
    p: &mut Planner<'_>,
    settings: &Settings,
    step: &Step,
    i: usize,
    n: usize,
    stable: i64,
    canary: i64,
) -> StepOutcome {
    if let Some(w) = step.set_weight {
        let from = current_weight(p);
        set_weight(p, stable, canary, w);
        if from == w {
            return StepOutcome::Advance;
        }
        // The revision is named so Events of different revisions never fold into one series.
        let message = format!(
            "Canary weight {from} → {w} (step {}/{n}): {} takes {w}% of traffic",
            i + 1,
            p.dname(canary)
        );
        p.event(false, reasons::WEIGHT_CHANGED, message);
        return StepOutcome::AdvanceThenYield;
    }
    if let Some(pause) = &step.pause {
        let started = step_started(p);
        return match pause.duration.as_deref() {
            Some(d) => {
                let d = weir_crds::duration::parse_duration("pause.duration", d)
                    .unwrap_or(Duration::ZERO);
                let until = after(started, d);
                if p.now >= until {
                    StepOutcome::Advance
                } else {
                    p.wake_at(until);
                    let msg = format!(
                        "Pausing for {} at step {}/{n}, until {until}",
                        weir_crds::duration::format_duration(d),
                        i + 1
                    );
                    p.progressing(&msg);
                    StepOutcome::Wait
                }
            }
            None => {
                let msg = format!("Waiting at step {}/{n} for `kubectl weir promote`", i + 1);
                p.paused(reasons::PAUSED_FOR_PROMOTION, &msg);
                StepOutcome::Wait
            }
        };
    }
    let needed = step.analysis.as_ref().and_then(|a| a.checks).unwrap_or(1);
    analysis_gate(p, settings, i, n, needed, stable, canary)
}

fn analysis_gate(
    p: &mut Planner<'_>,
    settings: &Settings,
    i: usize,
    n: usize,
    needed: i32,
    stable: i64,
    canary: i64,
) -> StepOutcome {
    if let Some(check) = p.observed.check.clone() {
        fold_check(p, settings, &check);
        if p.status.abort {
            let message = check
                .message
                .clone()
                .unwrap_or_else(|| "analysis failed".into());
            abort(
                p,
                settings,
                stable,
                canary,
                reasons::ANALYSIS_FAILED,
                &format!("Rolled back: {message}"),
            );
            return StepOutcome::Wait;
        }
    }
    let analysis = p.status.analysis.clone().unwrap_or_default();
    if analysis.checks >= needed {
        return StepOutcome::Advance;
    }
    let last = analysis
        .last_result
        .as_ref()
        .and_then(|r| r.at.as_ref())
        .map(|t| t.0);
    let next = after(
        last.unwrap_or(step_started(p)).max(step_started(p)),
        settings.interval,
    );
    // A due check is made by the controller before planning; never ask to come back sooner than 1s.
    let next = next.max(after(p.now, Duration::from_secs(1)));
    p.wake_at(next);
    let weight = current_weight(p);
    let msg = format!(
        "Analysing the canary at {weight}% (step {}/{n}): {}/{needed} checks passed, {} failed (limit {})",
        i + 1,
        analysis.checks,
        analysis.failures,
        settings.failure_limit
    );
    if deadline_passed(p, settings, &msg) {
        return StepOutcome::Wait;
    }
    if analysis.consecutive_errors >= ERRORS_BEFORE_PAUSE {
        let detail = analysis
            .last_result
            .and_then(|r| r.message)
            .unwrap_or_else(|| "no data".into());
        let msg = format!(
            "Analysis paused: the metrics source failed {} times in a row ({detail}); it resumes when data returns",
            analysis.consecutive_errors
        );
        p.paused(reasons::ANALYSIS_ERROR, &msg);
    } else {
        p.progressing(&msg);
    }
    StepOutcome::Wait
}

/// Counts one check into the status, once (a check no newer than the last is ignored).
fn fold_check(p: &mut Planner<'_>, settings: &Settings, check: &AnalysisResult) {
    let a = p
        .status
        .analysis
        .get_or_insert_with(AnalysisStatus::default);
    let last_at = a
        .last_result
        .as_ref()
        .and_then(|r| r.at.as_ref())
        .map(|t| t.0);
    let at = check.at.as_ref().map(|t| t.0);
    if at.is_none() || (last_at.is_some() && at <= last_at) {
        return;
    }
    let verdict = verdict_of(check);
    let message = check
        .message
        .clone()
        .unwrap_or_else(|| format!("{verdict:?}"));
    a.last_result = Some(check.clone());
    let (warning, reason, text) = match verdict {
        Verdict::Pass => {
            a.checks += 1;
            a.consecutive_errors = 0;
            (false, reasons::ANALYSIS_PASSED, message)
        }
        Verdict::Fail => {
            a.failures += 1;
            a.consecutive_errors = 0;
            let limit = settings.failure_limit;
            let over = a.failures > limit as i32;
            let text = if over {
                format!(
                    "{message} (failure {}, over the {limit} tolerated)",
                    a.failures
                )
            } else {
                format!("{message} (failure {} of {limit} tolerated)", a.failures)
            };
            if over {
                p.status.abort = true;
            }
            (true, reasons::ANALYSIS_FAILED, text)
        }
        Verdict::Inconclusive => {
            a.consecutive_errors = 0;
            (false, reasons::ANALYSIS_INCONCLUSIVE, message)
        }
        Verdict::Error => {
            a.consecutive_errors += 1;
            (true, reasons::ANALYSIS_ERROR, message)
        }
    };
    let errors = p
        .status
        .analysis
        .as_ref()
        .map_or(0, |a| a.consecutive_errors);
    if errors >= ERRORS_BEFORE_PAUSE {
        let msg = format!("The metrics source failed {errors} times in a row");
        p.set_condition(
            conditions::Type::AnalysisError,
            true,
            reasons::METRICS_UNAVAILABLE,
            &msg,
        );
    } else if conditions::is_true(&p.status.conditions, conditions::Type::AnalysisError) {
        conditions::remove(&mut p.status.conditions, conditions::Type::AnalysisError);
        p.event(
            false,
            reasons::ANALYSIS_RESUMED,
            "Metrics are back; analysis continues",
        );
    }
    p.event(warning, reason, text);
}

/// Puts all traffic back on stable in one split write, before anything else. The canary keeps
/// its pods for `scaleDownDelay` after the abort (as Argo Rollouts' abortScaleDownDelaySeconds),
/// so that requests it is serving finish and every gateway has the new split before its pods
/// go; then it is scaled to 0.
fn abort(
    p: &mut Planner<'_>,
    settings: &Settings,
    stable: i64,
    canary: i64,
    reason: &str,
    message: &str,
) {
    p.split_first = true;
    p.status.abort = true;
    p.status.promote_full = false;
    p.status.promote_step = None;
    set_weight(p, stable, canary, 0);
    let first = p.before.phase != Some(Phase::Aborted) || !p.before.abort;
    if first {
        p.status.aborted_at = Some(Time(p.now));
    }
    let since = p.status.aborted_at.as_ref().map_or(p.now, |t| t.0);
    let scale_at = after(since, settings.scale_down_delay);
    if p.now >= scale_at {
        p.scale_revision(canary, 0);
    } else {
        p.wake_at(scale_at);
    }
    let (stable_name, canary_name) = (p.dname(stable), p.dname(canary));
    let when = if settings.scale_down_delay.is_zero() {
        String::new()
    } else {
        let delay = weir_crds::duration::format_duration(settings.scale_down_delay);
        format!(" after scaleDownDelay ({delay})")
    };
    let text = format!(
        "{message}: all traffic is back on {stable_name} and {canary_name} is scaled to 0{when}; `kubectl weir retry` starts it again"
    );
    if first {
        let event_reason = if reason == reasons::ANALYSIS_FAILED {
            reasons::ROLLED_BACK
        } else {
            reasons::ABORTED
        };
        p.event(true, event_reason, text.clone());
        p.set_condition(conditions::Type::Aborted, true, reason, &text);
    } else if !conditions::is_true(&p.status.conditions, conditions::Type::Aborted) {
        p.set_condition(conditions::Type::Aborted, true, reason, &text);
    }
    let shown = p
        .status
        .conditions
        .iter()
        .find(|c| c.type_ == conditions::Type::Aborted.as_str())
        .map(|c| c.message.clone())
        .unwrap_or(text);
    p.status.phase = Some(Phase::Aborted);
    p.set_condition(
        conditions::Type::Progressing,
        false,
        reasons::ROLLOUT_ABORTED,
        &shown,
    );
    p.set_condition(
        conditions::Type::Completed,
        false,
        reasons::ROLLOUT_ABORTED,
        &shown,
    );
    // `stepProgress` keeps the step the canary stopped at, so the STEP column says where.
    p.status.message = Some(shown);
}

/// Retry: the same revision again from step 0.
fn restart(p: &mut Planner<'_>) {
    let s = &mut p.status;
    s.current_step = Some(0);
    s.step_started_at = Some(Time(p.now));
    s.weights = Some(StepWeights {
        stable: 100,
        canary: 0,
    });
    s.analysis = None;
    s.aborted_at = None;
    conditions::remove(&mut s.conditions, conditions::Type::Aborted);
    conditions::remove(&mut s.conditions, conditions::Type::AnalysisError);
}

/// Promotion: the canary alone in the split; it becomes stable and the old one retires.
fn finalise(p: &mut Planner<'_>, settings: &Settings, stable: i64, canary: i64) {
    let canary_name = p.dname(canary);
    p.desired_split = Some(vec![(p.sname(canary), 100)]);
    let hash = p.status.canary_template_hash.clone();
    p.clear_canary();
    p.status.stable_revision = Some(canary);
    p.status.stable_template_hash = hash;
    p.status.scale_down_at = Some(Time(after(p.now, settings.scale_down_delay)));
    p.healthy(canary);
    let delay = weir_crds::duration::format_duration(settings.scale_down_delay);
    let stable_name = p.dname(stable);
    p.event(false, reasons::PROMOTED, format!(
        "Promoted {canary_name}: it takes all traffic; {stable_name} left the split and its Deployment is deleted in {delay}"
    ));
}

/// Pauses with ProgressDeadlineExceeded when the step has waited too long; true if so.
fn deadline_passed(p: &mut Planner<'_>, settings: &Settings, waiting_for: &str) -> bool {
    let started = step_started(p);
    let deadline = after(started, settings.progress_deadline);
    if p.now < deadline {
        p.wake_at(deadline);
        return false;
    }
    let limit = weir_crds::duration::format_duration(settings.progress_deadline);
    let msg = format!(
        "No progress for {limit} (spec.progressDeadline): {waiting_for}. `kubectl weir promote` skips the step, `kubectl weir abort` rolls back"
    );
    p.set_condition(
        conditions::Type::Progressing,
        false,
        reasons::PROGRESS_DEADLINE_EXCEEDED,
        &msg,
    );
    p.paused(reasons::PROGRESS_DEADLINE_EXCEEDED, &msg);
    true
}

fn set_weight(p: &mut Planner<'_>, stable: i64, canary: i64, weight: i32) {
    let weight = weight.clamp(0, 100);
    p.status.weights = Some(StepWeights {
        stable: 100 - weight,
        canary: weight,
    });
    p.desired_split = Some(vec![
        (p.sname(stable), 100 - weight),
        (p.sname(canary), weight),
    ]);
}

fn current_weight(p: &Planner<'_>) -> i32 {
    p.status.weights.map_or(0, |w| w.canary)
}

fn step_started(p: &Planner<'_>) -> Timestamp {
    p.status.step_started_at.as_ref().map_or(p.now, |t| t.0)
}

fn step_kind(step: &Step) -> &'static str {
    match (step.set_weight, &step.pause, &step.analysis) {
        (Some(_), _, _) => "weight step",
        (_, Some(_), _) => "pause",
        _ => "analysis",
    }
}

/// Whether the controller should check the canary's metrics now.
pub(super) fn check_due(rollout: &Rollout, now: Timestamp) -> bool {
    let Some(status) = rollout.status.as_ref() else {
        return false;
    };
    let Ok(settings) = validate::settings(rollout) else {
        return false;
    };
    if status.canary_revision.is_none()
        || status.abort
        || status.promote_full
        || rollout.spec.paused
    {
        return false;
    }
    let Some(i) = status.current_step.and_then(|i| usize::try_from(i).ok()) else {
        return false;
    };
    if settings.steps.get(i).is_none_or(|s| s.analysis.is_none())
        || status.promote_step == Some(i as i32)
    {
        return false;
    }
    let started = status.step_started_at.as_ref().map_or(now, |t| t.0);
    let last = status
        .analysis
        .as_ref()
        .and_then(|a| a.last_result.as_ref())
        .and_then(|r| r.at.as_ref())
        .map(|t| t.0);
    let from = last.map_or(started, |l| l.max(started));
    now.duration_since(from)
        >= SignedDuration::try_from(settings.interval).unwrap_or(SignedDuration::MAX)
}
