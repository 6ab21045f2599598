//! The thin I/O layer: the client (from the kubeconfig, as kubectl finds it), the reads that
//! feed a [`View`](super::view::View), the writes of the steering commands, and the streams
//! that wake a watch.

use super::Error;
use super::cli::ClusterArgs;
use super::commands::{HistoryEntry, Target, Write};
use super::view::{Inputs, LiveInput, figures_from};
use crate::children::{REVISION_LABEL, ROLLOUT_LABEL, split_name};
use crate::controller::{chain, split_resource};
use futures::stream::{BoxStream, StreamExt};
use k8s_openapi::api::apps::v1::{ControllerRevision, Deployment};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Pod, PodTemplateSpec};
use kube::api::{Api, DynamicObject, ListParams, Patch, PatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, Config};
use std::time::Duration;
use weir_crds::Rollout;
use weir_crds::smi::metrics::TrafficMetrics;

/// How long a live-metrics request may take before `get` shows the rollout without it.
const LIVE_TIMEOUT: Duration = Duration::from_secs(3);
/// How long connecting to the API server may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The group/version of the SMI metrics API.
const METRICS_API: &str = "/apis/metrics.smi-spec.io/v1alpha1";
/// The operator's leader-election Lease (see `docs/operator.md`).
pub const OPERATOR_LEASE: &str = "weir-operator";

/// A connected client, with the namespace to use and where the cluster is.
#[derive(Clone)]
pub struct Cluster {
    /// The client.
    pub client: Client,
    /// `-n`, else the context's namespace, else `default`.
    pub namespace: String,
    /// The API server's URL, for error messages.
    pub url: String,
}

/// What one API call was, so its error can say so.
#[derive(Debug, Clone, Copy)]
pub struct Call<'a> {
    /// The verb: get, list, patch, watch.
    pub verb: &'a str,
    /// The resource, such as `rollouts.weir.dev` or `rollouts.weir.dev/status`.
    pub resource: &'a str,
    /// The object's name, when there is one.
    pub name: Option<&'a str>,
}

// === impl Cluster ===

impl Cluster {
    /// Loads the configuration as kubectl does (`--kubeconfig`, else `KUBECONFIG`, else
    /// `~/.kube/config`, else in-cluster) with `--context`, `--cluster` and `--user`.
    pub async fn connect(args: &ClusterArgs) -> Result<Self, Error> {
        let options = KubeConfigOptions {
            context: args.context.clone(),
            cluster: args.cluster.clone(),
            user: args.user.clone(),
        };
        let explicit =
            options.context.is_some() || options.cluster.is_some() || options.user.is_some();
        let mut config = match &args.kubeconfig {
            Some(path) => {
                let kubeconfig =
                    Kubeconfig::read_from(path).map_err(|e| Error::Kubeconfig(chain(&e)))?;
                Config::from_custom_kubeconfig(kubeconfig, &options)
                    .await
                    .map_err(|e| Error::Kubeconfig(chain(&e)))?
            }
            None if explicit => Config::from_kubeconfig(&options)
                .await
                .map_err(|e| Error::Kubeconfig(chain(&e)))?,
            None => Config::infer()
                .await
                .map_err(|e| Error::Kubeconfig(chain(&e)))?,
        };
        config.connect_timeout = Some(CONNECT_TIMEOUT);
        if let Some(user) = &args.as_user {
            config.auth_info.impersonate = Some(user.clone());
        }
        if !args.as_groups.is_empty() {
            config.auth_info.impersonate_groups = Some(args.as_groups.clone());
        }
        let namespace = args
            .namespace
            .clone()
            .unwrap_or_else(|| config.default_namespace.clone());
        let url = config.cluster_url.to_string();
        let client = Client::try_from(config).map_err(|e| Error::Kubeconfig(chain(&e)))?;
        Ok(Self {
            client,
            namespace,
            url,
        })
    }

    /// Maps a client error of `call` to an error a person can act on.
    pub fn error(&self, call: Call<'_>, namespace: &str, e: kube::Error) -> Error {
        match &e {
            kube::Error::Api(s) if s.code == 404 && call.name.is_some() => Error::NotFound {
                resource: call.resource.to_string(),
                name: call.name.unwrap_or_default().to_string(),
                namespace: namespace.to_string(),
            },
            kube::Error::Api(s) if s.code == 403 => Error::Forbidden {
                verb: call.verb.to_string(),
                resource: call.resource.to_string(),
                namespace: namespace.to_string(),
                message: s.message.clone(),
            },
            kube::Error::Api(s) => Error::Api {
                verb: call.verb.to_string(),
                resource: call.resource.to_string(),
                message: format!("{} ({} {})", s.message, s.code, s.reason),
            },
            kube::Error::HyperError(_) | kube::Error::Service(_) => Error::Unreachable {
                url: self.url.clone(),
                detail: chain(&e),
            },
            _ => Error::Api {
                verb: call.verb.to_string(),
                resource: call.resource.to_string(),
                message: chain(&e),
            },
        }
    }

    /// The Rollouts API of the namespace in use.
    pub fn rollouts(&self) -> Api<Rollout> {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    /// The Rollout `name`, or NotFound naming it.
    pub async fn rollout(&self, name: &str) -> Result<Rollout, Error> {
        let call = Call {
            verb: "get",
            resource: "rollouts.weir.dev",
            name: Some(name),
        };
        self.rollouts()
            .get(name)
            .await
            .map_err(|e| self.error(call, &self.namespace, e))
    }

    /// Rollouts in the namespace, or in every namespace.
    pub async fn list(&self, all_namespaces: bool) -> Result<Vec<Rollout>, Error> {
        let api: Api<Rollout> = if all_namespaces {
            Api::all(self.client.clone())
        } else {
            self.rollouts()
        };
        let call = Call {
            verb: "list",
            resource: "rollouts.weir.dev",
            name: None,
        };
        let ns = if all_namespaces {
            "(all)"
        } else {
            self.namespace.as_str()
        };
        let list = api
            .list(&ListParams::default())
            .await
            .map_err(|e| self.error(call, ns, e))?;
        Ok(list.items)
    }

    /// Everything `get` shows of the Rollout `name`; live metrics only when `live`.
    pub async fn inputs(&self, name: &str, live: bool) -> Result<Inputs, Error> {
        let rollout = self.rollout(name).await?;
        let ns = self.namespace.as_str();
        let selector = ListParams::default().labels(&format!("{ROLLOUT_LABEL}={name}"));
        let deployments: Api<Deployment> = Api::namespaced(self.client.clone(), ns);
        let call = Call {
            verb: "list",
            resource: "deployments.apps",
            name: None,
        };
        let deployments = deployments
            .list(&selector)
            .await
            .map_err(|e| self.error(call, ns, e))?
            .items;
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), ns);
        let call = Call {
            verb: "list",
            resource: "pods",
            name: None,
        };
        let pods = pods
            .list(&selector)
            .await
            .map_err(|e| self.error(call, ns, e))?
            .items;
        let splits: Api<DynamicObject> =
            Api::namespaced_with(self.client.clone(), ns, &split_resource());
        let call = Call {
            verb: "get",
            resource: "trafficsplits.split.smi-spec.io",
            name: None,
        };
        let split = splits
            .get_opt(&split_name(&rollout))
            .await
            .map_err(|e| self.error(call, ns, e))?
            .map(serde_json::to_value)
            .transpose()
            .map_err(|e| Error::Api {
                verb: "get".into(),
                resource: "trafficsplits.split.smi-spec.io".into(),
                message: e.to_string(),
            })?;
        let live = if live {
            let names: Vec<String> = deployments
                .iter()
                .filter(|d| {
                    d.metadata
                        .labels
                        .as_ref()
                        .is_some_and(|l| l.contains_key(REVISION_LABEL))
                })
                .filter_map(|d| d.metadata.name.clone())
                .collect();
            self.live(&names).await
        } else {
            LiveInput::NotAsked
        };
        Ok(Inputs {
            rollout,
            deployments,
            pods,
            split,
            live,
        })
    }

    /// The TrafficMetrics of each Deployment, read generically from the SMI metrics API.
    async fn live(&self, deployments: &[String]) -> LiveInput {
        if deployments.is_empty() {
            return LiveInput::NotAsked;
        }
        let mut answers = Vec::new();
        let mut all_not_found = true;
        for name in deployments {
            let path = format!(
                "{METRICS_API}/namespaces/{}/deployments/{name}",
                self.namespace
            );
            let answer = match self.get_json::<TrafficMetrics>(&path).await {
                Ok(m) => {
                    all_not_found = false;
                    figures_from(&m)
                }
                Err(LiveError::NotFound(text)) => Err(text),
                Err(LiveError::Other(text)) => {
                    all_not_found = false;
                    Err(text)
                }
            };
            answers.push((name.clone(), answer));
        }
        if all_not_found
            && let Err(LiveError::NotFound(_)) =
                self.get_json::<serde_json::Value>(METRICS_API).await
        {
            return LiveInput::Unavailable(
                "metrics.smi-spec.io/v1alpha1 is not served by this cluster".into(),
            );
        }
        LiveInput::Answers(answers)
    }

    async fn get_json<T: serde::de::DeserializeOwned>(&self, path: &str) -> Result<T, LiveError> {
        let request = http::Request::get(path)
            .body(Vec::new())
            .map_err(|e| LiveError::Other(e.to_string()))?;
        match tokio::time::timeout(LIVE_TIMEOUT, self.client.request::<T>(request)).await {
            Err(_) => Err(LiveError::Other(format!(
                "the metrics API did not answer within {}s",
                LIVE_TIMEOUT.as_secs()
            ))),
            Ok(Ok(value)) => Ok(value),
            Ok(Err(kube::Error::Api(s))) if s.code == 404 => {
                Err(LiveError::NotFound(format!("{path}: {} (404)", s.message)))
            }
            Ok(Err(kube::Error::Api(s))) => Err(LiveError::Other(format!(
                "the metrics API answered {} {}: {}",
                s.code, s.reason, s.message
            ))),
            Ok(Err(e)) => Err(LiveError::Other(chain(&e))),
        }
    }

    /// Makes `write` to the Rollout `name`: status requests through the status subresource,
    /// spec changes on the object; always a patch, never a replace.
    pub async fn write(&self, name: &str, write: &Write) -> Result<(), Error> {
        let api = self.rollouts();
        let params = PatchParams::default();
        let ns = self.namespace.as_str();
        let result = match write.target {
            Target::Status => {
                let call = Call {
                    verb: "patch",
                    resource: "rollouts.weir.dev/status",
                    name: Some(name),
                };
                api.patch_status(name, &params, &Patch::Merge(&write.patch))
                    .await
                    .map_err(|e| self.error(call, ns, e))
            }
            Target::Spec => {
                let call = Call {
                    verb: "patch",
                    resource: "rollouts.weir.dev",
                    name: Some(name),
                };
                api.patch(name, &params, &Patch::Merge(&write.patch))
                    .await
                    .map_err(|e| self.error(call, ns, e))
            }
            Target::SpecJsonPatch => {
                let call = Call {
                    verb: "patch",
                    resource: "rollouts.weir.dev",
                    name: Some(name),
                };
                let patch: json_patch::Patch = serde_json::from_value(write.patch.clone())
                    .map_err(|e| Error::Api {
                        verb: "patch".into(),
                        resource: "rollouts.weir.dev".into(),
                        message: e.to_string(),
                    })?;
                api.patch(name, &params, &Patch::<()>::Json(patch))
                    .await
                    .map_err(|e| self.error(call, ns, e))
            }
        };
        result.map(|_| ())
    }

    /// The kept templates of the Rollout `name` (its ControllerRevisions).
    pub async fn history(&self, name: &str) -> Result<Vec<HistoryEntry>, Error> {
        let api: Api<ControllerRevision> = Api::namespaced(self.client.clone(), &self.namespace);
        let call = Call {
            verb: "list",
            resource: "controllerrevisions.apps",
            name: None,
        };
        let selector = ListParams::default().labels(&format!("{ROLLOUT_LABEL}={name}"));
        let list = api
            .list(&selector)
            .await
            .map_err(|e| self.error(call, &self.namespace, e))?;
        let mut out = Vec::new();
        for cr in list.items {
            let (Some(revision), Some(template)) =
                (cr.revision, cr.data.0.pointer("/spec/template"))
            else {
                continue;
            };
            if let Ok(template) = serde_json::from_value::<PodTemplateSpec>(template.clone()) {
                out.push(HistoryEntry { revision, template });
            }
        }
        Ok(out)
    }

    /// The operator that holds the leader Lease: (Lease namespace, holder identity, the
    /// holder's Pod if it is one).
    pub async fn operator(&self) -> Result<Option<(String, String, Option<Pod>)>, Error> {
        let leases: Api<Lease> = Api::all(self.client.clone());
        let call = Call {
            verb: "list",
            resource: "leases.coordination.k8s.io",
            name: None,
        };
        let found = leases
            .list(&ListParams::default().fields(&format!("metadata.name={OPERATOR_LEASE}")))
            .await
            .map_err(|e| self.error(call, "(all)", e))?;
        let Some(lease) = found.items.into_iter().find(|l| {
            l.spec
                .as_ref()
                .and_then(|s| s.holder_identity.as_ref())
                .is_some()
        }) else {
            return Ok(None);
        };
        let ns = lease.metadata.namespace.clone().unwrap_or_default();
        let holder = lease
            .spec
            .and_then(|s| s.holder_identity)
            .unwrap_or_default();
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), &ns);
        let call = Call {
            verb: "get",
            resource: "pods",
            name: Some(&holder),
        };
        let pod = pods
            .get_opt(&holder)
            .await
            .map_err(|e| self.error(call, &ns, e))?;
        Ok(Some((ns, holder, pod)))
    }

    /// A stream that yields whenever the Rollout `name` (or, with None, any Rollout in scope),
    /// its Deployments, Pods or TrafficSplit change.
    pub fn changes(&self, name: Option<&str>, all_namespaces: bool) -> BoxStream<'static, ()> {
        let client = self.client.clone();
        let ns = self.namespace.clone();
        let rollouts: Api<Rollout> = if all_namespaces {
            Api::all(client.clone())
        } else {
            Api::namespaced(client.clone(), &ns)
        };
        let Some(name) = name else {
            return watcher(rollouts, watcher::Config::default())
                .default_backoff()
                .map(|_| ())
                .boxed();
        };
        let by_name = watcher::Config::default().fields(&format!("metadata.name={name}"));
        let children = watcher::Config::default().labels(&format!("{ROLLOUT_LABEL}={name}"));
        let split_name = format!("{name}-rollout");
        let splits: Api<DynamicObject> =
            Api::namespaced_with(client.clone(), &ns, &split_resource());
        let streams = vec![
            watcher(rollouts, by_name)
                .default_backoff()
                .map(|_| ())
                .boxed(),
            watcher(
                Api::<Deployment>::namespaced(client.clone(), &ns),
                children.clone(),
            )
            .default_backoff()
            .map(|_| ())
            .boxed(),
            watcher(Api::<Pod>::namespaced(client, &ns), children)
                .default_backoff()
                .map(|_| ())
                .boxed(),
            watcher(
                splits,
                watcher::Config::default().fields(&format!("metadata.name={split_name}")),
            )
            .default_backoff()
            .map(|_| ())
            .boxed(),
        ];
        futures::stream::select_all(streams).boxed()
    }
}

enum LiveError {
    NotFound(String),
    Other(String),
}
