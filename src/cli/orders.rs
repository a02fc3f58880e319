//! `livehub orders tail`: follows the order feed from the terminal (`GET /api/orders/events`,
//! with a merchant or admin token), one line per event, or its JSON with `--json`. It prints
//! the cursor after the last event on stderr when it stops (Ctrl-C, or `--once` at the end),
//! so a script can pass it back with `--after` and miss nothing. Failures are one line on
//! stderr, with the exit status of `livehub host`: 1 refused, 2 usage, 3 unreachable.

use std::time::Duration;

use clap::{Args, Subcommand};

use super::CliError;
use super::connect::HubUrl;
use crate::orders::{OrderEvent, OrdersPage};

/// `livehub orders ...`.
#[derive(Debug, Subcommand)]
pub enum OrdersCommand {
    /// Follow the order feed: every order event once, each order's in order.
    Tail(TailArgs),
}

/// Arguments of `livehub orders tail`.
#[derive(Debug, Args)]
pub struct TailArgs {
    /// The hub's base URL: ws://HOST:PORT or http://HOST:PORT.
    #[arg(long, env = "LIVEHUB_URL", default_value = "ws://127.0.0.1:8080")]
    url: String,
    /// A merchant or admin token (`livehub token --role merchant --room '*' --sub shop`).
    #[arg(long, env = "LIVEHUB_TOKEN")]
    token: String,
    /// Start after this cursor (a cursor an earlier run printed) [default: the oldest event kept].
    #[arg(long)]
    after: Option<String>,
    /// Print each event as its JSON, one per line.
    #[arg(long)]
    json: bool,
    /// Stop at the end of the feed instead of waiting for more.
    #[arg(long)]
    once: bool,
}

/// How long `tail` waits at the end of the feed before asking again.
const POLL: Duration = Duration::from_millis(500);

/// Runs `livehub orders ...`.
pub async fn run(command: OrdersCommand) -> Result<(), CliError> {
    match command {
        OrdersCommand::Tail(args) => tail(args).await,
    }
}

async fn tail(args: TailArgs) -> Result<(), CliError> {
    let hub = HubUrl::parse(&args.url)?;
    let mut cursor = args.after.clone();
    let result = follow(&hub, &args, &mut cursor).await;
    if let Some(c) = &cursor {
        eprintln!("cursor: {c}");
    }
    result
}

/// Pages through the feed, printing each event, until the end (`--once`), Ctrl-C or an error;
/// `cursor` is kept after the last event printed.
async fn follow(
    hub: &HubUrl,
    args: &TailArgs,
    cursor: &mut Option<String>,
) -> Result<(), CliError> {
    loop {
        let path = match cursor.as_deref() {
            Some(c) => format!("/api/orders/events?limit=1000&after={c}"),
            None => "/api/orders/events?limit=1000".to_owned(),
        };
        let page = tokio::select! {
            page = super::rest::get(hub, &path, &args.token) => page?,
            _ = tokio::signal::ctrl_c() => return Ok(()),
        };
        let page: OrdersPage = serde_json::from_str(&page).map_err(|e| {
            CliError::Failed(anyhow::anyhow!(
                "the hub's order feed is not what this CLI reads: {e}"
            ))
        })?;
        for ev in &page.events {
            println!("{}", line(ev, args.json));
        }
        *cursor = Some(page.cursor);
        if page.more {
            continue;
        }
        if args.once {
            return Ok(());
        }
        tokio::select! {
            _ = tokio::time::sleep(POLL) => {}
            _ = tokio::signal::ctrl_c() => return Ok(()),
        }
    }
}

/// One event as a line: its JSON, or `ID TYPE ORDER STATUS ROOM/DEAL USER QTY x PRICE =
/// TOTAL` (money as the report shows it, e.g. `$15.00`).
fn line(ev: &OrderEvent, json: bool) -> String {
    if json {
        return serde_json::to_string(ev).unwrap_or_default();
    }
    let o = &ev.order;
    format!(
        "{} {} {} {} {}/{} {} {} x {} = {}",
        ev.id,
        ev.kind.as_str(),
        o.id,
        o.status.as_str(),
        o.room,
        o.deal,
        o.user,
        o.qty,
        crate::report::money(o.price_cents, &o.currency),
        crate::report::money(o.total_cents, &o.currency),
    )
}
