//! The connections of one room on this node and the fan-out to them: the same frame handle
//! pushed to every outbox, never a serialization per viewer.

use std::collections::HashMap;

use axum::extract::ws::Utf8Bytes;

use crate::outbox::{Outbox, Pushed, close};
use crate::protocol::Id;

/// A room's local connections by connection id, each with its user.
#[derive(Default)]
pub struct Subscribers {
    subs: HashMap<u64, (Outbox, Id)>,
}

impl Subscribers {
    /// Adds `user`'s connection.
    pub fn insert(&mut self, outbox: Outbox, user: Id) {
        self.subs.insert(outbox.ctl().id, (outbox, user));
    }

    /// Removes a connection; returns its user when it was here.
    pub fn remove(&mut self, conn: u64) -> Option<Id> {
        self.subs.remove(&conn).map(|(_, user)| user)
    }

    /// The users connected here (a user with two connections appears twice).
    pub fn users(&self) -> impl Iterator<Item = &Id> {
        self.subs.values().map(|(_, user)| user)
    }

    /// Connections here now.
    pub fn len(&self) -> u64 {
        self.subs.len() as u64
    }

    /// True when nobody is connected here.
    pub fn is_empty(&self) -> bool {
        self.subs.is_empty()
    }

    /// Queues a durable frame to every connection; returns how many queued it (a full queue
    /// closes its viewer with 1013).
    pub fn fan_out(&self, frame: &Utf8Bytes) -> u64 {
        let mut n = 0;
        for (outbox, _) in self.subs.values() {
            if outbox.push(frame.clone()) == Pushed::Queued {
                n += 1;
            }
        }
        n
    }

    /// Queues a counter frame; a full queue keeps only the latest counter.
    pub fn fan_out_coalescible(&self, frame: &Utf8Bytes) {
        let (mut sent, mut dropped) = (0u64, 0u64);
        for (outbox, _) in self.subs.values() {
            match outbox.push_coalescible(frame.clone()) {
                Pushed::Queued => sent += 1,
                Pushed::Replaced => dropped += 1,
                _ => {}
            }
        }
        metrics::counter!(crate::metrics::COALESCED_SENT).increment(sent);
        if dropped > 0 {
            metrics::counter!(crate::metrics::COALESCED_DROPPED).increment(dropped);
        }
    }

    /// Closes every connection with 1001 (reconnect, with `?since=`) and forgets them.
    pub fn close_all(&mut self) {
        for (outbox, _) in self.subs.values() {
            outbox.ctl().close(close::GOING_AWAY);
        }
        self.subs.clear();
    }
}
