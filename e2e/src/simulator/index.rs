//! Per-pass indexes over the stores, so a pass costs O(objects) rather than
//! O(owners × objects): children by controller uid, pods by label, slices
//! by Service.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::Resource;

use super::endpoints::{SERVICE_NAME_LABEL, selector_matches};

/// Objects grouped by the uid of their controller ownerReference.
#[derive(Debug)]
pub struct OwnerIndex<K> {
    by_owner: HashMap<String, Vec<Arc<K>>>,
}

// === impl OwnerIndex ===

impl<K: Resource> OwnerIndex<K> {
    /// Groups `items` by controller uid (items without one are left out).
    pub fn build(items: impl IntoIterator<Item = Arc<K>>) -> Self {
        let mut by_owner: HashMap<String, Vec<Arc<K>>> = HashMap::new();
        for item in items {
            let owner = item
                .meta()
                .owner_references
                .iter()
                .flatten()
                .find(|o| o.controller == Some(true))
                .map(|o| o.uid.clone());
            if let Some(uid) = owner {
                by_owner.entry(uid).or_default().push(item);
            }
        }
        Self { by_owner }
    }

    /// The objects controlled by `uid`.
    pub fn get(&self, uid: &str) -> &[Arc<K>] {
        self.by_owner.get(uid).map_or(&[], Vec::as_slice)
    }
}

/// Pods keyed by `(namespace, label key, label value)`.
#[derive(Debug, Default)]
pub struct LabelIndex {
    by_label: HashMap<(String, String, String), Vec<Arc<Pod>>>,
}

// === impl LabelIndex ===

impl LabelIndex {
    /// Indexes every label of every pod.
    pub fn build(pods: &[Arc<Pod>]) -> Self {
        let mut by_label: HashMap<_, Vec<Arc<Pod>>> = HashMap::new();
        for pod in pods {
            let ns = pod.metadata.namespace.clone().unwrap_or_default();
            for (k, v) in pod.metadata.labels.iter().flatten() {
                by_label
                    .entry((ns.clone(), k.clone(), v.clone()))
                    .or_default()
                    .push(pod.clone());
            }
        }
        Self { by_label }
    }

    /// The pods in `ns` that an equality selector matches.
    pub fn select(&self, ns: &str, selector: &BTreeMap<String, String>) -> Vec<Arc<Pod>> {
        let smallest = selector
            .iter()
            .map(|(k, v)| {
                let key = (ns.to_string(), k.clone(), v.clone());
                self.by_label.get(&key).map_or(&[][..], Vec::as_slice)
            })
            .min_by_key(|pods| pods.len());
        smallest
            .unwrap_or_default()
            .iter()
            .filter(|p| selector_matches(selector, p.metadata.labels.as_ref()))
            .cloned()
            .collect()
    }
}

/// EndpointSlices grouped by `(namespace, service name)`.
pub fn slices_by_service(
    slices: Vec<Arc<EndpointSlice>>,
) -> HashMap<(String, String), Vec<Arc<EndpointSlice>>> {
    let mut out: HashMap<_, Vec<_>> = HashMap::new();
    for s in slices {
        let ns = s.metadata.namespace.clone().unwrap_or_default();
        let svc = s
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(SERVICE_NAME_LABEL))
            .cloned();
        if let Some(svc) = svc {
            out.entry((ns, svc)).or_default().push(s);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simulator::fixtures::{labels, mk_owned_pod, mk_pod};

    #[test]
    fn owner_index_groups_by_controller_uid() {
        let pods = [
            mk_owned_pod("a", "rs1", true),
            mk_owned_pod("b", "rs2", true),
            mk_owned_pod("c", "rs1", false),
            mk_pod("orphan", &[], None, false),
        ];
        let idx = OwnerIndex::build(pods.into_iter().map(Arc::new));
        let names: Vec<_> = idx
            .get("uid-rs1")
            .iter()
            .map(|p| p.metadata.name.clone().unwrap())
            .collect();
        assert_eq!(names, ["a", "c"]);
        assert_eq!(idx.get("uid-rs2").len(), 1);
        assert!(idx.get("uid-none").is_empty());
    }

    #[test]
    fn label_index_selects_like_a_full_scan() {
        let pods: Vec<Arc<Pod>> = [
            mk_pod("a", &[("app", "web"), ("rev", "1")], None, true),
            mk_pod("b", &[("app", "web"), ("rev", "2")], None, true),
            mk_pod("c", &[("app", "db")], None, true),
        ]
        .into_iter()
        .map(Arc::new)
        .collect();
        let idx = LabelIndex::build(&pods);
        let pick = |sel: &[(&str, &str)]| -> Vec<String> {
            let mut v: Vec<_> = idx
                .select("default", &labels(sel))
                .iter()
                .map(|p| p.metadata.name.clone().unwrap())
                .collect();
            v.sort();
            v
        };
        assert_eq!(pick(&[("app", "web")]), ["a", "b"]);
        assert_eq!(pick(&[("app", "web"), ("rev", "2")]), ["b"]);
        assert!(pick(&[("app", "nope")]).is_empty());
        assert!(pick(&[]).is_empty());
        assert!(idx.select("other", &labels(&[("app", "web")])).is_empty());
    }
}
