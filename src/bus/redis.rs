//! The Redis bus: one room spans every hub node on one Redis.
//!
//! Per room (all keys share the hash tag `{PREFIX:room:ROOM}`, so the scripts run on Redis
//! Cluster): a `meta` hash (`seq`, `epoch`, pinned product, likes), a `hist` stream capped at
//! `room.history` (entry id `SEQ-0`), the `recent` comments, the last published status of each
//! `deals`, the `mutes` and comment `rates`, and each node's viewer count in `nodes` with an
//! expiry, so a dead node's viewers fall out by themselves.
//!
//! Publishing is one Lua step (`lua/publish.lua`): precondition, `seq`, state, stream and
//! `PUBLISH` together, as Centrifugo's Redis engine does. Every node subscribes to the rooms it
//! has open on one pub/sub connection; a [`Track`] per room delivers in `seq` order and repairs
//! a hole from the stream before anything later. A dropped subscription is re-established with
//! backoff and every room is then checked against the stream; a node also compares its position
//! with the room's on every counters report (each stock tick), so a lost last message is found
//! within two ticks. Redis work per event is O(1): one script and one publish, whatever the
//! number of viewers or nodes.
//!
//! What the scripts take and return, and which stored formats stay as they were (all of them:
//! rooms already in Redis load after an upgrade in place), is in `wire`'s module docs: named
//! `cjson` arguments for `publish.lua`, a `cjson` object for `load.lua`'s room, arrays for the
//! lists and tiny replies, each read by a pure, unit-tested function.

use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use async_trait::async_trait;
use dashmap::DashMap;
use futures_util::StreamExt;
use parking_lot::Mutex;
use redis::Script;
use tokio::sync::mpsc;

use super::track::{Ready, Track};
use super::{Bus, BusError, BusSettings, Counters, Event, Published, RoomSink};
use crate::clock::now_ms;
use crate::inventory::StockLevel;
use crate::metrics as m;
use crate::persist::{SavedRoom, SavedState};
use crate::protocol::Id;
use crate::redis_io::{RedisIo, RedisTarget, cluster_client};

mod wire;

use wire::{
    EventArgs, PublishArgs, PublishReply, parse_counters, parse_publish, parse_published,
    parse_range, parse_state, parse_stock, published_ts, refusal,
};

/// Most history events one repair reads at a time.
const REPAIR_BATCH: usize = 1000;

struct Scripts {
    publish: Arc<Script>,
    load: Arc<Script>,
    range: Arc<Script>,
    counters: Arc<Script>,
    unmute: Arc<Script>,
}

struct Slot {
    track: Mutex<Track>,
    sink: Weak<dyn RoomSink>,
}

struct Shared {
    redis: RedisIo,
    settings: BusSettings,
    prefix: String,
    /// This node's id in the rooms' `nodes` hashes.
    node: String,
    scripts: Scripts,
    rooms: DashMap<Id, Arc<Slot>>,
    sub: Subscription,
    /// Messages from the subscription, to the dispatcher on the hub's runtime (see
    /// [`dispatcher`]).
    inbound: mpsc::Sender<Inbound>,
    timeout: Duration,
}

/// One message from a room's channel.
struct Inbound {
    channel: String,
    payload: Vec<u8>,
}

/// Messages waiting for the dispatcher. When it is full a single server's subscription waits
/// (Redis buffers for it); a cluster push that does not fit is dropped and its hole repaired
/// from the room's stream like any lost message.
const INBOUND_CAPACITY: usize = 8192;

/// How this node hears the rooms it has open.
enum Subscription {
    /// A single server: one pub/sub connection (`SUBSCRIBE`), re-established with backoff by
    /// [`subscriber`].
    Single {
        /// The live subscription's command side; None while (re)connecting.
        sink: Mutex<Option<redis::aio::PubSubSink>>,
        /// True while `sink` is live, for opens that arrive during a (re)connect.
        connected: tokio::sync::watch::Sender<bool>,
    },
    /// A Redis Cluster: sharded pub/sub (`SSUBSCRIBE`) on a RESP3 cluster connection, so each
    /// room's messages stay on its shard; the client re-subscribes by itself after a drop.
    Cluster {
        conn: redis::cluster_async::ClusterConnection,
    },
}

impl Subscription {
    fn publish_command(&self) -> &'static str {
        match self {
            Subscription::Single { .. } => "PUBLISH",
            Subscription::Cluster { .. } => "SPUBLISH",
        }
    }
}

/// The bus of a hub node that shares its rooms with every node on the same Redis.
pub struct RedisBus {
    shared: Arc<Shared>,
}

struct Keys {
    meta: String,
    hist: String,
    recent: String,
    deals: String,
    mutes: String,
    rates: String,
    nodes: String,
    channel: String,
}

fn random_id() -> String {
    format!("{:016x}", rand::random::<u64>())
}

impl RedisBus {
    /// A bus on `redis` whose keys start with `prefix`. On a single server it subscribes in
    /// the background (and re-subscribes after every drop) for as long as the bus lives; on a
    /// cluster it opens its sharded subscription connection now.
    pub async fn start(
        redis: RedisIo,
        prefix: &str,
        settings: BusSettings,
    ) -> Result<Self, BusError> {
        let me: Arc<OnceLock<Weak<Shared>>> = Arc::new(OnceLock::new());
        let sub = match redis.target().clone() {
            RedisTarget::Single(_) => Subscription::Single {
                sink: Mutex::new(None),
                connected: tokio::sync::watch::Sender::new(false),
            },
            RedisTarget::Cluster(nodes) => {
                let hears = Arc::clone(&me);
                let push = Box::new(move |info: redis::PushInfo| {
                    if let Some(shared) = hears.get().and_then(Weak::upgrade) {
                        shared.on_push(info);
                    }
                    Ok(())
                });
                let client = cluster_client(&nodes, redis.timeout(), Some(push))?;
                let connect = redis
                    .spawn(async move { client.get_async_connection().await })
                    .ok_or_else(|| BusError::Unavailable("shutting down".into()))?;
                let conn = tokio::time::timeout(redis.timeout() * 2, connect)
                    .await
                    .map_err(|_| BusError::Unavailable("Redis Cluster did not answer".into()))?
                    .map_err(|e| BusError::Internal(e.to_string()))?
                    .map_err(|e| BusError::Unavailable(e.to_string()))?;
                Subscription::Cluster { conn }
            }
        };
        let single = matches!(sub, Subscription::Single { .. });
        let (inbound, rx) = mpsc::channel(INBOUND_CAPACITY);
        let shared = Arc::new(Shared {
            inbound,
            timeout: redis.timeout(),
            redis,
            settings,
            prefix: prefix.to_owned(),
            node: random_id(),
            scripts: Scripts {
                publish: Arc::new(Script::new(concat!(
                    include_str!("../lua/split.lua"),
                    "\n",
                    include_str!("lua/lifetime.lua"),
                    "\n",
                    include_str!("lua/publish.lua")
                ))),
                load: Arc::new(Script::new(concat!(
                    include_str!("lua/lifetime.lua"),
                    "\n",
                    include_str!("lua/load.lua")
                ))),
                range: Arc::new(Script::new(include_str!("lua/range.lua"))),
                counters: Arc::new(Script::new(concat!(
                    include_str!("lua/lifetime.lua"),
                    "\n",
                    include_str!("lua/counters.lua")
                ))),
                unmute: Arc::new(Script::new(include_str!("lua/unmute.lua"))),
            },
            rooms: DashMap::new(),
            sub,
        });
        let _ = me.set(Arc::downgrade(&shared));
        // Deliveries run on the hub's runtime (this one), where the viewers' writer tasks live:
        // waking 10,000 writers from the Redis thread costs each wake a trip through the other
        // runtime's global queue.
        tokio::spawn(dispatcher(Arc::downgrade(&shared), rx));
        if single {
            shared.redis.spawn(subscriber(Arc::downgrade(&shared)));
        }
        Ok(RedisBus { shared })
    }
}

impl Shared {
    fn keys(&self, room: &Id) -> Keys {
        let tag = format!("{{{}:room:{room}}}", self.prefix);
        Keys {
            meta: format!("{tag}:meta"),
            hist: format!("{tag}:hist"),
            recent: format!("{tag}:recent"),
            deals: format!("{tag}:deals"),
            mutes: format!("{tag}:mutes"),
            rates: format!("{tag}:rates"),
            nodes: format!("{tag}:nodes"),
            channel: format!("{tag}:ch"),
        }
    }

    fn room_of_channel(&self, channel: &str) -> Option<Id> {
        let rest = channel
            .strip_prefix('{')?
            .strip_prefix(self.prefix.as_str())?;
        let room = rest.strip_prefix(":room:")?.strip_suffix("}:ch")?;
        Id::new(room).ok()
    }

    /// Feeds `slot`'s track and carries out what it says, delivering under the track's lock
    /// so that deliveries from the subscription and from a repair never interleave.
    fn feed(self: &Arc<Self>, room: &Id, slot: &Arc<Slot>, f: impl FnOnce(&mut Track) -> Ready) {
        let ready = {
            let mut track = slot.track.lock();
            let mut ready = f(&mut track);
            let deliver = std::mem::take(&mut ready.deliver);
            if !deliver.is_empty()
                && let Some(sink) = slot.sink.upgrade()
            {
                for (seq, event) in deliver {
                    sink.deliver(seq, event);
                }
            }
            ready
        };
        if ready.duplicates > 0 {
            metrics::counter!(m::BUS_DUPLICATES).increment(ready.duplicates);
        }
        if ready.lost {
            metrics::counter!(m::BUS_LOST).increment(1);
            tracing::warn!(room = %room, "room history lost or unrepairable; viewers reconnect");
            // The room closes; its ticker then closes it on the bus, which unsubscribes.
            if let Some(sink) = slot.sink.upgrade() {
                sink.lost();
            }
        }
        if let Some(from) = ready.repair_from {
            self.repair(room.clone(), Arc::clone(slot), from);
        }
    }

    fn repair(self: &Arc<Self>, room: Id, slot: Arc<Slot>, from: u64) {
        let me = Arc::clone(self);
        self.redis.spawn(async move {
            metrics::counter!(m::BUS_REPAIRS).increment(1);
            let keys = me.keys(&room);
            let args = [from.to_string(), REPAIR_BATCH.to_string()];
            let hist = [keys.hist];
            let read = me.redis.run::<Vec<String>>(&me.scripts.range, &hist, &args);
            match read.await.map_err(BusError::from).and_then(|l| parse_range(&l)) {
                Ok(entries) => {
                    tracing::info!(room = %room, from, events = entries.len(), "gap repaired from history");
                    me.feed(&room, &slot, |t| t.repaired(entries));
                }
                Err(e) => {
                    metrics::counter!(m::BUS_ERRORS).increment(1);
                    tracing::debug!(room = %room, error = %e, "gap repair failed; retrying later");
                    slot.track.lock().repair_failed();
                }
            }
        });
    }

    /// A push from the cluster connection: a sharded message, or a (re-)subscription, after
    /// which anything missed is in the room's stream.
    fn on_push(self: &Arc<Self>, info: redis::PushInfo) {
        let text = |v: Option<&redis::Value>| match v {
            Some(redis::Value::BulkString(b)) => Some(b.clone()),
            Some(redis::Value::SimpleString(s)) => Some(s.clone().into_bytes()),
            _ => None,
        };
        match info.kind {
            redis::PushKind::SMessage => {
                if let (Some(channel), Some(payload)) =
                    (text(info.data.first()), text(info.data.get(1)))
                {
                    let channel = String::from_utf8_lossy(&channel).into_owned();
                    if self.inbound.try_send(Inbound { channel, payload }).is_err() {
                        metrics::counter!(m::BUS_ERRORS).increment(1);
                    }
                }
            }
            redis::PushKind::SSubscribe => {
                let channel = text(info.data.first()).unwrap_or_default();
                let room = self.room_of_channel(&String::from_utf8_lossy(&channel));
                if let Some(room) = room
                    && let Some(slot) = self.rooms.get(&room).map(|s| Arc::clone(s.value()))
                {
                    self.feed(&room, &slot, Track::resync);
                }
            }
            redis::PushKind::Disconnection => {
                metrics::counter!(m::BUS_RESUBSCRIBES).increment(1);
                crate::quiet::warn(
                    "Redis Cluster subscription dropped; the client re-subscribes",
                    &"disconnected",
                );
            }
            _ => {}
        }
    }

    fn on_message(self: &Arc<Self>, channel: &str, payload: &[u8]) {
        let Some(room) = self.room_of_channel(channel) else {
            return;
        };
        let Some(slot) = self.rooms.get(&room).map(|s| Arc::clone(s.value())) else {
            return;
        };
        let Ok(payload) = std::str::from_utf8(payload) else {
            return;
        };
        metrics::counter!(m::BUS_MESSAGES).increment(1);
        if let Some(stock) = payload.strip_prefix("S|") {
            if let (Some((deal, level)), Some(sink)) = (parse_stock(stock), slot.sink.upgrade()) {
                sink.stock(&deal, level);
            }
            return;
        }
        if let Some(tick) = payload.strip_prefix("A|") {
            let tick = serde_json::from_str::<super::AuctionTick>(tick);
            if let (Ok(tick), Some(sink)) = (tick, slot.sink.upgrade()) {
                sink.auction_bid(tick);
            }
            return;
        }
        match parse_published(payload) {
            Some((seq, epoch, event)) => {
                if let Some(ts) = published_ts(&event) {
                    let lag = now_ms().saturating_sub(ts) as f64 / 1000.0;
                    metrics::histogram!(m::BUS_LAG_SECONDS).record(lag);
                }
                self.feed(&room, &slot, |t| t.offer(seq, epoch, event));
            }
            None => {
                tracing::error!(room = %room, "unreadable bus message; reopening the room");
                self.feed(&room, &slot, |_| Ready {
                    lost: true,
                    ..Ready::default()
                });
            }
        }
    }

    fn set_sub(&self, live: Option<redis::aio::PubSubSink>) {
        if let Subscription::Single { sink, connected } = &self.sub {
            let up = live.is_some();
            *sink.lock() = live;
            connected.send_replace(up);
        }
    }

    /// The single server's live subscription, waited for (within the deadline) while a node
    /// (re)connects it; None on a cluster.
    async fn single_sink(&self) -> Result<Option<redis::aio::PubSubSink>, BusError> {
        let Subscription::Single { sink, connected } = &self.sub else {
            return Ok(None);
        };
        let mut up = connected.subscribe();
        let _ = tokio::time::timeout(self.timeout, up.wait_for(|c| *c)).await;
        let live = sink.lock().clone();
        live.map(Some)
            .ok_or_else(|| BusError::Unavailable("not subscribed to Redis yet".into()))
    }

    async fn subscribe(&self, channel: String) -> Result<(), BusError> {
        let task = match (&self.sub, self.single_sink().await?) {
            (_, Some(mut sink)) => self
                .redis
                .spawn(async move { sink.subscribe(channel).await }),
            (Subscription::Cluster { conn }, None) => {
                let mut conn = conn.clone();
                self.redis
                    .spawn(async move { conn.ssubscribe(channel).await })
            }
            (Subscription::Single { .. }, None) => None,
        };
        let task = task.ok_or_else(|| BusError::Unavailable("shutting down".into()))?;
        match tokio::time::timeout(self.timeout, task).await {
            Ok(Ok(Ok(()))) => Ok(()),
            // Through RedisIoError, so a refusal (NOAUTH ...) is told in the hub's words.
            Ok(Ok(Err(e))) => Err(crate::redis_io::RedisIoError::from(e).into()),
            Ok(Err(e)) => Err(BusError::Internal(e.to_string())),
            Err(_) => Err(BusError::Unavailable("subscribe timed out".into())),
        }
    }

    async fn unsubscribe(&self, channel: String) {
        match &self.sub {
            Subscription::Single { sink, .. } => {
                let live = sink.lock().clone();
                if let Some(mut live) = live {
                    let _ = live.unsubscribe(channel).await;
                }
            }
            Subscription::Cluster { conn } => {
                let _ = conn.clone().sunsubscribe(channel).await;
            }
        }
    }

    /// The room's lifetime ran out in Redis (its host was not seen for `open_ttl_ms`): the room
    /// closes on this node (viewers get 1001 and find the show not started when they come
    /// back), and the caller is told it is not open.
    fn gone(&self, room: &Id) -> BusError {
        if let Some(sink) = self.rooms.get(room).and_then(|s| s.sink.upgrade()) {
            tracing::info!(room = %room, "room expired in Redis (its host was not seen); closing it here");
            sink.lost();
        }
        BusError::NotOpened
    }

    async fn load(
        &self,
        room: &Id,
        create: bool,
    ) -> Result<Option<(SavedRoom, String, Counters)>, BusError> {
        let k = self.keys(room);
        let keys = [k.meta, k.hist, k.recent, k.deals, k.nodes, k.mutes, k.rates];
        let args = [
            now_ms().to_string(),
            self.settings.history.to_string(),
            if create { "1" } else { "0" }.to_owned(),
            random_id(),
            self.settings.open_ttl_ms.to_string(),
        ];
        let reply: String = self.redis.run(&self.scripts.load, &keys, &args).await?;
        parse_state(room, &reply)
    }
}

/// Delivers the subscription's messages in arrival order, on the hub's runtime, until the bus
/// is dropped.
async fn dispatcher(shared: Weak<Shared>, mut rx: mpsc::Receiver<Inbound>) {
    while let Some(first) = rx.recv().await {
        let Some(me) = shared.upgrade() else { return };
        me.on_message(&first.channel, &first.payload);
        while let Ok(next) = rx.try_recv() {
            me.on_message(&next.channel, &next.payload);
        }
    }
}

/// The single server's subscription for the bus's life: connects, subscribes every open room,
/// forwards what arrives to the bus's inbound queue, and after a drop or a refusal starts over
/// with a backoff from 50 ms to 1 s.
async fn subscriber(shared: Weak<Shared>) {
    let mut backoff = Duration::from_millis(50);
    let mut announced = false;
    loop {
        let subscribed = match connect_pubsub(&shared).await {
            None => return,
            Some(Ok(pubsub)) => {
                let (sink, stream) = pubsub.split();
                let Some(me) = shared.upgrade() else { return };
                subscribe_rooms(&me, sink, announced).await.map(|()| stream)
            }
            Some(Err(())) => Err(()),
        };
        let Ok(mut stream) = subscribed else {
            announced = true;
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(1));
            continue;
        };
        backoff = Duration::from_millis(50);
        while let Some(msg) = stream.next().await {
            let Some(me) = shared.upgrade() else { return };
            let inbound = Inbound {
                channel: msg.get_channel_name().to_owned(),
                payload: msg.get_payload_bytes().to_vec(),
            };
            if me.inbound.send(inbound).await.is_err() {
                return;
            }
        }
        let Some(me) = shared.upgrade() else { return };
        me.set_sub(None);
        metrics::counter!(m::BUS_RESUBSCRIBES).increment(1);
        // Not a warning of its own: re-subscribing either succeeds at once ("subscribed to
        // Redis again") or finds Redis down (the outage line).
        tracing::debug!("Redis subscription dropped; re-subscribing");
        announced = true;
    }
}

/// A pub/sub connection to the single server; None once the bus is gone, `Err` (said once per
/// outage, by the connection's health, with the URL and reason) when Redis did not take it.
async fn connect_pubsub(shared: &Weak<Shared>) -> Option<Result<redis::aio::PubSub, ()>> {
    let me = shared.upgrade()?;
    let client = me.redis.client().cloned()?;
    let timeout = me.timeout;
    drop(me);
    let connected = tokio::time::timeout(timeout, client.get_async_pubsub()).await;
    let failed = match connected {
        Ok(Ok(pubsub)) => return Some(Ok(pubsub)),
        failed => failed,
    };
    let me = shared.upgrade()?;
    match failed {
        Ok(Err(e)) if crate::redis_io::health::is_outage(&e) => me
            .redis
            .health()
            .unreachable(&crate::redis_io::health::reason(&e)),
        Ok(Err(e)) => crate::quiet::warn("cannot subscribe to Redis; retrying", &e),
        _ => me.redis.health().unreachable("no answer in time"),
    }
    Some(Err(()))
}

/// Subscribes `sink` to every open room's channel and makes it the bus's; then, since anything
/// published while the bus was away is in the rooms' streams, has every room checked for gaps.
/// `Err` when Redis refused (NOPERM, say) or dropped it at once: the caller backs off.
async fn subscribe_rooms(
    me: &Arc<Shared>,
    mut sink: redis::aio::PubSubSink,
    announced: bool,
) -> Result<(), ()> {
    let channels: Vec<String> = me.rooms.iter().map(|r| me.keys(r.key()).channel).collect();
    if !channels.is_empty()
        && let Err(e) = sink.subscribe(&channels).await
    {
        crate::quiet::warn("cannot subscribe to the rooms' channels; retrying", &e);
        return Err(());
    }
    me.set_sub(Some(sink));
    me.redis.health().answered();
    if announced {
        tracing::info!(
            rooms = channels.len(),
            "subscribed to Redis again; checking every room for gaps"
        );
    }
    let rooms: Vec<(Id, Arc<Slot>)> = me
        .rooms
        .iter()
        .map(|r| (r.key().clone(), Arc::clone(r.value())))
        .collect();
    for (room, slot) in rooms {
        me.feed(&room, &slot, Track::resync);
    }
    Ok(())
}

#[async_trait]
impl Bus for RedisBus {
    async fn open(
        &self,
        room: &Id,
        sink: Weak<dyn RoomSink>,
        create: bool,
    ) -> Result<(), BusError> {
        let me = &self.shared;
        let slot = Arc::new(Slot {
            track: Mutex::new(Track::new()),
            sink,
        });
        me.rooms.insert(room.clone(), Arc::clone(&slot));
        let loaded = async {
            me.subscribe(me.keys(room).channel).await?;
            me.load(room, create).await?.ok_or(BusError::NotOpened)
        };
        let (state, epoch, counters) = match loaded.await {
            Ok(l) => l,
            Err(e) => {
                if me
                    .rooms
                    .remove_if(room, |_, s| Arc::ptr_eq(s, &slot))
                    .is_some()
                    && !me.rooms.contains_key(room)
                {
                    me.unsubscribe(me.keys(room).channel).await;
                }
                return Err(e);
            }
        };
        let seq = state.seq;
        me.feed(room, &slot, |t| {
            if let Some(sink) = slot.sink.upgrade() {
                sink.load(state);
                sink.counters(counters);
            }
            t.loaded(seq, &epoch)
        });
        Ok(())
    }

    async fn close(&self, room: &Id, sink: &Weak<dyn RoomSink>, _last: SavedRoom) {
        let me = Arc::clone(&self.shared);
        if me
            .rooms
            .remove_if(room, |_, s| Weak::ptr_eq(&s.sink, sink))
            .is_none()
        {
            return; // already replaced by a newer open of the room
        }
        let room = room.clone();
        let io = me.redis.clone();
        io.spawn(async move {
            let channel = me.keys(&room).channel;
            me.unsubscribe(channel.clone()).await;
            // A new open of the room may have subscribed just before this unsubscribe: subscribe
            // again, and catch up on anything published in between.
            if let Some(slot) = me.rooms.get(&room).map(|s| Arc::clone(s.value()))
                && me.subscribe(channel).await.is_ok()
            {
                me.feed(&room, &slot, Track::resync);
            }
        });
    }

    async fn peek(&self, room: &Id) -> Result<Option<(SavedRoom, Counters)>, BusError> {
        Ok(self.shared.load(room, false).await?.map(|(s, _, c)| (s, c)))
    }

    async fn publish(&self, room: &Id, event: Event) -> Result<Published, BusError> {
        let me = &self.shared;
        let k = me.keys(room);
        let json = serde_json::to_string(&event).map_err(|e| BusError::Internal(e.to_string()))?;
        let args = PublishArgs {
            now: now_ms(),
            history: me.settings.history,
            recent: me.settings.recent_comments,
            channel: k.channel,
            epoch: random_id(),
            command: me.sub.publish_command(),
            open_ttl: me.settings.open_ttl_ms,
            event: EventArgs::of(&event, me.settings.comment_rate)?,
        };
        let args = serde_json::to_string(&args).map_err(|e| BusError::Internal(e.to_string()))?;
        let keys = [k.meta, k.hist, k.recent, k.deals, k.mutes, k.rates];
        let reply: Vec<String> = me
            .redis
            .run(&me.scripts.publish, &keys, &[json, args])
            .await?;
        match parse_publish(&reply)? {
            PublishReply::Published(seq) => Ok(Published::Seq(seq)),
            PublishReply::Same => Ok(Published::Unchanged),
            PublishReply::Gone => Err(me.gone(room)),
            PublishReply::Refused(why) => Err(refusal(why, &event)),
        }
    }

    async fn mute(&self, room: &Id, user: &Id, until_ms: u64) -> Result<(), BusError> {
        let key = self.shared.keys(room).mutes;
        let user = user.to_string();
        // No longer than the room can live (the next event aligns it with the room's meta).
        let ttl = self.shared.settings.open_ttl_ms;
        let mut pipe = redis::pipe();
        pipe.hset(&key, user, until_ms)
            .ignore()
            .pexpire(&key, i64::try_from(ttl).unwrap_or(i64::MAX))
            .ignore();
        self.shared
            .redis
            .exec(move |mut conn| async move { pipe.query_async::<()>(&mut conn).await })
            .await?;
        Ok(())
    }

    async fn unmute(&self, room: &Id, user: &Id) -> Result<(), BusError> {
        let me = &self.shared;
        let keys = [me.keys(room).mutes];
        let args = [user.to_string(), now_ms().to_string()];
        let lifted: i64 = me.redis.run(&me.scripts.unmute, &keys, &args).await?;
        if lifted == 1 {
            Ok(())
        } else {
            Err(BusError::NotMuted(user.clone()))
        }
    }

    async fn muted(&self, room: &Id) -> Result<Vec<(Id, u64)>, BusError> {
        let key = self.shared.keys(room).mutes;
        let all: Vec<(String, String)> = self
            .shared
            .redis
            .exec(move |mut conn| async move {
                redis::cmd("HGETALL").arg(key).query_async(&mut conn).await
            })
            .await?;
        Ok(wire::live_mutes(&all, now_ms()))
    }

    async fn counters(
        &self,
        room: &Id,
        viewers: u64,
        likes: u64,
        host_seen: bool,
    ) -> Result<Counters, BusError> {
        let me = &self.shared;
        let k = me.keys(room);
        let args = [
            me.node.clone(),
            viewers.to_string(),
            now_ms().to_string(),
            me.settings.viewers_ttl_ms.to_string(),
            likes.to_string(),
            if host_seen { "1" } else { "0" }.to_owned(),
            me.settings.open_ttl_ms.to_string(),
        ];
        let keys = [k.meta, k.nodes, k.hist, k.recent, k.deals, k.mutes, k.rates];
        let reply: Vec<String> = me.redis.run(&me.scripts.counters, &keys, &args).await?;
        let Some((counters, seq, epoch)) = parse_counters(&reply)? else {
            return Err(me.gone(room));
        };
        if let Some(slot) = me.rooms.get(room).map(|s| Arc::clone(s.value())) {
            me.feed(room, &slot, |t| t.position(seq, &epoch));
        }
        Ok(counters)
    }

    async fn position(&self, room: &Id) -> Result<u64, BusError> {
        let key = self.shared.keys(room).meta;
        let seq: Option<u64> = self
            .shared
            .redis
            .exec(move |mut conn| async move {
                redis::cmd("HGET")
                    .arg(key)
                    .arg("seq")
                    .query_async(&mut conn)
                    .await
            })
            .await?;
        seq.ok_or(BusError::NotOpened)
    }

    fn stock(&self, room: &Id, deal: &Id, level: StockLevel) {
        let me = &self.shared;
        if let Some(sink) = me.rooms.get(room).and_then(|s| s.sink.upgrade()) {
            sink.stock(deal, level);
        }
        let channel = me.keys(room).channel;
        let msg = format!("S|{deal}|{}|{}", level.remaining, level.version);
        let mut publish = redis::cmd(me.sub.publish_command());
        publish.arg(channel).arg(msg);
        let mut conn = me.redis.conn();
        me.redis.spawn(async move {
            if publish.query_async::<()>(&mut conn).await.is_err() {
                metrics::counter!(m::BUS_ERRORS).increment(1);
            }
        });
    }

    fn auction_bid(&self, room: &Id, tick: super::AuctionTick) {
        let me = &self.shared;
        let Ok(json) = serde_json::to_string(&tick) else {
            return;
        };
        if let Some(sink) = me.rooms.get(room).and_then(|s| s.sink.upgrade()) {
            sink.auction_bid(tick);
        }
        let mut publish = redis::cmd(me.sub.publish_command());
        publish.arg(me.keys(room).channel).arg(format!("A|{json}"));
        let mut conn = me.redis.conn();
        me.redis.spawn(async move {
            if publish.query_async::<()>(&mut conn).await.is_err() {
                metrics::counter!(m::BUS_ERRORS).increment(1);
            }
        });
    }

    fn export(&self, _open: Vec<SavedRoom>) -> Option<SavedState> {
        None
    }

    async fn health(&self) -> Result<(), BusError> {
        match &self.shared.sub {
            Subscription::Single { sink, .. } if sink.lock().is_none() => {
                Err(BusError::Unavailable("not subscribed to Redis".into()))
            }
            _ => Ok(()),
        }
    }
}
