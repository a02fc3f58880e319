-- KEYS[5] the idempotency record of (user, request_id).
-- ARGV: user qty now hold_ms idempotency_ttl_ms digest rejected_idempotency_ttl_ms
-- (now "": Redis's clock; ARGV[6] is the digest of a deal that has none of its own, see
-- common.lua)
-- Returns a flat list, not cjson like the other deal scripts (this is the flash spike's hot
-- path: cjson.encode cost Redis about 9% of its reserves per second): {"reserved", reservation,
-- qty, expires_at, remaining, version, due} or {"rejected", reason}, every field a string; a
-- repeat of the same (user, request_id) returns the first answer (without `due`) and changes
-- nothing. reply.rs's `parse_reserve` reads it by tag and exact length. `due` is the deal's earliest live hold expiry, for the
-- sweepers' due index.
-- The record of the first answer keeps its format of every version so far,
-- "OK|reservation|qty|expires_at|remaining|version" or "R|reason", so a record written before
-- replies were JSON (or by a node not yet upgraded) answers a repeat alike.
-- Only a hold is remembered for idempotency_ttl_ms. A rejection changed no stock: it is kept for
-- rejected_idempotency_ttl_ms only, and a reserve of a deal that does not exist is not kept at
-- all, so made-up requests leave (almost) nothing behind. Once that short record is gone, a
-- repeat is decided afresh and may hold stock (it never held any before).
-- A stored answer as the reply's fields (an unknown format is returned as it is, and refused
-- by the reader).
local function answer(stored)
  local f = split(stored)
  if f[1] == "R" and #f == 2 then
    return {"rejected", f[2]}
  elseif f[1] == "OK" and #f == 6 then
    return {"reserved", f[2], f[3], f[4], f[5], f[6]}
  end
  return {"stored", stored}
end

local cached = redis.call("GET", KEYS[5])
if cached then
  return answer(cached)
end
if redis.call("EXISTS", deal) == 0 then
  return {"rejected", "not_found"}
end
local user, qty, now = ARGV[1], tonumber(ARGV[2]), clock(ARGV[3])
expire_due(now)
local d = redis.call("HMGET", deal, "ended", "ends_at", "per_user_limit", "remaining", "purge_at")
local used = tonumber(redis.call("HGET", users, user) or "0")
local rejected
if d[1] == "1" or now >= tonumber(d[2]) then
  rejected = "R|deal_not_live"
elseif used + qty > tonumber(d[3]) then
  rejected = "R|limit_reached"
elseif tonumber(d[4]) < qty then
  rejected = "R|sold_out"
end
if rejected then
  redis.call("SET", KEYS[5], rejected, "PX", ARGV[7])
  return answer(rejected)
end
local n = redis.call("HINCRBY", deal, "n", 1)
local resv = "h" .. digest_of(ARGV[6]) .. "-" .. n
local expires = int(now + tonumber(ARGV[4]))
redis.call("HINCRBY", deal, "remaining", -qty)
redis.call("HINCRBY", deal, "held", qty)
redis.call("HINCRBY", deal, "version", 1)
redis.call("HINCRBY", users, user, qty)
redis.call("ZADD", holds, expires, resv)
redis.call("HSET", hold, resv, "H|" .. user .. "|" .. qty .. "|" .. expires .. "|")
for _, k in ipairs({holds, hold, users}) do
  redis.call("PEXPIREAT", k, d[5])
end
local remaining, version = level()
qty = tostring(qty)
redis.call("SET", KEYS[5], "OK|" .. resv .. "|" .. qty .. "|" .. expires .. "|" .. remaining ..
  "|" .. version, "PX", ARGV[5])
return {"reserved", resv, qty, expires, remaining, version, next_expiry()}
