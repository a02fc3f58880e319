//! The hub: the room registry (sharded, no global lock; a room is opened on the bus once, by
//! its first user), each room's ticker, the sweeper that returns expired holds to stock, and the
//! one place that bounds every inventory and bus call in time. Every task it starts is tracked
//! and stops on shutdown.

use std::future::Future;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use dashmap::DashMap;
use tokio::sync::OnceCell;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::auth::Authenticator;
use crate::bus::{Bus, Event, Published, RoomSink};
use crate::catalog::Catalog;
use crate::commerce::Channel;
use crate::config::Config;
use crate::error::HubError;
use crate::funnel::{Funnel, FunnelStore};
use crate::inventory::{Inventory, StockLevel};
use crate::outbox::Outbox;
use crate::persist::SavedState;
use crate::protocol::{Id, You};
use crate::room::{Room, RoomSettings, Snapshot};

/// The deployment's one clock, kept at this path for existing callers: new code imports it
/// from [`crate::clock`] (a leaf), so no module has to reach up into the hub for the time.
pub use crate::clock::now_ms;

/// Which deadline a call to the inventory or the bus gets.
#[derive(Clone, Copy, Debug)]
pub enum Deadline {
    /// A viewer waits for it (reserve, checkout, cancel, comment): `inventory.op_timeout_ms`.
    Viewer,
    /// A host or a background task waits for it: `inventory.host_op_timeout_ms`.
    Host,
}

type RoomCell = Arc<OnceCell<Arc<Room>>>;

/// Shared state of one hub process.
pub struct Hub {
    config: Arc<Config>,
    auth: Authenticator,
    inventory: Arc<dyn Inventory>,
    bus: Arc<dyn Bus>,
    rooms: DashMap<Id, RoomCell>,
    settings: RoomSettings,
    shutdown: CancellationToken,
    tracker: TaskTracker,
    next_conn: AtomicU64,
    connections: AtomicUsize,
    /// The most connections admitted at once (see [`Config::connection_cap`]).
    connection_cap: usize,
    /// REST host commands per token subject (`limits.rest_commands_*`).
    rest_rates: DashMap<Id, crate::rate::TokenBucket>,
    catalog: Catalog,
    funnel: Funnel,
    /// Names this process among the nodes (anonymous viewers' ids carry it).
    node: String,
    /// Where connections' readers run commands (see [`Hub::commands`]).
    commands: CommandRuntime,
}

/// A runtime of its own for connections' readers, shut down with the hub.
struct CommandRuntime(Option<tokio::runtime::Runtime>);

impl CommandRuntime {
    fn new() -> Self {
        // As many workers as the hub's own runtime (the cores this process may use): one
        // thread would cap a closed loop of buyers at one core's worth of commands.
        let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
        let built = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers)
            .thread_name("livehub-commands")
            .enable_all()
            .build();
        match built {
            Ok(rt) => CommandRuntime(Some(rt)),
            Err(e) => {
                tracing::warn!(error = %e, "no commands runtime; readers share the hub's");
                CommandRuntime(None)
            }
        }
    }
}

impl Drop for CommandRuntime {
    fn drop(&mut self) {
        if let Some(rt) = self.0.take() {
            // Allowed from async contexts, unlike dropping the runtime.
            rt.shutdown_background();
        }
    }
}

impl Hub {
    /// A hub with no rooms. Call [`Hub::start`] to run its background tasks.
    pub fn new(
        config: Config,
        inventory: Arc<dyn Inventory>,
        bus: Arc<dyn Bus>,
        funnel: Arc<dyn FunnelStore>,
        catalog: Catalog,
    ) -> Arc<Self> {
        let settings = RoomSettings::from_config(&config.room, &config.limits);
        let nofile = rlimit::getrlimit(rlimit::Resource::NOFILE).map_or(1024, |(soft, _)| soft);
        let connection_cap = config.connection_cap(nofile);
        Arc::new(Hub {
            funnel: Funnel::new(funnel, config.funnel.clone()),
            node: format!("{:08x}", rand::random::<u32>()),
            catalog,
            connection_cap,
            rest_rates: DashMap::new(),
            auth: Authenticator::new(&config.auth.secret, config.require_exp()),
            config: Arc::new(config),
            inventory,
            bus,
            rooms: DashMap::new(),
            settings,
            shutdown: CancellationToken::new(),
            tracker: TaskTracker::new(),
            next_conn: AtomicU64::new(1),
            connections: AtomicUsize::new(0),
            commands: CommandRuntime::new(),
        })
    }

    /// Starts the hold sweeper.
    pub fn start(self: &Arc<Self>) {
        let hub = Arc::clone(self);
        self.tracker.spawn(async move { hub.sweep_holds().await });
    }

    /// Takes one REST host command from `user`'s rate (`limits.rest_commands_per_sec` and
    /// `_burst`), or `rate_limited`.
    pub fn check_rest_rate(&self, user: &Id) -> Result<(), HubError> {
        let l = &self.config.limits;
        let now = std::time::Instant::now();
        let mut bucket = self.rest_rates.entry(user.clone()).or_insert_with(|| {
            crate::rate::TokenBucket::new(l.rest_commands_per_sec, l.rest_commands_burst, now)
        });
        if bucket.try_take(now) {
            Ok(())
        } else {
            Err(HubError::RateLimited("too many commands; slow down".into()))
        }
    }

    /// The runtime connections' readers run on (parsing, commands, their backend calls), and
    /// the rooms' counter tickers, apart from the one whose tasks write to the sockets: when
    /// fan-out saturates a core, a buyer's reserve and its answer, and the stock the tick sets,
    /// do not wait in line behind thousands of writers (issue 20). None if it could not be made
    /// (then they share the hub's runtime).
    pub fn commands(&self) -> Option<&tokio::runtime::Handle> {
        self.commands.0.as_ref().map(|rt| rt.handle())
    }

    /// The configuration the hub runs with.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Token verification with the configured secret.
    pub fn auth(&self) -> &Authenticator {
        &self.auth
    }

    /// The product catalog the hub was started with.
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// The show funnel: its store and the bounded labels of its metrics.
    pub fn funnel(&self) -> &Funnel {
        &self.funnel
    }

    /// A user id for an anonymous connection, unique across nodes (the funnel counts each
    /// anonymous connection once).
    pub fn anonymous_id(&self) -> String {
        format!("anon-{}-{}", self.node, self.next_conn_id())
    }

    /// The inventory backend.
    pub fn inventory(&self) -> &Arc<dyn Inventory> {
        &self.inventory
    }

    /// The bus that orders and spreads the rooms' events.
    pub fn bus(&self) -> &Arc<dyn Bus> {
        &self.bus
    }

    /// Runs `call` within its deadline; a call that takes longer is `unavailable`.
    pub async fn within<T, E: Into<HubError>>(
        &self,
        deadline: Deadline,
        call: impl Future<Output = Result<T, E>>,
    ) -> Result<T, HubError> {
        let ms = match deadline {
            Deadline::Viewer => self.config.inventory.op_timeout_ms,
            Deadline::Host => self.config.inventory.host_op_timeout_ms,
        };
        match tokio::time::timeout(Duration::from_millis(ms), call).await {
            Ok(result) => result.map_err(Into::into),
            Err(_) => Err(HubError::Unavailable(
                "the hub's backend did not answer in time; retry".into(),
            )),
        }
    }

    /// Read-your-writes (issue 19): waits until `room` on this node has applied every event the
    /// bus had decided when this is called, from any node, so a command that reads the room's
    /// state sees what earlier commands wrote (a host pipelining `pin` then `deal_start`, or
    /// sending them to two nodes over REST). `unavailable` if it does not catch up in time.
    pub async fn caught_up(&self, room: &Room) -> Result<(), HubError> {
        let at = self
            .within(Deadline::Host, self.bus.position(room.id()))
            .await?;
        let wait = async {
            room.applied(at).await;
            Ok::<(), HubError>(())
        };
        self.within(Deadline::Host, wait).await
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

    /// Counts a connection in, or refuses it when the connection cap is reached. Every accepted
    /// connection counts, from accept until it ends (see [`crate::admission`]).
    pub fn try_admit(&self) -> bool {
        let max = self.connection_cap;
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

    /// The most connections admitted at once: `server.max_connections`, or with 0 a little
    /// below the open-file limit the process had when the hub was made.
    pub fn connection_cap(&self) -> usize {
        self.connection_cap
    }

    /// Every room's state for the state file (the local bus's), None with Redis.
    pub fn export_state(&self) -> Option<SavedState> {
        let open = self
            .rooms
            .iter()
            .filter_map(|r| r.value().get().map(|room| room.export()))
            .collect();
        self.bus.export(open)
    }

    /// The room if it is open on this node now.
    pub fn existing_room(&self, id: &Id) -> Option<Arc<Room>> {
        self.rooms.get(id).and_then(|c| c.value().get().cloned())
    }

    /// The room, opened on the bus on first use (with its ticker). A room that never existed
    /// is created only when `create` (its host or an admin opens it), else `NotLive` and
    /// nothing is allocated. Refused when `room.max_rooms` are open, or when the bus cannot
    /// open it now.
    pub async fn room(self: &Arc<Self>, id: &Id, create: bool) -> Result<Arc<Room>, HubError> {
        // A room can close (idle, or history lost) between lookup and use; then open it anew.
        for _ in 0..3 {
            let cell = match self.rooms.get(id) {
                Some(c) => Arc::clone(c.value()),
                None => {
                    if self.rooms.len() >= self.config.room.max_rooms {
                        return Err(HubError::Unavailable(
                            "this hub hosts its maximum number of rooms".into(),
                        ));
                    }
                    Arc::clone(self.rooms.entry(id.clone()).or_default().value())
                }
            };
            let room = match cell.get_or_try_init(|| self.open_room(id, create)).await {
                Ok(room) => room,
                Err(e) => {
                    // A failed open leaves no entry behind to count against `room.max_rooms`.
                    self.rooms
                        .remove_if(id, |_, c| Arc::ptr_eq(c, &cell) && c.get().is_none());
                    return Err(e);
                }
            };
            if !room.is_closed() {
                room.touch();
                return Ok(Arc::clone(room));
            }
            self.rooms.remove_if(id, |_, c| Arc::ptr_eq(c, &cell));
        }
        Err(HubError::Unavailable("room is restarting; retry".into()))
    }

    async fn open_room(self: &Arc<Self>, id: &Id, create: bool) -> Result<Arc<Room>, HubError> {
        let room = Arc::new(Room::new(
            id.clone(),
            self.settings.clone(),
            self.funnel.tally(),
            self.funnel.room_label(id),
        ));
        let sink: Weak<dyn RoomSink> = Arc::downgrade(&room) as Weak<Room>;
        self.within(Deadline::Host, self.bus.open(id, sink, create))
            .await?;
        // The deals' stock as it stands now; later readings arrive through the bus.
        match self
            .within(Deadline::Host, self.inventory.room_deals(id, now_ms()))
            .await
        {
            Ok(deals) => {
                for (deal, level) in deals {
                    room.stock(&deal.id, level);
                }
            }
            Err(e) => tracing::debug!(room = %id, error = %e, "deal stock not read at open"),
        }
        let hub = Arc::clone(self);
        let kept = Arc::clone(&room);
        self.tracker.spawn(async move { hub.keep_room(kept).await });
        let hub = Arc::clone(self);
        let ticking = Arc::clone(&room);
        let ticker = async move { hub.tick_room(ticking).await };
        // The counters' ticker runs beside the readers, off the runtime the writers saturate:
        // there a tick would wait behind a whole round of writers before it could even set
        // the stock that sends them round again (issue 20).
        match self.commands() {
            Some(commands) => self.tracker.spawn_on(ticker, commands),
            None => self.tracker.spawn(ticker),
        };
        metrics::gauge!(crate::metrics::ROOMS).increment(1.0);
        tracing::debug!(room = %id, "room opened");
        Ok(room)
    }

    /// Joins a connection to a room, opening the room if needed (creating it only when
    /// `create`: a host or admin joining); returns the room and the connection's first frames.
    pub async fn join(
        self: &Arc<Self>,
        id: &Id,
        outbox: Outbox,
        you: You,
        channel: Channel,
        since: Option<u64>,
        create: bool,
    ) -> Result<(Arc<Room>, Vec<axum::extract::ws::Utf8Bytes>), HubError> {
        for _ in 0..3 {
            let room = self.room(id, create).await?;
            if let Ok(frames) = room.join(outbox.clone(), you.clone(), channel, since) {
                return Ok((room, frames));
            }
        }
        Err(HubError::Unavailable("room is restarting; retry".into()))
    }

    /// `GET /api/rooms/{room}`: the snapshot, or None for a room that never existed.
    pub async fn snapshot(&self, id: &Id) -> Result<Option<Snapshot>, HubError> {
        if let Some(room) = self.existing_room(id) {
            return Ok(Some(room.snapshot()));
        }
        let saved = self.within(Deadline::Host, self.bus.peek(id)).await?;
        Ok(saved.map(|(saved, counters)| Snapshot::of_saved(saved, counters)))
    }

    /// A deal's stock changed through this node (a reserve, a cancel, a sweep): every node's
    /// viewers see the reading, and when it sells the deal out (or brings it back) this node
    /// publishes the new status.
    pub fn stock_changed(self: &Arc<Self>, room: &Id, deal: &Id, level: StockLevel) {
        self.bus.stock(room, deal, level);
        let Some(changed) = self
            .existing_room(room)
            .and_then(|r| r.status_change(deal, level, now_ms()))
        else {
            return;
        };
        let hub = Arc::clone(self);
        let room = room.clone();
        self.tracker.spawn(async move {
            let event = Event::Deal {
                deal: changed,
                version: level.version,
            };
            if let Err(e) = hub
                .within(Deadline::Host, hub.bus.publish(&room, event))
                .await
            {
                crate::quiet::warn("deal status not published", &e);
            }
        });
    }

    /// The room's counters' ticker: every `room.tick_ms` the changed stock, likes and viewers
    /// go to its viewers' counter slots. Local only, so the counters never wait on Redis; the
    /// room's upkeep, which does, is [`Hub::keep_room`], a task beside it (issue 20). Stops when
    /// the room closes or the hub shuts down.
    async fn tick_room(self: Arc<Self>, room: Arc<Room>) {
        let tick = Duration::from_millis(self.config.room.tick_ms);
        let viewers_every = Duration::from_millis(self.config.room.viewers_interval_ms);
        let mut interval = tokio::time::interval(tick);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut last_viewers = tokio::time::Instant::now();
        loop {
            tokio::select! {
                _ = self.shutdown.cancelled() => break,
                _ = interval.tick() => {}
            }
            if room.is_closed() {
                break;
            }
            let now = tokio::time::Instant::now();
            let send_viewers = now.duration_since(last_viewers) >= viewers_every;
            if send_viewers {
                last_viewers = now;
            }
            room.tick(send_viewers);
        }
    }

    /// The room's upkeep on this node, every `room.tick_ms` (a slow Redis delays the next round,
    /// never the counters): its report to the bus, its funnel facts, the deals whose time ran
    /// out, and closing it when idle (or when the bus closed it).
    async fn keep_room(self: Arc<Self>, room: Arc<Room>) {
        let tick = Duration::from_millis(self.config.room.tick_ms);
        let mut interval = tokio::time::interval(tick);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let flush_every = Duration::from_millis(self.config.funnel.flush_ms);
        let mut last_idle_check = tokio::time::Instant::now();
        let mut last_flush = tokio::time::Instant::now();
        loop {
            tokio::select! {
                _ = self.shutdown.cancelled() => {
                    self.flush_funnel(&room).await;
                    return;
                }
                _ = interval.tick() => {}
            }
            if room.is_closed() {
                self.forget(&room).await;
                return;
            }
            self.report_counters(&room).await;
            if last_flush.elapsed() >= flush_every {
                last_flush = tokio::time::Instant::now();
                self.flush_funnel(&room).await;
            }
            for deal in room.expired_deals(now_ms()) {
                self.end_expired_deal(&room, &deal).await;
            }
            let now = tokio::time::Instant::now();
            if now.duration_since(last_idle_check) >= Duration::from_secs(1) {
                last_idle_check = now;
                if room.close_if_idle(now_ms()).is_some() {
                    self.forget(&room).await;
                    return;
                }
            }
        }
    }

    /// Sends the room's funnel facts from this node to the store.
    pub async fn flush_funnel(&self, room: &Room) {
        let within = Duration::from_millis(self.config.inventory.host_op_timeout_ms);
        self.funnel
            .flush(
                room.id(),
                room.tally(),
                room.local_viewers(),
                now_ms(),
                within,
            )
            .await;
    }

    /// Sends this node's funnel facts of `room` now, if the room is open here (before a
    /// reading, so the reader's own node is never a flush behind).
    pub async fn flush_funnel_of(&self, room: &Id) {
        if let Some(room) = self.existing_room(room) {
            self.flush_funnel(&room).await;
        }
    }

    async fn report_counters(&self, room: &Room) {
        let r = room.take_report(now_ms());
        let report = self
            .bus
            .counters(room.id(), r.viewers, r.likes, r.host_seen);
        match self.within(Deadline::Host, report).await {
            Ok(counters) => room.counters(counters),
            // The room's lifetime ran out: the bus closed it here, the ticker forgets it.
            Err(HubError::NotLive) => {}
            Err(e) => {
                room.unreport_likes(r.likes);
                crate::quiet::warn("room counters not reported", &e);
            }
        }
    }

    /// Drops a closed room from this node and from the bus.
    async fn forget(&self, room: &Arc<Room>) {
        let removed = self.rooms.remove_if(room.id(), |_, c| {
            c.get().is_some_and(|r| Arc::ptr_eq(r, room))
        });
        if removed.is_some() {
            metrics::gauge!(crate::metrics::ROOMS).decrement(1.0);
        }
        self.flush_funnel(room).await;
        let sink: Weak<dyn RoomSink> = Arc::downgrade(room) as Weak<Room>;
        self.bus.close(room.id(), &sink, room.export()).await;
        tracing::debug!(room = %room.id(), "room closed");
    }

    async fn end_expired_deal(&self, room: &Room, deal: &Id) {
        let ended = self.inventory.end_if_due(room.id(), deal, now_ms());
        let ended = match self.within(Deadline::Host, ended).await {
            Ok(Some(ended)) => ended,
            // Its time has not run out by the inventory's clock: the next tick asks again.
            Ok(None) => return,
            Err(e) => {
                crate::quiet::warn("timed-out deal not ended; retrying", &e);
                return;
            }
        };
        if ended.was_live {
            room.tally().moment(crate::funnel::Moment {
                t: now_ms(),
                kind: crate::funnel::MomentKind::DealEnd,
                deal: Some(ended.deal.id.clone()),
                product: Some(ended.deal.product_id.clone()),
                title: Some(ended.deal.title.clone()),
            });
        }
        let event = Event::Deal {
            deal: ended.deal,
            version: 0,
        };
        match self
            .within(Deadline::Host, self.bus.publish(room.id(), event))
            .await
        {
            Ok(Published::Seq(_) | Published::Unchanged) => {}
            Err(e) => crate::quiet::warn("deal end not published", &e),
        }
    }

    async fn sweep_holds(self: Arc<Self>) {
        let every = Duration::from_millis(self.config.inventory.sweep_interval_ms);
        let mut interval = tokio::time::interval(every);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            tokio::select! {
                _ = self.shutdown.cancelled() => return,
                _ = interval.tick() => {}
            }
            match self
                .within(Deadline::Host, self.inventory.expire_due(now_ms()))
                .await
            {
                Ok(changes) => {
                    metrics::counter!(crate::metrics::SWEEP_CHANGES)
                        .increment(changes.len() as u64);
                    for c in changes {
                        self.stock_changed(&c.room, &c.deal, c.level);
                    }
                }
                Err(e) => crate::quiet::warn("hold sweep failed", &e),
            }
        }
    }
}
