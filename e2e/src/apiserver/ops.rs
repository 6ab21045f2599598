//! State operations behind the verbs: create, update, patch and scale, run under the lock.

use super::admission::{self, FieldValidation};
use super::apply::{self, WriteCtx};
use super::defaulting::{self, service};
use super::error::ApiError;
use super::error::Cause;
use super::patch::{self, PatchKind};
use super::resources::ResourceDef;
use super::{State, events, gc, jsonpath, validation};
use serde_json::{Value, json};
use std::sync::Arc;

/// Per-request write options.
#[derive(Debug, Clone)]
pub struct WriteOpts {
    /// Field manager.
    pub manager: String,
    /// `fieldValidation`.
    pub fv: FieldValidation,
    /// `dryRun=All`.
    pub dry_run: bool,
    /// `force` (apply).
    pub force: bool,
}

/// The outcome of a write: the stored (or dry-run) object and warnings.
#[derive(Debug, Clone)]
pub struct Written {
    /// The object, in storage shape.
    pub object: Value,
    /// Warnings for the `Warning` header.
    pub warnings: Vec<String>,
}

/// The object as a client of `def`'s version sees it.
pub fn present(def: &ResourceDef, obj: &Value) -> Value {
    if def.converts() {
        return events::to_events_v1(obj);
    }
    let mut o = obj.clone();
    if let Some(m) = o.as_object_mut() {
        m.insert("apiVersion".into(), json!(def.api_version()));
        m.insert("kind".into(), json!(def.kind));
    }
    o
}

/// The storage shape of an object a client of `def` sent.
pub fn ingest(def: &ResourceDef, obj: Value) -> Value {
    if def.converts() {
        return events::to_core(&obj);
    }
    obj
}

fn ctx<'a>(
    def: &'a ResourceDef,
    opts: &'a WriteOpts,
    sub: &'a str,
    now: &'a str,
    api_version: &'a str,
) -> WriteCtx<'a> {
    let _ = def;
    WriteCtx {
        manager: &opts.manager,
        api_version,
        subresource: sub,
        now,
    }
}

/// Creates an object (`managed` = managedFields already computed by apply).
pub fn create(
    st: &mut State,
    def: &ResourceDef,
    url_ns: Option<&str>,
    mut obj: Value,
    opts: &WriteOpts,
    from_apply: bool,
) -> Result<Written, ApiError> {
    let (name, ns) = admission::identity(def, &mut obj, url_ns)?;
    if def.namespaced {
        let nskey = ("".to_string(), "namespaces".to_string());
        match st.store.get(&nskey, "", &ns) {
            None => return Err(ApiError::not_found("", "namespaces", &ns)),
            Some(n) if n["metadata"]["deletionTimestamp"].is_string() => {
                return Err(namespace_terminating(def, &name, &ns));
            }
            Some(_) => {}
        }
    }
    if st.store.get(&def.storage, &ns, &name).is_some() {
        return Err(ApiError::already_exists(&def.group, &def.plural, &name));
    }
    check_labels(def, &name, &obj)?;
    let managed = obj["metadata"].get("managedFields").cloned();
    admission::stamp_new(&mut obj, def.generation);
    defaulting::apply(def, &mut obj);
    admission::create_defaults(st, def, &mut obj, &name)?;
    let warnings = admission::enforce_schema(def, &mut obj, None, opts.fv)?;
    check_valid(def, &name, &obj, None, true)?;
    let t = admission::now();
    let av = def.api_version();
    match (from_apply, managed) {
        (true, Some(m)) => obj["metadata"]["managedFields"] = m,
        _ => apply::record_update(None, &mut obj, &ctx(def, opts, "", &t, &av)),
    }
    if opts.dry_run {
        return Ok(Written {
            object: obj,
            warnings,
        });
    }
    let stored = st.store.put(&def.storage, &ns, &name, obj);
    after_store(st, def, &ns, &name, &stored);
    Ok(Written {
        object: (*stored).clone(),
        warnings,
    })
}

fn after_store(st: &mut State, def: &ResourceDef, ns: &str, name: &str, stored: &Arc<Value>) {
    match (def.group.as_str(), def.kind.as_str()) {
        ("apiextensions.k8s.io", "CustomResourceDefinition") => st.registry.set_crd(name, stored),
        ("", "Namespace") => super::seed::namespace_content(st, name),
        _ => {}
    }
    let _ = ns;
}

/// The NamespaceLifecycle admission plugin's answer to a create in a terminating namespace.
fn namespace_terminating(def: &ResourceDef, name: &str, ns: &str) -> ApiError {
    let mut e = ApiError::new(
        403,
        "Forbidden",
        format!(
            "{} \"{name}\" is forbidden: unable to create new content in namespace {ns} because it is being terminated",
            def.group_resource()
        ),
    );
    e.details = Some(
        json!({"name": name, "group": def.group, "kind": def.plural, "causes": [
        {"reason": "NamespaceTerminating", "message": format!("namespace {ns} is being terminated"),
         "field": "metadata.namespace"}]}),
    );
    e
}

/// Field validation of built-in kinds (and the metadata rules every kind shares).
fn check_valid(
    def: &ResourceDef,
    name: &str,
    obj: &Value,
    old: Option<&Value>,
    spec: bool,
) -> Result<(), ApiError> {
    let causes: Vec<Cause> = if spec {
        validation::validate(def, obj, old)
    } else {
        validation::validate_meta(obj, old)
    };
    if causes.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid(
            &def.kind_group(),
            &def.group,
            name,
            causes,
        ))
    }
}

/// What fails when a body is decoded into the kind's Go type: 400 for a create or an update.
pub fn check_decodes(def: &ResourceDef, obj: &Value) -> Result<(), ApiError> {
    validation::decode(def, obj).map_err(|e| {
        ApiError::bad_request(format!(
            "{kind} in version {v:?} cannot be handled as a {kind}: {e}",
            kind = def.kind,
            v = def.version
        ))
    })
}

/// The same failure for a patch: upstream reports it as a 422 on the `patch` field.
fn check_patched_decodes(def: &ResourceDef, obj: &Value) -> Result<(), ApiError> {
    validation::decode(def, obj).map_err(|e| {
        ApiError::invalid(
            "",
            "",
            "",
            vec![Cause {
                reason: "FieldValueInvalid".into(),
                message: format!(
                    "Invalid value: {}: {e}",
                    validation::go::quote(&obj.to_string())
                ),
                field: "patch".into(),
            }],
        )
    })
}

fn check_labels(def: &ResourceDef, name: &str, obj: &Value) -> Result<(), ApiError> {
    let causes = admission::labels::check(&obj["metadata"]);
    if causes.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid(
            &def.kind_group(),
            &def.group,
            name,
            causes,
        ))
    }
}

fn check_rv(def: &ResourceDef, old: &Value, new: &Value, name: &str) -> Result<(), ApiError> {
    match new["metadata"]["resourceVersion"]
        .as_str()
        .filter(|s| !s.is_empty())
    {
        Some(rv) if Some(rv) != old["metadata"]["resourceVersion"].as_str() => {
            Err(ApiError::conflict(&def.group, &def.plural, name))
        }
        _ => Ok(()),
    }
}

/// Replaces an object (PUT, and the tail of every patch).
#[allow(clippy::too_many_arguments)]
pub fn update(
    st: &mut State,
    def: &ResourceDef,
    ns: &str,
    name: &str,
    body: Value,
    sub: &str,
    opts: &WriteOpts,
    managed: Option<Value>,
) -> Result<Written, ApiError> {
    let old = st
        .store
        .get(&def.storage, ns, name)
        .ok_or_else(|| ApiError::not_found(&def.group, &def.plural, name))?;
    if let Some(n) = body["metadata"]["name"].as_str()
        && n != name
    {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({n}) does not match the name on the URL ({name})"
        )));
    }
    check_rv(def, &old, &body, name)?;
    let mut new = admission::merge_update(def, &old, body, sub);
    check_labels(def, name, &new)?;
    if def.group == "apiextensions.k8s.io" && sub.is_empty() {
        admission::crd_accept(def, &mut new, name)?;
    }
    defaulting::apply(def, &mut new);
    if def.group.is_empty() && def.kind == "Service" && sub.is_empty() {
        service::allocate(st, &mut new, Some(old.as_ref()));
    }
    let warnings = admission::enforce_schema(def, &mut new, Some(old.as_ref()), opts.fv)?;
    check_valid(def, name, &new, Some(old.as_ref()), sub.is_empty())?;
    admission::bump_generation(def, &old, &mut new);
    let t = admission::now();
    let av = def.api_version();
    match managed {
        Some(m) => new["metadata"]["managedFields"] = m,
        None => apply::record_update(Some(&old), &mut new, &ctx(def, opts, sub, &t, &av)),
    }
    if admission::same_content(&old, &new) || opts.dry_run {
        let object = if opts.dry_run { new } else { (*old).clone() };
        return Ok(Written { object, warnings });
    }
    let deleting = new["metadata"]["deletionTimestamp"].is_string();
    let no_finalizers = new["metadata"]["finalizers"]
        .as_array()
        .is_none_or(Vec::is_empty);
    let stored = st.store.put(&def.storage, ns, name, new);
    after_store(st, def, ns, name, &stored);
    if deleting {
        if no_finalizers {
            gc::remove_now(st, &def.storage, ns, name);
        }
        gc::settle(st);
    }
    Ok(Written {
        object: (*stored).clone(),
        warnings,
    })
}

fn conflict_error(def: &ResourceDef, name: &str, conflicts: &[apply::Conflict]) -> ApiError {
    let n = conflicts.len();
    let list: Vec<String> = conflicts
        .iter()
        .map(|c| format!("conflict with \"{}\": {}", c.manager, c.field))
        .collect();
    let plural = if n == 1 { "" } else { "s" };
    let mut e = ApiError::new(
        409,
        "Conflict",
        format!(
            "Apply failed with {n} conflict{plural}: {}",
            list.join("\n")
        ),
    );
    let causes: Vec<Value> = conflicts
        .iter()
        .map(|c| json!({"reason": "FieldManagerConflict", "message": format!("conflict with \"{}\"", c.manager), "field": c.field}))
        .collect();
    e.details =
        Some(json!({"name": name, "group": def.group, "kind": def.plural, "causes": causes}));
    e
}

/// Patches an object (merge, JSON, strategic or apply).
#[allow(clippy::too_many_arguments)]
pub fn patch(
    st: &mut State,
    def: &ResourceDef,
    ns: &str,
    name: &str,
    kind: PatchKind,
    body: &[u8],
    sub: &str,
    opts: &WriteOpts,
) -> Result<Written, ApiError> {
    let old = st.store.get(&def.storage, ns, name);
    if kind == PatchKind::Apply {
        return apply_patch(st, def, ns, name, old.as_deref(), body, sub, opts);
    }
    let old = old.ok_or_else(|| ApiError::not_found(&def.group, &def.plural, name))?;
    let p: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?;
    let mut work = present(def, &old);
    match kind {
        PatchKind::Merge => {
            if !p.is_object() {
                return Err(ApiError::bad_request("a merge patch must be a JSON object"));
            }
            patch::merge_patch(&mut work, &p);
        }
        PatchKind::Json => {
            patch::json_patch(&mut work, &p).map_err(|e| ApiError::new(422, "Invalid", e))?
        }
        PatchKind::Strategic => {
            if def.custom {
                return Err(ApiError::unsupported_media_type(
                    "application/strategic-merge-patch+json",
                ));
            }
            patch::strategic_merge(&mut work, &p).map_err(ApiError::bad_request)?;
        }
        PatchKind::Apply => {}
    }
    if !work.is_object() || !work["metadata"].is_object() {
        return Err(ApiError::bad_request(
            "the patch removed the object's metadata",
        ));
    }
    check_patched_decodes(def, &work)?;
    update(st, def, ns, name, ingest(def, work), sub, opts, None)
}

#[allow(clippy::too_many_arguments)]
fn apply_patch(
    st: &mut State,
    def: &ResourceDef,
    ns: &str,
    name: &str,
    old: Option<&Value>,
    body: &[u8],
    sub: &str,
    opts: &WriteOpts,
) -> Result<Written, ApiError> {
    let config: Value = serde_yaml::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))?;
    if !config.is_object() {
        return Err(ApiError::bad_request(
            "the apply configuration must be an object",
        ));
    }
    if !config["metadata"].is_null() && !config["metadata"].is_object() {
        return Err(ApiError::bad_request("metadata must be an object"));
    }
    if config["apiVersion"].as_str().is_none() || config["kind"].as_str().is_none() {
        return Err(ApiError::bad_request(
            "invalid object type: apiVersion and kind must be set",
        ));
    }
    if let Some(n) = config["metadata"]["name"].as_str()
        && n != name
    {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({n}) does not match the name on the URL ({name})"
        )));
    }
    let t = admission::now();
    let av = def.api_version();
    let c = ctx(def, opts, sub, &t, &av);
    let skip_status = sub.is_empty() && def.status;
    let live = old.map(|o| present(def, o));
    let mut merged = apply::apply(live.as_ref(), &config, &c, opts.force, skip_status)
        .map_err(|cs| conflict_error(def, name, &cs))?;
    merged["metadata"]["name"] = json!(name);
    check_patched_decodes(def, &merged)?;
    let managed = merged["metadata"].get("managedFields").cloned();
    match old {
        None => {
            if !sub.is_empty() {
                return Err(ApiError::not_found(&def.group, &def.plural, name));
            }
            let url_ns = def.namespaced.then_some(ns);
            create(st, def, url_ns, ingest(def, merged), opts, true)
        }
        Some(_) => update(st, def, ns, name, ingest(def, merged), sub, opts, managed),
    }
}

fn selector_string(def: &ResourceDef, obj: &Value) -> Option<String> {
    let paths = def.scale.as_ref()?;
    if !def.custom {
        let labels = obj["spec"]["selector"]["matchLabels"].as_object()?;
        return Some(
            labels
                .iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                .collect::<Vec<_>>()
                .join(","),
        );
    }
    let p = paths.label_selector.as_ref()?;
    jsonpath::first(obj, p).and_then(|v| v.as_str().map(str::to_string))
}

/// The `autoscaling/v1 Scale` view of an object.
pub fn scale_of(def: &ResourceDef, obj: &Value) -> Option<Value> {
    let paths = def.scale.as_ref()?;
    let m = &obj["metadata"];
    let mut s = json!({
        "kind": "Scale", "apiVersion": "autoscaling/v1",
        "metadata": {"name": m["name"], "namespace": m["namespace"], "uid": m["uid"],
                     "resourceVersion": m["resourceVersion"], "creationTimestamp": m["creationTimestamp"]},
        "spec": {"replicas": jsonpath::first(obj, &paths.spec_replicas).and_then(|v| v.as_i64()).unwrap_or(0)},
        "status": {"replicas": jsonpath::first(obj, &paths.status_replicas).and_then(|v| v.as_i64()).unwrap_or(0)},
    });
    if let Some(sel) = selector_string(def, obj) {
        s["status"]["selector"] = json!(sel);
    }
    Some(s)
}

/// Writes the scale subresource: `body` is a full Scale (PUT) or a patch of one.
pub fn write_scale(
    st: &mut State,
    def: &ResourceDef,
    ns: &str,
    name: &str,
    body: &[u8],
    kind: Option<PatchKind>,
    opts: &WriteOpts,
) -> Result<Value, ApiError> {
    let paths = def
        .scale
        .clone()
        .ok_or_else(|| ApiError::no_route("scale"))?;
    let old = st
        .store
        .get(&def.storage, ns, name)
        .ok_or_else(|| ApiError::not_found(&def.group, &def.plural, name))?;
    let current = scale_of(def, &old).unwrap_or_else(|| json!({}));
    let p: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("error decoding body: {e}")))?;
    let scale = match kind {
        None => p,
        Some(PatchKind::Json) => {
            let mut s = current.clone();
            patch::json_patch(&mut s, &p).map_err(|e| ApiError::new(422, "Invalid", e))?;
            s
        }
        Some(_) => {
            let mut s = current.clone();
            patch::merge_patch(&mut s, &p);
            s
        }
    };
    check_rv(def, &old, &scale, name)?;
    let replicas = scale["spec"]["replicas"]
        .as_i64()
        .ok_or_else(|| ApiError::bad_request("spec.replicas must be an integer"))?;
    let mut new = (*old).clone();
    new["metadata"]["resourceVersion"] = json!("");
    jsonpath::set(&mut new, &paths.spec_replicas, json!(replicas)).map_err(ApiError::internal)?;
    let w = update(st, def, ns, name, new, "", opts, None)?;
    Ok(scale_of(def, &w.object).unwrap_or(current))
}
