//! Lists: the fast path that serialises stored objects directly, and the general path for
//! Tables and converted kinds.

use super::Call;
use crate::apiserver::Shared;
use crate::apiserver::error::ApiError;
use crate::apiserver::ops;
use crate::apiserver::server::{Body, json_response};
use crate::apiserver::table;
use hyper::Response;
use serde_json::{Value, json};

/// Lists matching objects in their served shape, with the list's resourceVersion.
pub fn list_objects(shared: &Shared, call: &Call) -> Result<(Vec<Value>, u64), ApiError> {
    let (ls, fs) = call.selectors()?;
    let st = shared.state.lock();
    let ns = call.ns_filter();
    let raw = match (fs.pinned_name(), &ns) {
        (Some(n), Some(ns)) => st.store.get(&call.def.storage, ns, n).into_iter().collect(),
        _ => st.store.list(&call.def.storage, ns.as_deref()),
    };
    let rv = st.store.rv();
    drop(st);
    let items = raw
        .iter()
        .map(|o| ops::present(&call.def, o))
        .filter(|o| ls.matches(o) && fs.matches(o))
        .collect();
    Ok((items, rv))
}

/// An object serialised with the served `apiVersion` and `kind`, without cloning it.
struct Presented<'a> {
    obj: &'a Value,
    api_version: &'a str,
    kind: &'a str,
}

impl serde::Serialize for Presented<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let Some(m) = self.obj.as_object() else {
            return self.obj.serialize(s);
        };
        let mut map = s.serialize_map(None)?;
        map.serialize_entry("apiVersion", self.api_version)?;
        map.serialize_entry("kind", self.kind)?;
        for (k, v) in m.iter().filter(|(k, _)| *k != "apiVersion" && *k != "kind") {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct ListBody<'a> {
    kind: String,
    api_version: String,
    metadata: Value,
    items: Vec<Presented<'a>>,
}

/// Lists without copying objects: filters the stored objects and serialises them directly.
fn list_fast(shared: &Shared, call: &Call) -> Result<Response<Body>, ApiError> {
    let (ls, fs) = call.selectors()?;
    let st = shared.state.lock();
    let ns = call.ns_filter();
    let raw = match (fs.pinned_name(), &ns) {
        (Some(n), Some(ns)) => st.store.get(&call.def.storage, ns, n).into_iter().collect(),
        _ => st.store.list(&call.def.storage, ns.as_deref()),
    };
    let rv = st.store.rv();
    drop(st);
    let api_version = call.def.api_version();
    let items = raw
        .iter()
        .filter(|o| ls.matches(o) && fs.matches(o))
        .map(|o| Presented {
            obj: o,
            api_version: &api_version,
            kind: &call.def.kind,
        })
        .collect();
    let body = ListBody {
        kind: format!("{}List", call.def.kind),
        api_version: api_version.clone(),
        metadata: json!({"resourceVersion": rv.to_string()}),
        items,
    };
    let bytes = serde_json::to_vec(&body).map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(crate::apiserver::server::bytes_response(
        200,
        "application/json",
        bytes.into(),
    ))
}

pub(super) fn list(shared: &Shared, call: &Call) -> Result<Response<Body>, ApiError> {
    let converts = call.def.is_event() && call.def.group == "events.k8s.io";
    let by_type = call
        .query
        .get("fieldSelector")
        .is_some_and(|f| f.contains("apiVersion") || f.contains("kind="));
    if !call.wants_table() && !converts && !by_type {
        return list_fast(shared, call);
    }
    let (items, rv) = list_objects(shared, call)?;
    let meta = json!({"resourceVersion": rv.to_string()});
    if call.wants_table() {
        let t = table::render(&call.def, &items, meta, call.include(), chrono::Utc::now());
        return Ok(json_response(200, &t));
    }
    Ok(json_response(
        200,
        &json!({
            "kind": format!("{}List", call.def.kind),
            "apiVersion": call.def.api_version(),
            "metadata": meta,
            "items": items,
        }),
    ))
}
