-- The sweepers' due index, one key of its own (so this runs on any cluster slot):
--   KEYS[1] PREFIX:due  ZSET "ROOM|DEAL" -> when that deal next needs a sweep (Unix ms)
-- A deal with live holds has an entry no later than its earliest hold's expiry: a reserve adds
-- its deal with ZADD LT after its script, and a sweeper that took a deal adds it back with its
-- next expiry. Taking before sweeping keeps that true under races: a hold made after the
-- sweeper's look at the deal is added after the take, so it is never dropped.
-- ARGV: now ("": Redis's clock, as in every inventory script) limit. Removes and returns up to
-- `limit` deals due by now, with their times.
local now = clock(ARGV[1]) -- src/lua/clock.lua, prepended
local due = redis.call("ZRANGEBYSCORE", KEYS[1], "-inf", string.format("%.0f", now), "WITHSCORES", "LIMIT", 0, ARGV[2])
for i = 1, #due, 2 do
  redis.call("ZREM", KEYS[1], due[i])
end
return due
