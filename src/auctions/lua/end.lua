-- A host ends an auction: ARGV now. Only one without a bid: it closes unsold, its end moved to
-- now. Replies {r="ended", a}, {r="has_bids", a}, {r="closed", a} (already), {r="not_found"}.
local now = clock(ARGV[1])
local s = load()
if not s then
  return cjson.encode({ r = "not_found" })
end
if s.status ~= "live" then
  return cjson.encode({ r = "closed", a = view(s) })
end
if s.bids > 0 then
  return cjson.encode({ r = "has_bids", a = view(s) })
end
s.status = "unsold"
if now < s.ends_at then
  s.ends_at = now
end
redis.call("HSET", auction, "status", "unsold", "ends_at", int(s.ends_at))
return cjson.encode({ r = "ended", a = view(s) })
