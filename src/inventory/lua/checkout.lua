-- KEYS[5] the deal's order stream, KEYS[6] its sales ledger (sale.lua), KEYS[7] and KEYS[8]
-- its orders and the feed (common.lua), KEYS[9] the buyer's orders in the room (a hash
-- order -> deal, in the room's slot: buyer_orders.lua reads it), kept until the latest purge of
-- its deals.
-- ARGV: user reservation now digest channel aff ("" for none) payment_ms ("": paid at once)
-- (now "": Redis's clock; ARGV[4] is the digest of a deal that has none of its own, see
-- common.lua). The order stream and the orders expire with the deal's other keys (purge_at).
-- Returns {r = "ordered", order, qty, price_cents, currency, total_cents, repeat (boolean),
-- channel, aff, commission_bps, commission_cents, affiliate_bps, affiliate_cents, creator,
-- status, pay_by}, {r = "rejected", reason = "not_found"}, or {r = "total", qty, price_cents}
-- when the total would not be exact (the deal's price is over the bounds start_deal keeps).
-- A repeat (repeat = true) returns the same order, with the channel and aff of the checkout that
-- made it, the same amounts and its status now, and sums nothing again.
--
-- With payment_ms the order is pending (state P, in KEYS[2] at its pay_by) until settle.lua or
-- expire_due(); without, it is paid (state O) and summed into the ledger at once. Either way
-- its `created` event goes to the feed in this step.
local user, resv, now = ARGV[1], ARGV[2], clock(ARGV[3])
local f = hold_of(user, resv)
if not f then
  return reply("rejected", {reason = "not_found"})
end
if ORDER_STATUS[f[1]] then
  -- A pending order past its pay_by shows as expired.
  expire_due(now)
  f = hold_of(user, resv)
elseif not still_held(f, now) then
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
local o
if ORDER_STATUS[f[1]] then
  o = order_fields(f)
else
  local order = "o" .. digest_of(ARGV[4]) .. "-" .. redis.call("HINCRBY", deal, "n", 1)
  local state, pay_by = "O", ""
  if ARGV[7] ~= "" then
    state, pay_by = "P", int(now + tonumber(ARGV[7]))
  end
  f = {state, user, f[3], f[4], order, ARGV[5], ARGV[6], pay_by}
  redis.call("HSET", hold, resv, table.concat(f, "|"))
  redis.call("HSET", ords, order, resv)
  redis.call("HINCRBY", deal, "held", -qty)
  redis.call("HINCRBY", deal, "version", 1)
  o = order_fields(f)
  if state == "P" then
    redis.call("ZADD", holds, pay_by, resv)
    redis.call("HINCRBY", deal, "pending", qty)
  else
    redis.call("ZREM", holds, resv)
    redis.call("HINCRBY", deal, "sold", qty)
    record_sale(o, now)
  end
  redis.call("XADD", KEYS[5], "*",
    "order", order, "reservation", resv, "room", p[4], "deal", p[5], "user", user,
    "qty", f[3], "price_cents", p[1], "total_cents", int(total), "currency", p[2],
    "creator", p[3], "ts", int(now), "channel", o.channel, "aff", o.aff,
    "commission_bps", int(host_bps), "commission_cents", o.commission_cents,
    "affiliate_bps", int(aff_bps), "affiliate_cents", o.affiliate_cents)
  feed_add("created", o, now)
  redis.call("HSET", KEYS[9], order, p[5])
  if p[8] then
    for _, k in ipairs({KEYS[5], ords}) do
      redis.call("PEXPIREAT", k, p[8])
    end
    local left = redis.call("PTTL", KEYS[9])
    if left < 0 or now + left < tonumber(p[8]) then
      redis.call("PEXPIREAT", KEYS[9], p[8])
    end
  end
  f[1] = "new"
end
return reply("ordered", {order = o.id, qty = o.qty, price_cents = p[1], currency = p[2],
  total_cents = int(total), ["repeat"] = f[1] ~= "new", channel = o.channel, aff = o.aff,
  commission_bps = int(host_bps), commission_cents = o.commission_cents,
  affiliate_bps = int(aff_bps), affiliate_cents = o.affiliate_cents, creator = p[3] or "",
  status = o.status, pay_by = o.pay_by})
