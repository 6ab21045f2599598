//! Lists: the fast path that serialises stored objects directly, and the general path for
//! Tables and converted kinds. Both page with `limit` and `continue` as the real server does.

use super::Call;
use crate::apiserver::Shared;
use crate::apiserver::codec;
use crate::apiserver::error::ApiError;
use crate::apiserver::ops;
use crate::apiserver::server::{Body, json_response};
use crate::apiserver::table;
use crate::apiserver::watch::Presented;
use hyper::Response;
use serde_json::{Value, json};
use std::sync::Arc;

/// Where a page starts and how long it is.
#[derive(Debug, Clone, Default)]
struct Page {
    /// Items after this `(namespace, name)` (from the continue token).
    after: Option<(String, String)>,
    /// At most this many items.
    limit: Option<usize>,
    /// The resourceVersion the first page was served at.
    rv: Option<u64>,
}

fn bad_continue(detail: impl std::fmt::Display) -> ApiError {
    ApiError::bad_request(format!("continue key is not valid: {detail}"))
}

/// Decodes a continue token (`base64url({"v":"meta.k8s.io/v1","rv":N,"start":"ns/name\0"})`).
fn decode_continue(token: &str) -> Result<(u64, (String, String)), ApiError> {
    let raw = codec::decode_raw_url(token).map_err(bad_continue)?;
    let v: Value = serde_json::from_slice(&raw).map_err(bad_continue)?;
    if v["v"] != json!("meta.k8s.io/v1") {
        return Err(bad_continue(format!(
            "server does not recognize this encoded version {}",
            v["v"]
        )));
    }
    let rv = v["rv"].as_u64().filter(|rv| *rv > 0).ok_or_else(|| {
        bad_continue("incorrect encoded start resourceVersion (version meta.k8s.io/v1)")
    })?;
    let start = v["start"]
        .as_str()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| bad_continue("encoded start key empty (version meta.k8s.io/v1)"))?;
    let start = start.trim_end_matches('\u{0}');
    let key = match start.split_once('/') {
        Some((ns, name)) => (ns.to_string(), name.to_string()),
        None => (String::new(), start.to_string()),
    };
    Ok((rv, key))
}

fn encode_continue(rv: u64, (ns, name): &(String, String)) -> String {
    let start = if ns.is_empty() {
        format!("{name}\u{0}")
    } else {
        format!("{ns}/{name}\u{0}")
    };
    let token = json!({"v": "meta.k8s.io/v1", "rv": rv, "start": start});
    codec::encode_raw_url(token.to_string().as_bytes())
}

fn page(call: &Call) -> Result<Page, ApiError> {
    let limit = match call.query.get("limit").map(String::as_str) {
        None | Some("") => None,
        Some(l) => match l.parse::<i64>() {
            Ok(n) if n > 0 => usize::try_from(n).ok(),
            Ok(_) => None,
            Err(_) => {
                return Err(ApiError::bad_request(format!(
                    "invalid value for limit: {l:?}"
                )));
            }
        },
    };
    let mut p = Page {
        limit,
        ..Page::default()
    };
    if let Some(token) = call.query.get("continue").filter(|t| !t.is_empty()) {
        let (rv, after) = decode_continue(token)?;
        p.rv = Some(rv);
        p.after = Some(after);
    }
    Ok(p)
}

fn key_of(obj: &Value) -> (String, String) {
    let m = &obj["metadata"];
    (
        m["namespace"].as_str().unwrap_or_default().to_string(),
        m["name"].as_str().unwrap_or_default().to_string(),
    )
}

/// Cuts one page out of the matching items; returns it with the list metadata.
fn cut<T: AsRef<Value>>(items: Vec<T>, p: &Page, rv: u64, filtered: bool) -> (Vec<T>, Value) {
    let rv = p.rv.unwrap_or(rv);
    let mut items: Vec<T> = match &p.after {
        Some(after) => items
            .into_iter()
            .filter(|o| key_of(o.as_ref()) > *after)
            .collect(),
        None => items,
    };
    let mut meta = json!({"resourceVersion": rv.to_string()});
    if let Some(limit) = p.limit
        && items.len() > limit
    {
        let remaining = items.len() - limit;
        items.truncate(limit);
        if let Some(last) = items.last() {
            meta["continue"] = json!(encode_continue(rv, &key_of(last.as_ref())));
        }
        // Upstream counts the rest only when no selector filters the list.
        if !filtered {
            meta["remainingItemCount"] = json!(remaining);
        }
    }
    (items, meta)
}

fn filtered(call: &Call) -> bool {
    ["labelSelector", "fieldSelector"]
        .iter()
        .any(|k| call.query.get(*k).is_some_and(|s| !s.is_empty()))
}

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
    let p = page(call)?;
    let st = shared.state.lock();
    let ns = call.ns_filter();
    let raw = match (fs.pinned_name(), &ns) {
        (Some(n), Some(ns)) => st.store.get(&call.def.storage, ns, n).into_iter().collect(),
        _ => st.store.list(&call.def.storage, ns.as_deref()),
    };
    let rv = st.store.rv();
    drop(st);
    let api_version = call.def.api_version();
    let matching: Vec<Arc<Value>> = raw
        .into_iter()
        .filter(|o| ls.matches(o) && fs.matches(o))
        .collect();
    let (items, metadata) = cut(matching, &p, rv, filtered(call));
    let type_meta = call
        .def
        .custom
        .then_some((api_version.as_str(), call.def.kind.as_str()));
    let body = ListBody {
        kind: format!("{}List", call.def.kind),
        api_version: api_version.clone(),
        metadata,
        items: items
            .iter()
            .map(|o| Presented {
                obj: o.as_ref(),
                type_meta,
            })
            .collect(),
    };
    let bytes = serde_json::to_vec(&body).map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(crate::apiserver::server::bytes_response(
        200,
        "application/json",
        bytes.into(),
    ))
}

struct Owned(Value);

impl AsRef<Value> for Owned {
    fn as_ref(&self) -> &Value {
        &self.0
    }
}

pub(super) fn list(shared: &Shared, call: &Call) -> Result<Response<Body>, ApiError> {
    if call.served_as_stored() {
        return list_fast(shared, call);
    }
    let p = page(call)?;
    let (items, rv) = list_objects(shared, call)?;
    let (items, meta) = cut(
        items.into_iter().map(Owned).collect(),
        &p,
        rv,
        filtered(call),
    );
    let mut items: Vec<Value> = items.into_iter().map(|o| o.0).collect();
    if call.wants_table() {
        let t = table::render(&call.def, &items, meta, call.include(), chrono::Utc::now());
        return Ok(json_response(200, &t));
    }
    if !call.def.custom {
        for o in &mut items {
            if let Some(m) = o.as_object_mut() {
                m.remove("apiVersion");
                m.remove("kind");
            }
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continue_tokens_round_trip_and_garbage_is_rejected() {
        let key = ("default".to_string(), "b".to_string());
        let token = encode_continue(42, &key);
        assert_eq!(decode_continue(&token).unwrap(), (42, key));
        let e = decode_continue("garbage!").unwrap_err();
        assert_eq!(e.code, 400);
        assert!(
            e.message.starts_with("continue key is not valid: "),
            "{}",
            e.message
        );
        let wrong = codec::encode_raw_url(br#"{"v":"x","rv":1,"start":"a"}"#);
        assert!(decode_continue(&wrong).is_err());
    }

    #[test]
    fn pages_cut_after_the_token_and_count_the_rest() {
        let items: Vec<Owned> = ["a", "b", "c"]
            .iter()
            .map(|n| Owned(json!({"metadata": {"namespace": "ns", "name": n}})))
            .collect();
        let first = Page {
            limit: Some(2),
            ..Page::default()
        };
        let (got, meta) = cut(items, &first, 7, false);
        assert_eq!(got.len(), 2);
        assert_eq!(meta["remainingItemCount"], 1);
        let (rv, after) = decode_continue(meta["continue"].as_str().unwrap()).unwrap();
        assert_eq!((rv, after.1.as_str()), (7, "b"));
    }
}
