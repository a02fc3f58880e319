-- A room's funnel as the store keeps it.
--   KEYS[1] the room's funnel key prefix (see apply.lua)
-- Returns a list of exactly three lists (read by src/funnel/redis.rs's `parse_read`):
-- {counters, counts, moments}: counters a flat list counter, users, ...; counts the HGETALL of
-- the per-bucket and sold-out counts; moments the moments' json in time order.
local f = KEYS[1]
local out = {}
for _, counter in ipairs(redis.call("SMEMBERS", f .. ":reg")) do
  local key = f .. ":u:" .. counter
  local n
  if redis.call("EXISTS", key .. ":h") == 1 then
    n = redis.call("PFCOUNT", key .. ":h")
  else
    n = redis.call("SCARD", key)
  end
  out[#out + 1] = counter
  out[#out + 1] = tostring(n)
end
return {out, redis.call("HGETALL", f .. ":n"), redis.call("ZRANGE", f .. ":moments", 0, -1)}
