//! Component tests of the listener's limits: connection cap, header limits and graceful drain.

#[path = "support/harness.rs"]
mod harness;

use harness::*;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[allow(clippy::unwrap_used)] // Test support: failing loudly is the point.
async fn raw(addr: std::net::SocketAddr, request: &str) -> String {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(request.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn connections_beyond_the_cap_get_a_clear_503() {
    let v1 = backend("v1").await;
    let file = ConfigFile::new(&[service("a"), slice("a", &[v1])].concat());
    let proxy = proxy(&file, &["--max-connections", "1"]).await;
    // The first connection holds the only slot.
    let mut held = TcpStream::connect(proxy.data_addr).await.unwrap();
    held.write_all(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 256];
    let n = held.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    let refused = raw(proxy.data_addr, "GET / HTTP/1.1\r\nHost: a\r\n\r\n").await;
    assert!(refused.starts_with("HTTP/1.1 503"), "{refused}");
    assert!(
        refused.contains("connection limit (1) reached"),
        "{refused}"
    );
    drop(held);
    // The slot frees up once the first connection closes.
    let mut ok = false;
    for _ in 0..50 {
        if raw(
            proxy.data_addr,
            "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
        )
        .await
        .starts_with("HTTP/1.1 200")
        {
            ok = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(ok, "the slot was never released");
    let (_, metrics) = admin_get(&proxy, "/metrics").await;
    assert!(
        metrics.contains("weir_proxy_errors_total{kind=\"connection_limit\"} 1"),
        "{metrics}"
    );
}

#[tokio::test]
async fn too_many_headers_are_refused() {
    let v1 = backend("v1").await;
    let file = ConfigFile::new(&[service("a"), slice("a", &[v1])].concat());
    let proxy = proxy(&file, &["--max-headers", "10"]).await;
    let mut req = String::from("GET / HTTP/1.1\r\nHost: a\r\n");
    for i in 0..20 {
        req.push_str(&format!("x-h{i}: 1\r\n"));
    }
    req.push_str("\r\n");
    let rsp = raw(proxy.data_addr, &req).await;
    assert!(rsp.starts_with("HTTP/1.1 431"), "{rsp}");
}

#[tokio::test]
async fn shutdown_drains_in_flight_requests_and_stops_accepting() {
    let v1 = backend("v1").await;
    let file = ConfigFile::new(&[service("a"), slice("a", &[v1])].concat());
    let proxy = proxy(&file, &[]).await;
    let addr = proxy.data_addr;
    let slow = tokio::spawn(async move { get(&client(), addr, "a", "/slow").await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    proxy.shutdown();
    let done = tokio::time::timeout(Duration::from_secs(5), proxy.wait()).await;
    assert!(done.is_ok(), "drain did not finish");
    assert_eq!(
        slow.await.unwrap(),
        (200, "v1".into()),
        "the in-flight request completed"
    );
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "the listener is closed"
    );
}
