//! A client Pod for traffic through a gateway: its own ServiceAccount, an IP in the pod
//! range, and requests sent with that IP as their source, so the gateway sees who calls
//! (SMI access control denies by default). [`ClientPod::allow`] writes the HTTPRouteGroup
//! and TrafficTarget that let it in; [`ClientPod::revoke`] removes them again.
//!
//! ```ignore
//! let client = ClientPod::start(&kube, "default", "curl").await?;
//! client.allow(&kube, "default").await?;          // to pods running as ServiceAccount default
//! let report = client.send(target, "foobar", 400).await?;
//! ```

use crate::eventually::eventually;
use crate::loadgen::{self, LoadOptions, Report};
use anyhow::{Context as _, Result};
use k8s_openapi::api::core::v1::{Pod, ServiceAccount};
use kube::Client;
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, PostParams};
use serde_json::json;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

/// A running client Pod.
#[derive(Debug, Clone)]
pub struct ClientPod {
    /// Its namespace.
    pub namespace: String,
    /// Its name, which is also its ServiceAccount's.
    pub name: String,
    /// Its Pod IP: the source address of everything it sends.
    pub ip: Ipv4Addr,
}

/// The TrafficTarget version written (the CRDs' storage version).
fn traffic_targets() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("access.smi-spec.io", "v1alpha3", "TrafficTarget"),
        "traffictargets",
    )
}

/// The HTTPRouteGroup version written (the CRDs' storage version).
fn route_groups() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("specs.smi-spec.io", "v1alpha4", "HTTPRouteGroup"),
        "httproutegroups",
    )
}

// === impl ClientPod ===

impl ClientPod {
    /// Creates ServiceAccount `name` and a Pod `name` running as it (the demo app, so the
    /// simulator runs it), and waits up to 30 s for the Pod to be Ready with an IP.
    pub async fn start(client: &Client, namespace: &str, name: &str) -> Result<Self> {
        let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), namespace);
        let account = serde_json::from_value(json!({"metadata": {"name": name}}))?;
        accounts
            .create(&PostParams::default(), &account)
            .await
            .with_context(|| format!("create ServiceAccount {namespace}/{name}"))?;
        let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
        let pod = serde_json::from_value(json!({
            "metadata": {"name": name, "labels": {"app": name}},
            "spec": {
                "serviceAccountName": name,
                "containers": [{"name": "client", "image": "weir-demo:client",
                                "ports": [{"containerPort": 8080}]}],
            },
        }))?;
        pods.create(&PostParams::default(), &pod)
            .await
            .with_context(|| format!("create Pod {namespace}/{name}"))?;
        let ip = eventually(30, &format!("client Pod {name} Ready"), || async {
            let status = pods.get(name).await?.status.unwrap_or_default();
            let ready = status
                .conditions
                .iter()
                .flatten()
                .any(|c| c.type_ == "Ready" && c.status == "True");
            let ip: Option<Ipv4Addr> = status.pod_ip.as_deref().and_then(|ip| ip.parse().ok());
            match (ready, ip) {
                (true, Some(ip)) => Ok(ip),
                _ => anyhow::bail!("ready {ready}, IP {:?}", status.pod_ip),
            }
        })
        .await?;
        Ok(Self {
            namespace: namespace.to_string(),
            name: name.to_string(),
            ip,
        })
    }

    /// The TrafficTarget (and HTTPRouteGroup) name for traffic to `destination`.
    pub fn target_name(&self, destination: &str) -> String {
        format!("{}-to-{destination}", self.name)
    }

    /// Allows every method and path from this Pod to Pods running as ServiceAccount
    /// `destination` (in the same namespace): an HTTPRouteGroup matching everything and a
    /// TrafficTarget, both named [`ClientPod::target_name`].
    pub async fn allow(&self, client: &Client, destination: &str) -> Result<()> {
        let name = self.target_name(destination);
        let ns = &self.namespace;
        let routes: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &route_groups());
        let group: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "specs.smi-spec.io/v1alpha4", "kind": "HTTPRouteGroup",
            "metadata": {"name": name, "namespace": ns},
            "spec": {"matches": [{"name": "everything", "pathRegex": ".*", "methods": ["*"]}]},
        }))?;
        routes
            .create(&PostParams::default(), &group)
            .await
            .with_context(|| format!("create HTTPRouteGroup {ns}/{name}"))?;
        let targets: Api<DynamicObject> =
            Api::namespaced_with(client.clone(), ns, &traffic_targets());
        let target: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "access.smi-spec.io/v1alpha3", "kind": "TrafficTarget",
            "metadata": {"name": name, "namespace": ns},
            "spec": {
                "destination": {"kind": "ServiceAccount", "name": destination, "namespace": ns},
                "rules": [{"kind": "HTTPRouteGroup", "name": name, "matches": ["everything"]}],
                "sources": [{"kind": "ServiceAccount", "name": self.name, "namespace": ns}],
            },
        }))?;
        targets
            .create(&PostParams::default(), &target)
            .await
            .with_context(|| format!("create TrafficTarget {ns}/{name}"))?;
        Ok(())
    }

    /// Deletes what [`ClientPod::allow`] wrote for `destination`.
    pub async fn revoke(&self, client: &Client, destination: &str) -> Result<()> {
        let name = self.target_name(destination);
        let ns = &self.namespace;
        let targets: Api<DynamicObject> =
            Api::namespaced_with(client.clone(), ns, &traffic_targets());
        targets.delete(&name, &DeleteParams::default()).await?;
        let routes: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &route_groups());
        routes.delete(&name, &DeleteParams::default()).await?;
        Ok(())
    }

    /// Closed-loop load options to `target` with `Host: host`, sent from this Pod's IP.
    pub fn load(&self, target: SocketAddr, host: &str) -> LoadOptions {
        let mut opts = LoadOptions::new(target, host);
        opts.source = Some(IpAddr::V4(self.ip));
        opts
    }

    /// Sends exactly `requests` requests from this Pod over 4 connections (60 s at most)
    /// and returns what came back; every answer and error is in the report, none retried.
    pub async fn send(&self, target: SocketAddr, host: &str, requests: u64) -> Result<Report> {
        let mut opts = self.load(target, host);
        opts.max_requests = Some(requests);
        opts.connections = 4;
        opts.duration = Duration::from_secs(60);
        let result = loadgen::run(opts).await;
        let report = result.report;
        let answered = report.responses() + report.errors.values().sum::<u64>();
        anyhow::ensure!(
            answered == requests,
            "sent {requests} requests from {} but only {answered} completed in {:?}: {:?} {:?}",
            self.ip,
            result.elapsed,
            report.by_status,
            report.errors
        );
        Ok(report)
    }
}
