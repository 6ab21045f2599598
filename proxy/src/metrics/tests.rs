//! Tests of the exposition: edge series with every label, cumulative buckets, counters.

use super::*;
use std::time::Duration;

fn dst(pod: &str) -> DstLabels {
    DstLabels {
        namespace: "prod".into(),
        service: "foobar".into(),
        backend: "foobar-v2".into(),
        dst_deployment: "foobar-v2".into(),
        dst_pod: Arc::from(pod),
    }
}

#[test]
fn an_edge_renders_with_every_label_and_cumulative_buckets() {
    let m = Metrics::default();
    let set = m.edges.create(dst("foobar-v2-x"));
    let src = Arc::new(SrcLabels {
        namespace: "prod".into(),
        service_account: "loadgen".into(),
        pod: "client-1".into(),
    });
    set.record(&src, 200, true, Duration::from_micros(1500));
    set.record(&src, 200, true, Duration::from_millis(7));
    set.record(&src, 200, true, Duration::from_millis(2));
    set.record(&src, 503, false, Duration::from_secs(70));
    let text = m.render();
    let l = "namespace=\"prod\",service=\"foobar\",backend=\"foobar-v2\",dst_deployment=\"foobar-v2\",dst_pod=\"foobar-v2-x\",src_namespace=\"prod\",src_service_account=\"loadgen\",src_pod=\"client-1\"";
    let ok = format!("{l},status_code=\"200\",classification=\"success\"");
    for (line, why) in [
        (format!("weir_requests_total{{{ok}}} 3"), "count"),
        (
            format!("weir_response_latency_ms_bucket{{{ok},le=\"1\"}} 0"),
            "below 1 ms",
        ),
        (
            format!("weir_response_latency_ms_bucket{{{ok},le=\"2\"}} 2"),
            "2 ms is in le=2",
        ),
        (
            format!("weir_response_latency_ms_bucket{{{ok},le=\"10\"}} 3"),
            "cumulative",
        ),
        (
            format!("weir_response_latency_ms_bucket{{{ok},le=\"+Inf\"}} 3"),
            "+Inf",
        ),
        (format!("weir_response_latency_ms_count{{{ok}}} 3"), "count"),
        (
            format!("weir_response_latency_ms_sum{{{ok}}} 10.5"),
            "sum in ms",
        ),
        (
            format!(
                "weir_response_latency_ms_bucket{{{l},status_code=\"503\",classification=\"failure\",le=\"50000\"}} 0"
            ),
            "beyond the largest bucket",
        ),
        (
            format!(
                "weir_response_latency_ms_bucket{{{l},status_code=\"503\",classification=\"failure\",le=\"+Inf\"}} 1"
            ),
            "only in +Inf",
        ),
        ("# TYPE weir_requests_total counter".to_string(), "type"),
        (
            "# TYPE weir_response_latency_ms histogram".to_string(),
            "type",
        ),
    ] {
        assert!(text.contains(&line), "{why}: {line}\n{text}");
    }
}

#[test]
fn a_dropped_edge_set_leaves_the_exposition() {
    let m = Metrics::default();
    let set = m.edges.create(dst("gone"));
    set.record(
        &Arc::new(SrcLabels::unknown()),
        200,
        true,
        Duration::from_millis(1),
    );
    assert!(m.render().contains("dst_pod=\"gone\""));
    drop(set);
    assert!(!m.render().contains("dst_pod=\"gone\""));
}

#[test]
fn label_values_are_escaped() {
    let m = Metrics::default();
    let set = m.edges.create(dst("a\"b\\c\nd"));
    set.record(
        &Arc::new(SrcLabels::unknown()),
        200,
        true,
        Duration::from_millis(1),
    );
    let text = m.render();
    assert!(text.contains("dst_pod=\"a\\\"b\\\\c\\nd\""), "{text}");
}

#[test]
fn backend_counters_are_forgotten_with_their_backend() {
    let m = Metrics::default();
    let labels = BackendLabels {
        namespace: "prod".into(),
        service: "web".into(),
        backend: "web-v1".into(),
    };
    m.backend_counters(&labels).retries.inc();
    assert!(
        m.render().contains(
            "weir_retries_total{namespace=\"prod\",service=\"web\",backend=\"web-v1\"} 1"
        )
    );
    m.forget_backend(&labels);
    assert!(!m.render().contains("backend=\"web-v1\""));
}

#[test]
fn sub_millisecond_latencies_get_their_own_buckets() {
    let m = Metrics::default();
    let set = m.edges.create(dst("fast"));
    let src = Arc::new(SrcLabels::unknown());
    for micros in [40, 50, 150, 200, 200, 450, 999] {
        set.record(&src, 200, true, Duration::from_micros(micros));
    }
    let text = m.render();
    for (le, count) in [
        ("0.05", 2),
        ("0.1", 2),
        ("0.2", 5),
        ("0.3", 5),
        ("0.5", 6),
        ("1", 7),
    ] {
        let line = format!(
            "dst_pod=\"fast\",src_namespace=\"unknown\",src_service_account=\"unknown\",src_pod=\"unknown\",status_code=\"200\",classification=\"success\",le=\"{le}\"}} {count}"
        );
        assert!(text.contains(&line), "le={le}: {count}\n{text}");
    }
}

#[test]
fn bucket_bounds_increase_from_50_microseconds_to_50_seconds() {
    assert_eq!(LATENCY_BUCKETS_US.first(), Some(&50));
    assert_eq!(LATENCY_BUCKETS_US.last(), Some(&50_000_000));
    assert!(LATENCY_BUCKETS_US.windows(2).all(|w| w[0] < w[1]));
}
