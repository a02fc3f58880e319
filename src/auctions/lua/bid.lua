-- A bid: ARGV now, user, request_id, amount, max ("": the amount; amounts checked by the
-- caller: 1 to the price cap, max >= amount), answer_ttl_ms, retention_ms, name (shown when it
-- leads), buyer ("channel|aff", kept while it leads: the winner's order is attributed to it). Replies (remembered under the
-- request id, so a retry gets the first outcome): {r="accepted", current, leading, ends_at,
-- extended, a}, {r="too_low", min}, {r="ended", a}; {r="not_found"} (not remembered).
local now = clock(ARGV[1])
local user, rid = ARGV[2], ARGV[3]
local amount = tonumber(ARGV[4])
local max = amount
if ARGV[5] ~= "" then
  max = tonumber(ARGV[5])
end
local key = user .. "|" .. rid
local before = redis.call("HGET", answers, key)
if before then
  return before
end
local s = load()
if not s then
  return cjson.encode({ r = "not_found" })
end
local reply
if s.status ~= "live" or now >= s.ends_at then
  reply = { r = "ended", a = view(s) }
else
  local min
  if s.current == nil then
    min = s.start
  else
    min = s.current + s.inc
  end
  if s.leader == user and s.leader_max > min then
    min = s.leader_max
  end
  if amount < min or max < min then
    reply = { r = "too_low", min = int(min) }
  else
    if s.leader == nil or s.leader == user then
      s.leader, s.leader_max, s.lname, s.lbuyer = user, max, ARGV[8], ARGV[9] or ""
    elseif max > s.leader_max then
      s.second = s.leader_max
      s.leader, s.leader_max, s.lname, s.lbuyer = user, max, ARGV[8], ARGV[9] or ""
    else
      s.second = max
    end
    s.bids = s.bids + 1
    if s.second == nil then
      s.current = s.start
    else
      s.current = math.min(s.second + s.inc, s.leader_max)
    end
    local extended = false
    if not s.sd and s.ends_at - now < s.extend then
      s.ends_at = now + s.extend
      extended = true
      local ttl = s.ends_at - now + tonumber(ARGV[7])
      redis.call("PEXPIRE", auction, int(ttl))
      if redis.call("PTTL", KEYS[3]) < ttl then
        redis.call("PEXPIRE", KEYS[3], int(ttl))
      end
    end
    local second = ""
    if s.second ~= nil then
      second = int(s.second)
    end
    redis.call("HSET", auction, "bids", int(s.bids), "current", int(s.current), "leader",
      s.leader, "leader_max", int(s.leader_max), "second", second, "ends_at", int(s.ends_at),
      "lname", s.lname, "lbuyer", s.lbuyer)
    reply = {
      r = "accepted", current = int(s.current), leading = s.leader == user,
      ends_at = int(s.ends_at), extended = extended, a = view(s),
    }
  end
end
local text = cjson.encode(reply)
redis.call("HSET", answers, key, text)
redis.call("PEXPIRE", answers, tonumber(ARGV[6]))
return text
