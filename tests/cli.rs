//! The `livehub` binary: `token`, every `host` subcommand, and `serve` as a real process.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::{Client, Ended, TestHub};
use livehub::protocol::ServerMsg;

const BIN: &str = env!("CARGO_BIN_EXE_livehub");

fn livehub(hub: &TestHub, args: &[&str]) -> anyhow::Result<(bool, String, String)> {
    let out = Command::new(BIN)
        .args(args)
        .env("LIVEHUB_AUTH__SECRET", &hub.config.auth.secret)
        .env("LIVEHUB_URL", format!("ws://{}", hub.addr))
        .output()?;
    Ok((
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_and_host_commands_run_a_show_from_the_terminal() -> anyhow::Result<()> {
    let hub = TestHub::start().await?;
    let (ok, token, err) = livehub(
        &hub,
        &[
            "token", "--role", "host", "--room", "show", "--sub", "creator", "--name", "Ana",
            "--ttl", "1h",
        ],
    )?;
    assert!(ok, "{err}");
    let token = token.trim().to_owned();
    let identity =
        livehub::auth::Authenticator::new(&hub.config.auth.secret, true).verify(&token)?;
    assert_eq!(
        (identity.user.as_str(), identity.name.as_str()),
        ("creator", "Ana")
    );

    let (mut viewer, _) = hub.viewer("show", "fan").await?;
    // watch prints events, one line each
    let mut watch = tokio::process::Command::new(BIN)
        .args(["host", "--room", "show", "--token", &token, "watch"])
        .env("LIVEHUB_URL", format!("ws://{}", hub.addr))
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let mut lines =
        tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(watch.stdout.take().unwrap()));
    let first = tokio::time::timeout(common::WAIT, lines.next_line())
        .await??
        .unwrap_or_default();
    assert!(first.starts_with("welcome room=show"), "{first}");

    let host = |args: &[&str]| {
        let mut full = vec!["host", "--room", "show", "--token", token.as_str()];
        full.extend_from_slice(args);
        livehub(&hub, &full)
    };
    let (ok, out, err) = host(&[
        "pin",
        "--id",
        "scarf",
        "--title",
        "Cozy scarf",
        "--price-cents",
        "2599",
    ])?;
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "ok seq=1");
    assert!(matches!(
        viewer.next_of("pinned").await?,
        ServerMsg::Pinned { seq: 1, .. }
    ));
    let (ok, out, _) = host(&[
        "deal",
        "start",
        "--id",
        "d1",
        "--product",
        "scarf",
        "--price-cents",
        "1999",
        "--stock",
        "500",
        "--limit",
        "2",
        "--duration",
        "10m",
    ])?;
    assert!(ok);
    assert_eq!(out.trim(), "ok seq=2");
    let (ok, out, _) = host(&["announce", "500 scarves at 19.99!"])?;
    assert!(ok && out.trim() == "ok seq=3");
    viewer
        .send(serde_json::json!({"type": "comment", "text": "buying!"}))
        .await?;
    let ServerMsg::Comment(c) = viewer.next_of("comment").await? else {
        unreachable!()
    };
    let (ok, out, _) = host(&["delete-comment", c.id.as_str()])?;
    assert!(ok && out.trim() == "ok seq=5", "{out}");
    let (ok, out, _) = host(&["mute", "fan", "--for", "5m"])?;
    assert!(ok && out.trim() == "ok", "{out}");
    let (ok, out, _) = host(&["audit", "d1"])?;
    assert!(ok);
    let audit: livehub::inventory::Audit = serde_json::from_str(out.trim())?;
    assert_eq!((audit.stock, audit.remaining), (500, 500));
    let (ok, out, _) = host(&["deal", "end", "d1"])?;
    assert!(ok && out.trim() == "ok seq=6");
    let (ok, out, _) = host(&["unpin"])?;
    assert!(ok && out.trim() == "ok seq=7");
    // errors are reported with a non-zero exit
    let (ok, _, err) = host(&["deal", "end", "d1"])?;
    assert!(!ok);
    assert!(err.contains("Conflict"), "{err}");
    let (ok, _, err) = host(&["audit", "nope"])?;
    assert!(!ok, "{err}");

    let mut watched = Vec::new();
    while watched.len() < 7 {
        let line = tokio::time::timeout(common::WAIT, lines.next_line())
            .await??
            .unwrap_or_default();
        if line.starts_with('#') {
            watched.push(line);
        }
    }
    assert!(watched[0].starts_with("#1 pinned scarf"), "{watched:?}");
    assert!(
        watched[2].starts_with("#3 announcement: 500 scarves"),
        "{watched:?}"
    );
    assert!(watched[6].starts_with("#7 unpinned"), "{watched:?}");
    hub.shutdown().await
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_warns_about_the_dev_secret_and_sigterm_closes_viewers_with_1001()
-> anyhow::Result<()> {
    let port = free_port();
    let mut child = tokio::process::Command::new(BIN)
        .arg("serve")
        .env("LIVEHUB_SERVER__BIND", format!("127.0.0.1:{port}"))
        .env("RUST_LOG", "info")
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let url = format!("ws://127.0.0.1:{port}/ws/rooms/r");
    let mut viewer = None;
    for _ in 0..100 {
        if let Ok(c) = Client::connect(&url).await {
            viewer = Some(c);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await; // polling for the process to bind
    }
    let mut viewer = viewer.ok_or_else(|| anyhow::anyhow!("hub did not start"))?;
    assert!(matches!(viewer.next().await?, ServerMsg::Welcome { .. }));
    let pid = child.id().unwrap_or_default().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()?
            .success()
    );
    assert_eq!(viewer.closed().await?, Ended::Closed(Some(1001)));
    let status = tokio::time::timeout(common::WAIT, child.wait()).await??;
    assert!(status.success());
    let mut stderr = String::new();
    tokio::io::AsyncReadExt::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).await?;
    assert!(stderr.contains("development secret"), "{stderr}");
    Ok(())
}

#[test]
fn invalid_configuration_fails_at_start_naming_the_key() {
    let out = Command::new(BIN)
        .arg("serve")
        .env("LIVEHUB_ROOM__HISTORY", "lots")
        .output()
        .expect("run");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("room.history"), "{err}");
    let out = Command::new(BIN)
        .args(["serve", "--config", "/nonexistent/livehub.toml"])
        .output()
        .expect("run");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/livehub.toml"));
}
