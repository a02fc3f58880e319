//! A throwaway `redis-server` on a free port, owned by one test: started with no persistence
//! (or with AOF when a test needs to survive a restart), stopped when dropped. Tests never touch
//! a Redis they did not start.
//!
//! Starting a 3-master cluster takes seconds, so tests that neither stop, flush nor inspect their
//! Redis as a whole share one server ([`shared_server`]) and one cluster ([`shared_cluster`]) per
//! test process, each test under a key prefix of its own ([`unique_prefix`]). The shared ones are
//! never dropped (they live in `static`s): each is started under a `sh` that holds the read end
//! of a pipe from the test process and kills the server when the pipe closes, that is when the
//! test process exits, however it exits.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// A redis-server child process.
pub struct RedisServer {
    pub port: u16,
    dir: PathBuf,
    persist: bool,
    /// More `redis-server` arguments (cluster mode).
    extra: Vec<String>,
    /// Shared by the tests of this process: dies with the process (see the module's doc).
    shared: bool,
    child: Option<Child>,
}

/// Kills the server (`"$@"`) when its standard input, a pipe from the test process, closes, and
/// removes its directory (`$1`).
const DIE_WITH_THE_TEST_PROCESS: &str =
    r#"dir=$1; shift; "$@" </dev/null & r=$!; read -r _; kill -9 $r; wait $r; rm -rf "$dir""#;

/// A key prefix no other test of this process uses (for a test on a shared Redis).
pub fn unique_prefix() -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    format!("t{}", N.fetch_add(1, Ordering::Relaxed))
}

/// The in-memory redis-server shared by the tests of this process, started on first use.
pub fn shared_server() -> &'static RedisServer {
    static SERVER: OnceLock<RedisServer> = OnceLock::new();
    SERVER.get_or_init(|| {
        RedisServer::launch_with(free_port().expect("a free port"), false, Vec::new(), true)
            .expect("the shared redis-server")
    })
}

/// The in-memory 3-master Redis Cluster shared by the tests of this process, started on first
/// use.
pub fn shared_cluster() -> &'static RedisCluster {
    static CLUSTER: OnceLock<RedisCluster> = OnceLock::new();
    CLUSTER.get_or_init(|| RedisCluster::launch(false, true).expect("the shared redis cluster"))
}

/// A port nothing listens on, below the kernel's ephemeral range (`net.ipv4.ip_local_port_range`,
/// 32768 and up by default), for a server a test may stop and start again. A port from the
/// ephemeral range (what binding port 0 gives) can be handed to any process's outgoing
/// connection while the server is down, and a client retrying against it can connect to itself
/// (TCP simultaneous open); a soak beside a second suite, thousands of connections a second,
/// lost a restarted cluster's connections that way or alike. `pair` also needs `port + pair` free
/// (a cluster node's bus port), kept below the ephemeral range too.
///
/// A port is handed out once per process: a test that keeps its port free on purpose (Redis
/// down, to be started later) must not find another test's cluster node there, answering for
/// the Redis it waits for (the sequences for `pair` 0 and 10,000 run modulo different ranges,
/// so they meet).
pub fn stable_port(pair: u16) -> Result<u16> {
    use std::collections::HashSet;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    static GIVEN: Mutex<Option<HashSet<u16>>> = Mutex::new(None);
    let ephemeral = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|r| r.split_whitespace().next()?.parse::<u32>().ok())
        .unwrap_or(32_768);
    let high = ephemeral.saturating_sub(u32::from(pair));
    let low = 10_000u32.min(high.saturating_sub(1_000)).max(1_024);
    anyhow::ensure!(
        high > low + 100,
        "no ports below the ephemeral range ({ephemeral})"
    );
    let seed = std::process::id().wrapping_mul(2_654_435_761)
        ^ std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
    for _ in 0..500 {
        let n = NEXT.fetch_add(7_919, Ordering::Relaxed);
        let port = u16::try_from(low + seed.wrapping_add(n) % (high - low))?;
        let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
        let given = given.get_or_insert_with(HashSet::new);
        let free =
            |p: u16| !given.contains(&p) && std::net::TcpListener::bind(("127.0.0.1", p)).is_ok();
        if free(port) && (pair == 0 || free(port + pair)) {
            given.insert(port);
            given.insert(port + pair);
            return Ok(port);
        }
    }
    bail!("no free port below the ephemeral range")
}

fn free_port() -> Result<u16> {
    stable_port(0)
}

impl RedisServer {
    /// Starts an in-memory server (`--save "" --appendonly no`).
    pub fn start() -> Result<Self> {
        Self::launch(false)
    }

    /// Starts a server with AOF persistence (`appendfsync always`) in its own directory.
    pub fn start_persistent() -> Result<Self> {
        Self::launch(true)
    }

    /// Starts an in-memory server with more `redis-server` arguments, e.g.
    /// `&["--requirepass", "s3cret"]` (then [`RedisServer::cli`] authenticates with it).
    pub fn start_with_args(args: &[&str]) -> Result<Self> {
        Self::launch_on(
            free_port()?,
            false,
            args.iter().map(|a| a.to_string()).collect(),
        )
    }

    /// The `--requirepass` the server was started with, if any.
    fn password(&self) -> Option<&str> {
        let at = self.extra.iter().position(|a| a == "--requirepass")?;
        self.extra.get(at + 1).map(String::as_str)
    }

    fn launch(persist: bool) -> Result<Self> {
        Self::launch_on(free_port()?, persist, Vec::new())
    }

    fn launch_on(port: u16, persist: bool, extra: Vec<String>) -> Result<Self> {
        Self::launch_with(port, persist, extra, false)
    }

    fn launch_with(port: u16, persist: bool, extra: Vec<String>, shared: bool) -> Result<Self> {
        let dir = std::env::temp_dir().join(format!("livehub-redis-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let mut s = RedisServer {
            port,
            dir,
            persist,
            extra,
            shared,
            child: None,
        };
        s.spawn()?;
        Ok(s)
    }

    fn spawn(&mut self) -> Result<()> {
        let mut cmd = if self.shared {
            let mut sh = Command::new("sh");
            sh.args(["-c", DIE_WITH_THE_TEST_PROCESS, "sh"])
                .arg(&self.dir)
                .arg("redis-server")
                .stdin(Stdio::piped());
            sh
        } else {
            Command::new("redis-server")
        };
        cmd.args([
            "--port",
            &self.port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
        ])
        .arg("--dir")
        .arg(&self.dir)
        .args(&self.extra)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
        if self.persist {
            cmd.args(["--appendonly", "yes", "--appendfsync", "always"]);
        } else {
            cmd.args(["--appendonly", "no"]);
        }
        let child = cmd.spawn().context(
            "starting redis-server (run the tests with `bash scripts/test.sh`, which installs it, \
             or: sudo apt-get install -y redis-server)",
        )?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if self.ping() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20)); // polling for the server to accept
        }
        bail!("redis-server on port {} did not answer PING", self.port)
    }

    fn ping(&self) -> bool {
        use std::io::{Read, Write};
        let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(Duration::from_millis(200)));
        let mut buf = [0u8; 7];
        // A server with a password answers, refusing: it is up all the same.
        s.write_all(b"PING\r\n").is_ok()
            && s.read_exact(&mut buf).is_ok()
            && (&buf == b"+PONG\r\n" || &buf == b"-NOAUTH")
    }

    /// `redis://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Runs a command with `redis-cli` against this server; returns its output.
    pub fn cli(&self, args: &[&str]) -> Result<String> {
        let mut cmd = Command::new("redis-cli");
        cmd.args(["-p", &self.port.to_string()]);
        if let Some(password) = self.password() {
            cmd.args(["-a", password, "--no-auth-warning"]);
        }
        let out = cmd
            .args(args)
            .output()
            .context("running redis-cli (installed with redis-server: redis-tools)")?;
        if !out.status.success() {
            bail!(
                "redis-cli {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Stops the server (SIGTERM: with AOF on, what was written is on disk).
    pub fn stop(&mut self) -> Result<()> {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            child.wait()?;
        }
        Ok(())
    }

    /// Starts it again on the same port and directory.
    pub fn restart(&mut self) -> Result<()> {
        self.spawn()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A free port whose cluster bus port (port + 10000) is free too.
fn free_cluster_port() -> Result<u16> {
    stable_port(10_000)
}

/// A throwaway 3-master Redis Cluster (no replicas): three `redis-server --cluster-enabled yes`
/// joined with `redis-cli --cluster create`, stopped when dropped.
pub struct RedisCluster {
    pub nodes: Vec<RedisServer>,
}

impl RedisCluster {
    /// Starts the cluster (with AOF when `persist`, so it survives a stop and restart) and waits
    /// until it reports `cluster_state:ok`.
    pub fn start(persist: bool) -> Result<Self> {
        Self::launch(persist, false)
    }

    fn launch(persist: bool, shared: bool) -> Result<Self> {
        let mut nodes = Vec::new();
        for _ in 0..3 {
            let port = free_cluster_port()?;
            let extra = [
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                "nodes.conf",
                "--cluster-node-timeout",
                "2000",
            ];
            let extra = extra.iter().map(|s| s.to_string()).collect();
            nodes.push(RedisServer::launch_with(port, persist, extra, shared)?);
        }
        let addrs: Vec<String> = nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        let out = Command::new("redis-cli")
            .arg("--cluster")
            .arg("create")
            .args(&addrs)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .output()
            .context("running redis-cli --cluster create")?;
        if !out.status.success() {
            bail!("cluster create: {}", String::from_utf8_lossy(&out.stdout));
        }
        let cluster = RedisCluster { nodes };
        cluster.wait_ok()?;
        Ok(cluster)
    }

    /// Waits until every node says `cluster_state:ok`.
    pub fn wait_ok(&self) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ok = self.nodes.iter().all(|n| {
                n.cli(&["CLUSTER", "INFO"])
                    .is_ok_and(|i| i.contains("cluster_state:ok"))
            });
            if ok {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("the cluster did not reach cluster_state:ok");
            }
            std::thread::sleep(Duration::from_millis(100)); // polling the cluster state
        }
    }

    /// The seed list for `redis.url` with `redis.cluster = true`.
    pub fn url(&self) -> String {
        let urls: Vec<String> = self.nodes.iter().map(RedisServer::url).collect();
        urls.join(",")
    }

    /// Runs `args` with redis-cli on every node.
    pub fn cli_all(&self, args: &[&str]) -> Result<()> {
        for n in &self.nodes {
            n.cli(args)?;
        }
        Ok(())
    }

    /// Stops every node.
    pub fn stop(&mut self) -> Result<()> {
        for n in &mut self.nodes {
            n.stop()?;
        }
        Ok(())
    }

    /// Starts every node again and waits for the cluster.
    pub fn restart(&mut self) -> Result<()> {
        for n in &mut self.nodes {
            n.restart()?;
        }
        self.wait_ok()
    }
}

/// The Redis a multi-node test runs on: one server, or a 3-master cluster, of its own or shared.
pub enum Engine {
    Single(RedisServer),
    Cluster(RedisCluster),
    /// The test process's shared server, or its shared cluster when `cluster`, with the test's
    /// nodes under a key prefix of their own: for a test that neither stops, flushes nor
    /// inspects its Redis as a whole, nor kills its clients.
    Shared {
        cluster: bool,
        prefix: String,
    },
}

impl Engine {
    /// Starts the engine of `kind` ("single" or "cluster"), persistent when asked.
    pub fn start(kind: &str, persist: bool) -> Result<Self> {
        Ok(match kind {
            "cluster" => Engine::Cluster(RedisCluster::start(persist)?),
            _ if persist => Engine::Single(RedisServer::start_persistent()?),
            _ => Engine::Single(RedisServer::start()?),
        })
    }

    /// The shared engine of `kind` ("single" or "cluster"), under a key prefix of its own.
    pub fn shared(kind: &str) -> Self {
        Engine::Shared {
            cluster: kind == "cluster",
            prefix: unique_prefix(),
        }
    }

    /// `redis.url` for the hub.
    pub fn url(&self) -> String {
        match self {
            Engine::Single(s) => s.url(),
            Engine::Cluster(c) => c.url(),
            Engine::Shared { cluster: true, .. } => shared_cluster().url(),
            Engine::Shared { .. } => shared_server().url(),
        }
    }

    /// `redis.key_prefix` for the hub (the default one on an engine of the test's own).
    pub fn key_prefix(&self) -> &str {
        match self {
            Engine::Shared { prefix, .. } => prefix,
            _ => "lh",
        }
    }

    /// True for a cluster.
    pub fn is_cluster(&self) -> bool {
        matches!(
            self,
            Engine::Cluster(_) | Engine::Shared { cluster: true, .. }
        )
    }

    /// Runs `args` on every server.
    pub fn cli_all(&self, args: &[&str]) -> Result<()> {
        self.cli_each(args).map(|_| ())
    }

    /// Runs `args` on every server; their outputs.
    pub fn cli_each(&self, args: &[&str]) -> Result<Vec<String>> {
        match self {
            Engine::Single(s) => Ok(vec![s.cli(args)?]),
            Engine::Cluster(c) => c.nodes.iter().map(|n| n.cli(args)).collect(),
            Engine::Shared { cluster: true, .. } => {
                shared_cluster().nodes.iter().map(|n| n.cli(args)).collect()
            }
            Engine::Shared { .. } => Ok(vec![shared_server().cli(args)?]),
        }
    }

    /// Stops every server (not a shared engine's: other tests are using it).
    pub fn stop(&mut self) -> Result<()> {
        match self {
            Engine::Single(s) => s.stop(),
            Engine::Cluster(c) => c.stop(),
            Engine::Shared { .. } => bail!("a shared Redis is never stopped"),
        }
    }

    /// Starts every server again.
    pub fn restart(&mut self) -> Result<()> {
        match self {
            Engine::Single(s) => s.restart(),
            Engine::Cluster(c) => c.restart(),
            Engine::Shared { .. } => bail!("a shared Redis is never restarted"),
        }
    }
}

/// Each Redis call's deadline in the suites that drive a store or the inventory directly: they
/// check answers, not speed, and on two cores running four tests and Chromium beside them a
/// call (a thousand-hold deal on the Cluster, a funnel flush) has taken over 2 s. Hubs keep
/// their own deadlines.
pub const CALL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);
