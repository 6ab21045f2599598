use super::*;

fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn version_comes_from_tag_unless_env_overrides() {
    let cfg = DemoConfig::from_image_env("weir-demo:v2", &env(&[])).unwrap();
    assert_eq!(cfg.version, "v2");
    let cfg = DemoConfig::from_image_env("weir-demo:v2", &env(&[("VERSION", "v9")])).unwrap();
    assert_eq!(cfg.version, "v9");
    assert_eq!(image_tag("registry:5000/weir-demo"), "latest");
    assert_eq!(image_tag("registry:5000/weir-demo:v3@sha256:abc"), "v3");
}

#[test]
fn error_rate_and_latency_are_read_and_bounded() {
    let cfg = DemoConfig::from_image_env(
        "weir-demo:v1",
        &env(&[
            ("ERROR_RATE", "0.2"),
            ("LATENCY_MS", "50"),
            ("LATENCY_JITTER_MS", "10"),
        ]),
    )
    .unwrap();
    assert_eq!(cfg.error_rate, 0.2);
    assert_eq!(cfg.latency, Duration::from_millis(50));
    assert_eq!(cfg.delay_for("/", 0.5), Duration::from_millis(55));
    assert_eq!(cfg.delay_for("/healthz", 0.5), Duration::ZERO);
    assert!(DemoConfig::from_image_env("x:1", &env(&[("ERROR_RATE", "1.5")])).is_err());
    assert!(DemoConfig::from_image_env("x:1", &env(&[("LATENCY_MS", "abc")])).is_err());
}

#[test]
fn errors_follow_the_roll_and_healthz_never_fails() {
    let cfg = DemoConfig {
        error_rate: 0.25,
        ..DemoConfig::default()
    };
    assert_eq!(cfg.status_for("/", 0.1), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(cfg.status_for("/", 0.3), StatusCode::OK);
    assert_eq!(cfg.status_for("/healthz", 0.1), StatusCode::OK);
}

#[tokio::test]
async fn serves_version_pod_and_peer_over_real_tcp() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let cfg = DemoConfig {
        version: "v7".into(),
        pod_name: "web-1".into(),
        ..DemoConfig::default()
    };
    let stop = CancellationToken::new();
    let server = tokio::spawn(serve(listener, cfg, stop.clone()));
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let local = stream.local_addr().unwrap();
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    stream
        .write_all(b"GET /x HTTP/1.1\r\nHost: foobar\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut out = String::new();
    stream.read_to_string(&mut out).await.unwrap();
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    let body: serde_json::Value =
        serde_json::from_str(out.split("\r\n\r\n").nth(1).unwrap()).unwrap();
    assert_eq!(body["version"], "v7");
    assert_eq!(body["pod"], "web-1");
    assert_eq!(body["host"], "foobar");
    assert_eq!(body["peer"], local.to_string());
    stop.cancel();
    server.await.unwrap();
}
