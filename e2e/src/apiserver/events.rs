//! Conversion between core/v1 Events (the stored shape) and events.k8s.io/v1 Events.

use serde_json::{Map, Value, json};

fn copy(dst: &mut Map<String, Value>, dk: &str, src: &Value, sk: &str) {
    if let Some(v) = src.get(sk).filter(|v| !v.is_null()) {
        dst.insert(dk.into(), v.clone());
    }
}

/// core/v1 Event → events.k8s.io/v1 Event.
pub fn to_events_v1(core: &Value) -> Value {
    let mut m = Map::new();
    m.insert("apiVersion".into(), json!("events.k8s.io/v1"));
    m.insert("kind".into(), json!("Event"));
    copy(&mut m, "metadata", core, "metadata");
    copy(&mut m, "eventTime", core, "eventTime");
    copy(&mut m, "series", core, "series");
    copy(&mut m, "action", core, "action");
    copy(&mut m, "reason", core, "reason");
    copy(&mut m, "regarding", core, "involvedObject");
    copy(&mut m, "related", core, "related");
    copy(&mut m, "note", core, "message");
    copy(&mut m, "type", core, "type");
    copy(&mut m, "deprecatedSource", core, "source");
    copy(&mut m, "deprecatedFirstTimestamp", core, "firstTimestamp");
    copy(&mut m, "deprecatedLastTimestamp", core, "lastTimestamp");
    copy(&mut m, "deprecatedCount", core, "count");
    copy(&mut m, "reportingInstance", core, "reportingInstance");
    match core.get("reportingComponent").and_then(Value::as_str) {
        Some(c) if !c.is_empty() => {
            m.insert("reportingController".into(), json!(c));
        }
        _ => copy(&mut m, "reportingController", &core["source"], "component"),
    }
    if !m.contains_key("eventTime") {
        m.insert("eventTime".into(), Value::Null);
    }
    Value::Object(m)
}

/// events.k8s.io/v1 Event → core/v1 Event.
pub fn to_core(ev: &Value) -> Value {
    let mut m = Map::new();
    m.insert("apiVersion".into(), json!("v1"));
    m.insert("kind".into(), json!("Event"));
    copy(&mut m, "metadata", ev, "metadata");
    copy(&mut m, "eventTime", ev, "eventTime");
    copy(&mut m, "series", ev, "series");
    copy(&mut m, "action", ev, "action");
    copy(&mut m, "reason", ev, "reason");
    copy(&mut m, "involvedObject", ev, "regarding");
    copy(&mut m, "related", ev, "related");
    copy(&mut m, "message", ev, "note");
    copy(&mut m, "type", ev, "type");
    copy(&mut m, "source", ev, "deprecatedSource");
    copy(&mut m, "firstTimestamp", ev, "deprecatedFirstTimestamp");
    copy(&mut m, "lastTimestamp", ev, "deprecatedLastTimestamp");
    copy(&mut m, "count", ev, "deprecatedCount");
    copy(&mut m, "reportingComponent", ev, "reportingController");
    copy(&mut m, "reportingInstance", ev, "reportingInstance");
    if !m.contains_key("source")
        && let Some(c) = ev.get("reportingController").and_then(Value::as_str)
    {
        m.insert("source".into(), json!({"component": c}));
    }
    Value::Object(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_round_trip_between_shapes() {
        let v1 = json!({"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": "e", "namespace": "ns"},
            "eventTime": "2026-01-01T00:00:00.000000Z", "reason": "Promoted", "note": "weight 10",
            "type": "Normal", "action": "Step", "reportingController": "weir", "reportingInstance": "weir-0",
            "regarding": {"kind": "Rollout", "name": "foo", "namespace": "ns", "uid": "u"},
            "series": {"count": 2, "lastObservedTime": "2026-01-01T00:01:00.000000Z"}});
        let core = to_core(&v1);
        assert_eq!(core["message"], "weight 10");
        assert_eq!(core["involvedObject"]["name"], "foo");
        assert_eq!(core["source"]["component"], "weir");
        assert_eq!(core["reportingComponent"], "weir");
        let back = to_events_v1(&core);
        assert_eq!(back["note"], v1["note"]);
        assert_eq!(back["regarding"], v1["regarding"]);
        assert_eq!(back["reportingController"], "weir");
        assert_eq!(back["series"], v1["series"]);
    }

    #[test]
    fn legacy_core_event_shows_source_as_reporting_controller() {
        let core = json!({"metadata": {"name": "e"}, "message": "m", "source": {"component": "kubelet"},
            "firstTimestamp": "2026-01-01T00:00:00Z", "count": 3});
        let v1 = to_events_v1(&core);
        assert_eq!(v1["reportingController"], "kubelet");
        assert_eq!(v1["deprecatedCount"], 3);
        assert_eq!(v1["deprecatedFirstTimestamp"], "2026-01-01T00:00:00Z");
    }
}
