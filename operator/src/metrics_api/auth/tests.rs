//! Request-header authentication with real certificates.

use super::*;
use crate::metrics_api::tls::Authority;

fn config(ca: &Authority, allowed: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (
            "requestheader-client-ca-file".to_string(),
            ca.pem().to_string(),
        ),
        (
            "requestheader-allowed-names".to_string(),
            allowed.to_string(),
        ),
        (
            "requestheader-username-headers".to_string(),
            r#"["X-Remote-User"]"#.to_string(),
        ),
        (
            "requestheader-group-headers".to_string(),
            r#"["X-Remote-Group"]"#.to_string(),
        ),
    ])
}

fn leaf(ca: &Authority, cn: &str, client: bool) -> Vec<CertificateDer<'static>> {
    let pair = ca.issue(cn, &[], client).unwrap();
    CertificateDer::pem_slice_iter(pair.cert.as_bytes())
        .collect::<Result<_, _>>()
        .unwrap()
}

fn headers() -> http::HeaderMap {
    let mut h = http::HeaderMap::new();
    h.insert("x-remote-user", "alice".parse().unwrap());
    h.append("x-remote-group", "system:masters".parse().unwrap());
    h.append("x-remote-group", "devs".parse().unwrap());
    h
}

#[test]
fn a_front_proxy_certificate_from_the_ca_with_an_allowed_name_authenticates() {
    let ca = Authority::new("front-proxy-ca").unwrap();
    let auth =
        RequestHeaderAuth::from_config_map(&config(&ca, r#"["front-proxy-client"]"#)).unwrap();
    let user = auth
        .authenticate(
            Some(&leaf(&ca, "front-proxy-client", true)),
            &headers(),
            UnixTime::now(),
        )
        .unwrap();
    assert_eq!(
        user,
        User {
            name: "alice".into(),
            groups: vec!["system:masters".into(), "devs".into()],
            proxy: "front-proxy-client".into()
        }
    );
}

#[test]
fn everything_else_is_refused_with_a_reason() {
    let ca = Authority::new("front-proxy-ca").unwrap();
    let other = Authority::new("someone-else").unwrap();
    let auth =
        RequestHeaderAuth::from_config_map(&config(&ca, r#"["front-proxy-client"]"#)).unwrap();
    let now = UnixTime::now();
    let no_cert = auth.authenticate(None, &headers(), now).unwrap_err();
    assert!(no_cert.starts_with("no client certificate"), "{no_cert}");
    let foreign = auth
        .authenticate(
            Some(&leaf(&other, "front-proxy-client", true)),
            &headers(),
            now,
        )
        .unwrap_err();
    assert!(
        foreign.contains("not valid for the request-header CA"),
        "{foreign}"
    );
    let server_cert = auth
        .authenticate(
            Some(&leaf(&ca, "front-proxy-client", false)),
            &headers(),
            now,
        )
        .unwrap_err();
    assert!(server_cert.contains("not valid"), "{server_cert}");
    let name = auth
        .authenticate(Some(&leaf(&ca, "mallory", true)), &headers(), now)
        .unwrap_err();
    assert!(
        name.contains("\"mallory\" is not in requestheader-allowed-names"),
        "{name}"
    );
    let anonymous = auth
        .authenticate(
            Some(&leaf(&ca, "front-proxy-client", true)),
            &http::HeaderMap::new(),
            now,
        )
        .unwrap_err();
    assert!(anonymous.starts_with("no user in"), "{anonymous}");
}

#[test]
fn an_empty_allowed_list_accepts_any_name_signed_by_the_ca() {
    let ca = Authority::new("front-proxy-ca").unwrap();
    let auth = RequestHeaderAuth::from_config_map(&config(&ca, "[]")).unwrap();
    assert!(
        auth.authenticate(
            Some(&leaf(&ca, "anything", true)),
            &headers(),
            UnixTime::now()
        )
        .is_ok()
    );
}

#[test]
fn bad_config_maps_are_errors() {
    let ca = Authority::new("ca").unwrap();
    let mut c = config(&ca, "[]");
    c.remove("requestheader-client-ca-file");
    assert!(matches!(
        RequestHeaderAuth::from_config_map(&c),
        Err(ConfigError::NoCa)
    ));
    let mut c = config(&ca, "[]");
    c.insert("requestheader-client-ca-file".into(), "not pem".into());
    assert!(matches!(
        RequestHeaderAuth::from_config_map(&c),
        Err(ConfigError::BadCa)
    ));
    let c = config(&ca, "front-proxy-client");
    assert!(matches!(
        RequestHeaderAuth::from_config_map(&c),
        Err(ConfigError::BadList { .. })
    ));
}
