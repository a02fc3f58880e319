//! Small measurement helpers: percentiles and a process's resident memory.

/// The `p`-th percentile (0..=100) of `sorted` (ascending), or 0 when empty.
pub fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

/// Resident set size of `pid` in KiB, from /proc.
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
}

/// Connects a WebSocket client with TCP_NODELAY: without it, small frames from a client wait for
/// delayed ACKs (Nagle) and every latency measured gains tens of milliseconds.
pub async fn connect(
    url: &str,
) -> Result<
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
    tokio_tungstenite::tungstenite::Error,
> {
    tokio_tungstenite::connect_async_with_config(url, None, true)
        .await
        .map(|(ws, _)| ws)
}

/// Opens `room` on the hub at `base` (`ws://host:port`) the way its host does: a host
/// connection that joins and leaves. A hub answers viewers of a room nobody opened `not_live`.
pub async fn open_room(
    base: &str,
    room: &str,
    auth: &livehub::auth::Authenticator,
) -> anyhow::Result<()> {
    use futures_util::StreamExt;
    let token = auth.mint(&livehub::auth::Claims {
        sub: "loadtest-opener".into(),
        name: None,
        role: livehub::protocol::Role::Host,
        room: room.to_owned(),
        exp: Some(livehub::clock::now_ms() / 1000 + 3600),
        src: None,
        aff: None,
    })?;
    let url = format!(
        "{}/ws/rooms/{room}?token={token}",
        base.trim_end_matches('/')
    );
    let limit = std::time::Duration::from_secs(15);
    let fail = |why: String| anyhow::anyhow!("opening room {room} at {base} as its host: {why}");
    let mut ws = match tokio::time::timeout(limit, connect(&url)).await {
        Err(_) => return Err(fail(crate::failures::timed_out(limit))),
        Ok(Err(e)) => return Err(fail(crate::failures::ws_reason(&e))),
        Ok(Ok(ws)) => ws,
    };
    let first = tokio::time::timeout(limit, ws.next()).await;
    let _ = ws.close(None).await;
    match first {
        Ok(Some(Ok(m))) if m.to_text().is_ok_and(|t| t.contains("\"welcome\"")) => Ok(()),
        Ok(Some(Ok(m))) => Err(fail(format!(
            "the hub answered {}",
            m.to_text().unwrap_or("a binary frame")
        ))),
        Ok(Some(Err(e))) => Err(fail(crate::failures::ws_reason(&e))),
        Ok(None) => Err(fail("the connection closed before the welcome".into())),
        Err(_) => Err(fail(format!("no welcome within {} s", limit.as_secs()))),
    }
}

/// `(CPU ticks used so far (user + system, 1/100 s each), RSS in KiB)` of `pid`, from
/// /proc/PID/stat.
pub fn proc_stat(pid: u32) -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    let rss_pages = f.get(21)?.parse::<u64>().ok()?;
    Some((ticks, rss_pages * 4))
}

/// CPU seconds `pid` used so far.
pub fn cpu_secs(pid: u32) -> Option<f64> {
    proc_stat(pid).map(|(ticks, _)| ticks as f64 / 100.0)
}
