//! The load-balancer example, config/nginx.conf, run for real: Debian's nginx in front of two
//! `livehub serve` nodes on one throwaway Redis. Viewers and the host connect through the one
//! proxy URL, least_conn spreads them over both nodes, everyone sees the same events in the same
//! `seq` order, and when a node is killed its viewers reconnect through the same URL with
//! `?since=`, are routed past the dead node, and resume without missing anything.

use crate::common;

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use common::nodes::{SECRET, ack_seq, assert_same_everywhere, durable_until, start_nodes};
use common::redis::RedisServer;
use common::{Client, Ended, HubProcess, WAIT, mint};
use livehub::protocol::{Role, ServerMsg};
use serde_json::json;

/// Where Debian's nginx packages put the binary.
const NGINX: &str = "/usr/sbin/nginx";

/// A foreground nginx (`daemon off`) running config/nginx.conf with this test's ports, in a
/// prefix directory of its own that holds the rendered file, its pid, logs and temp files.
struct Nginx {
    port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

/// config/nginx.conf with `listen 8080;` replaced by `port` and its three upstream `server`
/// lines by `nodes` (keeping their `max_fails`/`fail_timeout`). Fails if the file no longer has
/// those lines, so the test cannot quietly run some other configuration.
fn render(conf: &str, port: u16, nodes: &[SocketAddr]) -> Result<String> {
    let (mut listens, mut servers) = (0, 0);
    let mut out = String::with_capacity(conf.len());
    for line in conf.lines() {
        let indent = &line[..line.len() - line.trim_start().len()];
        let t = line.trim();
        if t == "listen 8080;" {
            listens += 1;
            writeln!(out, "{indent}listen 127.0.0.1:{port};")?;
        } else if let Some(rest) = t.strip_prefix("server 127.0.0.1:808") {
            servers += 1;
            if servers == 1 {
                let params = rest.split_once(' ').map_or(";", |(_, p)| p);
                for n in nodes {
                    writeln!(out, "{indent}server {n} {params}")?;
                }
            }
        } else {
            writeln!(out, "{line}")?;
        }
    }
    ensure!(
        listens == 1 && servers == 3,
        "config/nginx.conf should have one `listen 8080;` and three `server 127.0.0.1:808N ...;` \
         lines for this test to replace; found {listens} and {servers}"
    );
    Ok(out)
}

impl Nginx {
    /// Renders the example for `nodes`, starts nginx and waits until a node answers through it.
    async fn start(nodes: &[HubProcess]) -> Result<Self> {
        ensure!(
            Path::new(NGINX).exists(),
            "{NGINX} is missing: run the tests with `bash scripts/test.sh`, which installs it, \
             or: sudo apt-get install -y nginx"
        );
        let conf_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/nginx.conf");
        let conf = std::fs::read_to_string(&conf_path)
            .with_context(|| format!("reading {}", conf_path.display()))?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let addrs: Vec<SocketAddr> = nodes.iter().map(|n| n.addr).collect();
        let dir = std::env::temp_dir().join(format!("livehub-nginx-{}-{port}", std::process::id()));
        std::fs::create_dir_all(dir.join("logs"))?;
        let mut proxy = Nginx {
            port,
            dir,
            child: None,
        };
        let rendered = proxy.dir.join("nginx.conf");
        std::fs::write(&rendered, render(&conf, port, &addrs)?)?;
        let stderr = std::fs::File::create(proxy.dir.join("logs/stderr.log"))?;
        let mut prefix = proxy.dir.clone().into_os_string();
        prefix.push("/");
        proxy.child = Some(
            Command::new(NGINX)
                .arg("-p")
                .arg(prefix)
                .arg("-c")
                .arg(&rendered)
                .args(["-g", "daemon off;"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(stderr)
                .spawn()
                .with_context(|| format!("starting {NGINX}"))?,
        );
        let url = format!("http://127.0.0.1:{port}/readyz");
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(status) = proxy
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok())
                .flatten()
            {
                bail!("nginx exited with {status}:\n{}", proxy.logs());
            }
            if let Ok((200, _)) = livehub::http_client::request("GET", &url, None, None).await {
                return Ok(proxy);
            }
            ensure!(
                Instant::now() < deadline,
                "nginx did not proxy /readyz:\n{}",
                proxy.logs()
            );
            tokio::time::sleep(Duration::from_millis(20)).await; // polling for nginx to bind
        }
    }

    /// `ws://PROXY/ws/rooms/{room}?token=…` for `user` with `role`, resuming after `since`.
    fn ws_url(&self, room: &str, role: Role, user: &str, since: Option<u64>) -> String {
        let token = mint(SECRET, role, room, user);
        let mut url = format!("ws://127.0.0.1:{}/ws/rooms/{room}?token={token}", self.port);
        if let Some(s) = since {
            write!(url, "&since={s}").expect("writing to a String");
        }
        url
    }

    /// nginx's error log (and anything it printed before opening it).
    fn logs(&self) -> String {
        ["logs/stderr.log", "logs/error.log"]
            .iter()
            .filter_map(|f| std::fs::read_to_string(self.dir.join(f)).ok())
            .collect()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // SIGTERM, not SIGKILL: a killed master leaves its workers running, still listening.
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(5);
            while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10)); // waiting for the workers to exit
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Open WebSocket connections on `node`, from its `livehub_connections` gauge.
async fn connections(node: &HubProcess) -> Result<u64> {
    let url = format!("http://{}/metrics", node.addr);
    let (status, text) = livehub::http_client::request("GET", &url, None, None).await?;
    ensure!(status == 200, "GET {url}: {status}");
    // The gauge appears once the node has counted a first connection.
    let Some(v) = text
        .lines()
        .find_map(|l| l.strip_prefix("livehub_connections "))
    else {
        return Ok(0);
    };
    Ok(v.trim().parse::<f64>()? as u64)
}

/// Connects through the proxy and reads the welcome; returns the index in `nodes` of the node
/// that took the connection (the one whose gauge went up: the hub counts a connection before it
/// sends the welcome).
async fn join_via(
    proxy: &Nginx,
    nodes: &[&HubProcess],
    room: &str,
    role: Role,
    user: &str,
    since: Option<u64>,
) -> Result<(Client, ServerMsg, usize)> {
    let mut before = Vec::new();
    for n in nodes {
        before.push(connections(n).await?);
    }
    let mut c = Client::connect(&proxy.ws_url(room, role, user, since))
        .await
        .with_context(|| format!("{user} connecting through nginx:\n{}", proxy.logs()))?;
    let welcome = c.next_of("welcome").await?;
    let mut landed = Vec::new();
    for (i, n) in nodes.iter().enumerate() {
        if connections(n).await? > before[i] {
            landed.push(i);
        }
    }
    let [node] = landed[..] else {
        bail!("{user}'s connection should be counted on exactly one node, not {landed:?}")
    };
    Ok((c, welcome, node))
}

fn product(id: &str) -> serde_json::Value {
    json!({"id": id, "title": format!("Product {id}"), "price_cents": 2500})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_spreads_viewers_over_nodes_and_a_dead_nodes_viewers_resume_through_it() -> Result<()>
{
    let redis = RedisServer::start()?;
    let mut nodes = start_nodes(&redis.url(), 2).await?;
    let proxy = Nginx::start(&nodes).await?;
    let room = "proxied";
    let all: Vec<&HubProcess> = nodes.iter().collect();
    // A room exists once its host opens it.
    common::nodes::open_room(&nodes[0], room).await?;
    // The opener's close reaches its node's gauge later (much later on a loaded machine); a
    // join counted in the same instant would look like no join at all.
    for n in &all {
        let deadline = Instant::now() + WAIT;
        while connections(n).await? != 0 {
            ensure!(Instant::now() < deadline, "the opener stayed counted");
            tokio::time::sleep(Duration::from_millis(20)).await; // polling a gauge
        }
    }

    // Six viewers and the host, all through the one proxy URL.
    let mut viewers = Vec::new();
    let mut per_node = [0; 2];
    for i in 0..6 {
        let user = format!("v{i}");
        let (c, _, node) = join_via(&proxy, &all, room, Role::Viewer, &user, None).await?;
        per_node[node] += 1;
        viewers.push((c, node, user));
    }
    assert_eq!(
        per_node,
        [3, 3],
        "least_conn spreads viewers evenly over both nodes"
    );
    let (mut host, _, host_node) = join_via(&proxy, &all, room, Role::Host, "host", None).await?;

    host.send(json!({"type": "pin", "product": product("p1"), "request_id": "pin1"}))
        .await?;
    for i in 0..3 {
        host.send(json!({"type": "announce", "text": format!("deal soon {i}"), "request_id": format!("a{i}")}))
            .await?;
    }
    host.send(json!({"type": "pin", "product": product("p2"), "request_id": "pin2"}))
        .await?;
    let last = ack_seq(&mut host, "pin2").await?;
    assert_eq!(last, 5);
    let mut lists = Vec::new();
    for (c, _, _) in viewers.iter_mut() {
        lists.push(durable_until(c, last).await?);
    }
    assert_same_everywhere(&lists, 1)?;
    // /metrics through the proxy answers only its own host (allow 127.0.0.1; deny all).
    let metrics = format!("http://127.0.0.1:{}/metrics", proxy.port);
    let (status, _) = livehub::http_client::request("GET", &metrics, None, None).await?;
    assert_eq!(status, 200);
    // The nodes listen on loopback, so their development tokens are on; through the proxy (which
    // connects from loopback and here even passes a loopback Host) they are still refused.
    let dev = format!(
        "http://127.0.0.1:{}/api/dev/token?room={room}&role=host",
        proxy.port
    );
    let (status, body) = livehub::http_client::request("GET", &dev, None, None).await?;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("through a proxy"), "{body}");

    // The node without the host dies; its viewers' connections through nginx drop.
    let doomed_node = 1 - host_node;
    let (doomed, mut survivors): (Vec<_>, Vec<_>) =
        viewers.into_iter().partition(|(_, n, _)| *n == doomed_node);
    let survivor = nodes.remove(host_node);
    nodes.remove(0).kill().await;
    let mut cut_off = Vec::new();
    for (mut c, _, user) in doomed {
        // nginx only relays frames: a node that vanished sends no close frame to pass on.
        assert_eq!(c.closed().await?, Ended::Dropped);
        cut_off.push(user);
    }

    // The show goes on meanwhile.
    for i in 0..3 {
        host.send(json!({"type": "announce", "text": format!("while away {i}"), "request_id": format!("w{i}")}))
            .await?;
    }
    host.send(json!({"type": "unpin", "request_id": "unpin"}))
        .await?;
    let after = ack_seq(&mut host, "unpin").await?;

    // They reconnect through the same URL with ?since=, land on the live node and miss nothing.
    let mut lists = Vec::new();
    let mut resumed = Vec::new(); // kept open, so the next one's count on the node is exact
    for user in &cut_off {
        let (mut c, welcome, _) =
            join_via(&proxy, &[&survivor], room, Role::Viewer, user, Some(last)).await?;
        assert!(
            matches!(welcome, ServerMsg::Welcome { resumed: true, .. }),
            "{welcome:?}"
        );
        lists.push(durable_until(&mut c, after).await?);
        resumed.push(c);
    }
    for (c, _, _) in survivors.iter_mut() {
        let mut l = durable_until(c, after).await?;
        l.retain(|m| m.seq().is_some_and(|s| s > last));
        lists.push(l);
    }
    assert_same_everywhere(&lists, last + 1)?;
    assert_eq!(lists[0].len(), 4);

    // The first reconnects were sent to the dead node (least_conn: it had no connections left),
    // refused, and retried on the live one within the same request (proxy_next_upstream);
    // max_fails then took the dead node out.
    let log = proxy.logs();
    assert!(
        log.contains("Connection refused") && log.contains("upstream server temporarily disabled"),
        "nginx should have skipped the dead node:\n{log}"
    );
    survivor.kill().await;
    Ok(())
}
