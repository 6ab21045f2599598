use super::*;
use crate::apiserver::resources::builtins;

fn def(kind: &str) -> ResourceDef {
    (*builtins().into_iter().find(|d| d.kind == kind).unwrap()).clone()
}

#[test]
fn pull_policy_is_always_for_latest_or_no_tag() {
    assert_eq!(pull_policy("nginx"), "Always");
    assert_eq!(pull_policy("nginx:latest"), "Always");
    assert_eq!(pull_policy("registry:5000/team/app"), "Always");
    assert_eq!(pull_policy("registry:5000/team/app:v1"), "IfNotPresent");
    assert_eq!(pull_policy("weir-demo:v1"), "IfNotPresent");
    assert_eq!(pull_policy("app@sha256:abc"), "IfNotPresent");
    assert_eq!(pull_policy(""), "IfNotPresent");
    assert_eq!(pull_policy("Bad/Name"), "IfNotPresent");
}

#[test]
fn deployments_get_the_apps_v1_and_pod_spec_defaults() {
    let mut d = json!({"metadata": {"name": "web"}, "spec": {"selector": {}, "template": {
        "spec": {"containers": [{"name": "app", "image": "x", "ports": [{"containerPort": 80}],
            "readinessProbe": {"httpGet": {"port": 80}}}]}}}});
    apply(&def("Deployment"), &mut d);
    let spec = &d["spec"];
    assert_eq!(spec["replicas"], 1);
    assert_eq!(
        spec["strategy"],
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}})
    );
    assert_eq!(spec["revisionHistoryLimit"], 10);
    assert_eq!(spec["progressDeadlineSeconds"], 600);
    let tpl = &spec["template"];
    assert!(tpl["metadata"]["creationTimestamp"].is_null());
    assert!(
        tpl["metadata"]
            .as_object()
            .unwrap()
            .contains_key("creationTimestamp")
    );
    let ps = &tpl["spec"];
    assert_eq!(ps["restartPolicy"], "Always");
    assert_eq!(ps["dnsPolicy"], "ClusterFirst");
    assert_eq!(ps["terminationGracePeriodSeconds"], 30);
    assert_eq!(ps["schedulerName"], "default-scheduler");
    assert_eq!(ps["securityContext"], json!({}));
    assert!(ps.get("enableServiceLinks").is_none(), "a Pod-only default");
    let c = &ps["containers"][0];
    assert_eq!(c["imagePullPolicy"], "Always");
    assert_eq!(c["terminationMessagePath"], "/dev/termination-log");
    assert_eq!(c["terminationMessagePolicy"], "File");
    assert_eq!(c["ports"][0]["protocol"], "TCP");
    assert_eq!(
        c["readinessProbe"],
        json!({"httpGet": {"port": 80, "path": "/", "scheme": "HTTP"}, "timeoutSeconds": 1,
               "periodSeconds": 10, "successThreshold": 1, "failureThreshold": 3})
    );
    let again = d.clone();
    apply(&def("Deployment"), &mut d);
    assert_eq!(d, again, "defaulting is idempotent");
}

#[test]
fn recreate_strategy_gets_no_rolling_update() {
    let mut d = json!({"spec": {"strategy": {"type": "Recreate"}}});
    apply(&def("Deployment"), &mut d);
    assert_eq!(d["spec"]["strategy"], json!({"type": "Recreate"}));
}

#[test]
fn services_namespaces_and_secrets() {
    let mut s = json!({"spec": {"type": "NodePort", "ports": [{"port": 80}]}});
    apply(&def("Service"), &mut s);
    assert_eq!(s["spec"]["sessionAffinity"], "None");
    assert_eq!(s["spec"]["ports"][0]["targetPort"], 80);
    assert_eq!(s["spec"]["externalTrafficPolicy"], "Cluster");
    assert_eq!(s["spec"]["internalTrafficPolicy"], "Cluster");
    let mut ext =
        json!({"spec": {"type": "ExternalName", "externalName": "x.example", "ports": []}});
    apply(&def("Service"), &mut ext);
    assert!(ext["spec"].get("ports").is_none(), "{ext}");
    assert!(ext["spec"].get("internalTrafficPolicy").is_none());
    let mut ns = json!({"metadata": {"name": "team"}});
    apply(&def("Namespace"), &mut ns);
    assert_eq!(
        ns["metadata"]["labels"]["kubernetes.io/metadata.name"],
        "team"
    );
    let mut sec = json!({"stringData": {"k": "hello"}});
    apply(&def("Secret"), &mut sec);
    assert_eq!(sec, json!({"type": "Opaque", "data": {"k": "aGVsbG8="}}));
}

#[test]
fn new_pods_get_admission_defaults() {
    let mut p = json!({"spec": {"containers": [{"name": "a", "image": "x:1"}]}});
    apply(&def("Pod"), &mut p);
    pod_admission(&mut p);
    let spec = &p["spec"];
    assert_eq!(spec["enableServiceLinks"], true);
    assert_eq!(spec["serviceAccountName"], "default");
    assert_eq!(spec["priority"], 0);
    assert_eq!(spec["preemptionPolicy"], "PreemptLowerPriority");
    assert_eq!(spec["tolerations"].as_array().unwrap().len(), 2);
    let before = p.clone();
    pod_admission(&mut p);
    assert_eq!(p, before);
}
