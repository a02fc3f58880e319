//! The funnel store's rules on every backend (memory, Redis, a 3-master Redis Cluster): a user
//! counts once per stage, in the channel of the first op the store heard for them; counts are
//! exact up to 1,000 users and within 2% above; connected time adds up over nodes to
//! `engaged`; batches from several nodes at once lose nothing.

use crate::common;

use std::sync::Arc;

use livehub::funnel::store::{EXACT_USERS, FunnelStore};
use livehub::funnel::{Channel, MemoryFunnel, Moment, MomentKind, Op, RedisFunnel, Stage};
use livehub::protocol::Id;
use livehub::redis_io::{RedisIo, RedisTarget};

const ENGAGED_MS: u64 = 30_000;

fn id(s: &str) -> Id {
    Id::new(s).unwrap()
}

fn reached(user: &str, channel: Channel, stage: Stage, deal: Option<&str>) -> Op {
    Op::Reached {
        user: id(user),
        channel,
        stage,
        deal: deal.map(id),
    }
}

async fn first_channel_wins_and_stages_are_idempotent(store: &dyn FunnelStore) {
    let room = id("r-first");
    let ops = vec![
        reached("u1", Channel::Paid, Stage::Viewers, None),
        reached("u1", Channel::Live, Stage::Viewers, None),
        reached("u1", Channel::Live, Stage::Tapped, Some("d1")),
        reached("u2", Channel::Live, Stage::Viewers, None),
        Op::SoldOutTap {
            user: id("u1"),
            channel: Channel::Live,
            deal: id("d1"),
        },
    ];
    store.apply(&room, &ops).await.unwrap();
    store.apply(&room, &ops[..4]).await.unwrap();
    let c = store.counts(&room).await.unwrap();
    assert_eq!(c.room.get(&(Stage::Viewers, Channel::Paid)), Some(&1));
    assert_eq!(c.room.get(&(Stage::Viewers, Channel::Live)), Some(&1));
    assert_eq!(
        c.deals.get(&(id("d1"), Stage::Tapped, Channel::Paid)),
        Some(&1),
        "u1 counts where it first came from"
    );
    assert_eq!(c.sold_out.get(&(id("d1"), Channel::Paid)), Some(&1));
    assert!(store.counts(&id("r-none")).await.unwrap().room.is_empty());
}

async fn counts_are_exact_to_a_thousand_users_and_within_two_percent_above(
    store: &dyn FunnelStore,
) {
    for n in [EXACT_USERS - 1, EXACT_USERS, EXACT_USERS + 1, 5_000, 20_000] {
        let room = id(&format!("r-n{n}"));
        let ops: Vec<Op> = (0..n)
            .map(|i| reached(&format!("user-{i}"), Channel::Paid, Stage::Viewers, None))
            .collect();
        // In batches the size of a busy node's flush (one apply of all 20,000 outlasted the
        // store's 2 s deadline on a loaded cluster: no real flush is that large).
        for batch in ops.chunks(2_000) {
            store.apply(&room, batch).await.unwrap();
        }
        // Again: no user counts twice, estimated or not.
        for batch in ops[..(n as usize / 2)].chunks(2_000) {
            store.apply(&room, batch).await.unwrap();
        }
        let got = store.counts(&room).await.unwrap().room[&(Stage::Viewers, Channel::Paid)];
        if n <= EXACT_USERS {
            assert_eq!(got, n, "exact up to {EXACT_USERS}");
        } else {
            let err = (got as f64 - n as f64).abs() / n as f64;
            assert!(err <= 0.02, "{got} for {n} users: {:.2}% off", err * 100.0);
        }
    }
}

async fn connected_time_over_nodes_makes_a_user_engaged(store: &dyn FunnelStore) {
    let room = id("r-engaged");
    let half = |user: &str| Op::Connected {
        user: id(user),
        channel: Channel::Creator,
        ms: ENGAGED_MS / 2,
    };
    store.apply(&room, &[half("u1"), half("u2")]).await.unwrap();
    store.apply(&room, &[half("u1")]).await.unwrap();
    let c = store.counts(&room).await.unwrap();
    assert_eq!(c.room.get(&(Stage::Engaged, Channel::Creator)), Some(&1));
    store.apply(&room, &[half("u1")]).await.unwrap();
    let c = store.counts(&room).await.unwrap();
    assert_eq!(c.room.get(&(Stage::Engaged, Channel::Creator)), Some(&1));
}

async fn activity_sums_nodes_and_keeps_moments_in_order(stores: &[Arc<dyn FunnelStore>]) {
    let room = id("r-activity");
    let moment = |t, kind| Moment {
        t,
        kind,
        deal: Some(id("d1")),
        product: Some(id("p")),
        title: Some("A | \"B\"".into()),
    };
    let a = &stores[0];
    let b = &stores[stores.len() - 1];
    a.apply(
        &room,
        &[
            Op::PeakViewers { bucket: 0, n: 3 },
            Op::Comments { bucket: 0, n: 2 },
            Op::Moment(moment(20, MomentKind::DealEnd)),
        ],
    )
    .await
    .unwrap();
    b.apply(
        &room,
        &[
            Op::PeakViewers { bucket: 0, n: 4 },
            Op::Taps {
                bucket: 10_000,
                n: 5,
            },
            Op::Moment(moment(10, MomentKind::DealStart)),
        ],
    )
    .await
    .unwrap();
    let act = a.activity(&room).await.unwrap();
    let peak = if stores.len() > 1 { 7 } else { 4 };
    assert_eq!(act.buckets[&0].viewers, peak, "each node's peak, summed");
    assert_eq!(act.buckets[&0].comments, 2);
    assert_eq!(act.buckets[&10_000].taps, 5);
    let kinds: Vec<_> = act.moments.iter().map(|m| m.kind).collect();
    assert_eq!(kinds, [MomentKind::DealStart, MomentKind::DealEnd]);
    assert_eq!(act.moments[0].title.as_deref(), Some("A | \"B\""));
}

async fn batches_from_many_nodes_at_once_lose_nothing(stores: &[Arc<dyn FunnelStore>]) {
    let room = id("r-many");
    let mut tasks = Vec::new();
    for t in 0..16 {
        let store = Arc::clone(&stores[t % stores.len()]);
        let room = room.clone();
        tasks.push(tokio::spawn(async move {
            for batch in 0..10 {
                let ops: Vec<Op> = (0..50)
                    .map(|i| {
                        let user = format!("n{t}-b{batch}-u{i}");
                        reached(&user, Channel::Live, Stage::Held, Some("d1"))
                    })
                    .collect();
                store.apply(&room, &ops).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let c = stores[0].counts(&room).await.unwrap();
    let n = c.deals[&(id("d1"), Stage::Held, Channel::Live)];
    let err = (n as f64 - 8_000.0).abs() / 8_000.0;
    assert!(err <= 0.02, "{n} of 8,000");
}

async fn suite(stores: Vec<Arc<dyn FunnelStore>>) {
    first_channel_wins_and_stages_are_idempotent(stores[0].as_ref()).await;
    counts_are_exact_to_a_thousand_users_and_within_two_percent_above(stores[0].as_ref()).await;
    connected_time_over_nodes_makes_a_user_engaged(stores[0].as_ref()).await;
    activity_sums_nodes_and_keeps_moments_in_order(&stores).await;
    batches_from_many_nodes_at_once_lose_nothing(&stores).await;
}

/// Two nodes' stores under a key prefix of their own (on a Redis other tests share).
async fn redis_stores(target: RedisTarget) -> Vec<Arc<dyn FunnelStore>> {
    let prefix = common::redis::unique_prefix();
    let mut stores: Vec<Arc<dyn FunnelStore>> = Vec::new();
    for node in ["node-a", "node-b"] {
        let io = RedisIo::connect(target.clone(), common::redis::CALL_TIMEOUT)
            .await
            .expect("connect");
        stores.push(Arc::new(RedisFunnel::new(
            io,
            &prefix,
            node.into(),
            ENGAGED_MS,
            3_600_000,
        )));
    }
    stores
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_memory_funnel_store_keeps_the_rules() {
    suite(vec![Arc::new(MemoryFunnel::new(ENGAGED_MS))]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_redis_funnel_store_keeps_the_rules_for_two_nodes() {
    let server = common::redis::shared_server();
    suite(redis_stores(RedisTarget::Single(server.url())).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_redis_funnel_store_keeps_the_rules_on_a_redis_cluster() {
    let cluster = common::redis::shared_cluster();
    suite(redis_stores(RedisTarget::from_config(&cluster.url(), true)).await).await;
}
