//! The bus conformance suite against the Redis bus, each test on its own throwaway
//! redis-server; and what only the Redis bus does: two nodes on one room.

use crate::bus_conformance_suite;
use crate::common;

use std::sync::Arc;
use std::time::Duration;

use common::bus_conformance::{open, settings};
use common::conformance::fresh_room;
use common::redis::RedisServer;
use livehub::bus::{Bus, Event, RedisBus};
use livehub::redis_io::{RedisIo, RedisTarget};

async fn node(server: &RedisServer) -> Arc<RedisBus> {
    node_on(&server.url(), "lh").await
}

async fn node_on(url: &str, key_prefix: &str) -> Arc<RedisBus> {
    let target = RedisTarget::Single(url.to_owned());
    let io = RedisIo::connect(target, common::redis::CALL_TIMEOUT)
        .await
        .expect("connect");
    let bus = RedisBus::start(io, key_prefix, settings())
        .await
        .expect("bus");
    Arc::new(bus)
}

/// A bus whose subscription is up (so the first open does not race it).
async fn ready(bus: Arc<RedisBus>) -> Arc<RedisBus> {
    for _ in 0..200 {
        if bus.health().await.is_ok() {
            return bus;
        }
        tokio::time::sleep(Duration::from_millis(10)).await; // waiting for the subscription
    }
    panic!("the bus did not subscribe");
}

/// A bus under a key prefix of its own on the shared server: the conformance suite only goes
/// through the bus, and every test plays in rooms of its own.
async fn shared() -> (Arc<dyn Bus>, ()) {
    let url = common::redis::shared_server().url();
    let bus = ready(node_on(&url, &common::redis::unique_prefix()).await).await;
    (bus, ())
}

bus_conformance_suite!(shared);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_receive_the_same_events_in_the_same_order() {
    let server = RedisServer::start().expect("redis-server");
    let (a, b) = (
        ready(node(&server).await).await,
        ready(node(&server).await).await,
    );
    let room = fresh_room("two");
    let (on_a, on_b) = (open(a.as_ref(), &room).await, open(b.as_ref(), &room).await);
    let mut tasks = Vec::new();
    for (i, bus) in [Arc::clone(&a), Arc::clone(&b)].into_iter().enumerate() {
        let room = room.clone();
        tasks.push(tokio::spawn(async move {
            for n in 0..50 {
                let text = format!("node{i} {n}");
                bus.publish(&room, Event::Announcement { text })
                    .await
                    .unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(on_a.seqs_when(100).await, (1..=100).collect::<Vec<u64>>());
    assert_eq!(on_b.seqs_when(100).await, (1..=100).collect::<Vec<u64>>());
    assert_eq!(*on_a.events.lock(), *on_b.events.lock());
    // A third node opening late is loaded at the room's seq with its history.
    let late = open(ready(node(&server).await).await.as_ref(), &room).await;
    let loaded = late.loaded.lock().clone().expect("loaded");
    assert_eq!((loaded.seq, loaded.history.len()), (100, 100));
}

#[tokio::test]
async fn a_room_whose_log_was_lost_is_reported_lost_not_continued() {
    let server = RedisServer::start().expect("redis-server");
    let bus = ready(node(&server).await).await;
    let room = fresh_room("flushed");
    let rec = open(bus.as_ref(), &room).await;
    for n in 0..3 {
        bus.publish(
            &room,
            Event::Announcement {
                text: format!("{n}"),
            },
        )
        .await
        .unwrap();
    }
    rec.seqs_when(3).await;
    server.cli(&["FLUSHALL"]).expect("flush");
    // The next event starts a new epoch: this node cannot follow it and says so.
    let _ = bus
        .publish(&room, Event::Announcement { text: "new".into() })
        .await;
    for _ in 0..200 {
        if *rec.lost.lock() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await; // waiting for the delivery
    }
    panic!("a lost log was not noticed");
}

/// The same suite with the bus on the shared 3-master Redis Cluster (sharded pub/sub), each test
/// under a key prefix of its own.
mod cluster {
    use super::*;

    async fn redis_cluster() -> (Arc<dyn Bus>, ()) {
        let cluster = common::redis::shared_cluster();
        let target = RedisTarget::from_config(&cluster.url(), true);
        let io = RedisIo::connect(target, common::redis::CALL_TIMEOUT)
            .await
            .expect("connect");
        let bus = RedisBus::start(io, &common::redis::unique_prefix(), settings())
            .await
            .expect("bus");
        (Arc::new(bus), ())
    }

    bus_conformance_suite!(redis_cluster);
}
