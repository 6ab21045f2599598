//! The spec's label selector, read through kube's `Selector`: table tests of every
//! matchExpressions operator and a property test against the Kubernetes rules.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::{selector, selector_string};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement};
use kube::core::SelectorExt;
use proptest::prelude::*;
use std::collections::BTreeMap;

fn req(key: &str, op: &str, values: Option<&[&str]>) -> LabelSelectorRequirement {
    LabelSelectorRequirement {
        key: key.into(),
        operator: op.into(),
        values: values.map(|v| v.iter().map(|s| s.to_string()).collect()),
    }
}

fn sel(labels: &[(&str, &str)], exprs: Vec<LabelSelectorRequirement>) -> LabelSelector {
    LabelSelector {
        match_labels: (!labels.is_empty()).then(|| {
            labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        }),
        match_expressions: (!exprs.is_empty()).then_some(exprs),
    }
}

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn match_expressions_follow_the_kubernetes_operators() {
    let pod = labels(&[("app", "foobar"), ("tier", "web")]);
    let cases: Vec<(&str, LabelSelector, bool)> = vec![
        ("matchLabels equal", sel(&[("app", "foobar")], vec![]), true),
        (
            "matchLabels differ",
            sel(&[("app", "other")], vec![]),
            false,
        ),
        (
            "In, value listed",
            sel(&[], vec![req("tier", "In", Some(&["web", "api"]))]),
            true,
        ),
        (
            "In, value not listed",
            sel(&[], vec![req("tier", "In", Some(&["api"]))]),
            false,
        ),
        (
            "In, key absent",
            sel(&[], vec![req("zone", "In", Some(&["a"]))]),
            false,
        ),
        (
            "NotIn, value listed",
            sel(&[], vec![req("tier", "NotIn", Some(&["web"]))]),
            false,
        ),
        (
            "NotIn, value not listed",
            sel(&[], vec![req("tier", "NotIn", Some(&["api"]))]),
            true,
        ),
        (
            "NotIn, key absent",
            sel(&[], vec![req("zone", "NotIn", Some(&["a"]))]),
            true,
        ),
        (
            "Exists, present",
            sel(&[], vec![req("tier", "Exists", None)]),
            true,
        ),
        (
            "Exists, absent",
            sel(&[], vec![req("zone", "Exists", None)]),
            false,
        ),
        (
            "DoesNotExist, absent",
            sel(&[], vec![req("zone", "DoesNotExist", None)]),
            true,
        ),
        (
            "DoesNotExist, present",
            sel(&[], vec![req("tier", "DoesNotExist", None)]),
            false,
        ),
        (
            "labels and expressions are ANDed",
            sel(
                &[("app", "foobar")],
                vec![req("tier", "In", Some(&["api"]))],
            ),
            false,
        ),
    ];
    for (what, s, want) in cases {
        assert_eq!(selector(&s).unwrap().matches(&pod), want, "{what}");
    }
}

#[test]
fn unreadable_expressions_say_what_to_fix() {
    for bad in [
        req("tier", "Matches", Some(&["web"])),
        req("tier", "In", None),
        req("tier", "NotIn", None),
    ] {
        let err = selector(&sel(&[], vec![bad.clone()])).unwrap_err();
        assert!(
            err.contains("spec.selector cannot be read"),
            "{bad:?}: {err}"
        );
        assert!(err.contains("In and NotIn (with values)"), "{err}");
    }
}

#[test]
fn selector_strings_are_kubectl_syntax() {
    let s = sel(
        &[("app", "foobar")],
        vec![
            req("tier", "In", Some(&["web", "api"])),
            req("zone", "NotIn", Some(&["b"])),
            req("canary", "Exists", None),
            req("legacy", "DoesNotExist", None),
        ],
    );
    assert_eq!(
        selector_string(&s),
        "app=foobar,tier in (api,web),zone notin (b),canary,!legacy"
    );
}

/// The Kubernetes rules, written out for the property test.
fn reference(s: &LabelSelector, l: &BTreeMap<String, String>) -> bool {
    let labels_ok = s
        .match_labels
        .iter()
        .flatten()
        .all(|(k, v)| l.get(k) == Some(v));
    let exprs_ok = s.match_expressions.iter().flatten().all(|e| {
        let values = e.values.clone().unwrap_or_default();
        match e.operator.as_str() {
            "In" => l.get(&e.key).is_some_and(|v| values.contains(v)),
            "NotIn" => l.get(&e.key).is_none_or(|v| !values.contains(v)),
            "Exists" => l.contains_key(&e.key),
            _ => !l.contains_key(&e.key),
        }
    });
    labels_ok && exprs_ok
}

fn key() -> impl Strategy<Value = String> {
    prop::sample::select(vec!["app", "tier", "zone"]).prop_map(String::from)
}
fn value() -> impl Strategy<Value = String> {
    prop::sample::select(vec!["a", "b", "c"]).prop_map(String::from)
}

fn requirement() -> impl Strategy<Value = LabelSelectorRequirement> {
    (
        key(),
        prop::sample::select(vec!["In", "NotIn", "Exists", "DoesNotExist"]),
        prop::collection::vec(value(), 0..3),
    )
        .prop_map(|(key, op, values)| LabelSelectorRequirement {
            key,
            operator: op.into(),
            values: matches!(op, "In" | "NotIn").then_some(values),
        })
}

proptest! {
    #[test]
    fn selectors_match_as_kubernetes_says(
        match_labels in prop::collection::btree_map(key(), value(), 0..3),
        exprs in prop::collection::vec(requirement(), 0..4),
        pod in prop::collection::btree_map(key(), value(), 0..3),
    ) {
        let s = LabelSelector {
            match_labels: Some(match_labels),
            match_expressions: Some(exprs),
        };
        prop_assert_eq!(selector(&s).unwrap().matches(&pod), reference(&s, &pod));
    }
}
