//! Object names the way the real controllers make them: a stable
//! `pod-template-hash` and random 5-character suffixes, both drawn from the
//! Kubernetes "safe" alphabet (no vowels, no look-alike digits).

use k8s_openapi::api::core::v1::PodTemplateSpec;
use rand::Rng;

/// The alphabet Kubernetes uses for generated name suffixes and hashes.
const SAFE_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// Length of a `pod-template-hash` value.
pub const HASH_LEN: usize = 10;

/// Length of a generated name suffix (`generateName`-style).
pub const SUFFIX_LEN: usize = 5;

/// FNV-1a, 64 bits: small, stable across releases and platforms.
fn fnv1a64(bytes: &[u8]) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    bytes
        .iter()
        .fold(OFFSET, |h, b| (h ^ u64::from(*b)).wrapping_mul(PRIME))
}

/// Encodes `value` as `len` characters of the safe alphabet.
fn safe_encode(mut value: u64, len: usize) -> String {
    let base = SAFE_ALPHABET.len() as u64;
    (0..len)
        .map(|_| {
            let c = SAFE_ALPHABET[(value % base) as usize];
            value /= base;
            char::from(c)
        })
        .collect()
}

/// The `pod-template-hash` of a pod template: 10 safe characters, equal for
/// equal templates and (almost surely) different for different ones.
pub fn pod_template_hash(template: &PodTemplateSpec) -> String {
    // k8s-openapi types serialise deterministically (struct field order,
    // BTreeMap keys), so the JSON bytes are a canonical form.
    let bytes = serde_json::to_vec(template).unwrap_or_default();
    safe_encode(fnv1a64(&bytes), HASH_LEN)
}

/// A short stable suffix derived from `seed` (for example an object's uid).
pub fn stable_suffix(seed: &str) -> String {
    safe_encode(fnv1a64(seed.as_bytes()), SUFFIX_LEN)
}

/// A random 5-character suffix, as `generateName` produces.
pub fn random_suffix<R: Rng + ?Sized>(rng: &mut R) -> String {
    (0..SUFFIX_LEN)
        .map(|_| char::from(SAFE_ALPHABET[rng.random_range(0..SAFE_ALPHABET.len())]))
        .collect()
}

/// The ReplicaSet name for a Deployment and template hash.
pub fn replica_set_name(deployment: &str, hash: &str) -> String {
    format!("{deployment}-{hash}")
}

/// A new Pod name for a ReplicaSet: `<rs>-<5 random chars>`.
pub fn pod_name<R: Rng + ?Sized>(replica_set: &str, rng: &mut R) -> String {
    format!("{replica_set}-{}", random_suffix(rng))
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{Container, PodSpec};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
    use rand::SeedableRng;

    fn template(image: &str) -> PodTemplateSpec {
        PodTemplateSpec {
            metadata: Some(ObjectMeta {
                labels: Some([("app".to_string(), "foo".to_string())].into()),
                ..Default::default()
            }),
            spec: Some(PodSpec {
                containers: vec![Container {
                    name: "app".into(),
                    image: Some(image.into()),
                    ..Default::default()
                }],
                ..Default::default()
            }),
        }
    }

    #[test]
    fn hash_is_stable_and_ten_safe_chars() {
        let a = pod_template_hash(&template("weir-demo:v1"));
        assert_eq!(a, pod_template_hash(&template("weir-demo:v1")));
        assert_eq!(a.len(), HASH_LEN);
        assert!(a.bytes().all(|b| SAFE_ALPHABET.contains(&b)), "{a}");
    }

    #[test]
    fn hash_changes_with_template() {
        assert_ne!(
            pod_template_hash(&template("weir-demo:v1")),
            pod_template_hash(&template("weir-demo:v2"))
        );
    }

    #[test]
    fn pod_names_have_random_safe_suffix() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let a = pod_name("web-abc", &mut rng);
        let b = pod_name("web-abc", &mut rng);
        assert!(a.starts_with("web-abc-"));
        assert_eq!(a.len(), "web-abc-".len() + SUFFIX_LEN);
        assert_ne!(a, b);
    }

    #[test]
    fn stable_suffix_depends_on_seed_only() {
        assert_eq!(stable_suffix("uid-1"), stable_suffix("uid-1"));
        assert_ne!(stable_suffix("uid-1"), stable_suffix("uid-2"));
        assert_eq!(stable_suffix("x").len(), SUFFIX_LEN);
    }

    #[test]
    fn replica_set_name_joins_with_dash() {
        assert_eq!(replica_set_name("web", "abc"), "web-abc");
    }
}
