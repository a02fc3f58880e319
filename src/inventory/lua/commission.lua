-- Prepended to checkout.lua; the Redis tests also run it alone against commerce::commission.
-- floor(total * bps / 10000) for total < 2^53 and bps <= 10000, exactly: in two steps, so no
-- product reaches 2^53 (as commerce::commission does in Rust).
local function commission(total, bps)
  if bps > 10000 then
    bps = 10000
  end
  local q = math.floor(total / 10000)
  local r = total - q * 10000
  -- total / 10000 is a rounded double: correct q so that 0 <= r < 10000 holds exactly.
  if r < 0 then
    q, r = q - 1, r + 10000
  elseif r >= 10000 then
    q, r = q + 1, r - 10000
  end
  return q * bps + math.floor(r * bps / 10000)
end
