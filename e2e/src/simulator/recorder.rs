//! Records core/v1 Events as kube-controller-manager's and kubelet's event recorders do:
//! named `<object>.<nanoseconds in hex>`, with `source` and `reportingComponent`, and a
//! repeat of the same (object, type, reason, message) counted on the first Event (`count`
//! and `lastTimestamp`) instead of a new one. Writes run in the background, so a controller
//! never waits for its Events.

use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::{Client, Resource, ResourceExt as _};
use parking_lot::Mutex;
use serde_json::json;
use std::collections::HashMap;
use std::sync::Arc;

/// Upstream's `Normal` type.
pub const NORMAL: &str = "Normal";
/// Upstream's `Warning` type.
pub const WARNING: &str = "Warning";

/// How many distinct Events a recorder remembers for counting repeats.
const MAX_SEEN: usize = 4096;

/// What makes two Events the same one, counted.
type Key = (String, String, String, String);

/// An event recorder for one component.
#[derive(Clone)]
pub(crate) struct Recorder {
    client: Client,
    component: &'static str,
    host: Option<String>,
    /// Events already written, by key: their name and count.
    seen: Arc<Mutex<HashMap<Key, (String, i32)>>>,
}

/// A reference to `obj`, as an Event's `involvedObject`.
pub(crate) fn reference<K: Resource<DynamicType = ()>>(obj: &K) -> ObjectReference {
    ObjectReference {
        api_version: Some(K::api_version(&()).into_owned()),
        kind: Some(K::kind(&()).into_owned()),
        name: obj.meta().name.clone(),
        namespace: obj.meta().namespace.clone(),
        uid: obj.meta().uid.clone(),
        resource_version: obj.meta().resource_version.clone(),
        ..ObjectReference::default()
    }
}

/// The Event the recorder writes first for `regarding` (pure): `count` 1, both timestamps
/// `now`, named after the object and the time in nanoseconds, in the object's namespace.
pub(crate) fn new_event(
    regarding: &ObjectReference,
    type_: &str,
    reason: &str,
    message: &str,
    component: &str,
    host: Option<&str>,
    now: Timestamp,
) -> Event {
    let name = regarding.name.clone().unwrap_or_default();
    let nanos = now.as_nanosecond();
    let at = Time(Timestamp::from_second(now.as_second()).unwrap_or(now));
    Event {
        metadata: ObjectMeta {
            name: Some(format!("{name}.{nanos:x}")),
            namespace: regarding.namespace.clone().or(Some("default".into())),
            ..ObjectMeta::default()
        },
        involved_object: regarding.clone(),
        reason: Some(reason.into()),
        message: Some(message.into()),
        type_: Some(type_.into()),
        count: Some(1),
        first_timestamp: Some(at.clone()),
        last_timestamp: Some(at),
        event_time: None::<MicroTime>,
        source: Some(EventSource {
            component: Some(component.into()),
            host: host.map(String::from),
        }),
        reporting_component: Some(component.into()),
        reporting_instance: Some(host.unwrap_or(component).into()),
        ..Event::default()
    }
}

// === impl Recorder ===

impl Recorder {
    /// A recorder writing as `component` (`deployment-controller`, `kubelet`, …) on `host`.
    pub(crate) fn new(client: Client, component: &'static str, host: Option<String>) -> Self {
        Self {
            client,
            component,
            host,
            seen: Arc::default(),
        }
    }

    /// Records an Event about `regarding` in the background.
    pub(crate) fn record(
        &self,
        regarding: ObjectReference,
        type_: &str,
        reason: &str,
        message: String,
    ) {
        let key = (
            regarding.uid.clone().unwrap_or_default(),
            type_.to_string(),
            reason.to_string(),
            message.clone(),
        );
        let now = Timestamp::now();
        let ns = regarding
            .namespace
            .clone()
            .unwrap_or_else(|| "default".into());
        let api: Api<Event> = Api::namespaced(self.client.clone(), &ns);
        let repeat = {
            let mut seen = self.seen.lock();
            match seen.get_mut(&key) {
                Some((name, count)) => {
                    *count += 1;
                    Some((name.clone(), *count))
                }
                None => None,
            }
        };
        if let Some((name, count)) = repeat {
            tokio::spawn(async move {
                let at = Time(Timestamp::from_second(now.as_second()).unwrap_or(now));
                let patch = json!({"count": count, "lastTimestamp": at});
                if let Err(error) = api
                    .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await
                {
                    tracing::debug!(%error, event = name, "cannot count event");
                }
            });
            return;
        }
        let event = new_event(
            &regarding,
            type_,
            reason,
            &message,
            self.component,
            self.host.as_deref(),
            now,
        );
        let name = event.name_any();
        {
            let mut seen = self.seen.lock();
            if seen.len() >= MAX_SEEN {
                seen.clear();
            }
            seen.insert(key, (name, 1));
        }
        tokio::spawn(async move {
            if let Err(error) = api.create(&PostParams::default(), &event).await {
                tracing::debug!(%error, "cannot record event");
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::Deployment;

    #[test]
    fn an_event_names_its_object_source_and_times() {
        let d: Deployment = serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": "demo", "uid": "u1", "resourceVersion": "7"}
        }))
        .unwrap();
        let r = reference(&d);
        let now = Timestamp::new(1_700_000_000, 5).unwrap();
        let e = new_event(
            &r,
            NORMAL,
            "ScalingReplicaSet",
            "Scaled up",
            "deployment-controller",
            None,
            now,
        );
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(
            v["metadata"]["name"],
            format!("web.{:x}", 1_700_000_000_000_000_005i128)
        );
        assert_eq!(v["metadata"]["namespace"], "demo");
        assert_eq!(
            v["involvedObject"],
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "name": "web",
                   "namespace": "demo", "uid": "u1", "resourceVersion": "7"})
        );
        assert_eq!(v["source"], json!({"component": "deployment-controller"}));
        assert_eq!(v["reportingComponent"], "deployment-controller");
        assert_eq!(v["count"], 1);
        assert_eq!(v["type"], "Normal");
        assert_eq!(v["firstTimestamp"], v["lastTimestamp"]);
    }
}
