//! Several `livehub serve` processes sharing one Redis: one show spread over hub nodes.

use anyhow::{Context, Result, bail};
use livehub::protocol::{Role, ServerMsg};

use super::redis::Engine;
use super::{Client, HubProcess, mint};

/// The token secret every node of a test shares.
pub const SECRET: &str = "test-secret-0123456789";

/// The environment of a node on the Redis at `url` (a cluster's seed list when `cluster`).
pub fn node_env(url: &str, cluster: bool) -> Vec<(&'static str, String)> {
    vec![
        ("LIVEHUB_AUTH__SECRET", SECRET.to_owned()),
        ("LIVEHUB_INVENTORY__BACKEND", "redis".to_owned()),
        ("LIVEHUB_REDIS__URL", url.to_owned()),
        ("LIVEHUB_REDIS__CLUSTER", cluster.to_string()),
        // Tests drive traffic faster than a person would.
        ("LIVEHUB_LIMITS__VIEWER_FRAMES_PER_SEC", "1000".to_owned()),
        ("LIVEHUB_LIMITS__VIEWER_FRAMES_BURST", "1000".to_owned()),
    ]
}

/// The environment of a node on `engine`, under the engine's key prefix.
pub fn engine_env(engine: &Engine) -> Vec<(&'static str, String)> {
    let mut env = node_env(&engine.url(), engine.is_cluster());
    env.push(("LIVEHUB_REDIS__KEY_PREFIX", engine.key_prefix().to_owned()));
    env
}

/// `n` hub processes on one Redis server at `url`.
pub async fn start_nodes(url: &str, n: usize) -> Result<Vec<HubProcess>> {
    let mut nodes = Vec::with_capacity(n);
    for _ in 0..n {
        nodes.push(HubProcess::start(&node_env(url, false)).await?);
    }
    Ok(nodes)
}

/// `n` hub processes on `engine` (a server or a cluster).
pub async fn start_nodes_on(engine: &Engine, n: usize) -> Result<Vec<HubProcess>> {
    let mut nodes = Vec::with_capacity(n);
    for _ in 0..n {
        nodes.push(HubProcess::start(&engine_env(engine)).await?);
    }
    Ok(nodes)
}

/// Opens `room` through `node` as its host would (a host connection that joins and leaves).
pub async fn open_room(node: &HubProcess, room: &str) -> Result<()> {
    let url = node.ws_url(room, &mint(SECRET, Role::Host, room, "opener"));
    let mut c = Client::connect(&url).await?;
    c.next_of("welcome").await?;
    c.close().await;
    Ok(())
}

/// Connects `user` with `role` to `room` on `node` (resuming after `since`), and returns the
/// client with its welcome. A viewer's room is opened first, as its host would.
pub async fn join(
    node: &HubProcess,
    room: &str,
    role: Role,
    user: &str,
    since: Option<u64>,
) -> Result<(Client, ServerMsg)> {
    let mut url = node.ws_url(room, &mint(SECRET, role, room, user));
    if let Some(s) = since {
        url.push_str(&format!("&since={s}"));
    }
    let mut c = Client::connect(&url).await?;
    let mut first = c.next().await?;
    if first.kind() == "not_live" {
        open_room(node, room).await?;
        c = Client::connect(&url).await?;
        first = c.next().await?;
    }
    anyhow::ensure!(first.kind() == "welcome", "expected welcome, got {first:?}");
    Ok((c, first))
}

/// The welcome's `seq`.
pub fn welcome_seq(w: &ServerMsg) -> u64 {
    match w {
        ServerMsg::Welcome { seq, .. } => *seq,
        _ => 0,
    }
}

/// Reads durable events until one with `seq >= last` arrives; returns them all, in arrival
/// order (skipped messages included in `seen` are scanned first).
pub async fn durable_until(c: &mut Client, last: u64) -> Result<Vec<ServerMsg>> {
    let mut out: Vec<ServerMsg> = std::mem::take(&mut c.seen)
        .into_iter()
        .filter(|m| m.seq().is_some())
        .collect();
    while out.last().and_then(ServerMsg::seq).is_none_or(|s| s < last) {
        let m = c
            .next_matching(|m| m.seq().is_some())
            .await
            .with_context(|| format!("waiting for seq {last}; have {:?}", super::seqs(&out)))?;
        out.push(m);
    }
    Ok(out)
}

/// The `ack` for `request_id` (skipping anything else); its `seq`.
pub async fn ack_seq(c: &mut Client, request_id: &str) -> Result<u64> {
    loop {
        let v = c.json_of("ack").await?;
        if v["request_id"] == request_id {
            return v["seq"].as_u64().context("ack without seq");
        }
    }
}

/// Asserts every list is the same sequence of events, contiguous from `first`.
pub fn assert_same_everywhere(lists: &[Vec<ServerMsg>], first: u64) -> Result<()> {
    let Some(reference) = lists.first() else {
        bail!("no lists")
    };
    super::assert_contiguous(&super::seqs(reference), first);
    for (i, l) in lists.iter().enumerate() {
        if l != reference {
            bail!(
                "viewer {i} saw a different sequence:\n{:?}\nvs\n{:?}",
                super::seqs(l),
                super::seqs(reference)
            );
        }
    }
    Ok(())
}

/// `n` hub processes on `engine` with `extra` settings over [`node_env`]'s.
pub async fn start_nodes_with(
    engine: &Engine,
    n: usize,
    extra: &[(&'static str, &str)],
) -> Result<Vec<HubProcess>> {
    let mut env = engine_env(engine);
    env.extend(extra.iter().map(|(k, v)| (*k, (*v).to_owned())));
    let mut nodes = Vec::with_capacity(n);
    for i in 0..n {
        let log = std::env::temp_dir().join(format!("livehub-node-{}-{i}.log", std::process::id()));
        nodes.push(HubProcess::start_with_log(&env, Some(&log)).await?);
    }
    Ok(nodes)
}

/// The reply to `request_id` (an `ack`, `error`, `reserved`, `rejected`, `order` or
/// `released`), skipping everything else.
pub async fn reply_to(c: &mut Client, request_id: &str) -> Result<serde_json::Value> {
    loop {
        let v = c.next_json().await?;
        if v["request_id"] == request_id {
            return Ok(v);
        }
    }
}

/// Sends `cmd` (whose `request_id` is `rid`) until its answer is not `unavailable`, as an app
/// does: a loaded machine can miss the hub's 450 ms deadline, and the same `request_id` never
/// acts twice.
pub async fn ask(c: &mut Client, cmd: serde_json::Value, rid: &str) -> Result<serde_json::Value> {
    for _ in 0..20 {
        c.send(cmd.clone()).await?;
        let answer = reply_to(c, rid).await?;
        if answer["reason"] != "unavailable" {
            return Ok(answer);
        }
    }
    bail!("{rid}: still unavailable after 20 tries")
}

/// `POST /api/rooms/{room}/commands` on `node` with `token`: the status and the JSON answer.
pub async fn post_command(
    node: &HubProcess,
    room: &str,
    token: &str,
    body: &serde_json::Value,
) -> Result<(u16, serde_json::Value)> {
    let url = format!("http://{}/api/rooms/{room}/commands", node.addr);
    let (status, text) =
        livehub::http_client::request("POST", &url, Some(token), Some(body.to_string())).await?;
    Ok((status, serde_json::from_str(&text).unwrap_or_default()))
}

/// `GET path` on `node`: the status and the body.
pub async fn get(node: &HubProcess, path: &str, token: Option<&str>) -> Result<(u16, String)> {
    let url = format!("http://{}{path}", node.addr);
    Ok(livehub::http_client::request("GET", &url, token, None).await?)
}

/// Every key on `engine` (all of its servers), with its remaining time to live in ms (-1: it
/// never expires), sorted.
pub fn keys_with_ttl(engine: &Engine) -> Result<Vec<(String, i64)>> {
    let mut out = Vec::new();
    for listing in engine.cli_each(&["--scan"])? {
        for key in listing.lines().filter(|k| !k.is_empty()) {
            let ttl = engine
                .cli_each(&["PTTL", key])?
                .iter()
                .filter_map(|t| t.trim().parse::<i64>().ok())
                .max()
                .unwrap_or(-2);
            out.push((key.to_owned(), ttl));
        }
    }
    out.sort();
    Ok(out)
}
