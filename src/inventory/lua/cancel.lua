-- ARGV: user reservation now ("": Redis's clock)
-- Returns "C|remaining|version" (stock returned now), "C|-" (already released) or "R|not_found".
local user, resv, now = ARGV[1], ARGV[2], clock(ARGV[3])
local f = hold_of(user, resv)
if not f then
  return "R|not_found"
end
if f[1] == "R" then
  return "C|-"
end
if not still_held(f, now) then
  return "R|not_found"
end
release(user, tonumber(f[3]))
redis.call("ZREM", holds, resv)
redis.call("HSET", hold, resv, "R|" .. user .. "|" .. f[3] .. "|" .. f[4] .. "|")
return "C|" .. level()
