-- KEYS[5] the deal's order stream, KEYS[6] its sales ledger.
-- ARGV: user reservation now digest channel aff ("" for none)
-- (now "": Redis's clock; ARGV[4] is the digest of a deal that has none of its own, see
-- common.lua). The order stream expires with the deal's other keys (purge_at).
-- Returns {r = "ordered", order, qty, price_cents, currency, total_cents, repeat (boolean),
-- channel, aff, commission_bps, commission_cents, affiliate_bps, affiliate_cents, creator},
-- {r = "rejected", reason = "not_found"}, or {r = "total", qty, price_cents} when the total
-- would not be exact (the deal's price is over the bounds start_deal keeps).
-- A repeat (repeat = true) returns the same order, with the channel and aff of the checkout that
-- made it and the same amounts, and sums nothing again.
--
-- The ledger KEYS[6] is a HASH summed with HINCRBY in the order's own atomic step, so it
-- always matches the orders. Each group GROUP| has GROUP|orders, GROUP|units, GROUP|gmv_cents:
--   h|          every order (the deal's total, and the host's earning), + h|commission_cents
--   c|CHANNEL|  orders by the buyer's channel
--   a|AFF|      orders by the buyer's affiliate, + a|AFF|commission_cents
--   t|BUCKET|   orders by the 10 s bucket of `now` (its start, Unix ms)
-- Every sum stays below 2^53: at most the deal's stock times its price.
local BUCKET_MS = 10000

local function add_sales(group, qty, total)
  redis.call("HINCRBY", KEYS[6], group .. "orders", 1)
  redis.call("HINCRBY", KEYS[6], group .. "units", qty)
  redis.call("HINCRBY", KEYS[6], group .. "gmv_cents", int(total))
end

local function record_sale(qty, total, channel, aff, host_cents, aff_cents, now)
  add_sales("h|", qty, total)
  redis.call("HINCRBY", KEYS[6], "h|commission_cents", int(host_cents))
  add_sales("c|" .. channel .. "|", qty, total)
  if aff ~= "" then
    add_sales("a|" .. aff .. "|", qty, total)
    redis.call("HINCRBY", KEYS[6], "a|" .. aff .. "|commission_cents", int(aff_cents))
  end
  add_sales("t|" .. int(now - now % BUCKET_MS) .. "|", qty, total)
end

local user, resv, now = ARGV[1], ARGV[2], clock(ARGV[3])
local f = hold_of(user, resv)
if not f then
  return reply("rejected", {reason = "not_found"})
end
if f[1] ~= "O" and not still_held(f, now) then
  return reply("rejected", {reason = "not_found"})
end
local p = redis.call("HMGET", deal, "price_cents", "currency", "creator", "room", "deal",
  "commission_bps", "affiliate_bps", "purge_at")
-- Lua numbers are doubles, exact up to 2^53. start_deal keeps price_cents <= 10^8 and stock
-- <= 10^7, so qty * price_cents <= 10^15 < 2^53 and the product below is exact; the check
-- refuses an order from a deal written before those bounds rather than record a rounded total.
local qty = tonumber(f[3])
local total = qty * tonumber(p[1])
if total >= 9007199254740992 then
  return reply("total", {qty = f[3], price_cents = p[1]})
end
-- A deal started before rates existed pays none.
local host_bps, aff_bps = tonumber(p[6] or "0"), tonumber(p[7] or "0")
local again, order, channel, aff
if f[1] == "O" then
  -- An order made before attribution existed has neither: direct, no affiliate.
  again, order, channel, aff = 1, f[5], f[6] or "", f[7] or ""
  if channel == "" then
    channel = "direct"
  end
else
  again, channel, aff = 0, ARGV[5], ARGV[6]
  order = "o" .. digest_of(ARGV[4]) .. "-" .. redis.call("HINCRBY", deal, "n", 1)
end
local host_cents = commission(total, host_bps)
local aff_cents = 0
if aff ~= "" then
  aff_cents = commission(total, aff_bps)
end
if again == 0 then
  redis.call("HSET", hold, resv,
    "O|" .. user .. "|" .. f[3] .. "|" .. f[4] .. "|" .. order .. "|" .. channel .. "|" .. aff)
  redis.call("ZREM", holds, resv)
  redis.call("HINCRBY", deal, "held", -qty)
  redis.call("HINCRBY", deal, "sold", qty)
  redis.call("HINCRBY", deal, "version", 1)
  redis.call("XADD", KEYS[5], "*",
    "order", order, "reservation", resv, "room", p[4], "deal", p[5], "user", user,
    "qty", f[3], "price_cents", p[1], "total_cents", int(total), "currency", p[2],
    "creator", p[3], "ts", int(now), "channel", channel, "aff", aff,
    "commission_bps", int(host_bps), "commission_cents", int(host_cents),
    "affiliate_bps", int(aff_bps), "affiliate_cents", int(aff_cents))
  record_sale(qty, total, channel, aff, host_cents, aff_cents, now)
  if p[8] then
    redis.call("PEXPIREAT", KEYS[5], p[8])
    redis.call("PEXPIREAT", KEYS[6], p[8])
  end
end
return reply("ordered", {order = order, qty = f[3], price_cents = p[1], currency = p[2],
  total_cents = int(total), ["repeat"] = again == 1, channel = channel, aff = aff,
  commission_bps = int(host_bps), commission_cents = int(host_cents),
  affiliate_bps = int(aff_bps), affiliate_cents = int(aff_cents), creator = p[3] or ""})
