-- Read only. Returns {r = "deal", deal = view()} or {r = "not_found"}.
if redis.call("EXISTS", deal) == 0 then
  return reply("not_found")
end
return reply("deal", {deal = view()})
