//! A tiny, fast HTTP/1.1 backend for the proxy benchmark: answers every request with its name,
//! and `GET /__count` with how many requests it has answered.
//!
//! `cargo run --release -p weir-proxy --example bench_backend -- 127.0.0.1:18081 v1`

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let addr: std::net::SocketAddr = args
        .next()
        .unwrap_or_else(|| "127.0.0.1:18081".into())
        .parse()?;
    let name: &'static str = Box::leak(args.next().unwrap_or_else(|| "v1".into()).into_boxed_str());
    let count = Arc::new(AtomicU64::new(0));
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(async move {
            let listener = tokio::net::TcpListener::bind(addr).await?;
            loop {
                let (stream, _) = listener.accept().await?;
                let _ = stream.set_nodelay(true);
                let count = count.clone();
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
                        let body = if req.uri().path() == "/__count" {
                            Bytes::from(count.load(Ordering::Relaxed).to_string())
                        } else {
                            count.fetch_add(1, Ordering::Relaxed);
                            Bytes::from_static(name.as_bytes())
                        };
                        async move { Ok::<_, Infallible>(Response::new(Full::new(body))) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        })
}
