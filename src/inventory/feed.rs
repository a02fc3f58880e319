//! The memory backend's order feed: an append-only log of [`OrderEvent`]s, written under the
//! lock of the deal whose order changed (so each order's events are in the order they
//! happened), and, when the hub has a state file, appended to `STATE_FILE.orders.jsonl` one
//! JSON line per event, so a consumer's cursor survives a restart.
//!
//! Event ids and cursors are positions in the log: event `mN` is the N-th ever appended and the
//! cursor `mN` means "after the first N". Events older than the retention are dropped when the
//! file is read back; a cursor before the oldest kept event reads from it.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use parking_lot::Mutex;

use super::InventoryError;
use crate::orders::{OrderDoc, OrderEvent, OrderEventKind, OrdersPage};

/// The feed file beside `state_file`.
pub fn feed_path(state_file: &Path) -> PathBuf {
    let mut name = state_file.as_os_str().to_owned();
    name.push(".orders.jsonl");
    PathBuf::from(name)
}

/// The memory backend's order feed (see the module doc).
pub struct OrderLog {
    inner: Mutex<Log>,
}

struct Log {
    /// The absolute position of `events[0]`.
    base: u64,
    events: Vec<OrderEvent>,
    file: Option<File>,
}

impl OrderLog {
    /// A feed that lives as long as the process.
    pub fn in_memory() -> Self {
        OrderLog {
            inner: Mutex::new(Log {
                base: 0,
                events: Vec::new(),
                file: None,
            }),
        }
    }

    /// The feed kept in `path`: its events from `keep_after` (Unix ms) on are read back, and
    /// every new one is appended. A line that does not parse (a crash mid-write) ends the
    /// reading there and is cut off, so the next append starts on a clean line.
    pub fn open(path: &Path, keep_after: u64) -> Result<Self, InventoryError> {
        let io = |e: std::io::Error| {
            InventoryError::Invalid(format!("order feed {}: {e}", path.display()))
        };
        let mut all = Vec::new();
        let mut good_len = 0u64;
        if path.exists() {
            for line in BufReader::new(File::open(path).map_err(io)?).lines() {
                let line = line.map_err(io)?;
                let Ok(ev) = serde_json::from_str::<OrderEvent>(&line) else {
                    break;
                };
                good_len += line.len() as u64 + 1;
                all.push(ev);
            }
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(io)?;
        file.set_len(good_len).map_err(io)?;
        let total = all.len() as u64;
        let events: Vec<OrderEvent> = all.into_iter().filter(|e| e.ts >= keep_after).collect();
        Ok(OrderLog {
            inner: Mutex::new(Log {
                base: total - events.len() as u64,
                events,
                file: Some(file),
            }),
        })
    }

    /// Appends the event `kind` of `order` at `ts` and returns it. A failed file write is
    /// logged (the event stays readable in this process).
    pub fn append(&self, kind: OrderEventKind, ts: u64, order: OrderDoc) -> OrderEvent {
        let mut log = self.inner.lock();
        let n = log.base + log.events.len() as u64;
        let ev = OrderEvent {
            id: format!("m{n}"),
            kind,
            ts,
            order,
        };
        if let Some(file) = log.file.as_mut() {
            let written = serde_json::to_string(&ev)
                .map_err(std::io::Error::other)
                .and_then(|mut line| {
                    line.push('\n');
                    file.write_all(line.as_bytes())
                });
            if let Err(e) = written {
                tracing::error!(error = %e, event = %ev.id, "order event not written to the feed file");
            }
        }
        log.events.push(ev.clone());
        ev
    }

    /// The cursor after the last event appended so far.
    pub fn end(&self) -> String {
        let log = self.inner.lock();
        format!("m{}", log.base + log.events.len() as u64)
    }

    /// At most `limit` events after `cursor` (see the module doc for its form).
    pub fn page(&self, cursor: Option<&str>, limit: usize) -> Result<OrdersPage, InventoryError> {
        let after = match cursor {
            None => 0,
            Some(c) => parse_cursor(c)?,
        };
        let log = self.inner.lock();
        let end = log.base + log.events.len() as u64;
        let from = after.clamp(log.base, end);
        let start = usize::try_from(from - log.base).unwrap_or(usize::MAX);
        let events: Vec<OrderEvent> = log.events.iter().skip(start).take(limit).cloned().collect();
        let next = from + events.len() as u64;
        Ok(OrdersPage {
            more: next < end,
            cursor: format!("m{next}"),
            events,
        })
    }
}

fn parse_cursor(c: &str) -> Result<u64, InventoryError> {
    c.strip_prefix('m')
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| {
            InventoryError::Invalid(format!(
                "cursor {c:?} is not one this hub gave out (the memory backend's look like m42)"
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commerce::Channel;
    use crate::id::Id;
    use crate::orders::OrderStatus;

    fn doc(id: &str) -> OrderDoc {
        let i = |s: &str| Id::new(s).unwrap();
        OrderDoc {
            id: i(id),
            room: i("r"),
            deal: i("d"),
            product_id: i("p"),
            title: "P".into(),
            user: i("u"),
            qty: 1,
            price_cents: 100,
            total_cents: 100,
            currency: "USD".into(),
            status: OrderStatus::Paid,
            pay_by: None,
            creator: i("h"),
            channel: Channel::Direct,
            aff: None,
            commission_cents: 0,
            affiliate_cents: 0,
        }
    }

    fn ids(p: &OrdersPage) -> Vec<&str> {
        p.events.iter().map(|e| e.id.as_str()).collect()
    }

    #[test]
    fn pages_follow_the_cursor_and_say_when_more_is_there() {
        let log = OrderLog::in_memory();
        for i in 0..5 {
            log.append(OrderEventKind::Created, 10 + i, doc(&format!("o{i}")));
        }
        let p = log.page(None, 2).unwrap();
        assert_eq!((ids(&p), p.more, p.cursor.as_str()), (vec!["m0", "m1"], true, "m2"));
        let p = log.page(Some(&p.cursor), 10).unwrap();
        assert_eq!((ids(&p), p.more, p.cursor.as_str()), (vec!["m2", "m3", "m4"], false, "m5"));
        let p = log.page(Some("m5"), 10).unwrap();
        assert_eq!((p.events.len(), p.cursor.as_str()), (0, "m5"));
        assert!(matches!(log.page(Some("x9"), 1), Err(InventoryError::Invalid(_))));
        assert!(matches!(log.page(Some("m"), 1), Err(InventoryError::Invalid(_))));
    }

    #[test]
    fn the_file_keeps_the_feed_across_a_restart_and_cuts_a_torn_last_line() {
        let dir = std::env::temp_dir().join(format!("livehub-feed-{}", rand::random::<u64>()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = feed_path(&dir.join("state.json"));
        {
            let log = OrderLog::open(&path, 0).unwrap();
            log.append(OrderEventKind::Created, 1, doc("o1"));
            log.append(OrderEventKind::Created, 2, doc("o2"));
        }
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"{\"id\":\"m2\",\"ty").unwrap();
        drop(f);
        let log = OrderLog::open(&path, 0).unwrap();
        let next = log.append(OrderEventKind::Paid, 3, doc("o1"));
        assert_eq!(next.id, "m2", "ids go on after the kept ones");
        let again = OrderLog::open(&path, 2).unwrap();
        let p = again.page(None, 10).unwrap();
        assert_eq!(ids(&p), vec!["m1", "m2"], "older than keep_after dropped");
        assert_eq!(again.page(Some("m0"), 10).unwrap().events.len(), 2);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
