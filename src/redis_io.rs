//! The one way livehub talks to Redis: a connection manager that reconnects by itself, driven by
//! a runtime of its own (one thread) so Redis I/O is never starved by fan-out work on the hub's
//! runtime, and a script runner (EVALSHA, reloading on NOSCRIPT). The inventory and the bus both
//! take a [`RedisIo`].

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{FromRedisValue, Script};

/// Why a Redis call failed: Redis did not answer in time or at all, or answered something the
/// caller cannot use.
#[derive(Clone, Debug, thiserror::Error)]
pub enum RedisIoError {
    #[error("redis unavailable: {0}")]
    Unavailable(String),
    #[error("redis: {0}")]
    Internal(String),
}

impl From<redis::RedisError> for RedisIoError {
    fn from(e: redis::RedisError) -> Self {
        RedisIoError::Unavailable(e.to_string())
    }
}

/// A shared, lazily connected Redis connection with its own I/O runtime. Cloning shares both.
#[derive(Clone)]
pub struct RedisIo {
    inner: Arc<Inner>,
}

struct Inner {
    client: redis::Client,
    conn: ConnectionManager,
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

impl RedisIo {
    /// Connects lazily to `url`: the hub starts while Redis is down and the manager reconnects
    /// by itself (with backoff). `timeout` bounds each connection attempt and each reply.
    pub fn connect(url: &str, timeout: Duration) -> Result<Self, RedisIoError> {
        let client = redis::Client::open(url)
            .map_err(|e| RedisIoError::Internal(format!("redis.url: {e}")))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout))
            .set_number_of_retries(2)
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(Duration::from_millis(1000));
        let io = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("livehub-redis")
            .enable_all()
            .build()
            .map_err(|e| RedisIoError::Internal(format!("redis I/O runtime: {e}")))?;
        let conn = {
            let _inside = io.enter();
            ConnectionManager::new_lazy_with_config(client.clone(), config)?
        };
        Ok(RedisIo {
            inner: Arc::new(Inner {
                client,
                conn,
                io: Some(io),
            }),
        })
    }

    /// The client, for connections of another kind (pub/sub).
    pub fn client(&self) -> &redis::Client {
        &self.inner.client
    }

    /// A handle on the shared connection, for fire-and-forget commands run with [`Self::spawn`].
    pub fn conn(&self) -> ConnectionManager {
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

    /// Runs `f` with a connection on the Redis I/O runtime and waits for it here.
    pub async fn exec<T, F, Fut>(&self, f: F) -> Result<T, RedisIoError>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: Future<Output = Result<T, redis::RedisError>> + Send + 'static,
        T: Send + 'static,
    {
        let task = self
            .spawn(f(self.inner.conn.clone()))
            .ok_or_else(|| RedisIoError::Unavailable("redis client is shutting down".into()))?;
        task.await
            .map_err(|e| RedisIoError::Internal(format!("redis task: {e}")))?
            .map_err(RedisIoError::from)
    }

    /// Runs `script` (EVALSHA, loading it on NOSCRIPT) with `keys` and `args`.
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
