//! The committed `docs/rollout-reference.md` is exactly what the Rollout CRD's field docs render.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

#[test]
fn committed_rollout_reference_matches_the_crd() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(weir_crds::reference::PATH);
    let generated = weir_crds::reference::rollout_reference().expect("the reference renders");
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "{} has drifted from the Rollout CRD's field docs.\nRegenerate with: cargo run -p weir-crds --bin refgen",
        path.display()
    );
}

#[test]
fn the_reference_documents_every_step_kind_and_the_status() {
    let text = weir_crds::reference::rollout_reference().expect("the reference renders");
    for field in [
        "`spec.strategy.steps[].setWeight`",
        "`spec.strategy.steps[].pause.duration`",
        "`spec.strategy.analysis.successRate.min`",
        "`status.phase`",
        "`status.weights.canary`",
    ] {
        assert!(text.contains(field), "no row for {field}");
    }
    assert!(
        !text.contains("| `spec.template.spec"),
        "the pod template is Kubernetes' own"
    );
}
