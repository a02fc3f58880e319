-- Starts an auction: ARGV now, start, inc, extend, sd ("1"/"0"), duration_ms, retention_ms
-- (how long its keys outlive its end), id, pid, title, img, cur, cbps, abps, creator. Replies {r="started", a} or {r="conflict"} when the id
-- is already used (its keys still kept).
local now = clock(ARGV[1])
if redis.call("EXISTS", auction) == 1 then
  return cjson.encode({ r = "conflict" })
end
local ends_at = now + tonumber(ARGV[6])
redis.call("HSET", auction, "start", ARGV[2], "inc", ARGV[3], "extend", ARGV[4], "sd", ARGV[5],
  "ends_at", int(ends_at), "status", "live", "bids", "0", "current", "", "leader", "",
  "leader_max", "", "second", "", "started_at", int(now), "lname", "", "pid", ARGV[9],
  "title", ARGV[10], "img", ARGV[11], "cur", ARGV[12], "dur", ARGV[6], "cbps", ARGV[13],
  "abps", ARGV[14], "lbuyer", "", "creator", ARGV[15] or "")
-- Relative, so a caller-driven clock (tests) times it as Redis does.
local ttl = ends_at - now + tonumber(ARGV[7])
redis.call("PEXPIRE", auction, int(ttl))
redis.call("ZADD", KEYS[3], int(now), ARGV[8])
if redis.call("PTTL", KEYS[3]) < ttl then
  redis.call("PEXPIRE", KEYS[3], int(ttl))
end
return cjson.encode({ r = "started", a = view(load()) })
