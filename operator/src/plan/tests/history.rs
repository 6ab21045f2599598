//! The ControllerRevision history: a plan that writes a revision above the limit asks the
//! controller to prune, and then never sends its status with the revision's writes.

use super::super::*;
use super::fixtures::*;
use crate::children::HISTORY_LIMIT;

#[test]
fn only_a_revision_above_the_history_limit_prunes_and_its_status_waits_for_the_writes() {
    let mut h = Harness::healthy(steps_basic());
    let mut written = Vec::new();
    for version in 2..=HISTORY_LIMIT + 2 {
        h.change_template(&format!("v{version}"));
        let p = plan(&h.rollout, &h.obs, h.now);
        let revision = p.actions.iter().find_map(|a| match a {
            Action::EnsureRevision { revision, .. } => Some(*revision),
            _ => None,
        });
        let revision = revision.expect("a template change writes a new revision");
        let above = usize::try_from(revision).is_ok_and(|r| r > HISTORY_LIMIT);
        assert_eq!(p.prune_history, above, "revision {revision}");
        if p.prune_history {
            assert!(
                !p.status_with_last_run,
                "revision {revision}: the status went with writes whose history is unpruned"
            );
        }
        written.push(revision);
        // Promote it to stable and let the old stable retire, so that the next template
        // change starts from a Healthy Rollout with nothing to tear down.
        h.step();
        h.set_status(|s| s.promote_full = true);
        for _ in 0..20 {
            h.tick(600);
            if h.step().actions.is_empty() && h.phase() == Phase::Healthy {
                break;
            }
        }
        assert_eq!(h.phase(), Phase::Healthy, "v{version} promoted");
    }
    assert!(
        written
            .iter()
            .any(|r| usize::try_from(*r).is_ok_and(|r| r > HISTORY_LIMIT)),
        "never passed the limit: {written:?}"
    );
    assert!(
        written.contains(&2),
        "never planned below the limit: {written:?}"
    );
}
