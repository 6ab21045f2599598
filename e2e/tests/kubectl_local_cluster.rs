//! Issue 15, "kubectl against the local cluster, as a person uses it": the real kubectl on
//! PATH against the local API server and simulator, checking what the person sees.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/lib.rs"]
mod support;

use support::binaries::binaries_dir;
use support::cluster::LocalCluster;
use support::kubectl::Kubectl;
use support::{eventually, seen};

async fn cluster() -> (LocalCluster, Kubectl) {
    support::kubectl::on_local_cluster().await
}

/// kubectl's generators send protobuf for built-in kinds: each one is created, and reads back
/// as the generator meant it.
#[tokio::test]
async fn kubectl_create_generators_and_run_work() {
    let (c, k) = cluster().await;
    let creates: &[(&[&str], &str)] = &[
        (&["create", "namespace", "demo"], "namespace/demo created"),
        (
            &[
                "create",
                "deployment",
                "web",
                "-n",
                "demo",
                "--image=weir-demo:v1",
                "--replicas=2",
                "--port=8080",
            ],
            "deployment.apps/web created",
        ),
        (
            &["create", "serviceaccount", "robot", "-n", "demo"],
            "serviceaccount/robot created",
        ),
        (
            &[
                "create",
                "configmap",
                "cfg",
                "-n",
                "demo",
                "--from-literal=a=1",
                "--from-literal=b=two",
            ],
            "configmap/cfg created",
        ),
        (
            &[
                "create",
                "secret",
                "generic",
                "s1",
                "-n",
                "demo",
                "--from-literal=password=hunter2",
            ],
            "secret/s1 created",
        ),
        (
            &[
                "create",
                "service",
                "clusterip",
                "web",
                "-n",
                "demo",
                "--tcp=80:8080",
            ],
            "service/web created",
        ),
        (
            &[
                "create",
                "role",
                "reader",
                "-n",
                "demo",
                "--verb=get,list",
                "--resource=pods",
            ],
            "role.rbac.authorization.k8s.io/reader created",
        ),
        (
            &[
                "create",
                "rolebinding",
                "reader",
                "-n",
                "demo",
                "--role=reader",
                "--serviceaccount=demo:robot",
            ],
            "rolebinding.rbac.authorization.k8s.io/reader created",
        ),
        (
            &[
                "run",
                "solo",
                "-n",
                "demo",
                "--image=weir-demo:v1",
                "--port=8080",
                "--labels=app=solo",
            ],
            "pod/solo created",
        ),
    ];
    for (args, says) in creates {
        let out = k.ok(args).await.unwrap();
        assert_eq!(out.trim(), *says, "kubectl {args:?}");
    }
    let get = |args: &'static [&'static str]| {
        let k = k.clone();
        async move { k.ok(args).await.unwrap() }
    };
    assert_eq!(
        get(&["get", "ns", "demo", "-o", "jsonpath={.status.phase}"]).await,
        "Active"
    );
    assert_eq!(
        get(&["get", "deploy", "web", "-n", "demo", "-o", "jsonpath={.spec.replicas} {.spec.template.spec.containers[0].image} {.spec.template.spec.containers[0].ports[0].containerPort}"]).await,
        "2 weir-demo:v1 8080"
    );
    assert_eq!(
        get(&["get", "cm", "cfg", "-n", "demo", "-o", "jsonpath={.data.b}"]).await,
        "two"
    );
    assert_eq!(
        get(&[
            "get",
            "secret",
            "s1",
            "-n",
            "demo",
            "-o",
            "jsonpath={.data.password}"
        ])
        .await,
        "aHVudGVyMg=="
    );
    assert_eq!(
        get(&[
            "get",
            "svc",
            "web",
            "-n",
            "demo",
            "-o",
            "jsonpath={.spec.ports[0].port}:{.spec.ports[0].targetPort} {.spec.selector.app}"
        ])
        .await,
        "80:8080 web"
    );
    assert_eq!(
        get(&[
            "get",
            "rolebinding",
            "reader",
            "-n",
            "demo",
            "-o",
            "jsonpath={.subjects[0].kind}/{.subjects[0].name} {.roleRef.name}"
        ])
        .await,
        "ServiceAccount/robot reader"
    );
    // The simulator runs what was created: the Deployment's pods and the lone pod get ready.
    let status = get(&[
        "rollout",
        "status",
        "deploy/web",
        "-n",
        "demo",
        "--timeout=60s",
    ])
    .await;
    assert!(status.contains("successfully rolled out"), "{status}");
    get(&[
        "wait",
        "pod/solo",
        "-n",
        "demo",
        "--for=condition=Ready",
        "--timeout=60s",
    ])
    .await;
    // The RoleBinding the generator made is enforced: the robot may list pods, not secrets.
    let can = get(&[
        "auth",
        "can-i",
        "list",
        "pods",
        "-n",
        "demo",
        "--as=system:serviceaccount:demo:robot",
    ])
    .await;
    assert_eq!(can.trim(), "yes");
    let r = k
        .run(&[
            "auth",
            "can-i",
            "list",
            "secrets",
            "-n",
            "demo",
            "--as=system:serviceaccount:demo:robot",
        ])
        .await
        .unwrap();
    assert_eq!(r.stdout.trim(), "no", "{r:?}");
    // A kind this server does not serve fails as on a server without it, and an existing
    // name is AlreadyExists.
    let err = k
        .fails(&["create", "job", "j", "--image=x", "-n", "demo"])
        .await
        .unwrap();
    assert!(
        err.contains("the server could not find the requested resource"),
        "{err}"
    );
    let err = k.fails(&["create", "namespace", "demo"]).await.unwrap();
    assert!(
        err.contains("AlreadyExists") && err.contains("namespaces \"demo\" already exists"),
        "{err}"
    );
    c.stop().await;
}

/// `kubectl logs` reads what the simulated containers print: the demo app's line, a
/// crashing binary's stderr with `--tail`, `--previous` after a restart, `-f` until the
/// process ends, and the real server's errors for a wrong container or a missing previous.
#[tokio::test]
async fn kubectl_logs_reads_the_pods_output() {
    let bin_dir = binaries_dir(&["weir-proxy"]).unwrap();
    let c = LocalCluster::start(|opts| opts.binaries = vec![bin_dir])
        .await
        .unwrap();
    let k = Kubectl::new(c.server.kubeconfig_path());
    k.ok(&["run", "demo", "--image=weir-demo:v1", "--port=8080"])
        .await
        .unwrap();
    k.ok(&["wait", "pod/demo", "--for=condition=Ready", "--timeout=60s"])
        .await
        .unwrap();
    let out = k.ok(&["logs", "demo"]).await.unwrap();
    assert!(
        out.starts_with("weir-demo v1 serving on 127.") && out.ends_with(":8080\n"),
        "{out:?}"
    );
    let stamped = k.ok(&["logs", "demo", "--timestamps"]).await.unwrap();
    assert!(stamped.contains("Z weir-demo v1 serving on"), "{stamped:?}");
    let err = k.fails(&["logs", "demo", "--previous"]).await.unwrap();
    assert!(
        err.contains("previous terminated container \"demo\" in pod \"demo\" not found"),
        "{err}"
    );
    let err = k.fails(&["logs", "demo", "-c", "nope"]).await.unwrap();
    assert!(
        err.contains("container nope is not valid for pod demo"),
        "{err}"
    );
    let err = k.fails(&["logs", "missing"]).await.unwrap();
    assert!(err.contains("pods \"missing\" not found"), "{err}");

    // weir-proxy with an argument it does not know prints clap's error and exits 2; the
    // kubelet restarts it, so a previous run appears.
    k.ok(&[
        "run",
        "crash",
        "--image=weir-proxy:dev",
        "--command",
        "--",
        "weir-proxy",
        "--bogus",
    ])
    .await
    .unwrap();
    let previous = eventually(30, "a previous run of crash", || {
        let k = k.clone();
        async move {
            let r = k.run(&["logs", "crash", "--previous"]).await?;
            seen(r.ok, "kubectl logs --previous", r)
        }
    })
    .await
    .unwrap();
    assert!(
        previous.stdout.contains("unexpected argument '--bogus'"),
        "{previous:?}"
    );
    let tail = k
        .ok(&["logs", "crash", "--previous", "--tail=1"])
        .await
        .unwrap();
    assert_eq!(tail, "For more information, try '--help'.\n");
    // -f streams the current run and ends when its process exits (within the back-off).
    let followed = eventually(60, "kubectl logs -f to end with the run", || {
        let k = k.clone();
        async move {
            let r = k.run_for(20, &["logs", "-f", "crash"]).await?;
            seen(r.ok && r.stdout.contains("'--bogus'"), "kubectl logs -f", r)
        }
    })
    .await
    .unwrap();
    assert!(
        followed
            .stdout
            .ends_with("For more information, try '--help'.\n"),
        "{followed:?}"
    );
    c.stop().await;
}

/// After a Deployment scales, `kubectl get events` shows what kube-controller-manager,
/// the scheduler and kubelet would record, on the right objects and from the right
/// components; `kubectl describe` shows them on the Deployment.
#[tokio::test]
async fn kubectl_get_events_after_a_deployment_scales() {
    let (c, k) = cluster().await;
    k.ok(&[
        "create",
        "deployment",
        "web",
        "--image=weir-demo:v1",
        "--replicas=1",
        "--port=8080",
    ])
    .await
    .unwrap();
    k.ok(&["rollout", "status", "deploy/web", "--timeout=60s"])
        .await
        .unwrap();
    k.ok(&["scale", "deploy/web", "--replicas=3"])
        .await
        .unwrap();
    k.ok(&["rollout", "status", "deploy/web", "--timeout=60s"])
        .await
        .unwrap();
    k.ok(&["scale", "deploy/web", "--replicas=1"])
        .await
        .unwrap();
    let rs = k.first_name("rs", "app=web").await.unwrap();
    // (reason, involved kind, source component, message part)
    let want: Vec<(&str, &str, &str, String)> = vec![
        (
            "ScalingReplicaSet",
            "Deployment",
            "deployment-controller",
            format!("Scaled up replica set {rs} from 0 to 1"),
        ),
        (
            "ScalingReplicaSet",
            "Deployment",
            "deployment-controller",
            format!("Scaled up replica set {rs} from 1 to 3"),
        ),
        (
            "ScalingReplicaSet",
            "Deployment",
            "deployment-controller",
            format!("Scaled down replica set {rs} from 3 to 1"),
        ),
        (
            "SuccessfulCreate",
            "ReplicaSet",
            "replicaset-controller",
            format!("Created pod: {rs}-"),
        ),
        (
            "SuccessfulDelete",
            "ReplicaSet",
            "replicaset-controller",
            format!("Deleted pod: {rs}-"),
        ),
        (
            "Scheduled",
            "Pod",
            "default-scheduler",
            "Successfully assigned default/".to_string(),
        ),
        (
            "Pulled",
            "Pod",
            "kubelet",
            "Container image \"weir-demo:v1\" already present on machine".to_string(),
        ),
        (
            "Created",
            "Pod",
            "kubelet",
            "Created container weir-demo".to_string(),
        ),
        (
            "Started",
            "Pod",
            "kubelet",
            "Started container weir-demo".to_string(),
        ),
        (
            "Killing",
            "Pod",
            "kubelet",
            "Stopping container weir-demo".to_string(),
        ),
    ];
    let events = eventually(30, "the scaling events", || {
        let (k, want) = (k.clone(), want.clone());
        async move {
            let out = k.ok(&["get", "events", "-o", "json"]).await?;
            let v: serde_json::Value = serde_json::from_str(&out)?;
            let items = v["items"].as_array().cloned().unwrap_or_default();
            let missing: Vec<_> = want
                .iter()
                .filter(|(reason, kind, component, message)| {
                    !items.iter().any(|e| {
                        e["reason"] == *reason
                            && e["involvedObject"]["kind"] == *kind
                            && e["source"]["component"] == *component
                            && e["reportingComponent"] == *component
                            && e["type"] == "Normal"
                            && e["count"].as_i64() >= Some(1)
                            && e["firstTimestamp"].is_string()
                            && e["lastTimestamp"].is_string()
                            && e["message"]
                                .as_str()
                                .is_some_and(|m| m.contains(message.as_str()))
                    })
                })
                .collect();
            seen(missing.is_empty(), "events not recorded yet", missing).map(|_| items)
        }
    })
    .await
    .unwrap();
    // Each scaling Event names the Deployment by uid; 3 pods were created, 2 deleted.
    let uid = k
        .ok(&["get", "deploy", "web", "-o", "jsonpath={.metadata.uid}"])
        .await
        .unwrap();
    let count = |reason: &str| events.iter().filter(|e| e["reason"] == reason).count();
    assert!(
        events
            .iter()
            .filter(|e| e["reason"] == "ScalingReplicaSet")
            .all(|e| e["involvedObject"]["uid"] == uid.as_str()
                && e["involvedObject"]["name"] == "web")
    );
    assert_eq!(count("SuccessfulCreate"), 3, "{events:#?}");
    assert_eq!(count("SuccessfulDelete"), 2, "{events:#?}");
    let table = k.ok(&["get", "events"]).await.unwrap();
    assert!(
        table.contains("deployment/web") && table.contains("ScalingReplicaSet"),
        "{table}"
    );
    assert!(
        table.contains(&format!("replicaset/{rs}")) && table.contains("SuccessfulCreate"),
        "{table}"
    );
    let describe = k.ok(&["describe", "deploy", "web"]).await.unwrap();
    assert!(
        describe.contains("deployment-controller")
            && describe.contains(&format!("Scaled down replica set {rs} from 3 to 1")),
        "{describe}"
    );
    c.stop().await;
}
