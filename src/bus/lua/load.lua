-- (src/bus/lua/lifetime.lua is prepended at build time.)
-- A room's whole durable state at one seq, for a node that opens the room (or a snapshot).
--   KEYS[1] meta, KEYS[2] hist, KEYS[3] recent, KEYS[4] deals, KEYS[5] nodes (see publish.lua;
--   nodes HASH node id -> "viewers|expires ms"), KEYS[6] mutes, KEYS[7] rates
-- ARGV: 1 now ms, 2 history events to return, 3 "1" when the room's host (or an admin) opens
-- it: a room that does not exist is created, and either way its lifetime starts again,
-- 4 the epoch of a new room, 5 room.open_ttl_ms
-- Returns one cjson object (read by wire.rs's `parse_state`): {r = "none"} for a room that
-- does not exist and is not to be created, else {r = "room", seq, epoch, pinned (the product's
-- JSON or ""), likes, viewers, recent = {{seq, event}...}, deals = {deal JSON...}, auctions =
-- {auction JSON...},
-- history = {{seq, event}...}, stream (the URL or ""), announcement ("SEQ|event JSON" of the
-- latest, or "")}, numbers as decimal strings, events as their JSON text, oldest first.
-- (cjson writes an empty list as {}.)
local meta, hist, recent, deals, nodes = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local now, open_ttl = tonumber(ARGV[1]), tonumber(ARGV[5])
if redis.call("EXISTS", meta) == 0 then
  if ARGV[3] ~= "1" then
    return cjson.encode({r = "none"})
  end
  redis.call("HSET", meta, "seq", 0, "epoch", ARGV[4])
end
if ARGV[3] == "1" then
  refresh(meta, {hist, recent, deals, KEYS[6], KEYS[7]}, open_ttl, true)
end
local m = redis.call("HMGET", meta, "seq", "epoch", "pinned", "likes", "stream", "announcement")
local viewers = 0
for _, v in ipairs(redis.call("HVALS", nodes)) do
  local bar = string.find(v, "|", 1, true)
  if bar and tonumber(string.sub(v, bar + 1)) > now then
    viewers = viewers + tonumber(string.sub(v, 1, bar - 1))
  end
end
local out = {r = "room", seq = m[1] or "0", epoch = m[2] or "", pinned = m[3] or "",
  likes = m[4] or "0", viewers = string.format("%.0f", viewers), recent = {}, deals = {},
  history = {}, stream = m[5] or "", announcement = m[6] or ""}
-- The recent list holds "SEQ|event JSON" (its stored format).
for _, c in ipairs(redis.call("LRANGE", recent, 0, -1)) do
  local bar = string.find(c, "|", 1, true)
  out.recent[#out.recent + 1] = {seq = string.sub(c, 1, bar - 1), event = string.sub(c, bar + 1)}
end
-- The deals hash holds "status|version|deal JSON" per deal and "status|started_at|auction
-- JSON" per auction (field "~a:ID"; see publish.lua).
out.auctions = {}
local all = redis.call("HGETALL", deals)
for i = 1, #all, 2 do
  local d = all[i + 1]
  local a = string.find(d, "|", 1, true)
  local b = string.find(d, "|", a + 1, true)
  if string.sub(all[i], 1, 3) == "~a:" then
    out.auctions[#out.auctions + 1] = string.sub(d, b + 1)
  else
    out.deals[#out.deals + 1] = string.sub(d, b + 1)
  end
end
local h = redis.call("XREVRANGE", hist, "+", "-", "COUNT", tonumber(ARGV[2]))
for i = #h, 1, -1 do
  local id, fields = h[i][1], h[i][2]
  out.history[#out.history + 1] = {seq = string.sub(id, 1, string.find(id, "-", 1, true) - 1),
    event = fields[2]}
end
return cjson.encode(out)
