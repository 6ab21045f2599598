//! The one way the end-to-end tests wait for a state: poll with a deadline, and on timeout
//! say what was seen last.

use std::fmt::Debug;
use std::future::Future;
use std::time::Duration;

/// How often [`eventually`] polls.
pub const POLL_EVERY: Duration = Duration::from_millis(50);

/// What one poll found: the value, or why it is not there yet.
pub trait Attempt<T> {
    /// `Ok` when the wait is over; `Err` describes what was seen instead.
    fn outcome(self) -> Result<T, String>;
}

impl<T> Attempt<T> for anyhow::Result<T> {
    fn outcome(self) -> Result<T, String> {
        self.map_err(|e| format!("{e:#}"))
    }
}

impl<T> Attempt<T> for Option<T> {
    fn outcome(self) -> Result<T, String> {
        self.ok_or_else(|| "nothing yet".to_string())
    }
}

impl Attempt<()> for bool {
    fn outcome(self) -> Result<(), String> {
        self.then_some(()).ok_or_else(|| "false".to_string())
    }
}

/// Polls `check` every [`POLL_EVERY`] until it succeeds, for at most `secs` seconds.
///
/// `check` returns an [`Attempt`]: `anyhow::Result<T>` (an `Err` is "not yet", and its
/// message is what the timeout error shows, so say what you saw), `Option<T>` or `bool`.
/// The timeout error names `what`, the number of polls and the last thing seen.
pub async fn eventually<T, A, F, Fut>(secs: u64, what: &str, mut check: F) -> anyhow::Result<T>
where
    A: Attempt<T>,
    F: FnMut() -> Fut,
    Fut: Future<Output = A>,
{
    let start = tokio::time::Instant::now();
    let deadline = start + Duration::from_secs(secs);
    let mut polls = 0u32;
    loop {
        polls += 1;
        let last = match check().await.outcome() {
            Ok(v) => return Ok(v),
            Err(seen) => seen,
        };
        if tokio::time::Instant::now() >= deadline {
            anyhow::bail!(
                "timed out after {:.1?} ({polls} polls) waiting for {what}; last seen: {last}",
                start.elapsed()
            );
        }
        tokio::time::sleep(POLL_EVERY).await;
    }
}

/// `Err("{label}: {value:?}")` unless `ok`: the usual body of a check that shows what it saw.
pub fn seen<V: Debug>(ok: bool, label: &str, value: V) -> anyhow::Result<V> {
    if ok {
        Ok(value)
    } else {
        anyhow::bail!("{label}: {value:?}")
    }
}
