#!/usr/bin/env bash
# A regression check in one run: the hub of an older commit (BEFORE_TREE: a checkout of it,
# e.g. a git worktree, built with `cargo build --release --workspace`) and this tree's,
# alternating, with this tree's load client. Fan-out 10,000 viewers x 20/s on the memory
# backend, then reserves on Redis (each tree's own bench-reserve.sh). Output under
# target/bench-before-after/.
#   git worktree add /tmp/before 8fb595e && (cd /tmp/before && cargo build --release --workspace)
#   bash scripts/bench-before-after.sh /tmp/before
set -uo pipefail
BEFORE=${1:?usage: bench-before-after.sh BEFORE_TREE (a release-built checkout of the older commit)}
AFTER=$(cd "$(dirname "$0")/.." && pwd)
OUT=$AFTER/target/bench-before-after; mkdir -p $OUT
LT=$AFTER/target/release/livehub-loadtest
free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
fanout() { # $1 label $2 tree
  PORT=$(free_port)
  (cd $2 && LIVEHUB_SERVER__BIND=127.0.0.1:$PORT LIVEHUB_LIMITS__CONNECTIONS_PER_IP=0 RUST_LOG=error \
  LIVEHUB_LIMITS__COMMENT_RATE_PER_SEC=1000000 LIVEHUB_LIMITS__COMMENT_BURST=1000000 \
  LIVEHUB_LIMITS__HOST_FRAMES_PER_SEC=1000000 LIVEHUB_LIMITS__HOST_FRAMES_BURST=1000000 \
    exec ./target/release/livehub serve) & SPID=$!
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 0.1; done
  $LT fanout --target livehub --url "ws://127.0.0.1:$PORT" --viewers 10000 --rates 20 --step-secs 10 \
    --max-p99-ms 50 --keep-going --server-pid "$SPID" --json "$OUT/fanout-$1.json" > "$OUT/fanout-$1.txt" 2>&1
  kill $SPID; wait $SPID 2>/dev/null
  echo "== fanout $1"; grep -iE "p50|p99|lost|cpu|deliver" "$OUT/fanout-$1.txt" | head -8
}
for r in 1 2; do
  fanout before-$r $BEFORE
  fanout after-$r $AFTER
done
for r in 1 2; do
  echo "== reserve before-$r"; bash $BEFORE/scripts/bench-reserve.sh 500 10 > $OUT/reserve-before-$r.txt 2>&1; tail -6 $OUT/reserve-before-$r.txt
  echo "== reserve after-$r"; bash $AFTER/scripts/bench-reserve.sh 500 10 > $OUT/reserve-after-$r.txt 2>&1; tail -6 $OUT/reserve-after-$r.txt
done
