//! What the simulated pods print, kept for `kubectl logs`: the simulator's kubelet writes
//! each container's output here, and the local API server reads it for `pods/{name}/log`,
//! as kube-apiserver asks the kubelet that runs the pod.
//!
//! Each container keeps its current run and the one before it (`--previous`), each bounded
//! to [`MAX_BYTES`]: the oldest lines go first, as a rotated container log does.

use bytes::Bytes;
use chrono::{DateTime, Utc};
use parking_lot::Mutex;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use tokio::sync::broadcast;

/// The most bytes kept per container run.
pub const MAX_BYTES: usize = 1024 * 1024;
/// How many lines a slow follower may fall behind before it misses some.
const FOLLOW_BUFFER: usize = 1024;

/// One line of output, with its trailing newline.
#[derive(Debug, Clone)]
pub struct Line {
    /// When it was written.
    pub at: DateTime<Utc>,
    /// The text, ending in `\n`.
    pub text: Bytes,
}

#[derive(Debug)]
struct Buffer {
    lines: VecDeque<Line>,
    bytes: usize,
    /// `None` once the run has ended: followers then stop.
    live: Option<broadcast::Sender<Line>>,
}

/// One run of one container: its kept lines and its live followers.
#[derive(Debug)]
pub struct RunLog {
    buf: Mutex<Buffer>,
}

// === impl RunLog ===

impl RunLog {
    fn new() -> Self {
        let (tx, _) = broadcast::channel(FOLLOW_BUFFER);
        Self {
            buf: Mutex::new(Buffer {
                lines: VecDeque::new(),
                bytes: 0,
                live: Some(tx),
            }),
        }
    }

    /// Appends one line (a newline is added when missing).
    pub fn push(&self, text: &[u8]) {
        let mut v = text.to_vec();
        if v.last() != Some(&b'\n') {
            v.push(b'\n');
        }
        let line = Line {
            at: Utc::now(),
            text: Bytes::from(v),
        };
        let mut b = self.buf.lock();
        b.bytes += line.text.len();
        b.lines.push_back(line.clone());
        while b.bytes > MAX_BYTES {
            match b.lines.pop_front() {
                Some(old) => b.bytes -= old.text.len(),
                None => break,
            }
        }
        if let Some(tx) = &b.live {
            let _ = tx.send(line);
        }
    }

    /// Marks the run as over: followers get what is left and stop.
    pub fn end(&self) {
        self.buf.lock().live = None;
    }

    /// The kept lines and, while the run lasts, a receiver of the lines after them (taken
    /// together, so a follower misses nothing and sees nothing twice).
    pub fn snapshot(&self) -> (Vec<Line>, Option<broadcast::Receiver<Line>>) {
        let b = self.buf.lock();
        (
            b.lines.iter().cloned().collect(),
            b.live.as_ref().map(broadcast::Sender::subscribe),
        )
    }
}

#[derive(Debug)]
struct Container {
    pod_uid: String,
    current: Arc<RunLog>,
    previous: Option<Arc<RunLog>>,
}

/// Every simulated container's output, by (namespace, pod, container).
#[derive(Debug, Default)]
pub struct PodLogs {
    containers: Mutex<HashMap<(String, String, String), Container>>,
}

/// Which run of a container to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Which {
    /// The current (or last) run.
    Current,
    /// The run before it (`--previous`).
    Previous,
}

// === impl PodLogs ===

impl PodLogs {
    /// An empty store, to share between a simulator and an API server.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Starts a new run of `container` in pod `ns/pod` (uid `pod_uid`): the current run
    /// becomes the previous one, unless the pod is a new one of the same name.
    pub fn start_run(&self, ns: &str, pod: &str, pod_uid: &str, container: &str) -> Arc<RunLog> {
        let run = Arc::new(RunLog::new());
        let key = (ns.to_string(), pod.to_string(), container.to_string());
        let mut all = self.containers.lock();
        let previous = all.remove(&key).filter(|c| c.pod_uid == pod_uid).map(|c| {
            c.current.end();
            c.current
        });
        all.insert(
            key,
            Container {
                pod_uid: pod_uid.to_string(),
                current: run.clone(),
                previous,
            },
        );
        run
    }

    /// Forgets the pod with uid `pod_uid` (it was deleted).
    pub fn remove_pod(&self, pod_uid: &str) {
        self.containers.lock().retain(|_, c| {
            if c.pod_uid == pod_uid {
                c.current.end();
            }
            c.pod_uid != pod_uid
        });
    }

    /// The run `which` of `container` in `ns/pod`, if it has one.
    pub fn run(&self, ns: &str, pod: &str, container: &str, which: Which) -> Option<Arc<RunLog>> {
        let key = (ns.to_string(), pod.to_string(), container.to_string());
        let all = self.containers.lock();
        let c = all.get(&key)?;
        match which {
            Which::Current => Some(c.current.clone()),
            Which::Previous => c.previous.clone(),
        }
    }
}

/// The last `tail` of `lines` (all with `None`), each prefixed with its RFC 3339 time
/// (nanoseconds, as kubelet writes them) when `timestamps`.
pub fn render(lines: &[Line], tail: Option<usize>, timestamps: bool) -> Vec<Bytes> {
    let skip = tail.map_or(0, |n| lines.len().saturating_sub(n));
    lines[skip..]
        .iter()
        .map(|l| format_line(l, timestamps))
        .collect()
}

/// One line as sent to the client.
pub fn format_line(l: &Line, timestamps: bool) -> Bytes {
    if !timestamps {
        return l.text.clone();
    }
    let mut v =
        l.at.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
            .into_bytes();
    v.push(b' ');
    v.extend_from_slice(&l.text);
    Bytes::from(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(lines: &[Bytes]) -> Vec<String> {
        lines
            .iter()
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .collect()
    }

    #[test]
    fn a_run_keeps_its_lines_and_tail_takes_the_last_ones() {
        let logs = PodLogs::new();
        let run = logs.start_run("ns", "p", "uid1", "c");
        for i in 0..5 {
            run.push(format!("line {i}").as_bytes());
        }
        let (lines, live) = logs.run("ns", "p", "c", Which::Current).unwrap().snapshot();
        assert!(live.is_some());
        assert_eq!(
            texts(&render(&lines, Some(2), false)),
            ["line 3\n", "line 4\n"]
        );
        assert_eq!(render(&lines, None, false).len(), 5);
        assert_eq!(render(&lines, Some(0), false).len(), 0);
        assert_eq!(render(&lines, Some(50), false).len(), 5);
        let stamped = texts(&render(&lines, Some(1), true));
        assert!(stamped[0].ends_with("Z line 4\n"), "{stamped:?}");
    }

    #[test]
    fn a_restart_keeps_the_previous_run_and_a_new_pod_of_the_same_name_does_not() {
        let logs = PodLogs::new();
        logs.start_run("ns", "p", "uid1", "c").push(b"first");
        let second = logs.start_run("ns", "p", "uid1", "c");
        second.push(b"second");
        let (prev, live) = logs
            .run("ns", "p", "c", Which::Previous)
            .unwrap()
            .snapshot();
        assert_eq!(texts(&render(&prev, None, false)), ["first\n"]);
        assert!(live.is_none(), "the previous run has ended");
        logs.start_run("ns", "p", "uid2", "c");
        assert!(logs.run("ns", "p", "c", Which::Previous).is_none());
        logs.remove_pod("uid2");
        assert!(logs.run("ns", "p", "c", Which::Current).is_none());
    }

    #[test]
    fn a_run_is_bounded_in_bytes_dropping_the_oldest_lines() {
        let run = RunLog::new();
        let line = vec![b'x'; 1023];
        for _ in 0..(MAX_BYTES / 1024 + 10) {
            run.push(&line);
        }
        run.push(b"last");
        let (lines, _) = run.snapshot();
        let total: usize = lines.iter().map(|l| l.text.len()).sum();
        assert!(total <= MAX_BYTES, "{total}");
        assert_eq!(&lines.last().unwrap().text[..], b"last\n");
    }

    #[tokio::test]
    async fn a_follower_gets_new_lines_then_stops_when_the_run_ends() {
        let run = RunLog::new();
        run.push(b"old");
        let (lines, live) = run.snapshot();
        let mut live = live.unwrap();
        run.push(b"new");
        run.end();
        assert_eq!(lines.len(), 1);
        assert_eq!(&live.recv().await.unwrap().text[..], b"new\n");
        assert!(live.recv().await.is_err());
    }
}
