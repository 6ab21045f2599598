//! The proxy's errors: start-up and sources ([`Error`]), rejected objects ([`RejectError`])
//! and per-request failures ([`ProxyError`]), each with the context it concerns.

use crate::host::HostError;
use http::StatusCode;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;
use weir_crds::model::{NormaliseError, ObjectId};

/// A start-up or config-source failure.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A listener could not be bound.
    #[error("binding the {what} listener on {addr}")]
    Bind {
        /// `data` or `admin`.
        what: &'static str,
        /// The address asked for.
        addr: SocketAddr,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The config file could not be read.
    #[error("reading config file {path}")]
    ReadConfig {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The config file is not valid YAML.
    #[error("parsing YAML document {index} of config file {path}")]
    ParseYaml {
        /// The file.
        path: PathBuf,
        /// The document's index, from 0.
        index: usize,
        /// The parser's error.
        #[source]
        source: serde_yaml::Error,
    },
    /// The Kubernetes client could not be built.
    #[error("building the Kubernetes client")]
    KubeClient {
        /// The client's error.
        #[source]
        source: kube::Error,
    },
    /// A signal handler could not be installed.
    #[error("installing the {signal} handler")]
    Signal {
        /// The signal.
        signal: &'static str,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

/// Why one watched object was rejected; everything else keeps working.
#[derive(Debug, thiserror::Error)]
pub enum RejectError {
    /// The object does not decode as its kind.
    #[error("{id}: cannot decode")]
    Decode {
        /// The object.
        id: ObjectId,
        /// The decoder's error.
        #[source]
        source: serde_json::Error,
    },
    /// The object decodes but makes no sense.
    #[error("{id}: {reason}")]
    Invalid {
        /// The object.
        id: ObjectId,
        /// What is wrong.
        reason: String,
    },
    /// An SMI object that does not normalise.
    #[error("{}: invalid SMI object", .source.object)]
    Smi {
        /// The normaliser's error, naming object and field.
        #[source]
        source: NormaliseError,
    },
}

/// A request the proxy could not forward; each maps to a status and a metric label.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// The Host header is missing or malformed.
    #[error("weir-proxy: bad host")]
    BadHost {
        /// The parser's error.
        #[source]
        source: HostError,
    },
    /// No Service and no TrafficSplit has this name.
    #[error("weir-proxy: unknown host {host:?}: no Service {namespace}/{service}")]
    UnknownHost {
        /// The host as received.
        host: String,
        /// The namespace looked in.
        namespace: String,
        /// The Service looked for.
        service: String,
    },
    /// Every backend of the split has weight zero.
    #[error("weir-proxy: all backends of TrafficSplit {namespace}/{split} have weight 0")]
    AllWeightsZero {
        /// The namespace.
        namespace: String,
        /// The TrafficSplit.
        split: String,
    },
    /// The chosen backend has no ready endpoint.
    #[error("weir-proxy: Service {namespace}/{service} has no ready endpoints{detail}")]
    NoEndpoints {
        /// The namespace.
        namespace: String,
        /// The backend Service.
        service: String,
        /// Extra words, such as ` (no such Service)`.
        detail: &'static str,
    },
    /// Access control denied the request.
    #[error("weir-proxy: access denied: {source_identity} may not reach {destination}: {reason}")]
    Denied {
        /// Who sent it, in words.
        source_identity: String,
        /// Where it was going, in words.
        destination: String,
        /// Why, in words.
        reason: String,
    },
    /// Every endpoint of the backend is ejected by the circuit breaker or was tried already.
    #[error(
        "weir-proxy: no endpoint of Service {namespace}/{service} can take the request ({detail})"
    )]
    NoUsableEndpoint {
        /// The namespace.
        namespace: String,
        /// The backend Service.
        service: String,
        /// Why, such as `2 of 2 ejected by the circuit breaker`.
        detail: String,
    },
    /// The endpoint refused or timed out the connection.
    #[error("weir-proxy: cannot connect to {endpoint} (Service {service})")]
    Connect {
        /// The endpoint.
        endpoint: SocketAddr,
        /// The backend Service.
        service: String,
        /// The client's error.
        #[source]
        source: crate::stack::BoxError,
    },
    /// The endpoint failed after the connection was made.
    #[error("weir-proxy: upstream {endpoint} (Service {service}) failed")]
    Upstream {
        /// The endpoint.
        endpoint: SocketAddr,
        /// The backend Service.
        service: String,
        /// The client's error.
        #[source]
        source: crate::stack::BoxError,
    },
    /// The request could not be rewritten for the endpoint.
    #[error("weir-proxy: cannot build the upstream request to {endpoint}")]
    Rewrite {
        /// The endpoint.
        endpoint: SocketAddr,
        /// The error.
        #[source]
        source: http::Error,
    },
    /// The request's body could not be read to buffer it for retries.
    #[error("weir-proxy: reading the request body failed")]
    RequestBody {
        /// The error.
        #[source]
        source: hyper::Error,
    },
    /// No response within the route's `timeout`.
    #[error(
        "weir-proxy: no response from Service {namespace}/{service} within {after:?} (timeout)"
    )]
    Timeout {
        /// The namespace.
        namespace: String,
        /// The backend Service.
        service: String,
        /// The timeout.
        after: Duration,
    },
    /// One attempt ran past the route's `perTryTimeout`.
    #[error(
        "weir-proxy: no response from {endpoint} (Service {service}) within {after:?} (perTryTimeout)"
    )]
    PerTryTimeout {
        /// The endpoint.
        endpoint: SocketAddr,
        /// The backend Service.
        service: String,
        /// The timeout.
        after: Duration,
    },
    /// Too many requests are in flight.
    #[error("weir-proxy: overloaded: too many requests in flight; retry later")]
    Overloaded,
    /// A bug: something the stack relies on is missing.
    #[error("weir-proxy: internal error: {detail}")]
    Internal {
        /// What went wrong.
        detail: String,
    },
}

// === impl ProxyError ===

impl ProxyError {
    /// The response status for this error.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadHost { .. } => StatusCode::BAD_REQUEST,
            Self::UnknownHost { .. } => StatusCode::NOT_FOUND,
            Self::Denied { .. } => StatusCode::FORBIDDEN,
            Self::AllWeightsZero { .. }
            | Self::NoEndpoints { .. }
            | Self::NoUsableEndpoint { .. }
            | Self::Overloaded => StatusCode::SERVICE_UNAVAILABLE,
            Self::Connect { .. } | Self::Upstream { .. } | Self::Rewrite { .. } => {
                StatusCode::BAD_GATEWAY
            }
            Self::RequestBody { .. } => StatusCode::BAD_REQUEST,
            Self::Timeout { .. } | Self::PerTryTimeout { .. } => StatusCode::GATEWAY_TIMEOUT,
            Self::Internal { .. } => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The `kind` label of `weir_proxy_errors_total`.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Self::BadHost { .. } => "bad_host",
            Self::UnknownHost { .. } => "unknown_host",
            Self::AllWeightsZero { .. } => "all_weights_zero",
            Self::NoEndpoints { .. } => "no_endpoints",
            Self::Denied { .. } => "denied",
            Self::NoUsableEndpoint { .. } => "no_usable_endpoint",
            Self::Connect { .. } => "connect",
            Self::Upstream { .. } => "upstream",
            Self::Rewrite { .. } => "rewrite",
            Self::RequestBody { .. } => "request_body",
            Self::Timeout { .. } => "timeout",
            Self::PerTryTimeout { .. } => "per_try_timeout",
            Self::Overloaded => "overloaded",
            Self::Internal { .. } => "internal",
        }
    }

    /// The response body: the message and its causes, one line.
    pub fn body(&self) -> String {
        let mut text = crate::index::error_chain(self).replace('\n', " ");
        text.push('\n');
        text
    }
}

/// The label of `weir_proxy_errors_total` for a refused connection.
pub const CONNECTION_LIMIT_LABEL: &str = "connection_limit";
