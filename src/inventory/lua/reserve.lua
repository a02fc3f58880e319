-- KEYS[5] the idempotency record of (user, request_id).
-- ARGV: user qty now hold_ms idempotency_ttl_ms digest
-- Returns "OK|reservation|qty|expires_at|remaining|version" or "R|reason"; a repeat of the same
-- (user, request_id) returns the first answer and changes nothing.
local cached = redis.call("GET", KEYS[5])
if cached then
  return cached
end
local user, qty, now = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local answer
if redis.call("EXISTS", deal) == 0 then
  answer = "R|not_found"
else
  expire_due(now)
  local d = redis.call("HMGET", deal, "ended", "ends_at", "per_user_limit", "remaining", "purge_at")
  local used = tonumber(redis.call("HGET", users, user) or "0")
  if d[1] == "1" or now >= tonumber(d[2]) then
    answer = "R|deal_not_live"
  elseif used + qty > tonumber(d[3]) then
    answer = "R|limit_reached"
  elseif tonumber(d[4]) < qty then
    answer = "R|sold_out"
  else
    local n = redis.call("HINCRBY", deal, "n", 1)
    local resv = "h" .. ARGV[6] .. "-" .. n
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
    answer = "OK|" .. resv .. "|" .. qty .. "|" .. expires .. "|" .. level()
  end
end
redis.call("SET", KEYS[5], answer, "PX", ARGV[5])
return answer
