//! The viewer page and host console in real headless Chromium (via chromedriver), against a hub
//! started by the test. Each scenario saves a screenshot under target/browser-screenshots/.

// A test may be longer than the 80 lines clippy.toml allows a function elsewhere.
#![allow(clippy::too_many_lines)]

mod common;

use std::path::PathBuf;

use common::TestHub;
use common::webdriver::{Browser, Driver};

#[path = "browser/auctions.rs"]
mod auctions;
#[path = "browser/console.rs"]
mod console;
#[path = "browser/funnel.rs"]
mod funnel;
#[path = "browser/shelf.rs"]
mod shelf;
#[path = "browser/viewer.rs"]
mod viewer;
use livehub::protocol::Role;
use serde_json::json;

fn shot(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("target/browser-screenshots")
        .join(format!("{name}.png"))
}

async fn open_viewer(b: &Browser, hub: &TestHub, room: &str) -> anyhow::Result<()> {
    hub.open_room(room).await?; // a room exists once its host opens it
    b.goto(&hub.http_url(&format!("/rooms/{room}"))).await?;
    b.wait_text("#status", |s| s == "live").await?;
    Ok(())
}

async fn open_host(b: &Browser, hub: &TestHub, room: &str) -> anyhow::Result<()> {
    b.goto(&hub.http_url(&format!("/host/{room}"))).await?;
    b.wait_text("#status", |s| s == "live").await?;
    Ok(())
}

async fn host_pins_and_viewer_sees_the_card(driver: &Driver) -> anyhow::Result<()> {
    let hub = TestHub::start().await?;
    let (viewer, host) = (driver.session().await?, driver.session().await?);
    open_viewer(&viewer, &hub, "pin-show").await?;
    open_host(&host, &hub, "pin-show").await?;
    host.click("#tab-products").await?; // a phone-sized window: the console's panes are tabs
    host.click(r#".product[data-id="scarf-wool"] .pin"#).await?;
    viewer.wait_visible("#pinned").await?;
    let title = viewer
        .wait_text("#pinned .title", |t| !t.is_empty())
        .await?;
    assert_eq!(title, "Merino wool scarf");
    viewer
        .wait_text("#pinned .price", |t| t.contains("25.99"))
        .await?;
    viewer.screenshot(&shot("pin-viewer")).await?;
    host.screenshot(&shot("pin-host")).await?;
    viewer.quit().await;
    host.quit().await;
    hub.shutdown().await
}

async fn three_buyers_sell_out_a_three_unit_deal(driver: &Driver) -> anyhow::Result<()> {
    let hub = TestHub::start().await?;
    let room = "deal-show";
    let host = driver.session().await?;
    open_host(&host, &hub, room).await?;
    host.type_into("#deal-id", "flash3").await?;
    host.js("const s = document.getElementById('deal-product'); s.value = 'scarf-wool'; s.dispatchEvent(new Event('change'));", json!([])).await?;
    host.type_into("#deal-price", "19.99").await?;
    host.type_into("#deal-stock", "3").await?;
    host.type_into("#deal-limit", "1").await?;
    host.type_into("#deal-duration", "600").await?;
    host.click("#deal-start").await?;
    host.wait_visible(r#".deal-panel[data-id="flash3"]"#)
        .await?;

    let viewers = driver.session().await?;
    let mut tabs = vec![viewers.handle().await?];
    for _ in 0..3 {
        tabs.push(viewers.new_tab().await?);
    }
    for tab in &tabs {
        viewers.switch(tab).await?;
        open_viewer(&viewers, &hub, room).await?;
        viewers
            .wait_text("#deal-flash3 .deal-left", |t| {
                t.starts_with("3 left") || t.starts_with('3')
            })
            .await?;
    }
    for tab in &tabs[..3] {
        viewers.switch(tab).await?;
        viewers.click("#deal-flash3 .buy").await?;
        viewers.click("#deal-flash3 .checkout").await?;
        viewers.wait_visible("#deal-flash3 .order").await?;
        viewers
            .wait_text("#deal-flash3 .order", |t| t.contains("Order"))
            .await?;
    }
    viewers.switch(&tabs[3]).await?;
    viewers
        .wait_text("#deal-flash3 .deal-status", |t| t == "All claimed")
        .await?;
    viewers.screenshot(&shot("deal-fourth-viewer")).await?;
    viewers.switch(&tabs[0]).await?;
    viewers.screenshot(&shot("deal-buyer")).await?;
    let panel = r#".deal-panel[data-id="flash3"]"#;
    host.wait_text(&format!("{panel} .sold"), |t| t == "3")
        .await?;
    host.wait_text(&format!("{panel} .remaining"), |t| t == "0")
        .await?;
    host.screenshot(&shot("deal-host")).await?;
    let audit = hub.audit(room, "flash3").await?;
    assert_eq!((audit.remaining, audit.held, audit.sold), (0, 0, 3));
    viewers.quit().await;
    host.quit().await;
    hub.shutdown().await
}

async fn a_deleted_comment_disappears_from_the_viewer_page(driver: &Driver) -> anyhow::Result<()> {
    let hub = TestHub::start().await?;
    let room = "chat-show";
    let (viewer, host) = (driver.session().await?, driver.session().await?);
    open_viewer(&viewer, &hub, room).await?;
    open_host(&host, &hub, room).await?;
    viewer
        .type_into("#comment-input", "is the scarf itchy?")
        .await?;
    viewer
        .js(
            "document.getElementById('comment-form').requestSubmit()",
            json!([]),
        )
        .await?;
    viewer
        .wait_text("#feed .comment .text", |t| t == "is the scarf itchy?")
        .await?;
    host.wait_text("#feed .comment .text", |t| t == "is the scarf itchy?")
        .await?;
    viewer.screenshot(&shot("chat-before-delete")).await?;
    host.click("#tab-chat").await?; // a phone-sized window: the console's panes are tabs
    host.click("#feed .comment .delete").await?;
    viewer
        .wait_for(
            "the comment to go",
            "document.querySelectorAll('#feed .comment').length",
            |v| v == &json!(0),
        )
        .await?;
    viewer.screenshot(&shot("chat-after-delete")).await?;
    viewer.quit().await;
    host.quit().await;
    hub.shutdown().await
}

async fn the_viewer_page_survives_a_hub_restart(driver: &Driver) -> anyhow::Result<()> {
    let hub = TestHub::start().await?;
    let (addr, config) = (hub.addr, hub.config.clone());
    let room = "restart-show";
    let viewer = driver.session().await?;
    open_viewer(&viewer, &hub, room).await?;
    hub.shutdown().await?;
    viewer
        .wait_text("#status", |s| s.starts_with("reconnecting"))
        .await?;
    viewer.screenshot(&shot("restart-reconnecting")).await?;
    // The hub comes back; things happen before the page reconnects.
    let hub = TestHub::at(addr, config).await?;
    let host = hub.token(Role::Host, room, "host");
    let pin = json!({"type": "pin", "product": {"id": "mug", "title": "Enamel camping mug", "price_cents": 1499}});
    let (status, _) = hub
        .post_command(room, Some(&host), &pin.to_string())
        .await?;
    assert_eq!(status, 200);
    let (mut fan, _) = hub.viewer(room, "fan").await?;
    fan.send(json!({"type": "comment", "text": "missed me?"}))
        .await?;
    fan.next_of("comment").await?;
    viewer.wait_text("#status", |s| s == "live").await?;
    viewer
        .wait_text("#pinned .title", |t| t == "Enamel camping mug")
        .await?;
    viewer
        .wait_text("#feed", |t| t.contains("missed me?"))
        .await?;
    viewer.screenshot(&shot("restart-resumed")).await?;
    viewer.quit().await;
    hub.shutdown().await
}

async fn the_viewer_page_waits_for_the_show_to_start(driver: &Driver) -> anyhow::Result<()> {
    let hub = TestHub::start().await?;
    let viewer = driver.session().await?;
    viewer.goto(&hub.http_url("/rooms/later-show")).await?;
    viewer
        .wait_text("#status", |s| s == "the show has not started")
        .await?;
    viewer.screenshot(&shot("not-live-viewer")).await?;
    // The host opens the room: the page joins by itself on its next look.
    let _host = hub.host("later-show").await?;
    viewer.wait_text("#status", |s| s == "live").await?;
    viewer.quit().await;
    hub.shutdown().await
}

/// The first pages' scenarios, one chromedriver for them run one after another (each is a few
/// browser windows). The five tests here run two at a time (one thread per core): run as one
/// test, these and the viewer's and console's scenarios took two minutes on two cores, and the
/// suite waited for them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_in_a_real_browser() -> anyhow::Result<()> {
    let driver = Driver::start().await?;
    the_viewer_page_waits_for_the_show_to_start(&driver).await?;
    host_pins_and_viewer_sees_the_card(&driver).await?;
    three_buyers_sell_out_a_three_unit_deal(&driver).await?;
    a_deleted_comment_disappears_from_the_viewer_page(&driver).await?;
    the_viewer_page_survives_a_hub_restart(&driver).await
}

/// The viewer page's deal card, holds across restarts, banners and the phone layout (issue 22).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn viewer_page_in_a_real_browser() -> anyhow::Result<()> {
    let driver = Driver::start().await?;
    viewer::scenarios(&driver).await
}

/// The host console at phone and desktop sizes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_console_in_a_real_browser() -> anyhow::Result<()> {
    let driver = Driver::start().await?;
    console::scenarios(&driver).await
}

/// The show funnel (issue 14): the console's Funnel pane and the `livehub report` page, in a
/// chromedriver of their own so `cargo test --test browser -- funnel` runs just them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn funnel_pane_and_report_in_a_real_browser() -> anyhow::Result<()> {
    let driver = Driver::start().await?;
    funnel::scenarios(&driver).await
}

/// The shop page's shelf of deals and its stream (issue 22), in a chromedriver of their own so
/// `cargo test --test browser -- shelf` runs just them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shelf_and_stream_in_a_real_browser() -> anyhow::Result<()> {
    let driver = Driver::start().await?;
    shelf::scenarios(&driver).await
}

/// Live auctions (issue 24): two bidders, a snipe that extends the countdown, the close, in a
/// chromedriver of their own so `cargo test --test browser -- auction` runs just them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auctions_in_a_real_browser() -> anyhow::Result<()> {
    let driver = Driver::start().await?;
    auctions::scenarios(&driver).await
}
