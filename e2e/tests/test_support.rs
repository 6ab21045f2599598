//! The shared test helpers themselves: a wait that times out says what it saw, and a
//! binary older than one of its sources is refused by name.

#[path = "support/lib.rs"]
mod support;

use std::path::PathBuf;
use std::time::{Duration, SystemTime};
use support::binaries::{check_fresh, dep_info_sources};
use support::eventually;

#[tokio::test(start_paused = true)]
async fn a_timed_out_wait_names_what_it_waited_for_and_what_it_saw_last() {
    let mut n = 0;
    let err = eventually(2, "n to reach 1000", || {
        n += 1;
        let seen = n;
        async move {
            anyhow::ensure!(seen >= 1000, "n is {seen}");
            Ok(seen)
        }
    })
    .await
    .unwrap_err()
    .to_string();
    assert!(err.contains("waiting for n to reach 1000"), "{err}");
    assert!(err.contains("last seen: n is 41"), "{err}");
    assert!(err.contains("41 polls"), "{err}");
}

#[tokio::test(start_paused = true)]
async fn a_wait_returns_the_first_value_found() {
    let mut n = 0;
    let found = eventually(2, "the third poll", || {
        n += 1;
        let seen = n;
        async move { (seen == 3).then_some(seen * 10) }
    })
    .await
    .unwrap();
    assert_eq!(found, 30);
}

#[test]
fn dep_info_lists_sources_with_escaped_spaces_and_continuations() {
    let text = "/t/debug/weir-proxy: /w/a.rs /w/my\\ dir/b.rs \\\n /w/c.rs\n\n/w/a.rs:\n";
    assert_eq!(
        dep_info_sources(text),
        [
            PathBuf::from("/w/a.rs"),
            PathBuf::from("/w/my dir/b.rs"),
            PathBuf::from("/w/c.rs")
        ]
    );
}

#[test]
fn a_binary_older_than_one_of_its_sources_is_refused_by_name() {
    let dir = std::env::temp_dir().join(format!("weir-fresh-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (bin, old, new) = (dir.join("tool"), dir.join("old.rs"), dir.join("new.rs"));
    let base = SystemTime::now() - Duration::from_secs(3600);
    for (path, age) in [(&old, 0), (&bin, 10), (&new, 20)] {
        let file = std::fs::File::create(path).unwrap();
        file.set_modified(base + Duration::from_secs(age)).unwrap();
    }
    let rule = |deps: &[&PathBuf]| {
        let list: Vec<String> = deps.iter().map(|p| p.display().to_string()).collect();
        format!("{}: {}\n", bin.display(), list.join(" "))
    };
    std::fs::write(dir.join("tool.d"), rule(&[&old])).unwrap();
    check_fresh(&bin).unwrap();
    std::fs::write(dir.join("tool.d"), rule(&[&old, &new])).unwrap();
    let err = check_fresh(&bin).unwrap_err().to_string();
    assert!(
        err.contains(&format!("{} is stale", bin.display())) && err.contains("new.rs"),
        "{err}"
    );
    std::fs::remove_file(dir.join("tool.d")).unwrap();
    let err = check_fresh(&bin).unwrap_err().to_string();
    assert!(err.contains("no dep-info"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}
