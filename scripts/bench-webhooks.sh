#!/usr/bin/env bash
# Checkouts per second with webhooks off and on (issue 23), alternating in one run on one
# throwaway redis-server: BUYERS buyers reserve and check out in closed loops for SECONDS through
# the hub's WebSocket path (livehub-loadtest reserve --checkout); with webhooks on, every order
# event is POSTed to a local receiver (livehub-loadtest webhook-sink), which reports the lag
# from each event to its arrival once delivery has caught up. The hub runs on core 0, everything
# else (Redis, the buyers, the receiver at the lowest priority, standing in for a receiver on
# another machine) on core 1, so the hub's own cost of delivering is what moves its checkouts per
# second. Each round runs the modes in MODES: off (no endpoint), on (one event per POST) and
# batch (`batch = 100`).
#   [MODES="off on batch"] bash scripts/bench-webhooks.sh [BUYERS=200] [SECONDS=10] [ROUNDS=2]
set -euo pipefail
cd "$(dirname "$0")/.."
BUYERS=${1:-200}; SECS=${2:-10}; PAIRS=${3:-2}; MODES=${MODES:-off on batch}
cargo build --release --workspace -q
free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
RPORT=$(free_port)
WORK=$(mktemp -d)
taskset -c 1 redis-server --port "$RPORT" --bind 127.0.0.1 --save "" --appendonly no --daemonize no >/dev/null &
RPID=$!
HPID=""; SPID=""
trap 'kill $RPID $HPID $SPID 2>/dev/null || true; rm -rf "$WORK"' EXIT
for _ in $(seq 50); do redis-cli -p "$RPORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
SECRET=whsec_bench_0123456789
run() { # run MODE N
  local mode=$1 n=$2 hport sport
  hport=$(free_port); sport=$(free_port)
  : >"$WORK/hub.toml"
  if [ "$mode" != off ]; then
    printf '[[webhooks.endpoints]]\nname = "bench"\nurl = "http://127.0.0.1:%s/hook"\nsecret = "%s"\nbatch = %s\n' \
      "$sport" "$SECRET" "$([ "$mode" = batch ] && echo 100 || echo 1)" >"$WORK/hub.toml"
    taskset -c 1 nice -n 19 ./target/release/livehub-loadtest webhook-sink --listen "127.0.0.1:$sport" --secret "$SECRET" \
      --idle-exit 3 >"$WORK/sink.txt" &
    SPID=$!
  fi
  LIVEHUB_SERVER__BIND=127.0.0.1:$hport LIVEHUB_LIMITS__CONNECTIONS_PER_IP=0 \
  LIVEHUB_INVENTORY__BACKEND=redis LIVEHUB_REDIS__URL=redis://127.0.0.1:$RPORT \
  LIVEHUB_REDIS__KEY_PREFIX="wb$n$mode" \
  LIVEHUB_LIMITS__RESERVE_RATE_PER_SEC=1000000 LIVEHUB_LIMITS__RESERVE_BURST=1000000 \
  LIVEHUB_LIMITS__VIEWER_FRAMES_PER_SEC=1000000 LIVEHUB_LIMITS__VIEWER_FRAMES_BURST=1000000 \
  RUST_LOG=error taskset -c 0 ./target/release/livehub serve --config "$WORK/hub.toml" >/dev/null &
  HPID=$!
  for _ in $(seq 50); do curl -sf "http://127.0.0.1:$hport/healthz" >/dev/null && break; sleep 0.1; done
  local cpu0 cpu1
  cpu0=$(awk '{print $14 + $15}' "/proc/$HPID/stat")
  taskset -c 1 ./target/release/livehub-loadtest reserve --checkout --url "ws://127.0.0.1:$hport" \
    --room "bench$n" --buyers "$BUYERS" --duration "$SECS" >"$WORK/reserve.txt"
  local cps lat lag="-" orders us
  cps=$(grep -o 'checkouts/s: [0-9]*' "$WORK/reserve.txt" | grep -o '[0-9]*$')
  if [ "$mode" != off ]; then
    wait "$SPID" || true; SPID=""
  fi
  # The hub's CPU (user + system, clock ticks) from before the buyers to after delivery caught up.
  cpu1=$(awk '{print $14 + $15}' "/proc/$HPID/stat")
  orders=$(grep -o 'orders: [0-9]*' "$WORK/reserve.txt" | grep -o '[0-9]*$')
  us=$(python3 -c "print(f'{($cpu1 - $cpu0) / $(getconf CLK_TCK) * 1e6 / max($orders, 1):.1f}')")
  lat=$(grep 'reserve latency' "$WORK/reserve.txt" | sed 's/reserve latency ms: //')
  if [ "$mode" != off ]; then
    lag="$(grep 'events:' "$WORK/sink.txt"); $(grep 'webhook lag' "$WORK/sink.txt")"
  fi
  kill "$HPID" 2>/dev/null || true; wait "$HPID" 2>/dev/null || true; HPID=""
  printf '| %s, %s | %s | %s | %s | %s |\n' "webhooks $mode" "$n" "$cps" "$us" "$lat" "$lag"
}
echo "| run | checkouts/s | hub CPU per order (us) | reserve latency ms | webhook events and lag |"
echo "|---|---|---|---|---|"
for n in $(seq "$PAIRS"); do
  for mode in $MODES; do run "$mode" "$n"; done
done
