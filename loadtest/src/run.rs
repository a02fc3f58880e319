//! Plays a list of timed client actions (a scenario's plan or a recorded trace) against hubs,
//! with one task per client, and measures everything from the clients' side.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use livehub::auth::{Authenticator, Claims};
use livehub::protocol::{ClientMsg, Id, Role};
use parking_lot::{Mutex, RwLock};
use tokio::sync::watch;

use crate::auction::Watch;
use crate::auction::watch::{BidNow, Way};
use crate::funnel::{ViewerFacts, Window};
use crate::measure::{AuditRow, Metrics, NodeMetrics, Outcome, Second, SeqCounts};
use crate::sequence::{Arrival, Disagreement, Ledger, Missed, SAMPLES, Stay, Track};
use crate::trace::{Action, Attribution, Event, Recorder};
use crate::wsraw::{Frame, RawWs, number_after};

/// Clients use the lean client: 10,000 of them share the machine with the hub under test.
type Ws = RawWs;

/// Where and how to play.
pub struct Target {
    /// Hub base URLs (`ws://host:port`), one per hub node: the clients of every room are spread
    /// over them (see [`assign_nodes`]).
    pub urls: Vec<String>,
    pub secret: String,
    /// The hubs' PIDs: none, one (all URLs are one hub process), or one per URL.
    pub hub_pids: Vec<u32>,
    /// Replay speed (2.0 = twice as fast).
    pub speed: f64,
    /// Seconds to keep reading after the last action.
    pub drain_s: f64,
    /// Print a progress line every second.
    pub progress: bool,
    /// Keep each viewer's funnel facts (module `funnel`), and let a viewer that leaves first
    /// take the answers to its pending reserves and checkouts (up to [`REPLY_WAIT`]), so that
    /// the run knows every order the hub recorded.
    pub funnel: bool,
    /// How long to wait past the last action for the close of every auction the run started
    /// (bids move an auction's end), seconds.
    pub close_wait_s: f64,
    /// How far the load tester's clock may be ahead of the hub's, for the auctions' check.
    pub clock_tolerance_ms: u64,
}

/// How long a leaving viewer waits for its pending answers when the funnel is checked.
const REPLY_WAIT: Duration = Duration::from_secs(2);

struct Shared {
    start: Instant,
    target: Target,
    auth: Authenticator,
    recorder: Option<Recorder>,
    m: Arc<Metrics>,
    /// room|deal -> (remaining R from a `reserved`, when, µs since start)
    stock_marks: RwLock<HashMap<String, Vec<(u32, u64)>>>,
    /// Marks recorded so far, so clients look at the marks only when there are new ones.
    stock_marks_total: AtomicU64,
    /// (room, deal) -> when a client first saw it not ended, and first saw it ended.
    windows: Mutex<HashMap<(String, String), Window>>,
    /// The auctions the run starts, `(room, id)`, and what its clients saw of them.
    auctions: Vec<crate::auction::truth::Key>,
    auction_log: crate::auction::Log,
}

impl Shared {
    fn new(
        target: Target,
        recorder: Option<Recorder>,
        auctions: Vec<crate::auction::truth::Key>,
    ) -> Self {
        let metrics = Metrics {
            nodes: target.urls.iter().map(|_| NodeMetrics::default()).collect(),
            ..Metrics::default()
        };
        Shared {
            start: Instant::now(),
            auth: Authenticator::new(&target.secret, false),
            target,
            recorder,
            m: Arc::new(metrics),
            stock_marks: RwLock::new(HashMap::new()),
            stock_marks_total: AtomicU64::new(0),
            windows: Mutex::new(HashMap::new()),
            auctions,
            auction_log: crate::auction::Log::default(),
        }
    }

    fn now_us(&self) -> u64 {
        self.start.elapsed().as_micros() as u64
    }

    fn url(&self, node: usize) -> &str {
        &self.target.urls[node % self.target.urls.len()]
    }

    /// Counts what the viewers of `room` missed (per node) and keeps the first few.
    fn note_missed(&self, room: &str, ledger: &Ledger) {
        let report = ledger.missed(self.m.nodes.len(), MISSED_MARGIN_US);
        for (node, n) in self.m.nodes.iter().zip(&report.per_node) {
            node.seq.missed.fetch_add(*n, Relaxed);
            self.m.seq.missed.fetch_add(*n, Relaxed);
        }
        let mut samples = self.m.missed_samples.lock();
        for miss in report.samples {
            if samples.len() < SAMPLES {
                samples.push(self.describe_missed(room, &miss));
            }
        }
    }

    fn describe_missed(&self, room: &str, m: &Missed) -> String {
        let s = |us: u64| us as f64 / 1e6;
        format!(
            "room {room} seq {} ({}): a viewer on {} got it at {:.1} s; a viewer on {} there from {:.1} to {:.1} s never did (its last seq: {})",
            m.seq,
            m.what,
            self.url(m.seen_node),
            s(m.seen_at_us),
            self.url(m.stay.node),
            s(m.stay.from_us),
            s(m.stay.to_us),
            m.stay.last
        )
    }

    /// Counts a disagreement between two viewers of `room` and keeps the first few.
    fn note_mismatch(&self, room: &str, d: Disagreement) {
        self.m.seq_mismatches.fetch_add(1, Relaxed);
        let mut samples = self.m.seq_mismatch_samples.lock();
        if samples.len() < SAMPLES {
            samples.push(format!(
                "room {room} seq {}: a viewer on {} got {}, a viewer on {} got {}",
                d.seq,
                self.url(d.first_node),
                d.first,
                self.url(d.then_node),
                d.then
            ));
        }
    }

    /// Notes that a client saw `deal` of `room` with `status` now.
    fn saw_deal(&self, room: &str, deal: &str, live: bool) {
        let now = self.now_us();
        let mut w = self.windows.lock();
        let w = w.entry((room.to_owned(), deal.to_owned())).or_default();
        let first = if live {
            &mut w.live_from_us
        } else {
            &mut w.over_from_us
        };
        *first = Some(first.map_or(now, |t| t.min(now)));
    }

    fn token(&self, client: &str, room: &str, who: &Attribution) -> String {
        let (src, aff) = who.claims();
        let role = if client.starts_with("h-") {
            Role::Host
        } else {
            Role::Viewer
        };
        self.auth
            .mint(&Claims {
                sub: client.to_owned(),
                name: None,
                role,
                room: room.to_owned(),
                exp: Some(livehub::clock::now_ms() / 1000 + 86_400),
                src,
                aff,
            })
            .unwrap_or_default()
    }
}

fn bump(map: &Mutex<HashMap<String, u64>>, key: &str) {
    *map.lock().entry(key.to_owned()).or_insert(0) += 1;
}

/// Whether a client id is a room's host (`h-<room>`).
fn is_host(client: &str) -> bool {
    client.starts_with("h-")
}

/// The hub node (index into `--url`) of every client: within each room, viewers in order of
/// their number (`v<N>`; other names after, by name) go round robin, the room's i-th viewer to
/// node `i % nodes`, and hosts to node 0. So a room's viewers are split as evenly as the URLs
/// allow, and the same plan always puts the same viewer on the same node.
pub fn assign_nodes<'a>(
    clients: impl IntoIterator<Item = (&'a str, &'a str)>,
    nodes: usize,
) -> HashMap<String, usize> {
    let mut rooms: HashMap<&str, Vec<&str>> = HashMap::new();
    let mut out = HashMap::new();
    for (client, room) in clients {
        if is_host(client) {
            out.insert(client.to_owned(), 0);
        } else {
            rooms.entry(room).or_default().push(client);
        }
    }
    let number = |c: &str| c.strip_prefix('v').and_then(|n| n.parse::<u64>().ok());
    for viewers in rooms.values_mut() {
        viewers.sort_by(|a, b| match (number(a), number(b)) {
            (Some(x), Some(y)) => x.cmp(&y),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => a.cmp(b),
        });
        for (i, v) in viewers.iter().enumerate() {
            out.insert((*v).to_owned(), i % nodes.max(1));
        }
    }
    out
}

/// CPU seconds used so far by each node's hub, when there is one PID per URL.
fn node_cpu(target: &Target) -> Vec<Option<f64>> {
    if target.hub_pids.len() != target.urls.len() {
        return vec![None; target.urls.len()];
    }
    target
        .hub_pids
        .iter()
        .map(|&p| crate::stats::cpu_secs(p))
        .collect()
}

/// `(CPU ticks, RSS KiB)` summed over the distinct hub processes; `None` if any cannot be read.
fn hubs_stat(pids: &[u32]) -> Option<(u64, u64)> {
    let mut distinct = pids.to_vec();
    distinct.sort_unstable();
    distinct.dedup();
    if distinct.is_empty() {
        return None;
    }
    distinct.iter().try_fold((0, 0), |(t, r), &p| {
        crate::stats::proc_stat(p).map(|(t1, r1)| (t + t1, r + r1))
    })
}

/// Plays `events` and returns what was measured. `deals` are audited during and after the run.
pub async fn play(
    events: Vec<Event>,
    deals: Vec<(String, String)>,
    target: Target,
    record: Option<Recorder>,
) -> anyhow::Result<Outcome> {
    check_target(&target)?;
    let auctions = crate::auction::started(&events);
    let shared = Arc::new(Shared::new(target, record, auctions));
    let cpu_at_start = node_cpu(&shared.target);
    let end_ms = events.iter().map(|e| e.t_ms).max().unwrap_or(0);
    let end = Duration::from_secs_f64(
        end_ms as f64 / 1000.0 / shared.target.speed + shared.target.drain_s,
    );
    let (stop_tx, stop_rx) = watch::channel(false);
    let per_client = by_client(events);
    open_rooms(&shared, &per_client).await?;
    let (tasks, ledgers) = spawn_clients(&shared, per_client, &stop_rx);
    let sampler = tokio::spawn(sample(Arc::clone(&shared), stop_rx.clone()));
    let auditor = tokio::spawn(audit_loop(Arc::clone(&shared), deals, stop_rx.clone()));

    tokio::time::sleep(end).await;
    wait_for_closes(&shared).await;
    let _ = stop_tx.send(true);
    let mut viewers = Vec::new();
    for t in tasks {
        if let Ok(Some(facts)) = t.await {
            viewers.push(facts);
        }
    }
    for (room, ledger) in &ledgers {
        shared.note_missed(room, ledger);
    }
    let (timeline, rss_max, cpu) = sampler.await?;
    let mut audits = auditor.await?;
    // Final reading once everything settled.
    for row in audits.iter_mut() {
        if let Some(a) = audit_once(&shared, &row.room, &row.deal).await {
            row.absorb(&a);
        }
    }
    if let Some(r) = &shared.recorder {
        r.flush();
    }
    let auction = (!shared.auctions.is_empty()).then(|| {
        shared
            .auction_log
            .report(&shared.auctions, shared.target.clock_tolerance_ms)
    });
    let node_cpu_s = cpu_at_start
        .iter()
        .zip(node_cpu(&shared.target))
        .map(|(c0, c1)| Some(c1? - (*c0)?))
        .collect();
    Ok(Outcome {
        metrics: Arc::clone(&shared.m),
        timeline,
        audits,
        elapsed_s: shared.start.elapsed().as_secs_f64(),
        hub_rss_max_kib: rss_max,
        hub_cpu_avg_pct: cpu,
        node_cpu_s,
        viewers,
        windows: std::mem::take(&mut *shared.windows.lock()),
        auction,
    })
}

/// Waits, up to `close_wait_s`, until a client saw the close of every auction the run started
/// (bids may have moved an end past the last action), and then `drain_s` more for the close to
/// reach every viewer and the late bids to be answered.
async fn wait_for_closes(shared: &Shared) {
    let log = &shared.auction_log;
    if log.all_closed(&shared.auctions) {
        return;
    }
    let until = Instant::now() + Duration::from_secs_f64(shared.target.close_wait_s);
    while !log.all_closed(&shared.auctions) && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs_f64(shared.target.drain_s)).await;
}

/// Refuses a target without URLs, or with PIDs that match neither one hub nor one per URL.
fn check_target(target: &Target) -> anyhow::Result<()> {
    anyhow::ensure!(!target.urls.is_empty(), "at least one --url");
    anyhow::ensure!(
        target.hub_pids.len() <= 1 || target.hub_pids.len() == target.urls.len(),
        "--hub-pid: give one PID, or one per --url ({} URLs, {} PIDs)",
        target.urls.len(),
        target.hub_pids.len()
    );
    Ok(())
}

/// Each client's room and events, in the order given.
fn by_client(events: Vec<Event>) -> HashMap<String, (String, Vec<Event>)> {
    let mut per_client: HashMap<String, (String, Vec<Event>)> = HashMap::new();
    for e in events {
        per_client
            .entry(e.client.clone())
            .or_insert_with(|| (e.room.clone(), Vec::new()))
            .1
            .push(e);
    }
    per_client
}

/// Opens every room as its host would, before any viewer of it connects (through every URL:
/// nodes that share a Redis see it opened anyway, separate hubs each need it).
async fn open_rooms(
    shared: &Shared,
    per_client: &HashMap<String, (String, Vec<Event>)>,
) -> anyhow::Result<()> {
    let rooms: std::collections::BTreeSet<&str> =
        per_client.values().map(|(r, _)| r.as_str()).collect();
    for room in rooms {
        for node in 0..shared.target.urls.len() {
            crate::stats::open_room(shared.url(node), room, &shared.auth).await?;
        }
    }
    Ok(())
}

type ClientTask = tokio::task::JoinHandle<Option<ViewerFacts>>;

/// Starts one task per client on its node ([`assign_nodes`]), each room's clients sharing the
/// room's ledger; returns the tasks and the ledgers by room.
fn spawn_clients(
    shared: &Arc<Shared>,
    per_client: HashMap<String, (String, Vec<Event>)>,
    stop_rx: &watch::Receiver<bool>,
) -> (Vec<ClientTask>, HashMap<String, Arc<Ledger>>) {
    let nodes = assign_nodes(
        per_client
            .iter()
            .map(|(c, (r, _))| (c.as_str(), r.as_str())),
        shared.target.urls.len(),
    );
    let mut ledgers: HashMap<String, Arc<Ledger>> = HashMap::new();
    let mut tasks = Vec::new();
    for (id, (room, evs)) in per_client {
        let (shared, stop) = (Arc::clone(shared), stop_rx.clone());
        let node = nodes.get(&id).copied().unwrap_or(0);
        if !is_host(&id) {
            shared.m.nodes[node].viewers.fetch_add(1, Relaxed);
        }
        let ledger = Arc::clone(ledgers.entry(room.clone()).or_default());
        tasks.push(tokio::spawn(async move {
            Client::new(shared, id, room, node, ledger)
                .run(evs, stop)
                .await
        }));
    }
    (tasks, ledgers)
}

async fn audit_once(shared: &Shared, room: &str, deal: &str) -> Option<serde_json::Value> {
    // Stock is one count across all nodes: ask the hosts' node.
    let http = shared.url(0).replacen("ws://", "http://", 1);
    let token = shared
        .auth
        .mint(&Claims {
            sub: "loadtest-auditor".into(),
            name: None,
            role: Role::Admin,
            room: "*".into(),
            exp: Some(livehub::clock::now_ms() / 1000 + 3600),
            src: None,
            aff: None,
        })
        .ok()?;
    let (status, body) = livehub::http_client::request(
        "GET",
        &format!("{http}/api/rooms/{room}/deals/{deal}"),
        Some(&token),
        None,
    )
    .await
    .ok()?;
    (status == 200)
        .then(|| serde_json::from_str(&body).ok())
        .flatten()
}

async fn audit_loop(
    shared: Arc<Shared>,
    deals: Vec<(String, String)>,
    mut stop: watch::Receiver<bool>,
) -> Vec<AuditRow> {
    let mut rows: Vec<AuditRow> = deals.iter().map(|(r, d)| AuditRow::new(r, d)).collect();
    loop {
        tokio::select! {
            _ = stop.changed() => return rows,
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
        }
        for row in rows.iter_mut() {
            if let Some(a) = audit_once(&shared, &row.room, &row.deal).await {
                row.absorb(&a);
            }
        }
    }
}

async fn sample(
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) -> (Vec<Second>, Option<u64>, Option<f64>) {
    let m = &shared.m;
    let mut timeline = Vec::new();
    let (mut last_d, mut last_c) = (0, 0);
    let pids = &shared.target.hub_pids;
    let first = hubs_stat(pids);
    let mut rss_max = first.map(|(_, r)| r);
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.tick().await;
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            _ = tick.tick() => {}
        }
        let d = m.deliveries.load(Relaxed);
        let c = m.comments_sent.load(Relaxed);
        let window = std::mem::take(&mut *m.comment_window.lock());
        let hub = hubs_stat(pids);
        if let Some((_, rss)) = hub {
            rss_max = Some(rss_max.unwrap_or(0).max(rss));
        }
        let s = Second {
            t_s: shared.start.elapsed().as_secs(),
            connected: m.connected.load(Relaxed),
            deliveries_per_s: d - last_d,
            comments_per_s: c - last_c,
            comment_p50_ms: window.ms(0.5),
            comment_p99_ms: window.ms(0.99),
            hub_rss_kib: hub.map(|h| h.1),
        };
        if shared.target.progress {
            let bids = if shared.auctions.is_empty() {
                String::new()
            } else {
                format!("  bids {:>7}", shared.auction_log.sent_total())
            };
            eprintln!(
                "[{:>4}s] viewers {:>6}  deliveries/s {:>8}  comments/s {:>5}  comment p99 {:>7.1} ms  reserved {:>6}{bids}",
                s.t_s,
                s.connected,
                s.deliveries_per_s,
                s.comments_per_s,
                s.comment_p99_ms,
                m.reserved.load(Relaxed)
            );
        }
        (last_d, last_c) = (d, c);
        timeline.push(s);
    }
    let cpu = match (first, hubs_stat(pids)) {
        (Some((t0, _)), Some((t1, _))) => {
            Some((t1 - t0) as f64 / 100.0 / shared.start.elapsed().as_secs_f64() * 100.0)
        }
        _ => None,
    };
    (timeline, rss_max, cpu)
}

/// One client (a viewer, or a room's host) playing its events: who and where it is, and its
/// state by concern, each in its own part.
struct Client {
    shared: Arc<Shared>,
    id: String,
    room: String,
    /// Index of this client's hub node in `--url`.
    node: usize,
    /// The room's events as its viewers saw them, shared by the room's clients.
    ledger: Arc<Ledger>,
    conn: Conn,
    stock: StockWatch,
    buy: Requests,
    funnel: Funnel,
    batch: Batch,
    /// The auctions as this client sees them, and its bids.
    auction: Watch,
}

/// The client's connection and its place in the room: the socket, the seqs it saw across its
/// reconnects, and the stay (welcome to leaving) the room's ledger is told about.
#[derive(Default)]
struct Conn {
    ws: Option<Ws>,
    /// The room's durable seqs as this client saw them, across its reconnects.
    track: Track,
    /// A rejoin asked for `since`; the next welcome says whether it resumed.
    rejoin_since: Option<u64>,
    /// When the current connection opened (µs since the start).
    connected_at_us: u64,
    /// When the current stay in the room began (its welcome), and when the client left it
    /// (it may still resume and continue the stay).
    stay_from_us: Option<u64>,
    left_at_us: Option<u64>,
    /// A welcome was processed, so `track` holds a real position in the room.
    seen_welcome: bool,
}

/// Stock latency scoring: the stock values this client saw, and how far it got scoring the
/// buyers' marks (`Shared::stock_marks`) against them.
#[derive(Default)]
struct StockWatch {
    /// Per `room|deal`, the next buyer's mark to score.
    cursor: HashMap<String, usize>,
    /// Stock values this client saw per deal, with when (µs), for the last few seconds: a
    /// `stock` frame can arrive before the buyer's own `reserved` (the hub sends the first
    /// change of a tick at once), and then the viewer's latency for that mark is 0.
    seen: HashMap<String, VecDeque<(u32, u64)>>,
    last_check_us: u64,
    /// `stock_marks_total` when this client last had nothing left to score.
    marks_done: u64,
}

impl StockWatch {
    /// This client saw `remaining` of `key` (`room|deal`) at `now`; sightings older than
    /// [`MARK_WINDOW_US`] are dropped.
    fn saw(&mut self, key: &str, remaining: u32, now: u64) {
        let seen = self.seen.entry(key.to_owned()).or_default();
        seen.push_back((remaining, now));
        while seen
            .front()
            .is_some_and(|(_, t)| now.saturating_sub(*t) > MARK_WINDOW_US)
        {
            seen.pop_front();
        }
    }

    /// Scores the buyers' marks `(R, t)` for one deal against what this client saw: the
    /// latency is from `t` to the first time it saw stock <= R (0 if that was already so).
    /// Marks from before this connection (`since_us`) or older than [`MARK_WINDOW_US`] are
    /// skipped.
    fn score(&mut self, shared: &Shared, key: &str, now: u64, since_us: u64) {
        let marks = shared.stock_marks.read();
        let Some(list) = marks.get(key) else { return };
        let Some(seen) = self.seen.get(key) else {
            return;
        };
        let cursor = self.cursor.entry(key.to_owned()).or_insert(0);
        let mut samples = Vec::new();
        while let Some(&(r, t)) = list.get(*cursor) {
            if t < since_us || now.saturating_sub(t) > MARK_WINDOW_US {
                *cursor += 1;
            } else if let Some(&(_, at)) = seen
                .iter()
                .find(|(rem, at)| *rem <= r && at + MARK_WINDOW_US >= t)
            {
                samples.push(at.saturating_sub(t));
                *cursor += 1;
            } else {
                break;
            }
        }
        drop(marks);
        if !samples.is_empty() {
            let mut h = shared.m.stock.lock();
            for v in samples {
                h.record(v);
            }
        }
    }

    /// At most every 100 ms, and only when marks were added since it last had nothing left to
    /// score, scores every deal this client saw.
    fn check(&mut self, shared: &Shared, now: u64, since_us: u64) {
        if now.saturating_sub(self.last_check_us) < 100_000 || self.seen.is_empty() {
            return;
        }
        self.last_check_us = now;
        let total = shared.stock_marks_total.load(Relaxed);
        if total == self.marks_done {
            return;
        }
        let keys: Vec<String> = self.seen.keys().cloned().collect();
        for key in keys {
            self.score(shared, &key, now, since_us);
        }
        // Marks still open are looked at again next time; all scored or expired: rest.
        let open = {
            let marks = shared.stock_marks.read();
            self.cursor
                .iter()
                .any(|(k, c)| marks.get(k).is_some_and(|l| l.len() > *c))
        };
        if !open {
            self.marks_done = total;
        }
    }
}

/// The client's own requests: the deals it can tap, its reserves, checkouts and cancels
/// awaiting answers, and the holds it got.
#[derive(Default)]
struct Requests {
    /// The hold (reservation id) each answered reserve got, by the reserve's request_id.
    holds: HashMap<String, String>,
    /// Requests awaiting their answer, by request_id: which (`reserve`, `checkout`, `cancel`)
    /// and when it was sent.
    pending: HashMap<String, (&'static str, Instant)>,
    /// Deals this client has seen (any status): a buyer taps only once the deal is on screen,
    /// and keeps tapping a sold-out card like real viewers do.
    seen_deals: std::collections::HashSet<String>,
    /// Reserves planned before the deal reached this client, tapped when it does.
    deferred: Vec<Action>,
    /// The deal of each reserve sent, by request_id (a `rejected` does not name it).
    reserve_deal: HashMap<String, String>,
    /// Commands sent with a numbered request_id (`k<N>` comments, `hc<N>` host commands).
    numbered: u64,
}

impl Requests {
    /// The deferred reserves whose deal is now on screen, taken out of `deferred`.
    fn take_ready(&mut self) -> Vec<Action> {
        let seen = &self.seen_deals;
        let (now, later) = std::mem::take(&mut self.deferred)
            .into_iter()
            .partition(|a| matches!(a, Action::Reserve { deal, .. } if seen.contains(deal)));
        self.deferred = later;
        now
    }
}

/// The viewer's funnel facts, when the run checks the funnel.
#[derive(Default)]
struct Funnel {
    /// Who the client is on every connection (from its `connect`).
    who: Attribution,
    /// A viewer's funnel facts, when the run checks the funnel.
    facts: Option<ViewerFacts>,
    /// Replies already counted in `facts`, by request_id: each request counts once.
    counted: std::collections::HashSet<String>,
}

/// Counts batched in the client before they go to the shared metrics ([`Client::flush`]).
#[derive(Default)]
struct Batch {
    deliveries: u64,
    /// Comment latencies (µs) not yet recorded.
    comment_lat: Vec<u64>,
}

/// Delivery time allowed before an event another viewer got counts as missed by a viewer that
/// was in the room (µs): generous, so that only a viewer that really never got it counts.
const MISSED_MARGIN_US: u64 = 5_000_000;

/// How long a buyer's stock mark stays open (µs).
const MARK_WINDOW_US: u64 = 5_000_000;

/// `s` as a protocol id; none when it is not one (such a request is not sent).
fn id(s: impl Into<String>) -> Option<Id> {
    Id::new(s).ok()
}

/// `msg` carrying `request_id` (the commands whose request_id is optional; the others already
/// carry theirs).
fn with_request_id(mut msg: ClientMsg, id: Option<Id>) -> ClientMsg {
    msg.set_request_id(id);
    msg
}

fn seq_after(s: &str) -> Option<u64> {
    let rest = s.strip_prefix(",\"seq\":")?;
    let end = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    rest[..end].parse().ok()
}

impl Client {
    fn new(
        shared: Arc<Shared>,
        id: String,
        room: String,
        node: usize,
        ledger: Arc<Ledger>,
    ) -> Self {
        Client {
            auction: Watch::new(&room, &id, node),
            shared,
            id,
            room,
            node,
            ledger,
            conn: Conn::default(),
            stock: StockWatch::default(),
            buy: Requests::default(),
            funnel: Funnel::default(),
            batch: Batch::default(),
        }
    }

    /// A connection of this client ended at `at_us` (µs since the start).
    fn stay_ended(&mut self, at_us: u64) {
        let from = self.conn.connected_at_us;
        if let Some(f) = self.funnel.facts.as_mut() {
            f.stays.push((from, at_us.max(from)));
        }
    }

    /// Plays the client's events until `stop`; a viewer's funnel facts when the run keeps them.
    async fn run(
        mut self,
        events: Vec<Event>,
        mut stop: watch::Receiver<bool>,
    ) -> Option<ViewerFacts> {
        if self.shared.target.funnel && !is_host(&self.id) {
            self.funnel.facts = Some(ViewerFacts {
                room: self.room.clone(),
                ..ViewerFacts::default()
            });
        }
        let speed = self.shared.target.speed;
        let start = self.shared.start;
        let due = |idx: usize| {
            events.get(idx).map(|e| {
                tokio::time::Instant::from_std(
                    start + Duration::from_secs_f64(e.t_ms as f64 / 1000.0 / speed),
                )
            })
        };
        let mut idx = 0;
        // One timer and one stop future for the client's life, not one of each per frame: with
        // 10,000 clients, re-registering them per delivery cost more than the delivery.
        let far = tokio::time::Instant::now() + Duration::from_secs(86_400 * 365);
        let timer = tokio::time::sleep_until(due(0).unwrap_or(far));
        tokio::pin!(timer);
        let stopped = stop.changed();
        tokio::pin!(stopped);
        // The auction's next step (a bid, a sniper's window): reset only when it changes.
        let bid_timer = tokio::time::sleep_until(far);
        tokio::pin!(bid_timer);
        let mut bid_due = None;
        loop {
            tokio::select! {
                _ = &mut stopped => break,
                _ = &mut timer, if idx < events.len() => {
                    let e = &events[idx];
                    idx += 1;
                    timer.as_mut().reset(due(idx).unwrap_or(far));
                    self.act(&e.action).await;
                }
                _ = &mut bid_timer, if bid_due.is_some() => self.bid_when_due().await,
                read = async { match self.conn.ws.as_mut() { Some(ws) => ws.fill().await, None => std::future::pending().await } } => {
                    self.on_read(read);
                    for a in self.buy.take_ready() {
                        self.act(&a).await;
                    }
                }
            }
            if self.auction.due() != bid_due {
                bid_due = self.auction.due();
                let at = bid_due.map_or(far, tokio::time::Instant::from_std);
                bid_timer.as_mut().reset(at);
            }
        }
        self.flush();
        if !self.shared.auctions.is_empty() && !is_host(&self.id) {
            let connected = self.conn.ws.is_some();
            self.auction.finish(&self.shared.auction_log, connected);
        }
        if let Some(ws) = self.conn.ws.take() {
            self.stay_ended(self.shared.now_us());
            ws.close().await;
            self.shared.m.connected.fetch_sub(1, Relaxed);
        }
        self.end_stay();
        let who = self.funnel.who.clone();
        self.funnel.facts.take().map(|f| ViewerFacts { who, ..f })
    }

    /// Reads until every reserve, checkout and cancel sent on this connection is answered, the
    /// connection closes, or `limit` passed. (Requests of an earlier connection that closed
    /// unanswered are not waited for: no answer can come on this one.)
    async fn await_replies(&mut self, limit: Duration) {
        let until = tokio::time::Instant::now() + limit;
        let since = self.shared.start + Duration::from_micros(self.conn.connected_at_us);
        while self.buy.pending.values().any(|(_, sent)| *sent >= since) {
            let Some(ws) = self.conn.ws.as_mut() else {
                return;
            };
            match tokio::time::timeout_at(until, ws.fill()).await {
                Ok(read) => self.on_read(read),
                Err(_) => return,
            }
        }
    }

    /// Closes the current stay (at the time the client left, or now) for the room's ledger.
    fn end_stay(&mut self) {
        if let Some(from_us) = self.conn.stay_from_us.take() {
            self.ledger.stayed(Stay {
                node: self.node,
                from_us,
                to_us: self.conn.left_at_us.unwrap_or_else(|| self.shared.now_us()),
                last: self.conn.track.position(),
            });
        }
    }

    fn record(&self, action: &Action) {
        if let Some(r) = &self.shared.recorder {
            r.record(&Event::new(
                (self.shared.now_us() as f64 / 1000.0 * self.shared.target.speed) as u64,
                &self.room,
                &self.id,
                action.clone(),
            ));
        }
    }

    async fn connect(&mut self, since: Option<u64>) {
        let token = self.shared.token(&self.id, &self.room, &self.funnel.who);
        let mut url = format!(
            "{}/ws/rooms/{}?token={token}{}",
            self.shared.url(self.node),
            self.room,
            self.funnel.who.query()
        );
        if let Some(s) = since {
            url.push_str(&format!("&since={s}"));
        }
        let started = Instant::now();
        let limit = Duration::from_secs(15);
        match tokio::time::timeout(limit, RawWs::connect(url.as_str())).await {
            Ok(Ok(ws)) => {
                self.conn.ws = Some(ws);
                self.conn.rejoin_since = since;
                self.conn.connected_at_us = self.shared.now_us();
                self.shared
                    .m
                    .connect
                    .lock()
                    .record(started.elapsed().as_micros() as u64);
                self.shared.m.connects_ok.fetch_add(1, Relaxed);
                self.node().connects_ok.fetch_add(1, Relaxed);
                self.shared.m.connected.fetch_add(1, Relaxed);
            }
            failed => {
                let reason = match failed {
                    Ok(Err(e)) => crate::failures::reason(&e),
                    _ => crate::failures::timed_out(limit),
                };
                self.shared.m.connect_failures.note(reason);
                self.shared.m.connects_failed.fetch_add(1, Relaxed);
                self.node().connects_failed.fetch_add(1, Relaxed);
            }
        }
    }

    /// Sends one command on the current connection; false when there is none or it failed.
    async fn send(&mut self, msg: &ClientMsg) -> bool {
        let Some(ws) = self.conn.ws.as_mut() else {
            return false;
        };
        let Ok(text) = serde_json::to_string(msg) else {
            return false;
        };
        ws.send_text(&text).await.is_ok()
    }

    /// Plays one action (recording it when it is played: an action that cannot be played now,
    /// such as a comment while disconnected, is dropped, and a reserve for a deal not yet on
    /// screen waits for it).
    async fn act(&mut self, action: &Action) {
        match action {
            Action::Connect(who) => {
                self.record(action);
                self.funnel.who = who.clone();
                self.connect(None).await;
            }
            Action::Leave => self.leave(action).await,
            Action::Rejoin => {
                if self.conn.ws.is_none() {
                    self.record(action);
                    // Resume only from a seq this client actually saw: one that left before its
                    // welcome arrived has nothing to resume from and joins fresh.
                    let since = self.conn.seen_welcome.then_some(self.conn.track.position());
                    self.connect(since).await;
                }
            }
            Action::Comment { text } => self.comment(action, text).await,
            Action::Like { count } => {
                if self.conn.ws.is_some() {
                    self.record(action);
                    let like = ClientMsg::Like {
                        count: *count,
                        request_id: None,
                    };
                    self.send(&like).await;
                }
            }
            Action::Reserve { deal, .. } if !self.buy.seen_deals.contains(deal) => {
                // A viewer taps Buy once the deal is on their screen, not on the plan's clock.
                if self.conn.ws.is_some() {
                    self.buy.deferred.push(action.clone());
                }
            }
            Action::Reserve {
                request_id,
                deal,
                qty,
            } => self.reserve(action, request_id, deal, *qty).await,
            Action::Checkout { request_id, of } => {
                self.settle(action, "checkout", request_id, of).await
            }
            Action::Cancel { request_id, of } => {
                self.settle(action, "cancel", request_id, of).await
            }
            Action::Host { command } => self.host(action, command).await,
            Action::Bid { .. }
            | Action::Bidder { .. }
            | Action::Snipe { .. }
            | Action::LateBid { .. } => self.act_auction(action).await,
        }
    }

    /// Plays an auction action: a bid as given, or the way the viewer bids from now on.
    async fn act_auction(&mut self, action: &Action) {
        match action {
            Action::Bid {
                request_id,
                auction,
                amount_cents,
                max_cents,
            } => {
                let bid = BidNow {
                    request_id: request_id.clone(),
                    auction: auction.clone(),
                    amount_cents: *amount_cents,
                    max_cents: *max_cents,
                };
                self.bid(bid).await;
            }
            Action::Bidder {
                auction,
                budget_cents,
                raise,
                think_ms,
            } => {
                let way = Way::Bidder {
                    budget_cents: *budget_cents,
                    raise: *raise,
                    think_ms: *think_ms,
                };
                self.auction.arm(auction, way);
            }
            Action::Snipe {
                auction,
                budget_cents,
                lead_ms,
                window_ms,
            } => {
                let way = Way::Snipe {
                    budget_cents: *budget_cents,
                    lead_ms: *lead_ms,
                    window_ms: *window_ms,
                };
                self.auction.arm(auction, way);
            }
            Action::LateBid { auction } => self.auction.arm(auction, Way::Late),
            _ => {}
        }
    }

    /// Sends the auction bid now due, if the client still wants it.
    async fn bid_when_due(&mut self) {
        if let Some(bid) = self.auction.take_due(&self.shared.auction_log) {
            self.bid(bid).await;
        }
    }

    /// Sends an auction bid (recorded as sent), awaiting its answer.
    async fn bid(&mut self, bid: BidNow) {
        let (Some(request_id), Some(auction)) = (id(&*bid.request_id), id(&*bid.auction)) else {
            self.auction.unsent(&bid);
            return;
        };
        if self.conn.ws.is_none() {
            self.auction.unsent(&bid);
            return;
        }
        self.record(&Action::Bid {
            request_id: bid.request_id.clone(),
            auction: bid.auction.clone(),
            amount_cents: bid.amount_cents,
            max_cents: bid.max_cents,
        });
        self.auction
            .sent(&bid, &self.shared.auction_log, self.shared.now_us());
        let msg = ClientMsg::Bid {
            request_id,
            auction,
            amount_cents: bid.amount_cents,
            max_cents: bid.max_cents,
        };
        self.send(&msg).await;
    }

    /// Leaves the room (first taking the answers to its pending requests when the funnel is
    /// checked).
    async fn leave(&mut self, action: &Action) {
        if self.funnel.facts.is_some() {
            self.await_replies(REPLY_WAIT).await;
        }
        if let Some(ws) = self.conn.ws.take() {
            self.record(action);
            self.conn.left_at_us = Some(self.shared.now_us());
            self.stay_ended(self.shared.now_us());
            ws.close().await;
            self.shared.m.connected.fetch_sub(1, Relaxed);
        }
    }

    /// Sends a comment stamped with the time it was sent (`[t=µs] text`), for its latency.
    async fn comment(&mut self, action: &Action, text: &str) {
        if self.conn.ws.is_none() {
            return;
        }
        self.record(action);
        self.buy.numbered += 1;
        let comment = ClientMsg::Comment {
            text: format!("[t={}] {text}", self.shared.now_us()),
            request_id: id(format!("k{}", self.buy.numbered)),
        };
        if self.send(&comment).await {
            self.shared.m.comments_sent.fetch_add(1, Relaxed);
        }
    }

    /// Taps reserve on a deal on screen, awaiting its answer.
    async fn reserve(&mut self, action: &Action, request_id: &str, deal: &str, qty: u32) {
        if self.conn.ws.is_none() {
            return;
        }
        self.record(action);
        self.buy
            .pending
            .insert(request_id.to_owned(), ("reserve", Instant::now()));
        self.buy
            .reserve_deal
            .insert(request_id.to_owned(), deal.to_owned());
        let sent = match (id(request_id), id(deal)) {
            (Some(request_id), Some(deal)) => {
                let reserve = ClientMsg::Reserve {
                    request_id,
                    deal,
                    qty,
                };
                self.send(&reserve).await
            }
            _ => false,
        };
        if sent && let Some(f) = self.funnel.facts.as_mut() {
            f.tapped.insert(deal.to_owned());
        }
    }

    /// Checks out or cancels (`op`) the hold the reserve `of` got, if it got one.
    async fn settle(&mut self, action: &Action, op: &'static str, request_id: &str, of: &str) {
        let Some(reservation) = self.buy.holds.get(of).cloned() else {
            return;
        };
        if self.conn.ws.is_none() {
            return;
        }
        self.record(action);
        self.buy
            .pending
            .insert(request_id.to_owned(), (op, Instant::now()));
        let (Some(request_id), Some(reservation)) = (id(request_id), id(reservation)) else {
            return;
        };
        let msg = if op == "checkout" {
            ClientMsg::Checkout {
                request_id,
                reservation,
            }
        } else {
            ClientMsg::Cancel {
                request_id,
                reservation,
            }
        };
        self.send(&msg).await;
    }

    /// Sends a host command, numbered `hc<N>`.
    async fn host(&mut self, action: &Action, command: &ClientMsg) {
        if self.conn.ws.is_none() {
            return;
        }
        self.record(action);
        self.buy.numbered += 1;
        let numbered = with_request_id(command.clone(), id(format!("hc{}", self.buy.numbered)));
        self.send(&numbered).await;
    }

    fn node(&self) -> &NodeMetrics {
        &self.shared.m.nodes[self.node]
    }

    /// Adds `n` to one of the seq counts, on the run's total and on this client's node.
    fn tally(&self, count: fn(&SeqCounts) -> &AtomicU64, n: u64) {
        count(&self.shared.m.seq).fetch_add(n, Relaxed);
        count(&self.node().seq).fetch_add(n, Relaxed);
    }

    fn flush(&mut self) {
        let m = &self.shared.m;
        let delivered = std::mem::take(&mut self.batch.deliveries);
        m.deliveries.fetch_add(delivered, Relaxed);
        self.node().deliveries.fetch_add(delivered, Relaxed);
        if !self.batch.comment_lat.is_empty() {
            let mut all = m.comment.lock();
            let mut win = m.comment_window.lock();
            let mut node = m.nodes[self.node].comment.lock();
            for v in self.batch.comment_lat.drain(..) {
                all.record(v);
                win.record(v);
                node.record(v);
            }
        }
    }

    /// Handles every frame a read brought in (or the end of the connection).
    fn on_read(&mut self, read: std::io::Result<bool>) {
        let Some(mut ws) = self.conn.ws.take() else {
            return;
        };
        let mut code = match read {
            Ok(true) => None,
            Ok(false) | Err(_) => Some(1006),
        };
        while code.is_none() {
            let next = ws.next_buffered(|f| match f {
                Frame::Data(p) => {
                    if let Ok(text) = std::str::from_utf8(p) {
                        self.on_text(text);
                    }
                    None
                }
                Frame::Close(c) => Some(c),
            });
            match next {
                Ok(Some(None)) => {}
                Ok(None) => break,
                Ok(Some(Some(c))) => code = Some(c),
                Err(_) => code = Some(1006),
            }
        }
        match code {
            None => self.conn.ws = Some(ws),
            Some(c) => {
                self.conn.left_at_us = Some(self.shared.now_us());
                self.stay_ended(self.shared.now_us());
                *self.shared.m.closes.lock().entry(c).or_insert(0) += 1;
                self.shared.m.connected.fetch_sub(1, Relaxed);
            }
        }
    }

    /// A `skipped` marker: seqs `from..=seq` were comments the hub thinned for this viewer
    /// (it fell behind). They count as arrived, in order, and none of them as lost or missed.
    fn on_skipped(&mut self, s: &str) {
        let (Some(seq), Some(from), Some(comments)) = (
            number_after(s.as_bytes(), b"\"seq\":"),
            number_after(s.as_bytes(), b"\"from\":"),
            number_after(s.as_bytes(), b"\"comments\":"),
        ) else {
            return;
        };
        for at in from..=seq.max(from) {
            self.arrive(at);
        }
        self.tally(|c| &c.thinned, comments);
    }

    /// Where `seq` falls in this client's sequence, tallied.
    fn arrive(&mut self, seq: u64) {
        match self.conn.track.arrive(seq, seq) {
            Arrival::InOrder => {}
            Arrival::Gap { missed } => self.tally(|c| &c.lost, missed),
            Arrival::Duplicate => self.tally(|c| &c.duplicates, 1),
            Arrival::Late => {
                self.tally(|c| &c.out_of_order, 1);
                // Its gap counted it as lost; it is not.
                for lost in [&self.shared.m.seq.lost, &self.node().seq.lost] {
                    let _ = lost.fetch_update(Relaxed, Relaxed, |v| v.checked_sub(1));
                }
            }
        }
    }

    /// One durable event: where it falls in this client's sequence, and whether it is the
    /// event the room's other viewers got under the same seq.
    fn on_durable(&mut self, seq: u64, kind: &str, frame: &str) {
        self.arrive(seq);
        let now = self.shared.now_us();
        if let Some(d) = self
            .ledger
            .check(seq, kind, frame.as_bytes(), self.node, now)
        {
            self.shared.note_mismatch(&self.room, d);
        }
    }

    fn on_text(&mut self, s: &str) {
        self.batch.deliveries += 1;
        if self.batch.deliveries >= 512 {
            self.flush();
        }
        self.check_marks();
        let Some(rest) = s.strip_prefix("{\"type\":\"") else {
            return;
        };
        let Some((kind, after)) = rest.split_once('"') else {
            return;
        };
        match kind {
            "comment" => {
                if let Some(seq) = seq_after(after) {
                    self.on_durable(seq, kind, s);
                }
                if let Some(sent) = number_after(s.as_bytes(), b"[t=") {
                    self.batch
                        .comment_lat
                        .push(self.shared.now_us().saturating_sub(sent));
                }
                if self.batch.comment_lat.len() >= 64 {
                    self.flush();
                }
            }
            "comment_deleted" | "pinned" | "unpinned" | "deal" | "announcement" | "auction" => {
                if let Some(seq) = seq_after(after) {
                    self.on_durable(seq, kind, s);
                }
                if kind == "deal" {
                    self.note_deal(s);
                }
                if kind == "auction" {
                    self.auction.on_event(s, &self.shared.auction_log);
                }
            }
            "auction_bid" => {
                self.auction.on_tick(s, &self.shared.auction_log);
            }
            "likes" | "viewers" => {}
            "skipped" => self.on_skipped(s),
            "stock" => self.on_stock(s),
            _ => self.on_reply(kind, s),
        }
    }

    fn note_deal(&mut self, s: &str) {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(s) else {
            return;
        };
        if let Some(id) = v["deal"]["id"].as_str() {
            self.buy.seen_deals.insert(id.to_owned());
            self.saw_deal(id, v["deal"]["status"] != "ended");
        }
    }

    /// A `stock` frame: what this client saw, scored against the buyers' marks.
    fn on_stock(&mut self, s: &str) {
        #[derive(serde::Deserialize)]
        struct Stock {
            deal: String,
            remaining: u32,
        }
        let Ok(st) = serde_json::from_str::<Stock>(s) else {
            return;
        };
        let key = format!("{}|{}", self.room, st.deal);
        let now = self.shared.now_us();
        self.stock.saw(&key, st.remaining, now);
        self.stock
            .score(&self.shared, &key, now, self.conn.connected_at_us);
    }

    /// Marks can land after this client's last `stock` frame; look at them now and then.
    fn check_marks(&mut self) {
        let now = self.shared.now_us();
        self.stock
            .check(&self.shared, now, self.conn.connected_at_us);
    }

    /// A frame that is neither a room event nor stock: a `welcome`, or the answer to one of
    /// this client's requests.
    fn on_reply(&mut self, kind: &str, s: &str) {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(s) else {
            return;
        };
        if kind == "welcome" {
            self.on_welcome(&v);
            return;
        }
        let log = &self.shared.auction_log;
        if kind == "order" && v["auction"].is_string() {
            self.auction.on_order(&v, log);
            return;
        }
        let Some(rid) = v["request_id"].as_str() else {
            return;
        };
        if kind == "error" {
            bump(&self.shared.m.errors, v["code"].as_str().unwrap_or("?"));
        }
        if self.auction.on_answer(kind, rid, &v, log) {
            return;
        }
        let Some((op, sent)) = self.buy.pending.remove(rid) else {
            return;
        };
        let took = sent.elapsed().as_micros() as u64;
        self.note_reply(op, kind, rid, &v);
        self.on_answer(op, kind, rid, took, &v);
    }

    /// A welcome: the deals on screen, and where this client stands in the room's sequence
    /// (resumed from its `since`, or starting afresh, a failed resume counting what it lost).
    fn on_welcome(&mut self, v: &serde_json::Value) {
        self.conn.seen_welcome = true;
        if let Some(f) = self.funnel.facts.as_mut() {
            f.welcomed = true;
        }
        for d in v["deals"].as_array().into_iter().flatten() {
            if let Some(id) = d["id"].as_str() {
                self.buy.seen_deals.insert(id.to_owned());
                self.saw_deal(id, d["status"] != "ended");
            }
        }
        if v["auctions"].as_array().is_some_and(|a| !a.is_empty())
            && let Ok(auctions) = serde_json::from_value(v["auctions"].clone())
        {
            self.auction.on_welcome(auctions);
        }
        let seq = v["seq"].as_u64().unwrap_or(0);
        match self.conn.rejoin_since {
            Some(since) if v["resumed"] == true => self.conn.track.position_at(since),
            Some(since) => {
                self.shared.m.resume_failed.fetch_add(1, Relaxed);
                self.tally(|c| &c.lost, seq.saturating_sub(since));
                self.end_stay();
                self.conn.track.position_at(seq);
                self.conn.rejoin_since = None;
            }
            None => {
                self.end_stay();
                self.conn.track.position_at(seq);
            }
        }
        // A resumed welcome continues the stay; any other starts one.
        self.conn
            .stay_from_us
            .get_or_insert_with(|| self.shared.now_us());
        self.conn.left_at_us = None;
    }

    /// The answer `kind` to this client's request `rid` (a `op`, sent `took` µs ago) in the
    /// run's metrics; a hold is kept for its checkout or cancel and marks the stock it left.
    fn on_answer(&mut self, op: &str, kind: &str, rid: &str, took: u64, v: &serde_json::Value) {
        let m = &self.shared.m;
        match (op, kind) {
            ("reserve", "reserved") => {
                m.reserve.lock().record(took);
                m.reserved.fetch_add(1, Relaxed);
                if let (Some(res), Some(deal), Some(remaining)) = (
                    v["reservation"].as_str(),
                    v["deal"].as_str(),
                    v["remaining"].as_u64(),
                ) {
                    self.buy.holds.insert(rid.to_owned(), res.to_owned());
                    self.mark_stock(deal, remaining as u32);
                }
            }
            ("reserve", "rejected") => {
                m.reserve.lock().record(took);
                bump(&m.rejected, v["reason"].as_str().unwrap_or("?"));
            }
            ("checkout", "order") => {
                m.checkout.lock().record(took);
                m.ordered.fetch_add(1, Relaxed);
            }
            ("cancel", "released") => {
                m.cancel.lock().record(took);
                m.released.fetch_add(1, Relaxed);
            }
            ("checkout", _) => m.checkout.lock().record(took),
            ("cancel", _) => m.cancel.lock().record(took),
            _ => {}
        }
    }

    /// A buyer's mark: `remaining` of `deal` now, for the viewers' stock latency.
    fn mark_stock(&self, deal: &str, remaining: u32) {
        let key = format!("{}|{deal}", self.room);
        self.shared
            .stock_marks
            .write()
            .entry(key)
            .or_default()
            .push((remaining, self.shared.now_us()));
        self.shared.stock_marks_total.fetch_add(1, Relaxed);
    }
}

impl Client {
    /// A deal this viewer saw (welcome or `deal` event), `live` when not ended (a sold-out
    /// deal is still on screen, and the hub counts it as live): its exposure, and the run's
    /// window.
    fn saw_deal(&mut self, deal: &str, live: bool) {
        if !self.shared.target.funnel {
            return;
        }
        self.shared.saw_deal(&self.room, deal, live);
        if live && let Some(f) = self.funnel.facts.as_mut() {
            f.exposed.insert(deal.to_owned());
        }
    }

    /// Counts the answer `kind` to this client's own request `rid` (a `op`) in its funnel
    /// facts, once per request_id.
    fn note_reply(&mut self, op: &str, kind: &str, rid: &str, v: &serde_json::Value) {
        let Some(f) = self.funnel.facts.as_mut() else {
            return;
        };
        if !self.funnel.counted.insert(rid.to_owned()) {
            return;
        }
        let deal = self.buy.reserve_deal.get(rid).cloned();
        match (op, kind) {
            ("reserve", "reserved") => {
                if let Some(d) = v["deal"].as_str().map(str::to_owned).or(deal) {
                    f.held.insert(d);
                }
            }
            ("reserve", "rejected") if v["reason"] == "sold_out" => {
                if let Some(d) = deal {
                    *f.sold_out_taps.entry(d).or_insert(0) += 1;
                }
            }
            ("checkout", "order") => {
                if let (Some(d), Some(qty), Some(price)) = (
                    v["deal"].as_str(),
                    v["qty"].as_u64(),
                    v["price_cents"].as_u64(),
                ) {
                    f.orders.push(crate::funnel::truth::Order {
                        deal: d.to_owned(),
                        qty,
                        price_cents: price,
                    });
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rooms_viewers_go_round_robin_over_the_nodes_and_hosts_to_the_first() {
        let clients = [
            ("v0", "r0"),
            ("v1", "r1"),
            ("v2", "r0"),
            ("v3", "r1"),
            ("v4", "r0"),
            ("v10", "r0"),
            ("h-r0", "r0"),
            ("h-r1", "r1"),
            ("guest", "r0"),
        ];
        let n = assign_nodes(clients, 2);
        let node = |c: &str| n[c];
        // Room r0's viewers in number order: v0, v2, v4, v10, then guest.
        assert_eq!(
            ["v0", "v2", "v4", "v10", "guest"].map(node),
            [0, 1, 0, 1, 0]
        );
        assert_eq!(["v1", "v3"].map(node), [0, 1]);
        assert_eq!(["h-r0", "h-r1"].map(node), [0, 0]);
        assert!(assign_nodes(clients, 1).values().all(|&v| v == 0));
    }
}
