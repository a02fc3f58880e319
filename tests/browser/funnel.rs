//! The show funnel in a real browser (issue 14): a small real show (viewers from several
//! channels, one brought by an affiliate, reserving, checking out and meeting sold-out stock)
//! on a hub started here, then the host console's Funnel pane and the `livehub report` page,
//! each checked against the hub's own funnel and timeline and saved as screenshots at phone
//! (390x844) and desktop (1440x900) sizes.

use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use livehub::auth::{Authenticator, Claims};
use livehub::protocol::Role;
use serde_json::{Value, json};

use super::common::webdriver::{Browser, Driver, PHONE};
use super::common::{Client, TestHub, test_config};
use super::console::{assert_on_screen, page_size, rect, settled};
use super::shot;

/// The desktop size the issue names.
const DESKTOP: (u32, u32) = (1440, 900);
const ROOM: &str = "funnel-show";
const HOST: &str = "ana";
const AFF: &str = "bo";
const PRICE: u64 = 1999;
/// A product title a viewer's browser must show as text, never as markup.
const EVIL_TITLE: &str = r#"<img src=x onerror="document.title='owned'"> Mug & co"#;
const ENGAGED_MS: u64 = 1_500;

/// Every scenario of the funnel, in the one browser its test starts.
pub async fn scenarios(driver: &Driver) -> Result<()> {
    let hub = start_hub().await?;
    let show = run_show(&hub).await?;
    let funnel = settled_funnel(&hub).await?;
    // Kept beside the screenshots: what the pages were checked against.
    std::fs::create_dir_all(shot("x").parent().context("the screenshot folder")?)?;
    std::fs::write(
        shot("funnel-show").with_extension("json"),
        serde_json::to_string_pretty(&funnel)?,
    )?;
    // Checks of the per-deal figures and the money wait until the pages have been looked at
    // and saved: they fail together at the end, after every screenshot.
    let mut deals_and_money = Vec::new();
    the_console_funnel_pane_shows_the_hubs_figures(driver, &hub, &funnel, &mut deals_and_money)
        .await?;
    the_report_holds_the_funnel_the_timeline_and_the_money(
        driver,
        &hub,
        &funnel,
        &mut deals_and_money,
    )
    .await?;
    report_failures_are_one_line_with_the_host_exit_codes(&hub).await?;
    if let Err(e) = the_money_is_exact(&funnel, &report_path()) {
        deals_and_money.push(format!("{e:#}"));
    }
    for c in show {
        c.close().await;
    }
    hub.shutdown().await?;
    ensure!(
        deals_and_money.is_empty(),
        "per deal and money: {}",
        deals_and_money.join("; ")
    );
    Ok(())
}

// ---- the show ----------------------------------------------------------------------------

async fn start_hub() -> Result<TestHub> {
    let mut config = test_config();
    config.funnel.engaged_ms = ENGAGED_MS;
    config.funnel.flush_ms = 200;
    TestHub::with_config(config).await
}

fn host_token(hub: &TestHub) -> String {
    hub.token(Role::Host, ROOM, HOST)
}

/// A viewer token with the funnel's attribution claims.
fn viewer_token(hub: &TestHub, sub: &str, src: Option<&str>, aff: Option<&str>) -> Result<String> {
    Ok(
        Authenticator::new(&hub.config.auth.secret, false).mint(&Claims {
            sub: sub.into(),
            name: Some(format!("Fan {sub}")),
            role: Role::Viewer,
            room: ROOM.into(),
            exp: Some(livehub::hub::now_ms() / 1000 + 3600),
            src: src.map(str::to_owned),
            aff: aff.map(str::to_owned),
        })?,
    )
}

async fn command(hub: &TestHub, c: Value) -> Result<()> {
    let token = host_token(hub);
    let (status, body) = hub.post_command(ROOM, Some(&token), &c.to_string()).await?;
    ensure!(status == 200, "{c}: HTTP {status} {body}");
    Ok(())
}

async fn join(
    hub: &TestHub,
    sub: &str,
    src: Option<&str>,
    aff: Option<&str>,
    query: &str,
) -> Result<Client> {
    let token = viewer_token(hub, sub, src, aff)?;
    let mut c = Client::connect(&hub.ws_url(ROOM, &format!("token={token}{query}"))).await?;
    c.json_of("welcome").await?;
    Ok(c)
}

async fn reserve(c: &mut Client, deal: &str, rid: &str) -> Result<Value> {
    c.send(json!({"type": "reserve", "request_id": rid, "deal": deal, "qty": 1}))
        .await?;
    loop {
        let v = c.next_json().await?;
        if v["request_id"] == rid && (v["type"] == "reserved" || v["type"] == "rejected") {
            return Ok(v);
        }
    }
}

async fn buy(c: &mut Client, deal: &str, rid: &str) -> Result<()> {
    let held = reserve(c, deal, &format!("{rid}-r")).await?;
    ensure!(held["type"] == "reserved", "{rid}: {held}");
    c.send(json!({"type": "checkout", "request_id": format!("{rid}-c"), "reservation": held["reservation"]}))
        .await?;
    c.json_of("order").await?;
    Ok(())
}

/// Ana opens the room, pins two products (one with a title full of markup) and starts a
/// three-unit deal with 10% commission for her and 5% for affiliates. Eight viewers join: three
/// from paid ads, two from bo's creator video (with his `aff`), one whose app says `?src=live`,
/// two direct. One paid and both creator viewers buy the three units; another paid viewer
/// meets "sold out"; the live viewer holds a unit of a second deal and does not check out.
/// The deal ends. Returns the viewers, still connected.
async fn run_show(hub: &TestHub) -> Result<Vec<Client>> {
    hub.open_room(ROOM).await?;
    command(hub, json!({"type": "pin", "product": {"id": "scarf-wool", "title": "Merino wool scarf", "price_cents": 2599}})).await?;
    let mut viewers = Vec::new();
    for (sub, src, aff, query) in [
        ("p1", Some("paid"), None, ""),
        ("p2", Some("paid"), None, ""),
        ("p3", Some("paid"), None, ""),
        ("c1", Some("creator"), Some(AFF), ""),
        ("c2", Some("creator"), Some(AFF), ""),
        ("l1", None, None, "&src=live"),
        ("d1", None, None, ""),
        ("d2", None, None, ""),
    ] {
        viewers.push(join(hub, sub, src, aff, query).await?);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    // The last direct viewer leaves before the deal: a viewer who never saw one.
    viewers.pop().context("d2")?.close().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    command(hub, json!({"type": "deal_start", "deal": {"id": "d1", "product_id": "scarf-wool", "price_cents": PRICE,
        "stock": 3, "per_user_limit": 1, "duration_ms": 900_000, "commission_bps": 1000, "affiliate_bps": 500}})).await?;
    for (i, rid) in [(0, "p1"), (3, "c1"), (4, "c2")] {
        buy(&mut viewers[i], "d1", rid).await?;
    }
    let late = reserve(&mut viewers[1], "d1", "p2-r").await?;
    ensure!(
        late["type"] == "rejected" && late["reason"] == "sold_out",
        "p2 meets sold out: {late}"
    );
    command(hub, json!({"type": "pin", "product": {"id": "mug-enamel", "title": EVIL_TITLE, "price_cents": 1499}})).await?;
    command(hub, json!({"type": "deal_start", "deal": {"id": "d2", "product_id": "mug-enamel", "price_cents": 1499,
        "stock": 10, "per_user_limit": 1, "duration_ms": 900_000}})).await?;
    let held = reserve(&mut viewers[5], "d2", "l1-r").await?;
    ensure!(held["type"] == "reserved", "l1 holds a mug: {held}");
    // Everyone still here stays long enough to count as engaged.
    tokio::time::sleep(Duration::from_millis(ENGAGED_MS + 300)).await;
    command(hub, json!({"type": "deal_end", "deal": "d1"})).await?;
    Ok(viewers)
}

/// The funnel once the show's user stages have reached it (within a flush or two).
async fn settled_funnel(hub: &TestHub) -> Result<Value> {
    let token = host_token(hub);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let (status, body) = hub
            .get(&format!("/api/rooms/{ROOM}/funnel"), Some(&token))
            .await?;
        ensure!(status == 200, "funnel: HTTP {status} {body}");
        let f: Value = serde_json::from_str(&body)?;
        let ch = &f["channels"];
        if ch["paid"]["viewers"] == 3
            && ch["creator"]["ordered"] == 2
            && ch["paid"]["sold_out_taps"] == 1
            && ch["live"]["held"] == 1
            && ch["paid"]["engaged"] == 3
        {
            return Ok(f);
        }
        if tokio::time::Instant::now() > deadline {
            bail!("the funnel did not settle: {f}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await; // polling for the flush
    }
}

/// Runs `check`; a failure is noted in `failures` (reported at the end) instead of stopping.
async fn later(
    failures: &mut Vec<String>,
    what: &str,
    check: impl std::future::Future<Output = Result<String>>,
) {
    if let Err(e) = check.await {
        failures.push(format!("{what}: {e:#}"));
    }
}

/// Minor units as the pages write US dollars: `$1,234.56`.
fn usd(cents: u64) -> String {
    let dollars = (cents / 100).to_string();
    let mut grouped = String::new();
    for (i, c) in dollars.chars().enumerate() {
        if i > 0 && (dollars.len() - i).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(c);
    }
    format!("${grouped}.{:02}", cents % 100)
}

fn num(v: &Value) -> u64 {
    v.as_u64().unwrap_or(0)
}

// ---- the console ---------------------------------------------------------------------------

const STAGES: [&str; 6] = ["viewers", "engaged", "exposed", "tapped", "held", "ordered"];

/// Every channel block shows the hub's count on every stage's bar, and a bar as wide as its
/// share of the channel's viewers.
async fn channel_bars_match(b: &Browser, funnel: &Value) -> Result<()> {
    let channels = funnel["channels"].as_object().context("channels")?;
    for (name, c) in channels {
        for stage in STAGES {
            let css = format!(
                r#"#funnel-channels .funnel-channel[data-channel="{name}"] [data-stage="{stage}"] .funnel-stage-count"#
            );
            let want = num(&c[stage]).to_string();
            b.wait_text(&css, |t| t == want).await?;
        }
    }
    let shown = b
        .js("return [...document.querySelectorAll('#funnel-channels .funnel-channel')].map(e => e.dataset.channel);", json!([]))
        .await?;
    let mut want: Vec<&str> = [
        "short_video",
        "creator",
        "paid",
        "live",
        "product_card",
        "direct",
    ]
    .into_iter()
    .filter(|c| channels.contains_key(*c))
    .collect();
    want.extend(
        channels
            .keys()
            .map(String::as_str)
            .filter(|c| !want.contains(c))
            .collect::<Vec<_>>(),
    );
    ensure!(shown == json!(want), "channels in the hub's order: {shown}");
    // The paid ad's held bar: 1 of 3 viewers... as wide as its share.
    let share = b
        .js(
            "const c = document.querySelector('.funnel-channel[data-channel=\"paid\"]'); \
             const bar = c.querySelector('[data-stage=\"ordered\"] .funnel-stage-bar').getBoundingClientRect(); \
             const fill = c.querySelector('[data-stage=\"ordered\"] .funnel-stage-fill').getBoundingClientRect(); \
             return fill.width / bar.width;",
            json!([]),
        )
        .await?;
    let want = num(&funnel["channels"]["paid"]["ordered"]) as f64
        / num(&funnel["channels"]["paid"]["viewers"]).max(1) as f64;
    ensure!(
        share.as_f64().is_some_and(|s| (s - want).abs() < 0.03),
        "the paid ordered bar is {share} of its track, want {want}"
    );
    Ok(())
}

/// The chart marks both pins, both deal starts and the deal end, labelled, the evil title as
/// text.
async fn chart_marks_the_moments(b: &Browser, scope: &str) -> Result<()> {
    let kinds = b
        .wait_for(
            "the chart's moments",
            &format!(
                "[...document.querySelectorAll('{scope} svg .moment')].map(m => m.dataset.kind)"
            ),
            |v| v.as_array().is_some_and(|a| a.len() >= 5),
        )
        .await?;
    ensure!(
        kinds == json!(["pin", "deal_start", "pin", "deal_start", "deal_end"]),
        "moments in time order: {kinds}"
    );
    let labels = b
        .js(
            &format!("return [...document.querySelectorAll('{scope} svg .moment text')].map(t => t.textContent);"),
            json!([]),
        )
        .await?;
    let labels: Vec<String> = serde_json::from_value(labels)?;
    ensure!(labels[0] == "pin Merino wool scarf", "{labels:?}");
    ensure!(
        labels[1] == "start d1" && labels[3] == "start d2" && labels[4] == "end d1",
        "{labels:?}"
    );
    ensure!(
        labels[2].starts_with("pin <img src=x"),
        "the markup is text: {labels:?}"
    );
    let injected = b
        .js(
            "return [document.querySelectorAll('img[src=x]').length, document.title];",
            json!([]),
        )
        .await?;
    ensure!(
        injected[0] == 0 && injected[1] != "owned",
        "a title cannot inject markup: {injected}"
    );
    Ok(())
}

/// No two moment labels of the chart overlap.
async fn labels_do_not_overlap(b: &Browser, scope: &str) -> Result<()> {
    let found = b
        .js(
            &format!(
                "const t = [...document.querySelectorAll('{scope} svg .moment text')]; \
                 const r = t.map(e => e.getBoundingClientRect()); const out = []; \
                 for (let i = 0; i < r.length; i++) for (let j = i + 1; j < r.length; j++) \
                 if (r[i].left < r[j].right && r[j].left < r[i].right && r[i].top < r[j].bottom && r[j].top < r[i].bottom) \
                 out.push([t[i].textContent, [r[i].left, r[i].right, r[i].top], t[j].textContent, [r[j].left, r[j].right, r[j].top]]); \
                 return out;"
            ),
            json!([]),
        )
        .await?;
    ensure!(
        found.as_array().is_some_and(Vec::is_empty),
        "moment labels overlap in {scope}: {found}"
    );
    Ok(())
}

/// The console's Funnel pane, at desktop and phone sizes: the hub's counts on every channel's
/// bars, GMV, the sold-out taps per deal, the timeline with its moments; on a desktop beside
/// the chat, on a phone a tab that fits the screen's width.
async fn the_console_funnel_pane_shows_the_hubs_figures(
    driver: &Driver,
    hub: &TestHub,
    funnel: &Value,
    failures: &mut Vec<String>,
) -> Result<()> {
    let b = driver.session().await?;
    b.set_viewport(DESKTOP).await?;
    b.goto(&hub.http_url(&format!("/host/{ROOM}?token={}", host_token(hub))))
        .await?;
    b.wait_text("#status", |s| s == "live").await?;
    b.wait_visible("#funnel-pane").await?;
    channel_bars_match(&b, funnel).await?;
    let gmv = usd(num(&funnel["total"]["gmv_cents"]));
    b.wait_text("#funnel-gmv", |t| t == gmv).await?;
    b.wait_text("#funnel-sold-out", |t| t == "1").await?;
    later(
        failures,
        "the console's sold-out taps per deal",
        b.wait_text(r#"#funnel-missed li[data-deal="d1"]"#, |t| {
            t.contains("Merino wool scarf") && t.contains("1 sold-out")
        }),
    )
    .await;
    later(
        failures,
        "the console's top deal",
        b.wait_text("#funnel-top-deal", |t| t == "Merino wool scarf"),
    )
    .await;
    chart_marks_the_moments(&b, "#funnel-chart").await?;
    labels_do_not_overlap(&b, "#funnel-chart").await?;
    let (chat, pane) = (
        rect(&b, "#chat-pane").await?,
        rect(&b, "#funnel-pane").await?,
    );
    assert_on_screen(&b, "the chat", chat).await?;
    assert_on_screen(&b, "the funnel pane", pane).await?;
    assert_on_screen(&b, "the deal form", rect(&b, "#deal-form").await?).await?;
    ensure!(
        chat.left >= pane.right,
        "the funnel is beside the chat, not over it: {pane:?} {chat:?}"
    );
    settled(&b).await?;
    b.screenshot(&shot("console-funnel-desktop")).await?;
    b.js(
        "document.getElementById('funnel-chart').scrollIntoView({block: 'end'})",
        json!([]),
    )
    .await?;
    assert_on_screen(
        &b,
        "the timeline chart",
        rect(&b, "#funnel-chart svg").await?,
    )
    .await?;
    b.screenshot(&shot("console-funnel-chart-desktop")).await?;

    b.set_viewport(PHONE).await?;
    b.click("#tab-funnel").await?;
    b.wait_visible("#funnel-pane").await?;
    super::console::hidden(&b, "#deal-form").await?;
    channel_bars_match(&b, funnel).await?;
    chart_marks_the_moments(&b, "#funnel-chart").await?;
    labels_do_not_overlap(&b, "#funnel-chart").await?;
    let (w, _, _) = page_size(&b).await?;
    let wide = b
        .js("return document.documentElement.scrollWidth;", json!([]))
        .await?;
    ensure!(
        wide.as_f64().is_some_and(|s| s <= w + 0.5),
        "no sideways scroll on a phone: {wide} > {w}"
    );
    let chart = rect(&b, "#funnel-chart svg").await?;
    let pane = rect(&b, "#funnel-pane").await?;
    ensure!(
        chart.right <= pane.right + 0.5 && chart.left >= pane.left - 0.5,
        "the chart fits the pane: {chart:?} {pane:?}"
    );
    b.js("window.scrollTo(0, 0)", json!([])).await?;
    settled(&b).await?;
    b.screenshot(&shot("console-funnel-phone")).await?;
    b.js(
        "document.getElementById('funnel-chart').scrollIntoView({block: 'end'})",
        json!([]),
    )
    .await?;
    b.screenshot(&shot("console-funnel-chart-phone")).await?;
    b.quit().await;
    Ok(())
}

// ---- the report ----------------------------------------------------------------------------

/// Where the test writes the report (beside the screenshots).
fn report_path() -> std::path::PathBuf {
    shot("report-funnel-show").with_extension("html")
}

/// Runs the built `livehub` with `args`: (exit code, stdout, stderr).
async fn livehub(args: &[&str]) -> Result<(Option<i32>, String, String)> {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_livehub"))
        .args(args)
        .env_remove("LIVEHUB_URL")
        .env_remove("LIVEHUB_TOKEN")
        .output()
        .await?;
    Ok((
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ))
}

/// `livehub report` writes the file it names; opened from disk (file://, no hub, no network)
/// it holds a sentence per channel, the funnel with drops, the chart's moments, the deals by
/// GMV, the missed demand and the creators, all as the hub counted them.
async fn the_report_holds_the_funnel_the_timeline_and_the_money(
    driver: &Driver,
    hub: &TestHub,
    funnel: &Value,
    failures: &mut Vec<String>,
) -> Result<()> {
    let path = report_path();
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let _ = std::fs::remove_file(&path);
    let url = hub.http_url("");
    let token = host_token(hub);
    let out = path.to_string_lossy().into_owned();
    let (code, stdout, stderr) = livehub(&[
        "report", "--url", &url, "--room", ROOM, "--token", &token, "--out", &out,
    ])
    .await?;
    ensure!(
        code == Some(0),
        "livehub report failed ({code:?}): {stderr}"
    );
    ensure!(
        stdout.trim() == out,
        "it prints the path it wrote: {stdout}"
    );
    let html = std::fs::read_to_string(&path)?;
    ensure!(
        !html.contains("<script") && !html.contains("<link"),
        "self-contained, no script"
    );

    let b = driver.session().await?;
    b.set_viewport(DESKTOP).await?;
    b.goto(&format!("file://{}", path.display())).await?;
    let paid = b
        .wait_text(r#"#lost li[data-channel="paid"]"#, |t| !t.is_empty())
        .await?;
    ensure!(paid.starts_with("paid: 3 viewers, "), "{paid}");
    let creator = b
        .wait_text(r#"#lost li[data-channel="creator"]"#, |t| !t.is_empty())
        .await?;
    ensure!(creator.starts_with("creator: 2 viewers, "), "{creator}");
    let direct = b
        .wait_text(r#"#lost li[data-channel="direct"]"#, |t| !t.is_empty())
        .await?;
    ensure!(direct.starts_with("direct: 2 viewers, "), "{direct}");
    for (name, c) in funnel["channels"].as_object().context("channels")? {
        for stage in STAGES {
            let css = format!(
                r#"#funnel .channel[data-channel="{name}"] tr[data-stage="{stage}"] .bar b"#
            );
            let want = num(&c[stage]).to_string();
            b.wait_text(&css, |t| t == want).await?;
        }
    }
    let drops = b
        .js("return document.querySelectorAll('#funnel .channel tr[data-stage=\"engaged\"] td:last-child').length;", json!([]))
        .await?;
    ensure!(
        drops.as_u64() >= Some(2),
        "a drop on every stage after the first: {drops}"
    );
    chart_marks_the_moments(&b, "#timeline .chart.wide").await?;
    labels_do_not_overlap(&b, "#timeline .chart.wide").await?;
    later(
        failures,
        "the report's missed demand",
        b.wait_text(r#"#missed tr[data-deal="d1"]"#, |t| {
            t.contains("Merino wool scarf")
        }),
    )
    .await;
    let gmv = usd(num(&funnel["total"]["gmv_cents"]));
    b.wait_text("#tile-gmv b", |t| t == gmv).await?;
    settled(&b).await?;
    b.screenshot(&shot("report-desktop")).await?;
    b.js(
        "document.getElementById('timeline').scrollIntoView()",
        json!([]),
    )
    .await?;
    b.screenshot(&shot("report-timeline-desktop")).await?;

    b.set_viewport(PHONE).await?;
    b.js("window.scrollTo(0, 0)", json!([])).await?;
    let (w, _, _) = page_size(&b).await?;
    let wide = b
        .js("return document.documentElement.scrollWidth;", json!([]))
        .await?;
    ensure!(
        wide.as_f64().is_some_and(|s| s <= w + 0.5),
        "no sideways scroll on a phone: {wide} > {w}"
    );
    chart_marks_the_moments(&b, "#timeline .chart.narrow").await?;
    labels_do_not_overlap(&b, "#timeline .chart.narrow").await?;
    b.screenshot(&shot("report-phone")).await?;
    b.js(
        "document.getElementById('funnel').scrollIntoView()",
        json!([]),
    )
    .await?;
    b.screenshot(&shot("report-funnel-phone")).await?;
    b.js(
        "document.getElementById('timeline').scrollIntoView()",
        json!([]),
    )
    .await?;
    b.screenshot(&shot("report-timeline-phone")).await?;
    b.quit().await;

    Ok(())
}

/// `livehub report` fails like `livehub host`: one line on stderr, nothing on stdout, no file,
/// and exit 1 for the hub's refusal (a viewer token: `forbidden: …`), 2 for a usage error (a
/// room id that is not one), 3 for a hub that cannot be reached.
async fn report_failures_are_one_line_with_the_host_exit_codes(hub: &TestHub) -> Result<()> {
    let out = shot("report-refused").with_extension("html");
    let _ = std::fs::remove_file(&out);
    let out_arg = out.to_string_lossy().into_owned();
    let url = hub.http_url("");
    let viewer = viewer_token(hub, "p1", Some("paid"), None)?;
    let host = host_token(hub);
    let closed = format!("127.0.0.1:{}", {
        let l = std::net::TcpListener::bind("127.0.0.1:0")?;
        l.local_addr()?.port()
    });
    for (token, room, url, code, starts) in [
        (viewer.as_str(), ROOM, url.as_str(), 1, "forbidden: "),
        (
            host.as_str(),
            "not a room!",
            url.as_str(),
            2,
            "livehub: room: ",
        ),
        (
            host.as_str(),
            ROOM,
            closed.as_str(),
            3,
            "livehub: cannot reach the hub at ",
        ),
    ] {
        let (got, stdout, stderr) = livehub(&[
            "report", "--url", url, "--room", room, "--token", token, "--out", &out_arg,
        ])
        .await?;
        ensure!(got == Some(code), "want exit {code}, got {got:?}: {stderr}");
        ensure!(
            stdout.is_empty()
                && stderr.starts_with(starts)
                && stderr.trim_end().lines().count() == 1,
            "one line on stderr starting {starts:?}: {stderr:?} (stdout {stdout:?})"
        );
        ensure!(!out.exists(), "no report is written when it fails");
    }
    Ok(())
}

/// The money in the funnel and in the report: three scarves at $19.99, 10% to the host on
/// each, 5% to bo on his two buyers' orders, each commission rounded down.
fn the_money_is_exact(funnel: &Value, report: &std::path::Path) -> Result<()> {
    let t = &funnel["total"];
    ensure!(
        num(&t["orders"]) == 3 && num(&t["gmv_cents"]) == 3 * PRICE,
        "the funnel's money (orders, GMV) is not in yet: {t}"
    );
    ensure!(
        num(&funnel["creators"][HOST]["commission_cents"]) == 3 * 199,
        "{}",
        funnel["creators"]
    );
    ensure!(
        num(&funnel["creators"][AFF]["commission_cents"]) == 2 * 99,
        "{}",
        funnel["creators"]
    );
    let html = std::fs::read_to_string(report)?;
    for want in [
        r#"<tr data-creator="ana"><td class="title">ana</td><td>host</td><td class="n">3</td>"#,
        r#"<td class="n commission">$5.97</td>"#,
        r#"<tr data-creator="bo"><td class="title">bo</td><td>affiliate</td><td class="n">2</td>"#,
        r#"<td class="n commission">$1.98</td>"#,
        r#"<div class="tile" id="tile-gmv"><b>$59.97</b>"#,
    ] {
        ensure!(html.contains(want), "the report lacks {want}");
    }
    ensure!(
        html.find(r#"<tr data-deal="d1">"#) < html.find(r#"<tr data-deal="d2">"#),
        "d1 ranks above d2 by GMV"
    );
    Ok(())
}
