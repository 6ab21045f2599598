use super::*;
use chrono::TimeZone;
use proptest::prelude::*;

fn at(day: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).single().unwrap() + Duration::days(day)
}

fn validity(from: i64, to: i64) -> Validity {
    Validity {
        not_before: at(from),
        not_after: at(to),
    }
}

fn names() -> Vec<String> {
    vec!["weir-metrics.weir-system.svc".into(), "weir-metrics".into()]
}

/// A CA for days 0..360 and a leaf for days 0..90, both for [`names`].
fn present(ca: Validity, leaf: Validity) -> Stored {
    Stored::Present {
        ca,
        leaf,
        leaf_names: names(),
        leaf_signed_by_ca: true,
    }
}

#[test]
fn nothing_stored_issues_a_new_authority() {
    assert_eq!(
        decide(at(0), &Stored::Missing, &names()),
        Decision::NewAuthority(Reason::Missing)
    );
    assert_eq!(
        decide(at(0), &Stored::Invalid("no ca.key".into()), &names()),
        Decision::NewAuthority(Reason::Invalid("no ca.key".into()))
    );
}

#[test]
fn a_fresh_certificate_is_kept_until_two_thirds_of_the_leaf_life() {
    let stored = present(validity(0, 360), validity(0, 90));
    assert_eq!(
        decide(at(10), &stored, &names()),
        Decision::Keep { recheck_at: at(60) }
    );
    assert_eq!(
        decide(at(59), &stored, &names()),
        Decision::Keep { recheck_at: at(60) }
    );
    assert_eq!(
        decide(at(60), &stored, &names()),
        Decision::NewLeaf(Reason::LeafExpiring)
    );
    assert_eq!(
        decide(at(200), &stored, &names()),
        Decision::NewLeaf(Reason::LeafExpiring)
    );
}

#[test]
fn the_authority_is_renewed_at_two_thirds_of_its_life_whatever_the_leaf() {
    let stored = present(validity(0, 360), validity(230, 320));
    assert_eq!(
        decide(at(239), &stored, &names()),
        Decision::Keep {
            recheck_at: at(240)
        },
        "the CA's renewal comes before the leaf's (day 290)"
    );
    assert_eq!(
        decide(at(240), &stored, &names()),
        Decision::NewAuthority(Reason::AuthorityExpiring)
    );
    assert_eq!(
        decide(at(400), &stored, &names()),
        Decision::NewAuthority(Reason::AuthorityExpiring)
    );
}

#[test]
fn certificates_from_the_future_are_replaced() {
    let stored = present(validity(5, 365), validity(5, 95));
    assert_eq!(
        decide(at(1), &stored, &names()),
        Decision::NewAuthority(Reason::AuthorityNotYetValid)
    );
    let stored = present(validity(0, 360), validity(5, 95));
    assert_eq!(
        decide(at(1), &stored, &names()),
        Decision::NewLeaf(Reason::LeafNotYetValid)
    );
}

#[test]
fn a_leaf_missing_a_name_or_not_from_the_authority_is_reissued() {
    let mut fewer = present(validity(0, 360), validity(0, 90));
    if let Stored::Present { leaf_names, .. } = &mut fewer {
        leaf_names.pop();
    }
    assert_eq!(
        decide(at(1), &fewer, &names()),
        Decision::NewLeaf(Reason::NamesChanged)
    );
    let mut foreign = present(validity(0, 360), validity(0, 90));
    if let Stored::Present {
        leaf_signed_by_ca, ..
    } = &mut foreign
    {
        *leaf_signed_by_ca = false;
    }
    assert_eq!(
        decide(at(1), &foreign, &names()),
        Decision::NewLeaf(Reason::LeafNotFromAuthority)
    );
    // Extra names on the leaf are harmless.
    let stored = present(validity(0, 360), validity(0, 90));
    assert!(matches!(
        decide(at(1), &stored, &names()[..1]),
        Decision::Keep { .. }
    ));
}

#[test]
fn a_new_leaf_never_outlives_its_authority() {
    let policy = Policy::default();
    let ca = validity(0, 100);
    let leaf = policy.leaf_validity(at(50), &ca);
    assert_eq!(leaf.not_after, at(100));
    assert!(leaf.not_before >= ca.not_before);
    let leaf = policy.leaf_validity(at(1), &validity(0, 360));
    assert_eq!(leaf.not_after, at(91));
    assert_eq!(leaf.not_before, at(1) - Duration::hours(1));
}

#[test]
fn the_bundle_keeps_previous_authorities_until_they_expire() {
    let now = at(250);
    let got = bundle(
        now,
        "new",
        [
            ("old", validity(0, 360)),
            ("older", validity(-400, -40)),
            ("new", validity(250, 610)),
        ],
    );
    assert_eq!(got, vec!["new", "old"]);
    assert_eq!(
        bundle(at(361), "new", [("old", validity(0, 360))]),
        vec!["new"]
    );
}

proptest! {
    /// Just after issuing, a certificate is kept; past two thirds of either lifetime it never is;
    /// and a kept one is looked at again no later than its first renewal.
    #[test]
    fn issued_certificates_are_kept_until_renewal_and_then_replaced(
        ca_days in 3i64..2000, leaf_days in 3i64..400, issued in 0i64..1000, later in 0i64..3000,
    ) {
        let policy = Policy { ca_lifetime: Duration::days(ca_days), leaf_lifetime: Duration::days(leaf_days) };
        let ca = policy.authority_validity(at(issued));
        let leaf = policy.leaf_validity(at(issued), &ca);
        let stored = present(ca, leaf);
        let fresh = decide(at(issued), &stored, &names());
        prop_assert!(matches!(fresh, Decision::Keep { .. }), "{fresh:?}");
        let now = at(issued) + Duration::hours(later);
        match decide(now, &stored, &names()) {
            Decision::Keep { recheck_at } => {
                prop_assert!(now < leaf.renew_at() && now < ca.renew_at());
                prop_assert!(recheck_at > now && recheck_at <= leaf.renew_at());
            }
            other => prop_assert!(now >= leaf.renew_at() || now >= ca.renew_at(), "{other:?}"),
        }
    }
}
