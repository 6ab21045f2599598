//! The real `kubectl` running `kubectl weir` (the built `kubectl-weir`, first on PATH)
//! against the local control plane, with the real `weir-operator` running as a Pod:
//! every subcommand and its effect on the Rollout, the exit codes of `status`, `-o json`
//! parsed back, the piped watch, and each error a person must be able to act on.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "plugin_kubectl/env.rs"]
mod plugin_support;
#[path = "plugin_kubectl/stubs.rs"]
mod stubs;
#[path = "support/lib.rs"]
mod support;

use anyhow::Result;
use k8s_openapi::api::core::v1::Service;
use kube::api::{Api, PostParams};
use plugin_support::{Env, rollout_yaml};
use serde_json::Value;
use stubs::{ForbiddingServer, MetricsApi, unreachable_kubeconfig};
use weir_crds::Rollout;
use weir_crds::rollout::Phase;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_steering_command_moves_the_rollout_as_documented() -> Result<()> {
    let env = Env::start().await?;
    let rollouts: Api<Rollout> = env.api();
    rollouts
        .create(&PostParams::default(), &rollout_yaml("foobar"))
        .await?;
    env.weir(&["status", "foobar", "-w", "--timeout", "90s"])
        .await
        .ok()?;

    let set = env
        .weir(&["set", "image", "foobar", "app=weir-demo:v2"])
        .await
        .ok()?;
    assert!(set.contains("a new revision starts"), "{set}");
    let paused = env
        .wait(&rollouts, "the pause at step 2/4", |s| {
            s.phase == Some(Phase::Paused) && s.current_step == Some(1)
        })
        .await?;
    assert_eq!(paused.weights.unwrap().canary, 20);
    let again = env
        .weir(&["set", "image", "foobar", "app=weir-demo:v2"])
        .await
        .ok()?;
    assert!(
        again.contains("already runs"),
        "set image is idempotent: {again}"
    );

    // Mid-rollout, as a person sees it.
    let get = env.weir(&["get", "foobar"]).await.ok()?;
    println!("$ kubectl weir get foobar\n{get}");
    for expected in [
        "Phase:        Paused",
        "Step:         2/4  pause (until promoted)",
        "stable 80% [",
        "revision 2",
        "app=weir-demo:v2 (canary)",
        "Pod",
    ] {
        assert!(get.contains(expected), "get lacks {expected:?}:\n{get}");
    }
    let describe = env.kubectl(&["describe", "rollout", "foobar"]).await.ok()?;
    println!("$ kubectl describe rollout foobar\n{describe}");
    assert_eq!(describe_field(&describe, "Current Step Index"), Some("1"));
    assert_eq!(describe_field(&describe, "Step Progress"), Some("2/4"));
    assert!(
        describe.contains("Canary weight 0 → 20 (step 1/4): foobar-v2 takes 20% of traffic"),
        "{describe}"
    );
    let json: Value =
        serde_json::from_str(&env.weir(&["get", "foobar", "-o", "json"]).await.ok()?)?;
    assert_eq!(json["phase"], "Paused");
    assert_eq!(json["canaryRevision"], 2);
    assert_eq!(json["step"]["number"], 2);
    assert_eq!(json["revisions"][0]["role"], "Canary");
    assert_eq!(json["revisions"][0]["trafficPercent"], 20.0);
    assert_eq!(
        json["revisions"][0]["pods"].as_array().map(Vec::len),
        Some(2)
    );

    let promoted = env.weir(&["promote", "foobar"]).await.ok()?;
    assert!(
        promoted.contains("promotion past step 2 requested"),
        "{promoted}"
    );
    let s = env
        .wait(&rollouts, "the pause at step 4/4", |s| {
            s.phase == Some(Phase::Paused) && s.current_step == Some(3)
        })
        .await?;
    assert_eq!(s.weights.unwrap().canary, 60);

    env.weir(&["pause", "foobar"]).await.ok()?;
    assert!(rollouts.get("foobar").await?.spec.paused);
    let twice = env.weir(&["pause", "foobar"]).await.ok()?;
    assert!(twice.contains("already paused"), "{twice}");
    env.wait(&rollouts, "Paused by spec.paused", |s| {
        s.message
            .as_deref()
            .is_some_and(|m| m.contains("spec.paused"))
    })
    .await?;
    env.weir(&["resume", "foobar"]).await.ok()?;
    assert!(!rollouts.get("foobar").await?.spec.paused);
    let twice = env.weir(&["resume", "foobar"]).await.ok()?;
    assert!(twice.contains("is not paused"), "{twice}");

    env.weir(&["abort", "foobar"]).await.ok()?;
    let aborted = env
        .wait(&rollouts, "Aborted", |s| s.phase == Some(Phase::Aborted))
        .await?;
    assert_eq!(aborted.weights.unwrap().canary, 0);
    assert_eq!(
        aborted.step_progress.as_deref(),
        Some("4/4"),
        "STEP keeps where it stopped"
    );
    let twice = env.weir(&["abort", "foobar"]).await.ok()?;
    assert!(twice.contains("already aborted"), "{twice}");

    env.weir(&["retry", "foobar"]).await.ok()?;
    let retried = env
        .wait(&rollouts, "the retried canary at its first pause", |s| {
            s.phase == Some(Phase::Paused) && s.current_step == Some(1)
        })
        .await?;
    assert!(!retried.abort);
    let raw = env
        .kubectl(&["get", "rollout", "foobar", "-o", "json"])
        .await
        .ok()?;
    let raw: Value = serde_json::from_str(&raw)?;
    assert!(
        raw["status"].get("abort").is_none(),
        "retry removes abort: {}",
        raw["status"]
    );

    env.weir(&["promote", "foobar", "--full"]).await.ok()?;
    env.wait(&rollouts, "v2 Healthy", |s| {
        s.phase == Some(Phase::Healthy) && s.stable_revision == Some(2)
    })
    .await?;
    let nothing = env.weir(&["promote", "foobar"]).await;
    assert_eq!(nothing.code, 1, "{nothing:?}");
    assert!(
        nothing
            .stderr
            .contains("nothing to promote: rollout foobar is Healthy at revision 2"),
        "{nothing:?}"
    );

    // Undo after v1's Deployment is gone: its template comes from the ControllerRevision.
    let deployments: Api<k8s_openapi::api::apps::v1::Deployment> = env.api();
    support::operator::wait_gone(&deployments, "foobar-v1", 60).await?;
    let wrong = env.weir(&["undo", "foobar", "--to-revision", "9"]).await;
    assert_eq!(wrong.code, 1);
    assert!(
        wrong
            .stderr
            .contains("revision 9 of rollout foobar is not kept (kept: 1, 2)"),
        "{wrong:?}"
    );
    let undo = env.weir(&["undo", "foobar"]).await.ok()?;
    assert!(undo.contains("template set back to revision 1's"), "{undo}");
    env.wait(
        &rollouts,
        "revision 3 (v1's template) at its first pause",
        |s| s.canary_revision == Some(3) && s.phase == Some(Phase::Paused),
    )
    .await?;
    let image = rollouts
        .get("foobar")
        .await?
        .spec
        .template
        .and_then(|t| t.spec)
        .unwrap()
        .containers[0]
        .image
        .clone();
    assert_eq!(image.as_deref(), Some("weir-demo:v1"));

    let list = env.weir(&["list"]).await.ok()?;
    assert!(
        list.lines().next().unwrap_or("").starts_with("NAME"),
        "{list}"
    );
    assert!(list.contains("foobar   Paused"), "{list}");
    let rows: Value = serde_json::from_str(&env.weir(&["list", "-A", "-o", "json"]).await.ok()?)?;
    assert_eq!(rows[0]["name"], "foobar");
    assert_eq!(rows[0]["canaryRevision"], 3);
    let rows: Value = serde_yaml::from_str(&env.weir(&["list", "-o", "yaml"]).await.ok()?)?;
    assert_eq!(rows[0]["stableRevision"], 2);

    let version = env.weir(&["version"]).await.ok()?;
    let v = env!("CARGO_PKG_VERSION");
    assert!(version.contains(&format!("kubectl-weir: {v}")), "{version}");
    assert!(
        version.contains(&format!("weir-operator: {v} (leader Pod weir-system/")),
        "{version}"
    );
    let version: Value = serde_json::from_str(&env.weir(&["version", "-o", "json"]).await.ok()?)?;
    assert_eq!(version["operator"]["version"], v);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_shows_live_figures_when_the_traffic_metrics_api_answers_and_why_not_otherwise()
-> Result<()> {
    let env = Env::start().await?;
    let rollouts: Api<Rollout> = env.api();
    rollouts
        .create(&PostParams::default(), &rollout_yaml("foobar"))
        .await?;
    env.wait(&rollouts, "Healthy", |s| s.phase == Some(Phase::Healthy))
        .await?;
    let absent = env.weir(&["get", "foobar"]).await.ok()?;
    assert!(
        absent.contains("Live:         no live metrics (metrics.smi-spec.io/v1alpha1 is not served by this cluster)"),
        "{absent}"
    );
    let metrics = MetricsApi::register(&env.cluster.client).await?;
    // Registered but with no endpoint: no figures, and the reason (503, a timeout, or
    // whatever answers on the Service's ClusterIP) is shown instead.
    let unavailable = env.weir(&["get", "foobar", "-o", "json"]).await.ok()?;
    let unavailable: Value = serde_json::from_str(&unavailable)?;
    assert_eq!(unavailable["live"]["state"], "unavailable", "{unavailable}");
    assert!(
        unavailable["live"]["reason"]
            .as_str()
            .is_some_and(|r| !r.is_empty())
    );
    metrics.serve(&env.cluster.client).await?;
    env.weir(&["set", "image", "foobar", "app=weir-demo:v2"])
        .await
        .ok()?;
    env.wait(&rollouts, "the first pause", |s| {
        s.phase == Some(Phase::Paused)
    })
    .await?;
    let live = env.weir(&["get", "foobar"]).await.ok()?;
    println!("$ kubectl weir get foobar\n{live}");
    for expected in [
        "Live:         REVISION      REQUESTS  SUCCESS   P50      P99      (last 30s)",
        "canary v2     300       95%       13ms     620ms",
        "stable v1     1200      99%       11ms     48ms",
    ] {
        assert!(live.contains(expected), "get lacks {expected:?}:\n{live}");
    }
    let json: Value =
        serde_json::from_str(&env.weir(&["get", "foobar", "-o", "json"]).await.ok()?)?;
    assert_eq!(json["live"]["state"], "figures");
    assert_eq!(json["live"]["rows"][0]["successRate"], 95.0);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_exits_0_when_healthy_1_when_degraded_or_aborted_and_2_on_timeout() -> Result<()> {
    let env = Env::start().await?;
    let rollouts: Api<Rollout> = env.api();
    rollouts
        .create(&PostParams::default(), &rollout_yaml("foobar"))
        .await?;
    let healthy = env
        .weir(&["status", "foobar", "-w", "--timeout", "90s"])
        .await;
    assert_eq!(healthy.code, 0, "{healthy:?}");
    assert!(
        healthy.stdout.contains("foobar: Healthy at step 4/4"),
        "{healthy:?}"
    );

    // A piped watch: the page once, then one timestamped line per change, no escapes.
    let mut watch = env.spawn_weir(&["get", "foobar", "-w"])?;
    env.weir(&["set", "image", "foobar", "app=weir-demo:v2"])
        .await
        .ok()?;
    let seen = watch
        .read_until("a Paused line", |out| {
            out.lines()
                .any(|l| l.contains("Z foobar: Paused at step 2/4"))
        })
        .await?;
    assert!(seen.starts_with("Name:         foobar\n"), "{seen}");
    assert!(
        !seen.contains('\u{1b}'),
        "no escape sequences into a pipe:\n{seen}"
    );
    drop(watch);

    let now = env.weir(&["status", "foobar"]).await;
    assert_eq!(now.code, 2, "in progress, no wait: {now:?}");
    assert!(
        now.stdout.starts_with("foobar: Paused at step 2/4"),
        "{now:?}"
    );
    let timeout = env
        .weir(&["status", "foobar", "-w", "--timeout", "2s"])
        .await;
    assert_eq!(timeout.code, 2, "{timeout:?}");
    assert!(timeout.stderr.contains("timed out after 2s"), "{timeout:?}");

    env.weir(&["abort", "foobar"]).await.ok()?;
    let aborted = env
        .weir(&["status", "foobar", "-w", "--timeout", "60s"])
        .await;
    assert_eq!(aborted.code, 1, "{aborted:?}");
    assert!(aborted.stdout.contains("foobar: Aborted"), "{aborted:?}");

    env.weir(&["retry", "foobar"]).await.ok()?;
    env.wait(&rollouts, "the retried canary", |s| {
        s.phase == Some(Phase::Paused)
    })
    .await?;
    env.weir(&["promote", "foobar", "--full"]).await.ok()?;
    let done = env
        .weir(&["status", "foobar", "-w", "--timeout", "90s", "-o", "json"])
        .await;
    assert_eq!(done.code, 0, "{done:?}");
    let view: Value = serde_json::from_str(&done.stdout)?;
    assert_eq!(
        (view["phase"].as_str(), view["stableRevision"].as_i64()),
        (Some("Healthy"), Some(2))
    );

    // Degraded: the root Service belongs to someone else.
    let services: Api<Service> = env.api();
    let taken: Service = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "taken"},
        "spec": {"selector": {"app": "other"}, "ports": [{"port": 80}]}
    }))?;
    services.create(&PostParams::default(), &taken).await?;
    rollouts
        .create(&PostParams::default(), &rollout_yaml("taken"))
        .await?;
    let degraded = env
        .weir(&["status", "taken", "-w", "--timeout", "60s"])
        .await;
    assert_eq!(degraded.code, 1, "{degraded:?}");
    assert!(degraded.stdout.contains("taken: Degraded"), "{degraded:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_say_what_to_do_and_exit_non_zero() -> Result<()> {
    let env = Env::start().await?;
    let missing = env.weir(&["get", "nosuch"]).await;
    assert_eq!(missing.code, 1);
    assert_eq!(
        missing.stderr.trim(),
        "error: rollouts.weir.dev \"nosuch\" not found in namespace \"default\""
    );
    let other_ns = env.weir(&["abort", "foobar", "-n", "elsewhere"]).await;
    assert!(
        other_ns
            .stderr
            .contains("not found in namespace \"elsewhere\""),
        "{other_ns:?}"
    );

    let rollouts: Api<Rollout> = env.api();
    rollouts
        .create(&PostParams::default(), &rollout_yaml("foobar"))
        .await?;
    env.wait(&rollouts, "Healthy", |s| s.phase == Some(Phase::Healthy))
        .await?;
    for (args, text) in [
        (
            vec!["promote", "foobar"],
            "nothing to promote: rollout foobar is Healthy at revision 1",
        ),
        (
            vec!["abort", "foobar"],
            "nothing to abort: rollout foobar is Healthy at revision 1",
        ),
        (
            vec!["retry", "foobar"],
            "nothing to retry: rollout foobar is Healthy at revision 1",
        ),
        (
            vec!["set", "image", "foobar", "sidecar=x:1"],
            "rollout foobar has no container \"sidecar\" (its containers: app)",
        ),
    ] {
        let run = env.weir(&args).await;
        assert_eq!(run.code, 1, "{args:?}: {run:?}");
        assert!(run.stderr.contains(text), "{args:?}: {run:?}");
    }
    // --kubeconfig and --context after the plugin name, as kubectl users write them.
    let kubeconfig = env.kubeconfig.to_str().unwrap().to_string();
    let explicit = env
        .weir_with_env(
            &["list", "--kubeconfig", &kubeconfig],
            &[("KUBECONFIG", "/nonexistent")],
        )
        .await;
    assert_eq!(explicit.code, 0, "{explicit:?}");
    let context = env.weir(&["list", "--context", "no-such-context"]).await;
    assert_eq!(context.code, 1);
    assert!(context.stderr.contains("no-such-context"), "{context:?}");

    let unreachable = unreachable_kubeconfig(&env.kubeconfig)?;
    let down = env
        .weir_with_env(
            &["get", "foobar"],
            &[("KUBECONFIG", unreachable.0.to_str().unwrap())],
        )
        .await;
    assert_eq!(down.code, 1, "{down:?}");
    assert!(
        down.stderr.contains(&format!(
            "error: cannot reach the cluster at {}",
            unreachable.1
        )),
        "{down:?}"
    );

    let forbidden = ForbiddingServer::start(&env.kubeconfig).await?;
    let denied = env
        .weir_with_env(
            &["promote", "foobar"],
            &[("KUBECONFIG", forbidden.kubeconfig.to_str().unwrap())],
        )
        .await;
    assert_eq!(denied.code, 1, "{denied:?}");
    assert!(
        denied.stderr.contains("error: forbidden: cannot patch rollouts.weir.dev/status in namespace \"default\": rollouts.weir.dev \"foobar\" is forbidden"),
        "{denied:?}"
    );
    Ok(())
}

/// The value of `Field:` in `kubectl describe` output (kubectl aligns values per block).
fn describe_field<'a>(describe: &'a str, field: &str) -> Option<&'a str> {
    describe
        .lines()
        .find_map(|l| l.trim_start().strip_prefix(&format!("{field}:")))
        .map(str::trim)
}
