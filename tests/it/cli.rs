//! The `livehub` binary: `token`, every `host` subcommand, and `serve` as a real process.

use crate::common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::{Client, Ended, TestHub};
use livehub::protocol::{Role, ServerMsg};
use serde_json::json;

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
    let (_watch, mut lines) = watch(&hub, &token)?;
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
    let (ok, out, _) = host(&["unmute", "fan"])?;
    assert!(ok && out.trim() == "ok", "{out}");
    let (ok, _, err) = host(&["unmute", "fan"])?;
    assert!(!ok && err.starts_with("not_found: "), "{err}");
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
    assert!(err.starts_with("conflict: "), "{err}");
    let (ok, _, err) = host(&["audit", "nope"])?;
    assert!(!ok, "{err}");
    let (ok, out, _) = host(&["stream", "https://cdn.example.com/show.m3u8"])?;
    assert!(ok && out.trim() == "ok seq=8", "{out}");
    let (ok, out, _) = host(&["stream", "--clear"])?;
    assert!(ok && out.trim() == "ok seq=9", "{out}");
    let (ok, _, err) = host(&["stream", "javascript:alert(1)"])?;
    assert!(!ok && err.starts_with("bad_request: "), "{err}");

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

/// Output lines of a running `watch` process.
type WatchLines = tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>;

/// `livehub host --room show watch` against `hub` with `token`: the process (killed when
/// dropped) and its output lines.
fn watch(hub: &TestHub, token: &str) -> anyhow::Result<(tokio::process::Child, WatchLines)> {
    let mut child = tokio::process::Command::new(BIN)
        .args(["host", "--room", "show", "--token", token, "watch"])
        .env("LIVEHUB_URL", format!("ws://{}", hub.addr))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()?;
    let out = anyhow::Context::context(child.stdout.take(), "watch's stdout")?;
    let lines = tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(out));
    Ok((child, lines))
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
    // the room's host opens it (with a token signed by the development secret), then a viewer
    let host_token = common::mint(livehub::config::DEV_SECRET, Role::Host, "r", "host");
    let mut host = None;
    for _ in 0..100 {
        if let Ok(c) = Client::connect(&format!("{url}?token={host_token}")).await {
            host = Some(c);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await; // polling for the process to bind
    }
    let mut host = host.ok_or_else(|| anyhow::anyhow!("hub did not start"))?;
    assert!(matches!(host.next().await?, ServerMsg::Welcome { .. }));
    let mut viewer = Client::connect(&url).await?;
    assert!(matches!(viewer.next().await?, ServerMsg::Welcome { .. }));
    let pid = child.id().unwrap_or_default().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()?
            .success()
    );
    assert_eq!(viewer.closed().await?, Ended::Closed(Some(1001)));
    assert_eq!(host.closed().await?, Ended::Closed(Some(1001)));
    let status = tokio::time::timeout(common::WAIT, child.wait()).await??;
    assert!(status.success());
    let mut stderr = String::new();
    tokio::io::AsyncReadExt::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).await?;
    assert!(stderr.contains("development secret"), "{stderr}");
    assert!(
        !stderr.contains('\u{1b}'),
        "no ANSI colour codes when stderr is not a terminal: {stderr:?}"
    );
    Ok(())
}

/// `livehub ARGS` with `RUST_BACKTRACE=1` (as many machines have it) and only `env` among the
/// LIVEHUB_ variables: exit code, stdout, stderr.
async fn run_with_backtraces_on(
    args: &[&str],
    env: &[(&str, &str)],
) -> anyhow::Result<(Option<i32>, String, String)> {
    let mut all = vec![("RUST_BACKTRACE", "1")];
    all.extend_from_slice(env);
    let out = run_bin(args, &all).await?;
    Ok((
        out.status.code(),
        String::from_utf8(out.stdout)?,
        String::from_utf8(out.stderr)?,
    ))
}

/// What a user error must never show: a backtrace, anyhow's `Error:` dump, a Rust enum name.
fn assert_plain(stderr: &str) {
    for dump in [
        "Stack backtrace",
        "backtrace",
        "Error:",
        "Error {",
        "Some(",
        "Conflict",
        "NotFound",
    ] {
        assert!(!stderr.contains(dump), "{dump:?} in {stderr:?}");
    }
}

#[tokio::test]
async fn a_config_error_names_the_key_where_it_was_set_and_an_example_once() -> anyhow::Result<()> {
    let (code, out, err) =
        run_with_backtraces_on(&["serve"], &[("LIVEHUB_ROOM__HISTORY", "lots")]).await?;
    assert_eq!(code, Some(2), "{err}");
    assert!(out.is_empty(), "{out}");
    assert_eq!(
        err,
        "livehub: config key `room.history` (set by the environment variable \
         LIVEHUB_ROOM__HISTORY): invalid type: string \"lots\", expected a whole number; for \
         example LIVEHUB_ROOM__HISTORY=1000 (in a config file: room.history = 1000)\n"
    );
    assert_plain(&err);

    let dir = scratch_dir("bad-config");
    let path = dir.join("livehub.toml");
    std::fs::write(&path, "[server]\nbind = 8080\n")?;
    let shown = path.display().to_string();
    let (code, _, err) = run_with_backtraces_on(&["serve", "--config", &shown], &[]).await?;
    assert_eq!(code, Some(2), "{err}");
    assert_eq!(err.lines().count(), 1, "once: {err}");
    assert!(
        err.contains(&format!("config key `server.bind` (set in {shown})")),
        "{err}"
    );
    assert!(
        err.contains("for example server.bind = \"127.0.0.1:8080\""),
        "{err}"
    );
    assert_eq!(
        err.matches("server.bind").count(),
        2,
        "the key, then the example: {err}"
    );
    assert_plain(&err);

    let (code, _, err) =
        run_with_backtraces_on(&["serve", "--config", "/nonexistent/livehub.toml"], &[]).await?;
    assert_eq!(code, Some(2));
    assert!(err.contains("/nonexistent/livehub.toml"), "{err}");
    assert_plain(&err);
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_command_prints_the_hubs_code_and_reason_on_stderr_only_without_a_backtrace()
-> anyhow::Result<()> {
    let hub = TestHub::start().await?;
    let url = format!("ws://{}", hub.addr);
    let secret = hub.config.auth.secret.clone();
    let env = [
        ("LIVEHUB_URL", url.as_str()),
        ("LIVEHUB_AUTH__SECRET", secret.as_str()),
    ];
    let host = hub.token(Role::Host, "show", "creator");
    let expired = hub.token_with(
        Role::Host,
        "show",
        "creator",
        Some(livehub::hub::now_ms() / 1000 - 120),
    );
    let viewer = hub.token(Role::Viewer, "show", "fan");
    let other_room = hub.token(Role::Host, "elsewhere", "creator");

    // refused at the upgrade (401, 403): the hub's JSON reason, not "HTTP error: 401"
    for (token, want) in [
        (&expired, "unauthorized: token expired\n"),
        (&other_room, "forbidden: wrong room\n"),
    ] {
        let (code, out, err) = run_with_backtraces_on(
            &["host", "--room", "show", "--token", token, "announce", "hi"],
            &env,
        )
        .await?;
        assert_eq!((code, out.as_str(), err.as_str()), (Some(1), "", want));
    }

    // refused over the WebSocket: the protocol code, not the Rust variant
    let start = [
        "host",
        "--room",
        "show",
        "--token",
        &host,
        "deal",
        "start",
        "--id",
        "d1",
        "--product",
        "scarf",
        "--title",
        "Cozy scarf",
        "--price-cents",
        "100",
        "--stock",
        "5",
    ];
    let (code, out, err) = run_with_backtraces_on(&start, &env).await?;
    assert_eq!((code, out.as_str()), (Some(0), "ok seq=1\n"), "{err}");
    let (code, out, err) = run_with_backtraces_on(&start, &env).await?;
    assert_eq!(code, Some(1));
    assert!(out.is_empty(), "nothing on stdout: {out}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("conflict: "), "{err}");
    assert_plain(&err);
    let (code, out, err) = run_with_backtraces_on(
        &[
            "host", "--room", "show", "--token", &viewer, "announce", "hi",
        ],
        &env,
    )
    .await?;
    assert_eq!(code, Some(1));
    assert!(
        out.is_empty() && err.starts_with("forbidden: "),
        "{out}{err}"
    );

    // a failed audit: the refusal on stderr, nothing (no JSON) on stdout
    for (token, deal, want) in [
        (&host, "nope", "not_found: "),
        (&viewer, "d1", "forbidden: "),
    ] {
        let (code, out, err) = run_with_backtraces_on(
            &["host", "--room", "show", "--token", token, "audit", deal],
            &env,
        )
        .await?;
        assert_eq!(code, Some(1), "{err}");
        assert!(out.is_empty(), "nothing on stdout: {out}");
        assert!(err.starts_with(want) && err.lines().count() == 1, "{err}");
        assert_plain(&err);
    }
    let (code, out, _) = run_with_backtraces_on(
        &["host", "--room", "show", "--token", &host, "audit", "d1"],
        &env,
    )
    .await?;
    assert_eq!(code, Some(0));
    let audit: livehub::inventory::Audit = serde_json::from_str(out.trim())?;
    assert_eq!(audit.stock, 5);

    // a hub that is not there: one line naming it, its own exit status
    let nowhere = format!("ws://127.0.0.1:{}", free_port());
    let (code, out, err) = run_with_backtraces_on(
        &[
            "host", "--url", &nowhere, "--room", "show", "--token", &host, "unpin",
        ],
        &[],
    )
    .await?;
    assert_eq!(code, Some(3), "{err}");
    assert!(out.is_empty());
    assert_eq!(
        err,
        format!("livehub: cannot reach the hub at {nowhere}: connection refused\n")
    );
    // a URL this client cannot speak is refused before anything is sent
    let (code, _, err) = run_with_backtraces_on(
        &[
            "host",
            "--url",
            "https://hub.example",
            "--room",
            "show",
            "--token",
            &host,
            "unpin",
        ],
        &[],
    )
    .await?;
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.starts_with("livehub: --url https://hub.example: "),
        "{err}"
    );
    assert_plain(&err);
    hub.shutdown().await
}

#[tokio::test]
async fn help_says_how_to_change_the_port_lists_the_roles_and_shows_url_as_optional()
-> anyhow::Result<()> {
    let help = |args: &'static [&'static str]| async move {
        let out = run_bin(args, &[]).await?;
        anyhow::ensure!(out.status.success(), "{out:?}");
        anyhow::Ok(String::from_utf8(out.stdout)?)
    };
    let serve = help(&["serve", "--help"]).await?;
    assert!(
        serve.contains("LIVEHUB_SERVER__BIND=127.0.0.1:9000 livehub serve")
            && serve.contains("bind = \"127.0.0.1:9000\"")
            && serve.contains("127.0.0.1:8080 by default"),
        "{serve}"
    );
    let token = help(&["token", "--help"]).await?;
    for role in ["viewer", "host", "admin"] {
        assert!(token.contains(role), "{role}: {token}");
    }
    assert!(token.contains("[default: viewer]"), "{token}");
    let host = help(&["host", "--help"]).await?;
    let usage = host
        .lines()
        .find(|l| l.starts_with("Usage:"))
        .unwrap_or_default();
    assert!(!usage.contains("--url"), "--url has a default: {usage}");
    assert!(host.contains("[default: ws://127.0.0.1:8080]"), "{host}");
    let version = help(&["--version"]).await?;
    assert_eq!(
        version.trim(),
        format!("livehub {}", env!("CARGO_PKG_VERSION"))
    );
    Ok(())
}

/// A fresh, empty directory for one test's files.
fn scratch_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("livehub-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

/// `livehub ARGS` with only `env` set among the LIVEHUB_ variables; waits at most WAIT.
async fn run_bin(args: &[&str], env: &[(&str, &str)]) -> anyhow::Result<std::process::Output> {
    let mut cmd = tokio::process::Command::new(BIN);
    cmd.args(args).kill_on_drop(true);
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("LIVEHUB_")) {
        cmd.env_remove(k);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    Ok(tokio::time::timeout(common::WAIT, cmd.output()).await??)
}

#[tokio::test]
async fn init_writes_a_production_config_that_serves_on_a_public_bind() -> anyhow::Result<()> {
    let dir = scratch_dir("init");
    let path = dir.join("livehub.toml");
    let shown = path.display().to_string();
    let out = run_bin(&["init", &shown], &[]).await?;
    assert!(out.status.success(), "{out:?}");
    let said = String::from_utf8(out.stdout)?;
    assert_eq!(said.lines().count(), 1, "{said}");
    assert!(
        said.contains(&format!("livehub serve --config {shown}")),
        "{said}"
    );
    let text = std::fs::read_to_string(&path)?;
    let c = livehub::config::Config::load(Some(&path), std::iter::empty())?;
    assert_eq!(c.server.bind, "0.0.0.0:8080".parse()?);
    assert!(c.exposure_problems().is_empty(), "{text}");
    assert!(!c.allow_anonymous() && c.require_exp() && !c.dev_tokens());
    assert!(c.server.allowed_origins.is_empty() && text.contains("allowed_origins = []"));
    assert_eq!(
        c.inventory.backend,
        livehub::config::InventoryBackend::Redis
    );
    assert_eq!(c.auth.secret.len(), 64);
    assert!(c.auth.secret.bytes().all(|b| b.is_ascii_hexdigit()));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&path)?.permissions().mode() & 0o777,
            0o600
        );
    }

    // never over an existing file without --force; --force writes a new secret
    let out = run_bin(&["init", &shown], &[]).await?;
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--force"));
    assert_eq!(std::fs::read_to_string(&path)?, text);
    let out = run_bin(&["init", "--force", &shown], &[]).await?;
    assert!(out.status.success(), "{out:?}");
    let again = livehub::config::Config::load(Some(&path), std::iter::empty())?;
    assert_ne!(again.auth.secret, c.auth.secret);

    // the default path is ./livehub.toml
    let out = tokio::time::timeout(
        common::WAIT,
        tokio::process::Command::new(BIN)
            .arg("init")
            .current_dir(&dir)
            .output(),
    )
    .await??;
    assert!(!out.status.success(), "livehub.toml exists in {dir:?}");

    // and `livehub serve` starts with it on every interface (memory inventory: no Redis here)
    let port = free_port();
    let bind = format!("0.0.0.0:{port}");
    let (status, stderr) = serve_until_healthy(
        &["serve", "--config", &shown],
        &[
            ("LIVEHUB_SERVER__BIND", &bind),
            ("LIVEHUB_INVENTORY__BACKEND", "memory"),
        ],
        port,
    )
    .await?;
    assert_eq!(status, 200, "{stderr}");
    assert!(!stderr.contains("development secret"), "{stderr}");
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

/// Starts `livehub ARGS`, waits for `/healthz` on 127.0.0.1:`port`, kills it; the health
/// status (0 when it never answered) and what the hub wrote on stderr.
async fn serve_until_healthy(
    args: &[&str],
    env: &[(&str, &str)],
    port: u16,
) -> anyhow::Result<(u16, String)> {
    let mut cmd = tokio::process::Command::new(BIN);
    cmd.args(args)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("LIVEHUB_")) {
        cmd.env_remove(k);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn()?;
    let url = format!("http://127.0.0.1:{port}/healthz");
    let mut status = 0;
    for _ in 0..100 {
        if let Ok((s, _)) = livehub::http_client::request("GET", &url, None, None).await {
            status = s;
            break;
        }
        if child.try_wait()?.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await; // polling for the process to bind
    }
    let _ = child.start_kill();
    let out = tokio::time::timeout(common::WAIT, child.wait_with_output()).await??;
    Ok((status, String::from_utf8_lossy(&out.stderr).into_owned()))
}

#[tokio::test]
async fn serve_refuses_a_public_bind_with_development_settings() -> anyhow::Result<()> {
    let port = free_port();
    let bind = format!("0.0.0.0:{port}");
    let started = std::time::Instant::now();
    let out = run_bin(&["serve"], &[("LIVEHUB_SERVER__BIND", &bind)]).await?;
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(started.elapsed() < Duration::from_secs(5));
    let err = String::from_utf8(out.stderr)?;
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(
        err.starts_with(&format!(
            "livehub serve: refusing to listen on {bind} with development settings; set LIVEHUB_AUTH__SECRET="
        )),
        "{err}"
    );
    assert!(
        err.contains("livehub init") && err.contains("--insecure-dev"),
        "{err}"
    );
    assert!(
        !err.contains("LIVEHUB_PAGES__DEV_TOKENS"),
        "dev tokens follow the bind: {err}"
    );
    // dev tokens forced on are named too, even with a real secret
    let out = run_bin(
        &["serve"],
        &[
            ("LIVEHUB_SERVER__BIND", &bind),
            ("LIVEHUB_AUTH__SECRET", "a-real-secret-0123456789abcdef"),
            ("LIVEHUB_PAGES__DEV_TOKENS", "true"),
        ],
    )
    .await?;
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8(out.stderr)?;
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("LIVEHUB_PAGES__DEV_TOKENS=false") && !err.contains("LIVEHUB_AUTH__SECRET"),
        "{err}"
    );

    // a real secret, dev tokens at their default (off on this bind): it serves
    let (status, stderr) = serve_until_healthy(
        &["serve"],
        &[
            ("LIVEHUB_SERVER__BIND", &bind),
            ("LIVEHUB_AUTH__SECRET", "a-real-secret-0123456789abcdef"),
        ],
        port,
    )
    .await?;
    assert_eq!(status, 200, "{stderr}");
    assert!(!stderr.contains("dev_tokens"), "{stderr}");
    Ok(())
}

#[tokio::test]
async fn insecure_dev_lets_development_settings_serve_a_public_bind_loudly() -> anyhow::Result<()> {
    let port = free_port();
    let bind = format!("0.0.0.0:{port}");
    let (status, stderr) = serve_until_healthy(
        &["serve", "--insecure-dev"],
        &[("LIVEHUB_SERVER__BIND", &bind)],
        port,
    )
    .await?;
    assert_eq!(status, 200, "{stderr}");
    let loud = stderr
        .lines()
        .find(|l| l.contains("INSECURE"))
        .unwrap_or_default();
    assert!(
        loud.contains("WARN") && loud.contains("insecure_dev"),
        "{stderr}"
    );
    assert!(stderr.contains("development secret"), "{stderr}");
    Ok(())
}

#[test]
fn token_refuses_every_room_for_anything_but_admin_and_merchant() {
    for role in ["host", "viewer"] {
        let out = Command::new(BIN)
            .args(["token", "--role", role, "--room", "*", "--sub", "someone"])
            .output()
            .expect("run");
        assert!(!out.status.success(), "{role}");
        assert!(out.stdout.is_empty());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("admin and merchant tokens only"), "{err}");
    }
    for role in ["admin", "merchant"] {
        let out = Command::new(BIN)
            .args(["token", "--role", role, "--room", "*", "--sub", "root"])
            .output()
            .expect("run");
        assert!(out.status.success(), "{out:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_escapes_control_characters_so_a_comment_cannot_forge_lines() -> anyhow::Result<()> {
    let hub = TestHub::start().await?;
    let token = hub.token(Role::Host, "show", "creator");
    let (_watch, mut lines) = watch(&hub, &token)?;
    let mut next_line = async || -> anyhow::Result<String> {
        Ok(tokio::time::timeout(common::WAIT, lines.next_line())
            .await??
            .unwrap_or_default())
    };
    assert!(next_line().await?.starts_with("welcome room=show"));

    // The hub refuses most control characters (ESC, CR, NUL: bad_request), but a comment or an
    // announcement may hold line breaks and tabs, and any text bidi controls and the line
    // separator: `watch` must write them out visibly. (ESC and CR: `cli::lines`'s unit tests.)
    let forged = "hi\n#99 announcement: FREE STUFF\t\u{202e}gnp.exe";
    let escaped = r"hi\n#99 announcement: FREE STUFF\t\u{202e}gnp.exe";
    let forged_title = "hi\u{2028}#99 announcement: FREE STUFF \u{202e}gnp.exe";
    let escaped_title = r"hi\u{2028}#99 announcement: FREE STUFF \u{202e}gnp.exe";
    let (mut viewer, _) = hub.viewer("show", "fan").await?;
    viewer
        .send(json!({"type": "comment", "text": forged}))
        .await?;
    viewer.next_of("comment").await?;
    let (status, body) = hub
        .post_command(
            "show",
            Some(&token),
            &json!({"type": "pin", "product": {"id": "p1", "title": forged_title, "price_cents": 100}})
                .to_string(),
        )
        .await?;
    assert_eq!(status, 200, "{body}");
    let (status, _) = hub
        .post_command(
            "show",
            Some(&token),
            &json!({"type": "announce", "text": forged}).to_string(),
        )
        .await?;
    assert_eq!(status, 200);

    let mut events = Vec::new();
    while events.len() < 3 {
        let line = next_line().await?;
        assert!(!line.starts_with("#99"), "a forged line: {line:?}");
        assert!(!line.chars().any(|c| c.is_control()), "{line:?}");
        if line.starts_with('#') {
            events.push(line);
        }
    }
    assert!(events[0].starts_with("#1 comment "), "{events:?}");
    assert!(events[1].starts_with("#2 pinned p1 "), "{events:?}");
    assert!(events[2].starts_with("#3 announcement: "), "{events:?}");
    for (line, escaped) in events.iter().zip([escaped, escaped_title, escaped]) {
        assert!(line.contains(escaped), "{line:?}");
    }
    hub.shutdown().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_prints_the_pages_urls_with_the_bound_address() -> anyhow::Result<()> {
    use tokio::io::AsyncBufReadExt;
    let port = free_port();
    let mut child = tokio::process::Command::new(BIN)
        .arg("serve")
        .env("LIVEHUB_SERVER__BIND", format!("127.0.0.1:{port}"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()?;
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let mut printed = Vec::new();
    while printed.len() < 5 {
        match tokio::time::timeout(common::WAIT, lines.next_line()).await?? {
            Some(line) => printed.push(line),
            None => break,
        }
    }
    let base = format!("http://127.0.0.1:{port}");
    assert_eq!(
        printed[0],
        format!("livehub is listening on {base}"),
        "{printed:?}"
    );
    // each page the lines name answers, at the address printed
    for page in ["/", "/rooms/demo", "/host/demo", "/metrics"] {
        let url = format!("{base}{page}");
        assert!(
            printed
                .iter()
                .any(|l| l.contains(&format!("{url} ")) || l.ends_with(&url)),
            "{page}: {printed:?}"
        );
        let (status, _) = livehub::http_client::request("GET", &url, None, None).await?;
        assert_eq!(status, 200, "{url}");
    }
    child.start_kill()?;
    Ok(())
}

/// The README's first show, run as written against a fresh hub: every command of its `sh` blocks
/// in order (`./target/release/livehub` as this build's binary; the two that run until Ctrl-C or
/// need websocat, `watch` and `websocat`, and the `curl` that names the reader's own order, left
/// out), and each command annotated with its answer
/// (`# ok seq=1`, `# {"id":"d1",...}`) must print it (`N` and `...` match anything).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readmes_first_show_runs_as_written() -> anyhow::Result<()> {
    let hub = TestHub::start().await?;
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))?;
    let show = readme
        .split("\n## Your first show")
        .nth(1)
        .and_then(|rest| rest.split("\n## ").next())
        .ok_or_else(|| anyhow::anyhow!("the README has no \"## Your first show\""))?;
    let mut commands = Vec::new();
    for block in show.split("```sh\n").skip(1) {
        let block = block.split("```").next().unwrap_or_default();
        let mut joined = String::new();
        for line in block.lines() {
            joined.push_str(line);
            if joined.ends_with('\\') {
                joined.pop();
                continue;
            }
            let command = std::mem::take(&mut joined);
            if !command.trim().is_empty()
                && !command.contains(" watch")
                && !command.contains("websocat")
                && !command.starts_with("curl ")
            {
                commands.push(command);
            }
        }
    }
    assert!(commands.len() >= 6, "too few commands found: {commands:?}");
    let mut script = String::from("set -euo pipefail\n");
    let mut expected = Vec::new();
    for (i, command) in commands.iter().enumerate() {
        let (run, answer) = match command.split_once("  #") {
            Some((run, answer)) => (run, Some(answer.trim().to_owned())),
            None => (command.as_str(), None),
        };
        script.push_str(&format!(
            "echo '@@ {i}'\n{}\n",
            run.replace("./target/release/livehub", BIN)
        ));
        expected.push(answer);
    }
    let out = Command::new("bash")
        .arg("-c")
        .arg(&script)
        .env("LIVEHUB_AUTH__SECRET", &hub.config.auth.secret)
        .env("LIVEHUB_URL", format!("ws://{}", hub.addr))
        .output()?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    for (i, printed) in stdout.split("@@ ").skip(1).enumerate() {
        let printed = printed
            .split_once('\n')
            .map(|(_, p)| p.trim())
            .unwrap_or_default();
        if let Some(answer) = &expected[i] {
            assert!(
                matches_answer(printed, answer),
                "`{}` printed {printed:?}, the README says {answer:?}",
                commands[i]
            );
        }
    }
    hub.shutdown().await
}

/// Whether `printed` is what a README comment says: `N` in `seq=N` and `...` match anything.
fn matches_answer(printed: &str, answer: &str) -> bool {
    let answer = answer.replace("seq=N", "seq=...");
    let mut parts = answer.split("...");
    let first = parts.next().unwrap_or_default();
    let Some(mut rest) = printed.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    for (k, part) in parts.iter().enumerate() {
        if k == parts.len() - 1 {
            return rest.ends_with(part);
        }
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.is_empty()
}

/// `host auction start` and `end` send the auction commands and print the hub's answer as the
/// deal commands do, and `watch` prints an auction's start, its bids and its close as sentences:
/// unsold (ended by the host before any bid) and sold (a 5 s sudden-death auction run to its end).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_auction_commands_start_and_end_auctions_and_watch_prints_them() -> anyhow::Result<()>
{
    let hub = TestHub::start().await?;
    let token = hub.token(Role::Host, "show", "creator");
    let (_watch, mut lines) = watch(&hub, &token)?;
    // the next line but the viewer count's, which come and go
    let mut next_line = async || -> anyhow::Result<String> {
        loop {
            let line = tokio::time::timeout(common::WAIT, lines.next_line())
                .await??
                .unwrap_or_default();
            if !line.starts_with("viewers ") {
                return Ok(line);
            }
        }
    };
    assert!(next_line().await?.starts_with("welcome room=show"));
    let host = |args: &[&str]| {
        let mut full = vec!["host", "--room", "show", "--token", token.as_str()];
        full.extend_from_slice(args);
        livehub(&hub, &full)
    };

    let (ok, out, err) = host(&[
        "auction",
        "start",
        "--id",
        "a1",
        "--product",
        "scarf",
        "--title",
        "Cozy scarf",
        "--start-cents",
        "1000",
        "--increment-cents",
        "100",
        "--duration",
        "2m",
    ])?;
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "ok seq=1");
    let line = next_line().await?;
    assert!(
        line.starts_with("#1 auction a1 live: \"Cozy scarf\" from 1000 USD, +100 USD, ends in "),
        "{line}"
    );
    let (ok, out, err) = host(&["auction", "end", "a1"])?;
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "ok seq=2");
    assert_eq!(next_line().await?, "#2 auction a1 unsold");
    let (ok, out, err) = host(&["auction", "end", "a1"])?;
    assert!(!ok && out.is_empty(), "{out}");
    assert_eq!(err.trim(), "conflict: auction a1 has already closed");

    // the hub's own refusal of the rules (the rates add up to more than the price)
    let (ok, _, err) = host(&[
        "auction",
        "start",
        "--id",
        "a2",
        "--product",
        "scarf",
        "--start-cents",
        "500",
        "--increment-cents",
        "50",
        "--commission-bps",
        "6000",
        "--affiliate-bps",
        "6000",
    ])?;
    assert!(!ok);
    assert!(
        err.starts_with("bad_request: auction.commission_bps + affiliate_bps"),
        "{err}"
    );
    assert_plain(&err);

    let (ok, out, err) = host(&[
        "auction",
        "start",
        "--id",
        "a2",
        "--product",
        "scarf",
        "--title",
        "Cozy scarf",
        "--start-cents",
        "500",
        "--increment-cents",
        "50",
        "--duration",
        "5s",
        "--sudden-death",
    ])?;
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "ok seq=3");
    let line = next_line().await?;
    assert!(
        line.starts_with("#3 auction a2 live: \"Cozy scarf\" from 500 USD, +50 USD, ends in ")
            && line.ends_with(", sudden death"),
        "{line}"
    );
    let (mut viewer, _) = hub.viewer("show", "fan").await?;
    viewer
        .send(json!({"type": "bid", "request_id": "b1", "auction": "a2", "amount_cents": 500}))
        .await?;
    assert!(matches!(
        viewer.next_of("bid_accepted").await?,
        ServerMsg::BidAccepted { leading: true, .. }
    ));
    let line = next_line().await?;
    assert!(
        line.starts_with("auction a2: 500 USD by Name fan (1 bid, ends in "),
        "{line}"
    );
    // with a bid it runs to its end, and is sold there
    let (ok, _, err) = host(&["auction", "end", "a2"])?;
    assert!(!ok);
    assert_eq!(
        err.trim(),
        "conflict: auction a2 has a bid: it runs to its end"
    );
    assert_eq!(
        next_line().await?,
        "#4 auction a2 sold to Name fan for 500 USD"
    );
    hub.shutdown().await
}

/// An auction's flags are checked before anything is sent, and refused in their own words: a
/// duration outside 5 s to 1 h, a price that is not a whole number of cents (one written in
/// currency units is told its cents), an extension with sudden death.
#[tokio::test]
async fn host_auction_start_refuses_bad_flags_in_their_words() -> anyhow::Result<()> {
    // the flags given, with a valid price for each one left out
    let start = |flags: &[&'static str]| {
        let mut args = vec![
            "host",
            "--url",
            "ws://127.0.0.1:9",
            "--room",
            "show",
            "--token",
            "t",
            "auction",
            "start",
            "--id",
            "a1",
            "--product",
            "scarf",
        ];
        for price in ["--start-cents", "--increment-cents"] {
            if !flags.contains(&price) {
                args.extend([price, "100"]);
            }
        }
        args.extend_from_slice(flags);
        args
    };
    for (flags, want) in [
        (
            &["--duration", "3s"][..],
            "invalid value '3s' for '--duration <DURATION>': an auction runs 5s to 1h",
        ),
        (
            &["--duration", "2h"],
            "invalid value '2h' for '--duration <DURATION>': an auction runs 5s to 1h",
        ),
        (
            &["--start-cents", "19.99"],
            "invalid value '19.99' for '--start-cents <START_CENTS>': a price is a whole \
             number of cents: 19.99 is 1999",
        ),
        (
            &["--increment-cents", "ten"],
            "invalid value 'ten' for '--increment-cents <INCREMENT_CENTS>': a price is a whole \
             number of cents, e.g. 1999 for 19.99",
        ),
        (
            &["--start-cents", "0"],
            "a price in cents must be 1 to 100000000",
        ),
        (
            &["--extend", "2m"],
            "invalid value '2m' for '--extend <EXTEND>': an extension is 0s to 1m",
        ),
        (
            &["--sudden-death", "--extend", "5s"],
            "'--sudden-death' cannot be used with '--extend <EXTEND>'",
        ),
    ] {
        let out = run_bin(&start(flags), &[]).await?;
        let err = String::from_utf8(out.stderr)?;
        assert_eq!(out.status.code(), Some(2), "{flags:?}: {err}");
        assert!(out.stdout.is_empty(), "{flags:?}");
        assert!(err.contains(want), "{flags:?}: {err}");
        assert_plain(&err);
    }
    // an id the protocol cannot carry: the CLI's own usage error, before connecting
    let out = run_bin(
        &[
            "host",
            "--url",
            "ws://127.0.0.1:9",
            "--room",
            "show",
            "--token",
            "t",
            "auction",
            "end",
            "not an id",
        ],
        &[],
    )
    .await?;
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        String::from_utf8(out.stderr)?,
        "livehub: auction: invalid id \"not an id\": expected 1 to 64 of [A-Za-z0-9_-]\n"
    );
    Ok(())
}
