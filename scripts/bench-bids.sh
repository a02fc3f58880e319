#!/usr/bin/env bash
# Redis's own ceiling for livehub's bid script (issue 24), the bench-reserve.sh method:
# redis-benchmark EVALSHA of bid.lua (as RedisAuctions builds it: clock.lua, the auctions'
# common.lua, bid.lua) on one auction of a throwaway redis-server, 50 clients, a new user and
# request id per call and a random amount up to 100,000,000 cents as its own maximum (a share is
# accepted, the rest too_low, as in a bidding war); then how many were accepted. Then, in the
# same run against the same Redis, bids per second through the hub's WebSocket path, the same
# mix (`livehub-loadtest reserve --bid`: BIDDERS closed loops, each a random amount as its own
# maximum) on one release hub and on three.
#   bash scripts/bench-bids.sh [REQUESTS=300000] [BIDDERS=500] [SECONDS=10]
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-300000}; BIDDERS=${2:-500}; SECS=${3:-10}
cargo build --release --workspace -q
PORT=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
redis-server --port "$PORT" --bind 127.0.0.1 --save "" --appendonly no --daemonize no >/dev/null &
RPID=$!
HPIDS=""
trap 'kill $RPID $HPIDS 2>/dev/null || true' EXIT
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
free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
hubs() { # hubs N: starts N release hubs on the throwaway Redis; their ws:// URLs in URLS
  local port
  URLS=""
  for _ in $(seq "$1"); do
    port=$(free_port)
    LIVEHUB_SERVER__BIND=127.0.0.1:$port LIVEHUB_LIMITS__CONNECTIONS_PER_IP=0 \
    LIVEHUB_INVENTORY__BACKEND=redis LIVEHUB_REDIS__URL=redis://127.0.0.1:$PORT \
    LIVEHUB_LIMITS__BID_RATE_PER_SEC=1000000 LIVEHUB_LIMITS__BID_BURST=1000000 \
    LIVEHUB_LIMITS__VIEWER_FRAMES_PER_SEC=1000000 LIVEHUB_LIMITS__VIEWER_FRAMES_BURST=1000000 \
    RUST_LOG=error ./target/release/livehub serve >/dev/null 2>&1 &
    HPIDS="$HPIDS $!"
    for _ in $(seq 50); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done
    URLS="$URLS,ws://127.0.0.1:$port"
  done
  URLS=${URLS#,}
}
for n in 1 3; do
  echo "== hub WebSocket path: $BIDDERS bidders, $SECS s, $n node(s)"
  hubs "$n"
  ./target/release/livehub-loadtest reserve --bid --url "$URLS" --room "bench$n" \
    --buyers "$BIDDERS" --duration "$SECS" | sed 's/^/   /'
  kill $HPIDS 2>/dev/null || true
  wait $HPIDS 2>/dev/null || true
  HPIDS=""
done
