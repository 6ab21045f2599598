//! The aggregation layer: requests under a group/version registered by an APIService with
//! `spec.service` are proxied to the backing Service.
//!
//! The backend address is resolved in this order: a ready EndpointSlice endpoint, an Endpoints
//! address, the Service's `clusterIP`, then `externalName`. Backends speak HTTPS, as with the real
//! aggregator: it presents the front-proxy client certificate (see [`front_proxy`]) with
//! `X-Remote-User`/`X-Remote-Group`, and verifies the backend's certificate against the
//! APIService's `caBundle` for the name `<service>.<namespace>.svc`, unless
//! `insecureSkipTLSVerify` is true. The APIService annotation `weir.dev/aggregator-scheme: http`
//! selects plain HTTP (a local convenience the real aggregator does not have).

pub mod front_proxy;
mod transport;

pub use front_proxy::FrontProxy;

use super::error::ApiError;
use super::router::Route;
use super::server::{Body, BoxError, error_response, read_body};
use super::{Shared, State};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use serde_json::Value;
use std::time::Duration;

/// Where a request goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// `host:port`.
    pub authority: String,
    /// `http` or `https`.
    pub scheme: String,
    /// How the backend's certificate is checked.
    pub verify: Verify,
}

/// How the backend's certificate is checked, from the APIService.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verify {
    /// `insecureSkipTLSVerify: true`: not at all.
    Skip,
    /// Against the `caBundle` (PEM; empty when none is set), for this server name.
    Bundle {
        /// The CA certificates in PEM.
        ca_pem: Vec<u8>,
        /// `<service>.<namespace>.svc`.
        server_name: String,
    },
}

/// The verification an APIService asks for.
pub fn verify_of(apiservice: &Value) -> Verify {
    let spec = &apiservice["spec"];
    if spec["insecureSkipTLSVerify"].as_bool() == Some(true) {
        return Verify::Skip;
    }
    use base64::Engine as _;
    let ca_pem = spec["caBundle"]
        .as_str()
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        .unwrap_or_default();
    Verify::Bundle {
        ca_pem,
        server_name: format!(
            "{}.{}.svc",
            spec["service"]["name"].as_str().unwrap_or_default(),
            spec["service"]["namespace"].as_str().unwrap_or("default")
        ),
    }
}

fn apiservices(st: &State) -> Vec<std::sync::Arc<Value>> {
    st.store.list(
        &("apiregistration.k8s.io".into(), "apiservices".into()),
        None,
    )
}

/// Group/versions registered by APIServices with a backing service.
pub fn aggregated_groups(st: &State) -> Vec<(String, String)> {
    apiservices(st)
        .iter()
        .filter(|a| a["spec"]["service"].is_object())
        .filter_map(|a| {
            Some((
                a["spec"]["group"].as_str()?.to_string(),
                a["spec"]["version"].as_str()?.to_string(),
            ))
        })
        .collect()
}

fn port_of(p: &Value) -> Option<u16> {
    p.as_u64().and_then(|n| u16::try_from(n).ok())
}

/// Resolves the backend of a Service port (pure over the given objects).
pub fn resolve(
    svc: &Value,
    port: u16,
    slices: &[Value],
    endpoints: Option<&Value>,
) -> Option<String> {
    let sp = svc["spec"]["ports"].as_array().and_then(|ps| {
        ps.iter()
            .find(|p| port_of(&p["port"]) == Some(port))
            .cloned()
    });
    let port_name = sp
        .as_ref()
        .and_then(|p| p["name"].as_str())
        .unwrap_or_default()
        .to_string();
    let target = sp
        .as_ref()
        .and_then(|p| port_of(&p["targetPort"]))
        .unwrap_or(port);
    for slice in slices {
        let eport = slice["ports"]
            .as_array()
            .and_then(|ps| {
                ps.iter()
                    .find(|p| p["name"].as_str().unwrap_or_default() == port_name)
            })
            .and_then(|p| port_of(&p["port"]))
            .unwrap_or(target);
        for ep in slice["endpoints"].as_array().into_iter().flatten() {
            if ep["conditions"]["ready"].as_bool() == Some(false) {
                continue;
            }
            if let Some(a) = ep["addresses"]
                .as_array()
                .and_then(|a| a.first())
                .and_then(Value::as_str)
            {
                return Some(format!("{a}:{eport}"));
            }
        }
    }
    for subset in endpoints
        .and_then(|e| e["subsets"].as_array())
        .into_iter()
        .flatten()
    {
        let eport = subset["ports"]
            .as_array()
            .and_then(|ps| {
                ps.iter()
                    .find(|p| p["name"].as_str().unwrap_or_default() == port_name)
            })
            .and_then(|p| port_of(&p["port"]))
            .unwrap_or(target);
        if let Some(ip) = subset["addresses"]
            .as_array()
            .and_then(|a| a.first())
            .and_then(|a| a["ip"].as_str())
        {
            return Some(format!("{ip}:{eport}"));
        }
    }
    if let Some(ip) = svc["spec"]["clusterIP"]
        .as_str()
        .filter(|ip| !ip.is_empty() && *ip != "None")
    {
        return Some(format!("{ip}:{port}"));
    }
    svc["spec"]["externalName"]
        .as_str()
        .map(|h| format!("{h}:{port}"))
}

/// The backend for a route, when it falls under an aggregated group/version.
pub fn target_for(shared: &Shared, route: &Route) -> Option<Result<Target, ApiError>> {
    let (group, version) = match route {
        Route::Discovery(g, v) => (g.as_str(), v.as_str()),
        Route::Resource(rp) => (rp.group.as_str(), rp.version.as_str()),
        _ => return None,
    };
    if group.is_empty() {
        return None;
    }
    let st = shared.state.lock();
    if st.registry.has_group_version(group, version) {
        return None;
    }
    let svc_ref = apiservices(&st).into_iter().find(|a| {
        a["spec"]["group"].as_str() == Some(group) && a["spec"]["version"].as_str() == Some(version)
    })?;
    let spec = &svc_ref["spec"]["service"];
    if !spec.is_object() {
        return None;
    }
    let ns = spec["namespace"].as_str().unwrap_or("default");
    let name = spec["name"].as_str().unwrap_or_default();
    let port = spec["port"]
        .as_u64()
        .and_then(|p| u16::try_from(p).ok())
        .unwrap_or(443);
    let scheme = svc_ref["metadata"]["annotations"]["weir.dev/aggregator-scheme"]
        .as_str()
        .unwrap_or("https")
        .to_string();
    let Some(svc) = st.store.get(&("".into(), "services".into()), ns, name) else {
        return Some(Err(ApiError::unavailable(format!(
            "service {ns}/{name} for {version}.{group} not found"
        ))));
    };
    let slices: Vec<Value> = st
        .store
        .list(
            &("discovery.k8s.io".into(), "endpointslices".into()),
            Some(ns),
        )
        .iter()
        .filter(|s| s["metadata"]["labels"]["kubernetes.io/service-name"].as_str() == Some(name))
        .map(|s| (**s).clone())
        .collect();
    let eps = st.store.get(&("".into(), "endpoints".into()), ns, name);
    let verify = verify_of(&svc_ref);
    Some(
        resolve(&svc, port, &slices, eps.as_deref())
            .map(|authority| Target {
                authority,
                scheme,
                verify,
            })
            .ok_or_else(|| {
                ApiError::unavailable(format!("no endpoints available for service \"{name}\""))
            }),
    )
}

/// Proxies a request to an aggregated API server.
pub async fn proxy(
    shared: &Shared,
    target: Result<Target, ApiError>,
    user: &super::auth::rbac::UserInfo,
    req: Request<Incoming>,
) -> Response<Body> {
    let target = match target {
        Ok(t) => t,
        Err(e) => return error_response(&e),
    };
    let (parts, body) = req.into_parts();
    let body = match read_body(body, shared.opts.max_body).await {
        Ok(b) => b,
        Err(e) => return error_response(&e),
    };
    let pq = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let mut builder = Request::builder().method(parts.method).uri(pq);
    for (k, v) in &parts.headers {
        if matches!(
            k.as_str(),
            "authorization" | "host" | "x-remote-user" | "x-remote-group" | "connection"
        ) || k.as_str().starts_with("impersonate-")
        {
            continue;
        }
        builder = builder.header(k, v);
    }
    builder = builder
        .header("X-Remote-User", user.name.as_str())
        .header("X-Forwarded-Host", shared.addr.to_string());
    for g in &user.groups {
        builder = builder.header("X-Remote-Group", g.as_str());
    }
    builder = builder.header(http::header::HOST, target.authority.as_str());
    let Ok(out) = builder.body(Full::new(body)) else {
        return error_response(&ApiError::internal("building the proxied request"));
    };
    match tokio::time::timeout(
        Duration::from_secs(60),
        transport::send(&target, &shared.front_proxy, out),
    )
    .await
    {
        Ok(Ok(resp)) => resp.map(|b| b.map_err(|e| Box::new(e) as BoxError).boxed()),
        Ok(Err(e)) => error_response(&ApiError::unavailable(format!(
            "error trying to reach service: {e}"
        ))),
        Err(_) => error_response(&ApiError::new(
            504,
            "Timeout",
            "the aggregated API server did not answer in time",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_apiservice_says_how_the_backend_is_verified() {
        let insecure = json!({"spec": {"insecureSkipTLSVerify": true, "caBundle": "eA==",
            "service": {"name": "m", "namespace": "ns"}}});
        assert_eq!(verify_of(&insecure), Verify::Skip);
        let bundle = json!({"spec": {"caBundle": "cGVt", "service": {"name": "weir-metrics", "namespace": "weir-system"}}});
        assert_eq!(
            verify_of(&bundle),
            Verify::Bundle {
                ca_pem: b"pem".to_vec(),
                server_name: "weir-metrics.weir-system.svc".into()
            }
        );
        let neither = json!({"spec": {"service": {"name": "m"}}});
        assert_eq!(
            verify_of(&neither),
            Verify::Bundle {
                ca_pem: Vec::new(),
                server_name: "m.default.svc".into()
            }
        );
    }

    #[test]
    fn resolves_endpointslices_then_endpoints_then_cluster_ip() {
        let svc = json!({"spec": {"clusterIP": "127.96.0.9", "ports": [{"name": "https", "port": 443, "targetPort": 8443}]}});
        let slice = json!({"ports": [{"name": "https", "port": 9443}],
            "endpoints": [{"addresses": ["127.0.0.5"], "conditions": {"ready": false}},
                          {"addresses": ["127.0.0.6"], "conditions": {"ready": true}}]});
        assert_eq!(
            resolve(&svc, 443, &[slice], None).as_deref(),
            Some("127.0.0.6:9443")
        );
        let eps = json!({"subsets": [{"addresses": [{"ip": "127.0.0.1"}], "ports": [{"name": "https", "port": 7000}]}]});
        assert_eq!(
            resolve(&svc, 443, &[], Some(&eps)).as_deref(),
            Some("127.0.0.1:7000")
        );
        assert_eq!(
            resolve(&svc, 443, &[], None).as_deref(),
            Some("127.96.0.9:443")
        );
        let ext = json!({"spec": {"type": "ExternalName", "externalName": "localhost"}});
        assert_eq!(
            resolve(&ext, 80, &[], None).as_deref(),
            Some("localhost:80")
        );
    }
}
