//! The inventory conformance suite against the Redis backend, each test on its own throwaway
//! redis-server.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::redis::RedisServer;
use livehub::inventory::redis::RedisSettings;
use livehub::inventory::{Inventory, RedisInventory};

/// The inventory and its throwaway server, which the test holds until it ends (a `static` would
/// never be dropped, and the servers would outlive the test process).
async fn redis(hold_ms: u64) -> (Arc<dyn Inventory>, RedisServer) {
    let server = RedisServer::start().expect("redis-server");
    let inventory = RedisInventory::connect(RedisSettings {
        url: server.url(),
        key_prefix: "lh".into(),
        hold_ms,
        idempotency_ttl_ms: 3_600_000,
        retention_ms: 3_600_000,
        timeout: Duration::from_secs(2),
    })
    .await
    .expect("connect");
    (Arc::new(inventory), server)
}

conformance_suite!(redis);
