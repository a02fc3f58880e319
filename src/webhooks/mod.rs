//! Webhooks (issue 23): every order event pushed to the shop's receivers, signed
//! ([`sign`]), at least once, each order's events in order, retried with backoff ([`backoff`])
//! for `webhooks.retry_for_ms` and then kept as dead letters until `livehub webhooks replay`.
//! One node delivers each endpoint at a time, under a lease in the shared [`store`]
//! (in Redis with the Redis backend); when it dies, another takes over from the endpoint's
//! cursor after `webhooks.lease_ms`. Delivery reads the order feed the checkout already
//! writes: nothing on a buyer's path waits for a receiver.

pub mod backoff;
mod deliver;
pub mod redis;
pub mod send;
pub mod sign;
pub mod store;

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::WebhooksConfig;
use crate::inventory::{Inventory, InventoryError};
use deliver::Delivery;
use store::{DeadLetter, DeliveryStore, EndpointStats, FROM_OLDEST, StoreError};

/// The configured endpoints and where their delivery stands.
pub struct Webhooks {
    config: WebhooksConfig,
    inventory: Arc<dyn Inventory>,
    store: Arc<dyn DeliveryStore>,
}

/// One endpoint as `GET /api/webhooks` and `livehub webhooks status` show it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EndpointStatus {
    pub name: String,
    pub url: String,
    /// The node delivering it now (none: no node holds its lease).
    pub holder: Option<String>,
    /// The feed cursor after the last event delivered (none: not started yet).
    pub cursor: Option<String>,
    /// The oldest event not delivered yet, and its age in seconds (the endpoint's lag).
    pub oldest_undelivered: Option<Oldest>,
    pub lag_s: f64,
    #[serde(flatten)]
    pub stats: EndpointStats,
    /// Events given up after `webhooks.retry_for_ms`, and the oldest of them.
    pub dead: u64,
    pub oldest_dead: Option<DeadLetter>,
}

/// An event's id and time (Unix ms).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Oldest {
    pub id: String,
    pub ts: u64,
}

/// Why a webhooks request was refused.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("no webhook endpoint named {0:?}")]
    UnknownEndpoint(String),
    #[error("{0}")]
    BadCursor(String),
    #[error("{0} has no dead letters: name a cursor to replay from (--from)")]
    NothingToReplay(String),
    #[error("{0}")]
    Unavailable(String),
}

impl From<StoreError> for WebhookError {
    fn from(e: StoreError) -> Self {
        WebhookError::Unavailable(e.to_string())
    }
}

impl From<InventoryError> for WebhookError {
    fn from(e: InventoryError) -> Self {
        match e {
            InventoryError::Invalid(m) => WebhookError::BadCursor(m),
            other => WebhookError::Unavailable(other.to_string()),
        }
    }
}

impl Webhooks {
    pub fn new(
        config: WebhooksConfig,
        inventory: Arc<dyn Inventory>,
        store: Arc<dyn DeliveryStore>,
    ) -> Self {
        Webhooks {
            config,
            inventory,
            store,
        }
    }

    /// Starts one delivery per endpoint on `tracker`, until `stop`. `node` names this process
    /// in the leases. Fails only when no TLS client can be made.
    pub fn start(
        &self,
        node: &str,
        tracker: &TaskTracker,
        stop: &CancellationToken,
    ) -> Result<(), rustls::Error> {
        if self.config.endpoints.is_empty() {
            return Ok(());
        }
        let timeout = std::time::Duration::from_millis(self.config.timeout_ms);
        let poster = Arc::new(send::Poster::new(timeout)?);
        for endpoint in &self.config.endpoints {
            let delivery = Delivery::new(
                endpoint.clone(),
                self.config.clone(),
                Arc::clone(&self.inventory),
                Arc::clone(&self.store),
                Arc::clone(&poster),
                node.to_owned(),
            );
            if let Some(d) = delivery {
                tracker.spawn(Arc::new(d).run(stop.clone()));
            }
        }
        Ok(())
    }

    /// Every endpoint's delivery, as the shared store and the feed have it now.
    pub async fn status(&self) -> Result<Vec<EndpointStatus>, WebhookError> {
        let mut out = Vec::new();
        let now = crate::clock::now_ms();
        for e in &self.config.endpoints {
            let cursor = self.store.cursor(&e.name).await?;
            let oldest = match cursor.as_deref() {
                None => None,
                Some(c) => {
                    let from = (c != FROM_OLDEST).then_some(c);
                    let page = self.inventory.order_events(from, 1).await?;
                    page.events.first().map(|ev| Oldest {
                        id: ev.id.clone(),
                        ts: ev.ts,
                    })
                }
            };
            let (dead, letters) = self.store.dead_letters(&e.name, 1).await?;
            out.push(EndpointStatus {
                name: e.name.clone(),
                url: e.url.clone(),
                holder: self.store.holder(&e.name).await?,
                lag_s: oldest
                    .as_ref()
                    .map_or(0.0, |o| now.saturating_sub(o.ts) as f64 / 1000.0),
                cursor,
                oldest_undelivered: oldest,
                stats: self.store.stats(&e.name).await?,
                dead,
                oldest_dead: letters.into_iter().next(),
            });
        }
        Ok(out)
    }

    /// Sends `endpoint` every event after `from` again (None: from its oldest dead letter; the
    /// feed's own start with [`FROM_OLDEST`]) and clears its dead letters. The cursor it set.
    pub async fn replay(&self, endpoint: &str, from: Option<&str>) -> Result<String, WebhookError> {
        if !self.config.endpoints.iter().any(|e| e.name == endpoint) {
            return Err(WebhookError::UnknownEndpoint(endpoint.to_owned()));
        }
        let from = match from {
            Some(c) => c.to_owned(),
            None => {
                let (_, letters) = self.store.dead_letters(endpoint, 1).await?;
                letters
                    .into_iter()
                    .next()
                    .map(|l| l.from)
                    .ok_or_else(|| WebhookError::NothingToReplay(endpoint.to_owned()))?
            }
        };
        if from != FROM_OLDEST {
            // A cursor this feed did not write is refused here, not by the delivery later.
            self.inventory.order_events(Some(&from), 1).await?;
        }
        self.store.rewind(endpoint, &from).await?;
        tracing::info!(endpoint, from = %from, "webhook replay: events after the cursor are sent again");
        Ok(from)
    }
}
