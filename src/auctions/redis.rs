//! Auctions in Redis: each operation one Lua script (`lua/`, with `src/lua/clock.lua` and
//! `lua/common.lua` before it)
//! on the auction's hash and its bid answers, in its room's slot, timed by Redis's clock.

use std::sync::Arc;

use async_trait::async_trait;
use redis::Script;
use serde::Deserialize;

use super::{
    AuctionRecord, AuctionState, AuctionStore, Bid, BidAnswer, Bidding, CloseAnswer, EndAnswer, not_found,
};
use crate::auction::{Accepted, AuctionSpec, Leader, Refused, Status};
use crate::commerce::{Buyer, Channel};
use crate::id::Id;
use crate::inventory::InventoryError;
use crate::inventory::redis::{ScriptClock, room_tag};
use crate::redis_io::RedisIo;

macro_rules! script {
    ($file:literal) => {
        Arc::new(Script::new(concat!(
            include_str!("../lua/clock.lua"),
            "\n",
            include_str!("lua/common.lua"),
            "\n",
            include_str!(concat!("lua/", $file))
        )))
    };
}

/// How long a bid's answer is kept for a retry with its request id.
const ANSWER_TTL_MS: u64 = 10 * 60 * 1000;

/// The auction scripts on one Redis (or cluster).
pub struct RedisAuctions {
    redis: RedisIo,
    prefix: String,
    clock: ScriptClock,
    retention_ms: u64,
    start: Arc<Script>,
    bid: Arc<Script>,
    close: Arc<Script>,
    end: Arc<Script>,
    due_add: Arc<Script>,
    due_take: Arc<Script>,
    view: Arc<Script>,
}

/// An auction's fields as the scripts report them (`view()` in `lua/common.lua`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct View {
    ends_at: String,
    status: String,
    bids: String,
    current: String,
    leader: String,
    leader_max: String,
    second: String,
    started_at: String,
    lname: String,
    pid: String,
    title: String,
    img: String,
    cur: String,
    start: String,
    inc: String,
    extend: String,
    sd: String,
    dur: String,
    cbps: String,
    abps: String,
    /// The leader's `channel|aff` ("" before the first bid).
    lbuyer: String,
    creator: String,
}

// Replies are decoded once and taken apart at once: their size does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Deserialize)]
#[serde(tag = "r", rename_all = "snake_case", deny_unknown_fields)]
enum StartReply {
    Started { a: View },
    Conflict,
}

// Replies are decoded once and taken apart at once: their size does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Deserialize)]
#[serde(tag = "r", rename_all = "snake_case", deny_unknown_fields)]
enum BidReply {
    Accepted {
        current: String,
        leading: bool,
        ends_at: String,
        extended: bool,
        a: View,
    },
    TooLow {
        min: String,
    },
    Ended {
        a: View,
    },
    NotFound,
}

// Replies are decoded once and taken apart at once: their size does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Deserialize)]
#[serde(tag = "r", rename_all = "snake_case", deny_unknown_fields)]
enum CloseReply {
    Closed { a: View },
    Open { a: View },
    Already { a: View },
    NotFound,
}

// Replies are decoded once and taken apart at once: their size does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Deserialize)]
#[serde(tag = "r", rename_all = "snake_case", deny_unknown_fields)]
enum ViewReply {
    View { a: View },
    NotFound,
}

// Replies are decoded once and taken apart at once: their size does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Deserialize)]
#[serde(tag = "r", rename_all = "snake_case", deny_unknown_fields)]
enum EndReply {
    Ended { a: View },
    HasBids { a: View },
    Closed { a: View },
    NotFound,
}

fn bad(what: &str, why: impl std::fmt::Display) -> InventoryError {
    InventoryError::Internal(format!("unexpected auction {what} reply from Redis: {why}"))
}

fn decode<T: for<'de> Deserialize<'de>>(what: &str, reply: &str) -> Result<T, InventoryError> {
    serde_json::from_str(reply).map_err(|e| bad(what, format!("{e}: {reply:?}")))
}

/// A bidder's channel and affiliate as `bid.lua` keeps the leader's: `channel|aff`.
fn buyer_field(b: &Buyer) -> String {
    format!(
        "{}|{}",
        b.channel.as_str(),
        b.aff.as_ref().map(Id::as_str).unwrap_or_default()
    )
}

/// The leader's `channel|aff`, None before the first bid (or from an auction stored before
/// bidders' channels were kept).
fn parse_buyer(field: &str) -> Result<Option<Buyer>, InventoryError> {
    let Some((channel, aff)) = field.split_once('|') else {
        return Ok(None);
    };
    let aff = match aff {
        "" => None,
        a => Some(Id::new(a).map_err(|e| bad("lbuyer", e))?),
    };
    Ok(Some(Buyer {
        channel: Channel::parse(channel),
        aff,
    }))
}

/// A refusal: it names no leader and no run.
fn refused(r: Refused) -> Bid {
    Bid {
        answer: BidAnswer::Refused(r),
        leader_name: None,
        started_at: 0,
    }
}

fn num(what: &str, s: &str) -> Result<u64, InventoryError> {
    s.parse().map_err(|_| bad(what, format!("not a number: {s:?}")))
}

fn opt(what: &str, s: &str) -> Result<Option<u64>, InventoryError> {
    if s.is_empty() {
        return Ok(None);
    }
    num(what, s).map(Some)
}

impl View {
    fn state(&self) -> Result<AuctionState, InventoryError> {
        let status = match self.status.as_str() {
            "live" => Status::Live,
            "sold" => Status::Sold,
            "unsold" => Status::Unsold,
            other => return Err(bad("state", format!("status {other:?}"))),
        };
        let leader = match (self.leader.as_str(), opt("leader_max", &self.leader_max)?) {
            ("", _) => None,
            (user, Some(max_cents)) => Some(Leader {
                user: user.to_owned(),
                max_cents,
            }),
            (_, None) => return Err(bad("state", "a leader without a maximum")),
        };
        Ok(AuctionState {
            ends_at: num("ends_at", &self.ends_at)?,
            status,
            bids: u32::try_from(num("bids", &self.bids)?).map_err(|e| bad("bids", e))?,
            current_cents: opt("current", &self.current)?,
            leader,
            second_max_cents: opt("second", &self.second)?,
        })
    }

    fn record(&self, id: &Id) -> Result<AuctionRecord, InventoryError> {
        let id_of = |what: &str, s: &str| Id::new(s).map_err(|e| bad(what, e));
        let bps = |what: &str, s: &str| {
            u32::try_from(num(what, s)?).map_err(|e| bad(what, e))
        };
        let spec = AuctionSpec {
            id: id.clone(),
            product_id: id_of("product_id", &self.pid)?,
            title: (!self.title.is_empty()).then(|| self.title.clone()),
            image_url: (!self.img.is_empty()).then(|| self.img.clone()),
            currency: self.cur.clone(),
            start_cents: num("start", &self.start)?,
            increment_cents: num("inc", &self.inc)?,
            duration_ms: num("dur", &self.dur)?,
            extend_ms: num("extend", &self.extend)?,
            sudden_death: self.sd == "1",
            commission_bps: bps("cbps", &self.cbps)?,
            affiliate_bps: bps("abps", &self.abps)?,
            creator: match self.creator.as_str() {
                "" => None,
                c => Some(id_of("creator", c)?),
            },
        };
        Ok(AuctionRecord {
            spec,
            started_at: num("started_at", &self.started_at)?,
            state: self.state()?,
            leader_name: (!self.lname.is_empty()).then(|| self.lname.clone()),
            leader_buyer: parse_buyer(&self.lbuyer)?,
        })
    }
}

impl RedisAuctions {
    /// Auctions on `redis` under `prefix` (the inventory's `redis.key_prefix`), their keys kept
    /// `retention_ms` after each auction's end.
    pub fn new(redis: RedisIo, prefix: &str, clock: ScriptClock, retention_ms: u64) -> Self {
        RedisAuctions {
            redis,
            prefix: prefix.to_owned(),
            clock,
            retention_ms,
            start: script!("start.lua"),
            bid: script!("bid.lua"),
            close: script!("close.lua"),
            end: script!("end.lua"),
            due_add: Arc::new(Script::new(include_str!("lua/due_add.lua"))),
            due_take: Arc::new(Script::new(concat!(
                include_str!("../lua/clock.lua"),
                "\n",
                include_str!("lua/due_take.lua")
            ))),
            view: script!("view.lua"),
        }
    }

    fn keys(&self, room: &Id, id: &Id) -> [String; 3] {
        let tag = room_tag(&self.prefix, room);
        [
            format!("{tag}:~auction:{id}:a"),
            format!("{tag}:~auction:{id}:answers"),
            Self::index(&tag),
        ]
    }

    /// The room's auctions by start (`{PREFIX:pNN}:ROOM:~auctions`).
    fn index(tag: &str) -> String {
        format!("{tag}:~auctions")
    }

    /// `PREFIX:auctions:due`: every auction's close, by when its end comes (a slot of its own).
    fn due_key(&self) -> String {
        format!("{}:auctions:due", self.prefix)
    }

    fn member(room: &Id, id: &Id) -> String {
        format!("{room}|{id}")
    }

    /// Puts the close of `room`'s auction `id` at `at` (after a close found it still open: its
    /// end moved) or removes it (settled, or no such auction).
    async fn reschedule(&self, room: &Id, id: &Id, at: Option<u64>) -> Result<(), InventoryError> {
        let (key, member) = (self.due_key(), Self::member(room, id));
        Ok(self
            .redis
            .exec(move |mut conn| async move {
                let cmd = match at {
                    Some(at) => {
                        let mut c = redis::cmd("ZADD");
                        c.arg(&key).arg("XX").arg(at).arg(&member);
                        c
                    }
                    None => {
                        let mut c = redis::cmd("ZREM");
                        c.arg(&key).arg(&member);
                        c
                    }
                };
                cmd.query_async::<i64>(&mut conn).await
            })
            .await
            .map(|_| ())?)
    }

    fn now_arg(&self, now: u64) -> String {
        match self.clock {
            ScriptClock::Redis => String::new(),
            ScriptClock::Caller => now.to_string(),
        }
    }

    async fn run(
        &self,
        script: &Arc<Script>,
        room: &Id,
        id: &Id,
        args: &[String],
    ) -> Result<String, InventoryError> {
        let keys = self.keys(room, id);
        Ok(self.redis.run(script, &keys, args).await?)
    }
}

#[async_trait]
impl AuctionStore for RedisAuctions {
    async fn start(
        &self,
        room: &Id,
        spec: &AuctionSpec,
        now: u64,
    ) -> Result<AuctionRecord, InventoryError> {
        spec.check().map_err(|e| InventoryError::Invalid(e.0))?;
        let (id, rules, duration_ms) = (&spec.id, spec.rules(), spec.duration_ms);
        let args = [
            self.now_arg(now),
            rules.start_cents.to_string(),
            rules.increment_cents.to_string(),
            rules.extend_ms.to_string(),
            if rules.sudden_death { "1" } else { "0" }.to_owned(),
            duration_ms.to_string(),
            self.retention_ms.to_string(),
            id.to_string(),
            spec.product_id.to_string(),
            spec.title.clone().unwrap_or_default(),
            spec.image_url.clone().unwrap_or_default(),
            spec.currency.clone(),
            spec.commission_bps.to_string(),
            spec.affiliate_bps.to_string(),
            spec.creator.as_ref().map(Id::to_string).unwrap_or_default(),
        ];
        // The close is scheduled first: an auction whose start then fails leaves an entry that
        // its first close removes (not found), never a live auction no node would close.
        let schedule = [
            Self::member(room, id),
            now.saturating_add(duration_ms).to_string(),
            (duration_ms + self.retention_ms).to_string(),
        ];
        self.redis
            .run::<i64>(&self.due_add, &[self.due_key()], &schedule)
            .await?;
        let reply = self.run(&self.start, room, id, &args).await?;
        match decode("start", &reply)? {
            StartReply::Started { a } => a.record(id),
            StartReply::Conflict => Err(InventoryError::Conflict(format!(
                "auction {id} is already used in room {room}"
            ))),
        }
    }

    async fn bid(
        &self,
        room: &Id,
        id: &Id,
        user: &str,
        bidder: &Bidding<'_>,
        request_id: &str,
        amount_cents: u64,
        max_cents: Option<u64>,
        now: u64,
    ) -> Result<Bid, InventoryError> {
        // Checked here: the script trusts its amounts.
        let max = match crate::auction::check_amounts(amount_cents, max_cents) {
            Ok(m) => m,
            Err(r) => return Ok(refused(r)),
        };
        let args = [
            self.now_arg(now),
            user.to_owned(),
            request_id.to_owned(),
            amount_cents.to_string(),
            max.to_string(),
            ANSWER_TTL_MS.to_string(),
            self.retention_ms.to_string(),
            bidder.name.to_owned(),
            buyer_field(bidder.buyer),
        ];
        let reply = self.run(&self.bid, room, id, &args).await?;
        Ok(match decode("bid", &reply)? {
            BidReply::Accepted {
                current,
                leading,
                ends_at,
                extended,
                a,
            } => Bid {
                answer: BidAnswer::Accepted(Accepted {
                    current_cents: num("current", &current)?,
                    leading,
                    ends_at: num("ends_at", &ends_at)?,
                    extended,
                    bids: a.state()?.bids,
                }),
                leader_name: (!a.lname.is_empty()).then(|| a.lname.clone()),
                started_at: num("started_at", &a.started_at)?,
            },
            BidReply::TooLow { min } => refused(Refused::TooLow {
                min_cents: num("min", &min)?,
            }),
            BidReply::Ended { a } => {
                a.state()?;
                refused(Refused::Ended)
            }
            BidReply::NotFound => return Err(not_found(room, id)),
        })
    }

    async fn close(&self, room: &Id, id: &Id, now: u64) -> Result<CloseAnswer, InventoryError> {
        let reply = self.run(&self.close, room, id, &[self.now_arg(now)]).await?;
        let answer = match decode("close", &reply)? {
            CloseReply::Closed { a } => CloseAnswer::Closed(a.record(id)?),
            CloseReply::Open { a } => CloseAnswer::Open(a.record(id)?),
            CloseReply::Already { a } => CloseAnswer::AlreadyClosed(a.record(id)?),
            CloseReply::NotFound => {
                self.reschedule(room, id, None).await?;
                return Err(not_found(room, id));
            }
        };
        // A closed one stays scheduled until it is settled (see the trait).
        if let CloseAnswer::Open(r) = &answer {
            self.reschedule(room, id, Some(r.state.ends_at)).await?;
        }
        Ok(answer)
    }

    async fn settled(&self, room: &Id, id: &Id) -> Result<(), InventoryError> {
        self.reschedule(room, id, None).await
    }

    async fn due(
        &self,
        now: u64,
        lease_ms: u64,
        limit: usize,
    ) -> Result<Vec<(Id, Id)>, InventoryError> {
        let args = [self.now_arg(now), lease_ms.to_string(), limit.to_string()];
        let taken: Vec<String> = self
            .redis
            .run(&self.due_take, &[self.due_key()], &args)
            .await?;
        taken
            .iter()
            .map(|m| {
                let (room, id) = m
                    .split_once('|')
                    .ok_or_else(|| bad("due", format!("member {m:?}")))?;
                let id_of = |s: &str| Id::new(s).map_err(|e| bad("due", format!("{m:?}: {e}")));
                Ok((id_of(room)?, id_of(id)?))
            })
            .collect()
    }

    async fn end(&self, room: &Id, id: &Id, now: u64) -> Result<EndAnswer, InventoryError> {
        let reply = self.run(&self.end, room, id, &[self.now_arg(now)]).await?;
        let answer = match decode("end", &reply)? {
            EndReply::Ended { a } => EndAnswer::Ended(a.record(id)?),
            EndReply::HasBids { a } => return Ok(EndAnswer::HasBids(a.record(id)?)),
            EndReply::Closed { a } => EndAnswer::Closed(a.record(id)?),
            EndReply::NotFound => return Err(not_found(room, id)),
        };
        // Closed either way: nothing left for a closer.
        self.reschedule(room, id, None).await?;
        Ok(answer)
    }

    async fn room_auctions(&self, room: &Id) -> Result<Vec<AuctionRecord>, InventoryError> {
        let index = Self::index(&room_tag(&self.prefix, room));
        let ids: Vec<String> = self
            .redis
            .exec(move |mut conn| async move {
                redis::cmd("ZRANGE")
                    .arg(index)
                    .arg(0)
                    .arg(-1)
                    .query_async(&mut conn)
                    .await
            })
            .await?;
        let mut out = Vec::with_capacity(ids.len());
        for raw in ids {
            let id = Id::new(raw.as_str()).map_err(|e| bad("index", format!("{raw:?}: {e}")))?;
            let reply = self.run(&self.view, room, &id, &[]).await?;
            // An auction whose keys expired before the index's is simply gone.
            if let ViewReply::View { a } = decode("view", &reply)? {
                out.push(a.record(&id)?);
            }
        }
        Ok(out)
    }
}
