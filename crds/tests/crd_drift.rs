//! The committed CRD YAML in `crds/manifests/` (and `crds/kustomization.yaml`) is exactly
//! what the Rust types generate, and `crds/manifests/` holds nothing else, so
//! `kubectl apply -f crds/manifests/` applies exactly the CRDs.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::path::PathBuf;

const REGENERATE: &str = "cargo run -p weir-crds --bin crdgen";

#[test]
fn committed_manifests_match_the_rust_types() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let generated = weir_crds::crdgen::manifests().expect("manifests generate");
    let mut stale = Vec::new();
    for m in &generated {
        let committed = std::fs::read_to_string(dir.join(&m.file_name)).unwrap_or_default();
        if committed != m.yaml {
            stale.push(m.file_name.clone());
        }
    }
    let expected: BTreeSet<String> = generated.iter().map(|m| m.file_name.clone()).collect();
    let manifests = weir_crds::crdgen::MANIFESTS_DIR;
    let extra: Vec<String> = std::fs::read_dir(dir.join(manifests))
        .expect("crds/manifests exists")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .map(|n| format!("{manifests}/{n}"))
        .filter(|n| !expected.contains(n))
        .collect();
    assert!(
        stale.is_empty() && extra.is_empty(),
        "crds/manifests/ has drifted from the Rust types (stale: {stale:?}, not generated: {extra:?}).\nRegenerate with: {REGENERATE}"
    );
}
