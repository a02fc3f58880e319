//! A deal names its product (issue 13, item 4): `deal_start` fills in the title and image from
//! the host's payload, the pinned product or the catalog; a product in none of them (a v1
//! `deal_start`, which has no title) is named by its product id (issue 19, item 7). Run on the
//! memory backend and on Redis (where the title is stored with the deal's stock and may hold
//! the reply separator `|`).

use crate::common;

use common::{Client, TestHub};
use livehub::protocol::ServerMsg;
use serde_json::{Value, json};

fn deal(id: &str, product: &str, extra: Value) -> Value {
    let mut d = json!({"id": id, "product_id": product, "price_cents": 999, "stock": 5,
        "per_user_limit": 1, "duration_ms": 60000});
    if let (Some(d), Some(extra)) = (d.as_object_mut(), extra.as_object()) {
        d.extend(extra.clone());
    }
    d
}

/// Sends `deal_start` and returns the announced deal, or the error answer.
async fn start(host: &mut Client, rid: &str, deal: Value) -> anyhow::Result<Value> {
    host.send(json!({"type": "deal_start", "request_id": rid, "deal": deal}))
        .await?;
    loop {
        let v = host.next_json().await?;
        match v["type"].as_str() {
            Some("deal") => return Ok(v["deal"].clone()),
            Some("error") if v["request_id"] == rid => return Ok(v),
            _ => {}
        }
    }
}

async fn deals_are_named_from_the_payload_the_pin_or_the_catalog(
    hub: TestHub,
) -> anyhow::Result<()> {
    let mut host = hub.host("titles").await?;

    // A catalog product that is not pinned: the catalog's title.
    let d = start(&mut host, "a", deal("d1", "mug-enamel", json!({}))).await?;
    assert_eq!(d["title"], "Enamel camping mug", "{d}");

    // The pinned product, with a title and image of the host's own: those.
    host.send(json!({"type": "pin", "request_id": "pin", "product": {"id": "mug-enamel",
        "title": "Mug, tonight only", "price_cents": 1499, "image_url": "https://img.example/mug.png"}}))
        .await?;
    let d = start(&mut host, "b", deal("d2", "mug-enamel", json!({}))).await?;
    assert_eq!(d["title"], "Mug, tonight only", "{d}");
    assert_eq!(d["image_url"], "https://img.example/mug.png", "{d}");

    // The host's own title wins; `|` is kept.
    let d = start(
        &mut host,
        "c",
        deal("d3", "own-item", json!({"title": "Gift box | large"})),
    )
    .await?;
    assert_eq!(d["title"], "Gift box | large", "{d}");

    // Neither pinned nor in the catalog, no title (a v1 deal_start): started, and named by
    // its product id, as v1 had it (issue 19, item 7).
    let d = start(&mut host, "d", deal("d4", "mystery", json!({}))).await?;
    assert_eq!(d["title"], "mystery", "{d}");
    let e = start(&mut host, "e", deal("d5", "x", json!({"title": "  "}))).await?;
    assert_eq!(e["code"], "bad_request", "{e}");

    // A viewer who joins now is welcomed with every live deal named.
    let (_viewer, welcome) = hub.viewer("titles", "late").await?;
    let ServerMsg::Welcome { deals, .. } = welcome else {
        anyhow::bail!("expected welcome, got {welcome:?}");
    };
    let mut titles: Vec<(String, String)> = deals
        .iter()
        .map(|d| (d.id.to_string(), d.title.clone()))
        .collect();
    titles.sort();
    assert_eq!(
        titles,
        [
            ("d1".into(), "Enamel camping mug".into()),
            ("d2".into(), "Mug, tonight only".into()),
            ("d3".into(), "Gift box | large".into()),
            ("d4".into(), "mystery".into()),
        ]
    );
    hub.shutdown().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_deals_are_named_from_the_payload_the_pin_or_the_catalog() -> anyhow::Result<()> {
    deals_are_named_from_the_payload_the_pin_or_the_catalog(TestHub::start().await?).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_deals_are_named_from_the_payload_the_pin_or_the_catalog() -> anyhow::Result<()> {
    let redis = common::redis::RedisServer::start()?;
    let hub = TestHub::with_config(common::redis_config(&redis.url())).await?;
    deals_are_named_from_the_payload_the_pin_or_the_catalog(hub).await
}
