//! `livehub serve`: loads the configuration, refuses development settings on a public bind,
//! sets up the log and runs the hub until SIGINT or SIGTERM.

use std::io::IsTerminal;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;

use clap::Args;

use crate::config::Config;

use super::CliError;

/// Exit status of `livehub serve` when it refuses to start with development settings on a
/// non-loopback bind.
pub const EXIT_EXPOSED: i32 = 2;

/// What `livehub serve --help` adds after the options: how to change the address and port.
pub const AFTER_HELP: &str = "\
The hub listens on server.bind, 127.0.0.1:8080 by default. To change the port (or address):
  LIVEHUB_SERVER__BIND=127.0.0.1:9000 livehub serve
or in the --config file:
  [server]
  bind = \"127.0.0.1:9000\"
Every key in config/default.toml can be set the same way (LIVEHUB_SECTION__KEY). A bind other
than loopback needs a real secret and no development tokens: see `livehub init`.";

/// Arguments of `livehub serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Configuration file read over the built-in defaults (config/default.toml).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Let the development settings (the development secret, /api/dev/token) run on a
    /// non-loopback bind (sets server.insecure_dev). Never in production.
    #[arg(long)]
    insecure_dev: bool,
}

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

/// Runs `livehub serve`.
pub fn run(args: ServeArgs) -> Result<(), CliError> {
    let mut config = Config::from_env(args.config.as_deref())?;
    if args.insecure_dev {
        config.server.insecure_dev = true;
    }
    if let Some(line) = exposure_refusal(&config) {
        eprintln!("{line}");
        std::process::exit(EXIT_EXPOSED);
    }
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        // Colour codes only for a person at a terminal, not in files or journald.
        .with_ansi(std::io::stderr().is_terminal())
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
    super::runtime()?.block_on(async move {
        let bind = config.server.bind;
        let listener = crate::server::bind(bind).map_err(|e| {
            CliError::Failed(anyhow::anyhow!(
                "cannot listen on server.bind = {bind}: {}",
                super::error::io_reason(&e)
            ))
        })?;
        let addr = listener.local_addr().map_err(anyhow::Error::from)?;
        tracing::info!(%addr, backend = ?config.inventory.backend, "livehub serving");
        // On stdout, so a newcomer sees where to point a browser (the log is on stderr).
        print!("{}", page_urls(addr));
        crate::server::run(listener, config, crate::server::signal())
            .await
            .map_err(anyhow::Error::from)?;
        tracing::info!("stopped");
        Ok(())
    })
}

/// The room the printed page URLs name: the one the README's first show uses.
const EXAMPLE_ROOM: &str = "demo";

/// What `livehub serve` prints on stdout once its listener is bound: the pages' URLs. A
/// wildcard bind (`0.0.0.0`, `::`) is shown as the loopback address of its family, which a
/// browser on this machine can open.
pub fn page_urls(addr: SocketAddr) -> String {
    let shown = match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => {
            SocketAddr::new(Ipv4Addr::LOCALHOST.into(), addr.port())
        }
        IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::new(Ipv6Addr::LOCALHOST.into(), addr.port())
        }
        _ => addr,
    };
    let base = format!("http://{shown}");
    let room = EXAMPLE_ROOM;
    format!(
        "livehub is listening on {base}\n\
         \x20 landing page   {base}/\n\
         \x20 viewer page    {base}/rooms/{room}   (any room id in place of {room})\n\
         \x20 host console   {base}/host/{room}\n\
         \x20 metrics        {base}/metrics\n"
    )
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_urls_name_the_bound_address_and_show_a_wildcard_bind_as_loopback() {
        let urls = page_urls("127.0.0.1:9000".parse().unwrap());
        assert!(
            urls.starts_with("livehub is listening on http://127.0.0.1:9000\n"),
            "{urls}"
        );
        for page in ["/\n", "/rooms/demo ", "/host/demo\n", "/metrics\n"] {
            assert!(
                urls.contains(&format!("http://127.0.0.1:9000{page}")),
                "{page}: {urls}"
            );
        }
        assert!(
            page_urls("0.0.0.0:8080".parse().unwrap()).contains("http://127.0.0.1:8080/host/demo")
        );
        assert!(page_urls("[::]:8080".parse().unwrap()).contains("http://[::1]:8080/rooms/demo"));
        assert!(page_urls("10.0.0.5:8080".parse().unwrap()).contains("http://10.0.0.5:8080/"));
    }
}
