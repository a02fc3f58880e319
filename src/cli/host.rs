//! `livehub host`: the host control client. It connects to a room over WebSocket like any
//! client, sends one command and waits for its `ack` or `error`, or watches the room.
//! Everything it prints that came from the hub goes through [`escape_controls`], so a comment
//! cannot forge lines or move the cursor.

use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

use crate::protocol::{ClientMsg, DealSpec, Id, Product, ServerMsg};

/// Arguments of `livehub host`.
#[derive(Debug, Args)]
pub struct HostArgs {
    /// The hub's base URL, e.g. ws://127.0.0.1:8080.
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
    /// Announce to the room.
    Announce { text: String },
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
    },
    /// End a flash deal.
    End { deal: String },
}

fn id(what: &str, s: String) -> anyhow::Result<Id> {
    Id::new(s).map_err(|e| anyhow::anyhow!("{what}: {e}"))
}

fn base_urls(url: &str) -> (String, String) {
    let url = url.trim_end_matches('/');
    if let Some(rest) = url.strip_prefix("http://") {
        (format!("ws://{rest}"), url.to_owned())
    } else if let Some(rest) = url.strip_prefix("ws://") {
        (url.to_owned(), format!("http://{rest}"))
    } else {
        (format!("ws://{url}"), format!("http://{url}"))
    }
}

/// Runs `livehub host`.
pub async fn run(args: HostArgs) -> anyhow::Result<()> {
    let (ws_base, http_base) = base_urls(&args.url);
    let room = id("room", args.room)?;
    let request_id = Id::new(format!("cli-{}", std::process::id())).ok();
    let cmd = match args.command {
        HostCommand::Audit { deal } => {
            let deal = id("deal", deal)?;
            let url = format!("{http_base}/api/rooms/{room}/deals/{deal}");
            let (status, body) = crate::http_client::request("GET", &url, Some(&args.token), None)
                .await
                .with_context(|| format!("GET {url}"))?;
            println!("{}", escape_controls(&body));
            if status != 200 {
                bail!("audit failed with HTTP {status}");
            }
            return Ok(());
        }
        HostCommand::Watch => return watch(&ws_base, &room, &args.token).await,
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
            price_cents,
            currency,
            stock,
            limit,
            duration,
        }) => ClientMsg::DealStart {
            deal: DealSpec {
                id: id("deal id", did)?,
                product_id: id("product", product)?,
                title: None,
                image_url: None,
                price_cents,
                currency,
                stock,
                per_user_limit: limit,
                duration_ms: duration.as_millis() as u64,
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
        HostCommand::Announce { text } => ClientMsg::Announce { text, request_id },
    };
    send_one(&ws_base, &room, &args.token, cmd).await
}

async fn connect(
    ws_base: &str,
    room: &Id,
    token: &str,
) -> anyhow::Result<
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
> {
    let url = format!("{ws_base}/ws/rooms/{room}?token={token}");
    let (ws, _) = tokio_tungstenite::connect_async(url.as_str())
        .await
        .with_context(|| format!("connecting to {ws_base}/ws/rooms/{room}"))?;
    Ok(ws)
}

async fn send_one(ws_base: &str, room: &Id, token: &str, cmd: ClientMsg) -> anyhow::Result<()> {
    let mut ws = connect(ws_base, room, token).await?;
    let want = cmd.request_id().cloned();
    ws.send(Message::text(serde_json::to_string(&cmd)?)).await?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let next = tokio::time::timeout_at(deadline, ws.next())
            .await
            .context("no answer from the hub within 10 s")?;
        let Some(msg) = next else {
            bail!("the hub closed the connection")
        };
        let Message::Text(text) = msg? else { continue };
        let Ok(msg) = serde_json::from_str::<ServerMsg>(text.as_str()) else {
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
                bail!("{code:?}: {}", escape_controls(&message));
            }
            _ => {}
        }
    }
}

async fn watch(ws_base: &str, room: &Id, token: &str) -> anyhow::Result<()> {
    let mut ws = connect(ws_base, room, token).await?;
    while let Some(msg) = ws.next().await {
        match msg? {
            Message::Text(text) => match serde_json::from_str::<ServerMsg>(text.as_str()) {
                Ok(m) => println!("{}", describe(&m)),
                Err(_) => println!("{}", escape_controls(text.as_str())),
            },
            Message::Close(frame) => {
                println!("closed: {}", escape_controls(&format!("{frame:?}")));
                break;
            }
            _ => {}
        }
    }
    Ok(())
}

/// One line for a server message, for `watch`: control characters in what users wrote
/// (names, comments, titles, announcements) are escaped.
pub fn describe(m: &ServerMsg) -> String {
    escape_controls(&describe_raw(m)).into_owned()
}

fn describe_raw(m: &ServerMsg) -> String {
    match m {
        ServerMsg::Welcome {
            room,
            seq,
            viewers,
            likes,
            pinned,
            deals,
            ..
        } => format!(
            "welcome room={room} seq={seq} viewers={viewers} likes={likes} pinned={} deals={}",
            pinned.as_ref().map_or("-".to_owned(), |p| p.id.to_string()),
            deals.len()
        ),
        ServerMsg::Comment(c) => format!(
            "#{} comment {} {}({}): {}",
            c.seq, c.id, c.name, c.user, c.text
        ),
        ServerMsg::CommentDeleted { seq, id } => format!("#{seq} comment_deleted {id}"),
        ServerMsg::Pinned { seq, product } => format!(
            "#{seq} pinned {} \"{}\" {} {}",
            product.id, product.title, product.price_cents, product.currency
        ),
        ServerMsg::Unpinned { seq } => format!("#{seq} unpinned"),
        ServerMsg::Deal { seq, deal } => format!(
            "#{seq} deal {} {:?} {}/{} left, {} {}",
            deal.id, deal.status, deal.remaining, deal.stock, deal.price_cents, deal.currency
        ),
        ServerMsg::Announcement { seq, text } => format!("#{seq} announcement: {text}"),
        ServerMsg::Stock { deal, remaining } => format!("stock {deal} {remaining} left"),
        ServerMsg::Viewers { count } => format!("viewers {count}"),
        ServerMsg::Likes { total } => format!("likes {total}"),
        other => serde_json::to_string(other).unwrap_or_default(),
    }
}

/// `s` with every character a terminal would act on written out visibly: `\n`, `\r`, `\t`
/// and the other C0 and C1 controls and DEL as `\u{..}` (ESC is `\u{1b}`), and so are the
/// bidirectional overrides and isolates (U+202A to U+202E, U+2066 to U+2069), the direction
/// marks and the line and paragraph separators, which reorder or break what follows them.
pub fn escape_controls(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.chars().any(needs_escape) {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if needs_escape(c) => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    std::borrow::Cow::Owned(out)
}

fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{200e}' | '\u{200f}' | '\u{061c}' | '\u{2028}' | '\u{2029}'
                | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped_visibly() {
        assert_eq!(
            escape_controls("plain text, émoji 🧣"),
            "plain text, émoji 🧣"
        );
        assert!(matches!(
            escape_controls("plain"),
            std::borrow::Cow::Borrowed(_)
        ));
        assert_eq!(
            escape_controls("hi\n#99 announcement: free\r\t!"),
            "hi\\n#99 announcement: free\\r\\t!"
        );
        assert_eq!(
            escape_controls("\u{1b}[2J\u{7}\u{0}"),
            "\\u{1b}[2J\\u{7}\\u{0}"
        );
        assert_eq!(
            escape_controls("a\u{7f}b\u{85}c\u{9b}d"),
            "a\\u{7f}b\\u{85}c\\u{9b}d"
        );
        for bidi in [
            '\u{202a}', '\u{202b}', '\u{202c}', '\u{202d}', '\u{202e}', '\u{2066}', '\u{2067}',
            '\u{2068}', '\u{2069}', '\u{200e}', '\u{200f}', '\u{2028}',
        ] {
            let out = escape_controls(&format!("x{bidi}y")).into_owned();
            assert_eq!(out, format!("x\\u{{{:x}}}y", bidi as u32));
        }
    }

    #[test]
    fn watch_lines_escape_every_user_supplied_field() {
        let forged = "ok\n#2 announcement: \u{1b}[31mfree\u{202e}";
        let comment: ServerMsg = serde_json::from_value(serde_json::json!({
            "type": "comment", "seq": 1, "id": "c1", "user": "u1", "name": forged, "text": forged, "ts": 0
        }))
        .unwrap();
        let pinned: ServerMsg = serde_json::from_value(serde_json::json!({
            "type": "pinned", "seq": 1, "product": {"id": "p", "title": forged, "price_cents": 1, "currency": "USD"}
        }))
        .unwrap();
        let announcement: ServerMsg = serde_json::from_value(serde_json::json!({
            "type": "announcement", "seq": 1, "text": forged
        }))
        .unwrap();
        let other: ServerMsg = serde_json::from_value(serde_json::json!({
            "type": "error", "code": "bad_request", "message": forged
        }))
        .unwrap();
        for m in [comment, pinned, announcement] {
            let line = describe(&m);
            assert!(!line.chars().any(needs_escape), "{line:?}");
            assert!(
                line.contains("ok\\n#2 announcement: \\u{1b}[31mfree\\u{202e}"),
                "{line:?}"
            );
        }
        // Messages without a line of their own are printed as JSON, escaped the same way.
        let line = describe(&other);
        assert!(!line.chars().any(needs_escape), "{line:?}");
        assert!(line.contains("free\\u{202e}"), "{line:?}");
    }
}
