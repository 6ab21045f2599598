//! The proxy's latency histogram read by the operator's TrafficMetrics maths: what a
//! sub-millisecond backend's quantiles come out as, from the proxy's own exposition text
//! through the operator's parser, windowed store and `histogram_quantile`.
//!
//! No sockets and no clock: a real request's latency through a debug build of the proxy is
//! dominated by the unoptimised build (about 0.9 ms at p50 for an instant backend), so the
//! latencies are recorded into the proxy's metrics directly, as its request path does.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;
use weir_operator::metrics_api::exposition;
use weir_operator::metrics_api::store::{BUCKETS, Limits, REQUESTS, Store, TargetRef};
use weir_proxy::metrics::{DstLabels, Metrics, SrcLabels};

/// p50 and p99 in ms, as the TrafficMetrics API computes them, of a backend whose every
/// second of traffic has these latencies (µs), scraped once a second for `secs` seconds.
fn quantiles_of(latencies_us: &[u64], secs: i64) -> (f64, f64) {
    let metrics = Metrics::default();
    let set = metrics.edges.create(DstLabels {
        namespace: "demo".into(),
        service: "foobar".into(),
        backend: "foobar-v2".into(),
        dst_deployment: "foobar-v2".into(),
        dst_pod: "foobar-v2-abc12-0".into(),
    });
    let src = Arc::new(SrcLabels::unknown());
    let mut store = Store::new(Limits {
        retention: Duration::from_secs(600),
        max_points: 1000,
        max_series: 10_000,
    });
    let target = TargetRef {
        namespace: "demo".into(),
        pod: "weir-gateway-0".into(),
    };
    for second in 0..=secs {
        if second > 0 {
            for us in latencies_us {
                set.record(&src, 200, true, Duration::from_micros(*us));
            }
        }
        let samples = exposition::parse(&metrics.render(), |n| n == REQUESTS || n == BUCKETS)
            .expect("the proxy's exposition parses");
        store.ingest(&target, second * 1000, samples);
    }
    let agg = store.aggregate(secs * 1000, Duration::from_secs(secs as u64), |l| {
        l.get("dst_deployment")
            .cloned()
            .into_iter()
            .collect::<Vec<_>>()
    });
    let v2 = &agg["foobar-v2"];
    assert!(
        (v2.requests() - (latencies_us.len() as i64 * secs) as f64).abs() < 1e-6,
        "every request counted: {}",
        v2.requests()
    );
    (
        v2.latency_ms(0.5).expect("p50"),
        v2.latency_ms(0.99).expect("p99"),
    )
}

#[test]
fn a_200_microsecond_backend_reads_well_below_a_millisecond() {
    // 200 µs give or take 50, one request in a hundred at 400 µs.
    let mut latencies: Vec<u64> = (0..99).map(|i| 150 + i % 101).collect();
    latencies.push(400);
    let (p50, p99) = quantiles_of(&latencies, 10);
    println!("200 µs backend: p50 {p50:.3} ms, p99 {p99:.3} ms");
    assert!((0.1..=0.3).contains(&p50), "p50 {p50} ms");
    // The true p99 is 0.25 ms; with 1 ms as the lowest bound it read 0.99 ms.
    assert!(p99 < 0.5, "p99 {p99} ms of a 200 µs backend");
}

#[test]
fn a_slow_tail_still_lands_in_its_millisecond_bucket() {
    // 2 in 100 requests at 45 ms: the p99 is in (40, 50] ms as before the finer buckets.
    let mut latencies: Vec<u64> = vec![300; 98];
    latencies.extend([45_000, 45_000]);
    let (p50, p99) = quantiles_of(&latencies, 10);
    println!("tail at 45 ms: p50 {p50:.3} ms, p99 {p99:.3} ms");
    assert!((0.2..=0.3).contains(&p50), "p50 {p50} ms");
    assert!((40.0..=50.0).contains(&p99), "p99 {p99} ms");
}
