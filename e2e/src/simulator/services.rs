//! The Service side of the control plane: ClusterIP allocation (the API
//! server's job in a real cluster) and the EndpointSlice and Endpoints
//! controllers.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Endpoints, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde_json::json;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::cache::Caches;
use super::endpoints::{desired_endpoints, desired_slice, slice_content_eq};
use super::index::LabelIndex;
use super::ipam::IpPool;
use super::{Error, Pacer, Result, SimulatorOptions, describe, span};

/// The ClusterIP allocator and the endpoint controllers' state.
pub(crate) struct ServiceController {
    client: Client,
    caches: Caches,
    pool: IpPool,
    /// Service uid → the ClusterIP it holds from `pool`.
    assigned: HashMap<String, Ipv4Addr>,
    /// `ns/name` → the Endpoints subsets we last wrote.
    endpoints_written: HashMap<String, Endpoints>,
}

fn needs_cluster_ip(svc: &Service) -> bool {
    let Some(spec) = svc.spec.as_ref() else {
        return false;
    };
    let ty = spec.type_.as_deref().unwrap_or("ClusterIP");
    ty != "ExternalName" && spec.cluster_ip.as_deref().unwrap_or_default().is_empty()
}

fn kube_err<K: kube::Resource<DynamicType = ()>>(
    action: &'static str,
    obj: &K,
) -> impl FnOnce(kube::Error) -> Error {
    let object = describe(obj);
    move |source| Error::Kube {
        action,
        object,
        source,
    }
}

// === impl ServiceController ===

impl ServiceController {
    pub(crate) fn new(client: Client, caches: Caches, opts: &SimulatorOptions) -> Self {
        Self {
            client,
            caches,
            pool: IpPool::new(opts.service_cidr.0, opts.service_cidr.1),
            assigned: HashMap::new(),
            endpoints_written: HashMap::new(),
        }
    }

    /// Reconciles every Service on each change until shutdown.
    pub(crate) async fn run(mut self, resync: Duration, shutdown: CancellationToken) {
        let mut pacer = Pacer::new(self.caches.subscribe(), resync);
        loop {
            self.sync_pool();
            let pods = LabelIndex::build(&self.caches.pods.state());
            let slices: HashMap<(String, String), Arc<EndpointSlice>> = self
                .caches
                .slices
                .state()
                .into_iter()
                .map(|s| {
                    let ns = s.metadata.namespace.clone().unwrap_or_default();
                    ((ns, s.metadata.name.clone().unwrap_or_default()), s)
                })
                .collect();
            for svc in self.caches.services.state() {
                if let Err(error) = self
                    .reconcile(&svc, &pods, &slices)
                    .instrument(span("service", &*svc))
                    .await
                {
                    tracing::warn!(%error, "service reconcile failed");
                }
            }
            if !pacer.next(&shutdown).await {
                return;
            }
        }
    }

    /// Reserves addresses found on Services, frees those of deleted ones.
    fn sync_pool(&mut self) {
        let services = self.caches.services.state();
        let live: HashMap<&str, &Service> = services
            .iter()
            .filter_map(|s| Some((s.metadata.uid.as_deref()?, &**s)))
            .collect();
        let gone: Vec<String> = self
            .assigned
            .keys()
            .filter(|u| !live.contains_key(u.as_str()))
            .cloned()
            .collect();
        for uid in gone {
            if let Some(ip) = self.assigned.remove(&uid) {
                self.pool.release(ip);
            }
        }
        for (uid, svc) in live {
            let ip = svc
                .spec
                .as_ref()
                .and_then(|s| s.cluster_ip.as_deref())
                .and_then(|ip| ip.parse().ok());
            if let Some(ip) = ip
                && self.pool.reserve(ip)
            {
                self.assigned.insert(uid.to_string(), ip);
            }
        }
    }

    async fn reconcile(
        &mut self,
        svc: &Service,
        index: &LabelIndex,
        slices: &HashMap<(String, String), Arc<EndpointSlice>>,
    ) -> Result<()> {
        let (Some(ns), Some(name), Some(uid)) = (
            svc.metadata.namespace.as_deref(),
            svc.metadata.name.as_deref(),
            svc.metadata.uid.as_deref(),
        ) else {
            return Ok(());
        };
        if svc.metadata.deletion_timestamp.is_some() {
            return Ok(());
        }
        if needs_cluster_ip(svc) && !self.assigned.contains_key(uid) {
            self.allocate(svc, ns, name, uid).await?;
        }
        let selector = svc
            .spec
            .as_ref()
            .and_then(|s| s.selector.clone())
            .unwrap_or_default();
        let pods = index.select(ns, &selector);
        if let Some(slice) = desired_slice(svc, pods.iter().map(|p| &**p)) {
            let key = (
                ns.to_string(),
                slice.metadata.name.clone().unwrap_or_default(),
            );
            self.write_slice(ns, slice, slices.get(&key)).await?;
        }
        if let Some(ep) = desired_endpoints(svc, pods.iter().map(|p| &**p)) {
            self.write_endpoints(ns, name, ep).await?;
        }
        Ok(())
    }

    async fn allocate(&mut self, svc: &Service, ns: &str, name: &str, uid: &str) -> Result<()> {
        let Some(ip) = self.pool.allocate() else {
            tracing::warn!(service = %describe(svc), "ClusterIP range exhausted");
            return Ok(());
        };
        tracing::info!(service = %describe(svc), %ip, "allocating ClusterIP");
        let api: Api<Service> = Api::namespaced(self.client.clone(), ns);
        let patch =
            json!({ "spec": { "clusterIP": ip.to_string(), "clusterIPs": [ip.to_string()] } });
        match api
            .patch(name, &PatchParams::default(), &Patch::Merge(patch))
            .await
        {
            Ok(_) => {
                self.assigned.insert(uid.to_string(), ip);
                Ok(())
            }
            Err(e) => {
                self.pool.release(ip);
                Err(kube_err("allocate ClusterIP for", svc)(e))
            }
        }
    }

    async fn write_slice(
        &self,
        ns: &str,
        slice: EndpointSlice,
        existing: Option<&Arc<EndpointSlice>>,
    ) -> Result<()> {
        let name = slice.metadata.name.clone().unwrap_or_default();
        let api: Api<EndpointSlice> = Api::namespaced(self.client.clone(), ns);
        match existing {
            Some(cur) if slice_content_eq(cur, &slice) => Ok(()),
            Some(_) => {
                let patch = json!({ "endpoints": slice.endpoints, "ports": slice.ports });
                api.patch(&name, &PatchParams::default(), &Patch::Merge(patch))
                    .await
                    .map(drop)
                    .map_err(kube_err("patch", &slice))
            }
            None => match api.create(&PostParams::default(), &slice).await {
                Err(kube::Error::Api(s)) if s.code == 409 => Ok(()),
                other => other.map(drop).map_err(kube_err("create", &slice)),
            },
        }
    }

    async fn write_endpoints(&mut self, ns: &str, name: &str, ep: Endpoints) -> Result<()> {
        let key = format!("{ns}/{name}");
        if self
            .endpoints_written
            .get(&key)
            .is_some_and(|w| w.subsets == ep.subsets)
        {
            return Ok(());
        }
        let api: Api<Endpoints> = Api::namespaced(self.client.clone(), ns);
        let result = match api.create(&PostParams::default(), &ep).await {
            Err(kube::Error::Api(s)) if s.code == 409 => {
                let patch = json!({ "subsets": ep.subsets });
                api.patch(name, &PatchParams::default(), &Patch::Merge(patch))
                    .await
            }
            other => other,
        };
        result.map_err(kube_err("write", &ep))?;
        self.endpoints_written.insert(key, ep);
        Ok(())
    }
}
