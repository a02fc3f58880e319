//! Did every viewer see the same room? The protocol promises that a room's durable events carry
//! `seq` 1, 2, 3, … "in the same order for every viewer on every hub node". With the viewers of
//! one room spread over several hub nodes, this module checks that promise from the clients'
//! side, in two parts:
//!
//! - [`Track`]: one viewer's own order. Each durable seq that arrives is in order, after a gap,
//!   a duplicate, or late (one that a gap had skipped arriving after a later one).
//! - Agreement between viewers: that the same seq carried the same event for everyone who got
//!   it. [`Ledger`] does it for scenario runs by fingerprinting each event (its kind, `id`,
//!   `text` and `status`); [`Agreement`] does it for `fanout`, where every event is one of the
//!   sender's numbered messages, by comparing each viewer's runs of (seq, message number) once
//!   at the end, so receiving a frame costs no shared lock.
//!
//! Two nodes that numbered the room's events independently (no shared sequencer) give different
//! events the same seq; viewers on different nodes then disagree and this is where it shows.

use std::collections::{BTreeMap, HashMap};
use std::hash::{DefaultHasher, Hash, Hasher};

use parking_lot::Mutex;

/// A stretch of consecutive seqs that carried consecutive tags (`tag` at `seq`, `tag + 1` at
/// `seq + 1`, …), as one viewer received them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Run {
    pub seq: u64,
    pub tag: u64,
    pub len: u64,
}

impl Run {
    fn end(&self) -> u64 {
        self.seq.saturating_add(self.len)
    }

    fn contains(&self, seq: u64) -> bool {
        seq >= self.seq && seq < self.end()
    }
}

/// How one durable event fitted into a viewer's sequence.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arrival {
    /// The next seq (or the first, when the viewer had no position yet).
    InOrder,
    /// After `missed` seqs that did not arrive (yet).
    Gap { missed: u64 },
    /// A seq this viewer already had, or one older than where it joined.
    Duplicate,
    /// A seq a gap had skipped, arriving after a later one: out of order. It was counted in
    /// that gap's `missed`, so it is no longer missing.
    Late,
}

/// One viewer's durable seqs, in arrival order.
///
/// Guarantees: every seq it is given is classified exactly once as in order, gap, duplicate or
/// late; `runs` lists each accepted (non-duplicate) seq exactly once with its tag.
#[derive(Debug, Default)]
pub struct Track {
    runs: Vec<Run>,
    /// The seq that should come next; `None` until a welcome or the first event says where.
    expect: Option<u64>,
    /// The first seq this viewer was owed (its first welcome's seq + 1): anything older is part
    /// of what it joined to, not something it missed.
    first: Option<u64>,
}

impl Track {
    /// The viewer's position is `seq`: a welcome said so (its `seq`, or the `since` a resume
    /// continued from). A position below what the viewer already had means the room's numbering
    /// started over (a hub that forgot the room): what came before is a closed chapter.
    pub fn position_at(&mut self, seq: u64) {
        let next = seq.saturating_add(1);
        if self.expect.is_some_and(|e| next < e) {
            self.runs.clear();
            self.first = None;
        }
        self.expect = Some(next);
        self.first.get_or_insert(next);
    }

    /// The last seq this viewer is at (0 before it knew anything).
    pub fn position(&self) -> u64 {
        self.expect.map_or(0, |e| e.saturating_sub(1))
    }

    /// Takes one durable event: its `seq` and the tag that identifies it (the sender's message
    /// number in `fanout`; anything, e.g. the seq itself, where events are compared otherwise).
    pub fn arrive(&mut self, seq: u64, tag: u64) -> Arrival {
        let arrival = match self.expect {
            None => Arrival::InOrder,
            Some(e) if seq == e => Arrival::InOrder,
            Some(e) if seq > e => Arrival::Gap { missed: seq - e },
            Some(_) if self.first.is_some_and(|f| seq >= f) && !self.has(seq) => Arrival::Late,
            Some(_) => Arrival::Duplicate,
        };
        if arrival == Arrival::Duplicate {
            return arrival;
        }
        if arrival != Arrival::Late {
            self.expect = Some(seq.saturating_add(1));
            self.first.get_or_insert(seq);
        }
        self.append(seq, tag);
        arrival
    }

    /// What this viewer accepted, as runs in arrival order.
    pub fn runs(&self) -> &[Run] {
        &self.runs
    }

    fn has(&self, seq: u64) -> bool {
        self.runs.iter().rev().any(|r| r.contains(seq))
    }

    fn append(&mut self, seq: u64, tag: u64) {
        if let Some(last) = self.runs.last_mut()
            && last.end() == seq
            && last.tag.checked_add(last.len) == Some(tag)
        {
            last.len += 1;
            return;
        }
        self.runs.push(Run { seq, tag, len: 1 });
    }
}

/// Two viewers got different events under one seq.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Disagreement {
    pub seq: u64,
    /// The node of the viewer that reported the seq first, and what it got.
    pub first_node: usize,
    pub first: String,
    /// The node of a later viewer, and what it got instead.
    pub then_node: usize,
    pub then: String,
}

/// Every viewer's (seq -> sender's message number) compared, for `fanout`.
///
/// Guarantees: after [`absorb`](Agreement::absorb)ing every viewer, `mismatched` is the number
/// of (viewer, seq) deliveries whose message number differs from the one the first viewer to
/// report that seq got, and `disagreeing_viewers` the number of viewers with at least one. Both
/// are 0 exactly when all viewers agree on every seq any two of them share.
#[derive(Debug, Default)]
pub struct Agreement {
    /// Disjoint spans of seqs: start -> (end, exclusive; message number minus seq; node).
    spans: BTreeMap<u64, (u64, i128, usize)>,
    pub viewers: u64,
    pub disagreeing_viewers: u64,
    pub mismatched: u64,
    /// The first few disagreements, for people.
    pub samples: Vec<Disagreement>,
}

/// Samples kept of each kind of violation.
pub const SAMPLES: usize = 5;

fn offset(r: &Run) -> i128 {
    i128::from(r.tag) - i128::from(r.seq)
}

impl Agreement {
    /// Compares one viewer's runs (from a viewer on `node`) with everything absorbed so far,
    /// then adds the seqs nobody had reported yet.
    pub fn absorb(&mut self, runs: &[Run], node: usize) {
        self.viewers += 1;
        let mut disagreed = false;
        for r in runs {
            disagreed |= self.absorb_run(r, node);
        }
        if disagreed {
            self.disagreeing_viewers += 1;
        }
    }

    /// One run; true if it disagreed anywhere.
    fn absorb_run(&mut self, r: &Run, node: usize) -> bool {
        let (start, end, ours) = (r.seq, r.end(), offset(r));
        let before = self
            .spans
            .range(..start)
            .next_back()
            .filter(|(_, s)| s.0 > start)
            .map(|(k, s)| (*k, *s));
        let overlapping: Vec<(u64, (u64, i128, usize))> = before
            .into_iter()
            .chain(self.spans.range(start..end).map(|(k, s)| (*k, *s)))
            .collect();
        let mut cursor = start;
        let mut fresh = Vec::new();
        let mut disagreed = false;
        for (a, (b, theirs, their_node)) in overlapping {
            let (lo, hi) = (a.max(start), b.min(end));
            if cursor < lo {
                fresh.push((cursor, lo));
            }
            if theirs != ours {
                disagreed = true;
                self.mismatched += hi - lo;
                if self.samples.len() < SAMPLES {
                    let n = |off: i128| format!("message #{}", i128::from(lo) + off);
                    self.samples.push(Disagreement {
                        seq: lo,
                        first_node: their_node,
                        first: n(theirs),
                        then_node: node,
                        then: n(ours),
                    });
                }
            }
            cursor = cursor.max(hi);
        }
        if cursor < end {
            fresh.push((cursor, end));
        }
        for (lo, hi) in fresh {
            self.spans.insert(lo, (hi, ours, node));
        }
        disagreed
    }
}

/// The value of the first `"key":` in a JSON frame, raw: a string's contents without its
/// quotes (escapes left as they are), or a number or literal.
fn field<'a>(frame: &'a [u8], key: &[u8]) -> Option<&'a [u8]> {
    let at = memchr::memmem::find(frame, key)? + key.len();
    let rest = &frame[at..];
    if let Some(body) = rest.strip_prefix(b"\"") {
        let mut escaped = false;
        let end = body.iter().position(|&c| {
            let close = c == b'"' && !escaped;
            escaped = c == b'\\' && !escaped;
            close
        })?;
        return Some(&body[..end]);
    }
    let end = rest
        .iter()
        .position(|&c| c == b',' || c == b'}')
        .unwrap_or(rest.len());
    Some(&rest[..end])
}

/// The fields that tell one durable event from another: a comment's or deletion's `id`, a
/// pinned product's `id`, a deal's `id` and `status`, a comment's or announcement's `text`.
const IDENTITY: [&[u8]; 3] = [br#""id":"#, br#""text":"#, br#""status":"#];

/// A hash of what the event is: its kind and its [`IDENTITY`] fields (not its seq, so two
/// events under one seq compare, and not its `ts` or `remaining`).
pub fn fingerprint(kind: &str, frame: &[u8]) -> u64 {
    let mut h = DefaultHasher::new();
    kind.hash(&mut h);
    for key in IDENTITY {
        field(frame, key).hash(&mut h);
    }
    h.finish()
}

/// The event for people: kind and identity fields, each cut to a readable length.
pub fn describe(kind: &str, frame: &[u8]) -> String {
    let mut out = kind.to_owned();
    for key in IDENTITY {
        if let Some(v) = field(frame, key) {
            let name = String::from_utf8_lossy(&key[1..key.len() - 2]).into_owned();
            let v = String::from_utf8_lossy(v);
            let short: String = v.chars().take(48).collect();
            let more = if short.len() < v.len() { "…" } else { "" };
            out.push_str(&format!(" {name}=\"{short}{more}\""));
        }
    }
    out
}

/// Who saw what first under one seq.
struct Sighting {
    fingerprint: u64,
    node: usize,
    /// When (µs since the run's start).
    at_us: u64,
    what: Box<str>,
}

/// One viewer's stay in a room under one continuous numbering: from the welcome at `from_us`
/// (a resumed welcome continues the stay) until it left or the run ended at `to_us`, at seq
/// `last` when it left.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stay {
    pub node: usize,
    pub from_us: u64,
    pub to_us: u64,
    pub last: u64,
}

/// An event the room had while a viewer was there that the viewer never got.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Missed {
    pub seq: u64,
    pub what: String,
    /// The node of the viewer that got it first, and when.
    pub seen_node: usize,
    pub seen_at_us: u64,
    /// The viewer that never got it.
    pub stay: Stay,
}

/// What [`Ledger::missed`] found.
#[derive(Debug, Default)]
pub struct MissedReport {
    /// Per node: events missed by that node's viewers, one per (viewer stay, seq).
    pub per_node: Vec<u64>,
    pub samples: Vec<Missed>,
}

/// One room's durable events as its viewers reported them, for scenario runs: under each seq,
/// the event the first viewer to report that seq got, and when.
///
/// Guarantees: [`check`](Ledger::check) returns a [`Disagreement`] exactly when the event
/// differs (by [`fingerprint`]) from the first one reported under that seq;
/// [`missed`](Ledger::missed) counts the events another viewer got while a viewer was in the
/// room (with a margin for delivery time) that lie beyond the last seq that viewer reached.
#[derive(Default)]
pub struct Ledger {
    seen: Mutex<HashMap<u64, Sighting>>,
    stays: Mutex<Vec<Stay>>,
}

impl Ledger {
    /// Compares the event `frame` (of type `kind`) a viewer on `node` got under `seq` at
    /// `now_us` with the first report of that seq, recording it if it is the first.
    pub fn check(
        &self,
        seq: u64,
        kind: &str,
        frame: &[u8],
        node: usize,
        now_us: u64,
    ) -> Option<Disagreement> {
        let fp = fingerprint(kind, frame);
        let mut seen = self.seen.lock();
        let first = seen.entry(seq).or_insert_with(|| Sighting {
            fingerprint: fp,
            node,
            at_us: now_us,
            what: describe(kind, frame).into(),
        });
        (first.fingerprint != fp).then(|| Disagreement {
            seq,
            first_node: first.node,
            first: first.what.to_string(),
            then_node: node,
            then: describe(kind, frame),
        })
    }

    /// Records a finished stay, to be compared by [`missed`](Ledger::missed).
    pub fn stayed(&self, stay: Stay) {
        self.stays.lock().push(stay);
    }

    /// Every stay compared with the room's sightings: an event first seen (by anyone) while the
    /// viewer was there, at least `margin_us` before it left, under a seq above the last it
    /// reached, never got to it. (Seqs below its last that it did not get are its gaps,
    /// counted as they happen.) A node whose viewers get nothing, or that numbers the room's
    /// events in a range of its own, shows here even where no seq is shared.
    pub fn missed(&self, nodes: usize, margin_us: u64) -> MissedReport {
        let seen = self.seen.lock();
        let mut by_time: Vec<(u64, u64)> = seen.iter().map(|(seq, s)| (s.at_us, *seq)).collect();
        by_time.sort_unstable();
        let mut out = MissedReport {
            per_node: vec![0; nodes],
            samples: Vec::new(),
        };
        for stay in self.stays.lock().iter() {
            let from = by_time.partition_point(|(t, _)| *t < stay.from_us);
            for &(at, seq) in by_time[from..].iter().take_while(|(t, _)| *t <= stay.to_us) {
                if seq <= stay.last || at.saturating_add(margin_us) > stay.to_us {
                    continue;
                }
                if let Some(n) = out.per_node.get_mut(stay.node) {
                    *n += 1;
                }
                if out.samples.len() < SAMPLES
                    && let Some(s) = seen.get(&seq)
                {
                    out.samples.push(Missed {
                        seq,
                        what: s.what.to_string(),
                        seen_node: s.node,
                        seen_at_us: at,
                        stay: *stay,
                    });
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_track_classifies_order_gaps_duplicates_and_late_arrivals() {
        let mut t = Track::default();
        t.position_at(10);
        assert_eq!(t.arrive(11, 11), Arrival::InOrder);
        assert_eq!(t.arrive(12, 12), Arrival::InOrder);
        assert_eq!(t.arrive(15, 15), Arrival::Gap { missed: 2 });
        assert_eq!(t.arrive(13, 13), Arrival::Late);
        assert_eq!(t.arrive(13, 13), Arrival::Duplicate);
        assert_eq!(t.arrive(12, 12), Arrival::Duplicate);
        assert_eq!(t.arrive(9, 9), Arrival::Duplicate, "older than the welcome");
        assert_eq!(t.arrive(16, 16), Arrival::InOrder);
        assert_eq!(t.position(), 16);
        assert_eq!(
            t.runs(),
            &[
                Run {
                    seq: 11,
                    tag: 11,
                    len: 2
                },
                Run {
                    seq: 15,
                    tag: 15,
                    len: 1
                },
                Run {
                    seq: 13,
                    tag: 13,
                    len: 1
                },
                Run {
                    seq: 16,
                    tag: 16,
                    len: 1
                },
            ]
        );
    }

    #[test]
    fn a_track_without_a_position_takes_the_first_seq_as_in_order() {
        let mut t = Track::default();
        assert_eq!(t.arrive(7, 1), Arrival::InOrder);
        assert_eq!(t.arrive(8, 2), Arrival::InOrder);
        assert_eq!(
            t.runs(),
            &[Run {
                seq: 7,
                tag: 1,
                len: 2
            }]
        );
    }

    #[test]
    fn a_resume_continues_and_a_reset_room_starts_a_new_chapter() {
        let mut t = Track::default();
        t.position_at(0);
        t.arrive(1, 1);
        t.arrive(2, 2);
        t.position_at(2); // resumed from since=2
        assert_eq!(t.arrive(3, 3), Arrival::InOrder);
        t.position_at(0); // the hub forgot the room
        assert_eq!(t.arrive(1, 1), Arrival::InOrder);
        assert_eq!(
            t.runs(),
            &[Run {
                seq: 1,
                tag: 1,
                len: 1
            }]
        );
    }

    #[test]
    fn runs_break_where_the_tags_stop_following_the_seqs() {
        let mut t = Track::default();
        for (s, n) in [(1, 1), (2, 2), (3, 4), (4, 5)] {
            t.arrive(s, n);
        }
        assert_eq!(
            t.runs(),
            &[
                Run {
                    seq: 1,
                    tag: 1,
                    len: 2
                },
                Run {
                    seq: 3,
                    tag: 4,
                    len: 2
                }
            ]
        );
    }

    #[test]
    fn viewers_that_share_a_numbering_agree() {
        let mut a = Agreement::default();
        a.absorb(
            &[Run {
                seq: 1,
                tag: 5,
                len: 100,
            }],
            0,
        );
        a.absorb(
            &[Run {
                seq: 40,
                tag: 44,
                len: 100,
            }],
            1,
        );
        a.absorb(
            &[
                Run {
                    seq: 1,
                    tag: 5,
                    len: 10,
                },
                Run {
                    seq: 20,
                    tag: 24,
                    len: 200,
                },
            ],
            2,
        );
        assert_eq!((a.viewers, a.disagreeing_viewers, a.mismatched), (3, 0, 0));
        assert!(a.samples.is_empty());
    }

    #[test]
    fn viewers_of_independent_numberings_disagree_on_the_seqs_they_share() {
        let mut a = Agreement::default();
        a.absorb(
            &[Run {
                seq: 1,
                tag: 1,
                len: 10,
            }],
            0,
        );
        // Another node numbered the same messages from 1 while its own seq 1..3 were others.
        a.absorb(
            &[
                Run {
                    seq: 1,
                    tag: 101,
                    len: 3,
                },
                Run {
                    seq: 4,
                    tag: 4,
                    len: 7,
                },
            ],
            1,
        );
        assert_eq!((a.viewers, a.disagreeing_viewers, a.mismatched), (2, 1, 3));
        assert_eq!(
            a.samples,
            vec![Disagreement {
                seq: 1,
                first_node: 0,
                first: "message #1".into(),
                then_node: 1,
                then: "message #101".into(),
            }]
        );
        // Seqs 4..10 matched and 11 was new: a third viewer that agrees with node 0 is fine.
        a.absorb(
            &[Run {
                seq: 1,
                tag: 1,
                len: 11,
            }],
            0,
        );
        assert_eq!(a.disagreeing_viewers, 1);
    }

    #[test]
    fn fields_are_read_raw_and_escapes_do_not_end_a_string() {
        let f = br#"{"type":"comment","seq":3,"id":"c3","user":"u","name":"n","text":"say \"id\": \\","ts":9}"#;
        assert_eq!(field(f, br#""id":"#), Some(&b"c3"[..]));
        assert_eq!(field(f, br#""text":"#), Some(&br#"say \"id\": \\"#[..]));
        assert_eq!(field(f, br#""ts":"#), Some(&b"9"[..]));
        assert_eq!(field(f, br#""status":"#), None);
    }

    #[test]
    fn the_same_event_matches_and_a_different_one_under_its_seq_does_not() {
        let a = br#"{"type":"comment","seq":3,"id":"c3","user":"u","name":"n","text":"hi","ts":1}"#;
        let a_later =
            br#"{"type":"comment","seq":3,"id":"c3","user":"u","name":"n","text":"hi","ts":2}"#;
        let b = br#"{"type":"comment","seq":3,"id":"c3","user":"w","name":"w","text":"yo","ts":1}"#;
        let ledger = Ledger::default();
        assert_eq!(ledger.check(3, "comment", a, 0, 10), None);
        assert_eq!(
            ledger.check(3, "comment", a_later, 1, 20),
            None,
            "ts is not identity"
        );
        let d = ledger
            .check(3, "comment", b, 1, 30)
            .expect("a disagreement");
        assert_eq!((d.seq, d.first_node, d.then_node), (3, 0, 1));
        assert_eq!(d.first, r#"comment id="c3" text="hi""#);
        assert_eq!(d.then, r#"comment id="c3" text="yo""#);
        let deal_live = br#"{"type":"deal","seq":4,"deal":{"id":"d","status":"live"}}"#;
        let deal_ended = br#"{"type":"deal","seq":4,"deal":{"id":"d","status":"ended"}}"#;
        assert_ne!(
            fingerprint("deal", deal_live),
            fingerprint("deal", deal_ended)
        );
    }

    fn comment(seq: u64) -> Vec<u8> {
        format!(r#"{{"type":"comment","seq":{seq},"id":"c{seq}","text":"t{seq}"}}"#).into_bytes()
    }

    #[test]
    fn a_viewer_that_never_got_what_its_room_had_meanwhile_missed_it() {
        const S: u64 = 1_000_000;
        let ledger = Ledger::default();
        // Node 0's viewers see seqs 300..=309, one a second from 10 s on.
        for (i, seq) in (300..310).enumerate() {
            ledger.check(seq, "comment", &comment(seq), 0, (10 + i as u64) * S);
        }
        // A viewer on node 0 that got them all, and one that joined at 11 s.
        let all = Stay {
            node: 0,
            from_us: 9 * S,
            to_us: 30 * S,
            last: 309,
        };
        ledger.stayed(all);
        ledger.stayed(Stay {
            from_us: 11 * S + 1,
            ..all
        });
        // A viewer on node 1 there the whole time whose numbering stayed at 1..=4.
        ledger.stayed(Stay {
            node: 1,
            last: 4,
            ..all
        });
        // One on node 1 that left at 12.5 s, before the margin of seqs 301 and later ended.
        ledger.stayed(Stay {
            node: 1,
            from_us: 9 * S,
            to_us: 12 * S + S / 2,
            last: 4,
        });
        // One on node 0 that got nothing after 305 and left at 30 s: it missed 306..=309.
        ledger.stayed(Stay { last: 305, ..all });
        let m = ledger.missed(2, 2 * S);
        assert_eq!(m.per_node, vec![4, 10 + 1]);
        assert_eq!(m.samples[0].seq, 300);
        assert_eq!(m.samples[0].what, r#"comment id="c300" text="t300""#);
        assert_eq!(m.samples[0].stay.node, 1);
    }
}
