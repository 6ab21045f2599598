//! SMI access control: a request goes on only when a TrafficTarget allows its source to reach
//! the routed backend's ServiceAccount (each of them, should the backend's Pods differ).

use super::{BoxError, Inward, RequestBody, ResponseBody, Routed, routed};
use crate::app::DefaultPolicy;
use crate::error::ProxyError;
use crate::snapshot::Destination;
use http::{Request, Response};
use std::task::{Context, Poll};
use weir_crds::model::{AccessDecision, AccessRequest, DenyKind};

/// Denies what no TrafficTarget allows (or, with `--default-policy allow`, what no
/// TrafficTarget governs is let through).
#[derive(Debug, Clone)]
pub struct Authorize<S> {
    inner: S,
    default_policy: DefaultPolicy,
}

/// Builds [`Authorize`] services.
#[derive(Debug, Clone, Copy)]
pub struct AuthorizeLayer {
    default_policy: DefaultPolicy,
}

// === impl AuthorizeLayer ===

impl AuthorizeLayer {
    /// A layer enforcing access control with this default.
    pub fn new(default_policy: DefaultPolicy) -> Self {
        Self { default_policy }
    }
}

impl<S> tower::Layer<S> for AuthorizeLayer {
    type Service = Authorize<S>;
    fn layer(&self, inner: S) -> Authorize<S> {
        Authorize {
            inner,
            default_policy: self.default_policy,
        }
    }
}

// === impl Authorize ===

impl<S> tower::Service<Request<RequestBody>> for Authorize<S>
where
    S: tower::Service<Request<RequestBody>, Response = Response<ResponseBody>>,
    S::Error: Into<BoxError>,
{
    type Response = Response<ResponseBody>;
    type Error = BoxError;
    type Future = Inward<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, req: Request<RequestBody>) -> Self::Future {
        let denied = match routed(&req) {
            Ok(r) => check(r, &req, self.default_policy),
            Err(e) => Err(e),
        };
        match denied {
            Ok(()) => Inward::Called {
                fut: self.inner.call(req),
            },
            Err(e) => Inward::failed(e),
        }
    }
}

/// Checks every destination identity behind the routed port.
fn check<B>(routed: &Routed, req: &Request<B>, default: DefaultPolicy) -> Result<(), ProxyError> {
    let Some(port) = routed.port() else {
        return Err(ProxyError::Internal {
            detail: "the routed port is missing".into(),
        });
    };
    for dest in &port.destinations {
        if let Some((kind, reason)) = deny(routed, dest, req, default) {
            let counters = &routed.backend.runtime.counters;
            match kind {
                DenyKind::Unauthenticated => counters.denied_unauthenticated.inc(),
                DenyKind::NoTrafficTarget => counters.denied_no_target.inc(),
                DenyKind::NoMatchingRule => counters.denied_no_rule.inc(),
            };
            let source_identity = match (&routed.source, routed.peer) {
                (Some(p), _) => format!(
                    "ServiceAccount {}/{} (Pod {}/{})",
                    p.namespace, p.service_account, p.namespace, p.name
                ),
                (None, Some(peer)) => format!("unknown client {} (no Pod has this IP)", peer.ip()),
                (None, None) => "unknown client".to_string(),
            };
            let backend = &routed.backend;
            let destination = match &dest.service_account {
                Some(sa) => format!(
                    "ServiceAccount {}/{} (Service {}/{}, port {})",
                    sa.namespace, sa.name, backend.namespace, backend.name, dest.port
                ),
                None => format!(
                    "Service {}/{} (port {})",
                    backend.namespace, backend.name, dest.port
                ),
            };
            tracing::debug!(%source_identity, %destination, %reason, "access denied");
            return Err(ProxyError::Denied {
                source_identity,
                destination,
                reason,
            });
        }
    }
    Ok(())
}

/// Why one destination refuses the request, if it does.
fn deny<B>(
    routed: &Routed,
    dest: &Destination,
    req: &Request<B>,
    default: DefaultPolicy,
) -> Option<(DenyKind, String)> {
    let permissive = default == DefaultPolicy::Allow;
    let Some(sa) = &dest.service_account else {
        return (!permissive).then(|| {
            (
                DenyKind::NoTrafficTarget,
                "the destination's identity is unknown (an endpoint has no known Pod), so no TrafficTarget can allow it"
                    .to_string(),
            )
        });
    };
    let access = &routed.snapshot.access;
    if permissive && !access.governs(sa) {
        return None;
    }
    let request = AccessRequest {
        source: routed.source.as_ref().map(|p| &p.identity),
        destination: sa,
        port: dest.port,
        method: req.method().as_str(),
        path: req.uri().path(),
    };
    let headers = req.headers();
    match access.check(&request, |name| {
        headers.get(name).and_then(|v| v.to_str().ok())
    }) {
        AccessDecision::Allow { .. } => None,
        AccessDecision::Deny { kind, reason } => Some((kind, reason)),
    }
}
