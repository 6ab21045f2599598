//! Watch streams: replay from a resourceVersion, live changes, bookmarks, timeouts and 410s.

use super::error::ApiError;
use super::handlers::Call;
use super::ops::present;
use super::selector::{FieldSelector, LabelSelector};
use super::server::{Body, BoxError, error_response};
use super::store::{Change, EventType};
use super::{Shared, table};
use bytes::Bytes;
use futures::StreamExt;
use futures::channel::mpsc;
use http_body_util::{BodyExt, StreamBody};
use hyper::Response;
use hyper::body::Frame;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;

/// A watcher's filter: resource, namespace and selectors.
#[derive(Debug, Clone)]
pub struct Filter {
    /// The call being served.
    pub call: Call,
    /// Namespace, if any.
    pub ns: Option<String>,
    /// Label selector.
    pub labels: LabelSelector,
    /// Field selector.
    pub fields: FieldSelector,
}

// === impl Filter ===

impl Filter {
    fn matches(&self, obj: &Value) -> bool {
        self.labels.matches(obj) && self.fields.matches(obj)
    }

    /// Which event, if any, this watcher sees for a change, judged on the objects as
    /// `judge` shows them: `Left` when the object leaves the selector.
    fn seen(&self, c: &Change, judge: impl Fn(&Value) -> bool) -> Option<Seen> {
        if c.storage != self.call.def.storage {
            return None;
        }
        if let Some(ns) = &self.ns
            && &c.namespace != ns
        {
            return None;
        }
        let now_ok = judge(&c.object);
        let before_ok = c.prev.as_ref().map(|p| judge(p));
        Some(match (c.kind, now_ok, before_ok) {
            (EventType::Added, true, _) => Seen::As(EventType::Added),
            (EventType::Deleted, _, Some(true)) => Seen::As(EventType::Deleted),
            (EventType::Modified, true, Some(true)) => Seen::As(EventType::Modified),
            (EventType::Modified, true, _) => Seen::As(EventType::Added),
            (EventType::Modified, false, Some(true)) => Seen::Left,
            _ => return None,
        })
    }

    /// Turns a stored change into the event this watcher should see, if any.
    pub fn event(&self, c: &Change) -> Option<(EventType, Value)> {
        let present = |o: &Value| present(&self.call.def, o);
        match self.seen(c, |o| self.matches(&present(o)))? {
            Seen::As(kind) => Some((kind, present(&c.object))),
            Seen::Left => Some((
                EventType::Deleted,
                left_at(c.rv, present(c.prev.as_deref()?)),
            )),
        }
    }

    /// The line this watcher sends for a change, if any. Objects served as stored
    /// ([`Call::served_as_stored`], as lists do) are judged and written without a copy:
    /// each change goes to every watcher of its kind, so copies cost the most here.
    pub fn line(&self, c: &Change) -> Option<Bytes> {
        if !self.call.served_as_stored() {
            let (kind, obj) = self.event(c)?;
            return Some(line(&self.call, kind.as_str(), obj));
        }
        let (kind, obj) = match self.seen(c, |o| self.matches(o))? {
            Seen::As(kind) => (kind, c.object.clone()),
            Seen::Left => (
                EventType::Deleted,
                Arc::new(left_at(c.rv, (**c.prev.as_ref()?).clone())),
            ),
        };
        let api_version = self.call.def.api_version();
        let event = WatchLine {
            kind: kind.as_str(),
            object: Presented {
                obj: &obj,
                type_meta: Some((&api_version, &self.call.def.kind)),
            },
        };
        let mut bytes = serde_json::to_vec(&event).ok()?;
        bytes.push(b'\n');
        Some(Bytes::from(bytes))
    }
}

/// The object a watcher gets when a change takes it out of its selector: as the real watch
/// cache sends it, the last state the watcher matched, stamped with the change's version.
fn left_at(rv: u64, mut old: Value) -> Value {
    old["metadata"]["resourceVersion"] = json!(rv.to_string());
    old
}

/// What a watcher sees of a change.
enum Seen {
    /// The change as this event type.
    As(EventType),
    /// The object no longer matches: a deletion of its last matching state.
    Left,
}

/// One line of a watch stream.
#[derive(serde::Serialize)]
struct WatchLine<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    object: Presented<'a>,
}

/// An object serialised with the served `apiVersion` and `kind`, without cloning it. Items of
/// built-in lists carry no `apiVersion` and `kind`, as the real server's typed lists do;
/// custom resources (unstructured upstream) keep them.
pub struct Presented<'a> {
    /// The stored object.
    pub obj: &'a Value,
    /// The served `(apiVersion, kind)`, if the object is to carry them.
    pub type_meta: Option<(&'a str, &'a str)>,
}

impl serde::Serialize for Presented<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let Some(m) = self.obj.as_object() else {
            return self.obj.serialize(s);
        };
        let mut map = s.serialize_map(None)?;
        if let Some((api_version, kind)) = self.type_meta {
            map.serialize_entry("apiVersion", api_version)?;
            map.serialize_entry("kind", kind)?;
        }
        for (k, v) in m.iter().filter(|(k, _)| *k != "apiVersion" && *k != "kind") {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

fn line(call: &Call, kind: &str, obj: Value) -> Bytes {
    let obj = if call.wants_table() && kind != "ERROR" && kind != "BOOKMARK" {
        table::render(
            &call.def,
            &[obj],
            json!({}),
            call.include(),
            chrono::Utc::now(),
        )
    } else {
        obj
    };
    let mut s = json!({"type": kind, "object": obj}).to_string();
    s.push('\n');
    Bytes::from(s)
}

fn bookmark(call: &Call, rv: u64, initial_end: bool) -> Bytes {
    let mut meta = json!({"resourceVersion": rv.to_string()});
    if initial_end {
        meta["annotations"] = json!({"k8s.io/initial-events-end": "true"});
    }
    let obj =
        json!({"kind": call.def.kind, "apiVersion": call.def.api_version(), "metadata": meta});
    line(call, "BOOKMARK", obj)
}

/// Serves a watch request as a stream of JSON lines.
pub async fn serve(shared: Arc<Shared>, call: Call) -> Response<Body> {
    let (labels, mut fields) = match call.selectors() {
        Ok(s) => s,
        Err(e) => return error_response(&e),
    };
    if let Some(name) = &call.rp.name {
        fields.0.push(("metadata.name".into(), name.clone(), false));
    }
    let filter = Filter {
        ns: call.ns_filter(),
        call: call.clone(),
        labels,
        fields,
    };
    let rv_param = call
        .query
        .get("resourceVersion")
        .cloned()
        .unwrap_or_default();
    let timeout = call
        .query
        .get("timeoutSeconds")
        .and_then(|t| t.parse::<u64>().ok())
        .map(Duration::from_secs)
        .unwrap_or(shared.opts.default_watch_timeout);
    let bookmarks = call
        .query
        .get("allowWatchBookmarks")
        .is_some_and(|v| v == "true");
    let initial_end = call
        .query
        .get("sendInitialEvents")
        .is_some_and(|v| v == "true")
        && (rv_param.is_empty() || rv_param == "0");
    let (tx, rx) = mpsc::channel::<Bytes>(256);
    let setup = {
        let st = shared.state.lock();
        if rv_param.is_empty() || rv_param == "0" {
            let initial: Vec<Value> = st
                .store
                .list(&call.def.storage, filter.ns.as_deref())
                .iter()
                .map(|o| present(&call.def, o))
                .filter(|o| filter.matches(o))
                .collect();
            st.store
                .subscribe_from(st.store.rv())
                .map(|(_, live)| (initial, vec![], live, st.store.rv()))
        } else {
            match rv_param.parse::<u64>() {
                Ok(from) => st
                    .store
                    .subscribe_from(from)
                    .map(|(replay, live)| (vec![], replay, live, from)),
                Err(_) => {
                    return error_response(&ApiError::bad_request(format!(
                        "invalid resourceVersion {rv_param:?}"
                    )));
                }
            }
        }
    };
    let mut shutdown = shared.shutdown.clone();
    let interval = shared.opts.bookmark_interval;
    match setup {
        Err(compacted) => {
            let from = rv_param.parse::<u64>().unwrap_or(0);
            let ev = line(&call, "ERROR", ApiError::gone(from, compacted).to_status());
            let mut tx = tx;
            let _ = tx.try_send(ev);
        }
        Ok((initial, replay, mut live, start_rv)) => {
            tokio::spawn(async move {
                let mut tx = tx;
                let mut last = start_rv;
                let deadline = tokio::time::sleep(timeout);
                tokio::pin!(deadline);
                let mut ticker = tokio::time::interval(interval);
                ticker.tick().await;
                for obj in initial {
                    if send(&mut tx, line(&call, "ADDED", obj)).await.is_err() {
                        return;
                    }
                }
                if initial_end && send(&mut tx, bookmark(&call, last, true)).await.is_err() {
                    return;
                }
                for c in replay {
                    last = c.rv;
                    if let Some(l) = filter.line(&c)
                        && send(&mut tx, l).await.is_err()
                    {
                        return;
                    }
                }
                loop {
                    tokio::select! {
                        _ = &mut deadline => return,
                        _ = shutdown.changed() => return,
                        _ = ticker.tick(), if bookmarks => {
                            if send(&mut tx, bookmark(&call, last, false)).await.is_err() { return; }
                        }
                        got = live.recv() => match got {
                            Ok(c) => {
                                if c.rv <= last { continue; }
                                last = c.rv;
                                if let Some(l) = filter.line(&c)
                                    && send(&mut tx, l).await.is_err()
                                {
                                    return;
                                }
                            }
                            Err(RecvError::Lagged(_)) => {
                                let _ = send(&mut tx, line(&call, "ERROR", ApiError::gone(last, last).to_status())).await;
                                return;
                            }
                            Err(RecvError::Closed) => return,
                        }
                    }
                }
            });
        }
    }
    let stream = rx.map(|b| Ok::<_, BoxError>(Frame::data(b)));
    let mut r = Response::new(BodyExt::boxed(StreamBody::new(stream)));
    if let Ok(v) = http::HeaderValue::from_str("application/json") {
        r.headers_mut().insert(http::header::CONTENT_TYPE, v);
    }
    r
}

async fn send(tx: &mut mpsc::Sender<Bytes>, b: Bytes) -> Result<(), ()> {
    use futures::SinkExt;
    tx.send(b).await.map_err(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apiserver::resources::builtins;
    use crate::apiserver::router::ResourcePath;

    fn filter(labels: &str, ns: Option<&str>) -> Filter {
        let def = builtins()
            .into_iter()
            .find(|d| d.plural == "configmaps")
            .unwrap();
        let call = Call {
            rp: ResourcePath {
                group: String::new(),
                version: "v1".into(),
                plural: "configmaps".into(),
                namespace: ns.map(Into::into),
                name: None,
                sub: None,
                watch: true,
            },
            def,
            query: Default::default(),
            accept: String::new(),
            content_type: String::new(),
            user_agent: String::new(),
        };
        Filter {
            call,
            ns: ns.map(Into::into),
            labels: LabelSelector::parse(labels).unwrap(),
            fields: FieldSelector::default(),
        }
    }

    fn change(kind: EventType, ns: &str, now: Value, prev: Option<Value>) -> Change {
        Change {
            rv: 7,
            kind,
            storage: ("".into(), "configmaps".into()),
            namespace: ns.into(),
            object: Arc::new(now),
            prev: prev.map(Arc::new),
        }
    }

    fn obj(app: &str) -> Value {
        json!({"metadata": {"name": "a", "labels": {"app": app}}})
    }

    #[test]
    fn selector_transitions_become_added_and_deleted() {
        let f = filter("app=x", None);
        let kind = |c: Change| f.event(&c).map(|(k, _)| k);
        assert_eq!(
            kind(change(EventType::Added, "ns", obj("x"), None)),
            Some(EventType::Added)
        );
        assert_eq!(kind(change(EventType::Added, "ns", obj("y"), None)), None);
        let m = |now, prev| change(EventType::Modified, "ns", obj(now), Some(obj(prev)));
        assert_eq!(kind(m("x", "x")), Some(EventType::Modified));
        assert_eq!(kind(m("y", "x")), Some(EventType::Deleted));
        let (_, gone) = f.event(&m("y", "x")).unwrap();
        assert_eq!(gone["metadata"]["labels"]["app"], "x", "the old object");
        assert_eq!(gone["metadata"]["resourceVersion"], "7");
        assert_eq!(kind(m("x", "y")), Some(EventType::Added));
        assert_eq!(kind(m("y", "y")), None);
        let d = change(EventType::Deleted, "ns", obj("x"), Some(obj("x")));
        assert_eq!(kind(d), Some(EventType::Deleted));
    }

    #[test]
    fn lines_written_without_a_copy_say_what_the_presented_events_say() {
        let f = filter("app=x", None);
        let m = |now, prev| change(EventType::Modified, "ns", obj(now), Some(obj(prev)));
        let cases = [
            change(EventType::Added, "ns", obj("x"), None),
            change(EventType::Added, "ns", obj("y"), None),
            m("x", "x"),
            m("y", "x"),
            m("x", "y"),
            m("y", "y"),
            change(EventType::Deleted, "ns", obj("x"), Some(obj("x"))),
        ];
        for c in cases {
            let fast: Option<Value> = f.line(&c).map(|b| serde_json::from_slice(&b).unwrap());
            let slow = f
                .event(&c)
                .map(|(k, obj)| json!({"type": k.as_str(), "object": obj}));
            assert_eq!(fast, slow, "{:?} {:?}", c.kind, c.object);
        }
    }

    #[test]
    fn a_field_selector_on_kind_is_judged_on_the_presented_object() {
        let mut f = filter("", None);
        f.call
            .query
            .insert("fieldSelector".into(), "kind=ConfigMap".into());
        f.fields = FieldSelector::parse("kind=ConfigMap").unwrap();
        // Stored objects carry no `kind`; the served ones do, so this watcher sees the change.
        let c = change(EventType::Added, "ns", obj("x"), None);
        let line: Value = serde_json::from_slice(&f.line(&c).unwrap()).unwrap();
        assert_eq!(line["type"], "ADDED");
        assert_eq!(line["object"]["kind"], "ConfigMap");
    }

    #[test]
    fn other_namespaces_and_resources_are_filtered_out() {
        let f = filter("", Some("ns"));
        assert!(
            f.event(&change(EventType::Added, "other", obj("x"), None))
                .is_none()
        );
        let mut c = change(EventType::Added, "ns", obj("x"), None);
        let (_, presented) = f.event(&c).unwrap();
        assert_eq!(presented["apiVersion"], "v1");
        assert_eq!(presented["kind"], "ConfigMap");
        c.storage = ("apps".into(), "deployments".into());
        assert!(f.event(&c).is_none());
    }
}
