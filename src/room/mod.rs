//! One live room on this node: its [`Projection`] (built from the room's events in `seq`
//! order, as the bus delivers them), its local [`Subscribers`], the room-wide counters, the
//! per-user reserve limit, and its funnel [`RoomTally`] (fed at join, leave and when a deal
//! goes live, under the same lock, so no exposure is missed between them). The room is the
//! bus's [`RoomSink`]: events reach it only through the bus, so every node's viewers see the
//! same sequence, and stock readings only through [`RoomSink::stock`] (the bus's, and the hub's
//! one reading when the room opens here): their one way to the viewers is described in
//! `hub/stock.rs`. The room pushes what viewers see into their outboxes (events into the events
//! lane, counters into the counter slots); a connection's writer never reads the room.
//!
//! All of it sits behind one short `parking_lot` mutex that is never held across an `.await`.
//! An event is serialized once and the same buffer pushed to every connection while the lock is
//! held, so a viewer that joins between two events receives every later event exactly once.

pub mod auctions;
pub mod projection;
pub mod subscribers;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::extract::ws::Utf8Bytes;
use parking_lot::Mutex;

use crate::auctions::lot_id;
use crate::bus::{AuctionTick, Counters, Event, RoomSink, WinnerOrder};
use crate::commerce::Channel;
use crate::config::Config;
use crate::error::HubError;
use crate::funnel::RoomTally;
use crate::inventory::StockLevel;
use crate::outbox::{self, Outbox};
use crate::persist::SavedRoom;
use crate::protocol::{
    Announced, AuctionStatus, AuctionView, Deal, DealStatus, Id, Muted, ServerMsg, You,
};
use crate::rate::TokenBucket;

pub use projection::Projection;
pub use subscribers::Subscribers;

/// The settings a room needs, copied from configuration.
#[derive(Clone, Debug)]
pub struct RoomSettings {
    pub history: usize,
    pub recent_comments: usize,
    pub idle: Duration,
    pub reserve_rate: (f64, f64),
    /// Bids per user per auction: sustained rate and burst.
    pub bid_rate: (f64, f64),
    /// The stream shown in a room whose host set none (`pages.stream_url`; None when empty).
    pub stream_url: Option<String>,
}

impl RoomSettings {
    /// Picks the room's settings out of the configuration.
    pub fn from_config(config: &Config) -> Self {
        let (room, limits) = (&config.room, &config.limits);
        let stream_url = &config.pages.stream_url;
        RoomSettings {
            history: room.history,
            recent_comments: room.recent_comments,
            idle: Duration::from_millis(room.idle_ms),
            reserve_rate: (limits.reserve_rate_per_sec, limits.reserve_burst),
            bid_rate: (limits.bid_rate_per_sec, limits.bid_burst),
            stream_url: (!stream_url.is_empty()).then(|| stream_url.clone()),
        }
    }

    /// The stream a room shows: its host's, else the configured one.
    pub fn stream_of(&self, room: Option<String>) -> Option<String> {
        room.or_else(|| self.stream_url.clone())
    }
}

/// What a room's state looks like from outside: `welcome` minus `you`.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct Snapshot {
    pub room: Id,
    pub seq: u64,
    pub viewers: u64,
    pub likes: u64,
    pub pinned: Option<crate::protocol::Product>,
    pub deals: Vec<Deal>,
    pub recent: Vec<crate::protocol::Comment>,
    /// As in `welcome`: the room's stream, else the configured one, else null.
    #[serde(default)]
    pub stream_url: Option<String>,
    /// As in `welcome`: the latest announcement, null before the first.
    #[serde(default)]
    pub announcement: Option<Announced>,
    /// As in `welcome`: the live auctions as they stand.
    #[serde(default)]
    pub auctions: Vec<AuctionView>,
}

impl Snapshot {
    /// A room that is not open on this node, as the bus keeps it (`settings` give the stream
    /// of a room whose host set none).
    pub fn of_saved(saved: SavedRoom, counters: Counters, settings: &RoomSettings) -> Self {
        Snapshot {
            room: saved.room,
            seq: saved.seq,
            viewers: counters.viewers,
            likes: counters.likes,
            pinned: saved.pinned,
            deals: saved.deals,
            recent: saved.recent,
            stream_url: settings.stream_of(saved.stream_url),
            announcement: saved.announcement,
            auctions: saved
                .auctions
                .into_iter()
                .filter(|a| a.status == crate::protocol::AuctionStatus::Live)
                .collect(),
        }
    }
}

struct State {
    closed: bool,
    projection: Projection,
    subs: Subscribers,
    /// Room-wide counters as the bus last reported them.
    totals: Counters,
    /// This node's viewers in the last report (so the other nodes' share is known).
    reported: u64,
    reserves: HashMap<Id, TokenBucket>,
    /// Each user's bid rate, per auction.
    bids: HashMap<(Id, Id), TokenBucket>,
    likes_sent: u64,
    viewers_sent: u64,
    last_activity: Instant,
}

impl State {
    /// The room's viewers on every node: the other nodes' share of the last total, and this
    /// node's viewers now (hosts and admins are not viewers).
    fn viewers(&self) -> u64 {
        self.totals.viewers.saturating_sub(self.reported) + self.subs.viewers()
    }
}

/// One node's report of a room to the bus (see [`Room::take_report`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Report {
    pub viewers: u64,
    pub likes: u64,
    pub host_seen: bool,
}

/// A live room on this node. Create it through the hub.
pub struct Room {
    id: Id,
    settings: RoomSettings,
    state: Mutex<State>,
    /// Likes received here and not yet reported to the bus.
    likes: AtomicU64,
    tally: RoomTally,
    /// The last `seq` the projection applied, for commands that must see earlier writes.
    applied: tokio::sync::watch::Sender<u64>,
    /// The room's `room` label on metrics (bounded: see [`crate::funnel::Funnel::room_label`]).
    label: String,
}

/// The room was dropped from the hub while the caller held it; look it up again.
#[derive(Debug, thiserror::Error)]
#[error("room is closed")]
pub struct RoomClosed;

fn encode(msg: &ServerMsg) -> Option<Utf8Bytes> {
    match msg.to_json() {
        Ok(json) => Some(json.into()),
        Err(e) => {
            // Only a bug can get here; the frame is skipped rather than the room taken down.
            tracing::error!(error = %e, kind = msg.kind(), "message not encoded");
            None
        }
    }
}

impl Room {
    /// An empty room; the bus loads its state before it delivers any event. `tally` records
    /// the room's funnel on this node; `label` names it on metrics.
    pub fn new(id: Id, settings: RoomSettings, tally: RoomTally, label: String) -> Self {
        Room {
            id,
            state: Mutex::new(State {
                closed: false,
                projection: Projection::new(settings.history, settings.recent_comments),
                subs: Subscribers::default(),
                totals: Counters::default(),
                reported: 0,
                reserves: HashMap::new(),
                bids: HashMap::new(),
                likes_sent: 0,
                viewers_sent: 0,
                last_activity: Instant::now(),
            }),
            settings,
            likes: AtomicU64::new(0),
            tally,
            applied: tokio::sync::watch::Sender::new(0),
            label,
        }
    }

    /// Resolves once this node's room has applied every event up to `seq` (never, while the
    /// room is behind: bound the wait).
    pub async fn applied(&self, seq: u64) {
        let mut rx = self.applied.subscribe();
        let _ = rx.wait_for(|s| *s >= seq).await;
    }

    /// The room's funnel facts on this node, until the hub flushes them.
    pub fn tally(&self) -> &RoomTally {
        &self.tally
    }

    /// The room as the state file keeps it.
    pub fn export(&self) -> SavedRoom {
        let st = self.state.lock();
        st.projection.export(&self.id, self.likes_total(&st))
    }

    fn likes_total(&self, st: &State) -> u64 {
        st.totals.likes + self.likes.load(Ordering::Relaxed)
    }

    /// The room's id.
    pub fn id(&self) -> &Id {
        &self.id
    }

    /// True once the room was closed (idle, or its history was lost): look it up again.
    pub fn is_closed(&self) -> bool {
        self.state.lock().closed
    }

    /// Registers a connection that came through `channel` and returns its first frames:
    /// `welcome`, then (when `since` is still in the history ring) exactly the events after
    /// `since`. Events delivered after this call reach the outbox; none is missed or repeated
    /// between the two. The funnel counts the join, and the deals live now as seen. `muted`
    /// (the room's mutes, read from the bus for a host or an admin) goes in the welcome.
    pub fn join(
        &self,
        outbox: Outbox,
        you: You,
        channel: Channel,
        since: Option<u64>,
        muted: Option<Vec<Muted>>,
    ) -> Result<Vec<Utf8Bytes>, RoomClosed> {
        let mut st = self.state.lock();
        if st.closed {
            return Err(RoomClosed);
        }
        st.last_activity = Instant::now();
        let resumed = since.and_then(|s| st.projection.since(s));
        let moderator = you.role != crate::protocol::Role::Viewer;
        st.subs.insert(outbox, you.user.clone(), moderator);
        let deals = st.projection.deals();
        let auctions = st.projection.live_auctions();
        // The funnel is the viewers': a host or an admin watching is not one of them.
        if you.role == crate::protocol::Role::Viewer {
            let live: Vec<Id> = deals
                .iter()
                .filter(|d| d.status != DealStatus::Ended)
                .map(|d| d.id.clone())
                .chain(auctions.iter().map(lot_id))
                .collect();
            self.tally.joined(
                &you.user,
                channel,
                &live,
                st.subs.len(),
                crate::clock::now_ms(),
            );
        }
        let welcome = ServerMsg::Welcome {
            room: self.id.clone(),
            seq: st.projection.seq(),
            you,
            viewers: st.viewers(),
            likes: self.likes_total(&st),
            pinned: st.projection.pinned(),
            deals,
            recent: st.projection.recent(),
            resumed: resumed.is_some(),
            stream_url: self.settings.stream_of(st.projection.stream()),
            announcement: st.projection.announcement(),
            auctions,
            muted,
        };
        let mut frames: Vec<Utf8Bytes> = encode(&welcome).into_iter().collect();
        frames.extend(resumed.unwrap_or_default());
        Ok(frames)
    }

    /// Removes a connection.
    pub fn leave(&self, conn: u64) {
        let mut st = self.state.lock();
        if let Some(user) = st.subs.remove(conn) {
            self.tally.left(&user, crate::clock::now_ms());
        }
        st.last_activity = Instant::now();
    }

    /// Connections to this room on this node.
    pub fn local_viewers(&self) -> u64 {
        self.state.lock().subs.len()
    }

    /// Sends `msg` to `user`'s connections to this room on this node only (an order of theirs
    /// changed); returns how many queued it.
    pub fn tell(&self, user: &Id, msg: &ServerMsg) -> u64 {
        let Some(frame) = encode(msg) else {
            return 0;
        };
        self.state.lock().subs.send_to(user, &frame)
    }

    /// Marks the room as in use, so it is not dropped as idle.
    pub fn touch(&self) {
        self.state.lock().last_activity = Instant::now();
    }

    /// Takes one token from the user's reserve rate limit (per node).
    pub fn check_reserve_rate(&self, user: &Id) -> Result<(), HubError> {
        let now = Instant::now();
        let (rate, burst) = self.settings.reserve_rate;
        let mut st = self.state.lock();
        let bucket = st
            .reserves
            .entry(user.clone())
            .or_insert_with(|| TokenBucket::new(rate, burst, now));
        if bucket.try_take(now) {
            Ok(())
        } else {
            Err(HubError::RateLimited(
                "too many reserve attempts; slow down".into(),
            ))
        }
    }

    /// Takes one bid of `user` on `auction` from their rate (`limits.bid_rate_per_sec` and
    /// `_burst`); false when they bid faster.
    pub fn take_bid(&self, user: &Id, auction: &Id) -> bool {
        let now = Instant::now();
        let (rate, burst) = self.settings.bid_rate;
        let mut st = self.state.lock();
        st.bids
            .entry((user.clone(), auction.clone()))
            .or_insert_with(|| TokenBucket::new(rate, burst, now))
            .try_take(now)
    }

    /// Adds likes; viewers on every node see the total on a later tick.
    pub fn like(&self, count: u32) {
        self.likes.fetch_add(u64::from(count), Ordering::Relaxed);
    }

    /// What this node reports to the bus: its viewers, the likes since the last report (give
    /// them back with [`Room::unreport_likes`] when the report fails), and whether the room's
    /// host is seen here at `now_ms` (a host or admin connected, or a deal open), which keeps
    /// the room open.
    pub fn take_report(&self, now_ms: u64) -> Report {
        let mut st = self.state.lock();
        st.reported = st.subs.viewers();
        Report {
            viewers: st.reported,
            likes: self.likes.swap(0, Ordering::Relaxed),
            host_seen: st.subs.has_moderator() || st.projection.has_open_deal(now_ms),
        }
    }

    /// Likes of a report that did not reach the bus, to be reported again.
    pub fn unreport_likes(&self, likes: u64) {
        self.likes.fetch_add(likes, Ordering::Relaxed);
    }

    /// The pinned product, as this node last applied it.
    pub fn pinned(&self) -> Option<crate::protocol::Product> {
        self.state.lock().projection.pinned()
    }

    /// The deal, when the room knows it.
    pub fn deal(&self, id: &Id) -> Option<Deal> {
        self.state.lock().projection.deal(id).cloned()
    }

    /// The deal with its new status, when `level` changes it (sold out, or live again).
    pub fn status_change(&self, deal: &Id, level: StockLevel, now_ms: u64) -> Option<Deal> {
        self.state
            .lock()
            .projection
            .status_change(deal, level, now_ms)
    }

    /// Sets the counters that changed since the last tick (likes, stock) and, when
    /// `send_viewers`, the viewer count if it changed, on every connection: each goes out with
    /// the connection's next write, whatever is queued (the latest value only). Local work only:
    /// it never waits on the bus or the inventory.
    pub fn tick(&self, send_viewers: bool) {
        let mut st = self.state.lock();
        let likes = self.likes_total(&st);
        let mut msgs = Vec::new();
        if likes != st.likes_sent {
            st.likes_sent = likes;
            msgs.push((outbox::LIKES, ServerMsg::Likes { total: likes }));
        }
        for msg in st.projection.take_stock_changes() {
            if let ServerMsg::Stock { deal, .. } = &msg {
                msgs.push((outbox::stock_key(deal.as_str()), msg));
            }
        }
        for msg in st.projection.auctions().take_changes() {
            if let ServerMsg::AuctionBid { auction, .. } = &msg {
                msgs.push((outbox::auction_key(auction.as_str()), msg));
            }
        }
        if send_viewers {
            let n = st.viewers();
            if n != st.viewers_sent {
                st.viewers_sent = n;
                msgs.push((outbox::VIEWERS, ServerMsg::Viewers { count: n }));
            }
        }
        for (key, msg) in &msgs {
            if let Some(f) = encode(msg) {
                st.subs.set_counter(*key, &f);
            }
        }
    }

    /// The lot (see [`lot_id`]) of the room's live auction `id`, as this node knows it.
    pub fn auction_lot(&self, id: &Id) -> Option<Id> {
        self.state.lock().projection.live_auction(id).map(lot_id)
    }

    /// Takes in the room's auctions as the store has them (when the room opens here: the bus
    /// keeps each as its last event left it, the store has the bids since).
    pub fn seed_auctions(&self, auctions: &[AuctionView]) {
        let mut st = self.state.lock();
        for a in auctions {
            st.projection.auctions().apply(a);
        }
    }

    /// Deals the room still shows open whose time ran out by `now_ms`.
    pub fn expired_deals(&self, now_ms: u64) -> Vec<Id> {
        self.state.lock().projection.expired_deals(now_ms)
    }

    /// The room as `GET /api/rooms/{room}` shows it.
    pub fn snapshot(&self) -> Snapshot {
        let st = self.state.lock();
        Snapshot {
            room: self.id.clone(),
            seq: st.projection.seq(),
            viewers: st.viewers(),
            likes: self.likes_total(&st),
            pinned: st.projection.pinned(),
            deals: st.projection.deals(),
            recent: st.projection.recent(),
            stream_url: self.settings.stream_of(st.projection.stream()),
            announcement: st.projection.announcement(),
            auctions: st.projection.live_auctions(),
        }
    }

    /// If the room has no connections here, no open deal and no activity for the idle time,
    /// marks it closed and returns its final state.
    pub fn close_if_idle(&self, now_ms: u64) -> Option<SavedRoom> {
        let mut st = self.state.lock();
        let idle = st.subs.is_empty()
            && !st.projection.has_open_deal(now_ms)
            && st.last_activity.elapsed() >= self.settings.idle;
        if !idle {
            return None;
        }
        st.closed = true;
        Some(st.projection.export(&self.id, self.likes_total(&st)))
    }
}

impl RoomSink for Room {
    fn load(&self, state: SavedRoom) {
        let mut st = self.state.lock();
        st.totals.likes = state.likes;
        st.likes_sent = state.likes;
        let seq = state.seq;
        st.projection.load(state);
        self.applied.send_replace(seq);
    }

    fn counters(&self, counters: Counters) {
        self.state.lock().totals = counters;
    }

    fn deliver(&self, seq: u64, event: Event) {
        let mut st = self.state.lock();
        if st.closed {
            return;
        }
        let winner = match &event {
            Event::Auction { winner_order, .. } => winner_order.clone(),
            _ => None,
        };
        let applied = match st.projection.apply(seq, event) {
            Ok(Some(a)) => a,
            Ok(None) => return,
            Err(e) => {
                tracing::error!(room = %self.id, seq, error = %e, "event not encoded");
                return;
            }
        };
        st.last_activity = Instant::now();
        self.applied.send_replace(seq);
        match &applied.msg {
            ServerMsg::Deal { deal, .. } if deal.status == DealStatus::Ended => {
                self.tally.deal_ended(&deal.id);
            }
            ServerMsg::Deal { deal, .. } => self.tally.deal_live(&deal.id, st.subs.users()),
            // An auction is counted in its lot's row: who saw it live, who bid, who won.
            ServerMsg::Auction { auction, .. } if auction.status == AuctionStatus::Live => {
                self.tally.deal_live(&lot_id(auction), st.subs.users());
            }
            ServerMsg::Auction { auction, .. } => self.tally.deal_ended(&lot_id(auction)),
            _ => {}
        }
        let out = match &applied.msg {
            ServerMsg::Comment(c) => st.subs.fan_out_chat(seq, &c.user, &applied.frame),
            _ => st.subs.fan_out(&applied.frame),
        };
        if let (ServerMsg::Auction { auction, .. }, Some(order)) = (&applied.msg, winner) {
            tell_winner(&st.subs, order, auction);
        }
        metrics::counter!(crate::metrics::EVENTS, "type" => applied.msg.kind()).increment(1);
        metrics::counter!(crate::metrics::FANOUT_DELIVERIES).increment(out.queued);
        if out.thinned > 0 {
            metrics::counter!(crate::metrics::CHAT_THINNED, "room" => self.label.clone())
                .increment(out.thinned);
        }
    }

    /// The one door of stock readings into the room: kept in the projection (newest version
    /// wins), set in the viewers' counter slots by the next [`Room::tick`].
    fn stock(&self, deal: &Id, level: StockLevel) {
        self.state.lock().projection.stock(deal, level);
    }

    /// The one door of auction bids into the room, as [`RoomSink::stock`] is for stock.
    fn auction_bid(&self, tick: AuctionTick) {
        self.state.lock().projection.auctions().bid(tick);
    }

    fn lost(&self) {
        let mut st = self.state.lock();
        st.closed = true;
        st.subs.close_all();
    }
}

/// Sends an auction's winner (their connections here) the order its close made: the same
/// shape as a checkout's, with `auction` instead of `deal`.
fn tell_winner(subs: &subscribers::Subscribers, won: WinnerOrder, auction: &AuctionView) {
    let order = ServerMsg::Order {
        request_id: None,
        order: won.order,
        reservation: None,
        deal: None,
        auction: Some(auction.id.clone()),
        qty: 1,
        price_cents: won.price_cents,
        currency: auction.currency.clone(),
        status: won.status,
        pay_by: won.pay_by,
    };
    if let Some(frame) = encode(&order) {
        subs.send_to(&won.user, &frame);
    }
}
