//! `livehub webhooks status` (each endpoint's lag, the node delivering it, its counters and dead
//! letters) and `livehub webhooks replay ENDPOINT [--from CURSOR]` (send every event after the
//! cursor again: by default from the oldest dead letter), with a merchant or admin token, over
//! the hub's REST API. Failures are one line on stderr, with the exit status of `livehub host`.

use clap::{Args, Subcommand};

use super::CliError;
use super::connect::HubUrl;
use crate::webhooks::EndpointStatus;

/// `livehub webhooks ...`.
#[derive(Debug, Subcommand)]
pub enum WebhooksCommand {
    /// Each endpoint's lag, oldest undelivered event, failures and dead letters.
    Status(StatusArgs),
    /// Send an endpoint's events after a cursor again (default: from its oldest dead letter),
    /// clearing its dead letters.
    Replay(ReplayArgs),
}

/// Where the hub is and who asks.
#[derive(Debug, Args)]
pub struct HubArgs {
    /// The hub's base URL: ws://HOST:PORT or http://HOST:PORT.
    #[arg(long, env = "LIVEHUB_URL", default_value = "ws://127.0.0.1:8080")]
    url: String,
    /// A merchant or admin token (`livehub token --role merchant --room '*' --sub shop`).
    #[arg(long, env = "LIVEHUB_TOKEN")]
    token: String,
}

/// Arguments of `livehub webhooks status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    hub: HubArgs,
    /// Print the endpoints as JSON.
    #[arg(long)]
    json: bool,
}

/// Arguments of `livehub webhooks replay`.
#[derive(Debug, Args)]
pub struct ReplayArgs {
    #[command(flatten)]
    hub: HubArgs,
    /// The endpoint's name (`[[webhooks.endpoints]] name`).
    endpoint: String,
    /// A feed cursor (`orders tail` prints them); "" for the oldest event kept.
    #[arg(long)]
    from: Option<String>,
}

/// Runs `livehub webhooks ...`.
pub async fn run(command: WebhooksCommand) -> Result<(), CliError> {
    match command {
        WebhooksCommand::Status(args) => status(args).await,
        WebhooksCommand::Replay(args) => replay(args).await,
    }
}

async fn status(args: StatusArgs) -> Result<(), CliError> {
    let hub = HubUrl::parse(&args.hub.url)?;
    let body = super::rest::get(&hub, "/api/webhooks", &args.hub.token).await?;
    if args.json {
        println!("{body}");
        return Ok(());
    }
    let endpoints: Vec<EndpointStatus> = serde_json::from_str(&body).map_err(|e| {
        CliError::Failed(anyhow::anyhow!(
            "the hub's webhook status is not what this CLI reads: {e}"
        ))
    })?;
    if endpoints.is_empty() {
        println!("no webhook endpoints configured ([[webhooks.endpoints]])");
    }
    for e in &endpoints {
        println!("{}", line(e));
    }
    Ok(())
}

/// `NAME URL lag 1.2 s delivered N failures N retrying N dead N [oldest dead ...] [last error ...]`.
fn line(e: &EndpointStatus) -> String {
    let mut s = format!(
        "{} {} lag {:.1} s delivered {} failures {} retrying {} dead {}",
        e.name, e.url, e.lag_s, e.stats.delivered, e.stats.failures, e.stats.retrying, e.dead
    );
    if let Some(h) = &e.holder {
        s.push_str(&format!(" node {h}"));
    }
    if let Some(d) = &e.oldest_dead {
        s.push_str(&format!(" oldest-dead {} (from {:?})", d.event, d.from));
    }
    if let Some(err) = &e.stats.last_error {
        s.push_str(&format!(" last-error {err:?}"));
    }
    s
}

async fn replay(args: ReplayArgs) -> Result<(), CliError> {
    let hub = HubUrl::parse(&args.hub.url)?;
    let body = serde_json::json!({"from": args.from}).to_string();
    let path = format!("/api/webhooks/{}/replay", args.endpoint);
    let answer = super::rest::post(&hub, &path, &args.hub.token, body).await?;
    println!("{answer}");
    Ok(())
}
