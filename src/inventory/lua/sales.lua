-- Read only. KEYS[6] the deal's sales ledger (see checkout.lua).
-- Returns {view(), creator, field, value, field, value, ...} (the ledger's fields, none before
-- the first order), or an empty array when the deal does not exist (never started, or purged).
if redis.call("EXISTS", deal) == 0 then
  return {}
end
local out = {view(), redis.call("HGET", deal, "creator") or ""}
for _, x in ipairs(redis.call("HGETALL", KEYS[6])) do
  out[#out + 1] = x
end
return out
