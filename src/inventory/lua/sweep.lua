-- ARGV: now. Returns "expired|remaining|version|done|next" or GONE; done = 1 when the deal has
-- ended and holds no stock, so nobody needs to sweep it again; next = the earliest live hold's
-- expiry ("" for none), when the deal next needs a sweep.
if redis.call("EXISTS", deal) == 0 then
  return "GONE"
end
local now = tonumber(ARGV[1])
local n = expire_due(now)
local d = redis.call("HMGET", deal, "ended", "ends_at")
local done = 0
if (d[1] == "1" or now >= tonumber(d[2])) and redis.call("ZCARD", holds) == 0 then
  done = 1
end
return n .. "|" .. level() .. "|" .. done .. "|" .. next_expiry()
