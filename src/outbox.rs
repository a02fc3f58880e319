//! One connection's outgoing side as the rest of the hub sees it: three lanes and a close
//! signal (issue 20). Producers never wait.
//!
//! - **Replies** to the connection's own requests (reserved, order, ack, error...) are written
//!   before anything else queued, so a buyer never waits behind chat.
//! - **Events**, durable, in `seq` order and bounded. While the connection is behind (the lane
//!   holds `session.thin_chat_after` events) other viewers' comments in it are folded into
//!   `skipped` markers that keep the `seq` contiguous, so a chat storm thins the chat a slow
//!   viewer sees instead of closing it; a lane still full of other events closes it with 1013.
//! - **Counters** (stock, likes, viewers): one slot per key holding the latest frame, written
//!   after the events of the connection's next write, whatever is queued. A new stock reading,
//!   like a reply, ends a writer's pause between writes ([`OutboxRx::urgent`]).
//!
//! The lanes sit behind one short mutex plus one waker, not a tokio channel: a room pushes every
//! event to every viewer, and at 2,000 viewers the channel's semaphore and block list cost 16% of
//! the hub's CPU (docs/benchmarks.md). A push is one uncontended lock and, when the writer is
//! asleep, one wake; the writer takes everything queued in one lock.

use std::collections::VecDeque;
use std::future::poll_fn;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU16, Ordering};
use std::task::Poll;

use axum::extract::ws::Utf8Bytes;
use futures_util::task::AtomicWaker;
use parking_lot::Mutex;
use tokio_util::sync::CancellationToken;

use crate::frame::close;

/// Shared between a connection's tasks and the room: why and whether it must close.
#[derive(Debug)]
pub struct ConnCtl {
    /// Unique per process.
    pub id: u64,
    cancel: CancellationToken,
    code: AtomicU16,
}

impl ConnCtl {
    /// `cancel` is a child of the hub's shutdown token, so shutdown closes every connection.
    pub fn new(id: u64, cancel: CancellationToken) -> Self {
        ConnCtl {
            id,
            cancel,
            code: AtomicU16::new(0),
        }
    }

    /// Asks the connection to close with `code`. The first code asked for wins.
    pub fn close(&self, code: u16) {
        let _ = self
            .code
            .compare_exchange(0, code, Ordering::AcqRel, Ordering::Acquire);
        self.cancel.cancel();
    }

    /// The close code to send: the one asked for, else 1001 (hub shutdown).
    pub fn close_code(&self) -> u16 {
        match self.code.load(Ordering::Acquire) {
            0 => close::GOING_AWAY,
            c => c,
        }
    }

    /// Resolves when the connection must close.
    pub async fn closed(&self) {
        self.cancel.cancelled().await
    }

    /// True once a close was asked for.
    pub fn is_closing(&self) -> bool {
        self.cancel.is_cancelled()
    }
}

/// Where a counter's latest frame is kept: one slot per key (likes, viewers, each deal's stock).
pub type CounterKey = u64;

/// The counter key of the room's likes.
pub const LIKES: CounterKey = 0;
/// The counter key of the room's viewer count.
pub const VIEWERS: CounterKey = 1;

/// The counter key of `deal`'s stock (a 64-bit digest of its id, never 0 or 1).
pub fn stock_key(deal: &str) -> CounterKey {
    crate::id::fnv1a(deal.bytes()).max(2)
}

/// The counter key of auction `id`'s latest bid (a digest apart from the deals').
pub fn auction_key(id: &str) -> CounterKey {
    stock_key(&format!("~auction:{id}"))
}

/// True for a deal's stock, the counter a flash deal's viewers wait for: it ends a writer's
/// pause like a reply does.
fn is_stock(key: CounterKey) -> bool {
    key != LIKES && key != VIEWERS
}

/// At most this many events precede a changed counter in a write, however far behind the
/// connection is: the latest stock is never more than one short write away.
pub const EVENTS_BEFORE_COUNTERS: usize = 64;

/// One durable frame waiting in a connection's event lane.
#[derive(Debug)]
enum Entry {
    /// Must reach the viewer (any event but other viewers' comments).
    Frame(Utf8Bytes),
    /// Another viewer's comment at `seq`: may be thinned when the connection falls behind.
    Chat { seq: u64, frame: Utf8Bytes },
    /// Comments `from..=seq` thinned away: the viewer is told with one `skipped` frame.
    Skipped { from: u64, seq: u64, comments: u64 },
}

/// How long the oldest frame of each lane had waited when the writer took it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Waited {
    pub reply: Option<std::time::Duration>,
    pub event: Option<std::time::Duration>,
    pub counter: Option<std::time::Duration>,
}

/// What a writer takes in one go, in the order it writes it: the connection's own replies
/// first, then durable events in `seq` order (at most [`EVENTS_BEFORE_COUNTERS`] when a
/// counter changed), then the latest value of every counter that changed, so one socket write
/// carries the queued events and the latest counters together.
#[derive(Debug, Default)]
pub struct Take {
    pub replies: VecDeque<Utf8Bytes>,
    pub events: VecDeque<Utf8Bytes>,
    pub counters: Vec<Utf8Bytes>,
    pub waited: Waited,
    /// Events still queued after this take (the writer's backlog).
    pub left: usize,
    /// A stock reading is among the counters.
    pub stock: bool,
}

impl Take {
    /// Frames in this take.
    pub fn len(&self) -> usize {
        self.replies.len() + self.events.len() + self.counters.len()
    }

    /// True when nothing was taken.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// True when the take holds a reply or a stock reading: written at once, whatever the pace.
    pub fn is_urgent(&self) -> bool {
        !self.replies.is_empty() || self.stock
    }

    /// Every frame, in writing order.
    pub fn drain(&mut self) -> impl Iterator<Item = Utf8Bytes> + '_ {
        self.stock = false;
        self.replies
            .drain(..)
            .chain(self.events.drain(..))
            .chain(self.counters.drain(..))
    }
}

#[derive(Debug, Default)]
struct Lanes {
    replies: VecDeque<Utf8Bytes>,
    replies_since: Option<std::time::Instant>,
    events: VecDeque<Entry>,
    events_since: Option<std::time::Instant>,
    counters: Vec<(CounterKey, Utf8Bytes)>,
    counters_since: Option<std::time::Instant>,
}

impl Lanes {
    fn is_empty(&self) -> bool {
        self.replies.is_empty() && self.events.is_empty() && self.counters.is_empty()
    }

    /// A reply or a stock reading is waiting: worth a write of its own, whatever the pace.
    fn is_urgent(&self) -> bool {
        !self.replies.is_empty() || self.counters.iter().any(|(k, _)| is_stock(*k))
    }

    /// Folds every run of other viewers' comments (and earlier markers) into one `skipped`
    /// marker each; returns how many comments went.
    fn thin(&mut self) -> u64 {
        let mut thinned = 0;
        let mut kept: VecDeque<Entry> = VecDeque::with_capacity(self.events.len());
        for e in self.events.drain(..) {
            let (first, last, n) = match e {
                Entry::Chat { seq, .. } => {
                    thinned += 1;
                    (seq, seq, 1)
                }
                Entry::Skipped {
                    from,
                    seq,
                    comments,
                } => (from, seq, comments),
                frame @ Entry::Frame(_) => {
                    kept.push_back(frame);
                    continue;
                }
            };
            match kept.back_mut() {
                Some(Entry::Skipped { seq, comments, .. }) => {
                    *seq = last;
                    *comments += n;
                }
                _ => kept.push_back(Entry::Skipped {
                    from: first,
                    seq: last,
                    comments: n,
                }),
            }
        }
        self.events = kept;
        thinned
    }
}

#[derive(Debug)]
struct Queue {
    lanes: Mutex<Lanes>,
    /// Most durable events (and, apart, most replies) queued before the connection is closed
    /// with 1013.
    capacity: usize,
    /// When other viewers' comments are thinned.
    thin: Thinning,
    /// The writer's waker, registered while it waits for frames.
    waker: AtomicWaker,
    /// False once the receiving side is gone.
    open: AtomicBool,
}

/// What a push into the queue found.
enum Put {
    /// Queued; this many comments were thinned to make room.
    Ok(u64),
    Full,
    Closed,
}

impl Queue {
    /// Runs `f` on the lanes unless the writer is gone; wakes the writer when the lanes were
    /// empty before (it takes everything queued in one go and looks again after registering
    /// its waker, so later pushes would only repeat a wake that is already on its way).
    fn with_lanes(&self, f: impl FnOnce(&mut Lanes) -> Put) -> Put {
        if !self.open.load(Ordering::Acquire) {
            return Put::Closed;
        }
        let (put, wake) = {
            let mut lanes = self.lanes.lock();
            let was_empty = lanes.is_empty();
            let put = f(&mut lanes);
            (put, was_empty && !lanes.is_empty())
        };
        if wake {
            self.waker.wake();
        }
        put
    }

    fn put_event(&self, entry: Entry) -> Put {
        let (capacity, thin) = (self.capacity, self.thin);
        self.with_lanes(|l| {
            let mut thinned = 0;
            if thin.after > 0
                && l.events.len() >= thin.after
                && l.events_since.is_some_and(|t| t.elapsed() >= thin.wait)
            {
                thinned = l.thin();
            }
            if l.events.len() >= capacity {
                return Put::Full;
            }
            if l.events.is_empty() {
                l.events_since = Some(std::time::Instant::now());
            }
            l.events.push_back(entry);
            Put::Ok(thinned)
        })
    }
}

/// The producer side of one connection's queue.
#[derive(Clone, Debug)]
pub struct Outbox {
    queue: Arc<Queue>,
    ctl: Arc<ConnCtl>,
}

/// The consumer side, owned by the connection's writer. Dropping it makes later pushes
/// answer [`Pushed::Gone`] and frees what was queued.
#[derive(Debug)]
pub struct OutboxRx {
    queue: Arc<Queue>,
}

impl OutboxRx {
    /// Takes the replies, up to `limit` events and the changed counters into `take`; waits
    /// while there is nothing. Never resolves to 0 (closing is signalled through [`ConnCtl`],
    /// not the queue).
    pub async fn recv(&mut self, take: &mut Take, limit: usize) -> usize {
        poll_fn(|cx| {
            let n = self.try_recv(take, limit);
            if n > 0 {
                return Poll::Ready(n);
            }
            self.queue.waker.register(cx.waker());
            // A push between the first look and the registration would otherwise be missed.
            match self.try_recv(take, limit) {
                0 => Poll::Pending,
                n => Poll::Ready(n),
            }
        })
        .await
    }

    /// Resolves once a reply or a new stock reading is queued: a writer pausing between writes
    /// (its pace) waits on this too, so that neither waits out the pause.
    pub async fn urgent(&self) {
        poll_fn(|cx| {
            if self.queue.lanes.lock().is_urgent() {
                return Poll::Ready(());
            }
            self.queue.waker.register(cx.waker());
            match self.queue.lanes.lock().is_urgent() {
                true => Poll::Ready(()),
                false => Poll::Pending,
            }
        })
        .await
    }

    /// Like [`OutboxRx::recv`] without waiting; returns how many frames it added to `take`.
    pub fn try_recv(&mut self, take: &mut Take, limit: usize) -> usize {
        // Read once per take, and only when a lane says since when it waits.
        let mut clock = None;
        let mut since = |t: &mut Option<std::time::Instant>| {
            let at = t.take()?;
            let now = *clock.get_or_insert_with(std::time::Instant::now);
            Some(now.duration_since(at))
        };
        let before = take.len();
        let mut skipped = Vec::new();
        {
            let mut l = self.queue.lanes.lock();
            if !l.replies.is_empty() {
                take.waited.reply = take.waited.reply.or(since(&mut l.replies_since));
                take.replies.extend(l.replies.drain(..));
            }
            let limit = if l.counters.is_empty() {
                limit
            } else {
                limit.min(EVENTS_BEFORE_COUNTERS)
            };
            let room = limit.saturating_sub(take.events.len());
            let n = l.events.len().min(room);
            if n > 0 {
                take.waited.event = take.waited.event.or(since(&mut l.events_since));
                for e in l.events.drain(..n) {
                    match e {
                        Entry::Frame(f) | Entry::Chat { frame: f, .. } => take.events.push_back(f),
                        Entry::Skipped {
                            from,
                            seq,
                            comments,
                        } => {
                            // Encoded outside the lock, in its place.
                            skipped.push((take.events.len(), from, seq, comments));
                            take.events.push_back(Utf8Bytes::from_static(""));
                        }
                    }
                }
                if !l.events.is_empty() {
                    l.events_since = Some(std::time::Instant::now());
                }
            }
            if !l.counters.is_empty() {
                take.waited.counter = take.waited.counter.or(since(&mut l.counters_since));
                take.stock |= l.counters.iter().any(|(k, _)| is_stock(*k));
                take.counters.extend(l.counters.drain(..).map(|(_, f)| f));
            }
            take.left = l.events.len();
        }
        if skipped.is_empty() {
            return take.len() - before;
        }
        for (at, from, seq, comments) in skipped {
            let msg = crate::protocol::ServerMsg::Skipped {
                seq,
                from,
                comments,
            };
            if let (Ok(json), Some(slot)) = (msg.to_json(), take.events.get_mut(at)) {
                *slot = json.into();
            }
        }
        take.events.retain(|f| !f.as_str().is_empty());
        take.len() - before
    }
}

impl Drop for OutboxRx {
    fn drop(&mut self) {
        self.queue.open.store(false, Ordering::Release);
        *self.queue.lanes.lock() = Lanes::default();
    }
}

/// What happened to a pushed frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pushed {
    /// Queued; `thinned` comments queued before it were folded into a `skipped` marker.
    Queued { thinned: u64 },
    /// The queue overflowed and the connection is being closed with 1013.
    Overflowed,
    /// The connection is gone.
    Gone,
}

impl Pushed {
    /// True when the frame is on its way.
    pub fn queued(self) -> bool {
        matches!(self, Pushed::Queued { .. })
    }

    /// Comments thinned by this push.
    pub fn thinned(self) -> u64 {
        match self {
            Pushed::Queued { thinned } => thinned,
            _ => 0,
        }
    }
}

/// When a connection is behind, so that other viewers' comments queued for it are thinned: it
/// has `after` or more events queued (0: never thin) and its writer has taken none for `wait`.
/// A burst that a healthy writer is about to take is left alone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Thinning {
    pub after: usize,
    pub wait: std::time::Duration,
}

impl Thinning {
    /// Never thin.
    pub const NEVER: Thinning = Thinning {
        after: 0,
        wait: std::time::Duration::ZERO,
    };
}

impl Outbox {
    /// A queue of `capacity` durable events (and as many replies), thinned as `thin` says. The
    /// receiver belongs to the connection's writer.
    pub fn new(capacity: usize, thin: Thinning, ctl: Arc<ConnCtl>) -> (Self, OutboxRx) {
        let queue = Arc::new(Queue {
            lanes: Mutex::new(Lanes::default()),
            capacity,
            thin,
            waker: AtomicWaker::new(),
            open: AtomicBool::new(true),
        });
        (
            Outbox {
                queue: Arc::clone(&queue),
                ctl,
            },
            OutboxRx { queue },
        )
    }

    /// The connection's control block.
    pub fn ctl(&self) -> &Arc<ConnCtl> {
        &self.ctl
    }

    fn pushed(&self, put: Put) -> Pushed {
        match put {
            Put::Ok(thinned) => Pushed::Queued { thinned },
            Put::Full => {
                if !self.ctl.is_closing() {
                    metrics::counter!(crate::metrics::SLOW_CONSUMER_CLOSES).increment(1);
                }
                self.ctl.close(close::TRY_AGAIN_LATER);
                Pushed::Overflowed
            }
            Put::Closed => Pushed::Gone,
        }
    }

    /// Queues a durable event that must reach the viewer. A full event lane closes the
    /// connection with 1013.
    pub fn push(&self, frame: Utf8Bytes) -> Pushed {
        self.pushed(self.queue.put_event(Entry::Frame(frame)))
    }

    /// Queues another viewer's comment at `seq`: while the connection is behind (see
    /// [`Thinning`]) queued comments are folded into `skipped` markers instead of closing it.
    pub fn push_chat(&self, seq: u64, frame: Utf8Bytes) -> Pushed {
        self.pushed(self.queue.put_event(Entry::Chat { seq, frame }))
    }

    /// Queues the answer to one of this connection's own requests: written before any queued
    /// event. More than `capacity` unanswered replies close the connection with 1013.
    pub fn push_reply(&self, frame: Utf8Bytes) -> Pushed {
        let capacity = self.queue.capacity;
        let put = self.queue.with_lanes(|l| {
            if l.replies.len() >= capacity {
                return Put::Full;
            }
            if l.replies.is_empty() {
                l.replies_since = Some(std::time::Instant::now());
            }
            l.replies.push_back(frame);
            Put::Ok(0)
        });
        // A writer pausing between writes waits for replies too (OutboxRx::urgent), even
        // while other lanes hold frames.
        self.queue.waker.wake();
        self.pushed(put)
    }

    /// Takes the replies queued for this connection, for a caller that writes them itself
    /// (a reader that finds the socket free: the answer need not wait for the writer's turn).
    pub fn take_replies(&self) -> VecDeque<Utf8Bytes> {
        let mut l = self.queue.lanes.lock();
        l.replies_since = None;
        std::mem::take(&mut l.replies)
    }

    /// Sets the latest value of the counter `key` (stock, likes, viewers): it replaces any
    /// value not yet written and goes out with the connection's next write, whatever is queued.
    pub fn set_counter(&self, key: CounterKey, frame: Utf8Bytes) -> Pushed {
        let put = self.queue.with_lanes(|l| {
            match l.counters.iter_mut().find(|(k, _)| *k == key) {
                Some(slot) => slot.1 = frame,
                None => {
                    if l.counters.is_empty() {
                        l.counters_since = Some(std::time::Instant::now());
                    }
                    l.counters.push((key, frame));
                }
            }
            Put::Ok(0)
        });
        if is_stock(key) {
            // As for a reply: a pausing writer waits for it too.
            self.queue.waker.wake();
        }
        self.pushed(put)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outbox(capacity: usize, thin_after: usize) -> (Outbox, OutboxRx) {
        let thin = Thinning {
            after: thin_after,
            wait: std::time::Duration::ZERO,
        };
        Outbox::new(
            capacity,
            thin,
            Arc::new(ConnCtl::new(1, CancellationToken::new())),
        )
    }

    fn texts(take: &mut Take) -> Vec<String> {
        take.drain().map(|f| f.as_str().to_owned()).collect()
    }

    #[test]
    fn a_full_event_lane_closes_and_counters_never_fill_it() {
        let (tx, _rx) = outbox(2, 0);
        assert!(tx.push("a".into()).queued());
        assert!(tx.push("b".into()).queued());
        for i in 0..100 {
            assert!(tx.set_counter(LIKES, format!("likes {i}").into()).queued());
        }
        assert!(!tx.ctl().is_closing());
        assert_eq!(tx.push("c".into()), Pushed::Overflowed);
        assert!(tx.ctl().is_closing());
        assert_eq!(tx.ctl().close_code(), close::TRY_AGAIN_LATER);
    }

    #[test]
    fn pushes_after_the_writer_is_gone_answer_gone() {
        let (tx, rx) = outbox(8, 0);
        drop(rx);
        assert_eq!(tx.push("a".into()), Pushed::Gone);
        assert_eq!(tx.push_reply("b".into()), Pushed::Gone);
        assert_eq!(tx.set_counter(LIKES, "c".into()), Pushed::Gone);
    }

    #[test]
    fn replies_go_first_and_the_latest_counters_ride_with_the_events() {
        let (tx, mut rx) = outbox(1000, 0);
        for i in 0..500 {
            tx.push(format!("c{i}").into());
        }
        tx.set_counter(stock_key("d1"), "stock 9".into());
        tx.set_counter(LIKES, "likes 1".into());
        tx.set_counter(stock_key("d1"), "stock 7".into());
        tx.push_reply("reserved".into());
        let mut take = Take::default();
        assert_eq!(rx.try_recv(&mut take, 64), 1 + 64 + 2);
        assert_eq!(take.left, 436);
        let got = texts(&mut take);
        assert_eq!(
            got[0], "reserved",
            "the reply overtakes 500 queued comments"
        );
        assert_eq!(got[1], "c0");
        assert_eq!(got[64], "c63");
        assert_eq!(
            &got[65..],
            ["stock 7", "likes 1"],
            "only the latest, after the events"
        );
        // Nothing changed since: the next write carries events only.
        assert_eq!(rx.try_recv(&mut take, 64), 64);
        assert!(take.counters.is_empty());
    }

    #[test]
    fn a_behind_connection_gets_its_chat_thinned_with_contiguous_seqs() {
        let (tx, mut rx) = outbox(16, 8);
        let chat = |tx: &Outbox, seq: u64| tx.push_chat(seq, format!("chat {seq}").into());
        let mut thinned = 0;
        for seq in 1..=3 {
            thinned += chat(&tx, seq).thinned();
        }
        tx.push(r#"{"seq":4,"type":"deal"}"#.into());
        for seq in 5..=204 {
            thinned += chat(&tx, seq).thinned();
        }
        assert!(!tx.ctl().is_closing(), "chat alone never closes it");
        let mut take = Take::default();
        rx.try_recv(&mut take, 1000);
        let got = texts(&mut take);
        assert!(got.len() < 16, "{got:?}");
        let mut next = 1;
        let mut shown = 0;
        for f in &got {
            if let Some(rest) = f.strip_prefix("chat ") {
                assert_eq!(rest.parse::<u64>().unwrap(), next);
                shown += 1;
                next += 1;
                continue;
            }
            let v: serde_json::Value = serde_json::from_str(f).unwrap();
            match v["type"].as_str() {
                Some("skipped") => {
                    assert_eq!(v["from"], next, "{f}");
                    next = v["seq"].as_u64().unwrap() + 1;
                }
                _ => {
                    assert_eq!(v["seq"], next, "{f}");
                    next += 1;
                }
            }
        }
        assert_eq!(next, 205, "every seq is covered, none twice");
        assert_eq!(thinned + shown, 203);
    }

    #[tokio::test]
    async fn a_reply_or_a_stock_reading_ends_a_pause_and_chat_or_likes_do_not() {
        use futures_util::FutureExt;
        let (tx, rx) = outbox(1000, 0);
        tx.push_chat(1, "chat".into());
        tx.set_counter(LIKES, "likes 1".into());
        assert!(rx.urgent().now_or_never().is_none(), "chat and likes wait");
        let pausing = tokio::spawn(async move {
            rx.urgent().await;
            rx
        });
        tokio::task::yield_now().await;
        tx.set_counter(stock_key("d1"), "stock 9".into());
        let mut rx = tokio::time::timeout(std::time::Duration::from_secs(5), pausing)
            .await
            .expect("a stock reading wakes a pausing writer")
            .expect("joined");
        let mut take = Take::default();
        rx.try_recv(&mut take, 64);
        assert!(take.is_urgent());
        assert_eq!(texts(&mut take), ["chat", "likes 1", "stock 9"]);
        assert!(!take.is_urgent(), "a drained take starts over");
        tx.push_reply("reserved".into());
        assert!(rx.urgent().now_or_never().is_some());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_waiting_writer_receives_every_frame_in_order_from_another_thread() {
        // Only pushes into empty lanes wake the writer; none may be left behind.
        let (tx, mut rx) = outbox(1 << 20, 0);
        const N: usize = 20_000;
        let producer = std::thread::spawn(move || {
            for i in 0..N {
                assert!(tx.push(i.to_string().into()).queued());
                if i % 97 == 0 {
                    std::thread::yield_now();
                }
            }
        });
        let mut got = Vec::with_capacity(N);
        let mut take = Take::default();
        while got.len() < N {
            // A lost wake-up shows as a wait that only the timeout's own timer ends (that
            // poll finds the frames, so check the time, not the result).
            let started = std::time::Instant::now();
            let n = tokio::time::timeout(std::time::Duration::from_secs(2), rx.recv(&mut take, 64))
                .await
                .unwrap_or(0);
            assert!(
                started.elapsed() < std::time::Duration::from_secs(2),
                "a push did not wake the writer"
            );
            assert!(n > 0 && n <= 64);
            got.extend(take.drain().map(|f| f.as_str().parse::<usize>().unwrap()));
        }
        producer.join().unwrap();
        assert!(got.iter().copied().eq(0..N));
    }
}
