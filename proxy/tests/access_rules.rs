//! Every SMI rule form, allowing and denying, in every SMI version, through real sockets.

#[path = "support/harness.rs"]
mod harness;
#[path = "support/smi.rs"]
mod smi;
#[path = "support/access_world.rs"]
mod world;

use harness::*;
use smi::{Match, Rule, Smi, VERSIONS};
use world::*;

#[tokio::test]
async fn a_rule_without_matches_allows_every_match_of_its_group() {
    let api = backend("api").await;
    let objects = |v: Smi| {
        v.route_group(
            "test",
            "g",
            &[
                Match {
                    name: "a",
                    path: Some("/a"),
                    methods: Some(&["GET"]),
                    headers: &[],
                },
                Match {
                    name: "b",
                    path: Some("/b"),
                    methods: Some(&["POST"]),
                    headers: &[],
                },
            ],
        ) + &v.target(
            "test",
            "t",
            "api-service",
            &[http_rule("g", &[])],
            &["prometheus"],
        )
    };
    check_every_version(
        &api,
        objects,
        &[
            (PROMETHEUS, "GET", "/a", NONE, 200),
            (PROMETHEUS, "POST", "/b", NONE, 200),
            (PROMETHEUS, "POST", "/a", NONE, 403),
            (PROMETHEUS, "GET", "/c", NONE, 403),
            (GRAFANA, "GET", "/a", NONE, 403),
        ],
    )
    .await;
}

#[tokio::test]
async fn named_matches_allow_only_those_and_any_of_them_allows() {
    let api = backend("api").await;
    let objects = |v: Smi| {
        v.route_group(
            "test",
            "g",
            &[
                Match {
                    name: "a",
                    path: Some("/a"),
                    ..Match::default()
                },
                Match {
                    name: "b",
                    path: Some("/b"),
                    ..Match::default()
                },
                Match {
                    name: "c",
                    path: Some("/c"),
                    ..Match::default()
                },
            ],
        ) + &v.target(
            "test",
            "t",
            "api-service",
            &[http_rule("g", &["a", "c"])],
            &["prometheus"],
        )
    };
    check_every_version(
        &api,
        objects,
        &[
            (PROMETHEUS, "GET", "/a", NONE, 200),
            (PROMETHEUS, "GET", "/c", NONE, 200),
            (PROMETHEUS, "GET", "/b", NONE, 403),
        ],
    )
    .await;
}

#[tokio::test]
async fn path_regex_is_anchored_to_the_whole_path() {
    let api = backend("api").await;
    let objects = |v: Smi| {
        v.route_group(
            "test",
            "g",
            &[
                Match {
                    name: "exact",
                    path: Some("/api"),
                    ..Match::default()
                },
                Match {
                    name: "tree",
                    path: Some("/v1/.*"),
                    ..Match::default()
                },
            ],
        ) + &v.target(
            "test",
            "t",
            "api-service",
            &[http_rule("g", &[])],
            &["prometheus"],
        )
    };
    check_every_version(
        &api,
        objects,
        &[
            (PROMETHEUS, "GET", "/api", NONE, 200),
            (PROMETHEUS, "GET", "/api/x", NONE, 403),
            (PROMETHEUS, "GET", "/x/api", NONE, 403),
            (PROMETHEUS, "GET", "/v1/users?limit=3", NONE, 200),
            (PROMETHEUS, "GET", "/v2/v1/users", NONE, 403),
        ],
    )
    .await;
}

#[tokio::test]
async fn methods_are_a_star_or_a_list() {
    let api = backend("api").await;
    let objects = |v: Smi| {
        v.route_group(
            "test",
            "g",
            &[
                Match {
                    name: "any",
                    path: Some("/any"),
                    methods: Some(&["*"]),
                    headers: &[],
                },
                Match {
                    name: "some",
                    path: Some("/some"),
                    methods: Some(&["GET", "PUT"]),
                    headers: &[],
                },
            ],
        ) + &v.target(
            "test",
            "t",
            "api-service",
            &[http_rule("g", &[])],
            &["prometheus"],
        )
    };
    check_every_version(
        &api,
        objects,
        &[
            (PROMETHEUS, "DELETE", "/any", NONE, 200),
            (PROMETHEUS, "PATCH", "/any", NONE, 200),
            (PROMETHEUS, "GET", "/some", NONE, 200),
            (PROMETHEUS, "PUT", "/some", NONE, 200),
            (PROMETHEUS, "POST", "/some", NONE, 403),
        ],
    )
    .await;
}

#[tokio::test]
async fn header_regexes_must_all_match_in_the_versions_that_have_them() {
    let api = backend("api").await;
    for v in VERSIONS.into_iter().filter(Smi::has_headers) {
        let objects = v.route_group(
            "test",
            "g",
            &[Match {
                name: "debug",
                path: Some("/.*"),
                methods: Some(&["*"]),
                headers: &[("x-debug", "1|yes"), ("user-agent", "curl/.*")],
            }],
        ) + &v.target(
            "test",
            "t",
            "api-service",
            &[http_rule("g", &[])],
            &["prometheus"],
        );
        let both: &[(&str, &str)] = &[("x-debug", "yes"), ("user-agent", "curl/8.0")];
        let one: &[(&str, &str)] = &[("x-debug", "yes")];
        let partial: &[(&str, &str)] = &[("x-debug", "yes please"), ("user-agent", "curl/8.0")];
        let got = statuses(
            &api,
            &objects,
            &[
                (PROMETHEUS, "GET", "/", both),
                (PROMETHEUS, "GET", "/", one),
                (PROMETHEUS, "GET", "/", partial),
                (PROMETHEUS, "GET", "/", NONE),
            ],
        )
        .await;
        assert_eq!(got, vec![200, 403, 403, 403], "{v:?}");
    }
}

#[tokio::test]
async fn a_tcp_route_allows_any_request_on_its_ports() {
    let api = backend("api").await;
    let port = api.addr.port();
    for v in VERSIONS {
        let target = v.target(
            "test",
            "t",
            "api-service",
            &[Rule {
                kind: "TCPRoute",
                name: "tcp",
                matches: &[],
            }],
            &["prometheus"],
        );
        let mut forms: Vec<(Option<Vec<u16>>, u16)> = vec![(None, 200)];
        if v.has_tcp_ports() {
            forms.extend([
                (Some(vec![port]), 200),
                (Some(vec![]), 200),
                (Some(vec![port.wrapping_add(1).max(1)]), 403),
            ]);
        }
        for (ports, want) in forms {
            let objects = v.tcp_route("test", "tcp", ports.as_deref()) + &target;
            let got = statuses(
                &api,
                &objects,
                &[
                    (PROMETHEUS, "DELETE", "/anything", NONE),
                    (PROMETHEUS, "GET", "/", NONE),
                    (GRAFANA, "GET", "/", NONE),
                ],
            )
            .await;
            assert_eq!(got, vec![want, want, 403], "{v:?} ports {ports:?}");
        }
    }
}

#[tokio::test]
async fn a_traffic_target_with_no_rules_allows_nothing() {
    let api = backend("api").await;
    let objects = |v: Smi| {
        v.route_group(
            "test",
            "g",
            &[Match {
                name: "all",
                ..Match::default()
            }],
        ) + &v.target("test", "t", "api-service", &[], &["prometheus"])
    };
    check_every_version(&api, objects, &[(PROMETHEUS, "GET", "/", NONE, 403)]).await;
}

#[tokio::test]
async fn traffic_targets_add_up_as_a_union() {
    let api = backend("api").await;
    let objects = |v: Smi| {
        v.route_group(
            "test",
            "g",
            &[
                Match {
                    name: "a",
                    path: Some("/a"),
                    ..Match::default()
                },
                Match {
                    name: "b",
                    path: Some("/b"),
                    ..Match::default()
                },
            ],
        ) + &v.target(
            "test",
            "t1",
            "api-service",
            &[http_rule("g", &["a"])],
            &["prometheus"],
        ) + &v.target(
            "test",
            "t2",
            "api-service",
            &[http_rule("g", &["b"])],
            &["prometheus", "grafana"],
        )
    };
    check_every_version(
        &api,
        objects,
        &[
            (PROMETHEUS, "GET", "/a", NONE, 200),
            (PROMETHEUS, "GET", "/b", NONE, 200),
            (GRAFANA, "GET", "/b", NONE, 200),
            (GRAFANA, "GET", "/a", NONE, 403),
        ],
    )
    .await;
}

#[tokio::test]
async fn the_destination_is_the_backends_service_account() {
    let api = backend("api").await;
    // Allows everything, but to another ServiceAccount.
    let objects = |v: Smi| {
        v.route_group(
            "test",
            "g",
            &[Match {
                name: "all",
                ..Match::default()
            }],
        ) + &v.target(
            "test",
            "t",
            "someone-else",
            &[http_rule("g", &[])],
            &["prometheus"],
        )
    };
    check_every_version(&api, objects, &[(PROMETHEUS, "GET", "/", NONE, 403)]).await;
}
