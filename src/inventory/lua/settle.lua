-- ARGV: order to ("paid" | "failed") now ("": Redis's clock)
-- Settles a pending order as the shop's backend says (common.lua's end_order: a paid order is
-- sold and summed into the ledger, sale.lua; a failed one gives its units back), with its feed
-- event, in one step. A pending order past its pay_by expires first.
-- Returns {r = "settled", changed = true, order = order_fields(), remaining, version},
-- {r = "settled", changed = false, order} (it already had that status), {r = "final", order}
-- (it ended in another status) or {r = "not_found"}.
local resv = redis.call("HGET", ords, ARGV[1])
if not resv then
  return reply("not_found")
end
local now = clock(ARGV[3])
expire_due(now)
local h = redis.call("HGET", hold, resv)
local f = h and split(h)
if not (f and ORDER_STATUS[f[1]]) then
  return reply("not_found")
end
local status = ORDER_STATUS[f[1]]
if status == ARGV[2] then
  return reply("settled", {changed = false, order = order_fields(f)})
elseif status ~= "pending" then
  return reply("final", {order = order_fields(f)})
end
local to = "F"
if ARGV[2] == "paid" then
  to = "O"
end
local o = end_order(resv, f, to, now)
if to == "O" then
  record_sale(o, now)
end
local remaining, version = level()
return reply("settled", {changed = true, order = o, remaining = remaining, version = version})
