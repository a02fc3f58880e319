#!/usr/bin/env bash
# Issue 20's benchmark: the flash-spike scenario (chat at 20/s, and with chat off) and the
# chat-storm scenario (200 comments/s), on Redis with AOF always, the hub pinned to core 0 and
# the load tester to core 1, alternating an older commit's hub (BEFORE_TREE: a checkout of it,
# release-built) and this tree's, with this tree's load tester. Each run gets a fresh Redis
# database. Prints, per run, the latency table, the closes, the thinned chat and the hub's CPU
# per delivery (its user+system CPU over the run divided by the deliveries the viewers counted).
#   git worktree add /tmp/before 2ad462d && (cd /tmp/before && cargo build --release --workspace)
#   cargo build --release --workspace && bash scripts/bench-flash.sh /tmp/before [ROUNDS] [WHICH]
# WHICH: any of "spike quiet storm" (default all three). Output under target/bench-flash/.
set -uo pipefail
BEFORE=${1:?usage: bench-flash.sh BEFORE_TREE [ROUNDS] [WHICH]}
ROUNDS=${2:-2}
WHICH=${3:-spike quiet storm}
AFTER=$(cd "$(dirname "$0")/.." && pwd)
OUT=$AFTER/target/bench-flash; mkdir -p "$OUT"
LT=$AFTER/target/release/livehub-loadtest
ulimit -n 65536
free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }

RPORT=$(free_port)
RDIR=$(mktemp -d)
redis-server --port "$RPORT" --bind 127.0.0.1 --dir "$RDIR" --appendonly yes --appendfsync always \
  --save "" --daemonize yes --logfile "$RDIR/redis.log" >/dev/null
trap 'redis-cli -p $RPORT shutdown nosave >/dev/null 2>&1; rm -rf "$RDIR"' EXIT
for _ in $(seq 50); do redis-cli -p "$RPORT" ping >/dev/null 2>&1 && break; sleep 0.1; done

# The scenario files: flash-spike as is, flash-spike with chat off, chat-storm.
sed -e 's/^comments_per_s = .*/comments_per_s = 0.001/' -e 's/^likes_per_s = .*/likes_per_s = 0.001/' \
  "$AFTER/config/scenarios/flash-spike.toml" > "$OUT/flash-quiet.toml"
scenario() {
  case $1 in
    spike) echo "$AFTER/config/scenarios/flash-spike.toml" ;;
    quiet) echo "$OUT/flash-quiet.toml" ;;
    storm) echo "$AFTER/config/scenarios/chat-storm.toml" ;;
  esac
}
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

run() { # $1 label $2 tree $3 which
  redis-cli -p "$RPORT" flushall >/dev/null
  local port; port=$(free_port)
  (cd "$2" && LIVEHUB_SERVER__BIND=127.0.0.1:$port LIVEHUB_LIMITS__CONNECTIONS_PER_IP=0 RUST_LOG=error \
    LIVEHUB_INVENTORY__BACKEND=redis LIVEHUB_REDIS__URL=redis://127.0.0.1:$RPORT \
    exec taskset -c 0 ./target/release/livehub serve) & local hub=$!
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done
  local before; before=$(cpu_ticks $hub)
  taskset -c 1 "$LT" run "$(scenario "$3")" --url "ws://127.0.0.1:$port" --hub-pid "$hub" \
    --report "$OUT/$1.json" --quiet > "$OUT/$1.txt" 2>&1
  local after; after=$(cpu_ticks $hub)
  curl -sf "http://127.0.0.1:$port/metrics" > "$OUT/$1.metrics" || true
  kill $hub; wait $hub 2>/dev/null
  local deliveries; deliveries=$(grep -oE '^deliveries +[0-9]+' "$OUT/$1.txt" | grep -oE '[0-9]+$')
  echo "== $1"
  grep -E "^  (comment|stock|reserve|checkout) |^close codes|^thinned|^lost events|^deliveries|^hub " "$OUT/$1.txt"
  python3 "$AFTER/scripts/histogram-quantiles.py" "$OUT/$1.metrics" livehub_reserve_seconds \
    livehub_write_delay_seconds livehub_write_batch_frames livehub_write_interval_seconds
  python3 -c "import sys; t=($after-$before)/$(getconf CLK_TCK); d=int('${deliveries:-0}' or 0); print(f'hub cpu {t:.2f} s, per delivery {t/d*1e6:.3f} us' if d else 'no deliveries')"
}

for which in $WHICH; do
  for r in $(seq "$ROUNDS"); do
    run "$which-before-$r" "$BEFORE" "$which"
    run "$which-after-$r" "$AFTER" "$which"
  done
done
