-- Read only. KEYS[6] the deal's sales ledger (see checkout.lua).
-- Returns {r = "deal", deal = view(), creator, ledger = {field = value, ...}} (the ledger's
-- fields, none before the first order), or {r = "not_found"} when the deal does not exist
-- (never started, or purged).
if redis.call("EXISTS", deal) == 0 then
  return reply("not_found")
end
local ledger = {}
local all = redis.call("HGETALL", KEYS[6])
for i = 1, #all, 2 do
  ledger[all[i]] = all[i + 1]
end
return reply("deal", {deal = view(), creator = redis.call("HGET", deal, "creator") or "",
  ledger = ledger})
