//! Writes Weir's CRD manifests to `crds/manifests/` and `crds/kustomization.yaml` (or into
//! the directory given as the first argument, in place of `crds/`).

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            // `cargo run` sets CARGO_MANIFEST_DIR for the process; read it at run time so a
            // binary built elsewhere still writes into this checkout.
            std::env::var_os("CARGO_MANIFEST_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("crds"))
        });
    for manifest in weir_crds::crdgen::manifests()? {
        let path = dir.join(&manifest.file_name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&path, manifest.yaml)?;
        println!("wrote {}", path.display());
    }
    Ok(())
}
