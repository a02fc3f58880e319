//! What the Redis bus reads and writes: pub/sub payloads, history lines, the room state that
//! `load.lua` returns, and the publish script's refusals. Pure parsing, no I/O.

use super::super::{BusError, Counters, Event};
use crate::inventory::StockLevel;
use crate::persist::SavedRoom;
use crate::protocol::{Comment, Deal, Id, Product, ServerMsg};

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

/// `SEQ|EVENT JSON` lines.
pub(super) fn parse_events(lines: &[String]) -> Result<Vec<(u64, Event)>, BusError> {
    lines
        .iter()
        .map(|l| {
            let (seq, json) = l.split_once('|').ok_or_else(|| bad("history entry"))?;
            let seq = seq.parse().map_err(|_| bad("history seq"))?;
            let event = serde_json::from_str(json).map_err(|_| bad("history event"))?;
            Ok((seq, event))
        })
        .collect()
}

/// The reply of `load.lua`.
pub(super) fn parse_state(
    room: &Id,
    lines: &[String],
) -> Result<(SavedRoom, String, Counters), BusError> {
    let mut it = lines.iter();
    let mut next = |what: &str| it.next().ok_or_else(|| bad(what)).cloned();
    let num = |s: String, what: &str| s.parse::<u64>().map_err(|_| bad(what));
    let seq = num(next("seq")?, "seq")?;
    let epoch = next("epoch")?;
    let pinned = next("pinned")?;
    let likes = num(next("likes")?, "likes")?;
    let viewers = num(next("viewers")?, "viewers")?;
    let n = num(next("recent")?, "recent")?;
    let mut recent_lines = Vec::new();
    for _ in 0..n {
        recent_lines.push(next("comment")?);
    }
    let n = num(next("deals")?, "deals")?;
    let mut deals = Vec::new();
    for _ in 0..n {
        let d: Deal = serde_json::from_str(&next("deal")?).map_err(|_| bad("deal"))?;
        deals.push(d);
    }
    let n = num(next("history")?, "history")?;
    let mut hist_lines = Vec::new();
    for _ in 0..n {
        hist_lines.push(next("history entry")?);
    }
    let recent: Vec<Comment> = parse_events(&recent_lines)?
        .into_iter()
        .filter_map(|(seq, e)| match e.into_msg(seq) {
            ServerMsg::Comment(c) => Some(c),
            _ => None,
        })
        .collect();
    let mut history = Vec::new();
    for (seq, e) in parse_events(&hist_lines)? {
        let frame = e
            .into_msg(seq)
            .to_json()
            .map_err(|_| bad("history event"))?;
        history.push((seq, frame));
    }
    let pinned: Option<Product> = if pinned.is_empty() {
        None
    } else {
        Some(serde_json::from_str(&pinned).map_err(|_| bad("pinned product"))?)
    };
    let mut saved = SavedRoom::empty(room.clone(), seq);
    saved.history = history;
    saved.pinned = pinned;
    saved.recent = recent;
    saved.likes = likes;
    saved.deals = deals;
    Ok((saved, epoch, Counters { viewers, likes }))
}

pub(super) fn refusal(reply: &[String], event: &Event) -> BusError {
    match reply.first().map(String::as_str) {
        Some("MUTED") => BusError::Muted(reply.get(1).and_then(|s| s.parse().ok()).unwrap_or(1)),
        Some("RATE") => BusError::RateLimited,
        Some("NOCOMMENT") => match event {
            Event::CommentDeleted { id } => BusError::NoSuchComment(id.clone()),
            _ => bad("refusal"),
        },
        Some("NOPIN") => BusError::NothingPinned,
        _ => bad("publish reply"),
    }
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

    #[test]
    fn a_loaded_room_rebuilds_comments_and_history_frames_with_their_seqs() {
        let comment = r#"{"type":"comment","user":"u","name":"U","text":"hi","ts":1}"#;
        let lines: Vec<String> = [
            "3",
            "ep",
            "",
            "11",
            "4",
            "1",
            &format!("2|{comment}"),
            "0",
            "1",
            &format!("2|{comment}"),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let room = Id::new("r").unwrap();
        let (saved, epoch, counters) = parse_state(&room, &lines).unwrap();
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
        assert!(
            parse_state(&room, &lines[..4]).is_err(),
            "a short reply is an error"
        );
    }
}
