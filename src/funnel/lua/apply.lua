-- One node's funnel ops for one room, applied in order. Every key shares the room's hash tag.
--   KEYS[1] the room's funnel key prefix, "{PREFIX:room:ROOM}:f"
-- ARGV: 1 engaged_ms, 2 node id, 3 retention ms (every key written here lives that long after
-- its last write: the funnel outlives the show by redis.retention_ms, like its sales), then one
-- op per argument, a cjson object (built from src/funnel/redis.rs's `OpWire`; numbers as decimal
-- strings, since they go into field names and values as text) named by `op`:
--   reached   user channel stage deal   a user reached a stage ("" deal: the room)
--   connected user channel ms           a user was connected ms (closed connections)
--   sold_out  user channel deal         a reserve answered sold_out
--   count     bucket what n             counts per bucket (what: comments or taps)
--   peak      bucket n                  this node's peak viewers in the bucket
--   moment    t moment                  a moment (its JSON, stored as it is)
-- The keys and fields written keep the format of every version so far (see redis.rs).
-- Users: a set per counter until it holds more than EXACT users, then a HyperLogLog.
local f = KEYS[1]
local engaged_ms = tonumber(ARGV[1])
local node = ARGV[2]
local retention = tonumber(ARGV[3])
-- Every key this call wrote, to give each its lifetime once at the end.
local touched = {}
local EXACT = 1000
local chan, ms, counts, reg, moments = f .. ":chan", f .. ":ms", f .. ":n", f .. ":reg", f .. ":moments"

-- The user's channel in this room: the first one the store heard.
local function channel(user, ch)
  if redis.call("HSETNX", chan, user, ch) == 1 then
    return ch
  end
  return redis.call("HGET", chan, user)
end

local function add(counter, user)
  local key = f .. ":u:" .. counter
  local hll = key .. ":h"
  touched[reg] = true
  if redis.call("EXISTS", hll) == 1 then
    redis.call("PFADD", hll, user)
    touched[hll] = true
    return
  end
  touched[key] = true
  if redis.call("SADD", key, user) == 1 then
    redis.call("SADD", reg, counter)
    if redis.call("SCARD", key) > EXACT then
      local members = redis.call("SMEMBERS", key)
      for i = 1, #members, 500 do
        redis.call("PFADD", hll, unpack(members, i, math.min(i + 499, #members)))
      end
      redis.call("DEL", key)
      touched[hll] = true
    end
  end
end

local function reach(user, ch, stage, deal)
  add(deal .. "|" .. stage .. "|" .. channel(user, ch), user)
end

touched[chan] = true
for i = 4, #ARGV do
  local op = cjson.decode(ARGV[i])
  local kind = op.op
  if kind == "reached" then
    reach(op.user, op.channel, op.stage, op.deal)
  elseif kind == "connected" then
    touched[ms] = true
    local total = redis.call("HINCRBY", ms, op.user, op.ms)
    if total >= engaged_ms then
      redis.call("HDEL", ms, op.user)
      reach(op.user, op.channel, "engaged", "")
    end
  elseif kind == "sold_out" then
    redis.call("HINCRBY", counts, "so|" .. op.deal .. "|" .. channel(op.user, op.channel), 1)
  elseif kind == "count" then
    redis.call("HINCRBY", counts, "t|" .. op.bucket .. "|" .. op.what, op.n)
  elseif kind == "peak" then
    local field = "v|" .. op.bucket .. "|" .. node
    local was = tonumber(redis.call("HGET", counts, field) or "0")
    if tonumber(op.n) > was then
      redis.call("HSET", counts, field, op.n)
    end
  elseif kind == "moment" then
    redis.call("ZADD", moments, op.t, op.moment)
    touched[moments] = true
  end
  if kind == "sold_out" or kind == "count" or kind == "peak" then
    touched[counts] = true
  end
end
for key in pairs(touched) do
  redis.call("PEXPIRE", key, retention)
end
return 1
