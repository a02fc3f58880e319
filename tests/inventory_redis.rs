//! The inventory conformance suite against the Redis backend, each test on its own throwaway
//! redis-server.

mod common;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use common::redis::RedisServer;
use livehub::inventory::redis::RedisSettings;
use livehub::inventory::{
    Audit, CancelOutcome, CheckoutOutcome, EndedDeal, Inventory, InventoryError, RedisInventory,
    ReserveOutcome, ReserveRequest, StockChange, StockLevel,
};
use livehub::protocol::{Deal, DealSpec, Id};

/// The Redis inventory together with its throwaway server: the server stops when the test's
/// last handle on the inventory is dropped (a `static` would never be dropped, and the servers
/// would outlive the test process).
struct Served {
    inner: RedisInventory,
    _server: RedisServer,
}

#[async_trait]
impl Inventory for Served {
    async fn start_deal(
        &self,
        room: &Id,
        spec: &DealSpec,
        creator: &Id,
        now: u64,
    ) -> Result<Deal, InventoryError> {
        self.inner.start_deal(room, spec, creator, now).await
    }
    async fn end_deal(&self, room: &Id, deal: &Id, now: u64) -> Result<EndedDeal, InventoryError> {
        self.inner.end_deal(room, deal, now).await
    }
    async fn reserve(&self, req: &ReserveRequest) -> Result<ReserveOutcome, InventoryError> {
        self.inner.reserve(req).await
    }
    async fn checkout(
        &self,
        room: &Id,
        user: &Id,
        reservation: &Id,
        now: u64,
    ) -> Result<CheckoutOutcome, InventoryError> {
        self.inner.checkout(room, user, reservation, now).await
    }
    async fn cancel(
        &self,
        room: &Id,
        user: &Id,
        reservation: &Id,
        now: u64,
    ) -> Result<CancelOutcome, InventoryError> {
        self.inner.cancel(room, user, reservation, now).await
    }
    async fn expire_due(&self, now: u64) -> Result<Vec<StockChange>, InventoryError> {
        self.inner.expire_due(now).await
    }
    async fn room_deals(
        &self,
        room: &Id,
        now: u64,
    ) -> Result<Vec<(Deal, StockLevel)>, InventoryError> {
        self.inner.room_deals(room, now).await
    }
    async fn audit(&self, room: &Id, deal: &Id, now: u64) -> Result<Audit, InventoryError> {
        self.inner.audit(room, deal, now).await
    }
    async fn health(&self) -> Result<(), InventoryError> {
        self.inner.health().await
    }
}

async fn redis(hold_ms: u64) -> Arc<dyn Inventory> {
    let server = RedisServer::start().expect("redis-server");
    let inner = RedisInventory::connect(RedisSettings {
        url: server.url(),
        key_prefix: "lh".into(),
        hold_ms,
        idempotency_ttl_ms: 3_600_000,
        retention_ms: 3_600_000,
        timeout: Duration::from_secs(2),
    })
    .expect("connect");
    Arc::new(Served {
        inner,
        _server: server,
    })
}

conformance_suite!(redis);
