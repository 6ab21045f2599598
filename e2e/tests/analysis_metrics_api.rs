//! The TrafficMetrics API against real traffic: a `weir-proxy` process (static config) in
//! front of demo-app backends with a known error rate and latency, the operator's metrics
//! API in this process behind the local aggregator (client certificate, caBundle), and a
//! real Prometheus scraping the same proxy.
//!
//! Tolerances: success rates within 4.5 binomial standard deviations of the injected rate;
//! a p99 inside the histogram bucket the injected latency falls in; windowed counts within
//! 10% (+2) of the proxy's own counters (the windowed increase extrapolates up to one scrape
//! interval past the last scrape, as PromQL's does); Prometheus and Weir within 15% on
//! counts and 5 points on success rate (they scrape at different moments).

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/analysis_bench.rs"]
mod analysis_bench;
#[path = "support/analysis.rs"]
mod analysis_support;

use analysis_bench::*;
use analysis_support::*;
use anyhow::{Context as _, Result, bail};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use weir_operator::analysis::{MetricsSource, PrometheusSource, TrafficSample};

fn success_rate(s: &TrafficSample) -> f64 {
    s.success_rate().unwrap_or(f64::NAN)
}

/// `|observed - p| ≤ 4.5 σ` of a binomial proportion over `n` trials.
fn within_binomial(observed: f64, p: f64, n: f64) -> bool {
    (observed - p).abs() <= 4.5 * (p * (1.0 - p) / n).sqrt() + 1e-9
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_reports_the_injected_error_rate_and_latency() -> Result<()> {
    let bench = Bench::start(0.2, 45).await?;
    let report = bench.load(200.0, 6).await;
    println!("load: {:?} {:?}", report.by_status, report.errors);
    anyhow::ensure!(
        report.errors.is_empty(),
        "client errors: {:?}",
        report.errors
    );
    // Two scrapes after the last request, so the last counts are in.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let doc = get_raw(
        &bench.client,
        "/apis/metrics.smi-spec.io/v1alpha1/namespaces/default/deployments/foobar-v2?t=2m",
    )
    .await?;
    println!("{}", serde_json::to_string_pretty(&doc)?);
    assert_eq!(doc["kind"], "TrafficMetrics");
    assert_eq!(doc["window"], "2m");
    let (ok, failed) = (
        metric(&doc, "success_count").context("success_count")?,
        metric(&doc, "failure_count").context("failure_count")?,
    );
    let (proxy_ok, proxy_failed) = proxy_counters(bench.admin(), "foobar-v2").await?;
    println!("API {ok}/{failed}, proxy counters {proxy_ok}/{proxy_failed}");
    for (api, counter) in [(ok, proxy_ok), (failed, proxy_failed)] {
        assert!(
            (api - counter).abs() <= counter * 0.10 + 2.0,
            "windowed {api} vs the proxy's counter {counter}"
        );
    }
    let n = ok + failed;
    let rate = failed / n;
    assert!(
        within_binomial(rate, 0.2, n),
        "error rate {rate:.3} over {n} requests, injected 0.2"
    );
    let p99 = metric(&doc, "p99_response_latency").context("p99")? * 1000.0;
    let p50 = metric(&doc, "p50_response_latency").context("p50")? * 1000.0;
    // 45 ms plus the proxy's overhead falls in the (40, 50] ms bucket; a loaded machine may
    // push the tail one bucket up.
    assert!(
        (40.0..=100.0).contains(&p99),
        "p99 {p99} ms, injected 45 ms"
    );
    assert!((40.0..=50.0).contains(&p50), "p50 {p50} ms, injected 45 ms");
    let v1 = get_raw(
        &bench.client,
        "/apis/metrics.smi-spec.io/v1alpha1/namespaces/default/deployments/foobar-v1?t=2m",
    )
    .await?;
    assert_eq!(metric(&v1, "failure_count"), Some(0.0));
    let v1_p50 = metric(&v1, "p50_response_latency").context("v1 p50")? * 1000.0;
    assert!(v1_p50 < 40.0, "v1 (no injected latency) p50 {v1_p50} ms");

    // The analysis library reads the same through the Kubernetes API.
    let source = traffic_metrics_source(bench.server.kubeconfig_path()).await?;
    let sample = source
        .sample(&bench.query("foobar-v2", Duration::from_secs(120)))
        .await?
        .context("an empty result")?;
    assert!((sample.requests() - n).abs() <= n * 0.05 + 2.0);
    assert!(within_binomial(1.0 - success_rate(&sample) / 100.0, 0.2, n));
    bench.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_reads_the_same_figures_as_the_traffic_metrics_api() -> Result<()> {
    let bench = Bench::start(0.2, 45).await?;
    let mut prometheus = Prometheus::start(
        SocketAddr::new(IpAddr::V4(host(bench.block, 50)), 9090),
        &[bench.admin()],
        "500ms",
    )
    .await?;
    prometheus.wait_scraping(1).await?;
    let report = bench.load(200.0, 8).await;
    anyhow::ensure!(
        report.errors.is_empty(),
        "client errors: {:?}",
        report.errors
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    let window = Duration::from_secs(30);
    let query = bench.query("foobar-v2", window);
    let prom = PrometheusSource::new(&prometheus.url(), Duration::from_secs(5))?;
    let ours = traffic_metrics_source(bench.server.kubeconfig_path()).await?;
    let p = prom
        .sample(&query)
        .await?
        .context("Prometheus: an empty result")?;
    let w = ours
        .sample(&query)
        .await?
        .context("TrafficMetrics: an empty result")?;
    println!("Prometheus {p:?}\nTrafficMetrics {w:?}");
    assert!(
        (p.requests() - w.requests()).abs() <= 0.15 * w.requests(),
        "requests: Prometheus {} vs TrafficMetrics {}",
        p.requests(),
        w.requests()
    );
    assert!(
        (success_rate(&p) - success_rate(&w)).abs() <= 5.0,
        "success rate: Prometheus {} vs TrafficMetrics {}",
        success_rate(&p),
        success_rate(&w)
    );
    // The median sits in the injected latency's bucket for both; the tail depends on the
    // machine's load, and both must see the same tail within half of the larger.
    let (pa, wa) = (
        p.p50_ms.context("Prometheus p50")?,
        w.p50_ms.context("our p50")?,
    );
    assert!(
        (40.0..=50.0).contains(&pa) && (40.0..=50.0).contains(&wa),
        "p50: Prometheus {pa} ms, TrafficMetrics {wa} ms; injected 45 ms"
    );
    let (pb, wb) = (
        p.p99_ms.context("Prometheus p99")?,
        w.p99_ms.context("our p99")?,
    );
    assert!(
        pb >= 40.0 && wb >= 40.0 && (pb - wb).abs() <= 0.5 * pb.max(wb),
        "p99: Prometheus {pb} ms, TrafficMetrics {wb} ms"
    );

    // Prometheus stopped: the source errors (never an empty pass), and recovers with it.
    prometheus.stop().await?;
    let down = prom.sample(&bench.query("foobar-v2", window)).await;
    println!("Prometheus down: {down:?}");
    assert!(down.is_err(), "a stopped Prometheus answered {down:?}");
    prometheus.restart().await?;
    let back = prom.sample(&bench.query("foobar-v2", window)).await;
    assert!(matches!(back, Ok(Some(_))), "after the restart: {back:?}");
    bench.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_without_the_aggregators_certificate_get_401() -> Result<()> {
    let bench = Bench::start(0.0, 0).await?;
    let addr = bench.metrics_api.addr;
    let path = "/apis/metrics.smi-spec.io/v1alpha1/namespaces/default/deployments/foobar-v2";
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let no_verify = |client_cert: Option<(String, String)>| {
        let b = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .unwrap()
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyServer(provider.clone())));
        match client_cert {
            None => b.with_no_client_auth(),
            Some((cert, key)) => {
                use rustls::pki_types::pem::PemObject;
                let chain = rustls::pki_types::CertificateDer::pem_slice_iter(cert.as_bytes())
                    .collect::<Result<Vec<_>, _>>()
                    .unwrap();
                let key = rustls::pki_types::PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap();
                b.with_client_auth_cert(chain, key).unwrap()
            }
        }
    };
    let (status, body) = https_get(addr, path, no_verify(None)).await?;
    println!("no certificate: {status} {body}");
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("\"reason\":\"Unauthorized\""), "{body}");
    let foreign = weir_operator::metrics_api::tls::Authority::new("not-the-front-proxy-ca")?;
    let pair = foreign.issue("front-proxy-client", &[], true)?;
    let (status, body) = https_get(addr, path, no_verify(Some((pair.cert, pair.key)))).await?;
    println!("foreign certificate: {status} {body}");
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("request-header CA"), "{body}");
    // Through the aggregator, with its front-proxy certificate, the same path answers.
    let doc = get_raw(&bench.client, path).await?;
    assert_eq!(doc["kind"], "TrafficMetrics");
    // And the aggregator refuses a backend its caBundle does not vouch for.
    let other = weir_operator::metrics_api::tls::Authority::new("some-other-ca")?;
    register_apiservice(&bench.client, other.pem()).await?;
    let once = no_retry_client(bench.server.kubeconfig_path()).await?;
    let refused = get_raw(&once, path).await;
    println!("wrong caBundle: {refused:?}");
    assert!(
        format!("{refused:?}").contains("503"),
        "a backend outside the caBundle was trusted: {refused:?}"
    );
    bench.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_gateway_is_a_source_error_until_it_returns() -> Result<()> {
    let mut bench = Bench::start(0.0, 0).await?;
    bench.load(100.0, 2).await;
    let source = traffic_metrics_source(bench.server.kubeconfig_path()).await?;
    let window = Duration::from_secs(60);
    let up = source.sample(&bench.query("foobar-v2", window)).await;
    assert!(matches!(up, Ok(Some(_))), "with the gateway up: {up:?}");
    bench.proxy.start_kill()?;
    bench.proxy.wait().await?;
    let down = poll(20, "a source error while the gateway is down", || async {
        source.sample(&bench.query("foobar-v2", window)).await.err()
    })
    .await?;
    println!("gateway down: {down}");
    assert!(
        down.to_string()
            .contains("weir-gateway-test could not be scraped"),
        "{down}"
    );
    bench.proxy = spawn_proxy(&bench.proxy_args)?;
    bench.wait_scraped().await?;
    bench.load(100.0, 2).await;
    let back = source.sample(&bench.query("foobar-v2", window)).await;
    assert!(
        matches!(back, Ok(Some(_))),
        "with the gateway back: {back:?}"
    );
    bench.shutdown().await;
    Ok(())
}

async fn poll<T, F, Fut>(secs: u64, what: &str, mut f: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f().await {
            return Ok(v);
        }
        if tokio::time::Instant::now() > deadline {
            bail!("timed out after {secs}s waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
