-- Shared by every livehub inventory script (prepended at build time, after src/lua/split.lua).
-- Replies: every deal script but reserve.lua (a flat list, the hot path) returns one cjson
-- object, its variant named by `r`, its numbers as decimal strings (Lua numbers are doubles,
-- and cjson prints only 14 significant digits); src/inventory/redis/reply.rs parses each into
-- a serde struct that refuses unknown fields (reserve.lua's list by its tag and length).
-- Stored values (the hashes below, the idempotency records, the order stream) keep the format
-- they had before replies were JSON, so data already in Redis reads as it did.
-- All keys of one deal share the hash tag {lh:ROOM:DEAL}, so every script runs on one slot.
--   KEYS[1] deal   HASH  product_id price_cents currency stock remaining held sold
--                        per_user_limit ends_at ended version n creator room deal purge_at
--                        commission_bps affiliate_bps image_url title digest started_at
--                        (digest: 16 hex digits drawn at each start, in every reservation
--                        and order id, so a deal id used again after its keys expired never
--                        repeats an id; a deal started before it existed has none)
--   KEYS[2] holds  ZSET  reservation -> expires_at (live holds only)
--   KEYS[3] hold   HASH  reservation -> "STATE|user|qty|expires_at|order"  (H, O, R, E)
--   KEYS[4] users  HASH  user -> units in live holds plus orders
-- Invariant kept by every script: stock == remaining + held + sold, remaining >= 0.
-- Time: every script takes its `now` through clock(given). A hub passes "" and the script
-- reads Redis's own clock, never the calling node's, so holds, deal ends and sweeps are timed
-- alike whichever node runs them (issue 19). A caller that drives time itself (the conformance
-- tests, RedisSettings::clock = Caller) passes its own Unix ms.
local deal, holds, hold, users = KEYS[1], KEYS[2], KEYS[3], KEYS[4]

-- `given` (Unix ms) when it is not "", else Redis's time.
local function clock(given)
  if given ~= "" then
    return tonumber(given)
  end
  local t = redis.call("TIME")
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

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

-- Returns every hold of this deal that expired by `now` to stock; returns how many.
local function expire_due(now)
  local due = redis.call("ZRANGEBYSCORE", holds, "-inf", int(now), "LIMIT", 0, 1000)
  for _, resv in ipairs(due) do
    local h = redis.call("HGET", hold, resv)
    if h then
      local f = split(h)
      if f[1] == "H" then
        release(f[2], tonumber(f[3]))
        redis.call("HSET", hold, resv, "E|" .. f[2] .. "|" .. f[3] .. "|" .. f[4] .. "|")
      end
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
local VIEW = {"product_id", "price_cents", "currency", "stock", "remaining", "held", "sold",
  "per_user_limit", "ends_at", "ended", "version", "commission_bps", "affiliate_bps",
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
