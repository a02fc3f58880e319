//! One live room: its durable event sequence, history ring, snapshot state (pinned product,
//! deals, recent comments), per-user limits, coalesced counters, and the set of connections.
//!
//! All of it sits behind one short `parking_lot` mutex that is never held across an `.await`.
//! Publishing an event assigns its `seq`, serializes it once, stores it in the ring and pushes
//! the same buffer to every connection while the lock is held, so every viewer receives every
//! event in `seq` order. Pushing is a non-blocking `try_send` per viewer.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::extract::ws::Utf8Bytes;
use parking_lot::Mutex;

use crate::config::{LimitsConfig, RoomConfig};
use crate::error::HubError;
use crate::inventory::{StockLevel, status_of};
use crate::outbox::{Outbox, Pushed};
use crate::persist::SavedRoom;
use crate::protocol::{Comment, Deal, DealStatus, Id, Product, ServerMsg, You};
use crate::rate::TokenBucket;

/// A durable event before it has a `seq`.
#[derive(Clone, Debug)]
pub enum Event {
    Comment {
        user: Id,
        name: String,
        text: String,
        ts: u64,
    },
    CommentDeleted {
        id: Id,
    },
    Pinned {
        product: Product,
    },
    Unpinned,
    Deal {
        deal: Deal,
    },
    Announcement {
        text: String,
    },
}

/// The settings a room needs, copied from configuration.
#[derive(Clone, Debug)]
pub struct RoomSettings {
    pub history: usize,
    pub recent_comments: usize,
    pub idle: Duration,
    pub comment_rate: (f64, f64),
    pub reserve_rate: (f64, f64),
}

impl RoomSettings {
    /// Picks the room's settings out of the configuration.
    pub fn from_config(room: &RoomConfig, limits: &LimitsConfig) -> Self {
        RoomSettings {
            history: room.history,
            recent_comments: room.recent_comments,
            idle: Duration::from_millis(room.idle_ms),
            comment_rate: (limits.comment_rate_per_sec, limits.comment_burst),
            reserve_rate: (limits.reserve_rate_per_sec, limits.reserve_burst),
        }
    }
}

/// What a room's state looks like from outside: `welcome` minus `you`.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct Snapshot {
    pub room: Id,
    pub seq: u64,
    pub viewers: u64,
    pub likes: u64,
    pub pinned: Option<Product>,
    pub deals: Vec<Deal>,
    pub recent: Vec<Comment>,
}

impl Snapshot {
    /// A saved room that nobody has rejoined yet, as it will look once someone does (its deals
    /// are read from the inventory then).
    pub fn of_saved(saved: &SavedRoom) -> Self {
        Snapshot {
            room: saved.room.clone(),
            seq: saved.seq,
            viewers: 0,
            likes: saved.likes,
            pinned: saved.pinned.clone(),
            deals: Vec::new(),
            recent: saved.recent.clone(),
        }
    }
}

struct DealView {
    deal: Deal,
    version: u64,
    stock_dirty: bool,
}

struct UserState {
    comments: TokenBucket,
    reserves: TokenBucket,
    muted_until: Option<Instant>,
}

struct State {
    closed: bool,
    seq: u64,
    history: VecDeque<(u64, Utf8Bytes)>,
    pinned: Option<Product>,
    deals: Vec<DealView>,
    recent: VecDeque<Comment>,
    subs: HashMap<u64, Outbox>,
    users: HashMap<Id, UserState>,
    likes_sent: u64,
    viewers_sent: u64,
    last_activity: Instant,
}

/// A live room. Create it through the hub.
pub struct Room {
    id: Id,
    settings: RoomSettings,
    state: Mutex<State>,
    likes: AtomicU64,
}

/// The room was dropped from the hub while the caller held it; look it up again.
#[derive(Debug, thiserror::Error)]
#[error("room is closed")]
pub struct RoomClosed;

/// Work the room's ticker must finish outside the lock.
#[derive(Debug, Default)]
pub struct TickWork {
    /// Deals whose time ran out: end them in the inventory, then call [`Room::deal_changed`].
    pub expired_deals: Vec<Id>,
}

fn encode(msg: &ServerMsg) -> Result<Utf8Bytes, HubError> {
    msg.to_json().map(Utf8Bytes::from)
}

impl State {
    fn fan_out(&self, frame: &Utf8Bytes) -> u64 {
        let mut n = 0;
        for outbox in self.subs.values() {
            if outbox.push(frame.clone()) == Pushed::Queued {
                n += 1;
            }
        }
        n
    }

    fn fan_out_coalescible(&self, frame: &Utf8Bytes) {
        let (mut sent, mut dropped) = (0u64, 0u64);
        for outbox in self.subs.values() {
            match outbox.push_coalescible(frame.clone()) {
                Pushed::Queued => sent += 1,
                Pushed::Replaced => dropped += 1,
                _ => {}
            }
        }
        metrics::counter!(crate::metrics::COALESCED_SENT).increment(sent);
        if dropped > 0 {
            metrics::counter!(crate::metrics::COALESCED_DROPPED).increment(dropped);
        }
    }

    fn user(&mut self, user: &Id, settings: &RoomSettings, now: Instant) -> &mut UserState {
        self.users.entry(user.clone()).or_insert_with(|| UserState {
            comments: TokenBucket::new(settings.comment_rate.0, settings.comment_rate.1, now),
            reserves: TokenBucket::new(settings.reserve_rate.0, settings.reserve_rate.1, now),
            muted_until: None,
        })
    }

    fn comment_exists(&self, id: &Id) -> bool {
        self.recent.iter().any(|c| &c.id == id)
    }
}

impl Room {
    /// An empty room whose first event will have `seq` = `start_seq + 1`.
    pub fn new(id: Id, settings: RoomSettings, start_seq: u64) -> Self {
        Room {
            id,
            state: Mutex::new(State {
                closed: false,
                seq: start_seq,
                history: VecDeque::with_capacity(settings.history.min(1024)),
                pinned: None,
                deals: Vec::new(),
                recent: VecDeque::new(),
                subs: HashMap::new(),
                users: HashMap::new(),
                likes_sent: 0,
                viewers_sent: 0,
                last_activity: Instant::now(),
            }),
            settings,
            likes: AtomicU64::new(0),
        }
    }

    /// A room continuing from a saved state (see [`crate::persist`]): the same `seq`, history
    /// ring, pinned product, recent comments, likes and mutes, so viewers resume with `?since=`.
    pub fn restored(saved: SavedRoom, settings: RoomSettings) -> Self {
        let room = Room::new(saved.room, settings, saved.seq);
        {
            let mut st = room.state.lock();
            let keep = room.settings.history;
            let skip = saved.history.len().saturating_sub(keep);
            st.history = saved
                .history
                .into_iter()
                .skip(skip)
                .map(|(seq, frame)| (seq, Utf8Bytes::from(frame)))
                .collect();
            st.pinned = saved.pinned;
            let skip = saved
                .recent
                .len()
                .saturating_sub(room.settings.recent_comments);
            st.recent = saved.recent.into_iter().skip(skip).collect();
            st.likes_sent = saved.likes;
            let now = Instant::now();
            for (user, left_ms) in saved.muted {
                st.user(&user, &room.settings, now).muted_until =
                    Some(now + Duration::from_millis(left_ms));
            }
        }
        room.likes.store(saved.likes, Ordering::Relaxed);
        room
    }

    /// The room as [`Room::restored`] takes it back.
    pub fn export(&self) -> SavedRoom {
        let st = self.state.lock();
        let now = Instant::now();
        SavedRoom {
            room: self.id.clone(),
            seq: st.seq,
            history: st
                .history
                .iter()
                .map(|(seq, f)| (*seq, f.as_str().to_owned()))
                .collect(),
            pinned: st.pinned.clone(),
            recent: st.recent.iter().cloned().collect(),
            likes: self.likes.load(Ordering::Relaxed),
            muted: st
                .users
                .iter()
                .filter_map(|(user, u)| {
                    let left = u.muted_until?.checked_duration_since(now)?;
                    Some((user.clone(), left.as_millis() as u64))
                })
                .collect(),
        }
    }

    /// The room's id.
    pub fn id(&self) -> &Id {
        &self.id
    }

    /// Registers a connection and returns its first frames: `welcome`, then (when `since` is
    /// still in the history ring) exactly the events after `since`. Events published after this
    /// call reach the outbox; none is missed or repeated between the two.
    pub fn join(
        &self,
        outbox: Outbox,
        you: You,
        since: Option<u64>,
    ) -> Result<Vec<Utf8Bytes>, RoomClosed> {
        let mut st = self.state.lock();
        if st.closed {
            return Err(RoomClosed);
        }
        st.last_activity = Instant::now();
        let oldest = st.history.front().map_or(st.seq + 1, |(s, _)| *s);
        let resume_from = since.filter(|s| *s <= st.seq && s.saturating_add(1) >= oldest);
        st.subs.insert(outbox.ctl().id, outbox);
        let welcome = ServerMsg::Welcome {
            room: self.id.clone(),
            seq: st.seq,
            you,
            viewers: st.subs.len() as u64,
            likes: self.likes.load(Ordering::Relaxed),
            pinned: st.pinned.clone(),
            deals: st.deals.iter().map(|d| d.deal.clone()).collect(),
            recent: st.recent.iter().cloned().collect(),
            resumed: resume_from.is_some(),
        };
        let mut frames = Vec::new();
        // A welcome that cannot be encoded is a bug; the connection then starts without it
        // rather than taking the room down.
        match encode(&welcome) {
            Ok(f) => frames.push(f),
            Err(e) => tracing::error!(room = %self.id, error = %e, "welcome not encoded"),
        }
        if let Some(since) = resume_from {
            frames.extend(
                st.history
                    .iter()
                    .filter(|(s, _)| *s > since)
                    .map(|(_, f)| f.clone()),
            );
        }
        Ok(frames)
    }

    /// Removes a connection.
    pub fn leave(&self, conn: u64) {
        let mut st = self.state.lock();
        st.subs.remove(&conn);
        st.last_activity = Instant::now();
    }

    /// Connections in the room now.
    pub fn viewers(&self) -> u64 {
        self.state.lock().subs.len() as u64
    }

    /// Marks the room as in use, so it is not dropped as idle.
    pub fn touch(&self) {
        self.state.lock().last_activity = Instant::now();
    }

    fn publish_locked(&self, st: &mut State, event: Event) -> Result<u64, HubError> {
        if st.closed {
            return Err(HubError::Unavailable("room is restarting; retry".into()));
        }
        let seq = st.seq + 1;
        let msg = match event {
            Event::Comment {
                user,
                name,
                text,
                ts,
            } => {
                let c = Comment {
                    seq,
                    id: Id::generated(format!("c{seq}")),
                    user,
                    name,
                    text,
                    ts,
                };
                st.recent.push_back(c.clone());
                while st.recent.len() > self.settings.recent_comments {
                    st.recent.pop_front();
                }
                ServerMsg::Comment(c)
            }
            Event::CommentDeleted { id } => {
                st.recent.retain(|c| c.id != id);
                ServerMsg::CommentDeleted { seq, id }
            }
            Event::Pinned { product } => {
                st.pinned = Some(product.clone());
                ServerMsg::Pinned { seq, product }
            }
            Event::Unpinned => {
                st.pinned = None;
                ServerMsg::Unpinned { seq }
            }
            Event::Deal { deal } => {
                match st.deals.iter_mut().find(|d| d.deal.id == deal.id) {
                    Some(view) => view.deal = deal.clone(),
                    None => st.deals.push(DealView {
                        deal: deal.clone(),
                        version: 0,
                        stock_dirty: false,
                    }),
                }
                ServerMsg::Deal { seq, deal }
            }
            Event::Announcement { text } => ServerMsg::Announcement { seq, text },
        };
        let frame = encode(&msg)?;
        st.seq = seq;
        st.last_activity = Instant::now();
        st.history.push_back((seq, frame.clone()));
        while st.history.len() > self.settings.history {
            st.history.pop_front();
        }
        let delivered = st.fan_out(&frame);
        metrics::counter!(crate::metrics::EVENTS, "type" => msg.kind()).increment(1);
        metrics::counter!(crate::metrics::FANOUT_DELIVERIES).increment(delivered);
        Ok(seq)
    }

    /// Publishes a durable event to every connection; returns its `seq`.
    pub fn publish(&self, event: Event) -> Result<u64, HubError> {
        let mut st = self.state.lock();
        self.publish_locked(&mut st, event)
    }

    /// Posts a comment after the user's mute and comment rate checks.
    pub fn comment(&self, user: &Id, name: &str, text: &str, ts: u64) -> Result<u64, HubError> {
        let now = Instant::now();
        let mut st = self.state.lock();
        let settings = &self.settings;
        let u = st.user(user, settings, now);
        if let Some(until) = u.muted_until {
            if until > now {
                let secs = until.duration_since(now).as_secs() + 1;
                return Err(HubError::Forbidden(format!(
                    "you are muted in this room for {secs} more seconds"
                )));
            }
            u.muted_until = None;
        }
        if !u.comments.try_take(now) {
            return Err(HubError::RateLimited("too many comments; slow down".into()));
        }
        self.publish_locked(
            &mut st,
            Event::Comment {
                user: user.clone(),
                name: name.to_owned(),
                text: text.trim().to_owned(),
                ts,
            },
        )
    }

    /// Deletes a comment still in the room's recent list.
    pub fn delete_comment(&self, id: &Id) -> Result<u64, HubError> {
        let mut st = self.state.lock();
        if !st.comment_exists(id) {
            return Err(HubError::NotFound(format!(
                "no comment {id} among the room's recent comments"
            )));
        }
        self.publish_locked(&mut st, Event::CommentDeleted { id: id.clone() })
    }

    /// Unpins the pinned product; `conflict` when nothing is pinned.
    pub fn unpin(&self) -> Result<u64, HubError> {
        let mut st = self.state.lock();
        if st.pinned.is_none() {
            return Err(HubError::Conflict("nothing is pinned".into()));
        }
        self.publish_locked(&mut st, Event::Unpinned)
    }

    /// Mutes `user`'s comments in this room for `duration`.
    pub fn mute(&self, user: &Id, duration: Duration) {
        let now = Instant::now();
        let mut st = self.state.lock();
        let settings = &self.settings;
        st.user(user, settings, now).muted_until = Some(now + duration);
    }

    /// Takes one token from the user's reserve rate limit.
    pub fn check_reserve_rate(&self, user: &Id) -> Result<(), HubError> {
        let now = Instant::now();
        let mut st = self.state.lock();
        let settings = &self.settings;
        if st.user(user, settings, now).reserves.try_take(now) {
            Ok(())
        } else {
            Err(HubError::RateLimited(
                "too many reserve attempts; slow down".into(),
            ))
        }
    }

    /// Adds likes; viewers see the total on the next tick.
    pub fn like(&self, count: u32) {
        self.likes.fetch_add(u64::from(count), Ordering::Relaxed);
    }

    /// The per-deal limit, or None when the room does not know the deal.
    pub fn deal(&self, id: &Id) -> Option<Deal> {
        let st = self.state.lock();
        st.deals
            .iter()
            .find(|d| &d.deal.id == id)
            .map(|d| d.deal.clone())
    }

    /// Records a stock reading from the inventory. Older readings (lower version) are ignored;
    /// a newer one is sent on the next tick, and a move to or from zero publishes the deal's new
    /// status (sold out, or live again).
    pub fn update_stock(&self, deal_id: &Id, level: StockLevel, now_ms: u64) {
        let mut st = self.state.lock();
        let Some(view) = st.deals.iter_mut().find(|d| &d.deal.id == deal_id) else {
            return;
        };
        if level.version <= view.version {
            return;
        }
        view.version = level.version;
        if view.deal.remaining != level.remaining {
            view.deal.remaining = level.remaining;
            view.stock_dirty = true;
        }
        let ended = view.deal.status == DealStatus::Ended;
        let status = status_of(ended, view.deal.ends_at, level.remaining, now_ms);
        if status != view.deal.status && status != DealStatus::Ended {
            let mut deal = view.deal.clone();
            deal.status = status;
            if let Err(e) = self.publish_locked(&mut st, Event::Deal { deal }) {
                tracing::warn!(room = %self.id, deal = %deal_id, error = %e, "status not published");
            }
        }
    }

    /// Applies the inventory's view of the room's deals: an unknown deal is published (it was
    /// started through another node), an ended one is published as ended, and stock readings
    /// go through [`Room::update_stock`].
    pub fn sync_deals(&self, deals: Vec<(Deal, StockLevel)>, now_ms: u64) {
        for (deal, level) in deals {
            let known = self.deal(&deal.id);
            match known {
                None => {
                    if let Err(e) = self.publish(Event::Deal { deal }) {
                        tracing::debug!(room = %self.id, error = %e, "synced deal not published");
                    }
                }
                Some(mine) => {
                    if deal.status == DealStatus::Ended && mine.status != DealStatus::Ended {
                        let _ = self.publish(Event::Deal { deal });
                    } else {
                        self.update_stock(&mine.id, level, now_ms);
                    }
                }
            }
        }
    }

    /// Publishes a deal's new state (started or ended).
    pub fn deal_changed(&self, deal: Deal) -> Result<u64, HubError> {
        self.publish(Event::Deal { deal })
    }

    /// Sends coalesced counters that changed since the last tick (likes, stock) and, when
    /// `send_viewers`, the viewer count if it changed. Returns deals whose time ran out.
    pub fn tick(&self, now_ms: u64, send_viewers: bool) -> TickWork {
        let mut work = TickWork::default();
        let mut st = self.state.lock();
        let likes = self.likes.load(Ordering::Relaxed);
        let mut frames = Vec::new();
        if likes != st.likes_sent {
            st.likes_sent = likes;
            frames.push(ServerMsg::Likes { total: likes });
        }
        for view in st.deals.iter_mut() {
            if view.stock_dirty {
                view.stock_dirty = false;
                frames.push(ServerMsg::Stock {
                    deal: view.deal.id.clone(),
                    remaining: view.deal.remaining,
                });
            }
            if view.deal.status != DealStatus::Ended && now_ms >= view.deal.ends_at {
                work.expired_deals.push(view.deal.id.clone());
            }
        }
        if send_viewers {
            let n = st.subs.len() as u64;
            if n != st.viewers_sent {
                st.viewers_sent = n;
                frames.push(ServerMsg::Viewers { count: n });
            }
        }
        for msg in frames {
            match encode(&msg) {
                Ok(f) => st.fan_out_coalescible(&f),
                Err(e) => tracing::error!(room = %self.id, error = %e, "counter not encoded"),
            }
        }
        work
    }

    /// The current counters as frames, for a viewer whose queue dropped some.
    pub fn counter_frames(&self) -> Vec<Utf8Bytes> {
        let st = self.state.lock();
        let mut msgs = vec![
            ServerMsg::Likes {
                total: self.likes.load(Ordering::Relaxed),
            },
            ServerMsg::Viewers {
                count: st.subs.len() as u64,
            },
        ];
        msgs.extend(st.deals.iter().map(|d| ServerMsg::Stock {
            deal: d.deal.id.clone(),
            remaining: d.deal.remaining,
        }));
        msgs.iter().filter_map(|m| encode(m).ok()).collect()
    }

    /// The room as `GET /api/rooms/{room}` shows it.
    pub fn snapshot(&self) -> Snapshot {
        let st = self.state.lock();
        Snapshot {
            room: self.id.clone(),
            seq: st.seq,
            viewers: st.subs.len() as u64,
            likes: self.likes.load(Ordering::Relaxed),
            pinned: st.pinned.clone(),
            deals: st.deals.iter().map(|d| d.deal.clone()).collect(),
            recent: st.recent.iter().cloned().collect(),
        }
    }

    /// If the room has no connections, no live deal and no activity for the idle time, marks it
    /// closed and returns its last `seq` (so a later room of the same id continues from it).
    pub fn close_if_idle(&self, now_ms: u64) -> Option<u64> {
        let mut st = self.state.lock();
        let live = st
            .deals
            .iter()
            .any(|d| d.deal.status != DealStatus::Ended && now_ms < d.deal.ends_at);
        if st.subs.is_empty() && !live && st.last_activity.elapsed() >= self.settings.idle {
            st.closed = true;
            Some(st.seq)
        } else {
            None
        }
    }
}
