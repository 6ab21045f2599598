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
    let file = ConfigFile::new(&[service("a"), slice("a", &[&v1])].concat());
    let proxy = proxy(&file, &["--max-connections", "1", ALLOW[0], ALLOW[1]]).await;
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
    eventually(5, "the slot released", || async {
        let rsp = raw(
            proxy.data_addr,
            "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
        )
        .await;
        if rsp.starts_with("HTTP/1.1 200") {
            Ok(())
        } else {
            Err(rsp)
        }
    })
    .await;
    let (_, metrics) = admin_get(&proxy, "/metrics").await;
    assert!(
        metrics.contains("weir_proxy_errors_total{kind=\"connection_limit\"} 1"),
        "{metrics}"
    );
}

#[tokio::test]
async fn too_many_headers_are_refused() {
    let v1 = backend("v1").await;
    let file = ConfigFile::new(&[service("a"), slice("a", &[&v1])].concat());
    let proxy = proxy(&file, &["--max-headers", "10", ALLOW[0], ALLOW[1]]).await;
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
    let file = ConfigFile::new(&[service("a"), slice("a", &[&v1])].concat());
    let proxy = proxy(&file, &ALLOW).await;
    let addr = proxy.data_addr;
    let held = tokio::spawn(async move { get(&client(), addr, "a", "/hold").await });
    // The request is at the backend: shut down, then let the backend answer.
    v1.arrived().await;
    proxy.shutdown();
    eventually(
        5,
        "the listener closed while a request is in flight",
        || async {
            match TcpStream::connect(addr).await {
                Ok(_) => Err("a connection was accepted".to_string()),
                Err(_) => Ok(()),
            }
        },
    )
    .await;
    assert!(!held.is_finished(), "the held request is still in flight");
    v1.release();
    let done = tokio::time::timeout(Duration::from_secs(5), proxy.wait()).await;
    assert!(done.is_ok(), "drain did not finish");
    assert_eq!(
        held.await.unwrap(),
        (200, "v1".into()),
        "the in-flight request completed"
    );
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "the listener is closed"
    );
}
