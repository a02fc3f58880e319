-- Read only. Returns view() or NOTFOUND.
if redis.call("EXISTS", deal) == 0 then
  return "NOTFOUND"
end
return view()
