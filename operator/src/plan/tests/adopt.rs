//! Table tests of adoption: a Rollout that takes over a running Deployment (`spec.workloadRef`).

use super::*;
use crate::plan::adopt::names;
use weir_crds::rollout::WorkloadRef;

fn workload(name: &str, service: Option<&str>) -> WorkloadRef {
    WorkloadRef {
        kind: "Deployment".into(),
        name: name.into(),
        service_name: service.map(Into::into),
    }
}

#[test]
fn template_and_workload_ref_together_or_neither_are_invalid_spec() {
    let cases: [(bool, Option<WorkloadRef>, &str); 3] = [
        (
            true,
            Some(workload("deploy-v1", None)),
            "sets both template and workloadRef (Deployment deploy-v1)",
        ),
        (false, None, "sets neither template nor workloadRef"),
        (
            false,
            Some(WorkloadRef {
                kind: "StatefulSet".into(),
                ..workload("db", None)
            }),
            "only Deployment can be adopted",
        ),
    ];
    for (keep_template, workload_ref, want) in cases {
        let mut h = Harness::new(steps_basic());
        if !keep_template {
            h.rollout.spec.template = None;
        }
        h.rollout.spec.workload_ref = workload_ref;
        let p = h.step();
        assert!(p.actions.is_empty(), "{want}: {:?}", p.actions);
        assert_eq!(h.phase(), Phase::Degraded, "{want}");
        let c = h.condition("InvalidSpec");
        assert!(c.message.contains(want), "{want}: {}", c.message);
    }
}

/// The adopted Deployment's template hash.
const ADOPTED_HASH: &str = "adopted0001";

/// A Rollout `foobar` adopting Deployment `deployment` (3 replicas, all available) and,
/// when named, Service `service`; nothing labelled yet, the gateway not serving yet.
fn adopting(deployment: &str, service: Option<&str>) -> Harness {
    let mut h = Harness::new(steps_basic());
    h.rollout.spec.template = None;
    h.rollout.spec.workload_ref = Some(workload(deployment, service));
    h.obs.template_hash = ADOPTED_HASH.into();
    h.obs.adoption = Some(AdoptObserved {
        deployment: Some(AdoptedDeployment {
            owner: None,
            template_hash: ADOPTED_HASH.into(),
            pod_labels: [("app".to_string(), "foobar".to_string())].into(),
            replicas: 3,
            available: 3,
        }),
        service: service.map(|_| AdoptedService::default()),
        gateway_ready: false,
    });
    h
}

/// The splits a plan writes, in order.
fn splits_written(p: &Plan) -> Vec<Vec<(String, i32)>> {
    p.actions
        .iter()
        .filter_map(|a| match a {
            Action::WriteSplit { backends } => Some(backends.clone()),
            _ => None,
        })
        .collect()
}

/// After adoption, the user replaces workloadRef with a template: the next revision.
fn replace_with_template(h: &mut Harness, version: &str) {
    h.rollout.spec.workload_ref = None;
    h.change_template(version);
}

#[test]
fn names_ending_in_a_version_are_followed() {
    let cases: [(&str, Option<(&str, i64)>); 8] = [
        ("deploy-v1", Some(("deploy", 1))),
        ("app-v12", Some(("app", 12))),
        ("my-app-v3", Some(("my-app", 3))),
        ("foobar", None),
        ("foobar-v", None),
        ("-v1", None),
        ("x-v0", None),
        ("x-v1a", None),
    ];
    for (name, want) in cases {
        assert_eq!(split_version(name), want, "{name}");
    }
}

#[test]
fn adoption_names_for_both_forms() {
    // (deployment, service) → (revision, revision Service, adopted?, re-pointed, prefixes)
    let cases = [
        (
            ("deploy-v1", Some("svc-v1")),
            (1, "svc-v1", true, None, "deploy", "svc"),
        ),
        (
            ("foobar", Some("foobar")),
            (1, "foobar-v1", false, Some("foobar"), "foobar", "foobar"),
        ),
        (
            ("deploy-v3", None),
            (3, "foobar-v3", false, None, "deploy", "foobar"),
        ),
        (
            ("web", Some("web-v1")),
            (1, "web-v1", true, None, "foobar", "web"),
        ),
    ];
    for ((d, s), (rev, svc, adopted, repointed, dp, sp)) in cases {
        let a = names("foobar", &workload(d, s), "h").unwrap();
        assert_eq!(a.revision, rev, "{d}");
        assert_eq!(a.revision_service, svc, "{d}");
        assert_eq!(a.revision_service_adopted, adopted, "{d}");
        assert_eq!(a.repointed_service.as_deref(), repointed, "{d}");
        assert_eq!(
            (a.deployment_prefix.as_str(), a.service_prefix.as_str()),
            (dp, sp),
            "{d}"
        );
    }
    let err = names("foobar", &workload("deploy-v2", Some("svc-v1")), "h").unwrap_err();
    assert!(err.contains("suffixes must agree"), "{err}");
}

#[test]
fn brief_form_adopts_deploy_v1_and_svc_v1_then_canaries_deploy_v2_and_svc_v2() {
    let mut h = adopting("deploy-v1", Some("svc-v1"));
    let p = h.step();
    assert_eq!(
        p.actions[..3],
        [
            Action::EnsureRootService,
            Action::AdoptDeployment {
                name: "deploy-v1".into(),
                revision: 1,
                template_hash: ADOPTED_HASH.into()
            },
            Action::AdoptService {
                name: "svc-v1".into(),
                revision: 1
            },
        ]
    );
    assert!(
        !p.actions.iter().any(|a| matches!(
            a,
            Action::EnsureRevision { .. } | Action::RepointService { .. }
        )),
        "the adopted Deployment is never re-created and svc-v1 keeps its selector: {:?}",
        p.actions
    );
    assert_eq!(h.split(), split(&[("svc-v1", 100)]));
    assert_eq!(h.rollout.root_service_name(), "svc");
    h.step();
    assert_eq!(h.phase(), Phase::Healthy);
    assert_eq!(h.status().stable_revision, Some(1));
    assert!(
        h.step().actions.is_empty(),
        "adopted and settled: nothing to write"
    );

    replace_with_template(&mut h, "v2");
    let mut stages = splits_written(&h.step());
    assert_eq!(deployment_name(&h.rollout, 2), "deploy-v2");
    assert_eq!(service_name(&h.rollout, 2), "svc-v2");
    for _ in 0..40 {
        if h.phase() == Phase::Healthy {
            break;
        }
        h.tick(31);
        h.check(Verdict::Pass);
        stages.extend(splits_written(&h.step()));
    }
    assert_eq!(h.status().stable_revision, Some(2));
    // The brief's stages, in order: v2 at 0, at 10, ..., v2 alone.
    assert_eq!(stages[0], split(&[("svc-v1", 100), ("svc-v2", 0)]));
    assert_eq!(stages[1], split(&[("svc-v1", 90), ("svc-v2", 10)]));
    assert_eq!(
        stages.last().unwrap(),
        &split(&[("svc-v2", 100)]),
        "{stages:?}"
    );
    assert!(
        !h.obs.services.contains(&1),
        "svc-v1 is deleted at promotion"
    );
    h.tick(31);
    let p = h.step();
    assert!(
        p.actions
            .contains(&Action::DeleteDeployment { revision: 1 }),
        "{:?}",
        p.actions
    );
    assert_eq!(
        deployment_name(&h.rollout, 1),
        "deploy-v1",
        "the retired Deployment is deploy-v1"
    );
}

#[test]
fn common_form_repoints_foobar_only_once_the_gateway_serves_foobar_v1() {
    let mut h = adopting("foobar", Some("foobar"));
    h.obs.root_service = true; // clients already call Service foobar
    let p = h.step();
    assert!(p.actions.contains(&Action::EnsureAdoptedService {
        name: "foobar-v1".into(),
        revision: 1,
        selector: [("app".to_string(), "foobar".to_string())].into(),
    }));
    assert!(!p.actions.contains(&Action::EnsureRootService));
    for _ in 0..3 {
        let p = h.step();
        assert!(!p.actions.contains(&Action::RepointService {
            name: "foobar".into()
        }));
        assert_eq!(h.phase(), Phase::Progressing);
    }
    assert!(
        h.status().message.unwrap().contains("gateway"),
        "{:?}",
        h.status().message
    );
    assert_eq!(h.split(), split(&[("foobar-v1", 100)]));
    h.obs.adoption.as_mut().unwrap().gateway_ready = true;
    let p = h.step();
    assert_eq!(
        p.actions,
        [Action::RepointService {
            name: "foobar".into()
        }]
    );
    h.step();
    assert_eq!(h.phase(), Phase::Healthy);
    assert!(h.step().actions.is_empty());
    assert_eq!(h.rollout.root_service_name(), "foobar");

    replace_with_template(&mut h, "v2");
    let stages = splits_written(&h.step());
    assert_eq!(deployment_name(&h.rollout, 2), "foobar-v2");
    assert_eq!(stages[0], split(&[("foobar-v1", 100), ("foobar-v2", 0)]));
}

#[test]
fn double_adoption_and_bad_references_are_invalid_spec() {
    type Setup = fn(&mut Harness);
    let cases: [(Setup, &str); 4] = [
        (
            |h| {
                h.obs
                    .adoption
                    .as_mut()
                    .unwrap()
                    .deployment
                    .as_mut()
                    .unwrap()
                    .owner = Some("other".into())
            },
            "Deployment foobar is already adopted by Rollout other",
        ),
        (
            |h| {
                h.obs
                    .adoption
                    .as_mut()
                    .unwrap()
                    .service
                    .as_mut()
                    .unwrap()
                    .owner = Some("other".into())
            },
            "Service foobar is already adopted by Rollout other",
        ),
        (
            |h| h.obs.adoption.as_mut().unwrap().deployment = None,
            "names Deployment foobar, which does not exist",
        ),
        (
            |h| h.rollout.spec.replicas = 1,
            "spec.replicas is 1 but Deployment foobar runs 3",
        ),
    ];
    for (setup, want) in cases {
        let mut h = adopting("foobar", Some("foobar"));
        setup(&mut h);
        let p = h.step();
        assert!(p.actions.is_empty(), "{want}: {:?}", p.actions);
        assert_eq!(h.phase(), Phase::Degraded, "{want}");
        let c = h.condition("InvalidSpec");
        assert!(c.message.contains(want), "{want}: {}", c.message);
        assert!(h.step().events.is_empty(), "{want}: reported once");
    }
}

#[test]
fn deleting_hands_back_what_was_adopted() {
    let brief = names("foobar", &workload("deploy-v1", Some("svc-v1")), "h").unwrap();
    let common = names("foobar", &workload("foobar", Some("foobar")), "h").unwrap();
    let cases = [
        (
            &brief,
            Some(1),
            vec![
                HandBack::ReleaseService("svc-v1".into()),
                HandBack::ReleaseDeployment("deploy-v1".into()),
            ],
        ),
        (
            &common,
            Some(1),
            vec![
                HandBack::RestoreService("foobar".into()),
                HandBack::ReleaseDeployment("foobar".into()),
            ],
        ),
        (
            &common,
            None,
            vec![
                HandBack::RestoreService("foobar".into()),
                HandBack::ReleaseDeployment("foobar".into()),
            ],
        ),
        // Promotion retired the adopted Deployment and Service: only foobar is restored.
        (&brief, Some(2), vec![]),
        (
            &common,
            Some(2),
            vec![HandBack::RestoreService("foobar".into())],
        ),
    ];
    for (adoption, stable, want) in cases {
        assert_eq!(
            hand_back(adoption, stable),
            want,
            "{adoption:?} stable {stable:?}"
        );
    }
}
