use super::*;
use chrono::TimeZone;

fn at(day: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).single().unwrap() + chrono::Duration::days(day)
}

fn names() -> Vec<String> {
    ManagedCert::service_names("weir-metrics", "weir-system")
}

#[test]
fn a_new_authority_round_trips_through_the_secret_and_is_kept() {
    let policy = Policy::default();
    let m = Material::new_authority(at(0), &policy, &names(), None).unwrap();
    let back = Material::from_data(&m.to_data()).unwrap().unwrap();
    assert_eq!(back, m);
    let Stored::Present {
        ca,
        leaf,
        leaf_names,
        leaf_signed_by_ca,
    } = back.stored()
    else {
        panic!("{:?}", back.stored());
    };
    assert!(leaf_signed_by_ca);
    assert_eq!(leaf_names, names());
    assert_eq!(ca.not_after, at(365));
    assert_eq!(leaf.not_after, at(90));
    // Issued an hour early (clock skew), so renewal falls 20 minutes before day 60.
    assert_eq!(
        rotation::decide(at(1), &back.stored(), &names()),
        Decision::Keep {
            recheck_at: at(60) - chrono::Duration::minutes(20)
        }
    );
    Reloadable::new(&back).unwrap();
}

#[test]
fn a_new_leaf_keeps_the_authority_and_is_signed_by_it() {
    let policy = Policy::default();
    let m = Material::new_authority(at(0), &policy, &names(), None).unwrap();
    let renewed = m.new_leaf(at(61), &policy, &names()).unwrap();
    assert_eq!(renewed.ca_bundle, m.ca_bundle);
    assert_ne!(renewed.cert, m.cert);
    let Stored::Present {
        leaf,
        leaf_signed_by_ca,
        ..
    } = renewed.stored()
    else {
        panic!("{:?}", renewed.stored());
    };
    assert!(leaf_signed_by_ca);
    assert_eq!(leaf.not_after, at(151));
}

#[test]
fn a_new_authority_keeps_the_previous_one_in_the_bundle_while_it_is_valid() {
    let policy = Policy::default();
    let first = Material::new_authority(at(0), &policy, &names(), None).unwrap();
    let second = Material::new_authority(at(250), &policy, &names(), Some(&first)).unwrap();
    let cas = old_authorities(&second.ca_bundle);
    assert_eq!(cas.len(), 2);
    assert!(second.ca_bundle.ends_with(&first.ca_bundle));
    let third = Material::new_authority(at(400), &policy, &names(), Some(&second)).unwrap();
    assert_eq!(
        old_authorities(&third.ca_bundle).len(),
        2,
        "the first CA expired on day 365"
    );
}

#[test]
fn a_leaf_from_another_authority_or_a_broken_secret_is_noticed() {
    let policy = Policy::default();
    let a = Material::new_authority(at(0), &policy, &names(), None).unwrap();
    let b = Material::new_authority(at(0), &policy, &names(), None).unwrap();
    let mixed = Material {
        cert: b.cert.clone(),
        key: b.key.clone(),
        ..a.clone()
    };
    assert_eq!(
        rotation::decide(at(1), &mixed.stored(), &names()),
        Decision::NewLeaf(rotation::Reason::LeafNotFromAuthority)
    );
    let mut data = a.to_data();
    data.remove("ca.key");
    assert_eq!(Material::from_data(&data), Err("no ca.key".to_string()));
    let garbage = Material {
        cert: "not a certificate".into(),
        ..a
    };
    assert!(matches!(garbage.stored(), Stored::Invalid(_)));
    assert_eq!(Material::from_data(&BTreeMap::new()), Ok(None));
}
