//! The hub: what one process shares between its connections. It opens rooms on the bus (the
//! registry is [`rooms`]), starts each room's ticker and upkeep ([`tickers`]) and the hold
//! sweeper ([`sweeper`]), runs readers on a runtime of their own ([`runtime`]), and is the one
//! place that bounds every inventory and bus call in time. Stock readings take one way to the
//! viewers, described in [`stock`]. Every task it starts is tracked and stops on shutdown.
//! Connection admission is [`crate::admission`]'s.

mod auctions;
mod orders;
mod rooms;
mod runtime;
mod stock;
mod sweeper;
mod tickers;

pub use auctions::{CLOSE_LEASE_MS, CLOSE_POLL_MS};
pub use rooms::Rooms;
use crate::auctions::AuctionStore;
use runtime::CommandRuntime;

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::auth::Authenticator;
use crate::bus::{Bus, RoomSink};
use crate::catalog::Catalog;
use crate::commerce::Channel;
use crate::config::Config;
use crate::error::HubError;
use crate::funnel::{Funnel, FunnelStore};
use crate::inventory::Inventory;
use crate::outbox::Outbox;
use crate::persist::SavedState;
use crate::protocol::{Id, Muted, Role, You};
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

/// What one hub process shares: its configuration and the backends (the inventory, the bus,
/// the funnel), the rooms open here, the tasks it started, and the few per-process counters
/// and rates. It owns the rooms' lifecycle on this node; each room owns its own state.
pub struct Hub {
    config: Arc<Config>,
    auth: Authenticator,
    inventory: Arc<dyn Inventory>,
    /// The rooms' auctions: bids, the close (by [`Hub::close_auctions`], on every node).
    auctions: Arc<dyn AuctionStore>,
    bus: Arc<dyn Bus>,
    rooms: Rooms,
    /// What every room opened here is made with.
    settings: RoomSettings,
    shutdown: CancellationToken,
    tracker: TaskTracker,
    /// The next connection id (process-unique).
    next_conn: AtomicU64,
    /// REST host commands per token subject (`limits.rest_commands_*`).
    rest_rates: crate::rate::KeyedBuckets<Id>,
    catalog: Catalog,
    funnel: Funnel,
    /// Names this process among the nodes (anonymous viewers' ids carry it).
    node: String,
    /// Where connections' readers run commands (see [`Hub::commands`]).
    commands: CommandRuntime,
}

impl Hub {
    /// A hub with no rooms. Call [`Hub::start`] to run its background tasks.
    pub fn new(
        config: Config,
        inventory: Arc<dyn Inventory>,
        bus: Arc<dyn Bus>,
        funnel: Arc<dyn FunnelStore>,
        catalog: Catalog,
        auctions: Arc<dyn AuctionStore>,
    ) -> Arc<Self> {
        let settings = RoomSettings::from_config(&config);
        let rooms = Rooms::new(config.room.max_rooms);
        Arc::new(Hub {
            funnel: Funnel::new(funnel, config.funnel.clone()),
            node: format!("{:08x}", rand::random::<u32>()),
            catalog,
            rest_rates: crate::rate::KeyedBuckets::new(
                config.limits.rest_commands_per_sec,
                config.limits.rest_commands_burst,
            ),
            auth: Authenticator::new(&config.auth.secret, config.require_exp()),
            config: Arc::new(config),
            inventory,
            auctions,
            bus,
            rooms,
            settings,
            shutdown: CancellationToken::new(),
            tracker: TaskTracker::new(),
            next_conn: AtomicU64::new(1),
            commands: CommandRuntime::new(),
        })
    }

    /// Starts the hold sweeper, the order follower and the auction closer.
    pub fn start(self: &Arc<Self>) {
        let hub = Arc::clone(self);
        self.tracker.spawn(async move { hub.sweep_holds().await });
        let hub = Arc::clone(self);
        self.tracker.spawn(async move { hub.follow_orders().await });
        let hub = Arc::clone(self);
        self.tracker.spawn(async move { hub.close_auctions().await });
    }

    /// Takes one REST host command from `user`'s rate (`limits.rest_commands_per_sec` and
    /// `_burst`), or `rate_limited`.
    pub fn check_rest_rate(&self, user: &Id) -> Result<(), HubError> {
        if self
            .rest_rates
            .try_take(user.clone(), std::time::Instant::now())
        {
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
        self.commands.handle()
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

    /// The rooms' auctions.
    pub fn auctions(&self) -> &Arc<dyn AuctionStore> {
        &self.auctions
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

    /// Names this process among the nodes (random at each start).
    pub fn node(&self) -> &str {
        &self.node
    }

    /// Tracks every task the hub owns, so shutdown can wait for them.
    pub fn tracker(&self) -> &TaskTracker {
        &self.tracker
    }

    /// A process-unique connection id.
    pub fn next_conn_id(&self) -> u64 {
        self.next_conn.fetch_add(1, Ordering::Relaxed)
    }

    /// Every room's state for the state file (the local bus's), None with Redis.
    pub fn export_state(&self) -> Option<SavedState> {
        let open = self.rooms.open().iter().map(|room| room.export()).collect();
        self.bus.export(open)
    }

    /// The room if it is open on this node now.
    pub fn existing_room(&self, id: &Id) -> Option<Arc<Room>> {
        self.rooms.get(id)
    }

    /// The room, opened on the bus on first use (with its ticker). A room that never existed
    /// is created only when `create` (its host or an admin opens it), else `NotLive` and
    /// nothing is allocated. Refused when `room.max_rooms` are open, or when the bus cannot
    /// open it now.
    pub async fn room(self: &Arc<Self>, id: &Id, create: bool) -> Result<Arc<Room>, HubError> {
        // A room can close (idle, or history lost) between lookup and use; then open it anew.
        for _ in 0..3 {
            let cell = self.rooms.cell(id)?;
            let room = match cell.get_or_try_init(|| self.open_room(id, create)).await {
                Ok(room) => room,
                Err(e) => {
                    // A failed open leaves no entry behind to count against `room.max_rooms`.
                    self.rooms.drop_cell(id, &cell, true);
                    return Err(e);
                }
            };
            if !room.is_closed() {
                room.touch();
                return Ok(Arc::clone(room));
            }
            self.rooms.drop_cell(id, &cell, false);
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
        self.read_stock(&room).await;
        self.read_auctions(&room).await;
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
            let muted = self.mutes_for(&you, id).await;
            if let Ok(frames) = room.join(outbox.clone(), you.clone(), channel, since, muted) {
                return Ok((room, frames));
            }
        }
        Err(HubError::Unavailable("room is restarting; retry".into()))
    }

    /// The room's current mutes for the welcome of a host or an admin (so a console can mark
    /// muted users); None for a viewer, and when the bus cannot say now (the host still joins).
    async fn mutes_for(&self, you: &You, room: &Id) -> Option<Vec<Muted>> {
        if you.role == Role::Viewer {
            return None;
        }
        match self.within(Deadline::Host, self.bus.muted(room)).await {
            Ok(mutes) => Some(
                mutes
                    .into_iter()
                    .map(|(user, until)| Muted { user, until })
                    .collect(),
            ),
            Err(e) => {
                crate::quiet::warn("mutes not read for a host's welcome", &e);
                None
            }
        }
    }

    /// `GET /api/rooms/{room}`: the snapshot, or None for a room that never existed.
    pub async fn snapshot(&self, id: &Id) -> Result<Option<Snapshot>, HubError> {
        if let Some(room) = self.existing_room(id) {
            return Ok(Some(room.snapshot()));
        }
        let saved = self.within(Deadline::Host, self.bus.peek(id)).await?;
        Ok(saved.map(|(saved, counters)| Snapshot::of_saved(saved, counters, &self.settings)))
    }
}
