//! The reconcile slots: at most `--max-concurrent-reconciles` reconciles run at once, and
//! the Rollouts waiting for one are served in the order they asked.
//!
//! kube-runtime's own limit parks the messages over it in a hash set and takes them out in
//! no particular order, so under a burst (1,000 aborts at once) some Rollouts wait many times
//! longer than others. The controller therefore starts every queued reconcile at once with
//! no limit of its own, and each reconcile first takes a slot here: a fair semaphore.

use tokio::sync::{Semaphore, SemaphorePermit};

/// The reconcile slots, handed out first come, first served.
#[derive(Debug)]
pub struct Slots {
    /// One permit per slot (as many as a semaphore holds for no limit).
    semaphore: Semaphore,
}

/// A slot taken; it is given back when dropped.
#[derive(Debug)]
pub struct Slot<'a> {
    _permit: SemaphorePermit<'a>,
}

impl Slots {
    /// `limit` slots; 0 means no limit.
    pub fn new(limit: u16) -> Self {
        let permits = match limit {
            0 => Semaphore::MAX_PERMITS,
            n => usize::from(n),
        };
        Self {
            semaphore: Semaphore::new(permits),
        }
    }

    /// Waits for a free slot, behind every earlier caller still waiting. `None` once the
    /// slots are closed: the controller is shutting down and the reconcile must not start.
    pub async fn take(&self) -> Option<Slot<'_>> {
        let permit = self.semaphore.acquire().await.ok()?;
        Some(Slot { _permit: permit })
    }

    /// Closes the slots: every caller waiting, and every later one, gets `None`. Slots
    /// already taken stay taken until dropped.
    pub fn close(&self) {
        self.semaphore.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    /// Spawns `n` callers, one after another, each taking a slot, noting its number, and
    /// holding the slot for a millisecond; returns the order in which they got one.
    async fn serve(slots: Arc<Slots>, n: usize) -> Vec<usize> {
        let order = Arc::new(parking_lot::Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for i in 0..n {
            let (slots, order) = (slots.clone(), order.clone());
            tasks.push(tokio::spawn(async move {
                let slot = slots.take().await;
                assert!(slot.is_some(), "caller {i} found the slots closed");
                order.lock().push(i);
                tokio::time::sleep(Duration::from_millis(1)).await;
            }));
            // Each caller is queued before the next is spawned.
            tokio::task::yield_now().await;
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        for task in tasks {
            task.await.expect("a caller panicked");
        }
        order.lock().clone()
    }

    #[tokio::test]
    async fn waiting_callers_get_a_slot_in_the_order_they_asked() {
        let slots = Arc::new(Slots::new(1));
        // Hold the only slot while 20 callers queue, then let them through.
        let held = slots.take().await.expect("open");
        let queued = tokio::spawn(serve(slots.clone(), 20));
        tokio::time::sleep(Duration::from_millis(100)).await;
        drop(held);
        let order = queued.await.expect("serve");
        assert_eq!(order, (0..20).collect::<Vec<_>>());
    }

    #[tokio::test]
    async fn no_more_than_the_limit_hold_a_slot_at_once() {
        let slots = Slots::new(3);
        let a = slots.take().await.expect("first");
        let b = slots.take().await.expect("second");
        let c = slots.take().await.expect("third");
        let fourth = tokio::time::timeout(Duration::from_millis(50), slots.take()).await;
        assert!(fourth.is_err(), "a fourth slot was handed out of three");
        drop(b);
        let d = tokio::time::timeout(Duration::from_secs(5), slots.take()).await;
        assert!(
            matches!(d, Ok(Some(_))),
            "a slot given back was not handed out"
        );
        drop((a, c));
    }

    #[tokio::test]
    async fn no_limit_hands_out_any_number() {
        let slots = Slots::new(0);
        let mut held = Vec::new();
        for _ in 0..1000 {
            held.push(slots.take().await.expect("no limit"));
        }
        assert_eq!(held.len(), 1000);
        slots.close();
        assert!(
            slots.take().await.is_none(),
            "no limit, closed, still handed out a slot"
        );
    }

    #[tokio::test]
    async fn closing_turns_away_the_waiting_and_keeps_the_taken() {
        let slots = Arc::new(Slots::new(1));
        let held = slots.take().await.expect("open");
        let waiting = tokio::spawn({
            let slots = slots.clone();
            async move { slots.take().await.is_some() }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        slots.close();
        let got = tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .expect("a waiting caller stayed waiting after close")
            .expect("join");
        assert!(!got, "a caller waiting at close got a slot");
        assert!(
            slots.take().await.is_none(),
            "a slot was handed out after close"
        );
        drop(held);
    }
}
