//! Traces: every client action of a run as JSON lines, `{"t_ms","room","client","action"}`,
//! written with `--record FILE` and played back with `replay FILE [--speed X]`.
//!
//! `client` is `v<N>` for viewer N or `h-<room>` for a room's host; `action` is one of
//! `connect`, `leave`, `rejoin` (reconnect with `?since=` the last seq), `comment`, `like`,
//! `reserve`, `checkout`/`cancel` (whose `of` names the `request_id` of the reserve whose hold
//! they act on, resolved when played), and `host` (a host command as sent on the wire).

use std::io::{BufRead, Write};

use serde::{Deserialize, Serialize};

/// One client action.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Action {
    Connect,
    Leave,
    Rejoin,
    Comment {
        text: String,
    },
    Like {
        count: u32,
    },
    Reserve {
        request_id: String,
        deal: String,
        qty: u32,
    },
    Checkout {
        request_id: String,
        of: String,
    },
    Cancel {
        request_id: String,
        of: String,
    },
    Host {
        command: serde_json::Value,
    },
}

/// One line of a trace.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Milliseconds from the start of the run.
    pub t_ms: u64,
    pub room: String,
    pub client: String,
    pub action: Action,
}

impl Event {
    /// An event.
    pub fn new(t_ms: u64, room: &str, client: &str, action: Action) -> Self {
        Event {
            t_ms,
            room: room.to_owned(),
            client: client.to_owned(),
            action,
        }
    }
}

/// Reads a trace file (sorted by time, stable).
pub fn read(path: &std::path::Path) -> anyhow::Result<Vec<Event>> {
    let f =
        std::fs::File::open(path).map_err(|e| anyhow::anyhow!("trace {}: {e}", path.display()))?;
    let mut events = Vec::new();
    for (n, line) in std::io::BufReader::new(f).lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        events.push(
            serde_json::from_str(&line)
                .map_err(|e| anyhow::anyhow!("trace line {}: {e}", n + 1))?,
        );
    }
    events.sort_by_key(|e: &Event| e.t_ms);
    Ok(events)
}

/// Writes actions as they are played.
pub struct Recorder {
    out: std::sync::Mutex<std::io::BufWriter<std::fs::File>>,
}

impl Recorder {
    /// Creates (truncates) `path`.
    pub fn create(path: &std::path::Path) -> anyhow::Result<Self> {
        Ok(Recorder {
            out: std::sync::Mutex::new(std::io::BufWriter::new(std::fs::File::create(path)?)),
        })
    }

    /// Appends one action.
    pub fn record(&self, e: &Event) {
        if let (Ok(line), Ok(mut out)) = (serde_json::to_string(e), self.out.lock()) {
            let _ = writeln!(out, "{line}");
        }
    }

    /// Flushes to disk.
    pub fn flush(&self) {
        if let Ok(mut out) = self.out.lock() {
            let _ = out.flush();
        }
    }
}
