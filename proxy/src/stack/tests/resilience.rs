//! TrafficPolicy behaviour on the paused clock: timeouts, retries and their budget, the
//! circuit breaker, fault injection and load balancing.

use super::*;
use tokio::time::Instant;

const A: &str = "10.0.0.1:8080";
const B: &str = "10.0.0.2:8080";
const C: &str = "10.0.0.3:8080";

/// The stack over `endpoints` with `policy` (the spec of a TrafficPolicy for `web`).
fn with_policy(
    addrs: &[&str],
    policy: Value,
    endpoints: &Endpoints,
) -> (
    impl Service<
        Request<()>,
        Response = Response<ResponseBody>,
        Error = std::convert::Infallible,
        Future: Send,
    > + Clone
    + Send
    + 'static,
    Arc<Metrics>,
) {
    let (snaps, metrics, _ix) = snapshot_with(addrs, &[mk_policy("prod", "p", "web", policy)]);
    let svc = stack(
        snaps,
        metrics.clone(),
        endpoints.clone(),
        DefaultPolicy::Allow,
    );
    (svc, metrics)
}

fn counter(metrics: &Metrics, line_start: &str) -> u64 {
    let text = metrics.render();
    text.lines()
        .find(|l| l.starts_with(line_start))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

const WEB: &str = "namespace=\"prod\",service=\"web\",backend=\"web\"";

#[tokio::test(start_paused = true)]
async fn a_timeout_answers_504_at_the_configured_time() {
    let endpoints = Endpoints::default();
    endpoints.set(A, Behaviour::Stall);
    let (svc, metrics) = with_policy(&[A], json!({"timeout": "2s"}), &endpoints);
    let start = Instant::now();
    let rsp = svc.oneshot(get("/")).await.unwrap();
    let elapsed = start.elapsed();
    assert_eq!(rsp.status(), StatusCode::GATEWAY_TIMEOUT);
    assert!(body(rsp).await.contains("within 2s (timeout)"));
    println!("504 after {elapsed:?} (timeout 2s)");
    assert!(
        elapsed >= Duration::from_secs(2) && elapsed <= Duration::from_millis(2200),
        "{elapsed:?}"
    );
    assert_eq!(
        counter(
            &metrics,
            &format!("weir_timeouts_total{{{WEB},kind=\"timeout\"}}")
        ),
        1
    );
}

#[tokio::test(start_paused = true)]
async fn without_a_policy_the_default_timeout_applies() {
    let endpoints = Endpoints::default();
    endpoints.set(A, Behaviour::Stall);
    let (snaps, metrics, _ix) = snapshot_with(&[A], &[]);
    let svc = stack(snaps, metrics, endpoints, DefaultPolicy::Allow);
    let start = Instant::now();
    let rsp = svc.oneshot(get("/")).await.unwrap();
    assert_eq!(rsp.status(), StatusCode::GATEWAY_TIMEOUT);
    assert_eq!(start.elapsed(), StackConfig::default().default_timeout);
}

#[tokio::test(start_paused = true)]
async fn a_retry_hides_one_failed_endpoint() {
    for failure in [Behaviour::Status(503), Behaviour::Refuse] {
        let endpoints = Endpoints::default();
        endpoints.set(A, failure);
        let policy = json!({"retries": {"attempts": 1, "on": ["5xx", "connect-failure"],
            "budget": {"ratio": 1.0, "minPerSecond": 100}}});
        let (svc, metrics) = with_policy(&[A, B], policy, &endpoints);
        for _ in 0..200 {
            let rsp = svc.clone().oneshot(get("/")).await.unwrap();
            assert_eq!(rsp.status(), 200, "{failure:?}");
        }
        let failed = endpoints.calls(A);
        assert!(failed > 0, "the failing endpoint was never tried");
        assert_eq!(
            counter(&metrics, &format!("weir_retries_total{{{WEB}}}")),
            u64::from(failed),
            "one retry per failure"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn without_retries_the_failure_reaches_the_client() {
    let endpoints = Endpoints::default();
    endpoints.set(A, Behaviour::Status(503));
    let (svc, _) = with_policy(&[A], json!({}), &endpoints);
    assert_eq!(svc.oneshot(get("/")).await.unwrap().status(), 503);
}

#[tokio::test(start_paused = true)]
async fn a_budget_stops_a_retry_storm() {
    let endpoints = Endpoints::default();
    for a in [A, B] {
        endpoints.set(a, Behaviour::Status(503));
    }
    // Up to 3 retries each, but retries may add only 20% plus 1 per second (over 10 s).
    let policy = json!({"retries": {"attempts": 3, "on": ["5xx"],
        "budget": {"ratio": 0.2, "minPerSecond": 1, "ttl": "10s"}}});
    let (svc, metrics) = with_policy(&[A, B], policy, &endpoints);
    let requests = 1000u32;
    for _ in 0..requests {
        assert_eq!(svc.clone().oneshot(get("/")).await.unwrap().status(), 503);
    }
    let attempts = endpoints.total_calls();
    let retries = counter(&metrics, &format!("weir_retries_total{{{WEB}}}"));
    let refused = counter(
        &metrics,
        &format!("weir_retry_budget_exhausted_total{{{WEB}}}"),
    );
    println!(
        "{requests} requests: {attempts} attempts, {retries} retries, {refused} refused by the budget"
    );
    assert_eq!(u64::from(attempts - requests), retries);
    // Without the budget: 4 attempts each. With it: 20% of the requests, plus 1/s for 10 s.
    assert!(
        attempts <= requests + requests / 5 + 10,
        "{attempts} attempts"
    );
    assert!(retries >= u64::from(requests / 5), "{retries} retries");
    assert!(refused > 0);
}

#[tokio::test(start_paused = true)]
async fn a_per_try_timeout_moves_on_to_another_endpoint() {
    let endpoints = Endpoints::default();
    endpoints.set(A, Behaviour::Stall);
    let policy = json!({"timeout": "5s", "perTryTimeout": "100ms",
        "retries": {"attempts": 2, "on": ["gateway-error"]}});
    let (svc, metrics) = with_policy(&[A, B], policy, &endpoints);
    for _ in 0..50 {
        let start = Instant::now();
        let rsp = svc.clone().oneshot(get("/")).await.unwrap();
        assert_eq!(rsp.status(), 200);
        assert!(start.elapsed() <= Duration::from_millis(100));
    }
    let cut = counter(
        &metrics,
        &format!("weir_timeouts_total{{{WEB},kind=\"per_try_timeout\"}}"),
    );
    assert_eq!(cut, u64::from(endpoints.calls(A)));
}

#[tokio::test(start_paused = true)]
async fn the_breaker_ejects_a_failing_endpoint_and_readmits_it_after_it_heals() {
    let endpoints = Endpoints::default();
    endpoints.set(A, Behaviour::Status(500));
    let policy = json!({"loadBalancer": "round-robin",
        "circuitBreaker": {"consecutiveFailures": 3, "baseEjectionTime": "10s", "maxEjectionPercent": 50}});
    let (svc, metrics) = with_policy(&[A, B], policy, &endpoints);
    // Round-robin: A fails on every other request until its third failure ejects it.
    for _ in 0..6 {
        svc.clone().oneshot(get("/")).await.unwrap();
    }
    assert_eq!(endpoints.calls(A), 3);
    for _ in 0..20 {
        assert_eq!(svc.clone().oneshot(get("/")).await.unwrap().status(), 200);
    }
    assert_eq!(endpoints.calls(A), 3, "no traffic while ejected");
    // Still failing when the ejection ends: the probe fails, and the ejection doubles.
    tokio::time::advance(Duration::from_secs(10)).await;
    for _ in 0..4 {
        svc.clone().oneshot(get("/")).await.unwrap();
    }
    assert_eq!(endpoints.calls(A), 4, "one probe");
    tokio::time::advance(Duration::from_secs(10)).await;
    for _ in 0..4 {
        svc.clone().oneshot(get("/")).await.unwrap();
    }
    assert_eq!(endpoints.calls(A), 4, "ejected for 20 s this time");
    // Healed: the next probe readmits it and it takes its share again.
    endpoints.set(A, Behaviour::Status(200));
    tokio::time::advance(Duration::from_secs(10)).await;
    for _ in 0..10 {
        assert_eq!(svc.clone().oneshot(get("/")).await.unwrap().status(), 200);
    }
    assert!(
        endpoints.calls(A) >= 4 + 4,
        "readmitted: {}",
        endpoints.calls(A)
    );
    let text = metrics.render();
    assert!(
        text.contains(
            "weir_endpoint_ejections_total{endpoint=\"10.0.0.1:8080\",dst_pod=\"web-abc12-0\"} 2"
        ),
        "{text}"
    );
    assert!(
        text.contains(
            "weir_endpoint_readmissions_total{endpoint=\"10.0.0.1:8080\",dst_pod=\"web-abc12-0\"} 1"
        ),
        "{text}"
    );
}

#[tokio::test(start_paused = true)]
async fn max_ejection_percent_keeps_a_floor_of_endpoints() {
    let endpoints = Endpoints::default();
    for a in [A, B] {
        endpoints.set(a, Behaviour::Status(500));
    }
    let policy = json!({"loadBalancer": "round-robin",
        "circuitBreaker": {"consecutiveFailures": 1, "maxEjectionPercent": 50}});
    let (svc, _) = with_policy(&[A, B], policy, &endpoints);
    for _ in 0..40 {
        svc.clone().oneshot(get("/")).await.unwrap();
    }
    // One of the two is ejected; the other keeps taking traffic (and failing).
    let (a, b) = (endpoints.calls(A), endpoints.calls(B));
    assert!(a.min(b) == 1 && a.max(b) == 39, "A {a}, B {b}");
}

#[tokio::test(start_paused = true)]
async fn fault_injection_rates_are_within_two_points_over_5000_requests() {
    let endpoints = Endpoints::default();
    let policy = json!({"faultInjection": {
        "delay": {"percent": 20, "fixed": "50ms"},
        "abort": {"percent": 10, "httpStatus": 503}}});
    let (svc, metrics) = with_policy(&[A], policy, &endpoints);
    let (mut delayed, mut aborted) = (0u32, 0u32);
    let n = 5000;
    for _ in 0..n {
        let start = Instant::now();
        let rsp = svc.clone().oneshot(get("/")).await.unwrap();
        delayed += u32::from(start.elapsed() >= Duration::from_millis(50));
        if rsp.headers().contains_key("x-weir-fault") {
            assert_eq!(rsp.status(), 503);
            aborted += 1;
        }
    }
    let pct = |k: u32| 100.0 * f64::from(k) / f64::from(n);
    println!(
        "delayed {:.2}% (want 20), aborted {:.2}% (want 10)",
        pct(delayed),
        pct(aborted)
    );
    assert!(
        (pct(delayed) - 20.0).abs() <= 2.0,
        "delayed {}",
        pct(delayed)
    );
    assert!(
        (pct(aborted) - 10.0).abs() <= 2.0,
        "aborted {}",
        pct(aborted)
    );
    assert_eq!(
        endpoints.total_calls(),
        n - aborted,
        "aborted requests never reach the endpoint"
    );
    assert_eq!(
        counter(
            &metrics,
            &format!("weir_faults_injected_total{{{WEB},kind=\"abort\"}}")
        ),
        u64::from(aborted)
    );
    assert_eq!(
        counter(
            &metrics,
            &format!("weir_faults_injected_total{{{WEB},kind=\"delay\"}}")
        ),
        u64::from(delayed)
    );
}

/// Share of traffic the slow endpoint A gets when 8 clients send 250 requests each.
async fn slow_share(strategy: &str) -> f64 {
    let endpoints = Endpoints::default();
    endpoints.set(A, Behaviour::Slow(Duration::from_millis(50)));
    endpoints.set(B, Behaviour::Slow(Duration::from_millis(1)));
    endpoints.set(C, Behaviour::Slow(Duration::from_millis(1)));
    let (svc, _) = with_policy(&[A, B, C], json!({"loadBalancer": strategy}), &endpoints);
    let mut clients = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let svc = svc.clone();
        clients.spawn(async move {
            for _ in 0..250 {
                assert_eq!(svc.clone().oneshot(get("/")).await.unwrap().status(), 200);
            }
        });
    }
    while let Some(r) = clients.join_next().await {
        r.unwrap();
    }
    f64::from(endpoints.calls(A)) / f64::from(endpoints.total_calls())
}

#[tokio::test(start_paused = true)]
async fn a_slow_endpoint_gets_less_traffic_under_p2c_ewma() {
    let ewma = slow_share("p2c-ewma").await;
    let rr = slow_share("round-robin").await;
    let random = slow_share("random").await;
    println!("slow endpoint's share: p2c-ewma {ewma:.3}, round-robin {rr:.3}, random {random:.3}");
    assert!(ewma < 0.10, "p2c-ewma sent {ewma:.3} to the slow endpoint");
    assert!((rr - 1.0 / 3.0).abs() < 0.02, "round-robin {rr:.3}");
    assert!((random - 1.0 / 3.0).abs() < 0.06, "random {random:.3}");
}
