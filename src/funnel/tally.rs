//! One room's funnel on this node: which of its users reached which stage (so each fact is sent
//! once), their channel (the channel of their first join here), the engaged clock, and the
//! [`Op`]s waiting for the next flush. Every method is O(1) (a deal going live is O(viewers
//! here), once per deal) and takes the time as an argument, so the rules are tested with an
//! injected clock.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap};

use parking_lot::Mutex;

use super::record::{Moment, Op, Stage};
use crate::commerce::Channel;
/// Re-exported from [`crate::commerce`], its home, for existing callers.
pub use crate::commerce::bucket_of;
use crate::protocol::Id;

/// Most ops one room keeps waiting while the store cannot be reached; older ones are dropped
/// first (and counted), so an outage costs bounded memory.
pub const MAX_PENDING_OPS: usize = 200_000;

#[derive(Debug)]
struct Mark {
    channel: Channel,
    /// Room stages sent.
    reached: u8,
    /// Deal stages sent, per deal.
    deals: HashMap<Id, u8>,
    /// Connections open here now.
    open: u32,
    /// When the first of the open connections opened.
    open_since: u64,
    /// Time connected here in connections that closed (until the user is engaged).
    closed_ms: u64,
}

#[derive(Debug, Default)]
struct State {
    users: HashMap<Id, Mark>,
    ops: Vec<Op>,
    /// (when the user's time here reaches engaged_ms if they stay, user).
    due: BinaryHeap<Reverse<(u64, Id)>>,
    comments: BTreeMap<u64, u64>,
    taps: BTreeMap<u64, u64>,
    peak: BTreeMap<u64, u64>,
    dropped: u64,
}

/// A room's funnel facts on this node, until they are flushed to the store.
#[derive(Debug)]
pub struct RoomTally {
    engaged_ms: u64,
    state: Mutex<State>,
}

impl State {
    /// Sends `stage` for `user` once (room-level, or for `deal` and then room-level too).
    fn reach(&mut self, user: &Id, stage: Stage, deal: Option<&Id>) {
        let Some(mark) = self.users.get_mut(user) else {
            return;
        };
        let channel = mark.channel;
        if let Some(deal) = deal {
            let bits = mark.deals.entry(deal.clone()).or_default();
            if *bits & stage.bit() == 0 {
                *bits |= stage.bit();
                self.ops.push(Op::Reached {
                    user: user.clone(),
                    channel,
                    stage,
                    deal: Some(deal.clone()),
                });
            }
        }
        let Some(mark) = self.users.get_mut(user) else {
            return;
        };
        if mark.reached & stage.bit() == 0 {
            mark.reached |= stage.bit();
            self.ops.push(Op::Reached {
                user: user.clone(),
                channel,
                stage,
                deal: None,
            });
        }
    }

    fn engaged_now(&self, user: &Id, now: u64, engaged_ms: u64) -> Option<bool> {
        let m = self.users.get(user)?;
        if m.reached & Stage::Engaged.bit() != 0 {
            return None;
        }
        let open_ms = if m.open > 0 {
            now.saturating_sub(m.open_since)
        } else {
            0
        };
        Some(m.closed_ms + open_ms >= engaged_ms)
    }
}

impl RoomTally {
    /// An empty tally; users are engaged after `engaged_ms` connected in all.
    pub fn new(engaged_ms: u64) -> Self {
        RoomTally {
            engaged_ms,
            state: Mutex::new(State::default()),
        }
    }

    /// `user` joined through a connection with `channel`, while `live_deals` were live, with
    /// `viewers_here` connected to this node (this one included). Returns the user's channel
    /// in this room: the one of their first join here.
    pub fn joined(
        &self,
        user: &Id,
        channel: Channel,
        live_deals: &[Id],
        viewers_here: u64,
        now: u64,
    ) -> Channel {
        let mut st = self.state.lock();
        let mark = st.users.entry(user.clone()).or_insert_with(|| Mark {
            channel,
            reached: 0,
            deals: HashMap::new(),
            open: 0,
            open_since: now,
            closed_ms: 0,
        });
        mark.open += 1;
        if mark.open == 1 {
            mark.open_since = now;
        }
        let (channel, engaged, left) = (
            mark.channel,
            mark.reached & Stage::Engaged.bit() != 0,
            self.engaged_ms.saturating_sub(mark.closed_ms),
        );
        if !engaged {
            st.due.push(Reverse((now + left, user.clone())));
        }
        st.reach(user, Stage::Viewers, None);
        for deal in live_deals {
            st.reach(user, Stage::Exposed, Some(deal));
        }
        let peak = st.peak.entry(bucket_of(now)).or_default();
        *peak = (*peak).max(viewers_here);
        channel
    }

    /// One of `user`'s connections here closed.
    pub fn left(&self, user: &Id, now: u64) {
        let mut st = self.state.lock();
        let Some(mark) = st.users.get_mut(user) else {
            return;
        };
        mark.open = mark.open.saturating_sub(1);
        if mark.open > 0 || mark.reached & Stage::Engaged.bit() != 0 {
            return;
        }
        let ms = now.saturating_sub(mark.open_since);
        mark.closed_ms += ms;
        let (channel, total) = (mark.channel, mark.closed_ms);
        if total >= self.engaged_ms {
            st.reach(user, Stage::Engaged, None);
        } else if ms > 0 {
            st.ops.push(Op::Connected {
                user: user.clone(),
                channel,
                ms,
            });
        }
    }

    /// `deal` went live (or was seen live for the first time here) while `users` were
    /// connected: each of them was exposed to it.
    pub fn deal_live<'a>(&self, deal: &Id, users: impl Iterator<Item = &'a Id>) {
        let mut st = self.state.lock();
        for user in users {
            st.reach(user, Stage::Exposed, Some(deal));
        }
    }

    /// `deal` ended: its per-user marks are dropped, so a long show's tally does not grow with
    /// every deal it ran. A checkout of a hold it left sends its `ordered` again, which the
    /// store counts once.
    pub fn deal_ended(&self, deal: &Id) {
        let mut st = self.state.lock();
        for mark in st.users.values_mut() {
            mark.deals.remove(deal);
        }
    }

    /// The user's channel here, if they joined.
    pub fn channel_of(&self, user: &Id) -> Option<Channel> {
        self.state.lock().users.get(user).map(|m| m.channel)
    }

    /// `user` sent a reserve for `deal`.
    pub fn tapped(&self, user: &Id, deal: &Id, now: u64) {
        let mut st = self.state.lock();
        *st.taps.entry(bucket_of(now)).or_default() += 1;
        st.reach(user, Stage::Tapped, Some(deal));
    }

    /// `user` got a hold on `deal`.
    pub fn held(&self, user: &Id, deal: &Id) {
        self.state.lock().reach(user, Stage::Held, Some(deal));
    }

    /// `user` checked out a hold of `deal` (the first time for that hold).
    pub fn ordered(&self, user: &Id, deal: &Id) {
        self.state.lock().reach(user, Stage::Ordered, Some(deal));
    }

    /// A reserve of `user` for `deal` was answered `sold_out`.
    pub fn sold_out(&self, user: &Id, deal: &Id) {
        let mut st = self.state.lock();
        let Some(channel) = st.users.get(user).map(|m| m.channel) else {
            return;
        };
        st.ops.push(Op::SoldOutTap {
            user: user.clone(),
            channel,
            deal: deal.clone(),
        });
    }

    /// A comment was published through this node.
    pub fn comment(&self, now: u64) {
        *self
            .state
            .lock()
            .comments
            .entry(bucket_of(now))
            .or_default() += 1;
    }

    /// The host pinned, started or ended a deal through this node.
    pub fn moment(&self, moment: Moment) {
        self.state.lock().ops.push(Op::Moment(moment));
    }

    /// Everything to send now: users whose time reached `engaged_ms` become engaged, the
    /// buckets' counts are added, and `viewers_here` counts toward this bucket's peak.
    pub fn take(&self, viewers_here: u64, now: u64) -> Vec<Op> {
        let mut st = self.state.lock();
        let peak = st.peak.entry(bucket_of(now)).or_default();
        *peak = (*peak).max(viewers_here);
        while let Some(Reverse((at, _))) = st.due.peek() {
            if *at > now {
                break;
            }
            let Some(Reverse((_, user))) = st.due.pop() else {
                break;
            };
            match st.engaged_now(&user, now, self.engaged_ms) {
                Some(true) => st.reach(&user, Stage::Engaged, None),
                // Still connected but not long enough (it left and came back): look again when
                // its time can next reach the mark. Gone for now: `joined` queues it again.
                Some(false) => {
                    if let Some(m) = st.users.get(&user).filter(|m| m.open > 0) {
                        let at = m.open_since + self.engaged_ms.saturating_sub(m.closed_ms);
                        st.due.push(Reverse((at.max(now + 1), user)));
                    }
                }
                None => {}
            }
        }
        let mut ops = std::mem::take(&mut st.ops);
        let current = bucket_of(now);
        for (bucket, n) in std::mem::take(&mut st.comments) {
            ops.push(Op::Comments { bucket, n });
        }
        for (bucket, n) in std::mem::take(&mut st.taps) {
            ops.push(Op::Taps { bucket, n });
        }
        // The current bucket's peak keeps growing until the bucket ends; send it every time
        // (the store keeps the maximum) and keep it for the next comparison.
        let peaks = std::mem::take(&mut st.peak);
        for (bucket, n) in peaks {
            ops.push(Op::PeakViewers { bucket, n });
            if bucket == current {
                st.peak.insert(bucket, n);
            }
        }
        ops
    }

    /// Ops a flush could not deliver, kept for the next one (the oldest dropped beyond
    /// [`MAX_PENDING_OPS`]). Returns how many were dropped.
    pub fn give_back(&self, mut ops: Vec<Op>) -> usize {
        let mut st = self.state.lock();
        ops.append(&mut st.ops);
        let over = ops.len().saturating_sub(MAX_PENDING_OPS);
        ops.drain(..over);
        st.dropped += over as u64;
        st.ops = ops;
        over
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> Id {
        Id::new(s).unwrap()
    }

    fn reached(ops: &[Op]) -> Vec<(String, Channel, Stage, Option<String>)> {
        ops.iter()
            .filter_map(|op| match op {
                Op::Reached {
                    user,
                    channel,
                    stage,
                    deal,
                } => Some((
                    user.to_string(),
                    *channel,
                    *stage,
                    deal.as_ref().map(|d| d.to_string()),
                )),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_user_keeps_the_channel_of_their_first_join_and_each_stage_is_sent_once() {
        let t = RoomTally::new(30_000);
        assert_eq!(
            t.joined(&id("u"), Channel::Paid, &[], 1, 1_000),
            Channel::Paid
        );
        t.left(&id("u"), 2_000);
        assert_eq!(
            t.joined(&id("u"), Channel::Live, &[], 1, 3_000),
            Channel::Paid
        );
        t.tapped(&id("u"), &id("d1"), 3_500);
        t.tapped(&id("u"), &id("d1"), 3_600);
        t.held(&id("u"), &id("d1"));
        let ops = t.take(1, 4_000);
        assert_eq!(
            reached(&ops),
            vec![
                ("u".into(), Channel::Paid, Stage::Viewers, None),
                ("u".into(), Channel::Paid, Stage::Tapped, Some("d1".into())),
                ("u".into(), Channel::Paid, Stage::Tapped, None),
                ("u".into(), Channel::Paid, Stage::Held, Some("d1".into())),
                ("u".into(), Channel::Paid, Stage::Held, None),
            ]
        );
        assert!(ops.contains(&Op::Taps { bucket: 0, n: 2 }));
        assert!(
            reached(&t.take(1, 5_000)).is_empty(),
            "nothing is sent twice"
        );
    }

    #[test]
    fn engaged_counts_time_over_several_connections_and_fires_while_connected() {
        let t = RoomTally::new(30_000);
        t.joined(&id("u"), Channel::Creator, &[], 1, 0);
        t.left(&id("u"), 20_000);
        let ops = t.take(0, 20_000);
        assert!(ops.contains(&Op::Connected {
            user: id("u"),
            channel: Channel::Creator,
            ms: 20_000
        }));
        t.joined(&id("u"), Channel::Creator, &[], 1, 25_000);
        assert!(
            !reached(&t.take(1, 34_999))
                .iter()
                .any(|r| r.2 == Stage::Engaged)
        );
        let ops = t.take(1, 35_000);
        assert_eq!(
            reached(&ops),
            vec![("u".into(), Channel::Creator, Stage::Engaged, None)]
        );
        t.left(&id("u"), 90_000);
        let after = t.take(0, 90_000);
        assert!(
            !after.iter().any(|op| matches!(op, Op::Connected { .. }))
                && reached(&after).is_empty(),
            "an engaged user sends no more time: {after:?}"
        );
    }

    #[test]
    fn a_short_visit_is_not_engaged() {
        let t = RoomTally::new(30_000);
        t.joined(&id("u"), Channel::Direct, &[], 1, 0);
        t.left(&id("u"), 29_999);
        let ops = t.take(0, 100_000);
        assert!(!reached(&ops).iter().any(|r| r.2 == Stage::Engaged));
    }

    #[test]
    fn viewers_connected_when_a_deal_goes_live_and_those_who_join_during_it_are_exposed() {
        let t = RoomTally::new(30_000);
        t.joined(&id("a"), Channel::Paid, &[], 1, 0);
        t.deal_live(&id("d1"), [id("a")].iter());
        t.joined(&id("b"), Channel::Live, &[id("d1")], 2, 10);
        t.deal_live(&id("d1"), [id("a"), id("b")].iter());
        let exposed: Vec<_> = reached(&t.take(2, 20))
            .into_iter()
            .filter(|r| r.2 == Stage::Exposed)
            .collect();
        assert_eq!(
            exposed,
            vec![
                ("a".into(), Channel::Paid, Stage::Exposed, Some("d1".into())),
                ("a".into(), Channel::Paid, Stage::Exposed, None),
                ("b".into(), Channel::Live, Stage::Exposed, Some("d1".into())),
                ("b".into(), Channel::Live, Stage::Exposed, None),
            ]
        );
    }

    #[test]
    fn an_ended_deal_leaves_no_marks_and_a_late_order_is_still_sent() {
        let t = RoomTally::new(30_000);
        t.joined(&id("a"), Channel::Paid, &[id("d1")], 1, 0);
        t.held(&id("a"), &id("d1"));
        t.take(1, 1);
        t.deal_ended(&id("d1"));
        assert!(t.state.lock().users[&id("a")].deals.is_empty());
        t.ordered(&id("a"), &id("d1"));
        assert_eq!(
            reached(&t.take(1, 2)),
            vec![
                ("a".into(), Channel::Paid, Stage::Ordered, Some("d1".into())),
                ("a".into(), Channel::Paid, Stage::Ordered, None),
            ]
        );
    }

    #[test]
    fn the_peak_of_a_bucket_is_the_most_viewers_at_once_and_counts_go_per_bucket() {
        let t = RoomTally::new(30_000);
        t.joined(&id("a"), Channel::Paid, &[], 1, 1_000);
        t.joined(&id("b"), Channel::Paid, &[], 2, 2_000);
        t.comment(3_000);
        t.comment(12_000);
        let ops = t.take(1, 12_500);
        assert!(ops.contains(&Op::PeakViewers { bucket: 0, n: 2 }));
        assert!(ops.contains(&Op::PeakViewers {
            bucket: 10_000,
            n: 1
        }));
        assert!(ops.contains(&Op::Comments { bucket: 0, n: 1 }));
        assert!(ops.contains(&Op::Comments {
            bucket: 10_000,
            n: 1
        }));
    }

    #[test]
    fn ops_given_back_are_sent_first_next_time_and_the_backlog_is_bounded() {
        let t = RoomTally::new(30_000);
        t.joined(&id("a"), Channel::Paid, &[], 1, 0);
        let first = t.take(1, 1);
        t.joined(&id("b"), Channel::Paid, &[], 2, 2);
        assert_eq!(t.give_back(first.clone()), 0);
        let again = t.take(2, 3);
        assert_eq!(reached(&again)[0].0, "a");
        let many = vec![Op::Comments { bucket: 0, n: 1 }; MAX_PENDING_OPS + 5];
        assert_eq!(t.give_back(many), 5);
    }
}
