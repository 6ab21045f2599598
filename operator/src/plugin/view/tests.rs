//! The view built from hand-made objects: roles, split shares, steps, live figures.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use crate::plugin::fixtures::{self, now};
use weir_crds::smi::metrics::TrafficMetrics;

#[test]
fn revisions_are_canary_then_stable_then_retired_with_their_split_share() {
    let mut inputs = fixtures::mid_step();
    inputs.deployments.push(fixtures::deployment(0, "v0", 3, 3));
    let view = View::build(&inputs, now());
    let order: Vec<(i64, Role, Option<f64>)> = view
        .revisions
        .iter()
        .map(|r| (r.revision, r.role, r.traffic_percent))
        .collect();
    assert_eq!(
        order,
        [
            (2, Role::Canary, Some(10.0)),
            (1, Role::Stable, Some(90.0)),
            (0, Role::Retired, None)
        ]
    );
    assert_eq!(view.revisions[0].pods.len(), 3);
    assert_eq!(view.revisions[0].images, ["app=weir-demo:v2"]);
    assert_eq!(view.actual_canary_percent(), Some(10.0));
}

#[test]
fn the_split_the_cluster_holds_is_shown_even_when_it_differs_from_the_status() {
    let mut inputs = fixtures::mid_step();
    inputs.split = Some(fixtures::split(&[("foobar-v1", 750), ("foobar-v2", 250)]));
    let view = View::build(&inputs, now());
    assert_eq!(view.set_weight, Some(10));
    assert_eq!(view.actual_canary_percent(), Some(25.0));
}

#[test]
fn steps_are_numbered_from_one_and_complete_once_healthy() {
    let step = |inputs: Inputs| View::build(&inputs, now()).step;
    let mid = step(fixtures::mid_step()).unwrap();
    assert_eq!(
        (mid.number, mid.total, mid.description.as_str()),
        (2, 5, "analysis (1 check)")
    );
    let done = step(fixtures::promoted()).unwrap();
    assert_eq!((done.number, done.description.as_str()), (5, "complete"));
    assert_eq!(step(fixtures::first_revision()), None);
}

#[test]
fn finished_only_in_a_final_phase_of_the_latest_spec() {
    assert!(View::build(&fixtures::promoted(), now()).finished());
    assert!(View::build(&fixtures::aborted_after_failed_analysis(), now()).finished());
    assert!(!View::build(&fixtures::paused(), now()).finished());
    let mut stale = fixtures::promoted();
    stale.rollout.metadata.generation = Some(3);
    assert!(
        !View::build(&stale, now()).finished(),
        "set image was not seen yet"
    );
}

#[test]
fn live_figures_follow_the_revisions_and_total_failure_reads_as_unavailable() {
    let view = View::build(&fixtures::mid_step(), now());
    let LiveView::Figures { rows } = &view.live else {
        panic!("{:?}", view.live)
    };
    let who: Vec<(Option<Role>, Option<i64>)> = rows.iter().map(|r| (r.role, r.revision)).collect();
    assert_eq!(
        who,
        [(Some(Role::Canary), Some(2)), (Some(Role::Stable), Some(1))]
    );
    let mut inputs = fixtures::mid_step();
    inputs.live = LiveInput::Answers(vec![
        ("foobar-v1".into(), Err("503 no endpoints".into())),
        ("foobar-v2".into(), Err("503 no endpoints".into())),
    ]);
    assert_eq!(
        View::build(&inputs, now()).live,
        LiveView::Unavailable {
            reason: "503 no endpoints".into()
        }
    );
}

#[test]
fn smi_traffic_metrics_become_rates_and_milliseconds() {
    let text = include_str!("../../../../crds/tests/fixtures/smi/trafficmetrics-v1alpha1.yaml");
    let metrics: TrafficMetrics = serde_yaml::from_str(text).unwrap();
    let row = figures_from(&metrics).unwrap();
    assert_eq!(row.requests, Some(200));
    assert_eq!(row.success_rate, Some(50.0));
    assert_eq!(row.p50_ms, Some(10.0));
    assert_eq!(row.p99_ms, Some(10.0));
    assert_eq!(row.window.as_deref(), Some("30s"));
    let mut bad = metrics.clone();
    bad.metrics[0].value = "soon".into();
    assert!(
        figures_from(&bad)
            .unwrap_err()
            .contains("p99_response_latency")
    );
}

#[test]
fn json_output_round_trips() {
    let view = View::build(&fixtures::aborted_after_failed_analysis(), now());
    let text = serde_json::to_string(&view).unwrap();
    let back: View = serde_json::from_str(&text).unwrap();
    assert_eq!(back, view);
    let value: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(value["phase"], "Aborted");
    assert_eq!(value["revisions"][0]["role"], "Canary");
}
