#!/usr/bin/env bash
# Redis's own ceiling for livehub's bid script (issue 24), the bench-reserve.sh method:
# redis-benchmark EVALSHA of bid.lua (as RedisAuctions builds it: clock.lua, the auctions'
# common.lua, bid.lua) on one auction of a throwaway redis-server, 50 clients, a new user and
# request id per call and a random amount up to 100,000,000 cents as its own maximum (a share is
# accepted, the rest too_low, as in a bidding war); then how many were accepted. The hub's own bid path is measured once the hub
# serves bids.
#   bash scripts/bench-bids.sh [REQUESTS=300000]
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-300000}
PORT=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
redis-server --port "$PORT" --bind 127.0.0.1 --save "" --appendonly no --daemonize no >/dev/null &
RPID=$!
trap 'kill $RPID 2>/dev/null || true' EXIT
for _ in $(seq 50); do redis-cli -p "$PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
lua() { cat src/lua/clock.lua; echo; cat src/auctions/lua/common.lua; echo; cat "src/auctions/lua/$1"; }
# One auction's keys (src/auctions/redis.rs): its room's tag, then ROOM:~auction:ID.
T="{lh:p00}:bench:~auction:a1"
KEYS=("$T:a" "$T:answers" "{lh:p00}:bench:~auctions")
# start.lua: now start inc extend sd duration_ms retention_ms id pid title img cur cbps abps.
redis-cli -p "$PORT" EVAL "$(lua start.lua)" 3 "${KEYS[@]}" \
  "" 100 1 10000 0 3600000 3600000 a1 mug "Bench mug" "" USD 0 0 >/dev/null
SHA=$(redis-cli -p "$PORT" SCRIPT LOAD "$(lua bid.lua)")
echo "== redis-benchmark: EVALSHA bid.lua ($N calls, 50 clients, random user, request id and amount)"
# bid.lua: now user request_id amount max answer_ttl_ms retention_ms name.
redis-benchmark -p "$PORT" -n "$N" -c 50 -r 100000000 -q \
  EVALSHA "$SHA" 3 "${KEYS[@]}" "" u__rand_int__ r__rand_int__ __rand_int__ "" \
  600000 3600000 bidder | tr '\r' '\n' | grep "requests per second" |
  sed 's/.*: \([0-9.]* requests per second.*\)/   \1/'
redis-cli -p "$PORT" HMGET "$T:a" bids current status | paste -sd' ' |
  sed 's/^/   auction after: bids current status = /'
