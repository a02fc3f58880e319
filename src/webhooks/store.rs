//! Where each endpoint's delivery stands, shared by the nodes: who delivers it now (a lease),
//! the feed cursor after the last event delivered, its dead letters and its counters. In memory
//! on one process ([`MemoryDeliveries`]), in Redis across nodes ([`super::redis::RedisDeliveries`]).

use std::collections::HashMap;

use async_trait::async_trait;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use crate::orders::OrderEventKind;

/// An event that was retried for `webhooks.retry_for_ms` without a 2xx.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadLetter {
    /// The event's id (its `Livehub-Event-Id`).
    pub event: String,
    pub order: String,
    #[serde(rename = "type")]
    pub kind: OrderEventKind,
    /// The feed cursor before the event: `webhooks replay` without `--from` starts at the oldest
    /// dead letter's.
    pub from: String,
    pub attempts: u32,
    /// The last attempt's failure.
    pub error: String,
    /// Unix ms when it was given up.
    pub at: u64,
}

/// An endpoint's counters, over every node that delivered it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointStats {
    /// Events answered with a 2xx.
    pub delivered: u64,
    /// Attempts that failed (each retry counts).
    pub failures: u64,
    /// Events waiting for a retry now.
    pub retrying: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error_at: Option<u64>,
}

/// What a delivery worker reports after a page or an attempt.
#[derive(Clone, Debug, Default)]
pub struct Note {
    pub delivered: u64,
    pub failures: u64,
    /// Events waiting for a retry, as of now (replaces the stored number).
    pub retrying: Option<u64>,
    /// The latest failure and when (Unix ms).
    pub error: Option<(String, u64)>,
}

/// Why the store could not answer.
#[derive(Clone, Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    Internal(String),
}

impl From<crate::redis_io::RedisIoError> for StoreError {
    fn from(e: crate::redis_io::RedisIoError) -> Self {
        match e {
            crate::redis_io::RedisIoError::Unavailable(m) => StoreError::Unavailable(m),
            crate::redis_io::RedisIoError::Internal(m) => StoreError::Internal(m),
        }
    }
}

/// The cursor that means "from the oldest event the feed keeps".
pub const FROM_OLDEST: &str = "";

/// Each endpoint's delivery state. Every method is one atomic step.
#[async_trait]
pub trait DeliveryStore: Send + Sync {
    /// Takes the endpoint's lease for `node` for `ttl_ms`, or renews it if `node` holds it:
    /// true while `node` may deliver. One node holds it at a time.
    async fn lease(&self, endpoint: &str, node: &str, ttl_ms: u64) -> Result<bool, StoreError>;
    /// The node that holds the lease now.
    async fn holder(&self, endpoint: &str) -> Result<Option<String>, StoreError>;
    /// The cursor after the last event delivered ([`FROM_OLDEST`]: none yet); None for an
    /// endpoint never delivered (its delivery starts at the feed's end then).
    async fn cursor(&self, endpoint: &str) -> Result<Option<String>, StoreError>;
    /// Moves the cursor from `from` to `to` if it is still `from`: false when a replay moved it
    /// in between (the page is then not counted as done).
    async fn advance(
        &self,
        endpoint: &str,
        from: Option<&str>,
        to: &str,
    ) -> Result<bool, StoreError>;
    /// Sets the cursor to `to` and clears the dead letters (`webhooks replay`).
    async fn rewind(&self, endpoint: &str, to: &str) -> Result<(), StoreError>;
    /// Adds a dead letter (the oldest 10,000 are kept).
    async fn bury(&self, endpoint: &str, letter: &DeadLetter) -> Result<(), StoreError>;
    /// How many dead letters there are, and the oldest `limit` of them.
    async fn dead_letters(
        &self,
        endpoint: &str,
        limit: usize,
    ) -> Result<(u64, Vec<DeadLetter>), StoreError>;
    /// Adds to the endpoint's counters.
    async fn note(&self, endpoint: &str, note: &Note) -> Result<(), StoreError>;
    async fn stats(&self, endpoint: &str) -> Result<EndpointStats, StoreError>;
}

/// Most dead letters kept per endpoint.
pub const MAX_DEAD: usize = 10_000;

#[derive(Default)]
struct MemState {
    lease: Option<(String, std::time::Instant)>,
    cursor: Option<String>,
    dead: Vec<DeadLetter>,
    stats: EndpointStats,
}

/// One process's delivery state, in memory. An endpoint starts [`FROM_OLDEST`]: after a restart
/// every event the feed kept is delivered again (at least once; receivers skip ids they saw).
#[derive(Default)]
pub struct MemoryDeliveries {
    state: Mutex<HashMap<String, MemState>>,
}

impl MemoryDeliveries {
    pub fn new() -> Self {
        Self::default()
    }

    fn with<T>(&self, endpoint: &str, f: impl FnOnce(&mut MemState) -> T) -> T {
        let mut all = self.state.lock();
        let s = all.entry(endpoint.to_owned()).or_insert_with(|| MemState {
            cursor: Some(FROM_OLDEST.to_owned()),
            ..MemState::default()
        });
        f(s)
    }
}

#[async_trait]
impl DeliveryStore for MemoryDeliveries {
    async fn lease(&self, endpoint: &str, node: &str, ttl_ms: u64) -> Result<bool, StoreError> {
        let now = std::time::Instant::now();
        Ok(self.with(endpoint, |s| {
            let free = match &s.lease {
                None => true,
                Some((holder, until)) => holder == node || *until <= now,
            };
            if free {
                s.lease = Some((
                    node.to_owned(),
                    now + std::time::Duration::from_millis(ttl_ms),
                ));
            }
            free
        }))
    }

    async fn holder(&self, endpoint: &str) -> Result<Option<String>, StoreError> {
        let now = std::time::Instant::now();
        Ok(self.with(endpoint, |s| {
            s.lease
                .as_ref()
                .filter(|(_, until)| *until > now)
                .map(|(h, _)| h.clone())
        }))
    }

    async fn cursor(&self, endpoint: &str) -> Result<Option<String>, StoreError> {
        Ok(self.with(endpoint, |s| s.cursor.clone()))
    }

    async fn advance(
        &self,
        endpoint: &str,
        from: Option<&str>,
        to: &str,
    ) -> Result<bool, StoreError> {
        Ok(self.with(endpoint, |s| {
            if s.cursor.as_deref() != from {
                return false;
            }
            s.cursor = Some(to.to_owned());
            true
        }))
    }

    async fn rewind(&self, endpoint: &str, to: &str) -> Result<(), StoreError> {
        self.with(endpoint, |s| {
            s.cursor = Some(to.to_owned());
            s.dead.clear();
        });
        Ok(())
    }

    async fn bury(&self, endpoint: &str, letter: &DeadLetter) -> Result<(), StoreError> {
        self.with(endpoint, |s| {
            s.dead.push(letter.clone());
            if s.dead.len() > MAX_DEAD {
                s.dead.remove(0);
            }
        });
        Ok(())
    }

    async fn dead_letters(
        &self,
        endpoint: &str,
        limit: usize,
    ) -> Result<(u64, Vec<DeadLetter>), StoreError> {
        Ok(self.with(endpoint, |s| {
            (
                s.dead.len() as u64,
                s.dead.iter().take(limit).cloned().collect(),
            )
        }))
    }

    async fn note(&self, endpoint: &str, note: &Note) -> Result<(), StoreError> {
        self.with(endpoint, |s| apply(&mut s.stats, note));
        Ok(())
    }

    async fn stats(&self, endpoint: &str) -> Result<EndpointStats, StoreError> {
        Ok(self.with(endpoint, |s| s.stats.clone()))
    }
}

/// `note` added to `stats` (the one rule both stores follow).
pub fn apply(stats: &mut EndpointStats, note: &Note) {
    stats.delivered += note.delivered;
    stats.failures += note.failures;
    if let Some(r) = note.retrying {
        stats.retrying = r;
    }
    if let Some((e, at)) = &note.error {
        stats.last_error = Some(e.clone());
        stats.last_error_at = Some(*at);
    }
}
