//! The store against hand-computed windows: scrapes every second, figures checked to the unit.

use super::*;

fn target(pod: &str) -> TargetRef {
    TargetRef {
        namespace: "prod".into(),
        pod: pod.into(),
    }
}

fn limits() -> Limits {
    Limits {
        retention: Duration::from_secs(60),
        max_points: 1000,
        max_series: 1000,
    }
}

fn sample(name: &str, deployment: &str, class: &str, le: Option<&str>, value: f64) -> Sample {
    let mut labels: Labels = [
        ("namespace", "prod"),
        ("dst_deployment", deployment),
        ("classification", class),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    if let Some(le) = le {
        labels.insert("le".into(), le.into());
    }
    Sample {
        name: name.into(),
        labels,
        value,
    }
}

fn by_deployment(l: &Labels) -> Vec<String> {
    l.get("dst_deployment").cloned().into_iter().collect()
}

/// Scrapes of pod `g1` at 1..=10 s: v2 succeeds 10/s from 10 at 1 s; from 5 s on it also
/// fails, 2 at 5 s then +1/s.
fn scraped() -> Store {
    let mut store = Store::new(limits());
    for i in 1..=10i64 {
        let mut samples = vec![sample(
            REQUESTS,
            "foobar-v2",
            "success",
            None,
            10.0 * i as f64,
        )];
        if i >= 5 {
            samples.push(sample(
                REQUESTS,
                "foobar-v2",
                "failure",
                None,
                (i - 3) as f64,
            ));
        }
        store.ingest(&target("g1"), i * 1000, samples);
    }
    store
}

#[test]
fn a_steady_counter_gives_its_rate_over_the_window() {
    let agg = scraped().aggregate(10_000, Duration::from_secs(5), by_deployment);
    // (5, 10]: 60 → 100 over 4 s, 1 s to the start (< 1.1 s): 40 × 5/4 = 50.
    assert_eq!(agg["foobar-v2"].successes, 50.0);
}

#[test]
fn a_series_that_appears_later_counts_from_zero_at_the_scrape_before() {
    let agg = scraped().aggregate(10_000, Duration::from_secs(10), by_deployment);
    // Failures: 0 at 4 s (inserted), 2 at 5 s … 7 at 10 s; the zero point is the first
    // point, so nothing is extrapolated before it: exactly 7.
    assert_eq!(agg["foobar-v2"].failures, 7.0);
    // Successes: 10 → 100 over 9 s, 1 s to the start but the zero point is 1 s before
    // the first sample: 90 × 10/9 = 100.
    assert!((agg["foobar-v2"].successes - 100.0).abs() < 1e-9);
}

#[test]
fn the_first_scrape_of_a_pod_inserts_no_zero() {
    let mut store = Store::new(limits());
    store.ingest(
        &target("g1"),
        1_000,
        vec![sample(REQUESTS, "d", "success", None, 5.0)],
    );
    store.ingest(
        &target("g1"),
        2_000,
        vec![sample(REQUESTS, "d", "success", None, 6.0)],
    );
    let agg = store.aggregate(2_000, Duration::from_millis(1_500), by_deployment);
    // (0.5, 2]: 5 → 6 over 1 s; start 0.5 s away, zero 5 s before: 1 × 1.5/1.
    assert_eq!(agg["d"].successes, 1.5);
}

#[test]
fn groups_sum_the_series_of_every_gateway_pod() {
    let mut store = Store::new(limits());
    for (pod, rate) in [("g1", 10.0), ("g2", 30.0)] {
        for i in 1..=5i64 {
            let v = rate * i as f64;
            store.ingest(
                &target(pod),
                i * 1000,
                vec![
                    sample(REQUESTS, "foobar-v1", "success", None, v),
                    sample(REQUESTS, "foobar-v2", "success", None, v / 10.0),
                ],
            );
        }
    }
    let agg = store.aggregate(5_000, Duration::from_secs(4), by_deployment);
    // Each: 4 s sampled, spacing 1 s, start 0 s away: exactly 4 × rate.
    assert_eq!(agg["foobar-v1"].successes, 160.0);
    assert_eq!(agg["foobar-v2"].successes, 16.0);
    assert_eq!(agg.len(), 2);
}

#[test]
fn latency_quantiles_come_from_the_windowed_bucket_increases() {
    let mut store = Store::new(limits());
    // Per second: 10 requests, 6 ≤ 5 ms, 9 ≤ 10 ms, 10 ≤ +Inf; plus 1000 old ones ≤ 5 ms
    // from before the window, which must not count.
    for i in 1..=5i64 {
        let n = i as f64;
        store.ingest(
            &target("g1"),
            i * 1000,
            vec![
                sample(REQUESTS, "d", "success", None, 1000.0 + 10.0 * n),
                sample(BUCKETS, "d", "success", Some("5"), 1000.0 + 6.0 * n),
                sample(BUCKETS, "d", "success", Some("10"), 1000.0 + 9.0 * n),
                sample(BUCKETS, "d", "success", Some("+Inf"), 1000.0 + 10.0 * n),
            ],
        );
    }
    let agg = &store.aggregate(5_000, Duration::from_secs(4), by_deployment)["d"];
    assert_eq!(agg.requests(), 40.0);
    // Window increases: 24 ≤ 5, 36 ≤ 10, 40 in all. p50: rank 20 in (0, 5]: 5 × 20/24.
    assert!((agg.latency_ms(0.5).unwrap() - 5.0 * 20.0 / 24.0).abs() < 1e-9);
    // p90: rank 36 is the top of (5, 10]: 10. p99: rank 39.6 in +Inf: the highest bound, 10.
    assert!((agg.latency_ms(0.9).unwrap() - 10.0).abs() < 1e-9);
    assert_eq!(agg.latency_ms(0.99), Some(10.0));
}

#[test]
fn a_window_without_two_points_has_no_group() {
    let store = scraped();
    assert!(
        store
            .aggregate(10_000, Duration::from_millis(500), by_deployment)
            .is_empty()
    );
    // Long after the last scrape: no points in the window.
    assert!(
        store
            .aggregate(30_000, Duration::from_secs(5), by_deployment)
            .is_empty()
    );
}

#[test]
fn a_gone_pod_keeps_counting_until_its_points_age_out() {
    let mut store = scraped();
    store.set_live(&[]);
    store.prune(20_000);
    assert_eq!(
        store.aggregate(10_000, Duration::from_secs(5), by_deployment)["foobar-v2"].successes,
        50.0
    );
    store.prune(75_000);
    assert_eq!(store.series_count(), 0);
    assert!(
        store
            .aggregate(10_000, Duration::from_secs(5), by_deployment)
            .is_empty()
    );
}

#[test]
fn a_counter_reset_after_a_proxy_restart_still_counts_up() {
    let mut store = Store::new(limits());
    for (t, v) in [(1, 100.0), (2, 110.0), (3, 5.0), (4, 15.0)] {
        store.ingest(
            &target("g1"),
            t * 1000,
            vec![sample(REQUESTS, "d", "success", None, v)],
        );
    }
    let agg = store.aggregate(4_000, Duration::from_secs(4), by_deployment);
    // 10 + 5 + 10 = 25 over 3 s sampled, 1 s to the start: 25 × 4/3.
    assert!((agg["d"].successes - 25.0 * 4.0 / 3.0).abs() < 1e-9);
}

#[test]
fn only_live_ready_pods_whose_last_scrape_failed_are_failing() {
    let mut store = scraped();
    store.set_live(&[(target("g1"), true), (target("g2"), false)]);
    store.scrape_failed(&target("g1"), 11_000, "connection refused".into());
    store.scrape_failed(&target("g2"), 11_000, "connection refused".into());
    assert_eq!(
        store.failing(Some("prod")),
        vec![Failing {
            target: target("g1"),
            error: "connection refused".into()
        }]
    );
    assert!(store.failing(Some("other")).is_empty());
    store.ingest(&target("g1"), 12_000, Vec::new());
    assert!(store.failing(None).is_empty());
}

#[test]
fn rings_and_the_series_count_are_bounded() {
    let mut store = Store::new(Limits {
        retention: Duration::from_secs(600),
        max_points: 3,
        max_series: 2,
    });
    for i in 1..=10i64 {
        store.ingest(
            &target("g1"),
            i * 1000,
            vec![
                sample(REQUESTS, "a", "success", None, i as f64),
                sample(REQUESTS, "b", "success", None, i as f64),
                sample(REQUESTS, "c", "success", None, i as f64),
            ],
        );
    }
    assert_eq!(store.series_count(), 2);
    assert_eq!(store.dropped_series(), 10);
    // Only the last 3 points (8, 9, 10 s) are left: a 10 s window sees 2 s of them.
    let agg = store.aggregate(10_000, Duration::from_secs(10), by_deployment);
    assert!(!agg.contains_key("c"));
    // 8 → 10 over 2 s; the start is 8 s away (> 1.1 s) and zero 16 s: +0.5 s: 2 × 2.5/2.
    assert_eq!(agg["a"].successes, 2.5);
}
