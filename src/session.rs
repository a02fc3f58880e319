//! One WebSocket connection: a reader that parses and runs commands, and a writer task that owns
//! the socket's sink and drains the connection's bounded queue, feeding many frames and flushing
//! once per batch. Either side ending closes the other; the close code comes from [`ConnCtl`].

use std::pin::pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};

use tokio_tungstenite::tungstenite;
use tungstenite::protocol::frames_read_on_this_thread;

use crate::auth::Identity;
use crate::command::{Outcome, execute};
use crate::error::HubError;
use crate::frame::{close, is_policy_error};
use crate::hub::Hub;
use crate::metrics as m;
use crate::outbox::{ConnCtl, Outbox, OutboxRx, Take, Thinning, Waited};
use crate::protocol::{Id, Role, ServerMsg, You, error_msg, parse_client};
use crate::rate::TokenBucket;
use crate::room::Room;

/// How long a viewer of a room that is not live yet is told to wait before trying again.
pub const NOT_LIVE_RETRY_MS: u64 = 5_000;

/// Runs a connection to its end. `since` asks to resume after that `seq`.
pub async fn run(socket: WebSocket, hub: Arc<Hub>, room_id: Id, who: Identity, since: Option<u64>) {
    let cfg = hub.config().session.clone();
    let ctl = Arc::new(ConnCtl::new(
        hub.next_conn_id(),
        hub.shutdown_token().child_token(),
    ));
    let thin = Thinning {
        after: cfg.thin_chat_after,
        wait: Duration::from_millis(cfg.thin_chat_wait_ms),
    };
    let (outbox, rx) = Outbox::new(cfg.queue_capacity, thin, Arc::clone(&ctl));
    let you = You {
        user: who.user.clone(),
        name: who.name.clone(),
        role: who.role,
    };
    let (sink, stream) = socket.split();
    // Only the room's host (or an admin) opens a room; a viewer of a room nobody opened is told
    // the show has not started, and nothing is allocated for it.
    let create = who.check_host(&room_id).is_ok();
    let joined = hub.join(&room_id, outbox.clone(), you, who.channel, since, create);
    let (room, initial) = match joined.await {
        Ok(joined) => joined,
        Err(e) => return refuse_join(sink, &room_id, e).await,
    };
    metrics::gauge!(m::CONNECTIONS).increment(1.0);
    metrics::counter!(m::CONNECTIONS_TOTAL).increment(1);
    tracing::debug!(room = %room_id, user = %who.user, conn = ctl.id, "connected");

    let writer = Writer {
        rx,
        ctl: Arc::clone(&ctl),
        batch: cfg.write_batch,
        min_flush: Duration::from_millis(cfg.min_flush_interval_ms),
        max_flush: Duration::from_millis(cfg.max_flush_interval_ms),
        ping_every: Duration::from_millis(cfg.ping_interval_ms),
        close_grace: Duration::from_millis(cfg.close_grace_ms),
    };
    let sink: SharedSink = Arc::new(tokio::sync::Mutex::new(sink));
    let writer = hub.tracker().spawn(writer.run(Arc::clone(&sink), initial));
    let joined = Arc::clone(&room);
    let mut reader = Reader::new(&hub, room, who, outbox, Arc::clone(&ctl), sink);
    let idle = Duration::from_millis(cfg.idle_timeout_ms);
    // The reader runs on the commands runtime: a buyer's reserve is read, sent to Redis and
    // answered without queueing behind the fan-out's writers on this one (issue 20).
    match hub.commands() {
        Some(commands) => {
            let reading = commands.spawn(async move { reader.run(stream, idle).await });
            if let Err(e) = reading.await {
                tracing::error!(conn = ctl.id, error = %e, "reader stopped");
            }
        }
        None => reader.run(stream, idle).await,
    }
    joined.leave(ctl.id);
    if !ctl.is_closing() {
        // The client went away (or the socket failed); shutdown and policy closes keep
        // their own code.
        ctl.close(close::NORMAL);
    }
    let _ = writer.await;
    metrics::gauge!(m::CONNECTIONS).decrement(1.0);
    tracing::debug!(room = %room_id, conn = ctl.id, code = ctl.close_code(), "disconnected");
}

/// Answers a connection that could not join `room`: `not_live` (try again in
/// [`NOT_LIVE_RETRY_MS`]) or the error, then a close with 1013.
async fn refuse_join(mut sink: Sink, room: &Id, e: HubError) {
    let answer = match e {
        HubError::NotLive => ServerMsg::NotLive {
            room: room.clone(),
            retry_ms: NOT_LIVE_RETRY_MS,
        },
        e => error_msg(&e, None),
    };
    if let Ok(json) = answer.to_json() {
        let _ = sink.send(Message::Text(json.into())).await;
    }
    let _ = sink
        .send(Message::Close(Some(CloseFrame {
            code: close::TRY_AGAIN_LATER,
            reason: "room unavailable".into(),
        })))
        .await;
}

/// The connection's writing side: owns the socket's writes and their pace. Everything it
/// writes is handed to it through its [`OutboxRx`] (the initial frames, replies, events and the
/// counter slots the room's ticker fills): it never reads the room, the hub or the bus.
struct Writer {
    rx: OutboxRx,
    ctl: Arc<ConnCtl>,
    batch: usize,
    min_flush: Duration,
    /// The longest the flush interval grows to while the connection has a backlog.
    max_flush: Duration,
    ping_every: Duration,
    close_grace: Duration,
}

type Sink = SplitSink<WebSocket, Message>;
/// The socket's sending half, shared by the writer (everything) and the reader (its own
/// replies, when the writer is not writing).
type SharedSink = Arc<tokio::sync::Mutex<Sink>>;

impl Writer {
    async fn run(mut self, sink: SharedSink, initial: Vec<Utf8Bytes>) {
        {
            let ctl = Arc::clone(&self.ctl);
            let pump = pin!(self.pump(&sink, initial));
            // The pump may be stuck writing to a viewer that stopped reading; a close request
            // must still get through, so race it.
            tokio::select! {
                result = pump => if let Err(e) = result {
                    tracing::debug!(conn = ctl.id, error = %e, "write failed");
                    ctl.close(close::NORMAL);
                },
                _ = ctl.closed() => {}
            }
        }
        let code = self.ctl.close_code();
        metrics::counter!(m::CLOSES, "code" => code.to_string()).increment(1);
        let reason = match code {
            close::GOING_AWAY => "hub shutting down; reconnect with ?since=",
            close::POLICY => "policy violation",
            close::TRY_AGAIN_LATER => "slow consumer; reconnect with ?since=",
            _ => "",
        };
        let frame = Message::Close(Some(CloseFrame {
            code,
            reason: reason.into(),
        }));
        let _ = tokio::time::timeout(self.close_grace, async {
            let mut sink = sink.lock().await;
            let _ = sink.send(frame).await;
            let _ = sink.close().await;
        })
        .await;
    }

    async fn pump(
        &mut self,
        sink: &SharedSink,
        initial: Vec<Utf8Bytes>,
    ) -> Result<(), axum::Error> {
        let mut counts = WriteCounts::default();
        counts.frames += initial.len() as u64;
        {
            let mut sink = sink.lock().await;
            for f in initial {
                sink.feed(Message::Text(f)).await?;
            }
            sink.flush().await?;
        }
        let mut ping = tokio::time::interval_at(
            tokio::time::Instant::now() + self.ping_every,
            self.ping_every,
        );
        // A close request is raced by `run`, around this whole pump.
        let mut take = Take::default();
        let mut last_flush = tokio::time::Instant::now();
        let mut pace = Pace::new(self.min_flush, self.max_flush, self.batch);
        let mut samples = WriteSamples::default();
        loop {
            tokio::select! {
                // The ping first: a writer that always has frames must still ping, or a
                // viewer that only listens would never answer and be dropped as idle.
                biased;
                _ = ping.tick() => sink.lock().await.send(Message::Ping(bytes::Bytes::new())).await?,
                _ = self.rx.recv(&mut take, pace.limit()) => {
                    // At most one flush per interval: sparse traffic goes out at once, a busy
                    // room's frames share one write (and one syscall) per viewer, and a
                    // connection with a backlog writes less often and fuller (the interval
                    // grows with it, like Centrifugo's client_write_delay).
                    // A reply or a new stock reading goes out at once, whatever the pace: it
                    // ends a pause too (the counter a flash deal's viewers watch rides with the
                    // room's tick, not the pace).
                    let since = last_flush.elapsed();
                    if since < pace.interval() && !take.is_urgent() {
                        tokio::select! {
                            biased;
                            _ = self.rx.urgent() => {}
                            _ = tokio::time::sleep(pace.interval() - since) => {}
                        }
                        self.rx.try_recv(&mut take, pace.limit());
                    }
                    samples.record(&take, &pace);
                    let n = take.len() as u64;
                    let mut sink = sink.lock().await;
                    for f in take.drain() {
                        sink.feed(Message::Text(f)).await?;
                    }
                    sink.flush().await?;
                    drop(sink);
                    last_flush = tokio::time::Instant::now();
                    pace.after_write(take.left);
                    take.waited = Waited::default();
                    counts.add(n);
                }
            }
        }
    }
}

/// A connection's write pace: the flush interval and the most events per write. It doubles
/// (up to `max`) after each write that left a backlog of a full batch or more, and halves (down
/// to `min`) after each write that did not: fewer, fuller writes cost less CPU per frame (a
/// write is one `send` per viewer, most of a saturated node's CPU), which is what a node behind
/// runs short of, and halving, not resetting, keeps a connection at the edge of its backlog from
/// swinging between the two. (Stretching on the runtime's lag alone was measured too: it added
/// latency at 10,000 viewers x 20/s without saving CPU, docs/benchmarks.md.)
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pace {
    min: Duration,
    max: Duration,
    batch: usize,
    interval: Duration,
}

impl Pace {
    /// The pace of a connection that has no backlog.
    pub fn new(min: Duration, max: Duration, batch: usize) -> Self {
        Pace {
            min,
            max: max.max(min),
            batch,
            interval: min,
        }
    }

    /// How long after a write the next one waits at least.
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// The most events one write takes: the batch, times the interval's growth.
    pub fn limit(&self) -> usize {
        let growth = match self.min.as_micros() {
            0 => 1,
            min => (self.interval.as_micros() / min).max(1) as usize,
        };
        self.batch.saturating_mul(growth)
    }

    /// After a write that left `backlog` events queued.
    pub fn after_write(&mut self, backlog: usize) {
        if backlog >= self.batch {
            self.interval = (self.interval.max(Duration::from_millis(1)) * 2).min(self.max);
        } else {
            self.interval = (self.interval / 2).max(self.min);
        }
    }
}

/// The write histograms, sampled: one write in [`m::WRITE_SAMPLE`] per connection (a histogram
/// observation per write per viewer would cost more than the write at 10,000 viewers).
#[derive(Default)]
struct WriteSamples {
    writes: u64,
}

impl WriteSamples {
    fn record(&mut self, take: &Take, pace: &Pace) {
        self.writes += 1;
        if self.writes % m::WRITE_SAMPLE != 1 {
            return;
        }
        let w = &take.waited;
        for (kind, waited) in [
            ("reply", w.reply),
            ("event", w.event),
            ("counter", w.counter),
        ] {
            if let Some(d) = waited {
                metrics::histogram!(m::WRITE_DELAY_SECONDS, "kind" => kind).record(d.as_secs_f64());
            }
        }
        metrics::histogram!(m::WRITE_BATCH_FRAMES).record(take.len() as f64);
        metrics::histogram!(m::WRITE_INTERVAL_SECONDS).record(pace.interval().as_secs_f64());
    }
}

/// Frames and flushes counted locally and added to the shared counters every so often (and
/// when the writer ends): two shared atomics per flush per viewer contend across workers.
#[derive(Default)]
struct WriteCounts {
    frames: u64,
    flushes: u64,
}

impl WriteCounts {
    fn add(&mut self, frames: u64) {
        self.frames += frames;
        self.flushes += 1;
        if self.flushes >= 64 {
            self.publish();
        }
    }

    fn publish(&mut self) {
        metrics::counter!(m::FRAMES_SENT).increment(std::mem::take(&mut self.frames));
        metrics::counter!(m::FLUSHES).increment(std::mem::take(&mut self.flushes));
    }
}

impl Drop for WriteCounts {
    fn drop(&mut self) {
        self.publish();
    }
}

/// The connection's reading side: parses frames, charges the frame rate and runs each
/// command through [`execute`], queueing its answer (and writing it when the socket is free).
struct Reader {
    hub: Arc<Hub>,
    room: Arc<Room>,
    who: Identity,
    outbox: Outbox,
    ctl: Arc<ConnCtl>,
    /// The socket's sending half, to write this connection's replies when the writer is not
    /// writing.
    sink: SharedSink,
    frames: TokenBucket,
    strikes: Vec<Instant>,
}

impl Reader {
    fn new(
        hub: &Arc<Hub>,
        room: Arc<Room>,
        who: Identity,
        outbox: Outbox,
        ctl: Arc<ConnCtl>,
        sink: SharedSink,
    ) -> Self {
        let l = &hub.config().limits;
        let (rate, burst) = match who.role {
            Role::Host | Role::Admin if !who.anonymous => {
                (l.host_frames_per_sec, l.host_frames_burst)
            }
            _ => (l.viewer_frames_per_sec, l.viewer_frames_burst),
        };
        Reader {
            hub: Arc::clone(hub),
            room,
            who,
            outbox,
            ctl,
            sink,
            frames: TokenBucket::new(rate, burst, Instant::now()),
            strikes: Vec::new(),
        }
    }

    async fn run(&mut self, mut stream: SplitStream<WebSocket>, idle: Duration) {
        // Frames tungstenite read for this connection since the last message it returned: the
        // message's own frames (a fragmented one has several, empty ones included), and any
        // frames of a message still unfinished.
        let mut frames = 0u64;
        loop {
            let next = tokio::select! {
                _ = self.ctl.closed() => return,
                next = tokio::time::timeout(idle, next_counted(&mut stream, &mut frames)) => next,
            };
            let msg = match next {
                Err(_) => {
                    tracing::debug!(conn = self.ctl.id, "idle timeout");
                    self.ctl.close(close::GOING_AWAY);
                    return;
                }
                Ok(None) => return,
                Ok(Some(Err(e))) => {
                    if is_too_large(e) {
                        self.ctl.close(close::POLICY);
                    }
                    return;
                }
                Ok(Some(Ok(msg))) => msg,
            };
            let frames = std::mem::take(&mut frames);
            match msg {
                Message::Text(text) => {
                    self.on_text(text.as_str(), frames).await;
                    self.write_replies().await;
                }
                Message::Binary(_) => {
                    self.ctl.close(close::POLICY);
                    return;
                }
                Message::Close(_) => return,
                Message::Ping(_) | Message::Pong(_) => self.on_control(frames),
            }
        }
    }

    /// Writes this connection's queued replies itself when the socket is free (the writer is not
    /// in a write): on a saturated node the answer then goes out from the commands runtime,
    /// without waiting for the writer's turn on the hub's. If the writer is writing, it takes
    /// them in its next write.
    async fn write_replies(&mut self) {
        let Ok(mut sink) = self.sink.try_lock() else {
            return;
        };
        let replies = self.outbox.take_replies();
        if replies.is_empty() {
            return;
        }
        let written = async {
            for f in replies {
                sink.feed(Message::Text(f)).await?;
            }
            sink.flush().await
        };
        // A viewer that stopped reading must not hold the reader (and the socket) for ever.
        tokio::select! {
            result = written => if let Err(e) = result {
                tracing::debug!(conn = self.ctl.id, error = %e, "reply not written");
                self.ctl.close(close::NORMAL);
            },
            _ = self.ctl.closed() => {}
        }
    }

    /// Takes a token of the frame rate for each of `frames` frames (at least one): every frame
    /// counts, a fragmented message's continuation frames, empty ones included, like any other.
    /// False when the connection is over its frame rate.
    fn take_frames(&mut self, frames: u64) -> bool {
        let now = Instant::now();
        let mut within = true;
        for _ in 0..frames.max(1) {
            within &= self.frames.try_take(now);
        }
        within
    }

    /// Sends the answer to one of this connection's requests: ahead of any queued event.
    fn send(&self, msg: &ServerMsg) {
        match msg.to_json() {
            Ok(json) => {
                self.outbox.push_reply(json.into());
            }
            Err(e) => tracing::error!(error = %e, "reply not encoded"),
        }
    }

    fn send_error(&mut self, err: &HubError, request_id: Option<Id>) {
        metrics::counter!(m::ERRORS, "code" => err.code().as_str()).increment(1);
        self.send(&error_msg(err, request_id));
        if matches!(err, HubError::RateLimited(_)) {
            self.strike();
        }
    }

    /// Counts a `rate_limited` answer; too many within the window closes the connection (1008).
    fn strike(&mut self) {
        let l = &self.hub.config().limits;
        let window = Duration::from_millis(l.flood_window_ms);
        let now = Instant::now();
        self.strikes.retain(|t| now.duration_since(*t) < window);
        self.strikes.push(now);
        if self.strikes.len() >= l.flood_strikes as usize {
            tracing::info!(conn = self.ctl.id, user = %self.who.user, "flooding; closing with 1008");
            self.ctl.close(close::POLICY);
        }
    }

    /// Pings and pongs count toward the frame rate like any frame. Over it nothing is sent back
    /// (an answer per ping would amplify a flood): it is a strike, and enough strikes close the
    /// connection with 1008.
    fn on_control(&mut self, frames: u64) {
        if !self.take_frames(frames) {
            metrics::counter!(m::ERRORS, "code" => "rate_limited").increment(1);
            self.strike();
        }
    }

    /// A text message read from `frames` frames.
    async fn on_text(&mut self, text: &str, frames: u64) {
        if !self.take_frames(frames) {
            let err = HubError::RateLimited("too many messages; slow down".into());
            self.send_error(&err, None);
            return;
        }
        let cmd = match parse_client(text) {
            Ok(cmd) => cmd,
            Err(e) => {
                self.send_error(&HubError::BadRequest(e.message), e.request_id);
                return;
            }
        };
        let request_id = cmd.request_id().cloned();
        match execute(&self.hub, &self.room, &self.who, cmd).await {
            Ok(Outcome::Reply(reply)) => self.send(&reply),
            Ok(Outcome::Applied(seq)) => {
                if let Some(request_id) = request_id {
                    self.send(&ServerMsg::Ack { request_id, seq });
                }
            }
            Err(e) => self.send_error(&e, request_id),
        }
    }
}

/// The next message of `stream`, adding to `frames` the frames tungstenite read for this
/// connection while polling for it. axum shows only whole messages, so the frames are counted
/// around each poll: tungstenite counts the frames it reads on the polling thread
/// (`frames_read_on_this_thread`), and one poll of one connection runs on one thread.
async fn next_counted(
    stream: &mut SplitStream<WebSocket>,
    frames: &mut u64,
) -> Option<Result<Message, axum::Error>> {
    std::future::poll_fn(|cx| {
        let before = frames_read_on_this_thread();
        let polled = stream.poll_next_unpin(cx);
        *frames += frames_read_on_this_thread().wrapping_sub(before);
        polled
    })
    .await
}

/// A read error the hub answers with 1008: a frame or message over the size limits, or a
/// message in more than `limits.max_fragments` frames.
fn is_too_large(e: axum::Error) -> bool {
    let inner = e.into_inner();
    match inner.downcast_ref::<tungstenite::Error>() {
        Some(e) => is_policy_error(e),
        None => inner.to_string().contains("too long") || inner.to_string().contains("Space limit"),
    }
}

#[cfg(test)]
mod tests {
    use super::Pace;
    use std::time::Duration;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn a_backlog_stretches_the_pace_and_catching_up_brings_it_back_by_halves() {
        let mut pace = Pace::new(20 * MS, 160 * MS, 64);
        assert_eq!((pace.interval(), pace.limit()), (20 * MS, 64));
        for want in [40, 80, 160, 160] {
            pace.after_write(64);
            assert_eq!(
                pace.interval(),
                want * MS,
                "a full batch or more left queued"
            );
        }
        assert_eq!(pace.limit(), 64 * 8, "a longer pause takes a fuller write");
        for want in [80, 40, 20, 20] {
            pace.after_write(63);
            assert_eq!(pace.interval(), want * MS, "less than a batch left");
        }
    }

    #[test]
    fn a_zero_least_interval_still_stretches_behind_a_backlog() {
        let mut pace = Pace::new(Duration::ZERO, 160 * MS, 64);
        pace.after_write(100);
        assert_eq!(pace.interval(), 2 * MS);
        assert_eq!(pace.limit(), 64);
        pace.after_write(0);
        assert_eq!(pace.interval(), MS);
    }
}

#[cfg(test)]
mod vendored {
    /// The hub relies on the patched tungstenite (`vendor/tungstenite/LIVEHUB-PATCH.md`: the
    /// fragment limit, the frame count, the released write buffer). When tokio-tungstenite moves
    /// to a tungstenite the vendored copy is not, Cargo silently builds the registry's instead
    /// and only warns that the patch went unused: this fails first.
    #[test]
    fn the_locked_tungstenite_is_the_vendored_patched_one() {
        let root = env!("CARGO_MANIFEST_DIR");
        let read = |path: &str| {
            let text = std::fs::read_to_string(format!("{root}/{path}")).expect(path);
            text.parse::<toml::Table>().expect(path)
        };
        let vendored = read("vendor/tungstenite/Cargo.toml");
        let version = vendored["package"]["version"].as_str().expect("version");
        let lock = read("Cargo.lock");
        let locked: Vec<&toml::Table> = lock["package"]
            .as_array()
            .expect("packages")
            .iter()
            .filter_map(|p| p.as_table())
            .filter(|p| p["name"].as_str() == Some("tungstenite"))
            .collect();
        assert_eq!(locked.len(), 1, "one tungstenite in Cargo.lock: {locked:?}");
        assert_eq!(locked[0]["version"].as_str(), Some(version));
        assert!(
            !locked[0].contains_key("source"),
            "the locked tungstenite comes from a registry, not vendor/: {:?}",
            locked[0]
        );
        assert!(
            !lock.contains_key("patch"),
            "Cargo.lock lists an unused patch: {:?}",
            lock.get("patch")
        );
    }
}
