//! Traces: every client action of a run as JSON lines, `{"t_ms","room","client","action"}`,
//! written with `--record FILE` and played back with `replay FILE [--speed X]`.
//!
//! `client` is `v<N>` for viewer N or `h-<room>` for a room's host; `action` is one of
//! `connect` (with the viewer's [`Attribution`], when it has one), `leave`, `rejoin` (reconnect with `?since=` the last seq), `comment`, `like`,
//! `reserve`, `checkout`/`cancel` (whose `of` names the `request_id` of the reserve whose hold
//! they act on, resolved when played), `host` (a host command as sent on the wire) and `bid`
//! (an auction bid with its amounts as sent).
//!
//! A scenario's `[auction]` plans `bidder`, `snipe` and `late_bid`: a viewer's way of bidding,
//! whose bids depend on what the viewer sees (module `auction`). They are not recorded; each
//! `bid` they send is, so a recorded run replays the bids as they were sent.

use std::io::{BufRead, Write};

use serde::{Deserialize, Serialize};

/// One client action.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Action {
    /// The client's first connection; a `rejoin` reuses its attribution.
    Connect(Attribution),
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
    /// A host command, built from the protocol's own types (its `request_id` is left out: the
    /// player numbers each command it sends).
    Host {
        command: livehub::protocol::ClientMsg,
    },
    /// An auction bid as sent: `max_cents` the most the hub may bid for the viewer.
    Bid {
        request_id: String,
        auction: String,
        amount_cents: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max_cents: Option<u64>,
    },
    /// From now on the viewer bids on `auction` whenever it is outbid, `think_ms` after it sees
    /// so, each bid at the least amount accepted and allowing `raise` of what is left of its
    /// budget above it, until the least amount is above `budget_cents` or the auction closes.
    Bidder {
        auction: String,
        budget_cents: u64,
        raise: f64,
        think_ms: u64,
    },
    /// The viewer bids on `auction` once, up to `budget_cents`: `lead_ms` before the end it
    /// sees when the last `window_ms` before the end opens.
    Snipe {
        auction: String,
        budget_cents: u64,
        lead_ms: u64,
        window_ms: u64,
    },
    /// The viewer bids on `auction` once, as soon as it sees the close: the hub must refuse it.
    LateBid {
        auction: String,
    },
}

/// Where a viewer came from, for the show funnel: how its token and URL are made on every
/// connection. The default (no channel, no affiliate) is a plain viewer, whom the hub counts as
/// `direct`; its `connect` line is `{"type":"connect"}` as before attribution existed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Attribution {
    /// The channel's wire name (`paid`, `short_video`, …); none: `direct`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    /// The affiliate creator who sent the viewer (a protocol id).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aff: Option<String>,
    /// Send the channel as `?src=` (and the affiliate as `?aff=`) instead of as signed claims:
    /// the hub counts the channel for analytics only, and pays no commission on a query
    /// parameter, so such a viewer's affiliate must earn nothing.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub via_query: bool,
}

impl Attribution {
    /// The `src` and `aff` claims the viewer's token carries.
    pub fn claims(&self) -> (Option<String>, Option<String>) {
        if self.via_query {
            (None, None)
        } else {
            (self.channel.clone(), self.aff.clone())
        }
    }

    /// What goes after the token in the WebSocket URL (`&src=…&aff=…`), empty for claims.
    pub fn query(&self) -> String {
        let mut q = String::new();
        if self.via_query {
            if let Some(c) = &self.channel {
                q.push_str(&format!("&src={c}"));
            }
            if let Some(a) = &self.aff {
                q.push_str(&format!("&aff={a}"));
            }
        }
        q
    }

    /// The channel the hub must count the viewer in (claim or query alike).
    pub fn counted_channel(&self) -> livehub::commerce::Channel {
        livehub::commerce::Channel::parse(self.channel.as_deref().unwrap_or("direct"))
    }

    /// The affiliate who earns on the viewer's orders: only a signed claim does.
    pub fn earning_aff(&self) -> Option<&str> {
        if self.via_query {
            None
        } else {
            self.aff.as_deref()
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_connect_is_the_same_line_as_before_attribution_existed() {
        let plain = Action::Connect(Attribution::default());
        assert_eq!(
            serde_json::to_string(&plain).unwrap(),
            r#"{"type":"connect"}"#
        );
        let back: Action = serde_json::from_str(r#"{"type":"connect"}"#).unwrap();
        assert_eq!(back, plain);
        let paid = Action::Connect(Attribution {
            channel: Some("paid".into()),
            aff: Some("bo".into()),
            via_query: true,
        });
        let line = serde_json::to_string(&paid).unwrap();
        assert_eq!(
            line,
            r#"{"type":"connect","channel":"paid","aff":"bo","via_query":true}"#
        );
        assert_eq!(serde_json::from_str::<Action>(&line).unwrap(), paid);
    }

    #[test]
    fn a_bid_is_recorded_with_its_amounts_and_reads_back() {
        let bid = Action::Bid {
            request_id: "b3".into(),
            auction: "lot1".into(),
            amount_cents: 1_200,
            max_cents: Some(5_000),
        };
        let line = serde_json::to_string(&bid).unwrap();
        assert_eq!(
            line,
            r#"{"type":"bid","request_id":"b3","auction":"lot1","amount_cents":1200,"max_cents":5000}"#
        );
        assert_eq!(serde_json::from_str::<Action>(&line).unwrap(), bid);
        let plain = r#"{"type":"bid","request_id":"b4","auction":"lot1","amount_cents":1300}"#;
        assert!(matches!(
            serde_json::from_str::<Action>(plain).unwrap(),
            Action::Bid {
                max_cents: None,
                ..
            }
        ));
    }

    #[test]
    fn a_query_attributed_viewer_carries_no_claims_and_its_affiliate_earns_nothing() {
        let mut a = Attribution {
            channel: Some("paid".into()),
            aff: Some("bo".into()),
            via_query: true,
        };
        assert_eq!(a.claims(), (None, None));
        assert_eq!(a.query(), "&src=paid&aff=bo");
        assert_eq!(a.counted_channel(), livehub::commerce::Channel::Paid);
        assert_eq!(a.earning_aff(), None);
        a.via_query = false;
        assert_eq!(a.claims(), (Some("paid".into()), Some("bo".into())));
        assert_eq!(a.query(), "");
        assert_eq!(a.earning_aff(), Some("bo"));
        assert_eq!(
            Attribution::default().counted_channel(),
            livehub::commerce::Channel::Direct
        );
    }
}
