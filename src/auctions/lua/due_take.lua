-- Takes auctions whose end has come: KEYS[1] the due set; ARGV now ("" = Redis's clock), lease_ms,
-- limit. Each taken entry is moved lease_ms ahead rather than removed, so one whose closer dies
-- before closing it comes back; a close removes it (or moves it to a later end).
local now = clock(ARGV[1]) -- src/lua/clock.lua, prepended
local taken = redis.call("ZRANGEBYSCORE", KEYS[1], "-inf", now, "LIMIT", 0, tonumber(ARGV[3]))
local again = string.format("%.0f", now + tonumber(ARGV[2]))
for _, m in ipairs(taken) do
  redis.call("ZADD", KEYS[1], "XX", again, m)
end
return taken
