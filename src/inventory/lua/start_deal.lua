-- ARGV: product_id price_cents currency stock per_user_limit duration_ms creator room deal
--       keep_ms commission_bps affiliate_bps image_url title digest now ("": Redis's clock)
--       feed_ms (how long the order feed keeps this deal's events)
-- The deal runs duration_ms from now (Redis's clock), stored as started_at; its keys live
-- keep_ms after its end (purge_at: the longest hold, then the retention). image_url is stored
-- with `|` as %7C (see view() in common.lua). Returns {r = "started", purge_at, deal = view()}, or
-- {r = "conflict"} while any key of an earlier deal with this id still exists (its orders
-- included).
if redis.call("EXISTS", deal) == 1 or redis.call("EXISTS", KEYS[5]) == 1 then
  return reply("conflict")
end
local now = clock(ARGV[16])
local ends_at = now + tonumber(ARGV[6])
local purge_at = ends_at + tonumber(ARGV[10])
redis.call("HSET", deal,
  "product_id", ARGV[1], "price_cents", ARGV[2], "currency", ARGV[3],
  "stock", ARGV[4], "remaining", ARGV[4], "held", 0, "pending", 0, "sold", 0,
  "per_user_limit", ARGV[5], "ends_at", int(ends_at), "ended", 0, "version", 1, "n", 0,
  "creator", ARGV[7], "room", ARGV[8], "deal", ARGV[9], "purge_at", int(purge_at),
  "commission_bps", ARGV[11], "affiliate_bps", ARGV[12],
  "image_url", (string.gsub(ARGV[13], "|", "%%7C")), "title", ARGV[14], "digest", ARGV[15],
  "started_at", int(now), "feed_ms", ARGV[17])
redis.call("PEXPIREAT", deal, int(purge_at))
return reply("started", {purge_at = int(purge_at), deal = view()})
