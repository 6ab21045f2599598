//! The resource verbs over HTTP: get, list, watch, create, update, patch, delete.

use super::admission::FieldValidation;
use super::error::ApiError;
use super::ops::{self, WriteOpts};
use super::patch::PatchKind;
use super::protobuf;
use super::resources::ResourceDef;
use super::router::{self, ResourcePath};
use super::selector::{FieldSelector, LabelSelector};
use super::server::{Body, error_response, json_response, read_body};
use super::table::{self, Include};
use super::{Shared, watch};
use hyper::body::Incoming;
use hyper::{Method, Request, Response};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;

mod delete;
mod list;

use delete::{delete, delete_collection};
use list::list;
pub use list::list_objects;

/// Everything a verb needs from the request.
#[derive(Debug, Clone)]
pub struct Call {
    /// The resource definition.
    pub def: Arc<ResourceDef>,
    /// The parsed path.
    pub rp: ResourcePath,
    /// Query parameters.
    pub query: HashMap<String, String>,
    /// The Accept header.
    pub accept: String,
    /// The Content-Type header.
    pub content_type: String,
    /// The User-Agent header.
    pub user_agent: String,
}

// === impl Call ===

impl Call {
    /// Namespace for storage ("" for cluster-scoped).
    pub fn ns(&self) -> String {
        if self.def.namespaced {
            self.rp.namespace.clone().unwrap_or_default()
        } else {
            String::new()
        }
    }

    /// Namespace filter for lists/watches.
    pub fn ns_filter(&self) -> Option<String> {
        if self.def.namespaced {
            self.rp.namespace.clone()
        } else {
            None
        }
    }

    /// The `includeObject` choice for Tables.
    pub fn include(&self) -> Include {
        match self.query.get("includeObject").map(String::as_str) {
            Some("None") => Include::None,
            Some("Object") => Include::Object,
            _ => Include::Metadata,
        }
    }

    /// Whether a Table was asked for.
    pub fn wants_table(&self) -> bool {
        table::wants_table(&self.accept)
    }

    /// Whether objects can be matched and written as stored, without a presented copy: JSON
    /// of a kind that is not converted, and no field selector on `apiVersion` or `kind`
    /// (which stored objects need not carry).
    pub fn served_as_stored(&self) -> bool {
        let by_type = self
            .query
            .get("fieldSelector")
            .is_some_and(|f| f.contains("apiVersion") || f.contains("kind="));
        !self.wants_table() && !self.def.converts() && !by_type
    }

    /// Parses both selectors.
    pub fn selectors(&self) -> Result<(LabelSelector, FieldSelector), ApiError> {
        let l = LabelSelector::parse(self.query.get("labelSelector").map_or("", String::as_str))
            .map_err(ApiError::bad_request)?;
        let mut f =
            FieldSelector::parse(self.query.get("fieldSelector").map_or("", String::as_str))
                .map_err(ApiError::bad_request)?;
        for (label, _, _) in f.0.iter_mut() {
            *label =
                super::field_labels::resolve(&self.def, label).map_err(ApiError::bad_request)?;
        }
        Ok((l, f))
    }

    /// Reads `dryRun`: `All` is a dry run, absent is not, anything else is 422 as upstream's
    /// `ValidateDryRun` answers (`options` is `CreateOptions`, `UpdateOptions`...).
    pub fn dry_run(&self, options: &str, name: &str) -> Result<bool, ApiError> {
        match self.query.get("dryRun").map(String::as_str) {
            None => Ok(false),
            Some("All") => Ok(true),
            Some(other) => Err(ApiError::invalid(
                &format!("{options}.meta.k8s.io"),
                "meta.k8s.io",
                name,
                vec![super::error::Cause {
                    reason: "FieldValueNotSupported".into(),
                    message: format!(
                        "Unsupported value: []string{{{}}}: supported values: \"All\"",
                        super::validation::go::quote(other)
                    ),
                    field: "dryRun".into(),
                }],
            )),
        }
    }

    fn write_opts(&self, options: &str, name: &str) -> Result<WriteOpts, ApiError> {
        let manager = self.query.get("fieldManager").cloned().unwrap_or_else(|| {
            self.user_agent
                .split('/')
                .next()
                .unwrap_or("unknown")
                .to_string()
        });
        Ok(WriteOpts {
            manager,
            fv: FieldValidation::parse(self.query.get("fieldValidation").map(String::as_str)),
            dry_run: self.dry_run(options, name)?,
            force: self.query.get("force").is_some_and(|v| v == "true"),
        })
    }
}

fn header(req: &Request<Incoming>, name: http::header::HeaderName) -> String {
    req.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

/// Serves one resource request.
pub async fn handle(
    shared: Arc<Shared>,
    rp: ResourcePath,
    req: Request<Incoming>,
) -> Response<Body> {
    let def = shared
        .state
        .lock()
        .registry
        .find(&rp.group, &rp.version, &rp.plural);
    let Some(def) = def else {
        return error_response(&ApiError::no_route(req.uri().path()));
    };
    let call = Call {
        def,
        query: router::query(req.uri().query()),
        accept: header(&req, http::header::ACCEPT),
        content_type: header(&req, http::header::CONTENT_TYPE),
        user_agent: header(&req, http::header::USER_AGENT),
        rp,
    };
    let method = req.method().clone();
    let body = if matches!(
        method,
        Method::POST | Method::PUT | Method::PATCH | Method::DELETE
    ) {
        match read_body(req.into_body(), shared.opts.max_body).await {
            Ok(b) => b,
            Err(e) => return error_response(&e),
        }
    } else {
        bytes::Bytes::new()
    };
    let watching = call.rp.watch
        || call
            .query
            .get("watch")
            .is_some_and(|v| v == "true" || v == "1");
    let sub = call.rp.sub.clone();
    let result = match (&method, call.rp.name.is_some(), sub.as_deref()) {
        (&Method::GET, false, None) if watching => return watch::serve(shared, call).await,
        (&Method::GET, false, None) => list(&shared, &call),
        (&Method::GET, true, None | Some("status")) if watching => {
            return watch::serve(shared, call).await;
        }
        (&Method::GET, true, None | Some("status")) => get(&shared, &call),
        (&Method::GET, true, Some("scale")) => get_scale(&shared, &call),
        (&Method::POST, false, None) => create(&shared, &call, &body),
        (&Method::PUT, true, Some("scale")) => scale(&shared, &call, &body, None),
        (&Method::PATCH, true, Some("scale")) => {
            match PatchKind::from_content_type(&call.content_type) {
                Some(k) => scale(&shared, &call, &body, Some(k)),
                None => Err(ApiError::unsupported_media_type(&call.content_type)),
            }
        }
        (&Method::PUT, true, None | Some("status")) => update(&shared, &call, &body),
        (&Method::PATCH, true, None | Some("status")) => patch(&shared, &call, &body),
        (&Method::DELETE, true, None) => delete(&shared, &call, &body),
        (&Method::DELETE, false, None) => delete_collection(&shared, &call, &body),
        (_, _, Some(s)) if !matches!(s, "status" | "scale") => Err(ApiError::no_route(s)),
        _ => Err(ApiError::method_not_allowed()),
    };
    match result {
        Ok(r) => r,
        Err(e) => error_response(&e),
    }
}

fn check_sub(def: &ResourceDef, sub: Option<&str>) -> Result<(), ApiError> {
    match sub {
        Some("status") if !def.status => Err(ApiError::no_route("status")),
        Some("scale") if def.scale.is_none() => Err(ApiError::no_route("scale")),
        _ => Ok(()),
    }
}

fn get(shared: &Shared, call: &Call) -> Result<Response<Body>, ApiError> {
    check_sub(&call.def, call.rp.sub.as_deref())?;
    let name = call.rp.name.clone().unwrap_or_default();
    let obj = shared
        .state
        .lock()
        .store
        .get(&call.def.storage, &call.ns(), &name)
        .ok_or_else(|| ApiError::not_found(&call.def.group, &call.def.plural, &name))?;
    let out = ops::present(&call.def, &obj);
    if call.wants_table() {
        let t = table::render(
            &call.def,
            &[out],
            json!({}),
            call.include(),
            chrono::Utc::now(),
        );
        return Ok(json_response(200, &t));
    }
    Ok(json_response(200, &out))
}

fn get_scale(shared: &Shared, call: &Call) -> Result<Response<Body>, ApiError> {
    check_sub(&call.def, Some("scale"))?;
    let name = call.rp.name.clone().unwrap_or_default();
    let obj = shared
        .state
        .lock()
        .store
        .get(&call.def.storage, &call.ns(), &name)
        .ok_or_else(|| ApiError::not_found(&call.def.group, &call.def.plural, &name))?;
    let s = ops::scale_of(&call.def, &obj).ok_or_else(|| ApiError::no_route("scale"))?;
    Ok(json_response(200, &s))
}

fn parse_object(call: &Call, body: &[u8]) -> Result<Value, ApiError> {
    if call.content_type.contains("cbor") {
        return Err(ApiError::unsupported_media_type(&call.content_type));
    }
    let v: Value = if call.content_type.contains("protobuf") {
        protobuf::decode_object(body).map_err(|e| match e {
            protobuf::DecodeError::Malformed(_) => {
                ApiError::bad_request(format!("error decoding the protobuf body: {e}"))
            }
            _ => ApiError::unsupported_media_type_because(&call.content_type, &e.to_string()),
        })?
    } else if call.content_type.contains("yaml") {
        serde_yaml::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))?
    } else {
        serde_json::from_slice(body).map_err(|e| {
            ApiError::bad_request(format!("couldn't get version/kind; json parse error: {e}"))
        })?
    };
    if !v.is_object() {
        return Err(ApiError::bad_request(
            "the request body must be a JSON object",
        ));
    }
    if !v["metadata"].is_null() && !v["metadata"].is_object() {
        return Err(ApiError::bad_request("metadata must be an object"));
    }
    if let Some(av) = v["apiVersion"].as_str()
        && av != call.def.api_version()
    {
        return Err(ApiError::bad_request(format!(
            "the API version in the data ({av}) does not match the expected API version ({})",
            call.def.api_version()
        )));
    }
    if let Some(k) = v["kind"].as_str()
        && k != call.def.kind
    {
        return Err(ApiError::bad_request(format!(
            "the kind in the data ({k}) does not match the expected kind ({})",
            call.def.kind
        )));
    }
    ops::check_decodes(&call.def, &v)?;
    Ok(ops::ingest(&call.def, v))
}

fn written(call: &Call, code: u16, w: ops::Written) -> Response<Body> {
    let mut r = json_response(code, &ops::present(&call.def, &w.object));
    for warn in w.warnings {
        let text = format!("299 - {}", serde_json::Value::String(warn));
        if let Ok(v) = http::HeaderValue::from_str(&text) {
            r.headers_mut().append(http::header::WARNING, v);
        }
    }
    r
}

fn create(shared: &Shared, call: &Call, body: &[u8]) -> Result<Response<Body>, ApiError> {
    let obj = parse_object(call, body)?;
    let opts = call.write_opts("CreateOptions", "")?;
    let ns = call.rp.namespace.clone();
    let w = ops::create(
        &mut shared.state.lock(),
        &call.def,
        ns.as_deref(),
        obj,
        &opts,
        false,
    )?;
    Ok(written(call, 201, w))
}

fn update(shared: &Shared, call: &Call, body: &[u8]) -> Result<Response<Body>, ApiError> {
    check_sub(&call.def, call.rp.sub.as_deref())?;
    let obj = parse_object(call, body)?;
    let name = call.rp.name.clone().unwrap_or_default();
    if call.def.custom
        && obj["metadata"]["resourceVersion"]
            .as_str()
            .is_none_or(str::is_empty)
    {
        // Custom resources do not allow unconditional updates.
        let cause = super::error::Cause {
            reason: "FieldValueInvalid".into(),
            message: "Invalid value: 0x0: must be specified for an update".into(),
            field: "metadata.resourceVersion".into(),
        };
        return Err(ApiError::invalid(
            &call.def.kind_group(),
            &call.def.group,
            &name,
            vec![cause],
        ));
    }
    let sub = call.rp.sub.clone().unwrap_or_default();
    let opts = call.write_opts("UpdateOptions", &name)?;
    let w = ops::update(
        &mut shared.state.lock(),
        &call.def,
        &call.ns(),
        &name,
        obj,
        &sub,
        &opts,
        None,
    )?;
    Ok(written(call, 200, w))
}

fn patch(shared: &Shared, call: &Call, body: &[u8]) -> Result<Response<Body>, ApiError> {
    check_sub(&call.def, call.rp.sub.as_deref())?;
    let kind = PatchKind::from_content_type(&call.content_type)
        .ok_or_else(|| ApiError::unsupported_media_type(&call.content_type))?;
    let name = call.rp.name.clone().unwrap_or_default();
    let sub = call.rp.sub.clone().unwrap_or_default();
    let opts = call.write_opts("PatchOptions", &name)?;
    if kind == PatchKind::Apply && !call.query.contains_key("fieldManager") {
        return Err(ApiError::bad_request(
            "PATCH /apply requires a non-empty fieldManager",
        ));
    }
    let mut st = shared.state.lock();
    let existed = st.store.get(&call.def.storage, &call.ns(), &name).is_some();
    let w = ops::patch(
        &mut st,
        &call.def,
        &call.ns(),
        &name,
        kind,
        body,
        &sub,
        &opts,
    )?;
    drop(st);
    Ok(written(call, if existed { 200 } else { 201 }, w))
}

fn scale(
    shared: &Shared,
    call: &Call,
    body: &[u8],
    kind: Option<PatchKind>,
) -> Result<Response<Body>, ApiError> {
    check_sub(&call.def, Some("scale"))?;
    let name = call.rp.name.clone().unwrap_or_default();
    let opts = call.write_opts(
        if kind.is_some() {
            "PatchOptions"
        } else {
            "UpdateOptions"
        },
        &name,
    )?;
    let s = ops::write_scale(
        &mut shared.state.lock(),
        &call.def,
        &call.ns(),
        &name,
        body,
        kind,
        &opts,
    )?;
    Ok(json_response(200, &s))
}
