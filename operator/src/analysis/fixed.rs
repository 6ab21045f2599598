//! A source that answers with figures given in advance: for tests and demos, injected
//! through the library (the shipped binary always measures).

use super::{MetricsSource, SampleQuery, SourceError, TrafficSample};
use futures::future::BoxFuture;
use k8s_openapi::jiff::Timestamp;
use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// Figures for a target: counts and latencies (ms); the window and time come from the query.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Figures {
    /// Successful responses.
    pub successes: f64,
    /// Failed responses.
    pub failures: f64,
    /// p50, p90 and p99 latency in milliseconds.
    pub latency_ms: [f64; 3],
}

/// What a [`FixedSource`] answers for a target.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// These figures.
    Figures(Figures),
    /// An empty result.
    Empty,
    /// An error with this message.
    Fail(String),
}

/// Answers every query with fixed figures, optionally per Deployment name; the answers
/// can be changed while it is in use.
#[derive(Debug, Clone)]
pub struct FixedSource {
    answers: Arc<Mutex<(Answer, BTreeMap<String, Answer>)>>,
}

// === impl FixedSource ===

impl FixedSource {
    /// Answers every target with `answer`.
    pub fn new(answer: Answer) -> Self {
        Self {
            answers: Arc::new(Mutex::new((answer, BTreeMap::new()))),
        }
    }

    /// A healthy canary: 1000 successes, no failures, 5 ms at every percentile.
    pub fn healthy() -> Self {
        Self::new(Answer::Figures(Figures {
            successes: 1000.0,
            failures: 0.0,
            latency_ms: [5.0; 3],
        }))
    }

    /// Changes the answer for every target without its own.
    pub fn set(&self, answer: Answer) {
        self.answers.lock().0 = answer;
    }

    /// Gives the target named `name` its own answer.
    pub fn set_for(&self, name: &str, answer: Answer) {
        self.answers.lock().1.insert(name.to_string(), answer);
    }
}

impl MetricsSource for FixedSource {
    fn describe(&self) -> String {
        "fixed figures".into()
    }

    fn sample<'a>(
        &'a self,
        query: &'a SampleQuery,
    ) -> BoxFuture<'a, Result<Option<TrafficSample>, SourceError>> {
        let answer = {
            let answers = self.answers.lock();
            answers
                .1
                .get(&query.target.name)
                .cloned()
                .unwrap_or_else(|| answers.0.clone())
        };
        let window: Duration = query.window;
        let as_of: Timestamp = query.at;
        Box::pin(async move {
            match answer {
                Answer::Figures(f) => Ok(Some(TrafficSample {
                    successes: f.successes,
                    failures: f.failures,
                    p50_ms: Some(f.latency_ms[0]),
                    p90_ms: Some(f.latency_ms[1]),
                    p99_ms: Some(f.latency_ms[2]),
                    window,
                    as_of,
                })),
                Answer::Empty => Ok(None),
                Answer::Fail(message) => Err(SourceError::Unavailable {
                    source_name: self.describe(),
                    message,
                }),
            }
        })
    }
}
