-- A creator's deals, one key of its own (so this runs on any cluster slot):
--   KEYS[1] PREFIX:creator:CREATOR:deals  ZSET "ROOM|DEAL" -> until when that deal's keys may
--           exist (Unix ms; its purge_at or later)
-- Written before the deal's own script (start_deal for the host, checkout for an affiliate),
-- so a deal that pays the creator is always listed; an entry for a deal without an order for
-- them, or that was never made, is filtered out by the reader.
-- ARGV: member until now. Adds member (keeping its later time), drops the entries of deals
-- purged before `now`, and makes the key live as long as its latest entry.
redis.call("ZADD", KEYS[1], "GT", ARGV[2], ARGV[1])
redis.call("ZREMRANGEBYSCORE", KEYS[1], "-inf", "(" .. ARGV[3])
local last = redis.call("ZRANGE", KEYS[1], -1, -1, "WITHSCORES")
if last[2] then
  redis.call("PEXPIREAT", KEYS[1], last[2])
end
return 1
