-- ARGV: now. Returns "was_live|view" or NOTFOUND.
if redis.call("EXISTS", deal) == 0 then
  return "NOTFOUND"
end
local f = redis.call("HMGET", deal, "ended", "ends_at")
local was_live = 0
if f[1] == "0" and tonumber(ARGV[1]) < tonumber(f[2]) then
  was_live = 1
end
redis.call("HSET", deal, "ended", 1)
redis.call("HINCRBY", deal, "version", 1)
return was_live .. "|" .. view()
