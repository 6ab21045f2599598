//! Resilience settings as the data path uses them (a validated `TrafficPolicy`), and the pure
//! decisions made with them: whether an attempt is retried, whether a fault fires.

use crate::balance::Strategy;
use crate::breaker::BreakerConfig;
use http::{Method, StatusCode};
use serde::Serialize;
use std::time::Duration;

/// The resilience settings of one backend; the default is "none" (the flags' defaults apply).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Policy {
    /// The TrafficPolicy these came from (`namespace/name`), if any.
    pub name: Option<String>,
    /// The whole request's deadline, retries included (the proxy's default when unset).
    pub timeout: Option<Duration>,
    /// The deadline of each attempt.
    pub per_try_timeout: Option<Duration>,
    /// Retries.
    pub retry: Option<RetrySettings>,
    /// Circuit breaking.
    #[serde(skip)]
    pub breaker: Option<BreakerConfig>,
    /// A delay added to some requests.
    pub delay: Option<DelayFault>,
    /// An error returned instead of forwarding some requests.
    pub abort: Option<AbortFault>,
    /// How endpoints are chosen (the proxy's `--load-balancer` when unset).
    pub load_balancer: Option<Strategy>,
}

/// When and how often to retry.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RetrySettings {
    /// Attempts after the first.
    pub attempts: u32,
    /// The failures that are retried.
    pub on: RetryOn,
    /// Whether `5xx` and `gateway-error` are retried for methods that are not idempotent.
    pub non_idempotent: bool,
    /// The retry budget.
    pub budget: BudgetSettings,
}

/// The classes of failure that are retried.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct RetryOn {
    /// The connection to the endpoint could not be made (the request was never sent).
    pub connect_failure: bool,
    /// 502, 503 or 504, a failure after connecting, or a per-try timeout.
    pub gateway_error: bool,
    /// Any 5xx.
    pub server_error: bool,
}

/// A retry budget: retries may add `ratio` of the requests, plus `min_per_second`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct BudgetSettings {
    /// Retries per original request.
    pub ratio: f32,
    /// Retries per second always allowed.
    pub min_per_second: u32,
    /// How long requests count towards the budget (1 s to 60 s).
    pub ttl: Duration,
}

/// A fixed delay for a share of requests.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct DelayFault {
    /// Percent of requests delayed.
    pub percent: f64,
    /// The delay.
    pub fixed: Duration,
}

/// An error status for a share of requests.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct AbortFault {
    /// Percent of requests aborted.
    pub percent: f64,
    /// The status returned.
    #[serde(serialize_with = "serialize_status")]
    pub status: StatusCode,
}

/// What one attempt came to, for the retry decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// No connection to the endpoint: the request was not sent.
    ConnectFailure,
    /// The endpoint failed after the connection was made.
    UpstreamFailure,
    /// The attempt ran past `perTryTimeout`.
    PerTryTimeout,
    /// The endpoint answered with this status.
    Status(StatusCode),
}

fn serialize_status<S: serde::Serializer>(s: &StatusCode, ser: S) -> Result<S::Ok, S::Error> {
    ser.serialize_u16(s.as_u16())
}

impl Default for BudgetSettings {
    /// Linkerd's defaults: 20% of requests, 10 retries per second, over 10 s.
    fn default() -> Self {
        Self {
            ratio: 0.2,
            min_per_second: 10,
            ttl: Duration::from_secs(10),
        }
    }
}

// === impl RetrySettings ===

impl RetrySettings {
    /// Whether an attempt with this outcome may be retried (the budget aside).
    ///
    /// ```
    /// use http::{Method, StatusCode};
    /// use weir_proxy::policy::{BudgetSettings, Outcome, RetryOn, RetrySettings};
    ///
    /// let retry = RetrySettings {
    ///     attempts: 2,
    ///     on: RetryOn { connect_failure: true, gateway_error: false, server_error: true },
    ///     non_idempotent: false,
    ///     budget: BudgetSettings::default(),
    /// };
    /// let unavailable = Outcome::Status(StatusCode::SERVICE_UNAVAILABLE);
    /// assert!(retry.retries(&Method::GET, unavailable));
    /// // A POST may have had effects: 5xx is retried only for idempotent methods ...
    /// assert!(!retry.retries(&Method::POST, unavailable));
    /// // ... but a request that never reached the endpoint is always safe to send again.
    /// assert!(retry.retries(&Method::POST, Outcome::ConnectFailure));
    /// assert!(!retry.retries(&Method::GET, Outcome::Status(StatusCode::NOT_FOUND)));
    /// ```
    pub fn retries(&self, method: &Method, outcome: Outcome) -> bool {
        let on = self.on;
        if outcome == Outcome::ConnectFailure {
            return on.connect_failure;
        }
        if !(self.non_idempotent || method.is_idempotent()) {
            return false;
        }
        match outcome {
            Outcome::ConnectFailure => on.connect_failure,
            Outcome::UpstreamFailure | Outcome::PerTryTimeout => {
                on.gateway_error || on.server_error
            }
            Outcome::Status(s) => {
                (on.server_error && s.is_server_error())
                    || (on.gateway_error
                        && matches!(
                            s,
                            StatusCode::BAD_GATEWAY
                                | StatusCode::SERVICE_UNAVAILABLE
                                | StatusCode::GATEWAY_TIMEOUT
                        ))
            }
        }
    }
}

/// Whether a fault of `percent` fires for a roll that is uniform in `0.0..100.0`.
///
/// ```
/// use weir_proxy::policy::fires;
/// assert!(fires(10.0, 9.99));
/// assert!(!fires(10.0, 10.0));
/// assert!(!fires(0.0, 0.0));
/// assert!(fires(100.0, 99.999));
/// ```
pub fn fires(percent: f64, roll: f64) -> bool {
    roll < percent
}

#[cfg(test)]
mod tests {
    use super::*;

    fn retry(on: RetryOn, non_idempotent: bool) -> RetrySettings {
        RetrySettings {
            attempts: 1,
            on,
            non_idempotent,
            budget: BudgetSettings::default(),
        }
    }

    #[test]
    fn each_class_retries_what_it_names_and_nothing_else() {
        let only = |connect_failure, gateway_error, server_error| RetryOn {
            connect_failure,
            gateway_error,
            server_error,
        };
        let get = Method::GET;
        let status = |s: u16| Outcome::Status(StatusCode::from_u16(s).unwrap());
        let connect = retry(only(true, false, false), false);
        assert!(connect.retries(&get, Outcome::ConnectFailure));
        assert!(!connect.retries(&get, status(503)));
        assert!(!connect.retries(&get, Outcome::UpstreamFailure));

        let gateway = retry(only(false, true, false), false);
        for s in [502, 503, 504] {
            assert!(gateway.retries(&get, status(s)), "{s}");
        }
        for s in [500, 501, 200, 404] {
            assert!(!gateway.retries(&get, status(s)), "{s}");
        }
        assert!(gateway.retries(&get, Outcome::PerTryTimeout));
        assert!(gateway.retries(&get, Outcome::UpstreamFailure));
        assert!(!gateway.retries(&get, Outcome::ConnectFailure));

        let server = retry(only(false, false, true), false);
        for s in [500, 501, 502, 599] {
            assert!(server.retries(&get, status(s)), "{s}");
        }
        assert!(!server.retries(&get, status(429)));
    }

    #[test]
    fn non_idempotent_methods_are_retried_only_when_allowed_or_never_sent() {
        let all = RetryOn {
            connect_failure: true,
            gateway_error: true,
            server_error: true,
        };
        let s503 = Outcome::Status(StatusCode::SERVICE_UNAVAILABLE);
        for m in [Method::POST, Method::PATCH] {
            assert!(!retry(all, false).retries(&m, s503));
            assert!(!retry(all, false).retries(&m, Outcome::PerTryTimeout));
            assert!(retry(all, false).retries(&m, Outcome::ConnectFailure));
            assert!(retry(all, true).retries(&m, s503));
        }
        for m in [
            Method::GET,
            Method::HEAD,
            Method::PUT,
            Method::DELETE,
            Method::OPTIONS,
        ] {
            assert!(retry(all, false).retries(&m, s503), "{m}");
        }
    }
}
