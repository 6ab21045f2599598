//! Pure text rendering of a [`View`]: `get`'s page, `status`'s line, the weight bar.
//! Colour is an argument ([`Style`]); the same text without colour is what a pipe gets.

mod tree;

use super::view::{AnalysisView, LiveView, Role, View};
use crate::plan::conditions::Type;
use crate::plan::reasons;
use std::fmt::Write as _;
use weir_crds::rollout::Phase;

/// How to draw: with ANSI colour or plain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Style {
    /// Use ANSI colours.
    pub color: bool,
}

/// Cells of the weight bar.
const BAR_CELLS: usize = 20;
/// Width of the label column of `get`.
const LABEL: usize = 14;

// === impl Style ===

impl Style {
    /// Plain text, for pipes and fixtures.
    pub const PLAIN: Self = Self { color: false };

    /// `text` in the ANSI SGR `code`, or `text` alone without colour.
    pub fn paint(&self, code: &str, text: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }

    /// The phase's name, coloured by how it is going.
    pub fn phase(&self, phase: Option<Phase>) -> String {
        let (code, text) = match phase {
            Some(Phase::Healthy) => ("32", "Healthy"),
            Some(Phase::Progressing) => ("36", "Progressing"),
            Some(Phase::Paused) => ("33", "Paused"),
            Some(Phase::Degraded) => ("31", "Degraded"),
            Some(Phase::Aborted) => ("31", "Aborted"),
            None => ("2", "Pending"),
        };
        self.paint(code, text)
    }
}

/// The page `kubectl weir get NAME` prints.
pub fn get(view: &View, style: Style) -> String {
    let mut out = String::new();
    field(&mut out, "Name", &view.name);
    field(&mut out, "Namespace", &view.namespace);
    let mut phase = style.phase(view.phase);
    if view.phase.is_none() {
        phase.push_str(" (the controller has not reported on this Rollout yet)");
    } else if !view.observed {
        phase.push_str(" (the controller has not acted on the latest spec yet)");
    }
    if view.paused {
        phase.push_str(&style.paint("33", " · paused by spec.paused"));
    }
    field(&mut out, "Phase", &phase);
    if let Some(message) = &view.message {
        field(&mut out, "Message", message);
    }
    if let Some(step) = &view.step {
        let text = format!("{}/{}  {}", step.number, step.total, step.description);
        field(&mut out, "Step", &text);
    }
    weights(&mut out, view, style);
    images(&mut out, view);
    if let Some(a) = &view.analysis {
        analysis(&mut out, a);
    }
    live(&mut out, &view.live);
    for pending in &view.pending {
        field(&mut out, "Pending", &style.paint("33", pending));
    }
    for c in view.conditions.iter().filter(|c| noteworthy(c)) {
        let text = format!("{} ({}): {}", c.type_, c.reason, c.message);
        field(&mut out, "Warning", &style.paint("31", &text));
    }
    out.push('\n');
    tree::render(&mut out, view, style);
    out
}

/// One `Label:   value` line of `get`; an empty label continues the field above.
fn field(out: &mut String, label: &str, value: &str) {
    let label = if label.is_empty() {
        String::new()
    } else {
        format!("{label}:")
    };
    let _ = writeln!(out, "{label:<LABEL$}{value}");
}

/// One line of progress, as `status` prints it:
/// `foobar: Paused at step 4/5 (pause (until promoted)), canary 50% — Waiting …`.
pub fn status_line(view: &View, style: Style) -> String {
    let mut text = format!("{}: {}", view.name, style.phase(view.phase));
    if let Some(step) = &view.step {
        let _ = write!(
            text,
            " at step {}/{} ({})",
            step.number, step.total, step.description
        );
    }
    if view.canary_revision.is_some() {
        let weight = view.set_weight.unwrap_or(0);
        let _ = write!(text, ", canary {weight}%");
    } else if let Some(stable) = view.stable_revision {
        let _ = write!(text, ", revision {stable}");
    }
    if !view.observed {
        text.push_str(", waiting for the controller to see the latest spec");
    }
    if let Some(message) = &view.message {
        let _ = write!(text, " — {message}");
    }
    text
}

/// `stable 80% [================####] canary 20%`: '=' for stable, '#' for the canary
/// (coloured blocks on a terminal).
pub fn weight_bar(canary_percent: f64, style: Style) -> String {
    let canary = canary_percent.clamp(0.0, 100.0);
    let cells = ((canary / 100.0) * BAR_CELLS as f64).round() as usize;
    // A canary with any traffic shows at least one cell, and stable keeps one until it has none.
    let cells = match cells {
        0 if canary > 0.0 => 1,
        n if n == BAR_CELLS && canary < 100.0 => BAR_CELLS - 1,
        n => n,
    };
    let (stable_cells, canary_cells) = if style.color {
        (
            style.paint("32", &"█".repeat(BAR_CELLS - cells)),
            style.paint("33", &"█".repeat(cells)),
        )
    } else {
        ("=".repeat(BAR_CELLS - cells), "#".repeat(cells))
    };
    format!(
        "stable {} [{stable_cells}{canary_cells}] canary {}",
        percent(100.0 - canary),
        percent(canary)
    )
}

/// A percentage with no needless decimals: `10%`, `33.3%`.
pub fn percent(p: f64) -> String {
    if (p - p.round()).abs() < 0.05 {
        format!("{}%", p.round() as i64)
    } else {
        format!("{p:.1}%")
    }
}

/// Milliseconds as `3.5ms`, `120ms` or `1.25s`.
pub fn millis(ms: f64) -> String {
    if ms >= 1000.0 {
        format!("{:.2}s", ms / 1000.0)
    } else if ms < 10.0 {
        format!("{ms:.1}ms")
    } else {
        format!("{}ms", ms.round() as i64)
    }
}

/// An age as kubectl prints it: `45s`, `3m`, `2h`, `4d`.
pub fn age(seconds: Option<i64>) -> String {
    match seconds {
        None => "-".into(),
        Some(s) if s < 120 => format!("{s}s"),
        Some(s) if s < 2 * 3600 => format!("{}m", s / 60),
        Some(s) if s < 2 * 86400 => format!("{}h", s / 3600),
        Some(s) => format!("{}d", s / 86400),
    }
}

fn weights(out: &mut String, view: &View, style: Style) {
    let actual = view.actual_canary_percent();
    if view.canary_revision.is_none() {
        if !view.split.is_empty() {
            let backends: Vec<String> = view
                .split
                .iter()
                .map(|s| format!("{} {}", s.service, percent(s.percent)))
                .collect();
            field(
                out,
                "Weight",
                &format!("no canary; TrafficSplit: {}", backends.join(", ")),
            );
        }
        return;
    }
    let set = view
        .set_weight
        .map_or("-".to_string(), |w| percent(f64::from(w)));
    let held = match actual {
        Some(a) if !view.split.is_empty() => percent(a),
        _ => "no TrafficSplit".to_string(),
    };
    field(
        out,
        "Weight",
        &format!("set {set}, TrafficSplit holds {held}"),
    );
    if let Some(a) = actual.filter(|_| !view.split.is_empty()) {
        field(out, "", &weight_bar(a, style));
    }
}

fn images(out: &mut String, view: &View) {
    let mut first = true;
    for rev in view.revisions.iter().filter(|r| r.role != Role::Retired) {
        let role = match rev.role {
            Role::Canary => "canary",
            _ => "stable",
        };
        for image in &rev.images {
            let label = if first { "Images" } else { "" };
            field(out, label, &format!("{image} ({role})"));
            first = false;
        }
    }
}

fn analysis(out: &mut String, a: &AnalysisView) {
    let limit = a
        .failure_limit
        .map_or(String::new(), |l| format!(" (limit {l})"));
    let mut text = format!(
        "{} passed at this step, {} failed{limit}",
        a.checks, a.failures
    );
    if a.consecutive_errors > 0 {
        let _ = write!(text, ", {} source errors in a row", a.consecutive_errors);
    }
    field(out, "Analysis", &text);
    let Some(last) = &a.last else { return };
    let verdict = last
        .verdict
        .map_or("no verdict".to_string(), |v| format!("{v:?}"));
    // Messages usually open with their verdict (`Pass: …`); then it is not said twice.
    let ago = a.last_age_seconds.map(|s| format!("{} ago", age(Some(s))));
    let text = match &last.message {
        Some(m) if m.starts_with(&verdict) => match ago {
            Some(ago) => format!("{m} ({ago})"),
            None => m.clone(),
        },
        Some(m) => match ago {
            Some(ago) => format!("{m} ({verdict}, {ago})"),
            None => format!("{m} ({verdict})"),
        },
        None => verdict,
    };
    field(out, "Last check", &text);
    let mut figures = Vec::new();
    if let Some(n) = last.requests {
        figures.push(format!("{n} requests"));
    }
    if let Some(s) = last.success_rate {
        figures.push(format!("success {}", percent(s)));
    }
    for (label, value) in [("p50", last.p50), ("p90", last.p90), ("p99", last.p99)] {
        if let Some(v) = value {
            figures.push(format!("{label} {}", millis(v)));
        }
    }
    if !figures.is_empty() {
        field(out, "", &figures.join(", "));
    }
}

fn live(out: &mut String, live: &LiveView) {
    match live {
        LiveView::NotAsked => {}
        LiveView::Unavailable { reason } => {
            field(out, "Live", &format!("no live metrics ({reason})"));
        }
        LiveView::Figures { rows } => {
            let window = rows.iter().find_map(|r| r.window.clone());
            let header = match window {
                Some(w) => {
                    format!("REVISION      REQUESTS  SUCCESS   P50      P99      (last {w})")
                }
                None => "REVISION      REQUESTS  SUCCESS   P50      P99".to_string(),
            };
            field(out, "Live", &header);
            for row in rows {
                let who = match (row.role, row.revision) {
                    (Some(Role::Canary), Some(r)) => format!("canary v{r}"),
                    (Some(Role::Stable), Some(r)) => format!("stable v{r}"),
                    (_, Some(r)) => format!("v{r}"),
                    _ => row.deployment.clone(),
                };
                if let Some(reason) = &row.unavailable {
                    field(out, "", &format!("{who:<14}no figures ({reason})"));
                    continue;
                }
                let dash = || "-".to_string();
                let text = format!(
                    "{who:<14}{:<10}{:<10}{:<9}{}",
                    row.requests.map_or_else(dash, |n| n.to_string()),
                    row.success_rate.map_or_else(dash, percent),
                    row.p50_ms.map_or_else(dash, millis),
                    row.p99_ms.map_or_else(dash, millis),
                );
                field(out, "", &text);
            }
        }
    }
}

/// Conditions worth a warning line: anything that needs a person.
fn noteworthy(c: &super::view::ConditionView) -> bool {
    let bad_true = [Type::InvalidSpec, Type::AnalysisError]
        .iter()
        .any(|t| c.type_ == t.as_str())
        && c.status == "True";
    let stuck =
        c.type_ == Type::Progressing.as_str() && c.reason == reasons::PROGRESS_DEADLINE_EXCEEDED;
    bad_true || stuck
}
