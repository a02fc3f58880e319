//! The run report: a summary table for people, a JSON file for tools (mergeable across shards),
//! an HTML file with latency and throughput charts drawn as inline SVG, and the SLO verdicts.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::Ordering::Relaxed;

use livehub::report::{esc, line_chart};
use serde::{Deserialize, Serialize};

use crate::hist::{Hist, HistJson};
use crate::measure::{AuditRow, NodeMetrics, Outcome, Second};
use crate::scenario::Slo;
use crate::sequence::SAMPLES;

/// One service level's verdict.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SloResult {
    pub name: String,
    pub target: f64,
    pub actual: f64,
    pub ok: bool,
}

/// Connection results.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Connect {
    pub ok: u64,
    pub failed: u64,
    /// The failed connects by reason ("connection refused", "HTTP 429 rate_limited: …").
    #[serde(default)]
    pub failures: BTreeMap<String, u64>,
    pub success_ratio: f64,
    pub latency: HistJson,
}

/// What the clients of one hub node (one `--url`) saw.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct NodeReport {
    pub url: String,
    /// Viewers (not hosts) planned on this node; hosts are on the first.
    pub viewers: u64,
    pub connects_ok: u64,
    pub connects_failed: u64,
    /// Frames its clients received.
    pub deliveries: u64,
    /// Seqs skipped by a gap that never arrived.
    pub lost: u64,
    pub duplicates: u64,
    pub out_of_order: u64,
    /// Events the room had while a viewer here was connected that it never got.
    #[serde(default)]
    pub missed: u64,
    /// Comment latency, sender to this node's viewers.
    pub comment_latency: HistJson,
    /// This node's hub CPU over the run (one `--hub-pid` per URL).
    pub hub_cpu_s: Option<f64>,
    pub hub_cpu_us_per_delivery: Option<f64>,
}

impl NodeReport {
    fn build(url: &str, n: &NodeMetrics, cpu_s: Option<f64>) -> Self {
        let deliveries = n.deliveries.load(Relaxed);
        NodeReport {
            url: url.into(),
            viewers: n.viewers.load(Relaxed),
            connects_ok: n.connects_ok.load(Relaxed),
            connects_failed: n.connects_failed.load(Relaxed),
            deliveries,
            lost: n.seq.lost.load(Relaxed),
            duplicates: n.seq.duplicates.load(Relaxed),
            out_of_order: n.seq.out_of_order.load(Relaxed),
            missed: n.seq.missed.load(Relaxed),
            comment_latency: (&*n.comment.lock()).into(),
            hub_cpu_s: cpu_s,
            hub_cpu_us_per_delivery: cpu_s.map(|c| per_delivery(c, deliveries)),
        }
    }

    /// Adds another shard's view of the same node.
    fn absorb(&mut self, o: &NodeReport) {
        self.viewers += o.viewers;
        self.connects_ok += o.connects_ok;
        self.connects_failed += o.connects_failed;
        self.deliveries += o.deliveries;
        self.lost += o.lost;
        self.duplicates += o.duplicates;
        self.out_of_order += o.out_of_order;
        self.missed += o.missed;
        let mut h = Hist::from(&self.comment_latency);
        h.merge(&Hist::from(&o.comment_latency));
        self.comment_latency = (&h).into();
        // Shards of one run watch the same hub process: its CPU is counted once.
        self.hub_cpu_s = self.hub_cpu_s.or(o.hub_cpu_s);
        self.hub_cpu_us_per_delivery = self.hub_cpu_s.map(|c| per_delivery(c, self.deliveries));
    }
}

impl NodeReport {
    /// One line of the summary table.
    fn line(&self, index: usize) -> String {
        let cpu = match (self.hub_cpu_s, self.hub_cpu_us_per_delivery) {
            (Some(c), Some(d)) => format!("  hub CPU {c:.2} s ({d:.2} µs/delivery)"),
            _ => String::new(),
        };
        format!(
            "node {index} {}  viewers {}  connects {} ok {} failed  frames {}  gaps {}  duplicates {}  out of order {}  missed {}  comment p50 {:.1} ms p99 {:.1} ms{cpu}",
            self.url,
            self.viewers,
            self.connects_ok,
            self.connects_failed,
            self.deliveries,
            self.lost,
            self.duplicates,
            self.out_of_order,
            self.missed,
            self.comment_latency.p50_ms,
            self.comment_latency.p99_ms,
        )
    }
}

/// CPU seconds per delivery, in µs.
fn per_delivery(cpu_s: f64, deliveries: u64) -> f64 {
    cpu_s * 1e6 / deliveries.max(1) as f64
}

/// Everything a run measured.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Report {
    pub scenario: String,
    pub mode: String,
    pub shard: String,
    pub elapsed_s: f64,
    pub viewers_planned: u64,
    pub connect: Connect,
    pub comments_sent: u64,
    pub deliveries: u64,
    pub deliveries_per_s: f64,
    pub peak_deliveries_per_s: u64,
    pub comment_latency: HistJson,
    pub stock_latency: HistJson,
    pub reserve_latency: HistJson,
    pub checkout_latency: HistJson,
    pub cancel_latency: HistJson,
    pub reserved: u64,
    pub ordered: u64,
    pub released: u64,
    pub rejected: BTreeMap<String, u64>,
    pub errors: BTreeMap<String, u64>,
    pub lost: u64,
    pub duplicates: u64,
    /// Seqs that reached a viewer after a later one.
    #[serde(default)]
    pub out_of_order: u64,
    /// Deliveries whose event differed from the one another viewer of the room got under the
    /// same seq (e.g. two hub nodes numbering the room independently).
    #[serde(default)]
    pub seq_mismatches: u64,
    /// The first few mismatches, naming the nodes and the two events.
    #[serde(default)]
    pub seq_mismatch_samples: Vec<String>,
    /// Events another viewer of the room got while a viewer was connected (more than 5 s
    /// before it left) that it never got, beyond its last seq: e.g. a node that stopped
    /// relaying the room, or numbers it in a range of its own.
    #[serde(default)]
    pub missed: u64,
    #[serde(default)]
    pub missed_samples: Vec<String>,
    /// Other viewers' comments the hub thinned for viewers that fell behind (`skipped`): not
    /// lost, not shown.
    #[serde(default)]
    pub thinned: u64,
    pub resume_failed: u64,
    pub closes: BTreeMap<String, u64>,
    /// Per hub node, in `--url` order.
    #[serde(default)]
    pub nodes: Vec<NodeReport>,
    pub audits: Vec<AuditRow>,
    pub oversold: u64,
    pub leaked: u64,
    pub hub_rss_max_kib: Option<u64>,
    pub hub_cpu_avg_pct: Option<f64>,
    pub timeline: Vec<Second>,
    pub slo: Slo,
    pub slo_results: Vec<SloResult>,
    /// The funnel check (scenarios with a `[funnel]` section): each room's ground truth, the
    /// hub's reply, and the mismatches that failed `funnel_mismatch`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub funnel: Option<crate::funnel::FunnelReport>,
    /// The shop's orders (scenarios with `[shop]`): paid, failed, expired, and the feed's
    /// mismatches with its ground truth (SLO `shop_mismatch`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shop: Option<crate::shop::ShopReport>,
    /// The auctions (scenarios with `[auction]`, traces that start one): each close checked
    /// against the run's own log of accepted bids (SLO `auction_truth`), the bids by outcome,
    /// bids/s, the bid latency and the time from the end to each viewer's close.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auction: Option<AuctionReport>,
}

use crate::auction::AuctionReport;
use crate::shop::ShopReport;

impl AuctionReport {
    /// The scenario's `p99_bid_ms` and `p99_close_ms`, and `auction_truth`: every check of
    /// every auction held.
    fn slos(&self, slo: &Slo) -> Vec<SloResult> {
        let mut out = Vec::new();
        for (name, target, actual) in [
            ("p99_bid_ms", slo.p99_bid_ms, self.bid_latency.p99_ms),
            ("p99_close_ms", slo.p99_close_ms, self.close_latency.p99_ms),
        ] {
            if let Some(t) = target {
                out.push(SloResult {
                    name: name.into(),
                    target: t,
                    actual,
                    ok: actual <= t,
                });
            }
        }
        out.push(SloResult {
            name: "auction_truth".into(),
            target: 0.0,
            actual: self.problems.len() as f64,
            ok: self.problems.is_empty(),
        });
        out
    }

    /// The auction lines of the summary.
    fn table(&self, t: &mut String) {
        for c in &self.auctions {
            let said =
                |status: &str, winner: &Option<String>, price: Option<u64>| match (winner, price) {
                    (Some(w), Some(p)) => format!("{status} to {w} at {p} cents"),
                    _ => status.to_owned(),
                };
            let _ = writeln!(
                t,
                "auction {}/{}  {} after {} bids (the run logged {} accepted), ending {}: the end moved {} times, {:.1} s past the start's",
                c.room,
                c.auction,
                said(&c.status, &c.winner, c.price_cents),
                c.bids,
                c.accepted_logged,
                c.ends_at,
                c.extensions,
                c.ends_at.saturating_sub(c.started_ends_at) as f64 / 1000.0
            );
            let _ = writeln!(
                t,
                "  the rules give {} ending {}; accepted after the close {}; order frames {:?}",
                said(
                    &c.expected_status,
                    &c.expected_winner,
                    c.expected_price_cents
                ),
                c.expected_ends_at,
                c.accepted_after_close,
                c.orders
            );
            let _ = writeln!(
                t,
                "  viewers at the end {}: {} on the close, {} never got it, {} on another view",
                c.viewers_checked, c.viewers_equal, c.viewers_without_close, c.viewers_differ
            );
        }
        let _ = writeln!(
            t,
            "bids             {} sent ({:.0}/s average, {}/s peak): {:?}",
            self.bids_sent, self.bids_per_s, self.peak_bids_per_s, self.outcomes
        );
        let h = |j: &HistJson| {
            format!(
                "p50 {:.1} ms  p99 {:.1} ms  max {:.1} ms  ({})",
                j.p50_ms, j.p99_ms, j.max_ms, j.count
            )
        };
        let _ = writeln!(t, "bid latency      {}", h(&self.bid_latency));
        let _ = writeln!(t, "end to close     {}", h(&self.close_latency));
        for (node, j) in &self.close_latency_by_node {
            let _ = writeln!(t, "  node {node}         {}", h(j));
        }
        for p in &self.problems {
            let _ = writeln!(t, "  auction_truth: {p}");
        }
    }
}

impl ShopReport {
    /// SLO `shop_mismatch`: the feed's mismatches with the shop's ground truth and its
    /// duplicated event ids, none allowed.
    fn slo(&self) -> SloResult {
        let bad = self.mismatch_count + self.duplicates;
        SloResult {
            name: "shop_mismatch".into(),
            target: 0.0,
            actual: bad as f64,
            ok: bad == 0,
        }
    }
}

/// How many funnel mismatches the summary table prints (the JSON report keeps them all).
const FUNNEL_SHOWN: usize = 20;

fn map<K: ToString>(m: &std::collections::HashMap<K, u64>) -> BTreeMap<String, u64> {
    m.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

impl Report {
    /// Builds the report of one run and evaluates its SLOs.
    pub fn build(
        scenario: &str,
        mode: &str,
        shard: (usize, usize),
        viewers_planned: u64,
        slo: Slo,
        urls: &[String],
        o: &Outcome,
    ) -> Self {
        let m = &o.metrics;
        let (ok, failed) = (m.connects_ok.load(Relaxed), m.connects_failed.load(Relaxed));
        let deliveries = m.deliveries.load(Relaxed);
        let mut r = Report {
            scenario: scenario.into(),
            mode: mode.into(),
            shard: format!("{}/{}", shard.0, shard.1),
            elapsed_s: o.elapsed_s,
            viewers_planned,
            connect: Connect {
                ok,
                failed,
                failures: m.connect_failures.snapshot(),
                success_ratio: if ok + failed == 0 {
                    1.0
                } else {
                    ok as f64 / (ok + failed) as f64
                },
                latency: (&*m.connect.lock()).into(),
            },
            comments_sent: m.comments_sent.load(Relaxed),
            deliveries,
            deliveries_per_s: deliveries as f64 / o.elapsed_s.max(0.001),
            peak_deliveries_per_s: o
                .timeline
                .iter()
                .map(|s| s.deliveries_per_s)
                .max()
                .unwrap_or(0),
            comment_latency: (&*m.comment.lock()).into(),
            stock_latency: (&*m.stock.lock()).into(),
            reserve_latency: (&*m.reserve.lock()).into(),
            checkout_latency: (&*m.checkout.lock()).into(),
            cancel_latency: (&*m.cancel.lock()).into(),
            reserved: m.reserved.load(Relaxed),
            ordered: m.ordered.load(Relaxed),
            released: m.released.load(Relaxed),
            rejected: map(&m.rejected.lock()),
            errors: map(&m.errors.lock()),
            lost: m.seq.lost.load(Relaxed),
            duplicates: m.seq.duplicates.load(Relaxed),
            out_of_order: m.seq.out_of_order.load(Relaxed),
            seq_mismatches: m.seq_mismatches.load(Relaxed),
            seq_mismatch_samples: m.seq_mismatch_samples.lock().clone(),
            missed: m.seq.missed.load(Relaxed),
            missed_samples: m.missed_samples.lock().clone(),
            thinned: m.seq.thinned.load(Relaxed),
            resume_failed: m.resume_failed.load(Relaxed),
            closes: map(&m.closes.lock()),
            nodes: urls
                .iter()
                .zip(&m.nodes)
                .zip(o.node_cpu_s.iter().copied().chain(std::iter::repeat(None)))
                .map(|((url, n), cpu)| NodeReport::build(url, n, cpu))
                .collect(),
            oversold: o.audits.iter().map(|a| a.max_oversold).sum(),
            leaked: o.audits.iter().map(|a| a.max_leaked).sum(),
            audits: o.audits.clone(),
            hub_rss_max_kib: o.hub_rss_max_kib,
            hub_cpu_avg_pct: o.hub_cpu_avg_pct,
            timeline: o.timeline.clone(),
            slo,
            slo_results: Vec::new(),
            funnel: None,
            shop: None,
            auction: o.auction.clone(),
        };
        r.evaluate();
        r
    }

    /// Everything that broke "same seqs, same events, same order for every viewer on every
    /// node": duplicates, out-of-order arrivals, mismatched events and events missed while
    /// others got them. Gaps and refused resumes are `max_lost`'s.
    pub fn sequence_violations(&self) -> u64 {
        self.duplicates + self.out_of_order + self.seq_mismatches + self.missed
    }

    /// Re-evaluates every SLO in `self.slo`, plus `same_sequence`, which always applies.
    pub fn evaluate(&mut self) {
        let s = self.slo.clone();
        let mut out = Vec::new();
        let mut at_most = |name: &str, target: Option<f64>, actual: f64| {
            if let Some(t) = target {
                out.push(SloResult {
                    name: name.into(),
                    target: t,
                    actual,
                    ok: actual <= t,
                });
            }
        };
        at_most(
            "p99_comment_ms",
            s.p99_comment_ms,
            self.comment_latency.p99_ms,
        );
        at_most(
            "p99_reserve_ms",
            s.p99_reserve_ms,
            self.reserve_latency.p99_ms,
        );
        at_most("p99_stock_ms", s.p99_stock_ms, self.stock_latency.p99_ms);
        at_most(
            "max_lost",
            s.max_lost.map(|v| v as f64),
            (self.lost + self.duplicates) as f64,
        );
        at_most(
            "max_oversold",
            s.max_oversold.map(|v| v as f64),
            self.oversold as f64,
        );
        at_most(
            "max_leaked",
            s.max_leaked.map(|v| v as f64),
            self.leaked as f64,
        );
        if let Some(f) = self.funnel.as_mut() {
            // One shard's truth covers only its viewers: `merge` judges the whole show.
            f.mismatches = if f.partial { Vec::new() } else { f.verdict() };
            if !f.partial {
                out.push(SloResult {
                    name: "funnel_mismatch".into(),
                    target: 0.0,
                    actual: f.mismatches.len() as f64,
                    ok: f.mismatches.is_empty(),
                });
            }
        }
        let violations = self.sequence_violations();
        out.push(SloResult {
            name: "same_sequence".into(),
            target: 0.0,
            actual: violations as f64,
            ok: violations == 0,
        });
        if let Some(t) = s.min_connect_success {
            out.push(SloResult {
                name: "min_connect_success".into(),
                target: t,
                actual: self.connect.success_ratio,
                ok: self.connect.success_ratio >= t,
            });
        }
        if let Some(t) = s.min_deliveries {
            out.push(SloResult {
                name: "min_deliveries".into(),
                target: t as f64,
                actual: self.deliveries as f64,
                ok: self.deliveries >= t,
            });
        }
        out.extend(self.shop.as_ref().map(ShopReport::slo));
        out.extend(self.auction.iter().flat_map(|a| a.slos(&s)));
        self.slo_results = out;
    }

    /// The SLOs that failed.
    pub fn failed(&self) -> Vec<&SloResult> {
        self.slo_results.iter().filter(|r| !r.ok).collect()
    }

    /// Merges shard reports of one show into one: counts add up, latency histograms merge,
    /// audits keep the worst reading of each deal, samples keep the first few, and the SLOs
    /// are evaluated again on the whole.
    pub fn merge(reports: Vec<Report>) -> anyhow::Result<Report> {
        let mut it = reports.into_iter();
        let mut out = it
            .next()
            .ok_or_else(|| anyhow::anyhow!("merge: no reports"))?;
        let mut shards = vec![out.shard.clone()];
        let mut acc = out.hists();
        for r in it {
            for (a, b) in acc.iter_mut().zip(r.hists()) {
                a.merge(&b);
            }
            shards.push(r.shard.clone());
            out.add_counts(&r);
            // Only the first shard plays the shop.
            if out.shop.is_none() {
                out.shop = r.shop.clone();
            }
            out.add_details(r);
        }
        out.set_hists(acc);
        out.derive_totals();
        out.shard = format!("merged {}", shards.join(" + "));
        if let Some(f) = out.funnel.as_mut() {
            f.partial = false;
        }
        out.evaluate();
        Ok(out)
    }

    /// The latency histograms, in the order [`Report::set_hists`] takes them.
    fn hists(&self) -> [Hist; 6] {
        [
            &self.connect.latency,
            &self.comment_latency,
            &self.stock_latency,
            &self.reserve_latency,
            &self.checkout_latency,
            &self.cancel_latency,
        ]
        .map(Hist::from)
    }

    fn set_hists(&mut self, [c, cm, st, rs, co, ca]: [Hist; 6]) {
        self.connect.latency = (&c).into();
        self.comment_latency = (&cm).into();
        self.stock_latency = (&st).into();
        self.reserve_latency = (&rs).into();
        self.checkout_latency = (&co).into();
        self.cancel_latency = (&ca).into();
    }

    /// Adds another shard's counters (and the longer of the two run times).
    fn add_counts(&mut self, r: &Report) {
        self.elapsed_s = self.elapsed_s.max(r.elapsed_s);
        self.viewers_planned += r.viewers_planned;
        self.connect.ok += r.connect.ok;
        self.connect.failed += r.connect.failed;
        for (reason, n) in &r.connect.failures {
            *self.connect.failures.entry(reason.clone()).or_insert(0) += n;
        }
        self.comments_sent += r.comments_sent;
        self.deliveries += r.deliveries;
        self.reserved += r.reserved;
        self.ordered += r.ordered;
        self.released += r.released;
        self.lost += r.lost;
        self.duplicates += r.duplicates;
        self.out_of_order += r.out_of_order;
        self.seq_mismatches += r.seq_mismatches;
        self.missed += r.missed;
        self.thinned += r.thinned;
        self.resume_failed += r.resume_failed;
    }

    /// Takes in another shard's samples, nodes, tallies, audits, funnel and timeline.
    fn add_details(&mut self, r: Report) {
        for sample in r.seq_mismatch_samples {
            if self.seq_mismatch_samples.len() < SAMPLES {
                self.seq_mismatch_samples.push(sample);
            }
        }
        for sample in r.missed_samples {
            if self.missed_samples.len() < SAMPLES {
                self.missed_samples.push(sample);
            }
        }
        for n in &r.nodes {
            match self.nodes.iter_mut().find(|x| x.url == n.url) {
                Some(x) => x.absorb(n),
                None => self.nodes.push(n.clone()),
            }
        }
        for (into, from) in [
            (&mut self.rejected, r.rejected),
            (&mut self.errors, r.errors),
        ] {
            for (k, v) in from {
                *into.entry(k).or_insert(0) += v;
            }
        }
        for (k, v) in r.closes {
            *self.closes.entry(k).or_insert(0) += v;
        }
        self.add_audits(r.audits);
        match (&mut self.funnel, &r.funnel) {
            (Some(mine), Some(theirs)) => mine.absorb(theirs),
            (None, Some(theirs)) => self.funnel = Some(theirs.clone()),
            _ => {}
        }
        for s in r.timeline {
            match self.timeline.iter_mut().find(|x| x.t_s == s.t_s) {
                Some(x) => {
                    x.connected += s.connected;
                    x.deliveries_per_s += s.deliveries_per_s;
                    x.comments_per_s += s.comments_per_s;
                    x.comment_p99_ms = x.comment_p99_ms.max(s.comment_p99_ms);
                }
                None => self.timeline.push(s),
            }
        }
    }

    /// Audits read the same deals: keep the worst of each.
    fn add_audits(&mut self, audits: Vec<AuditRow>) {
        for a in audits {
            match self
                .audits
                .iter_mut()
                .find(|x| x.room == a.room && x.deal == a.deal)
            {
                Some(x) => {
                    x.max_oversold = x.max_oversold.max(a.max_oversold);
                    x.max_leaked = x.max_leaked.max(a.max_leaked);
                }
                None => self.audits.push(a),
            }
        }
    }

    /// The figures that follow from the merged counts: success ratio, rates, peak, totals.
    fn derive_totals(&mut self) {
        let (ok, failed) = (self.connect.ok, self.connect.failed);
        self.connect.success_ratio = if ok + failed == 0 {
            1.0
        } else {
            ok as f64 / (ok + failed) as f64
        };
        self.deliveries_per_s = self.deliveries as f64 / self.elapsed_s.max(0.001);
        self.timeline.sort_by_key(|s| s.t_s);
        self.peak_deliveries_per_s = self
            .timeline
            .iter()
            .map(|s| s.deliveries_per_s)
            .max()
            .unwrap_or(0);
        self.oversold = self.audits.iter().map(|a| a.max_oversold).sum();
        self.leaked = self.audits.iter().map(|a| a.max_leaked).sum();
    }

    /// The summary table: the run, connections, deliveries and latencies, buyers, sequence
    /// checks, nodes, audits, the hub's resources, the funnel, and every SLO.
    pub fn table(&self) -> String {
        let mut t = String::new();
        self.connections_table(&mut t);
        self.latency_table(&mut t);
        self.sequence_table(&mut t);
        self.audit_table(&mut t);
        if let Some(f) = &self.funnel {
            self.funnel_table(&mut t, f);
        }
        if let Some(s) = &self.shop {
            let _ = writeln!(
                t,
                "shop: {} orders: paid {}, failed {}, expired {} (late calls {}, call errors {}); feed: {} mismatches, {} duplicates",
                s.orders,
                s.paid,
                s.failed,
                s.expired,
                s.late,
                s.call_errors,
                s.mismatch_count,
                s.duplicates
            );
            for m in &s.mismatches {
                let _ = writeln!(t, "  shop mismatch: {m}");
            }
        }
        if let Some(a) = &self.auction {
            a.table(&mut t);
        }
        for s in &self.slo_results {
            let _ = writeln!(
                t,
                "SLO {:<20} target {:>10.3}  actual {:>10.3}  {}",
                s.name,
                s.target,
                s.actual,
                if s.ok { "ok" } else { "FAILED" }
            );
        }
        t
    }

    /// The run's first line and its connections (with the top failure reasons).
    fn connections_table(&self, t: &mut String) {
        let _ = writeln!(
            t,
            "scenario {} ({}, shard {}) in {:.1} s",
            self.scenario, self.mode, self.shard, self.elapsed_s
        );
        let _ = writeln!(
            t,
            "connections      {} ok, {} failed ({:.2}% success), {} planned viewers",
            self.connect.ok,
            self.connect.failed,
            self.connect.success_ratio * 100.0,
            self.viewers_planned
        );
        let (reasons, more) = crate::failures::top(&self.connect.failures, crate::failures::SHOWN);
        for reason in reasons {
            let _ = writeln!(t, "  failed         {reason}");
        }
        if more > 0 {
            let _ = writeln!(
                t,
                "  failed         … and {more} other reasons (all in the JSON report)"
            );
        }
    }

    /// Deliveries, the latency rows and the buyers' outcomes.
    fn latency_table(&self, t: &mut String) {
        let h = |j: &HistJson| {
            format!(
                "{:>9.1} {:>9.1} {:>9.1} {:>9.1} {:>9}",
                j.p50_ms, j.p99_ms, j.p999_ms, j.max_ms, j.count
            )
        };
        let _ = writeln!(
            t,
            "deliveries       {} ({:.0}/s average, {}/s peak); comments sent {}",
            self.deliveries, self.deliveries_per_s, self.peak_deliveries_per_s, self.comments_sent
        );
        let _ = writeln!(
            t,
            "latency (ms)        p50       p99      p999       max     count"
        );
        let _ = writeln!(t, "  connect     {}", h(&self.connect.latency));
        let _ = writeln!(t, "  comment     {}", h(&self.comment_latency));
        let _ = writeln!(t, "  stock       {}", h(&self.stock_latency));
        let _ = writeln!(t, "  reserve     {}", h(&self.reserve_latency));
        let _ = writeln!(t, "  checkout    {}", h(&self.checkout_latency));
        let _ = writeln!(t, "  cancel      {}", h(&self.cancel_latency));
        let _ = writeln!(
            t,
            "buyers           reserved {}, ordered {}, released {}, rejected {:?}",
            self.reserved, self.ordered, self.released, self.rejected
        );
    }

    /// Lost, thinned and sequence figures with their samples, each node's line, and the close
    /// codes and errors.
    fn sequence_table(&self, t: &mut String) {
        let _ = writeln!(
            t,
            "lost events      {} (duplicates {}, resumes refused {})",
            self.lost, self.duplicates, self.resume_failed
        );
        let _ = writeln!(
            t,
            "thinned chat     {} comments not shown to viewers that fell behind (skipped, not lost)",
            self.thinned
        );
        let _ = writeln!(
            t,
            "sequence         {} duplicates, {} out of order, {} events that differ between viewers under one seq, {} missed while others got them",
            self.duplicates, self.out_of_order, self.seq_mismatches, self.missed
        );
        for sample in &self.seq_mismatch_samples {
            let _ = writeln!(t, "  mismatch       {sample}");
        }
        for sample in &self.missed_samples {
            let _ = writeln!(t, "  missed         {sample}");
        }
        for (i, n) in self.nodes.iter().enumerate() {
            let _ = writeln!(t, "{}", n.line(i));
        }
        let _ = writeln!(
            t,
            "close codes      {:?}; errors {:?}",
            self.closes, self.errors
        );
    }

    /// Each deal's audit, the oversold and leaked totals, and the hub's memory and CPU.
    fn audit_table(&self, t: &mut String) {
        for a in &self.audits {
            let _ = writeln!(
                t,
                "audit {}/{}  stock {} = remaining {} + held {} + pending {} + sold {}; oversold {} (max {}), leaked {} (max {}), {} readings",
                a.room,
                a.deal,
                a.stock,
                a.remaining,
                a.held,
                a.pending,
                a.sold,
                a.oversold,
                a.max_oversold,
                a.leaked,
                a.max_leaked,
                a.readings
            );
        }
        let _ = writeln!(t, "oversold {}  leaked {}", self.oversold, self.leaked);
        if let Some(rss) = self.hub_rss_max_kib {
            let _ = writeln!(
                t,
                "hub              max RSS {} KiB, CPU {:.0}% average",
                rss,
                self.hub_cpu_avg_pct.unwrap_or(0.0)
            );
        }
    }

    /// The funnel lines of the summary: each room's truth (total and per channel) and the
    /// first mismatches.
    fn funnel_table(&self, t: &mut String, f: &crate::funnel::FunnelReport) {
        let row = |s: &crate::funnel::truth::Stage| {
            format!(
                "viewers {} engaged {} exposed {} tapped {} held {} ordered {}  orders {} units {} gmv_cents {} sold_out_taps {}",
                s.viewers,
                s.engaged,
                s.exposed,
                s.tapped,
                s.held,
                s.ordered,
                s.orders,
                s.units,
                s.gmv_cents,
                s.sold_out_taps
            )
        };
        for (room, c) in &f.rooms {
            let _ = writeln!(t, "funnel {room}  expected {}", row(&c.truth.total));
            for (ch, s) in &c.truth.channels {
                let _ = writeln!(t, "  channel {ch:<12} {}", row(s));
            }
            for (name, c) in &c.truth.creators {
                let _ = writeln!(
                    t,
                    "  creator {name} ({}) orders {} units {} gmv_cents {} commission_cents {}",
                    c.role, c.orders, c.units, c.gmv_cents, c.commission_cents
                );
            }
        }
        if f.partial {
            let _ = writeln!(
                t,
                "funnel           one shard of several: judged by `merge` over every shard's report"
            );
        } else if f.mismatches.is_empty() {
            let _ = writeln!(
                t,
                "funnel           the hub's funnel matches the run's ground truth"
            );
        }
        for line in f.mismatches.iter().take(FUNNEL_SHOWN) {
            let _ = writeln!(t, "  funnel_mismatch: {line}");
        }
        if f.mismatches.len() > FUNNEL_SHOWN {
            let _ = writeln!(
                t,
                "  … and {} more funnel mismatches (all in the JSON report)",
                f.mismatches.len() - FUNNEL_SHOWN
            );
        }
    }

    /// A self-contained HTML page: the table and two SVG charts, no scripts, no network.
    pub fn html(&self) -> String {
        let lat: Vec<(f64, f64, f64)> = self
            .timeline
            .iter()
            .map(|s| (s.t_s as f64, s.comment_p50_ms, s.comment_p99_ms))
            .collect();
        let thr: Vec<(f64, f64, f64)> = self
            .timeline
            .iter()
            .map(|s| (s.t_s as f64, s.deliveries_per_s as f64, s.connected as f64))
            .collect();
        format!(
            "<!doctype html><html><head><meta charset=\"utf-8\"><title>livehub load report: {name}</title>\
             <style>body{{font-family:sans-serif;max-width:960px;margin:2em auto;color:#222}}pre{{background:#f6f6f6;padding:1em;overflow:auto}}\
             .fail{{color:#b00}}</style></head><body><h1>livehub load report: {name}</h1>\
             <p>{verdict}</p><h2>Comment latency over time</h2>{c1}<h2>Throughput over time</h2>{c2}<h2>Summary</h2><pre>{table}</pre></body></html>",
            name = esc(&self.scenario),
            verdict = if self.failed().is_empty() {
                "All service levels met.".to_string()
            } else {
                format!(
                    "<span class=\"fail\">Missed: {}</span>",
                    esc(&self
                        .failed()
                        .iter()
                        .map(|r| r.name.clone())
                        .collect::<Vec<_>>()
                        .join(", "))
                )
            },
            c1 = line_chart(&lat, ("p50 ms", "p99 ms"), "ms"),
            c2 = line_chart(
                &thr,
                ("deliveries/s", "viewers connected"),
                "per second / viewers"
            ),
            table = esc(&self.table()),
        )
    }
}
