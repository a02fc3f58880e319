-- ARGV: due ("1": end it only if its time has run out by Redis's clock, as a node's ticker
-- asks; "0": end it now, as its host asks), now ("": Redis's clock). Returns "was_live|view", NOTDUE or NOTFOUND.
if redis.call("EXISTS", deal) == 0 then
  return "NOTFOUND"
end
local now = clock(ARGV[2])
local f = redis.call("HMGET", deal, "ended", "ends_at")
if ARGV[1] == "1" and f[1] == "0" and now < tonumber(f[2]) then
  return "NOTDUE"
end
local was_live = 0
if f[1] == "0" and now < tonumber(f[2]) then
  was_live = 1
end
redis.call("HSET", deal, "ended", 1)
redis.call("HINCRBY", deal, "version", 1)
return was_live .. "|" .. view()
