-- Lifts one user's mute in a room, atomically: read and delete.
--   KEYS[1] mutes  HASH  user -> muted until (Unix ms) (see publish.lua)
-- ARGV: 1 the user, 2 now (ms)
-- Returns 1 when the user was muted (their mute had not run out), else 0; either way the
-- user's entry is gone.
local muted = tonumber(redis.call("HGET", KEYS[1], ARGV[1]) or "0") or 0
if muted == 0 then
  return 0
end
redis.call("HDEL", KEYS[1], ARGV[1])
if muted > tonumber(ARGV[2]) then
  return 1
end
return 0
