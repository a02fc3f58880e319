#!/usr/bin/env bash
# The CPU a reserve costs the hub and Redis: a closed loop of 500 buyers for 10 s through the
# hub of TREE (a release-built checkout, e.g. a worktree of an older commit, or this one) on a
# throwaway redis-server, the hub's and Redis's user+system time from /proc divided by the
# reserves made, and Redis's command counts. Alternate two trees for a before/after:
#   bash scripts/bench-reserve-cpu.sh /tmp/before before; bash scripts/bench-reserve-cpu.sh . after
set -uo pipefail
TREE=${1:?usage: bench-reserve-cpu.sh TREE LABEL}; L=${2:-run}
PORT=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
HUBPORT=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
redis-server --port "$PORT" --bind 127.0.0.1 --save "" --appendonly no --daemonize no >/dev/null & RPID=$!
for _ in $(seq 50); do redis-cli -p "$PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
LIVEHUB_SERVER__BIND=127.0.0.1:$HUBPORT LIVEHUB_LIMITS__CONNECTIONS_PER_IP=0 LIVEHUB_INVENTORY__BACKEND=redis LIVEHUB_REDIS__URL=redis://127.0.0.1:$PORT \
LIVEHUB_LIMITS__RESERVE_RATE_PER_SEC=1000000 LIVEHUB_LIMITS__RESERVE_BURST=1000000 \
LIVEHUB_LIMITS__VIEWER_FRAMES_PER_SEC=1000000 LIVEHUB_LIMITS__VIEWER_FRAMES_BURST=1000000 \
RUST_LOG=error $TREE/target/release/livehub serve >/dev/null & HPID=$!
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$HUBPORT/healthz" >/dev/null && break; sleep 0.1; done
t0=$(awk '{print $14+$15}' /proc/$HPID/stat); r0=$(awk '{print $14+$15}' /proc/$RPID/stat)
out=$("$(cd "$(dirname "$0")/.." && pwd)/target/release/livehub-loadtest" reserve --url "ws://127.0.0.1:$HUBPORT" --buyers 500 --duration 10 2>&1)
t1=$(awk '{print $14+$15}' /proc/$HPID/stat); r1=$(awk '{print $14+$15}' /proc/$RPID/stat)
n=$(echo "$out" | grep -oE "reserved: [0-9]+" | grep -oE "[0-9]+")
rps=$(echo "$out" | grep -oE "reserves/s: [0-9]+")
echo "$L $rps hub_cpu_us_per_reserve=$(python3 -c "print(round(($t1-$t0)*10000/$n,1))") redis_cpu_us_per_reserve=$(python3 -c "print(round(($r1-$r0)*10000/$n,1))")"
redis-cli -p $PORT info commandstats | grep -E "cmdstat_(evalsha|publish|spublish|eval|hset|hget|zadd|set|incr)" | sed "s/,usec_per_call.*//" | sed "s/^/  $L /"; echo "  $L n=$n"
kill $HPID $RPID; wait 2>/dev/null
