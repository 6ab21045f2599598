//! `judge(&Evidence, &AnalysisSpec) -> AnalysisResult`: every threshold rule, once.
//!
//! | evidence                                       | verdict                      |
//! |------------------------------------------------|------------------------------|
//! | a source error or timeout                      | Error                        |
//! | the canary's empty result within one `window` after its step began | Inconclusive |
//! | an empty result (later, or the baseline's), NaN, a missing percentile | Error |
//! | fewer requests than `minRequests`              | Inconclusive                 |
//! | success rate below `successRate.min`           | Fail                         |
//! | a percentile above its `latency` bound         | Fail                         |
//! | success rate more than `maxSuccessRateDrop` below stable's | Fail             |
//! | a custom query outside its `min`/`max`         | Fail                         |
//! | every rule held                                | Pass                         |
//!
//! When several apply, Fail wins over Error (a broken threshold is known even if another
//! figure is missing), Error over Inconclusive, Inconclusive over Pass.
//!
//! A missing or empty metric is never a pass. Right after a step begins, though, the canary's
//! first requests may not have been scraped yet (the TrafficMetrics API and Prometheus both
//! scrape on an interval, and a windowed increase needs two scrapes): an empty result for the
//! canary until one `window` has passed since `stepStartedAt` is Inconclusive (it counts
//! neither way), and only after that an Error. A source that errors is an Error at once.

use crate::analysis::{Evidence, QueryOutcome, SourceError, TrafficSample};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use std::time::Duration;
use weir_crds::duration::format_duration;
use weir_crds::rollout::{AnalysisResult, AnalysisSpec, QueryValue, Verdict};

/// What each rule found, sorted by how much it weighs.
#[derive(Default)]
struct Findings {
    fails: Vec<String>,
    errors: Vec<String>,
    inconclusive: Vec<String>,
    passes: Vec<String>,
}

/// Judges one check's evidence against the Rollout's analysis.
pub fn judge(evidence: &Evidence, spec: &AnalysisSpec) -> AnalysisResult {
    let window = format_duration(evidence.window);
    let mut f = Findings::default();
    let mut result = AnalysisResult {
        at: Some(Time(evidence.at)),
        window: Some(window.clone()),
        source: Some(evidence.source.clone()),
        ..AnalysisResult::default()
    };
    let min_requests = spec.min_requests() as f64;
    let canary = match (&evidence.canary, young_step(evidence)) {
        (Ok(None), Some(age)) => {
            f.inconclusive.push(format!(
                "no figures for the canary yet: its step began {} ago, less than the window \
                 ({window}), and the source has not scraped its first requests",
                format_duration(age)
            ));
            None
        }
        (figures, _) => usable(figures, "the canary", &mut f),
    };
    let mut enough = false;
    if let Some(s) = canary {
        let requests = s.requests();
        result.requests = Some(requests.round() as i64);
        result.success_rate = s.success_rate().map(round2);
        result.p50 = s.p50_ms.filter(|v| v.is_finite()).map(round2);
        result.p90 = s.p90_ms.filter(|v| v.is_finite()).map(round2);
        result.p99 = s.p99_ms.filter(|v| v.is_finite()).map(round2);
        if requests < min_requests {
            f.inconclusive.push(format!(
                "{} requests < minRequests {} ({window}): too few to judge",
                count(requests),
                spec.min_requests()
            ));
        } else {
            enough = true;
            success_rate_rule(s, spec, &mut f);
            latency_rules(s, spec, &mut f);
        }
    }
    if let Some(check) = &spec.baseline {
        let stable = match &evidence.baseline {
            Some(b) => usable(b, "stable (the baseline)", &mut f),
            None => {
                f.errors
                    .push("the baseline (stable) was not measured".into());
                None
            }
        };
        if let Some(b) = stable {
            result.baseline_requests = Some(b.requests().round() as i64);
            result.baseline_success_rate = b.success_rate().map(round2);
            if b.requests() < min_requests {
                f.inconclusive.push(format!(
                    "stable had {} requests < minRequests {} ({window}): no baseline to compare with",
                    count(b.requests()),
                    spec.min_requests()
                ));
            } else if let (true, Some(c), Some(s)) = (enough, canary, b.success_rate()) {
                let drop = s - c.success_rate().unwrap_or(0.0);
                let max = check.max_success_rate_drop;
                let canary_rate = c.success_rate().unwrap_or(0.0);
                if drop > max {
                    f.fails.push(format!(
                        "success rate {}% is {} points below stable's {}% (max drop {})",
                        pct(canary_rate, s),
                        number(drop, max),
                        pct(s, canary_rate),
                        number(max, drop)
                    ));
                } else {
                    f.passes.push(format!(
                        "success rate within {} points of stable's {}%",
                        number(max, drop),
                        pct(s, canary_rate)
                    ));
                }
            }
        }
    }
    let young = young_step(evidence).is_some();
    for query in &spec.queries {
        let outcome = evidence.queries.iter().find(|q| q.name == query.name);
        let value = query_rule(query, outcome, young, &mut f);
        result.queries.push(QueryValue {
            name: query.name.clone(),
            value,
        });
    }
    let volume = result
        .requests
        .map(|n| format!(" over {n} requests ({window})"))
        .unwrap_or_else(|| format!(" ({window})"));
    let (verdict, message) = if !f.fails.is_empty() {
        (Verdict::Fail, format!("{}{volume}", f.fails.join("; ")))
    } else if !f.errors.is_empty() {
        (Verdict::Error, f.errors.join("; "))
    } else if !f.inconclusive.is_empty() {
        (Verdict::Inconclusive, f.inconclusive.join("; "))
    } else if f.passes.is_empty() {
        (
            Verdict::Pass,
            format!("enough traffic and no threshold set{volume}"),
        )
    } else {
        (Verdict::Pass, format!("{}{volume}", f.passes.join(", ")))
    };
    result.verdict = Some(verdict);
    result.message = Some(message);
    result
}

/// How long ago the step began, when that is less than one window (never for a step that
/// has not begun, nor one with no start recorded).
fn young_step(evidence: &Evidence) -> Option<Duration> {
    let started = evidence.step_started?;
    let age = evidence.at.duration_since(started);
    let age = Duration::try_from(age).ok()?;
    (age < evidence.window).then_some(age)
}

/// The sample when it holds finite figures; otherwise records why not as an Error.
fn usable<'a>(
    figures: &'a Result<Option<TrafficSample>, SourceError>,
    whose: &str,
    f: &mut Findings,
) -> Option<&'a TrafficSample> {
    match figures {
        Err(e) => {
            f.errors.push(format!("no figures for {whose}: {e}"));
            None
        }
        Ok(None) => {
            f.errors.push(format!(
                "no figures for {whose}: the source returned an empty result"
            ));
            None
        }
        Ok(Some(s)) => {
            let counts_ok = [s.successes, s.failures]
                .iter()
                .all(|v| v.is_finite() && *v >= 0.0);
            if counts_ok {
                Some(s)
            } else {
                f.errors.push(format!(
                    "no figures for {whose}: the counts are not numbers (successes {}, failures {})",
                    s.successes, s.failures
                ));
                None
            }
        }
    }
}

fn success_rate_rule(s: &TrafficSample, spec: &AnalysisSpec, f: &mut Findings) {
    let Some(check) = &spec.success_rate else {
        return;
    };
    let Some(rate) = s.success_rate() else {
        f.errors
            .push("the success rate is undefined without requests".into());
        return;
    };
    if rate < check.min {
        f.fails.push(format!(
            "success rate {}% < {}%",
            pct(rate, check.min),
            pct(check.min, rate)
        ));
    } else {
        f.passes.push(format!(
            "success rate {}% ≥ {}%",
            pct(rate, check.min),
            pct(check.min, rate)
        ));
    }
}

fn latency_rules(s: &TrafficSample, spec: &AnalysisSpec, f: &mut Findings) {
    let Some(bounds) = &spec.latency else {
        return;
    };
    let limits = match bounds.limits() {
        Ok(l) => l,
        Err(e) => {
            f.errors.push(e.to_string());
            return;
        }
    };
    for (label, limit) in limits {
        let value = match label {
            "p50" => s.p50_ms,
            "p90" => s.p90_ms,
            _ => s.p99_ms,
        };
        let limit_ms = limit.as_secs_f64() * 1000.0;
        match value.filter(|v| v.is_finite()) {
            None => f.errors.push(format!(
                "{label} latency is unavailable (no histogram data, or NaN)"
            )),
            Some(v) if v > limit_ms => f.fails.push(format!(
                "{label} latency {}ms > {}",
                number(v, limit_ms),
                bound(limit)
            )),
            Some(v) => f.passes.push(format!(
                "{label} latency {}ms ≤ {}",
                number(v, limit_ms),
                bound(limit)
            )),
        }
    }
}

/// A custom query's rule; `young`: the step began less than a window ago, so an empty
/// result is Inconclusive rather than an Error.
fn query_rule(
    query: &weir_crds::rollout::PromQuery,
    outcome: Option<&QueryOutcome>,
    young: bool,
    f: &mut Findings,
) -> Option<f64> {
    let name = &query.name;
    let value = match outcome.map(|o| &o.value) {
        None => {
            f.errors.push(format!("query {name} was not run"));
            return None;
        }
        Some(Err(e)) => {
            f.errors.push(format!("query {name} failed: {e}"));
            return None;
        }
        Some(Ok(None)) if young => {
            f.inconclusive.push(format!(
                "query {name} returned an empty result less than a window after the step began"
            ));
            return None;
        }
        Some(Ok(None)) => {
            f.errors
                .push(format!("query {name} returned an empty result"));
            return None;
        }
        Some(Ok(Some(v))) if !v.is_finite() => {
            f.errors.push(format!("query {name} returned {v}"));
            return None;
        }
        Some(Ok(Some(v))) => *v,
    };
    let mut held = true;
    if let Some(max) = query.max.filter(|max| value > *max) {
        f.fails.push(format!(
            "query {name} = {} > max {}",
            number(value, max),
            number(max, value)
        ));
        held = false;
    }
    if let Some(min) = query.min.filter(|min| value < *min) {
        f.fails.push(format!(
            "query {name} = {} < min {}",
            number(value, min),
            number(min, value)
        ));
        held = false;
    }
    if held {
        f.passes
            .push(format!("query {name} = {}", number(value, value)));
    }
    Some(value)
}

/// A count for messages: whole when it is close to whole.
fn count(n: f64) -> String {
    format!("{}", n.round() as i64)
}

/// A percentage with as many decimals (1 to 4) as it takes to differ from `other`.
fn pct(value: f64, other: f64) -> String {
    number(value, other)
}

/// A number with 1 to 4 decimals, as few as it takes to differ from `other` (so `98.96%`
/// is never shown as `99% < 99%`); trailing zeros dropped.
fn number(value: f64, other: f64) -> String {
    for decimals in 1..=4 {
        let text = trim(format!("{value:.decimals$}"));
        if value == other || text != trim(format!("{other:.decimals$}")) {
            return text;
        }
    }
    trim(format!("{value:.4}"))
}

fn trim(text: String) -> String {
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text
    }
}

fn bound(limit: Duration) -> String {
    format_duration(limit)
}

fn round2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

#[cfg(test)]
mod tests;
