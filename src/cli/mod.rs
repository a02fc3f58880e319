//! The `livehub` command line: `serve`, `init`, `token` and `host`.

mod host;
mod init;

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
        /// Let the development settings (the development secret, /api/dev/token) run on a
        /// non-loopback bind (sets server.insecure_dev). Never in production.
        #[arg(long)]
        insecure_dev: bool,
    },
    /// Write a production configuration file: a random secret, no anonymous viewers, tokens
    /// must expire, no development tokens, Redis inventory.
    Init(init::InitArgs),
    /// Mint a token with the configured secret (development and load tests).
    Token {
        #[arg(long, default_value = "viewer")]
        role: Role,
        /// A room id, or * for every room (admin tokens only).
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
        Command::Serve {
            config,
            insecure_dev,
        } => serve(config, insecure_dev),
        Command::Init(args) => init::run(args),
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

/// Exit status of `livehub serve` when it refuses to start with development settings on a
/// non-loopback bind.
pub const EXIT_EXPOSED: i32 = 2;

/// The one line `livehub serve` prints when it refuses to start, or `None` when it may.
fn exposure_refusal(config: &Config) -> Option<String> {
    let problems = config.exposure_problems();
    (!problems.is_empty()).then(|| {
        format!(
            "livehub serve: refusing to listen on {} with development settings; set {} \
             (or run `livehub init`; --insecure-dev overrides)",
            config.server.bind,
            problems.join(" and ")
        )
    })
}

fn serve(config: Option<PathBuf>, insecure_dev: bool) -> anyhow::Result<()> {
    let mut config = Config::from_env(config.as_deref())?;
    if insecure_dev {
        config.server.insecure_dev = true;
    }
    if let Some(line) = exposure_refusal(&config) {
        eprintln!("{line}");
        std::process::exit(EXIT_EXPOSED);
    }
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,livehub=info".into()),
        )
        .init();
    warn_about_development_settings(&config);
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

/// The start warnings: each development setting still in effect. On a loopback bind they are
/// reminders; with `server.insecure_dev` on another bind they are the loud kind.
fn warn_about_development_settings(config: &Config) {
    let bind = config.server.bind;
    if config.server.insecure_dev {
        if config.is_loopback() {
            tracing::warn!(%bind, "server.insecure_dev is on (--insecure-dev); it changes nothing on a loopback bind");
        } else {
            tracing::warn!(
                %bind,
                "INSECURE: --insecure-dev / server.insecure_dev lets development settings run on a \
                 non-loopback bind. Anyone who can reach {bind} may be able to act as a host. \
                 Never run this in production."
            );
        }
    }
    if config.uses_dev_secret() {
        tracing::warn!(
            %bind,
            "auth.secret is the development secret: anyone who knows it (it is public) can mint host \
             and admin tokens. Fine on loopback; on any other bind `livehub serve` refuses to start \
             with it. Set LIVEHUB_AUTH__SECRET or run `livehub init`."
        );
    }
    if config.dev_tokens() {
        tracing::warn!(
            %bind,
            "pages.dev_tokens is on: /api/dev/token hands viewer and host tokens to clients on this \
             machine (loopback address and Host only). Set LIVEHUB_PAGES__DEV_TOKENS=false to turn it off."
        );
    }
    if config.allow_anonymous() {
        tracing::warn!(
            %bind,
            "anonymous read-only viewers are allowed (auth.allow_anonymous)"
        );
    }
}
