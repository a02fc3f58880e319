//! `livehub host`: the host control client. It connects to a room over WebSocket like any
//! client, sends one command and waits for its `ack` or `error`, prints a deal's audit, or
//! watches the room (see [`super::watch`]). A result goes to stdout; a refusal goes to stderr as
//! the hub's `code: reason`. Everything printed that came from the hub is escaped (see
//! [`super::lines`]), so a comment cannot forge lines or move the cursor.

use std::time::Duration;

use clap::{Args, Subcommand};
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

use super::CliError;
use super::connect::{self, HubUrl};
use super::lines::escape_controls;
use crate::protocol::{ClientMsg, DealSpec, Id, Product, ServerMsg};

/// How long a command waits for the hub's answer.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);

/// Arguments of `livehub host`.
#[derive(Debug, Args)]
pub struct HostArgs {
    /// The hub's base URL: ws://HOST:PORT or http://HOST:PORT.
    #[arg(long, env = "LIVEHUB_URL", default_value = "ws://127.0.0.1:8080")]
    url: String,
    /// The room to act in.
    #[arg(long)]
    room: String,
    /// A host (or admin) token for the room (`livehub token --role host ...`).
    #[arg(long, env = "LIVEHUB_TOKEN")]
    token: String,
    #[command(subcommand)]
    command: HostCommand,
}

#[derive(Debug, Subcommand)]
enum HostCommand {
    /// Pin a product.
    Pin {
        #[arg(long)]
        id: String,
        #[arg(long)]
        title: String,
        #[arg(long)]
        price_cents: u64,
        #[arg(long, default_value = "USD")]
        currency: String,
        #[arg(long)]
        image_url: Option<String>,
    },
    /// Unpin the pinned product.
    Unpin,
    /// Start or end a flash deal.
    #[command(subcommand)]
    Deal(DealCommand),
    /// Delete a comment by id.
    DeleteComment { id: String },
    /// Mute a user's comments.
    Mute {
        user: String,
        /// e.g. 10m
        #[arg(long = "for", default_value = "10m", value_parser = humantime::parse_duration)]
        duration: Duration,
    },
    /// Lift a user's mute.
    Unmute { user: String },
    /// Announce to the room.
    Announce { text: String },
    /// Set the room's live video stream (e.g. an HLS playlist URL), or clear it with --clear.
    Stream {
        #[arg(required_unless_present = "clear")]
        url: Option<String>,
        #[arg(long, conflicts_with = "url")]
        clear: bool,
    },
    /// Print a deal's stock audit (remaining, held, sold).
    Audit { deal: String },
    /// Print the room's events as they come, one line each, until interrupted.
    Watch,
}

#[derive(Debug, Subcommand)]
enum DealCommand {
    /// Start a flash deal.
    Start {
        #[arg(long)]
        id: String,
        #[arg(long)]
        product: String,
        /// The product's title, when it is neither pinned nor in the catalog.
        #[arg(long)]
        title: Option<String>,
        /// The product's image, with --title.
        #[arg(long)]
        image_url: Option<String>,
        #[arg(long)]
        price_cents: u64,
        #[arg(long, default_value = "USD")]
        currency: String,
        #[arg(long)]
        stock: u32,
        /// Units one viewer may hold and buy.
        #[arg(long, default_value_t = 1)]
        limit: u32,
        /// How long the deal runs, e.g. 10m.
        #[arg(long, default_value = "10m", value_parser = humantime::parse_duration)]
        duration: Duration,
        /// Commission paid to you (the host creator) on each order, in basis points (1000 = 10%).
        #[arg(long, default_value_t = 0)]
        commission_bps: u32,
        /// Commission paid to the buyer's affiliate (the token's `aff`), in basis points.
        #[arg(long, default_value_t = 0)]
        affiliate_bps: u32,
    },
    /// End a flash deal.
    End { deal: String },
}

fn id(what: &str, s: String) -> Result<Id, CliError> {
    Id::new(s).map_err(|e| CliError::Usage(format!("{what}: {e}")))
}

/// Runs `livehub host`.
pub async fn run(args: HostArgs) -> Result<(), CliError> {
    let hub = HubUrl::parse(&args.url)?;
    let room = id("room", args.room)?;
    let request_id = Id::new(format!("cli-{}", std::process::id())).ok();
    let cmd = match args.command {
        HostCommand::Audit { deal } => {
            return audit(&hub, &room, &args.token, id("deal", deal)?).await;
        }
        HostCommand::Watch => return super::watch::run(&hub, &room, &args.token).await,
        HostCommand::Pin {
            id: pid,
            title,
            price_cents,
            currency,
            image_url,
        } => ClientMsg::Pin {
            product: Product {
                id: id("product id", pid)?,
                title,
                price_cents,
                currency,
                image_url,
            },
            request_id,
        },
        HostCommand::Unpin => ClientMsg::Unpin { request_id },
        HostCommand::Deal(DealCommand::Start {
            id: did,
            product,
            title,
            image_url,
            price_cents,
            currency,
            stock,
            limit,
            duration,
            commission_bps,
            affiliate_bps,
        }) => ClientMsg::DealStart {
            deal: DealSpec {
                id: id("deal id", did)?,
                product_id: id("product", product)?,
                title,
                image_url,
                price_cents,
                currency,
                stock,
                per_user_limit: limit,
                duration_ms: duration.as_millis() as u64,
                commission_bps,
                affiliate_bps,
            },
            request_id,
        },
        HostCommand::Deal(DealCommand::End { deal }) => ClientMsg::DealEnd {
            deal: id("deal", deal)?,
            request_id,
        },
        HostCommand::DeleteComment { id: cid } => ClientMsg::DeleteComment {
            id: id("comment id", cid)?,
            request_id,
        },
        HostCommand::Mute { user, duration } => ClientMsg::Mute {
            user: id("user", user)?,
            duration_ms: duration.as_millis() as u64,
            request_id,
        },
        HostCommand::Unmute { user } => ClientMsg::Unmute {
            user: id("user", user)?,
            request_id,
        },
        HostCommand::Announce { text } => ClientMsg::Announce { text, request_id },
        HostCommand::Stream { url, .. } => ClientMsg::SetStream { url, request_id },
    };
    send_one(&hub, &room, &args.token, cmd).await
}

/// `GET` the deal's audit: the JSON on stdout when the hub answers 200, else its refusal.
async fn audit(hub: &HubUrl, room: &Id, token: &str, deal: Id) -> Result<(), CliError> {
    let body = super::rest::get(hub, &format!("/api/rooms/{room}/deals/{deal}"), token).await?;
    println!("{}", escape_controls(&body));
    Ok(())
}

/// Sends `cmd` and waits for its `ack` (printing `ok seq=N` or `ok`) or its refusal.
async fn send_one(hub: &HubUrl, room: &Id, token: &str, cmd: ClientMsg) -> Result<(), CliError> {
    let mut ws = connect::open(hub, room, token, None).await?;
    let want = cmd.request_id().cloned();
    let json = serde_json::to_string(&cmd).map_err(anyhow::Error::from)?;
    ws.send(Message::text(json))
        .await
        .map_err(|e| connect::unreachable(hub, connect::lost_reason(&e)))?;
    let deadline = tokio::time::Instant::now() + ANSWER_TIMEOUT;
    loop {
        let next = tokio::time::timeout_at(deadline, ws.next())
            .await
            .map_err(|_| {
                connect::unreachable(
                    hub,
                    format!("no answer within {} s", ANSWER_TIMEOUT.as_secs()),
                )
            })?;
        let msg = match next {
            None => {
                return Err(connect::unreachable(
                    hub,
                    "the connection closed before an answer",
                ));
            }
            Some(Err(e)) => return Err(connect::unreachable(hub, connect::lost_reason(&e))),
            Some(Ok(Message::Close(frame))) => {
                return Err(connect::unreachable(
                    hub,
                    format!(
                        "the hub closed the connection ({}) before answering",
                        connect::close_words(frame.as_ref())
                    ),
                ));
            }
            Some(Ok(Message::Text(text))) => text,
            Some(Ok(_)) => continue,
        };
        let Ok(msg) = serde_json::from_str::<ServerMsg>(msg.as_str()) else {
            continue;
        };
        match msg {
            ServerMsg::Ack { request_id, seq } if Some(&request_id) == want.as_ref() => {
                match seq {
                    Some(seq) => println!("ok seq={seq}"),
                    None => println!("ok"),
                }
                let _ = ws.close(None).await;
                return Ok(());
            }
            ServerMsg::Error {
                code,
                message,
                request_id,
            } if request_id == want || request_id.is_none() => {
                let _ = ws.close(None).await;
                return Err(CliError::refused(code.as_str(), &message));
            }
            ServerMsg::NotLive { .. } => {
                return Err(CliError::refused(
                    crate::error::ErrorCode::NotFound.as_str(),
                    "the show has not started (only its host or an admin opens a room)",
                ));
            }
            _ => {}
        }
    }
}
