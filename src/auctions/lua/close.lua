-- Closes an auction whose end has come: ARGV now. Replies {r="closed", a} from the one call
-- that closed it (sold to the leader at the price, or unsold), {r="open", a} before its end,
-- {r="already", a} after the close, {r="not_found"}.
local now = clock(ARGV[1])
local s = load()
if not s then
  return cjson.encode({ r = "not_found" })
end
if s.status ~= "live" then
  return cjson.encode({ r = "already", a = view(s) })
end
if now < s.ends_at then
  return cjson.encode({ r = "open", a = view(s) })
end
if s.leader ~= nil and s.current ~= nil then
  s.status = "sold"
else
  s.status = "unsold"
end
redis.call("HSET", auction, "status", s.status)
return cjson.encode({ r = "closed", a = view(s) })
