//! Reading the order feed on Redis: [`FEED_PARTITIONS`] streams (`{PREFIX:pNN}:feed`), each
//! appended by the deal scripts of the rooms in that partition in the step that changes an
//! order, so each order's events are in one partition, in the order they happened.
//!
//! A cursor is where a reader stands in every partition: `r` then, for each partition read
//! from, `P.MS-SEQ` (its last stream id read), joined by `_`; `r` alone is the start. A page
//! reads up to `limit + 1` entries after the cursor from each partition, merges them by stream
//! id and keeps the first `limit`, so no event is skipped or given twice, whichever partitions
//! they are in.

use std::fmt::Write as _;

use super::keys::{FEED_PARTITIONS, Keys};
use super::reply::parse_feed_entry;
use crate::inventory::InventoryError;
use crate::orders::{OrderEvent, OrdersPage};
use crate::redis_io::RedisIo;

/// A stream entry id `MS-SEQ`.
type EntryId = (u64, u64);

/// Where a reader stands in each partition (None: before its first entry).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Cursor {
    at: [Option<EntryId>; FEED_PARTITIONS as usize],
}

fn parse_id(s: &str) -> Option<EntryId> {
    let (ms, seq) = s.split_once('-')?;
    Some((ms.parse().ok()?, seq.parse().ok()?))
}

impl Cursor {
    /// Reads a cursor this backend wrote; anything else is `Invalid`, with the reason.
    pub fn parse(s: &str) -> Result<Cursor, InventoryError> {
        let bad = |why: &str| {
            InventoryError::Invalid(format!(
                "cursor {s:?} is not one this hub gave out ({why}; Redis cursors look like \
                 r or r3.1700000000000-0_7.1700000000001-2)"
            ))
        };
        let rest = s.strip_prefix('r').ok_or_else(|| bad("it does not start with r"))?;
        let mut c = Cursor::default();
        if rest.is_empty() {
            return Ok(c);
        }
        for part in rest.split('_') {
            let (p, id) = part.split_once('.').ok_or_else(|| bad("a part has no ."))?;
            let p: usize = p.parse().map_err(|_| bad("a partition is not a number"))?;
            let slot = c.at.get_mut(p).ok_or_else(|| bad("a partition is out of range"))?;
            if slot.is_some() {
                return Err(bad("a partition is named twice"));
            }
            *slot = Some(parse_id(id).ok_or_else(|| bad("an entry id is not MS-SEQ"))?);
        }
        Ok(c)
    }

    /// The cursor as a string (see the module doc).
    pub fn format(&self) -> String {
        let mut s = String::from("r");
        let mut first = true;
        for (p, at) in self.at.iter().enumerate() {
            if let Some((ms, seq)) = at {
                if !first {
                    s.push('_');
                }
                first = false;
                let _ = write!(s, "{p}.{ms}-{seq}");
            }
        }
        s
    }

    /// The XRANGE start after which partition `p` is read.
    fn start(&self, p: usize) -> String {
        match self.at[p] {
            Some((ms, seq)) => format!("({ms}-{seq}"),
            None => "-".to_owned(),
        }
    }
}

/// One partition's entries after the cursor: (id, field-value pairs).
type Entries = Vec<(String, Vec<String>)>;

/// Merges what each partition returned: the first `limit` events by stream id, the cursor
/// after them, and whether more were there.
fn merge(
    mut cursor: Cursor,
    read: Vec<(u32, Entries)>,
    limit: usize,
) -> Result<OrdersPage, InventoryError> {
    let mut all: Vec<(EntryId, u32, String, Vec<String>)> = Vec::new();
    for (p, entries) in read {
        for (id, fields) in entries {
            let at = parse_id(&id).ok_or_else(|| {
                InventoryError::Internal(format!("feed partition {p}: entry id {id:?}"))
            })?;
            all.push((at, p, id, fields));
        }
    }
    all.sort_by_key(|(at, p, _, _)| (*at, *p));
    let more = all.len() > limit;
    let mut events: Vec<OrderEvent> = Vec::with_capacity(limit.min(all.len()));
    for (at, p, id, fields) in all.into_iter().take(limit) {
        events.push(parse_feed_entry(p, &id, &fields)?);
        cursor.at[p as usize] = Some(at);
    }
    Ok(OrdersPage {
        events,
        cursor: cursor.format(),
        more,
    })
}

/// Up to `limit` events after `cursor` (None: from the oldest kept), read from every
/// partition (one command each, sent together: on a cluster they are on different slots).
pub async fn page(
    redis: &RedisIo,
    keys: &Keys,
    cursor: Option<&str>,
    limit: usize,
) -> Result<OrdersPage, InventoryError> {
    let cursor = match cursor {
        Some(c) => Cursor::parse(c)?,
        None => Cursor::default(),
    };
    let reads: Vec<(u32, String, String)> = (0..FEED_PARTITIONS)
        .map(|p| (p, keys.feed(p), cursor.start(p as usize)))
        .collect();
    let count = limit.saturating_add(1);
    let read: Vec<(u32, Entries)> = redis
        .exec(move |conn| async move {
            // All at once: one connection carries them together (one write, one round trip on
            // a single server), each routed to its own slot on a cluster.
            let reads = reads.into_iter().map(|(p, key, start)| {
                let mut conn = conn.clone();
                async move {
                    let entries: Entries = redis::cmd("XRANGE")
                        .arg(key)
                        .arg(start)
                        .arg("+")
                        .arg("COUNT")
                        .arg(count)
                        .query_async(&mut conn)
                        .await?;
                    Ok::<_, redis::RedisError>((p, entries))
                }
            });
            futures_util::future::try_join_all(reads).await
        })
        .await?;
    merge(cursor, read, limit)
}

/// The cursor after the last entry of every partition now.
pub async fn end(redis: &RedisIo, keys: &Keys) -> Result<String, InventoryError> {
    let feeds: Vec<String> = (0..FEED_PARTITIONS).map(|p| keys.feed(p)).collect();
    let last: Vec<Entries> = redis
        .exec(move |mut conn| async move {
            let mut out = Vec::with_capacity(feeds.len());
            for key in feeds {
                let entries: Entries = redis::cmd("XREVRANGE")
                    .arg(key)
                    .arg("+")
                    .arg("-")
                    .arg("COUNT")
                    .arg(1)
                    .query_async(&mut conn)
                    .await?;
                out.push(entries);
            }
            Ok(out)
        })
        .await?;
    let mut cursor = Cursor::default();
    for (p, entries) in last.into_iter().enumerate() {
        if let Some((id, _)) = entries.first() {
            cursor.at[p] = Some(parse_id(id).ok_or_else(|| {
                InventoryError::Internal(format!("feed partition {p}: entry id {id:?}"))
            })?);
        }
    }
    Ok(cursor.format())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: &str, order: &str, kind: &str) -> (String, Vec<String>) {
        let mut f: Vec<String> = vec!["type".into(), kind.into(), "ts".into(), "5".into()];
        for (k, v) in [
            ("id", order),
            ("room", "r"),
            ("deal", "d"),
            ("product_id", "p"),
            ("title", "P"),
            ("user", "u"),
            ("qty", "1"),
            ("price_cents", "100"),
            ("total_cents", "100"),
            ("currency", "USD"),
            ("status", if kind == "created" { "pending" } else { kind }),
            ("pay_by", "99"),
            ("creator", "h"),
            ("channel", "live"),
            ("aff", ""),
            ("commission_cents", "0"),
            ("affiliate_cents", "0"),
        ] {
            f.push(k.into());
            f.push(v.into());
        }
        (id.into(), f)
    }

    #[test]
    fn a_cursor_reads_back_and_bad_ones_say_why() {
        let mut c = Cursor::default();
        assert_eq!(c.format(), "r");
        c.at[3] = Some((1700, 0));
        c.at[12] = Some((1701, 4));
        let s = c.format();
        assert_eq!(s, "r3.1700-0_12.1701-4");
        assert_eq!(Cursor::parse(&s).unwrap(), c);
        assert_eq!(Cursor::parse("r").unwrap(), Cursor::default());
        for bad in ["", "m4", "r3", "r99.1-0", "r3.1-0_3.2-0", "r3.x-0", "r3.1"] {
            assert!(
                matches!(Cursor::parse(bad), Err(InventoryError::Invalid(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn pages_merge_partitions_by_entry_id_and_skip_nothing() {
        let read = vec![
            (1, vec![entry("10-0", "o1", "created"), entry("30-0", "o1", "paid")]),
            (2, vec![entry("20-0", "o2", "created"), entry("40-0", "o2", "failed")]),
        ];
        let page = merge(Cursor::default(), read.clone(), 3).unwrap();
        let ids: Vec<&str> = page.events.iter().map(|e| e.id.as_str()).collect();
        assert_eq!(ids, ["p1-10-0", "p2-20-0", "p1-30-0"]);
        assert!(page.more);
        assert_eq!(page.cursor, "r1.30-0_2.20-0");
        assert_eq!(page.events[2].order.status.as_str(), "paid");
        let all = merge(Cursor::default(), read, 10).unwrap();
        assert_eq!((all.events.len(), all.more), (4, false));
        let none = merge(Cursor::parse("r1.30-0").unwrap(), vec![], 10).unwrap();
        assert_eq!((none.events.len(), none.cursor.as_str()), (0, "r1.30-0"));
    }
}
