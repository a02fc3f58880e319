-- Schedules an auction's close: KEYS[1] the due set (ZSET "room|auction" -> when its end comes;
-- its own slot, so no auction script can touch it: it is written before an auction's start and
-- corrected after each close). ARGV member, at (Unix ms), ttl_ms (the set lives at least that
-- long: each add can only lengthen its life). Does not move an entry already there (a retried
-- start must not put a live auction's close back).
redis.call("ZADD", KEYS[1], "NX", ARGV[2], ARGV[1])
local ttl = tonumber(ARGV[3])
if redis.call("PTTL", KEYS[1]) < ttl then
  redis.call("PEXPIRE", KEYS[1], ttl)
end
return 1
