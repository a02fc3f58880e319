-- ARGV: now ("": Redis's clock). Returns {r = "swept", expired, remaining, version, done,
-- next} or {r = "gone"}; done (a boolean) is true when the deal has ended and holds no stock,
-- so nobody needs to sweep it again; next = when the deal next needs a sweep (absent for
-- never): its earliest live hold's expiry, or while it is live and holds nothing, its end (then it is done, and leaves the sweepers'
-- registry instead of waiting there for a reconciling pass).
if redis.call("EXISTS", deal) == 0 then
  return reply("gone")
end
local now = clock(ARGV[1])
local n = expire_due(now)
local d = redis.call("HMGET", deal, "ended", "ends_at")
local ended = d[1] == "1" or now >= tonumber(d[2])
local next = next_expiry()
local done = false
if ended and next == "" then
  done = true
elseif next == "" then
  next = d[2]
end
if next == "" then
  next = nil
end
local remaining, version = level()
return reply("swept", {expired = int(n), remaining = remaining, version = version, done = done,
  next = next})
