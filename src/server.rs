//! Runs a hub on a bound listener until a shutdown future resolves, then shuts down in two
//! phases: stop accepting and close every viewer with 1001, then wait (bounded) for them.
//!
//! The wiring is here; the backends come from [`backends`], the accept loop's connections are
//! [`listener`]'s (hyper's HTTP/1 per socket, with what `axum::serve` lacks: admission at
//! accept, canned refusals), and a request head's deadline is [`head_timer`]'s.

mod backends;
mod head_timer;
mod listener;

pub use backends::{Backend, Backends, build_backends, bus_settings};
pub use head_timer::MAX_HEAD_BYTES;
use listener::Serving;
pub use listener::{LISTEN_BACKLOG, bind};

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;

use crate::bus::{Bus, LocalBus, RedisBus};
use crate::config::Config;
use crate::hub::Hub;

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
    #[error("webhooks: no TLS client: {0}")]
    Webhooks(String),
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
    let bus = open_bus(backends.bus, saved, state_file.is_some());
    let webhooks = Arc::new(crate::webhooks::Webhooks::new(
        config.webhooks.clone(),
        Arc::clone(&backends.inventory),
        backends.deliveries,
    ));
    let hub = Hub::new(
        config,
        backends.inventory,
        bus,
        backends.funnel,
        catalog,
        backends.auctions,
    );
    hub.start();
    webhooks
        .start(hub.node(), hub.tracker(), hub.shutdown_token())
        .map_err(|e| ServeError::Webhooks(e.to_string()))?;
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
    let app = crate::http::router(Arc::clone(&hub), metrics, webhooks);
    let serving = Serving::new(app, &hub);
    serving.accept_until(listener, shutdown).await;
    serving.close(&hub, grace).await;
    if let (Some(path), Some(state)) = (&state_file, hub.export_state()) {
        crate::persist::save(path, &state)?;
        tracing::info!(rooms = state.rooms.len(), path = %path.display(), "state saved");
    }
    Ok(())
}

/// The configured bus, the state file's rooms restored into the local one (Redis keeps its
/// rooms itself, and a state file is then ignored).
fn open_bus(
    bus: Backend<LocalBus, RedisBus>,
    saved: Option<crate::persist::SavedState>,
    has_state_file: bool,
) -> Arc<dyn Bus> {
    match bus {
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
            if has_state_file {
                tracing::warn!("server.state_file is not used with Redis: rooms live in Redis");
            }
            redis
        }
    }
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
