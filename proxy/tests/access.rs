//! SMI access control through real sockets: clients bound to distinct 127.x addresses that
//! belong to Pods of different ServiceAccounts, and a backend whose Pod runs as `api-service`.
//! The brief's document in every version, no TrafficTarget, a bad regex, the default policy.
//! (Each rule form in every version: `access_rules.rs`.)

#[path = "support/harness.rs"]
mod harness;
#[path = "support/smi.rs"]
mod smi;
#[path = "support/access_world.rs"]
mod world;

use harness::*;
use smi::{Match, Smi, VERSIONS};
use world::*;

#[tokio::test]
async fn the_briefs_example_allows_prometheus_to_get_metrics_and_nothing_else() {
    let api = backend("api").await;
    // The brief's document as written, in namespace `default`.
    let brief = include_str!("../../crds/tests/fixtures/smi/access-control-v1alpha1.yaml");
    let ns_default = |text: String| text.replace("namespace: test", "namespace: default");
    let file = ConfigFile::new(&(ns_default(world(&api)) + "---\n" + brief));
    let proxy = proxy_in("default", &file, &[]).await;
    let cases = [
        (PROMETHEUS, "GET", "/metrics", 200),
        (PROMETHEUS, "POST", "/metrics", 403),
        (PROMETHEUS, "GET", "/api", 403),
        (GRAFANA, "GET", "/metrics", 403),
        (STRANGER, "GET", "/metrics", 403),
    ];
    for (ip, method, path, want) in cases {
        let (status, body) =
            send(&client_from(ip), proxy.data_addr, "api", method, path, NONE).await;
        assert_eq!(
            status, want,
            "v1alpha1 as written: {method} {path} from {ip}: {body}"
        );
    }
    // The same policy in every other version.
    let objects = |v: Smi| {
        let matches = [
            Match {
                name: "api",
                path: Some("/api"),
                methods: Some(&["*"]),
                headers: &[],
            },
            Match {
                name: "metrics",
                path: Some("/metrics"),
                methods: Some(&["GET"]),
                headers: &[],
            },
        ];
        v.route_group("test", "api-service-routes", &matches)
            + &v.target(
                "test",
                "api-service-metrics",
                "api-service",
                &[http_rule("api-service-routes", &["metrics"])],
                &["prometheus"],
            )
    };
    check_every_version(
        &api,
        objects,
        &[
            (PROMETHEUS, "GET", "/metrics", NONE, 200),
            (PROMETHEUS, "POST", "/metrics", NONE, 403),
            (PROMETHEUS, "GET", "/api", NONE, 403),
            (GRAFANA, "GET", "/metrics", NONE, 403),
        ],
    )
    .await;
}

#[tokio::test]
async fn with_no_traffic_target_every_request_is_denied_and_the_403_says_why() {
    let api = backend("api").await;
    let group = VERSIONS[3].route_group(
        "test",
        "all",
        &[Match {
            name: "all",
            ..Match::default()
        }],
    );
    let file = ConfigFile::new(&(world(&api) + &group));
    let proxy = proxy(&file, &[]).await;
    for ip in [PROMETHEUS, GRAFANA, STRANGER] {
        for (method, path) in [("GET", "/"), ("POST", "/metrics"), ("DELETE", "/x")] {
            let (status, body) =
                send(&client_from(ip), proxy.data_addr, "api", method, path, NONE).await;
            assert_eq!(status, 403, "{method} {path} from {ip}: {body}");
            assert_eq!(body.lines().count(), 1, "{body}");
        }
    }
    let (_, body) = get(&client_from(GRAFANA), proxy.data_addr, "api", "/").await;
    for part in [
        "ServiceAccount test/grafana (Pod test/grafana-abc12-0)",
        "ServiceAccount test/api-service (Service test/api",
        "no TrafficTarget allows",
    ] {
        assert!(body.contains(part), "{part:?} not in {body}");
    }
    let (_, body) = get(&client_from(STRANGER), proxy.data_addr, "api", "/").await;
    assert!(body.contains("unknown client 127.62.0.3"), "{body}");
    assert_eq!(api.hits(), 0, "nothing reached the backend");
    let (_, metrics) = admin_get(&proxy, "/metrics").await;
    let denied = |reason: &str| {
        format!(
            "weir_denied_total{{namespace=\"test\",service=\"api\",backend=\"api\",reason=\"{reason}\"}}"
        )
    };
    assert!(
        metrics.contains(&format!("{} 7", denied("no_traffic_target"))),
        "{metrics}"
    );
    assert!(
        metrics.contains(&format!("{} 4", denied("unauthenticated"))),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_bad_regex_rejects_its_rule_alone_and_the_rest_stays_enforced() {
    let api = backend("api").await;
    let v = VERSIONS[3];
    let objects = v.route_group(
        "test",
        "bad",
        &[Match {
            name: "bad",
            path: Some("/bad(["),
            ..Match::default()
        }],
    ) + &v.route_group(
        "test",
        "good",
        &[Match {
            name: "ok",
            path: Some("/ok"),
            ..Match::default()
        }],
    ) + &v.target(
        "test",
        "t",
        "api-service",
        &[
            http_rule("bad", &[]),
            http_rule("good", &[]),
            http_rule("missing", &[]),
        ],
        &["prometheus"],
    );
    let file = ConfigFile::new(&(world(&api) + &objects));
    let proxy = proxy(&file, &[]).await;
    let c = client_from(PROMETHEUS);
    assert_eq!(get(&c, proxy.data_addr, "api", "/ok").await.0, 200);
    for path in ["/bad", "/bad([", "/other"] {
        assert_eq!(get(&c, proxy.data_addr, "api", path).await.0, 403, "{path}");
    }
    let (_, config) = admin_get(&proxy, "/config").await;
    let config: serde_json::Value = serde_json::from_str(&config).unwrap();
    assert_eq!(config["rejections"][0]["name"], "bad", "{config:#}");
    let warnings = config["warnings"].to_string();
    assert!(
        warnings.contains("HTTPRouteGroup test/bad is missing or rejected"),
        "{warnings}"
    );
    assert!(
        warnings.contains("HTTPRouteGroup test/missing is missing or rejected"),
        "{warnings}"
    );
    let (_, metrics) = admin_get(&proxy, "/metrics").await;
    assert!(metrics.contains("weir_access_rules_broken 2"), "{metrics}");
    assert!(
        metrics.contains("weir_config_rejections_total 1"),
        "{metrics}"
    );
}

#[tokio::test]
async fn an_unknown_client_passes_only_the_permissive_default_on_ungoverned_destinations() {
    let api = backend("api").await;
    let file = ConfigFile::new(&world(&api));
    let permissive = proxy(&file, &ALLOW).await;
    let strict = proxy(&file, &[]).await;
    let c = client_from(STRANGER);
    assert_eq!(get(&c, permissive.data_addr, "api", "/").await.0, 200);
    assert_eq!(get(&c, strict.data_addr, "api", "/").await.0, 403);
    // Once a TrafficTarget names `api-service`, the permissive default no longer opens it.
    let v = VERSIONS[3];
    let governed = world(&api)
        + &v.route_group(
            "test",
            "g",
            &[Match {
                name: "all",
                ..Match::default()
            }],
        )
        + &v.target(
            "test",
            "t",
            "api-service",
            &[http_rule("g", &[])],
            &["prometheus"],
        );
    file.write(&governed);
    wait_generation(&permissive, 2).await;
    assert_eq!(get(&c, permissive.data_addr, "api", "/").await.0, 403);
    assert_eq!(
        get(&client_from(PROMETHEUS), permissive.data_addr, "api", "/")
            .await
            .0,
        200
    );
}
