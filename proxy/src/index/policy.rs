//! Decoding and validating a `weir.dev/v1alpha1` TrafficPolicy into a [`Policy`].

use super::RejectError;
use crate::balance::Strategy;
use crate::breaker::BreakerConfig;
use crate::policy::{AbortFault, BudgetSettings, DelayFault, Policy, RetryOn, RetrySettings};
use http::StatusCode;
use kube::core::{Selector, SelectorExt};
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::Duration;
use weir_crds::duration::parse_duration;
use weir_crds::model::ObjectId;
use weir_crds::policy::{self as api, LoadBalancer, TrafficPolicy};

/// A TrafficPolicy, validated: which Services it targets and its settings.
#[derive(Debug, Clone)]
pub struct PolicyInfo {
    /// The Services it applies to.
    pub target: PolicyTarget,
    /// The settings.
    pub policy: Policy,
}

/// The Services a policy applies to.
#[derive(Debug, Clone)]
pub enum PolicyTarget {
    /// The Service of this name.
    Name(String),
    /// The Services whose labels match.
    Selector(Selector),
}

// === impl PolicyTarget ===

impl PolicyTarget {
    /// Whether the policy applies to a Service with this name and these labels.
    pub fn selects(&self, name: &str, labels: &BTreeMap<String, String>) -> bool {
        match self {
            Self::Name(n) => n == name,
            Self::Selector(s) => s.matches(labels),
        }
    }
}

// === impl PolicyInfo ===

impl PolicyInfo {
    /// Decodes and validates a TrafficPolicy; every error names the field at fault.
    pub fn decode(id: &ObjectId, value: &Value) -> Result<Self, RejectError> {
        let tp: TrafficPolicy =
            serde_json::from_value(value.clone()).map_err(|source| RejectError::Decode {
                id: id.clone(),
                source,
            })?;
        let invalid = |field: &str, reason: String| RejectError::Invalid {
            id: id.clone(),
            reason: format!("{field}: {reason}"),
        };
        let spec = tp.spec;
        let target = match (
            &spec.target_ref.kind[..],
            &spec.target_ref.name,
            &spec.target_ref.selector,
        ) {
            ("Service", Some(name), None) if !name.is_empty() => PolicyTarget::Name(name.clone()),
            ("Service", None, Some(sel)) => PolicyTarget::Selector(
                Selector::try_from(sel.clone())
                    .map_err(|e| invalid("spec.targetRef.selector", e.to_string()))?,
            ),
            ("Service", _, _) => {
                return Err(invalid(
                    "spec.targetRef",
                    "set exactly one of name or selector".into(),
                ));
            }
            (other, _, _) => {
                return Err(invalid(
                    "spec.targetRef.kind",
                    format!("{other:?} is not supported; only Service is"),
                ));
            }
        };
        let duration = |field: &str, v: &Option<String>| -> Result<Option<Duration>, RejectError> {
            v.as_deref()
                .map(|v| parse_duration(field, v).map_err(|e| invalid(field, e.to_string())))
                .transpose()
        };
        let positive = |field: &str, d: Option<Duration>| match d {
            Some(d) if d.is_zero() => Err(invalid(field, "must be more than 0".into())),
            other => Ok(other),
        };
        let policy = Policy {
            name: Some(format!("{}/{}", id.namespace, id.name)),
            timeout: positive("spec.timeout", duration("spec.timeout", &spec.timeout)?)?,
            per_try_timeout: positive(
                "spec.perTryTimeout",
                duration("spec.perTryTimeout", &spec.per_try_timeout)?,
            )?,
            retry: spec
                .retries
                .as_ref()
                .map(|r| retry(r, &invalid, &duration))
                .transpose()?,
            breaker: spec
                .circuit_breaker
                .as_ref()
                .map(|b| breaker(b, &invalid, &duration))
                .transpose()?,
            delay: spec
                .fault_injection
                .as_ref()
                .and_then(|f| f.delay.as_ref())
                .map(|d| {
                    Ok::<_, RejectError>(DelayFault {
                        percent: percent("spec.faultInjection.delay.percent", d.percent, &invalid)?,
                        fixed: duration("spec.faultInjection.delay.fixed", &Some(d.fixed.clone()))?
                            .unwrap_or_default(),
                    })
                })
                .transpose()?,
            abort: spec
                .fault_injection
                .as_ref()
                .and_then(|f| f.abort.as_ref())
                .map(|a| {
                    let status = u16::try_from(a.http_status)
                        .ok()
                        .filter(|s| (200..=599).contains(s))
                        .and_then(|s| StatusCode::from_u16(s).ok())
                        .ok_or_else(|| {
                            invalid(
                                "spec.faultInjection.abort.httpStatus",
                                format!("{} is not a status from 200 to 599", a.http_status),
                            )
                        })?;
                    Ok::<_, RejectError>(AbortFault {
                        percent: percent("spec.faultInjection.abort.percent", a.percent, &invalid)?,
                        status,
                    })
                })
                .transpose()?,
            load_balancer: spec.load_balancer.map(|lb| match lb {
                LoadBalancer::P2cEwma => Strategy::P2cEwma,
                LoadBalancer::RoundRobin => Strategy::RoundRobin,
                LoadBalancer::Random => Strategy::Random,
            }),
        };
        Ok(Self { target, policy })
    }
}

type Invalid<'a> = dyn Fn(&str, String) -> RejectError + 'a;
type ParseDuration<'a> =
    dyn Fn(&str, &Option<String>) -> Result<Option<Duration>, RejectError> + 'a;

fn percent(field: &str, p: f64, invalid: &Invalid<'_>) -> Result<f64, RejectError> {
    if p.is_finite() && (0.0..=100.0).contains(&p) {
        Ok(p)
    } else {
        Err(invalid(
            field,
            format!("{p} is not a percentage from 0 to 100"),
        ))
    }
}

fn retry(
    r: &api::RetryPolicy,
    invalid: &Invalid<'_>,
    duration: &ParseDuration<'_>,
) -> Result<RetrySettings, RejectError> {
    let attempts = u32::try_from(r.attempts)
        .ok()
        .filter(|a| (1..=10).contains(a))
        .ok_or_else(|| {
            invalid(
                "spec.retries.attempts",
                format!("{} is not from 1 to 10", r.attempts),
            )
        })?;
    let mut on = RetryOn::default();
    if r.on.is_empty() {
        on.connect_failure = true;
        on.gateway_error = true;
    }
    for class in &r.on {
        match class {
            api::RetryOn::ConnectFailure => on.connect_failure = true,
            api::RetryOn::GatewayError => on.gateway_error = true,
            api::RetryOn::ServerError => on.server_error = true,
        }
    }
    let mut budget = BudgetSettings::default();
    if let Some(b) = &r.budget {
        if !(b.ratio.is_finite() && (0.0..=1.0).contains(&b.ratio)) {
            return Err(invalid(
                "spec.retries.budget.ratio",
                format!("{} is not from 0 to 1", b.ratio),
            ));
        }
        budget.ratio = b.ratio as f32;
        budget.min_per_second = u32::try_from(b.min_per_second).map_err(|_| {
            invalid(
                "spec.retries.budget.minPerSecond",
                format!("{} is negative", b.min_per_second),
            )
        })?;
        if let Some(ttl) = duration("spec.retries.budget.ttl", &b.ttl)? {
            if !(Duration::from_secs(1)..=Duration::from_secs(60)).contains(&ttl) {
                return Err(invalid(
                    "spec.retries.budget.ttl",
                    "must be from 1s to 60s".into(),
                ));
            }
            budget.ttl = ttl;
        }
    }
    Ok(RetrySettings {
        attempts,
        on,
        non_idempotent: r.retry_non_idempotent,
        budget,
    })
}

fn breaker(
    b: &api::CircuitBreaker,
    invalid: &Invalid<'_>,
    duration: &ParseDuration<'_>,
) -> Result<BreakerConfig, RejectError> {
    let consecutive_failures = u32::try_from(b.consecutive_failures)
        .ok()
        .filter(|n| *n >= 1)
        .ok_or_else(|| {
            invalid(
                "spec.circuitBreaker.consecutiveFailures",
                format!("{} is less than 1", b.consecutive_failures),
            )
        })?;
    let base_ejection = duration(
        "spec.circuitBreaker.baseEjectionTime",
        &b.base_ejection_time,
    )?
    .unwrap_or(Duration::from_secs(30));
    let max_ejection = duration("spec.circuitBreaker.maxEjectionTime", &b.max_ejection_time)?
        .unwrap_or(Duration::from_secs(300));
    if base_ejection.is_zero() {
        return Err(invalid(
            "spec.circuitBreaker.baseEjectionTime",
            "must be more than 0".into(),
        ));
    }
    if max_ejection < base_ejection {
        return Err(invalid(
            "spec.circuitBreaker.maxEjectionTime",
            "must not be shorter than baseEjectionTime".into(),
        ));
    }
    let max_ejection_percent = match b.max_ejection_percent {
        None => 50,
        Some(p) => u32::try_from(p).ok().filter(|p| *p <= 100).ok_or_else(|| {
            invalid(
                "spec.circuitBreaker.maxEjectionPercent",
                format!("{p} is not from 0 to 100"),
            )
        })?,
    };
    Ok(BreakerConfig {
        consecutive_failures,
        base_ejection,
        max_ejection,
        max_ejection_percent,
    })
}
