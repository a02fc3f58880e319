-- ARGV: product_id price_cents currency stock per_user_limit ends_at creator room deal purge_at
--       commission_bps affiliate_bps image_url title
if redis.call("EXISTS", deal) == 1 then
  return "CONFLICT"
end
redis.call("HSET", deal,
  "product_id", ARGV[1], "price_cents", ARGV[2], "currency", ARGV[3],
  "stock", ARGV[4], "remaining", ARGV[4], "held", 0, "sold", 0,
  "per_user_limit", ARGV[5], "ends_at", ARGV[6], "ended", 0, "version", 1, "n", 0,
  "creator", ARGV[7], "room", ARGV[8], "deal", ARGV[9], "purge_at", ARGV[10],
  "commission_bps", ARGV[11], "affiliate_bps", ARGV[12],
  "image_url", ARGV[13], "title", ARGV[14])
redis.call("PEXPIREAT", deal, ARGV[10])
return "OK|" .. view()
