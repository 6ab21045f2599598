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
    let c = LocalCluster::start(|_| {}).await.unwrap();
    let k = Kubectl::new(c.server.kubeconfig_path());
    (c, k)
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
