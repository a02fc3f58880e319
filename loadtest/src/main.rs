//! livehub-loadtest: plays live-show traffic against livehub hubs with real WebSocket clients and
//! says plainly whether the show held.
//!
//! - `run SCENARIO`: play a scenario file (config/scenarios/*.toml), optionally one shard of it.
//! - `replay TRACE`: play a recorded trace with its original timing (or `--speed`).
//! - `merge REPORT...`: merge the JSON reports of several shards.
//! - `idle`, `fanout`, `reserve`, `surge`: focused measurements.
//!
//! `run`, `replay` and `fanout` take `--url A,B,C`: one room's viewers are spread over the hub
//! nodes, and the report checks that every viewer saw the same events under the same seqs in the
//! same order (module `sequence`), with a line per node.
//!
//! Exit status: 0 when every SLO held, 1 when one was missed (each named on stderr), 2 on error.

mod auction;
mod failures;
mod fanout;
mod funnel;
mod hist;
mod hub_url;
mod idle;
mod measure;
mod mix;
mod report;
mod reserve;
mod run;
mod scenario;
mod sequence;
mod shop;
mod sink;
mod stats;
mod surge;
mod trace;
mod wsraw;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use livehub::protocol::ClientMsg;

/// The command line; `about` is the package description.
#[derive(Debug, Parser)]
#[command(name = "livehub-loadtest", version, about, after_help = AFTER_HELP)]
struct Cli {
    #[command(subcommand)]
    mode: Mode,
}

#[derive(Debug, Args)]
struct Play {
    /// Hub base URLs (ws://HOST:PORT; http:// is taken as ws://), comma separated, one per hub
    /// node: the clients of every room are spread over them (a room's i-th viewer on URL i % N,
    /// its host on the first), every viewer's seqs are checked against the others', and the
    /// report has a line per node.
    #[arg(
        long,
        default_value = "ws://127.0.0.1:8080",
        value_parser = crate::hub_url::parse,
        value_delimiter = ','
    )]
    url: Vec<String>,
    /// The hub's token secret. Default: auth.secret of --hub-config, else LIVEHUB_AUTH__SECRET,
    /// else the development secret.
    #[arg(long)]
    secret: Option<String>,
    /// The hub's configuration file, to read its token secret.
    #[arg(long)]
    hub_config: Option<PathBuf>,
    /// The hub's PID, to report its RSS and CPU; with several URLs, one PID per URL (comma
    /// separated, same order) adds each node's CPU seconds and CPU per delivery.
    #[arg(long, value_delimiter = ',')]
    hub_pid: Vec<u32>,
    /// Write every client action as JSON lines.
    #[arg(long)]
    record: Option<PathBuf>,
    /// Write the JSON report.
    #[arg(long)]
    report: Option<PathBuf>,
    /// Write the HTML report.
    #[arg(long)]
    html: Option<PathBuf>,
    /// No progress line.
    #[arg(long)]
    quiet: bool,
    /// Seconds to keep reading after the last action.
    #[arg(long, default_value_t = 2.0)]
    drain: f64,
}

#[derive(Debug, Subcommand)]
enum Mode {
    /// Play a scenario file.
    ///
    /// With `--url A,B,C` each room's viewers are spread over the hub nodes (the room's i-th
    /// viewer on URL i % N, its host on the first) and every viewer's durable seqs are checked
    /// against the others': the SLO `same_sequence` (always on) fails on a duplicate, an
    /// out-of-order seq, two viewers that got different events under one seq, or an event
    /// other viewers got that a connected viewer never did. The report has a line per node.
    Run {
        scenario: PathBuf,
        /// Play only slice I of N (viewers I, I+N, …; hosts in slice 0), e.g. 0/2.
        #[arg(long, default_value = "0/1")]
        shard: String,
        #[command(flatten)]
        play: Play,
    },
    /// Play a recorded trace with its original timing.
    Replay {
        trace: PathBuf,
        /// Timing factor: 2 plays twice as fast.
        #[arg(long, default_value_t = 1.0)]
        speed: f64,
        #[command(flatten)]
        play: Play,
    },
    /// Merge shard reports into one (sums counts, merges histograms, re-checks SLOs).
    Merge {
        reports: Vec<PathBuf>,
        #[arg(long)]
        report: Option<PathBuf>,
        #[arg(long)]
        html: Option<PathBuf>,
    },
    /// Connect N idle viewers to one room and report the hub's resident memory per viewer.
    Idle(idle::IdleArgs),
    /// N viewers in one room (spread over the --url nodes); a host posts numbered comments at
    /// stepped rates.
    ///
    /// Viewer i connects to URL i % N, the host to the first. Per step, in total and per node:
    /// deliveries, lost, duplicates, out of order, p50/p99 end to end, and the servers' CPU per
    /// delivery (one --server-pid per URL). At the end every viewer's (seq -> message) is
    /// compared with every other's. Exit 1 when viewers disagree (a duplicate, an out-of-order
    /// seq, different messages under one seq) or when the first step did not hold; where a later
    /// step fails is the ceiling, not a failure.
    Fanout(fanout::FanoutArgs),
    /// N buyers reserve in closed loops through the WebSocket path; reserves/s and latency.
    Reserve(reserve::ReserveArgs),
    /// N viewers connect at once; after an outside hub restart all resume with ?since=; checks
    /// the time to connect, the time to resume and that no event was missed.
    Surge(surge::SurgeArgs),
    /// A webhook receiver for benchmarks: checks signatures, answers 200, and when idle prints
    /// the events it got and the webhook lag (event to arrival) p50/p99.
    WebhookSink(sink::SinkArgs),
}

/// What `--help` adds after the modes.
const AFTER_HELP: &str = "\
Start with `livehub-loadtest run config/scenarios/smoke.toml --url ws://127.0.0.1:8080`.
Exit status: 0 when every SLO held, 1 when one was missed (each named on stderr), 2 on error.";

fn main() {
    let cli = Cli::parse();
    // One descriptor per simulated viewer.
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(2);
        }
    };
    let code = match rt.block_on(dispatch(cli.mode)) {
        Ok(true) => 0,
        Ok(false) => 1,
        Err(e) => {
            eprintln!("error: {e:#}");
            2
        }
    };
    std::process::exit(code);
}

fn secret(p: &Play) -> anyhow::Result<String> {
    if let Some(s) = &p.secret {
        return Ok(s.clone());
    }
    Ok(livehub::config::Config::from_env(p.hub_config.as_deref())?
        .auth
        .secret)
}

fn parse_shard(s: &str) -> anyhow::Result<(usize, usize)> {
    let (i, n) = s
        .split_once('/')
        .ok_or_else(|| anyhow::anyhow!("--shard wants I/N, e.g. 0/2"))?;
    let (i, n): (usize, usize) = (i.parse()?, n.parse()?);
    anyhow::ensure!(n >= 1 && i < n, "--shard {s}: need 0 <= I < N");
    Ok((i, n))
}

fn deals_of(events: &[trace::Event]) -> Vec<(String, String)> {
    let mut deals: Vec<(String, String)> = events
        .iter()
        .filter_map(|e| match &e.action {
            trace::Action::Host {
                command: ClientMsg::DealStart { deal, .. },
            } => Some((e.room.clone(), deal.id.to_string())),
            _ => None,
        })
        .collect();
    deals.dedup();
    deals
}

/// What to play and how to name it in the report.
struct Show {
    name: String,
    mode: &'static str,
    shard: (usize, usize),
    slo: scenario::Slo,
    viewers: u64,
    events: Vec<trace::Event>,
    speed: f64,
    /// Check the hub's funnel after the run: every room of the show with its deals' terms
    /// (from the whole plan, also when this shard has no hosts).
    funnel: Option<
        std::collections::BTreeMap<
            String,
            std::collections::BTreeMap<String, funnel::truth::Terms>,
        >,
    >,
    /// The scenario's shop, playing the shop's backend during the run.
    shop: Option<shop::Shop>,
    /// How long to wait past the last action for every auction's close, and how far the load
    /// tester's clock may be ahead of the hub's (module `auction`).
    close_wait_s: f64,
    clock_tolerance_ms: u64,
}

async fn play(show: Show, p: &Play) -> anyhow::Result<bool> {
    let Show {
        name,
        mode,
        shard,
        slo,
        viewers,
        events,
        speed,
        funnel: funnel_terms,
        shop,
        close_wait_s,
        clock_tolerance_ms,
    } = show;
    let deals = deals_of(&events);
    let recorder = p
        .record
        .as_deref()
        .map(trace::Recorder::create)
        .transpose()?;
    let urls: Vec<String> = p
        .url
        .iter()
        .map(|u| u.trim_end_matches('/').to_owned())
        .collect();
    let target = run::Target {
        urls: urls.clone(),
        secret: secret(p)?,
        hub_pids: p.hub_pid.clone(),
        speed,
        drain_s: p.drain,
        progress: !p.quiet,
        funnel: funnel_terms.is_some(),
        close_wait_s,
        clock_tolerance_ms,
    };
    let check = funnel_terms.map(|terms| funnel::check::Input {
        http: urls[0].replacen("ws://", "http://", 1),
        auth: livehub::auth::Authenticator::new(&target.secret, false),
        terms,
        partial: shard.1 > 1,
    });
    let stale = match &check {
        Some(c) => funnel::check::before(c).await,
        None => Default::default(),
    };
    let http = urls[0].replacen("ws://", "http://", 1);
    let shop = match shop {
        Some(s) => {
            let auth = livehub::auth::Authenticator::new(&target.secret, false);
            Some(shop::start(http, &auth, s).await?)
        }
        None => None,
    };
    let outcome = run::play(events, deals, target, recorder).await?;
    let mut report = report::Report::build(&name, mode, shard, viewers, slo, &urls, &outcome);
    if let Some(shop) = shop {
        if !p.quiet {
            eprintln!("shop: waiting for the orders it left to expire, then checking the feed");
        }
        report.shop = Some(shop.finish().await);
        report.evaluate();
    }
    if let Some(c) = &check {
        if !p.quiet {
            eprintln!(
                "funnel: waiting for the hub's counters to settle, then reading each room's funnel"
            );
        }
        report.funnel =
            Some(funnel::check::run(c, stale, &outcome.viewers, &outcome.windows).await);
        report.evaluate();
    }
    finish(&report, p.report.as_deref(), p.html.as_deref())
}

fn finish(
    report: &report::Report,
    json: Option<&std::path::Path>,
    html: Option<&std::path::Path>,
) -> anyhow::Result<bool> {
    println!("{}", report.table());
    if let Some(path) = json {
        std::fs::write(path, serde_json::to_string_pretty(report)?)?;
    }
    if let Some(path) = html {
        std::fs::write(path, report.html())?;
    }
    let failed = report.failed();
    for f in &failed {
        eprintln!(
            "SLO missed: {} (target {}, actual {})",
            f.name, f.target, f.actual
        );
    }
    if let Some(f) = &report.funnel {
        for line in &f.mismatches {
            eprintln!("funnel_mismatch: {line}");
        }
    }
    if let Some(a) = &report.auction {
        for problem in &a.problems {
            eprintln!("auction_truth: {problem}");
        }
    }
    if report.sequence_violations() > 0 {
        eprintln!(
            "sequence: viewers did not all see the same seqs in the same order: {} duplicates, {} out of order, {} deliveries whose event differs from another viewer's under the same seq, {} events missed while other viewers got them",
            report.duplicates, report.out_of_order, report.seq_mismatches, report.missed
        );
        for sample in &report.seq_mismatch_samples {
            eprintln!("sequence mismatch: {sample}");
        }
        for sample in &report.missed_samples {
            eprintln!("sequence missed: {sample}");
        }
    }
    Ok(failed.is_empty())
}

/// The show a scenario plans for one shard (`I/N`): its events, SLOs, viewers and, when it
/// checks the funnel, the deal terms of the whole show (every shard plans them alike).
fn scenario_show(path: &std::path::Path, shard: &str) -> anyhow::Result<Show> {
    let s = scenario::Scenario::load(path)?;
    let shard = parse_shard(shard)?;
    anyhow::ensure!(
        shard.1 == 1 || s.auction.is_none(),
        "scenario {}: an [auction] plays in one process (its check replays every accepted bid): \
         run it without --shard",
        s.name
    );
    let events = scenario::plan(&s, shard);
    let funnel = s.mix.as_ref().filter(|m| m.check).map(|_| {
        if shard.1 > 1 {
            funnel::check::terms_of(&scenario::plan(&s, (0, 1)))
        } else {
            funnel::check::terms_of(&events)
        }
    });
    let viewers = (0..s.viewer_count())
        .filter(|v| v % shard.1 == shard.0)
        .count() as u64;
    Ok(Show {
        name: s.name.clone(),
        mode: "scenario",
        shard,
        slo: s.slo.clone(),
        viewers,
        events,
        speed: 1.0,
        funnel,
        // One shop for the whole show: the first shard's.
        shop: s.shop.clone().filter(|_| shard.0 == 0),
        close_wait_s: s.auction.as_ref().map_or(0.0, |a| a.close_wait_s),
        clock_tolerance_ms: s.auction.as_ref().map_or(0, |a| a.clock_tolerance_ms),
    })
}

/// The show a recorded trace replays at `speed`, without SLOs or a funnel check.
fn replay_show(path: &std::path::Path, speed: f64) -> anyhow::Result<Show> {
    anyhow::ensure!(speed > 0.0, "--speed must be positive");
    let events = trace::read(path)?;
    let viewers = events
        .iter()
        .filter(|e| e.client.starts_with('v') && matches!(e.action, trace::Action::Connect(_)))
        .count() as u64;
    Ok(Show {
        name: path.display().to_string(),
        mode: "replay",
        shard: (0, 1),
        slo: scenario::Slo::default(),
        viewers,
        events,
        speed,
        funnel: None,
        shop: None,
        close_wait_s: REPLAY_CLOSE_WAIT_S,
        clock_tolerance_ms: 0,
    })
}

/// How long a replay waits past its last action for the close of an auction it started.
const REPLAY_CLOSE_WAIT_S: f64 = 60.0;

/// The JSON reports at `paths`, each error naming its file.
fn read_reports(paths: &[PathBuf]) -> anyhow::Result<Vec<report::Report>> {
    let mut all = Vec::new();
    for path in paths {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        all.push(
            serde_json::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?,
        );
    }
    Ok(all)
}

/// Runs the chosen mode; true when it met its SLOs (or has none).
async fn dispatch(mode: Mode) -> anyhow::Result<bool> {
    match mode {
        Mode::Run {
            scenario,
            shard,
            play: p,
        } => play(scenario_show(&scenario, &shard)?, &p).await,
        Mode::Replay {
            trace: path,
            speed,
            play: p,
        } => play(replay_show(&path, speed)?, &p).await,
        Mode::Merge {
            reports,
            report,
            html,
        } => {
            let merged = report::Report::merge(read_reports(&reports)?)?;
            finish(&merged, report.as_deref(), html.as_deref())
        }
        Mode::Idle(a) => idle::run(a).await.map(|_| true),
        Mode::Fanout(a) => fanout::run(a).await,
        Mode::Reserve(a) => reserve::run(a).await.map(|_| true),
        Mode::Surge(a) => surge::run(a).await,
        Mode::WebhookSink(a) => sink::run(a).await,
    }
}
