-- KEYS[5] the deal's order stream.
-- ARGV: user reservation now digest
-- Returns "O|order|qty|price_cents|currency|total_cents", "R|not_found", or "TOTAL|qty|price"
-- when the total would not be exact (the deal's price is over the bounds start_deal keeps). A
-- repeat returns the same order.
local user, resv, now = ARGV[1], ARGV[2], tonumber(ARGV[3])
local f = hold_of(user, resv)
if not f then
  return "R|not_found"
end
if f[1] ~= "O" and not still_held(f, now) then
  return "R|not_found"
end
local p = redis.call("HMGET", deal, "price_cents", "currency", "creator", "room", "deal")
-- Lua numbers are doubles, exact up to 2^53. start_deal keeps price_cents <= 10^8 and stock
-- <= 10^7, so qty * price_cents <= 10^15 < 2^53 and the product below is exact; the check
-- refuses an order from a deal written before those bounds rather than record a rounded total.
local total = tonumber(f[3]) * tonumber(p[1])
if total >= 9007199254740992 then
  return "TOTAL|" .. f[3] .. "|" .. p[1]
end
local tail = "|" .. f[3] .. "|" .. p[1] .. "|" .. p[2] .. "|" .. int(total)
if f[1] == "O" then
  return "O|" .. f[5] .. tail
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
  "qty", f[3], "price_cents", p[1], "total_cents", int(total), "currency", p[2],
  "creator", p[3], "ts", int(now))
return "O|" .. order .. tail
