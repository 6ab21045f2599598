use super::*;
use crate::plan::template_hash;
use weir_crds::model::{SmiObject, normalise};

fn rollout() -> Rollout {
    let mut ro: Rollout =
        serde_yaml::from_str(include_str!("../../../config/samples/rollout.yaml")).unwrap();
    ro.metadata.uid = Some("uid-1".into());
    ro
}

#[test]
fn revision_deployment_carries_labels_owner_and_revision_selector() {
    let ro = rollout();
    let hash = template_hash(ro.spec.template.as_ref().unwrap());
    let d = deployment(&ro, 2, 3, &hash).unwrap();
    assert_eq!(d.metadata.name.as_deref(), Some("foobar-v2"));
    let labels = d.metadata.labels.clone().unwrap();
    assert_eq!(
        labels
            .get("app.kubernetes.io/managed-by")
            .map(String::as_str),
        Some("weir")
    );
    assert_eq!(
        labels.get("weir.dev/rollout").map(String::as_str),
        Some("foobar")
    );
    let owner = &d.metadata.owner_references.clone().unwrap()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.name.as_str(), owner.controller),
        ("Rollout", "foobar", Some(true))
    );
    assert_eq!(
        d.metadata.annotations.unwrap()[TEMPLATE_HASH_ANNOTATION],
        hash
    );
    let spec = d.spec;
    assert_eq!(spec.replicas, Some(3));
    let sel = spec.selector.match_labels.unwrap();
    assert_eq!(sel.get("weir.dev/revision").map(String::as_str), Some("2"));
    assert_eq!(sel.get("app").map(String::as_str), Some("foobar"));
    let pod_labels = spec.template.metadata.unwrap().labels.unwrap();
    assert!(
        sel.iter().all(|(k, v)| pod_labels.get(k) == Some(v)),
        "the selector selects its own pods"
    );
}

#[test]
fn revision_service_selects_one_revision_on_the_target_port() {
    let s = revision_service(&rollout(), 1);
    assert_eq!(s.metadata.name.as_deref(), Some("foobar-v1"));
    let spec = s.spec.unwrap();
    assert_eq!(
        spec.selector
            .unwrap()
            .get("weir.dev/revision")
            .map(String::as_str),
        Some("1")
    );
    let port = &spec.ports.unwrap()[0];
    assert_eq!(
        (port.port, port.target_port.clone()),
        (80, Some(IntOrString::Int(8080)))
    );
}

#[test]
fn root_service_selects_the_gateway_or_every_revision() {
    let ro = rollout();
    let with = root_service(&ro, true).spec.unwrap();
    assert_eq!(
        with.selector
            .unwrap()
            .get("app.kubernetes.io/name")
            .map(String::as_str),
        Some(GATEWAY_NAME)
    );
    assert_eq!(
        with.ports.unwrap()[0].target_port,
        Some(IntOrString::Int(GATEWAY_PORT))
    );
    let without = root_service(&ro, false).spec.unwrap();
    assert_eq!(
        without.selector.unwrap().get("app").map(String::as_str),
        Some("foobar")
    );
}

#[test]
fn traffic_split_is_the_briefs_shape_and_normalises() {
    let ro = rollout();
    let split = traffic_split(&ro, &[("foobar-v1".into(), 100), ("foobar-v2".into(), 0)]);
    assert_eq!(split["metadata"]["name"], "foobar-rollout");
    assert_eq!(split["spec"]["service"], "foobar");
    let SmiObject::Split(s) = normalise(&split, "default").unwrap() else {
        panic!()
    };
    assert_eq!(s.share("foobar-v1"), 1.0);
    assert_eq!(s.share("foobar-v2"), 0.0);
}

#[test]
fn gateway_runs_the_proxy_image_with_its_namespace() {
    let d = gateway_deployment("shop", "weir-proxy:0.1.0");
    let pod = d.spec.template.spec.unwrap();
    assert_eq!(pod.service_account_name.as_deref(), Some(GATEWAY_NAME));
    let c = &pod.containers[0];
    assert_eq!(c.image.as_deref(), Some("weir-proxy:0.1.0"));
    assert!(
        c.args
            .clone()
            .unwrap()
            .windows(2)
            .any(|w| w == ["--namespace", "shop"])
    );
    assert_eq!(
        gateway_service_account("shop")
            .metadata
            .namespace
            .as_deref(),
        Some("shop")
    );
}

#[test]
fn controller_revision_keeps_the_template_at_its_rollout_path() {
    let ro = rollout();
    let hash = template_hash(ro.spec.template.as_ref().unwrap());
    let cr = controller_revision(&ro, 4, &hash, ro.spec.template.as_ref().unwrap()).unwrap();
    assert_eq!(cr.metadata.name.as_deref(), Some("foobar-v4"));
    assert_eq!(cr.revision, Some(4));
    assert_eq!(
        cr.metadata.labels.clone().unwrap()[REVISION_LABEL],
        "4".to_string()
    );
    assert_eq!(
        cr.metadata.annotations.unwrap()[TEMPLATE_HASH_ANNOTATION],
        hash
    );
    let data = cr.data.0;
    let back: k8s_openapi::api::core::v1::PodTemplateSpec =
        serde_json::from_value(data["spec"]["template"].clone()).unwrap();
    assert_eq!(template_hash(&back), hash, "the template round-trips");
}

#[test]
fn history_keeps_the_newest_ten_and_never_stable_or_canary() {
    let all: Vec<i64> = (1..=14).collect();
    assert_eq!(history_to_prune(&all, &[13, 14]), vec![2, 1]);
    assert_eq!(history_to_prune(&all, &[1, 14]), vec![3, 2]);
    assert!(history_to_prune(&[1, 2, 3], &[3]).is_empty());
}

proptest::proptest! {
    /// The LIST before pruning is skipped only when pruning could not find anything: with
    /// every revision at most the newest, and the newest within the limit, nothing goes.
    #[test]
    fn history_is_listed_whenever_something_could_be_pruned(
        newest in 1i64..40,
        gaps in proptest::collection::btree_set(1i64..40, 0..4),
        keep in proptest::collection::vec(1i64..40, 0..3),
    ) {
        // Revisions up to the newest, a few of them gone (or reused and so never written).
        let mut all: Vec<i64> = (1..newest).filter(|r| !gaps.contains(r)).collect();
        all.push(newest);
        if !history_may_overflow(newest) {
            proptest::prop_assert!(history_to_prune(&all, &keep).is_empty());
        }
    }
}

#[test]
fn history_is_listed_past_the_limit_only() {
    assert!(!history_may_overflow(1));
    assert!(!history_may_overflow(10));
    assert!(history_may_overflow(11));
    assert!(
        history_may_overflow(-1),
        "a nonsense revision is listed, not trusted"
    );
}

#[test]
fn a_gateway_differs_only_in_what_weir_sets() {
    let want = gateway_deployment("default", "weir-proxy:1");
    assert_eq!(
        want.spec.replicas, None,
        "replicas are left to whoever scales"
    );
    // What the server and others add is no difference: replicas, annotations, extra
    // labels, defaulted port protocols and fieldRef API versions.
    let mut live = want.clone();
    live.spec.replicas = Some(3);
    live.metadata.annotations = Some(BTreeMap::from([("a".to_string(), "b".to_string())]));
    live.metadata
        .labels
        .get_or_insert_with(BTreeMap::new)
        .insert("team".into(), "x".into());
    let pod = live.spec.template.spec.as_mut().unwrap();
    for p in pod.containers[0].ports.iter_mut().flatten() {
        p.protocol = Some("TCP".into());
    }
    for e in pod.containers[0].env.iter_mut().flatten() {
        if let Some(f) = e.value_from.as_mut().and_then(|v| v.field_ref.as_mut()) {
            f.api_version = Some("v1".into());
        }
    }
    assert!(!gateway_differs(&live, &want));
    // What Weir sets is a difference.
    let other_image = gateway_deployment("default", "weir-proxy:2");
    assert!(gateway_differs(&live, &other_image));
    let mut no_args = live.clone();
    no_args.spec.template.spec.as_mut().unwrap().containers[0].args = None;
    assert!(gateway_differs(&no_args, &want));
    let mut no_sa = live.clone();
    no_sa
        .spec
        .template
        .spec
        .as_mut()
        .unwrap()
        .service_account_name = None;
    assert!(gateway_differs(&no_sa, &want));
    let mut relabelled = live.clone();
    relabelled
        .spec
        .template
        .metadata
        .as_mut()
        .unwrap()
        .labels
        .as_mut()
        .unwrap()
        .insert("app.kubernetes.io/name".into(), "other".into());
    assert!(gateway_differs(&relabelled, &want));
    let mut no_container = live.clone();
    no_container.spec.template.spec.as_mut().unwrap().containers[0].name = "other".into();
    assert!(gateway_differs(&no_container, &want));
}

#[test]
fn a_kept_template_rebuilds_the_revisions_deployment() {
    let ro = rollout();
    let hash = template_hash(ro.spec.template.as_ref().unwrap());
    let kept = controller_revision(&ro, 1, &hash, ro.spec.template.as_ref().unwrap()).unwrap();
    let mut changed = ro.clone();
    changed
        .spec
        .template
        .as_mut()
        .unwrap()
        .spec
        .as_mut()
        .unwrap()
        .containers[0]
        .image = Some("other:v9".into());
    let (template, kept_hash) = kept_template(&kept).unwrap();
    assert_eq!(kept_hash, hash);
    let restored = deployment_from(&changed, 1, 2, &kept_hash, template);
    assert_eq!(restored, deployment(&ro, 1, 2, &hash).unwrap());
}

/// RFC 7386 JSON merge patch, as the API server applies `Patch::Merge`.
fn merge(target: &mut serde_json::Value, patch: &serde_json::Value) {
    match (target.as_object_mut(), patch.as_object()) {
        (Some(t), Some(p)) => {
            for (k, v) in p {
                if v.is_null() {
                    t.remove(k);
                } else {
                    merge(t.entry(k.clone()).or_insert(serde_json::Value::Null), v);
                }
            }
        }
        _ => *target = patch.clone(),
    }
}

#[test]
fn a_repointed_service_selects_the_gateway_and_is_restored_exactly() {
    let original: Service = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "foobar", "namespace": "default", "labels": {"team": "a"}},
        "spec": {
            "selector": {"app": "foobar", "tier": "web"},
            "ports": [{"name": "http", "port": 80, "targetPort": 9000, "protocol": "TCP"}],
            "clusterIP": "10.0.0.7"
        }
    }))
    .unwrap();
    let mut live = serde_json::to_value(&original).unwrap();
    merge(&mut live, &repoint_patch(&original, "foobar").unwrap());
    let repointed: Service = serde_json::from_value(live.clone()).unwrap();
    let spec = repointed.spec.clone().unwrap();
    assert_eq!(
        spec.selector.unwrap(),
        BTreeMap::from([(
            "app.kubernetes.io/name".to_string(),
            GATEWAY_NAME.to_string()
        )])
    );
    let port = &spec.ports.unwrap()[0];
    assert_eq!(
        (port.port, port.target_port.clone()),
        (80, Some(IntOrString::Int(GATEWAY_PORT)))
    );
    assert_eq!(
        spec.cluster_ip.as_deref(),
        Some("10.0.0.7"),
        "the ClusterIP clients use stays"
    );
    // Re-pointing again keeps the first original, not the gateway selector.
    let again = repoint_patch(&repointed, "foobar").unwrap();
    assert_eq!(
        again["metadata"]["annotations"][ORIGINAL_ANNOTATION],
        live["metadata"]["annotations"][ORIGINAL_ANNOTATION]
    );
    merge(&mut live, &restore_patch(&repointed).unwrap().unwrap());
    let restored: Service = serde_json::from_value(live).unwrap();
    assert_eq!(restored.spec, original.spec);
    assert_eq!(
        restore_patch(&original).unwrap(),
        None,
        "never re-pointed: nothing to restore"
    );
}
