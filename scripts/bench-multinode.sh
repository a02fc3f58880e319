#!/usr/bin/env bash
# One show over several hub nodes, measured next to the same show on one node, in one run:
# VIEWERS viewers in one room, RATE comments/s from a host on the first node, SECS seconds, for
#   1. one node, memory backend (the single-process figures),
#   2. one node on Redis,
#   3. NODES nodes on one Redis (viewers spread round robin, the host on the first).
# For each: the load tester's totals and per-node lines (lost, duplicates, out of order, p50/p99,
# CPU per delivery), and from Redis `INFO commandstats` the commands Redis ran during the step
# and per comment published. Writes JSON to target/multinode-{1mem,1redis,N}.json.
#   bash scripts/bench-multinode.sh [VIEWERS=9000] [RATE=20] [SECS=60] [NODES=3]
set -euo pipefail
cd "$(dirname "$0")/.."
VIEWERS=${1:-9000}; RATE=${2:-20}; SECS=${3:-60}; NODES=${4:-3}
cargo build --release --workspace -q
LT=./target/release/livehub-loadtest
free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$1) 2>/dev/null && return 0; sleep 0.1; done; return 1; }
WORK=$(mktemp -d)
PIDS=()
RPORT=$(free_port)
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; redis-cli -p "$RPORT" shutdown nosave >/dev/null 2>&1 || true; rm -rf "$WORK"; }
trap cleanup EXIT
redis-server --port "$RPORT" --bind 127.0.0.1 --save "" --appendonly no --dir "$WORK" --daemonize yes --logfile "$WORK/redis.log"
wait_port "$RPORT"

start_nodes() { # start_nodes N BACKEND -> URLS, PIDLIST
  URLS=""; PIDLIST=""; PIDS=()
  for _ in $(seq "$1"); do
    local port; port=$(free_port)
    LIVEHUB_SERVER__BIND=127.0.0.1:$port LIVEHUB_INVENTORY__BACKEND=$2 LIVEHUB_LIMITS__CONNECTIONS_PER_IP=0 \
    LIVEHUB_REDIS__URL=redis://127.0.0.1:$RPORT RUST_LOG=error \
    LIVEHUB_LIMITS__COMMENT_RATE_PER_SEC=1000000 LIVEHUB_LIMITS__COMMENT_BURST=1000000 \
    LIVEHUB_LIMITS__HOST_FRAMES_PER_SEC=1000000 LIVEHUB_LIMITS__HOST_FRAMES_BURST=1000000 \
      ./target/release/livehub serve & PIDS+=($!)
    wait_port "$port"
    URLS="${URLS:+$URLS,}ws://127.0.0.1:$port"; PIDLIST="${PIDLIST:+$PIDLIST,}$!"
  done
}
stop_nodes() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done; PIDS=(); sleep 2; }
commandstats() { redis-cli -p "$RPORT" info commandstats | tr -d '\r' | grep '^cmdstat_'; }

run() { # run LABEL N BACKEND
  echo "== $1: $VIEWERS viewers, $RATE comments/s, ${SECS} s"
  start_nodes "$2" "$3"
  redis-cli -p "$RPORT" config resetstat >/dev/null
  $LT fanout --target livehub --url "$URLS" --viewers "$VIEWERS" --rates "$RATE" --step-secs "$SECS" \
    --max-p99-ms 5000 --keep-going --hub-pid "$PIDLIST" --json "target/multinode-$1.json" || true
  if [ "$3" = redis ]; then
    local sent; sent=$(python3 -c "import json;print(json.load(open('target/multinode-$1.json'))['steps'][0]['sent'])")
    echo "-- Redis commands during the run ($sent comments published):"
    commandstats | python3 -c "
import sys
sent=int(sys.argv[1]); total=0
for line in sys.stdin:
    name, rest = line.split(':', 1)
    calls = int(dict(kv.split('=') for kv in rest.split(','))['calls'])
    total += calls
    print(f'   {name[8:]:<12} {calls:>9}  ({calls/max(sent,1):.2f} per comment)')
print(f'   {\"all\":<12} {total:>9}  ({total/max(sent,1):.2f} per comment)')
" "$sent"
  fi
  stop_nodes
}
run 1mem 1 memory
run 1redis 1 redis
run "$NODES" "$NODES" redis
