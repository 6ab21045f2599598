//! The one place the end-to-end tests find the binaries they run, and the check that each
//! is the one the current sources produce.
//!
//! Binaries of this package (`weir-local-cluster`, `weir-demo-app`, `weir-loadgen`) come
//! from `env!("CARGO_BIN_EXE_<name>")`: cargo builds them before it builds the tests. The
//! other packages' binaries (`weir-proxy`, `weir-operator`) cannot be named that way, so
//! [`workspace_binary`] takes them from the test's own target directory and fails, naming
//! the binary and the first newer source, unless every source file cargo recorded in its
//! dep-info (`<name>.d`) is older than it. `scripts/test.sh` builds every binary first.

use anyhow::{Context as _, Result, bail, ensure};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// What to run when a binary is missing or stale.
const BUILD: &str = "run `cargo build --workspace --bins` (scripts/test.sh does)";

/// The target directory of the current profile (`target/debug`), where cargo puts the
/// workspace's binaries: the parent of the `deps/` directory holding this test binary.
pub fn profile_dir() -> Result<PathBuf> {
    let exe = std::env::current_exe().context("the test binary's path")?;
    let deps = exe.parent().context("the test binary has no directory")?;
    let dir = deps
        .parent()
        .context("the test binary is not in a cargo target directory")?;
    Ok(dir.to_path_buf())
}

/// `target/<profile>/<name>`, after checking that it exists and that no source file it
/// was built from changed since.
pub fn workspace_binary(name: &str) -> Result<PathBuf> {
    let bin = profile_dir()?.join(name);
    ensure!(bin.is_file(), "{} does not exist: {BUILD}", bin.display());
    check_fresh(&bin)?;
    Ok(bin)
}

/// The profile directory, after checking that each of `names` is fresh there: the
/// directory to hand the simulator, which runs those binaries for Weir's images.
pub fn binaries_dir(names: &[&str]) -> Result<PathBuf> {
    for name in names {
        workspace_binary(name)?;
    }
    profile_dir()
}

/// Fails unless every file listed in `bin`'s dep-info (`<bin>.d`) is older than `bin`.
pub fn check_fresh(bin: &Path) -> Result<()> {
    let built = modified(bin)?;
    let depinfo = bin.with_file_name(format!(
        "{}.d",
        bin.file_name().context("binary name")?.to_string_lossy()
    ));
    let text = std::fs::read_to_string(&depinfo).with_context(|| {
        format!(
            "no dep-info {}: cannot tell whether {} is current; {BUILD}",
            depinfo.display(),
            bin.display()
        )
    })?;
    let sources = dep_info_sources(&text);
    ensure!(
        !sources.is_empty(),
        "{} lists no sources for {}",
        depinfo.display(),
        bin.display()
    );
    let mut newer = Vec::new();
    for source in &sources {
        match std::fs::metadata(source).and_then(|m| m.modified()) {
            Ok(t) if t <= built => {}
            Ok(_) => newer.push(source.display().to_string()),
            Err(_) => newer.push(format!("{} (gone)", source.display())),
        }
    }
    if let Some(first) = newer.first() {
        bail!(
            "{} is stale: {} of the {} sources it was built from changed since (first: {first}); {BUILD}",
            bin.display(),
            newer.len(),
            sources.len()
        );
    }
    Ok(())
}

fn modified(path: &Path) -> Result<SystemTime> {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .with_context(|| format!("modification time of {}", path.display()))
}

/// The prerequisites of the first rule of a Makefile-style dep-info file (`target: a b`),
/// with `\ ` unescaped and `\` line continuations joined.
pub fn dep_info_sources(text: &str) -> Vec<PathBuf> {
    let joined = text.replace("\\\n", " ");
    let Some(rule) = joined.lines().next() else {
        return Vec::new();
    };
    let Some((_, deps)) = rule.split_once(": ") else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut current = String::new();
    let mut chars = deps.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&' ') => {
                current.push(' ');
                chars.next();
            }
            c if c.is_whitespace() => {
                if !current.is_empty() {
                    out.push(PathBuf::from(std::mem::take(&mut current)));
                }
            }
            c => current.push(c),
        }
    }
    if !current.is_empty() {
        out.push(PathBuf::from(current));
    }
    out
}
