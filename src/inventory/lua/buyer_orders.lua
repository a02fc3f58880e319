-- ARGV: now ("": Redis's clock), then order ids of this deal (from the buyer's index).
-- A pending order past its pay_by expires first (common.lua's expire_due), so every status is
-- current. Returns {r = "orders", orders = [order_fields()]} for the ids that are orders of this
-- deal (an id whose deal was purged, or not an order, is left out).
local now = clock(ARGV[1])
if redis.call("EXISTS", deal) == 0 then
  return reply("orders", {orders = {}})
end
expire_due(now)
local out = {}
for i = 2, #ARGV do
  local resv = redis.call("HGET", ords, ARGV[i])
  local h = resv and redis.call("HGET", hold, resv)
  local f = h and split(h)
  if f and ORDER_STATUS[f[1]] then
    out[#out + 1] = order_fields(f)
  end
end
-- cjson writes an empty table as {}: the reader takes that as no orders.
return reply("orders", {orders = out})
