//! `livehub host watch`: prints the room's events on stdout, one line each, until interrupted,
//! and keeps doing so across hub restarts and dropped connections. When a connection ends it
//! says why on stderr ("hub closed the connection (1001 going away); reconnecting…"), reconnects
//! with backoff and `?since=` the last seq it printed, and says where it resumed ("resumed at
//! seq N"), so no event is missed or printed twice. It gives up only on a refusal retrying
//! cannot fix (a bad or expired token, a wrong room), printing the hub's `code: reason`.

use std::io::Write;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;

use super::CliError;
use super::connect::{self, HubUrl, Ws};
use super::lines::{Lines, escape_controls};
use crate::protocol::{Id, ServerMsg};

/// First wait before reconnecting; it doubles on each failed attempt up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(200);
/// Longest wait between reconnect attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(3);
/// After this long without a frame, watch pings the hub; after twice this long, it counts the
/// connection as lost (a hub whose machine vanished sends no close and no reset).
const SILENCE: Duration = Duration::from_secs(30);

/// Runs `livehub host watch` until stdout closes, or a refusal that retrying cannot fix.
pub async fn run(hub: &HubUrl, room: &Id, token: &str) -> Result<(), CliError> {
    let mut watch = Watch::default();
    let mut backoff = FIRST_BACKOFF;
    loop {
        let ended = match connect::open(hub, room, token, watch.last_seq).await {
            Ok(ws) => watch.follow(ws).await,
            Err(e) => Ended::Refused(e),
        };
        let retry_in = match ended {
            Ended::StdoutClosed => return Ok(()),
            Ended::Closed { frame, welcomed } => {
                let line = format!(
                    "hub closed the connection ({}); reconnecting…",
                    connect::close_words(frame.as_ref())
                );
                watch.ended(line, welcomed, &mut backoff)
            }
            Ended::Lost { reason, welcomed } => {
                let line = format!("lost the connection to the hub ({reason}); reconnecting…");
                watch.ended(line, welcomed, &mut backoff)
            }
            Ended::NotLive { retry_ms } => {
                watch.say_once("the show has not started; waiting for its host to open the room…");
                Duration::from_millis(retry_ms.clamp(200, 10_000))
            }
            Ended::Refused(e) if retryable(&e) => {
                watch.say_once(&format!("{e}; retrying…"));
                backoff
            }
            Ended::Refused(e) => return Err(e),
        };
        tokio::time::sleep(retry_in).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// Refusals worth retrying: an unreachable hub, one that is busy or failing
/// (`unavailable`, `internal`, `rate_limited`, a proxy's 5xx). Not a bad token or room.
fn retryable(e: &CliError) -> bool {
    match e {
        CliError::Unreachable { .. } => true,
        CliError::Refused { code, .. } => {
            matches!(code.as_str(), "unavailable" | "internal" | "rate_limited")
                || code.starts_with("HTTP 5")
                || code.starts_with("HTTP 429")
        }
        _ => false,
    }
}

/// How one connection ended.
enum Ended {
    /// The hub sent a close frame (or none).
    Closed {
        frame: Option<CloseFrame>,
        welcomed: bool,
    },
    /// The connection broke, or went silent.
    Lost { reason: String, welcomed: bool },
    /// The room is not open yet: try again in `retry_ms`.
    NotLive { retry_ms: u64 },
    /// The connection was refused, or the hub answered it with an `error` before `welcome`.
    Refused(CliError),
    /// Whoever read our output has gone (`watch | head`): stop quietly.
    StdoutClosed,
}

/// What watch knows across connections.
#[derive(Default)]
struct Watch {
    /// The room's last durable seq printed (or the first welcome's), for `?since=`.
    last_seq: Option<u64>,
    /// The last note printed on stderr while retrying, so a repeated failure is said once.
    said: Option<String>,
    /// What the lines need from earlier messages (live auctions' currencies).
    lines: Lines,
}

impl Watch {
    /// Reads one connection until it ends, printing its events.
    async fn follow(&mut self, mut ws: Ws) -> Ended {
        let mut welcomed = false;
        let mut pinged = false;
        loop {
            let frame = match tokio::time::timeout(SILENCE, ws.next()).await {
                Err(_) if pinged => {
                    return Ended::Lost {
                        reason: format!("no answer for {} s", 2 * SILENCE.as_secs()),
                        welcomed,
                    };
                }
                Err(_) => {
                    pinged = true;
                    let _ = ws.send(Message::Ping(Vec::new().into())).await;
                    continue;
                }
                Ok(None) => {
                    return Ended::Closed {
                        frame: None,
                        welcomed,
                    };
                }
                Ok(Some(Err(e))) => {
                    return Ended::Lost {
                        reason: connect::lost_reason(&e),
                        welcomed,
                    };
                }
                Ok(Some(Ok(frame))) => frame,
            };
            pinged = false;
            let text = match frame {
                Message::Text(text) => text,
                Message::Close(frame) => return Ended::Closed { frame, welcomed },
                _ => continue,
            };
            let line = match serde_json::from_str::<ServerMsg>(text.as_str()) {
                Err(_) => escape_controls(text.as_str()).into_owned(),
                Ok(msg) => {
                    self.lines.observe(&msg);
                    match (&msg, welcomed) {
                        (ServerMsg::Welcome { seq, resumed, .. }, false) => {
                            welcomed = true;
                            self.said = None;
                            if !self.welcomed(*seq, *resumed) {
                                continue;
                            }
                            self.describe(&msg)
                        }
                        (ServerMsg::NotLive { retry_ms, .. }, false) => {
                            return Ended::NotLive {
                                retry_ms: *retry_ms,
                            };
                        }
                        (ServerMsg::Error { code, message, .. }, false) => {
                            return Ended::Refused(CliError::refused(code.as_str(), message));
                        }
                        _ => match msg.seq() {
                            // A resumed connection replays only what follows `since`; never print
                            // an event twice.
                            Some(seq) if self.last_seq.is_some_and(|last| seq <= last) => continue,
                            Some(seq) => {
                                self.last_seq = Some(seq);
                                self.describe(&msg)
                            }
                            None => self.describe(&msg),
                        },
                    }
                }
            };
            if !print(&line) {
                return Ended::StdoutClosed;
            }
        }
    }

    /// The line for `msg`, now.
    fn describe(&self, msg: &ServerMsg) -> String {
        self.lines.describe(msg, crate::clock::now_ms())
    }

    /// Takes a connection's `welcome` at room `seq`; true when its line is to be printed (the
    /// first connection, or one that could not resume: a fresh start), false on a resume.
    fn welcomed(&mut self, seq: u64, resumed: bool) -> bool {
        let Some(since) = self.last_seq else {
            self.last_seq = Some(seq);
            return true;
        };
        if resumed {
            if seq > since {
                note(&format!(
                    "resumed at seq {since}; the events up to seq {seq} follow"
                ));
            } else {
                note(&format!("resumed at seq {since}"));
            }
            return false;
        }
        note(&format!(
            "could not resume after seq {since}: the hub no longer has those events; \
             starting again from the room as it is now (seq {seq})"
        ));
        self.last_seq = Some(seq);
        true
    }

    /// Notes a connection that ended with `line`; returns how long to wait before the next. One
    /// that had its welcome starts the backoff afresh; one refused again and again at once is
    /// said once, not at every attempt.
    fn ended(&mut self, line: String, welcomed: bool, backoff: &mut Duration) -> Duration {
        if welcomed {
            *backoff = FIRST_BACKOFF;
            self.say(line);
        } else {
            self.say_once(&line);
        }
        *backoff
    }

    /// Says `line` on stderr.
    fn say(&mut self, line: String) {
        note(&line);
        self.said = Some(line);
    }

    /// Says `line` on stderr unless it was the last thing said.
    fn say_once(&mut self, line: &str) {
        if self.said.as_deref() != Some(line) {
            self.say(line.to_owned());
        }
    }
}

/// A note about the connection, on stderr (stdout carries only the room's events).
fn note(line: &str) {
    eprintln!("{line}");
}

/// Prints one event line on stdout; false when stdout is closed.
fn print(line: &str) -> bool {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}").and_then(|_| out.flush()).is_ok()
}
