//! Measures the local API server with 1000 custom objects and 10 watchers: create throughput,
//! list latency, watch fan-out latency and RSS. Prints numbers; asserts nothing.
//!
//! `cargo run -p weir-e2e --example apiserver_bench [--release]`

use anyhow::Context;
use futures::StreamExt;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{
    Api, ApiResource, DynamicObject, GroupVersionKind, ListParams, Patch, PatchParams, PostParams,
    WatchEvent, WatchParams,
};
use std::path::Path;
use std::time::Duration;
use tokio::time::Instant;
use weir_e2e::apiserver::{LocalApiServer, Options};

const OBJECTS: usize = 1000;
const WATCHERS: usize = 10;
const UPDATES: usize = 100;

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|n| n.parse().ok()))
        })
        .unwrap_or(0)
}

fn pct(v: &mut [Duration], p: f64) -> Duration {
    v.sort();
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v.get(i).copied().unwrap_or_default()
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let manifests =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../crds/manifests/rollouts.weir.dev.yaml");
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let (crd_yaml, obj_yaml, gvk, plural) = if manifests.exists() {
        (
            std::fs::read_to_string(&manifests)?,
            std::fs::read_to_string(fixtures.join("rollout.yaml"))?,
            GroupVersionKind::gvk("weir.dev", "v1alpha1", "Rollout"),
            "rollouts",
        )
    } else {
        (
            std::fs::read_to_string(fixtures.join("widgets-crd.yaml"))?,
            std::fs::read_to_string(fixtures.join("widget.yaml"))?,
            GroupVersionKind::gvk("test.weir.dev", "v1", "Widget"),
            "widgets",
        )
    };
    let rss0 = rss_kib();
    let server = LocalApiServer::start(Options::default())
        .await
        .context("start")?;
    let client = server.client().await?;
    let crd: CustomResourceDefinition = serde_yaml::from_str(&crd_yaml)?;
    Api::<CustomResourceDefinition>::all(client.clone())
        .create(&PostParams::default(), &crd)
        .await?;
    let ar = ApiResource::from_gvk_with_plural(&gvk, plural);
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), "default", &ar);
    let template: DynamicObject = serde_yaml::from_str(&obj_yaml)?;

    let t = Instant::now();
    for i in 0..OBJECTS {
        let mut o = template.clone();
        o.metadata.name = Some(format!("obj-{i:04}"));
        api.create(&PostParams::default(), &o).await?;
    }
    let create = t.elapsed();
    let rss_loaded = rss_kib();

    let mut lists = vec![];
    for _ in 0..20 {
        let t = Instant::now();
        let l = api.list(&ListParams::default()).await?;
        lists.push(t.elapsed());
        anyhow::ensure!(l.items.len() == OBJECTS, "list returned {}", l.items.len());
    }

    let mut raw_lists = vec![];
    let mut raw_bytes = 0;
    let http: hyper_util::client::legacy::Client<_, http_body_util::Empty<bytes::Bytes>> =
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .build_http();
    let list_url = format!(
        "{}/apis/{}/{}/namespaces/default/{plural}",
        server.url(),
        gvk.group,
        gvk.version
    );
    for _ in 0..20 {
        let t = Instant::now();
        let resp = http.get(list_url.parse()?).await?;
        let body = http_body_util::BodyExt::collect(resp.into_body())
            .await?
            .to_bytes();
        raw_lists.push(t.elapsed());
        raw_bytes = body.len();
    }
    let rss_listed = rss_kib();
    let rv = api
        .list(&ListParams::default().limit(1))
        .await?
        .metadata
        .resource_version
        .unwrap_or_default();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(usize, String, Instant)>();
    let mut tasks = vec![];
    for w in 0..WATCHERS {
        let mut s = api
            .watch(&WatchParams::default().disable_bookmarks(), &rv)
            .await?
            .boxed();
        let tx = tx.clone();
        tasks.push(tokio::spawn(async move {
            while let Some(Ok(e)) = s.next().await {
                if let WatchEvent::Modified(o) = e {
                    let _ = tx.send((w, o.metadata.name.unwrap_or_default(), Instant::now()));
                }
            }
        }));
    }
    let rss_watching = rss_kib();
    let mut fanout = vec![];
    for i in 0..UPDATES {
        let name = format!("obj-{:04}", i * 7 % OBJECTS);
        let t = Instant::now();
        api.patch(
            &name,
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"metadata": {"labels": {"tick": i.to_string()}}})),
        )
        .await?;
        let mut seen = 0;
        let mut last = t;
        while seen < WATCHERS {
            let (_, n, at) = tokio::time::timeout(Duration::from_secs(10), rx.recv())
                .await?
                .context("watchers ended")?;
            if n == name {
                seen += 1;
                last = at;
            }
        }
        fanout.push(last - t);
    }
    let rss_end = rss_kib();
    for t in tasks {
        t.abort();
    }
    let ms = |d: Duration| format!("{:.2} ms", d.as_secs_f64() * 1000.0);
    println!("objects: {OBJECTS} {plural}, watchers: {WATCHERS}, updates: {UPDATES}");
    println!(
        "create: {} total, {} per object",
        ms(create),
        ms(create / OBJECTS as u32)
    );
    println!(
        "list of {OBJECTS}: p50 {} max {}",
        ms(pct(&mut lists, 0.5)),
        ms(pct(&mut lists, 1.0))
    );
    println!(
        "list of {OBJECTS}, raw HTTP without decoding ({} KiB): p50 {} max {}",
        raw_bytes / 1024,
        ms(pct(&mut raw_lists, 0.5)),
        ms(pct(&mut raw_lists, 1.0))
    );
    println!(
        "watch fan-out (patch sent -> all {WATCHERS} watchers got it): p50 {} p99 {} max {}",
        ms(pct(&mut fanout, 0.5)),
        ms(pct(&mut fanout, 0.99)),
        ms(pct(&mut fanout, 1.0))
    );
    println!(
        "RSS (server + client in one process): start {} MiB, with objects {} MiB, after lists {} MiB, with watchers {} MiB, end {} MiB",
        rss0 / 1024,
        rss_loaded / 1024,
        rss_listed / 1024,
        rss_watching / 1024,
        rss_end / 1024
    );
    server.shutdown().await;
    Ok(())
}
