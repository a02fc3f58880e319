//! One connection's outgoing side as the rest of the hub sees it: a bounded frame queue and a
//! close signal. Producers never wait: a full queue either replaces a coalescible update (the
//! writer re-sends the latest counters) or closes the viewer with 1013.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU16, Ordering};

use axum::extract::ws::Utf8Bytes;
use tokio::sync::mpsc;
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

/// The producer side of one connection's queue.
#[derive(Clone, Debug)]
pub struct Outbox {
    tx: mpsc::Sender<Utf8Bytes>,
    ctl: Arc<ConnCtl>,
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
    pub fn new(capacity: usize, ctl: Arc<ConnCtl>) -> (Self, mpsc::Receiver<Utf8Bytes>) {
        let (tx, rx) = mpsc::channel(capacity);
        (Outbox { tx, ctl }, rx)
    }

    /// The connection's control block.
    pub fn ctl(&self) -> &Arc<ConnCtl> {
        &self.ctl
    }

    /// Queues a frame that must not be lost (durable events, replies). A full queue closes the
    /// connection with 1013.
    pub fn push(&self, frame: Utf8Bytes) -> Pushed {
        match self.tx.try_send(frame) {
            Ok(()) => Pushed::Queued,
            Err(mpsc::error::TrySendError::Full(_)) => {
                if !self.ctl.is_closing() {
                    metrics::counter!(crate::metrics::SLOW_CONSUMER_CLOSES).increment(1);
                }
                self.ctl.close(close::TRY_AGAIN_LATER);
                Pushed::Overflowed
            }
            Err(mpsc::error::TrySendError::Closed(_)) => Pushed::Gone,
        }
    }

    /// Queues a coalescible update (stock, likes, viewers). A full queue drops it and marks the
    /// connection stale, so its writer sends the latest values once it catches up.
    pub fn push_coalescible(&self, frame: Utf8Bytes) -> Pushed {
        match self.tx.try_send(frame) {
            Ok(()) => Pushed::Queued,
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.ctl.stale.store(true, Ordering::Release);
                Pushed::Replaced
            }
            Err(mpsc::error::TrySendError::Closed(_)) => Pushed::Gone,
        }
    }
}
