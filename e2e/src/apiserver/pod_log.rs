//! `GET /api/v1/namespaces/{ns}/pods/{name}/log`: what `kubectl logs` reads, from the
//! [`PodLogs`] the workload simulator fills, with the real server's errors for a container
//! that is not there, not started, or has no previous run.

use super::Shared;
use super::error::ApiError;
use super::router::{self, ResourcePath};
use super::server::{Body, BoxError, bytes_response, error_response};
use crate::pod_logs::{self, PodLogs, Which};
use bytes::Bytes;
use futures::StreamExt as _;
use http_body_util::{BodyExt, StreamBody};
use hyper::Response;
use hyper::body::Frame;
use serde_json::Value;
use std::sync::Arc;
use tokio::sync::broadcast::error::RecvError;

/// What the client asked for.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LogQuery {
    /// `container`.
    pub container: Option<String>,
    /// `follow`.
    pub follow: bool,
    /// `previous`.
    pub previous: bool,
    /// `timestamps`.
    pub timestamps: bool,
    /// `tailLines`.
    pub tail: Option<usize>,
}

fn flag(q: &std::collections::HashMap<String, String>, k: &str) -> bool {
    q.get(k).is_some_and(|v| v == "true" || v == "1")
}

/// Parses the query string; a bad `tailLines` is a 400, as upstream's validation.
pub fn parse_query(query: Option<&str>) -> Result<LogQuery, ApiError> {
    let q = router::query(query);
    let tail = match q.get("tailLines") {
        None => None,
        Some(v) => {
            let n: i64 = v.parse().map_err(|_| {
                ApiError::bad_request(format!(
                    "tailLines: Invalid value: \"{v}\": must be an integer"
                ))
            })?;
            Some(usize::try_from(n).map_err(|_| {
                ApiError::new(
                    422,
                    "Invalid",
                    format!("PodLogOptions \"\" is invalid: tailLines: Invalid value: {n}: must be greater than or equal to 0"),
                )
            })?)
        }
    };
    Ok(LogQuery {
        container: q.get("container").filter(|c| !c.is_empty()).cloned(),
        follow: flag(&q, "follow"),
        previous: flag(&q, "previous"),
        timestamps: flag(&q, "timestamps"),
        tail,
    })
}

fn names(pod: &Value, list: &str) -> Vec<String> {
    pod["spec"][list]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["name"].as_str().map(String::from))
        .collect()
}

/// The container to read, or the error a real server gives (pure): no container named when
/// there are several, a name the pod does not have, a container still waiting, or
/// `previous` without a previous run.
pub fn pick_container(pod: &Value, q: &LogQuery) -> Result<String, ApiError> {
    let pod_name = pod["metadata"]["name"].as_str().unwrap_or_default();
    let containers = names(pod, "containers");
    let container = match &q.container {
        Some(c) => c.clone(),
        None if containers.len() == 1 => containers[0].clone(),
        None => {
            return Err(ApiError::bad_request(format!(
                "a container name must be specified for pod {pod_name}, choose one of: [{}]",
                containers.join(" ")
            )));
        }
    };
    if !containers.contains(&container) && !names(pod, "initContainers").contains(&container) {
        return Err(ApiError::bad_request(format!(
            "container {container} is not valid for pod {pod_name}"
        )));
    }
    let status = pod["status"]["containerStatuses"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|s| s["name"] == container.as_str());
    if q.previous {
        let had = status.is_some_and(|s| {
            s["lastState"]["terminated"].is_object() || s["restartCount"].as_i64() > Some(0)
        });
        if !had {
            return Err(no_previous(&container, pod_name));
        }
        return Ok(container);
    }
    // As kubelet: a container waiting to restart shows the output of its last run; only
    // one that never ran is "waiting to start".
    let ran_before = status.is_some_and(|s| s["lastState"]["terminated"].is_object());
    let waiting = match status {
        None => Some("ContainerCreating"),
        Some(_) if ran_before => None,
        Some(s) => s["state"]["waiting"].is_object().then(|| {
            s["state"]["waiting"]["reason"]
                .as_str()
                .unwrap_or("ContainerCreating")
        }),
    };
    if let Some(reason) = waiting {
        return Err(ApiError::bad_request(format!(
            "container \"{container}\" in pod \"{pod_name}\" is waiting to start: {reason}"
        )));
    }
    Ok(container)
}

fn no_previous(container: &str, pod: &str) -> ApiError {
    ApiError::bad_request(format!(
        "previous terminated container \"{container}\" in pod \"{pod}\" not found"
    ))
}

/// Answers a pod log request.
pub async fn handle(
    shared: &Arc<Shared>,
    rp: &ResourcePath,
    query: Option<&str>,
) -> Response<Body> {
    match answer(shared, rp, query) {
        Ok(r) => r,
        Err(e) => error_response(&e),
    }
}

fn answer(
    shared: &Arc<Shared>,
    rp: &ResourcePath,
    query: Option<&str>,
) -> Result<Response<Body>, ApiError> {
    let q = parse_query(query)?;
    let ns = rp.namespace.clone().unwrap_or_default();
    let name = rp.name.clone().unwrap_or_default();
    let pod = {
        let st = shared.state.lock();
        let def = st
            .registry
            .find("", "v1", "pods")
            .ok_or_else(|| ApiError::no_route("pods"))?;
        st.store
            .get(&def.storage, &ns, &name)
            .ok_or_else(|| ApiError::not_found("", "pods", &name))?
    };
    let container = pick_container(&pod, &q)?;
    let logs: &Arc<PodLogs> = shared.pod_logs.get().ok_or_else(|| {
        ApiError::internal(format!(
            "no kubelet serves the logs of pod \"{name}\": this API server runs without the workload simulator"
        ))
    })?;
    let which = if q.previous {
        Which::Previous
    } else {
        Which::Current
    };
    let Some(run) = logs.run(&ns, &name, &container, which) else {
        if q.previous {
            return Err(no_previous(&container, &name));
        }
        return Ok(text(Bytes::new()));
    };
    let (lines, live) = run.snapshot();
    let head = pod_logs::render(&lines, q.tail, q.timestamps).concat();
    let live = match live {
        Some(live) if q.follow => live,
        _ => return Ok(text(Bytes::from(head))),
    };
    Ok(follow(shared, Bytes::from(head), live, q.timestamps))
}

fn text(b: Bytes) -> Response<Body> {
    bytes_response(200, "text/plain", b)
}

/// Streams `head`, then each new line until the run ends, the client goes or the server
/// shuts down. A follower that falls more than the channel's buffer behind misses lines.
fn follow(
    shared: &Arc<Shared>,
    head: Bytes,
    mut live: tokio::sync::broadcast::Receiver<pod_logs::Line>,
    timestamps: bool,
) -> Response<Body> {
    let (mut tx, rx) = futures::channel::mpsc::channel::<Bytes>(16);
    let mut shutdown = shared.shutdown.clone();
    tokio::spawn(async move {
        use futures::SinkExt as _;
        if !head.is_empty() && tx.send(head).await.is_err() {
            return;
        }
        loop {
            let line = tokio::select! {
                _ = shutdown.changed() => return,
                got = live.recv() => match got {
                    Ok(l) => l,
                    Err(RecvError::Lagged(_)) => continue,
                    Err(RecvError::Closed) => return,
                },
            };
            if tx
                .send(pod_logs::format_line(&line, timestamps))
                .await
                .is_err()
            {
                return;
            }
        }
    });
    let stream = rx.map(|b| Ok::<_, BoxError>(Frame::data(b)));
    let mut r = Response::new(BodyExt::boxed(StreamBody::new(stream)));
    if let Ok(v) = http::HeaderValue::from_str("text/plain") {
        r.headers_mut().insert(http::header::CONTENT_TYPE, v);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(statuses: Value) -> Value {
        json!({"metadata": {"name": "web-1"},
               "spec": {"containers": [{"name": "app"}, {"name": "side"}]},
               "status": {"containerStatuses": statuses}})
    }

    fn q(container: Option<&str>, previous: bool) -> LogQuery {
        LogQuery {
            container: container.map(String::from),
            previous,
            ..LogQuery::default()
        }
    }

    fn message(r: Result<String, ApiError>) -> String {
        r.unwrap_err().to_status()["message"]
            .as_str()
            .unwrap()
            .to_string()
    }

    #[test]
    fn the_container_is_picked_or_refused_in_the_real_servers_words() {
        let running = pod(json!([
            {"name": "app", "state": {"running": {}}, "restartCount": 1},
            {"name": "side", "state": {"waiting": {"reason": "ImageNotSimulated"}}, "restartCount": 0, "lastState": {}}
        ]));
        assert_eq!(
            pick_container(&running, &q(Some("app"), false)).unwrap(),
            "app"
        );
        assert_eq!(
            pick_container(&running, &q(Some("app"), true)).unwrap(),
            "app"
        );
        assert_eq!(
            message(pick_container(&running, &q(None, false))),
            "a container name must be specified for pod web-1, choose one of: [app side]"
        );
        assert_eq!(
            message(pick_container(&running, &q(Some("nope"), false))),
            "container nope is not valid for pod web-1"
        );
        assert_eq!(
            message(pick_container(&running, &q(Some("side"), false))),
            "container \"side\" in pod \"web-1\" is waiting to start: ImageNotSimulated"
        );
        assert_eq!(
            message(pick_container(&running, &q(Some("side"), true))),
            "previous terminated container \"side\" in pod \"web-1\" not found"
        );
        let backing_off = pod(json!([
            {"name": "app", "state": {"waiting": {"reason": "CrashLoopBackOff"}}, "restartCount": 0,
             "lastState": {"terminated": {"exitCode": 2}}}
        ]));
        assert_eq!(
            pick_container(&backing_off, &q(Some("app"), false)).unwrap(),
            "app",
            "a container waiting to restart shows its last run's output"
        );
        let fresh = pod(json!(null));
        assert_eq!(
            message(pick_container(&fresh, &q(Some("app"), false))),
            "container \"app\" in pod \"web-1\" is waiting to start: ContainerCreating"
        );
        let one = json!({"metadata": {"name": "solo"}, "spec": {"containers": [{"name": "only"}]},
                         "status": {"containerStatuses": [{"name": "only", "state": {"running": {}}}]}});
        assert_eq!(pick_container(&one, &q(None, false)).unwrap(), "only");
    }

    #[test]
    fn the_query_is_parsed_and_a_bad_tail_refused() {
        let got = parse_query(Some(
            "container=app&follow=true&tailLines=3&timestamps=true",
        ))
        .unwrap();
        assert_eq!(
            got,
            LogQuery {
                container: Some("app".into()),
                follow: true,
                previous: false,
                timestamps: true,
                tail: Some(3)
            }
        );
        assert_eq!(parse_query(Some("tailLines=x")).unwrap_err().code, 400);
        assert_eq!(parse_query(Some("tailLines=-1")).unwrap_err().code, 422);
        assert_eq!(parse_query(None).unwrap(), LogQuery::default());
    }
}
