//! The delivery order of one room on one node: events arrive from a subscription in any order,
//! with duplicates and holes (a dropped subscription, a reconnect), and leave in `seq` order with
//! no hole and no repeat. A hole is repaired from the room's history before anything later is
//! delivered; history that no longer covers the hole (or a new epoch: the log was lost) is
//! reported as lost, never papered over.

use std::collections::BTreeMap;

use super::Event;

/// What the caller must do after feeding a [`Track`].
#[derive(Debug, Default, PartialEq)]
pub struct Ready {
    /// Events to deliver now, in this order (consecutive `seq`s).
    pub deliver: Vec<(u64, Event)>,
    /// Fetch the history from this `seq` on and pass it to [`Track::repaired`].
    pub repair_from: Option<u64>,
    /// The room's log cannot be followed any more; reopen the room.
    pub lost: bool,
    /// Events dropped because they were already delivered.
    pub duplicates: u64,
}

/// Order-keeping state of one room's subscription. Pure: no I/O, no clock.
#[derive(Debug, Default)]
pub struct Track {
    /// The last `seq` delivered; None until the room's state is loaded.
    applied: Option<u64>,
    epoch: String,
    pending: BTreeMap<u64, Event>,
    repairing: bool,
    /// The `applied` at the last report that found this node behind the room.
    behind_at: Option<u64>,
}

impl Track {
    /// A room whose state is not loaded yet: events are buffered.
    pub fn new() -> Self {
        Track::default()
    }

    /// The last `seq` delivered, once loaded.
    pub fn applied(&self) -> Option<u64> {
        self.applied
    }

    /// The state was loaded at `seq` in `epoch`: buffered events after it are delivered.
    pub fn loaded(&mut self, seq: u64, epoch: &str) -> Ready {
        self.applied = Some(seq);
        self.epoch = epoch.to_owned();
        self.drain()
    }

    /// An event from the subscription.
    pub fn offer(&mut self, seq: u64, epoch: &str, event: Event) -> Ready {
        let Some(applied) = self.applied else {
            self.pending.insert(seq, event);
            return Ready::default();
        };
        if epoch != self.epoch {
            if self.epoch.is_empty() {
                self.epoch = epoch.to_owned();
            } else {
                return self.lose();
            }
        }
        if seq <= applied {
            return Ready {
                duplicates: 1,
                ..Ready::default()
            };
        }
        self.pending.insert(seq, event);
        self.drain()
    }

    /// The history from the `repair_from` asked for, oldest first (possibly cut short).
    pub fn repaired(&mut self, entries: Vec<(u64, Event)>) -> Ready {
        self.repairing = false;
        let Some(applied) = self.applied else {
            return Ready::default();
        };
        match entries.first() {
            Some((first, _)) if *first > applied + 1 => return self.lose(),
            None if !self.pending.is_empty() => return self.lose(),
            _ => {}
        }
        for (seq, event) in entries {
            if seq > applied {
                self.pending.entry(seq).or_insert(event);
            }
        }
        self.drain()
    }

    /// The room's latest `seq` and epoch as Redis reported them. Behind on two reports in a
    /// row with nothing delivered in between (a message lost with no later one to reveal the
    /// hole) starts a repair; behind but delivering is a node catching up, not a loss.
    pub fn position(&mut self, seq: u64, epoch: &str) -> Ready {
        let Some(applied) = self.applied else {
            return Ready::default();
        };
        if !self.epoch.is_empty() && !epoch.is_empty() && epoch != self.epoch {
            return self.lose();
        }
        if seq <= applied || self.repairing {
            self.behind_at = None;
            return Ready::default();
        }
        if self.behind_at != Some(applied) {
            self.behind_at = Some(applied);
            return Ready::default();
        }
        self.behind_at = None;
        self.repairing = true;
        Ready {
            repair_from: Some(applied + 1),
            ..Ready::default()
        }
    }

    /// Asks for everything after the last delivered event (after a resubscription, when
    /// anything may have been missed).
    pub fn resync(&mut self) -> Ready {
        match self.applied {
            Some(applied) if !self.repairing => {
                self.repairing = true;
                Ready {
                    repair_from: Some(applied + 1),
                    ..Ready::default()
                }
            }
            _ => Ready::default(),
        }
    }

    /// A repair failed (Redis unreachable); the next position report or event retries.
    pub fn repair_failed(&mut self) {
        self.repairing = false;
    }

    fn lose(&mut self) -> Ready {
        self.pending.clear();
        self.repairing = false;
        Ready {
            lost: true,
            ..Ready::default()
        }
    }

    fn drain(&mut self) -> Ready {
        let mut ready = Ready::default();
        let Some(mut applied) = self.applied else {
            return ready;
        };
        while let Some(entry) = self.pending.first_entry() {
            let seq = *entry.key();
            if seq <= applied {
                entry.remove();
                ready.duplicates += 1;
            } else if seq == applied + 1 {
                ready.deliver.push((seq, entry.remove()));
                applied = seq;
            } else {
                break;
            }
        }
        self.applied = Some(applied);
        if !self.pending.is_empty() && !self.repairing {
            self.repairing = true;
            ready.repair_from = Some(applied + 1);
        }
        ready
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(n: u64) -> Event {
        Event::Announcement {
            text: format!("a{n}"),
        }
    }

    fn seqs(r: &Ready) -> Vec<u64> {
        r.deliver.iter().map(|(s, _)| *s).collect()
    }

    #[test]
    fn events_before_the_load_wait_and_those_the_state_covers_are_dropped() {
        let mut t = Track::new();
        assert_eq!(t.offer(5, "e", ev(5)), Ready::default());
        assert_eq!(t.offer(6, "e", ev(6)), Ready::default());
        let r = t.loaded(5, "e");
        assert_eq!(seqs(&r), vec![6]);
        assert_eq!(r.duplicates, 1);
        assert_eq!(r.repair_from, None);
    }

    #[test]
    fn a_hole_holds_back_later_events_until_the_history_fills_it() {
        let mut t = Track::new();
        t.loaded(0, "e");
        assert_eq!(seqs(&t.offer(1, "e", ev(1))), vec![1]);
        let r = t.offer(4, "e", ev(4));
        assert!(r.deliver.is_empty());
        assert_eq!(r.repair_from, Some(2));
        // A second later event during the repair asks for no second repair.
        let r = t.offer(5, "e", ev(5));
        assert_eq!(r.repair_from, None);
        let r = t.repaired(vec![(2, ev(2)), (3, ev(3)), (4, ev(4))]);
        assert_eq!(seqs(&r), vec![2, 3, 4, 5]);
        assert_eq!(t.applied(), Some(5));
    }

    #[test]
    fn duplicates_are_dropped_and_counted() {
        let mut t = Track::new();
        t.loaded(3, "e");
        let r = t.offer(2, "e", ev(2));
        assert!(r.deliver.is_empty());
        assert_eq!(r.duplicates, 1);
        assert_eq!(seqs(&t.offer(4, "e", ev(4))), vec![4]);
        assert_eq!(t.offer(4, "e", ev(4)).duplicates, 1);
    }

    #[test]
    fn history_that_no_longer_covers_the_hole_is_lost_not_skipped() {
        let mut t = Track::new();
        t.loaded(10, "e");
        assert_eq!(t.offer(15, "e", ev(15)).repair_from, Some(11));
        let r = t.repaired(vec![(13, ev(13)), (14, ev(14)), (15, ev(15))]);
        assert!(r.lost && r.deliver.is_empty());
    }

    #[test]
    fn an_empty_history_for_a_known_hole_is_lost() {
        let mut t = Track::new();
        t.loaded(10, "e");
        t.offer(12, "e", ev(12));
        assert!(t.repaired(Vec::new()).lost);
    }

    #[test]
    fn a_new_epoch_means_the_log_was_lost() {
        let mut t = Track::new();
        t.loaded(10, "e1");
        assert!(t.offer(11, "e2", ev(11)).lost);
        let mut t = Track::new();
        t.loaded(10, "e1");
        assert!(t.position(10, "e2").lost);
    }

    #[test]
    fn a_room_loaded_before_its_epoch_existed_adopts_the_first_one() {
        let mut t = Track::new();
        t.loaded(0, "");
        assert_eq!(seqs(&t.offer(1, "e", ev(1))), vec![1]);
        assert_eq!(seqs(&t.offer(2, "e", ev(2))), vec![2]);
    }

    #[test]
    fn a_silent_loss_is_found_by_two_position_reports_in_a_row() {
        let mut t = Track::new();
        t.loaded(4, "e");
        // The publish of 5 may still be on its way: one report is not enough.
        assert_eq!(t.position(5, "e").repair_from, None);
        assert_eq!(t.position(5, "e").repair_from, Some(5));
        let r = t.repaired(vec![(5, ev(5))]);
        assert_eq!(seqs(&r), vec![5]);
        assert_eq!(t.position(5, "e"), Ready::default());
    }

    #[test]
    fn a_node_behind_but_delivering_is_catching_up_not_losing() {
        let mut t = Track::new();
        t.loaded(0, "e");
        assert_eq!(t.position(10, "e").repair_from, None);
        t.offer(1, "e", ev(1));
        assert_eq!(
            t.position(12, "e").repair_from,
            None,
            "it delivered since the last report"
        );
        t.offer(2, "e", ev(2));
        assert_eq!(t.position(12, "e").repair_from, None);
        assert_eq!(
            t.position(12, "e").repair_from,
            Some(3),
            "stuck at 2 for two reports"
        );
    }

    #[test]
    fn a_resync_finds_what_was_missed_and_is_quiet_when_nothing_was() {
        let mut t = Track::new();
        t.loaded(7, "e");
        assert_eq!(t.resync().repair_from, Some(8));
        assert_eq!(t.repaired(Vec::new()), Ready::default());
        assert_eq!(t.resync().repair_from, Some(8));
        assert_eq!(seqs(&t.repaired(vec![(8, ev(8)), (9, ev(9))])), vec![8, 9]);
    }

    #[test]
    fn a_failed_repair_is_retried_by_the_next_event() {
        let mut t = Track::new();
        t.loaded(0, "e");
        assert_eq!(t.offer(2, "e", ev(2)).repair_from, Some(1));
        t.repair_failed();
        assert_eq!(t.offer(3, "e", ev(3)).repair_from, Some(1));
    }
}
