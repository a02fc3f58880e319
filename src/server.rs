//! Runs a hub on a bound listener until a shutdown future resolves, then shuts down in two
//! phases: stop accepting and close every viewer with 1001, then wait (bounded) for them.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::serve::ListenerExt;
use tokio::net::TcpListener;

use crate::bus::{Bus, BusSettings, LocalBus, RedisBus};
use crate::config::{Config, InventoryBackend};
use crate::hub::Hub;
use crate::inventory::redis::RedisSettings;
use crate::inventory::{Inventory, MemoryInventory, RedisInventory};
use crate::redis_io::{RedisIo, RedisTarget};

/// Why the hub could not run.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot serve: {0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Catalog(String),
    #[error("inventory backend: {0}")]
    Inventory(crate::inventory::InventoryError),
    #[error("redis: {0}")]
    Redis(#[from] crate::redis_io::RedisIoError),
    #[error("{0}")]
    Bus(crate::bus::BusError),
    #[error(transparent)]
    State(#[from] crate::persist::PersistError),
}

/// Accept-queue length asked of the OS (capped by `net.core.somaxconn`). tokio's default of
/// 1,024 overflowed when 10,000 viewers arrived at once; an overflow costs a viewer a 1 s SYN
/// retransmit.
pub const LISTEN_BACKLOG: u32 = 65_535;

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
}

impl Backends {
    /// One process: `inventory` and the local bus.
    pub fn local(inventory: Arc<dyn Inventory>, config: &Config) -> Self {
        Backends {
            inventory,
            bus: Backend::Local(Arc::new(LocalBus::new(bus_settings(config)))),
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
    }
}

/// Builds the configured backends. With `inventory.backend = "redis"` both stock and rooms live
/// in Redis (one connection, shared), so nodes on one Redis share their rooms; Redis connects
/// lazily, so a hub starts while Redis is down and `/readyz` says so.
pub async fn build_backends(config: &Config) -> Result<Backends, ServeError> {
    let timeout = Duration::from_millis(config.inventory.host_op_timeout_ms);
    Ok(match config.inventory.backend {
        InventoryBackend::Memory => Backends::local(
            Arc::new(MemoryInventory::new(config.inventory.hold_ms)),
            config,
        ),
        InventoryBackend::Redis => {
            let target = RedisTarget::from_config(&config.redis.url, config.redis.cluster);
            let redis = RedisIo::connect(target, timeout).await?;
            let inventory = RedisInventory::with_io(
                redis.clone(),
                RedisSettings {
                    url: config.redis.url.clone(),
                    key_prefix: config.redis.key_prefix.clone(),
                    hold_ms: config.inventory.hold_ms,
                    idempotency_ttl_ms: config.redis.idempotency_ttl_ms,
                    retention_ms: config.redis.retention_ms,
                    timeout,
                },
            );
            let bus = RedisBus::start(redis, &config.redis.key_prefix, bus_settings(config))
                .await
                .map_err(ServeError::Bus)?;
            Backends {
                inventory: Arc::new(inventory),
                bus: Backend::Redis(Arc::new(bus)),
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
    let metrics = crate::metrics::install();
    let catalog =
        crate::pages::load_catalog(&config.pages.catalog_file).map_err(ServeError::Catalog)?;
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
    let hub = Hub::new(config, backends.inventory, bus);
    hub.start();
    let app = crate::http::router(Arc::clone(&hub), metrics, catalog);
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    let stop = hub.shutdown_token().clone();
    let serve = axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async move {
        shutdown.await;
        tracing::info!("shutting down: closing viewers with 1001");
        stop.cancel();
    });
    serve.await?;
    hub.shutdown_token().cancel();
    hub.tracker().close();
    if tokio::time::timeout(grace, hub.tracker().wait())
        .await
        .is_err()
    {
        tracing::warn!("shutdown grace elapsed with connections still open");
    }
    if let (Some(path), Some(state)) = (&state_file, hub.export_state()) {
        crate::persist::save(path, &state)?;
        tracing::info!(rooms = state.rooms.len(), path = %path.display(), "state saved");
    }
    Ok(())
}

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
