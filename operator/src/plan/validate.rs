//! What the schema cannot check, turned into settings the planner uses, or a message
//! that says what to fix (condition InvalidSpec).

use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::core::{Selector, SelectorExt};
use std::collections::BTreeMap;
use std::time::Duration;
use weir_crds::Rollout;
use weir_crds::rollout::{AnalysisSpec, Step};

/// A Rollout's spec, checked and with defaults applied.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// The steps to run.
    pub steps: Vec<Step>,
    /// The analysis, when configured.
    pub analysis: Option<AnalysisSpec>,
    /// How often a check runs.
    pub interval: Duration,
    /// Failed checks tolerated before rollback.
    pub failure_limit: u32,
    /// How long a step may be stuck.
    pub progress_deadline: Duration,
    /// How long a retired revision keeps running.
    pub scale_down_delay: Duration,
}

/// Checks a Rollout and returns its settings, or what to fix.
pub fn settings(rollout: &Rollout) -> Result<Settings, String> {
    let spec = &rollout.spec;
    let labels = match (&spec.template, &spec.workload_ref) {
        (Some(_), Some(w)) => {
            return Err(format!(
                "spec sets both template and workloadRef (Deployment {}); set exactly one: workloadRef to adopt a running Deployment, template for Weir to create revisions",
                w.name
            ));
        }
        (None, None) => {
            return Err(
                "spec sets neither template nor workloadRef; set exactly one: workloadRef to adopt a running Deployment, template for Weir to create revisions"
                    .into(),
            );
        }
        (None, Some(w)) if w.kind != "Deployment" => {
            return Err(format!(
                "spec.workloadRef.kind is {:?}; only Deployment can be adopted",
                w.kind
            ));
        }
        // The adopted Deployment's own selector picks its pods; see `adopt`.
        (None, Some(_)) => None,
        (Some(t), None) => Some(
            t.metadata
                .as_ref()
                .and_then(|m| m.labels.clone())
                .unwrap_or_default(),
        ),
    };
    let selector = selector(&spec.selector)?;
    if let Some(labels) = labels
        && !selector.matches(&labels)
    {
        return Err(format!(
            "spec.selector {selector} does not match the template's labels {}; make spec.template.metadata.labels carry the selector's labels",
            format_labels(&labels)
        ));
    }
    if selector.selects_all() {
        return Err("spec.selector is empty; it would select every pod in the namespace".into());
    }
    if spec.replicas < 0 {
        return Err(format!(
            "spec.replicas is {}; it must be 0 or more",
            spec.replicas
        ));
    }
    let steps = spec.steps();
    if steps.is_empty() {
        return Err(
            "spec.strategy.steps is empty; list at least one step or leave it out for the default"
                .into(),
        );
    }
    let analysis = spec.strategy.as_ref().and_then(|s| s.analysis.clone());
    for (i, step) in steps.iter().enumerate() {
        let keys = [
            step.set_weight.is_some(),
            step.pause.is_some(),
            step.analysis.is_some(),
        ];
        if keys.iter().filter(|k| **k).count() != 1 {
            return Err(format!(
                "spec.strategy.steps[{i}] must set exactly one of setWeight, pause or analysis"
            ));
        }
        if let Some(w) = step.set_weight
            && !(0..=100).contains(&w)
        {
            return Err(format!(
                "spec.strategy.steps[{i}].setWeight is {w}; it must be between 0 and 100"
            ));
        }
        if let Some(d) = step.pause.as_ref().and_then(|p| p.duration.as_deref()) {
            weir_crds::duration::parse_duration(
                &format!("spec.strategy.steps[{i}].pause.duration"),
                d,
            )
            .map_err(|e| e.to_string())?;
        }
        if step.analysis.is_some() && analysis.is_none() {
            return Err(format!(
                "spec.strategy.steps[{i}] is an analysis gate, but spec.strategy.analysis is not set; say how to judge the canary there"
            ));
        }
    }
    let (interval, failure_limit) = match &analysis {
        Some(a) => {
            if let Some(l) = &a.latency {
                l.limits().map_err(|e| e.to_string())?;
            }
            a.window().map_err(|e| e.to_string())?;
            (a.interval().map_err(|e| e.to_string())?, a.failure_limit())
        }
        None => (Duration::from_secs(30), 2),
    };
    Ok(Settings {
        steps,
        analysis,
        interval,
        failure_limit,
        progress_deadline: spec.progress_deadline().map_err(|e| e.to_string())?,
        scale_down_delay: spec.scale_down_delay().map_err(|e| e.to_string())?,
    })
}

/// The spec's label selector as kube's [`Selector`], or what to fix.
pub fn selector(selector: &LabelSelector) -> Result<Selector, String> {
    Selector::try_from(selector.clone()).map_err(|e| {
        format!(
            "spec.selector cannot be read ({e}); matchExpressions take the operators In and NotIn (with values), Exists and DoesNotExist"
        )
    })
}

/// A label selector in `kubectl` syntax (`app=foobar,tier in (web)`); empty for one that
/// cannot be read (validation reports it).
pub fn selector_string(selector: &LabelSelector) -> String {
    self::selector(selector).map_or_else(|_| String::new(), |s| s.to_string())
}

fn format_labels(labels: &BTreeMap<String, String>) -> String {
    if labels.is_empty() {
        return "(none)".into();
    }
    labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// A stable 10-hex-digit hash of a pod template (FNV-1a over its JSON); a change starts a revision.
pub fn template_hash(template: &PodTemplateSpec) -> String {
    let text = serde_json::to_string(template).unwrap_or_default();
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in text.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{:010x}", hash & 0xff_ffff_ffff)
}

#[cfg(test)]
mod tests;
