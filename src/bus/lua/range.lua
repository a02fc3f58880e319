-- A room's history from one seq on, for a node repairing a gap.
--   KEYS[1] hist (see publish.lua)
-- ARGV: 1 first seq wanted, 2 most events to return
-- Returns a flat list {seq, event JSON, seq, event JSON, ...}, oldest first.
local out = {}
for _, e in ipairs(redis.call("XRANGE", KEYS[1], ARGV[1] .. "-0", "+", "COUNT", tonumber(ARGV[2]))) do
  local id = e[1]
  out[#out + 1] = string.sub(id, 1, string.find(id, "-", 1, true) - 1)
  out[#out + 1] = e[2][2]
end
return out
