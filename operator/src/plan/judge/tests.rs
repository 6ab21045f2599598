//! Every verdict rule, one test each, on hand-made evidence.

use super::*;
use crate::analysis::{QueryOutcome, SourceError, TrafficSample};
use k8s_openapi::jiff::Timestamp;
use weir_crds::rollout::{BaselineCheck, LatencyBounds, PromQuery, SuccessRateCheck};

fn sample(successes: f64, failures: f64, p99_ms: f64) -> TrafficSample {
    TrafficSample {
        successes,
        failures,
        p50_ms: Some(p99_ms / 4.0),
        p90_ms: Some(p99_ms / 2.0),
        p99_ms: Some(p99_ms),
        window: Duration::from_secs(60),
        as_of: Timestamp::UNIX_EPOCH,
    }
}

fn evidence(canary: Result<Option<TrafficSample>, SourceError>) -> Evidence {
    Evidence {
        at: Timestamp::from_second(1_000).unwrap(),
        window: Duration::from_secs(60),
        step_started: None,
        source: "TrafficMetrics prod/deployments/foobar-v2".into(),
        canary,
        baseline: None,
        queries: Vec::new(),
    }
}

fn spec() -> AnalysisSpec {
    AnalysisSpec {
        success_rate: Some(SuccessRateCheck { min: 99.0 }),
        latency: Some(LatencyBounds {
            p99: Some("500ms".into()),
            ..LatencyBounds::default()
        }),
        ..AnalysisSpec::default()
    }
}

fn verdict(r: &AnalysisResult) -> (Verdict, String) {
    (r.verdict.unwrap(), r.message.clone().unwrap())
}

#[test]
fn a_healthy_canary_passes_with_its_figures_recorded() {
    let r = judge(&evidence(Ok(Some(sample(412.0, 0.0, 12.0)))), &spec());
    assert_eq!(
        verdict(&r),
        (
            Verdict::Pass,
            "success rate 100% ≥ 99%, p99 latency 12ms ≤ 500ms over 412 requests (1m)".into()
        )
    );
    assert_eq!(r.requests, Some(412));
    assert_eq!(r.success_rate, Some(100.0));
    assert_eq!(r.p99, Some(12.0));
    assert_eq!(r.window.as_deref(), Some("1m"));
    assert_eq!(
        r.source.as_deref(),
        Some("TrafficMetrics prod/deployments/foobar-v2")
    );
    assert_eq!(r.at, Some(Time(Timestamp::from_second(1_000).unwrap())));
}

#[test]
fn a_low_success_rate_fails_naming_value_bound_and_volume() {
    let r = judge(&evidence(Ok(Some(sample(328.0, 84.0, 12.0)))), &spec());
    assert_eq!(
        verdict(&r),
        (
            Verdict::Fail,
            "success rate 79.6% < 99% over 412 requests (1m)".into()
        )
    );
    assert_eq!(r.success_rate, Some(79.61));
}

#[test]
fn a_rate_just_below_the_bound_is_shown_with_enough_decimals_to_differ() {
    let r = judge(&evidence(Ok(Some(sample(9896.0, 104.0, 12.0)))), &spec());
    assert_eq!(
        verdict(&r).1,
        "success rate 98.96% < 99% over 10000 requests (1m)"
    );
}

#[test]
fn a_slow_percentile_fails() {
    let r = judge(&evidence(Ok(Some(sample(412.0, 0.0, 612.4)))), &spec());
    assert_eq!(
        verdict(&r),
        (
            Verdict::Fail,
            "p99 latency 612.4ms > 500ms over 412 requests (1m)".into()
        )
    );
}

#[test]
fn every_broken_threshold_is_named() {
    let r = judge(&evidence(Ok(Some(sample(328.0, 84.0, 612.0)))), &spec());
    assert_eq!(
        verdict(&r).1,
        "success rate 79.6% < 99%; p99 latency 612ms > 500ms over 412 requests (1m)"
    );
}

#[test]
fn too_few_requests_are_inconclusive_even_when_all_failed() {
    let r = judge(&evidence(Ok(Some(sample(0.0, 12.0, 900.0)))), &spec());
    assert_eq!(
        verdict(&r),
        (
            Verdict::Inconclusive,
            "12 requests < minRequests 20 (1m): too few to judge".into()
        )
    );
    assert_eq!(r.requests, Some(12));
}

#[test]
fn min_requests_is_the_spec_value() {
    let mut s = spec();
    s.min_requests = Some(5);
    let r = judge(&evidence(Ok(Some(sample(12.0, 0.0, 10.0)))), &s);
    assert_eq!(r.verdict, Some(Verdict::Pass));
}

#[test]
fn a_source_error_is_an_error() {
    let e = SourceError::Unavailable {
        source_name: "TrafficMetrics".into(),
        message: "GET /apis/…: 503 service unavailable".into(),
    };
    let r = judge(&evidence(Err(e)), &spec());
    assert_eq!(
        verdict(&r),
        (
            Verdict::Error,
            "no figures for the canary: TrafficMetrics: GET /apis/…: 503 service unavailable"
                .into()
        )
    );
    assert_eq!(r.requests, None);
}

#[test]
fn a_timeout_is_an_error() {
    let e = SourceError::Timeout {
        source_name: "Prometheus http://p:9090".into(),
        after: Duration::from_secs(10),
    };
    let r = judge(&evidence(Err(e)), &spec());
    assert_eq!(
        verdict(&r),
        (
            Verdict::Error,
            "no figures for the canary: Prometheus http://p:9090: no answer within 10s".into()
        )
    );
}

#[test]
fn an_empty_result_is_an_error() {
    let r = judge(&evidence(Ok(None)), &spec());
    assert_eq!(
        verdict(&r),
        (
            Verdict::Error,
            "no figures for the canary: the source returned an empty result".into()
        )
    );
}

#[test]
fn nan_counts_are_an_error() {
    let r = judge(&evidence(Ok(Some(sample(f64::NAN, 0.0, 10.0)))), &spec());
    assert_eq!(r.verdict, Some(Verdict::Error));
    assert!(r.message.unwrap().contains("not numbers"));
}

#[test]
fn a_missing_or_nan_percentile_with_a_bound_is_an_error() {
    for p99 in [None, Some(f64::NAN)] {
        let mut s = sample(412.0, 0.0, 10.0);
        s.p99_ms = p99;
        let r = judge(&evidence(Ok(Some(s))), &spec());
        assert_eq!(
            verdict(&r),
            (
                Verdict::Error,
                "p99 latency is unavailable (no histogram data, or NaN)".into()
            ),
            "{p99:?}"
        );
        assert_eq!(r.p99, None);
    }
}

#[test]
fn a_broken_threshold_wins_over_a_missing_figure() {
    let mut s = sample(328.0, 84.0, 10.0);
    s.p99_ms = None;
    let r = judge(&evidence(Ok(Some(s))), &spec());
    assert_eq!(r.verdict, Some(Verdict::Fail));
}

#[test]
fn without_thresholds_enough_traffic_passes_and_says_so() {
    let r = judge(
        &evidence(Ok(Some(sample(50.0, 50.0, 10.0)))),
        &AnalysisSpec::default(),
    );
    assert_eq!(
        verdict(&r),
        (
            Verdict::Pass,
            "enough traffic and no threshold set over 100 requests (1m)".into()
        )
    );
}

fn with_baseline(
    stable: Result<Option<TrafficSample>, SourceError>,
    canary: TrafficSample,
) -> AnalysisResult {
    let mut s = spec();
    s.success_rate = Some(SuccessRateCheck { min: 50.0 });
    s.baseline = Some(BaselineCheck {
        max_success_rate_drop: 1.0,
    });
    let mut e = evidence(Ok(Some(canary)));
    e.baseline = Some(stable);
    judge(&e, &s)
}

#[test]
fn a_canary_far_below_stable_fails_the_baseline() {
    let r = with_baseline(
        Ok(Some(sample(995.0, 5.0, 10.0))),
        sample(950.0, 50.0, 10.0),
    );
    assert_eq!(
        verdict(&r),
        (
            Verdict::Fail,
            "success rate 95% is 4.5 points below stable's 99.5% (max drop 1) over 1000 requests (1m)"
                .into()
        )
    );
    assert_eq!(r.baseline_success_rate, Some(99.5));
    assert_eq!(r.baseline_requests, Some(1000));
}

#[test]
fn a_canary_close_to_stable_passes_the_baseline() {
    let r = with_baseline(
        Ok(Some(sample(990.0, 10.0, 10.0))),
        sample(985.0, 15.0, 10.0),
    );
    assert_eq!(r.verdict, Some(Verdict::Pass), "{:?}", r.message);
    assert!(
        r.message
            .unwrap()
            .contains("within 1 points of stable's 99%")
    );
}

#[test]
fn a_baseline_without_data_is_an_error_and_with_too_little_inconclusive() {
    let r = with_baseline(Ok(None), sample(985.0, 15.0, 10.0));
    assert_eq!(
        verdict(&r),
        (
            Verdict::Error,
            "no figures for stable (the baseline): the source returned an empty result".into()
        )
    );
    let r = with_baseline(Ok(Some(sample(3.0, 0.0, 1.0))), sample(985.0, 15.0, 10.0));
    assert_eq!(r.verdict, Some(Verdict::Inconclusive));
    assert!(r.message.unwrap().starts_with("stable had 3 requests"));
}

fn with_query(value: Result<Option<f64>, SourceError>) -> AnalysisResult {
    let mut s = spec();
    s.queries = vec![PromQuery {
        name: "errors".into(),
        promql: "x".into(),
        max: Some(0.5),
        min: Some(0.1),
    }];
    let mut e = evidence(Ok(Some(sample(412.0, 0.0, 10.0))));
    e.queries = vec![QueryOutcome {
        name: "errors".into(),
        value,
    }];
    judge(&e, &s)
}

#[test]
fn custom_queries_pass_fail_or_error_on_their_bounds() {
    let r = with_query(Ok(Some(0.3)));
    assert_eq!(r.verdict, Some(Verdict::Pass));
    assert_eq!(
        r.queries,
        vec![QueryValue {
            name: "errors".into(),
            value: Some(0.3)
        }]
    );
    let r = with_query(Ok(Some(0.7)));
    assert_eq!(
        verdict(&r),
        (
            Verdict::Fail,
            "query errors = 0.7 > max 0.5 over 412 requests (1m)".into()
        )
    );
    let r = with_query(Ok(Some(0.05)));
    assert_eq!(
        verdict(&r).1,
        "query errors = 0.05 < min 0.1 over 412 requests (1m)"
    );
    let r = with_query(Ok(None));
    assert_eq!(
        verdict(&r),
        (
            Verdict::Error,
            "query errors returned an empty result".into()
        )
    );
    let r = with_query(Ok(Some(f64::NAN)));
    assert_eq!(
        verdict(&r),
        (Verdict::Error, "query errors returned NaN".into())
    );
    let r = with_query(Err(SourceError::Unsupported {
        source_name: "TrafficMetrics".into(),
    }));
    assert_eq!(
        verdict(&r),
        (
            Verdict::Error,
            "query errors failed: TrafficMetrics cannot evaluate PromQL; custom queries need source.prometheus".into()
        )
    );
    assert_eq!(
        r.queries,
        vec![QueryValue {
            name: "errors".into(),
            value: None
        }]
    );
}

#[test]
fn an_inconclusive_canary_with_a_failing_query_fails() {
    let mut s = spec();
    s.queries = vec![PromQuery {
        name: "q".into(),
        promql: "x".into(),
        max: Some(1.0),
        min: None,
    }];
    let mut e = evidence(Ok(Some(sample(3.0, 0.0, 10.0))));
    e.queries = vec![QueryOutcome {
        name: "q".into(),
        value: Ok(Some(2.0)),
    }];
    let r = judge(&e, &s);
    assert_eq!(
        verdict(&r),
        (
            Verdict::Fail,
            "query q = 2 > max 1 over 3 requests (1m)".into()
        )
    );
}

/// Evidence `age_secs` into a step, with a 60 s window.
fn at_step_age(canary: Result<Option<TrafficSample>, SourceError>, age_secs: i64) -> Evidence {
    let mut e = evidence(canary);
    e.step_started = Some(Timestamp::from_second(1_000 - age_secs).unwrap());
    e
}

#[test]
fn an_empty_canary_within_a_window_of_its_step_is_inconclusive_not_an_error() {
    let r = judge(&at_step_age(Ok(None), 5), &spec());
    assert_eq!(
        verdict(&r),
        (
            Verdict::Inconclusive,
            "no figures for the canary yet: its step began 5s ago, less than the window (1m), \
             and the source has not scraped its first requests"
                .into()
        )
    );
    assert_eq!(r.requests, None, "no figures are invented");
    // One second short of the window: still waiting for the first scrape.
    let r = judge(&at_step_age(Ok(None), 59), &spec());
    assert_eq!(r.verdict, Some(Verdict::Inconclusive));
}

#[test]
fn an_empty_canary_a_window_or_more_after_its_step_is_an_error() {
    for age in [60, 61, 3_600] {
        let r = judge(&at_step_age(Ok(None), age), &spec());
        assert_eq!(
            verdict(&r),
            (
                Verdict::Error,
                "no figures for the canary: the source returned an empty result".into()
            ),
            "{age}s into the step"
        );
    }
}

#[test]
fn a_step_start_in_the_future_gives_no_grace() {
    // A clock behind the recorded start is not a young step: the empty result is an Error.
    let r = judge(&at_step_age(Ok(None), -5), &spec());
    assert_eq!(r.verdict, Some(Verdict::Error));
}

#[test]
fn a_source_error_in_a_young_step_is_still_an_error() {
    let err = SourceError::Unavailable {
        source_name: "TrafficMetrics".into(),
        message: "503".into(),
    };
    let r = judge(&at_step_age(Err(err), 5), &spec());
    assert_eq!(r.verdict, Some(Verdict::Error));
}

#[test]
fn an_empty_baseline_in_a_young_step_is_still_an_error() {
    // Stable has been serving all along: its empty result is not the canary's first scrape.
    let mut s = spec();
    s.baseline = Some(BaselineCheck {
        max_success_rate_drop: 1.0,
    });
    let mut e = at_step_age(Ok(Some(sample(1000.0, 0.0, 10.0))), 5);
    e.baseline = Some(Ok(None));
    let r = judge(&e, &s);
    assert_eq!(r.verdict, Some(Verdict::Error));
}

#[test]
fn an_empty_custom_query_in_a_young_step_is_inconclusive() {
    let mut s = spec();
    s.queries = vec![PromQuery {
        name: "errors".into(),
        promql: "x".into(),
        max: Some(0.5),
        min: None,
    }];
    let mut e = at_step_age(Ok(Some(sample(412.0, 0.0, 10.0))), 5);
    e.queries = vec![QueryOutcome {
        name: "errors".into(),
        value: Ok(None),
    }];
    assert_eq!(
        verdict(&judge(&e, &s)),
        (
            Verdict::Inconclusive,
            "query errors returned an empty result less than a window after the step began".into()
        )
    );
    e.step_started = None;
    assert_eq!(judge(&e, &s).verdict, Some(Verdict::Error));
}
