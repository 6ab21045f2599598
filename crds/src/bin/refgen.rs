//! Writes `docs/rollout-reference.md` from the Rollout CRD's field docs (or to the path given
//! as the first argument).

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            // As crdgen: CARGO_MANIFEST_DIR at run time, so `cargo run` writes into this checkout.
            std::env::var_os("CARGO_MANIFEST_DIR")
                .map(|dir| {
                    PathBuf::from(dir)
                        .join("..")
                        .join(weir_crds::reference::PATH)
                })
                .unwrap_or_else(|| PathBuf::from(weir_crds::reference::PATH))
        });
    std::fs::write(&path, weir_crds::reference::rollout_reference()?)?;
    println!("wrote {}", path.display());
    Ok(())
}
