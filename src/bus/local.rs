//! The in-process bus: one hub process, the memory backend's. Each open room's `seq`, its
//! rules and the facts its preconditions need sit behind one short lock, and an event is
//! delivered to the room's sink while that lock is held, so events reach the room in `seq`
//! order. It also keeps what the state file carries across a restart: rooms restored from the
//! file that nobody has opened yet, and the last `seq` of rooms dropped as idle. A room whose
//! host was not seen for `open_ttl_ms` (no host or admin connected, no host command, no open
//! deal) is closed and forgotten, as its keys expire on Redis.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Weak};
use std::time::Instant;

use async_trait::async_trait;
use dashmap::DashMap;
use parking_lot::Mutex;

use super::rules::{CommentRules, KnownAuction, KnownDeal, auction_is_news, deal_is_news};
use super::{Bus, BusError, BusSettings, Counters, Event, Published, RoomSink, comment_seq};
use crate::clock::now_ms;
use crate::inventory::StockLevel;
use crate::persist::{SavedRoom, SavedState};
use crate::protocol::Id;

/// The one-process bus.
pub struct LocalBus {
    settings: BusSettings,
    rooms: DashMap<Id, Arc<Mutex<LocalRoom>>>,
    /// Last `seq` of rooms dropped as idle, so a room that comes back continues its sequence.
    retired: DashMap<Id, u64>,
    /// When the host of each retired room was last seen (Unix ms).
    retired_seen: DashMap<Id, u64>,
    /// Rooms loaded from the state file that nobody has opened since the start.
    restored: DashMap<Id, SavedRoom>,
}

struct LocalRoom {
    seq: u64,
    pinned: bool,
    /// `seq`s of the recent comments (the ones that may be deleted).
    recent: VecDeque<u64>,
    deals: HashMap<Id, KnownDeal>,
    auctions: HashMap<Id, KnownAuction>,
    rules: CommentRules,
    likes: u64,
    sink: Weak<dyn RoomSink>,
    /// When the room's host was last seen (Unix ms).
    host_seen: u64,
}

impl LocalRoom {
    /// Checks `event`'s precondition and records what later checks need.
    fn admit(&mut self, event: &Event, recent_max: usize) -> Result<bool, BusError> {
        match event {
            Event::Comment { user, .. } => {
                self.rules.check(user, now_ms(), Instant::now())?;
                self.recent.push_back(self.seq + 1);
                while self.recent.len() > recent_max {
                    self.recent.pop_front();
                }
            }
            Event::CommentDeleted { id } => {
                let at = comment_seq(id).and_then(|s| self.recent.iter().position(|r| *r == s));
                let Some(at) = at else {
                    return Err(BusError::NoSuchComment(id.clone()));
                };
                self.recent.remove(at);
            }
            Event::Pinned { .. } => self.pinned = true,
            Event::Unpinned => {
                if !self.pinned {
                    return Err(BusError::NothingPinned);
                }
                self.pinned = false;
            }
            Event::Deal { deal, version } => {
                let known = self.deals.get(&deal.id).copied();
                if !deal_is_news(known, deal.status, *version, deal.ends_at) {
                    return Ok(false);
                }
                let at = match known {
                    Some((_, at, end)) if end == deal.ends_at => at.max(*version),
                    _ => *version,
                };
                self.deals
                    .insert(deal.id.clone(), (deal.status, at, deal.ends_at));
            }
            Event::Auction { auction, .. } => {
                let known = self.auctions.get(&auction.id).copied();
                if !auction_is_news(known, auction.status, auction.started_at) {
                    return Ok(false);
                }
                self.auctions
                    .insert(auction.id.clone(), (auction.status, auction.started_at));
            }
            Event::Announcement { .. } | Event::Stream { .. } => {}
        }
        Ok(true)
    }
}

impl LocalBus {
    /// A bus with no rooms.
    pub fn new(settings: BusSettings) -> Self {
        LocalBus {
            settings,
            rooms: DashMap::new(),
            retired: DashMap::new(),
            retired_seen: DashMap::new(),
            restored: DashMap::new(),
        }
    }

    /// Takes over a saved state (before any room opens): each room continues from its saved
    /// `seq`, history, pinned product, recent comments, likes and mutes when it is first opened.
    pub fn restore(&self, state: SavedState) {
        let now = now_ms();
        for (id, seq) in state.retired {
            self.retired_seen.insert(id.clone(), now);
            self.retired.insert(id, seq);
        }
        for saved in state.rooms {
            self.retired.remove(&saved.room);
            self.restored.insert(saved.room.clone(), saved);
        }
    }

    fn room(&self, room: &Id) -> Result<Arc<Mutex<LocalRoom>>, BusError> {
        self.rooms
            .get(room)
            .map(|r| Arc::clone(r.value()))
            .ok_or_else(|| BusError::Unavailable(format!("room {room} is not open; retry")))
    }

    /// True when `room`'s host was last seen at `seen` and its time is up at `now`.
    fn expired(&self, seen: u64, now: u64) -> bool {
        now.saturating_sub(seen) > self.settings.open_ttl_ms
    }

    /// Forgets the retired rooms whose time is up, so they neither grow nor reopen for viewers.
    fn forget_expired(&self, now: u64) {
        self.retired_seen.retain(|room, seen| {
            let keep = now.saturating_sub(*seen) <= self.settings.open_ttl_ms;
            if !keep {
                self.retired.remove(room);
            }
            keep
        });
    }

    fn state_of(&self, room: &Id) -> SavedRoom {
        if let Some((_, saved)) = self.restored.remove(room) {
            return saved;
        }
        let seq = self.retired.remove(room).map_or(0, |(_, seq)| seq);
        SavedRoom::empty(room.clone(), seq)
    }
}

#[async_trait]
impl Bus for LocalBus {
    async fn open(
        &self,
        room: &Id,
        sink: Weak<dyn RoomSink>,
        create: bool,
    ) -> Result<(), BusError> {
        self.forget_expired(now_ms());
        let known = self.restored.contains_key(room) || self.retired.contains_key(room);
        if !create && !known {
            return Err(BusError::NotOpened);
        }
        self.retired_seen.remove(room);
        let state = self.state_of(room);
        let now = Instant::now();
        let mut rules = CommentRules::new(self.settings.comment_rate);
        let at_ms = now_ms();
        for (user, left_ms) in &state.muted {
            rules.mute(user, at_ms + left_ms, now);
        }
        let local = LocalRoom {
            seq: state.seq,
            pinned: state.pinned.is_some(),
            recent: state.recent.iter().map(|c| c.seq).collect(),
            deals: HashMap::new(),
            auctions: HashMap::new(),
            rules,
            likes: state.likes,
            sink: sink.clone(),
            host_seen: at_ms,
        };
        let local = Arc::new(Mutex::new(local));
        let guard = local.lock();
        self.rooms.insert(room.clone(), Arc::clone(&local));
        if let Some(sink) = sink.upgrade() {
            sink.load(state);
        }
        drop(guard);
        Ok(())
    }

    async fn close(&self, room: &Id, sink: &Weak<dyn RoomSink>, last: SavedRoom) {
        let mine = |_: &Id, r: &Arc<Mutex<LocalRoom>>| Weak::ptr_eq(&r.lock().sink, sink);
        if let Some((_, closed)) = self.rooms.remove_if(room, mine) {
            let seen = closed.lock().host_seen;
            if !self.expired(seen, now_ms()) {
                self.retired.insert(room.clone(), last.seq);
                self.retired_seen.insert(room.clone(), seen);
            }
        }
    }

    async fn peek(&self, room: &Id) -> Result<Option<(SavedRoom, Counters)>, BusError> {
        let saved = match self.restored.get(room) {
            Some(saved) => saved.clone(),
            None => match self.retired.get(room) {
                Some(seq) => SavedRoom::empty(room.clone(), *seq),
                None => return Ok(None),
            },
        };
        let counters = Counters {
            viewers: 0,
            likes: saved.likes,
        };
        Ok(Some((saved, counters)))
    }

    async fn publish(&self, room: &Id, event: Event) -> Result<Published, BusError> {
        let local = self.room(room)?;
        let mut st = local.lock();
        if !st.admit(&event, self.settings.recent_comments)? {
            return Ok(Published::Unchanged);
        }
        // Anything but a comment is the host's doing (or an open deal's).
        if !matches!(event, Event::Comment { .. }) {
            st.host_seen = now_ms();
        }
        st.seq += 1;
        let seq = st.seq;
        if let Some(sink) = st.sink.upgrade() {
            sink.deliver(seq, event);
        }
        Ok(Published::Seq(seq))
    }

    async fn mute(&self, room: &Id, user: &Id, until_ms: u64) -> Result<(), BusError> {
        let local = self.room(room)?;
        local.lock().rules.mute(user, until_ms, Instant::now());
        Ok(())
    }

    async fn unmute(&self, room: &Id, user: &Id) -> Result<(), BusError> {
        let local = self.room(room)?;
        if local.lock().rules.unmute(user, now_ms()) {
            Ok(())
        } else {
            Err(BusError::NotMuted(user.clone()))
        }
    }

    async fn muted(&self, room: &Id) -> Result<Vec<(Id, u64)>, BusError> {
        Ok(self.room(room)?.lock().rules.muted_until(now_ms()))
    }

    async fn counters(
        &self,
        room: &Id,
        viewers: u64,
        likes: u64,
        host_seen: bool,
    ) -> Result<Counters, BusError> {
        let local = self.room(room)?;
        let mut st = local.lock();
        let now = now_ms();
        if host_seen {
            st.host_seen = now;
        } else if self.expired(st.host_seen, now) {
            // Closed for good: its viewers are told to go, and it is not kept as retired.
            let sink = st.sink.clone();
            drop(st);
            self.rooms.remove_if(room, |_, r| Arc::ptr_eq(r, &local));
            if let Some(sink) = sink.upgrade() {
                sink.lost();
            }
            return Err(BusError::NotOpened);
        }
        st.likes += likes;
        Ok(Counters {
            viewers,
            likes: st.likes,
        })
    }

    async fn position(&self, room: &Id) -> Result<u64, BusError> {
        Ok(self.room(room)?.lock().seq)
    }

    fn stock(&self, room: &Id, deal: &Id, level: StockLevel) {
        let sink = self.rooms.get(room).and_then(|r| r.lock().sink.upgrade());
        if let Some(sink) = sink {
            sink.stock(deal, level);
        }
    }

    fn auction_bid(&self, room: &Id, tick: super::AuctionTick) {
        let sink = self.rooms.get(room).and_then(|r| r.lock().sink.upgrade());
        if let Some(sink) = sink {
            sink.auction_bid(tick);
        }
    }

    fn export(&self, open: Vec<SavedRoom>) -> Option<SavedState> {
        let now = now_ms();
        let mut rooms: Vec<SavedRoom> = open
            .into_iter()
            .map(|mut saved| {
                if let Some(local) = self.rooms.get(&saved.room) {
                    saved.muted = local.lock().rules.muted(now);
                }
                saved
            })
            .collect();
        rooms.extend(self.restored.iter().map(|r| r.value().clone()));
        Some(SavedState {
            version: crate::persist::VERSION,
            saved_at_ms: now,
            rooms,
            retired: self
                .retired
                .iter()
                .map(|r| (r.key().clone(), *r.value()))
                .collect(),
        })
    }

    async fn health(&self) -> Result<(), BusError> {
        Ok(())
    }
}
