-- ARGV: due ("1": end it only if its time has run out by Redis's clock, as a node's ticker
-- asks; "0": end it now, as its host asks), now ("": Redis's clock).
-- Returns {r = "ended", was_live (boolean), deal = view()}, {r = "not_due"} or
-- {r = "not_found"}.
if redis.call("EXISTS", deal) == 0 then
  return reply("not_found")
end
local now = clock(ARGV[2])
local f = redis.call("HMGET", deal, "ended", "ends_at")
if ARGV[1] == "1" and f[1] == "0" and now < tonumber(f[2]) then
  return reply("not_due")
end
local was_live = f[1] == "0" and now < tonumber(f[2])
redis.call("HSET", deal, "ended", 1)
redis.call("HINCRBY", deal, "version", 1)
return reply("ended", {was_live = was_live, deal = view()})
