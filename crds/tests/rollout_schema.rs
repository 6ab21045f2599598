//! The Rollout CRD carries real validation, and the sample Rollout parses with its defaults.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::Value;
use std::time::Duration;
use weir_crds::Rollout;
use weir_crds::crdgen::crds;
use weir_crds::rollout::{Phase, default_steps};

fn rollout_schema() -> Value {
    let crd = crds()
        .unwrap()
        .into_iter()
        .find(|c| c.metadata.name.as_deref() == Some("rollouts.weir.dev"))
        .unwrap();
    let schema = crd.spec.versions[0]
        .schema
        .clone()
        .unwrap()
        .open_api_v3_schema
        .unwrap();
    serde_json::to_value(schema).unwrap()
}

fn at<'a>(v: &'a Value, path: &str) -> &'a Value {
    v.pointer(path)
        .unwrap_or_else(|| panic!("no {path} in schema"))
}

#[test]
fn set_weight_is_bounded_0_to_100() {
    let s = rollout_schema();
    let w = at(
        &s,
        "/properties/spec/properties/strategy/properties/steps/items/properties/setWeight",
    );
    assert_eq!(w["minimum"].as_f64(), Some(0.0));
    assert_eq!(w["maximum"].as_f64(), Some(100.0));
}

#[test]
fn every_duration_field_has_the_pattern() {
    let s = rollout_schema();
    let spec = "/properties/spec/properties";
    let analysis = format!("{spec}/strategy/properties/analysis/properties");
    for path in [
        format!("{spec}/progressDeadline"),
        format!("{spec}/scaleDownDelay"),
        format!("{spec}/strategy/properties/steps/items/properties/pause/properties/duration"),
        format!("{analysis}/interval"),
        format!("{analysis}/window"),
        format!("{analysis}/latency/properties/p99"),
    ] {
        assert_eq!(
            at(&s, &path)["pattern"],
            weir_crds::duration::DURATION_PATTERN,
            "{path}"
        );
    }
}

#[test]
fn required_fields_are_required() {
    let s = rollout_schema();
    let required = at(&s, "/properties/spec/required").as_array().unwrap();
    assert!(required.contains(&Value::from("selector")));
    // template or workloadRef, exactly one: a CEL rule on spec rather than `required`.
    assert!(!required.contains(&Value::from("template")));
    let rules = at(&s, "/properties/spec/x-kubernetes-validations");
    assert_eq!(
        rules[0]["rule"].as_str(),
        Some("has(self.template) != has(self.workloadRef)")
    );
    let containers = at(
        &s,
        "/properties/spec/properties/template/properties/spec/properties/containers/items/required",
    );
    assert!(
        containers
            .as_array()
            .unwrap()
            .contains(&Value::from("image"))
    );
}

#[test]
fn one_key_per_step_is_a_cel_rule() {
    let s = rollout_schema();
    let rules = at(
        &s,
        "/properties/spec/properties/strategy/properties/steps/items/x-kubernetes-validations",
    );
    let rule = rules[0]["rule"].as_str().unwrap();
    assert!(
        rule.contains("has(self.setWeight)") && rule.contains("== 1"),
        "{rule}"
    );
    let strategy = at(
        &s,
        "/properties/spec/properties/strategy/x-kubernetes-validations",
    );
    assert!(
        strategy[0]["rule"]
            .as_str()
            .unwrap()
            .contains("has(self.analysis)")
    );
}

#[test]
fn printer_columns_match_the_design() {
    let crd = crds()
        .unwrap()
        .into_iter()
        .find(|c| c.metadata.name.as_deref() == Some("rollouts.weir.dev"))
        .unwrap();
    let cols: Vec<String> = crd.spec.versions[0]
        .additional_printer_columns
        .clone()
        .unwrap()
        .into_iter()
        .map(|c| c.name)
        .collect();
    assert_eq!(
        cols,
        ["Phase", "Step", "Canary", "Stable", "Canary-Rev", "Age"]
    );
    let sub = crd.spec.versions[0].subresources.clone().unwrap();
    assert!(sub.status.is_some() && sub.scale.is_some());
}

#[test]
fn sample_rollout_parses_with_defaults() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../config/samples/rollout.yaml"
    );
    let ro: Rollout = serde_yaml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert_eq!(ro.root_service_name(), "foobar");
    assert_eq!(ro.spec.replicas, 3);
    assert_eq!(
        ro.spec.progress_deadline().unwrap(),
        Duration::from_secs(600)
    );
    assert_eq!(ro.spec.scale_down_delay().unwrap(), Duration::from_secs(30));
    let analysis = ro
        .spec
        .strategy
        .as_ref()
        .unwrap()
        .analysis
        .as_ref()
        .unwrap();
    assert_eq!(analysis.interval().unwrap(), Duration::from_secs(30));
    assert_eq!(analysis.min_requests(), 20);
    assert_eq!(analysis.failure_limit(), 2);
    assert_eq!(ro.spec.steps().len(), 5);
}

#[test]
fn bad_durations_name_field_and_value() {
    let mut ro: Rollout = serde_yaml::from_str(
        "apiVersion: weir.dev/v1alpha1\nkind: Rollout\nmetadata: {name: x}\nspec:\n  selector: {matchLabels: {app: x}}\n  template: {spec: {containers: [{name: a, image: b}]}}\n  scaleDownDelay: 5 minutes\n",
    )
    .unwrap();
    let e = ro.spec.scale_down_delay().unwrap_err();
    assert_eq!(e.to_string().split(':').next(), Some("spec.scaleDownDelay"));
    assert!(e.to_string().contains("\"5 minutes\""));
    ro.spec.scale_down_delay = None;
    assert_eq!(ro.spec.scale_down_delay().unwrap(), Duration::from_secs(30));
}

#[test]
fn default_steps_gate_with_analysis_only_when_configured() {
    let with = default_steps(true);
    let weights: Vec<i32> = with.iter().filter_map(|s| s.set_weight).collect();
    assert_eq!(weights, [10, 25, 50, 75, 100]);
    assert_eq!(with.iter().filter(|s| s.analysis.is_some()).count(), 4);
    let without = default_steps(false);
    assert_eq!(without.iter().filter(|s| s.analysis.is_some()).count(), 0);
    assert_eq!(without.iter().filter(|s| s.pause.is_some()).count(), 4);
}

#[test]
fn phase_serialises_as_the_design_names() {
    let names: Vec<String> = [
        Phase::Healthy,
        Phase::Progressing,
        Phase::Paused,
        Phase::Degraded,
        Phase::Aborted,
    ]
    .iter()
    .map(|p| {
        serde_json::to_value(p)
            .unwrap()
            .as_str()
            .unwrap()
            .to_string()
    })
    .collect();
    assert_eq!(
        names,
        ["Healthy", "Progressing", "Paused", "Degraded", "Aborted"]
    );
}
