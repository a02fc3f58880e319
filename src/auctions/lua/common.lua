-- Shared by livehub's auction scripts (prepended to each; src/auctions/redis.rs). One auction's
-- keys share its room's hash tag, {PREFIX:pNN} (src/inventory/redis/keys.rs), so each script
-- runs on one cluster slot:
--   KEYS[1] auction HASH start inc extend sd ends_at status bids current leader leader_max
--                        second started_at ("" for a price or a maximum not there yet), lname
--                        (the leader's display name), lbuyer (the leader's "channel|aff", for
--                        the winner's order), and what is sold: pid title img cur dur cbps
--                        abps, and creator (who started it)
--   KEYS[2] answers HASH "user|request_id" -> the bid's reply (a retry gets the first outcome)
--   KEYS[3] index   ZSET the room's auctions: id -> started_at
-- Every key expires retention_ms after the auction's end (an extension lengthens it).
-- Each script mirrors src/auction/rules.rs (the pure rules its tests check, and the Redis
-- conformance suite checks this against). Numbers: every price and time is an integer below
-- 2^53, exact in a Lua double, and written with %.0f (tostring would print 1.7e+12).
-- Time: clock(given) of src/lua/clock.lua, prepended before this: "" reads Redis's TIME (one
-- clock for every node); a test that drives time passes Unix ms.
local auction, answers = KEYS[1], KEYS[2]

local function int(n)
  return string.format("%.0f", n)
end

-- The auction's fields as numbers (nil for "" and for a missing field), or nil when it is not
-- stored.
local function load()
  local v = redis.call("HMGET", auction, "start", "inc", "extend", "sd", "ends_at", "status",
    "bids", "current", "leader", "leader_max", "second", "started_at", "lname", "pid", "title",
    "img", "cur", "dur", "cbps", "abps", "lbuyer", "creator")
  if not v[1] then
    return nil
  end
  local function num(x)
    if x == false or x == "" then
      return nil
    end
    return tonumber(x)
  end
  return {
    start = num(v[1]), inc = num(v[2]), extend = num(v[3]), sd = v[4] == "1",
    ends_at = num(v[5]), status = v[6], bids = num(v[7]) or 0, current = num(v[8]),
    leader = (v[9] ~= false and v[9] ~= "") and v[9] or nil, leader_max = num(v[10]),
    second = num(v[11]), started_at = num(v[12]), lname = v[13] or "", pid = v[14] or "",
    title = v[15] or "", img = v[16] or "", cur = v[17] or "", dur = v[18] or "",
    cbps = v[19] or "", abps = v[20] or "", lbuyer = v[21] or "", creator = v[22] or "",
  }
end

-- The state as the reply's `a` object (numbers as decimal strings, "" when absent).
local function view(s)
  local function opt(n)
    if n == nil then
      return ""
    end
    return int(n)
  end
  return {
    ends_at = int(s.ends_at), status = s.status, bids = int(s.bids), current = opt(s.current),
    leader = s.leader or "", leader_max = opt(s.leader_max), second = opt(s.second),
    started_at = opt(s.started_at), lname = s.lname, pid = s.pid, title = s.title, img = s.img,
    cur = s.cur, start = int(s.start), inc = int(s.inc), extend = int(s.extend),
    sd = s.sd and "1" or "0", dur = s.dur, cbps = s.cbps, abps = s.abps, lbuyer = s.lbuyer,
    creator = s.creator,
  }
end
