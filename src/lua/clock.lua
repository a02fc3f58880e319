-- Shared by the livehub Lua scripts that read the time (prepended at build time): one clock for
-- every node (issue 19). clock(given) is `given` (Unix ms) when it is not "", else Redis's own
-- TIME: a hub passes "" so holds, deal ends, sweeps and auction ends are timed alike whichever
-- node runs them; a caller that drives time itself (the conformance tests) passes its own.
local function clock(given)
  if given ~= "" then
    return tonumber(given)
  end
  local t = redis.call("TIME")
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
