-- ARGV: user reservation now ("": Redis's clock)
-- Returns {r = "released", remaining, version} (stock returned now), {r = "released"} (already
-- released: the stock did not change) or {r = "rejected", reason = "not_found"}.
local user, resv, now = ARGV[1], ARGV[2], clock(ARGV[3])
local f = hold_of(user, resv)
if not f then
  return reply("rejected", {reason = "not_found"})
end
if f[1] == "R" then
  return reply("released")
end
if not still_held(f, now) then
  return reply("rejected", {reason = "not_found"})
end
release(user, tonumber(f[3]))
redis.call("ZREM", holds, resv)
redis.call("HSET", hold, resv, "R|" .. user .. "|" .. f[3] .. "|" .. f[4] .. "|")
local remaining, version = level()
return reply("released", {remaining = remaining, version = version})
