//! Parsing the Host header (or `:authority`) into a Service name, namespace and port.
//!
//! Accepted forms, case-insensitive, each with an optional `:port` and trailing dot:
//! `svc`, `svc.ns`, `svc.ns.svc`, `svc.ns.svc.cluster.local`.

use serde::Serialize;
use std::borrow::Cow;

/// The Service a request is addressed to (borrowing from the host when it is lower case).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct HostKey<'a> {
    /// The Service name, lower case.
    pub service: Cow<'a, str>,
    /// The namespace, lower case; the gateway's own namespace when the host has none.
    pub namespace: Cow<'a, str>,
    /// The port written in the host, if any.
    pub port: Option<u16>,
}

/// Why a host could not be read as a Service address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HostError {
    /// The request had no Host header and no authority.
    #[error("the request names no host (no Host header and no authority)")]
    Missing,
    /// The port part is not a number from 1 to 65535.
    #[error("host {host:?}: {port:?} is not a port (1-65535)")]
    BadPort {
        /// The host as received.
        host: String,
        /// The port text.
        port: String,
    },
    /// A label is empty or has characters a DNS label may not have.
    #[error("host {host:?}: {label:?} is not a DNS label")]
    BadLabel {
        /// The host as received.
        host: String,
        /// The offending label.
        label: String,
    },
    /// The name has a shape that is not a Service address.
    #[error(
        "host {host:?} is not a Service address (svc, svc.ns, svc.ns.svc or svc.ns.svc.cluster.local)"
    )]
    NotAService {
        /// The host as received.
        host: String,
    },
}

/// Parses a host (`svc[.ns[.svc[.cluster.local]]][:port]`); `default_namespace` applies to `svc`.
///
/// ```
/// use weir_proxy::host::{HostError, parse_host};
///
/// let key = parse_host("Foobar.Prod.svc.cluster.local.:8080", "gw").unwrap();
/// assert_eq!((&*key.service, &*key.namespace, key.port), ("foobar", "prod", Some(8080)));
///
/// // A bare name is in the gateway's namespace.
/// let key = parse_host("foobar", "gw").unwrap();
/// assert_eq!((&*key.service, &*key.namespace, key.port), ("foobar", "gw", None));
///
/// assert!(matches!(parse_host("a.b.c", "gw"), Err(HostError::NotAService { .. })));
/// assert!(matches!(parse_host("foobar:99999", "gw"), Err(HostError::BadPort { .. })));
/// assert!(matches!(parse_host("", "gw"), Err(HostError::Missing)));
/// ```
pub fn parse_host<'a>(raw: &'a str, default_namespace: &'a str) -> Result<HostKey<'a>, HostError> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Err(HostError::Missing);
    }
    let (name, port) = split_port(raw)?;
    let name = name.strip_suffix('.').unwrap_or(name);
    let labels: Vec<&str> = name.split('.').collect();
    for label in &labels {
        if !is_dns_label(label) {
            return Err(HostError::BadLabel {
                host: raw.to_string(),
                label: (*label).to_string(),
            });
        }
    }
    let is = |i: usize, want: &str| labels.get(i).is_some_and(|l| l.eq_ignore_ascii_case(want));
    let namespace = match labels.len() {
        1 => lower(default_namespace),
        2 => lower(labels[1]),
        3 if is(2, "svc") => lower(labels[1]),
        5 if is(2, "svc") && is(3, "cluster") && is(4, "local") => lower(labels[1]),
        _ => {
            return Err(HostError::NotAService {
                host: raw.to_string(),
            });
        }
    };
    Ok(HostKey {
        service: lower(labels[0]),
        namespace,
        port,
    })
}

/// The text in lower case, borrowed when it already is.
fn lower(s: &str) -> Cow<'_, str> {
    if s.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(s.to_ascii_lowercase())
    } else {
        Cow::Borrowed(s)
    }
}

fn split_port(raw: &str) -> Result<(&str, Option<u16>), HostError> {
    let Some((name, port)) = raw.rsplit_once(':') else {
        return Ok((raw, None));
    };
    let parsed = port
        .parse::<u16>()
        .ok()
        .filter(|p| *p > 0 && port.bytes().all(|b| b.is_ascii_digit()));
    match parsed {
        Some(p) => Ok((name, Some(p))),
        None => Err(HostError::BadPort {
            host: raw.to_string(),
            port: port.to_string(),
        }),
    }
}

/// RFC 1123 label: 1-63 of `[a-z0-9-]`, not starting or ending with `-` (any case).
fn is_dns_label(label: &str) -> bool {
    let bytes = label.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 63
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'-')
        && bytes.first() != Some(&b'-')
        && bytes.last() != Some(&b'-')
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn key<'a>(service: &'a str, namespace: &'a str, port: Option<u16>) -> HostKey<'a> {
        HostKey {
            service: service.into(),
            namespace: namespace.into(),
            port,
        }
    }

    #[test]
    fn every_service_form_parses_with_and_without_port() {
        let cases = [
            ("foobar", key("foobar", "gw", None)),
            ("foobar:80", key("foobar", "gw", Some(80))),
            ("foobar.prod", key("foobar", "prod", None)),
            ("foobar.prod:8080", key("foobar", "prod", Some(8080))),
            ("foobar.prod.svc", key("foobar", "prod", None)),
            ("foobar.prod.svc:80", key("foobar", "prod", Some(80))),
            ("foobar.prod.svc.cluster.local", key("foobar", "prod", None)),
            (
                "foobar.prod.svc.cluster.local:443",
                key("foobar", "prod", Some(443)),
            ),
            (
                "foobar.prod.svc.cluster.local.",
                key("foobar", "prod", None),
            ),
        ];
        for (host, want) in cases {
            assert_eq!(parse_host(host, "gw"), Ok(want), "{host}");
        }
    }

    #[test]
    fn host_matching_is_case_insensitive() {
        assert_eq!(
            parse_host("FooBar.Prod.SVC.Cluster.Local:80", "gw"),
            Ok(key("foobar", "prod", Some(80)))
        );
        assert_eq!(parse_host("FOOBAR", "GW"), Ok(key("foobar", "gw", None)));
    }

    #[test]
    fn non_service_shapes_are_rejected() {
        for host in [
            "a.b.c",
            "a.b.svc.cluster",
            "a.b.svc.other.local",
            "127.0.0.1",
            "a.b.c.d.e.f",
        ] {
            assert!(
                matches!(parse_host(host, "gw"), Err(HostError::NotAService { .. })),
                "{host}"
            );
        }
    }

    #[test]
    fn bad_ports_and_labels_are_rejected() {
        assert!(matches!(
            parse_host("a:0", "gw"),
            Err(HostError::BadPort { .. })
        ));
        assert!(matches!(
            parse_host("a:70000", "gw"),
            Err(HostError::BadPort { .. })
        ));
        assert!(matches!(
            parse_host("a:+80", "gw"),
            Err(HostError::BadPort { .. })
        ));
        assert!(matches!(
            parse_host("a:", "gw"),
            Err(HostError::BadPort { .. })
        ));
        assert!(matches!(
            parse_host("a..b", "gw"),
            Err(HostError::BadLabel { .. })
        ));
        assert!(matches!(
            parse_host("-a", "gw"),
            Err(HostError::BadLabel { .. })
        ));
        assert!(matches!(
            parse_host("a_b", "gw"),
            Err(HostError::BadLabel { .. })
        ));
        assert!(matches!(
            parse_host("[::1]:80", "gw"),
            Err(HostError::BadLabel { .. })
        ));
        assert_eq!(parse_host("  ", "gw"), Err(HostError::Missing));
    }

    proptest! {
        #[test]
        fn any_valid_address_round_trips(
            svc in "[a-z][a-z0-9-]{0,20}[a-z0-9]",
            ns in "[a-z][a-z0-9]{0,10}",
            form in 0usize..4,
            port in proptest::option::of(1u16..),
            upper in any::<bool>(),
        ) {
            let name = match form {
                0 => svc.clone(),
                1 => format!("{svc}.{ns}"),
                2 => format!("{svc}.{ns}.svc"),
                _ => format!("{svc}.{ns}.svc.cluster.local"),
            };
            let mut host = match port {
                Some(p) => format!("{name}:{p}"),
                None => name,
            };
            if upper {
                host = host.to_ascii_uppercase();
            }
            let want_ns = if form == 0 { "gw".to_string() } else { ns };
            prop_assert_eq!(parse_host(&host, "gw"), Ok(key(&svc, &want_ns, port)));
        }

        #[test]
        fn parsing_never_panics(s in "\\PC{0,40}") {
            let _ = parse_host(&s, "gw");
        }
    }
}
