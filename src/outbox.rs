//! One connection's outgoing side as the rest of the hub sees it: a bounded frame queue and a
//! close signal. Producers never wait: a full queue either replaces a coalescible update (the
//! writer re-sends the latest counters) or closes the viewer with 1013.
//!
//! The queue is a `VecDeque` behind a short mutex plus one waker, not a tokio channel: a room
//! pushes every event to every viewer, and at 2,000 viewers the channel's semaphore and block
//! list cost 16% of the hub's CPU (docs/benchmarks.md). A push is one uncontended lock and,
//! when the writer is asleep, one wake; the writer takes everything queued in one lock.

use std::collections::VecDeque;
use std::future::poll_fn;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU16, Ordering};
use std::task::Poll;

use axum::extract::ws::Utf8Bytes;
use futures_util::task::AtomicWaker;
use parking_lot::Mutex;
use tokio_util::sync::CancellationToken;

/// Close codes the hub uses (PROTOCOL.md, "Close codes").
pub mod close {
    /// Normal closure (the client said goodbye).
    pub const NORMAL: u16 = 1000;
    /// The hub is shutting down or draining.
    pub const GOING_AWAY: u16 = 1001;
    /// Policy: oversized or binary frame, flooding.
    pub const POLICY: u16 = 1008;
    /// Slow consumer: the outgoing queue overflowed.
    pub const TRY_AGAIN_LATER: u16 = 1013;
}

/// Shared between a connection's tasks and the room: why and whether it must close.
#[derive(Debug)]
pub struct ConnCtl {
    /// Unique per process.
    pub id: u64,
    cancel: CancellationToken,
    code: AtomicU16,
    stale: AtomicBool,
}

impl ConnCtl {
    /// `cancel` is a child of the hub's shutdown token, so shutdown closes every connection.
    pub fn new(id: u64, cancel: CancellationToken) -> Self {
        ConnCtl {
            id,
            cancel,
            code: AtomicU16::new(0),
            stale: AtomicBool::new(false),
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

    /// Takes the "a coalesced update was dropped" mark.
    pub fn take_stale(&self) -> bool {
        self.stale.swap(false, Ordering::AcqRel)
    }
}

#[derive(Debug)]
struct Queue {
    frames: Mutex<VecDeque<Utf8Bytes>>,
    capacity: usize,
    /// The writer's waker, registered while it waits for frames.
    waker: AtomicWaker,
    /// False once the receiving side is gone.
    open: AtomicBool,
}

/// What a push into the queue found.
enum Put {
    Ok,
    Full,
    Closed,
}

impl Queue {
    fn put(&self, frame: Utf8Bytes) -> Put {
        if !self.open.load(Ordering::Acquire) {
            return Put::Closed;
        }
        let was_empty = {
            let mut q = self.frames.lock();
            if q.len() >= self.capacity {
                return Put::Full;
            }
            q.push_back(frame);
            q.len() == 1
        };
        // Only the push into an empty queue wakes the writer: it takes everything queued in one
        // go and looks again after registering its waker, so later pushes would only repeat a
        // wake that is already on its way (and each wake is a cache-line transfer).
        if was_empty {
            self.waker.wake();
        }
        Put::Ok
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
    /// Moves up to `limit` queued frames into `batch`; waits while there are none. Never
    /// resolves to 0 (closing is signalled through [`ConnCtl`], not the queue).
    pub async fn recv_many(&mut self, batch: &mut VecDeque<Utf8Bytes>, limit: usize) -> usize {
        poll_fn(|cx| {
            let n = self.try_recv_many(batch, limit);
            if n > 0 {
                return Poll::Ready(n);
            }
            self.queue.waker.register(cx.waker());
            // A push between the first look and the registration would otherwise be missed.
            match self.try_recv_many(batch, limit) {
                0 => Poll::Pending,
                n => Poll::Ready(n),
            }
        })
        .await
    }

    /// Moves up to `limit` queued frames into `batch` without waiting; returns how many.
    pub fn try_recv_many(&mut self, batch: &mut VecDeque<Utf8Bytes>, limit: usize) -> usize {
        let mut q = self.queue.frames.lock();
        let n = q.len().min(limit);
        if batch.is_empty() && n == q.len() {
            // The common case, in O(1): take the whole queue and leave the (empty) batch's
            // buffer in its place, so neither side allocates.
            std::mem::swap(&mut *q, batch);
        } else {
            batch.extend(q.drain(..n));
        }
        n
    }
}

impl Drop for OutboxRx {
    fn drop(&mut self) {
        self.queue.open.store(false, Ordering::Release);
        self.queue.frames.lock().clear();
    }
}

/// What happened to a pushed frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pushed {
    Queued,
    /// Coalescible update dropped; the writer will send the latest value.
    Replaced,
    /// The queue overflowed and the connection is being closed with 1013.
    Overflowed,
    /// The connection is gone.
    Gone,
}

impl Outbox {
    /// A queue of `capacity` frames; the receiver belongs to the connection's writer.
    pub fn new(capacity: usize, ctl: Arc<ConnCtl>) -> (Self, OutboxRx) {
        let queue = Arc::new(Queue {
            frames: Mutex::new(VecDeque::new()),
            capacity,
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

    /// Queues a frame that must not be lost (durable events, replies). A full queue closes the
    /// connection with 1013.
    pub fn push(&self, frame: Utf8Bytes) -> Pushed {
        match self.queue.put(frame) {
            Put::Ok => Pushed::Queued,
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

    /// Queues a coalescible update (stock, likes, viewers). A full queue drops it and marks the
    /// connection stale, so its writer sends the latest values once it catches up.
    pub fn push_coalescible(&self, frame: Utf8Bytes) -> Pushed {
        match self.queue.put(frame) {
            Put::Ok => Pushed::Queued,
            Put::Full => {
                self.ctl.stale.store(true, Ordering::Release);
                Pushed::Replaced
            }
            Put::Closed => Pushed::Gone,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outbox(capacity: usize) -> (Outbox, OutboxRx) {
        Outbox::new(
            capacity,
            Arc::new(ConnCtl::new(1, CancellationToken::new())),
        )
    }

    #[test]
    fn a_full_queue_closes_for_durable_frames_and_marks_stale_for_coalescible_ones() {
        let (tx, _rx) = outbox(2);
        assert_eq!(tx.push("a".into()), Pushed::Queued);
        assert_eq!(tx.push("b".into()), Pushed::Queued);
        assert_eq!(tx.push_coalescible("stock".into()), Pushed::Replaced);
        assert!(tx.ctl().take_stale());
        assert!(!tx.ctl().is_closing());
        assert_eq!(tx.push("c".into()), Pushed::Overflowed);
        assert!(tx.ctl().is_closing());
        assert_eq!(tx.ctl().close_code(), close::TRY_AGAIN_LATER);
    }

    #[test]
    fn pushes_after_the_writer_is_gone_answer_gone() {
        let (tx, rx) = outbox(8);
        drop(rx);
        assert_eq!(tx.push("a".into()), Pushed::Gone);
        assert_eq!(tx.push_coalescible("b".into()), Pushed::Gone);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_waiting_writer_receives_every_frame_in_order_from_another_thread() {
        // Only pushes into an empty queue wake the writer; none may be left behind.
        let (tx, mut rx) = outbox(1 << 20);
        const N: usize = 20_000;
        let producer = std::thread::spawn(move || {
            for i in 0..N {
                assert_eq!(tx.push(i.to_string().into()), Pushed::Queued);
                if i % 97 == 0 {
                    std::thread::yield_now();
                }
            }
        });
        let mut got = Vec::with_capacity(N);
        let mut batch = VecDeque::new();
        while got.len() < N {
            // A lost wake-up shows as a wait that only the timeout's own timer ends (that
            // poll finds the frames, so check the time, not the result).
            let started = std::time::Instant::now();
            let n = tokio::time::timeout(
                std::time::Duration::from_secs(2),
                rx.recv_many(&mut batch, 64),
            )
            .await
            .unwrap_or(0);
            assert!(
                started.elapsed() < std::time::Duration::from_secs(2),
                "a push did not wake the writer"
            );
            assert!(n > 0 && n <= 64);
            got.extend(
                batch
                    .drain(..)
                    .map(|f| f.as_str().parse::<usize>().unwrap()),
            );
        }
        producer.join().unwrap();
        assert!(got.iter().copied().eq(0..N));
    }
}
