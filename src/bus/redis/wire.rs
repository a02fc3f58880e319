//! What the Redis bus reads and writes: pub/sub payloads, the bus scripts' arguments and
//! replies, and the room state that `load.lua` returns. Pure parsing, no I/O.
//!
//! **Arguments.** `publish.lua` takes the event's JSON (stored and published as it is) and one
//! `cjson` object, [`PublishArgs`], decoded in Lua with `cjson.decode`: named fields, so a field
//! added on one side cannot shift another. Numbers in it are JSON numbers (exact below 2^53);
//! a comment's `seq`, which the script matches as text, is a decimal string.
//!
//! **Replies.** A reply that carries a record (`load.lua`'s room) is one `cjson` object with its
//! variant in `r` and its numbers as decimal strings, read into a serde struct that refuses
//! unknown fields ([`parse_state`]); a list (`range.lua`'s entries) is a flat array of pairs
//! ([`parse_range`]); a tiny fixed reply (`publish.lua`'s, `counters.lua`'s) is an array whose
//! first element names the variant, read with its exact length ([`parse_publish`],
//! [`parse_counters`]). A reply of another shape is a [`BusError::Internal`].
//!
//! **Stored data and messages** keep the formats they had before: the room's keys (the recent
//! list's `SEQ|EVENT JSON`, the deals hash's `status|version|deal JSON`, the stream, the nodes'
//! `viewers|expires`) and the pub/sub payloads (`SEQ|EPOCH|EVENT JSON`, `S|DEAL|REMAINING|
//! VERSION`), so rooms already in Redis load as they did and nodes not yet upgraded hear every
//! message during a rolling upgrade.

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize};

use super::super::{BusError, Counters, Event};
use crate::inventory::StockLevel;
use crate::persist::SavedRoom;
use crate::protocol::{Announced, AuctionView, Comment, Deal, Id, Product, ServerMsg};

/// `SEQ|EPOCH|EVENT JSON`.
pub(super) fn parse_published(payload: &str) -> Option<(u64, &str, Event)> {
    let (seq, rest) = payload.split_once('|')?;
    let (epoch, json) = rest.split_once('|')?;
    Some((seq.parse().ok()?, epoch, serde_json::from_str(json).ok()?))
}

/// `DEAL|REMAINING|VERSION`.
pub(super) fn parse_stock(s: &str) -> Option<(Id, StockLevel)> {
    let mut f = s.split('|');
    let deal = Id::new(f.next()?).ok()?;
    let remaining = f.next()?.parse().ok()?;
    let version = f.next()?.parse().ok()?;
    Some((deal, StockLevel { remaining, version }))
}

pub(super) fn published_ts(event: &Event) -> Option<u64> {
    match event {
        Event::Comment { ts, .. } => Some(*ts),
        _ => None,
    }
}

pub(super) fn bad(what: &str) -> BusError {
    BusError::Internal(format!("unexpected {what} from Redis"))
}

/// `publish.lua`'s arguments (besides the event's JSON), as one `cjson` object.
#[derive(Debug, Serialize)]
pub(super) struct PublishArgs {
    /// This node's time, Unix ms.
    pub now: u64,
    /// The room's history stream is capped at this many events.
    pub history: usize,
    /// The recent comments are capped at this many.
    pub recent: usize,
    /// The room's channel.
    pub channel: String,
    /// The epoch of a room whose meta has none yet.
    pub epoch: String,
    /// `PUBLISH` or `SPUBLISH`.
    pub command: &'static str,
    /// `room.open_ttl_ms`.
    pub open_ttl: u64,
    /// What the event's precondition needs.
    pub event: EventArgs,
}

/// What `publish.lua` needs of each kind of event, tagged by its kind (`Event::kind`).
#[derive(Debug, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub(super) enum EventArgs {
    /// The commenter, checked against mutes and the comment rate (`rate` per second, `burst`).
    Comment {
        user: String,
        rate: f64,
        burst: f64,
    },
    /// The comment's seq as text, None for an id the hub never gave (no such comment).
    CommentDeleted {
        #[serde(skip_serializing_if = "Option::is_none")]
        seq: Option<String>,
    },
    /// The product's JSON, stored as the room's pin.
    Pinned {
        product: String,
    },
    Unpinned,
    /// The deal's id, status name, the stock version its status was judged at, and its JSON.
    Deal {
        id: String,
        status: String,
        version: u64,
        deal: String,
    },
    Announcement,
    /// The room's stream URL, stored in meta; "" clears it (a URL is never empty).
    Stream {
        url: String,
    },
    /// The auction's id, start, status name and its viewers' JSON, kept as the room's
    /// auction (in the deals hash, field `~a:ID`) when it is news: a start, or a close not
    /// yet published.
    Auction {
        id: String,
        started_at: u64,
        status: String,
        auction: String,
    },
}

impl EventArgs {
    /// What `publish.lua` needs of `event`; `rate` is the comment rate (per second, burst).
    pub(super) fn of(event: &Event, rate: (f64, f64)) -> Result<Self, BusError> {
        Ok(match event {
            Event::Comment { user, .. } => EventArgs::Comment {
                user: user.to_string(),
                rate: rate.0,
                burst: rate.1,
            },
            Event::CommentDeleted { id } => EventArgs::CommentDeleted {
                seq: super::super::comment_seq(id).map(|s| s.to_string()),
            },
            Event::Pinned { product } => EventArgs::Pinned {
                product: to_json(product)?,
            },
            Event::Unpinned => EventArgs::Unpinned,
            Event::Deal { deal, version } => EventArgs::Deal {
                id: deal.id.to_string(),
                status: status_name(deal),
                version: *version,
                deal: to_json(deal)?,
            },
            Event::Announcement { .. } => EventArgs::Announcement,
            Event::Stream { url } => EventArgs::Stream {
                url: url.clone().unwrap_or_default(),
            },
            Event::Auction { auction, .. } => EventArgs::Auction {
                id: auction.id.to_string(),
                started_at: auction.started_at,
                status: to_json(&auction.status)?.trim_matches('"').to_owned(),
                auction: to_json(auction)?,
            },
        })
    }
}

fn to_json<T: Serialize>(v: &T) -> Result<String, BusError> {
    serde_json::to_string(v).map_err(|e| BusError::Internal(e.to_string()))
}

/// `publish.lua`'s answer.
#[derive(Debug, PartialEq)]
pub(super) enum PublishReply {
    /// Appended at `seq` (`{"OK", seq, epoch}`).
    Published(u64),
    /// A deal status that is not news (`{"SAME"}`).
    Same,
    /// The room's lifetime ran out, or it never opened (`{"GONE"}`).
    Gone,
    /// The precondition failed: `{"MUTED", seconds}`, `{"RATE"}`, `{"NOCOMMENT"}`, `{"NOPIN"}`.
    Refused(Refusal),
}

/// Why `publish.lua` refused an event.
#[derive(Debug, PartialEq)]
pub(super) enum Refusal {
    Muted(u64),
    Rate,
    NoComment,
    NoPin,
}

/// Parses `publish.lua`'s reply, each variant at its exact length.
pub(super) fn parse_publish(reply: &[String]) -> Result<PublishReply, BusError> {
    let r: Vec<&str> = reply.iter().map(String::as_str).collect();
    Ok(match r.as_slice() {
        ["OK", seq, _epoch] => PublishReply::Published(seq.parse().map_err(|_| bad("seq"))?),
        ["SAME"] => PublishReply::Same,
        ["GONE"] => PublishReply::Gone,
        ["MUTED", secs] => {
            PublishReply::Refused(Refusal::Muted(secs.parse().map_err(|_| bad("mute"))?))
        }
        ["RATE"] => PublishReply::Refused(Refusal::Rate),
        ["NOCOMMENT"] => PublishReply::Refused(Refusal::NoComment),
        ["NOPIN"] => PublishReply::Refused(Refusal::NoPin),
        _ => return Err(bad("publish reply")),
    })
}

/// The error a refusal of `event` is.
pub(super) fn refusal(why: Refusal, event: &Event) -> BusError {
    match why {
        Refusal::Muted(secs) => BusError::Muted(secs),
        Refusal::Rate => BusError::RateLimited,
        Refusal::NoComment => match event {
            Event::CommentDeleted { id } => BusError::NoSuchComment(id.clone()),
            _ => bad("refusal"),
        },
        Refusal::NoPin => BusError::NothingPinned,
    }
}

/// `counters.lua`'s answer: the room-wide totals and the room's position (seq, epoch), or None
/// when the room's lifetime ran out (`{"GONE"}`).
pub(super) type CountersReply = Option<(Counters, u64, String)>;

/// Parses `counters.lua`'s reply: `{"OK", likes, viewers, seq, epoch}` or `{"GONE"}`.
pub(super) fn parse_counters(reply: &[String]) -> Result<CountersReply, BusError> {
    let num = |s: &str| s.parse::<u64>().map_err(|_| bad("counter"));
    match reply {
        [gone] if gone == "GONE" => Ok(None),
        [ok, likes, viewers, seq, epoch] if ok == "OK" => Ok(Some((
            Counters {
                likes: num(likes)?,
                viewers: num(viewers)?,
            },
            num(seq)?,
            epoch.clone(),
        ))),
        _ => Err(bad("counters reply")),
    }
}

/// Parses `range.lua`'s reply: seq, event JSON, seq, event JSON, …
pub(super) fn parse_range(flat: &[String]) -> Result<Vec<(u64, Event)>, BusError> {
    flat.chunks(2)
        .map(|pair| match pair {
            [seq, json] => event_at(seq, json),
            _ => Err(bad("history entry")),
        })
        .collect()
}

/// One history entry: its seq (decimal) and its event's JSON.
fn event_at(seq: &str, json: &str) -> Result<(u64, Event), BusError> {
    let seq = seq.parse().map_err(|_| bad("history seq"))?;
    let event = serde_json::from_str(json).map_err(|_| bad("history event"))?;
    Ok((seq, event))
}

/// A number sent as a decimal string.
fn dec<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    let s = String::deserialize(d)?;
    s.parse()
        .map_err(|_| D::Error::custom(format!("not a number: {s:?}")))
}

/// A list; `cjson` writes an empty Lua table as `{}`, read as an empty list.
fn list<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Vec<T>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum List<T> {
        Items(Vec<T>),
        Empty(EmptyObject),
    }
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct EmptyObject {}
    Ok(match List::deserialize(d)? {
        List::Items(v) => v,
        List::Empty(EmptyObject {}) => Vec::new(),
    })
}

/// One entry of `load.lua`'s recent comments or history.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    seq: String,
    event: String,
}

// Variants without fields are `{}`: serde lets a unit variant of an internally tagged enum
// ignore unknown fields.
// Decoded once and taken apart at once: its size does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Deserialize)]
#[serde(tag = "r", rename_all = "snake_case", deny_unknown_fields)]
enum LoadWire {
    None {},
    Room {
        #[serde(deserialize_with = "dec")]
        seq: u64,
        epoch: String,
        pinned: String,
        #[serde(deserialize_with = "dec")]
        likes: u64,
        #[serde(deserialize_with = "dec")]
        viewers: u64,
        #[serde(deserialize_with = "list")]
        recent: Vec<Entry>,
        #[serde(deserialize_with = "list")]
        deals: Vec<String>,
        /// The room's auctions' JSON (a room loaded by an older script has none).
        #[serde(default, deserialize_with = "list")]
        auctions: Vec<String>,
        #[serde(deserialize_with = "list")]
        history: Vec<Entry>,
        /// The room's stream URL, "" for none.
        stream: String,
        /// The latest announcement as `SEQ|EVENT JSON`, "" for none.
        announcement: String,
    },
}

/// Parses `load.lua`'s reply: None for a room that does not exist (`{r: "none"}`), else the
/// room's durable state, its epoch and its counters (`{r: "room", …}`).
pub(super) fn parse_state(
    room: &Id,
    reply: &str,
) -> Result<Option<(SavedRoom, String, Counters)>, BusError> {
    let wire: LoadWire = serde_json::from_str(reply)
        .map_err(|e| BusError::Internal(format!("unexpected room state from Redis: {e}")))?;
    let LoadWire::Room {
        seq,
        epoch,
        pinned,
        likes,
        viewers,
        recent,
        deals,
        auctions,
        history,
        stream,
        announcement,
    } = wire
    else {
        return Ok(None);
    };
    let deals = deals
        .iter()
        .map(|d| serde_json::from_str::<Deal>(d).map_err(|_| bad("deal")))
        .collect::<Result<Vec<_>, _>>()?;
    let mut auctions = auctions
        .iter()
        .map(|a| serde_json::from_str::<AuctionView>(a).map_err(|_| bad("auction")))
        .collect::<Result<Vec<_>, _>>()?;
    auctions.sort_by(|a, b| (a.started_at, &a.id).cmp(&(b.started_at, &b.id)));
    let mut comments: Vec<Comment> = Vec::new();
    for e in &recent {
        let (seq, event) = event_at(&e.seq, &e.event)?;
        if let ServerMsg::Comment(c) = event.into_msg(seq) {
            comments.push(c);
        }
    }
    let mut frames = Vec::new();
    for e in &history {
        let (seq, event) = event_at(&e.seq, &e.event)?;
        let frame = event
            .into_msg(seq)
            .to_json()
            .map_err(|_| bad("history event"))?;
        frames.push((seq, frame));
    }
    let pinned: Option<Product> = if pinned.is_empty() {
        None
    } else {
        Some(serde_json::from_str(&pinned).map_err(|_| bad("pinned product"))?)
    };
    let mut saved = SavedRoom::empty(room.clone(), seq);
    saved.history = frames;
    saved.pinned = pinned;
    saved.recent = comments;
    saved.likes = likes;
    saved.deals = deals;
    saved.auctions = auctions;
    saved.stream_url = Some(stream).filter(|u| !u.is_empty());
    saved.announcement = parse_announcement(&announcement)?;
    Ok(Some((saved, epoch, Counters { viewers, likes })))
}

/// The room's latest announcement as meta keeps it: `SEQ|EVENT JSON`, "" for none.
fn parse_announcement(stored: &str) -> Result<Option<Announced>, BusError> {
    if stored.is_empty() {
        return Ok(None);
    }
    let (seq, json) = stored.split_once('|').ok_or_else(|| bad("announcement"))?;
    match event_at(seq, json)? {
        (seq, Event::Announcement { text }) => Ok(Some(Announced { seq, text })),
        _ => Err(bad("announcement")),
    }
}

/// The mutes hash (`user -> until ms`) as the users muted at `now`, with their mute's end; a
/// field that is not a user id and a number is skipped (it mutes nobody).
pub(super) fn live_mutes(all: &[(String, String)], now: u64) -> Vec<(Id, u64)> {
    all.iter()
        .filter_map(|(user, until)| Some((Id::new(user).ok()?, until.parse::<u64>().ok()?)))
        .filter(|(_, until)| *until > now)
        .collect()
}

pub(super) fn status_name(deal: &Deal) -> String {
    match deal.status {
        crate::protocol::DealStatus::Live => "live",
        crate::protocol::DealStatus::SoldOut => "sold_out",
        crate::protocol::DealStatus::Ended => "ended",
    }
    .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn published_events_and_stock_readings_parse_and_garbage_does_not() {
        let (seq, epoch, event) =
            parse_published(r#"7|e1|{"type":"announcement","text":"a|b"}"#).unwrap();
        assert_eq!((seq, epoch), (7, "e1"));
        assert_eq!(event, Event::Announcement { text: "a|b".into() });
        assert!(parse_published("7|e1|{not json").is_none());
        assert!(parse_published("x|e1|{}").is_none());
        let (deal, level) = parse_stock("d1|4|9").unwrap();
        assert_eq!(
            (deal.as_str(), level.remaining, level.version),
            ("d1", 4, 9)
        );
        assert!(parse_stock("d1|-4|9").is_none());
    }

    const COMMENT: &str = r#"{"type":"comment","user":"u","name":"U","text":"hi","ts":1}"#;

    fn loaded() -> serde_json::Value {
        serde_json::json!({
            "r": "room", "seq": "3", "epoch": "ep", "pinned": "", "likes": "11",
            "viewers": "4", "recent": [{"seq": "2", "event": COMMENT}], "deals": {},
            "history": [{"seq": "2", "event": COMMENT}], "stream": "", "announcement": ""
        })
    }

    #[test]
    fn a_loaded_room_rebuilds_comments_and_history_frames_with_their_seqs() {
        let room = Id::new("r").unwrap();
        let (saved, epoch, counters) = parse_state(&room, &loaded().to_string()).unwrap().unwrap();
        assert_eq!((saved.seq, epoch.as_str()), (3, "ep"));
        assert_eq!(
            counters,
            Counters {
                viewers: 4,
                likes: 11
            }
        );
        assert_eq!(saved.recent[0].id.as_str(), "c2");
        assert!(saved.history[0].1.contains(r#""seq":2"#));
        assert!(saved.deals.is_empty(), "cjson's empty list is {{}}");
        assert!(parse_state(&room, r#"{"r":"none"}"#).unwrap().is_none());
        assert_eq!((saved.stream_url, saved.announcement), (None, None));
    }

    #[test]
    fn a_loaded_room_has_its_stream_and_latest_announcement() {
        let room = Id::new("r").unwrap();
        let mut v = loaded();
        v["stream"] = serde_json::json!("https://cdn.example/a|b.m3u8");
        v["announcement"] = serde_json::json!(r#"5|{"type":"announcement","text":"doors | open"}"#);
        let (saved, _, _) = parse_state(&room, &v.to_string()).unwrap().unwrap();
        assert_eq!(
            saved.stream_url.as_deref(),
            Some("https://cdn.example/a|b.m3u8")
        );
        assert_eq!(
            saved.announcement,
            Some(Announced {
                seq: 5,
                text: "doors | open".into()
            })
        );
        for bad in ["5", "x|{}", &format!("5|{COMMENT}")] {
            v["announcement"] = serde_json::json!(bad);
            assert!(parse_state(&room, &v.to_string()).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_loaded_room_with_a_field_missing_added_or_mistyped_is_an_error() {
        let room = Id::new("r").unwrap();
        let mut cases = Vec::new();
        for field in [
            "seq",
            "epoch",
            "pinned",
            "likes",
            "viewers",
            "recent",
            "deals",
            "history",
            "stream",
            "announcement",
        ] {
            let mut v = loaded();
            v.as_object_mut().unwrap().remove(field);
            cases.push(v);
        }
        let mut extra = loaded();
        extra["nodes"] = serde_json::json!("2");
        cases.push(extra);
        let mut numeric = loaded();
        numeric["seq"] = serde_json::json!(3);
        cases.push(numeric);
        let mut entry = loaded();
        entry["history"] = serde_json::json!([{"seq": "2", "event": COMMENT, "x": "1"}]);
        cases.push(entry);
        let mut not_empty = loaded();
        not_empty["deals"] = serde_json::json!({"a": "1"});
        cases.push(not_empty);
        cases.push(serde_json::json!({"r": "none", "seq": "1"}));
        for bad in cases {
            assert!(parse_state(&room, &bad.to_string()).is_err(), "{bad}");
        }
        assert!(parse_state(&room, "NONE").is_err(), "the old format");
    }

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn publish_replies_are_read_at_their_exact_length() {
        assert_eq!(
            parse_publish(&s(&["OK", "7", "ep"])).unwrap(),
            PublishReply::Published(7)
        );
        assert_eq!(parse_publish(&s(&["SAME"])).unwrap(), PublishReply::Same);
        assert_eq!(parse_publish(&s(&["GONE"])).unwrap(), PublishReply::Gone);
        assert_eq!(
            parse_publish(&s(&["MUTED", "30"])).unwrap(),
            PublishReply::Refused(Refusal::Muted(30))
        );
        for (reply, refusal) in [
            ("RATE", Refusal::Rate),
            ("NOCOMMENT", Refusal::NoComment),
            ("NOPIN", Refusal::NoPin),
        ] {
            assert_eq!(
                parse_publish(&s(&[reply])).unwrap(),
                PublishReply::Refused(refusal)
            );
        }
        for bad in [
            &["OK", "7"][..],
            &["OK", "7", "ep", "x"],
            &["OK", "x", "ep"],
            &["MUTED"],
            &["RATE", "1"],
            &["WHAT"],
            &[],
        ] {
            assert!(parse_publish(&s(bad)).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn only_mutes_still_running_are_listed() {
        let all = [
            ("troll".to_owned(), "5000".to_owned()),
            ("past".to_owned(), "900".to_owned()),
            ("odd".to_owned(), "x".to_owned()),
        ];
        assert_eq!(
            live_mutes(&all, 1_000),
            vec![(Id::new("troll").unwrap(), 5_000)]
        );
    }

    #[test]
    fn counters_and_range_replies() {
        let (counters, seq, epoch) = parse_counters(&s(&["OK", "11", "4", "9", "ep"]))
            .unwrap()
            .unwrap();
        assert_eq!(
            (counters.likes, counters.viewers, seq, epoch.as_str()),
            (11, 4, 9, "ep")
        );
        assert!(parse_counters(&s(&["GONE"])).unwrap().is_none());
        for bad in [
            &["11", "4", "9", "ep"][..],
            &["OK", "11", "4", "9"],
            &["OK", "11", "4", "9", "ep", "x"],
            &["OK", "x", "4", "9", "ep"],
        ] {
            assert!(parse_counters(&s(bad)).is_err(), "{bad:?}");
        }
        let entries = parse_range(&s(&["2", COMMENT, "3", COMMENT])).unwrap();
        assert_eq!(entries.iter().map(|e| e.0).collect::<Vec<_>>(), [2, 3]);
        assert!(parse_range(&s(&["2", COMMENT, "3"])).is_err());
        assert!(parse_range(&s(&["x", COMMENT])).is_err());
        assert!(parse_range(&s(&[&format!("2|{COMMENT}")])).is_err());
    }

    /// Every field `publish.lua` reads from its arguments is one that Rust sends.
    #[test]
    fn publish_lua_reads_only_fields_rust_sends() {
        let lua = include_str!("../lua/publish.lua");
        let sent = |v: serde_json::Value| -> Vec<String> {
            v.as_object().unwrap().keys().cloned().collect()
        };
        let top = PublishArgs {
            now: 0,
            history: 0,
            recent: 0,
            channel: String::new(),
            epoch: String::new(),
            command: "PUBLISH",
            open_ttl: 0,
            event: EventArgs::Unpinned,
        };
        let top = sent(serde_json::to_value(top).unwrap());
        for name in crate::redis_io::lua_fields(lua, "args") {
            assert!(top.contains(&name), "args.{name} is not sent");
        }
        let mut event: Vec<String> = [
            EventArgs::Comment {
                user: String::new(),
                rate: 0.0,
                burst: 0.0,
            },
            EventArgs::CommentDeleted {
                seq: Some(String::new()),
            },
            EventArgs::Pinned {
                product: String::new(),
            },
            EventArgs::Deal {
                id: String::new(),
                status: String::new(),
                version: 0,
                deal: String::new(),
            },
            EventArgs::Stream { url: String::new() },
            EventArgs::Auction {
                id: String::new(),
                started_at: 0,
                status: String::new(),
                auction: String::new(),
            },
        ]
        .into_iter()
        .flat_map(|e| sent(serde_json::to_value(e).unwrap()))
        .collect();
        event.sort();
        for name in crate::redis_io::lua_fields(lua, "e") {
            assert!(event.binary_search(&name).is_ok(), "e.{name} is not sent");
        }
        assert_eq!(
            crate::redis_io::lua_fields(lua, "args"),
            [
                "channel", "command", "epoch", "event", "history", "now", "open_ttl", "recent"
            ]
        );
        assert!(crate::redis_io::lua_fields(lua, "e").contains(&"kind".to_owned()));
    }

    /// The names `publish.lua` reads; renaming one on either side fails here.
    #[test]
    fn publish_arguments_are_named_fields() {
        let args = |event: Event| {
            let a = PublishArgs {
                now: 5,
                history: 100,
                recent: 50,
                channel: "ch".into(),
                epoch: "ep".into(),
                command: "PUBLISH",
                open_ttl: 900_000,
                event: EventArgs::of(&event, (0.5, 3.0)).unwrap(),
            };
            serde_json::to_value(a).unwrap()
        };
        let comment = args(Event::Comment {
            user: Id::new("u1").unwrap(),
            name: "U".into(),
            text: "a|b".into(),
            ts: 1,
        });
        assert_eq!(
            comment,
            serde_json::json!({
                "now": 5, "history": 100, "recent": 50, "channel": "ch", "epoch": "ep",
                "command": "PUBLISH", "open_ttl": 900_000,
                "event": {"kind": "comment", "user": "u1", "rate": 0.5, "burst": 3.0}
            })
        );
        let deleted = |id: &str| {
            args(Event::CommentDeleted {
                id: Id::new(id).unwrap(),
            })["event"]
                .clone()
        };
        assert_eq!(
            deleted("c12"),
            serde_json::json!({"kind": "comment_deleted", "seq": "12"})
        );
        assert_eq!(
            deleted("x12"),
            serde_json::json!({"kind": "comment_deleted"})
        );
        assert_eq!(
            args(Event::Unpinned)["event"],
            serde_json::json!({"kind": "unpinned"})
        );
        let deal = Deal {
            id: Id::new("d1").unwrap(),
            product_id: Id::new("p1").unwrap(),
            title: "T".into(),
            image_url: None,
            price_cents: 999,
            currency: "USD".into(),
            stock: 10,
            remaining: 0,
            per_user_limit: 1,
            commission_bps: 0,
            affiliate_bps: 0,
            ends_at: 60_000,
            status: crate::protocol::DealStatus::SoldOut,
            started_at: None,
        };
        let json = serde_json::to_string(&deal).unwrap();
        assert_eq!(
            args(Event::Deal { deal, version: 7 })["event"],
            serde_json::json!({
                "kind": "deal", "id": "d1", "status": "sold_out", "version": 7, "deal": json
            })
        );
        // Every event's kind is the name `Event::kind` gives it.
        for event in [Event::Unpinned, Event::Announcement { text: "a".into() }] {
            assert_eq!(args(event.clone())["event"]["kind"], event.kind());
        }
    }

    /// `publish.lua` stores a stream's `url` in the room's meta and deletes it for "".
    #[test]
    fn a_stream_sends_its_url_and_a_cleared_one_an_empty_url() {
        let event = |url: Option<&str>| {
            let event = Event::Stream {
                url: url.map(Into::into),
            };
            let args = EventArgs::of(&event, (1.0, 1.0)).unwrap();
            (serde_json::to_value(args).unwrap(), event.kind())
        };
        let (set, kind) = event(Some("/live/a.m3u8"));
        assert_eq!(
            set,
            serde_json::json!({"kind": "stream", "url": "/live/a.m3u8"})
        );
        assert_eq!(kind, "stream");
        let (cleared, _) = event(None);
        assert_eq!(cleared, serde_json::json!({"kind": "stream", "url": ""}));
    }
}
