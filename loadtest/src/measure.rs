//! What a run measures, shared by the one who produces it and the one who reads it: [`crate::run`]
//! fills [`Metrics`] while clients play and hands back an [`Outcome`] (with its per-second
//! [`Second`] timeline and the deals' [`AuditRow`]s); [`crate::report`] turns an outcome into the
//! report. Neither of those two imports the other.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use crate::funnel::{ViewerFacts, Window};
use crate::hist::Hist;

/// How the durable seqs fitted into each viewer's sequence.
#[derive(Default)]
pub struct SeqCounts {
    /// Seqs skipped by a gap (or a refused resume) that never arrived.
    pub lost: AtomicU64,
    pub duplicates: AtomicU64,
    /// Seqs that arrived after a later one.
    pub out_of_order: AtomicU64,
    /// Events another viewer of the room got while this one was there that it never got, and
    /// no gap counted (see [`crate::sequence::Ledger::missed`]).
    pub missed: AtomicU64,
    /// Other viewers' comments the hub thinned for a viewer that fell behind (`skipped`
    /// markers): not lost, not shown.
    pub thinned: AtomicU64,
}

/// What the clients of one hub node (one URL) measured.
#[derive(Default)]
pub struct NodeMetrics {
    /// Viewers (not hosts) assigned to the node.
    pub viewers: AtomicU64,
    pub connects_ok: AtomicU64,
    pub connects_failed: AtomicU64,
    /// Frames its clients received.
    pub deliveries: AtomicU64,
    pub seq: SeqCounts,
    pub comment: Mutex<Hist>,
}

/// Everything the clients measure.
#[derive(Default)]
pub struct Metrics {
    pub comment: Mutex<Hist>,
    /// Comment latencies of the current second; the timeline takes them every second.
    pub comment_window: Mutex<Hist>,
    pub stock: Mutex<Hist>,
    pub reserve: Mutex<Hist>,
    pub checkout: Mutex<Hist>,
    pub cancel: Mutex<Hist>,
    pub connect: Mutex<Hist>,
    pub deliveries: AtomicU64,
    pub comments_sent: AtomicU64,
    pub connects_ok: AtomicU64,
    pub connects_failed: AtomicU64,
    /// Every failed connect, by reason.
    pub connect_failures: crate::failures::Failures,
    pub connected: AtomicU64,
    pub seq: SeqCounts,
    /// Deliveries whose event differed from the one another viewer got under the same seq.
    pub seq_mismatches: AtomicU64,
    /// The first few of them, for people.
    pub seq_mismatch_samples: Mutex<Vec<String>>,
    /// The first few missed events, for people.
    pub missed_samples: Mutex<Vec<String>>,
    pub resume_failed: AtomicU64,
    pub reserved: AtomicU64,
    pub ordered: AtomicU64,
    pub released: AtomicU64,
    pub rejected: Mutex<HashMap<String, u64>>,
    pub errors: Mutex<HashMap<String, u64>>,
    pub closes: Mutex<HashMap<u16, u64>>,
    /// Per hub node, in `--url` order.
    pub nodes: Vec<NodeMetrics>,
}

/// What a finished run measured.
pub struct Outcome {
    pub metrics: Arc<Metrics>,
    pub timeline: Vec<Second>,
    pub audits: Vec<AuditRow>,
    pub elapsed_s: f64,
    pub hub_rss_max_kib: Option<u64>,
    pub hub_cpu_avg_pct: Option<f64>,
    /// Each node's hub CPU seconds over the run (with one PID per URL).
    pub node_cpu_s: Vec<Option<f64>>,
    /// Every viewer's funnel facts (with `Target::funnel`).
    pub viewers: Vec<ViewerFacts>,
    /// (room, deal) -> when the clients saw it not ended, and ended.
    pub windows: HashMap<(String, String), Window>,
    /// The run's auctions checked against its log of their bids (module `auction`).
    pub auction: Option<crate::auction::AuctionReport>,
}

/// One second of the run.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Second {
    pub t_s: u64,
    pub connected: u64,
    pub deliveries_per_s: u64,
    pub comments_per_s: u64,
    pub comment_p50_ms: f64,
    pub comment_p99_ms: f64,
    pub hub_rss_kib: Option<u64>,
}

/// The audit of one deal: the last reading and the worst seen during the run.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AuditRow {
    pub room: String,
    pub deal: String,
    pub readings: u64,
    pub stock: i64,
    pub remaining: i64,
    pub held: i64,
    /// Units in orders waiting for payment (`orders.payment = "external"`; 0 otherwise).
    #[serde(default)]
    pub pending: i64,
    pub sold: i64,
    /// Units held, pending or sold beyond the stock (or `remaining` below zero), last reading.
    pub oversold: u64,
    /// |stock - (remaining + held + pending + sold)|, last reading.
    pub leaked: u64,
    pub max_oversold: u64,
    pub max_leaked: u64,
}

impl AuditRow {
    pub fn new(room: &str, deal: &str) -> Self {
        AuditRow {
            room: room.into(),
            deal: deal.into(),
            readings: 0,
            stock: 0,
            remaining: 0,
            held: 0,
            pending: 0,
            sold: 0,
            oversold: 0,
            leaked: 0,
            max_oversold: 0,
            max_leaked: 0,
        }
    }

    /// Takes one reading of the audit endpoint.
    pub fn absorb(&mut self, v: &serde_json::Value) {
        let f = |k: &str| v[k].as_i64().unwrap_or(0);
        (
            self.stock,
            self.remaining,
            self.held,
            self.pending,
            self.sold,
        ) = (
            f("stock"),
            f("remaining"),
            f("held"),
            f("pending"),
            f("sold"),
        );
        let taken = self.held + self.pending + self.sold;
        self.oversold = (taken - self.stock).max(-self.remaining).max(0) as u64;
        self.leaked = (self.stock - self.remaining - taken).unsigned_abs();
        self.max_oversold = self.max_oversold.max(self.oversold);
        self.max_leaked = self.max_leaked.max(self.leaked);
        self.readings += 1;
    }
}
