//! `list`: one row per Rollout, built and rendered purely.

use super::render::{Style, age};
use super::view::{describe_step, seconds_since};
use k8s_openapi::jiff::Timestamp;
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;
use weir_crds::Rollout;
use weir_crds::rollout::Phase;

/// One Rollout in `list`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListRow {
    /// The namespace.
    pub namespace: String,
    /// The name.
    pub name: String,
    /// The phase.
    pub phase: Option<Phase>,
    /// The step as `n/total`.
    pub step: Option<String>,
    /// What the current step does, such as `pause (until promoted)`.
    pub step_description: Option<String>,
    /// Percent of traffic to stable, as the controller set it.
    pub stable_weight: Option<i32>,
    /// Percent of traffic to the canary, as the controller set it.
    pub canary_weight: Option<i32>,
    /// The stable revision.
    pub stable_revision: Option<i64>,
    /// The canary revision.
    pub canary_revision: Option<i64>,
    /// Seconds since creation.
    pub age_seconds: Option<i64>,
}

// === impl ListRow ===

impl ListRow {
    /// The row of `rollout` at `now`.
    pub fn build(rollout: &Rollout, now: Timestamp) -> Self {
        let status = rollout.status.clone().unwrap_or_default();
        let steps = rollout.spec.steps();
        let step_description = status
            .current_step
            .filter(|_| status.canary_revision.is_some())
            .and_then(|i| usize::try_from(i).ok())
            .and_then(|i| steps.get(i))
            .map(describe_step);
        Self {
            namespace: rollout.metadata.namespace.clone().unwrap_or_default(),
            name: rollout.metadata.name.clone().unwrap_or_default(),
            phase: status.phase,
            step: status.step_progress.clone(),
            step_description,
            stable_weight: status.weights.map(|w| w.stable),
            canary_weight: status.weights.map(|w| w.canary),
            stable_revision: status.stable_revision,
            canary_revision: status.canary_revision,
            age_seconds: rollout
                .metadata
                .creation_timestamp
                .as_ref()
                .map(|t| seconds_since(t, now)),
        }
    }

    /// The row's cells, in column order (without the namespace).
    fn cells(&self, style: Style) -> [(String, usize); 7] {
        let dash = || "-".to_string();
        let phase_text = self
            .phase
            .map_or("Pending".to_string(), |p| format!("{p:?}"));
        let weight = match (self.stable_weight, self.canary_weight) {
            (Some(s), Some(c)) => format!("{s}/{c}"),
            _ => dash(),
        };
        [
            (self.name.clone(), self.name.chars().count()),
            (style.phase(self.phase), phase_text.chars().count()),
            (
                self.step.clone().unwrap_or_else(dash),
                self.step.as_ref().map_or(1, |s| s.chars().count()),
            ),
            (weight.clone(), weight.chars().count()),
            (
                self.stable_revision.map_or_else(dash, |r| r.to_string()),
                self.stable_revision.map_or(1, |r| r.to_string().len()),
            ),
            (
                self.canary_revision.map_or_else(dash, |r| r.to_string()),
                self.canary_revision.map_or(1, |r| r.to_string().len()),
            ),
            (age(self.age_seconds), age(self.age_seconds).len()),
        ]
    }
}

const HEADERS: [&str; 7] = ["NAME", "PHASE", "STEP", "WEIGHT", "STABLE", "CANARY", "AGE"];

/// The column widths that fit `rows` (and the headers).
pub fn widths(rows: &[ListRow], all_namespaces: bool) -> Vec<usize> {
    let mut w: Vec<usize> = HEADERS.iter().map(|h| h.len()).collect();
    for row in rows {
        for (i, (_, len)) in row.cells(Style::PLAIN).iter().enumerate() {
            w[i] = w[i].max(*len);
        }
    }
    if all_namespaces {
        let ns = rows.iter().map(|r| r.namespace.len()).max().unwrap_or(0);
        w.insert(0, ns.max("NAMESPACE".len()));
    }
    w
}

/// The header line for these widths.
pub fn header(widths: &[usize], all_namespaces: bool) -> String {
    let mut names: Vec<&str> = HEADERS.to_vec();
    if all_namespaces {
        names.insert(0, "NAMESPACE");
    }
    let cells: Vec<String> = names
        .iter()
        .zip(widths)
        .map(|(h, w)| format!("{h:<w$}"))
        .collect();
    cells.join("   ").trim_end().to_string()
}

/// One row as a line for these widths. "WEIGHT" is `stable/canary` in percent.
pub fn line(row: &ListRow, widths: &[usize], all_namespaces: bool, style: Style) -> String {
    let mut cells: Vec<(String, usize)> = row.cells(style).to_vec();
    if all_namespaces {
        cells.insert(0, (row.namespace.clone(), row.namespace.len()));
    }
    let mut out = String::new();
    for (i, ((text, len), w)) in cells.iter().zip(widths).enumerate() {
        if i > 0 {
            out.push_str("   ");
        }
        let _ = write!(out, "{text}{}", " ".repeat(w.saturating_sub(*len)));
    }
    out.trim_end().to_string()
}

/// The whole table, as `list` prints it.
pub fn render(rows: &[ListRow], all_namespaces: bool, style: Style) -> String {
    if rows.is_empty() {
        return "No rollouts found.\n".to_string();
    }
    let widths = widths(rows, all_namespaces);
    let mut out = header(&widths, all_namespaces);
    out.push('\n');
    for row in rows {
        out.push_str(&line(row, &widths, all_namespaces, style));
        out.push('\n');
    }
    out
}
