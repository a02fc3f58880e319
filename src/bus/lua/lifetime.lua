-- (Prepended to the bus scripts that write a room.) A room's lifetime: its `meta` key expires
-- room.open_ttl_ms after its host was last seen (a host or admin connected on some node, a
-- host command, a deal still open), and every other key of the room gets meta's remaining time
-- whenever it is written, so none outlives the room. A room whose meta expired is closed:
-- nothing writes it again until its host opens it anew (load.lua), and viewers are told the
-- show has not started.

-- The host was seen: meta lives `open_ttl` ms from now, and so do `others` (the room's other
-- keys). At most once a second (or half open_ttl, if shorter), since every node reports every
-- tick: a refresh that recent is kept; `force` refreshes anyway. A room stored before rooms had
-- a lifetime gets one here.
local function refresh(meta, others, open_ttl, force)
  local ttl = redis.call("PTTL", meta)
  local recent = open_ttl - math.min(1000, math.floor(open_ttl / 2))
  if ttl == -2 or (not force and ttl > recent) then
    return
  end
  redis.call("PEXPIRE", meta, open_ttl)
  for _, k in ipairs(others) do
    redis.call("PEXPIRE", k, open_ttl)
  end
end

-- Gives each key of `written` meta's remaining time (a room stored before rooms had a lifetime
-- gets `open_ttl` first), so a key just created never lives without one.
local function align(meta, written, open_ttl)
  local ttl = redis.call("PTTL", meta)
  if ttl == -1 then
    redis.call("PEXPIRE", meta, open_ttl)
    ttl = open_ttl
  end
  if ttl > 0 then
    for _, k in ipairs(written) do
      redis.call("PEXPIRE", k, ttl)
    end
  end
end
