//! `livehub host`: the host control client. It connects to a room over WebSocket like any
//! client, sends one command (a pin, a deal, an auction, moderation) and waits for its `ack` or
//! `error`, prints a deal's audit, or watches the room (see [`super::watch`]). A result goes to
//! stdout; a refusal goes to stderr as the hub's `code: reason`. Everything printed that came
//! from the hub is escaped (see [`super::lines`]), so a comment cannot forge lines or move the
//! cursor.

use std::time::Duration;

use clap::{Args, Subcommand};
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

use super::CliError;
use super::connect::{self, HubUrl};
use super::lines::escape_controls;
use crate::auction::{MAX_DURATION_MS, MAX_EXTEND_MS, MIN_DURATION_MS};
use crate::commerce::MAX_PRICE_CENTS;
use crate::protocol::{AuctionSpec, ClientMsg, DealSpec, Id, Product, ServerMsg};

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
    /// Start a live auction, or end one that has no bid yet.
    #[command(subcommand)]
    Auction(AuctionCommand),
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

#[derive(Debug, Subcommand)]
enum AuctionCommand {
    /// Start a live auction: the first bid is at least --start-cents, each later one at least
    /// --increment-cents more; a bid in the last --extend moves the end (unless
    /// --sudden-death); at the end it is sold to the highest bidder, or unsold.
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
        /// The opening price in cents (1999 for 19.99): the least the first bid may be.
        #[arg(long, value_parser = cents)]
        start_cents: u64,
        /// The least each later bid must add, in cents.
        #[arg(long, value_parser = cents)]
        increment_cents: u64,
        #[arg(long, default_value = "USD")]
        currency: String,
        /// How long the auction runs, 5s to 1h, e.g. 90s or 2m.
        #[arg(long, default_value = "1m", value_parser = auction_duration)]
        duration: Duration,
        /// A bid accepted this close to the end moves the end to the bid plus this (0s to 1m;
        /// 0s never extends).
        #[arg(long, default_value = "10s", value_parser = extend)]
        extend: Duration,
        /// Never extend: the auction ends when --duration is up, whatever the bids.
        #[arg(long, conflicts_with = "extend")]
        sudden_death: bool,
        /// Commission paid to you (the host creator) on the winning price, in basis points
        /// (1000 = 10%).
        #[arg(long, default_value_t = 0)]
        commission_bps: u32,
        /// Commission paid to the winner's affiliate (the token's `aff`), in basis points.
        #[arg(long, default_value_t = 0)]
        affiliate_bps: u32,
    },
    /// End an auction that has no bid yet: it closes unsold. One with a bid runs to its end.
    End { auction: String },
}

impl DealCommand {
    /// The command this sends.
    fn into_msg(self, request_id: Option<Id>) -> Result<ClientMsg, CliError> {
        Ok(match self {
            DealCommand::Start {
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
            } => ClientMsg::DealStart {
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
            DealCommand::End { deal } => ClientMsg::DealEnd {
                deal: id("deal", deal)?,
                request_id,
            },
        })
    }
}

impl AuctionCommand {
    /// The command this sends.
    fn into_msg(self, request_id: Option<Id>) -> Result<ClientMsg, CliError> {
        Ok(match self {
            AuctionCommand::Start {
                id: aid,
                product,
                title,
                image_url,
                start_cents,
                increment_cents,
                currency,
                duration,
                extend,
                sudden_death,
                commission_bps,
                affiliate_bps,
            } => ClientMsg::AuctionStart {
                auction: AuctionSpec {
                    id: id("auction id", aid)?,
                    product_id: id("product", product)?,
                    title,
                    image_url,
                    currency,
                    start_cents,
                    increment_cents,
                    duration_ms: duration.as_millis() as u64,
                    extend_ms: extend.as_millis() as u64,
                    sudden_death,
                    commission_bps,
                    affiliate_bps,
                    // The hub's to set, from the host's token.
                    creator: None,
                },
                request_id,
            },
            AuctionCommand::End { auction } => ClientMsg::AuctionEnd {
                auction: id("auction", auction)?,
                request_id,
            },
        })
    }
}

/// A price in cents for `--start-cents` and `--increment-cents`: a whole number from 1 to
/// [`MAX_PRICE_CENTS`]. A price written in currency units (`19.99`) is refused with the cents
/// it stands for.
fn cents(s: &str) -> Result<u64, String> {
    match s.trim().parse::<u64>() {
        Ok(c) if (1..=MAX_PRICE_CENTS).contains(&c) => Ok(c),
        Ok(_) => Err(format!("a price in cents must be 1 to {MAX_PRICE_CENTS}")),
        Err(_) => Err(match units_as_cents(s) {
            Some(c) => format!("a price is a whole number of cents: {s} is {c}"),
            None => "a price is a whole number of cents, e.g. 1999 for 19.99".to_owned(),
        }),
    }
}

/// `19.99` as `1999`: an amount in currency units with at most two decimals, as cents.
fn units_as_cents(s: &str) -> Option<u64> {
    let (units, fraction) = s.trim().split_once('.')?;
    if units.is_empty() && fraction.is_empty()
        || fraction.len() > 2
        || !units
            .chars()
            .chain(fraction.chars())
            .all(|c| c.is_ascii_digit())
    {
        return None;
    }
    let units: u64 = if units.is_empty() {
        0
    } else {
        units.parse().ok()?
    };
    let fraction: u64 = format!("{fraction:0<2}").parse().ok()?;
    units.checked_mul(100)?.checked_add(fraction)
}

/// `--duration` of an auction: a duration such as `90s` or `2m`, within the protocol's bounds.
fn auction_duration(s: &str) -> Result<Duration, String> {
    within(s, MIN_DURATION_MS, MAX_DURATION_MS, "an auction runs")
}

/// `--extend`: a duration such as `10s`, within the protocol's bounds.
fn extend(s: &str) -> Result<Duration, String> {
    within(s, 0, MAX_EXTEND_MS, "an extension is")
}

/// `s` as a duration of `min_ms` to `max_ms`, or why not (`what` starts the sentence).
fn within(s: &str, min_ms: u64, max_ms: u64, what: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(s).map_err(|e| format!("{e} (e.g. 30s, 2m)"))?;
    if (u128::from(min_ms)..=u128::from(max_ms)).contains(&d.as_millis()) {
        Ok(d)
    } else {
        let words = |ms| humantime::format_duration(Duration::from_millis(ms));
        Err(format!("{what} {} to {}", words(min_ms), words(max_ms)))
    }
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
        HostCommand::Deal(deal) => deal.into_msg(request_id)?,
        HostCommand::Auction(auction) => auction.into_msg(request_id)?,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auction_prices_are_whole_cents_and_a_price_in_units_is_refused_with_its_cents() {
        assert_eq!(cents("1999"), Ok(1999));
        assert_eq!(cents("100000000"), Ok(MAX_PRICE_CENTS));
        for (given, why) in [
            ("19.99", "a price is a whole number of cents: 19.99 is 1999"),
            ("5.5", "a price is a whole number of cents: 5.5 is 550"),
            (".5", "a price is a whole number of cents: .5 is 50"),
            (
                "abc",
                "a price is a whole number of cents, e.g. 1999 for 19.99",
            ),
            (
                "1.999",
                "a price is a whole number of cents, e.g. 1999 for 19.99",
            ),
            (
                ".",
                "a price is a whole number of cents, e.g. 1999 for 19.99",
            ),
            (
                "",
                "a price is a whole number of cents, e.g. 1999 for 19.99",
            ),
            ("0", "a price in cents must be 1 to 100000000"),
            ("100000001", "a price in cents must be 1 to 100000000"),
        ] {
            assert_eq!(cents(given), Err(why.to_owned()), "{given:?}");
        }
        assert_eq!(
            cents("99999999999999999999.99"),
            Err("a price is a whole number of cents, e.g. 1999 for 19.99".to_owned())
        );
    }

    #[test]
    fn auction_durations_are_held_to_the_protocols_bounds_in_the_flags_words() {
        assert_eq!(auction_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(auction_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(
            auction_duration("1500ms").unwrap_err(),
            "an auction runs 5s to 1h"
        );
        assert_eq!(
            auction_duration("2h").unwrap_err(),
            "an auction runs 5s to 1h"
        );
        assert!(
            auction_duration("soon")
                .unwrap_err()
                .ends_with("(e.g. 30s, 2m)")
        );
        assert_eq!(extend("0s"), Ok(Duration::ZERO));
        assert_eq!(extend("61s").unwrap_err(), "an extension is 0s to 1m");
        // the flag's default is the protocol's
        assert_eq!(
            extend("10s").map(|d| d.as_millis() as u64),
            Ok(crate::auction::DEFAULT_EXTEND_MS)
        );
    }
}
