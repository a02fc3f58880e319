-- (Prepended to the bus scripts that write a room.) A room's lifetime: its `meta` key expires
-- room.open_ttl_ms after its host was last seen (a host or admin connected on some node, a
-- host command, a deal still open), and every other key of the room is given meta's remaining
-- time whenever it is written, so none outlives the room. A room whose meta expired is closed:
-- nothing writes it again until its host opens it anew (load.lua), and viewers are told the
-- show has not started.
-- outlive(meta, others, refresh_ms): refresh_ms (a number, or nil to keep meta's time) is
-- meta's new time to live; each key of `others` gets meta's remaining time. A room stored
-- before rooms had a lifetime gets `open_ttl` (below) the first time it is written.
local function outlive(meta, others, refresh_ms, open_ttl)
  if refresh_ms then
    redis.call("PEXPIRE", meta, refresh_ms)
  end
  local ttl = redis.call("PTTL", meta)
  if ttl == -1 then
    redis.call("PEXPIRE", meta, open_ttl)
    ttl = open_ttl
  end
  if ttl > 0 then
    for _, k in ipairs(others) do
      redis.call("PEXPIRE", k, ttl)
    end
  end
end
