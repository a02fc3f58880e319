//! The hub: the room registry (sharded, no global lock), each room's ticker, and the sweeper
//! that returns expired holds to stock. Every task it starts is tracked and stops on shutdown.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use dashmap::DashMap;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::auth::Authenticator;
use crate::config::Config;
use crate::error::HubError;
use crate::inventory::Inventory;
use crate::outbox::Outbox;
use crate::persist::{SavedRoom, SavedState};
use crate::protocol::{Id, You};
use crate::room::{Room, RoomSettings, Snapshot};

/// Unix time in milliseconds.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Shared state of one hub process.
pub struct Hub {
    config: Arc<Config>,
    auth: Authenticator,
    inventory: Arc<dyn Inventory>,
    rooms: DashMap<Id, Arc<Room>>,
    /// Last `seq` of rooms dropped as idle, so a room that comes back continues its sequence.
    retired: DashMap<Id, u64>,
    /// Rooms loaded from the state file that nobody has joined since the start.
    restored: DashMap<Id, SavedRoom>,
    settings: RoomSettings,
    shutdown: CancellationToken,
    tracker: TaskTracker,
    next_conn: AtomicU64,
    connections: AtomicUsize,
}

impl Hub {
    /// A hub with no rooms. Call [`Hub::start`] to run its background tasks.
    pub fn new(config: Config, inventory: Arc<dyn Inventory>) -> Arc<Self> {
        let settings = RoomSettings::from_config(&config.room, &config.limits);
        Arc::new(Hub {
            auth: Authenticator::new(&config.auth.secret, config.auth.require_exp),
            config: Arc::new(config),
            inventory,
            rooms: DashMap::new(),
            retired: DashMap::new(),
            restored: DashMap::new(),
            settings,
            shutdown: CancellationToken::new(),
            tracker: TaskTracker::new(),
            next_conn: AtomicU64::new(1),
            connections: AtomicUsize::new(0),
        })
    }

    /// Starts the hold sweeper.
    pub fn start(self: &Arc<Self>) {
        let hub = Arc::clone(self);
        self.tracker.spawn(async move { hub.sweep_holds().await });
    }

    /// The configuration the hub runs with.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Token verification with the configured secret.
    pub fn auth(&self) -> &Authenticator {
        &self.auth
    }

    /// The inventory backend.
    pub fn inventory(&self) -> &Arc<dyn Inventory> {
        &self.inventory
    }

    /// Cancelled when the hub shuts down; connection tokens are its children.
    pub fn shutdown_token(&self) -> &CancellationToken {
        &self.shutdown
    }

    /// Tracks every task the hub owns, so shutdown can wait for them.
    pub fn tracker(&self) -> &TaskTracker {
        &self.tracker
    }

    /// A process-unique connection id.
    pub fn next_conn_id(&self) -> u64 {
        self.next_conn.fetch_add(1, Ordering::Relaxed)
    }

    /// Counts a connection in, or refuses it when `server.max_connections` are open.
    pub fn try_admit(&self) -> bool {
        let max = self.config.server.max_connections;
        self.connections
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .is_ok()
    }

    /// Counts a connection out.
    pub fn release(&self) {
        self.connections.fetch_sub(1, Ordering::AcqRel);
    }

    /// Takes over a saved state (before any connection arrives): each room continues from its
    /// saved `seq` and history when it is first used.
    pub fn restore(&self, state: SavedState) {
        for (id, seq) in state.retired {
            self.retired.insert(id, seq);
        }
        for saved in state.rooms {
            self.retired.remove(&saved.room);
            self.restored.insert(saved.room.clone(), saved);
        }
    }

    /// Every room's state, for the state file: rooms in memory, restored rooms not yet used
    /// and the last `seq` of rooms dropped as idle.
    pub fn export_state(&self) -> SavedState {
        let mut rooms: Vec<SavedRoom> = self.rooms.iter().map(|r| r.value().export()).collect();
        rooms.extend(self.restored.iter().map(|r| r.value().clone()));
        SavedState {
            version: crate::persist::VERSION,
            saved_at_ms: now_ms(),
            rooms,
            retired: self
                .retired
                .iter()
                .map(|r| (r.key().clone(), *r.value()))
                .collect(),
        }
    }

    /// The room if it is in memory now.
    pub fn existing_room(&self, id: &Id) -> Option<Arc<Room>> {
        self.rooms.get(id).map(|r| Arc::clone(r.value()))
    }

    /// The room, created on first use (with its ticker). Refused when `room.max_rooms` exist.
    pub fn room(self: &Arc<Self>, id: &Id) -> Result<Arc<Room>, HubError> {
        if let Some(room) = self.existing_room(id) {
            room.touch();
            return Ok(room);
        }
        if self.rooms.len() >= self.config.room.max_rooms {
            return Err(HubError::Unavailable(
                "this hub hosts its maximum number of rooms".into(),
            ));
        }
        let entry = self.rooms.entry(id.clone()).or_insert_with(|| {
            let room = Arc::new(match self.restored.remove(id) {
                Some((_, saved)) => Room::restored(saved, self.settings.clone()),
                None => {
                    let start_seq = self.retired.remove(id).map_or(0, |(_, seq)| seq);
                    Room::new(id.clone(), self.settings.clone(), start_seq)
                }
            });
            let hub = Arc::clone(self);
            let ticking = Arc::clone(&room);
            self.tracker
                .spawn(async move { hub.tick_room(ticking).await });
            metrics::gauge!(crate::metrics::ROOMS).increment(1.0);
            tracing::debug!(room = %id, "room created");
            room
        });
        let room = Arc::clone(entry.value());
        drop(entry);
        room.touch();
        Ok(room)
    }

    /// Joins a connection to a room, creating the room if needed; returns the room and the
    /// connection's first frames.
    pub fn join(
        self: &Arc<Self>,
        id: &Id,
        outbox: Outbox,
        you: You,
        since: Option<u64>,
    ) -> Result<(Arc<Room>, Vec<axum::extract::ws::Utf8Bytes>), HubError> {
        // A room can be dropped as idle between lookup and join; then look it up again.
        for _ in 0..3 {
            let room = self.room(id)?;
            if let Ok(frames) = room.join(outbox.clone(), you.clone(), since) {
                return Ok((room, frames));
            }
        }
        Err(HubError::Unavailable("room is restarting; retry".into()))
    }

    /// `GET /api/rooms/{room}`: the snapshot, or None for a room that never existed.
    pub fn snapshot(&self, id: &Id) -> Option<Snapshot> {
        if let Some(room) = self.existing_room(id) {
            return Some(room.snapshot());
        }
        if let Some(saved) = self.restored.get(id) {
            return Some(Snapshot::of_saved(&saved));
        }
        self.retired.get(id).map(|seq| Snapshot {
            room: id.clone(),
            seq: *seq,
            viewers: 0,
            likes: 0,
            pinned: None,
            deals: Vec::new(),
            recent: Vec::new(),
        })
    }

    async fn tick_room(self: Arc<Self>, room: Arc<Room>) {
        let tick = Duration::from_millis(self.config.room.tick_ms);
        let viewers_every = Duration::from_millis(self.config.room.viewers_interval_ms);
        let mut interval = tokio::time::interval(tick);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let sync_every = Duration::from_millis(self.config.inventory.sync_interval_ms);
        let mut last_sync = tokio::time::Instant::now();
        let mut last_viewers = tokio::time::Instant::now();
        let mut last_idle_check = tokio::time::Instant::now();
        loop {
            tokio::select! {
                _ = self.shutdown.cancelled() => return,
                _ = interval.tick() => {}
            }
            let now = tokio::time::Instant::now();
            let send_viewers = now.duration_since(last_viewers) >= viewers_every;
            if send_viewers {
                last_viewers = now;
            }
            let work = room.tick(now_ms(), send_viewers);
            for deal in work.expired_deals {
                self.end_expired_deal(&room, &deal).await;
            }
            if now.duration_since(last_sync) >= sync_every && room.viewers() > 0 {
                last_sync = now;
                self.sync_deals(&room).await;
            }
            if now.duration_since(last_idle_check) >= Duration::from_secs(1) {
                last_idle_check = now;
                if self.drop_if_idle(&room) {
                    return;
                }
            }
        }
    }

    async fn end_expired_deal(&self, room: &Room, deal: &Id) {
        let timeout = Duration::from_millis(self.config.inventory.host_op_timeout_ms);
        match tokio::time::timeout(timeout, self.inventory.end_deal(room.id(), deal, now_ms()))
            .await
        {
            Ok(Ok(ended)) => {
                if let Err(e) = room.deal_changed(ended.deal) {
                    tracing::warn!(room = %room.id(), deal = %deal, error = %e, "deal end not published");
                }
            }
            Ok(Err(e)) => {
                tracing::warn!(room = %room.id(), deal = %deal, error = %e, "deal end failed; retrying")
            }
            Err(_) => {
                tracing::warn!(room = %room.id(), deal = %deal, "deal end timed out; retrying")
            }
        }
    }

    /// Brings the room's deals in line with the inventory: deals started elsewhere appear, and
    /// stock and status changes made through other nodes reach this node's viewers.
    async fn sync_deals(&self, room: &Room) {
        let timeout = Duration::from_millis(self.config.inventory.host_op_timeout_ms);
        match tokio::time::timeout(timeout, self.inventory.room_deals(room.id(), now_ms())).await {
            Ok(Ok(deals)) => room.sync_deals(deals, now_ms()),
            Ok(Err(e)) => tracing::debug!(room = %room.id(), error = %e, "deal sync failed"),
            Err(_) => tracing::debug!(room = %room.id(), "deal sync timed out"),
        }
    }

    fn drop_if_idle(&self, room: &Arc<Room>) -> bool {
        let Some(seq) = room.close_if_idle(now_ms()) else {
            return false;
        };
        self.retired.insert(room.id().clone(), seq);
        self.rooms.remove_if(room.id(), |_, r| Arc::ptr_eq(r, room));
        metrics::gauge!(crate::metrics::ROOMS).decrement(1.0);
        tracing::debug!(room = %room.id(), seq, "idle room dropped");
        true
    }

    async fn sweep_holds(self: Arc<Self>) {
        let every = Duration::from_millis(self.config.inventory.sweep_interval_ms);
        let timeout = Duration::from_millis(self.config.inventory.host_op_timeout_ms);
        let mut interval = tokio::time::interval(every);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            tokio::select! {
                _ = self.shutdown.cancelled() => return,
                _ = interval.tick() => {}
            }
            let now = now_ms();
            match tokio::time::timeout(timeout, self.inventory.expire_due(now)).await {
                Ok(Ok(changes)) => {
                    metrics::counter!(crate::metrics::SWEEP_CHANGES)
                        .increment(changes.len() as u64);
                    for c in changes {
                        if let Some(room) = self.existing_room(&c.room) {
                            room.update_stock(&c.deal, c.level, now);
                        }
                    }
                }
                Ok(Err(e)) => tracing::warn!(error = %e, "hold sweep failed"),
                Err(_) => tracing::warn!("hold sweep timed out"),
            }
        }
    }
}
