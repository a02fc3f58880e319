//! The wiring of a hub's backends from configuration: memory or Redis (single or Cluster) for
//! the stock, the rooms' bus and the funnel, and the Redis whose clock the nodes keep.

use crate::auctions::{AuctionStore, MemoryAuctions, RedisAuctions};
use std::sync::Arc;
use std::time::Duration;

use super::ServeError;
use crate::bus::{BusSettings, LocalBus, RedisBus};
use crate::config::{Config, InventoryBackend, PaymentMode};
use crate::funnel::{FunnelStore, MemoryFunnel, RedisFunnel};
use crate::inventory::feed::{OrderLog, feed_path};
use crate::inventory::redis::RedisSettings;
use crate::inventory::{Inventory, MemoryInventory, Payment, RedisInventory};
use crate::redis_io::{RedisIo, RedisTarget};
use crate::webhooks::redis::RedisDeliveries;
use crate::webhooks::store::{DeliveryStore, MemoryDeliveries};

/// The backends a hub runs on: where stock lives and how rooms' events are ordered and spread.
pub struct Backends {
    pub inventory: Arc<dyn Inventory>,
    pub bus: Backend<LocalBus, RedisBus>,
    pub funnel: Arc<dyn FunnelStore>,
    /// The Redis whose clock every node keeps ([`crate::redis_io::clock`]); None on one process.
    pub clock: Option<RedisIo>,
    /// Where each webhook endpoint's delivery stands (shared by the nodes on Redis).
    pub deliveries: Arc<dyn DeliveryStore>,
    /// The rooms' auctions (shared by the nodes on Redis).
    pub auctions: Arc<dyn AuctionStore>,
}

impl Backends {
    /// One process: `inventory`, the local bus and the in-memory funnel.
    pub fn local(inventory: Arc<dyn Inventory>, config: &Config) -> Self {
        Backends {
            inventory,
            bus: Backend::Local(Arc::new(LocalBus::new(bus_settings(config)))),
            funnel: Arc::new(MemoryFunnel::new(config.funnel.engaged_ms)),
            clock: None,
            deliveries: Arc::new(MemoryDeliveries::new()),
            auctions: Arc::new(MemoryAuctions::new(config.redis.retention_ms)),
        }
    }
}

/// The configured bus: the local one (which also keeps the state file's rooms) or Redis's.
pub enum Backend<L, R> {
    Local(Arc<L>),
    Redis(Arc<R>),
}

/// The bus settings from configuration.
pub fn bus_settings(config: &Config) -> BusSettings {
    BusSettings {
        history: config.room.history,
        recent_comments: config.room.recent_comments,
        comment_rate: (
            config.limits.comment_rate_per_sec,
            config.limits.comment_burst,
        ),
        viewers_ttl_ms: config.room.viewers_ttl_ms,
        open_ttl_ms: config.room.open_ttl_ms,
    }
}

/// Builds the configured backends. With `inventory.backend = "redis"` both stock and rooms live
/// in Redis (two connections: one for stock, one shared by the rooms' events and the funnel),
/// so nodes on one Redis share their rooms; Redis connects lazily, so a hub starts while Redis is
/// down and `/readyz` says so.
pub async fn build_backends(config: &Config) -> Result<Backends, ServeError> {
    let timeout = Duration::from_millis(config.inventory.host_op_timeout_ms);
    Ok(match config.inventory.backend {
        InventoryBackend::Memory => Backends::local(
            Arc::new(
                MemoryInventory::new(config.inventory.hold_ms)
                    .with_orders(payment(config), order_log(config)?),
            ),
            config,
        ),
        InventoryBackend::Redis => {
            let target = RedisTarget::from_config(&config.redis.url, config.redis.cluster);
            // Stock has a connection (and an I/O thread) of its own: a reserve never waits in a
            // pipeline behind the rooms' events, counters and funnel flushes (issue 20).
            let redis = RedisIo::connect(target, timeout).await?;
            let stock = redis.another().await?;
            // Says "Redis at … ready", or the one line that it cannot be reached; the hub
            // starts either way and the connection keeps retrying.
            let _ = redis.check().await;
            // Redis's time before the first room opens (or at the first reading after an outage).
            let _ = crate::redis_io::clock::sync(&redis).await;
            // Bids are a buyer's wait, as reserves are: on the stock's connection.
            let auctions = RedisAuctions::new(
                stock.clone(),
                &config.redis.key_prefix,
                crate::inventory::redis::ScriptClock::Redis,
                config.redis.retention_ms,
            );
            let inventory = RedisInventory::with_io(
                stock,
                RedisSettings {
                    url: config.redis.url.clone(),
                    key_prefix: config.redis.key_prefix.clone(),
                    hold_ms: config.inventory.hold_ms,
                    idempotency_ttl_ms: config.redis.idempotency_ttl_ms,
                    rejected_idempotency_ttl_ms: config.redis.rejected_idempotency_ttl_ms,
                    retention_ms: config.redis.retention_ms,
                    timeout,
                    clock: crate::inventory::redis::ScriptClock::Redis,
                    payment: payment(config),
                },
            );
            let funnel = RedisFunnel::new(
                redis.clone(),
                &config.redis.key_prefix,
                format!("{:016x}", rand::random::<u64>()),
                config.funnel.engaged_ms,
                config.redis.retention_ms,
            );
            let clock = redis.clone();
            let deliveries = RedisDeliveries::new(
                redis.clone(),
                &config.redis.key_prefix,
                config.redis.retention_ms,
            );
            let bus = RedisBus::start(redis, &config.redis.key_prefix, bus_settings(config))
                .await
                .map_err(ServeError::Bus)?;
            Backends {
                inventory: Arc::new(inventory),
                bus: Backend::Redis(Arc::new(bus)),
                funnel: Arc::new(funnel),
                clock: Some(clock),
                deliveries: Arc::new(deliveries),
                auctions: Arc::new(auctions),
            }
        }
    })
}

/// How orders get paid, as `[orders]` says.
pub fn payment(config: &Config) -> Payment {
    match config.orders.payment {
        PaymentMode::None => Payment::None,
        PaymentMode::External => Payment::External {
            timeout_ms: config.orders.payment_timeout_ms,
        },
    }
}

/// The memory backend's order feed: in the file beside the state file when there is one (it
/// keeps `redis.retention_ms` of events, as Redis does), else in memory.
fn order_log(config: &Config) -> Result<OrderLog, ServeError> {
    let Some(state) = &config.server.state_file else {
        return Ok(OrderLog::in_memory());
    };
    let keep_after = crate::clock::now_ms().saturating_sub(config.redis.retention_ms);
    OrderLog::open(&feed_path(state), keep_after)
        .map_err(ServeError::Inventory)
}
