//! A hub restarted with `server.state_file`: viewers closed with 1001 reconnect with `?since=`
//! to the new process and resume exactly where they were.

use crate::common;

use std::path::PathBuf;

use common::{Client, Ended, TestHub, WAIT, assert_contiguous, seqs, test_config};
use livehub::protocol::{Role, ServerMsg};
use serde_json::json;

/// A state file path in a fresh directory per test.
fn state_path(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("livehub-restart-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir.join("state.json")
}

/// Reads durable events until one with `seq` = `last` arrives; returns their seqs.
async fn events_until(c: &mut Client, last: u64) -> anyhow::Result<Vec<u64>> {
    let mut got = Vec::new();
    while got.last() != Some(&last) {
        let msg = c.next().await?;
        if let Some(seq) = msg.seq() {
            got.push(seq);
        }
    }
    Ok(got)
}

#[tokio::test]
async fn after_a_restart_every_viewer_resumes_with_since_and_misses_nothing() -> anyhow::Result<()>
{
    let mut config = test_config();
    config.server.state_file = Some(state_path("resume"));
    let hub = TestHub::with_config(config.clone()).await?;
    let addr = hub.addr;
    let mut host = hub.host("show").await?;
    let mut viewers = Vec::new();
    for i in 0..20 {
        viewers.push(hub.viewer("show", &format!("v{i}")).await?.0);
    }
    let product =
        json!({"id": "p1", "title": "Cozy scarf", "price_cents": 2599, "currency": "EUR"});
    host.send(json!({"type": "pin", "product": product}))
        .await?;
    for i in 0..9 {
        host.send(json!({"type": "announce", "text": format!("before {i}")}))
            .await?;
    }
    host.send(json!({"type": "mute", "request_id": "m", "user": "troll", "duration_ms": 600_000}))
        .await?;
    for v in &mut viewers {
        assert_contiguous(&events_until(v, 10).await?, 1);
    }

    hub.shutdown().await?;
    for v in &mut viewers {
        assert!(matches!(v.closed().await?, Ended::Closed(Some(1001))));
    }

    let hub = TestHub::at(addr, config).await?;
    // Everyone comes back at once, as after a deploy: half resume from the last event they saw,
    // half from an earlier one and get the rest replayed.
    let mut back = Vec::new();
    for i in 0..20u64 {
        let since = if i % 2 == 0 { 10 } else { i / 2 };
        let token = hub.token(Role::Viewer, "show", &format!("v{i}"));
        let mut c =
            Client::connect(&hub.ws_url("show", &format!("token={token}&since={since}"))).await?;
        let ServerMsg::Welcome {
            seq,
            resumed,
            pinned,
            ..
        } = c.next_of("welcome").await?
        else {
            unreachable!()
        };
        assert!(resumed, "viewer {i} not resumed");
        assert_eq!(seq, 10);
        assert_eq!(pinned.map(|p| p.id.to_string()), Some("p1".into()));
        if since < 10 {
            assert_contiguous(&events_until(&mut c, 10).await?, since + 1);
        }
        back.push(c);
    }
    // The sequence continues: nothing reused, nothing skipped.
    let mut host = hub.host("show").await?;
    host.send(json!({"type": "announce", "request_id": "a", "text": "after"}))
        .await?;
    assert_eq!(
        host.json_of("ack").await?,
        json!({"type": "ack", "request_id": "a", "seq": 11})
    );
    for c in &mut back {
        let msg = c.next_matching(|m| m.seq().is_some()).await?;
        assert_eq!(seqs(&[msg]), vec![11]);
    }
    // Moderation survives the restart.
    let (mut troll, _) = hub.viewer("show", "troll").await?;
    troll
        .send(json!({"type": "comment", "text": "spam"}))
        .await?;
    assert_eq!(troll.json_of("error").await?["code"], "forbidden");
    hub.shutdown().await
}

#[tokio::test]
async fn a_room_nobody_rejoined_keeps_its_state_through_a_second_restart() -> anyhow::Result<()> {
    let mut config = test_config();
    config.server.state_file = Some(state_path("twice"));
    let hub = TestHub::with_config(config.clone()).await?;
    let addr = hub.addr;
    let mut host = hub.host("quiet").await?;
    host.send(json!({"type": "announce", "request_id": "a", "text": "one"}))
        .await?;
    host.json_of("ack").await?;
    hub.shutdown().await?;
    // Restart twice without anyone joining in between.
    TestHub::at(addr, config.clone()).await?.shutdown().await?;
    let hub = TestHub::at(addr, config).await?;
    let (s, body) = hub.get("/api/rooms/quiet", None).await?;
    assert_eq!(s, 200, "{body}");
    let snap: serde_json::Value = serde_json::from_str(&body)?;
    assert_eq!(snap["seq"], 1);
    let token = hub.token(Role::Viewer, "quiet", "late");
    let mut c = Client::connect(&hub.ws_url("quiet", &format!("token={token}&since=0"))).await?;
    assert!(matches!(
        c.next_of("welcome").await?,
        ServerMsg::Welcome { resumed: true, .. }
    ));
    assert_contiguous(&events_until(&mut c, 1).await?, 1);
    hub.shutdown().await
}

#[tokio::test]
async fn a_corrupt_state_file_stops_the_start_and_names_the_file() -> anyhow::Result<()> {
    let path = state_path("corrupt");
    std::fs::write(&path, b"{\"version\": 1, \"rooms\": [")?;
    let mut config = test_config();
    config.server.state_file = Some(path);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let result = tokio::time::timeout(
        WAIT,
        livehub::server::run(listener, config, std::future::pending()),
    )
    .await?;
    let err = result.expect_err("must not serve").to_string();
    assert!(
        err.contains("state.json") && err.contains("not valid"),
        "{err}"
    );
    Ok(())
}
