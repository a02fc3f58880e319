-- A node's report of its viewers and new likes of one room; answers the room-wide totals and
-- the room's position, so a node notices an event it never received.
--   KEYS[1] meta, KEYS[2] nodes (see publish.lua and load.lua)
-- ARGV: 1 node id, 2 its viewers, 3 now ms, 4 report TTL ms, 5 likes to add
-- Returns {likes, viewers, seq, epoch}.
local meta, nodes = KEYS[1], KEYS[2]
local now, ttl = tonumber(ARGV[3]), tonumber(ARGV[4])
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
return {tostring(likes), tostring(viewers), m[1] or "0", m[2] or ""}
