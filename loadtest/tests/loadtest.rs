//! The load tester against a real hub started by the test.

// A test may be longer than the 80 lines clippy.toml allows a function elsewhere.
#![allow(clippy::too_many_lines)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use async_trait::async_trait;
use livehub::config::Config;
use livehub::inventory::sales::{Buyer, DealSales};
use livehub::inventory::{
    Audit, CancelOutcome, CheckoutOutcome, EndedDeal, Inventory, InventoryError, MemoryInventory,
    ReserveOutcome, ReserveRequest, StockChange, StockLevel,
};
use livehub::protocol::{Deal, DealSpec, Id, RejectReason};

const BIN: &str = env!("CARGO_BIN_EXE_livehub-loadtest");
const SECRET: &str = "loadtest-secret-0123456789";

fn root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn config() -> Config {
    let mut c = Config::defaults();
    c.auth.secret = SECRET.into();
    // Every load client connects from 127.0.0.1.
    c.limits.connections_per_ip = 0;
    c
}

async fn hub_with(
    inventory: Option<Arc<dyn Inventory>>,
) -> anyhow::Result<(String, tokio::sync::oneshot::Sender<()>)> {
    hub_on(config(), inventory).await
}

/// A hub in this process on port 0 with `config` (and `inventory` instead of the configured
/// one); it runs until the returned sender is dropped or used.
async fn hub_on(
    config: Config,
    inventory: Option<Arc<dyn Inventory>>,
) -> anyhow::Result<(String, tokio::sync::oneshot::Sender<()>)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("ws://{}", listener.local_addr()?);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let shutdown = async move {
        let _ = stopped.await;
    };
    tokio::spawn(async move {
        let r = match inventory {
            Some(inv) => {
                let backends = livehub::server::Backends::local(inv, &config);
                livehub::server::run_with(listener, config, backends, shutdown).await
            }
            None => livehub::server::run(listener, config, shutdown).await,
        };
        if let Err(e) = r {
            eprintln!("hub: {e}");
        }
    });
    Ok((url, stop))
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

async fn loadtest(args: Vec<String>) -> anyhow::Result<Run> {
    let out = tokio::process::Command::new(BIN)
        .args(&args)
        .output()
        .await?;
    Ok(Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    })
}

fn tmp(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("livehub-loadtest-{}-{name}", std::process::id()))
}

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_smoke_scenario_meets_its_slos_with_deliveries_and_no_loss() -> anyhow::Result<()> {
    let (url, _stop) = hub_with(None).await?;
    let (report, html) = (tmp("smoke.json"), tmp("smoke.html"));
    let scenario = root().join("config/scenarios/smoke.toml");
    let run = loadtest(args(&[
        "run",
        scenario.to_str().unwrap(),
        "--url",
        &url,
        "--secret",
        SECRET,
        "--quiet",
        "--report",
        report.to_str().unwrap(),
        "--html",
        html.to_str().unwrap(),
    ]))
    .await?;
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let r: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&report)?)?;
    assert!(r["deliveries"].as_u64().unwrap() > 0, "{r}");
    assert_eq!(r["oversold"], 0);
    assert_eq!(r["leaked"], 0);
    assert_eq!(r["lost"], 0);
    assert_eq!(r["duplicates"], 0);
    assert_eq!(r["connect"]["failed"], 0);
    assert!(r["comment_latency"]["count"].as_u64().unwrap() > 0);
    assert!(r["reserved"].as_u64().unwrap() > 0);
    assert_eq!(r["audits"].as_array().unwrap().len(), 2);
    // The funnel was checked end to end: every room, no mismatch, money included.
    let funnel = &r["funnel"];
    assert_eq!(funnel["mismatches"], serde_json::json!([]), "{funnel}");
    assert_eq!(funnel["rooms"].as_object().unwrap().len(), 2);
    for (room, c) in funnel["rooms"].as_object().unwrap() {
        assert!(
            c["truth"]["total"]["orders"].as_u64().unwrap() > 0,
            "{room}"
        );
        assert!(
            c["truth"]["channels"]["live"]["viewers"].as_u64().unwrap() > 0,
            "{room}"
        );
    }
    assert!(
        r["slo_results"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["name"] == "funnel_mismatch" && s["ok"] == true)
    );
    let page = std::fs::read_to_string(&html)?;
    assert!(
        page.contains("<svg") && !page.contains("<script"),
        "self-contained HTML with SVG charts"
    );
    assert!(run.stdout.contains("latency (ms)"));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missed_slo_exits_non_zero_and_names_it() -> anyhow::Result<()> {
    let (url, _stop) = hub_with(None).await?;
    let scenario = tmp("strict.toml");
    std::fs::write(
        &scenario,
        r#"
name = "strict"
duration_s = 4
[[viewers]]
count = 20
over_s = 1
[chat]
comments_per_s = 10
start_s = 1
[slo]
p99_comment_ms = 0
max_lost = 0
"#,
    )?;
    let run = loadtest(args(&[
        "run",
        scenario.to_str().unwrap(),
        "--url",
        &url,
        "--secret",
        SECRET,
        "--quiet",
    ]))
    .await?;
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stderr.contains("SLO missed: p99_comment_ms"),
        "{}",
        run.stderr
    );
    assert!(
        !run.stderr.contains("max_lost"),
        "only the missed SLO is named: {}",
        run.stderr
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hub_counts_a_channel_mix_per_channel_and_a_reused_room_fails_funnel_mismatch()
-> anyhow::Result<()> {
    let (url, _stop) = hub_with(None).await?;
    let scenario = tmp("mix.toml");
    std::fs::write(
        &scenario,
        r#"
name = "mix"
duration_s = 3
room_prefix = "mix"
[[viewers]]
count = 30
over_s = 1
[churn]
leaves_per_s = 3
away_s = 0.5
[funnel.channels.paid]
share = 2
[funnel.channels.live]
share = 1
via_query = true
aff_share = 1
affiliates = ["bo"]
[funnel.channels.direct]
share = 1
"#,
    )?;
    let report = tmp("mix.json");
    let play = || {
        loadtest(args(&[
            "run",
            scenario.to_str().unwrap(),
            "--url",
            &url,
            "--secret",
            SECRET,
            "--quiet",
            "--report",
            report.to_str().unwrap(),
        ]))
    };
    let run = play().await?;
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let r: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&report)?)?;
    let room = &r["funnel"]["rooms"]["mix0"];
    let (truth, hub) = (&room["truth"], &room["hub"]);
    assert_eq!(truth["total"]["viewers"], 30, "{room}");
    for channel in ["paid", "live", "direct"] {
        let n = truth["channels"][channel]["viewers"].as_u64().unwrap_or(0);
        assert!(n > 0, "{channel}: {room}");
        assert_eq!(hub["channels"][channel]["viewers"], n, "{channel}: {room}");
    }
    assert!(
        run.stdout.contains("the hub's funnel matches"),
        "{}",
        run.stdout
    );
    // The same rooms again: the hub's counts include the first run, which is said plainly.
    let again = play().await?;
    assert_eq!(again.code, 1, "{}\n{}", again.stdout, again.stderr);
    assert!(
        again
            .stderr
            .contains("funnel_mismatch: room mix0: the room was not fresh"),
        "{}",
        again.stderr
    );
    Ok(())
}

fn per_client(
    path: &std::path::Path,
) -> anyhow::Result<std::collections::BTreeMap<String, Vec<serde_json::Value>>> {
    let mut m: std::collections::BTreeMap<String, Vec<serde_json::Value>> = Default::default();
    for line in std::fs::read_to_string(path)?.lines() {
        let v: serde_json::Value = serde_json::from_str(line)?;
        m.entry(v["client"].as_str().unwrap_or_default().to_owned())
            .or_default()
            .push(v["action"].clone());
    }
    Ok(m)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recorded_run_replays_the_same_commands_in_the_same_order() -> anyhow::Result<()> {
    let scenario = tmp("rec.toml");
    std::fs::write(
        &scenario,
        r#"
name = "recorded"
duration_s = 5
rooms = 2
[[viewers]]
count = 40
over_s = 1
[churn]
leaves_per_s = 2
away_s = 0.5
[chat]
comments_per_s = 6
likes_per_s = 4
start_s = 1
[[host]]
at_s = 0.5
action = "deal_start"
deal = "rec"
stock = 100
per_user_limit = 1
duration_s = 30
[[host]]
at_s = 1
action = "announce"
text = "hello"
[buyers]
share = 0.5
window_s = 1
checkout = 0.5
cancel = 0.3
think_s = 0.5
"#,
    )?;
    let (first, second) = (tmp("first.jsonl"), tmp("second.jsonl"));
    let (url, _stop) = hub_with(None).await?;
    let run = loadtest(args(&[
        "run",
        scenario.to_str().unwrap(),
        "--url",
        &url,
        "--secret",
        SECRET,
        "--quiet",
        "--record",
        first.to_str().unwrap(),
    ]))
    .await?;
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    // Replay against a fresh hub (deal ids are single-use per room).
    let (url2, _stop2) = hub_with(None).await?;
    let run = loadtest(args(&[
        "replay",
        first.to_str().unwrap(),
        "--url",
        &url2,
        "--secret",
        SECRET,
        "--quiet",
        "--record",
        second.to_str().unwrap(),
    ]))
    .await?;
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let (a, b) = (per_client(&first)?, per_client(&second)?);
    assert!(a.len() > 40, "every viewer and both hosts acted");
    let kinds: std::collections::BTreeSet<String> = a
        .values()
        .flatten()
        .map(|v| v["type"].as_str().unwrap_or_default().to_owned())
        .collect();
    for k in [
        "connect", "leave", "rejoin", "comment", "like", "reserve", "checkout", "cancel", "host",
    ] {
        assert!(
            kinds.contains(k),
            "the recording has {k} actions: {kinds:?}"
        );
    }
    assert_eq!(
        a, b,
        "each client issued the same commands in the same order"
    );
    // ... and the global order by time matches too, up to timer jitter between clients.
    let order = |p: &std::path::Path| -> anyhow::Result<Vec<(String, serde_json::Value)>> {
        let mut v: Vec<(u64, String, serde_json::Value)> = std::fs::read_to_string(p)?
            .lines()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l).map(|j| {
                    (
                        j["t_ms"].as_u64().unwrap_or(0) / 250,
                        j["client"].as_str().unwrap_or_default().to_owned(),
                        j["action"].clone(),
                    )
                })
            })
            .collect::<Result<_, _>>()?;
        v.sort_by(|x, y| (x.0, &x.1).cmp(&(y.0, &y.1)));
        Ok(v.into_iter().map(|(_, c, a)| (c, a)).collect())
    };
    let (oa, ob) = (order(&first)?, order(&second)?);
    let same = oa.iter().zip(&ob).filter(|(x, y)| x == y).count();
    assert!(
        same as f64 >= 0.95 * oa.len() as f64,
        "{same} of {} in the same global position",
        oa.len()
    );
    Ok(())
}

/// A test-only inventory that oversells: once the real stock is gone it keeps saying `reserved`
/// and reports the phantom holds in its audit.
struct Overselling {
    real: MemoryInventory,
    phantom: AtomicU32,
}

#[async_trait]
impl Inventory for Overselling {
    async fn start_deal(
        &self,
        room: &Id,
        spec: &DealSpec,
        creator: &Id,
        now: u64,
    ) -> Result<Deal, InventoryError> {
        self.real.start_deal(room, spec, creator, now).await
    }
    async fn end_deal(&self, room: &Id, deal: &Id, now: u64) -> Result<EndedDeal, InventoryError> {
        self.real.end_deal(room, deal, now).await
    }
    async fn end_if_due(
        &self,
        room: &Id,
        deal: &Id,
        now: u64,
    ) -> Result<Option<EndedDeal>, InventoryError> {
        self.real.end_if_due(room, deal, now).await
    }
    async fn reserve(&self, req: &ReserveRequest) -> Result<ReserveOutcome, InventoryError> {
        match self.real.reserve(req).await? {
            ReserveOutcome::Rejected(RejectReason::SoldOut) => {
                let n = self.phantom.fetch_add(1, Ordering::SeqCst) + 1;
                Ok(ReserveOutcome::Reserved {
                    reservation: Id::new(format!("phantom-{n}"))
                        .map_err(InventoryError::Internal)?,
                    qty: 1,
                    expires_at: req.now + 60_000,
                    level: StockLevel {
                        remaining: 0,
                        version: u64::MAX - 1_000_000 + u64::from(n),
                    },
                })
            }
            other => Ok(other),
        }
    }
    async fn checkout(
        &self,
        room: &Id,
        user: &Id,
        r: &Id,
        buyer: &Buyer,
        now: u64,
    ) -> Result<CheckoutOutcome, InventoryError> {
        self.real.checkout(room, user, r, buyer, now).await
    }
    async fn cancel(
        &self,
        room: &Id,
        user: &Id,
        r: &Id,
        now: u64,
    ) -> Result<CancelOutcome, InventoryError> {
        self.real.cancel(room, user, r, now).await
    }
    async fn expire_due(&self, now: u64) -> Result<Vec<StockChange>, InventoryError> {
        self.real.expire_due(now).await
    }
    async fn settle(
        &self,
        order: &Id,
        to: livehub::inventory::Settlement,
        now: u64,
    ) -> Result<livehub::inventory::SettleOutcome, InventoryError> {
        self.real.settle(order, to, now).await
    }
    async fn order_events(
        &self,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<livehub::orders::OrdersPage, InventoryError> {
        self.real.order_events(cursor, limit).await
    }
    async fn order_feed_end(&self) -> Result<String, InventoryError> {
        self.real.order_feed_end().await
    }
    async fn user_orders(
        &self,
        room: &Id,
        user: &Id,
        now: u64,
    ) -> Result<Vec<livehub::orders::OrderDoc>, InventoryError> {
        self.real.user_orders(room, user, now).await
    }
    async fn room_deals(
        &self,
        room: &Id,
        now: u64,
    ) -> Result<Vec<(Deal, StockLevel)>, InventoryError> {
        self.real.room_deals(room, now).await
    }
    async fn room_sales(&self, room: &Id, now: u64) -> Result<Vec<DealSales>, InventoryError> {
        self.real.room_sales(room, now).await
    }
    async fn creator_sales(
        &self,
        creator: &Id,
        now: u64,
    ) -> Result<Vec<DealSales>, InventoryError> {
        self.real.creator_sales(creator, now).await
    }
    async fn audit(&self, room: &Id, deal: &Id, now: u64) -> Result<Audit, InventoryError> {
        let mut a = self.real.audit(room, deal, now).await?;
        a.held += self.phantom.load(Ordering::SeqCst);
        Ok(a)
    }
    async fn health(&self) -> Result<(), InventoryError> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_catches_an_oversell_and_reports_the_units() -> anyhow::Result<()> {
    let broken = Arc::new(Overselling {
        real: MemoryInventory::new(60_000),
        phantom: AtomicU32::new(0),
    });
    let (url, _stop) = hub_with(Some(broken.clone())).await?;
    let scenario = tmp("oversell.toml");
    std::fs::write(
        &scenario,
        r#"
name = "oversell"
duration_s = 4
[[viewers]]
count = 40
over_s = 0.5
[[host]]
at_s = 1
action = "deal_start"
deal = "tiny"
stock = 5
per_user_limit = 1
duration_s = 30
[buyers]
share = 1.0
window_s = 1
checkout = 0.0
cancel = 0.0
[slo]
max_oversold = 0
"#,
    )?;
    let (run, r) = run_reported(&scenario, &url, "oversell").await?;
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stderr.contains("SLO missed: max_oversold"),
        "{}",
        run.stderr
    );
    let r = r?;
    let phantom = u64::from(broken.phantom.load(Ordering::SeqCst));
    assert!(phantom > 0);
    assert_eq!(r["oversold"].as_u64(), Some(phantom), "{}", run.stdout);
    assert_eq!(r["reserved"].as_u64(), Some(5 + phantom));
    assert!(
        run.stdout.contains(&format!("oversold {phantom}")),
        "{}",
        run.stdout
    );
    Ok(())
}

/// A hub on a fixed address (as a restarted process would be), with or without a state file.
async fn hub_at(
    addr: std::net::SocketAddr,
    state: Option<&std::path::Path>,
) -> anyhow::Result<(
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<()>,
)> {
    let listener = livehub::server::bind(addr)?;
    let mut c = config();
    c.server.state_file = state.map(|p| p.to_owned());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let shutdown = async move {
            let _ = stopped.await;
        };
        if let Err(e) = livehub::server::run(listener, c, shutdown).await {
            eprintln!("hub: {e}");
        }
    });
    Ok((stop, task))
}

/// Runs `surge` with `viewers` against a hub that is restarted (stopped gracefully, started
/// again on the same address) as soon as the tool says it is ready.
async fn surge_across_restart(
    name: &str,
    viewers: &str,
    state: Option<&std::path::Path>,
    json: &std::path::Path,
) -> anyhow::Result<Run> {
    let addr = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    let ready = tmp(&format!("{name}.ready"));
    let _ = std::fs::remove_file(&ready);
    if let Some(state) = state {
        let _ = std::fs::remove_file(state);
    }
    let (stop, task) = hub_at(addr, state).await?;
    let url = format!("ws://{addr}");
    let tester = tokio::spawn(loadtest(args(&[
        "surge",
        "--url",
        &url,
        "--viewers",
        viewers,
        "--secret",
        SECRET,
        "--events-per-sec",
        "20",
        "--after-secs",
        "1",
        "--ready-file",
        ready.to_str().unwrap_or_default(),
        "--json",
        json.to_str().unwrap_or_default(),
    ])));
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    while !ready.exists() {
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "surge never got ready"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await; // polling for a file
    }
    let _ = stop.send(());
    task.await?;
    let (stop, task) = hub_at(addr, state).await?;
    let run = tester.await??;
    let _ = stop.send(());
    task.await?;
    Ok(run)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn surge_viewers_resume_after_a_hub_restart_without_missing_an_event() -> anyhow::Result<()> {
    let (state, json) = (tmp("surge-state.json"), tmp("surge.json"));
    let run = surge_across_restart("surge", "300", Some(&state), &json).await?;
    assert_eq!(
        run.code, 0,
        "stdout: {}\nstderr: {}",
        run.stdout, run.stderr
    );
    let r: serde_json::Value = serde_json::from_slice(&std::fs::read(&json)?)?;
    assert_eq!(r["connected"], 300);
    assert_eq!(r["disconnected"], 300);
    assert_eq!(r["resumed"], 300);
    assert_eq!(r["resume_refused"], 0);
    assert_eq!(r["gaps"], 0);
    assert_eq!(r["behind_at_end"], 0);
    assert!(r["last_acked_seq"].as_u64().unwrap_or(0) > 20, "{r}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_state_file_a_restart_is_reported_as_refused_resumes() -> anyhow::Result<()> {
    // The same surge against a hub that forgets its rooms: the tool must say so.
    let run = surge_across_restart("forget", "50", None, &tmp("forget.json")).await?;
    assert_eq!(
        run.code, 1,
        "stdout: {}\nstderr: {}",
        run.stdout, run.stderr
    );
    assert!(
        run.stderr.contains("SLO missed: all resumed"),
        "{}",
        run.stderr
    );
    Ok(())
}

/// One room, 40 viewers, chat from both halves, host actions: a show to spread over nodes.
const ONE_ROOM: &str = r#"
name = "one-room"
duration_s = 4
room_prefix = "show"
[[viewers]]
count = 40
over_s = 0.5
[chat]
comments_per_s = 16
start_s = 0.8
[[host]]
at_s = 0.6
action = "announce"
text = "welcome"
[[host]]
at_s = 1.5
action = "pin"
product = "scarf"
[slo]
max_lost = 0
min_connect_success = 1.0
"#;

/// Runs the ONE_ROOM scenario against `urls` (comma separated); the outcome and its report.
async fn one_room(name: &str, urls: &str) -> anyhow::Result<(Run, serde_json::Value)> {
    let scenario = tmp(&format!("{name}.toml"));
    std::fs::write(&scenario, ONE_ROOM)?;
    let (run, report) = run_reported(&scenario, urls, name).await?;
    Ok((run, report?))
}

/// Runs `scenario` against `urls` quietly with a JSON report named after `name`: the outcome,
/// and the report as written (an error when the run wrote none, so a caller can show the run's
/// output first).
async fn run_reported(
    scenario: &std::path::Path,
    urls: &str,
    name: &str,
) -> anyhow::Result<(Run, anyhow::Result<serde_json::Value>)> {
    let report = tmp(&format!("{name}.json"));
    let run = loadtest(args(&[
        "run",
        scenario.to_str().unwrap_or_default(),
        "--url",
        urls,
        "--secret",
        SECRET,
        "--quiet",
        "--report",
        report.to_str().unwrap_or_default(),
    ]))
    .await?;
    let written = std::fs::read_to_string(&report)
        .map_err(anyhow::Error::from)
        .and_then(|text| Ok(serde_json::from_str(&text)?));
    Ok((run, written))
}

/// Asserts the report's sequence figures are all zero, overall and on every node.
fn assert_one_sequence(r: &serde_json::Value) {
    for key in [
        "lost",
        "duplicates",
        "out_of_order",
        "seq_mismatches",
        "missed",
    ] {
        assert_eq!(r[key], 0, "{key}: {r}");
    }
    for n in r["nodes"].as_array().into_iter().flatten() {
        for key in ["lost", "duplicates", "out_of_order", "missed"] {
            assert_eq!(n[key], 0, "node {}: {key}", n["url"]);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_rooms_viewers_spread_over_two_urls_see_one_sequence_reported_per_node()
-> anyhow::Result<()> {
    // The same hub twice: two "nodes" that cannot disagree.
    let (url, _stop) = hub_with(None).await?;
    let (run, r) = one_room("spread", &format!("{url},{url}")).await?;
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_one_sequence(&r);
    let nodes = r["nodes"].as_array().expect("nodes");
    assert_eq!(nodes.len(), 2, "{r}");
    for n in nodes {
        assert_eq!(n["url"], url.as_str());
        assert_eq!(n["viewers"], 20, "the room's viewers split evenly: {n}");
        assert!(n["deliveries"].as_u64() > Some(100), "{n}");
        assert!(n["comment_latency"]["count"].as_u64() > Some(0), "{n}");
        assert_eq!(n["connects_failed"], 0);
    }
    assert!(
        r["slo_results"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|s| s["name"] == "same_sequence" && s["ok"] == true),
        "{r}"
    );
    assert!(
        run.stdout.contains(&format!("node 0 {url}")),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains(&format!("node 1 {url}")),
        "{}",
        run.stdout
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hubs_that_number_one_room_each_on_their_own_fail_the_sequence_check()
-> anyhow::Result<()> {
    // Two memory hubs that share nothing: each numbers the room from 1, so the same seq is a
    // different event on each (the host's announcement on one, a viewer's comment on the other).
    let (a, _stop_a) = hub_with(None).await?;
    let (b, _stop_b) = hub_with(None).await?;
    let (run, r) = one_room("split", &format!("{a},{b}")).await?;
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stderr.contains("SLO missed: same_sequence"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("sequence mismatch: room show0 seq "),
        "the stderr names the room, the seq and the two nodes: {}",
        run.stderr
    );
    assert!(
        run.stderr.contains(&a) && run.stderr.contains(&b),
        "{}",
        run.stderr
    );
    assert!(r["seq_mismatches"].as_u64() > Some(0), "{r}");
    let urls: Vec<&str> = r["nodes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|n| n["url"].as_str())
        .collect();
    assert_eq!(urls, [a.as_str(), b.as_str()]);
    Ok(())
}

/// A hub config whose comment limits let one host post as fast as `fanout` sends.
fn fast_comments(mut c: Config) -> Config {
    c.limits.comment_rate_per_sec = 1_000_000.0;
    c.limits.comment_burst = 1_000_000.0;
    c
}

/// Runs `fanout` with 40 viewers at 20 msg/s for 2 s against `urls`; the outcome and its JSON.
/// The step holds at a p99 up to 5 s: these tests prove how viewers are spread and reported, not
/// the speed, and the suite runs them beside the page tests on a busy machine.
async fn fanout(name: &str, urls: &str) -> anyhow::Result<(Run, serde_json::Value)> {
    let json = tmp(&format!("{name}.json"));
    let run = loadtest(args(&[
        "fanout",
        "--url",
        urls,
        "--viewers",
        "40",
        "--rates",
        "20",
        "--step-secs",
        "2",
        "--max-p99-ms",
        "5000",
        "--secret",
        SECRET,
        "--json",
        json.to_str().unwrap_or_default(),
    ]))
    .await?;
    let r = serde_json::from_str(&std::fs::read_to_string(&json)?)?;
    Ok((run, r))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fanout_spreads_viewers_over_the_urls_and_reports_each_node() -> anyhow::Result<()> {
    let (url, _stop) = hub_on(fast_comments(config()), None).await?;
    let (run, r) = fanout("fanout-spread", &format!("{url},{url}")).await?;
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(r["sequence"]["same"], true, "{r}");
    assert_eq!(r["sequence"]["viewers"], 40);
    let nodes = r["nodes"].as_array().expect("nodes");
    assert_eq!(nodes.len(), 2, "{r}");
    for n in nodes
        .iter()
        .chain(r["steps"][0]["nodes"].as_array().into_iter().flatten())
    {
        assert_eq!(n["viewers"], 20, "{n}");
        assert_eq!(n["expected"], 40 * 20, "{n}");
        assert_eq!(n["delivered"], n["expected"], "{n}");
        for key in ["lost", "duplicates", "out_of_order"] {
            assert_eq!(n[key], 0, "{key}: {n}");
        }
        assert!(n["p99_ms"].as_f64() > Some(0.0), "{n}");
    }
    assert_eq!(r["steps"][0]["delivered"], 40 * 40);
    assert!(run.stdout.contains("node 1 "), "{}", run.stdout);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fanout_fails_when_one_node_never_gets_the_senders_messages() -> anyhow::Result<()> {
    // The sender posts on the first hub; the second shares nothing with it.
    let (a, _stop_a) = hub_on(fast_comments(config()), None).await?;
    let (b, _stop_b) = hub_on(fast_comments(config()), None).await?;
    let (run, r) = fanout("fanout-split", &format!("{a},{b}")).await?;
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stderr.contains("SLO missed: first_step_held"),
        "{}",
        run.stderr
    );
    assert_eq!(r["nodes"][0]["lost"], 0, "{r}");
    assert_eq!(r["nodes"][1]["lost"], 40 * 20, "{r}");
    assert_eq!(r["nodes"][1]["delivered"], 0, "{r}");
    Ok(())
}

/// A throwaway `redis-server` on a free port, stopped when dropped.
struct Redis {
    url: String,
    child: std::process::Child,
}

impl Redis {
    fn start() -> anyhow::Result<Redis> {
        use anyhow::Context;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let child = std::process::Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .context("starting redis-server (bash scripts/test.sh installs it)")?;
        let redis = Redis {
            url: format!("redis://127.0.0.1:{port}"),
            child,
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            anyhow::ensure!(
                std::time::Instant::now() < deadline,
                "redis-server did not listen"
            );
            std::thread::sleep(std::time::Duration::from_millis(20)); // polling for the port
        }
        Ok(redis)
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_on_one_redis_carry_one_show_without_a_sequence_violation() -> anyhow::Result<()>
{
    let redis = Redis::start()?;
    let node = || {
        let mut c = fast_comments(config());
        c.inventory.backend = livehub::config::InventoryBackend::Redis;
        c.redis.url = redis.url.clone();
        c
    };
    let (a, _stop_a) = hub_on(node(), None).await?;
    let (b, _stop_b) = hub_on(node(), None).await?;
    let urls = format!("{a},{b}");
    let (run, r) = one_room("redis-show", &urls).await?;
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_one_sequence(&r);
    for n in r["nodes"].as_array().into_iter().flatten() {
        assert!(n["deliveries"].as_u64() > Some(100), "{n}");
    }
    let (run, r) = fanout("redis-fanout", &urls).await?;
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(r["sequence"]["same"], true, "{r}");
    for n in r["nodes"].as_array().into_iter().flatten() {
        assert_eq!(
            n["delivered"],
            40 * 20,
            "every node delivered every message: {n}"
        );
    }
    Ok(())
}

/// A 3-second show of 40 viewers.
fn small_show(name: &str) -> anyhow::Result<std::path::PathBuf> {
    let scenario = tmp(&format!("{name}.toml"));
    std::fs::write(
        &scenario,
        format!(
            r#"
name = "{name}"
duration_s = 3
[[viewers]]
count = 40
over_s = 1
[chat]
comments_per_s = 5
start_s = 1
"#
        ),
    )?;
    Ok(scenario)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http_url_is_played_as_ws_and_every_failed_connect_is_counted_by_its_reason()
-> anyhow::Result<()> {
    // At most 15 connections from one address: the rest of the 40 viewers are refused.
    let mut c = config();
    c.limits.connections_per_ip = 15;
    let (url, _stop) = hub_on(c, None).await?;
    let http = url.replacen("ws://", "http://", 1);
    let (scenario, report) = (small_show("capped")?, tmp("capped.json"));
    let run = loadtest(args(&[
        "run",
        scenario.to_str().unwrap(),
        "--url",
        &http,
        "--secret",
        SECRET,
        "--quiet",
        "--drain",
        "0.5",
        "--report",
        report.to_str().unwrap(),
    ]))
    .await?;
    assert_ne!(run.code, 2, "{}\n{}", run.stdout, run.stderr);
    let r: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&report)?)?;
    let connect = &r["connect"];
    assert!(
        connect["ok"].as_u64() > Some(0),
        "http:// played as ws://: {r}"
    );
    let failed = connect["failed"].as_u64().unwrap_or(0);
    assert!(failed > 0, "{r}");
    let reason =
        "HTTP 429 rate_limited: too many open connections from this address; close one first";
    assert_eq!(
        connect["failures"],
        serde_json::json!({ reason: failed }),
        "every failed connect counted under the hub's reason"
    );
    assert!(
        run.stdout
            .contains(&format!("  failed         {failed} × {reason}\n")),
        "{}",
        run.stdout
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_url_the_clients_cannot_use_is_refused_before_the_run_with_what_to_give_instead()
-> anyhow::Result<()> {
    let scenario = small_show("refused")?;
    let started = std::time::Instant::now();
    for (url, says) in [
        ("https://127.0.0.1:8443", "plain ws://"),
        ("ws://127.0.0.1:8080/ws/rooms/a", "without a path"),
    ] {
        let run = loadtest(args(&["run", scenario.to_str().unwrap(), "--url", url])).await?;
        assert_eq!(run.code, 2, "{}\n{}", run.stdout, run.stderr);
        assert!(
            run.stderr.contains("--url") && run.stderr.contains(says),
            "{url}: {}",
            run.stderr
        );
        assert!(run.stdout.is_empty(), "no report: {}", run.stdout);
    }
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    // Nothing listening: the first connection (opening the room) says why, and the run stops.
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let run = loadtest(args(&[
        "run",
        scenario.to_str().unwrap(),
        "--url",
        &format!("http://127.0.0.1:{port}"),
        "--secret",
        SECRET,
    ]))
    .await?;
    assert_eq!(run.code, 2, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(
        run.stderr.trim(),
        format!(
            "error: opening room room0 at ws://127.0.0.1:{port} as its host: connection refused"
        )
    );
    Ok(())
}

#[tokio::test]
async fn help_describes_the_tool_and_version_works() -> anyhow::Result<()> {
    let help = loadtest(args(&["--help"])).await?;
    assert_eq!(help.code, 0, "{}", help.stderr);
    assert!(
        help.stdout.starts_with(env!("CARGO_PKG_DESCRIPTION")),
        "{}",
        help.stdout
    );
    assert!(help.stdout.contains("Exit status"), "{}", help.stdout);
    let version = loadtest(args(&["--version"])).await?;
    assert_eq!(version.code, 0, "{}", version.stderr);
    assert_eq!(
        version.stdout.trim(),
        format!("livehub-loadtest {}", env!("CARGO_PKG_VERSION"))
    );
    Ok(())
}

/// The shop scenario (issue 23): the load tester pays, fails and lets orders expire on a hub
/// with external payment, and its report checks the order feed against what it did.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shop_scenario_pays_fails_and_lets_expire_and_the_feed_matches() -> anyhow::Result<()> {
    let mut c = config();
    c.orders.payment = livehub::config::PaymentMode::External;
    c.orders.payment_timeout_ms = 2_000; // as config/scenarios/shop.toml says
    c.inventory.sweep_interval_ms = 100;
    let (url, _stop) = hub_on(c, None).await?;
    let scenario = root().join("config/scenarios/shop.toml");
    let (run, r) = run_reported(&scenario, &url, "shop").await?;
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let r = r?;
    let shop = &r["shop"];
    assert_eq!(shop["mismatch_count"], 0, "{shop}");
    assert_eq!(shop["duplicates"], 0, "{shop}");
    for k in ["paid", "failed", "expired"] {
        assert!(shop[k].as_u64() > Some(0), "{k}: {shop}");
    }
    let total = ["paid", "failed", "expired"]
        .iter()
        .map(|k| shop[*k].as_u64().unwrap_or(0))
        .sum::<u64>();
    assert_eq!(
        Some(total),
        shop["orders"].as_u64(),
        "every order ended: {shop}"
    );
    assert_eq!(
        r["leaked"], 0,
        "stock == remaining + held + pending + sold: {r}"
    );
    assert!(run.stdout.contains("shop: "), "{}", run.stdout);
    Ok(())
}

/// A live auction the size of a smoke test (issue 24): 50 viewers, 20 bidders with proxy
/// maxima, 10 snipers in the last second before the end, 5 who bid after the close.
const AUCTION: &str = r#"
name = "auction-smoke"
duration_s = 3
room_prefix = "auction"
[[viewers]]
count = 50
over_s = 0.5
[auction]
at_s = 0.6
id = "lot1"
product = "guitar"
start_cents = 1000
increment_cents = 100
duration_s = 5
extend_s = 2
bidders = 20
budget_cents = [2000, 8000]
raise = [0.1, 0.5]
first_bid_s = 2
think_ms = [200, 400]
snipers = 10
snipe_budget_cents = [9000, 14000]
snipe_window_ms = 1000
late = 5
close_wait_s = 30
[slo]
max_lost = 0
min_connect_success = 1.0
"#;

/// Runs the AUCTION scenario against `urls`; asserts its report checked itself and held.
async fn auction_smoke(name: &str, urls: &str) -> anyhow::Result<serde_json::Value> {
    let scenario = tmp(&format!("{name}.toml"));
    std::fs::write(&scenario, AUCTION)?;
    let (run, r) = run_reported(&scenario, urls, name).await?;
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let r = r?;
    let a = &r["auction"];
    assert_eq!(a["problems"], serde_json::json!([]), "{a}");
    let c = &a["auctions"][0];
    assert_eq!(c["status"], "sold", "{c}");
    assert_eq!(c["status"], c["expected_status"], "{c}");
    assert_eq!(c["winner"], c["expected_winner"], "{c}");
    assert_eq!(c["price_cents"], c["expected_price_cents"], "{c}");
    assert_eq!(c["ends_at"], c["expected_ends_at"], "{c}");
    assert_eq!(c["bids"], c["accepted_logged"], "{c}");
    assert!(c["bids"].as_u64() > Some(5), "a bidding war: {c}");
    assert!(
        c["extensions"].as_u64() > Some(0),
        "the snipes moved the end: {c}"
    );
    assert_eq!(c["accepted_after_close"], 0, "{c}");
    assert_eq!(c["orders"].as_array().map(Vec::len), Some(1), "{c}");
    assert_eq!(c["orders"][0][0], c["winner"], "{c}");
    assert_eq!(c["viewers_checked"], 50, "{c}");
    assert_eq!(c["viewers_equal"], 50, "{c}");
    assert!(
        a["outcomes"]["ended"].as_u64() >= Some(5),
        "every late bid was refused: {a}"
    );
    assert!(a["bid_latency"]["count"].as_u64() > Some(20), "{a}");
    assert!(a["close_latency"]["count"].as_u64() >= Some(50), "{a}");
    assert!(
        r["slo_results"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|s| s["name"] == "auction_truth" && s["ok"] == true),
        "{r}"
    );
    assert!(run.stdout.contains("end to close"), "{}", run.stdout);
    Ok(r)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_auction_closes_as_the_rules_give_from_the_accepted_bids_and_every_viewer_sees_it()
-> anyhow::Result<()> {
    let (url, _stop) = hub_with(None).await?;
    auction_smoke("auction", &url).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_auction_on_two_nodes_sharing_one_redis_closes_once_for_every_viewer_of_both()
-> anyhow::Result<()> {
    let redis = Redis::start()?;
    let node = || {
        let mut c = config();
        c.inventory.backend = livehub::config::InventoryBackend::Redis;
        c.redis.url = redis.url.clone();
        c
    };
    let (a, _stop_a) = hub_on(node(), None).await?;
    let (b, _stop_b) = hub_on(node(), None).await?;
    let r = auction_smoke("auction-redis", &format!("{a},{b}")).await?;
    let by_node = r["auction"]["close_latency_by_node"]
        .as_array()
        .expect("per node");
    assert_eq!(by_node.len(), 2, "viewers of both nodes got the close: {r}");
    Ok(())
}

/// A test-only auction store that closes every sold auction one increment above the price the
/// bids give (a house bid nobody made); everything else is the memory store's.
struct Shill {
    real: livehub::auctions::MemoryAuctions,
}

#[async_trait]
impl livehub::auctions::AuctionStore for Shill {
    async fn start(
        &self,
        room: &Id,
        spec: &livehub::protocol::AuctionSpec,
        now: u64,
    ) -> Result<livehub::auctions::AuctionRecord, InventoryError> {
        self.real.start(room, spec, now).await
    }
    async fn bid(
        &self,
        room: &Id,
        id: &Id,
        user: &str,
        bidder: &livehub::auctions::Bidding<'_>,
        request_id: &str,
        amount_cents: u64,
        max_cents: Option<u64>,
        now: u64,
    ) -> Result<livehub::auctions::Bid, InventoryError> {
        self.real
            .bid(
                room,
                id,
                user,
                bidder,
                request_id,
                amount_cents,
                max_cents,
                now,
            )
            .await
    }
    async fn close(
        &self,
        room: &Id,
        id: &Id,
        now: u64,
    ) -> Result<livehub::auctions::CloseAnswer, InventoryError> {
        use livehub::auctions::CloseAnswer;
        let shill = |mut r: livehub::auctions::AuctionRecord| {
            if r.state.status == livehub::protocol::AuctionStatus::Sold {
                r.state.current_cents = r.state.current_cents.map(|c| c + r.spec.increment_cents);
            }
            r
        };
        Ok(match self.real.close(room, id, now).await? {
            CloseAnswer::Closed(r) => CloseAnswer::Closed(shill(r)),
            CloseAnswer::AlreadyClosed(r) => CloseAnswer::AlreadyClosed(shill(r)),
            open => open,
        })
    }
    async fn settled(&self, room: &Id, id: &Id) -> Result<(), InventoryError> {
        self.real.settled(room, id).await
    }
    async fn due(
        &self,
        now: u64,
        lease_ms: u64,
        limit: usize,
    ) -> Result<Vec<(Id, Id)>, InventoryError> {
        self.real.due(now, lease_ms, limit).await
    }
    async fn end(
        &self,
        room: &Id,
        id: &Id,
        now: u64,
    ) -> Result<livehub::auctions::EndAnswer, InventoryError> {
        self.real.end(room, id, now).await
    }
    async fn room_auctions(
        &self,
        room: &Id,
    ) -> Result<Vec<livehub::auctions::AuctionRecord>, InventoryError> {
        self.real.room_auctions(room).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_close_above_the_price_the_bids_give_fails_auction_truth_naming_both()
-> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("ws://{}", listener.local_addr()?);
    let c = config();
    let mut backends = livehub::server::Backends::local(Arc::new(MemoryInventory::new(60_000)), &c);
    backends.auctions = Arc::new(Shill {
        real: livehub::auctions::MemoryAuctions::new(c.redis.retention_ms),
    });
    let (_stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let shutdown = async move {
            let _ = stopped.await;
        };
        if let Err(e) = livehub::server::run_with(listener, c, backends, shutdown).await {
            eprintln!("hub: {e}");
        }
    });
    let scenario = tmp("shill.toml");
    std::fs::write(&scenario, AUCTION)?;
    let (run, r) = run_reported(&scenario, &url, "shill").await?;
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stderr.contains("SLO missed: auction_truth"),
        "{}",
        run.stderr
    );
    let c = &r?["auction"]["auctions"][0];
    let (said, given) = (
        c["price_cents"].as_u64().unwrap_or(0),
        c["expected_price_cents"].as_u64().unwrap_or(0),
    );
    assert_eq!(said, given + 100, "{c}");
    assert!(
        run.stderr.contains(&format!(
            "auction_truth: auction0/lot1: the close says sold to {} at {said} cents",
            c["winner"].as_str().unwrap_or_default()
        )),
        "{}",
        run.stderr
    );
    Ok(())
}
