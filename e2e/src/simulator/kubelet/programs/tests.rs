use super::*;
use crate::simulator::fixtures::mk_pod;
use k8s_openapi::api::core::v1::{EnvVar, EnvVarSource, ObjectFieldSelector};

fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

const IP: Ipv4Addr = Ipv4Addr::new(127, 1, 0, 4);

#[test]
fn expand_replaces_known_vars_only() {
    let e = env(&[("POD_IP", "127.1.0.4")]);
    assert_eq!(
        expand("--listen=$(POD_IP):8080", &e),
        "--listen=127.1.0.4:8080"
    );
    assert_eq!(expand("$(NOPE) $$(POD_IP) $x", &e), "$(NOPE) $(POD_IP) $x");
}

#[test]
fn image_repo_strips_registry_tag_and_digest() {
    assert_eq!(image_repo("weir-demo:v1"), "weir-demo");
    assert_eq!(
        image_repo("reg:5000/org/weir-proxy:v1@sha256:1"),
        "weir-proxy"
    );
    assert_eq!(image_repo("nginx"), "nginx");
}

#[test]
fn demo_image_runs_demo_app_with_env_and_default_port() {
    let mut pod = mk_pod("web-1", &[], None, false);
    let c = &mut pod.spec.as_mut().unwrap().containers[0];
    c.image = Some("weir-demo:v2".into());
    c.ports = None;
    c.env = Some(vec![EnvVar {
        name: "ERROR_RATE".into(),
        value: Some("0.5".into()),
        ..Default::default()
    }]);
    let c = c.clone();
    let plan = plan_container(&pod, &c, IP);
    assert_eq!(plan.port, Some(DEFAULT_PORT));
    let Program::Demo(cfg) = plan.program else {
        panic!("{plan:?}")
    };
    assert_eq!(
        (cfg.version.as_str(), cfg.error_rate, cfg.pod_name.as_str()),
        ("v2", 0.5, "web-1")
    );
}

#[test]
fn proxy_image_runs_binary_with_expanded_args_and_pod_env() {
    let mut pod = mk_pod("gw-1", &[], None, false);
    let c = &mut pod.spec.as_mut().unwrap().containers[0];
    c.image = Some("weir-proxy:dev".into());
    c.command = Some(vec!["/weir-proxy".into(), "gateway".into()]);
    c.args = Some(vec!["--listen=$(POD_IP):8080".into()]);
    c.env = Some(vec![EnvVar {
        name: "SA".into(),
        value_from: Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector {
                field_path: "spec.serviceAccountName".into(),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }]);
    pod.spec.as_mut().unwrap().service_account_name = Some("gw".into());
    let c = pod.spec.as_ref().unwrap().containers[0].clone();
    let plan = plan_container(&pod, &c, IP);
    assert_eq!(
        plan.program,
        Program::Binary {
            name: "weir-proxy",
            args: vec!["gateway".into(), "--listen=127.1.0.4:8080".into()],
        }
    );
    assert_eq!(plan.env["POD_IP"], "127.1.0.4");
    assert_eq!(plan.env["POD_NAMESPACE"], "default");
    assert_eq!(plan.env["SA"], "gw");
    assert_eq!(plan.port, Some(8080));
}

#[test]
fn other_images_are_not_simulated() {
    let mut pod = mk_pod("x", &[], None, false);
    pod.spec.as_mut().unwrap().containers[0].image = Some("nginx:1.27".into());
    let c = pod.spec.as_ref().unwrap().containers[0].clone();
    let plan = plan_container(&pod, &c, IP);
    assert!(matches!(
        plan.program,
        Program::Unavailable {
            reason: "ErrImagePull",
            ..
        }
    ));
}

#[test]
fn bin_dirs_prefer_env_then_exe_dir_and_parent() {
    let dirs = default_bin_dirs(Some("/a:/b"), Some(Path::new("/t/debug/deps/test-123")));
    let want: Vec<PathBuf> = ["/a", "/b", "/t/debug/deps", "/t/debug", "target/debug"]
        .iter()
        .map(PathBuf::from)
        .collect();
    assert_eq!(dirs, want);
    assert!(find_binary("definitely-not-here", &dirs).is_none());
}
