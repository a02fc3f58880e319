//! The `livehub` command line: `serve`, `token` and `host`.

mod host;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};

use crate::auth::{Authenticator, Claims};
use crate::config::Config;
use crate::protocol::Role;

/// livehub: the real-time hub under a live-shopping show.
#[derive(Debug, Parser)]
#[command(name = "livehub", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the hub.
    Serve {
        /// Configuration file read over the built-in defaults (config/default.toml).
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Mint a token with the configured secret (development and load tests).
    Token {
        #[arg(long, default_value = "viewer")]
        role: Role,
        /// A room id, or * for every room.
        #[arg(long)]
        room: String,
        /// User id.
        #[arg(long)]
        sub: String,
        /// Display name.
        #[arg(long)]
        name: Option<String>,
        /// Lifetime, e.g. 30m, 1h, 7d.
        #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
        ttl: Duration,
        /// Configuration whose auth.secret signs the token.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// The host control client: run a show from a terminal.
    Host(host::HostArgs),
}

/// Parses arguments and runs the chosen command.
pub fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve { config } => serve(config),
        Command::Token {
            role,
            room,
            sub,
            name,
            ttl,
            config,
        } => {
            let config = Config::from_env(config.as_deref())?;
            let exp = crate::hub::now_ms() / 1000 + ttl.as_secs();
            let token = Authenticator::new(&config.auth.secret, false).mint(&Claims {
                sub,
                name,
                role,
                room,
                exp: Some(exp),
            })?;
            println!("{token}");
            Ok(())
        }
        Command::Host(args) => runtime()?.block_on(host::run(args)),
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

fn serve(config: Option<PathBuf>) -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,livehub=info".into()),
        )
        .init();
    let config = Config::from_env(config.as_deref())?;
    if config.uses_dev_secret() {
        tracing::warn!(
            "auth.secret is the development secret: anyone can mint host tokens. \
             Set LIVEHUB_AUTH__SECRET (or auth.secret) before exposing this hub."
        );
    }
    if config.dev_tokens() {
        tracing::warn!(
            "pages.dev_tokens = true: anyone who reaches this hub can get a host token from \
             /api/dev/token. Turn it off in production."
        );
    }
    if config.allow_anonymous() {
        tracing::warn!("anonymous read-only viewers are allowed (auth.allow_anonymous = true)");
    }
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(n) => tracing::info!(limit = n, "open-file limit (one per connection)"),
        Err(e) => tracing::warn!(error = %e, "could not raise the open-file limit"),
    }
    runtime()?.block_on(async move {
        let listener = crate::server::bind(config.server.bind)
            .with_context(|| format!("binding server.bind = {}", config.server.bind))?;
        tracing::info!(addr = %listener.local_addr()?, backend = ?config.inventory.backend, "livehub serving");
        crate::server::run(listener, config, crate::server::signal()).await?;
        tracing::info!("stopped");
        Ok(())
    })
}
