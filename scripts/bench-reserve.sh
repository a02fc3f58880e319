#!/usr/bin/env bash
# Reserve throughput, side by side in one run: Redis's own ceiling for livehub's reserve script
# (redis-benchmark EVALSHA) and reserves per second through the hub's WebSocket path with
# BUYERS concurrent buyers, against the same throwaway redis-server.
#   bash scripts/bench-reserve.sh [BUYERS=500] [SECONDS=10]
set -euo pipefail
cd "$(dirname "$0")/.."
BUYERS=${1:-500}; SECS=${2:-10}
cargo build --release --workspace -q
PORT=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
HUBPORT=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
redis-server --port "$PORT" --bind 127.0.0.1 --save "" --appendonly no --daemonize no >/dev/null &
RPID=$!
trap 'kill $RPID $HPID 2>/dev/null || true' EXIT
HPID=
for _ in $(seq 50); do redis-cli -p "$PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
# The scripts as RedisInventory builds them: split.lua, clock.lua, commission.lua, common.lua, then the
# script itself.
lua() { cat src/lua/split.lua; echo; cat src/lua/clock.lua; echo; cat src/inventory/lua/commission.lua; echo
  cat src/inventory/lua/common.lua; echo; cat "src/inventory/lua/$1"; }
SCRIPT="$(lua reserve.lua)"
START="$(lua start_deal.lua)"
SHA=$(redis-cli -p "$PORT" SCRIPT LOAD "$SCRIPT")
NOW=$(($(date +%s%3N)))
# A deal's keys: its room's feed partition tag, then ROOM:DEAL (src/inventory/redis/keys.rs).
P="{lh:p00}"
T="$P:bench:rb"
KEYS8=("$T:deal" "$T:holds" "$T:hold" "$T:users" "$T:orders" "$T:sales" "$T:ords" "$P:feed")
# start_deal.lua's arguments: product price currency stock limit duration_ms creator room deal
# keep_ms commission_bps affiliate_bps image_url title digest now ("": Redis's clock) feed_ms.
redis-cli -p "$PORT" EVAL "$START" 8 "${KEYS8[@]}" \
  p 100 USD 10000000 10000000 3600000 host bench rb 3600000 0 0 "" "Bench product" \
  0123456789abcdef "" 3600000 >/dev/null
echo "== redis-benchmark: EVALSHA reserve.lua (50 clients, unique user and request_id per call)"
redis-benchmark -p "$PORT" -n 300000 -c 50 -r 1000000000 -q \
  EVALSHA "$SHA" 8 "$T:deal" "$T:holds" "$T:hold" "$T:users" "$T:req:u__rand_int__:r__rand_int__" \
  "$T:sales" "$T:ords" "$P:feed" \
  u__rand_int__ 1 "$NOW" 300000 3600000 0000000000000000 60000 | tr '\r' '\n' | grep "requests per second" | sed 's/.*: \([0-9.]* requests per second.*\)/   \1/'
redis-cli -p "$PORT" HMGET "$T:deal" stock remaining held sold | paste -sd' ' | sed 's/^/   deal after: stock remaining held sold = /'
echo "== hub WebSocket path: $BUYERS buyers, $SECS s"
LIVEHUB_SERVER__BIND=127.0.0.1:$HUBPORT LIVEHUB_LIMITS__CONNECTIONS_PER_IP=0 LIVEHUB_INVENTORY__BACKEND=redis LIVEHUB_REDIS__URL=redis://127.0.0.1:$PORT \
LIVEHUB_LIMITS__RESERVE_RATE_PER_SEC=1000000 LIVEHUB_LIMITS__RESERVE_BURST=1000000 \
LIVEHUB_LIMITS__VIEWER_FRAMES_PER_SEC=1000000 LIVEHUB_LIMITS__VIEWER_FRAMES_BURST=1000000 \
RUST_LOG=error ./target/release/livehub serve &
HPID=$!
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$HUBPORT/healthz" >/dev/null && break; sleep 0.1; done
./target/release/livehub-loadtest reserve --url "ws://127.0.0.1:$HUBPORT" --buyers "$BUYERS" --duration "$SECS"
