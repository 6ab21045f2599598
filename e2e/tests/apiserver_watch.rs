//! Watch semantics of the local API server: resume, 410 Gone and re-list, bookmarks, timeouts,
//! selector transitions, reflectors and many watchers.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers outside #[test] fns

#[path = "support/lib.rs"]
mod support;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use kube::runtime::{WatchStreamExt, reflector, watcher};
use serde_json::json;
use std::time::Duration;
use support::apiserver::{start, start_with};
use support::{eventually, seen};
use weir_e2e::apiserver::Options;

fn cm(name: &str, labels: serde_json::Value) -> ConfigMap {
    serde_json::from_value(json!({"metadata": {"name": name, "labels": labels}})).unwrap()
}

fn rv(o: &ConfigMap) -> String {
    o.metadata.resource_version.clone().unwrap()
}

async fn next<S, T>(s: &mut S) -> T
where
    S: futures::Stream<Item = Result<T, kube::Error>> + Unpin,
{
    tokio::time::timeout(Duration::from_secs(5), s.next())
        .await
        .expect("an event in time")
        .unwrap()
        .unwrap()
}

fn name_of(e: &WatchEvent<ConfigMap>) -> (&'static str, String) {
    match e {
        WatchEvent::Added(o) => ("ADDED", o.metadata.name.clone().unwrap()),
        WatchEvent::Modified(o) => ("MODIFIED", o.metadata.name.clone().unwrap()),
        WatchEvent::Deleted(o) => ("DELETED", o.metadata.name.clone().unwrap()),
        WatchEvent::Bookmark(_) => ("BOOKMARK", String::new()),
        WatchEvent::Error(s) => ("ERROR", s.reason.clone()),
    }
}

#[tokio::test]
async fn watch_resumes_from_a_resource_version_replaying_later_changes() {
    let (h, c) = start().await;
    let api: Api<ConfigMap> = Api::namespaced(c, "default");
    let a = api
        .create(&PostParams::default(), &cm("a", json!({})))
        .await
        .unwrap();
    api.create(&PostParams::default(), &cm("b", json!({})))
        .await
        .unwrap();
    api.patch(
        "a",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"x": "1"}})),
    )
    .await
    .unwrap();
    api.delete("b", &DeleteParams::default()).await.unwrap();
    let mut s = api
        .watch(&WatchParams::default(), &rv(&a))
        .await
        .unwrap()
        .boxed();
    let got = [next(&mut s).await, next(&mut s).await, next(&mut s).await];
    let got: Vec<_> = got.iter().map(name_of).collect();
    assert_eq!(
        got,
        [
            ("ADDED", "b".to_string()),
            ("MODIFIED", "a".to_string()),
            ("DELETED", "b".to_string())
        ]
    );
    api.create(&PostParams::default(), &cm("c", json!({})))
        .await
        .unwrap();
    assert_eq!(
        name_of(&next(&mut s).await),
        ("ADDED", "c".to_string()),
        "then live events"
    );
    let mut from_zero = api
        .watch(&WatchParams::default(), "0")
        .await
        .unwrap()
        .boxed();
    let first = name_of(&next(&mut from_zero).await);
    assert_eq!(first.0, "ADDED", "rv=0 starts with the current state");
    h.shutdown().await;
}

#[tokio::test]
async fn watch_from_an_expired_version_gets_410_gone() {
    let (h, c) = start_with(Options {
        history: 3,
        ..Options::default()
    })
    .await;
    let api: Api<ConfigMap> = Api::namespaced(c, "default");
    let first = api
        .create(&PostParams::default(), &cm("first", json!({})))
        .await
        .unwrap();
    for i in 0..5 {
        api.create(&PostParams::default(), &cm(&format!("o{i}"), json!({})))
            .await
            .unwrap();
    }
    let mut s = api
        .watch(&WatchParams::default(), &rv(&first))
        .await
        .unwrap()
        .boxed();
    match next(&mut s).await {
        WatchEvent::Error(st) => {
            assert_eq!(st.code, 410);
            assert_eq!(st.reason, "Expired");
        }
        other => panic!("expected 410, got {other:?}"),
    }
    h.shutdown().await;
}

#[tokio::test]
async fn watcher_relists_after_410_and_keeps_a_reflector_current() {
    let (h, c) = start().await;
    let api: Api<ConfigMap> = Api::namespaced(c.clone(), "default");
    let secrets: Api<Secret> = Api::namespaced(c.clone(), "default");
    for i in 0..3 {
        api.create(
            &PostParams::default(),
            &cm(&format!("c{i}"), json!({"app": "x"})),
        )
        .await
        .unwrap();
    }
    let (reader, writer) = reflector::store();
    let inits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = inits.clone();
    let cfg = watcher::Config::default().labels("app=x").timeout(1);
    let stream = watcher(api.clone(), cfg)
        .inspect_ok(move |e| {
            if matches!(e, watcher::Event::Init) {
                counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
        })
        .reflect(writer)
        .applied_objects();
    let task = tokio::spawn(async move {
        futures::pin_mut!(stream);
        while let Some(r) = stream.next().await {
            if r.is_err() {
                // Back off after a watch error, as a controller would; not a wait for a state.
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    });
    eventually(5, "3 objects in the reflector", || {
        let r = reader.clone();
        async move {
            let n = r.state().len();
            seen(n == 3, "objects", n)
        }
    })
    .await
    .unwrap();
    api.create(&PostParams::default(), &cm("c3", json!({"app": "x"})))
        .await
        .unwrap();
    api.create(&PostParams::default(), &cm("other", json!({"app": "y"})))
        .await
        .unwrap();
    eventually(5, "4 objects in the reflector", || {
        let r = reader.clone();
        async move {
            let n = r.state().len();
            seen(n == 4, "objects", n)
        }
    })
    .await
    .unwrap();
    api.delete("c0", &DeleteParams::default()).await.unwrap();
    eventually(5, "3 objects in the reflector", || {
        let r = reader.clone();
        async move {
            let n = r.state().len();
            seen(n == 3, "objects", n)
        }
    })
    .await
    .unwrap();

    // Move the global version on with an unrelated kind, then drop history: the watcher's next
    // watch (after its 1 s timeout) is from an expired version, gets 410 and must re-list.
    let s: Secret = serde_json::from_value(json!({"metadata": {"name": "s"}})).unwrap();
    secrets.create(&PostParams::default(), &s).await.unwrap();
    h.compact_history();
    let before = inits.load(std::sync::atomic::Ordering::SeqCst);
    eventually(10, "the watcher to re-list", || {
        let n = inits.load(std::sync::atomic::Ordering::SeqCst);
        async move { seen(n > before, "initial lists", n) }
    })
    .await
    .unwrap();
    api.delete("c1", &DeleteParams::default()).await.unwrap();
    eventually(5, "2 objects in the reflector", || {
        let r = reader.clone();
        async move {
            let n = r.state().len();
            seen(n == 2, "objects", n)
        }
    })
    .await
    .unwrap();
    task.abort();
    h.shutdown().await;
}

#[tokio::test]
async fn bookmarks_and_timeouts() {
    let opts = Options {
        bookmark_interval: Duration::from_millis(100),
        ..Options::default()
    };
    let (h, c) = start_with(opts).await;
    let api: Api<ConfigMap> = Api::namespaced(c, "default");
    let a = api
        .create(&PostParams::default(), &cm("a", json!({})))
        .await
        .unwrap();
    let mut s = api
        .watch(&WatchParams::default(), &rv(&a))
        .await
        .unwrap()
        .boxed();
    match next(&mut s).await {
        WatchEvent::Bookmark(b) => assert!(!b.metadata.resource_version.is_empty()),
        other => panic!("expected a bookmark, got {other:?}"),
    }
    let mut s = api
        .watch(
            &WatchParams::default().timeout(1).disable_bookmarks(),
            &rv(&a),
        )
        .await
        .unwrap()
        .boxed();
    let ended = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(e) = s.next().await {
            assert!(
                !matches!(e, Ok(WatchEvent::Bookmark(_))),
                "no bookmarks unless asked"
            );
        }
    })
    .await;
    assert!(ended.is_ok(), "timeoutSeconds ends the stream");
    h.shutdown().await;
}

#[tokio::test]
async fn streaming_list_watcher_gets_initial_events_and_the_end_bookmark() {
    let (h, c) = start().await;
    let api: Api<ConfigMap> = Api::namespaced(c, "default");
    for i in 0..3 {
        api.create(&PostParams::default(), &cm(&format!("s{i}"), json!({})))
            .await
            .unwrap();
    }
    let cfg = watcher::Config::default().streaming_lists();
    let stream = watcher(api.clone(), cfg);
    futures::pin_mut!(stream);
    let mut applied = 0;
    let done = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(e) = stream.next().await {
            match e.unwrap() {
                watcher::Event::InitApply(_) => applied += 1,
                watcher::Event::InitDone => return,
                _ => {}
            }
        }
    })
    .await;
    assert!(
        done.is_ok(),
        "InitDone needs the initial-events-end bookmark"
    );
    assert_eq!(applied, 4, "the three ConfigMaps and kube-root-ca.crt");
    h.shutdown().await;
}

#[tokio::test]
async fn selector_watches_see_objects_enter_and_leave() {
    let (h, c) = start().await;
    let api: Api<ConfigMap> = Api::namespaced(c, "default");
    let a = api
        .create(&PostParams::default(), &cm("a", json!({"app": "x"})))
        .await
        .unwrap();
    let mut s = api
        .watch(&WatchParams::default().labels("app=x"), &rv(&a))
        .await
        .unwrap()
        .boxed();
    let pp = PatchParams::default();
    api.patch(
        "a",
        &pp,
        &Patch::Merge(json!({"metadata": {"labels": {"app": "y"}}})),
    )
    .await
    .unwrap();
    api.patch(
        "a",
        &pp,
        &Patch::Merge(json!({"metadata": {"labels": {"app": "x"}}})),
    )
    .await
    .unwrap();
    assert_eq!(name_of(&next(&mut s).await), ("DELETED", "a".to_string()));
    assert_eq!(name_of(&next(&mut s).await), ("ADDED", "a".to_string()));
    let mut named = api
        .watch(&WatchParams::default().fields("metadata.name=b"), &rv(&a))
        .await
        .unwrap()
        .boxed();
    api.create(&PostParams::default(), &cm("z", json!({})))
        .await
        .unwrap();
    api.create(&PostParams::default(), &cm("b", json!({})))
        .await
        .unwrap();
    assert_eq!(name_of(&next(&mut named).await), ("ADDED", "b".to_string()));
    h.shutdown().await;
}

#[tokio::test]
async fn many_watchers_all_receive_each_change() {
    let (h, c) = start().await;
    let api: Api<ConfigMap> = Api::namespaced(c, "default");
    let a = api
        .create(&PostParams::default(), &cm("a", json!({})))
        .await
        .unwrap();
    let mut streams = vec![];
    for _ in 0..50 {
        streams.push(
            api.watch(&WatchParams::default(), &rv(&a))
                .await
                .unwrap()
                .boxed(),
        );
    }
    api.create(&PostParams::default(), &cm("b", json!({})))
        .await
        .unwrap();
    for s in &mut streams {
        assert_eq!(name_of(&next(s).await), ("ADDED", "b".to_string()));
    }
    h.shutdown().await;
}
