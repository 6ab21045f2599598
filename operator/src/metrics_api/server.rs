//! The HTTPS server: TLS with a requested client certificate, request-header authentication,
//! then the TrafficMetrics paths.

use super::auth::RequestHeaderAuth;
use super::resources::{self, Failure, Frame, Kind, Query, SplitInfo};
use super::store::Store;
use crate::controller::{chain, split_resource};
use crate::metrics::{ApiLabels, Metrics};
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, Pod, Service};
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use kube::api::{Api, DynamicObject, ListParams};
use parking_lot::{Mutex, RwLock};
use rustls::pki_types::{CertificateDer, UnixTime};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use weir_crds::model::{SmiObject, normalise};
use weir_crds::smi::metrics::{API_VERSION, GROUP, VERSION};

/// What every request shares.
pub struct ServerState {
    /// The scraped series.
    pub store: Arc<Mutex<Store>>,
    /// The request-header settings, or why they are not loaded.
    pub auth: Arc<RwLock<Result<Arc<RequestHeaderAuth>, String>>>,
    /// For TrafficSplits and label selectors.
    pub client: kube::Client,
    /// The operator's metrics.
    pub metrics: Arc<Metrics>,
}

/// Serves TLS connections on `listener` until the task is aborted.
pub async fn serve(listener: TcpListener, tls: Arc<rustls::ServerConfig>, state: Arc<ServerState>) {
    let acceptor = TlsAcceptor::from(tls);
    loop {
        let Ok((tcp, peer)) = listener.accept().await else {
            continue;
        };
        let acceptor = acceptor.clone();
        let state = state.clone();
        tokio::spawn(async move {
            let tls =
                match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await {
                    Ok(Ok(tls)) => tls,
                    Ok(Err(e)) => {
                        tracing::debug!(%peer, error = %e, "TLS handshake failed");
                        return;
                    }
                    Err(_) => return,
                };
            let certs: Option<Arc<Vec<CertificateDer<'static>>>> = tls
                .get_ref()
                .1
                .peer_certificates()
                .map(|c| Arc::new(c.iter().map(|c| c.clone().into_owned()).collect()));
            let service = hyper::service::service_fn(move |req| {
                let state = state.clone();
                let certs = certs.clone();
                async move {
                    let response = handle(&state, certs.as_deref().map(Vec::as_slice), req).await;
                    Ok::<_, std::convert::Infallible>(response)
                }
            });
            if let Err(e) = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(tls), service)
                .await
            {
                tracing::debug!(%peer, error = %e, "connection ended");
            }
        });
    }
}

fn respond(state: &ServerState, code: u16, body: &Value) -> Response<Full<Bytes>> {
    state
        .metrics
        .api_requests
        .get_or_create(&ApiLabels {
            code: code.to_string(),
        })
        .inc();
    let mut r = Response::new(Full::new(Bytes::from(body.to_string())));
    *r.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    r
}

fn failure(state: &ServerState, f: &Failure) -> Response<Full<Bytes>> {
    respond(state, f.code, &f.to_status())
}

async fn handle(
    state: &ServerState,
    certs: Option<&[CertificateDer<'static>]>,
    req: Request<Incoming>,
) -> Response<Full<Bytes>> {
    let path = req.uri().path().to_string();
    if matches!(path.as_str(), "/healthz" | "/livez" | "/readyz") {
        return respond(state, 200, &json!("ok"));
    }
    let auth = state.auth.read().clone();
    let user = match auth {
        Ok(auth) => auth.authenticate(certs, req.headers(), UnixTime::now()),
        Err(why) => Err(format!("the request-header CA is not loaded: {why}")),
    };
    let user = match user {
        Ok(u) => u,
        Err(why) => {
            tracing::debug!(%path, %why, "unauthorized");
            let f = Failure {
                code: 401,
                reason: "Unauthorized",
                message: format!("Unauthorized: {why}"),
            };
            return failure(state, &f);
        }
    };
    tracing::debug!(%path, user = %user.name, "request");
    if req.method() != http::Method::GET {
        let f = Failure {
            code: 405,
            reason: "MethodNotAllowed",
            message: format!(
                "{} is not supported: TrafficMetrics are read-only",
                req.method()
            ),
        };
        return failure(state, &f);
    }
    let prefix = format!("/apis/{API_VERSION}");
    let Some(rest) = path.strip_prefix(&prefix) else {
        return match path.trim_end_matches('/') {
            "/apis" => respond(state, 200, &group_list()),
            p if p == format!("/apis/{GROUP}") => respond(state, 200, &group()),
            _ => failure(
                state,
                &Failure::not_found(format!("the server could not find {path:?}")),
            ),
        };
    };
    match answer(state, rest, req.uri().query()).await {
        Ok(body) => respond(state, 200, &body),
        Err(f) => failure(state, &f),
    }
}

fn group() -> Value {
    let gv = json!({"groupVersion": API_VERSION, "version": VERSION});
    json!({"kind": "APIGroup", "apiVersion": "v1", "name": GROUP, "versions": [gv], "preferredVersion": gv})
}

fn group_list() -> Value {
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": [group()]})
}

async fn answer(state: &ServerState, rest: &str, query: Option<&str>) -> Result<Value, Failure> {
    let q = resources::route(rest)?;
    if q == Query::Discovery {
        return Ok(resources::discovery());
    }
    let retention = state.store.lock().limits().retention;
    let frame = Frame {
        now: Timestamp::now(),
        window: resources::window(query, retention)?,
    };
    let namespace = match &q {
        Query::List { namespace, .. } => namespace.clone(),
        Query::Get {
            namespace,
            kind,
            name,
        }
        | Query::Edges {
            namespace,
            kind,
            name,
        } => {
            if *kind == Kind::Namespace {
                Some(name.clone())
            } else {
                namespace.clone()
            }
        }
        Query::Discovery => None,
    };
    let failing = state.store.lock().failing(namespace.as_deref());
    if let Some(f) = failing.first() {
        return Err(Failure::unavailable(format!(
            "gateway pod {}/{} could not be scraped ({}); figures for {} would be incomplete",
            f.target.namespace,
            f.target.pod,
            f.error,
            namespace.as_deref().unwrap_or("the cluster")
        )));
    }
    let selector = resources::label_selector(query);
    match q {
        Query::Discovery => Ok(resources::discovery()),
        Query::List {
            namespace,
            kind: Kind::TrafficSplit,
        } => {
            let ns = namespace.unwrap_or_default();
            let splits = splits(&state.client, &ns, None, selector.as_deref()).await?;
            Ok(frame.splits(&state.store.lock(), &ns, &splits, false))
        }
        Query::Get {
            namespace,
            kind: Kind::TrafficSplit,
            name,
        } => {
            let ns = namespace.unwrap_or_default();
            let splits = splits(&state.client, &ns, Some(&name), None).await?;
            Ok(frame.splits(&state.store.lock(), &ns, &splits, true))
        }
        Query::List { namespace, kind } => {
            let only = match &selector {
                Some(s) => Some(names(&state.client, kind, namespace.as_deref(), s).await?),
                None => None,
            };
            Ok(frame.list_kind(
                &state.store.lock(),
                kind,
                namespace.as_deref(),
                only.as_ref(),
            ))
        }
        Query::Get {
            namespace,
            kind,
            name,
        } => Ok(frame.get(&state.store.lock(), kind, namespace.as_deref(), &name)),
        Query::Edges {
            namespace,
            kind,
            name,
        } => Ok(frame.edges(&state.store.lock(), kind, namespace.as_deref(), &name)),
    }
}

fn kube_failure(what: &str, e: &kube::Error) -> Failure {
    match e {
        kube::Error::Api(s) if s.code == 404 => Failure::not_found(format!("{what}: not found")),
        kube::Error::Api(s) if s.code == 400 => {
            Failure::bad_request(format!("{what}: {}", s.message))
        }
        _ => Failure::unavailable(format!("{what}: {}", chain(e))),
    }
}

/// The names of `kind` matching a label selector.
async fn names(
    client: &kube::Client,
    kind: Kind,
    namespace: Option<&str>,
    selector: &str,
) -> Result<BTreeSet<String>, Failure> {
    let lp = ListParams::default().labels(selector);
    let what = format!("list {} with labelSelector {selector:?}", kind.plural());
    let err = |e: kube::Error| kube_failure(&what, &e);
    let ns = namespace.unwrap_or_default();
    let names: Vec<String> = match kind {
        Kind::Namespace => names_of(Api::<Namespace>::all(client.clone()), &lp).await,
        Kind::Pod => names_of(Api::<Pod>::namespaced(client.clone(), ns), &lp).await,
        Kind::Deployment => names_of(Api::<Deployment>::namespaced(client.clone(), ns), &lp).await,
        Kind::Service => names_of(Api::<Service>::namespaced(client.clone(), ns), &lp).await,
        Kind::TrafficSplit => Ok(Vec::new()),
    }
    .map_err(err)?;
    Ok(names.into_iter().collect())
}

/// The names of the objects `api` lists with `lp`.
async fn names_of<K>(api: Api<K>, lp: &ListParams) -> Result<Vec<String>, kube::Error>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    Ok(api
        .list(lp)
        .await?
        .items
        .iter()
        .map(|o| o.name_any())
        .collect())
}

/// The TrafficSplits of `namespace` (one, when `name` is given), normalised from any SMI version.
async fn splits(
    client: &kube::Client,
    namespace: &str,
    name: Option<&str>,
    selector: Option<&str>,
) -> Result<Vec<SplitInfo>, Failure> {
    let api: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), namespace, &split_resource());
    let objects = match name {
        Some(n) => vec![
            api.get(n)
                .await
                .map_err(|e| kube_failure(&format!("TrafficSplit {namespace}/{n}"), &e))?,
        ],
        None => {
            let lp = selector.map_or_else(ListParams::default, |s| ListParams::default().labels(s));
            api.list(&lp)
                .await
                .map_err(|e| kube_failure("list TrafficSplits", &e))?
                .items
        }
    };
    let mut out = Vec::new();
    for object in objects {
        let value =
            serde_json::to_value(&object).map_err(|e| Failure::unavailable(e.to_string()))?;
        match normalise(&value, namespace) {
            Ok(SmiObject::Split(s)) => out.push(SplitInfo {
                name: object.name_any(),
                apex: s.root_service,
                backends: s
                    .backends
                    .iter()
                    .map(|b| (b.service.clone(), (b.weight_millis / 1000) as i64))
                    .collect(),
            }),
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(split = %object.name_any(), error = %e, "skipping an invalid TrafficSplit")
            }
        }
    }
    Ok(out)
}
