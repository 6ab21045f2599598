use super::*;
use serde_json::json;

fn user(name: &str, groups: &[&str]) -> UserInfo {
    UserInfo {
        name: name.into(),
        groups: groups.iter().map(|g| g.to_string()).collect(),
    }
}

fn sa(ns: &str, name: &str) -> UserInfo {
    user(
        &format!("system:serviceaccount:{ns}:{name}"),
        &[
            "system:serviceaccounts",
            &format!("system:serviceaccounts:{ns}"),
            "system:authenticated",
        ],
    )
}

fn res(verb: &str, group: &str, resource: &str, sub: &str, ns: &str, name: &str) -> Attributes {
    Attributes::Resource {
        verb: verb.into(),
        group: group.into(),
        resource: resource.into(),
        subresource: sub.into(),
        namespace: ns.into(),
        name: name.into(),
    }
}

fn path(verb: &str, p: &str) -> Attributes {
    Attributes::NonResource {
        verb: verb.into(),
        path: p.into(),
    }
}

fn policy() -> Policy {
    let cr = |v: Value| Role::from_json(&v);
    let b = |v: Value| Binding::from_json(&v);
    Policy {
        roles: vec![(
            "team".into(),
            cr(json!({"metadata": {"name": "reader"},
                "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"],
                           "resourceNames": ["settings"]},
                          {"apiGroups": ["weir.dev"], "resources": ["rollouts/status"], "verbs": ["patch"]}]})),
        )],
        cluster_roles: vec![
            cr(json!({"metadata": {"name": "pods-reader"},
                "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]}]})),
            cr(json!({"metadata": {"name": "status-all"},
                "rules": [{"apiGroups": ["*"], "resources": ["*/status"], "verbs": ["get"]}]})),
            cr(json!({"metadata": {"name": "paths"},
                "rules": [{"nonResourceURLs": ["/healthz", "/apis/*"], "verbs": ["get"]}]})),
            cr(json!({"metadata": {"name": "agg-target"},
                "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {"agg": "yes"}}]},
                "rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]})),
            cr(
                json!({"metadata": {"name": "agg-part", "labels": {"agg": "yes"}},
                "rules": [{"apiGroups": ["weir.dev"], "resources": ["rollouts"], "verbs": ["list"]}]}),
            ),
            cr(
                json!({"metadata": {"name": "agg-expr-part", "labels": {"tier": "gold"}},
                "rules": [{"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get"]}]}),
            ),
            cr(json!({"metadata": {"name": "agg-expr",
                "labels": {"agg": "yes"}},
                "aggregationRule": {"clusterRoleSelectors": [{"matchExpressions": [
                    {"key": "tier", "operator": "In", "values": ["gold"]}]}]}})),
        ],
        role_bindings: vec![
            (
                "team".into(),
                b(json!({"metadata": {"name": "rb-reader"},
                    "roleRef": {"kind": "Role", "name": "reader"},
                    "subjects": [{"kind": "ServiceAccount", "name": "app"}]})),
            ),
            (
                "team".into(),
                b(json!({"metadata": {"name": "rb-pods"},
                    "roleRef": {"kind": "ClusterRole", "name": "pods-reader"},
                    "subjects": [{"kind": "User", "name": "alice"}]})),
            ),
            (
                "other".into(),
                b(json!({"metadata": {"name": "rb-missing-role"},
                    "roleRef": {"kind": "Role", "name": "reader"},
                    "subjects": [{"kind": "User", "name": "alice"}]})),
            ),
        ],
        cluster_role_bindings: vec![
            b(json!({"metadata": {"name": "crb-status"},
                "roleRef": {"kind": "ClusterRole", "name": "status-all"},
                "subjects": [{"kind": "Group", "name": "auditors"}]})),
            b(json!({"metadata": {"name": "crb-paths"},
                "roleRef": {"kind": "ClusterRole", "name": "paths"},
                "subjects": [{"kind": "Group", "name": "system:authenticated"}]})),
            b(json!({"metadata": {"name": "crb-agg"},
                "roleRef": {"kind": "ClusterRole", "name": "agg-target"},
                "subjects": [{"kind": "ServiceAccount", "name": "agg", "namespace": "ops"}]})),
        ],
    }
}

#[test]
fn the_authorizer_follows_the_rbac_rules() {
    let p = policy();
    let alice = user("alice", &["system:authenticated"]);
    let bob = user("bob", &["auditors", "system:authenticated"]);
    let admin = user("root", &[MASTERS]);
    let app = sa("team", "app");
    let agg = sa("ops", "agg");
    let other_app = sa("other", "app");
    let eve = user("eve", &[]);
    #[rustfmt::skip]
    let cases: Vec<(&str, &UserInfo, Attributes, bool)> = vec![
        ("masters may do anything", &admin, res("delete", "", "secrets", "", "x", "y"), true),
        ("rolebinding to a clusterrole, in its namespace", &alice, res("list", "", "pods", "", "team", ""), true),
        ("... not in another namespace", &alice, res("list", "", "pods", "", "default", ""), false),
        ("... not cluster-wide", &alice, res("list", "", "pods", "", "", ""), false),
        ("... not another verb", &alice, res("delete", "", "pods", "", "team", "p"), false),
        ("... not another group", &alice, res("get", "apps", "pods", "", "team", "p"), false),
        ("... not a subresource", &alice, res("get", "", "pods", "log", "team", "p"), false),
        ("a binding to a Role of another namespace grants nothing", &alice, res("get", "", "configmaps", "", "other", "settings"), false),
        ("resourceNames: the named object", &app, res("get", "", "configmaps", "", "team", "settings"), true),
        ("resourceNames: another object", &app, res("get", "", "configmaps", "", "team", "other"), false),
        ("resourceNames: a list has no name", &app, res("list", "", "configmaps", "", "team", ""), false),
        ("subresource rule allows the subresource", &app, res("patch", "weir.dev", "rollouts", "status", "team", "r"), true),
        ("subresource rule does not allow the main resource", &app, res("patch", "weir.dev", "rollouts", "", "team", "r"), false),
        ("ServiceAccount subject defaults to the binding's namespace", &other_app, res("get", "", "configmaps", "", "team", "settings"), false),
        ("*/status matches any status subresource", &bob, res("get", "apps", "deployments", "status", "x", "d"), true),
        ("*/status does not match the resource", &bob, res("get", "apps", "deployments", "", "x", "d"), false),
        ("*/status does not match another subresource", &bob, res("get", "apps", "deployments", "scale", "x", "d"), false),
        ("nonResourceURLs: exact", &alice, path("get", "/healthz"), true),
        ("nonResourceURLs: prefix", &alice, path("get", "/apis/weir.dev/v1alpha1"), true),
        ("nonResourceURLs: prefix is not a substring", &alice, path("get", "/api/v1"), false),
        ("nonResourceURLs: verb", &alice, path("post", "/healthz"), false),
        ("resource rules never match paths", &alice, path("get", "/api/v1/namespaces/team/pods"), false),
        ("aggregated role: its own rules are replaced", &agg, res("delete", "", "secrets", "", "x", "y"), false),
        ("aggregated role: rules of matched roles", &agg, res("list", "weir.dev", "rollouts", "", "x", ""), true),
        ("aggregated role: nested aggregation via matchExpressions", &agg, res("get", "apps", "deployments", "", "x", "d"), true),
        ("aggregated role: unmatched rules stay out", &agg, res("get", "", "pods", "", "x", "p"), false),
        ("nobody: denied", &eve, res("get", "", "pods", "", "team", "p"), false),
    ];
    for (what, u, attrs, want) in cases {
        let d = authorize(&p, u, &attrs);
        assert_eq!(d.allowed, want, "{what}: {d:?}");
        assert_eq!(d.reason.is_empty(), !want, "{what}: reason {:?}", d.reason);
    }
}

#[test]
fn reasons_name_the_binding_role_and_subject() {
    let p = policy();
    let d = authorize(
        &p,
        &sa("team", "app"),
        &res("get", "", "configmaps", "", "team", "settings"),
    );
    assert_eq!(
        d.reason,
        "RBAC: allowed by RoleBinding \"rb-reader/team\" of Role \"reader\" to ServiceAccount \"team/app\""
    );
    let d = authorize(
        &p,
        &user("x", &["system:authenticated"]),
        &path("get", "/healthz"),
    );
    assert_eq!(
        d.reason,
        "RBAC: allowed by ClusterRoleBinding \"crb-paths\" of ClusterRole \"paths\" to Group \"system:authenticated\""
    );
}

#[test]
fn forbidden_messages_have_the_upstream_shape() {
    let u = sa("weir-system", "weir-operator");
    assert_eq!(
        forbidden_message(
            &u,
            &res("patch", "weir.dev", "rollouts", "status", "demo", "r")
        ),
        "User \"system:serviceaccount:weir-system:weir-operator\" cannot patch resource \"rollouts/status\" in API group \"weir.dev\" in the namespace \"demo\""
    );
    assert_eq!(
        forbidden_message(&u, &res("list", "", "namespaces", "", "", "")),
        "User \"system:serviceaccount:weir-system:weir-operator\" cannot list resource \"namespaces\" in API group \"\" at the cluster scope"
    );
    assert_eq!(
        forbidden_message(&u, &path("get", "/metrics")),
        "User \"system:serviceaccount:weir-system:weir-operator\" cannot get path \"/metrics\""
    );
}

#[test]
fn selectors_follow_label_selector_operators() {
    let labels: BTreeMap<String, String> = [("a".to_string(), "1".to_string())].into();
    let s = |v: Value| Selector::from_json(&v);
    let expr = |op: &str, vals: &[&str]| {
        s(json!({"matchExpressions": [{"key": "a", "operator": op, "values": vals}]}))
    };
    assert!(s(json!({})).matches(&labels));
    assert!(s(json!({"matchLabels": {"a": "1"}})).matches(&labels));
    assert!(!s(json!({"matchLabels": {"a": "2"}})).matches(&labels));
    assert!(expr("In", &["1", "2"]).matches(&labels));
    assert!(!expr("In", &["2"]).matches(&labels));
    assert!(!expr("NotIn", &["1"]).matches(&labels));
    assert!(expr("NotIn", &["2"]).matches(&labels));
    assert!(expr("Exists", &[]).matches(&labels));
    assert!(!expr("DoesNotExist", &[]).matches(&labels));
    assert!(!expr("Bogus", &[]).matches(&labels));
}

#[test]
fn aggregation_cycles_end() {
    let mut p = Policy::default();
    for (name, label, wants) in [("a", "x", "y"), ("b", "y", "x")] {
        p.cluster_roles.push(Role::from_json(&json!({
            "metadata": {"name": name, "labels": {"k": label}},
            "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {"k": wants}}]}})));
    }
    assert!(p.cluster_role_rules("a").is_empty());
}
