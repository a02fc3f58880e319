-- Prepended to checkout.lua and settle.lua: the sales ledger KEYS[6], a HASH summed with
-- HINCRBY in the step that makes an order paid, so it always matches the paid orders. Each group
-- GROUP| has GROUP|orders, GROUP|units, GROUP|gmv_cents:
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

-- Sums the paid order `o` (order_fields) into the ledger, in the bucket of `now`; the ledger
-- lives as long as the deal's keys.
local function record_sale(o, now)
  local qty, total = tonumber(o.qty), tonumber(o.total_cents)
  add_sales("h|", qty, total)
  redis.call("HINCRBY", KEYS[6], "h|commission_cents", o.commission_cents)
  add_sales("c|" .. o.channel .. "|", qty, total)
  if o.aff ~= "" then
    add_sales("a|" .. o.aff .. "|", qty, total)
    redis.call("HINCRBY", KEYS[6], "a|" .. o.aff .. "|commission_cents", o.affiliate_cents)
  end
  add_sales("t|" .. int(now - now % BUCKET_MS) .. "|", qty, total)
  local purge_at = redis.call("HGET", deal, "purge_at")
  if purge_at then
    redis.call("PEXPIREAT", KEYS[6], purge_at)
  end
end
