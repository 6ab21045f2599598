use super::*;
use crate::simulator::fixtures::{mk_pod, mk_service};

#[test]
fn empty_selector_matches_nothing() {
    assert!(!selector_matches(&BTreeMap::new(), None));
    let sel = [("app".to_string(), "web".to_string())].into();
    assert!(!selector_matches(&sel, None));
}

#[test]
fn target_port_resolves_by_number_name_or_default() {
    let pod = mk_pod("p", &[("app", "web")], Some("127.1.0.1"), true);
    let mut port = ServicePort {
        port: 80,
        ..Default::default()
    };
    assert_eq!(resolve_target_port(&port, &pod), Some(80));
    port.target_port = Some(IntOrString::Int(9090));
    assert_eq!(resolve_target_port(&port, &pod), Some(9090));
    port.target_port = Some(IntOrString::String("http".into()));
    assert_eq!(resolve_target_port(&port, &pod), Some(8080));
    port.target_port = Some(IntOrString::String("nope".into()));
    assert_eq!(resolve_target_port(&port, &pod), None);
}

#[test]
fn slice_lists_selected_pods_with_readiness_and_refs() {
    let svc = mk_service(
        "web",
        &[("app", "web")],
        Some(IntOrString::String("http".into())),
    );
    let pods = [
        mk_pod("web-b", &[("app", "web")], Some("127.1.0.2"), false),
        mk_pod("web-a", &[("app", "web")], Some("127.1.0.1"), true),
        mk_pod("other", &[("app", "db")], Some("127.1.0.3"), true),
        mk_pod("web-noip", &[("app", "web")], None, false),
    ];
    let slice = desired_slice(&svc, &pods).unwrap();
    assert_eq!(
        slice.metadata.name.as_deref(),
        Some(slice_name(&svc).as_str())
    );
    let labels = slice.metadata.labels.unwrap();
    assert_eq!(labels[SERVICE_NAME_LABEL], "web");
    assert_eq!(labels[MANAGED_BY_LABEL], MANAGED_BY);
    assert_eq!(slice.metadata.owner_references.unwrap()[0].name, "web");
    let ips: Vec<_> = slice
        .endpoints
        .iter()
        .flatten()
        .map(|e| e.addresses[0].as_str())
        .collect();
    assert_eq!(ips, ["127.1.0.1", "127.1.0.2"]);
    let ready: Vec<_> = slice
        .endpoints
        .iter()
        .flatten()
        .map(|e| e.conditions.as_ref().unwrap().ready)
        .collect();
    assert_eq!(ready, [Some(true), Some(false)]);
    let target = slice.endpoints.as_ref().unwrap()[0]
        .target_ref
        .as_ref()
        .unwrap();
    assert_eq!(target.name.as_deref(), Some("web-a"));
    let ports = slice.ports.unwrap();
    assert_eq!(ports[0].port, Some(8080));
    assert_eq!(ports[0].name.as_deref(), Some("http"));
}

#[test]
fn service_without_selector_gets_no_managed_slice() {
    let mut svc = mk_service("ext", &[], None);
    svc.spec.as_mut().unwrap().selector = None;
    assert!(desired_slice(&svc, &[]).is_none());
    assert!(desired_endpoints(&svc, &[]).is_none());
}

#[test]
fn endpoints_split_ready_and_not_ready() {
    let svc = mk_service("web", &[("app", "web")], Some(IntOrString::Int(8080)));
    let pods = [
        mk_pod("web-a", &[("app", "web")], Some("127.1.0.1"), true),
        mk_pod("web-b", &[("app", "web")], Some("127.1.0.2"), false),
    ];
    let ep = desired_endpoints(&svc, &pods).unwrap();
    let subset = &ep.subsets.unwrap()[0];
    assert_eq!(subset.addresses.as_ref().unwrap()[0].ip, "127.1.0.1");
    assert_eq!(
        subset.not_ready_addresses.as_ref().unwrap()[0].ip,
        "127.1.0.2"
    );
    assert_eq!(subset.ports.as_ref().unwrap()[0].port, 8080);
}

#[test]
fn backends_are_ready_slice_endpoints_at_the_named_port() {
    let svc = mk_service("web", &[("app", "web")], Some(IntOrString::Int(8080)));
    let pods = [
        mk_pod("web-a", &[("app", "web")], Some("127.1.0.1"), true),
        mk_pod("web-b", &[("app", "web")], Some("127.1.0.2"), false),
        mk_pod("web-c", &[("app", "web")], Some("127.1.0.3"), true),
    ];
    let slice = desired_slice(&svc, &pods).unwrap();
    let port = &svc.spec.as_ref().unwrap().ports.as_ref().unwrap()[0];
    let got = backends(&svc, port, [&slice]);
    assert_eq!(
        got,
        [
            "127.1.0.1:8080".parse::<SocketAddr>().unwrap(),
            "127.1.0.3:8080".parse().unwrap()
        ]
    );
    let other = mk_service("db", &[("app", "db")], None);
    assert!(backends(&other, port, [&slice]).is_empty());
}

#[test]
fn slice_content_eq_ignores_metadata() {
    let svc = mk_service("web", &[("app", "web")], None);
    let pods = [mk_pod("web-a", &[("app", "web")], Some("127.1.0.1"), true)];
    let a = desired_slice(&svc, &pods).unwrap();
    let mut b = a.clone();
    b.metadata.resource_version = Some("9".into());
    assert!(slice_content_eq(&a, &b));
    b.endpoints = Some(vec![]);
    assert!(!slice_content_eq(&a, &b));
}
