-- KEYS[5] the deal's order stream.
-- ARGV: user reservation now digest
-- Returns "O|order|qty|price_cents|currency" or "R|not_found". A repeat returns the same order.
local user, resv, now = ARGV[1], ARGV[2], tonumber(ARGV[3])
local f = hold_of(user, resv)
if not f then
  return "R|not_found"
end
local p = redis.call("HMGET", deal, "price_cents", "currency", "creator", "room", "deal")
if f[1] == "O" then
  return "O|" .. f[5] .. "|" .. f[3] .. "|" .. p[1] .. "|" .. p[2]
end
if not still_held(f, now) then
  return "R|not_found"
end
local qty = tonumber(f[3])
local order = "o" .. ARGV[4] .. "-" .. redis.call("HINCRBY", deal, "n", 1)
redis.call("HSET", hold, resv, "O|" .. user .. "|" .. f[3] .. "|" .. f[4] .. "|" .. order)
redis.call("ZREM", holds, resv)
redis.call("HINCRBY", deal, "held", -qty)
redis.call("HINCRBY", deal, "sold", qty)
redis.call("HINCRBY", deal, "version", 1)
redis.call("XADD", KEYS[5], "*",
  "order", order, "reservation", resv, "room", p[4], "deal", p[5], "user", user,
  "qty", f[3], "price_cents", p[1], "currency", p[2], "creator", p[3], "ts", int(now))
return "O|" .. order .. "|" .. f[3] .. "|" .. p[1] .. "|" .. p[2]
