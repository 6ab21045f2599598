//! Issue 15, "kubectl against the local cluster, as a person uses it", part 2: the commands
//! a person types while exploring, and `kubectl describe` on every kind served, with the
//! real kubectl on PATH against the local API server and simulator.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/lib.rs"]
mod support;

use support::kubectl::on_local_cluster as cluster;

/// The commands a person types while exploring, table-driven: each must succeed and print
/// what a real cluster prints (a fragment of it), in order, on one cluster.
#[tokio::test]
async fn kubectl_commands_a_person_types_work() {
    let (c, k) = cluster().await;
    let dir = c.server.kubeconfig_path().with_file_name("editor");
    std::fs::create_dir_all(&dir).unwrap();
    let editor = dir.join("edit.sh");
    std::fs::write(
        &editor,
        "#!/bin/sh\nsed -i 's/replicas: 3/replicas: 2/' \"$1\"\n",
    )
    .unwrap();
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&editor, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let k = k.with_env("EDITOR", editor.to_str().unwrap());
    let steps: &[(&[&str], &str)] = &[
        (
            &[
                "create",
                "deployment",
                "web",
                "--image=weir-demo:v1",
                "--replicas=1",
                "--port=8080",
            ],
            "deployment.apps/web created",
        ),
        (
            &["rollout", "status", "deploy/web", "--timeout=60s"],
            "deployment \"web\" successfully rolled out",
        ),
        (
            &["scale", "deploy/web", "--replicas=3"],
            "deployment.apps/web scaled",
        ),
        (
            &["rollout", "status", "deploy/web", "--timeout=60s"],
            "successfully rolled out",
        ),
        (
            &["set", "image", "deploy/web", "weir-demo=weir-demo:v2"],
            "deployment.apps/web image updated",
        ),
        (
            &["rollout", "status", "deploy/web", "--timeout=60s"],
            "successfully rolled out",
        ),
        (
            &[
                "get",
                "deploy",
                "web",
                "-o",
                "jsonpath={.spec.template.spec.containers[0].image}",
            ],
            "weir-demo:v2",
        ),
        (
            &["expose", "deploy/web", "--port=80", "--target-port=8080"],
            "service/web exposed",
        ),
        (
            &[
                "get",
                "svc",
                "web",
                "-o",
                "jsonpath={.spec.selector.app} {.spec.ports[0].targetPort}",
            ],
            "web 8080",
        ),
        (&["edit", "deploy/web"], "deployment.apps/web edited"),
        (
            &["get", "deploy", "web", "-o", "jsonpath={.spec.replicas}"],
            "2",
        ),
        (&["rollout", "history", "deploy/web"], "REVISION"),
        (
            &["rollout", "restart", "deploy/web"],
            "deployment.apps/web restarted",
        ),
        (
            &["rollout", "status", "deploy/web", "--timeout=60s"],
            "successfully rolled out",
        ),
        (
            &["get", "deploy", "web", "-w", "--request-timeout=2s"],
            "web",
        ),
        (&["delete", "svc", "web"], "service \"web\" deleted"),
        (
            &["delete", "deploy", "web"],
            "deployment.apps \"web\" deleted",
        ),
    ];
    for (args, says) in steps {
        let r = k.run(args).await.unwrap();
        assert!(
            r.ok && r.stdout.contains(says),
            "kubectl {args:?} should print {says:?}: {r:?}"
        );
    }
    c.stop().await;
}

/// `kubectl describe` works on every kind the local server serves, as a real cluster's
/// describers print it: the `Name:` line at least, and the kind's own sections.
#[tokio::test]
async fn kubectl_describe_works_on_every_kind_served() {
    let (c, k) = cluster().await;
    for args in [
        &[
            "create",
            "deployment",
            "web",
            "--image=weir-demo:v1",
            "--port=8080",
        ][..],
        &["expose", "deploy/web", "--port=80", "--target-port=8080"],
        &["create", "configmap", "cfg", "--from-literal=a=1"],
        &["create", "secret", "generic", "s1", "--from-literal=a=1"],
        &["create", "serviceaccount", "robot"],
        &["create", "role", "reader", "--verb=get", "--resource=pods"],
        &[
            "create",
            "rolebinding",
            "reader",
            "--role=reader",
            "--serviceaccount=default:robot",
        ],
        &[
            "create",
            "clusterrole",
            "creader",
            "--verb=get",
            "--resource=pods",
        ],
        &[
            "create",
            "clusterrolebinding",
            "creader",
            "--clusterrole=creader",
            "--user=u",
        ],
    ] {
        k.ok(args).await.unwrap();
    }
    let crd =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/widgets-crd.yaml");
    k.ok(&["apply", "-f", crd.to_str().unwrap()]).await.unwrap();
    k.ok(&["rollout", "status", "deploy/web", "--timeout=60s"])
        .await
        .unwrap();
    let pod = k.first_name("pods", "app=web").await.unwrap();
    let rs = k.first_name("rs", "app=web").await.unwrap();
    let slice = k
        .first_name("endpointslices", "kubernetes.io/service-name=web")
        .await
        .unwrap();
    let event = k
        .ok(&["get", "events", "-o", "jsonpath={.items[0].metadata.name}"])
        .await
        .unwrap();
    let lease = "holder";
    let lease_file = c.server.kubeconfig_path().with_file_name("lease.yaml");
    std::fs::write(&lease_file, "apiVersion: coordination.k8s.io/v1\nkind: Lease\nmetadata: {name: holder}\nspec: {holderIdentity: me, leaseDurationSeconds: 15}\n").unwrap();
    k.ok(&["apply", "-f", lease_file.to_str().unwrap()])
        .await
        .unwrap();
    let apis = c.server.kubeconfig_path().with_file_name("apiservice.yaml");
    std::fs::write(&apis, "apiVersion: apiregistration.k8s.io/v1\nkind: APIService\nmetadata: {name: v1.example.weir.dev}\nspec: {group: example.weir.dev, version: v1, groupPriorityMinimum: 1000, versionPriority: 15}\n").unwrap();
    k.ok(&["apply", "-f", apis.to_str().unwrap()])
        .await
        .unwrap();
    let apiservice = "v1.example.weir.dev".to_string();
    // (kind, name, fragments the describer prints)
    let table: Vec<(&str, String, Vec<&str>)> = vec![
        ("namespace", "default".into(), vec!["Status:", "Active"]),
        (
            "pod",
            pod.clone(),
            vec![
                "Status:",
                "Running",
                "IP:",
                "Containers:",
                "weir-demo:v1",
                "Events:",
                "Started",
            ],
        ),
        (
            "deployment",
            "web".into(),
            vec![
                "Replicas:",
                "1 desired",
                "NewReplicaSet:",
                "Events:",
                "ScalingReplicaSet",
            ],
        ),
        (
            "replicaset",
            rs.clone(),
            vec![
                "Controlled By:",
                "Deployment/web",
                "Pods Status:",
                "1 Running",
                "SuccessfulCreate",
            ],
        ),
        (
            "service",
            "web".into(),
            vec![
                "Type:",
                "ClusterIP",
                "TargetPort:",
                "8080/TCP",
                "Endpoints:",
            ],
        ),
        ("endpoints", "web".into(), vec!["Subsets:", "Addresses:"]),
        (
            "endpointslice",
            slice,
            vec!["AddressType:", "IPv4", "Endpoints:"],
        ),
        (
            "serviceaccount",
            "robot".into(),
            vec!["Namespace:", "default"],
        ),
        ("configmap", "cfg".into(), vec!["Data", "a:"]),
        (
            "secret",
            "s1".into(),
            vec!["Type:", "Opaque", "a:", "1 bytes"],
        ),
        ("event", event, vec!["Reason:", "Source:"]),
        ("lease", lease.into(), vec!["Holder Identity:", "me"]),
        (
            "role",
            "reader".into(),
            vec!["PolicyRule:", "pods", "[get]"],
        ),
        (
            "rolebinding",
            "reader".into(),
            vec!["Role:", "ServiceAccount", "robot"],
        ),
        ("clusterrole", "creader".into(), vec!["PolicyRule:", "pods"]),
        ("clusterrolebinding", "creader".into(), vec!["User", "u"]),
        ("crd", "widgets.test.weir.dev".into(), vec!["Established"]),
        ("apiservice", apiservice, vec!["Available"]),
    ];
    let mut failures = Vec::new();
    for (kind, name, wants) in &table {
        let r = k.run(&["describe", kind, name]).await.unwrap();
        let missing: Vec<_> = wants.iter().filter(|w| !r.stdout.contains(**w)).collect();
        if !r.ok
            || !r.stdout.contains("Name:")
            || !r.stdout.contains(name.as_str())
            || !missing.is_empty()
        {
            failures.push(format!(
                "describe {kind} {name}: missing {missing:?}\n{}\n{}",
                r.stdout, r.stderr
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n----\n"));
    c.stop().await;
}
