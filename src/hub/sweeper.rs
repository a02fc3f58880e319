//! The hold sweeper: expired holds go back to stock without anyone asking.

use std::sync::Arc;
use std::time::Duration;

use super::{Deadline, Hub};
use crate::clock::now_ms;

impl Hub {
    /// Every `inventory.sweep_interval_ms`, returns expired holds to stock (on every node: the
    /// inventory's scripts make the sweep idempotent) and tells viewers of the changes.
    pub(super) async fn sweep_holds(self: Arc<Self>) {
        let every = Duration::from_millis(self.config.inventory.sweep_interval_ms);
        let mut interval = tokio::time::interval(every);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            tokio::select! {
                _ = self.shutdown.cancelled() => return,
                _ = interval.tick() => {}
            }
            match self
                .within(Deadline::Host, self.inventory.expire_due(now_ms()))
                .await
            {
                Ok(changes) => {
                    metrics::counter!(crate::metrics::SWEEP_CHANGES)
                        .increment(changes.len() as u64);
                    for c in changes {
                        self.stock_changed(&c.room, &c.deal, c.level);
                    }
                }
                Err(e) => crate::quiet::warn("hold sweep failed", &e),
            }
        }
    }
}
