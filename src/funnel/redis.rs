//! The funnel in Redis, shared by every node on it. Per room, all keys share the room's hash
//! tag `{PREFIX:room:ROOM}` (one cluster slot), under `…:f`:
//! - `:chan` hash user → channel (the first the store heard: the user counts there);
//! - `:u:DEAL|STAGE|CHANNEL` a set of users (DEAL empty for the room), replaced by a
//!   HyperLogLog `…:h` once it holds more than [`EXACT_USERS`]; `:reg` lists the counters;
//! - `:ms` hash user → ms connected so far (until engaged);
//! - `:n` hash of counts: `so|DEAL|CHANNEL` sold-out taps, `t|BUCKET|comments`, `t|BUCKET|taps`,
//!   `v|BUCKET|NODE` a node's peak viewers;
//! - `:moments` sorted set of moments (JSON) by time.
//!
//! Every key lives `redis.retention_ms` after its last write (`apply.lua` sets it).
//!
//! One batch is one `EVALSHA` of `apply.lua` (split into chunks of [`OPS_PER_CALL`]); a reading
//! is one `EVALSHA` of `read.lua`.
//!
//! **Script formats.** Each op goes to `apply.lua` as one `cjson` object (`OpWire`, decoded in
//! Lua with `cjson.decode`, named by `op`, its numbers decimal strings since the script writes
//! them into field names and values as text). `read.lua` returns a list of exactly three lists,
//! read by `parse_read`. Both are pinned by unit tests here. The keys and fields above keep the
//! format they had before the ops were JSON, so a funnel already in Redis reads on after an
//! upgrade in place.

use std::sync::Arc;

use async_trait::async_trait;
use redis::Script;
use serde::Serialize;

use super::record::{Moment, Op, Stage};
#[cfg(doc)]
use super::store::EXACT_USERS;
use super::store::{Activity, FunnelError, FunnelStore, UserCounts};
use crate::commerce::Channel;
use crate::protocol::Id;
use crate::redis_io::{RedisIo, RedisIoError};

/// Most ops in one script call, so one call never blocks Redis for long.
pub const OPS_PER_CALL: usize = 2_000;

/// The funnel of every room on one Redis (server or cluster).
pub struct RedisFunnel {
    redis: RedisIo,
    prefix: String,
    node: String,
    engaged_ms: u64,
    retention_ms: u64,
    apply: Arc<Script>,
    read: Arc<Script>,
}

impl From<RedisIoError> for FunnelError {
    fn from(e: RedisIoError) -> Self {
        match e {
            RedisIoError::Unavailable(m) => FunnelError::Unavailable(m),
            other => FunnelError::Internal(other.to_string()),
        }
    }
}

fn bad(what: &str) -> FunnelError {
    FunnelError::Internal(format!("unexpected funnel reply: {what}"))
}

impl RedisFunnel {
    /// The funnel under `prefix` on `redis`; `node` names this node's peak-viewer reports, and
    /// users are engaged after `engaged_ms` connected in all (every node's time summed). Every
    /// key lives `retention_ms` after its last write (a room's funnel outlives its show by that
    /// long, like its deals' sales).
    pub fn new(
        redis: RedisIo,
        prefix: &str,
        node: String,
        engaged_ms: u64,
        retention_ms: u64,
    ) -> Self {
        RedisFunnel {
            redis,
            prefix: prefix.to_owned(),
            node,
            engaged_ms,
            retention_ms,
            apply: Arc::new(Script::new(include_str!("lua/apply.lua"))),
            read: Arc::new(Script::new(include_str!("lua/read.lua"))),
        }
    }

    fn key(&self, room: &Id) -> String {
        format!("{{{}:room:{room}}}:f", self.prefix)
    }

    /// `read.lua`'s reply for `room`.
    async fn read(&self, room: &Id) -> Result<[Vec<String>; 3], FunnelError> {
        let reply: Vec<Vec<String>> = self.redis.run(&self.read, &[self.key(room)], &[]).await?;
        parse_read(reply)
    }
}

/// One op as `apply.lua` reads it (see its header), tagged by `op`.
#[derive(Debug, Serialize)]
#[serde(tag = "op", rename_all = "snake_case")]
enum OpWire<'a> {
    Reached {
        user: &'a str,
        channel: &'static str,
        stage: &'static str,
        /// "" for the room.
        deal: &'a str,
    },
    Connected {
        user: &'a str,
        channel: &'static str,
        ms: String,
    },
    SoldOut {
        user: &'a str,
        channel: &'static str,
        deal: &'a str,
    },
    Count {
        bucket: String,
        what: &'static str,
        n: String,
    },
    Peak {
        bucket: String,
        n: String,
    },
    Moment {
        t: String,
        /// The moment's JSON, stored as it is.
        moment: String,
    },
}

/// One op as `apply.lua` reads it: its `OpWire` as JSON.
fn encode(op: &Op) -> Result<String, FunnelError> {
    let wire = match op {
        Op::Reached {
            user,
            channel,
            stage,
            deal,
        } => OpWire::Reached {
            user: user.as_str(),
            channel: channel.as_str(),
            stage: stage.as_str(),
            deal: deal.as_ref().map_or("", |d| d.as_str()),
        },
        Op::Connected { user, channel, ms } => OpWire::Connected {
            user: user.as_str(),
            channel: channel.as_str(),
            ms: ms.to_string(),
        },
        Op::SoldOutTap {
            user,
            channel,
            deal,
        } => OpWire::SoldOut {
            user: user.as_str(),
            channel: channel.as_str(),
            deal: deal.as_str(),
        },
        Op::Comments { bucket, n } => count(*bucket, "comments", *n),
        Op::Taps { bucket, n } => count(*bucket, "taps", *n),
        Op::PeakViewers { bucket, n } => OpWire::Peak {
            bucket: bucket.to_string(),
            n: n.to_string(),
        },
        Op::Moment(m) => OpWire::Moment {
            t: m.t.to_string(),
            moment: serde_json::to_string(m).map_err(|e| FunnelError::Internal(e.to_string()))?,
        },
    };
    serde_json::to_string(&wire).map_err(|e| FunnelError::Internal(e.to_string()))
}

fn count(bucket: u64, what: &'static str, n: u64) -> OpWire<'static> {
    OpWire::Count {
        bucket: bucket.to_string(),
        what,
        n: n.to_string(),
    }
}

/// Parses `read.lua`'s reply: exactly three lists, (counters, counts, moments).
fn parse_read(reply: Vec<Vec<String>>) -> Result<[Vec<String>; 3], FunnelError> {
    <[Vec<String>; 3]>::try_from(reply).map_err(|r| bad(&format!("{} lists, not 3", r.len())))
}

/// Folds `read.lua`'s counters (`DEAL|STAGE|CHANNEL`, users) into counts.
fn counts_of(counters: &[String], counts: &[String]) -> Result<UserCounts, FunnelError> {
    let mut out = UserCounts::default();
    for pair in counters.chunks(2) {
        let [counter, n] = pair else {
            return Err(bad("counter list"));
        };
        let n: u64 = n.parse().map_err(|_| bad("user count"))?;
        let mut parts = counter.split('|');
        let (Some(deal), Some(stage), Some(channel)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(bad("counter name"));
        };
        let stage = Stage::parse(stage).ok_or_else(|| bad("stage"))?;
        let channel = Channel::parse(channel);
        if deal.is_empty() {
            *out.room.entry((stage, channel)).or_default() += n;
        } else {
            let deal = Id::new(deal).map_err(|_| bad("deal id"))?;
            *out.deals.entry((deal, stage, channel)).or_default() += n;
        }
    }
    for pair in counts.chunks(2) {
        let [field, n] = pair else {
            return Err(bad("count list"));
        };
        if let Some(rest) = field.strip_prefix("so|") {
            let (deal, channel) = rest.split_once('|').ok_or_else(|| bad("sold-out field"))?;
            let deal = Id::new(deal).map_err(|_| bad("deal id"))?;
            let n: u64 = n.parse().map_err(|_| bad("sold-out count"))?;
            *out.sold_out
                .entry((deal, Channel::parse(channel)))
                .or_default() += n;
        }
    }
    Ok(out)
}

/// Folds the per-bucket counts and the moments into an [`Activity`] (peaks summed over nodes).
fn activity_of(counts: &[String], moments: &[String]) -> Result<Activity, FunnelError> {
    let mut out = Activity::default();
    for pair in counts.chunks(2) {
        let [field, n] = pair else {
            return Err(bad("count list"));
        };
        let mut parts = field.split('|');
        let (kind, bucket, what) = (parts.next(), parts.next(), parts.next());
        let (Some(kind @ ("t" | "v")), Some(bucket), Some(what)) = (kind, bucket, what) else {
            continue;
        };
        let bucket: u64 = bucket.parse().map_err(|_| bad("bucket"))?;
        let n: u64 = n.parse().map_err(|_| bad("bucket count"))?;
        let b = out.buckets.entry(bucket).or_default();
        match (kind, what) {
            ("v", _) => b.viewers += n,
            (_, "comments") => b.comments += n,
            (_, "taps") => b.taps += n,
            _ => {}
        }
    }
    for json in moments {
        let m: Moment = serde_json::from_str(json).map_err(|_| bad("moment"))?;
        out.moments.push(m);
    }
    Ok(out)
}

#[async_trait]
impl FunnelStore for RedisFunnel {
    async fn apply(&self, room: &Id, ops: &[Op]) -> Result<(), FunnelError> {
        let keys = [self.key(room)];
        for chunk in ops.chunks(OPS_PER_CALL) {
            let mut args = Vec::with_capacity(chunk.len() + 2);
            args.push(self.engaged_ms.to_string());
            args.push(self.node.clone());
            args.push(self.retention_ms.to_string());
            for op in chunk {
                args.push(encode(op)?);
            }
            let _: i64 = self.redis.run(&self.apply, &keys, &args).await?;
        }
        Ok(())
    }

    async fn counts(&self, room: &Id) -> Result<UserCounts, FunnelError> {
        let [counters, counts, _moments] = self.read(room).await?;
        counts_of(&counters, &counts)
    }

    async fn activity(&self, room: &Id) -> Result<Activity, FunnelError> {
        let [_counters, counts, moments] = self.read(room).await?;
        activity_of(&counts, &moments)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::funnel::record::MomentKind;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn counters_fold_into_room_and_deal_counts() {
        let c = counts_of(
            &s(&[
                "|viewers|paid",
                "3",
                "d1|held|live",
                "2",
                "|tapped|bogus",
                "1",
            ]),
            &s(&["so|d1|paid", "4", "t|0|taps", "9"]),
        )
        .unwrap();
        assert_eq!(c.room[&(Stage::Viewers, Channel::Paid)], 3);
        assert_eq!(c.room[&(Stage::Tapped, Channel::Direct)], 1);
        let d1 = Id::new("d1").unwrap();
        assert_eq!(c.deals[&(d1.clone(), Stage::Held, Channel::Live)], 2);
        assert_eq!(c.sold_out[&(d1, Channel::Paid)], 4);
        assert!(counts_of(&s(&["|nope|paid", "1"]), &[]).is_err());
    }

    #[test]
    fn peaks_of_several_nodes_add_up_and_moments_keep_their_order() {
        let m = Moment {
            t: 5,
            kind: MomentKind::Pin,
            deal: None,
            product: Some(Id::new("p").unwrap()),
            title: Some("A | B".into()),
        };
        let json = serde_json::to_string(&m).unwrap();
        let a = activity_of(
            &s(&[
                "v|0|n1",
                "3",
                "v|0|n2",
                "4",
                "t|0|comments",
                "2",
                "so|d|paid",
                "1",
            ]),
            std::slice::from_ref(&json),
        )
        .unwrap();
        assert_eq!(a.buckets[&0].viewers, 7);
        assert_eq!(a.buckets[&0].comments, 2);
        assert_eq!(a.moments, vec![m.clone()]);
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&encode(&Op::Moment(m)).unwrap()).unwrap(),
            serde_json::json!({"op": "moment", "t": "5", "moment": json})
        );
    }

    /// The names `apply.lua` reads; renaming one on either side fails here.
    #[test]
    fn every_op_is_one_object_with_named_fields() {
        let (u, d) = (Id::new("u1").unwrap(), Id::new("d1").unwrap());
        let ops = [
            (
                Op::Reached {
                    user: u.clone(),
                    channel: Channel::Paid,
                    stage: Stage::Held,
                    deal: Some(d.clone()),
                },
                serde_json::json!({"op": "reached", "user": "u1", "channel": "paid",
                    "stage": "held", "deal": "d1"}),
            ),
            (
                Op::Reached {
                    user: u.clone(),
                    channel: Channel::Direct,
                    stage: Stage::Viewers,
                    deal: None,
                },
                serde_json::json!({"op": "reached", "user": "u1", "channel": "direct",
                    "stage": "viewers", "deal": ""}),
            ),
            (
                Op::Connected {
                    user: u.clone(),
                    channel: Channel::Live,
                    ms: 1500,
                },
                serde_json::json!({"op": "connected", "user": "u1", "channel": "live",
                    "ms": "1500"}),
            ),
            (
                Op::SoldOutTap {
                    user: u,
                    channel: Channel::Paid,
                    deal: d,
                },
                serde_json::json!({"op": "sold_out", "user": "u1", "channel": "paid",
                    "deal": "d1"}),
            ),
            (
                Op::Comments {
                    bucket: 1_733_570_000_000,
                    n: 3,
                },
                serde_json::json!({"op": "count", "bucket": "1733570000000",
                    "what": "comments", "n": "3"}),
            ),
            (
                Op::Taps { bucket: 10, n: 2 },
                serde_json::json!({"op": "count", "bucket": "10", "what": "taps", "n": "2"}),
            ),
            (
                Op::PeakViewers { bucket: 10, n: 7 },
                serde_json::json!({"op": "peak", "bucket": "10", "n": "7"}),
            ),
        ];
        for (op, want) in ops {
            let got: serde_json::Value = serde_json::from_str(&encode(&op).unwrap()).unwrap();
            assert_eq!(got, want, "{op:?}");
        }
    }

    /// Every field `apply.lua` reads from an op is one that some op sends.
    #[test]
    fn apply_lua_reads_only_fields_rust_sends() {
        let (u, d) = (Id::new("u").unwrap(), Id::new("d").unwrap());
        let m = Moment {
            t: 1,
            kind: MomentKind::Pin,
            deal: None,
            product: None,
            title: None,
        };
        let ops = [
            Op::Reached {
                user: u.clone(),
                channel: Channel::Direct,
                stage: Stage::Held,
                deal: None,
            },
            Op::Connected {
                user: u.clone(),
                channel: Channel::Direct,
                ms: 1,
            },
            Op::SoldOutTap {
                user: u,
                channel: Channel::Direct,
                deal: d,
            },
            Op::Comments { bucket: 0, n: 1 },
            Op::PeakViewers { bucket: 0, n: 1 },
            Op::Moment(m),
        ];
        let mut sent: Vec<String> = ops
            .iter()
            .flat_map(|op| {
                let v: serde_json::Value = serde_json::from_str(&encode(op).unwrap()).unwrap();
                v.as_object().unwrap().keys().cloned().collect::<Vec<_>>()
            })
            .collect();
        sent.sort();
        let read = crate::redis_io::lua_fields(include_str!("lua/apply.lua"), "op");
        assert!(read.contains(&"stage".to_owned()) && read.contains(&"op".to_owned()));
        for name in &read {
            assert!(sent.binary_search(name).is_ok(), "op.{name} is not sent");
        }
    }

    #[test]
    fn a_reading_is_exactly_three_lists() {
        let [a, b, c] = parse_read(vec![s(&["x", "1"]), vec![], s(&["{}"])]).unwrap();
        assert_eq!((a.len(), b.len(), c.len()), (2, 0, 1));
        assert!(parse_read(vec![vec![], vec![]]).is_err());
        assert!(parse_read(vec![vec![], vec![], vec![], vec![]]).is_err());
    }
}
