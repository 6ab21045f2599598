//! `config/rbac` against the code and the local control plane: the roles cover every call the
//! operator, the gateway and `kubectl weir` make (from the code's own lists) without `*`,
//! and `kubectl auth can-i` agrees with them, denials included.

#[path = "support/lib.rs"]
mod support;

use anyhow::{Context as _, Result, ensure};
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::rbac::v1::RoleBinding;
use kube::api::{Api, PostParams};
use serde_json::{Value, json};
use support::operator::{rbac_objects, start};
use weir_e2e::apiserver::auth::bootstrap;
use weir_e2e::apiserver::auth::rbac::{Attributes, Binding, Policy, Role, UserInfo, authorize};
use weir_e2e::apiserver::auth::service_account_user;
use weir_operator::access::{self, Access};

/// Users bound to the aggregated `view` and `edit` roles in `demo`.
fn user_bindings() -> Vec<Value> {
    [("viewer", "view"), ("editor", "edit")]
        .iter()
        .map(|(user, role)| {
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                "metadata": {"name": format!("{user}-{role}"), "namespace": "demo"},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
                "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}]})
        })
        .collect()
}

/// The bootstrap policy, `config/rbac`, the gateway RoleBinding the operator creates in
/// `demo`, and the user bindings.
fn policy() -> Result<Policy> {
    let mut objects = bootstrap::cluster_roles();
    objects.extend(bootstrap::cluster_role_bindings());
    objects.extend(bootstrap::roles().into_iter().map(|(_, r)| r));
    objects.extend(rbac_objects()?);
    objects.push(serde_json::to_value(access::gateway_role_binding("demo"))?);
    objects.extend(user_bindings());
    let mut p = Policy::default();
    for o in &objects {
        let ns = o["metadata"]["namespace"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        match o["kind"].as_str().unwrap_or_default() {
            "ClusterRole" => p.cluster_roles.push(Role::from_json(o)),
            "Role" => p.roles.push((ns, Role::from_json(o))),
            "ClusterRoleBinding" => p.cluster_role_bindings.push(Binding::from_json(o)),
            "RoleBinding" => p.role_bindings.push((ns, Binding::from_json(o))),
            _ => {}
        }
    }
    Ok(p)
}

fn user(name: &str) -> UserInfo {
    UserInfo {
        name: name.into(),
        groups: vec!["system:authenticated".into()],
    }
}

/// Every (verb, name) call of `a` in `namespace`.
fn calls(a: &Access, namespace: &str) -> Vec<Attributes> {
    let (resource, sub) = a.resource.split_once('/').unwrap_or((a.resource, ""));
    let names: Vec<&str> = if a.names.is_empty() {
        vec![""]
    } else {
        a.names.to_vec()
    };
    a.verbs
        .iter()
        .flat_map(|verb| {
            names.iter().map(move |name| Attributes::Resource {
                verb: (*verb).into(),
                group: a.group.into(),
                resource: resource.into(),
                subresource: sub.into(),
                namespace: namespace.into(),
                name: (*name).into(),
            })
        })
        .collect()
}

/// The gateway's calls, from `weir_proxy::source::kube`: its verbs on every kind it watches.
fn gateway_calls(namespace: &str) -> Vec<Attributes> {
    use weir_proxy::index::Kind;
    use weir_proxy::source::kube::{VERBS, api_resource};
    Kind::ALL
        .iter()
        .flat_map(|k| {
            let ar = api_resource(*k);
            VERBS.iter().map(move |verb| Attributes::Resource {
                verb: (*verb).into(),
                group: ar.group.clone(),
                resource: ar.plural.clone(),
                subresource: String::new(),
                namespace: namespace.into(),
                name: String::new(),
            })
        })
        .collect()
}

#[test]
fn the_roles_cover_every_call_of_the_code_and_use_no_wildcard() -> Result<()> {
    let p = policy()?;
    let operator = service_account_user("weir-system", "weir-operator");
    let gateway = service_account_user("demo", weir_operator::children::GATEWAY_NAME);
    let mut wanted: Vec<(&UserInfo, Attributes)> = Vec::new();
    // The controller works in any namespace, so in `demo` and across all of them.
    for ns in ["demo", ""] {
        wanted.extend(
            access::OPERATOR
                .iter()
                .flat_map(|a| calls(a, ns))
                .map(|c| (&operator, c)),
        );
    }
    wanted.extend(
        access::LEADER_ELECTION
            .iter()
            .flat_map(|a| calls(a, "weir-system"))
            .map(|c| (&operator, c)),
    );
    wanted.extend(
        access::METRICS_API_AUTH
            .iter()
            .flat_map(|a| calls(a, "kube-system"))
            .map(|c| (&operator, c)),
    );
    wanted.extend(
        access::SERVING_CERT_SECRET
            .iter()
            .flat_map(|a| calls(a, "weir-system"))
            .chain(access::API_SERVICE.iter().flat_map(|a| calls(a, "")))
            .map(|c| (&operator, c)),
    );
    wanted.extend(gateway_calls("demo").into_iter().map(|c| (&gateway, c)));
    let (viewer, editor) = (user("viewer"), user("editor"));
    wanted.extend(
        access::PLUGIN_VIEW
            .iter()
            .flat_map(|a| calls(a, "demo"))
            .map(|c| (&viewer, c)),
    );
    wanted.extend(
        access::PLUGIN_VIEW
            .iter()
            .flat_map(|a| calls(a, "demo"))
            .map(|c| (&editor, c)),
    );
    wanted.extend(
        access::PLUGIN_OPERATE
            .iter()
            .flat_map(|a| calls(a, "demo"))
            .map(|c| (&editor, c)),
    );
    ensure!(wanted.len() > 100, "only {} calls derived", wanted.len());
    let missing: Vec<String> = wanted
        .iter()
        .filter(|(u, c)| !authorize(&p, u, c).allowed)
        .map(|(u, c)| format!("{}: {c:?}", u.name))
        .collect();
    ensure!(
        missing.is_empty(),
        "config/rbac does not grant:\n{}",
        missing.join("\n")
    );

    let mut rules = 0;
    for o in rbac_objects()? {
        for rule in o["rules"].as_array().into_iter().flatten() {
            rules += 1;
            for field in [
                "verbs",
                "apiGroups",
                "resources",
                "resourceNames",
                "nonResourceURLs",
            ] {
                let wild = rule[field]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|v| v.as_str().is_some_and(|s| s.contains('*')));
                ensure!(
                    !wild,
                    "{} {} uses * in {field}: {rule}",
                    o["kind"],
                    o["metadata"]["name"]
                );
            }
            let secrets = rule["resources"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|r| r == "secrets");
            // Its own Secret only: the serving certificate's, by name, in the operator's
            // namespace; `create` cannot be limited by name.
            let own_secret = o["kind"] == "Role"
                && o["metadata"]["namespace"] == "weir-system"
                && (rule["resourceNames"] == serde_json::json!(["weir-metrics-tls"])
                    || rule["verbs"] == serde_json::json!(["create"]));
            ensure!(
                !secrets || own_secret,
                "{} {} grants Secrets: {rule}",
                o["kind"],
                o["metadata"]["name"]
            );
        }
    }
    ensure!(rules > 10, "only {rules} rules in config/rbac");
    Ok(())
}

#[test]
fn the_roles_deny_what_the_code_does_not_need() -> Result<()> {
    let p = policy()?;
    let operator = service_account_user("weir-system", "weir-operator");
    let gateway = service_account_user("demo", weir_operator::children::GATEWAY_NAME);
    let res =
        |verb: &str, group: &str, resource: &str, ns: &str, name: &str| Attributes::Resource {
            verb: verb.into(),
            group: group.into(),
            resource: resource.into(),
            subresource: String::new(),
            namespace: ns.into(),
            name: name.into(),
        };
    let denied = [
        (&operator, res("get", "", "secrets", "demo", "x")),
        (
            &operator,
            res("update", "weir.dev", "rollouts", "demo", "r"),
        ),
        (
            &operator,
            res("create", "coordination.k8s.io", "leases", "demo", ""),
        ),
        (
            &operator,
            res(
                "bind",
                "rbac.authorization.k8s.io",
                "clusterroles",
                "",
                "cluster-admin",
            ),
        ),
        (
            &operator,
            res("get", "", "configmaps", "kube-system", "other"),
        ),
        (&gateway, res("list", "", "services", "other", "")),
        (&gateway, res("get", "", "secrets", "demo", "x")),
        (
            &gateway,
            res("patch", "split.smi-spec.io", "trafficsplits", "demo", "s"),
        ),
        (
            &user("viewer"),
            res("patch", "weir.dev", "rollouts", "demo", "r"),
        ),
        (
            &user("editor"),
            res("list", "weir.dev", "rollouts", "other", ""),
        ),
    ];
    for (u, attrs) in denied {
        let d = authorize(&p, u, &attrs);
        ensure!(!d.allowed, "{} may {attrs:?}: {}", u.name, d.reason);
    }
    Ok(())
}

/// `kubectl auth can-i` as `who` (`--as`), with its answer.
async fn can_i(kubeconfig: &std::path::Path, who: &str, args: &[&str]) -> Result<bool> {
    let out = tokio::time::timeout(
        std::time::Duration::from_secs(20),
        tokio::process::Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(kubeconfig)
            .args(["auth", "can-i", "--as", who])
            .args(args)
            .output(),
    )
    .await
    .context("kubectl auth can-i took over 20 s")?
    .context("these tests run the real kubectl: install kubectl")?;
    let answer = String::from_utf8_lossy(&out.stdout).trim().to_string();
    match answer.as_str() {
        "yes" => Ok(true),
        "no" => Ok(false),
        _ => anyhow::bail!(
            "kubectl auth can-i {args:?} --as {who}: {answer} {}",
            String::from_utf8_lossy(&out.stderr)
        ),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_auth_can_i_agrees_with_the_roles() -> Result<()> {
    let cluster = start(None).await?;
    let client = cluster.client.clone();
    let ns: k8s_openapi::api::core::v1::Namespace =
        serde_json::from_value(json!({"metadata": {"name": "demo"}}))?;
    Api::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await?;
    let bindings: Api<RoleBinding> = Api::namespaced(client.clone(), "demo");
    bindings
        .create(
            &PostParams::default(),
            &access::gateway_role_binding("demo"),
        )
        .await?;
    for b in user_bindings() {
        bindings
            .create(&PostParams::default(), &serde_json::from_value(b)?)
            .await?;
    }
    let kc = cluster.server.kubeconfig_path();
    let op = "system:serviceaccount:weir-system:weir-operator";
    let gw = "system:serviceaccount:demo:weir-gateway";
    #[rustfmt::skip]
    let table: &[(&str, &[&str], bool)] = &[
        (op, &["list", "rollouts.weir.dev", "--all-namespaces"], true),
        (op, &["patch", "rollouts.weir.dev", "--subresource=status", "-n", "demo"], true),
        (op, &["update", "rollouts.weir.dev", "--subresource=status", "-n", "demo"], false),
        (op, &["patch", "deployments.apps", "-n", "demo"], true),
        (op, &["get", "secrets", "-n", "demo"], false),
        (op, &["create", "leases.coordination.k8s.io", "-n", "weir-system"], true),
        (op, &["create", "leases.coordination.k8s.io", "-n", "demo"], false),
        (op, &["get", "configmaps/extension-apiserver-authentication", "-n", "kube-system"], true),
        (op, &["get", "configmaps/other", "-n", "kube-system"], false),
        (op, &["bind", "clusterroles.rbac.authorization.k8s.io/weir-gateway"], true),
        (op, &["bind", "clusterroles.rbac.authorization.k8s.io/cluster-admin"], false),
        (gw, &["watch", "trafficsplits.split.smi-spec.io", "-n", "demo"], true),
        (gw, &["list", "endpointslices.discovery.k8s.io", "-n", "demo"], true),
        (gw, &["list", "services", "-n", "default"], false),
        (gw, &["patch", "services", "-n", "demo"], false),
        ("viewer", &["get", "rollouts.weir.dev", "-n", "demo"], true),
        ("viewer", &["list", "pods", "-n", "demo"], true),
        ("viewer", &["patch", "rollouts.weir.dev", "--subresource=status", "-n", "demo"], false),
        ("viewer", &["get", "rollouts.weir.dev", "-n", "default"], false),
        ("editor", &["patch", "rollouts.weir.dev", "--subresource=status", "-n", "demo"], true),
        ("editor", &["patch", "rollouts.weir.dev", "-n", "demo"], true),
        ("editor", &["delete", "rollouts.weir.dev", "-n", "demo"], false),
        ("nobody", &["get", "pods", "-n", "demo"], false),
        ("nobody", &["get", "/version"], true),
        ("nobody", &["get", "/metrics"], false),
    ];
    let mut wrong = Vec::new();
    for (who, args, want) in table {
        let got = can_i(kc, who, args).await?;
        if got != *want {
            wrong.push(format!(
                "{who} {args:?}: kubectl says {got}, the roles say {want}"
            ));
        }
    }
    ensure!(wrong.is_empty(), "{}", wrong.join("\n"));

    // A denied call gets upstream's 403 Status.
    let path = std::env::temp_dir().join(format!("weir-gw-{}.kubeconfig", std::process::id()));
    let sa: k8s_openapi::api::core::v1::ServiceAccount =
        serde_json::from_value(json!({"metadata": {"name": "weir-gateway"}}))?;
    Api::namespaced(client.clone(), "demo")
        .create(&PostParams::default(), &sa)
        .await?;
    cluster
        .server
        .service_account_kubeconfig("demo", "weir-gateway", &path)?;
    let gw_client = support::apiserver::client_from(&path).await?;
    let err = Api::<Secret>::namespaced(gw_client, "demo")
        .get("token")
        .await
        .expect_err("the gateway read a Secret");
    let kube::Error::Api(status) = err else {
        anyhow::bail!("not an API error: {err}");
    };
    assert_eq!((status.code, status.reason.as_str()), (403, "Forbidden"));
    assert_eq!(
        status.message,
        "secrets \"token\" is forbidden: User \"system:serviceaccount:demo:weir-gateway\" cannot get resource \"secrets\" in API group \"\" in the namespace \"demo\""
    );
    Ok(())
}
