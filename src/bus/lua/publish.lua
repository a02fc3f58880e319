-- (src/lua/split.lua and src/bus/lua/lifetime.lua are prepended at build time.)
-- One durable event of one room, atomically: its precondition, the next seq, the room's
-- durable state, the capped history stream, and the publish to every node.
-- All keys share the room's hash tag {PREFIX:room:ROOM}, so this runs on Redis Cluster.
--   KEYS[1] meta    HASH   seq epoch pinned likes stream announcement ("SEQ|event JSON")
--   KEYS[2] hist    STREAM id "SEQ-0", field e = event JSON (capped at `history`)
--   KEYS[3] recent  LIST   "SEQ|event JSON" of the recent comments (capped at `recent`)
--   KEYS[4] deals   HASH   deal id -> "status|version|deal JSON" (the last one published)
--   KEYS[5] mutes   HASH   user -> muted until (Unix ms)
--   KEYS[6] rates   HASH   user -> "tokens|last ms" (comment token bucket)
-- ARGV[1] the event JSON (stored and published as it is), ARGV[2] the call's arguments, one
-- cjson object (built from wire.rs's `PublishArgs`): now (ms), history (max), recent (max),
-- channel, epoch (for a new room), command (PUBLISH on a single server, SPUBLISH, sharded so a
-- cluster does not broadcast every message to every shard, on Redis Cluster), open_ttl (ms),
-- and `event`, what the precondition of its `kind` needs:
--   comment:         user, rate (per s), burst
--   comment_deleted: seq (the comment's, a decimal string; absent for an id not ours)
--   pinned:          product (its JSON, stored as the room's pin)
--   deal:            id, status, version (the stock version the status was judged at), deal
--                    (its JSON)
--   stream:          url (stored as the room's stream; "" clears it)
--   auction:         id, started_at, status, auction (its JSON, kept in the deals hash as
--                    "~a:ID" -> "status|started_at|auction JSON")
--   unpinned, announcement: nothing (an announcement is kept as the room's latest)
-- A comment leaves the room's lifetime as it is; any other event is the host's doing (or a
-- deal's, which is open) and starts it again (see lifetime.lua). Every key written here gets
-- meta's remaining time.
-- Returns {"OK", seq, epoch} or a refusal: {"MUTED", seconds}, {"RATE"}, {"NOCOMMENT"},
-- {"NOPIN"}, {"SAME"} (a deal status that is not news), {"GONE"} (the room's lifetime ran out,
-- or it never opened: nothing is written).
local meta, hist, recent, deals, mutes, rates = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local args = cjson.decode(ARGV[2])
local e = args.event
local kind, event, now = e.kind, ARGV[1], args.now
local open_ttl = args.open_ttl
if redis.call("EXISTS", meta) == 0 then
  return {"GONE"}
end

local function comment_allowed()
  local muted = tonumber(redis.call("HGET", mutes, e.user) or "0")
  if muted > now then
    return {"MUTED", tostring(math.floor((muted - now) / 1000) + 1)}
  end
  local rate, burst = e.rate, e.burst
  local tokens, last = burst, now
  local b = redis.call("HGET", rates, e.user)
  if b then
    local f = split(b)
    tokens, last = tonumber(f[1]), tonumber(f[2])
  end
  tokens = math.min(burst, tokens + math.max(0, now - last) / 1000 * rate)
  local ok = tokens >= 1
  if ok then
    tokens = tokens - 1
  end
  redis.call("HSET", rates, e.user, string.format("%.6f", tokens) .. "|" .. string.format("%.0f", now))
  if not ok then
    return {"RATE"}
  end
  return nil
end

local function delete_allowed()
  if type(e.seq) ~= "string" then
    return {"NOCOMMENT"}
  end
  local prefix = e.seq .. "|"
  for _, entry in ipairs(redis.call("LRANGE", recent, 0, -1)) do
    if string.sub(entry, 1, #prefix) == prefix then
      redis.call("LREM", recent, 1, entry)
      return nil
    end
  end
  return {"NOCOMMENT"}
end

-- True when the deal event e.deal starts a deal anew: a start (version 0, not ended) of a
-- deal that ends later than the one published under its id, which the inventory allowed only
-- after every key of the earlier one expired (a weekly show reusing its deal ids).
local function starts_anew(known, version, status)
  if version ~= 0 or status == "ended" then
    return false
  end
  local a = string.find(known, "|", 1, true)
  local b = string.find(known, "|", a + 1, true)
  local old = cjson.decode(string.sub(known, b + 1))
  local new = cjson.decode(e.deal)
  return tonumber(new.ends_at) > tonumber(old.ends_at)
end

local function deal_is_news()
  local status, version = e.status, e.version
  local known = redis.call("HGET", deals, e.id)
  if known and not starts_anew(known, version, status) then
    local f = split(known)
    local was, at = f[1], tonumber(f[2])
    if was == "ended" then
      return {"SAME"}
    end
    if status ~= "ended" and (status == was or version <= at) then
      return {"SAME"}
    end
    version = math.max(version, at)
  end
  redis.call("HSET", deals, e.id, status .. "|" .. string.format("%.0f", version) .. "|" .. e.deal)
  return nil
end

-- An auction event is news when it starts an auction (a later run under an id whose keys
-- expired starts anew) or closes one whose close was not yet published: two nodes closing the
-- same auction publish it once.
local function auction_is_news()
  local field = "~a:" .. e.id
  local known = redis.call("HGET", deals, field)
  if known then
    local a = string.find(known, "|", 1, true)
    local b = string.find(known, "|", a + 1, true)
    local was, started = string.sub(known, 1, a - 1), tonumber(string.sub(known, a + 1, b - 1))
    if e.started_at < started then
      return {"SAME"}
    end
    if e.started_at == started and (was ~= "live" or e.status == "live") then
      return {"SAME"}
    end
  end
  redis.call("HSET", deals, field,
    e.status .. "|" .. string.format("%.0f", e.started_at) .. "|" .. e.auction)
  return nil
end

local refused = nil
if kind == "comment" then
  refused = comment_allowed()
elseif kind == "comment_deleted" then
  refused = delete_allowed()
elseif kind == "unpinned" then
  if redis.call("HDEL", meta, "pinned") == 0 then
    refused = {"NOPIN"}
  end
elseif kind == "pinned" then
  redis.call("HSET", meta, "pinned", e.product)
elseif kind == "deal" then
  refused = deal_is_news()
elseif kind == "auction" then
  refused = auction_is_news()
elseif kind == "stream" then
  if e.url == "" then
    redis.call("HDEL", meta, "stream")
  else
    redis.call("HSET", meta, "stream", e.url)
  end
end
if refused then
  return refused
end

local epoch = redis.call("HGET", meta, "epoch")
if not epoch then
  epoch = args.epoch
  redis.call("HSET", meta, "epoch", epoch)
end
local seq = redis.call("HINCRBY", meta, "seq", 1)
if kind == "comment" then
  redis.call("RPUSH", recent, seq .. "|" .. event)
  redis.call("LTRIM", recent, -args.recent, -1)
elseif kind == "announcement" then
  redis.call("HSET", meta, "announcement", seq .. "|" .. event)
end
redis.call("XADD", hist, "MAXLEN", string.format("%.0f", args.history), seq .. "-0", "e", event)
if kind ~= "comment" then
  refresh(meta, {hist, recent, deals, mutes, rates}, open_ttl, false)
end
align(meta, {hist, recent, deals, mutes, rates}, open_ttl)
redis.call(args.command, args.channel, seq .. "|" .. epoch .. "|" .. event)
return {"OK", tostring(seq), epoch}
