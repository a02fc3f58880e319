//! Every kind of bad input gets the protocol's answer, and the hub keeps serving everyone else.

use crate::common;

use common::{Client, Ended, TestHub};
use livehub::protocol::Role;
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

/// The bystander still receives the room's events after the bad input.
async fn room_still_serves(
    hub: &TestHub,
    bystander: &mut Client,
    marker: &str,
) -> anyhow::Result<()> {
    let token = hub.token(Role::Host, "r", "h");
    let (status, _) = hub
        .post_command(
            "r",
            Some(&token),
            &json!({"type": "announce", "text": marker}).to_string(),
        )
        .await?;
    assert_eq!(status, 200);
    let a = bystander.json_of("announcement").await?;
    assert_eq!(a["text"], marker);
    Ok(())
}

#[tokio::test]
async fn malformed_commands_get_bad_request_and_the_connection_stays_open() -> anyhow::Result<()> {
    let hub = TestHub::start().await?;
    let (mut bystander, _) = hub.viewer("r", "bystander").await?;
    let (mut v, _) = hub.viewer("r", "v").await?;
    let mut host = hub.host("r").await?;
    host.send(json!({"type": "deal_start", "request_id": "s", "deal": {
        "id": "d", "product_id": "p", "title": "Test product", "price_cents": 100, "stock": 10, "per_user_limit": 2, "duration_ms": 60000}}))
        .await?;
    host.json_of("ack").await?;

    let cases: Vec<(&str, String, Option<&str>)> = vec![
        ("invalid JSON", "{\"type\":".into(), None),
        ("not an object", "[1,2,3]".into(), None),
        (
            "unknown type",
            json!({"type": "teleport", "request_id": "u1"}).to_string(),
            Some("u1"),
        ),
        ("no type", json!({"text": "hi"}).to_string(), None),
        (
            "missing field",
            json!({"type": "reserve", "request_id": "m1", "deal": "d"}).to_string(),
            Some("m1"),
        ),
        (
            "wrong type",
            json!({"type": "like", "count": "many"}).to_string(),
            None,
        ),
        (
            "negative qty",
            json!({"type": "reserve", "request_id": "n1", "deal": "d", "qty": -1}).to_string(),
            Some("n1"),
        ),
        (
            "qty 0",
            json!({"type": "reserve", "request_id": "z1", "deal": "d", "qty": 0}).to_string(),
            Some("z1"),
        ),
        (
            "bad id",
            json!({"type": "reserve", "request_id": "ok1", "deal": "no spaces", "qty": 1})
                .to_string(),
            Some("ok1"),
        ),
        (
            "10,000-character comment",
            json!({"type": "comment", "request_id": "c1", "text": "x".repeat(10_000)}).to_string(),
            Some("c1"),
        ),
        (
            "empty comment",
            json!({"type": "comment", "text": "   "}).to_string(),
            None,
        ),
        (
            "like count 0",
            json!({"type": "like", "count": 0}).to_string(),
            None,
        ),
        (
            "like count 51",
            json!({"type": "like", "count": 51}).to_string(),
            None,
        ),
    ];
    for (what, frame, request_id) in cases {
        v.send_text(&frame).await?;
        let e = v.json_of("error").await?;
        assert_eq!(e["code"], "bad_request", "{what}: {e}");
        assert!(!e["message"].as_str().unwrap_or("").is_empty(), "{what}");
        match request_id {
            Some(r) => assert_eq!(e["request_id"], r, "{what}"),
            None => assert!(e.get("request_id").is_none(), "{what}: {e}"),
        }
    }
    // qty over the deal's per-user limit is the inventory's rejection.
    v.send(json!({"type": "reserve", "request_id": "big", "deal": "d", "qty": 3}))
        .await?;
    assert_eq!(
        v.json_of("rejected").await?,
        json!({"type": "rejected", "request_id": "big", "reason": "limit_reached"})
    );
    // The same connection still works.
    v.send(json!({"type": "comment", "text": "still here"}))
        .await?;
    assert_eq!(v.json_of("comment").await?["text"], "still here");
    room_still_serves(&hub, &mut bystander, "after bad input").await?;
    // Host command errors are reported too.
    host.send(json!({"type": "deal_start", "request_id": "dup", "deal": {
        "id": "d", "product_id": "p", "title": "Test product", "price_cents": 100, "stock": 10, "per_user_limit": 2, "duration_ms": 60000}}))
        .await?;
    assert_eq!(host.json_of("error").await?["code"], "conflict");
    host.send(json!({"type": "delete_comment", "request_id": "nf", "id": "c999"}))
        .await?;
    assert_eq!(host.json_of("error").await?["code"], "not_found");
    host.send(json!({"type": "deal_start", "request_id": "zero", "deal": {
        "id": "e", "product_id": "p", "title": "Test product", "price_cents": 100, "stock": 0, "per_user_limit": 1, "duration_ms": 1000}}))
        .await?;
    assert_eq!(host.json_of("error").await?["code"], "bad_request");
    host.send(json!({"type": "deal_start", "request_id": "rate", "deal": {
        "id": "f", "product_id": "p", "title": "Test product", "price_cents": 100, "stock": 1, "per_user_limit": 1, "duration_ms": 1000,
        "affiliate_bps": 10001}}))
        .await?;
    let refused = host.json_of("error").await?;
    assert_eq!(refused["code"], "bad_request");
    assert!(
        refused["message"]
            .as_str()
            .is_some_and(|m| m.contains("deal.affiliate_bps")),
        "{refused}"
    );
    hub.shutdown().await
}

#[tokio::test]
async fn an_oversized_frame_closes_that_connection_with_1008_only() -> anyhow::Result<()> {
    let hub = TestHub::start().await?;
    let (mut bystander, _) = hub.viewer("r", "bystander").await?;
    let (mut v, _) = hub.viewer("r", "v").await?;
    let huge = json!({"type": "comment", "text": "x".repeat(70 * 1024)}).to_string();
    v.send_text(&huge).await?;
    assert_eq!(v.closed().await?, Ended::Closed(Some(1008)));
    room_still_serves(&hub, &mut bystander, "after oversize").await?;
    hub.shutdown().await
}

#[tokio::test]
async fn a_binary_frame_closes_that_connection_with_1008_only() -> anyhow::Result<()> {
    let hub = TestHub::start().await?;
    let (mut bystander, _) = hub.viewer("r", "bystander").await?;
    let (mut v, _) = hub.viewer("r", "v").await?;
    v.send_frame(Message::binary(vec![1u8, 2, 3])).await?;
    assert_eq!(v.closed().await?, Ended::Closed(Some(1008)));
    room_still_serves(&hub, &mut bystander, "after binary").await?;
    hub.shutdown().await
}

#[tokio::test]
async fn comments_over_the_rate_limit_are_refused_and_a_flooder_is_closed_with_1008()
-> anyhow::Result<()> {
    let mut cfg = common::test_config();
    cfg.limits.viewer_frames_per_sec = 20.0;
    cfg.limits.viewer_frames_burst = 40.0;
    let hub = TestHub::with_config(cfg).await?;
    let (mut bystander, _) = hub.viewer("r", "bystander").await?;
    let (mut v, _) = hub.viewer("r", "chatty").await?;
    // Burst of 5, then rate limited.
    for i in 0..6 {
        v.send(
            json!({"type": "comment", "request_id": format!("c{i}"), "text": format!("hi {i}")}),
        )
        .await?;
    }
    for _ in 0..5 {
        v.json_of("ack").await?;
    }
    let e = v.json_of("error").await?;
    assert_eq!(
        (e["code"].clone(), e["request_id"].clone()),
        (json!("rate_limited"), json!("c5"))
    );
    // Flooding: hundreds of frames at once earn rate_limited answers, then a 1008 close.
    let before = closes_with_1008(&hub).await?;
    for _ in 0..300 {
        if v.send(json!({"type": "like", "count": 1})).await.is_err() {
            break;
        }
    }
    // The hub closes with its flood's frames still unread: the kernel may answer them with a
    // reset that discards the close frame on its way, so the close is read from the hub's own
    // count too (the recorder is shared by the test process: the count only grows).
    let ended = v.closed().await?;
    assert!(
        matches!(ended, Ended::Closed(Some(1008)) | Ended::Dropped),
        "{ended:?}"
    );
    assert!(
        closes_with_1008(&hub).await? > before,
        "no 1008 close counted"
    );
    room_still_serves(&hub, &mut bystander, "after flood").await?;
    hub.shutdown().await
}

#[tokio::test]
async fn a_muted_user_cannot_comment_until_the_mute_ends() -> anyhow::Result<()> {
    let hub = TestHub::start().await?;
    let mut host = hub.host("r").await?;
    let (mut v, _) = hub.viewer("r", "troll").await?;
    host.send(json!({"type": "mute", "request_id": "m", "user": "troll", "duration_ms": 400}))
        .await?;
    assert_eq!(
        host.json_of("ack").await?,
        json!({"type": "ack", "request_id": "m"})
    );
    v.send(json!({"type": "comment", "text": "spam"})).await?;
    assert_eq!(v.json_of("error").await?["code"], "forbidden");
    tokio::time::sleep(std::time::Duration::from_millis(500)).await; // the mute's length is under test
    v.send(json!({"type": "comment", "text": "sorry"})).await?;
    assert_eq!(v.json_of("comment").await?["text"], "sorry");
    hub.shutdown().await
}

#[tokio::test]
async fn invisible_or_control_texts_script_image_urls_and_rates_over_100_percent_are_bad_requests()
-> anyhow::Result<()> {
    let hub = TestHub::start().await?;
    let (mut v, _) = hub.viewer("r", "v").await?;
    let mut host = hub.host("r").await?;
    for (what, text) in [
        ("zero-width spaces", "\u{200b}\u{200b}"),
        ("a byte-order mark", "\u{feff}"),
        ("a word joiner and an override", " \u{2060}\u{202e} "),
        ("NUL", "hi\0there"),
        ("an escape sequence", "\u{1b}[2Jgone"),
        ("a carriage return", "line\rover"),
    ] {
        v.send(json!({"type": "comment", "request_id": "c1", "text": text}))
            .await?;
        let e = v.json_of("error").await?;
        assert_eq!(
            (&e["code"], &e["request_id"]),
            (&json!("bad_request"), &json!("c1")),
            "comment of {what}: {e}"
        );
        host.send(json!({"type": "announce", "request_id": "a1", "text": text}))
            .await?;
        let e = host.json_of("error").await?;
        assert_eq!(e["code"], "bad_request", "announcement of {what}: {e}");
    }
    // Visible text keeps its joiners and line breaks.
    let fine = "\u{1f469}\u{200d}\u{1f4bb} live\nnow";
    v.send(json!({"type": "comment", "text": fine})).await?;
    assert_eq!(v.json_of("comment").await?["text"], fine);

    let refused = |e: &serde_json::Value, field: &str| {
        e["code"] == "bad_request" && e["message"].as_str().is_some_and(|m| m.contains(field))
    };
    host.send(
        json!({"type": "pin", "request_id": "p1", "product": {"id": "p", "title": "Mug",
        "price_cents": 100, "image_url": "javascript:alert(document.cookie)"}}),
    )
    .await?;
    let e = host.json_of("error").await?;
    assert!(refused(&e, "product.image_url"), "{e}");
    host.send(
        json!({"type": "deal_start", "request_id": "d1", "deal": {"id": "d", "product_id": "p",
        "title": "Mug", "image_url": "data:text/html,<script>alert(1)</script>", "price_cents": 100,
        "stock": 5, "per_user_limit": 1, "duration_ms": 60000}}),
    )
    .await?;
    let e = host.json_of("error").await?;
    assert!(refused(&e, "deal.image_url"), "{e}");
    host.send(
        json!({"type": "deal_start", "request_id": "d2", "deal": {"id": "d", "product_id": "p",
        "title": "Mug", "price_cents": 100, "stock": 5, "per_user_limit": 1, "duration_ms": 60000,
        "commission_bps": 9000, "affiliate_bps": 9000}}),
    )
    .await?;
    let e = host.json_of("error").await?;
    assert!(
        refused(&e, "deal.commission_bps") && refused(&e, "deal.affiliate_bps"),
        "{e}"
    );
    // The same over REST, and an http(s) image or a path still passes.
    let t = hub.token(Role::Host, "r", "h");
    let (s, b) = hub
        .post_command(
            "r",
            Some(&t),
            &json!({"type": "pin", "product": {"id": "p", "title": "Mug", "price_cents": 100,
                "image_url": "JAVASCRIPT:alert(1)"}})
            .to_string(),
        )
        .await?;
    assert!(
        s == 400 && refused(&b["error"], "product.image_url"),
        "{s} {b}"
    );
    for image in ["https://img.example/mug.png", "/img/mug.png"] {
        let (s, b) = hub
            .post_command(
                "r",
                Some(&t),
                &json!({"type": "pin", "product": {"id": "p", "title": "Mug", "price_cents": 100,
                    "image_url": image}})
                .to_string(),
            )
            .await?;
        assert_eq!(s, 200, "{image}: {b}");
    }
    hub.shutdown().await
}

#[tokio::test]
async fn a_fresh_hub_shows_its_room_and_connection_gauges_at_zero() -> anyhow::Result<()> {
    // Its own process: the metrics recorder is shared by every hub of a test process.
    let hub = common::HubProcess::start(&[]).await?;
    let (s, metrics) =
        livehub::http_client::request("GET", &format!("http://{}/metrics", hub.addr), None, None)
            .await?;
    assert_eq!(s, 200);
    for line in [
        "livehub_rooms 0",
        "livehub_connections 0",
        "livehub_connections_total 0",
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "no `{line}`:\n{metrics}"
        );
    }
    hub.kill().await;
    Ok(())
}

#[tokio::test]
async fn rest_commands_report_errors_with_their_http_status() -> anyhow::Result<()> {
    let hub = TestHub::start().await?;
    let t = hub.token(Role::Host, "r", "h");
    let (s, b) = hub.post_command("r", Some(&t), "not json").await?;
    assert_eq!((s, b["error"]["code"].clone()), (400, json!("bad_request")));
    let (s, b) = hub
        .post_command("r", Some(&t), r#"{"type":"comment","text":"hi"}"#)
        .await?;
    assert_eq!((s, b["error"]["code"].clone()), (400, json!("bad_request")));
    let (s, b) = hub
        .post_command("r", Some(&t), r#"{"type":"unpin"}"#)
        .await?;
    assert_eq!((s, b["error"]["code"].clone()), (409, json!("conflict")));
    let (s, b) = hub
        .post_command("r", Some(&t), r#"{"type":"deal_end","deal":"nope"}"#)
        .await?;
    assert_eq!((s, b["error"]["code"].clone()), (404, json!("not_found")));
    let big = json!({"type": "announce", "text": "x".repeat(70 * 1024)}).to_string();
    let (s, b) = hub.post_command("r", Some(&t), &big).await?;
    assert_eq!((s, b["error"]["code"].clone()), (413, json!("too_large")));
    let (s, _) = hub.get("/healthz", None).await?;
    assert_eq!(s, 200);
    let (s, body) = hub.get("/readyz", None).await?;
    assert_eq!((s, body.trim()), (200, "ready"));
    let (s, metrics) = hub.get("/metrics", None).await?;
    assert_eq!(s, 200);
    assert!(metrics.contains("livehub_events_total"), "{metrics}");
    for gauge in [
        "livehub_process_resident_bytes",
        "livehub_process_open_fds",
        "livehub_runtime_alive_tasks",
    ] {
        let value = metrics
            .lines()
            .find_map(|l| l.strip_prefix(gauge)?.trim().parse::<f64>().ok());
        assert!(value.is_some_and(|v| v > 0.0), "{gauge} sampled: {metrics}");
    }
    hub.shutdown().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_frames_never_break_the_hub() -> anyhow::Result<()> {
    let hub = TestHub::start().await?;
    let (mut bystander, _) = hub.viewer("r", "bystander").await?;
    let (mut v, _) = hub.viewer("r", "fuzzer").await?;
    let mut x: u64 = 0x9e3779b97f4a7c15;
    let pieces = [
        "{",
        "}",
        "[",
        "]",
        "\"type\"",
        ":",
        ",",
        "\"reserve\"",
        "\"comment\"",
        "\"qty\"",
        "1",
        "-1",
        "1e999",
        "null",
        "true",
        "\"\\u0000\"",
        "\"text\"",
        "\"deal_start\"",
        "\"deal\"",
        "{\"type\":\"pin\"}",
        " ",
        "\"\u{1F600}\"",
    ];
    for _ in 0..500 {
        let mut frame = String::new();
        for _ in 0..(x % 12) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            frame.push_str(pieces[(x % pieces.len() as u64) as usize]);
        }
        x = x.wrapping_add(1);
        v.send_text(&frame).await?;
    }
    v.send(json!({"type": "comment", "request_id": "alive", "text": "still alive"}))
        .await?;
    v.next_matching(|m| {
        matches!(
            m,
            livehub::protocol::ServerMsg::Ack { .. } | livehub::protocol::ServerMsg::Comment(_)
        )
    })
    .await?;
    room_still_serves(&hub, &mut bystander, "after fuzz").await?;
    hub.shutdown().await
}

/// The hub's count of closes with 1008.
async fn closes_with_1008(hub: &TestHub) -> anyhow::Result<u64> {
    let (_, metrics) = hub.get("/metrics", None).await?;
    Ok(metrics
        .lines()
        .find_map(|l| l.strip_prefix("livehub_closes_total{code=\"1008\"} "))
        .map_or(0, |n| n.trim().parse::<f64>().unwrap_or(0.0) as u64))
}
