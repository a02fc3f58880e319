-- Reads an auction: no ARGV. Replies {r="view", a} or {r="not_found"} (its keys expired).
local s = load()
if not s then
  return cjson.encode({ r = "not_found" })
end
return cjson.encode({ r = "view", a = view(s) })
