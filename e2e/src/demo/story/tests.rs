use super::*;
use weir_crds::Rollout;
use weir_crds::rollout::StepWeights;

#[test]
fn the_rollout_parses_with_the_steps_the_story_needs() {
    let r: Rollout = serde_yaml::from_str(&rollout_yaml()).unwrap();
    let yaml = serde_yaml::to_string(&r.spec).unwrap();
    assert!(yaml.contains("weir-demo:v1"), "{yaml}");
    assert!(yaml.contains("setWeight: 20"), "{yaml}");
    assert!(yaml.contains("minRequests: 20"), "{yaml}");
}

#[test]
fn the_rollout_reads_prometheus_when_given_one() {
    let addr: std::net::SocketAddr = "127.140.2.1:9090".parse().unwrap();
    let r: Rollout = serde_yaml::from_str(&rollout_yaml_reading(Some(addr))).unwrap();
    let strategy = r.spec.strategy.as_ref().unwrap();
    let source = strategy.analysis.as_ref().unwrap().source.as_ref().unwrap();
    assert_eq!(
        source.prometheus.as_ref().unwrap().address,
        "http://127.140.2.1:9090"
    );
    let default: Rollout = serde_yaml::from_str(&rollout_yaml()).unwrap();
    assert!(
        default
            .spec
            .strategy
            .unwrap()
            .analysis
            .unwrap()
            .source
            .is_none(),
        "the TrafficMetrics API is the default source"
    );
}

#[test]
fn a_revision_patch_sets_the_image_and_the_error_rate() {
    let p = revision_patch("v3", 0.2);
    let c = &p["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(c["image"], "weir-demo:v3");
    assert_eq!(c["env"][0]["name"], "ERROR_RATE");
    assert_eq!(c["env"][0]["value"], "0.2");
    let healthy = revision_patch("v2", 0.0);
    assert_eq!(
        healthy["spec"]["template"]["spec"]["containers"][0]["env"],
        json!([])
    );
}

#[test]
fn figures_come_from_the_counts_and_the_p99_in_seconds() {
    let doc = json!({"metrics": [
        {"name": "p99_response_latency", "unit": "seconds", "value": "9555u"},
        {"name": "success_count", "value": "80"}, {"name": "failure_count", "value": "20"}]});
    let f = figures(&doc).unwrap();
    assert_eq!(f.requests, 100.0);
    assert_eq!(f.success_rate, Some(80.0));
    assert!((f.p99_ms.unwrap() - 9.555).abs() < 1e-9);
    let empty = json!({"metrics": [
        {"name": "success_count", "value": "0"}, {"name": "failure_count", "value": "0"}]});
    assert_eq!(figures(&empty).unwrap().success_rate, None);
    assert_eq!(figures(&json!({"metrics": []})), None);
}

fn status(phase: Phase, stable: i64, canary: Option<i64>) -> RolloutStatus {
    RolloutStatus {
        phase: Some(phase),
        stable_revision: Some(stable),
        canary_revision: canary,
        ..RolloutStatus::default()
    }
}

#[test]
fn a_progress_line_shows_weights_clients_and_both_revisions() {
    let mut st = status(Phase::Progressing, 1, Some(2));
    st.step_progress = Some("2/6".into());
    st.weights = Some(StepWeights {
        stable: 80,
        canary: 20,
    });
    let line = progress_line(&Snapshot {
        elapsed: Duration::from_millis(12_340),
        status: st,
        clients: ClientSecond {
            ok: 95,
            non_2xx: 5,
            errors: 0,
            by_version: vec![("v1".into(), 80), ("v2".into(), 20)],
        },
        stable: Some(Figures {
            requests: 400.0,
            success_rate: Some(100.0),
            p99_ms: Some(3.25),
        }),
        canary: None,
    });
    assert_eq!(
        line,
        "[  12.3s] Progressing step 2/6   weights v1  80% / v2  20% | clients 95 ok 5 non-2xx 0 \
         errors [v1:80 v2:20] | stable v1 100.0% ok p99 3.2ms (400 req/5s) | canary v2 no traffic yet"
    );
}

#[test]
fn a_healthy_rollout_shows_only_its_stable_revision() {
    let line = progress_line(&Snapshot {
        status: status(Phase::Healthy, 2, None),
        ..Snapshot::default()
    });
    assert!(line.contains("weights v2 100%"), "{line}");
    assert!(!line.contains("canary"), "{line}");
}

#[test]
fn an_update_ends_when_promoted_or_aborted() {
    assert_eq!(
        ending(&status(Phase::Healthy, 2, None), 2),
        Some(Ending::Promoted(2))
    );
    assert_eq!(ending(&status(Phase::Healthy, 1, None), 2), None);
    assert_eq!(ending(&status(Phase::Progressing, 1, Some(2)), 2), None);
    assert_eq!(ending(&status(Phase::Paused, 1, Some(2)), 2), None);
    let mut aborted = status(Phase::Aborted, 2, Some(3));
    aborted.message = Some("Rolled back".into());
    assert_eq!(
        ending(&aborted, 3),
        Some(Ending::RolledBack {
            stable: 2,
            message: "Rolled back".into()
        })
    );
}

#[test]
fn the_story_happened_only_with_v2_promoted_and_v3_rolled_back_to_v2() {
    let back = Ending::RolledBack {
        stable: 2,
        message: String::new(),
    };
    assert!(verdict(&Ending::Promoted(2), &back).is_empty());
    assert_eq!(verdict(&Ending::Promoted(3), &back).len(), 1);
    assert_eq!(verdict(&back, &back).len(), 1);
    assert_eq!(verdict(&Ending::Promoted(2), &Ending::Promoted(3)).len(), 1);
    let late = Ending::Unfinished("Progressing".into());
    assert_eq!(verdict(&late, &late).len(), 2);
    let to_v1 = Ending::RolledBack {
        stable: 1,
        message: String::new(),
    };
    assert_eq!(verdict(&Ending::Promoted(2), &to_v1).len(), 1);
}
