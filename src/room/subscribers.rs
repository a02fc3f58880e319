//! The connections of one room on this node and the fan-out to them: the same frame handle
//! pushed to every outbox, never a serialization per viewer.

use std::collections::HashMap;

use axum::extract::ws::Utf8Bytes;

use crate::frame::close;
use crate::outbox::{CounterKey, Outbox};
use crate::protocol::Id;

/// One connection of the room.
struct Sub {
    outbox: Outbox,
    user: Id,
    /// The room's host or an admin: sees every comment, and keeps the room open.
    moderator: bool,
}

/// A room's local connections by connection id, each with its user.
#[derive(Default)]
pub struct Subscribers {
    subs: HashMap<u64, Sub>,
    /// How many of them are moderators (kept, so counting viewers is O(1)).
    moderators: u64,
}

/// What a fan-out did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FannedOut {
    /// Connections that queued the frame.
    pub queued: u64,
    /// Comments thinned from connections that were behind (see [`crate::outbox`]).
    pub thinned: u64,
}

impl Subscribers {
    /// Adds `user`'s connection; a `moderator` (the room's host or an admin) sees every comment.
    pub fn insert(&mut self, outbox: Outbox, user: Id, moderator: bool) {
        let sub = Sub {
            outbox,
            user,
            moderator,
        };
        if let Some(old) = self.subs.insert(sub.outbox.ctl().id, sub) {
            self.moderators -= u64::from(old.moderator);
        }
        self.moderators += u64::from(moderator);
    }

    /// Removes a connection; returns its user when it was here.
    pub fn remove(&mut self, conn: u64) -> Option<Id> {
        let sub = self.subs.remove(&conn)?;
        self.moderators -= u64::from(sub.moderator);
        Some(sub.user)
    }

    /// The users connected here (a user with two connections appears twice).
    pub fn users(&self) -> impl Iterator<Item = &Id> {
        self.subs.values().map(|s| &s.user)
    }

    /// Connections here now.
    pub fn len(&self) -> u64 {
        self.subs.len() as u64
    }

    /// Viewer connections here now (anonymous ones included): every connection but the room's
    /// hosts' and admins', which `viewers` does not count.
    pub fn viewers(&self) -> u64 {
        self.len() - self.moderators
    }

    /// True when nobody is connected here.
    pub fn is_empty(&self) -> bool {
        self.subs.is_empty()
    }

    /// True while the room's host or an admin is connected here.
    pub fn has_moderator(&self) -> bool {
        self.moderators > 0
    }

    /// Queues a durable frame to every connection (a full queue closes its viewer with 1013).
    pub fn fan_out(&self, frame: &Utf8Bytes) -> FannedOut {
        let mut out = FannedOut::default();
        for s in self.subs.values() {
            let pushed = s.outbox.push(frame.clone());
            out.queued += u64::from(pushed.queued());
            out.thinned += pushed.thinned();
        }
        out
    }

    /// Queues a personal frame to every connection of `user` here; returns how many queued it.
    pub fn send_to(&self, user: &Id, frame: &Utf8Bytes) -> u64 {
        let mut queued = 0;
        for s in self.subs.values().filter(|s| &s.user == user) {
            queued += u64::from(s.outbox.push(frame.clone()).queued());
        }
        queued
    }

    /// Queues `author`'s comment at `seq`: as chat that may be thinned to viewers who fall
    /// behind, in full to the author's own connections and to moderators.
    pub fn fan_out_chat(&self, seq: u64, author: &Id, frame: &Utf8Bytes) -> FannedOut {
        let mut out = FannedOut::default();
        for s in self.subs.values() {
            let pushed = if s.moderator || &s.user == author {
                s.outbox.push(frame.clone())
            } else {
                s.outbox.push_chat(seq, frame.clone())
            };
            out.queued += u64::from(pushed.queued());
            out.thinned += pushed.thinned();
        }
        out
    }

    /// Sets the counter `key` (stock, likes, viewers) of every connection to `frame`: it goes
    /// out with each connection's next write.
    pub fn set_counter(&self, key: CounterKey, frame: &Utf8Bytes) {
        for s in self.subs.values() {
            s.outbox.set_counter(key, frame.clone());
        }
        metrics::counter!(crate::metrics::COALESCED_SENT).increment(self.len());
    }

    /// Closes every connection with 1001 (reconnect, with `?since=`) and forgets them.
    pub fn close_all(&mut self) {
        for s in self.subs.values() {
            s.outbox.ctl().close(close::GOING_AWAY);
        }
        self.subs.clear();
        self.moderators = 0;
    }
}
