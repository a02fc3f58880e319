-- One node's funnel ops for one room, applied in order. Every key shares the room's hash tag.
--   KEYS[1] the room's funnel key prefix, "{PREFIX:room:ROOM}:f"
-- ARGV: 1 engaged_ms, 2 node id, 3 retention ms (every key written here lives that long after
-- its last write: the funnel outlives the show by redis.retention_ms, like its sales), then one
-- op per argument, fields separated by "|":
--   R|user|channel|stage|deal    a user reached a stage ("" deal: the room)
--   C|user|channel|ms            a user was connected ms (closed connections)
--   S|user|channel|deal          a reserve answered sold_out
--   N|bucket|comments|n, N|bucket|taps|n   counts per bucket
--   V|bucket|n                   this node's peak viewers in the bucket
--   M|t|json                     a moment
-- Users: a set per counter until it holds more than EXACT users, then a HyperLogLog.
local f = KEYS[1]
local engaged_ms = tonumber(ARGV[1])
local node = ARGV[2]
local retention = tonumber(ARGV[3])
-- Every key this call wrote, to give each its lifetime once at the end.
local touched = {}
local EXACT = 1000
local chan, ms, counts, reg, moments = f .. ":chan", f .. ":ms", f .. ":n", f .. ":reg", f .. ":moments"

local function split(s)
  local out = {}
  for part in string.gmatch(s .. "|", "([^|]*)|") do
    out[#out + 1] = part
  end
  return out
end

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
  local op = split(ARGV[i])
  local kind = op[1]
  if kind == "R" then
    reach(op[2], op[3], op[4], op[5])
  elseif kind == "C" then
    touched[ms] = true
    local total = redis.call("HINCRBY", ms, op[2], op[4])
    if total >= engaged_ms then
      redis.call("HDEL", ms, op[2])
      reach(op[2], op[3], "engaged", "")
    end
  elseif kind == "S" then
    redis.call("HINCRBY", counts, "so|" .. op[4] .. "|" .. channel(op[2], op[3]), 1)
  elseif kind == "N" then
    redis.call("HINCRBY", counts, "t|" .. op[2] .. "|" .. op[3], op[4])
  elseif kind == "V" then
    local field = "v|" .. op[2] .. "|" .. node
    local was = tonumber(redis.call("HGET", counts, field) or "0")
    if tonumber(op[3]) > was then
      redis.call("HSET", counts, field, op[3])
    end
  elseif kind == "M" then
    -- The json is the rest of the op: it may hold "|".
    local json = string.sub(ARGV[i], #op[2] + 4)
    redis.call("ZADD", moments, op[2], json)
    touched[moments] = true
  end
  if kind == "S" or kind == "N" or kind == "V" then
    touched[counts] = true
  end
end
for key in pairs(touched) do
  redis.call("PEXPIRE", key, retention)
end
return 1
