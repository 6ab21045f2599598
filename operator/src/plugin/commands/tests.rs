//! Every steering command at every phase: what it writes, when it writes nothing, and the
//! errors a person can act on.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use crate::plugin::fixtures;
use serde_json::json;

fn written(d: Result<Decision, CommandError>) -> (Target, Value) {
    match d.unwrap() {
        Decision::Write(w) => (w.target, w.patch),
        other => panic!("expected a write, got {other:?}"),
    }
}

fn already(d: Result<Decision, CommandError>) -> String {
    match d.unwrap() {
        Decision::Already(m) => m,
        other => panic!("expected nothing to write, got {other:?}"),
    }
}

#[test]
fn promote_names_the_current_step_and_a_repeat_writes_nothing() {
    let mut ro = fixtures::paused().rollout;
    let d = decide(&ro, Request::Promote { full: false });
    assert_eq!(
        written(d),
        (Target::Status, json!({"status": {"promoteStep": 3}}))
    );
    ro.status.as_mut().unwrap().promote_step = Some(3);
    let again = already(decide(&ro, Request::Promote { full: false }));
    assert!(again.contains("already requested"), "{again}");
    let full = decide(&ro, Request::Promote { full: true });
    assert_eq!(
        written(full),
        (Target::Status, json!({"status": {"promoteFull": true}}))
    );
}

#[test]
fn promote_when_nothing_waits_says_where_the_rollout_is() {
    let ro = fixtures::promoted().rollout;
    let err = decide(&ro, Request::Promote { full: false }).unwrap_err();
    assert_eq!(
        err.to_string(),
        "nothing to promote: rollout foobar is Healthy at revision 2"
    );
    let aborted = fixtures::aborted_after_failed_analysis().rollout;
    let err = decide(&aborted, Request::Promote { full: true }).unwrap_err();
    assert!(
        err.to_string().contains("kubectl weir retry foobar"),
        "{err}"
    );
}

#[test]
fn abort_writes_the_request_once_and_refuses_when_no_canary_runs() {
    let ro = fixtures::mid_step().rollout;
    assert_eq!(
        written(decide(&ro, Request::Abort)),
        (Target::Status, json!({"status": {"abort": true}}))
    );
    let aborted = fixtures::aborted_after_failed_analysis().rollout;
    assert!(already(decide(&aborted, Request::Abort)).contains("already aborted"));
    let err = decide(&fixtures::promoted().rollout, Request::Abort).unwrap_err();
    assert_eq!(
        err.to_string(),
        "nothing to abort: rollout foobar is Healthy at revision 2"
    );
}

#[test]
fn retry_removes_abort_only_from_an_aborted_rollout() {
    let mut ro = fixtures::aborted_after_failed_analysis().rollout;
    assert_eq!(
        written(decide(&ro, Request::Retry)),
        (Target::Status, json!({"status": {"abort": null}}))
    );
    ro.status.as_mut().unwrap().abort = false;
    assert!(already(decide(&ro, Request::Retry)).contains("already requested"));
    let err = decide(&fixtures::mid_step().rollout, Request::Retry).unwrap_err();
    assert_eq!(
        err.to_string(),
        "nothing to retry: rollout foobar is Progressing with canary revision 2 at step 2/5"
    );
}

#[test]
fn pause_and_resume_set_spec_paused_and_are_idempotent() {
    let mut ro = fixtures::mid_step().rollout;
    assert_eq!(
        written(decide(&ro, Request::Pause)),
        (Target::Spec, json!({"spec": {"paused": true}}))
    );
    assert!(already(decide(&ro, Request::Resume)).contains("is not paused"));
    ro.spec.paused = true;
    assert!(already(decide(&ro, Request::Pause)).contains("already paused"));
    assert_eq!(
        written(decide(&ro, Request::Resume)),
        (Target::Spec, json!({"spec": {"paused": false}}))
    );
    let waiting = fixtures::paused().rollout;
    let hint = already(decide(&waiting, Request::Resume));
    assert!(hint.contains("kubectl weir promote foobar"), "{hint}");
}

#[test]
fn set_image_patches_the_named_container_with_a_guard_and_skips_no_ops() {
    let ro = fixtures::mid_step().rollout;
    let pairs = [("app".to_string(), "weir-demo:v3".to_string())];
    let (target, patch) = written(set_image(&ro, &pairs));
    assert_eq!(target, Target::SpecJsonPatch);
    assert_eq!(
        patch,
        json!([
            {"op": "test", "path": "/spec/template/spec/containers/0/name", "value": "app"},
            {"op": "add", "path": "/spec/template/spec/containers/0/image", "value": "weir-demo:v3"}
        ])
    );
    let star = [("*".to_string(), "weir-demo:v3".to_string())];
    assert_eq!(written(set_image(&ro, &star)).1, patch);
    let same = [("app".to_string(), "weir-demo:v2".to_string())];
    assert!(already(set_image(&ro, &same)).contains("already runs"));
    let unknown = [("sidecar".to_string(), "x:1".to_string())];
    assert_eq!(
        set_image(&ro, &unknown).unwrap_err().to_string(),
        "rollout foobar has no container \"sidecar\" (its containers: app)"
    );
}

fn entry(revision: i64, image: &str) -> HistoryEntry {
    let ro = fixtures::rollout(image, Default::default());
    HistoryEntry {
        revision,
        template: ro.spec.template.unwrap(),
    }
}

#[test]
fn undo_goes_back_to_stable_during_a_canary_and_to_the_previous_revision_when_healthy() {
    let history = [entry(1, "v1"), entry(2, "v2")];
    let (target, patch) = written(undo(&fixtures::mid_step().rollout, &history, None));
    assert_eq!(target, Target::SpecJsonPatch);
    assert_eq!(patch[0]["path"], "/spec/template");
    assert_eq!(
        patch[0]["value"]["spec"]["containers"][0]["image"],
        "weir-demo:v1"
    );
    // Healthy at 2: back to 1, whose Deployment may long be gone.
    let (_, patch) = written(undo(&fixtures::promoted().rollout, &history, None));
    assert_eq!(
        patch[0]["value"]["spec"]["containers"][0]["image"],
        "weir-demo:v1"
    );
    let current = undo(&fixtures::promoted().rollout, &history, Some(2));
    assert!(already(current).contains("already is revision 2's"));
}

#[test]
fn undo_errors_name_the_kept_revisions() {
    let history = [entry(2, "v2"), entry(1, "v1")];
    let err = undo(&fixtures::promoted().rollout, &history, Some(7)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "revision 7 of rollout foobar is not kept (kept: 1, 2)"
    );
    let only = [entry(2, "v2")];
    let err = undo(&fixtures::promoted().rollout, &only, None).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("nothing to undo: rollout foobar is Healthy at revision 2"),
        "{err}"
    );
}
