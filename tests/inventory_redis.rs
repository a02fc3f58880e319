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

/// The same suite with the inventory on a throwaway 3-master Redis Cluster.
mod cluster {
    use super::*;
    use common::redis::RedisCluster;
    use livehub::redis_io::{RedisIo, RedisTarget};

    async fn redis_cluster(hold_ms: u64) -> (Arc<dyn Inventory>, RedisCluster) {
        let cluster = RedisCluster::start(false).expect("redis cluster");
        let target = RedisTarget::from_config(&cluster.url(), true);
        let io = RedisIo::connect(target, Duration::from_secs(2))
            .await
            .expect("connect");
        let inventory = RedisInventory::with_io(
            io,
            RedisSettings {
                url: cluster.url(),
                key_prefix: "lh".into(),
                hold_ms,
                idempotency_ttl_ms: 3_600_000,
                retention_ms: 3_600_000,
                timeout: Duration::from_secs(2),
            },
        );
        (Arc::new(inventory), cluster)
    }

    conformance_suite!(redis_cluster);
}
