//! What `livehub host watch` prints: one line per server message, with every character a
//! terminal would act on written out visibly, so a comment cannot forge lines or move the cursor.

use std::collections::HashMap;
use std::time::Duration;

use crate::protocol::{AuctionStatus, AuctionView, Bidder, DealStatus, Id, ServerMsg};

/// What `watch` remembers between messages to write their lines: the currency of each live
/// auction, since an `auction_bid` frame carries only its price. It holds the room's live
/// auctions only: a `welcome` replaces them, an `auction` event starts or closes one.
#[derive(Debug, Default)]
pub struct Lines {
    currencies: HashMap<Id, String>,
}

impl Lines {
    /// Takes in what `m` says about the room's live auctions. Call it on every message, printed
    /// or not (a resumed connection's `welcome` is not printed, but it is the room as it is).
    pub fn observe(&mut self, m: &ServerMsg) {
        match m {
            ServerMsg::Welcome { auctions, .. } => {
                self.currencies = auctions
                    .iter()
                    .filter(|a| a.status == AuctionStatus::Live)
                    .map(|a| (a.id.clone(), a.currency.clone()))
                    .collect();
            }
            ServerMsg::Auction { auction, .. } if auction.status == AuctionStatus::Live => {
                self.currencies
                    .insert(auction.id.clone(), auction.currency.clone());
            }
            ServerMsg::Auction { auction, .. } => {
                self.currencies.remove(&auction.id);
            }
            _ => {}
        }
    }

    /// One line for a server message at Unix time `now_ms` (an auction's line says how long it
    /// has left): control characters in what users wrote (names, comments, titles,
    /// announcements) are escaped.
    pub fn describe(&self, m: &ServerMsg, now_ms: u64) -> String {
        escape_controls(&self.describe_raw(m, now_ms)).into_owned()
    }

    fn describe_raw(&self, m: &ServerMsg, now_ms: u64) -> String {
        match m {
            ServerMsg::Welcome {
                room,
                seq,
                viewers,
                likes,
                pinned,
                deals,
                auctions,
                ..
            } => format!(
                "welcome room={room} seq={seq} viewers={viewers} likes={likes} pinned={} deals={}{}",
                pinned.as_ref().map_or("-".to_owned(), |p| p.id.to_string()),
                deals.len(),
                // Only when there are any: a room without auctions reads as it always has.
                if auctions.is_empty() {
                    String::new()
                } else {
                    format!(" auctions={}", auctions.len())
                }
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
                "#{seq} deal {}{} {} {}/{} left, {} {}",
                deal.id,
                quoted(&deal.title),
                status_word(deal.status),
                deal.remaining,
                deal.stock,
                deal.price_cents,
                deal.currency
            ),
            ServerMsg::Auction { seq, auction } => {
                format!("#{seq} {}", auction_line(auction, now_ms))
            }
            ServerMsg::AuctionBid {
                auction,
                current_cents,
                leader,
                bids,
                ends_at,
            } => format!(
                "auction {auction}: {}{} ({}, ends in {})",
                self.amount(auction, *current_cents),
                by(leader.as_ref()),
                plural(*bids, "bid"),
                time_left(*ends_at, now_ms)
            ),
            ServerMsg::Announcement { seq, text } => format!("#{seq} announcement: {text}"),
            ServerMsg::Stream { seq, url } => {
                format!("#{seq} stream {}", url.as_deref().unwrap_or("(none)"))
            }
            ServerMsg::Skipped {
                seq,
                from,
                comments,
            } => {
                format!("#{from}-{seq} {comments} comments not shown (this connection fell behind)")
            }
            ServerMsg::Stock { deal, remaining } => format!("stock {deal} {remaining} left"),
            ServerMsg::Viewers { count } => format!("viewers {count}"),
            ServerMsg::Likes { total } => format!("likes {total}"),
            other => serde_json::to_string(other).unwrap_or_default(),
        }
    }

    /// `cents` of live auction `auction`'s currency ("1100 USD"), as the deal lines write a
    /// price; "1100 cents" for an auction this watch has not seen start.
    fn amount(&self, auction: &Id, cents: u64) -> String {
        match self.currencies.get(auction) {
            Some(currency) => format!("{cents} {currency}"),
            None => format!("{cents} cents"),
        }
    }
}

/// An `auction` event's line (without its seq): its start with its rules, or its close.
fn auction_line(a: &AuctionView, now_ms: u64) -> String {
    let money = |cents: u64| format!("{cents} {}", a.currency);
    match a.status {
        AuctionStatus::Live => {
            let mut line = format!(
                "auction {} live:{} from {}, +{}",
                a.id,
                quoted(&a.title),
                money(a.start_cents),
                money(a.increment_cents)
            );
            if let Some(current) = a.current_cents {
                line.push_str(&format!(
                    ", now {}{} ({})",
                    money(current),
                    by(a.leader.as_ref()),
                    plural(a.bids, "bid")
                ));
            }
            line.push_str(&format!(", ends in {}", time_left(a.ends_at, now_ms)));
            if a.sudden_death {
                line.push_str(", sudden death");
            }
            line
        }
        AuctionStatus::Sold => {
            let mut line = format!("auction {} sold", a.id);
            if let Some(winner) = a.winner.as_ref().or(a.leader.as_ref()) {
                line.push_str(&format!(" to {}", winner.name));
            }
            if let Some(price) = a.current_cents {
                line.push_str(&format!(" for {}", money(price)));
            }
            line
        }
        AuctionStatus::Unsold => format!("auction {} unsold", a.id),
    }
}

/// ` "title"`, or nothing for an empty title.
fn quoted(title: &str) -> String {
    if title.is_empty() {
        String::new()
    } else {
        format!(" \"{title}\"")
    }
}

/// ` by NAME`, or nothing without a leader.
fn by(leader: Option<&Bidder>) -> String {
    leader.map_or(String::new(), |l| format!(" by {}", l.name))
}

/// `1 bid`, `3 bids`.
fn plural(n: u32, noun: &str) -> String {
    format!("{n} {noun}{}", if n == 1 { "" } else { "s" })
}

/// How long until `ends_at` from `now_ms`, in whole seconds rounded up, as `--duration` takes
/// it (`45s`, `1m 30s`); `0s` once it has come.
fn time_left(ends_at: u64, now_ms: u64) -> humantime::FormattedDuration {
    let secs = ends_at.saturating_sub(now_ms).div_ceil(1000);
    humantime::format_duration(Duration::from_secs(secs))
}

/// A deal status as the protocol spells it.
fn status_word(s: DealStatus) -> &'static str {
    match s {
        DealStatus::Live => "live",
        DealStatus::SoldOut => "sold_out",
        DealStatus::Ended => "ended",
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

    /// A line for `m` from a watch that has seen nothing before it.
    fn describe(m: &ServerMsg) -> String {
        Lines::default().describe(m, 0)
    }

    fn msg(v: serde_json::Value) -> ServerMsg {
        serde_json::from_value(v).unwrap()
    }

    /// Auction `a1` of a scarf as its `auction` event carries it, ending at 60 s past 0.
    fn auction(status: &str, extra: serde_json::Value) -> serde_json::Value {
        let mut a = serde_json::json!({
            "id": "a1", "product_id": "scarf", "title": "Cozy scarf", "currency": "USD",
            "start_cents": 1000, "increment_cents": 100, "current_cents": null, "leader": null,
            "bids": 0, "ends_at": 60_000, "extend_ms": 10_000, "sudden_death": false,
            "status": status, "started_at": 0
        });
        if let (Some(a), Some(extra)) = (a.as_object_mut(), extra.as_object()) {
            a.extend(extra.clone());
        }
        serde_json::json!({"type": "auction", "seq": 4, "auction": a})
    }

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
        let deal: ServerMsg = serde_json::from_value(serde_json::json!({
            "type": "deal", "seq": 1, "deal": {"id": "d1", "product_id": "p", "title": forged,
            "price_cents": 1999, "currency": "USD", "stock": 5, "remaining": 4,
            "per_user_limit": 1, "ends_at": 0, "status": "sold_out"}
        }))
        .unwrap();
        let sold = msg(auction(
            "sold",
            serde_json::json!({"title": forged, "current_cents": 1100,
                "leader": {"name": forged}, "winner": {"name": forged}, "bids": 2}),
        ));
        let started = msg(auction("live", serde_json::json!({"title": forged})));
        let bid = msg(serde_json::json!({
            "type": "auction_bid", "auction": "a1", "current_cents": 1100,
            "leader": {"name": forged}, "bids": 2, "ends_at": 0
        }));
        for m in [comment, pinned, announcement, deal, sold, started, bid] {
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

    #[test]
    fn a_deal_line_names_its_product_and_spells_the_status_as_the_protocol_does() {
        let deal: ServerMsg = serde_json::from_value(serde_json::json!({
            "type": "deal", "seq": 2, "deal": {"id": "d1", "product_id": "scarf",
            "title": "Cozy scarf", "price_cents": 1999, "currency": "USD", "stock": 500,
            "remaining": 0, "per_user_limit": 2, "ends_at": 0, "status": "sold_out"}
        }))
        .unwrap();
        assert_eq!(
            describe(&deal),
            "#2 deal d1 \"Cozy scarf\" sold_out 0/500 left, 1999 USD"
        );
    }

    #[test]
    fn an_auctions_start_bids_and_close_read_as_sentences_in_its_currency() {
        let mut lines = Lines::default();
        let start = msg(auction("live", serde_json::json!({})));
        lines.observe(&start);
        assert_eq!(
            lines.describe(&start, 30_000),
            "#4 auction a1 live: \"Cozy scarf\" from 1000 USD, +100 USD, ends in 30s"
        );
        // the seconds left are rounded up, and written as --duration takes them
        assert!(lines.describe(&start, 0).ends_with("ends in 1m"));
        assert!(lines.describe(&start, 59_001).ends_with("ends in 1s"));
        assert!(lines.describe(&start, 70_000).ends_with("ends in 0s"));

        let bid = |bids: u32, ends_at: u64| {
            msg(serde_json::json!({
                "type": "auction_bid", "auction": "a1", "current_cents": 1100,
                "leader": {"name": "Bo"}, "bids": bids, "ends_at": ends_at
            }))
        };
        assert_eq!(
            lines.describe(&bid(1, 75_000), 30_000),
            "auction a1: 1100 USD by Bo (1 bid, ends in 45s)"
        );
        assert_eq!(
            lines.describe(&bid(3, 120_500), 30_000),
            "auction a1: 1100 USD by Bo (3 bids, ends in 1m 31s)"
        );

        let sold = msg(auction(
            "sold",
            serde_json::json!({"current_cents": 1200, "leader": {"name": "Bo"},
                "winner": {"name": "Bo"}, "bids": 3}),
        ));
        lines.observe(&sold);
        assert_eq!(
            lines.describe(&sold, 61_000),
            "#4 auction a1 sold to Bo for 1200 USD"
        );
        let unsold = msg(auction("unsold", serde_json::json!({})));
        assert_eq!(lines.describe(&unsold, 61_000), "#4 auction a1 unsold");
        // once closed, its currency is forgotten: a late bid frame still reads
        assert_eq!(
            lines.describe(&bid(3, 0), 0),
            "auction a1: 1100 cents by Bo (3 bids, ends in 0s)"
        );
    }

    #[test]
    fn a_live_auctions_line_says_sudden_death_and_any_bid_it_already_has() {
        let line = describe(&msg(auction(
            "live",
            serde_json::json!({"title": "", "sudden_death": true, "currency": "EUR",
                "current_cents": 1300, "leader": {"name": "Ann"}, "bids": 2, "ends_at": 5_000}),
        )));
        assert_eq!(
            line,
            "#4 auction a1 live: from 1000 EUR, +100 EUR, now 1300 EUR by Ann (2 bids), \
             ends in 5s, sudden death"
        );
    }

    #[test]
    fn welcome_counts_the_live_auctions_and_a_resumed_one_still_teaches_their_currency() {
        let welcome = |auctions: serde_json::Value| {
            msg(serde_json::json!({
                "type": "welcome", "room": "show", "seq": 7,
                "you": {"user": "creator", "name": "Ana", "role": "host"},
                "viewers": 2, "likes": 0, "pinned": null, "deals": [], "recent": [],
                "resumed": true, "auctions": auctions
            }))
        };
        let none = welcome(serde_json::json!([]));
        // a room without auctions reads as it always has
        assert_eq!(
            describe(&none),
            "welcome room=show seq=7 viewers=2 likes=0 pinned=- deals=0"
        );
        let Some(a1) = auction("live", serde_json::json!({"currency": "JPY"}))
            .get("auction")
            .cloned()
        else {
            unreachable!()
        };
        let one = welcome(serde_json::json!([a1]));
        assert_eq!(
            describe(&one),
            "welcome room=show seq=7 viewers=2 likes=0 pinned=- deals=0 auctions=1"
        );
        let mut lines = Lines::default();
        lines.observe(&one);
        let bid = msg(serde_json::json!({
            "type": "auction_bid", "auction": "a1", "current_cents": 1100,
            "leader": {"name": "Bo"}, "bids": 1, "ends_at": 0
        }));
        assert!(
            lines
                .describe(&bid, 0)
                .starts_with("auction a1: 1100 JPY by Bo")
        );
        // a later welcome is the room as it is now: a1 is no longer live
        lines.observe(&none);
        assert!(
            lines
                .describe(&bid, 0)
                .starts_with("auction a1: 1100 cents by Bo")
        );
    }
}
