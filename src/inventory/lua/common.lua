-- Shared by every livehub inventory script (prepended at build time, after src/lua/split.lua).
-- Replies: every deal script but reserve.lua (a flat list, the hot path) returns one cjson
-- object, its variant named by `r`, its numbers as decimal strings (Lua numbers are doubles,
-- and cjson prints only 14 significant digits); src/inventory/redis/reply.rs parses each into
-- a serde struct that refuses unknown fields (reserve.lua's list by its tag and length).
-- Stored values (the hashes below, the idempotency records, the order stream) keep the format
-- they had before replies were JSON, so data already in Redis reads as it did.
-- All keys of one deal share the hash tag of its room's feed partition, {lh:pNN} (keys.rs), so
-- every script runs on one slot and can append to the feed (KEYS[8]).
--   KEYS[1] deal   HASH  product_id price_cents currency stock remaining held pending sold
--                        per_user_limit ends_at ended version n creator room deal purge_at
--                        commission_bps affiliate_bps image_url title digest started_at
--                        (digest: 16 hex digits drawn at each start, in every reservation
--                        and order id, so a deal id used again after its keys expired never
--                        repeats an id; a deal started before it existed has none)
--   KEYS[2] holds  ZSET  reservation -> expires_at (live holds only)
--   KEYS[3] hold   HASH  reservation -> "STATE|user|qty|expires_at|order|channel|aff|pay_by"
--                        holds: H held, R released, E expired; orders (issue 23): P pending,
--                        O paid, F failed, X expired (a record from before has no pay_by)
--   KEYS[4] users  HASH  user -> units in live holds plus pending and paid orders
--   KEYS[7] ords   HASH  order -> reservation
--   KEYS[8] feed   STREAM the order feed's partition of this deal's room (every deal of the
--                        room shares it, and its hash tag: see src/inventory/redis/keys.rs)
-- A pending order sits in KEYS[2] beside the live holds, under its reservation, at its pay_by,
-- so expire_due() expires it too.
-- Invariant kept by every script: stock == remaining + held + pending + sold, remaining >= 0.
-- Time: every script takes its `now` through clock(given). A hub passes "" and the script
-- reads Redis's own clock, never the calling node's, so holds, deal ends and sweeps are timed
-- alike whichever node runs them (issue 19). A caller that drives time itself (the conformance
-- tests, RedisSettings::clock = Caller) passes its own Unix ms.
local deal, holds, hold, users = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local ords, feed = KEYS[7], KEYS[8]

-- clock(given): src/lua/clock.lua, prepended before this.

-- The digest the deal's reservation and order ids carry: the one drawn at its start, else
-- (a deal started before digests were drawn) `fallback`, the fixed digest of (room, deal).
local function digest_of(fallback)
  return redis.call("HGET", deal, "digest") or fallback
end

local function int(x)
  return string.format("%.0f", x)
end

local function release(user, qty)
  redis.call("HINCRBY", deal, "remaining", qty)
  redis.call("HINCRBY", deal, "held", -qty)
  redis.call("HINCRBY", deal, "version", 1)
  if redis.call("HINCRBY", users, user, -qty) <= 0 then
    redis.call("HDEL", users, user)
  end
end

-- An order's status by the state of its hold record (nil: not an order).
local ORDER_STATUS = {P = "pending", O = "paid", F = "failed", X = "expired"}

-- The fields of an order as the feed and the settle reply carry them (reply.rs `OrderFields`),
-- in this order.
local ORDER_FIELDS = {"id", "room", "deal", "product_id", "title", "user", "qty", "price_cents",
  "total_cents", "currency", "status", "pay_by", "creator", "channel", "aff", "commission_cents",
  "affiliate_cents"}

-- The order of hold record `f` as a table of ORDER_FIELDS (every value a string): its amounts
-- from the deal's price and rates, as checkout.lua computed them when it was made.
local function order_fields(f)
  local p = redis.call("HMGET", deal, "room", "deal", "product_id", "title", "price_cents",
    "currency", "creator", "commission_bps", "affiliate_bps")
  local total = tonumber(f[3]) * tonumber(p[5])
  local channel, aff = f[6] or "", f[7] or ""
  if channel == "" then
    channel = "direct"
  end
  local aff_cents = 0
  if aff ~= "" then
    aff_cents = commission(total, tonumber(p[9] or "0"))
  end
  return {id = f[5], room = p[1], deal = p[2], product_id = p[3], title = p[4] or "",
    user = f[2], qty = f[3], price_cents = p[5], total_cents = int(total), currency = p[6],
    status = ORDER_STATUS[f[1]], pay_by = f[8] or "", creator = p[7] or "", channel = channel,
    aff = aff, commission_cents = int(commission(total, tonumber(p[8] or "0"))),
    affiliate_cents = int(aff_cents)}
end

-- Appends the event `kind` of the order `o` (order_fields) at `now` to the feed partition,
-- which keeps (and lives) the deal's feed_ms after its latest event.
local function feed_add(kind, o, now)
  local keep = tonumber(redis.call("HGET", deal, "feed_ms") or "604800000")
  local args = {"XADD", feed, "MINID", "~", int(now - keep), "*", "type", kind, "ts", int(now)}
  for _, k in ipairs(ORDER_FIELDS) do
    args[#args + 1] = k
    args[#args + 1] = o[k]
  end
  redis.call(unpack(args))
  redis.call("PEXPIRE", feed, int(keep))
end

-- Ends the pending order of hold record `f` (under reservation `resv`) in state `to` (O paid,
-- F failed, X expired) at `now`, with its feed event; failed and expired give its units back.
-- Returns the order's fields.
local function end_order(resv, f, to, now)
  local qty = tonumber(f[3])
  redis.call("HINCRBY", deal, "pending", -qty)
  if to == "O" then
    redis.call("HINCRBY", deal, "sold", qty)
  else
    redis.call("HINCRBY", deal, "remaining", qty)
    if redis.call("HINCRBY", users, f[2], -qty) <= 0 then
      redis.call("HDEL", users, f[2])
    end
  end
  redis.call("HINCRBY", deal, "version", 1)
  redis.call("ZREM", holds, resv)
  f[1] = to
  redis.call("HSET", hold, resv, table.concat(f, "|"))
  local o = order_fields(f)
  feed_add(o.status, o, now)
  return o
end

-- Returns every hold of this deal that expired by `now` to stock, and every pending order not
-- paid by its pay_by; returns how many it looked at.
local function expire_due(now)
  local due = redis.call("ZRANGEBYSCORE", holds, "-inf", int(now), "LIMIT", 0, 1000)
  for _, resv in ipairs(due) do
    local h = redis.call("HGET", hold, resv)
    local f = h and split(h)
    if f and f[1] == "H" then
      release(f[2], tonumber(f[3]))
      redis.call("HSET", hold, resv, "E|" .. f[2] .. "|" .. f[3] .. "|" .. f[4] .. "|")
    elseif f and f[1] == "P" then
      end_order(resv, f, "X", now)
    end
    redis.call("ZREM", holds, resv)
  end
  return #due
end

-- The hold's fields {state, user, qty, expires_at, order} when `resv` is `user`'s, else nil.
local function hold_of(user, resv)
  local h = redis.call("HGET", hold, resv)
  if not h then
    return nil
  end
  local f = split(h)
  if f[2] ~= user then
    return nil
  end
  return f
end

-- True when the hold `f` is live at `now`; a held hold past its expiry is expired on the spot.
local function still_held(f, now)
  if f[1] ~= "H" then
    return false
  end
  if tonumber(f[4]) <= now then
    expire_due(now)
    return false
  end
  return true
end

-- The earliest live hold's expiry as an integer string, or "" when the deal holds nothing.
local function next_expiry()
  local first = redis.call("ZRANGE", holds, 0, 0, "WITHSCORES")
  if first[2] then
    return int(tonumber(first[2]))
  end
  return ""
end

-- The deal's stock level: remaining and version, as stored (decimal strings).
local function level()
  local v = redis.call("HMGET", deal, "remaining", "version")
  return v[1], v[2]
end

-- The fields of the deal hash that view() returns, in this order.
local VIEW = {"product_id", "price_cents", "currency", "stock", "remaining", "held", "pending",
  "sold", "per_user_limit", "ends_at", "ended", "version", "commission_bps", "affiliate_bps",
  "image_url", "title", "started_at"}

-- The whole deal as a table for cjson (read by reply.rs's `DealView`): every field of VIEW as
-- its stored string, except `ended` (a boolean). A field the deal does not have (the rates,
-- image_url, title and started_at of a deal started before they existed) reads as "". The
-- hash stores image_url with `|` written as %7C (the stored format of every version so far,
-- kept so that deals already in Redis and nodes not yet upgraded read alike); the reply
-- carries it decoded.
local function view()
  local v = redis.call("HMGET", deal, unpack(VIEW))
  local out = {}
  for i, name in ipairs(VIEW) do
    out[name] = v[i] or ""
  end
  out.ended = out.ended == "1"
  out.image_url = string.gsub(out.image_url, "%%7C", "|")
  return out
end

-- Encodes a script's reply: `r` names the variant (see reply.rs).
local function reply(r, fields)
  fields = fields or {}
  fields.r = r
  return cjson.encode(fields)
end
