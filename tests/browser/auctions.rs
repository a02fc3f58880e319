//! Browser scenarios for live auctions (issue 24): the host starts one from the console's form,
//! two bidders on their own phones and laptops outbid each other from the auction card, a bid in
//! the last seconds extends the countdown on both screens, and at the close the winner sees the
//! order and the other the result; the host ends an auction nobody bid on. Screenshots at phone
//! (390x844) and desktop (1366x900) sizes.

use anyhow::{Result, ensure};
use livehub::auth::{Authenticator, Claims};
use livehub::protocol::Role;
use serde_json::{Value, json};

use super::common::TestHub;
use super::common::webdriver::{Browser, DESKTOP, Driver, PHONE};
use super::console::{assert_on_screen, rect};
use super::viewer::{command, open_as, phone, seen, wait_seen};
use super::{open_host, shot};

pub async fn scenarios(driver: &Driver) -> Result<()> {
    two_bidders_a_snipe_and_the_close(driver).await
}

/// A viewer token whose display name is `name` (the pages must show it as text).
fn viewer_token(hub: &TestHub, room: &str, user: &str, name: &str) -> Result<String> {
    Ok(
        Authenticator::new(&hub.config.auth.secret, false).mint(&Claims {
            sub: user.into(),
            name: Some(name.into()),
            role: Role::Viewer,
            room: room.into(),
            exp: Some(livehub::hub::now_ms() / 1000 + 3600),
            src: None,
            aff: None,
        })?,
    )
}

/// The auction card's end (its `ends_at`) on a viewer's page.
async fn ends_at(b: &Browser, auction: &str) -> Result<u64> {
    let v = b
        .js(
            "const c = document.getElementById(arguments[0]); return c ? Number(c.dataset.endsAt) : 0;",
            json!([format!("auction-{auction}")]),
        )
        .await?;
    Ok(v.as_u64().unwrap_or(0))
}

/// Clicks the card's first quick bid once it offers `amount` (e.g. "$11.00").
async fn bid(b: &Browser, card: &str, amount: &str) -> Result<()> {
    let button = format!("{card} .bid-min");
    wait_seen(b, &button, |t| t == format!("Bid {amount}")).await?;
    b.click(&button).await
}

async fn two_bidders_a_snipe_and_the_close(driver: &Driver) -> Result<()> {
    let hub = TestHub::start().await?;
    let room = "auction-show";
    let base = hub.http_url("");
    let host = driver.session().await?;
    host.set_viewport(DESKTOP).await?;
    open_host(&host, &hub, room).await?;

    // Ana on a phone, Bo on a laptop, with chat going.
    let ana = phone(driver).await?;
    open_as(&ana, &base, room, &viewer_token(&hub, room, "ana", "Ana")?).await?;
    let bo = driver.session().await?;
    bo.set_viewport(DESKTOP).await?;
    let bo_name = "Bo <b>&amp;</b>"; // shown as text, never as markup
    open_as(&bo, &base, room, &viewer_token(&hub, room, "bo", bo_name)?).await?;
    let (mut fan, _) = hub.viewer(room, "fan").await?;
    for text in ["that lamp!!", "going for it", "how tall is it?"] {
        fan.send(json!({"type": "comment", "text": text})).await?;
        fan.next_of("comment").await?;
    }

    // The host starts it from the form: prices in dollars, the duration in seconds.
    host.click("#auction-new > summary").await?;
    host.type_into("#auction-product", "lamp-desk").await?;
    host.type_into("#auction-start", "10").await?;
    host.type_into("#auction-increment", "1").await?;
    host.type_into("#auction-duration", "8").await?;
    host.type_into("#auction-extend", "3").await?;
    let preview = wait_seen(&host, "#auction-preview", |t| {
        t.contains("Walnut desk lamp")
    })
    .await?;
    for want in [
        "$10.00 starting bid",
        "Bids go up by $1.00 · ends in 0:08",
        "A bid in the last 3 s moves the end to 3 s after it",
    ] {
        ensure!(preview.contains(want), "preview lacks {want:?}: {preview}");
    }
    host.click("#auction-start-button").await?;
    let panel = r#".auction-panel[data-id="a1"]"#;
    host.wait_visible(panel).await?;

    // They outbid each other: each card says who leads, and the bidder's own standing.
    let card = "#auction-a1";
    bid(&ana, card, "$10.00").await?;
    wait_seen(&ana, &format!("{card} .bid-min"), |t| t == "You're winning").await?;
    wait_seen(&ana, &format!("{card} .standing"), |t| {
        t == "Your max: $10.00"
    })
    .await?;
    wait_seen(&bo, &format!("{card} .auction-leader"), |t| {
        t == "Ana leads · 1 bid"
    })
    .await?;
    bid(&bo, card, "$11.00").await?;
    wait_seen(&bo, &format!("{card} .bid-min"), |t| t == "You're winning").await?;
    wait_seen(&ana, &format!("{card} .standing"), |t| {
        t == "Outbid: bid again to win"
    })
    .await?;
    let leader = seen(&ana, &format!("{card} .auction-leader")).await?;
    ensure!(leader == format!("{bo_name} leads · 2 bids"), "{leader}");
    // The quick bids are the next valid amounts: the minimum and two increments more.
    let more = seen(&ana, &format!("{card} .bid-more")).await?;
    ensure!(more == "Bid $14.00", "second quick bid: {more}");
    bid(&ana, card, "$12.00").await?;
    wait_seen(&bo, &format!("{card} .standing"), |t| {
        t == "Outbid: bid again to win"
    })
    .await?;
    wait_seen(&host, &format!("{panel} .bids"), |t| t == "3").await?;
    wait_seen(&host, &format!("{panel} .leader"), |t| t == "Ana").await?;
    // On a phone the chat stays on screen beside the auction.
    wait_seen(&ana, "#feed", |t| t.contains("how tall is it?")).await?;
    assert_on_screen(
        &ana,
        "the chat's newest line",
        rect(&ana, "#feed .comment:last-child").await?,
    )
    .await?;
    assert_on_screen(
        &ana,
        "the quick bids",
        rect(&ana, &format!("{card} .bid-row")).await?,
    )
    .await?;
    assert_on_screen(&ana, "the comment box", rect(&ana, "#comment-input").await?).await?;
    ana.screenshot(&shot("auction-leading-phone")).await?;
    bo.screenshot(&shot("auction-outbid-desktop")).await?;

    // Bo snipes in the last seconds: the end moves later on both screens, and says so.
    let before = ends_at(&bo, "a1").await?;
    bo.wait_for(
        "the last two and a half seconds",
        "Number(document.getElementById('auction-a1').dataset.endsAt) - Date.now() < 2500",
        |v| v == &json!(true),
    )
    .await?;
    bid(&bo, card, "$13.00").await?;
    for b in [&ana, &bo] {
        b.wait_for(
            "the countdown to jump",
            &format!("Number(document.getElementById('auction-a1').dataset.endsAt) > {before}"),
            |v| v == &json!(true),
        )
        .await?;
    }
    let (moved_ana, moved_bo) = (ends_at(&ana, "a1").await?, ends_at(&bo, "a1").await?);
    ensure!(
        moved_ana == moved_bo,
        "both screens count down to the same end: {moved_ana} {moved_bo}"
    );
    let extended = wait_seen(&ana, &format!("{card} .deal-status"), |t| {
        t.starts_with("Extended +")
    })
    .await?;
    ensure!(extended.len() > "Extended +".len(), "{extended}");
    let clock = seen(&ana, &format!("{card} .auction-clock")).await?;
    ensure!(
        clock == "0:03" || clock == "0:02",
        "the countdown shows the new end: {clock}"
    );
    wait_seen(&ana, &format!("{card} .standing"), |t| {
        t == "Outbid: bid again to win"
    })
    .await?;
    ana.screenshot(&shot("auction-extended-phone")).await?;
    wait_seen(&host, &format!("{panel} .extended"), |t| {
        t.starts_with("extended +")
    })
    .await?;
    host.screenshot(&shot("auction-host-desktop")).await?;

    // The close: the same result for everyone, the order for the winner alone.
    let sold = format!("Sold to {bo_name} for $13.00");
    for b in [&ana, &bo] {
        wait_seen(b, &format!("{card} .auction-result"), |t| t == sold).await?;
    }
    wait_seen(&bo, &format!("{card} .standing"), |t| t == "You won!").await?;
    let order = wait_seen(&bo, &format!("{card} .order"), |t| t.starts_with("Order ")).await?;
    ensure!(
        order.ends_with("confirmed · Walnut desk lamp · $13.00"),
        "{order}"
    );
    wait_seen(&ana, &format!("{card} .standing"), |t| {
        t == "You didn't win this one"
    })
    .await?;
    ensure!(
        seen(&ana, &format!("{card} .order")).await?.is_empty(),
        "the loser has no order"
    );
    ensure!(
        seen(&ana, &format!("{card} .bid-row")).await?.is_empty(),
        "no bidding after the close"
    );
    wait_seen(&host, &format!("{panel} .auction-outcome"), |t| t == sold).await?;
    ana.screenshot(&shot("auction-lost-phone")).await?;
    bo.screenshot(&shot("auction-won-desktop")).await?;
    host.screenshot(&shot("auction-host-closed-desktop"))
        .await?;
    bo.set_viewport(PHONE).await?;
    wait_seen(&bo, &format!("{card} .standing"), |t| t == "You won!").await?;
    bo.screenshot(&shot("auction-won-phone")).await?;

    // An auction nobody bid on: the host ends it, and every screen says it went unsold.
    let host_token = hub.token(Role::Host, room, "host");
    let lamp = json!({"type": "auction_start", "auction": {"id": "a2", "product_id": "mug-enamel",
                      "start_cents": 500, "increment_cents": 50, "duration_ms": 600_000}});
    command(&base, &host_token, room, lamp).await?;
    let quiet = r#".auction-panel[data-id="a2"]"#;
    host.click(&format!("{quiet} .end")).await?;
    wait_seen(&host, &format!("{quiet} .auction-outcome"), |t| {
        t == "Unsold: it closed without a bid"
    })
    .await?;
    super::console::hidden(&host, &format!("{quiet} .end")).await?;
    wait_seen(&ana, "#auction-a2 .auction-result", |t| {
        t == "Unsold: no bids"
    })
    .await?;
    let badge: Value = ana
        .js(
            "return document.querySelector('#auction-a2 .deal-status').textContent;",
            json!([]),
        )
        .await?;
    ensure!(badge == json!("Unsold"), "{badge}");
    ana.set_viewport(DESKTOP).await?;
    ana.screenshot(&shot("auction-unsold-desktop")).await?;
    host.set_viewport(PHONE).await?;
    host.js(
        "document.getElementById('auctions-title').scrollIntoView();",
        json!([]),
    )
    .await?;
    host.screenshot(&shot("auction-host-phone")).await?;

    fan.close().await;
    for b in [ana, bo, host] {
        b.quit().await;
    }
    hub.shutdown().await
}
