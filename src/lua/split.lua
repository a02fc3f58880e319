-- Shared by every livehub Lua script that parses a "a|b|c" record (prepended at build time).
local function split(s)
  local t, i = {}, 1
  while true do
    local j = string.find(s, "|", i, true)
    if not j then
      t[#t + 1] = string.sub(s, i)
      return t
    end
    t[#t + 1] = string.sub(s, i, j - 1)
    i = j + 1
  end
end
