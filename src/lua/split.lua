-- Shared by the livehub Lua scripts that read a stored "a|b|c" record (a hold, a comment rate,
-- a stored reserve answer; prepended at build time). Replies and arguments are not "|"-joined:
-- they are cjson objects or arrays (see src/inventory/redis/reply.rs, src/bus/redis/wire.rs).
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
