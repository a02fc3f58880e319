-- (src/bus/lua/lifetime.lua is prepended at build time.)
-- A node's report of its viewers and new likes of one room; answers the room-wide totals and
-- the room's position, so a node notices an event it never received.
--   KEYS[1] meta, KEYS[2] nodes, KEYS[3..7] hist recent deals mutes rates (see publish.lua
--   and load.lua)
-- ARGV: 1 node id, 2 its viewers, 3 now ms, 4 report TTL ms, 5 likes to add, 6 "1" when the
-- room's host is seen on this node (a host or admin connected, or a deal open), 7 open_ttl ms
-- Returns {"OK", likes, viewers, seq, epoch}, or {"GONE"} when the room's lifetime ran out (nothing
-- is written then: the node closes the room).
local meta, nodes = KEYS[1], KEYS[2]
local now, ttl = tonumber(ARGV[3]), tonumber(ARGV[4])
if redis.call("EXISTS", meta) == 0 then
  return {"GONE"}
end
if ARGV[6] == "1" then
  local open_ttl = tonumber(ARGV[7])
  refresh(meta, {KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7]}, open_ttl, false)
end
if tonumber(ARGV[2]) > 0 then
  redis.call("HSET", nodes, ARGV[1], ARGV[2] .. "|" .. string.format("%.0f", now + ttl))
  redis.call("PEXPIRE", nodes, ttl)
else
  redis.call("HDEL", nodes, ARGV[1])
end
local likes
if tonumber(ARGV[5]) > 0 then
  likes = redis.call("HINCRBY", meta, "likes", ARGV[5])
else
  likes = tonumber(redis.call("HGET", meta, "likes") or "0")
end
local viewers = 0
local all = redis.call("HGETALL", nodes)
for i = 1, #all, 2 do
  local v = all[i + 1]
  local bar = string.find(v, "|", 1, true)
  if bar and tonumber(string.sub(v, bar + 1)) > now then
    viewers = viewers + tonumber(string.sub(v, 1, bar - 1))
  else
    redis.call("HDEL", nodes, all[i])
  end
end
local m = redis.call("HMGET", meta, "seq", "epoch")
return {"OK", string.format("%.0f", likes), string.format("%.0f", viewers), m[1] or "0",
  m[2] or ""}
