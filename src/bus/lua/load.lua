-- (src/bus/lua/lifetime.lua is prepended at build time.)
-- A room's whole durable state at one seq, for a node that opens the room (or a snapshot).
--   KEYS[1] meta, KEYS[2] hist, KEYS[3] recent, KEYS[4] deals, KEYS[5] nodes (see publish.lua;
--   nodes HASH node id -> "viewers|expires ms"), KEYS[6] mutes, KEYS[7] rates
-- ARGV: 1 now ms, 2 history events to return, 3 "1" when the room's host (or an admin) opens
-- it: a room that does not exist is created, and either way its lifetime starts again,
-- 4 the epoch of a new room, 5 room.open_ttl_ms
-- Returns {"NONE"} for a room that does not exist and is not to be created, else
-- {seq, epoch, pinned or "", likes, viewers, n, recent..., n, deal JSON..., n, "SEQ|event"...}.
local meta, hist, recent, deals, nodes = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local now, open_ttl = tonumber(ARGV[1]), tonumber(ARGV[5])
if redis.call("EXISTS", meta) == 0 then
  if ARGV[3] ~= "1" then
    return {"NONE"}
  end
  redis.call("HSET", meta, "seq", 0, "epoch", ARGV[4])
end
if ARGV[3] == "1" then
  refresh(meta, {hist, recent, deals, KEYS[6], KEYS[7]}, open_ttl, true)
end
local m = redis.call("HMGET", meta, "seq", "epoch", "pinned", "likes")
local viewers = 0
for _, v in ipairs(redis.call("HVALS", nodes)) do
  local bar = string.find(v, "|", 1, true)
  if bar and tonumber(string.sub(v, bar + 1)) > now then
    viewers = viewers + tonumber(string.sub(v, 1, bar - 1))
  end
end
local out = {m[1] or "0", m[2] or "", m[3] or "", m[4] or "0", tostring(viewers)}
local list = redis.call("LRANGE", recent, 0, -1)
out[#out + 1] = tostring(#list)
for _, c in ipairs(list) do
  out[#out + 1] = c
end
local ds = redis.call("HVALS", deals)
out[#out + 1] = tostring(#ds)
for _, d in ipairs(ds) do
  local a = string.find(d, "|", 1, true)
  local b = string.find(d, "|", a + 1, true)
  out[#out + 1] = string.sub(d, b + 1)
end
local h = redis.call("XREVRANGE", hist, "+", "-", "COUNT", tonumber(ARGV[2]))
out[#out + 1] = tostring(#h)
for i = #h, 1, -1 do
  local id, fields = h[i][1], h[i][2]
  out[#out + 1] = string.sub(id, 1, string.find(id, "-", 1, true) - 1) .. "|" .. fields[2]
end
return out
