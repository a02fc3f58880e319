//! Browser scenarios for the viewer page (phone first); run in order by `pages_in_a_real_browser`, saving
//! screenshots at phone (390x844) and desktop (1366x900) sizes.
//!
//! Each scenario checks what a shopper sees: the text the card shows (`innerText`, so hidden
//! parts do not count), which buttons can be pressed, the banner, and where the comment box
//! sits on the screen.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use livehub::protocol::Role;
use serde_json::{Value, json};

use super::common::redis::RedisServer;
use super::common::webdriver::{Browser, DESKTOP, Driver, PHONE};
use super::common::{self, Client, TestHub};
use super::shot;

/// Every scenario of this page, one after another in the one browser the suite starts.
pub async fn scenarios(driver: &Driver) -> Result<()> {
    a_hold_and_an_order_stay_with_the_deal_that_made_them(driver).await?;
    a_new_deal_starts_with_a_clean_card(driver).await?;
    a_hold_survives_a_hub_restart_and_purchases_pause_while_disconnected(driver).await?;
    a_hold_lost_in_a_restart_is_said_once(driver).await?;
    a_deal_shows_its_catalog_title_when_not_pinned(driver).await?;
    the_comment_box_stays_at_the_bottom_of_a_phone(driver).await?;
    a_refused_token_says_so_at_once(driver).await?;
    muted_and_not_started_get_a_banner(driver).await?;
    Ok(())
}

// ---- helpers ---------------------------------------------------------------------------------

/// A browser whose viewport is a phone's.
pub async fn phone(driver: &Driver) -> Result<Browser> {
    let b = driver.session().await?;
    b.set_viewport(PHONE).await?;
    Ok(b)
}

/// Opens the viewer page of `room` signed in with `token`, and waits until it is in the room.
pub async fn open_as(b: &Browser, base: &str, room: &str, token: &str) -> Result<()> {
    b.goto(&format!("{base}/rooms/{room}?token={token}"))
        .await?;
    b.wait_text("#status", |s| s == "live").await?;
    Ok(())
}

/// JS: what a shopper sees of `css`: its rendered text, or "" when it is absent or hidden.
pub fn seen_expr(css: &str) -> String {
    format!(
        "(() => {{ const e = document.querySelector({}); return e && !e.closest('[hidden]') && e.getClientRects().length ? e.innerText : ''; }})()",
        json!(css)
    )
}

/// What a shopper sees of `css` right now.
pub async fn seen(b: &Browser, css: &str) -> Result<String> {
    let v = b
        .js(&format!("return {};", seen_expr(css)), json!([]))
        .await?;
    Ok(v.as_str().unwrap_or_default().to_owned())
}

/// Waits until what a shopper sees of `css` satisfies `pred`; returns it.
pub async fn wait_seen(b: &Browser, css: &str, pred: impl Fn(&str) -> bool) -> Result<String> {
    let v = b
        .wait_for(
            &format!("{css} to show the expected text"),
            &seen_expr(css),
            |v| v.as_str().is_some_and(&pred),
        )
        .await?;
    Ok(v.as_str().unwrap_or_default().to_owned())
}

/// The state of a button: (visible, enabled, text).
pub async fn button(b: &Browser, css: &str) -> Result<(bool, bool, String)> {
    let v = b
        .js(
            "const e = document.querySelector(arguments[0]); if (!e) return [false, false, ''];
             const vis = !e.closest('[hidden]') && e.getClientRects().length > 0;
             return [vis, !e.disabled, e.innerText];",
            json!([css]),
        )
        .await?;
    Ok((
        v[0].as_bool().unwrap_or(false),
        v[1].as_bool().unwrap_or(false),
        v[2].as_str().unwrap_or_default().to_owned(),
    ))
}

/// `css`'s bounding rectangle and the viewport: {top, bottom, left, right, height, vw, vh}.
pub async fn rect(b: &Browser, css: &str) -> Result<Value> {
    b.js(
        "const e = document.querySelector(arguments[0]); if (!e) return null; const r = e.getBoundingClientRect();
         return {top: r.top, bottom: r.bottom, left: r.left, right: r.right, height: r.height,
                 vw: window.innerWidth, vh: window.innerHeight};",
        json!([css]),
    )
    .await?
    .as_object()
    .map(|o| Value::Object(o.clone()))
    .with_context(|| format!("no element {css}"))
}

pub fn num(v: &Value, k: &str) -> f64 {
    v[k].as_f64().unwrap_or(f64::NAN)
}

/// Asserts `css` is on screen and its bottom edge within `within` px of the viewport's bottom.
async fn assert_at_bottom(b: &Browser, css: &str, within: f64) -> Result<()> {
    let r = rect(b, css).await?;
    let (top, bottom, vh) = (num(&r, "top"), num(&r, "bottom"), num(&r, "vh"));
    ensure!(
        top >= 0.0 && bottom <= vh + 0.5 && vh - bottom <= within,
        "{css} is not at the bottom of the screen: {r}"
    );
    Ok(())
}

/// True for `prefix` and then a hold's countdown (five minutes, "5:00" down to "4:00").
fn counts_down(label: &str, prefix: &str) -> bool {
    label
        .strip_prefix(prefix)
        .is_some_and(|t| t == "5:00" || (t.len() == 4 && t.starts_with("4:")))
}

pub fn deal_start(id: &str, product: &str, price_cents: u64, stock: u32, limit: u32) -> Value {
    json!({"type": "deal_start", "deal": {"id": id, "product_id": product, "price_cents": price_cents,
           "stock": stock, "per_user_limit": limit, "duration_ms": 600_000}})
}

pub fn pin(id: &str, title: &str, price_cents: u64) -> Value {
    json!({"type": "pin", "product": {"id": id, "title": title, "price_cents": price_cents}})
}

/// POSTs a host command to `base` (http://addr) and checks that the hub accepted it.
pub async fn command(base: &str, host_token: &str, room: &str, body: Value) -> Result<()> {
    let url = format!("{base}/api/rooms/{room}/commands");
    let (status, text) =
        livehub::http_client::request("POST", &url, Some(host_token), Some(body.to_string()))
            .await?;
    ensure!(status == 200, "{body} refused: {status} {text}");
    Ok(())
}

// ---- item 1 and 3: a hold, an order and Buy --------------------------------------------------

async fn a_hold_and_an_order_stay_with_the_deal_that_made_them(driver: &Driver) -> Result<()> {
    let hub = TestHub::start().await?;
    let room = "own-show";
    let base = hub.http_url("");
    let host = hub.token(Role::Host, room, "host");
    command(
        &base,
        &host,
        room,
        pin("tee-organic", "Organic cotton tee", 1999),
    )
    .await?;
    command(
        &base,
        &host,
        room,
        deal_start("tee1", "tee-organic", 1499, 20, 1),
    )
    .await?;
    let (mut fan, _) = hub.viewer(room, "fan").await?;
    for text in ["is the tee soft?", "love the colour"] {
        fan.send(json!({"type": "comment", "text": text})).await?;
        fan.next_of("comment").await?;
    }

    let b = phone(driver).await?;
    open_as(&b, &base, room, &hub.token(Role::Viewer, room, "ana")).await?;
    wait_seen(&b, "#deal-tee1 .title", |t| t == "Organic cotton tee").await?;
    let (vis, enabled, label) = button(&b, "#deal-tee1 .buy").await?;
    ensure!(
        vis && enabled && label == "Buy now · $14.99",
        "Buy before a hold: {label}"
    );

    // A hold: Checkout with the countdown is the big action, Cancel a small one, Buy is gone.
    b.click("#deal-tee1 .buy").await?;
    let hold = wait_seen(&b, "#deal-tee1 .hold", |t| t.contains("Reserved for you")).await?;
    ensure!(
        hold.contains("1 × Organic cotton tee at $14.99"),
        "hold names its product: {hold}"
    );
    let (buy_vis, _, _) = button(&b, "#deal-tee1 .buy").await?;
    ensure!(!buy_vis, "Buy still offered while holding");
    let (vis, enabled, label) = button(&b, "#deal-tee1 .checkout").await?;
    ensure!(
        vis && enabled && counts_down(&label, "Checkout · "),
        "checkout: {label}"
    );
    let (vis, enabled, label) = button(&b, "#deal-tee1 .cancel").await?;
    ensure!(vis && enabled && label == "Cancel hold", "cancel: {label}");
    let (checkout, cancel) = (
        rect(&b, "#deal-tee1 .checkout").await?,
        rect(&b, "#deal-tee1 .cancel").await?,
    );
    ensure!(
        num(&checkout, "height") > num(&cancel, "height") + 10.0,
        "Checkout is not the main action: {checkout} {cancel}"
    );
    ensure!(
        num(&checkout, "bottom") <= num(&checkout, "vh") - 60.0,
        "Checkout hidden behind the comment box: {checkout}"
    );
    b.screenshot(&shot("viewer-hold-phone")).await?;
    // A reload of the tab keeps the hold.
    open_as(&b, &base, room, &hub.token(Role::Viewer, room, "ana")).await?;
    let hold = wait_seen(&b, "#deal-tee1 .hold", |t| t.contains("Reserved for you")).await?;
    ensure!(
        hold.contains("1 × Organic cotton tee at $14.99"),
        "after a reload: {hold}"
    );
    ensure!(counts_down(
        &button(&b, "#deal-tee1 .checkout").await?.2,
        "Checkout · "
    ));

    // The host moves on to a candle: the candle gets a card of its own, and clean.
    command(
        &base,
        &host,
        room,
        pin("candle-fig", "Fig and cedar candle", 2200),
    )
    .await?;
    command(
        &base,
        &host,
        room,
        deal_start("candle1", "candle-fig", 1500, 20, 1),
    )
    .await?;
    wait_seen(&b, "#deal-candle1 .title", |t| t == "Fig and cedar candle").await?;
    let card = seen(&b, "#deal-candle1").await?;
    for stale in ["Reserved", "Organic", "Order", "Checkout", "$14.99"] {
        ensure!(
            !card.contains(stale),
            "the candle's card shows {stale:?}: {card}"
        );
    }
    let (vis, enabled, label) = button(&b, "#deal-candle1 .buy").await?;
    ensure!(
        vis && enabled && label == "Buy now · $15.00",
        "candle's Buy: {label}"
    );
    // The tee's hold is still there, on the tee's own card, and can be checked out there.
    let tee = wait_seen(&b, "#deal-tee1 .hold", |t| t.contains("Organic cotton tee")).await?;
    ensure!(tee.contains("1 × Organic cotton tee at $14.99"), "{tee}");
    b.click("#deal-tee1 .checkout").await?;
    let tee = wait_seen(&b, "#deal-tee1 .order", |t| t.contains("confirmed")).await?;
    ensure!(tee.contains("1 × Organic cotton tee · $14.99"), "{tee}");
    ensure!(!seen(&b, "#deal-tee1").await?.contains("Reserved"));
    let card = seen(&b, "#deal-candle1").await?;
    ensure!(
        !card.contains("Order") && !card.contains("$14.99"),
        "the tee's order is on the candle's card: {card}"
    );
    b.screenshot(&shot("viewer-deal-owns-phone")).await?;

    // The candle's own order stays on the candle's card; the limit of one is reached.
    b.click("#deal-candle1 .buy").await?;
    wait_seen(&b, "#deal-candle1 .hold", |t| {
        t.contains("Fig and cedar candle")
    })
    .await?;
    b.click("#deal-candle1 .checkout").await?;
    let order = wait_seen(&b, "#deal-candle1 .order", |t| t.contains("confirmed")).await?;
    ensure!(
        order.contains("1 × Fig and cedar candle · $15.00"),
        "{order}"
    );
    let (vis, enabled, label) = button(&b, "#deal-candle1 .buy").await?;
    ensure!(
        vis && !enabled && label == "Limit reached (1 per person)",
        "Buy at the limit: {label}"
    );
    ensure!(seen(&b, "#deal-candle1 .deal-limit").await? == "Limit 1 per person · you have 1");
    b.screenshot(&shot("viewer-limit-phone")).await?;
    b.set_viewport(DESKTOP).await?;
    b.screenshot(&shot("viewer-deal-owns-desktop")).await?;
    let audit = hub.audit(room, "tee1").await?;
    ensure!((audit.held, audit.sold) == (0, 1), "tee: {audit:?}");
    b.quit().await;
    fan.close().await;
    hub.shutdown().await
}

// ---- item 2: stale messages ------------------------------------------------------------------

async fn a_new_deal_starts_with_a_clean_card(driver: &Driver) -> Result<()> {
    let hub = TestHub::start().await?;
    let room = "clean-show";
    let base = hub.http_url("");
    let host = hub.token(Role::Host, room, "host");
    command(
        &base,
        &host,
        room,
        pin("lamp-desk", "Walnut desk lamp", 5900),
    )
    .await?;
    command(
        &base,
        &host,
        room,
        deal_start("lamp1", "lamp-desk", 3900, 2, 1),
    )
    .await?;

    // Bo holds the limit on his other device; his tap on the page is refused.
    let bo = hub.token(Role::Viewer, room, "bo");
    let mut other = Client::connect(&hub.ws_url(room, &format!("token={bo}"))).await?;
    other.next_of("welcome").await?;
    other
        .send(json!({"type": "reserve", "request_id": "bo-phone", "deal": "lamp1", "qty": 1}))
        .await?;
    other.json_of("reserved").await?;
    let b = phone(driver).await?;
    open_as(&b, &base, room, &bo).await?;
    wait_seen(&b, "#deal-lamp1 .deal-left", |t| t == "1 left").await?;
    b.click("#deal-lamp1 .buy").await?;
    let note = wait_seen(&b, "#deal-lamp1 .result", |t| !t.is_empty()).await?;
    ensure!(
        note == "You have reached the limit of 1 per person for this deal.",
        "{note}"
    );
    let (_, enabled, label) = button(&b, "#deal-lamp1 .buy").await?;
    ensure!(
        !enabled && label == "Limit reached (1 per person)",
        "{label}"
    );

    // Someone else takes the last lamp: all claimed (by a hold that may come back).
    let (mut cy, _) = hub.viewer(room, "cy").await?;
    cy.send(json!({"type": "reserve", "request_id": "cy1", "deal": "lamp1", "qty": 1}))
        .await?;
    cy.json_of("reserved").await?;
    wait_seen(&b, "#deal-lamp1 .deal-status", |t| t == "All claimed").await?;
    let (_, enabled, label) = button(&b, "#deal-lamp1 .buy").await?;
    ensure!(
        !enabled && label == "All claimed",
        "Buy on a sold-out deal: {label}"
    );
    b.screenshot(&shot("viewer-sold-out-phone")).await?;

    // The next deal: 20 left, Buy now, and nothing from the lamp.
    command(
        &base,
        &host,
        room,
        pin("mug-enamel", "Enamel camping mug", 1499),
    )
    .await?;
    command(
        &base,
        &host,
        room,
        deal_start("mug1", "mug-enamel", 999, 20, 2),
    )
    .await?;
    wait_seen(&b, "#deal-mug1 .title", |t| t == "Enamel camping mug").await?;
    let card = seen(&b, "#deal-mug1").await?;
    for stale in [
        "All claimed",
        "Limit reached",
        "reached the limit",
        "Walnut",
        "$39.00",
    ] {
        ensure!(
            !card.contains(stale),
            "the mug's card shows {stale:?}: {card}"
        );
    }
    ensure!(
        card.contains("20 left") && card.contains("Limit 2 per person"),
        "{card}"
    );
    let (vis, enabled, label) = button(&b, "#deal-mug1 .buy").await?;
    ensure!(vis && enabled && label == "Buy now · $9.99", "{label}");
    b.screenshot(&shot("viewer-next-deal-phone")).await?;
    b.quit().await;
    other.close().await;
    cy.close().await;
    hub.shutdown().await
}

/// Items 2 and 6: a hub restart with the Redis backend, where deals and holds outlive the
/// process. While the page is disconnected it says so, the stage stops saying Live and
/// Checkout pauses; once back, the hold is still there with its countdown and nothing says
/// "expired" or "not connected".
async fn a_hold_survives_a_hub_restart_and_purchases_pause_while_disconnected(
    driver: &Driver,
) -> Result<()> {
    let redis = RedisServer::start()?;
    let config = common::redis_config(&redis.url());
    let hub = TestHub::with_config(config.clone()).await?;
    let (room, base) = ("restart-hold", hub.http_url(""));
    let host = hub.token(Role::Host, room, "host");
    command(
        &base,
        &host,
        room,
        pin("tee-organic", "Organic cotton tee", 1999),
    )
    .await?;
    command(
        &base,
        &host,
        room,
        deal_start("tee1", "tee-organic", 1499, 5, 1),
    )
    .await?;
    let b = phone(driver).await?;
    open_as(&b, &base, room, &hub.token(Role::Viewer, room, "dee")).await?;
    ensure!(seen(&b, "#stage-label").await? == "Live");
    b.click("#deal-tee1 .buy").await?;
    wait_seen(&b, "#deal-tee1 .hold", |t| t.contains("Organic cotton tee")).await?;

    let addr = hub.addr;
    hub.shutdown().await?;
    let banner = wait_seen(&b, "#banner", |t| t.contains("Connection lost")).await?;
    ensure!(banner.contains("Buying is paused"), "{banner}");
    let label = seen(&b, "#stage-label").await?;
    ensure!(
        label == "Reconnecting…",
        "the stage says {label:?} while disconnected"
    );
    let (vis, enabled, label) = button(&b, "#deal-tee1 .checkout").await?;
    ensure!(
        vis && !enabled && counts_down(&label, "Checkout paused · "),
        "checkout while disconnected: {label}"
    );
    ensure!(
        !button(&b, "#deal-tee1 .cancel").await?.1,
        "cancel while disconnected"
    );
    ensure!(
        seen(&b, "#deal-tee1 .deal-status").await? == "Paused",
        "the deal's badge while disconnected"
    );
    ensure!(
        !button(&b, "#comment-send").await?.1,
        "Send while disconnected"
    );
    b.screenshot(&shot("viewer-reconnecting-phone")).await?;
    b.set_viewport(DESKTOP).await?;
    b.screenshot(&shot("viewer-reconnecting-desktop")).await?;
    b.set_viewport(PHONE).await?;

    let hub = TestHub::at(addr, config).await?;
    b.wait_text("#status", |s| s == "live").await?;
    wait_seen(&b, "#banner", |t| t.is_empty()).await?;
    ensure!(seen(&b, "#stage-label").await? == "Live");
    let (vis, enabled, label) = button(&b, "#deal-tee1 .checkout").await?;
    ensure!(
        vis && enabled && counts_down(&label, "Checkout · "),
        "checkout after the restart: {label}"
    );
    let page = seen(&b, "body").await?;
    for stale in ["expired", "Not connected", "paused", "ended"] {
        ensure!(
            !page.contains(stale),
            "after reconnecting the page says {stale:?}: {page}"
        );
    }
    ensure!(seen(&b, "#deal-tee1 .deal-status").await? == "Live");
    b.type_into("#comment-input", "still there?").await?;
    b.click("#comment-send").await?;
    wait_seen(&b, "#feed", |t| t.contains("still there?")).await?;
    ensure!(seen(&b, "#comment-error").await?.is_empty());
    b.screenshot(&shot("viewer-restart-phone")).await?;
    b.click("#deal-tee1 .checkout").await?;
    let order = wait_seen(&b, "#deal-tee1 .order", |t| t.contains("confirmed")).await?;
    ensure!(order.contains("1 × Organic cotton tee · $14.99"), "{order}");
    let audit = hub.audit(room, "tee1").await?;
    ensure!((audit.held, audit.sold) == (0, 1), "{audit:?}");
    b.quit().await;
    hub.shutdown().await
}

/// A restart that lost the stock (the memory inventory, no state file): the deal is gone, and
/// so is the hold; the page says so once, and no countdown is left next to it.
async fn a_hold_lost_in_a_restart_is_said_once(driver: &Driver) -> Result<()> {
    let hub = TestHub::start().await?;
    let (room, base) = ("restart-lost", hub.http_url(""));
    let host = hub.token(Role::Host, room, "host");
    command(
        &base,
        &host,
        room,
        pin("scarf-wool", "Merino wool scarf", 2599),
    )
    .await?;
    command(
        &base,
        &host,
        room,
        deal_start("scarf1", "scarf-wool", 1999, 5, 1),
    )
    .await?;
    let b = phone(driver).await?;
    open_as(&b, &base, room, &hub.token(Role::Viewer, room, "eve")).await?;
    b.click("#deal-scarf1 .buy").await?;
    wait_seen(&b, "#deal-scarf1 .hold", |t| {
        t.contains("Merino wool scarf")
    })
    .await?;
    let (addr, config) = (hub.addr, hub.config.clone());
    hub.shutdown().await?;
    wait_seen(&b, "#banner", |t| t.contains("Connection lost")).await?;
    let hub = TestHub::at(addr, config).await?;
    command(
        &base,
        &host,
        room,
        pin("scarf-wool", "Merino wool scarf", 2599),
    )
    .await?; // the host is back
    b.wait_text("#status", |s| s == "live").await?;
    let mine = wait_seen(&b, "#mine", |t| t.contains("Merino wool scarf")).await?;
    ensure!(
        mine.contains("Your hold ended when the show restarted"),
        "{mine}"
    );
    ensure!(
        seen(&b, "#shelf .deal-card").await?.is_empty(),
        "a card for a deal the hub no longer has"
    );
    let page = seen(&b, "body").await?;
    ensure!(
        !page.contains("Reserved") && !page.contains("Checkout"),
        "a hold is still offered: {page}"
    );
    b.screenshot(&shot("viewer-restart-lost-phone")).await?;
    b.quit().await;
    hub.shutdown().await
}

// ---- item 4: titles, not ids -----------------------------------------------------------------

async fn a_deal_shows_its_catalog_title_when_not_pinned(driver: &Driver) -> Result<()> {
    let hub = TestHub::start().await?;
    let room = "title-show";
    let base = hub.http_url("");
    let host = hub.token(Role::Host, room, "host");
    command(
        &base,
        &host,
        room,
        pin("scarf-wool", "Merino wool scarf", 2599),
    )
    .await?;
    let b = phone(driver).await?;
    open_as(&b, &base, room, &hub.token(Role::Viewer, room, "fay")).await?;
    // The mug is in the catalog (config/catalog.json) and not pinned: the hub names it.
    command(
        &base,
        &host,
        room,
        deal_start("mug1", "mug-enamel", 999, 5, 1),
    )
    .await?;
    let title = wait_seen(&b, "#deal-mug1 .title", |t| !t.is_empty()).await?;
    ensure!(
        title == "Enamel camping mug",
        "the mug's deal shows {title:?}"
    );
    let card = seen(&b, "#deal-mug1").await?;
    ensure!(!card.contains("mug-enamel"), "{card}");
    ensure!(
        seen(&b, "#deal-mug1 .media").await? == "E",
        "the mug's placeholder picture"
    );
    ensure!(
        seen(&b, "#pinned .title").await? == "Merino wool scarf",
        "the pin stays the scarf"
    );
    b.screenshot(&shot("viewer-catalog-title-phone")).await?;
    // A title and picture of the host's own, for a product the catalog does not have; the
    // picture does not load, so the card shows a placeholder rather than alt text.
    let broken = hub.http_url("/static/no-such-picture.png");
    let special = json!({"type": "deal_start", "deal": {"id": "bag1", "product_id": "tote-canvas",
        "title": "Canvas tote bag", "image_url": broken, "price_cents": 1200, "stock": 5,
        "per_user_limit": 1, "duration_ms": 600_000}});
    command(&base, &host, room, special).await?;
    wait_seen(&b, "#deal-bag1 .title", |t| t == "Canvas tote bag").await?;
    b.wait_for(
        "the deal's broken picture to give way to a placeholder",
        "document.querySelectorAll('#deal-bag1 .media img').length === 0 && document.querySelector('#deal-bag1 .media').innerText === 'C'",
        |v| v == &json!(true),
    )
    .await?;
    b.quit().await;
    hub.shutdown().await
}

// ---- item 5: layout ------------------------------------------------------------------------

async fn the_comment_box_stays_at_the_bottom_of_a_phone(driver: &Driver) -> Result<()> {
    let hub = TestHub::start().await?;
    let room = "layout-show";
    let base = hub.http_url("");
    let host = hub.token(Role::Host, room, "host");
    let broken = hub.http_url("/static/no-such-picture.png");
    let product = json!({"type": "pin", "product": {"id": "mug-enamel", "title": "Enamel camping mug",
                         "price_cents": 1499, "image_url": broken}});
    command(&base, &host, room, product).await?;
    // A busy chat: three fans, each within the comment rate's burst.
    let mut fans = Vec::new();
    for name in ["ana", "bo", "cy"] {
        fans.push(hub.viewer(room, name).await?.0);
    }
    for i in 0..12 {
        let fan = &mut fans[i % 3];
        fan.send(json!({"type": "comment", "text": format!("comment number {i}")}))
            .await?;
        fan.next_of("comment").await?;
    }
    let b = phone(driver).await?;
    open_as(&b, &base, room, &hub.token(Role::Viewer, room, "gus")).await?;
    wait_seen(&b, "#pinned .title", |t| t == "Enamel camping mug").await?;

    // A picture that does not load leaves a placeholder tile, not its alt text.
    b.wait_for(
        "the broken picture to give way to a placeholder",
        "document.querySelectorAll('#pinned .media img').length === 0 && !!document.querySelector('#pinned .media .media-letter')",
        |v| v == &json!(true),
    )
    .await?;
    ensure!(seen(&b, "#pinned .media").await? == "E");
    let pinned = seen(&b, "#pinned").await?;
    ensure!(
        pinned == "E\nPINNED\nEnamel camping mug\n$14.99",
        "pinned card: {pinned:?}"
    );

    // The comment box and Like at the bottom of the screen, wherever the page is scrolled.
    for scroll in [0, 100_000] {
        b.js(&format!("window.scrollTo(0, {scroll});"), json!([]))
            .await?;
        assert_at_bottom(&b, "#composer", 1.0).await?;
        assert_at_bottom(&b, "#comment-input", 16.0).await?;
        assert_at_bottom(&b, "#like", 16.0).await?;
    }
    b.js("window.scrollTo(0, 0);", json!([])).await?;
    b.screenshot(&shot("viewer-layout-phone")).await?;

    // Too many comments at once: the rate limit's message shows just above the comment box.
    b.js(
        "const input = document.getElementById('comment-input'), form = document.getElementById('comment-form');
         for (let i = 0; i < 8; i++) { input.value = 'so many words ' + i; form.requestSubmit(); }",
        json!([]),
    )
    .await?;
    let note = wait_seen(&b, "#comment-error", |t| !t.is_empty()).await?;
    ensure!(note.starts_with("Slow down"), "{note}");
    let (err, input) = (
        rect(&b, "#comment-error").await?,
        rect(&b, "#comment-input").await?,
    );
    ensure!(
        num(&err, "top") > num(&err, "vh") * 0.75 && num(&err, "bottom") <= num(&input, "top"),
        "the rate-limit message is not just above the comment box: {err} {input}"
    );
    b.screenshot(&shot("viewer-rate-limit-phone")).await?;
    // It goes by itself.
    wait_seen(&b, "#comment-error", |t| t.is_empty()).await?;

    // Desktop: the comment box is the foot of the chat column, on screen.
    b.set_viewport(DESKTOP).await?;
    let composer = rect(&b, "#composer").await?;
    ensure!(
        num(&composer, "bottom") <= num(&composer, "vh")
            && num(&composer, "left") > num(&composer, "vw") / 2.0,
        "desktop comment box: {composer}"
    );
    b.screenshot(&shot("viewer-layout-desktop")).await?;
    b.quit().await;
    for fan in fans {
        fan.close().await;
    }
    hub.shutdown().await
}

// ---- item 6: states a shopper must not miss ------------------------------------------------------

async fn a_refused_token_says_so_at_once(driver: &Driver) -> Result<()> {
    let hub = TestHub::start().await?;
    let room = "token-show";
    hub.open_room(room).await?;
    let base = hub.http_url("");
    let an_hour_ago = livehub::hub::now_ms() / 1000 - 3600;
    let cases = [
        (
            "expired",
            hub.token_with(Role::Viewer, room, "hal", Some(an_hour_ago)),
            "Your sign-in expired.",
        ),
        (
            "invalid",
            "not.a.token".to_owned(),
            "Your sign-in is not valid.",
        ),
        (
            "wrong-room",
            hub.token(Role::Viewer, "another-show", "hal"),
            "This sign-in is for another show.",
        ),
    ];
    let b = phone(driver).await?;
    for (what, token, says) in cases {
        let started = Instant::now();
        b.goto(&format!("{base}/rooms/{room}?token={token}"))
            .await?;
        let banner = wait_seen(&b, "#banner", |t| t.starts_with(says)).await?;
        let took = started.elapsed();
        ensure!(
            took < Duration::from_secs(5),
            "{what}: the banner took {took:?}"
        );
        ensure!(banner.contains("Sign in again"), "{what}: {banner}");
        ensure!(b.wait_text("#status", |_| true).await? == "signed out");
        ensure!(
            seen(&b, "#stage-label").await? == "Signed out",
            "{what}: the stage"
        );
        ensure!(
            seen(&b, "#signin")
                .await?
                .contains("Paste a new viewer token"),
            "{what}: no sign-in form"
        );
        b.screenshot(&shot(&format!("viewer-token-{what}-phone")))
            .await?;
    }
    // A good token pasted into the form: in the room, and the banner is gone.
    b.type_into("#token-input", &hub.token(Role::Viewer, room, "hal"))
        .await?;
    b.click("#signin-button").await?;
    b.wait_text("#status", |s| s == "live").await?;
    wait_seen(&b, "#banner", |t| t.is_empty()).await?;
    ensure!(seen(&b, "#signin").await?.is_empty());
    b.quit().await;
    hub.shutdown().await
}

async fn muted_and_not_started_get_a_banner(driver: &Driver) -> Result<()> {
    let hub = TestHub::start().await?;
    let room = "quiet-show";
    let base = hub.http_url("");
    let b = phone(driver).await?;
    let token = hub.token(Role::Viewer, room, "ivy");
    b.goto(&format!("{base}/rooms/{room}?token={token}"))
        .await?;
    let banner = wait_seen(&b, "#banner", |t| !t.is_empty()).await?;
    ensure!(
        banner.starts_with("The show has not started yet."),
        "{banner}"
    );
    ensure!(seen(&b, "#stage-label").await? == "Starting soon");
    b.screenshot(&shot("viewer-not-started-phone")).await?;

    let host = hub.token(Role::Host, room, "host");
    command(
        &base,
        &host,
        room,
        json!({"type": "announce", "text": "we are live!"}),
    )
    .await?;
    b.wait_text("#status", |s| s == "live").await?;
    wait_seen(&b, "#banner", |t| t.is_empty()).await?;

    command(
        &base,
        &host,
        room,
        json!({"type": "mute", "user": "ivy", "duration_ms": 120_000}),
    )
    .await?;
    b.type_into("#comment-input", "hello?").await?;
    b.click("#comment-send").await?;
    let banner = wait_seen(&b, "#banner", |t| !t.is_empty()).await?;
    ensure!(
        banner.starts_with("The host muted you: you can comment again in 1:5")
            || banner.starts_with("The host muted you: you can comment again in 2:00"),
        "{banner}"
    );
    ensure!(banner.contains("You can still watch and buy."), "{banner}");
    let note = seen(&b, "#comment-error").await?;
    ensure!(
        note.starts_with("The host muted you"),
        "under the comment box: {note}"
    );
    assert_at_bottom(&b, "#composer", 1.0).await?;
    let (_, enabled, _) = button(&b, "#comment-send").await?;
    ensure!(!enabled, "Send while muted");
    b.screenshot(&shot("viewer-muted-phone")).await?;
    b.quit().await;
    hub.shutdown().await
}
