//! The inventory conformance suite against the Redis backend, each test on its own throwaway
//! redis-server.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::redis::RedisServer;
use livehub::inventory::redis::RedisSettings;
use livehub::inventory::{Inventory, RedisInventory};

// Servers live until the test process ends; each test gets its own.
static SERVERS: Mutex<Vec<RedisServer>> = Mutex::new(Vec::new());

async fn redis(hold_ms: u64) -> Arc<dyn Inventory> {
    let server = RedisServer::start().expect("redis-server");
    let url = server.url();
    SERVERS.lock().unwrap().push(server);
    Arc::new(
        RedisInventory::connect(RedisSettings {
            url,
            key_prefix: "lh".into(),
            hold_ms,
            idempotency_ttl_ms: 3_600_000,
            retention_ms: 3_600_000,
            timeout: Duration::from_secs(2),
        })
        .expect("connect"),
    )
}

conformance_suite!(redis);
