//! The delivery state in Redis, shared by every node on it. An endpoint's keys share one hash tag
//! (`{PREFIX:wh:NAME}`: one cluster slot, so its scripts are atomic) and each expires
//! `redis.retention_ms` after its last write (the lease after `webhooks.lease_ms`).

use std::sync::{Arc, LazyLock};

use async_trait::async_trait;
use redis::Script;

use super::store::{DeadLetter, DeliveryStore, EndpointStats, MAX_DEAD, Note, StoreError, apply};
use crate::redis_io::RedisIo;

/// Takes the lease when it is free or already `ARGV[1]`'s, for `ARGV[2]` ms.
static LEASE: LazyLock<Arc<Script>> = LazyLock::new(|| {
    Arc::new(Script::new(
        r"local cur = redis.call('GET', KEYS[1])
if cur == false or cur == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0",
    ))
});

/// Sets the cursor to `ARGV[2]` if it is `ARGV[1]` (`NONE` for a missing key).
static ADVANCE: LazyLock<Arc<Script>> = LazyLock::new(|| {
    Arc::new(Script::new(
        r"local cur = redis.call('GET', KEYS[1])
if cur == false then cur = ARGV[4] end
if cur ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return 1",
    ))
});

/// Stands for "no cursor yet" in [`ADVANCE`] (a cursor never has a space).
const NONE: &str = "no cursor";

/// The delivery state of every endpoint under one `redis.key_prefix`.
pub struct RedisDeliveries {
    io: RedisIo,
    prefix: String,
    retention_ms: u64,
}

impl RedisDeliveries {
    pub fn new(io: RedisIo, prefix: &str, retention_ms: u64) -> Self {
        RedisDeliveries {
            io,
            prefix: prefix.to_owned(),
            retention_ms,
        }
    }

    fn key(&self, endpoint: &str, what: &str) -> String {
        format!("{{{}:wh:{endpoint}}}:{what}", self.prefix)
    }

    async fn query<T: redis::FromRedisValue + Send + 'static>(
        &self,
        cmd: redis::Cmd,
    ) -> Result<T, StoreError> {
        Ok(self
            .io
            .exec(|mut conn| async move { cmd.query_async::<T>(&mut conn).await })
            .await?)
    }

    async fn pipe(&self, pipe: redis::Pipeline) -> Result<(), StoreError> {
        Ok(self
            .io
            .exec(|mut conn| async move { pipe.query_async::<()>(&mut conn).await })
            .await?)
    }
}

#[async_trait]
impl DeliveryStore for RedisDeliveries {
    async fn lease(&self, endpoint: &str, node: &str, ttl_ms: u64) -> Result<bool, StoreError> {
        let keys = [self.key(endpoint, "lease")];
        let args = [node.to_owned(), ttl_ms.to_string()];
        Ok(self.io.run::<i64>(&LEASE, &keys, &args).await? == 1)
    }

    async fn holder(&self, endpoint: &str) -> Result<Option<String>, StoreError> {
        let mut cmd = redis::cmd("GET");
        cmd.arg(self.key(endpoint, "lease"));
        self.query(cmd).await
    }

    async fn cursor(&self, endpoint: &str) -> Result<Option<String>, StoreError> {
        let mut cmd = redis::cmd("GET");
        cmd.arg(self.key(endpoint, "cursor"));
        self.query(cmd).await
    }

    async fn advance(
        &self,
        endpoint: &str,
        from: Option<&str>,
        to: &str,
    ) -> Result<bool, StoreError> {
        let keys = [self.key(endpoint, "cursor")];
        let args = [
            from.unwrap_or(NONE).to_owned(),
            to.to_owned(),
            self.retention_ms.to_string(),
            NONE.to_owned(),
        ];
        Ok(self.io.run::<i64>(&ADVANCE, &keys, &args).await? == 1)
    }

    async fn rewind(&self, endpoint: &str, to: &str) -> Result<(), StoreError> {
        let mut pipe = redis::pipe();
        pipe.atomic()
            .cmd("SET")
            .arg(self.key(endpoint, "cursor"))
            .arg(to)
            .arg("PX")
            .arg(self.retention_ms)
            .ignore()
            .cmd("DEL")
            .arg(self.key(endpoint, "dead"))
            .ignore();
        self.pipe(pipe).await
    }

    async fn bury(&self, endpoint: &str, letter: &DeadLetter) -> Result<(), StoreError> {
        let json = serde_json::to_string(letter).map_err(|e| StoreError::Internal(e.to_string()))?;
        let dead = self.key(endpoint, "dead");
        let mut pipe = redis::pipe();
        pipe.atomic()
            .cmd("RPUSH")
            .arg(&dead)
            .arg(json)
            .ignore()
            .cmd("LTRIM")
            .arg(&dead)
            .arg(-(MAX_DEAD as i64))
            .arg(-1)
            .ignore()
            .cmd("PEXPIRE")
            .arg(&dead)
            .arg(self.retention_ms)
            .ignore();
        self.pipe(pipe).await
    }

    async fn dead_letters(
        &self,
        endpoint: &str,
        limit: usize,
    ) -> Result<(u64, Vec<DeadLetter>), StoreError> {
        let dead = self.key(endpoint, "dead");
        let mut pipe = redis::pipe();
        pipe.cmd("LLEN")
            .arg(&dead)
            .cmd("LRANGE")
            .arg(&dead)
            .arg(0)
            // LRANGE's end is inclusive, and -1 would be every one.
            .arg(limit.max(1) as i64 - 1);
        let (n, raw): (u64, Vec<String>) = self
            .io
            .exec(|mut conn| async move { pipe.query_async(&mut conn).await })
            .await?;
        let letters = raw
            .iter()
            .map(|j| serde_json::from_str(j))
            .collect::<Result<Vec<DeadLetter>, _>>()
            .map_err(|e| StoreError::Internal(format!("a dead letter livehub cannot read: {e}")))?;
        Ok((n, letters.into_iter().take(limit).collect()))
    }

    async fn note(&self, endpoint: &str, note: &Note) -> Result<(), StoreError> {
        let stats = self.key(endpoint, "stats");
        let mut pipe = redis::pipe();
        pipe.atomic()
            .cmd("HINCRBY")
            .arg(&stats)
            .arg("delivered")
            .arg(note.delivered)
            .ignore()
            .cmd("HINCRBY")
            .arg(&stats)
            .arg("failures")
            .arg(note.failures)
            .ignore();
        if let Some(r) = note.retrying {
            pipe.cmd("HSET").arg(&stats).arg("retrying").arg(r).ignore();
        }
        if let Some((e, at)) = &note.error {
            pipe.cmd("HSET")
                .arg(&stats)
                .arg("last_error")
                .arg(e)
                .arg("last_error_at")
                .arg(*at)
                .ignore();
        }
        pipe.cmd("PEXPIRE")
            .arg(&stats)
            .arg(self.retention_ms)
            .ignore();
        self.pipe(pipe).await
    }

    async fn stats(&self, endpoint: &str) -> Result<EndpointStats, StoreError> {
        let mut cmd = redis::cmd("HGETALL");
        cmd.arg(self.key(endpoint, "stats"));
        let h: std::collections::HashMap<String, String> = self.query(cmd).await?;
        let num = |k: &str| h.get(k).and_then(|v| v.parse::<u64>().ok());
        let mut s = EndpointStats::default();
        apply(
            &mut s,
            &Note {
                delivered: num("delivered").unwrap_or(0),
                failures: num("failures").unwrap_or(0),
                retrying: num("retrying"),
                error: h.get("last_error").cloned().zip(num("last_error_at")),
            },
        );
        Ok(s)
    }
}
