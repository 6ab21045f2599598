//! `weir.dev/v1alpha1` TrafficPolicy: resilience settings for the traffic to a Service.

use crate::duration::{DURATION_PATTERN, DurationError, parse_duration};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Timeouts, retries, circuit breaking, fault injection and load balancing for a Service.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "weir.dev",
    version = "v1alpha1",
    kind = "TrafficPolicy",
    namespaced
)]
#[kube(shortname = "tp", category = "weir")]
#[kube(doc = "TrafficPolicy sets the resilience of the traffic the Weir proxy sends to a Service.")]
#[kube(printcolumn = r#"{"name": "Target", "type": "string", "jsonPath": ".spec.targetRef.name"}"#)]
#[kube(
    printcolumn = r#"{"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct TrafficPolicySpec {
    /// The Services this policy applies to.
    pub target_ref: PolicyTarget,
    /// The whole request's deadline, retries included.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = DURATION_PATTERN))]
    pub timeout: Option<String>,
    /// The deadline of each attempt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = DURATION_PATTERN))]
    pub per_try_timeout: Option<String>,
    /// When and how often to retry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<RetryPolicy>,
    /// Ejects failing endpoints.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub circuit_breaker: Option<CircuitBreaker>,
    /// Injects delays and errors, for testing resilience.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fault_injection: Option<FaultInjection>,
    /// How an endpoint is picked (default p2c-ewma).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_balancer: Option<LoadBalancer>,
}

/// Selects Services by name or by labels (exactly one).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("has(self.name) != has(self.selector)").message("set exactly one of name or selector"))]
pub struct PolicyTarget {
    /// Always `Service`.
    #[schemars(extend("enum" = ["Service"]))]
    pub kind: String,
    /// The Service's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Selects Services by their labels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<LabelSelector>,
}

/// Retry settings.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RetryPolicy {
    /// Attempts after the first (1 to 10).
    #[schemars(range(min = 1, max = 10))]
    pub attempts: i32,
    /// Which failures are retried (default: gateway-error, connect-failure).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub on: Vec<RetryOn>,
    /// Also retry `5xx` and `gateway-error` for methods that are not idempotent (POST, PATCH).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub retry_non_idempotent: bool,
    /// Caps retries as a share of traffic, so retries cannot multiply an outage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget: Option<RetryBudget>,
}

/// A class of failure that may be retried.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum RetryOn {
    /// Any 5xx response (idempotent methods only, unless `retryNonIdempotent`).
    #[serde(rename = "5xx")]
    ServerError,
    /// The connection to the endpoint failed.
    #[serde(rename = "connect-failure")]
    ConnectFailure,
    /// 502, 503 or 504, or a per-try timeout (idempotent methods only, unless `retryNonIdempotent`).
    #[serde(rename = "gateway-error")]
    GatewayError,
}

/// A retry budget in Linkerd's style.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RetryBudget {
    /// Retries allowed per original request (0 to 1, such as 0.2).
    #[schemars(range(min = 0.0, max = 1.0))]
    pub ratio: f64,
    /// Retries per second always allowed, whatever the ratio.
    #[schemars(range(min = 0))]
    pub min_per_second: i32,
    /// How long requests count towards the budget (default 10s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = DURATION_PATTERN))]
    pub ttl: Option<String>,
}

/// Circuit-breaker settings.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct CircuitBreaker {
    /// Consecutive failures that eject an endpoint.
    #[schemars(range(min = 1))]
    pub consecutive_failures: i32,
    /// The first ejection's length, doubled on each repeat (default 30s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = DURATION_PATTERN))]
    pub base_ejection_time: Option<String>,
    /// The longest ejection (default 5m).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = DURATION_PATTERN))]
    pub max_ejection_time: Option<String>,
    /// The most endpoints, in percent, ejected at once (default 50).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 100))]
    pub max_ejection_percent: Option<i32>,
}

/// Fault-injection settings.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct FaultInjection {
    /// Delays some requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay: Option<DelayFault>,
    /// Answers some requests with an error instead of forwarding them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub abort: Option<AbortFault>,
}

/// A fixed delay added to a share of requests.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct DelayFault {
    /// Percent of requests delayed (0 to 100).
    #[schemars(range(min = 0.0, max = 100.0))]
    pub percent: f64,
    /// How long each is delayed.
    #[schemars(regex(pattern = DURATION_PATTERN))]
    pub fixed: String,
}

/// An error returned for a share of requests.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AbortFault {
    /// Percent of requests aborted (0 to 100).
    #[schemars(range(min = 0.0, max = 100.0))]
    pub percent: f64,
    /// The status code returned (200 to 599).
    #[schemars(range(min = 200, max = 599))]
    pub http_status: i32,
}

/// The load-balancing algorithm.
#[derive(
    schemars::JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default,
)]
pub enum LoadBalancer {
    /// Power of two choices over peak-EWMA latency.
    #[default]
    #[serde(rename = "p2c-ewma")]
    P2cEwma,
    /// Each endpoint in turn.
    #[serde(rename = "round-robin")]
    RoundRobin,
    /// A uniformly random endpoint.
    #[serde(rename = "random")]
    Random,
}

// === impl TrafficPolicySpec ===

impl TrafficPolicySpec {
    /// `timeout`, parsed.
    pub fn timeout(&self) -> Result<Option<Duration>, DurationError> {
        self.timeout
            .as_deref()
            .map(|v| parse_duration("spec.timeout", v))
            .transpose()
    }

    /// `perTryTimeout`, parsed.
    pub fn per_try_timeout(&self) -> Result<Option<Duration>, DurationError> {
        self.per_try_timeout
            .as_deref()
            .map(|v| parse_duration("spec.perTryTimeout", v))
            .transpose()
    }
}
