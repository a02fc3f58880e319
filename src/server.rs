//! Runs a hub on a bound listener until a shutdown future resolves, then shuts down in two
//! phases: stop accepting and close every viewer with 1001, then wait (bounded) for them.
//!
//! The accept loop is hyper's HTTP/1 connection per accepted socket, with what `axum::serve`
//! lacks: every connection is admitted (counted toward the caps) at accept and refused there
//! with a canned answer when over a cap; a request's head must arrive within
//! `server.header_timeout_ms`, and a keep-alive connection waits at most
//! `server.idle_connection_ms` for its next request (see [`HeadTimer`]).

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::Service as _;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::admission::{Admission, Refusal};

use crate::bus::{Bus, BusSettings, LocalBus, RedisBus};
use crate::config::{Config, InventoryBackend};
use crate::funnel::{FunnelStore, MemoryFunnel, RedisFunnel};
use crate::hub::Hub;
use crate::inventory::redis::RedisSettings;
use crate::inventory::{Inventory, MemoryInventory, RedisInventory};
use crate::metrics as m;
use crate::redis_io::{RedisIo, RedisTarget};

/// Why the hub could not run.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot serve: {0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Catalog(#[from] crate::catalog::CatalogError),
    #[error("inventory backend: {0}")]
    Inventory(crate::inventory::InventoryError),
    #[error("redis: {0}")]
    Redis(#[from] crate::redis_io::RedisIoError),
    #[error("{0}")]
    Bus(crate::bus::BusError),
    #[error(transparent)]
    State(#[from] crate::persist::PersistError),
    #[error(
        "refusing to listen on {bind} with development settings; set {set} (or run `livehub init`; --insecure-dev overrides)"
    )]
    Exposed {
        bind: std::net::SocketAddr,
        set: String,
    },
}

/// Accept-queue length asked of the OS (capped by `net.core.somaxconn`). tokio's default of
/// 1,024 overflowed when 10,000 viewers arrived at once; an overflow costs a viewer a 1 s SYN
/// retransmit.
pub const LISTEN_BACKLOG: u32 = 65_535;

/// How long the accept loop waits after an accept error other than a failed handshake (the
/// process is out of file descriptors, typically).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Connections being refused at once (each is answered after its request head, and lingers
/// briefly so the answer is read); past this a refused connection is closed unanswered.
const MAX_REFUSING: usize = 256;

/// How long a refused connection may take to send its request and receive the answer.
const REFUSAL_LINGER: Duration = Duration::from_secs(2);

/// Binds the hub's listener with address reuse (a restart binds at once) and a long accept
/// queue for show-start surges.
pub fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// The backends a hub runs on: where stock lives and how rooms' events are ordered and spread.
pub struct Backends {
    pub inventory: Arc<dyn Inventory>,
    pub bus: Backend<LocalBus, RedisBus>,
    pub funnel: Arc<dyn FunnelStore>,
    /// The Redis whose clock every node keeps ([`crate::clock`]); None on one process.
    pub clock: Option<RedisIo>,
}

impl Backends {
    /// One process: `inventory`, the local bus and the in-memory funnel.
    pub fn local(inventory: Arc<dyn Inventory>, config: &Config) -> Self {
        Backends {
            inventory,
            bus: Backend::Local(Arc::new(LocalBus::new(bus_settings(config)))),
            funnel: Arc::new(MemoryFunnel::new(config.funnel.engaged_ms)),
            clock: None,
        }
    }
}

/// The configured bus: the local one (which also keeps the state file's rooms) or Redis's.
pub enum Backend<L, R> {
    Local(Arc<L>),
    Redis(Arc<R>),
}

/// The bus settings from configuration.
pub fn bus_settings(config: &Config) -> BusSettings {
    BusSettings {
        history: config.room.history,
        recent_comments: config.room.recent_comments,
        comment_rate: (
            config.limits.comment_rate_per_sec,
            config.limits.comment_burst,
        ),
        viewers_ttl_ms: config.room.viewers_ttl_ms,
        open_ttl_ms: config.room.open_ttl_ms,
    }
}

/// Builds the configured backends. With `inventory.backend = "redis"` both stock and rooms live
/// in Redis (two connections: one for stock, one shared by the rooms' events and the funnel),
/// so nodes on one Redis share their rooms; Redis connects lazily, so a hub starts while Redis is
/// down and `/readyz` says so.
pub async fn build_backends(config: &Config) -> Result<Backends, ServeError> {
    let timeout = Duration::from_millis(config.inventory.host_op_timeout_ms);
    Ok(match config.inventory.backend {
        InventoryBackend::Memory => Backends::local(
            Arc::new(MemoryInventory::new(config.inventory.hold_ms)),
            config,
        ),
        InventoryBackend::Redis => {
            let target = RedisTarget::from_config(&config.redis.url, config.redis.cluster);
            // Stock has a connection (and an I/O thread) of its own: a reserve never waits in a
            // pipeline behind the rooms' events, counters and funnel flushes (issue 20).
            let redis = RedisIo::connect(target, timeout).await?;
            let stock = redis.another().await?;
            // Says "Redis at … ready", or the one line that it cannot be reached; the hub
            // starts either way and the connection keeps retrying.
            let _ = redis.check().await;
            // Redis's time before the first room opens (or at the first reading after an outage).
            let _ = crate::redis_io::clock::sync(&redis).await;
            let inventory = RedisInventory::with_io(
                stock,
                RedisSettings {
                    url: config.redis.url.clone(),
                    key_prefix: config.redis.key_prefix.clone(),
                    hold_ms: config.inventory.hold_ms,
                    idempotency_ttl_ms: config.redis.idempotency_ttl_ms,
                    rejected_idempotency_ttl_ms: config.redis.rejected_idempotency_ttl_ms,
                    retention_ms: config.redis.retention_ms,
                    timeout,
                    clock: crate::inventory::redis::ScriptClock::Redis,
                },
            );
            let funnel = RedisFunnel::new(
                redis.clone(),
                &config.redis.key_prefix,
                format!("{:016x}", rand::random::<u64>()),
                config.funnel.engaged_ms,
                config.redis.retention_ms,
            );
            let clock = redis.clone();
            let bus = RedisBus::start(redis, &config.redis.key_prefix, bus_settings(config))
                .await
                .map_err(ServeError::Bus)?;
            Backends {
                inventory: Arc::new(inventory),
                bus: Backend::Redis(Arc::new(bus)),
                funnel: Arc::new(funnel),
                clock: Some(clock),
            }
        }
    })
}

/// Serves `config` on `listener` until `shutdown` resolves. `bind` in the configuration is
/// ignored (the listener is already bound), which lets tests use port 0.
pub async fn run(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let backends = build_backends(&config).await?;
    run_with(listener, config, backends, shutdown).await
}

/// Like [`run`], with backends chosen by the caller.
pub async fn run_with(
    listener: TcpListener,
    config: Config,
    backends: Backends,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    // The address actually listened on decides what the development conveniences may do.
    let mut config = config;
    config.server.bind = listener.local_addr()?;
    let problems = config.exposure_problems();
    if !problems.is_empty() {
        return Err(ServeError::Exposed {
            bind: config.server.bind,
            set: problems.join(" and "),
        });
    }
    let metrics = crate::metrics::install();
    let catalog = crate::catalog::Catalog::load(&config.pages.catalog_file)?;
    let grace = Duration::from_millis(config.server.shutdown_grace_ms);
    let state_file = config.server.state_file.clone();
    // A state file that cannot be read stops the start: serving without it would reuse
    // `seq` numbers viewers have already seen.
    let saved = match &state_file {
        Some(path) => crate::persist::load(path)?,
        None => None,
    };
    let bus: Arc<dyn Bus> = match backends.bus {
        Backend::Local(local) => {
            if let Some(saved) = saved {
                tracing::info!(
                    rooms = saved.rooms.len(),
                    "rooms restored from the state file"
                );
                local.restore(saved);
            }
            local
        }
        Backend::Redis(redis) => {
            if state_file.is_some() {
                tracing::warn!("server.state_file is not used with Redis: rooms live in Redis");
            }
            redis
        }
    };
    let hub = Hub::new(config, backends.inventory, bus, backends.funnel, catalog);
    tracing::info!(
        max_connections = hub.connection_cap(),
        "connection cap (server.max_connections)"
    );
    hub.start();
    if let Some(redis) = backends.clock {
        hub.tracker().spawn(crate::redis_io::clock::follow(
            redis,
            hub.shutdown_token().clone(),
        ));
    }
    hub.tracker().spawn(crate::metrics::upkeep(
        metrics.clone(),
        hub.shutdown_token().clone(),
    ));
    hub.tracker()
        .spawn(crate::trim::run(hub.shutdown_token().clone()));
    let app = crate::http::router(Arc::clone(&hub), metrics);
    let serving = Serving::new(app, &hub);
    let mut shutdown = pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((tcp, peer)) => serving.accept(tcp, peer),
            Err(e) if is_connection_error(&e) => {}
            Err(e) => {
                // Out of file descriptors, most likely: wait for some to close rather than spin.
                tracing::error!(error = %e, "accept failed");
                tokio::select! {
                    _ = &mut shutdown => break,
                    _ = tokio::time::sleep(ACCEPT_BACKOFF) => {}
                }
            }
        }
    }
    drop(listener);
    // Phase two: viewers get 1001, HTTP connections finish the request in flight and close;
    // whatever is still open when the grace ends is dropped.
    tracing::info!("shutting down: closing viewers with 1001");
    hub.shutdown_token().cancel();
    serving.closing.cancel();
    serving.connections.close();
    hub.tracker().close();
    let drained = async {
        serving.connections.wait().await;
        hub.tracker().wait().await;
    };
    if tokio::time::timeout(grace, drained).await.is_err() {
        tracing::warn!("shutdown grace elapsed with connections still open");
    }
    serving.dropping.cancel();
    serving.connections.wait().await;
    if let (Some(path), Some(state)) = (&state_file, hub.export_state()) {
        crate::persist::save(path, &state)?;
        tracing::info!(rooms = state.rooms.len(), path = %path.display(), "state saved");
    }
    Ok(())
}

fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

/// What every accepted connection is served with.
struct Serving {
    app: Router,
    admission: Arc<Admission>,
    header_timeout: Duration,
    idle_timeout: Duration,
    /// Every connection task (and refusal) still running.
    connections: TaskTracker,
    /// Shutdown, phase two: finish the request in flight, then close.
    closing: CancellationToken,
    /// The grace is over: drop what is still open.
    dropping: CancellationToken,
    refusing: Arc<AtomicUsize>,
}

impl Serving {
    fn new(app: Router, hub: &Arc<Hub>) -> Self {
        let s = &hub.config().server;
        Serving {
            app,
            admission: Admission::new(Arc::clone(hub)),
            header_timeout: Duration::from_millis(s.header_timeout_ms),
            idle_timeout: Duration::from_millis(s.idle_connection_ms),
            connections: TaskTracker::new(),
            closing: CancellationToken::new(),
            dropping: CancellationToken::new(),
            refusing: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// Admits and serves a connection just accepted, or refuses it.
    fn accept(&self, tcp: TcpStream, peer: SocketAddr) {
        let _ = tcp.set_nodelay(true);
        let ticket = match self.admission.admit(peer.ip()) {
            Ok(ticket) => ticket,
            Err(refusal) => return self.refuse(tcp, peer, refusal),
        };
        let watch = Arc::new(Watch::default());
        let io = TokioIo::new(Watched {
            io: tcp,
            watch: Arc::clone(&watch),
        });
        let app = TowerToHyperService::new(self.app.clone());
        let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
            // The WebSocket handler keeps its ticket for the session: an upgraded connection
            // stays counted after hyper lets go of it.
            req.extensions_mut().insert(ConnectInfo(peer));
            req.extensions_mut().insert(ticket.clone());
            app.call(req)
        });
        let mut http = http1::Builder::new();
        http.timer(HeadTimer::new(
            Arc::clone(&watch),
            self.header_timeout,
            self.idle_timeout,
        ))
        .header_read_timeout(self.header_timeout)
        // A request head (and what is read ahead of it) may hold about this much (hyper checks
        // between reads): a half-open connection costs at most that, not hyper's default of
        // about 400 KB; a bigger head gets 431.
        .max_buf_size(MAX_HEAD_BYTES)
        .keep_alive(true);
        let conn = http.serve_connection(io, service).with_upgrades();
        let (closing, dropping) = (self.closing.clone(), self.dropping.clone());
        self.connections.spawn(async move {
            let mut conn = pin!(conn);
            let served = tokio::select! {
                served = conn.as_mut() => served,
                _ = closing.cancelled() => {
                    conn.as_mut().graceful_shutdown();
                    tokio::select! {
                        served = conn.as_mut() => served,
                        _ = dropping.cancelled() => return,
                    }
                }
            };
            match served {
                Ok(()) => {}
                Err(e) if e.is_timeout() && watch.idle_expired.load(Ordering::Relaxed) => {
                    tracing::trace!(%peer, "idle keep-alive connection closed");
                }
                Err(e) if e.is_timeout() => {
                    metrics::counter!(m::CONNECTIONS_REFUSED, "reason" => "timeout").increment(1);
                    tracing::debug!(%peer, "request head not received in time; closed");
                }
                Err(e) => tracing::debug!(%peer, error = %e, "connection failed"),
            }
        });
    }

    /// Answers an over-cap connection and closes it, without hyper or the router: a 503 when
    /// the hub is full, a 429 when the client is over its share. The request head is read
    /// first (clients may take an answer that comes before their request for a broken
    /// connection), then what follows is drained briefly so the answer is not lost to a reset.
    /// All of it within [`REFUSAL_LINGER`], and at most [`MAX_REFUSING`] at once: past that a
    /// refused connection is closed unanswered.
    fn refuse(&self, mut tcp: TcpStream, peer: SocketAddr, refusal: Refusal) {
        metrics::counter!(m::CONNECTIONS_REFUSED, "reason" => refusal.reason()).increment(1);
        tracing::debug!(%peer, reason = refusal.reason(), "connection refused");
        if self.refusing.fetch_add(1, Ordering::AcqRel) >= MAX_REFUSING {
            self.refusing.fetch_sub(1, Ordering::AcqRel);
            return;
        }
        let refusing = Arc::clone(&self.refusing);
        self.connections.spawn(async move {
            let _ = tokio::time::timeout(REFUSAL_LINGER, answer_refused(&mut tcp, refusal)).await;
            refusing.fetch_sub(1, Ordering::AcqRel);
        });
    }
}

/// Most bytes a refused connection's request may take before it is answered anyway.
const REFUSED_HEAD_BYTES: usize = 16 * 1024;

async fn answer_refused(tcp: &mut TcpStream, refusal: Refusal) -> io::Result<()> {
    let mut head = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < REFUSED_HEAD_BYTES {
        match tcp.read(&mut chunk).await? {
            0 => return Ok(()),
            n => head.extend_from_slice(&chunk[..n]),
        }
    }
    tcp.write_all(&refusal_answer(refusal)).await?;
    tcp.shutdown().await?;
    let mut drained = 0;
    while drained < 64 * 1024 {
        match tcp.read(&mut chunk).await? {
            0 => break,
            n => drained += n,
        }
    }
    Ok(())
}

/// The whole HTTP response refusing a connection: the protocol's error JSON.
fn refusal_answer(refusal: Refusal) -> Vec<u8> {
    let e = refusal.error();
    let code = e.code();
    metrics::counter!(m::ERRORS, "code" => code.as_str()).increment(1);
    let body = serde_json::json!({"error": {"code": code, "message": e.to_string()}}).to_string();
    let status = code.http_status();
    format!(
        "HTTP/1.1 {} {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
         connection: close\r\n\r\n{body}",
        status.as_u16(),
        status.canonical_reason().unwrap_or(""),
        body.len(),
    )
    .into_bytes()
}

/// What the timer of one connection knows of its socket.
#[derive(Default)]
struct Watch {
    /// Bytes read from the socket so far.
    read: AtomicU64,
    /// The connection was closed because it sat idle between requests (not a refusal).
    idle_expired: AtomicBool,
}

/// A connection's socket, counting the bytes read from it.
struct Watched {
    io: TcpStream,
    watch: Arc<Watch>,
}

impl AsyncRead for Watched {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.io).poll_read(cx, buf);
        let n = buf.filled().len() - before;
        if n > 0 {
            this.watch.read.fetch_add(n as u64, Ordering::Relaxed);
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

/// The most a connection's request head may take (hyper's read buffer), in bytes: room for a
/// long `?token=` and cookies, far below hyper's default.
pub const MAX_HEAD_BYTES: usize = 64 * 1024;

/// hyper's timer for one connection. hyper uses it only for its header read timeout, which
/// runs whenever the connection waits for a request head: from accept, and on keep-alive from
/// the end of one response to the next request's head. The first wait gets the header timeout
/// (a new connection must send its request promptly); a keep-alive wait gets the idle timeout
/// until the next request's first byte arrives, and from then the header timeout.
struct HeadTimer {
    watch: Arc<Watch>,
    header: Duration,
    idle: Duration,
    waited: AtomicBool,
}

impl HeadTimer {
    fn new(watch: Arc<Watch>, header: Duration, idle: Duration) -> Self {
        HeadTimer {
            watch,
            header,
            idle,
            waited: AtomicBool::new(false),
        }
    }
}

impl hyper::rt::Timer for HeadTimer {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn hyper::rt::Sleep>> {
        Box::pin(HeadSleep::until(Instant::now() + duration, None))
    }

    fn sleep_until(&self, deadline: Instant) -> Pin<Box<dyn hyper::rt::Sleep>> {
        if !self.waited.swap(true, Ordering::Relaxed) {
            return Box::pin(HeadSleep::until(deadline, None));
        }
        let idle = IdleWait {
            watch: Arc::clone(&self.watch),
            read_before: self.watch.read.load(Ordering::Relaxed),
            header: self.header,
        };
        Box::pin(HeadSleep::until(Instant::now() + self.idle, Some(idle)))
    }
}

/// A keep-alive wait for the next request, until its first byte.
struct IdleWait {
    watch: Arc<Watch>,
    read_before: u64,
    header: Duration,
}

/// One wait of [`HeadTimer`].
struct HeadSleep {
    sleep: Pin<Box<tokio::time::Sleep>>,
    idle: Option<IdleWait>,
}

impl HeadSleep {
    fn until(deadline: Instant, idle: Option<IdleWait>) -> Self {
        HeadSleep {
            sleep: Box::pin(tokio::time::sleep_until(deadline.into())),
            idle,
        }
    }
}

impl Future for HeadSleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        // hyper polls this after every read that left the head incomplete, so the first byte
        // of the next request is seen here as it arrives.
        if let Some(idle) = &this.idle
            && idle.watch.read.load(Ordering::Relaxed) != idle.read_before
        {
            let deadline = Instant::now() + idle.header;
            this.sleep.as_mut().reset(deadline.into());
            this.idle = None;
        }
        let polled = this.sleep.as_mut().poll(cx);
        if polled.is_ready()
            && let Some(idle) = &this.idle
        {
            idle.watch.idle_expired.store(true, Ordering::Relaxed);
        }
        polled
    }
}

impl hyper::rt::Sleep for HeadSleep {}

/// Resolves on SIGINT or SIGTERM.
pub async fn signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}
