//! The world of the access-control tests: a backend whose Pod runs as `api-service`, client
//! Pods of two ServiceAccounts on 127.62.0.x, and helpers that ask a proxy what each gets.
#![allow(dead_code)] // Each test file uses a part.

use crate::harness::*;
use crate::smi::{Rule, Smi, VERSIONS};

/// The ServiceAccount the tests allow, and the one they do not.
pub const PROMETHEUS: &str = "127.62.0.1";
pub const GRAFANA: &str = "127.62.0.2";
/// No Pod has this address.
pub const STRANGER: &str = "127.62.0.3";

/// Namespace `test`: Service `api` whose Pod runs as `api-service`, and two client Pods.
pub fn world(api: &Backend) -> String {
    [
        service("api"),
        slice("api", &[api]),
        pod(
            "api-abc12-0",
            &api.addr.ip().to_string(),
            "api-service",
            "api",
        ),
        pod("prometheus-abc12-0", PROMETHEUS, "prometheus", "prometheus"),
        pod("grafana-abc12-0", GRAFANA, "grafana", "grafana"),
    ]
    .concat()
}

/// A proxy over `world` plus `objects`, and what each of `cases` gets:
/// (client IP, method, path, headers) → status.
pub async fn statuses(api: &Backend, objects: &str, cases: &[Ask<'_>]) -> Vec<u16> {
    let file = ConfigFile::new(&(world(api) + objects));
    let proxy = proxy(&file, &[]).await;
    let mut out = Vec::new();
    for (ip, method, path, headers) in cases {
        let c = client_from(ip);
        out.push(
            send(&c, proxy.data_addr, "api", method, path, headers)
                .await
                .0,
        );
    }
    out
}

/// Asserts, for every SMI version, that `objects(version)` gives `cases` their statuses.
pub async fn check_every_version(
    api: &Backend,
    objects: impl Fn(Smi) -> String,
    cases: &[Case<'_>],
) {
    for v in VERSIONS {
        let asks: Vec<Ask<'_>> = cases
            .iter()
            .map(|(ip, m, p, h, _)| (*ip, *m, *p, *h))
            .collect();
        let got = statuses(api, &objects(v), &asks).await;
        for (case, status) in cases.iter().zip(got) {
            assert_eq!(
                status,
                case.4,
                "{v:?}: {} {} {} from {}",
                case.1,
                case.2,
                fmt_headers(case.3),
                case.0
            );
        }
    }
}

pub fn fmt_headers(h: &[(&str, &str)]) -> String {
    h.iter()
        .map(|(k, v)| format!("{k}: {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

pub const NONE: &[(&str, &str)] = &[];

/// Header name and value pairs.
pub type Headers<'a> = &'a [(&'a str, &'a str)];
/// What a client asks: its IP, method, path and headers.
pub type Ask<'a> = (&'a str, &'a str, &'a str, Headers<'a>);
/// What a client asks, and the status it must get.
pub type Case<'a> = (&'a str, &'a str, &'a str, Headers<'a>, u16);

pub fn http_rule<'a>(name: &'a str, matches: &'a [&'a str]) -> Rule<'a> {
    Rule {
        kind: "HTTPRouteGroup",
        name,
        matches,
    }
}
