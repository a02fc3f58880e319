//! The one way livehub talks to Redis: one connection (a single server through a connection
//! manager that reconnects by itself, or a Redis Cluster through the cluster client that follows
//! the cluster's slots), driven by a runtime of its own (one thread) so Redis I/O is never
//! starved by fan-out work on the hub's runtime, and a script runner (EVALSHA, reloading on
//! NOSCRIPT). The inventory and the bus both take a [`RedisIo`]. Every call's outcome feeds one
//! [`Health`], which logs Redis's reachability as state changes (one line per outage).
//! [`clock`] follows Redis's clock for [`crate::clock::now_ms`].

pub mod clock;
pub mod failure;
pub mod health;

pub use failure::Failure;
pub use health::{Health, Refusal};

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClientBuilder;
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, FromRedisValue, Pipeline, RedisFuture, Script, Value};

/// Why a Redis call failed: Redis did not answer in time or at all (or refuses the hub), or it
/// answered something the caller cannot use.
#[derive(Clone, Debug, thiserror::Error)]
pub enum RedisIoError {
    /// An outage or a refusal ([`Failure::Outage`], [`Failure::Refused`]): a client is told
    /// `unavailable`, and may retry.
    #[error("redis unavailable: {0}")]
    Unavailable(String),
    /// A bug ([`Failure::Bug`]: a script that raised an error, a reply the hub cannot read) or
    /// a failure of the hub's own Redis plumbing: a client is told `internal`.
    #[error("redis: {0}")]
    Internal(String),
}

impl From<redis::RedisError> for RedisIoError {
    /// Told apart by [`failure::classify`]: an outage is `Unavailable` with Redis's reason; a
    /// [`health::Refusal`] (`NOAUTH`, `WRONGPASS`, `NOPERM`) is `Unavailable` and says what is
    /// wrong in the hub's words ("Redis refused the hub: it requires a password and redis.url
    /// has none"), never Redis's own text; a script or command Redis answered with an error is
    /// `Internal`.
    fn from(e: redis::RedisError) -> Self {
        match failure::classify(&e) {
            Failure::Outage => RedisIoError::Unavailable(e.to_string()),
            Failure::Refused(r) => RedisIoError::Unavailable(r.to_string()),
            Failure::Bug => RedisIoError::Internal(format!("script or command failed: {e}")),
        }
    }
}

/// Where Redis is: one server, or the seed nodes of a Redis Cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RedisTarget {
    /// `redis://host:port/db`.
    Single(String),
    /// `redis://host:port` of one or more cluster nodes (the rest are discovered).
    Cluster(Vec<String>),
}

impl std::fmt::Display for RedisTarget {
    /// `redis.url` as configured (a cluster's seeds comma-separated), password included:
    /// show it through [`Health::shown_url`].
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RedisTarget::Single(url) => f.write_str(url),
            RedisTarget::Cluster(nodes) => f.write_str(&nodes.join(",")),
        }
    }
}

impl RedisTarget {
    /// `redis.url` as configured: with `cluster`, a comma-separated list of seed nodes.
    pub fn from_config(url: &str, cluster: bool) -> Self {
        if cluster {
            RedisTarget::Cluster(url.split(',').map(|u| u.trim().to_owned()).collect())
        } else {
            RedisTarget::Single(url.to_owned())
        }
    }

    /// True for a Redis Cluster.
    pub fn is_cluster(&self) -> bool {
        matches!(self, RedisTarget::Cluster(_))
    }
}

/// A connection to a single server (with the [`Health`] its retry consults) or a cluster;
/// cloning shares it.
#[derive(Clone)]
pub enum Conn {
    Single(ConnectionManager, Arc<Health>),
    Cluster(ClusterConnection),
}

/// A single server's connection manager keeps the outcome of its last reconnection attempt:
/// after an outage, the first command on it is refused with the outage's "connection refused"
/// while Redis is already back, and only that refusal starts the next attempt. So within
/// [`health::STALE_GRACE`] of Redis answering again on another connection
/// ([`Health::just_recovered`]), a refused command is sent once more, on the attempt the refusal
/// started: a host's first command after Redis returns is not told `unavailable` by a connection
/// left from the outage. A refused connection carried nothing, so nothing runs twice; during an
/// outage a refusal is answered at once.
impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Single(c, health) => Box::pin(async move {
                match c.req_packed_command(cmd).await {
                    Err(e) if e.is_connection_refusal() && health.just_recovered() => {
                        c.req_packed_command(cmd).await
                    }
                    done => done,
                }
            }),
            Conn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Single(c, health) => Box::pin(async move {
                match c.req_packed_commands(pipeline, offset, count).await {
                    Err(e) if e.is_connection_refusal() && health.just_recovered() => {
                        c.req_packed_commands(pipeline, offset, count).await
                    }
                    done => done,
                }
            }),
            Conn::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Single(c, _) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
        }
    }
}

/// A shared Redis connection with its own I/O runtime. Cloning shares both.
#[derive(Clone)]
pub struct RedisIo {
    inner: Arc<Inner>,
}

struct Inner {
    target: RedisTarget,
    health: Arc<Health>,
    /// The single server's client, for its pub/sub connections.
    client: Option<redis::Client>,
    timeout: Duration,
    conn: Conn,
    io: Option<tokio::runtime::Runtime>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(rt) = self.io.take() {
            // Allowed from async contexts, unlike dropping the runtime.
            rt.shutdown_background();
        }
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, RedisIoError> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("livehub-redis")
        .enable_all()
        .build()
        .map_err(|e| RedisIoError::Internal(format!("redis I/O runtime: {e}")))
}

/// Receives a cluster connection's pushes (pub/sub messages, re-subscriptions), without
/// blocking: it runs on the connection's own task.
pub type PushHandler = Box<dyn Fn(redis::PushInfo) -> Result<(), ()> + Send + Sync>;

/// A cluster client for `nodes`; `push` receives pub/sub messages (RESP3) when given.
pub fn cluster_client(
    nodes: &[String],
    timeout: Duration,
    push: Option<PushHandler>,
) -> Result<redis::cluster::ClusterClient, RedisIoError> {
    let mut b = ClusterClientBuilder::new(nodes.to_vec())
        .connection_timeout(timeout)
        .response_timeout(timeout)
        .retries(2)
        .min_retry_wait(50)
        .max_retry_wait(1000);
    if let Some(push) = push {
        b = b
            .use_protocol(redis::ProtocolVersion::RESP3)
            .push_sender(push);
    }
    b.build()
        .map_err(|e| RedisIoError::Internal(format!("redis.url: {e}")))
}

impl RedisIo {
    /// Connects to `target`. A single server is connected lazily (the hub starts while Redis is
    /// down and the manager reconnects by itself, with backoff); a cluster must answer at
    /// start so its slots are known. `timeout` bounds each connection attempt and each reply.
    pub async fn connect(target: RedisTarget, timeout: Duration) -> Result<Self, RedisIoError> {
        let health = Arc::new(Health::new(&target.to_string()));
        Self::connect_with(target, timeout, health).await
    }

    /// Another connection to the same Redis, on an I/O thread of its own, whose outages are
    /// told by the same [`Health`] (said once, whichever connection sees them first): for work
    /// that must not wait in this connection's pipeline (the stock, issue 20).
    pub async fn another(&self) -> Result<Self, RedisIoError> {
        let inner = &self.inner;
        Self::connect_with(
            inner.target.clone(),
            inner.timeout,
            Arc::clone(&inner.health),
        )
        .await
    }

    async fn connect_with(
        target: RedisTarget,
        timeout: Duration,
        health: Arc<Health>,
    ) -> Result<Self, RedisIoError> {
        let io = runtime()?;
        let mut single = None;
        let conn = match &target {
            RedisTarget::Single(url) => {
                let client = redis::Client::open(url.as_str())
                    .map_err(|e| RedisIoError::Internal(format!("redis.url: {e}")))?;
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(timeout))
                    .set_response_timeout(Some(timeout))
                    .set_number_of_retries(2)
                    .set_min_delay(Duration::from_millis(50))
                    .set_max_delay(Duration::from_millis(1000));
                single = Some(client.clone());
                let _inside = io.enter();
                Conn::Single(
                    ConnectionManager::new_lazy_with_config(client, config)?,
                    Arc::clone(&health),
                )
            }
            RedisTarget::Cluster(nodes) => {
                let client = cluster_client(nodes, timeout, None)?;
                let connect = io.spawn(async move { client.get_async_connection().await });
                let conn = tokio::time::timeout(timeout * 2, connect)
                    .await
                    .map_err(|_| {
                        RedisIoError::Unavailable(format!(
                            "no Redis Cluster node answered: {}",
                            health::redact(&nodes.join(","))
                        ))
                    })?
                    .map_err(|e| RedisIoError::Internal(format!("redis task: {e}")))?
                    .map_err(|e| {
                        RedisIoError::Unavailable(format!(
                            "cannot reach Redis Cluster {}: {}",
                            health::redact(&nodes.join(",")),
                            health::reason(&e)
                        ))
                    })?;
                Conn::Cluster(conn)
            }
        };
        Ok(RedisIo {
            inner: Arc::new(Inner {
                health,
                target,
                client: single,
                timeout,
                conn,
                io: Some(io),
            }),
        })
    }

    /// The single server's client (None on a cluster), for pub/sub connections.
    pub fn client(&self) -> Option<&redis::Client> {
        self.inner.client.as_ref()
    }

    /// Where this connection goes.
    pub fn target(&self) -> &RedisTarget {
        &self.inner.target
    }

    /// Redis's reachability as the calls through this connection found it.
    pub fn health(&self) -> &Health {
        &self.inner.health
    }

    /// Asks Redis once (`PING`) and logs what it found: "Redis at … ready", the one line
    /// saying it cannot be reached (the hub still starts, and keeps retrying), or the error
    /// line saying it refuses the hub and how to fix `redis.url`. For `livehub serve` at start.
    pub async fn check(&self) -> Result<(), RedisIoError> {
        self.exec(
            |mut conn| async move { redis::cmd("PING").query_async::<String>(&mut conn).await },
        )
        .await
        .map(drop)
    }

    /// The deadline of each connection attempt and each reply.
    pub fn timeout(&self) -> Duration {
        self.inner.timeout
    }

    /// A handle on the shared connection, for fire-and-forget commands run with [`Self::spawn`].
    pub fn conn(&self) -> Conn {
        self.inner.conn.clone()
    }

    /// Spawns `fut` on the Redis I/O runtime (for tasks that only talk to Redis).
    pub fn spawn<F>(&self, fut: F) -> Option<tokio::task::JoinHandle<F::Output>>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.inner.io.as_ref().map(|io| io.spawn(fut))
    }

    /// Runs `f` with a connection on the Redis I/O runtime and waits for it here. A call that
    /// Redis answers with an error that is a bug ([`Failure::Bug`]) is logged as an error and
    /// counted on `livehub_redis_script_errors_total`, even when the caller stopped waiting.
    pub async fn exec<T, F, Fut>(&self, f: F) -> Result<T, RedisIoError>
    where
        F: FnOnce(Conn) -> Fut,
        Fut: Future<Output = Result<T, redis::RedisError>> + Send + 'static,
        T: Send + 'static,
    {
        let call = f(self.conn());
        let health = Arc::clone(&self.inner.health);
        // The outcome is noted on the I/O runtime, so it counts even when the caller has
        // stopped waiting for it.
        let task = self
            .spawn(async move {
                let result = call.await;
                health.record(&result);
                if let Err(e) = &result {
                    note_bug(e);
                }
                result
            })
            .ok_or_else(|| RedisIoError::Unavailable("redis client is shutting down".into()))?;
        task.await
            .map_err(|e| RedisIoError::Internal(format!("redis task: {e}")))?
            .map_err(RedisIoError::from)
    }

    /// Runs `script` (EVALSHA, loading it on NOSCRIPT) with `keys` and `args`. All keys must
    /// share one hash tag, so the script runs on one cluster slot.
    pub async fn run<T>(
        &self,
        script: &Arc<Script>,
        keys: &[String],
        args: &[String],
    ) -> Result<T, RedisIoError>
    where
        T: FromRedisValue + Send + 'static,
    {
        let (script, keys, args) = (Arc::clone(script), keys.to_vec(), args.to_vec());
        self.exec(move |mut conn| async move {
            let mut inv = script.prepare_invoke();
            for k in &keys {
                inv.key(k);
            }
            for a in &args {
                inv.arg(a);
            }
            inv.invoke_async::<T>(&mut conn).await
        })
        .await
    }
}

/// Logs and counts `e` when it is a bug rather than an outage or a refusal (which [`Health`]
/// tells, once per state change).
fn note_bug(e: &redis::RedisError) {
    if failure::classify(e) == Failure::Bug {
        metrics::counter!(crate::metrics::REDIS_SCRIPT_ERRORS).increment(1);
        tracing::error!(
            error = %e,
            "Redis answered a script or command of the hub's with an error: a bug in livehub \
             (or data it did not write), not an outage; clients are told `internal`"
        );
    }
}

/// The names `lua` reads from the table `table` (`table.name`), sorted and deduplicated: for
/// unit tests that pin a script's argument names to the Rust that sends them.
#[cfg(test)]
pub(crate) fn lua_fields(lua: &str, table: &str) -> Vec<String> {
    let pat = format!("{table}.");
    let mut out: Vec<String> = lua
        .match_indices(&pat)
        .filter(|(at, _)| {
            let before = lua[..*at].chars().next_back();
            !before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '.')
        })
        .map(|(at, _)| {
            lua[at + pat.len()..]
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect()
        })
        .collect();
    out.sort();
    out.dedup();
    out
}
